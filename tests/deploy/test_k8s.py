"""The Helm chart renders, validates offline, and keeps the promises architecture.md §8 makes.

``helm template`` renders deploy/helm/leadline (no cluster needed) with its default values, the production
example and the optional parts switched on (CloudNativePG, KEDA); helm itself is built from the Go module proxy
and cached by deploy/k8s-tools/build.sh (``make test`` builds it first). Built-in kinds are validated against
the Kubernetes JSON schemas shipped by ``kubernetes-validate`` (strict: an unknown or misspelled field fails);
the custom resources (ServiceMonitor, PrometheusRule, KafkaTopic, ScaledObject, Cluster) and the properties that
matter in operation are checked by the assertions below: probes on the right paths and ports, non-root pods
with limits on a read-only root, the drain finishing before SIGKILL, the spool on a persistent volume, a
disruption budget and a spread per workload, the migration hook, the Ingress, topics equal to the code's, no
secrets. ``make k8s-check`` goes further: a real kube-apiserver's server-side dry run.
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
from prometheus_client import CollectorRegistry

from leadline_collector.metrics import CollectorMetrics
from leadline_collector.settings import CollectorSettings
from leadline_crm.marketing import Refolder
from leadline_crm.settings import CrmSettings
from leadline_enricher.settings import EnricherSettings
from leadline_shared.config import CommonSettings
from leadline_shared.kafka import Topics

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "leadline"
BUILD_TOOLS = REPO / "deploy" / "k8s-tools" / "build.sh"
# What each target sets on top of values.yaml.
TARGETS: dict[str, list[str]] = {
    "default": [],
    "production": ["-f", str(CHART / "values-production.yaml")],
    "options": [
        "--set",
        "postgresql.cnpg.enabled=true",
        "--set",
        "enricher.keda.enabled=true",
        "--set",
        "crmCore.keda.enabled=true",
    ],
}
# Oldest and newest Kubernetes minor versions the chart is meant for (Chart.yaml kubeVersion: >=1.30).
KUBERNETES_VERSIONS = ("1.30.0", "1.32.0", kubernetes_validate.latest_version())
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("postgresql.cnpg.io/v1", "Cluster"),
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


_HELM: list[str] = []


def _helm(path: str | None = None, fallback: Path = Path("/usr/local/go/bin/go")) -> str:
    """helm, built from the Go module proxy and cached by deploy/k8s-tools/build.sh; without Go the tests fail.

    Go is looked for on PATH and where the machine image keeps it (as build.sh does).
    """
    if _HELM and path is None:
        return _HELM[0]
    if shutil.which("go", path=path) is None and not fallback.is_file():
        pytest.fail(
            "Go is not installed: tests/deploy renders deploy/helm/leadline with helm, which "
            "deploy/k8s-tools/build.sh builds from the Go module proxy; install Go (≥ 1.24) and rerun"
        )
    done = subprocess.run(
        ["bash", str(BUILD_TOOLS), "helm"], capture_output=True, text=True, check=False, timeout=900
    )
    if done.returncode != 0:
        pytest.fail(f"deploy/k8s-tools/build.sh helm failed:\n{done.stderr[-3000:]}")
    _HELM.append(done.stdout.strip().splitlines()[-1])
    return _HELM[0]


def helm_template(*args: str) -> subprocess.CompletedProcess[str]:
    """``helm template leadline <chart> --namespace leadline`` with extra arguments."""
    return subprocess.run(
        [
            _helm(),
            "template",
            "leadline",
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            "1.32.0",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


_RENDERED: dict[str, list[Doc]] = {}


def render(target: str, *extra: str) -> list[Doc]:
    """The documents the chart renders for a target, plus ``extra`` helm arguments (cached per session)."""
    key = "\0".join((target, *extra))
    if key not in _RENDERED:
        done = helm_template(*TARGETS[target], *extra)
        if done.returncode != 0:
            pytest.fail(f"helm template ({target} {' '.join(extra)}) failed:\n{done.stderr}")
        _RENDERED[key] = [d for d in yaml.safe_load_all(done.stdout) if d]
    return copy.deepcopy(_RENDERED[key])


def test_missing_go_fails_with_instructions(tmp_path: Path) -> None:
    """Without Go (to build helm) the deploy tests fail and say what to install: CI cannot pass them by skipping."""
    with pytest.raises(pytest.fail.Exception, match="Go is not installed"):
        _helm(path=str(tmp_path), fallback=tmp_path / "go")


@pytest.fixture(params=list(TARGETS))
def docs(request: pytest.FixtureRequest) -> list[Doc]:
    """Every rendered document of the default values, the production example, and the optional parts on."""
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
    """The LEADLINE_* ConfigMap every pod reads."""
    return find(docs, "ConfigMap", "leadline-config")


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
    """Whether a selector (matchLabels, and Exists/DoesNotExist expressions) picks pods with ``labels``."""
    assert set(selector) <= {"matchLabels", "matchExpressions"}, f"unexpected selector: {selector}"
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] in ("Exists", "DoesNotExist"), f"unexpected expression: {expression}"
        if (expression["key"] in labels) != (expression["operator"] == "Exists"):
            return False
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


def test_chart_renders_every_expected_object(docs: list[Doc]) -> None:
    """Every target renders, in the release's namespace, with every kind architecture.md §8 asks for."""
    kinds = {d["kind"] for d in docs}
    expected = {"ServiceAccount", "ConfigMap", "Service", "StatefulSet", "Deployment", "Job", "Ingress"}
    expected |= {
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
        "KafkaTopic",
    }
    assert expected <= kinds
    for doc in docs:
        assert doc["metadata"].get("namespace") == NAMESPACE, f"{doc['kind']}/{doc['metadata']['name']}"
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "leadline"


