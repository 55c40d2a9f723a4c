# Shared by setup.sh, test.sh and the benchmarks.
if [ "$(id -u)" = 0 ]; then
  KSEF_HOME="${KSEF_HOME:-/opt/l10n_pl_ksef}"
else
  KSEF_HOME="${KSEF_HOME:-$HOME/.local/share/l10n_pl_ksef}"
fi
KSEF_VENV="${KSEF_VENV:-$KSEF_HOME/venv}"
KSEF_PY="$KSEF_VENV/bin/python"

log() { echo "[l10n_pl_ksef] $*" >&2; }

ensure_postgres() {
  if ! pg_isready -q 2>/dev/null; then
    log "starting PostgreSQL"
    if command -v pg_ctlcluster >/dev/null 2>&1; then
      local ver; ver=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)
      ${SUDO:-} pg_ctlcluster "$ver" main start || true
    else
      ${SUDO:-} service postgresql start || true
    fi
    for _ in $(seq 30); do pg_isready -q && break; sleep 1; done
  fi
  local me; me=$(id -un)
  if ! psql -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    log "creating PostgreSQL role $me"
    ${SUDO:-} su postgres -c "createuser -s '$me'" 2>/dev/null || ${SUDO:-} -u postgres createuser -s "$me"
  fi
}

# A temporary addons folder in which the checkout is called l10n_pl_ksef, whatever its own name.
make_addons_dir() {
  local repo="$1" dir
  dir="${KSEF_ADDONS_DIR:-$KSEF_HOME/addons-$(echo "$repo" | md5sum | cut -c1-8)}"
  mkdir -p "$dir"
  ln -sfn "$repo" "$dir/l10n_pl_ksef"
  echo "$dir"
}

# Odoo's addons, the add-on, its bridges (bridges/: installable only beside the module they
# bridge to, e.g. Odoo's l10n_pl_edi) and $KSEF_EXTRA_ADDONS (comma-separated folders).
odoo_addons_path() {
  local odoo_dir
  odoo_dir=$("$KSEF_PY" -c 'import odoo, os; print(os.path.dirname(os.path.dirname(odoo.__file__)))')
  echo "$odoo_dir/odoo/addons,$odoo_dir/addons,$1,$1/l10n_pl_ksef/bridges${KSEF_EXTRA_ADDONS:+,$KSEF_EXTRA_ADDONS}"
}

# The first folder of Odoo's own addons or of the comma-separated list $1 that holds the
# add-on $2 (e.g. l10n_pl_edi); prints nothing when none does.
find_addon() {
  local odoo_dir dir
  odoo_dir=$("$KSEF_PY" -c 'import odoo, os; print(os.path.dirname(os.path.dirname(odoo.__file__)))')
  for dir in "$odoo_dir/addons" ${1//,/ }; do
    [ -f "$dir/$2/__manifest__.py" ] && { echo "$dir"; return; }
  done
  return 0
}

odoo_cmd() { TZ=UTC "$KSEF_PY" -m odoo "$@"; }
