"""The issue's "done when": a new administrator runs a drill from the UI and reads its report.

An Odoo tour (static/tests/tours/ksef_drill_tour.js) in Chromium, logged in as a KSeF manager who
is no Settings administrator: Invoicing > Configuration > KSeF > Drills, a new drill with a short
script, Start, the connection is lost, a customer invoice is issued as usual and posted to KSeF
(the offline confirmation, offline24), the rest of the script, End, the report on the form. The
drill's simulator is a real subprocess on a free 127.0.0.1 port; the company's own KSeF is
KsefSimulatorCommon's simulator, which must never see the drill invoice.

With KSEF_SCREENSHOTS_DIR set, the report form is saved there as drill-report.png (a tour step
logs a marker, the browser of the run takes the picture through the DevTools protocol and only
then lets the tour go on; the same protocol as tests/test_tours.py)."""
import base64
import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import requests

from odoo import Command
from odoo.tests import HttpCase, tagged
from odoo.tests.common import ChromeBrowser

from ..ksef.simulator import start_subprocess, stop_subprocess
from .common import KsefOfflineTestMixin, KsefSimulatorCommon, shared_dir
from .test_drill import COMPANY_SETTINGS

SCREENSHOT_MARKER = "l10n_pl_ksef:screenshot:"


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefDrillTour(KsefOfflineTestMixin, KsefSimulatorCommon, HttpCase):
    browser_size = "1366x900"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if importlib.util.find_spec("websocket") is None:  # Odoo would skip the tour silently
            raise AssertionError("The browser tours need the Python package websocket-client (requirements.txt).")
        from odoo.tests.common import _find_executable
        try:
            _find_executable()
        except unittest.SkipTest:
            raise AssertionError("The browser tours need Chromium on the PATH (Debian package chromium).") from None
        # The company's real connection has an Offline certificate: it must come back exactly.
        cls.certificate, cls.x509, cls.key = cls._ksef_upload_certificate()
        # wkhtmltopdf would fetch the CSS from this very server, whose requests wait on the test
        # transaction: a closed port renders at once.
        cls.env["ir.config_parameter"].sudo().set_param("report.url", "http://127.0.0.1:9")
        cls.company.sudo().write({"l10n_pl_ksef_offline_fallback": "confirm",
                                  "l10n_pl_ksef_latarnia_url": cls.ksef_url})
        cls.drill_state_dir = tempfile.mkdtemp(prefix="ksef-drill-tour-")
        cls.addClassCleanup(shutil.rmtree, cls.drill_state_dir, True)
        cls.drill_process, cls.drill_url = start_subprocess(
            Path(cls.drill_state_dir) / "drill.db", rate_limits="off", processing_delay=0.05,
            xsd_dir=shared_dir() / "ksef" / "xsd" / "FA3")
        cls.addClassCleanup(stop_subprocess, cls.drill_process)
        # The trainer's simulator address on this server: new drills propose it.
        cls.env["ir.default"].sudo().set("l10n_pl_ksef.drill", "simulator_url", cls.drill_url)
        # A KSeF manager through Accounting administrator, without Settings (base.group_system).
        cls.manager = cls.env["res.users"].sudo().create({
            "name": "Kierownik Księgowości", "login": "ksef-drill-manager", "password": "ksef-drill-manager",
            "email": "kierownik@firma-testowa.pl",
            "company_id": cls.company.id, "company_ids": [Command.set(cls.company.ids)],
            "groups_id": [Command.set([cls.env.ref("account.group_account_manager").id,
                                       cls.env.ref("base.group_user").id])],
        })
        cls.training = cls.env["product.product"].create({
            "name": "Szkolenie z procedury awaryjnej KSeF", "list_price": 1500.0,
            "taxes_id": [Command.set(cls.tax_23.ids)],
        })

    def setUp(self):
        super().setUp()
        requests.post(self.drill_url + "/_control/reset", json={}, timeout=10).raise_for_status()
        self.screenshots = None
        if os.environ.get("KSEF_SCREENSHOTS_DIR"):
            self.screenshots = Path(os.environ["KSEF_SCREENSHOTS_DIR"])
            self.screenshots.mkdir(parents=True, exist_ok=True)
        original = ChromeBrowser._handle_console
        case = self

        def handle_console(browser, type, args=None, stackTrace=None, **kw):  # pylint: disable=redefined-builtin
            message = args[0].get("value") if args else None
            if type == "log" and isinstance(message, str) and message.startswith(SCREENSHOT_MARKER):
                case._screenshot(browser, message[len(SCREENSHOT_MARKER):])
                return None
            return original(browser, type, args=args, stackTrace=stackTrace, **kw)

        self.patch(ChromeBrowser, "_handle_console", handle_console)

    def _screenshot(self, browser, name):
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
            except Exception as error:  # noqa: BLE001 - the tour then times out on its marker
                browser._logger.error("screenshot %s failed: %s", name, error)
                return
            browser._websocket_send("Runtime.evaluate", params={"expression": release})

        browser._websocket_send("Page.captureScreenshot", params={"format": "png"},
                                with_future=True).add_done_callback(save)

    def _settings(self):
        company = self.company.sudo()
        return {name: company[name] for name in COMPANY_SETTINGS}

    def _pdf_text(self, pdf):
        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / "drill.pdf"
            source.write_bytes(pdf)
            return subprocess.run(["pdftotext", "-layout", str(source), "-"], capture_output=True, check=True,
                                  text=True).stdout

    def test_manager_runs_a_drill_from_the_menus_and_reads_the_report(self):
        self.assertFalse(self.manager.has_group("base.group_system"), "the tour proves it without Settings rights")
        self.assertTrue(self.manager.has_group("l10n_pl_ksef.group_l10n_pl_ksef_manager"))
        before = self._settings()
        real_journal = self.company_data["default_journal_sale"]
        started = time.monotonic()
        self.start_tour("/odoo", "l10n_pl_ksef_tour_drill", login=self.manager.login, timeout=300)
        tour_seconds = time.monotonic() - started

        drill = self.env["l10n_pl_ksef.drill"].search([("company_id", "=", self.company.id)])
        self.assertEqual(len(drill), 1)
        self.assertEqual((drill.name, drill.state, drill.simulator_url),
                         ("Ćwiczenia: awaria KSeF", "done", self.drill_url))
        self.assertEqual((drill.started_by_id, drill.ended_by_id), (self.manager, self.manager))
        self.assertEqual([(step.offset_minutes, step.action) for step in drill.step_ids], [
            (10, "connection_lost"), (20, "connection_restored"), (20, "latarnia:failure_start"),
            (30, "latarnia:failure_end")], "the trainer's short script")
        self.assertTrue(all(drill.step_ids.mapped("applied_at")), "every step was played")

        # The company is exactly as before the drill.
        self.assertEqual(self._settings(), before)
        company = self.company.sudo()
        self.assertFalse(company.l10n_pl_ksef_running_drill_id)
        self.assertEqual(company.l10n_pl_ksef_offline_certificate_id, self.certificate)

        # The invoice the manager issued: in the drill journal, offline24, accepted by the drill's
        # simulator in time, cancelled at the end; the real KSeF never saw it.
        invoice = drill.invoice_ids
        self.assertEqual(len(invoice), 1)
        self.assertEqual(invoice.journal_id, drill.journal_id)
        self.assertNotEqual(invoice.journal_id, real_journal)
        self.assertTrue(invoice.journal_id.l10n_pl_ksef_drill)
        self.assertTrue(invoice.name.startswith(drill.journal_id.code + "/"), invoice.name)
        self.assertEqual(invoice.state, "cancel")
        self.assertEqual((invoice.partner_id, invoice.invoice_line_ids.product_id), (self.buyer_pl, self.training))
        self.assertEqual(invoice.l10n_pl_ksef_offline_mode, "offline24")
        self.assertEqual((invoice.create_uid, invoice.l10n_pl_ksef_drill_posted_by_id,
                          invoice.l10n_pl_ksef_drill_sent_by_id), (self.manager,) * 3)
        self.assertTrue(invoice.l10n_pl_ksef_deadline)
        self.assertFalse(invoice.l10n_pl_ksef_number, "the simulator's number never blocks a real one")
        simulated = invoice.l10n_pl_ksef_document_ids.filtered(lambda d: d.state == "accepted")
        self.assertEqual(len(simulated), 1)
        self.assertTrue(simulated.offline_mode)
        self.assertEqual(requests.get(self.drill_url + "/_control/counters", timeout=10).json()["invoicesAccepted"], 1)
        self.assertEqual(requests.get(self.ksef_url + "/_control/counters", timeout=10).json()["invoicesTotal"], 0)

        # The report: one row, issued offline, its deadline, in time, who did what.
        self.assertEqual((drill.report_invoice_count, drill.report_offline_count, drill.report_in_time_count),
                         (1, 1, 1))
        self.assertTrue(drill.report_all_in_time)
        self.assertEqual(drill.report_summary, "1 invoice(s), 1 issued offline, all submitted in time.")
        row = re.search(r"<tr class=\"\">(.*?)</tr>", drill.report_html.split("<h4>")[-1], re.S)
        self.assertTrue(row, drill.report_html)
        cells = [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
                 for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))]
        offline24 = dict(invoice._fields["l10n_pl_ksef_offline_mode"]._description_selection(self.env))["offline24"]
        self.assertEqual(cells[:6], [invoice.name, self.buyer_pl.name, self.manager.name, self.manager.name,
                                     self.manager.name, "Offline: %s" % offline24])
        self.assertEqual(cells[6], str(invoice.l10n_pl_ksef_deadline))
        self.assertEqual((cells[8], cells[10]), (simulated.ksef_number, "Yes"))
        self.assertIn(drill.report_summary, company.l10n_pl_ksef_offline_readiness_html)

        # The printed report names the invoice.
        pdf, _type = self.env["ir.actions.report"].with_context(force_report_rendering=True)._render_qweb_pdf(
            "l10n_pl_ksef.action_report_l10n_pl_ksef_drill", drill.ids)
        self.assertTrue(pdf.startswith(b"%PDF"))
        text = self._pdf_text(pdf)
        for expected in (invoice.name, "Ćwiczenia: awaria KSeF", str(invoice.l10n_pl_ksef_deadline),
                         "all submitted in time"):
            self.assertIn(expected, text)
        if self.screenshots:
            self.assertTrue((self.screenshots / "drill-report.png").is_file())
        self._logger.info("drill tour: %.1f s in the browser", tour_seconds)
