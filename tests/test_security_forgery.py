"""Issue 11, finding 5: an Invoicing user (a KSeF user) tries to forge KSeF facts over RPC.

Every call goes through ``get_public_method`` + ``call_kw`` like Odoo's JSON-RPC / XML-RPC
dispatch, as a user who is neither a Settings nor an Accounting administrator."""
import base64

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import KsefTestCommon
from ..ksef.simulator.testing import warsaw_today
from .security_common import KSEF_USER, KsefRpcMixin

FAKE_NUMBER = "5265877635-20261130-010000000001-8F"


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefForgery(KsefRpcMixin, KsefTestCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.clerk = cls._ksef_rpc_user("ksef_forger", "base.group_user,account.group_account_invoice")

    def _frozen(self, **ksef_values):
        """A posted, frozen invoice, put in a KSeF situation the way our flows would (as superuser)."""
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_freeze()
        if ksef_values:
            move._l10n_pl_ksef_write(ksef_values)
        return move

    def _forge(self, move, values, **kwargs):
        with self.assertRaises(AccessError, msg=str(values)):
            self.rpc(self.clerk, "account.move", "write", move.ids, values, **kwargs)

    def test_the_attacker_is_an_invoicing_user(self):
        self.assertTrue(self.clerk.has_group(KSEF_USER))
        self.assertFalse(self.clerk.has_group("account.group_account_manager"))
        # ... who may still do his job over RPC: edit a draft invoice's reference
        draft = self._ksef_invoice(post=False)
        self.rpc(self.clerk, "account.move", "write", draft.ids, {"ref": "Zamówienie 12/2026"})
        self.assertEqual(draft.ref, "Zamówienie 12/2026")

    def test_accepted_invoice_cannot_be_cleared_and_reset_to_draft(self):
        move = self._frozen(l10n_pl_ksef_state="accepted", l10n_pl_ksef_number=FAKE_NUMBER)
        self._forge(move, {"l10n_pl_ksef_state": False})
        self._forge(move, {"l10n_pl_ksef_state": "rejected"})
        with self.assertRaises(UserError):
            self.rpc(self.clerk, "account.move", "button_draft", move.ids)
        self.assertEqual((move.state, move.l10n_pl_ksef_state), ("posted", "accepted"))

    def test_no_fake_ksef_number_and_acceptance(self):
        move = self._frozen(l10n_pl_ksef_state="to_send")
        self._forge(move, {"l10n_pl_ksef_number": FAKE_NUMBER, "l10n_pl_ksef_state": "accepted"})
        self._forge(move, {"l10n_pl_ksef_number": FAKE_NUMBER})
        self._forge(move, {"l10n_pl_ksef_acquisition_date": fields.Datetime.now()})
        self.assertFalse(move.l10n_pl_ksef_number)
        self.assertFalse(move._l10n_pl_ksef_qr_codes(), "nothing printed as accepted")

    def test_number_environment_and_deadline_reason_cannot_be_forged(self):
        """The environment a KSeF number belongs to decides its uniqueness (a drill's numbers never
        clash with real ones), and the reason key decides the deadline's explanation: both are
        KSeF facts written by our code only."""
        move = self._frozen(l10n_pl_ksef_state="accepted", l10n_pl_ksef_number=FAKE_NUMBER,
                            l10n_pl_ksef_number_environment="test")
        self._forge(move, {"l10n_pl_ksef_number_environment": "drill"})
        offline = self._frozen(l10n_pl_ksef_state="offline", l10n_pl_ksef_offline_mode="offline24")
        self._forge(offline, {"l10n_pl_ksef_deadline_reason_key": "total_failure"})
        self.assertEqual(move.l10n_pl_ksef_number_environment, "test")
        self.assertNotEqual(offline.l10n_pl_ksef_deadline_reason_key, "total_failure")

    def test_kod2_link_cannot_be_forged_nor_printed_when_not_official(self):
        move = self._frozen(l10n_pl_ksef_state="offline", l10n_pl_ksef_offline_mode="offline24")
        for url in ("javascript:fetch('/web/dataset/call_kw')", "https://ksef-weryfikacja.example.com/certificate/x"):
            self._forge(move, {"l10n_pl_ksef_qr_certificate_url": url})
        # Even a value that got into the database some other way is neither printed nor linked.
        move._l10n_pl_ksef_write({"l10n_pl_ksef_qr_certificate_url": "javascript:alert(1)//https://qr.ksef.mf.gov.pl/"})
        self.assertEqual([code["kind"] for code in move._l10n_pl_ksef_qr_codes()], ["kod1"])

    def test_frozen_xml_and_hash_cannot_be_swapped(self):
        move = self._frozen(l10n_pl_ksef_state="to_send")
        forged_xml = move._l10n_pl_ksef_frozen_xml().replace(b"100.00", b"1.00")
        attachment = self.env["ir.attachment"].with_user(self.clerk).create({
            "name": "forged.xml", "datas": base64.b64encode(forged_xml), "res_model": "account.move", "res_id": move.id})
        self._forge(move, {"l10n_pl_ksef_xml_id": attachment.id})
        self._forge(move, {"l10n_pl_ksef_xml_hash": "A" * 43 + "=", "l10n_pl_ksef_xml_hash_url": "A" * 43})
        self._forge(move, {"l10n_pl_ksef_xml_id": False, "l10n_pl_ksef_frozen_at": False})
        self.assertNotEqual(move.l10n_pl_ksef_xml_id, attachment)
        self.assertNotIn(b"1.00<", move._l10n_pl_ksef_frozen_xml())

    def test_submissions_are_an_audit_trail_nobody_rewrites(self):
        move = self._frozen(l10n_pl_ksef_state="sending")
        document = self.env["l10n_pl_ksef.document"].sudo().create({
            "move_id": move.id, "company_id": self.company.id, "invoice_hash": move.l10n_pl_ksef_xml_hash,
            "state": "sending", "sent_at": fields.Datetime.now()})
        with self.assertRaises(AccessError):
            self.rpc(self.clerk, "l10n_pl_ksef.document", "write", document.ids,
                     {"state": "accepted", "ksef_number": FAKE_NUMBER})
        with self.assertRaises(AccessError):
            self.rpc(self.clerk, "l10n_pl_ksef.document", "create", {
                "move_id": move.id, "company_id": self.company.id, "state": "accepted", "ksef_number": FAKE_NUMBER})
        with self.assertRaises(AccessError):
            self.rpc(self.clerk, "account.move", "write", move.ids, {"l10n_pl_ksef_document_ids": [
                (0, 0, {"company_id": self.company.id, "state": "accepted", "ksef_number": FAKE_NUMBER})]})
        with self.assertRaises(AccessError):
            self.rpc(self.clerk, "l10n_pl_ksef.document", "unlink", document.ids)
        self.assertEqual((document.state, document.ksef_number), ("sending", False))
        self.assertEqual(len(move.l10n_pl_ksef_document_ids), 1)

    def test_total_failure_cannot_be_claimed_without_an_event(self):
        move = self._frozen(l10n_pl_ksef_state="to_send")
        self._forge(move, {"l10n_pl_ksef_state": "outside", "l10n_pl_ksef_offline_mode": "total_failure"})
        self._forge(move, {"l10n_pl_ksef_offline_mode": "emergency"})
        self.assertEqual((move.l10n_pl_ksef_state, move.l10n_pl_ksef_offline_mode), ("to_send", False))

    def test_deadlines_cannot_be_moved(self):
        today = warsaw_today()
        move = self._frozen(l10n_pl_ksef_state="offline", l10n_pl_ksef_offline_mode="offline24",
                            l10n_pl_ksef_deadline=today)
        far = fields.Date.add(today, years=1)
        self._forge(move, {"l10n_pl_ksef_deadline": far})
        self._forge(move, {"l10n_pl_ksef_deadline_reason": "uzgodnione z US"})
        self._forge(move, {"l10n_pl_ksef_offline_issued_at": fields.Datetime.now()})
        self._forge(move, {"l10n_pl_ksef_next_try": fields.Datetime.add(fields.Datetime.now(), years=1)})
        self.assertEqual(move.l10n_pl_ksef_deadline, today)

    def test_a_real_invoice_cannot_be_tagged_with_a_drill(self):
        drill = self.env["l10n_pl_ksef.drill"].sudo().create({"name": "Ćwiczenia", "company_id": self.company.id})
        move = self._frozen(l10n_pl_ksef_state="accepted", l10n_pl_ksef_number=FAKE_NUMBER)
        self._forge(move, {"l10n_pl_ksef_drill_id": drill.id})
        self.assertFalse(move.l10n_pl_ksef_drill_id)

    def test_the_drill_closing_context_opens_nothing_over_rpc(self):
        drill = self.env["l10n_pl_ksef.drill"].sudo().create({"name": "Ćwiczenia", "company_id": self.company.id})
        move = self._frozen(l10n_pl_ksef_state="offline", l10n_pl_ksef_offline_mode="offline24",
                            l10n_pl_ksef_drill_id=drill.id)
        with self.assertRaises(UserError):
            self.rpc(self.clerk, "account.move", "button_draft", move.ids,
                     context={"l10n_pl_ksef_drill_closing": True})
        self.assertEqual(move.state, "posted")

    def test_create_and_copy_carry_no_ksef_facts(self):
        values = {"move_type": "out_invoice", "partner_id": self.buyer_pl.id}
        with self.assertRaises(AccessError):
            self.rpc(self.clerk, "account.move", "create", [{**values, "l10n_pl_ksef_number": FAKE_NUMBER}])
        with self.assertRaises(AccessError):
            self.rpc(self.clerk, "account.move", "create", [values],
                     context={"default_l10n_pl_ksef_state": "accepted"})
        move = self._frozen(l10n_pl_ksef_state="accepted", l10n_pl_ksef_number=FAKE_NUMBER)
        with self.assertRaises(AccessError):
            self.rpc(self.clerk, "account.move", "copy", move.ids, {"l10n_pl_ksef_number": FAKE_NUMBER[:-2] + "00"})

    def test_a_reader_cannot_write_through_our_actions(self):
        """Our actions write as superuser after checking the caller may change the invoice."""
        reader = self._ksef_rpc_user("ksef_reader_rpc", "base.group_user,account.group_account_readonly")
        move = self._ksef_invoice()
        with self.assertRaises(AccessError):
            self.rpc(reader, "account.move", "action_l10n_pl_ksef_freeze", move.ids)
        self.assertFalse(move.l10n_pl_ksef_xml_id)