def test_optional_parts_are_off_by_default() -> None:
    """KEDA and CloudNativePG are opt-in: a cluster without their operators installs the defaults cleanly."""
    kinds = {d["kind"] for d in render("default")} | {d["kind"] for d in render("production")}
    assert not kinds & {"ScaledObject", "Cluster"}
    assert {"ScaledObject", "Cluster"} <= {d["kind"] for d in render("options")}


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
    good = workload(render("default"), SERVICES[1])
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
    """Custom resources are limited to the operators docs/operations.md names (Prometheus Operator, Strimzi,
    and optionally KEDA and CloudNativePG)."""
    builtin_groups = ("v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1")
    custom = {(d["apiVersion"], d["kind"]) for d in docs if d["apiVersion"] not in builtin_groups}
    assert custom <= CRD_KINDS


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
def test_every_service_has_a_disruption_budget_and_a_spread(docs: list[Doc], svc: Svc) -> None:
    """A node drain takes at most one pod of a service at a time, and never blocks on a single replica."""
    doc = workload(docs, svc)
    labels = doc["spec"]["template"]["metadata"]["labels"]
    budgets = [p for p in of_kind(docs, "PodDisruptionBudget") if selects(p["spec"]["selector"], labels)]
    assert len(budgets) == 1
    assert budgets[0]["spec"] == {**budgets[0]["spec"], "maxUnavailable": 1}
    assert "minAvailable" not in budgets[0]["spec"]
    spread = doc["spec"]["template"]["spec"]["topologySpreadConstraints"]
    keys = {c["topologyKey"] for c in spread if selects(c["labelSelector"], labels)}
    assert "kubernetes.io/hostname" in keys, "replicas of one service would share a node"


# ------------------------------------------------------------------------------------------- network


