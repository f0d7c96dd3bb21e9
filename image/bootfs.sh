#!/usr/bin/env bash
# Makes room on an image's FAT boot partition for the bootstrap config.
#
#   image/bootfs.sh IMG
#
# gok writes a boot file system sized to its contents (0 bytes free), so a
# user could not put osgate.json on it. This rewrites it as FAT16 over the
# whole boot partition (100 MB) with the same files, in the layout gokrazy's
# own FAT reader expects (one FAT, fixed root directory, contiguous files),
# and points the MBR boot code (legacy BIOS boot on PCs) at the new places
# of vmlinuz and cmdline.txt. Updates over the network rewrite the boot
# partition with gokrazy's own, full file system; that is fine: the
# bootstrap config matters on first boot only, when it is copied to /perm.
set -euo pipefail
img=${1:?usage: image/bootfs.sh IMG}
PATH=$PATH:/usr/sbin:/sbin
for t in partx mcopy mshowfat mkfs.fat od dd; do
  command -v $t >/dev/null || { echo "bootfs.sh: $t missing (run image/deps.sh)" >&2; exit 1; }
done
read -r start sectors < <(partx --show -g -n 1 -o START,SECTORS "$img")
off=$((start * 512))
export MTOOLS_SKIP_CHECK=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mcopy -s -m -n -i "$img@@$off" '::/*' "$tmp/"
[ -f "$tmp/cmdline.txt" ] || { echo "bootfs.sh: no cmdline.txt on $img's boot partition" >&2; exit 1; }
mkfs.fat -F 16 -f 1 -s 4 -r 512 -n GOKRAZY --offset="$start" "$img" $((sectors / 2)) 2>&1 | grep -v -e "^mkfs.fat" -e "block count mismatch" || true
# vmlinuz and cmdline.txt first (the MBR boot code reads them by address),
# then everything else.
(cd "$tmp" && for f in vmlinuz cmdline.txt; do [ -e "$f" ] && mcopy -m -i "$img@@$off" "$f" ::/; done
  for f in *; do case $f in vmlinuz|cmdline.txt) ;; *) mcopy -s -m -i "$img@@$off" "$f" ::/ ;; esac; done)

# Boot sector fields (FAT16): reserved sectors, FAT count, root entries,
# sectors per FAT, sectors per cluster.
u16() { od -An -tu2 -j $((off + $1)) -N2 "$img" | tr -d ' '; }
u8() { od -An -tu1 -j $((off + $1)) -N1 "$img" | tr -d ' '; }
reserved=$(u16 14); fats=$(u8 16); rootents=$(u16 17); fatsz=$(u16 22); spc=$(u8 13)
datastart=$((reserved + fats * fatsz + (rootents * 32 + 511) / 512))
lba() {
  local c
  c=$(mshowfat -i "$img@@$off" "::/$1" | sed -n 's/.*<\([0-9]*\)[->].*/\1/p')
  [ -n "$c" ] || { echo "bootfs.sh: cannot find ::/$1's first cluster" >&2; exit 1; }
  echo $((start + datastart + (c - 2) * spc))
}
le32() { local v=$1; printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((v & 255)) $((v >> 8 & 255)) $((v >> 16 & 255)) $((v >> 24 & 255)); }
if [ -f "$tmp/vmlinuz" ]; then
  vml=$(lba vmlinuz); cml=$(lba cmdline.txt)
  # gokrazy's MBR keeps the two LBAs at byte 432 (see gokrazy/internal/mbr).
  printf "$(le32 "$vml")$(le32 "$cml")" | dd of="$img" bs=1 seek=432 conv=notrunc status=none
fi
free=$(mdir -i "$img@@$off" ::/ | sed -n 's/^ *\([0-9 ]*\) bytes free.*/\1/p' | tr -d ' ')
echo "boot file system: ${free:-?} bytes free"
