#!/usr/bin/env bash
# Refresh the README screenshots: runs the browser tours (tests/test_tours.py, Chromium driven by
# Odoo's test runner against the KSeF simulator) with KSEF_SCREENSHOTS_DIR set, so that their key
# moments are saved as PNG files in static/description/screenshots (1280x800 viewport; the printed
# invoice is its PDF page with both QR codes).  Run scripts/setup.sh --no-run once before.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/static/description/screenshots"
mkdir -p "$out"
KSEF_SCREENSHOTS_DIR="$out" KSEF_SKIP_CORE=1 KSEF_SKIP_DRILL=1 \
  KSEF_TEST_TAGS="${KSEF_TEST_TAGS:-/l10n_pl_ksef:TestKsefTours,/l10n_pl_ksef:TestKsefDrillTour}" bash "$here/scripts/test.sh"
ls -l "$out"
