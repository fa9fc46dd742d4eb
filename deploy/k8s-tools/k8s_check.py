"""`make k8s-check`: a real Kubernetes API server judges every object the Helm chart renders.

The offline checks of `make test` (tests/deploy/test_k8s.py) validate against JSON schemas. They cannot see what
only the API server knows: defaulting and validation written in Go (a selector that does not match its
template, an immutable field, a port name too long, a bad label value), and admission, here Pod Security
"restricted", which the namespace enforces. So this script builds (once, cached by build.sh) etcd,
kube-apiserver and kubectl from the Go module proxy, starts etcd and the API server on free loopback ports
under .run/k8s-check/, creates the namespace with the chart's Pod Security labels, and runs
``kubectl apply --dry-run=server`` on everything ``helm template`` renders for the default values, the
production example and the optional parts switched on. Objects of third-party CRDs (Prometheus Operator,
Strimzi, KEDA, CloudNativePG) are listed and skipped: their operators are not installed. There is no kubelet or
controller manager, so nothing runs; the dry run persists nothing.

Exit status 0 only if every object is accepted with no Pod Security warning. Takes 10-20 s once the tools are
cached; the first build of the tools takes several minutes (build.sh).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "leadline"
NAMESPACE = "leadline"
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
BUILTIN_GROUPS = {"v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1"}
READY_TIMEOUT_S = 60.0


def tools() -> dict[str, str]:
    """Paths of the cached binaries (built on first use)."""
    names = ["helm", "etcd", "kube-apiserver", "kubectl"]
    done = subprocess.run(
        ["bash", str(REPO / "deploy" / "k8s-tools" / "build.sh"), *names],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return dict(zip(names, done.stdout.split(), strict=True))


def free_port() -> int:
    """A TCP port nothing listens on, on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, token: str | None = None) -> None:
    """Poll ``url`` until it answers 200; fail if ``proc`` exits or after READY_TIMEOUT_S."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the API server's own throw-away self-signed certificate
    if not url.startswith(("http://127.0.0.1:", "https://127.0.0.1:")):
        raise ValueError(f"only the servers this script started on loopback are polled, not {url!r}")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback http(s), checked above)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-5:]
            raise SystemExit(f"k8s-check: {log.stem} exited ({proc.returncode}):\n" + "\n".join(tail))
        if time.monotonic() > deadline:
            raise SystemExit(f"k8s-check: {url} not ready within {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.25)


@contextlib.contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server for the duration of the block; stop it (SIGTERM, then SIGKILL) afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def service_account_keys(work: Path) -> tuple[Path, Path]:
    """A throw-away RSA key pair the API server signs and checks service-account tokens with."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = work / "sa.key", work / "sa.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    private.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def render(helm: str, target: str) -> list[dict[str, Any]]:
    """What ``helm template`` makes of the chart for one target."""
    done = subprocess.run(
        [helm, "template", "leadline", str(CHART), "--namespace", NAMESPACE, "--kube-version", "1.37.2"]
        + TARGETS[target],
        capture_output=True,
        text=True,
        check=True,
    )
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def namespace_manifest() -> dict[str, Any]:
    """The namespace docs/operations.md asks for: Pod Security "restricted", enforced."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/warn-version": "latest",
            },
        },
    }


def pod_security_is_enforced(
    kubectl: str, env: dict[str, str], work: Path, docs: list[dict[str, Any]]
) -> bool:
    """The control: a copy of the collector that may run as root draws a Pod Security warning here.

    Without it, "no warning" could also mean the admission plugin is off or the namespace is unlabelled.
    """
    (collector,) = [d for d in docs if d["kind"] == "StatefulSet"]
    pod = collector["spec"]["template"]["spec"]
    pod["securityContext"]["runAsNonRoot"] = False
    pod["securityContext"]["runAsUser"] = 0
    manifest = work / "control.yaml"
    manifest.write_text(yaml.safe_dump(collector))
    done = subprocess.run(
        [kubectl, "apply", "--dry-run=server", "-f", str(manifest)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    warned = "violate PodSecurity" in done.stderr
    print(
        "\n[control] a root copy of the collector's StatefulSet: "
        + (
            "Pod Security warns, as it should (ok)"
            if warned
            else f"NO Pod Security warning (FAILED) {done.stderr}"
        )
    )
    return warned


def main() -> int:
    """Start etcd and kube-apiserver, dry-run the chart's objects on them, report; 0 when all are accepted."""
    bins = tools()
    work = REPO / ".run" / "k8s-check"
    shutil.rmtree(work, ignore_errors=True)
    (work / "etcd").mkdir(parents=True)
    (work / "etcd").chmod(0o700)
    token = secrets.token_hex(16)
    (work / "tokens.csv").write_text(f'{token},leadline-check,leadline-check,"system:masters"\n')
    sa_key, sa_pub = service_account_keys(work)
    etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
    etcd = f"http://127.0.0.1:{etcd_port}"
    peer = f"http://127.0.0.1:{etcd_peer}"
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = work / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "check", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
                ],
                "users": [{"name": "check", "user": {"token": token}}],
                "contexts": [{"name": "check", "context": {"cluster": "check", "user": "check"}}],
                "current-context": "check",
            }
        )
    )
    kubeconfig.chmod(0o600)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    started = time.monotonic()
    etcd_args = [bins["etcd"], "--data-dir", str(work / "etcd"), "--listen-client-urls", etcd]
    etcd_args += ["--advertise-client-urls", etcd, "--listen-peer-urls", peer]
    etcd_args += ["--initial-advertise-peer-urls", peer, "--initial-cluster", f"default={peer}"]
    etcd_args += ["--listen-metrics-urls", f"http://127.0.0.1:{free_port()}"]
    api_args = [bins["kube-apiserver"], f"--etcd-servers={etcd}", "--bind-address=127.0.0.1"]
    api_args += ["--advertise-address=127.0.0.1", f"--secure-port={api_port}", f"--cert-dir={work / 'certs'}"]
    api_args += [f"--token-auth-file={work / 'tokens.csv'}", "--authorization-mode=RBAC"]
    api_args += ["--service-account-issuer=https://kubernetes.default.svc.cluster.local"]
    api_args += [f"--service-account-key-file={sa_pub}", f"--service-account-signing-key-file={sa_key}"]
    # Only the range Services' cluster IPs are allocated from in etcd; no traffic goes there.
    api_args += ["--service-cluster-ip-range=10.96.0.0/16"]
    # No `kubernetes` Service endpoints to keep: the API server refuses to advertise a loopback address.
    api_args += ["--endpoint-reconciler-type=none"]
    failures = 0
    etcd_log, api_log = work / "etcd.log", work / "kube-apiserver.log"
    with process(etcd_args, etcd_log) as etcd_proc, process(api_args, api_log) as api_proc:
        wait_for(f"{etcd}/health", etcd_proc, etcd_log)
        wait_for(f"{server}/readyz", api_proc, api_log, token)
        print(f"k8s-check: etcd and kube-apiserver ready in {time.monotonic() - started:.1f} s ({server})")
        version = subprocess.run(
            [bins["kubectl"], "get", "--raw", "/version"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if version.returncode != 0:
            raise SystemExit(f"k8s-check: the API server does not answer kubectl: {version.stderr.strip()}")
        built = {name: Path(path).parent.name for name, path in bins.items()}
        print(
            f"k8s-check: API server /version {yaml.safe_load(version.stdout).get('gitVersion')}; built: {built}"
        )
        namespace = work / "namespace.yaml"
        namespace.write_text(yaml.safe_dump(namespace_manifest()))
        subprocess.run(
            [bins["kubectl"], "apply", "-f", str(namespace)], env=env, check=True, capture_output=True
        )
        for target in TARGETS:
            docs = render(bins["helm"], target)
            builtin = [d for d in docs if d["apiVersion"] in BUILTIN_GROUPS]
            skipped = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs if d not in builtin)
            manifest = work / f"{target}.yaml"
            manifest.write_text(yaml.safe_dump_all(builtin))
            done = subprocess.run(
                [bins["kubectl"], "apply", "--dry-run=server", "-f", str(manifest)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            accepted = [line for line in done.stdout.splitlines() if line.endswith("(server dry run)")]
            warnings = [line for line in done.stderr.splitlines() if line.startswith("Warning:")]
            errors = [line for line in done.stderr.splitlines() if line and not line.startswith("Warning:")]
            ok = done.returncode == 0 and len(accepted) == len(builtin) and not warnings
            failures += not ok
            print(
                f"\n[{target}] {len(accepted)} of {len(builtin)} objects accepted by the API server"
                f" ({'ok' if ok else 'FAILED'}); {len(skipped)} skipped (CRD not installed)"
            )
            for line in accepted:
                print(f"  {line}")
            for line in warnings + errors:
                print(f"  ! {line}")
            if skipped:
                print(f"  skipped: {', '.join(skipped)}")
        failures += not pod_security_is_enforced(bins["kubectl"], env, work, render(bins["helm"], "default"))
    total = time.monotonic() - started
    print(
        f"\nk8s-check: {'all accepted' if not failures else f'{failures} target(s) FAILED'} in {total:.1f} s"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
