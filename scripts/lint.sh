#!/usr/bin/env bash
# Lint: ruff, pylint with pylint-odoo (OCA checks) and XML checks, as configured in
# .pre-commit-config.yaml, over every file of the repository. Installs pre-commit into the
# add-on's virtualenv when it is missing (the hooks get their own environments, from PyPI).
# Extra arguments go to `pre-commit run` (e.g. `bash scripts/lint.sh ruff`).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/scripts/lib.sh"
if [ -x "$KSEF_VENV/bin/pre-commit" ]; then
  pre_commit="$KSEF_VENV/bin/pre-commit"
elif command -v pre-commit >/dev/null 2>&1; then
  pre_commit=$(command -v pre-commit)
elif [ -x "$KSEF_PY" ]; then
  log "installing pre-commit into $KSEF_VENV"
  "$KSEF_PY" -m pip install --quiet pre-commit
  pre_commit="$KSEF_VENV/bin/pre-commit"
else
  log "no environment at $KSEF_VENV: run scripts/setup.sh --no-run first (or install pre-commit)"
  exit 2
fi
cd "$here"
exec "$pre_commit" run --all-files "$@"
