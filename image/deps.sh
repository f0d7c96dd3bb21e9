#!/usr/bin/env bash
# Installs what building and booting the appliance images needs on Debian 12,
# and only what is missing:
#   qemu (TCG boot of the amd64 test image and of the Raspberry Pi image as
#   qemu's raspi3b), device-tree-compiler (fdtoverlay: what the Pi firmware does
#   with config.txt's dtoverlay lines), mtools (the FAT boot partition),
#   e2fsprogs (/perm), squashfs-tools (reading the root file system in tests),
#   a C toolchain with OpenSSL and the arm64 and armhf cross compilers
#   (static Mosquitto; armhf for the container image's linux/arm/v7),
#   dpkg-dev (apt-get source), a deb-src entry for Mosquitto's source, and
#   nginx (serves the releases of `make vm-test-ota`).
set -euo pipefail

want=(qemu-system-x86 qemu-system-arm device-tree-compiler mtools e2fsprogs squashfs-tools dosfstools
      build-essential libssl-dev gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross
      gcc-arm-linux-gnueabihf binutils-arm-linux-gnueabihf libc6-dev-armhf-cross
      dpkg-dev xz-utils ca-certificates nginx)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

src=/etc/apt/sources.list.d/osgate-deb-src.sources
updated=no
if [ ! -f "$src" ]; then
  echo "adding Debian's deb-src entry ($src) for apt-get source mosquitto"
  $sudo tee "$src" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  $sudo apt-get update -qq
  updated=yes
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  [ "$updated" = yes ] || $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
