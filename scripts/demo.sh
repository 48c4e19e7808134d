#!/usr/bin/env bash
# The demo command: installs the service into .venv and runs `acd demo`: the service on
# embedded defaults (SQLite, in-process live state) with a simulated PBX and agents.
#   bash scripts/demo.sh [--port 8000]
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=''
. scripts/bootstrap.sh
exec acd demo "$@"
