"""The administrator's certificate journey in Chromium: request both KSeF certificates in
Settings (no file), revoke the Offline one from KSeF's list; against the simulator over HTTP."""
from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import HttpCase, tagged

from .common import KsefSimulatorCommon
from .tour_common import KsefTourMixin


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefCertificateTour(KsefTourMixin, KsefSimulatorCommon, HttpCase):
    browser_size = "1280x800"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_require_browser()
        cls.company.sudo().tax_exigibility = True  # saving Settings refuses otherwise (Odoo's test taxes)
        cls.env.ref("base.user_admin").sudo().write({
            "company_ids": [Command.link(cls.company.id)], "company_id": cls.company.id})
        cls.env["ir.config_parameter"].sudo().set_param("report.url", "http://127.0.0.1:9")

    def test_administrator_requests_certificates_then_revokes_the_offline_one(self):
        company = self.company.sudo()
        self.start_tour("/odoo/settings", "l10n_pl_ksef_tour_certificate_request", login="admin", timeout=240)
        company.invalidate_recordset()
        offline = company.l10n_pl_ksef_offline_certificate_id
        self.assertEqual(offline.l10n_pl_ksef_kind, "Offline")
        self.assertEqual(company.l10n_pl_ksef_auth_certificate_id.l10n_pl_ksef_kind, "Authentication")
        self.assertEqual(company.l10n_pl_ksef_auth_method, "certificate")
        # the company logs in with its new certificate
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.start_tour("/odoo/action-base.action_res_company_form/%s" % company.id,
                        "l10n_pl_ksef_tour_certificate_revoke", login="admin", timeout=180)
        offline.invalidate_recordset()
        self.assertEqual(offline.l10n_pl_ksef_status, "Revoked")
        with self.assertRaises(UserError):
            self._ksef_invoice()._l10n_pl_ksef_issue_offline("offline24")
