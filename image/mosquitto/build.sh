#!/usr/bin/env bash
# Builds a static Mosquitto (TLS on) from Debian's source package for the
# appliance image: a libc-less gokrazy root has no shared libraries, and a
# static glibc has no getpwnam, so the broker runs as root (osgate's
# generated conf says "user root" when it runs as root).
#
#   image/mosquitto/build.sh amd64|arm64|armhf ...
#
# Output: image/build/mosquitto.<arch> (a build output, never committed).
# Needs: image/deps.sh (build-essential, libssl-dev, gcc-aarch64-linux-gnu,
# gcc-arm-linux-gnueabihf, dpkg-dev and a deb-src entry). The libssl of
# arm64 and armhf (32-bit ARMv7, hard float: the container image's
# linux/arm/v7) comes from Debian's packages of that architecture,
# downloaded with private apt lists and unpacked into a sysroot (dpkg's
# multiarch setup is left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$PWD/build
mkdir -p "$out"
work=$out/mosquitto-work
mkdir -p "$work"

fetch_source() {
  if [ ! -d "$work/src" ]; then
    rm -rf "$work/src.tmp" && mkdir -p "$work/src.tmp"
    (cd "$work/src.tmp" && apt-get source -qq mosquitto 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    local d
    d=$(find "$work/src.tmp" -maxdepth 1 -type d -name 'mosquitto-*' | head -1)
    [ -n "$d" ] || { echo "mosquitto: apt-get source mosquitto failed (is the deb-src entry there? run image/deps.sh)" >&2; exit 1; }
    mv "$d" "$work/src"
    rm -rf "$work/src.tmp"
  fi
}

# sysroot ARCH: Debian's libssl of ARCH unpacked into a directory; prints it.
sysroot() {
  local arch=$1 triplet=$2 sr=$work/sysroot-$1
  if [ ! -f "$sr/usr/lib/$triplet/libssl.a" ]; then
    local o=(-o APT::Architecture="$arch" -o APT::Architectures="$arch"
             -o Dir::State::Lists="$work/$arch-lists" -o Dir::Cache="$work/$arch-cache"
             -o Debug::NoLocking=1)
    mkdir -p "$work/$arch-lists/partial" "$work/$arch-cache/archives/partial" "$work/$arch-debs"
    apt-get "${o[@]}" -qq update >&2
    (cd "$work/$arch-debs" && apt-get "${o[@]}" -qq download libssl-dev libssl3 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    ls "$work/$arch-debs"/libssl-dev_*.deb "$work/$arch-debs"/libssl3_*.deb >/dev/null
    rm -rf "$sr"
    for f in "$work/$arch-debs"/*.deb; do dpkg -x "$f" "$sr"; done
  fi
  echo "$sr"
}

build() {
  local arch=$1 dir=$work/build-$1
  local mk=(WITH_CJSON=no WITH_WEBSOCKETS=no WITH_SRV=no WITH_DOCS=no WITH_SYSTEMD=no
            WITH_SHARED_LIBRARIES=no WITH_STATIC_LIBRARIES=yes WITH_CONTROL=no WITH_TLS=yes)
  rm -rf "$dir" && cp -a "$work/src" "$dir"
  case $arch in
    amd64)
      make -s -C "$dir/src" -j"$(nproc)" "${mk[@]}" LDFLAGS=-static mosquitto >"$dir.log" 2>&1 \
        || { tail -30 "$dir.log"; exit 1; }
      strip -o "$out/mosquitto.amd64.tmp" "$dir/src/mosquitto" ;;
    arm64|armhf)
      local triplet=aarch64-linux-gnu sr
      [ "$arch" = armhf ] && triplet=arm-linux-gnueabihf
      sr=$(sysroot "$arch" "$triplet")
      make -s -C "$dir/src" -j"$(nproc)" "${mk[@]}" CC="$triplet-gcc" \
        CFLAGS="-O2 -I$sr/usr/include -I$sr/usr/include/$triplet" \
        LDFLAGS="-static -L$sr/usr/lib/$triplet" mosquitto >"$dir.log" 2>&1 \
        || { tail -30 "$dir.log"; exit 1; }
      "$triplet-strip" -o "$out/mosquitto.$arch.tmp" "$dir/src/mosquitto" ;;
    *) echo "usage: $0 amd64|arm64|armhf ..." >&2; exit 2 ;;
  esac
  mv "$out/mosquitto.$arch.tmp" "$out/mosquitto.$arch"
  rm -rf "$dir"
  echo "built $out/mosquitto.$arch ($(stat -c %s "$out/mosquitto.$arch") bytes)"
}

[ $# -gt 0 ] || { echo "usage: $0 amd64|arm64|armhf ..." >&2; exit 2; }
fetch_source
for a in "$@"; do build "$a"; done
