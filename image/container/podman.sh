#!/usr/bin/env bash
# Runs podman on the storage of osgate's image build
# (image/build/container/storage), with the settings of
# image/container/containers.conf, so that building and testing the image
# touch no other images or containers on the machine:
#
#   image/container/podman.sh images
#   image/container/podman.sh run --rm -p 1883:1883 osgate:VERSION-amd64
#
# OSGATE_PODMAN_ROOT names another storage (the container test's own).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${OSGATE_PODMAN_ROOT:-$(cd "$here/../.." && pwd)/image/build/container/storage}
# Podman refuses a run root longer than 50 characters: one per storage,
# and its own libpod directory too (--tmpdir), never the machine's.
runroot=/run/osgate-podman-$(printf %s "$root" | cksum | cut -d' ' -f1)
mkdir -p "$root"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
exec podman --root "$root" --runroot "$runroot" --tmpdir "$runroot/libpod" "$@"
