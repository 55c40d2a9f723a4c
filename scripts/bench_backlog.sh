#!/usr/bin/env bash
# Offline backlog benchmarks (figures beside a baseline measured in the same run).
#
# KSEF_BENCH_MODE=single (default): 10,000 offline invoices queued in a throwaway copy of the
#   demo database (scripts/setup.sh --no-run creates it), updated to this checkout, flushed by the
#   submission engine inside `odoo shell`; baseline: interactive sessions only
#   (scripts/bench_backlog.py).  KSEF_BENCH_N (10000), KSEF_BENCH_BASELINE_SECONDS (60)
#
# KSEF_BENCH_MODE=multi: 100,000 offline invoices over 3 Polish companies flushed by Odoo's real
#   cron runner in a real server (prefork: --workers 2 --max-cron-threads 2) against the
#   simulator with production rate limits, beside the 10,000-invoice single-company flush made by
#   the same server and script in the same run (scripts/bench_backlog_multi.py).  The backlog is
#   built ONCE, through the ORM as a user makes it (scripts/bench_backlog_build.py, several
#   processes), into a kept template database; each run copies it (createdb -T + its filestore,
#   hard links), updates the add-on from this checkout (-u l10n_pl_ksef) and only flushes.
#   KSEF_BENCH_TEMPLATE     template database (ksef_bench100k_tpl); built when missing
#   KSEF_BENCH_REBUILD=1    drop and build the template again (an interrupted build, database
#                           <template>_building, otherwise resumes where it stopped)
#   KSEF_BENCH_BUILD_ONLY=1 build the template, measure nothing
#   KSEF_BENCH_N            invoices of the template (100000; only read when building)
#   KSEF_BENCH_BASELINE_N   invoices of the single-company baseline flush (10000; 0 skips it)
#   KSEF_BENCH_SKIP_MULTI=1 only the baseline flush
#   KSEF_BENCH_WORKERS (2), KSEF_BENCH_CRON_THREADS (2), KSEF_BENCH_PORT (Odoo's HTTP port, 18469)
#   KSEF_BENCH_LIMIT_CRON   --limit-time-real-cron of the server (default: Odoo's, 120 s real)
#   KSEF_BENCH_LIMIT_CPU    --limit-time-cpu of the server (default: Odoo's, 60 s CPU); the engine
#                           keeps each run within them and hands over to the next run at once
#   KSEF_BENCH_PROFILE=1    cProfile every cron job (profiles beside the counters, see LOGDIR)
#   KSEF_BENCH_TIMEOUT      give up a flush after this many seconds (1800)
#   KSEF_BENCH_KEEP=1       keep the run databases (ksef_bench_run_*) for inspection
#   KSEF_BENCH_LOGDIR       keep the server, simulator and counter logs of the runs under this folder
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/scripts/lib.sh"
ensure_postgres
export KSEF_SHARED="${KSEF_SHARED:-$(cd "$here/.." && pwd)/shared}"
addons=$(make_addons_dir "$here")
addons_path=$(odoo_addons_path "$addons")

if [ "${KSEF_BENCH_MODE:-single}" = single ]; then
  db="ksef_bench_backlog_$$"
  createdb -T "${KSEF_DEMO_DB:-ksef_demo}" "$db"
  trap 'dropdb --if-exists "$db"' EXIT
  odoo_cmd -d "$db" --addons-path="$addons_path" -u l10n_pl_ksef --stop-after-init \
    --log-level=warn --no-http --max-cron-threads=0
  odoo_cmd shell -d "$db" --addons-path="$addons_path" --log-level=warn --no-http \
    --max-cron-threads=0 < "$here/scripts/bench_backlog.py"
  exit 0
fi

# ---- multi ------------------------------------------------------------------------------------
tpl="${KSEF_BENCH_TEMPLATE:-ksef_bench100k_tpl}"
total="${KSEF_BENCH_N:-100000}"
filestore_root=$("$KSEF_PY" -c 'from odoo.tools import config; print(config.filestore(""))' 2>/dev/null \
  || echo "$HOME/.local/share/Odoo/filestore")
