"""What the browser tours share: Chromium must really run, and the screenshots protocol.

With KSEF_SCREENSHOTS_DIR set, a tour step logs ``l10n_pl_ksef:screenshot:<name>``; the browser of
the run takes the picture through the DevTools protocol and only then lets the tour go on (the
README screenshots, see scripts/screenshots.sh). Without it the tour is let go at once."""
import base64
import importlib.util
import json
import os
import re
import subprocess
import tempfile
import unittest
from pathlib import Path

from odoo.tests.common import ChromeBrowser

SCREENSHOT_MARKER = "l10n_pl_ksef:screenshot:"


def screenshots_dir():
    """Where the tours save their screenshots, or None (the default: no screenshots)."""
    folder = os.environ.get("KSEF_SCREENSHOTS_DIR")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


class KsefTourMixin:
    """For HttpCase classes running our tours."""

    @classmethod
    def _ksef_require_browser(cls):
        """Odoo skips browser tests silently without Chromium or websocket-client: here that is
        a failure, the journeys must really run (scripts/setup.sh installs both)."""
        if importlib.util.find_spec("websocket") is None:  # Odoo's ChromeBrowser needs it
            raise AssertionError("The browser tours need the Python package websocket-client "
                                 "(requirements.txt; run scripts/setup.sh).")
        from odoo.tests.common import _find_executable
        try:
            _find_executable()
        except unittest.SkipTest:
            raise AssertionError("The browser tours need Chromium on the PATH (Debian package chromium; "
                                 "run scripts/setup.sh).") from None

    def setUp(self):
        super().setUp()
        self.screenshots = screenshots_dir()
        original = ChromeBrowser._handle_console
        case = self

        def handle_console(browser, type, args=None, stackTrace=None, **kw):  # pylint: disable=redefined-builtin
            message = args[0].get("value") if args else None
            if type == "log" and isinstance(message, str) and message.startswith(SCREENSHOT_MARKER):
                case._ksef_screenshot(browser, message[len(SCREENSHOT_MARKER):])
                return None
            return original(browser, type, args=args, stackTrace=stackTrace, **kw)

        self.patch(ChromeBrowser, "_handle_console", handle_console)

    def _ksef_screenshot(self, browser, name):
        """Runs on the browser's receiver thread: take the picture (when asked for), then tell
        the tour it may go on."""
        assert re.fullmatch(r"[\w-]+", name), name
        release = "document.body.dataset.ksefShot = %s;" % json.dumps(name)
        if not self.screenshots:
            browser._websocket_send("Runtime.evaluate", params={"expression": release})
            return
        path = self.screenshots / ("%s.png" % name)

        def save(future):
            try:
                path.write_bytes(base64.b64decode(future.result()["data"]))
                browser._logger.info("screenshot saved: %s", path)
            except Exception as error:  # noqa: BLE001 - the tour then times out on its marker, naming the step
                browser._logger.error("screenshot %s failed: %s", name, error)
                return
            browser._websocket_send("Runtime.evaluate", params={"expression": release})

        browser._websocket_send("Page.captureScreenshot", params={"format": "png"},
                                with_future=True).add_done_callback(save)

    def _ksef_pdf_screenshot(self, pdf, name, showing):
        """The page of a printed PDF that shows ``showing`` as a PNG beside the browser screenshots."""
        if not self.screenshots:
            return
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "printed.pdf"
            source.write_bytes(pdf)
            info = subprocess.run(["pdfinfo", str(source)], capture_output=True, check=True, text=True).stdout
            pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
            page = next((number for number in range(1, pages + 1) if showing in subprocess.run(
                ["pdftotext", "-f", str(number), "-l", str(number), str(source), "-"],
                capture_output=True, check=True, text=True).stdout), 1)
            subprocess.run(["pdftoppm", "-png", "-singlefile", "-f", str(page), "-l", str(page), "-scale-to", "1100",
                            str(source), str(self.screenshots / name)], check=True)
