"""The invoice's KSeF lifecycle (``models/account_move_ksef_lifecycle.py``): the transition table
refuses impossible moves, each reaction follows a move of the one method (and nothing else), a
bulk verdict of many invoices lands in one go, and nobody reaches the method over RPC."""
from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import tagged

from ..ksef import ksef_number
from ..models.account_move_ksef_lifecycle import KSEF_STATES, TRANSITIONS
from .common import KsefTestCommon
from ..ksef.simulator.testing import warsaw_today
from .security_common import KsefRpcMixin

CRON_XMLID = "l10n_pl_ksef.ir_cron_l10n_pl_ksef_submit"
ACTIVITY_XMLID = "l10n_pl_ksef.mail_activity_type_l10n_pl_ksef_deadline"


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefLifecycle(KsefRpcMixin, KsefTestCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cron = cls.env.ref(CRON_XMLID)
        cls.rack = cls.env["product.product"].create({"name": "Regał magazynowy", "default_code": "REG-1", "list_price": 500.0})
        cls.serial = 0

    def _number(self, move):
        type(self).serial += 1
        return ksef_number.make_ksef_number("5265877635", move.invoice_date, "01%010X" % self.serial)

    def _triggers(self):
        return self.env["ir.cron.trigger"].sudo().search_count([("cron_id", "=", self.cron.id)])

    def _bodies(self, move):
        return move.message_ids.mapped("body")

    def _offline_invoice(self, move=None):
        """An invoice issued offline, as the offline flow leaves it (frozen, state offline)."""
        move = move or self._ksef_invoice()
        move.action_l10n_pl_ksef_freeze()
        move._l10n_pl_ksef_move_to("offline", {"l10n_pl_ksef_offline_mode": "offline24"})
        return move

    # ---- the transition table -------------------------------------------------------------

    def test_table_covers_every_state(self):
        states = {False} | {state for state, _label in KSEF_STATES}
        self.assertEqual(set(TRANSITIONS), states)
        for source, targets in TRANSITIONS.items():
            self.assertLessEqual(targets, states, source)
            self.assertNotIn(source, targets, "staying is always allowed, never listed")

    def test_impossible_moves_are_refused_and_nothing_is_written(self):
        accepted = self._ksef_invoice()
        accepted._l10n_pl_ksef_move_to("to_send")
        accepted._l10n_pl_ksef_move_to("sending")
        accepted._l10n_pl_ksef_move_to("accepted", {"l10n_pl_ksef_number": self._number(accepted)})
        with self.assertRaisesRegex(ValueError, r"invoice %s .*'accepted' to 'to_send'" % accepted.name):
            accepted._l10n_pl_ksef_move_to("to_send")
        with self.assertRaisesRegex(ValueError, "'accepted' to 'rejected'"):
            accepted._l10n_pl_ksef_move_to("rejected", {"l10n_pl_ksef_error": "forged"})
        self.assertEqual(accepted.l10n_pl_ksef_state, "accepted")
        self.assertFalse(accepted.l10n_pl_ksef_error)
        outside = self._ksef_invoice()
        outside._l10n_pl_ksef_move_to("outside")
        for target in ("offline", "to_send", "sending", "accepted"):
            with self.assertRaisesRegex(ValueError, "'outside' to '%s'" % target):
                outside._l10n_pl_ksef_move_to(target)
        draft_state = self._ksef_invoice()
        with self.assertRaisesRegex(ValueError, "False to 'sending'"):
            draft_state._l10n_pl_ksef_move_to("sending")
        with self.assertRaisesRegex(ValueError, "unknown KSeF state"):
            draft_state._l10n_pl_ksef_move_to("lost")
        # A batch with one impossible move writes none of them.
        fine = self._ksef_invoice()
        with self.assertRaises(ValueError):
            self.env["account.move"]._l10n_pl_ksef_move_batch({"to_send": fine | accepted})
        self.assertFalse(fine.l10n_pl_ksef_state)
        self.assertEqual(accepted.l10n_pl_ksef_state, "accepted")

    # ---- reactions --------------------------------------------------------------------------

    def test_engine_is_armed_by_the_one_method_only(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_freeze()
        before = self._triggers()
        move._l10n_pl_ksef_write({"l10n_pl_ksef_error": "not a move"})
        self.assertEqual(self._triggers(), before, "writing other KSeF values arms nothing")
        move._l10n_pl_ksef_move_to("to_send")
        self.assertEqual(self._triggers(), before + 1, "joining the queue arms the engine")
        move._l10n_pl_ksef_move_to("sending")
        self.assertEqual(self._triggers(), before + 2, "awaiting KSeF: the engine asks about it later")
        move.with_context(l10n_pl_ksef_engine=True)._l10n_pl_ksef_move_to("to_send")
        self.assertEqual(self._triggers(), before + 2, "the engine's own moves do not arm it")
        # No write() reacts any more: a state written around the one method arms nothing.
        move._l10n_pl_ksef_write({"l10n_pl_ksef_state": "offline"})
        self.assertEqual(self._triggers(), before + 2)

    def test_deadline_activities_close_when_the_invoice_no_longer_owes_ksef(self):
        move = self._offline_invoice()
        move._l10n_pl_ksef_write({"l10n_pl_ksef_alert_level": "due", "l10n_pl_ksef_deadline": warsaw_today()})
        move.activity_schedule(ACTIVITY_XMLID, user_id=self.user.id, summary="KSeF deadline today")
        self.assertEqual(move.activity_ids.activity_type_id, self.env.ref(ACTIVITY_XMLID))
        move._l10n_pl_ksef_write({"l10n_pl_ksef_error": "not a move"})
        self.assertTrue(move.activity_ids)
        # The invoice issued offline leaves "offline" for "sending": it no longer owes KSeF a file.
        move._l10n_pl_ksef_move_to("sending")
        self.assertFalse(move.activity_ids, "closed when the invoice went to KSeF")
        move._l10n_pl_ksef_move_to("rejected", {"l10n_pl_ksef_error": "KSeF rejected it"})
        # A rejected invoice still owes KSeF a file: a new reminder stays open through other moves.
        move.activity_schedule(ACTIVITY_XMLID, user_id=self.user.id, summary="KSeF deadline passed")
        move._l10n_pl_ksef_move_to("to_send")
        self.assertTrue(move.activity_ids, "to_send still owes KSeF an accepted file")
        move._l10n_pl_ksef_write({"l10n_pl_ksef_state": "accepted"})
        self.assertTrue(move.activity_ids, "a write around the one method closes nothing")
        move._l10n_pl_ksef_write({"l10n_pl_ksef_state": "to_send"})
        move._l10n_pl_ksef_move_to("sending")
        self.assertFalse(move.activity_ids)
        done = self.env["mail.message"].search([("model", "=", "account.move"), ("res_id", "=", move.id),
                                                ("mail_activity_type_id", "=", self.env.ref(ACTIVITY_XMLID).id)])
        self.assertTrue(any("Sent, awaiting KSeF" in body for body in done.mapped("body")), done.mapped("body"))

    def test_chatter_line_comes_with_the_move(self):
        move = self._ksef_invoice()
        move._l10n_pl_ksef_move_to("to_send", message="Queued by the lifecycle test.")
        self.assertIn("Queued by the lifecycle test.", self._bodies(move)[0])
        # the Post button's verdict: one invoice, its chatter line with the move
        move._l10n_pl_ksef_move_to("sending")
        number = self._number(move)
        self.assertTrue(self.env["account.move"]._l10n_pl_ksef_apply_results([{
            "move": move, "document": self.env["l10n_pl_ksef.document"], "verdict": "accepted",
            "ksef_number": number, "acquisition_date": None, "upo_xml": None}]))
        self.assertEqual((move.l10n_pl_ksef_state, move.l10n_pl_ksef_number), ("accepted", number))
        self.assertIn("Accepted by KSeF: KSeF number %s." % number, self._bodies(move)[0])

    # ---- waits for references ---------------------------------------------------------------

    def _advance(self):
        return self._ksef_invoice(lines=[(1000.0, self.tax_23, {"name": "Zaliczka na zamówienie ZAM/2026/017"})],
                                  l10n_pl_ksef_invoice_kind="ZAL", l10n_pl_ksef_order_line_ids=[Command.create({
                                      "product_id": self.rack.id, "name": "Regał magazynowy", "quantity": 4,
                                      "price_unit": 500.0, "tax_id": self.tax_23.id, "uom_id": self.rack.uom_id.id})])

    def _settlement(self, advance):
        return self._ksef_invoice(
            lines=[(2000.0, self.tax_23, {"name": "Regał magazynowy"}),
                   (-1000.0, self.tax_23, {"name": "Rozliczenie zaliczki %s" % advance.name})],
            l10n_pl_ksef_invoice_kind="ROZ", l10n_pl_ksef_advance_ids=[Command.set(advance.ids)])

    def test_held_credit_note_and_settlement_released_by_the_move_only(self):
        original = self._offline_invoice()
        credit_note = original._reverse_moves([{"invoice_date": original.invoice_date, "ref": "Zwrot towaru"}])
        credit_note.action_post()
        advance = self._offline_invoice(self._advance())
        settlement = self._settlement(advance)
        action = (credit_note | settlement).with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(action["params"]["title"], "Held until the advance invoices have their KSeF numbers")
        self.assertIn(original.name, action["params"]["message"])
        self.assertIn(advance.name, action["params"]["message"])
        for held, reference in ((credit_note, original), (settlement, advance)):
            self.assertEqual(held.l10n_pl_ksef_state, "to_send")
            self.assertTrue(held.l10n_pl_ksef_waiting_original)
            self.assertFalse(held.l10n_pl_ksef_xml_id)
            self.assertIn("Held: %s names invoice(s) %s" % (held.name, reference.name), self._bodies(held)[0])

        # A number written around the one method releases nothing by itself ...
        original._l10n_pl_ksef_write({"l10n_pl_ksef_number": self._number(original)})
        self.assertFalse(credit_note.l10n_pl_ksef_xml_id)
        # ... the one method does, at once, for both kinds.
        original._l10n_pl_ksef_move_to("accepted")
        advance._l10n_pl_ksef_move_to("accepted", {"l10n_pl_ksef_number": self._number(advance)})
        for held, reference in ((credit_note, original), (settlement, advance)):
            self.assertFalse(held.l10n_pl_ksef_waiting_original)
            self.assertTrue(held.l10n_pl_ksef_xml_id, (held.l10n_pl_ksef_error, self._bodies(held)[:2]))
            self.assertEqual(held.l10n_pl_ksef_state, "to_send")
            self.assertIn("Released: the invoices %s named by this e-invoice" % reference.name, self._bodies(held)[0])
        self.assertIn(original.l10n_pl_ksef_number.encode(), credit_note._l10n_pl_ksef_frozen_xml())
        self.assertIn(advance.l10n_pl_ksef_number.encode(), settlement._l10n_pl_ksef_frozen_xml())
        # Said once: the safety net finds nothing more to release.
        self.assertFalse(self.env["account.move"]._l10n_pl_ksef_release_numbered_originals())

    # ---- bulk verdicts ----------------------------------------------------------------------

    def test_bulk_verdict_of_many_invoices(self):
        moves = self.env["account.move"]
        for _index in range(60):
            moves |= self._ksef_invoice(post=False)
        moves.action_post()
        moves._l10n_pl_ksef_move_to("to_send")
        moves._l10n_pl_ksef_move_to("sending")
        original = moves[0]
        credit_note = original._reverse_moves([{"invoice_date": original.invoice_date}])
        credit_note.action_post()
        credit_note._l10n_pl_ksef_hold()
        self.assertTrue(credit_note.l10n_pl_ksef_waiting_original)
        accepted, rejected, retried = moves[:50], moves[50:55], moves[55:]
        results = [{"move": move, "document": self.env["l10n_pl_ksef.document"], "verdict": "accepted",
                    "ksef_number": self._number(move), "acquisition_date": "2026-11-30T10:00:00+00:00"}
                   for move in accepted]
        results += [{"move": move, "document": self.env["l10n_pl_ksef.document"], "verdict": "rejected", "code": 450,
                     "description": "Błąd weryfikacji semantyki dokumentu faktury", "details": ["P_2"]}
                    for move in rejected]
        results += [{"move": move, "document": self.env["l10n_pl_ksef.document"], "verdict": "retry", "code": 405,
                     "description": "Przetwarzanie anulowane", "retry_state": "offline"} for move in retried]
        Engine = self.env["account.move"].sudo().with_context(l10n_pl_ksef_engine=True)
        before = self._triggers()
        self.assertFalse(Engine._l10n_pl_ksef_apply_results(results, bulk=True))
        self.assertEqual(set(accepted.mapped("l10n_pl_ksef_state")), {"accepted"})
        self.assertEqual(accepted.mapped("l10n_pl_ksef_number"), [r["ksef_number"] for r in results[:50]])
        self.assertEqual(str(accepted[0].l10n_pl_ksef_acquisition_date), "2026-11-30 10:00:00")
        self.assertEqual(set(rejected.mapped("l10n_pl_ksef_state")), {"rejected"})
        self.assertIn("450", rejected[0].l10n_pl_ksef_error)
        self.assertEqual(set(retried.mapped("l10n_pl_ksef_state")), {"offline"})
        self.assertIn("Accepted by KSeF", self._bodies(accepted[-1])[0])
        # the engine's own verdicts do not arm it; the credit note released by the batch does
        self.assertEqual(self._triggers(), before + 1)
        self.assertTrue(credit_note.l10n_pl_ksef_xml_id, credit_note.l10n_pl_ksef_error)
        self.assertIn("Released", self._bodies(credit_note)[0])
        # An impossible move in a bulk verdict is a programming error, and nothing lands.
        with self.assertRaisesRegex(ValueError, "'accepted' to 'offline'"):
            Engine._l10n_pl_ksef_apply_results([dict(results[-1], move=accepted[0])], bulk=True)
        self.assertEqual(accepted[0].l10n_pl_ksef_state, "accepted")

    # ---- the attacker ------------------------------------------------------------------------

    def test_rpc_cannot_move_the_state(self):
        clerk = self._ksef_rpc_user("ksef_lifecycle_clerk", "base.group_user,account.group_account_invoice")
        move = self._ksef_invoice()
        move._l10n_pl_ksef_move_to("to_send")
        for method, args in (("_l10n_pl_ksef_move_to", ["accepted"]),
                             ("_l10n_pl_ksef_move_batch", [{"accepted": move.ids}]),
                             ("_l10n_pl_ksef_apply_results", [[{"move": move.id, "verdict": "accepted"}]])):
            with self.assertRaises(AccessError, msg=method):
                self.rpc(clerk, "account.move", method, move.ids, *args)
        with self.assertRaises(AccessError):
            self.rpc(clerk, "account.move", "write", move.ids, {"l10n_pl_ksef_state": "accepted"})
        self.assertEqual(move.l10n_pl_ksef_state, "to_send")
        # Through our own code, the clerk's right to change the invoice is checked first.
        other = self._ksef_rpc_user("ksef_lifecycle_outsider", "base.group_user")
        with self.assertRaises(AccessError):
            move.with_user(other)._l10n_pl_ksef_move_to("sending")
        self.assertEqual(move.l10n_pl_ksef_state, "to_send")
