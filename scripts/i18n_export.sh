#!/usr/bin/env bash
# Regenerate i18n/l10n_pl_ksef.pot from the add-on's code, views and data (Odoo's own exporter,
# on a database where the add-on is installed from this checkout), then merge it into
# i18n/pl.po: existing Polish translations are kept, new strings come in untranslated, strings
# that changed become "fuzzy" with their old translation as a suggestion, and strings gone from the
# code are dropped. It ends with the count of what still needs a translator:
#     pl.po: N entries, N untranslated, N fuzzy
# Translate those (remove the "#, fuzzy" line once checked) and run tests/test_i18n.py.
#   KSEF_I18N_DB   use (and update) this existing database instead of a throw-away one
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/scripts/lib.sh"
[ -x "$KSEF_PY" ] || { log "no environment at $KSEF_VENV: run scripts/setup.sh --no-run first"; exit 2; }
command -v msgmerge >/dev/null || { log "msgmerge not found: apt-get install gettext"; exit 2; }
ensure_postgres
work=$(mktemp -d)
db="${KSEF_I18N_DB:-ksef_i18n_$$}"
cleanup() { rm -rf "$work"; [ -n "${KSEF_I18N_DB:-}" ] || dropdb --if-exists "$db" >/dev/null 2>&1 || true; }
trap cleanup EXIT
addons=$(KSEF_ADDONS_DIR="$work/addons" make_addons_dir "$here")
port=$("$KSEF_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
common=(-d "$db" --addons-path="$(odoo_addons_path "$addons")" --stop-after-init --max-cron-threads=0
        --http-interface=127.0.0.1 --http-port="$port" --log-level=warn)
if [ -n "${KSEF_I18N_DB:-}" ]; then
  log "updating l10n_pl_ksef on database $db"
  odoo_cmd "${common[@]}" -u l10n_pl_ksef
else
  log "installing l10n_pl_ksef on a throw-away database $db"
  odoo_cmd "${common[@]}" -i l10n_pl_ksef --without-demo=all
fi
log "exporting the template"
odoo_cmd "${common[@]}" --i18n-export="$work/l10n_pl_ksef.pot" --modules=l10n_pl_ksef
cp "$work/l10n_pl_ksef.pot" "$here/i18n/l10n_pl_ksef.pot"
log "merging into i18n/pl.po"
# Locations (#: model:.../code:...) must stay: Odoo reads them to know where a term belongs.
# --previous keeps the old msgid of a fuzzy entry beside its suggested translation.
msgmerge --quiet --previous --width=78 --output-file="$work/pl.po" \
  "$here/i18n/pl.po" "$here/i18n/l10n_pl_ksef.pot"
# Obsolete ("#~") entries are dropped, and the file is written back by polib, the library Odoo
# writes its .po files with, so its line wrapping matches the exported template (small diffs).
"$KSEF_PY" - "$work/pl.po" "$here/i18n/pl.po" <<'PY'
import sys
import polib
po = polib.pofile(sys.argv[1], wrapwidth=78)
for entry in [e for e in po if e.obsolete]:
    po.remove(entry)
po.save(sys.argv[2])
print("pl.po: %d entries, %d untranslated, %d fuzzy"
      % (len(po), len(po.untranslated_entries()), len(po.fuzzy_entries())))
PY
