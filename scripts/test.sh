#!/usr/bin/env bash
# The test command: lint, the pure ksef/ core under pytest, then the add-on's Odoo tests under
# Odoo's own runner on a fresh database, then the engine drill (real worker processes killed
# and run concurrently on committed data).  Ends with one line "N passed, N failed" and exits
# non-zero on any failure or error.  Run scripts/setup.sh --no-run once before.
#   KSEF_TEST_TAGS  Odoo --test-tags (default /l10n_pl_ksef,/l10n_pl_ksef_edi)
#   KSEF_EXTRA_ADDONS  folders (comma-separated; default $KSEF_HOME/../ksef-extra-addons) searched
#                   for Odoo's l10n_pl_edi when Odoo's own source lacks it: the bridge's tests
#                   then run in a second database where it arrives by auto-install
#   KSEF_SKIP_LINT=1 / KSEF_SKIP_CORE=1 / KSEF_SKIP_ODOO=1 / KSEF_SKIP_DRILL=1  leave a step out (development)
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/scripts/lib.sh"
export KSEF_SHARED="${KSEF_SHARED:-$(cd "$here/.." && pwd)/shared}"
[ -x "$KSEF_PY" ] || { log "no environment at $KSEF_VENV: run scripts/setup.sh --no-run first"; exit 2; }
work=$(mktemp -d)
drill_template=""
trap 'rm -rf "$work"; [ -z "$drill_template" ] || dropdb --if-exists "$drill_template" >/dev/null 2>&1' EXIT
passed=0; failed=0

# 0. Lint (ruff, pylint-odoo, XML checks: scripts/lint.sh), counted as one check.
if [ "${KSEF_SKIP_LINT:-0}" != 1 ]; then
  log "lint (scripts/lint.sh)"
  if bash "$here/scripts/lint.sh" > "$work/lint.out" 2>&1; then
    passed=$((passed + 1))
  else
    cat "$work/lint.out"; log "lint: FAILED"; failed=$((failed + 1))
  fi
fi

# 1. The pure core.
if [ "${KSEF_SKIP_CORE:-0}" != 1 ]; then
  log "pytest ksef/tests"
  (cd "$here" && "$KSEF_PY" -m pytest -q -p no:cacheprovider --junitxml="$work/core.xml" ksef/tests)
  read -r p f < <("$KSEF_PY" - "$work/core.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skip = sum(int(s.get("skipped", 0)) for s in suites)
print(t - bad - skip, bad + (1 if t == 0 else 0))
PY
)
  passed=$((passed + p)); failed=$((failed + f))
fi

# 2. The Odoo tests, on a fresh database that is dropped afterwards.
if [ "${KSEF_SKIP_ODOO:-0}" != 1 ]; then
  ensure_postgres
  db="ksef_test_$$_$(date +%s)"
  addons=$(KSEF_ADDONS_DIR="$work/addons" make_addons_dir "$here")
  log "Odoo tests on database $db"
  odoo_cmd -d "$db" --addons-path="$(KSEF_EXTRA_ADDONS='' odoo_addons_path "$addons")" -i l10n_pl_ksef \
    --test-enable --test-tags "${KSEF_TEST_TAGS:-/l10n_pl_ksef,/l10n_pl_ksef_edi}" --without-demo=all \
    --stop-after-init --http-interface=127.0.0.1 --http-port="$("$KSEF_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')" \
    --log-level=test --max-cron-threads=0 2>&1 | tee "$work/odoo.log" | grep -E --line-buffered ' (ERROR|CRITICAL|WARNING) |FAIL:|ERROR:|tests when loading|post-tests in|Ran [0-9]+ tests' || true
  # The drill (step 3) starts from a copy of this installed database: cheaper than installing.
  if [ "${KSEF_SKIP_DRILL:-0}" != 1 ] && createdb -T "$db" "ksef_drill_tpl_$$" >/dev/null 2>&1; then
    drill_template="ksef_drill_tpl_$$"
  fi
  dropdb --if-exists "$db" >/dev/null 2>&1 || true
  # Show the tracebacks of what failed (the filter above shows first lines only).
  "$KSEF_PY" - "$work/odoo.log" <<'PY'
import re, sys
records = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ )", open(sys.argv[1], encoding="utf-8", errors="replace").read())
for record in records:
    if re.match(r"\S+ \S+ \d+ (ERROR|CRITICAL) ", record) and "\n" in record:
        print(record[:6000], file=sys.stderr)
