"""One road to KSeF: Post to KSeF sends through the submission engine's Submitter and journal
(a one-invoice plan in the company's interactive session), a 440 is settled by the same rule on
the button and in the cron, and the button and the cron never send an invoice twice."""
import datetime
from unittest.mock import patch

from odoo import fields
from odoo.tests import tagged

from ..ksef import submission
from ..ksef.simulator.testing import sample_invoice
from ..models.l10n_pl_ksef_engine_journal import EngineJournal
from ..models.l10n_pl_ksef_engine_post import PostJournal
from .test_engine import KsefEngineCommon


class WorkerKilled(Exception):
    pass


@tagged("post_install_l10n", "post_install", "-at_install")
class TestOneRoad(KsefEngineCommon):

    def _submits(self):
        """Record every Submitter.submit (the real one runs)."""
        calls = []
        real = submission.Submitter.submit

        def submit(submitter, items):
            items = list(items)
            calls.append((submitter, items))
            return real(submitter, items)
        return calls, patch.object(submission.Submitter, "submit", submit)

    # ---- the button takes the engine's road -------------------------------------------------

    def test_post_sends_a_one_invoice_plan_in_the_company_session(self):
        sessions_before = self._counters()["sessions"].get("Online", 0)
        first, second = self._ksef_invoice(), self._ksef_invoice()
        calls, spy = self._submits()
        with spy:
            first.with_user(self.user).action_l10n_pl_ksef_post()
            second.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual((first + second).mapped("l10n_pl_ksef_state"), ["accepted", "accepted"])
        # the engine's Submitter, one invoice per plan, an interactive session, the engine's journal
        self.assertEqual([[item.key for item in items] for _submitter, items in calls], [first.ids, second.ids])
        for submitter, items in calls:
            self.assertIsInstance(submitter.journal, EngineJournal)
            self.assertEqual([s.kind for s in submitter.plan(items).sessions], [submission.ONLINE])
        # both in the company's one interactive session, recorded and kept open for the next one
        session = self.env["l10n_pl_ksef.session"].sudo().search([("company_id", "=", self.company.id)])
        self.assertEqual(len(session), 1)
        self.assertRecordValues(session, [{"engine": False, "kind": "online", "state": "open"}])
        self.assertEqual({s.online_session.reference_number for s, _items in calls}, {session.reference_number})
        self.assertEqual(set((first + second).l10n_pl_ksef_document_ids.mapped("session_reference")),
                         {session.reference_number})
        self.assertEqual(self._counters()["sessions"].get("Online", 0) - sessions_before, 1)
        self.assertAcceptedExactlyOnce(first + second)

    def test_post_journals_before_sending_and_a_dead_worker_is_followed_up(self):
        move = self._ksef_invoice()

        def session_opened(journal, record):
            real_opened(journal, record)
            raise WorkerKilled()
        real_opened = PostJournal.session_opened
        # no assertRaises: it would roll back what the journal has recorded (committed outside tests)
        with patch.object(PostJournal, "session_opened", session_opened):
            try:
                move.with_user(self.user).action_l10n_pl_ksef_post()
            except WorkerKilled:
                pass
            else:
                self.fail("the worker was not killed")
        # recorded before anything went to KSeF
        self.assertEqual(move.l10n_pl_ksef_state, "sending")
        self.assertRecordValues(move.l10n_pl_ksef_document_ids, [{"state": "sending", "invoice_reference": False}])
        self.assertEqual(self._counters()["invoicesTotal"], 0)
        # while a Post may still be sending it, the cron and a second click leave it alone ...
        self._run_cron()
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual((move.l10n_pl_ksef_state, self._counters()["invoicesTotal"]), ("sending", 0))
        self.assertEqual(move.l10n_pl_ksef_document_ids.state, "sending")
        # ... later it asks KSeF (nothing there), queues it again and sends it once
        move.l10n_pl_ksef_document_ids.sudo().sent_at = fields.Datetime.now() - datetime.timedelta(minutes=11)
        self._run_cron()
        self._run_cron()
        self.assertAcceptedExactlyOnce(move)
        self.assertEqual(self._counters()["invoicesTotal"], 1)

    def test_lost_send_answer_on_post_is_settled_without_sending_twice(self):
        self.company.sudo().l10n_pl_ksef_timeout = 1.0
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_post()   # opens the session
        self.ksef_control("faults", {"stall_after_accept_seconds": 2.5, "stall_after_accept_count": 1})
        other = self._ksef_invoice()
        other.with_user(self.user).action_l10n_pl_ksef_post()
        self.ksef_control("faults/clear")
        if other.l10n_pl_ksef_state == "sending":
            other.with_user(self.user).action_l10n_pl_ksef_refresh_status()
        self.assertAcceptedExactlyOnce(move + other)
        self.assertEqual(self._counters()["invoicesTotal"], 2)

    # ---- one 440 rule ------------------------------------------------------------------------

    def test_duplicate_of_our_own_file_same_rule_on_post_and_in_cron(self):
        posted = self._ksef_invoice()
        posted.action_l10n_pl_ksef_freeze()
        queued = self._queue(1)
        originals = {move: self._ksef_sent_elsewhere(move._l10n_pl_ksef_frozen_xml()) for move in posted + queued}
        posted.with_user(self.user).action_l10n_pl_ksef_post()
        self._run_cron()
        for move in posted + queued:
            self.assertEqual((move.l10n_pl_ksef_state, move.l10n_pl_ksef_number), ("accepted", originals[move]))
            document = move.l10n_pl_ksef_document_ids.filtered(lambda d: d.state == "accepted")
            self.assertEqual((document.status_code, document.ksef_number), (440, originals[move]))
            self.assertTrue(move.l10n_pl_ksef_upo_id, "the original's UPO")
            self.assertIn("already held this very invoice", " ".join(move.message_ids.mapped("body")))
        self.assertAcceptedExactlyOnce(posted + queued)

    def test_duplicate_number_of_other_content_same_rule_on_post_and_in_cron(self):
        posted = self._ksef_invoice()
        queued = self._queue(1)
        for move in posted + queued:
            self._ksef_sent_elsewhere(sample_invoice(move.name))   # another system's invoice, same number
        posted.with_user(self.user).action_l10n_pl_ksef_post()
        self._run_cron()
        for move in posted + queued:
            self.assertEqual(move.l10n_pl_ksef_state, "rejected")
            self.assertFalse(move.l10n_pl_ksef_number)
            document = move.l10n_pl_ksef_document_ids
            self.assertEqual((document.state, document.status_code), ("rejected", 440))
            # the Submitter's rule read the original and compared its hash, on both roads
            self.assertIn("has another content hash", document.status_details)
            self.assertIn("440", move.l10n_pl_ksef_error)

    def test_bridge_evidence_reaches_the_one_rule(self):
        """What the Odoo side knows about an invoice (its own KSeF numbers and hashes, which
        bridges extend) is the evidence of the Submitter's rule, on both roads."""
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_freeze()
        other_file = sample_invoice(move.name)
        original = self._ksef_sent_elsewhere(other_file)
        Move = type(self.env["account.move"])
        own_hashes = Move._l10n_pl_ksef_own_hashes

        def with_other_file(record):
            return own_hashes(record) | {submission.Item.of("x", other_file, False).invoice_hash}
        with patch.object(Move, "_l10n_pl_ksef_own_hashes", with_other_file):
            move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual((move.l10n_pl_ksef_state, move.l10n_pl_ksef_number), ("accepted", original))

    # ---- the cron and the button at the same moment -------------------------------------------

    def test_cron_while_post_is_sending_never_sends_twice(self):
        move = self._ksef_invoice()
        runs = []
        real_opened = PostJournal.session_opened

        def session_opened(journal, record):
            real_opened(journal, record)
            # the cron runs right after the Post recorded its sending, before KSeF is called
            self._run_cron()
            runs.append(move.l10n_pl_ksef_state)
        with patch.object(PostJournal, "session_opened", session_opened):
            move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(runs, ["sending"])
        self.assertAcceptedExactlyOnce(move)
        self.assertEqual(self._counters()["invoicesTotal"], 1)
        self.assertEqual(len(move.l10n_pl_ksef_document_ids), 1)

    def test_post_while_cron_is_sending_never_sends_twice(self):
        moves = self._queue(2)
        # the accountant clicks Post to KSeF on an invoice the cron is sending
        clicks = self._run_cron_meanwhile(lambda company: moves[0].with_user(self.user).action_l10n_pl_ksef_post())
        self.assertEqual(len(clicks), 1)
        self.assertAcceptedExactlyOnce(moves)
        self.assertEqual(self._counters()["invoicesTotal"], 2)
        self.assertFalse(self.env["l10n_pl_ksef.session"].sudo().search([("engine", "=", False)]),
                         "the click opened no session of its own")
