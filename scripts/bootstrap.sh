# Sourced by scripts/demo.sh and scripts/test.sh: a .venv with the locked dependencies.
# Usage: EXTRAS='[test,dev]' . scripts/bootstrap.sh
say() { printf '\n== %s\n' "$*"; }
die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }

PY=""
for cand in python3.13 python3.12 python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    PY=$(command -v "$cand"); break
  fi
done
[ -n "$PY" ] || die "Python >= 3.11 is needed (Debian: apt-get install python3 python3-venv)"
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PY"
  "$PY" -m venv .venv || die "python venv failed (Debian: apt-get install python3-venv)"
fi
_stamp=.venv/.acd-installed${EXTRAS:-}
_want=$(cat pyproject.toml constraints.txt setup.py app/ami/_speedups.c | sha256sum | cut -c1-16)
if [ "$(cat "$_stamp" 2>/dev/null)" != "$_want" ]; then
  say "installing the project and its locked dependencies"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  # setuptools tells every editable install to mind folders named like the package: an
  # information, not a problem here (only `app` is the package); keep the output quiet.
  PYTHONWARNINGS='ignore:Editable installation' \
    .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".${EXTRAS:-}"
  echo "$_want" > "$_stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
