#!/usr/bin/env bash
# Installs what the tests need (system packages, .venv with the test extras) and runs
# lint, type checks and the whole suite, unit and real-kernel integration tiers.
# Run as root: the integration tier builds network namespaces.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # root tools (nft, sshd, conntrack) live here
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
dpkg -s chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }  # headless report test
.venv/bin/ruff check ctdrill tests bench
.venv/bin/mypy
# leftovers from an earlier, killed run would make the lab tests lie: clear ours first
.venv/bin/ctdrill lab down --all >/dev/null
# the Docker tier (tests/docker) needs ctdrill's own engine: started here, stopped at exit
trap 'bash scripts/docker-engine.sh stop' EXIT
bash scripts/docker-engine.sh start >/dev/null
.venv/bin/pytest -p no:cacheprovider "$@"
