#!/usr/bin/env bash
# Prints p50/p95 of build+validate+freeze vs a plain Odoo post for KSEF_BENCH_N invoices (1000).
# Works on a throwaway copy of the demo database (scripts/setup.sh --no-run creates it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/scripts/lib.sh"
ensure_postgres
db="ksef_bench_$$"
createdb -T "${KSEF_DEMO_DB:-ksef_demo}" "$db"
trap 'dropdb --if-exists "$db"' EXIT
addons=$(make_addons_dir "$here")
odoo_cmd shell -d "$db" --addons-path="$(odoo_addons_path "$addons")" --log-level=warn --no-http < "$here/scripts/bench_fa3.py"
