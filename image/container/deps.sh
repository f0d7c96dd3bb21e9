#!/usr/bin/env bash
# Installs what building and testing the container image needs on Debian 12,
# and only what is missing: podman with runc (crun refuses the hybrid cgroups
# of some CI machines), the CNI plugins and iptables for its bridge network
# and published ports, and the CA bundle the image carries. The static
# Mosquitto's toolchain comes from image/deps.sh.
set -euo pipefail

want=(podman runc containernetworking-plugins iptables ca-certificates)

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
