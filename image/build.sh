#!/usr/bin/env bash
# Builds an appliance image file with gok and formats its /perm partition.
#
#   image/build.sh amd64|rpi|INSTANCE_DIR OUT.img|OUT.gaf
#
# amd64 is the test target booted by `make vm-test`; rpi is the Raspberry Pi
# SD card image (Pi 3B+, 4, 5, CM4). The instance folders are image/amd64 and
# image/rpi; the static Mosquitto (image/build/mosquitto.<arch>, from
# image/mosquitto/build.sh) must exist. A path to another instance folder
# (one with a config.json, e.g. the one image/vmtest's TestOTA writes)
# builds that instance.
#
# OUT.gaf writes gok's OTA artifact (zip of mbr, boot, root) instead of a
# disk image, for `osgate release build`.
#
# PERM_DIR=DIR formats /perm with DIR's files in it (mkfs.ext4 -d), e.g. a
# per-device gokr-pw.txt, the update password the OTA agent uses.
#
# VERSION and BUILD_TIME (RFC 3339, UTC) are stamped into osgate as
# `make build` stamps them (the Makefile passes its own; default: git
# describe and now): gateway.status, /metrics and OTA updates see the
# version, and the clock is never restored to before the build time. An
# instance whose config sets osgate's GoBuildFlags -ldflags stamps its own.
set -euo pipefail
usage="usage: image/build.sh amd64|rpi|INSTANCE_DIR OUT.img|OUT.gaf"
inst=${1:?$usage}
out=${2:?$usage}
repo=$(cd "$(dirname "$0")/.." && pwd)
parent=$repo/image
case $inst in
  amd64) arch=amd64 ;;
  rpi) arch=arm64 ;;
  */*)
    [ -f "$inst/config.json" ] || { echo "image/build.sh: $inst/config.json missing" >&2; exit 2; }
    dir=$(cd "$inst" && pwd)
    parent=$(dirname "$dir"); inst=$(basename "$dir")
    arch=amd64; grep -q '"GOARCH=arm64"' "$dir/config.json" && arch=arm64 ;;
  *) echo "image/build.sh: unknown instance $inst (amd64, rpi or a folder)" >&2; exit 2 ;;
esac
version=${VERSION:-$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || echo dev)}
build_time=${BUILD_TIME:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
pkg=github.com/osgate/osgate/appliance
case $version$build_time in
  *[!A-Za-z0-9._:+-]*) echo "image/build.sh: VERSION and BUILD_TIME may hold letters, digits and . _ : + - only" >&2; exit 2 ;;
esac
# gok's go build inherits GOFLAGS; -X for a package without the variable
# is ignored, so gokrazy's own programs are not affected.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }\"-ldflags=-X=$pkg.Version=$version -X=$pkg.BuildTime=$build_time\""
mosq=$repo/image/build/mosquitto.$arch
[ -x "$mosq" ] || { echo "image/build.sh: $mosq missing: run make mosquitto-static" >&2; exit 1; }
command -v mkfs.ext4 >/dev/null || PATH=$PATH:/usr/sbin:/sbin
command -v mkfs.ext4 >/dev/null || { echo "image/build.sh: mkfs.ext4 missing (apt-get install e2fsprogs)" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
log=$out.log
export GOKRAZY_PARENT_DIR=$parent
if [[ $out == *.gaf ]]; then
  if ! (cd "$parent/$inst" && go tool gok -i "$inst" overwrite --gaf "${out%.gaf}.tmp.gaf") >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "image/build.sh: gok overwrite --gaf failed (full log: $log)" >&2
    exit 1
  fi
  mv "${out%.gaf}.tmp.gaf" "$out"
  echo "built $out (osgate $version, built $build_time)"
  exit 0
fi
# 1.5 GiB (1.61 GB): fits a 2 GB SD card. gok lays out boot (100 MiB), root
# A and B (500 MiB each), then /perm in the rest: about 430 MiB, well above
# gateway.disk_warn_bytes (128 MiB), below which the gateway is degraded
# (and an OTA update, confirmed on health ok, would never be kept).
size=1610612736
# gok resolves the instance's relative paths from the instance folder.
if ! (cd "$parent/$inst" && go tool gok -i "$inst" overwrite --full "$out.tmp" --target_storage_bytes=$size) >"$log" 2>&1; then
  tail -40 "$log" >&2
  echo "image/build.sh: gok overwrite failed (full log: $log)" >&2
  exit 1
fi
# gok prints the mkfs.ext4 command that formats /perm inside the file.
mkfs=$(grep -o 'mkfs.ext4 -F -E offset=[0-9]* [^ ]* [0-9]*' "$log" | head -1)
offset=$(sed -n 's/.*offset=\([0-9]*\) .*/\1/p' <<<"$mkfs")
blocks=$(awk '{print $NF}' <<<"$mkfs")
[ -n "$offset" ] && [ -n "$blocks" ] || { echo "image/build.sh: no mkfs.ext4 line in gok's output ($log)" >&2; exit 1; }
populate=()
if [ -n "${PERM_DIR:-}" ]; then populate=(-d "$PERM_DIR"); fi
mkfs.ext4 -q -F -L perm "${populate[@]}" -E offset="$offset" "$out.tmp" "$blocks"
# Room for the bootstrap config on the boot partition.
"$repo/image/bootfs.sh" "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out (osgate $version, built $build_time; /perm at byte $offset, $blocks blocks)"
