"""The Kubernetes manifests render, validate offline, and keep the promises architecture.md §8 makes.

``kubectl kustomize`` renders deploy/k8s/base and the production overlay (no cluster needed); built-in kinds
are validated against the Kubernetes JSON schemas shipped by ``kubernetes-validate`` (strict: an unknown or
misspelled field fails); the CRDs (ServiceMonitor, KafkaTopic) and the properties that matter in operation
are checked by the assertions below: probes on the right paths and ports, non-root pods with limits, the
drain finishing before SIGKILL, the spool on a persistent volume, topics equal to the code's, no secrets.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from leadline_collector.metrics import CollectorMetrics
from leadline_collector.settings import CollectorSettings
from leadline_crm.settings import CrmSettings
from leadline_enricher.settings import EnricherSettings
from leadline_shared.config import CommonSettings
from leadline_shared.kafka import Topics

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
TARGETS = {"base": K8S / "base", "production": K8S / "overlays" / "production"}
# Oldest and newest Kubernetes minor versions the manifests are meant for (kubectl here is 1.32).
KUBERNETES_VERSIONS = ("1.30.0", "1.32.0", kubernetes_validate.latest_version())
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"),
}
NAMESPACE = "leadline"
# aiohttp's shutdown_timeout in leadline_shared.service.serve: the longest the runner cleanup may take.
SHUTDOWN_BUDGET_S = 10.0

Doc = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Svc:
    """What each service must look like in the cluster."""

    name: str
    kind: str
    port: int
    port_var: str
    host_var: str


SERVICES = (
    Svc("collector", "StatefulSet", 8080, "LEADLINE_COLLECTOR_PORT", "LEADLINE_COLLECTOR_HOST"),
    Svc("enricher", "Deployment", 8082, "LEADLINE_ENRICHER_PORT", "LEADLINE_ENRICHER_HOST"),
    Svc("crm-core", "Deployment", 8081, "LEADLINE_CRM_PORT", "LEADLINE_CRM_HOST"),
)
SERVING = ("collector", "crm-core")  # take client traffic, so must leave the endpoints before closing


def _kubectl(path: str | None = None, fallback: Path = Path("/usr/bin/kubectl")) -> str:
    """kubectl on PATH (or at its usual place); a missing kubectl fails the tests, it never skips them."""
    found = shutil.which("kubectl", path=path) or (str(fallback) if fallback.is_file() else None)
    if found is None:
        pytest.fail(
            "kubectl is not installed: tests/deploy renders deploy/k8s offline with `kubectl kustomize` "
            "(kubectl ≥ 1.27, no cluster needed); install kubectl and rerun"
        )
    return found


_RENDERED: dict[str, list[Doc]] = {}


def render(target: str) -> list[Doc]:
    """The documents ``kubectl kustomize`` produces for a target (rendered once per test session)."""
    if target not in _RENDERED:
        done = subprocess.run(
            [_kubectl(), "kustomize", str(TARGETS[target])],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            pytest.fail(f"kubectl kustomize {TARGETS[target]} failed:\n{done.stderr}")
        _RENDERED[target] = [d for d in yaml.safe_load_all(done.stdout) if d]
    return copy.deepcopy(_RENDERED[target])


def test_missing_kubectl_fails_with_instructions(tmp_path: Path) -> None:
    """Without kubectl the deploy tests fail and say what to install, so CI cannot pass them by skipping."""
    with pytest.raises(pytest.fail.Exception, match="kubectl is not installed"):
        _kubectl(path=str(tmp_path), fallback=tmp_path / "kubectl")


@pytest.fixture(params=list(TARGETS))
def docs(request: pytest.FixtureRequest) -> list[Doc]:
    """Every rendered document of base, then of the production overlay."""
    return render(request.param)


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    """The one document of ``kind`` called ``name``."""
    hits = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind}/{name}, found {len(hits)}"
    return hits[0]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    """All documents of one kind."""
    return [d for d in docs if d["kind"] == kind]


def workload(docs: list[Doc], svc: Svc) -> Doc:
    """The Deployment or StatefulSet running a service."""
    return find(docs, svc.kind, f"leadline-{svc.name}")


def container(doc: Doc) -> Doc:
    """The single container of a workload's pod."""
    containers = doc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{doc['metadata']['name']}: expected one container"
    result: Doc = containers[0]
    return result


