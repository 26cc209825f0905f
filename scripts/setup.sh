#!/usr/bin/env bash
# Installs everything ctdrill needs on a fresh Debian 12 machine (run as root):
# the system packages the lab and the drills use, and a virtualenv in .venv
# with ctdrill itself. Idempotent: running it again only fills what is missing.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --dev    also the test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "ctdrill setup: run as root (it installs system packages and the lab needs root)." >&2
  exit 2
fi

SYSTEM_PACKAGES=(
  nftables conntrack iproute2 iputils-ping openssh-server openssh-client
  procps kmod util-linux python3 python3-venv python3-dev gcc
)
missing=()
for p in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "ctdrill setup: installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
echo "ctdrill setup: ready ($(.venv/bin/ctdrill --version))"