def _policies_for(docs: list[Doc], labels: dict[str, str]) -> list[Doc]:
    return [p for p in of_kind(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]


def _ports(rules: list[Doc]) -> set[int]:
    return {port["port"] for rule in rules for port in rule.get("ports", [])}


def test_network_is_denied_by_default(docs: list[Doc]) -> None:
    """A pod nobody thought of gets no traffic in or out (DNS aside)."""
    deny = find(docs, "NetworkPolicy", "leadline-default-deny")["spec"]
    everyone: Doc = {}
    if of_kind(docs, "Cluster"):  # CloudNativePG's pods follow their operator's rules, not ours
        everyone = {"matchExpressions": [{"key": "cnpg.io/cluster", "operator": "DoesNotExist"}]}
    assert deny == {"podSelector": everyone, "policyTypes": ["Ingress", "Egress"]}
    for svc in SERVICES:
        assert selects(deny["podSelector"], workload(docs, svc)["spec"]["template"]["metadata"]["labels"])
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
    namespace_wide = {"leadline-default-deny", "leadline-allow-dns"}
    policies = [p for p in _policies_for(docs, labels) if p["metadata"]["name"] not in namespace_wide]
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


def test_alert_rules_name_only_metrics_the_services_export(docs: list[Doc]) -> None:
    """An alert on a misspelled or renamed metric never fires; the spool-not-draining alert (issue 19), the
    failing-recovery alert (issue 18) and the marketing credit queue's alerts are there."""
    rule = find(docs, "PrometheusRule", "leadline")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "LeadlineCollectorSpoolNotDraining" in alerts
    assert "leadline_collector_recovery_errors_total" in alerts["LeadlineCollectorRecoveryFailing"]["expr"]
    assert "leadline_crm_marketing_recredit_queued" in alerts["LeadlineCrmMarketingCreditsBehind"]["expr"]
    assert "recredit_failures_total" in alerts["LeadlineCrmMarketingCreditsFailing"]["expr"]
    crm = CollectorRegistry()
    Refolder(crm)
    exported = set()
    for family in [*CollectorMetrics.create().registry.collect(), *crm.collect()]:
        exported.add(family.name)
        if family.type == "counter":  # a labelled counter has no samples until first used
            exported.add(family.name + "_total")
    for name, alert in alerts.items():
        used = set(re.findall(r"\bleadline_[a-z_]+", alert["expr"]))
        assert used, f"{name} names no Leadline metric"
        assert used <= exported, f"{name} uses metrics no service exports: {used - exported}"
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
                # CloudNativePG (when the chart makes the database) keeps the DSN in its app Secret.
                assert ref["name"] in {"leadline-secrets", "leadline-db-app"}
    crm_env = pod_env(docs, workload(docs, SERVICES[2]))
    enricher_env = pod_env(docs, workload(docs, SERVICES[1]))
    assert "secretKeyRef" in crm_env["LEADLINE_CRM_DSN"]
    assert "secretKeyRef" in enricher_env["LEADLINE_IDENTITY_DSN"]


def test_a_config_change_rolls_the_pods() -> None:
    """Settings are read once at start: the pods carry the ConfigMap's checksum, so a changed value restarts them."""
    before = render("default")
    after = render("default", "--set", "config.LEADLINE_LOG_LEVEL=DEBUG")
    assert config_data(after)["LEADLINE_LOG_LEVEL"] == "DEBUG"
    for svc in SERVICES:
        refs = [s["configMapRef"]["name"] for s in container(workload(before, svc))["envFrom"]]
        assert refs == ["leadline-config"], svc.name
        sums = [
            workload(d, svc)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for d in (before, after)
        ]
        assert sums[0] != sums[1], f"{svc.name} would keep running with the old settings"


def test_configmap_names_only_variables_the_services_read(docs: list[Doc]) -> None:
    """A misspelled variable would be silently ignored by the services: every key must be a real setting."""
    unknown = set(config_data(docs)) - known_variables()
    assert not unknown, f"not read by any service: {sorted(unknown)}"


# ------------------------------------------------------------------------------------ image, overlay


def test_image_comes_from_the_values() -> None:
    """The defaults run `leadline:latest` (make image); production pins a repository and tag."""
    for target, image in (
        ("default", "leadline:latest"),
        ("production", "registry.example.com/leadline:0.1.0"),
    ):
        for svc in SERVICES:
            assert container(workload(render(target), svc))["image"] == image, (target, svc.name)


def test_production_values_raise_replicas_and_resources() -> None:
    """Production runs at least three of each service, each with more CPU than the defaults."""
    base, production = render("default"), render("production")
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
            workload(render("default"), svc)["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
            == 10001
        )


def test_production_spreads_over_zones() -> None:
    """The production example spreads each service over zones too, so a zone outage leaves replicas running."""
    for svc in SERVICES:
        spread = workload(render("production"), svc)["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert "topology.kubernetes.io/zone" in {c["topologyKey"] for c in spread}, svc.name


# ------------------------------------------------------------------------------------ ingress


def test_ingress_serves_the_collector_under_its_prefix_and_the_web_app() -> None:
    """One Ingress: the first-party prefix to the collector (which answers under it), /app and /api to crm-core."""
    docs = render("production")
    ingress = find(docs, "Ingress", "leadline")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "crm.example.com"
    assert ingress["spec"]["tls"][0]["hosts"] == ["crm.example.com"]
    routes = {p["path"]: (p["pathType"], p["backend"]["service"]) for p in rule["http"]["paths"]}
    prefix = config_data(docs)["LEADLINE_COLLECTOR_PATH_PREFIX"]
    assert prefix == "/ll"
    assert routes == {
        "/ll": ("Prefix", {"name": "leadline-collector", "port": {"name": "http"}}),
        "/app": ("Prefix", {"name": "leadline-crm-core", "port": {"name": "http"}}),
        "/api": ("Prefix", {"name": "leadline-crm-core", "port": {"name": "http"}}),
    }
    for path, (_, backend) in routes.items():
        service = find(docs, "Service", backend["name"])
        assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}, path
    assert "/metrics" not in routes, "health and metrics stay inside the cluster"
    assert "/" not in routes
    moved = render("default", "--set", "collector.pathPrefix=/t")
    paths = {p["path"] for p in find(moved, "Ingress", "leadline")["spec"]["rules"][0]["http"]["paths"]}
    assert "/t" in paths
    assert config_data(moved)["LEADLINE_COLLECTOR_PATH_PREFIX"] == "/t"


# ---------------------------------------------------------------------------------- migrations


def _job(docs: list[Doc]) -> Doc:
    return find(docs, "Job", "leadline-migrate")


def test_migrations_run_in_a_hook_job_before_the_pods_roll() -> None:
    """`leadline migrate` runs before install and upgrade; the services then skip migrating at start."""
    docs = render("default")
    job = _job(docs)
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod, (
        "a pre-install hook runs before the release's ServiceAccount exists"
    )
    box = container(job)
    assert box["command"] == ["leadline", "migrate"]
    assert box["securityContext"]["readOnlyRootFilesystem"] is True
    assert "envFrom" not in box, "a pre-install hook runs before the release's ConfigMap exists"
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in box["env"]}
    assert env["LEADLINE_CRM_DSN"] == {"name": "leadline-secrets", "key": "crm-dsn"}
    assert env["LEADLINE_IDENTITY_DSN"] == {"name": "leadline-secrets", "key": "identity-dsn"}
    assert config_data(docs)["LEADLINE_MIGRATE_ON_START"] == "false"
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["activeDeadlineSeconds"] > 0
    policies = [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if selects(p["spec"]["podSelector"], job["spec"]["template"]["metadata"]["labels"])
    ]
    egress = [rule for p in policies for rule in p["spec"].get("egress", [])]
    assert 5432 in _ports(egress), (
        "on upgrades the default deny is in place: the Job needs its way to PostgreSQL"
    )


