#!/usr/bin/env bash
# Builds an appliance image file with gok and formats its /perm partition.
#
#   image/build.sh amd64|rpi OUT.img
#
# amd64 is the test target booted by `make vm-test`; rpi is the Raspberry Pi
# SD card image (Pi 3B+, 4, 5, CM4). The instance folders are image/amd64 and
# image/rpi; the static Mosquitto (image/build/mosquitto.<arch>, from
# image/mosquitto/build.sh) must exist.
set -euo pipefail
inst=${1:?usage: image/build.sh amd64|rpi OUT.img}
out=${2:?usage: image/build.sh amd64|rpi OUT.img}
repo=$(cd "$(dirname "$0")/.." && pwd)
case $inst in
  amd64) arch=amd64 ;;
  rpi) arch=arm64 ;;
  *) echo "image/build.sh: unknown instance $inst (amd64 or rpi)" >&2; exit 2 ;;
esac
mosq=$repo/image/build/mosquitto.$arch
[ -x "$mosq" ] || { echo "image/build.sh: $mosq missing: run make mosquitto-static" >&2; exit 1; }
command -v mkfs.ext4 >/dev/null || PATH=$PATH:/usr/sbin:/sbin
command -v mkfs.ext4 >/dev/null || { echo "image/build.sh: mkfs.ext4 missing (apt-get install e2fsprogs)" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
log=$out.log
export GOKRAZY_PARENT_DIR=$repo/image
# 1.2 GB: fits any SD card; gok lays out boot, root A and B, then /perm.
size=1258299392
# gok resolves the instance's relative paths from the instance folder.
if ! (cd "$repo/image/$inst" && go tool gok -i "$inst" overwrite --full "$out.tmp" --target_storage_bytes=$size) >"$log" 2>&1; then
  tail -40 "$log" >&2
  echo "image/build.sh: gok overwrite failed (full log: $log)" >&2
  exit 1
fi
# gok prints the mkfs.ext4 command that formats /perm inside the file.
mkfs=$(grep -o 'mkfs.ext4 -F -E offset=[0-9]* [^ ]* [0-9]*' "$log" | head -1)
offset=$(sed -n 's/.*offset=\([0-9]*\) .*/\1/p' <<<"$mkfs")
blocks=$(awk '{print $NF}' <<<"$mkfs")
[ -n "$offset" ] && [ -n "$blocks" ] || { echo "image/build.sh: no mkfs.ext4 line in gok's output ($log)" >&2; exit 1; }
mkfs.ext4 -q -F -L perm -E offset="$offset" "$out.tmp" "$blocks"
# Room for the bootstrap config on the boot partition.
"$repo/image/bootfs.sh" "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out (/perm at byte $offset, $blocks blocks)"