PY
  [ -z "${KSEF_TEST_LOG:-}" ] || cp "$work/odoo.log" "$KSEF_TEST_LOG"
  read -r p f < <("$KSEF_PY" - "$work/odoo.log" <<'PY'
import re, sys
log = open(sys.argv[1], encoding="utf-8", errors="replace").read()
runs = re.findall(r"(\d+) failed, (\d+) error\(s\) of (\d+) tests", log)
total = sum(int(r[2]) for r in runs)
bad = sum(int(r[0]) + int(r[1]) for r in runs)
# A module that fails to install runs no test at all: count that as a failure.
if not runs or total == 0 or re.search(r" CRITICAL | ERROR .*(Failed to initialize|while loading|Traceback)", log) and bad == 0:
    bad += 1
print(total - min(bad, total), bad)
PY
)
  passed=$((passed + p)); failed=$((failed + f))
fi

# 2b. The bridge with Odoo's l10n_pl_edi (bridges/l10n_pl_ksef_edi). With a current Odoo 18 it
# is in Odoo's own addons and step 2 ran its tests; otherwise a folder of extra addons may
# hold it: a second database where it arrives by auto-install with l10n_pl_ksef.
if [ "${KSEF_SKIP_ODOO:-0}" != 1 ]; then
  extra="${KSEF_EXTRA_ADDONS:-$(dirname "$KSEF_HOME")/ksef-extra-addons}"
  odoo_edi=$(find_addon "" l10n_pl_edi)
  edi_dir=$(find_addon "$extra" l10n_pl_edi)
  if [ -n "$odoo_edi" ]; then
    log "bridge tests: l10n_pl_edi is in Odoo's own addons ($odoo_edi), they ran above"
  elif [ -z "$edi_dir" ]; then
    log "bridge tests SKIPPED: Odoo's l10n_pl_edi is neither in Odoo's addons nor in $extra (set KSEF_EXTRA_ADDONS)"
  else
    ensure_postgres
    db="ksef_test_edi_$$_$(date +%s)"
    addons=$(KSEF_ADDONS_DIR="$work/addons" make_addons_dir "$here")
    log "bridge tests with l10n_pl_edi from $edi_dir on database $db"
    KSEF_EXTRA_ADDONS="$extra" odoo_cmd -d "$db" --addons-path="$(KSEF_EXTRA_ADDONS="$extra" odoo_addons_path "$addons")" \
      -i l10n_pl_ksef --test-enable --test-tags "/l10n_pl_ksef_edi,/l10n_pl_ksef:TestKsefEdiCoexistence,/l10n_pl_ksef:TestKsefOnline,/l10n_pl_ksef:TestDrill" \
      --without-demo=all --stop-after-init --http-interface=127.0.0.1 \
      --http-port="$("$KSEF_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')" \
      --log-level=test --max-cron-threads=0 2>&1 | tee "$work/edi.log" | grep -E --line-buffered ' (ERROR|CRITICAL) |FAIL:|ERROR:|tests when loading|Ran [0-9]+ tests' || true
    dropdb --if-exists "$db" >/dev/null 2>&1 || true
    read -r p f < <("$KSEF_PY" - "$work/edi.log" <<'PY'
import re, sys
log = open(sys.argv[1], encoding="utf-8", errors="replace").read()
runs = re.findall(r"(\d+) failed, (\d+) error\(s\) of (\d+) tests", log)
total = sum(int(r[2]) for r in runs)
bad = sum(int(r[0]) + int(r[1]) for r in runs)
# the bridge must have been installed by auto-install and its tests run: none is a failure
if "l10n_pl_ksef_edi" not in log or not runs or total == 0 or re.search(r" CRITICAL ", log) and bad == 0:
    bad += 1
print(total - min(bad, total), bad)
PY
)
    passed=$((passed + p)); failed=$((failed + f))
  fi
fi

# 3. The engine drill: SIGKILLed and concurrent cron workers, exactly-once on committed data.
if [ "${KSEF_SKIP_DRILL:-0}" != 1 ]; then
  ensure_postgres
  log "engine drill (scripts/engine_drill.py)"
  drill_args=()
  [ -z "$drill_template" ] || drill_args=(--template "$drill_template")
  "$KSEF_PY" "$here/scripts/engine_drill.py" "${drill_args[@]}" 2>&1 | tee "$work/drill.out" \
    | sed -uE 's/^([0-9]+ passed, [0-9]+ failed)$/drill: \1/'
  # its last "N passed, N failed" line; none at all (a crash) counts as one failure
  read -r p f < <(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$work/drill.out" | tail -1; echo 0 1)
  passed=$((passed + p)); failed=$((failed + f))
  [ -z "$drill_template" ] || dropdb --if-exists "$drill_template" >/dev/null 2>&1 || true
  drill_template=""
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