def test_with_cloudnativepg_the_services_migrate_their_first_start() -> None:
    """The chart's own database does not exist before pre-install hooks: then the Job runs on upgrades only."""
    docs = render("options")
    assert _job(docs)["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    assert config_data(docs)["LEADLINE_MIGRATE_ON_START"] == "true"
    cluster = find(docs, "Cluster", "leadline-db")
    assert cluster["spec"]["instances"] >= 3
    assert cluster["spec"]["minSyncReplicas"] == cluster["spec"]["maxSyncReplicas"] == 1, (
        "a failover must not lose commits whose Kafka offsets the services already committed"
    )
    assert "backup" not in cluster["spec"], "no object store is configured by default"
    for svc, var in ((SERVICES[1], "LEADLINE_IDENTITY_DSN"), (SERVICES[2], "LEADLINE_CRM_DSN")):
        ref = pod_env(docs, workload(docs, svc))[var]["secretKeyRef"]
        assert ref == {"name": "leadline-db-app", "key": "uri"}, "CloudNativePG's app Secret"
    deny = find(docs, "NetworkPolicy", "leadline-default-deny")["spec"]["podSelector"]
    assert deny == {"matchExpressions": [{"key": "cnpg.io/cluster", "operator": "DoesNotExist"}]}


def test_cloudnativepg_backup_is_passed_through_and_sync_replicas_stay_below_instances() -> None:
    """spec.backup comes from values as is; a synchronous-standby count the cluster cannot meet is refused."""
    store = "postgresql.cnpg.backup.barmanObjectStore.destinationPath=s3://backups/leadline"
    backup = find(render("options", "--set", store), "Cluster", "leadline-db")["spec"]["backup"]
    assert backup == {"barmanObjectStore": {"destinationPath": "s3://backups/leadline"}}
    refused = helm_template(*TARGETS["options"], "--set", "postgresql.cnpg.syncReplicas=3")
    assert refused.returncode != 0
    assert "syncReplicas must be below" in refused.stderr


def test_migrations_can_be_left_to_the_services() -> None:
    """migrations.enabled=false renders no Job and lets each service migrate at start, as `make up` does."""
    docs = render("default", "--set", "migrations.enabled=false")
    assert not of_kind(docs, "Job")
    assert config_data(docs)["LEADLINE_MIGRATE_ON_START"] == "true"


# --------------------------------------------------------------------------------------- scaling


@pytest.mark.parametrize(
    ("svc", "topic", "settings"),
    [
        (SERVICES[1], "capture.raw.v1", EnricherSettings()),
        (SERVICES[2], "capture.enriched.v1", CrmSettings()),
    ],
    ids=["enricher", "crm-core"],
)
def test_keda_scales_consumers_on_lag_up_to_the_partitions(svc: Svc, topic: str, settings: Any) -> None:
    """KEDA watches the service's own consumer group on the topic it reads, never beyond its partitions."""
    docs = render("options")
    scaled = find(docs, "ScaledObject", f"leadline-{svc.name}")
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"leadline-{svc.name}",
    }
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["topic"] == topic
    assert meta["consumerGroup"] == settings.group_id
    assert meta["bootstrapServers"] == config_data(docs)["LEADLINE_KAFKA_BOOTSTRAP"]
    partitions = int(config_data(docs)["LEADLINE_TOPIC_PARTITIONS"])
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"] <= partitions
    assert "replicas" not in workload(docs, svc)["spec"], "KEDA owns the replica count"


