import datetime
import time
from unittest.mock import patch

from odoo import fields
from odoo.tests import tagged

from ..ksef import crypto, ksef_number, upo
from .common import KsefSimulatorCommon

FAST = {"poll_interval": 0.2, "session_timeout": 30.0, "uncertain_grace": 0.1, "max_inline_wait": 2.0,
        "backoff_base": 0.1}


class KsefEngineCommon(KsefSimulatorCommon):
    """Queues invoices and runs the submission cron the way the scheduler does (as superuser)."""

    def _queue(self, count, offline=False):
        moves = self.env["account.move"]
        for _index in range(count):
            moves |= self._ksef_invoice()
        moves.with_user(self.user).action_l10n_pl_ksef_queue()
        if offline:   # issued offline (the offline flow's state), waiting to be submitted
            moves._l10n_pl_ksef_write({"l10n_pl_ksef_state": "offline"})
        return moves

    def _run_cron(self, **options):
        self.env["account.move"].with_context(
            l10n_pl_ksef_engine_options=dict(FAST, **options))._cron_l10n_pl_ksef_submit()

    def _counters(self):
        return self.ksef_control("counters", method="GET")

    def _run_cron_meanwhile(self, meanwhile):
        """Run the cron; right after its journal recorded its first session (the invoices are in
        flight), ``meanwhile(company)`` runs once: a second worker, a user's click. Returns what
        it returned, in a list (empty when no session was opened)."""
        Move = self.env["account.move"]
        original = type(Move)._l10n_pl_ksef_engine_journal
        results = []

        def journal_with_meanwhile(model, company):
            journal = original(model, company)
            opened = journal.session_opened

            def session_opened(record):
                opened(record)
                if not results:
                    results.append(meanwhile(company))
            journal.session_opened = session_opened
            return journal

        with patch.object(type(Move), "_l10n_pl_ksef_engine_journal", journal_with_meanwhile):
            self._run_cron()
        return results

    def assertAcceptedExactlyOnce(self, moves):
        moves.invalidate_recordset()
        self.assertEqual(set(moves.mapped("l10n_pl_ksef_state")), {"accepted"})
        counters = self._counters()
        by_hash = counters["acceptedByHash"]
        for move in moves:
            self.assertTrue(ksef_number.is_valid_ksef_number(move.l10n_pl_ksef_number), move.l10n_pl_ksef_number)
            # what KSeF received is exactly the frozen file, accepted once
            self.assertEqual(move.l10n_pl_ksef_xml_hash, crypto.sha256_b64(move._l10n_pl_ksef_frozen_xml()))
            self.assertEqual(by_hash.get(move.l10n_pl_ksef_xml_hash), 1, move.name)
        accepted_in_odoo = self.env["account.move"].search_count([("l10n_pl_ksef_state", "=", "accepted")])
        self.assertEqual(counters["invoicesAccepted"], accepted_in_odoo)
        self.assertEqual(len(set(moves.mapped("l10n_pl_ksef_number"))), len(moves))


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefEngine(KsefEngineCommon):

    def test_cron_flushes_mixed_queue_in_batch(self):
        self.company.sudo().l10n_pl_ksef_batch_threshold = 5
        online = self._queue(6)
        offline = self._queue(7, offline=True)
        self._run_cron()
        self.assertAcceptedExactlyOnce(online + offline)
        counters = self._counters()
        self.assertEqual(counters["sessions"].get("Batch"), 2)     # one per mode, never mixed
        self.assertFalse(counters["sessions"].get("Online"))
        sessions = self.env["l10n_pl_ksef.session"].search([("engine", "=", True)])
        self.assertEqual(sorted(sessions.mapped("offline_mode")), [False, True])
        self.assertEqual(set(sessions.mapped("journal_state")), {"settled"})
        self.assertEqual(set(sessions.mapped("kind")), {"batch"})
        # one collective UPO per session, stored once, linked to each invoice; it lists each hash
        for moves in (online, offline):
            shared = moves.mapped("l10n_pl_ksef_upo_id")
            self.assertEqual(len(shared), 1)
            documents = {d.document_hash: d.ksef_number
                         for d in upo.parse_upo(shared.with_user(self.user).raw)["documents"]}
            for move in moves:
                self.assertEqual(documents[move.l10n_pl_ksef_xml_hash], move.l10n_pl_ksef_number)
                [document] = move.l10n_pl_ksef_document_ids
                self.assertEqual((document.state, document.ksef_number, document.upo_id),
                                 ("accepted", move.l10n_pl_ksef_number, shared))
                # read from the session UPO, which names an invoice by its KSeF number only
                self.assertFalse(document.invoice_reference)
                self.assertEqual(document.name, "%s / %s" % (move.name, move.l10n_pl_ksef_number))
                self.assertTrue(move.l10n_pl_ksef_acquisition_date)
                self.assertIn(move.l10n_pl_ksef_number, move.message_ids[0].body)
        self.assertEqual(set(offline.l10n_pl_ksef_document_ids.mapped("offline_mode")), {True})
        self.assertEqual(set(online.l10n_pl_ksef_document_ids.mapped("offline_mode")), {False})
        # nothing left: a second run sends nothing
        before = counters["invoicesTotal"]
        self._run_cron()
        self.assertEqual(self._counters()["invoicesTotal"], before)

    def test_small_queue_goes_interactive(self):
        self.company.sudo().l10n_pl_ksef_batch_threshold = 10
        online = self._queue(2)
        offline = self._queue(2, offline=True)
        self._run_cron()
        self.assertAcceptedExactlyOnce(online + offline)
        counters = self._counters()
        self.assertEqual(counters["sessions"].get("Online"), 2)   # one per mode
        self.assertFalse(counters["sessions"].get("Batch"))
        for move in online + offline:   # per-invoice UPO in interactive sessions
            [entry] = upo.parse_upo(move.l10n_pl_ksef_upo_id.raw)["documents"]
            self.assertEqual(entry.ksef_number, move.l10n_pl_ksef_number)

    def test_queueing_arms_the_cron(self):
        cron = self.env.ref("l10n_pl_ksef.ir_cron_l10n_pl_ksef_submit")
        Trigger = self.env["ir.cron.trigger"].sudo()
        before = Trigger.search_count([("cron_id", "=", cron.id)])
        self._queue(1)
        triggers = Trigger.search([("cron_id", "=", cron.id)], order="id desc")
        self.assertGreater(len(triggers), before)
        self.assertLessEqual(triggers[0].call_at, fields.Datetime.now() + datetime.timedelta(minutes=1))

    def test_cron_settles_what_post_to_ksef_left_awaiting(self):
        """Post to KSeF ends its request while KSeF still processes: the invoice stays 'sending'
        and the cron, armed by that, later asks KSeF (never sending it again)."""
        self.ksef_control("config", {"processing_delay": 5.0})
        self.addCleanup(self.ksef_control, "config", {"processing_delay": 0.1})
        cron = self.env.ref("l10n_pl_ksef.ir_cron_l10n_pl_ksef_submit")
        armed_before = self.env["ir.cron.trigger"].sudo().search_count([("cron_id", "=", cron.id)])
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "sending")
        self.assertGreater(self.env["ir.cron.trigger"].sudo().search_count([("cron_id", "=", cron.id)]), armed_before)
        time.sleep(3.5)
        self._run_cron()
        self.assertAcceptedExactlyOnce(move)
        self.assertEqual(self._counters()["invoicesTotal"], 1, "asked about, not sent again")
        self.assertEqual(move.l10n_pl_ksef_document_ids.state, "accepted")

    def test_neutralized_database_sends_nothing(self):
        moves = self._queue(3)
        self.env["ir.config_parameter"].sudo().set_param("database.is_neutralized", True)
        self._run_cron()
        self.assertEqual(set(moves.mapped("l10n_pl_ksef_state")), {"to_send"})
        self.assertEqual(self._counters()["invoicesTotal"], 0)

    def test_paused_company_is_skipped_and_rearmed(self):
        moves = self._queue(2)
        company_class = type(self.env["res.company"])
        cron = self.env.ref("l10n_pl_ksef.ir_cron_l10n_pl_ksef_submit")
        with patch.object(company_class, "_l10n_pl_ksef_sending_paused", lambda self: True, create=True):
            self._run_cron()
        self.assertEqual(set(moves.mapped("l10n_pl_ksef_state")), {"to_send"})
        self.assertEqual(self._counters()["invoicesTotal"], 0)
        later = self.env["ir.cron.trigger"].sudo().search(
            [("cron_id", "=", cron.id), ("call_at", ">", fields.Datetime.now() + datetime.timedelta(seconds=10)),
             ("call_at", "<=", fields.Datetime.now() + datetime.timedelta(seconds=31))])
        self.assertTrue(later, "the cron is armed to look again during the pause, within half a minute (the end "
                               "of a failure is seen within a minute)")
        self._run_cron()
        self.assertAcceptedExactlyOnce(moves)

    def test_second_worker_never_sends_claimed_invoices(self):
        """A second worker runs while the first one's batch is in flight (right after the journal
        recorded the session): it finds nothing to send; each invoice reaches KSeF once."""
        self.company.sudo().l10n_pl_ksef_batch_threshold = 3
        moves = self._queue(4)
        Move = self.env["account.move"]
        second_runs = self._run_cron_meanwhile(
            lambda company: Move.with_context(l10n_pl_ksef_engine_options=FAST)._l10n_pl_ksef_engine_run(company))
        self.assertEqual(second_runs, [{}])
        self.assertAcceptedExactlyOnce(moves)
        self.assertEqual(self._counters()["invoicesTotal"], 4)

    def test_claim_order_and_backoff(self):
        moves = self._queue(3)
        Move = self.env["account.move"]
        self.assertEqual(Move._l10n_pl_ksef_engine_claim(self.company, 10), sorted(moves.ids))
        moves[0]._l10n_pl_ksef_write({"l10n_pl_ksef_next_try": fields.Datetime.now() + datetime.timedelta(hours=1)})
        self.assertEqual(Move._l10n_pl_ksef_engine_claim(self.company, 10), sorted(moves[1:].ids))

    def test_post_button_reservation_keeps_the_engine_away(self):
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertFalse(self.env["account.move"]._l10n_pl_ksef_engine_claim(self.company, 10))