def config_map(docs: list[Doc]) -> Doc:
    """The LEADLINE_* ConfigMap every pod reads (its name carries kustomize's content hash)."""
    maps = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("leadline-config-")]
    assert len(maps) == 1, f"expected one leadline-config-<hash> ConfigMap, found {len(maps)}"
    return maps[0]


def config_data(docs: list[Doc]) -> dict[str, str]:
    """The settings in the ConfigMap."""
    data: dict[str, str] = config_map(docs)["data"]
    return data


def pod_env(docs: list[Doc], doc: Doc) -> dict[str, Any]:
    """A container's environment: ConfigMap values (envFrom) overlaid by its own env entries."""
    env: dict[str, Any] = {}
    for source in container(doc).get("envFrom", []):
        env.update(find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for entry in container(doc).get("env", []):
        env[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return env


def resolve_port(doc: Doc, port: int | str) -> int:
    """A probe's or Service's port: a number, or a container port's name."""
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in container(doc)["ports"] if p.get("name") == port]
    assert named, f"{doc['metadata']['name']}: no container port named {port!r}"
    return int(named[0])


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a matchLabels selector picks pods with ``labels``."""
    assert set(selector) <= {"matchLabels"}, f"only matchLabels selectors are used here: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G)?$")
_FACTORS = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: str | int) -> float:
    """A Kubernetes resource quantity ("250m", "1", "512Mi") as a number of cores or bytes."""
    match = _QUANTITY.match(str(value))
    assert match, f"unparsable quantity {value!r}"
    return float(match[1]) * _FACTORS[match[2]]


def secret_variables() -> set[str]:
    """Variables that hold secrets: settings declared secret, and every DSN (it may carry a password)."""
    names = set()
    for cls in (CollectorSettings, EnricherSettings, CrmSettings):
        for field in dataclasses.fields(cls):
            var = field.metadata.get("env")
            if var and (field.metadata.get("secret") or var.endswith("_DSN")):
                names.add(var)
    return names


def known_variables() -> set[str]:
    """Every LEADLINE_* variable some service reads."""
    return {
        f.metadata["env"]
        for cls in (CollectorSettings, EnricherSettings, CrmSettings)
        for f in dataclasses.fields(cls)
        if f.metadata.get("env")
    }


# ------------------------------------------------------------------------------------------ rendering


def test_kustomize_renders_every_expected_object(docs: list[Doc]) -> None:
    """Both targets render, in the leadline namespace, with every kind architecture.md §8 asks for."""
    kinds = {d["kind"] for d in docs}
    expected = {"Namespace", "ServiceAccount", "ConfigMap", "Service", "StatefulSet", "Deployment"}
    expected |= {
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "ServiceMonitor",
        "KafkaTopic",
    }
    assert expected <= kinds
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{doc['kind']}/{doc['metadata']['name']}"
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "leadline"


def _validate(doc: Doc, version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_builtin_kinds_validate_against_kubernetes_schemas(docs: list[Doc]) -> None:
    """Every built-in object is valid (strictly: no unknown field) for the Kubernetes versions we target."""
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                _validate(doc, version)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(
                    f"{doc['kind']}/{doc['metadata']['name']} invalid for Kubernetes {version}: {exc}"
                )
            except kubernetes_validate.SchemaNotFoundError:
                pytest.fail(f"{doc['apiVersion']} {doc['kind']} is not a Kubernetes {version} built-in kind")


def test_schema_validation_rejects_a_misspelled_field() -> None:
    """The offline validation is not vacuous: a typo in a probe, or a string replica count, fails it."""
    good = workload(render("base"), SERVICES[1])
    _validate(good, "1.32.0")
    typo = copy.deepcopy(good)
    typo["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(typo, "1.32.0")
    wrong_type = copy.deepcopy(good)
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(wrong_type, "1.32.0")


def test_only_known_custom_resources_are_used(docs: list[Doc]) -> None:
    """Custom resources are limited to the operators the README names (Prometheus Operator, Strimzi)."""
    builtin_groups = ("v1", "apps/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1")
    custom = {(d["apiVersion"], d["kind"]) for d in docs if d["apiVersion"] not in builtin_groups}
    assert custom == CRD_KINDS


# ------------------------------------------------------------------------------------------ workloads


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_service_runs_its_command_with_probes_on_its_port(docs: list[Doc], svc: Svc) -> None:
    """Liveness on /healthz and readiness on /readyz, on the port the service really listens on."""
    doc = workload(docs, svc)
    box = container(doc)
    assert box["command"] == ["leadline", svc.name]
    env = pod_env(docs, doc)
    assert env[svc.port_var] == str(svc.port)
    assert env[svc.host_var] == "0.0.0.0", "the default loopback address would be unreachable in a pod"
    probes = {name: box[name]["httpGet"] for name in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["startupProbe"]["path"] == "/healthz"
    for name, probe in probes.items():
        assert resolve_port(doc, probe["port"]) == svc.port, name
    service = find(docs, "Service", f"leadline-{svc.name}")
    pod_labels = doc["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels.get(k) == v for k, v in service["spec"]["selector"].items())
    (port,) = service["spec"]["ports"]
    assert port["port"] == svc.port
    assert resolve_port(doc, port["targetPort"]) == svc.port


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_pods_run_as_non_root_read_only_with_requests_and_limits(docs: list[Doc], svc: Svc) -> None:
    """A compromised process is a non-root user on a read-only file system, with bounded CPU and memory."""
    doc = workload(docs, svc)
    pod = doc["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    box = container(doc)
    security = box["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    resources = box["resources"]
    for resource in ("cpu", "memory"):
        request = quantity(resources["requests"][resource])
        limit = quantity(resources["limits"][resource])
        assert 0 < request <= limit, f"{svc.name} {resource}: request {request} limit {limit}"
    mounts = {m["mountPath"]: m["name"] for m in box["volumeMounts"]}
    assert "/tmp" in mounts, "a read-only root needs a writable /tmp"


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_drain_and_shutdown_finish_before_sigkill(docs: list[Doc], svc: Svc) -> None:
    """LEADLINE_DRAIN_SECONDS is set, and drain plus the cleanup budget fit in the termination grace period."""
    doc = workload(docs, svc)
    drain = float(pod_env(docs, doc)["LEADLINE_DRAIN_SECONDS"])
    grace = doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert drain > 0, "without a drain delay the listener closes while the load balancer still sends traffic"
    assert drain + SHUTDOWN_BUDGET_S < grace
    if svc.name in SERVING:
        readiness = container(doc)["readinessProbe"]
        assert readiness["periodSeconds"] * readiness["failureThreshold"] <= drain, (
            "the pod must turn unready (it answers 503 once draining) before its drain delay ends"
        )


def test_collector_spool_lives_on_a_persistent_volume(docs: list[Doc]) -> None:
    """Events spooled while Kafka is down survive a pod restart: the spool dir is a PersistentVolumeClaim."""
    collector = workload(docs, SERVICES[0])
    spool_dir = pod_env(docs, collector)["LEADLINE_SPOOL_DIR"]
    claims = {c["metadata"]["name"]: c for c in collector["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in container(collector)["volumeMounts"]}
    assert spool_dir in mounts
    claim = claims[mounts[spool_dir]]
    assert quantity(claim["spec"]["resources"]["requests"]["storage"]) >= 2**30
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert collector["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"
    assert "LEADLINE_SPOOL_DIR" in known_variables(), "the collector no longer reads it: the volume is unused"


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_state_paths_point_to_writable_volumes(docs: list[Doc], svc: Svc) -> None:
    """A setting whose default is a path under .run/ (local state) is moved onto a mounted volume.

    The root file system is read-only, so a default like `.run/spool` would fail at the first write.
    """
    settings_cls = {"collector": CollectorSettings, "enricher": EnricherSettings, "crm-core": CrmSettings}
    doc = workload(docs, svc)
    env = pod_env(docs, doc)
    mounts = [m["mountPath"] for m in container(doc)["volumeMounts"] if not m.get("readOnly")]
    state = [
        f.metadata["env"]
        for f in dataclasses.fields(settings_cls[svc.name])
        if isinstance(f.default, str) and f.default.startswith(".run")
    ]
    for var in state:
        assert isinstance(env.get(var), str), f"{var} keeps its default {var!r} on the read-only root"
        path = Path(env[var])
        assert path.is_absolute()
        assert any(path == Path(m) or Path(m) in path.parents for m in mounts), (
            f"{var}={path} is not on a volume"
        )


def test_collector_autoscales_on_cpu_and_owns_its_replica_count(docs: list[Doc]) -> None:
    """The HPA targets the collector's StatefulSet on CPU; the StatefulSet leaves replicas to it."""
    hpa = find(docs, "HorizontalPodAutoscaler", "leadline-collector")
    collector = workload(docs, SERVICES[0])
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "StatefulSet",
        "leadline-collector",
    )
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert "replicas" not in collector["spec"], (
        "a fixed replica count would fight the autoscaler on every apply"
    )
    assert "cpu" in container(collector)["resources"]["requests"], "CPU utilisation needs a CPU request"


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_every_service_has_a_disruption_budget(docs: list[Doc], svc: Svc) -> None:
    """A node drain takes at most one pod of a service at a time, and never blocks on a single replica."""
    doc = workload(docs, svc)
    labels = doc["spec"]["template"]["metadata"]["labels"]
    budgets = [p for p in of_kind(docs, "PodDisruptionBudget") if selects(p["spec"]["selector"], labels)]
    assert len(budgets) == 1
    assert budgets[0]["spec"] == {**budgets[0]["spec"], "maxUnavailable": 1}
    assert "minAvailable" not in budgets[0]["spec"]