def test_chart_refuses_more_consumers_than_partitions() -> None:
    """A consumer group never keeps more members busy than its topic has partitions: the chart says so."""
    done = helm_template("--set", "enricher.replicas=7")
    assert done.returncode != 0
    assert "exceeds LEADLINE_TOPIC_PARTITIONS=6" in done.stderr
    done = helm_template("--set", "crmCore.keda.enabled=true", "--set", "crmCore.keda.maxReplicas=12")
    assert done.returncode != 0
    assert (
        helm_template(
            "--set", "config.LEADLINE_TOPIC_PARTITIONS=12", "--set", "enricher.replicas=7"
        ).returncode
        == 0
    )


def test_chart_refuses_secrets_in_config() -> None:
    """A DSN put under `config` would land in a ConfigMap in clear: the chart refuses it."""
    done = helm_template("--set", "config.LEADLINE_CRM_DSN=postgresql://crm:pw@db/leadline")
    assert done.returncode != 0
    assert "secrets" in done.stderr


@pytest.mark.parametrize("target", ["default", "production"])
def test_chart_passes_helm_lint(target: str) -> None:
    """`helm lint --strict`: the chart's metadata, its values and every template are as Helm expects."""
    done = subprocess.run(
        [_helm(), "lint", "--strict", str(CHART), "--kube-version", "1.32.0", *TARGETS[target]],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_topic_prefix_and_group_names_follow_the_settings() -> None:
    """With LEADLINE_TOPIC_PREFIX and a group name in `config`, Strimzi and KEDA watch the topics and group the
    services really use."""
    docs = render(
        "options",
        "--set",
        "config.LEADLINE_TOPIC_PREFIX=acme.",
        "--set",
        "config.LEADLINE_ENRICHER_GROUP=acme-enricher",
    )
    specs = Topics.with_prefix("acme.").specs(CommonSettings().topic_partitions)
    assert {d["spec"]["topicName"] for d in of_kind(docs, "KafkaTopic")} == {s.name for s in specs}
    enricher = find(docs, "ScaledObject", "leadline-enricher")["spec"]["triggers"][0]["metadata"]
    assert (enricher["topic"], enricher["consumerGroup"]) == ("acme.capture.raw.v1", "acme-enricher")
    crm = find(docs, "ScaledObject", "leadline-crm-core")["spec"]["triggers"][0]["metadata"]
    assert (crm["topic"], crm["consumerGroup"]) == ("acme.capture.enriched.v1", CrmSettings().group_id)
