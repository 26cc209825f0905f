#!/usr/bin/env bash
# Installs what the tests need (system packages, .venv with the test extras) and runs
# lint, type checks and the whole suite, unit and real-kernel integration tiers.
# Run as root: the integration tier builds network namespaces.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # root tools (nft, sshd, conntrack) live here
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
# the real consumers of ctdrill's outputs: chromium (HTML), promtool (Prometheus text),
# systemd-analyze (units; part of systemd); node_exporter scraped by Prometheus (analyze --prometheus)
TEST_PACKAGES=(chromium prometheus prometheus-node-exporter systemd)
missing=()
for p in "${TEST_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
.venv/bin/ruff check ctdrill tests bench playbooks
.venv/bin/mypy
# leftovers from an earlier, killed run would make the lab tests lie: clear ours first
.venv/bin/ctdrill lab down --all >/dev/null
# the Docker tier (tests/docker) needs ctdrill's own engine: started here, stopped at exit
trap 'bash scripts/docker-engine.sh stop' EXIT
bash scripts/docker-engine.sh start >/dev/null
.venv/bin/pytest -p no:cacheprovider "$@"
