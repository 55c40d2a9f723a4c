"""The engine under KSeF trouble: 5xx, answers lost after KSeF accepted, 429 bursts, a worker
killed mid-batch. Every invoice must end accepted exactly once (simulator counters == Odoo)."""
import datetime
import time
from unittest.mock import patch

from odoo import fields
from odoo.tests import tagged

from ..ksef.simulator.testing import sample_invoice
from .test_engine import KsefEngineCommon


class WorkerKilled(Exception):
    pass


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefEngineFaults(KsefEngineCommon):

    def _time_passes(self):
        """Backoff over: every waiting invoice may be tried again now."""
        self.env["account.move"].search([("l10n_pl_ksef_state", "in", ("to_send", "offline"))])._l10n_pl_ksef_write(
            {"l10n_pl_ksef_next_try": False})

    def _crash_in(self, callback):
        """Run the cron with a journal whose ``callback`` kills the worker (once)."""
        Move = type(self.env["account.move"])
        original = Move._l10n_pl_ksef_engine_journal

        def journal_that_dies(model, company):
            journal = original(model, company)

            def die(*args, **kwargs):
                raise WorkerKilled(callback)
            setattr(journal, callback, die)
            return journal
        # no assertRaises: Odoo's would roll back to a savepoint, while a real worker's journal
        # entries are committed before it dies
        with patch.object(Move, "_l10n_pl_ksef_engine_journal", journal_that_dies):
            try:
                self._run_cron()
            except WorkerKilled:
                pass
            else:
                self.fail("the worker was not killed in %s" % callback)

    def test_server_errors_ratio(self):
        self.company.sudo().l10n_pl_ksef_batch_threshold = 3
        moves = self._queue(5) + self._queue(4, offline=True) + self._queue(2)
        self.ksef_control("faults", {"error_ratio": 0.3, "seed": 11})
        for _run in range(6):
            self._run_cron(max_attempts=3)
            self._time_passes()
        self.ksef_control("faults/clear")
        self._run_cron()
        self.assertAcceptedExactlyOnce(moves)

    def test_batch_close_answer_lost_after_accepting(self):
        self.company.sudo().l10n_pl_ksef_batch_threshold = 3
        self.company.sudo().l10n_pl_ksef_timeout = 1.0
        moves = self._queue(4)
        self.ksef_control("faults", {"stall_after_accept_seconds": 2.5, "stall_after_accept_count": 1})
        self._run_cron()
        self._run_cron()
        self.assertAcceptedExactlyOnce(moves)
        self.assertEqual(self._counters()["sessions"].get("Batch"), 1)

    def test_interactive_send_answer_lost_after_accepting(self):
        self.company.sudo().l10n_pl_ksef_timeout = 1.0
        moves = self._queue(2, offline=True)
        self.ksef_control("faults", {"stall_after_accept_seconds": 2.5, "stall_after_accept_count": 1})
        self._run_cron()
        self._run_cron()
        self.assertAcceptedExactlyOnce(moves)
        self.assertEqual(self._counters()["invoicesTotal"], 2)

    def test_rate_limit_burst_rearms_at_retry_after(self):
        self.company.sudo().l10n_pl_ksef_batch_threshold = 3
        moves = self._queue(4)
        client = self.company._l10n_pl_ksef_client()     # logged in before the limits bite
        self.ksef_control("rate-limits", {"enabled": True, "scale": 0.01, "reset": True})
        self.addCleanup(self.ksef_control, "rate-limits", {"enabled": False, "reset": True})
        # someone else used this context's batch quota (1 an hour at this scale)
        client.open_batch_session([("other.xml", sample_invoice("OTHER/1"))])
        time.sleep(1.1)
        started = fields.Datetime.now()
        self._run_cron()
        moves.invalidate_recordset()
        self.assertEqual(set(moves.mapped("l10n_pl_ksef_state")), {"to_send"})
        self.assertEqual(set(moves.mapped("l10n_pl_ksef_attempts")), {1})
        for move in moves:   # Retry-After (about a minute: the per-minute window) honoured, not hammered
            self.assertGreater(move.l10n_pl_ksef_next_try, started + datetime.timedelta(seconds=40))
        cron = self.env.ref("l10n_pl_ksef.ir_cron_l10n_pl_ksef_submit")
        trigger = self.env["ir.cron.trigger"].sudo().search([("cron_id", "=", cron.id)], order="call_at desc", limit=1)
        self.assertAlmostEqual(trigger.call_at, min(moves.mapped("l10n_pl_ksef_next_try")),
                               delta=datetime.timedelta(seconds=5))
        # before Retry-After nothing is sent; after it everything goes, once
        self._run_cron()
        self.assertEqual(self._counters()["invoicesTotal"], 0)
        self.ksef_control("rate-limits", {"enabled": False, "reset": True})
        self._time_passes()
        self._run_cron()
        self.assertAcceptedExactlyOnce(moves)

    def test_worker_killed_after_batch_close_is_reconciled(self):
        self.company.sudo().l10n_pl_ksef_batch_threshold = 3
        online, offline = self._queue(3), self._queue(3, offline=True)
        self._crash_in("session_closed")   # KSeF accepted the close; the worker died at once
        # the offline batch went first; the online invoices were never claimed
        self.assertEqual(set(offline.mapped("l10n_pl_ksef_state")), {"sending"})
        self.assertEqual(set(online.mapped("l10n_pl_ksef_state")), {"to_send"})
        self._run_cron()                   # the next run asks KSeF instead of sending again
        self.assertAcceptedExactlyOnce(online + offline)
        counters = self._counters()
        self.assertEqual(counters["sessions"].get("Batch"), 2)
        self.assertEqual(counters["invoicesTotal"], 6)
        self.assertEqual(len(offline.mapped("l10n_pl_ksef_upo_id")), 1)

    def test_worker_killed_before_upload_sends_again(self):
        self.company.sudo().l10n_pl_ksef_batch_threshold = 3
        moves = self._queue(4)
        self._crash_in("batch_part_uploaded")   # session opened and journaled, never closed
        self.assertEqual(set(moves.mapped("l10n_pl_ksef_state")), {"sending"})
        self._run_cron()
        self.assertAcceptedExactlyOnce(moves)
        self.assertEqual(self._counters()["sessions"].get("Batch"), 2)
        self.assertEqual(set(moves.l10n_pl_ksef_document_ids.mapped("state")), {"failed", "accepted"})

    def test_worker_killed_mid_interactive_session(self):
        moves = self._queue(2)
        self._crash_in("outcomes")
        self._run_cron()
        self.assertAcceptedExactlyOnce(moves)
        self.assertEqual(self._counters()["invoicesTotal"], 2)
