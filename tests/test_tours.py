"""The user journeys in a real browser: Odoo tours (static/tests/tours/l10n_pl_ksef_tours.js)
run in Chromium by Odoo's test runner, against the KSeF simulator over real HTTP.

With KSEF_SCREENSHOTS_DIR set, the tours' key moments are saved there as PNG files (the README
screenshots, see tests/tour_common.py and scripts/screenshots.sh)."""

from odoo import Command, fields
from odoo.tests import HttpCase, tagged

from ..ksef import certificates as ksef_certificates
from ..ksef import devcerts, ksef_number
from .common import KSEF_TEST_NIP, KsefOfflineTestMixin, KsefPrintedPdfMixin, KsefSimulatorCommon
from ..ksef.simulator.testing import warsaw_today
from .tour_common import KsefTourMixin

@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefTours(KsefTourMixin, KsefOfflineTestMixin, KsefSimulatorCommon, HttpCase):
    browser_size = "1280x800"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_require_browser()
        cls._ksef_setup_offline_issuing(fallback="confirm")
        cls.finance_user = cls.env["res.users"].sudo().create({
            "name": "Anna Finansowa", "login": "ksef-finance", "password": "ksef-finance",
            "email": "finanse@firma-testowa.pl",
            "company_id": cls.company.id, "company_ids": [Command.set(cls.company.ids)],
            "groups_id": [Command.set([cls.env.ref("account.group_account_invoice").id,
                                       cls.env.ref("base.group_user").id])],
        })
        # Odoo's test taxes include a cash-basis one: with the setting off, saving Settings
        # (which every Settings button does first) would refuse.
        cls.company.sudo().tax_exigibility = True
        # A company whose document layout is chosen: Print goes straight to the PDF (otherwise
        # Odoo first offers the layout configurator to users with access rights management).
        cls.company.sudo().external_report_layout_id = cls.env.ref("web.external_layout_standard")
        # The administrator works in the Polish company (Settings shows the KSeF section there).
        cls.env.ref("base.user_admin").sudo().write({
            "company_ids": [Command.link(cls.company.id)], "company_id": cls.company.id})

    # ---- helpers ---------------------------------------------------------------------------

    def _invoice_url(self, move):
        return "/odoo/action-account.action_move_out_invoice_type/%s" % move.id

    def _draft_invoice(self, partner=None):
        return self._ksef_invoice(partner=partner, post=False, lines=[
            (1200.0, self.tax_23, {"name": "Wdrożenie KSeF", "quantity": 2.0}),
            (350.0, self.tax_8, {"name": "Szkolenie z trybu offline"}),
        ])

    def _capture_printed_pdfs(self):
        """Every PDF the server renders during the tour: (report name, record ids, bytes)."""
        Report = type(self.env["ir.actions.report"])
        original = Report._render_qweb_pdf
        printed = []

        def render_qweb_pdf(report, report_ref, res_ids=None, data=None):
            # in test mode Odoo renders reports as HTML unless told otherwise: print the real PDF
            result = original(report.with_context(force_report_rendering=True), report_ref, res_ids=res_ids, data=data)
            printed.append((report._get_report(report_ref).report_name, list(res_ids or []), result[0]))
            return result

        self.patch(Report, "_render_qweb_pdf", render_qweb_pdf)
        return printed

    # ---- the journeys ----------------------------------------------------------------------

    def test_accountant_posts_to_ksef_and_sees_the_number(self):
        move = self._draft_invoice()
        self.start_tour(self._invoice_url(move), "l10n_pl_ksef_tour_post_online", login=self.user.login, timeout=180)
        move.invalidate_recordset()
        self.assertEqual(move.state, "posted")
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertTrue(ksef_number.is_valid_ksef_number(move.l10n_pl_ksef_number), move.l10n_pl_ksef_number)
        self.assertTrue(move.l10n_pl_ksef_number.startswith(KSEF_TEST_NIP + "-"))
        # The accountant did it, not a background job.
        self.assertEqual(move.l10n_pl_ksef_document_ids.create_uid, self.user)

    def test_ksef_down_accountant_issues_offline_and_prints_both_codes(self):
        move = self._draft_invoice()
        self.ksef_control("faults", {"down": True})
        printed = self._capture_printed_pdfs()
        self.start_tour(self._invoice_url(move), "l10n_pl_ksef_tour_offline_print", login=self.user.login, timeout=240)
        move.invalidate_recordset()
        self.assertEqual((move.state, move.l10n_pl_ksef_state, move.l10n_pl_ksef_offline_mode),
                         ("posted", "offline", "offline24"))
        self.assertFalse(move.l10n_pl_ksef_number)
        self.assertTrue(move.l10n_pl_ksef_qr_certificate_url)
        # The browser's Print rendered this very invoice.
        invoice_pdfs = [pdf for _report, ids, pdf in printed if ids == move.ids]
        self.assertTrue(invoice_pdfs, "the Print button did not render the invoice: %s" % [p[:2] for p in printed])
        self.assertTrue(invoice_pdfs[-1].startswith(b"%PDF"), repr(invoice_pdfs[-1][:60]))
        self._ksef_pdf_screenshot(invoice_pdfs[-1], "03_offline_printed_pdf", "CERTYFIKAT")
        # The same PDF, rasterised and decoded as a phone would: KOD I (OFFLINE) and KOD II (CERTYFIKAT).
        text, codes = KsefPrintedPdfMixin._render(self, move)
        self.assertEqual(sorted(codes), sorted([KsefPrintedPdfMixin._kod1(self, move),
                                                move.l10n_pl_ksef_qr_certificate_url]))
        self.assertIn("OFFLINE", text)
        self.assertIn("CERTYFIKAT", text)

    def test_finance_user_sends_overdue_offline_invoices(self):
        overdue = self.env["account.move"]
        for _index in range(2):
            move = self._draft_invoice()
            move.action_post()
            move.action_l10n_pl_ksef_issue_offline24()
            overdue |= move
        # Their deadline passed (the dates themselves are what the cockpit tests check).
        overdue._l10n_pl_ksef_write({"l10n_pl_ksef_deadline": fields.Date.subtract(warsaw_today(), days=3)})
        not_due = self._draft_invoice(partner=self.buyer_consumer)
        not_due.action_post()
        not_due.action_l10n_pl_ksef_issue_offline24()
        self.assertEqual(set(overdue.mapped("l10n_pl_ksef_urgency")), {"overdue"})
        self.assertNotEqual(not_due.l10n_pl_ksef_urgency, "overdue")

        self.start_tour("/odoo/action-account.action_move_out_invoice_type", "l10n_pl_ksef_tour_send_overdue",
                        login=self.finance_user.login, timeout=240)
        (overdue | not_due).invalidate_recordset()
        self.assertEqual(overdue.mapped("l10n_pl_ksef_state"), ["accepted", "accepted"])
        for move in overdue:
            self.assertTrue(ksef_number.is_valid_ksef_number(move.l10n_pl_ksef_number))
            document = move.l10n_pl_ksef_document_ids.filtered(lambda d: d.state == "accepted")
            self.assertTrue(document.offline_mode, "sent as an invoice issued offline")
            self.assertEqual(document.create_uid, self.finance_user)
        self.assertEqual(not_due.l10n_pl_ksef_state, "offline", "only the selected overdue invoices were sent")

    def test_administrator_uploads_certificate_in_settings(self):
        certificate, key = self._ksef_make_certificate(key_type="rsa")
        cert_pem, key_pem = devcerts.to_pem(certificate, key, None)
        self.env["ir.attachment"].create([
            {"name": "l10n_pl_ksef_tour_offline.crt", "raw": cert_pem, "mimetype": "application/x-x509-ca-cert"},
            {"name": "l10n_pl_ksef_tour_offline.key", "raw": key_pem, "mimetype": "application/x-pem-file"},
        ])
        self.start_tour("/odoo/settings", "l10n_pl_ksef_tour_certificate_settings", login="admin", timeout=180)
        uploaded = self.env["certificate.certificate"].sudo().search(
            [("name", "=", "KSeF Offline 2026"), ("company_id", "=", self.company.id)])
        self.assertEqual(len(uploaded), 1)
        self.assertEqual(uploaded.l10n_pl_ksef_kind, ksef_certificates.OFFLINE)
        self.assertEqual(uploaded.l10n_pl_ksef_serial, "%016X" % certificate.serial_number)
        self.assertTrue(uploaded.private_key_id)
        self.assertEqual(self.company.sudo().l10n_pl_ksef_offline_certificate_id, uploaded)
