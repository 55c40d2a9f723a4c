from odoo import Command
from odoo.tests import new_test_user, tagged

from .common import KsefTestCommon


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefSecurity(KsefTestCommon):

    def test_submissions_and_sessions_stay_in_their_company(self):
        move = self._ksef_invoice()
        document = self.env["l10n_pl_ksef.document"].sudo().create({
            "move_id": move.id, "company_id": self.company.id, "invoice_hash": "x" * 44})
        session = self.env["l10n_pl_ksef.session"].sudo().create({
            "company_id": self.company.id, "reference_number": "20261125-SO-0000000001-AA"})
        other_company = self.env["res.company"].sudo().create({"name": "Inna Firma Sp. z o.o."})
        outsider = new_test_user(
            self.env, login="ksef_outsider", company_id=other_company.id, company_ids=[Command.set(other_company.ids)],
            groups="account.group_account_manager,base.group_system")
        self.assertFalse(self.env["l10n_pl_ksef.document"].with_user(outsider).search([("id", "=", document.id)]))
        self.assertFalse(self.env["l10n_pl_ksef.session"].with_user(outsider).search([("id", "=", session.id)]))
        # ... while the accountant of the company sees its submission
        self.assertEqual(self.env["l10n_pl_ksef.document"].with_user(self.user).search([("id", "=", document.id)]), document)

    def test_secrets_are_for_administrators_only(self):
        self.company.sudo().l10n_pl_ksef_token = "secret-token"
        for field in ("l10n_pl_ksef_token", "l10n_pl_ksef_access_token", "l10n_pl_ksef_refresh_token"):
            self.assertEqual(self.company._fields[field].groups, "base.group_system", field)
        self.assertNotIn("l10n_pl_ksef_token", self.company.with_user(self.user).fields_get())
        self.assertEqual(self.env["l10n_pl_ksef.session"]._fields["secret"].groups, "base.group_system")