# ------------------------------------------------------------------------------------------- network


def _policies_for(docs: list[Doc], labels: dict[str, str]) -> list[Doc]:
    return [p for p in of_kind(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]


def _ports(rules: list[Doc]) -> set[int]:
    return {port["port"] for rule in rules for port in rule.get("ports", [])}


def test_network_is_denied_by_default(docs: list[Doc]) -> None:
    """A pod nobody thought of gets no traffic in or out (DNS aside)."""
    deny = find(docs, "NetworkPolicy", "leadline-default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = find(docs, "NetworkPolicy", "leadline-allow-dns")["spec"]
    assert "ingress" not in dns
    assert _ports(dns["egress"]) == {53}


@pytest.mark.parametrize(
    ("svc", "public", "egress_ports"),
    [(SERVICES[0], True, {9092}), (SERVICES[2], True, {9092, 5432}), (SERVICES[1], False, {9092, 5432})],
    ids=["collector", "crm-core", "enricher"],
)
def test_network_policy_allows_only_what_each_service_needs(
    docs: list[Doc], svc: Svc, public: bool, egress_ports: set[int]
) -> None:
    """Collector and crm-core take traffic on their port; the enricher only metrics scrapes; egress to Kafka/PG."""
    labels = workload(docs, svc)["spec"]["template"]["metadata"]["labels"]
    policies = [p for p in _policies_for(docs, labels) if p["spec"]["podSelector"]]
    assert len(policies) == 1, "one policy per service besides the namespace-wide ones"
    spec = policies[0]["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    ingress = spec["ingress"]
    assert _ports(ingress) == {svc.port}
    if public:
        assert any("from" not in rule for rule in ingress), f"{svc.name} must be reachable from anywhere"
    else:
        assert all(
            peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
            for rule in ingress
            for peer in rule["from"]
        ), "the enricher answers only the monitoring namespace (metrics)"
    assert _ports(spec["egress"]) == egress_ports
    assert all(rule.get("to") for rule in spec["egress"]), "egress goes to named peers, never anywhere"


def test_service_monitor_scrapes_metrics_of_the_three_services(docs: list[Doc]) -> None:
    """Prometheus scrapes /metrics of each service exactly once (the headless collector Service is left out)."""
    monitor = find(docs, "ServiceMonitor", "leadline")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    selected = [
        s
        for s in of_kind(docs, "Service")
        if selects(monitor["spec"]["selector"], s["metadata"].get("labels", {}))
    ]
    assert sorted(s["metadata"]["name"] for s in selected) == [
        f"leadline-{s.name}" for s in sorted(SERVICES, key=lambda s: s.name)
    ]
    for service in selected:
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_alert_rules_name_only_metrics_the_collector_exports(docs: list[Doc]) -> None:
    """An alert on a misspelled or renamed metric never fires; the spool-not-draining alert (issue 19) is there."""
    rule = find(docs, "PrometheusRule", "leadline")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "LeadlineCollectorSpoolNotDraining" in alerts
    metrics = CollectorMetrics.create()
    exported = set()
    for family in metrics.registry.collect():
        exported.add(family.name)
        if family.type == "counter":  # a labelled counter has no samples until first used
            exported.add(family.name + "_total")
    for name, alert in alerts.items():
        used = set(re.findall(r"\bleadline_[a-z_]+", alert["expr"]))
        assert used, f"{name} names no Leadline metric"
        assert used <= exported, f"{name} uses metrics the collector does not export: {used - exported}"
    draining = alerts["LeadlineCollectorSpoolNotDraining"]["expr"]
    assert "leadline_collector_kafka_reachable" in draining
    assert "leadline_collector_spool_records" in draining


# -------------------------------------------------------------------------------------------- topics


def test_kafka_topics_match_the_code(docs: list[Doc]) -> None:
    """Strimzi creates exactly the topics of Topics.specs, with their partitions and configs (config compacted)."""
    specs = {s.name: s for s in Topics.with_prefix("").specs(CommonSettings().topic_partitions)}
    crs = {d["spec"]["topicName"]: d for d in of_kind(docs, "KafkaTopic")}
    assert set(crs) == set(specs)
    for name, cr in crs.items():
        assert cr["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert cr["metadata"]["labels"]["strimzi.io/cluster"] == "leadline"
        assert cr["spec"]["partitions"] == specs[name].num_partitions, name
        config = {k: str(v) for k, v in cr["spec"]["config"].items()}
        assert specs[name].topic_configs.items() <= config.items(), name
        assert int(config["min.insync.replicas"]) < cr["spec"]["replicas"], f"{name}: acks=all needs a spare"
    assert crs["crm.config.v1"]["spec"]["config"]["cleanup.policy"] == "compact"
    assert pod_env(docs, workload(docs, SERVICES[0]))["LEADLINE_CREATE_TOPICS"] == "false"


# ----------------------------------------------------------------------------------- config, secrets


def _literal_values(docs: list[Doc]) -> Iterator[tuple[str, str]]:
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            yield from doc["data"].items()
        if doc["kind"] in ("Deployment", "StatefulSet"):
            for entry in container(doc).get("env", []):
                if "value" in entry:
                    yield entry["name"], entry["value"]


def test_no_secret_value_is_written_in_the_manifests(docs: list[Doc]) -> None:
    """DSNs and signing keys come only from the Secret reference; no Secret with data is rendered."""
    secrets = secret_variables()
    assert {"LEADLINE_LINK_KEYS", "LEADLINE_PG_DSN", "LEADLINE_CRM_DSN", "LEADLINE_IDENTITY_DSN"} <= secrets
    assert not [d for d in of_kind(docs, "Secret") if d.get("data") or d.get("stringData")]
    for name, value in _literal_values(docs):
        assert name not in secrets, f"{name} is a secret and must come from secretKeyRef"
        assert not re.search(r"://[^/\s@]+:[^/\s@]*@", str(value)), f"{name} holds credentials"
    for svc in SERVICES:
        for entry in container(workload(docs, svc)).get("env", []):
            if entry["name"] in secrets:
                ref = entry["valueFrom"]["secretKeyRef"]
                assert ref["name"] == "leadline-secrets"
    crm_env = pod_env(docs, workload(docs, SERVICES[2]))
    enricher_env = pod_env(docs, workload(docs, SERVICES[1]))
    assert "secretKeyRef" in crm_env["LEADLINE_CRM_DSN"]
    assert "secretKeyRef" in enricher_env["LEADLINE_IDENTITY_DSN"]


def test_a_config_change_rolls_the_pods(docs: list[Doc]) -> None:
    """Settings are read once at start: the ConfigMap name hashes its content, so a change restarts pods."""
    name = config_map(docs)["metadata"]["name"]
    assert re.fullmatch(r"leadline-config-[a-z0-9]{10}", name)
    for svc in SERVICES:
        refs = [s["configMapRef"]["name"] for s in container(workload(docs, svc))["envFrom"]]
        assert refs == [name], svc.name


def test_configmap_names_only_variables_the_services_read(docs: list[Doc]) -> None:
    """A misspelled variable would be silently ignored by the services: every key must be a real setting."""
    unknown = set(config_data(docs)) - known_variables()
    assert not unknown, f"not read by any service: {sorted(unknown)}"


# ------------------------------------------------------------------------------------ image, overlay


def test_image_is_a_placeholder_the_overlay_overrides() -> None:
    """Base runs `leadline:latest`; the production overlay pins a tag through kustomize's images field."""
    for target, image in (("base", "leadline:latest"), ("production", "leadline:0.1.0")):
        for svc in SERVICES:
            assert container(workload(render(target), svc))["image"] == image, (target, svc.name)


def test_production_overlay_raises_replicas_and_resources() -> None:
    """Production runs at least three of each service, each with more CPU than the base."""
    base, production = render("base"), render("production")
    assert find(production, "HorizontalPodAutoscaler", "leadline-collector")["spec"]["minReplicas"] >= 3
    for svc in SERVICES:
        prod = workload(production, svc)
        if svc.kind == "Deployment":
            assert prod["spec"]["replicas"] >= 3
        if svc.name == "enricher":
            raw_partitions = Topics.with_prefix("").specs(CommonSettings().topic_partitions)[0].num_partitions
            assert prod["spec"]["replicas"] <= raw_partitions, (
                "extra enricher replicas would get no partition"
            )
        cpu = quantity(container(prod)["resources"]["requests"]["cpu"])
        assert cpu > quantity(container(workload(base, svc))["resources"]["requests"]["cpu"])


def test_dockerfile_runs_as_the_user_the_pods_expect() -> None:
    """The image (built by tests/deploy/test_image.py) installs the hashed runtime lock and runs as uid 10001."""
    text = (REPO / "deploy" / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=localhost/leadline-base:bookworm$", text, re.MULTILINE)
    assert "--require-hashes" in text
    assert "requirements-runtime.lock" in text
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users == ["10001:10001"]
    for svc in SERVICES:
        assert (
            workload(render("base"), svc)["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
        )
