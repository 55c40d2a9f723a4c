"""The issue's "done when": a new administrator runs a drill from the UI and reads its report.

An Odoo tour (static/tests/tours/ksef_drill_tour.js) in Chromium, logged in as a KSeF manager who
is no Settings administrator: Invoicing > Configuration > KSeF > Drills, a new drill with a short
script, Start, the connection is lost, a customer invoice is issued as usual and posted to KSeF
(the offline confirmation, offline24), the rest of the script, End, the report on the form. The
drill's simulator is a real subprocess on a free 127.0.0.1 port; the company's own KSeF is
KsefSimulatorCommon's simulator, which must never see the drill invoice.

With KSEF_SCREENSHOTS_DIR set, the report form is saved there as 07_drill_report.png (see
tests/tour_common.py)."""
import html
import re
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from odoo import Command
from odoo.tests import HttpCase, tagged

from .common import KsefDrillTestMixin, KsefOfflineTestMixin, KsefSimulatorCommon
from .tour_common import KsefTourMixin


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefDrillTour(KsefTourMixin, KsefDrillTestMixin, KsefOfflineTestMixin, KsefSimulatorCommon, HttpCase):
    browser_size = "1366x900"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_require_browser()
        # The company's real connection has an Offline certificate: it must come back exactly.
        cls._ksef_setup_offline_issuing(fallback="confirm")
        cls._ksef_setup_drill(password="ksef-drill-manager", email="kierownik@firma-testowa.pl")
        # The trainer's simulator address on this server: new drills propose it.
        cls.env["ir.default"].sudo().set("l10n_pl_ksef.drill", "simulator_url", cls.drill_url)
        cls.training = cls.env["product.product"].create({
            "name": "Szkolenie z procedury awaryjnej KSeF", "list_price": 1500.0,
            "taxes_id": [Command.set(cls.tax_23.ids)],
        })

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
        row = re.search(r"<tr class=\"\">(.*?)</tr>", drill.report_html, re.S)   # the invoice rows carry a class
        self.assertTrue(row, drill.report_html)
        cells = [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
                 for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))]
        offline24 = dict(invoice._fields["l10n_pl_ksef_offline_mode"]._description_selection(self.env))["offline24"]
        self.assertEqual(cells[:6], [invoice.name, self.buyer_pl.name, self.manager.name, self.manager.name,
                                     self.manager.name, "Offline: %s" % offline24])
        self.assertEqual(cells[6], str(invoice.l10n_pl_ksef_deadline))
        self.assertTrue(invoice.l10n_pl_ksef_deadline_reason, "the failure that moved the deadline is named")
        self.assertEqual(cells[7], invoice.l10n_pl_ksef_deadline_reason)
        self.assertEqual((cells[9], cells[11]), (simulated.ksef_number, "Yes"))
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
            self.assertTrue((self.screenshots / "07_drill_report.png").is_file())
        self._logger.info("drill tour: %.1f s in the browser", tour_seconds)
