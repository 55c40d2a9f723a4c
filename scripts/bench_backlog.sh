#!/usr/bin/env bash
# Flush of a 10,000-invoice offline backlog through the submission engine vs the interactive
# baseline (scripts/bench_backlog.py). Works on a throwaway copy of the demo database
# (scripts/setup.sh --no-run creates it), updated to this checkout's version of the add-on.
#   KSEF_BENCH_N (10000), KSEF_BENCH_BASELINE_SECONDS (60)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/scripts/lib.sh"
ensure_postgres
export KSEF_SHARED="${KSEF_SHARED:-$(cd "$here/.." && pwd)/shared}"
db="ksef_bench_backlog_$$"
createdb -T "${KSEF_DEMO_DB:-ksef_demo}" "$db"
trap 'dropdb --if-exists "$db"' EXIT
addons=$(make_addons_dir "$here")
odoo_cmd -d "$db" --addons-path="$(odoo_addons_path "$addons")" -u l10n_pl_ksef --stop-after-init \
  --log-level=warn --no-http --max-cron-threads=0
odoo_cmd shell -d "$db" --addons-path="$(odoo_addons_path "$addons")" --log-level=warn --no-http \
  --max-cron-threads=0 < "$here/scripts/bench_backlog.py"
