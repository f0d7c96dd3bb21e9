#!/usr/bin/env bash
# Builds osgate's container image for linux/amd64, linux/arm64 and
# linux/arm/v7 with Podman, FROM scratch (image/container/Containerfile):
# the static osgate (CGO off, stamped with VERSION and BUILD_TIME as `make
# build` does), the static Mosquitto of each architecture
# (image/mosquitto/build.sh), Debian's CA bundle, and passwd/group entries
# for the non-root user (uid 10001).
#
#   image/container/build.sh            (make container)
#
# Output, in image/build/container/ (build outputs, never committed):
#   osgate-VERSION-ARCH.tar   one image per architecture (amd64, arm64, armv7)
#                             as a docker-archive: `docker load -i FILE`
#                             (gzip it to ship it; docker load reads both)
#   osgate-VERSION.oci.tar    all three as an OCI image index (oci-archive)
#   sizes.txt                 each image's size, archived and gzipped
# and in a Podman storage of its own (image/build/container/storage, so
# that nothing else on the machine is touched; image/container/podman.sh
# runs Podman on it): the manifest list osgate:VERSION of all three, for
# `image/container/podman.sh manifest push --all osgate:VERSION docker://REGISTRY/osgate:VERSION`,
# and one image per architecture, osgate:VERSION-ARCH.
#
# Needs: go, podman and runc (image/container/deps.sh), and what
# image/mosquitto/build.sh needs (image/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VERSION:=$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
: "${BUILD_TIME:=$(date -u +%Y-%m-%dT%H:%M:%SZ)}"
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
out=$PWD/image/build/container
ctx=$out/context
rm -rf "$ctx" && mkdir -p "$ctx/state"
cp image/container/Containerfile "$ctx/"
cp -a image/container/rootfs "$ctx/"
mkdir -p "$ctx/rootfs/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/" \
  || { echo "no CA bundle: apt-get install ca-certificates" >&2; exit 1; }

podman=image/container/podman.sh
# Each build starts from an empty storage: the manifest list first, so
# that it never refers to a removed image.
$podman manifest rm "osgate:$VERSION" >/dev/null 2>&1 || true
$podman rmi -af >/dev/null 2>&1 || true
$podman images >/dev/null || { echo "the storage is damaged: rm -rf image/build/container/storage" >&2; exit 1; }

ldflags="-s -w -X github.com/osgate/osgate/appliance.Version=$VERSION -X github.com/osgate/osgate/appliance.BuildTime=$BUILD_TIME"
# platform  GOARCH  GOARM  Debian arch (Mosquitto)  archive suffix
platforms=(
  "linux/amd64 amd64 - amd64 amd64"
  "linux/arm64 arm64 - arm64 arm64"
  "linux/arm/v7 arm 7 armhf armv7"
)
$podman manifest create "osgate:$VERSION" >/dev/null
: >"$out/sizes.txt"
for p in "${platforms[@]}"; do
  read -r platform goarch goarm debarch suffix <<<"$p"
  [ -f "image/build/mosquitto.$debarch" ] || image/mosquitto/build.sh "$debarch"
  cp "image/build/mosquitto.$debarch" "$ctx/mosquitto.$goarch"
  echo "osgate for $platform"
  goenv=(CGO_ENABLED=0 GOOS=linux GOARCH="$goarch")
  [ "$goarm" = - ] || goenv+=(GOARM="$goarm")
  env "${goenv[@]}" go build -trimpath -ldflags "$ldflags" -o "$ctx/osgate.$goarch" ./appliance/cmd/osgate
  tag="osgate:$VERSION-$suffix"
  $podman build -q --format docker --platform "$platform" \
    --build-arg VERSION="$VERSION" --build-arg REVISION="$revision" --build-arg CREATED="$BUILD_TIME" \
    -t "$tag" -f "$ctx/Containerfile" "$ctx" >/dev/null
  $podman manifest add "osgate:$VERSION" "containers-storage:localhost/$tag" >/dev/null
  archive=$out/osgate-$VERSION-$suffix.tar
  rm -f "$archive"
  $podman save -q --format docker-archive -o "$archive" "$tag"
  gz=$(gzip -9 -c "$archive" | wc -c)
  printf '%s\t%s\t%d bytes\t%d bytes gzipped\n' "$platform" "$(basename "$archive")" "$(stat -c %s "$archive")" "$gz" | tee -a "$out/sizes.txt"
done
# All three in one OCI archive (an image index): for registries and
# tools that take OCI layouts (skopeo copy oci-archive:FILE docker://...).
oci=$out/osgate-$VERSION.oci.tar
rm -f "$oci"
$podman manifest push -q --all "osgate:$VERSION" "oci-archive:$oci"
echo "built osgate:$VERSION (manifest list of $($podman manifest inspect "osgate:$VERSION" | grep -c '"digest"') images); archives in $out"
