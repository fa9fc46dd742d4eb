#!/usr/bin/env bash
# `make image`: build Leadline's image with podman, from a Debian base this script makes itself (no container
# registry is reachable from the machines this project builds on).
#
#   1. localhost/leadline-base:bookworm  debootstrap --variant=minbase + python3, venv, CA certificates; built
#      once and cached (rebuilt only when this script's BASE_VERSION changes or the image is removed).
#   2. localhost/leadline:${TAG:-latest}  deploy/docker/Dockerfile on that base, with the runtime-only lock.
#
# The Debian mirror is the one apt on this machine already uses; it is read at build time, never written into
# a file or an image layer. pip in the build trusts the host's CA bundle, mounted read-only for the build only.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/docker/containers.conf}"
BASE=localhost/leadline-base:bookworm
BASE_VERSION=1
TAG="${TAG:-latest}"

mirror() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { echo "image: no Debian mirror found in apt's sources" >&2; exit 1; }
  echo "$uri"
}

build_base() {
  local root
  root=$(mktemp -d /var/tmp/leadline-rootfs.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  echo "image: making the base with debootstrap (once; cached as $BASE)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$(mirror)" \
    > /tmp/leadline-debootstrap.log 2>&1 || { tail -20 /tmp/leadline-debootstrap.log >&2; exit 1; }
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
    "$root"/usr/share/locale/* "$root"/etc/apt/sources.list "$root"/etc/apt/sources.list.d/*
  tar --numeric-owner -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' \
    --change "LABEL leadline.base-version=$BASE_VERSION" - "$BASE" > /dev/null
}

if [ "$(podman image inspect --format '{{index .Labels "leadline.base-version"}}' "$BASE" 2>/dev/null)" != "$BASE_VERSION" ]; then
  build_base
fi
podman build --quiet --file deploy/docker/Dockerfile --ignorefile deploy/docker/Dockerfile.dockerignore --build-arg "PYTHON_IMAGE=$BASE" \
  --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
  --tag "localhost/leadline:$TAG" . > /dev/null
podman image prune --force > /dev/null  # the build stage's leftovers
size=$(podman image inspect --format '{{.Size}}' "localhost/leadline:$TAG")
echo "image: localhost/leadline:$TAG, $((size / 1000000)) MB"
