from lxml import etree

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import KsefSimulatorCommon, KsefTestCommon

KSEF_USER = "l10n_pl_ksef.group_l10n_pl_ksef_user"
KSEF_MANAGER = "l10n_pl_ksef.group_l10n_pl_ksef_manager"


class KsefSecurityMixin:

    @classmethod
    def _ksef_new_user(cls, login, groups, company=None):
        company = company or cls.company
        return new_test_user(cls.env(su=True), login=login, groups=groups, company_id=company.id,
                             company_ids=[Command.set(company.ids)])

    def _menu_visible(self, xmlid, user):
        menu = self.env.ref(xmlid).sudo()
        return bool(menu.with_user(user)._filter_visible_menus())

    def _event_values(self, ref):
        return {"source": "bip", "notice_ref": ref, "category": "FAILURE", "title": "Awaria KSeF"}


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefSecurity(KsefSecurityMixin, KsefTestCommon):

    def test_test_accountant_is_no_administrator(self):
        # The user every flow of these tests runs as: an invoicing accountant, nothing more.
        self.assertFalse(self.env.su)
        self.assertEqual(self.env.user, self.user)
        for group in ("base.group_system", "base.group_erp_manager", "account.group_account_manager", KSEF_MANAGER):
            self.assertFalse(self.user.has_group(group), group)
        for group in ("account.group_account_invoice", KSEF_USER):
            self.assertTrue(self.user.has_group(group), group)

    def test_invoicing_users_and_accounting_administrators_get_their_ksef_group(self):
        invoicing = self._ksef_new_user("ksef_invoicing", "base.group_user,account.group_account_invoice")
        self.assertTrue(invoicing.has_group(KSEF_USER))
        self.assertFalse(invoicing.has_group(KSEF_MANAGER))
        administrator = self._ksef_new_user("ksef_acc_admin", "base.group_user,account.group_account_manager")
        self.assertTrue(administrator.has_group(KSEF_MANAGER))
        self.assertTrue(administrator.has_group(KSEF_USER))
        employee = self._ksef_new_user("ksef_employee", "base.group_user")
        self.assertFalse(employee.has_group(KSEF_USER))
        with self.assertRaises(AccessError):
            self.env["l10n_pl_ksef.document"].with_user(employee).search([])

    def test_ksef_user_cannot_manage_events_or_settings(self):
        event = self.env["l10n_pl_ksef.event"].sudo().create(self._event_values("K/2026/AWR/90"))
        Event = self.env["l10n_pl_ksef.event"].with_user(self.user)
        # reading a notice is fine (it justifies an offline invoice) ...
        self.assertEqual(Event.search([("id", "=", event.id)]), event)
        # ... recording or changing one is not
        with self.assertRaises(AccessError):
            Event.create(self._event_values("K/2026/AWR/91"))
        with self.assertRaises(AccessError):
            event.with_user(self.user).write({"title": "Koniec awarii"})
        self.assertFalse(self._menu_visible("l10n_pl_ksef.menu_l10n_pl_ksef_event", self.user))
        self.assertTrue(self._menu_visible("l10n_pl_ksef.menu_l10n_pl_ksef_documents", self.user))
        self.assertTrue(self._menu_visible("l10n_pl_ksef.menu_l10n_pl_ksef_overview", self.user))
        with self.assertRaises(AccessError):
            self.company.with_user(self.user).write({"l10n_pl_ksef_offline_fallback": "auto"})
        with self.assertRaises(AccessError):
            self.env["res.config.settings"].with_user(self.user).create({})

    def test_ksef_manager_manages_events(self):
        manager = self._ksef_new_user("ksef_manager_only", "base.group_user,account.group_account_invoice," + KSEF_MANAGER)
        self.assertFalse(manager.has_group("account.group_account_manager"))
        event = self.env["l10n_pl_ksef.event"].with_user(manager).create(self._event_values("K/2026/AWR/92"))
        event.write({"title": "Awaria KSeF - koniec", "date_end": "2026-03-02 12:00:00", "date_start": "2026-03-02 10:00:00"})
        self.assertEqual(event.sudo().title, "Awaria KSeF - koniec")
        self.assertTrue(self._menu_visible("l10n_pl_ksef.menu_l10n_pl_ksef_event", manager))
        # a manager is still no administrator: the secrets stay out of reach
        company = self.company.with_user(manager)
        self.assertNotIn("l10n_pl_ksef_token", company.fields_get())
        with self.assertRaises(AccessError):
            company.read(["l10n_pl_ksef_token"])

    def test_the_buttons_are_for_ksef_users(self):
        move = self._ksef_invoice()
        for user, visible in ((self.user, True),
                              (self._ksef_new_user("ksef_reader", "base.group_user,account.group_account_readonly"), False)):
            arch = etree.fromstring(move.with_user(user).get_view(view_type="form")["arch"])
            buttons = {button.get("name") for button in arch.iter("button")}
            for name in ("action_l10n_pl_ksef_post", "action_l10n_pl_ksef_issue_offline24",
                         "action_l10n_pl_ksef_technical_correction"):
                self.assertEqual(name in buttons, visible, (user.login, name))

    def test_submissions_and_sessions_stay_in_their_company(self):
        move = self._ksef_invoice()
        document = self.env["l10n_pl_ksef.document"].sudo().create({
            "move_id": move.id, "company_id": self.company.id, "invoice_hash": "x" * 44})
        session = self.env["l10n_pl_ksef.session"].sudo().create({
            "company_id": self.company.id, "reference_number": "20261125-SO-0000000001-AA"})
        other_company = self.env["res.company"].sudo().create({"name": "Inna Firma Sp. z o.o."})
        # even an administrator of the other company sees nothing of this one
        for login, groups in (("ksef_outsider_admin", "account.group_account_manager,base.group_system"),
                              ("ksef_outsider", "account.group_account_invoice," + KSEF_MANAGER)):
            outsider = self._ksef_new_user(login, groups, company=other_company)
            self.assertFalse(self.env["l10n_pl_ksef.document"].with_user(outsider).search([("id", "=", document.id)]))
            self.assertFalse(self.env["l10n_pl_ksef.session"].with_user(outsider).search([("id", "=", session.id)]))
            with self.assertRaises(AccessError):
                document.with_user(outsider).read(["invoice_hash"])
            with self.assertRaises(AccessError):
                session.with_user(outsider).read(["reference_number"])
        # ... while the accountant of the company sees its submission and session
        self.assertEqual(self.env["l10n_pl_ksef.document"].with_user(self.user).search([("id", "=", document.id)]), document)
        self.assertEqual(self.env["l10n_pl_ksef.session"].with_user(self.user).search([("id", "=", session.id)]), session)

    def test_secrets_are_for_administrators_only(self):
        self.company.sudo().l10n_pl_ksef_token = "secret-token"
        for field in ("l10n_pl_ksef_token", "l10n_pl_ksef_access_token", "l10n_pl_ksef_refresh_token",
                      "l10n_pl_ksef_auth_certificate_id", "l10n_pl_ksef_offline_certificate_id"):
            self.assertEqual(self.company._fields[field].groups, "base.group_system", field)
        self.assertNotIn("l10n_pl_ksef_token", self.company.with_user(self.user).fields_get())
        self.assertEqual(self.env["l10n_pl_ksef.session"]._fields["secret"].groups, "base.group_system")
        for field in ("l10n_pl_ksef_token", "l10n_pl_ksef_refresh_token", "l10n_pl_ksef_offline_certificate_id"):
            with self.assertRaises(AccessError):
                self.company.with_user(self.user).read([field])
        session = self.env["l10n_pl_ksef.session"].sudo().create({
            "company_id": self.company.id, "reference_number": "20261125-SO-0000000002-AA", "secret": "{}"})
        with self.assertRaises(AccessError):
            session.with_user(self.user).read(["secret"])
        with self.assertRaises(AccessError):
            self.env["l10n_pl_ksef.certificate.upload"].with_user(self.user).create({"name": "x", "certificate_file": b"eA=="})
        self.assertFalse(self._menu_visible("l10n_pl_ksef.menu_l10n_pl_ksef_event", self.user))


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefSecurityFlow(KsefSecurityMixin, KsefSimulatorCommon):

    def test_ksef_user_posts_and_sees_the_submission(self):
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        documents = self.env["l10n_pl_ksef.document"].with_user(self.user).search([("move_id", "=", move.id)])
        self.assertEqual(len(documents), 1)
        self.assertEqual(documents.ksef_number, move.l10n_pl_ksef_number)
        # the submission journal reads the session (not its keys)
        sessions = self.env["l10n_pl_ksef.session"].with_user(self.user).search(
            [("reference_number", "=", documents.session_reference)])
        self.assertEqual(len(sessions), 1)
        with self.assertRaises(AccessError):
            sessions.read(["secret"])
        # the audit trail cannot be rewritten by the accountant
        with self.assertRaises(AccessError):
            documents.unlink()

    def test_other_company_sees_nothing_of_a_real_submission(self):
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_post()
        other_company = self.env["res.company"].sudo().create({"name": "Trzecia Firma Sp. z o.o."})
        outsider = self._ksef_new_user("ksef_b_accountant", "account.group_account_invoice", company=other_company)
        self.assertTrue(outsider.has_group(KSEF_USER))
        self.assertFalse(self.env["l10n_pl_ksef.document"].with_user(outsider).search([]))
        self.assertFalse(self.env["l10n_pl_ksef.session"].with_user(outsider).search([]))