filestore_root="${filestore_root%/}"
db_exists() { [ "$(psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ]; }
shell_in() { odoo_cmd shell -d "$1" --addons-path="$addons_path" --log-level=warn --no-http --max-cron-threads=0; }
copy_db() {   # copy_db FROM TO: the database and its filestore (hard links: Odoo never rewrites a stored file)
  createdb -T "$1" "$2"
  if [ -d "$filestore_root/$1" ]; then
    mkdir -p "$filestore_root"
    cp -al "$filestore_root/$1" "$filestore_root/$2"
  fi
}
drop_db() { dropdb --if-exists "$1"; rm -rf "${filestore_root:?}/$1"; }

build_template() {
  local build="${tpl}_building" nips=(5265877635 7770000005 9510000009) pids=() i count
  if db_exists "$build"; then   # an interrupted build resumes (every chunk is committed)
    log "resuming the build in $build"
  else
    copy_db "${KSEF_DEMO_DB:-ksef_demo}" "$build"
    odoo_cmd -d "$build" --addons-path="$addons_path" -u l10n_pl_ksef --stop-after-init --log-level=warn \
      --no-http --max-cron-threads=0
  fi
  KSEF_BENCH_STEP=companies shell_in "$build" < "$here/scripts/bench_backlog_build.py"
  local started=$SECONDS
  # one process per company: postings of one journal are serialized by its sequence anyway
  for i in 0 1 2; do
    count=$(( total / 3 + (i < total % 3 ? 1 : 0) ))
    KSEF_BENCH_STEP=invoices KSEF_BENCH_COMPANY=${nips[$i]} KSEF_BENCH_COUNT=$count \
      shell_in "$build" < "$here/scripts/bench_backlog_build.py" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
  local made
  made=$(psql -d "$build" -Atc "SELECT count(*) FROM account_move WHERE l10n_pl_ksef_state = 'offline'")
  [ "$made" = "$total" ] || { log "template build made $made offline invoices, not $total"; exit 1; }
  log "backlog of $made offline invoices built in $(( SECONDS - started )) s"
  psql -d postgres -qc "ALTER DATABASE \"$build\" RENAME TO \"$tpl\""
  [ -d "$filestore_root/$build" ] && mv "$filestore_root/$build" "$filestore_root/$tpl"
}

if [ "${KSEF_BENCH_REBUILD:-0}" = 1 ]; then drop_db "$tpl"; drop_db "${tpl}_building"; fi
db_exists "$tpl" || build_template
[ "${KSEF_BENCH_BUILD_ONLY:-0}" = 1 ] && exit 0

runs=()
cleanup() { [ "${KSEF_BENCH_KEEP:-0}" = 1 ] || for r in "${runs[@]}"; do drop_db "$r"; done; }
trap cleanup EXIT
prepare_run() {   # prepare_run NAME: a fresh copy of the template on this checkout's add-on
  drop_db "$1"
  copy_db "$tpl" "$1"
  runs+=("$1")
  odoo_cmd -d "$1" --addons-path="$addons_path" -u l10n_pl_ksef --stop-after-init --log-level=warn \
    --no-http --max-cron-threads=0
}
baseline_db="ksef_bench_run_base_$$"
multi_db="ksef_bench_run_multi_$$"
if [ "${KSEF_BENCH_BASELINE_N:-10000}" != 0 ]; then prepare_run "$baseline_db"; fi
if [ "${KSEF_BENCH_SKIP_MULTI:-0}" != 1 ]; then prepare_run "$multi_db"; fi
"$KSEF_PY" "$here/scripts/bench_backlog_multi.py" --baseline-db "$baseline_db" --multi-db "$multi_db" \
  --addons-path "$addons_path" --load-dir "$here/scripts/bench_sqlcount_addon"
