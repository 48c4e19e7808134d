#!/usr/bin/env bash
# The test command: installs what the suite needs, then runs lint, types and every test.
#   bash scripts/test.sh            # the whole suite
#   bash scripts/test.sh tests/unit # pytest arguments pass through
# Uses PostgreSQL at ACD_TEST_DATABASE_URL and Redis at ACD_TEST_REDIS_URL (defaults
# below); where either is unreachable it starts a throwaway server from the installed
# binaries, and stops exactly that server (by PID) at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# ---- 1. Python and the locked dependencies -------------------------------------------
EXTRAS='[test,dev]'
. scripts/bootstrap.sh

# ---- 2. system tools the suite uses (Debian packages) ---------------------------------
need_pkgs=()
command -v promtool >/dev/null 2>&1 || need_pkgs+=(prometheus)
command -v amtool >/dev/null 2>&1 || need_pkgs+=(prometheus-alertmanager)  # checks deploy/alertmanager
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need_pkgs+=(docker-compose)
command -v espeak-ng >/dev/null 2>&1 || need_pkgs+=(espeak-ng)  # acd prompts
command -v sox >/dev/null 2>&1 || need_pkgs+=(sox)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)  # the wallboard test (headless)
command -v chromedriver >/dev/null 2>&1 || need_pkgs+=(chromium-driver)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    die "missing tools; install the Debian packages: ${need_pkgs[*]} (as root: apt-get install ${need_pkgs[*]})"
  fi
fi

# ---- 3. PostgreSQL and Redis ---------------------------------------------------------
export ACD_TEST_DATABASE_URL=${ACD_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}
export ACD_TEST_REDIS_URL=${ACD_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
SCRATCH=""
PG_DATA=""
REDIS_PID=""
cleanup() {
  if [ -n "$PG_DATA" ]; then
    runas "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; fi
  if [ -n "$SCRATCH" ]; then rm -rf "$SCRATCH"; fi
}
trap cleanup EXIT
runas() {
  # initdb and postgres refuse to run as root.
  if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}
free_port() { python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if ! python scripts/services.py probe-postgres "$ACD_TEST_DATABASE_URL"; then
  PG_BIN=$(dirname "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -n1)")
  [ -x "$PG_BIN/initdb" ] || die "no PostgreSQL at $ACD_TEST_DATABASE_URL and no initdb to start one (Debian: apt-get install postgresql), or set ACD_TEST_DATABASE_URL"
  PG_USER=$(id -un); [ "$(id -u)" = 0 ] && PG_USER=postgres
  id "$PG_USER" >/dev/null 2>&1 || die "running as root needs a 'postgres' user to start a throwaway PostgreSQL (apt-get install postgresql)"
  SCRATCH=$(mktemp -d /tmp/acd-test-XXXXXX); chmod 755 "$SCRATCH"
  PG_DATA=$SCRATCH/pg; mkdir -p "$PG_DATA"; chown "$PG_USER" "$PG_DATA" 2>/dev/null || true
  port=$(free_port)
  say "no PostgreSQL at $ACD_TEST_DATABASE_URL; starting a throwaway one on port $port"
  runas "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust --no-sync >/dev/null
  runas "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -o "-p $port -k $PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off" -l "$PG_DATA/log" start >/dev/null
  runas "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -qc 'CREATE DATABASE test' >/dev/null
  export ACD_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/test"
fi
if ! python scripts/services.py probe-redis "$ACD_TEST_REDIS_URL"; then
  command -v redis-server >/dev/null 2>&1 || die "no Redis at $ACD_TEST_REDIS_URL and no redis-server to start one (Debian: apt-get install redis-server), or set ACD_TEST_REDIS_URL"
  [ -n "$SCRATCH" ] || { SCRATCH=$(mktemp -d /tmp/acd-test-XXXXXX); chmod 755 "$SCRATCH"; }
  port=$(free_port)
  say "no Redis at $ACD_TEST_REDIS_URL; starting a throwaway one on port $port"
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$SCRATCH" >"$SCRATCH/redis.log" 2>&1 &
  REDIS_PID=$!
  export ACD_TEST_REDIS_URL="redis://127.0.0.1:$port/15"
  python scripts/services.py wait-redis "$ACD_TEST_REDIS_URL" || die "throwaway Redis did not start (see $SCRATCH/redis.log)"
fi

# ---- 4. lint, types, tests ------------------------------------------------------------
# Where a C compiler and the Python headers are, the parser's C speed-up must have been
# built (setup.py makes it optional so that an install elsewhere still works); a test
# checks it.
if { command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1; } &&
   python -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  export ACD_REQUIRE_SPEEDUPS=1
fi
say "ruff"
ruff check app tests bench migrations scripts
ruff format --check app tests bench migrations/env.py scripts
say "mypy (strict, app/)"
mypy
say "pytest (PostgreSQL: $(python scripts/services.py redact "$ACD_TEST_DATABASE_URL"), Redis: $ACD_TEST_REDIS_URL)"
# Two workers (pytest-xdist), each with its own PostgreSQL database and Redis database
# (tests/conftest.py): the end-to-end tests run in real time against the simulated PBX
# and mostly wait on it. ACD_TEST_WORKERS=0 runs everything in this one process.
workers=${ACD_TEST_WORKERS:-2}
if [ "$workers" = 0 ]; then
  python -m pytest "$@"
else
  python -m pytest -n "$workers" "$@"
fi
