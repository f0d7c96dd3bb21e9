#!/usr/bin/env bash
# Installs what osgate needs on a Debian machine, and only what is missing.
#   scripts/install-deps.sh run    Mosquitto, for `make run`
#   scripts/install-deps.sh test   every real peer the tests start
set -euo pipefail
cd "$(dirname "$0")/.."

want=(mosquitto mosquitto-clients)
if [ "${1:-run}" = test ]; then
  # python3-pymodbus only recommends python3-serial-asyncio (which pulls
  # python3-serial), and its server imports both: name them, since the
  # install below skips recommends.
  # systemd-analyze checks deploy/systemd/osgate.service.
  # chromium (headless) drives the technician's pages (appliance/ui).
  want+=(nginx socat python3-pymodbus python3-serial-asyncio systemd chromium)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  # Debian starts a mosquitto service on 127.0.0.1:1883 when it installs the
  # package; osgate runs its own managed broker there, so keep the service
  # off (policy-rc.d tells the package not to start it).
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  $sudo rm -f /usr/sbin/policy-rc.d
  if command -v systemctl >/dev/null && [[ " ${missing[*]} " == *" mosquitto "* ]]; then
    $sudo systemctl disable --now mosquitto >/dev/null 2>&1 || true
  fi
fi

# chronyd is the NTP server the clock's tests ask (appliance/clock). Debian's
# chrony package is unpacked, not installed: installing it would replace the
# machine's own time service (systemd-timesyncd). Its libraries are in every
# Debian 12 install.
chrony_dir=/opt/osgate-test/chrony
if [ "${1:-run}" = test ] && ! command -v chronyd >/dev/null && [ ! -x /usr/sbin/chronyd ] \
   && [ ! -x "$chrony_dir/usr/sbin/chronyd" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "unpacking Debian's chrony into $chrony_dir (for the clock's tests)"
  tmp=$(mktemp -d)
  chmod 755 "$tmp"   # apt's download user must write there
  (cd "$tmp" && apt-get download -qq chrony 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  ls "$tmp"/chrony_*.deb >/dev/null
  $sudo mkdir -p "$chrony_dir"
  $sudo dpkg -x "$tmp"/chrony_*.deb "$chrony_dir"
  rm -rf "$tmp"
fi

if [ "${1:-run}" = test ] && [ -f drivers/zwave/testdata/mock/package-lock.json ] \
   && [ ! -d drivers/zwave/testdata/mock/node_modules ]; then
  echo "installing the zwave-js mock controller (npm ci)"
  npm ci --prefix drivers/zwave/testdata/mock --no-audit --no-fund --loglevel=error
fi
