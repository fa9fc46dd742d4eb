#!/usr/bin/env bash
# Build the Kubernetes tools Leadline's checks need, from the Go module proxy, and cache them.
#
#   deploy/k8s-tools/build.sh helm                 -> prints the path of helm (`make test` renders the chart)
#   deploy/k8s-tools/build.sh etcd kube-apiserver kubectl   (`make k8s-check`: a real API server's dry run)
#
# Neither Debian nor any reachable registry ships these binaries, but Go and the module proxy are on the machine
# (docs/operations.md, ../shared/infra-notes.md). Binaries land in $LEADLINE_TOOLS_CACHE (default
# ~/.cache/leadline/k8s-tools/<tool>-<version>/), outside the work tree, so a fresh clone (CI) reuses them;
# a version bump below builds a new one. Uncached, on an idle 2-core machine (infra notes): helm ~75 s,
# etcd ~45 s, kube-apiserver ~5 min; measured with other builds and tests sharing the 2 cores (load ~10):
# helm 323 s, etcd 233 s, kube-apiserver 1519 s, kubectl 100 s more (same module tree). Cached: nothing is built.
#
# Why not `go install` for all: etcd's and kubernetes' main modules carry `replace` directives (to sibling
# modules of their repositories), which `go install mod@version` refuses. So their module source is taken from the
# module cache, the replaces are rewritten (etcd: dropped, its sibling modules then come from the proxy at the
# same version; kubernetes: its ./staging replaces become requirements of k8s.io/<name> at v0.<minor>.<patch>),
# and the command is built with `go build` in a scratch copy.
set -euo pipefail

HELM_VERSION=v3.22.0
ETCD_VERSION=v3.6.16
KUBERNETES_VERSION=v1.37.2
STAGING_VERSION=v0.${KUBERNETES_VERSION#v1.}   # k8s.io/api etc. are tagged v0.<minor>.<patch>

GO_MIN=1.26   # helm v3.22.0's go.mod says `go 1.26.0`; kubernetes v1.37 and etcd v3.6 need less

CACHE="${LEADLINE_TOOLS_CACHE:-$HOME/.cache/leadline/k8s-tools}"
export GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0
[ -x /usr/local/go/bin/go ] && PATH="/usr/local/go/bin:$PATH"  # where the machine image keeps Go

command -v go >/dev/null 2>&1 || { echo "k8s-tools: Go is not installed (needed to build helm and friends)" >&2; exit 1; }
# An older Go (Debian's golang-go is 1.19) lets the go command fetch the toolchain the modules ask for, which it
# does through the Go module proxy (Go publishes its toolchains there as a module); a recent enough one builds
# with itself.
have=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$GO_MIN" "$have" | sort -V | head -1)" = "$GO_MIN" ]; then
  export GOTOOLCHAIN=local
else
  export GOTOOLCHAIN=auto
fi

log() { echo "k8s-tools: $*" >&2; }

# A scratch copy of a module's source from the module cache (read-only there), writable, and its path.
module_copy() {
  local module=$1 version=$2 dir src
  src=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] || { log "cannot download $module@$version"; exit 1; }
  dir=$(mktemp -d "${TMPDIR:-/tmp}/leadline-k8s-tools.XXXXXX")
  cp -r "$src/." "$dir"
  chmod -R u+w "$dir"
  echo "$dir"
}

build_helm() {
  local out=$1
  GOBIN="$out" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

build_etcd() {
  local out=$1 dir
  dir=$(module_copy go.etcd.io/etcd/server/v3 "$ETCD_VERSION")
  (
    cd "$dir"
    for old in $(go mod edit -json | sed -n '/"Replace"/,$p' | sed -n 's/^[[:space:]]*"Path": "\(.*\)"$/\1/p' | sort -u); do
      go mod edit -dropreplace="$old"
    done
    go mod tidy >/dev/null
    go build -trimpath -o "$out/etcd" .
  )
  rm -rf "$dir"
}

# kube-apiserver and kubectl come from one copy of k8s.io/kubernetes (built together when both are asked for).
K8S_SRC=""
kubernetes_source() {
  [ -n "$K8S_SRC" ] && return
  K8S_SRC=$(module_copy k8s.io/kubernetes "$KUBERNETES_VERSION")
  (
    cd "$K8S_SRC"
    local args=() name
    for name in $(go mod edit -json | grep -o '"Path": "k8s.io/[^"]*"' | sed 's/.*"\(k8s.io\/[^"]*\)"/\1/' | sort -u); do
      if go mod edit -json | grep -q "\"Path\": \"./staging/src/$name\""; then
        args+=("-dropreplace=$name" "-require=$name@$STAGING_VERSION")
      fi
    done
    [ ${#args[@]} -gt 0 ] || { log "no ./staging replaces found in k8s.io/kubernetes@$KUBERNETES_VERSION"; exit 1; }
    go mod edit "${args[@]}"
  )
}

build_kubernetes_cmd() {
  local cmd=$1 out=$2
  kubernetes_source
  # The version Kubernetes' own build stamps in (kubectl version, /version, skew checks); plain go build leaves
  # v0.0.0-master. Only the link step differs, so the Go build cache serves everything else.
  local minor=${KUBERNETES_VERSION#v1.} flags="" pkg
  minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  (cd "$K8S_SRC" && GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath -ldflags "$flags" -o "$out/$cmd" "./cmd/$cmd")
}

version_of() {
  case $1 in
    helm) echo "$HELM_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    kube-apiserver | kubectl) echo "$KUBERNETES_VERSION" ;;
    *) log "unknown tool $1 (helm, etcd, kube-apiserver, kubectl)"; exit 2 ;;
  esac
}

[ $# -gt 0 ] || { echo "usage: $0 helm|etcd|kube-apiserver|kubectl..." >&2; exit 2; }
cleanup() { if [ -n "$K8S_SRC" ]; then rm -rf "$K8S_SRC"; fi; }
trap cleanup EXIT
for tool in "$@"; do
  out="$CACHE/$tool-$(version_of "$tool")"
  if [ ! -x "$out/$tool" ]; then
    started=$(date +%s)
    log "building $tool $(version_of "$tool") (once; cached in $out)"
    mkdir -p "$out.partial"
    case $tool in
      helm) build_helm "$out.partial" ;;
      etcd) build_etcd "$out.partial" ;;
      kube-apiserver | kubectl) build_kubernetes_cmd "$tool" "$out.partial" ;;
    esac
    rm -rf "$out" && mv "$out.partial" "$out"
    log "built $tool in $(( $(date +%s) - started ))s"
  fi
  echo "$out/$tool"
done
