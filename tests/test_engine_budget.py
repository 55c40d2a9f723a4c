"""The engine's time budget: a run takes no new session once its share of Odoo's cron limits is
spent, and hands over to the next run at once (Odoo stops a cron job that runs past
``--limit-time-real-cron`` / ``--limit-time-cpu``: 120 s real, 60 s CPU by default)."""
import datetime
import time
from unittest.mock import patch

from odoo import fields
from odoo.tests import tagged

from ..models.l10n_pl_ksef_engine import MIN_RUN_SECONDS, RUN_SECONDS_PARAM, run_seconds_from_limits
from .test_engine import FAST, KsefEngineCommon


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefEngineBudget(KsefEngineCommon):

    def _ready_jobs(self):
        return {job["id"]: job for job in self.env["ir.cron"]._get_all_ready_jobs(self.env.cr)}

    def test_budget_follows_odoo_limits(self):
        # multi-process server, Odoo's defaults: 60 s CPU is the smaller limit
        self.assertEqual(run_seconds_from_limits(120, -1, 60, 2), 30.0)
        self.assertEqual(run_seconds_from_limits(120, 600, 1800, 2), 300.0)
        self.assertEqual(run_seconds_from_limits(120, 0, 0, 2), None, "no limit: no budget")
        # threaded server: no CPU limit; a cron limit of 0 falls back on --limit-time-real
        self.assertEqual(run_seconds_from_limits(120, -1, 60, 0), 60.0)
        self.assertEqual(run_seconds_from_limits(120, 0, 60, 0), 60.0)
        self.assertEqual(run_seconds_from_limits(0, 0, 60, 0), None)
        self.assertEqual(run_seconds_from_limits(4, -1, 60, 0), MIN_RUN_SECONDS)
        Move = self.env["account.move"]
        param = self.env["ir.config_parameter"].sudo()
        param.set_param(RUN_SECONDS_PARAM, "90")
        self.assertEqual(Move._l10n_pl_ksef_engine_run_seconds(), 90.0)
        param.set_param(RUN_SECONDS_PARAM, "0")
        self.assertIsNone(Move._l10n_pl_ksef_engine_run_seconds(), "0: the administrator lifts the budget")
        param.set_param(RUN_SECONDS_PARAM, "1")
        self.assertEqual(Move._l10n_pl_ksef_engine_run_seconds(), MIN_RUN_SECONDS)
        param.set_param(RUN_SECONDS_PARAM, "pół minuty")
        self.assertIsNotNone(Move._l10n_pl_ksef_engine_run_seconds(), "not a number: Odoo's limits apply")

    def test_spent_budget_sends_one_session_and_hands_over(self):
        """Two sessions are planned (an interactive one per mode); the budget is spent before the
        run starts: the first session still goes (every run moves the queue on), the second waits
        for the next run, which the hand-over starts at once. Each invoice reaches KSeF once."""
        self.company.sudo().l10n_pl_ksef_batch_threshold = 10
        online = self._queue(2)
        offline = self._queue(2, offline=True)
        cron = self.env.ref("l10n_pl_ksef.ir_cron_l10n_pl_ksef_submit")
        # the runner's end-of-job clean-up drops triggers older than the job's transaction: the
        # hand-over comes at least a second later, as a budget of MIN_RUN_SECONDS guarantees
        time.sleep(1.1)
        self.env["ir.cron.trigger"].sudo().search([("cron_id", "=", cron.id)]).unlink()
        handing_over_from = fields.Datetime.now()
        Move = type(self.env["account.move"])
        hand_over, hand_overs = Move._l10n_pl_ksef_engine_hand_over, []

        def observed_hand_over(model):   # observation only: the real hand-over runs
            hand_overs.append(model.env.context.get("l10n_pl_ksef_run_until"))
            return hand_over(model)

        with patch.object(Move, "_l10n_pl_ksef_engine_hand_over", observed_hand_over):
            self.env["account.move"].with_context(
                l10n_pl_ksef_engine_options=FAST, l10n_pl_ksef_run_until=time.monotonic())._cron_l10n_pl_ksef_submit()
        self.assertEqual(len(hand_overs), 1, "one hand-over per run")
        (online + offline).invalidate_recordset()
        sent = (online + offline).filtered(lambda m: m.l10n_pl_ksef_state == "accepted")
        self.assertIn(sent, (online, offline), "the first session went")
        waiting = (online + offline) - sent
        self.assertEqual(set(waiting.mapped("l10n_pl_ksef_state")), {"to_send"} if waiting == online else {"offline"},
                         "the second session's invoices wait untouched")
        self.assertEqual(self._counters()["sessions"].get("Online"), 1)
        self.assertFalse(waiting.l10n_pl_ksef_document_ids, "nothing of the second session was journaled")
        self.assertFalse(any(waiting.mapped("l10n_pl_ksef_next_try")), "no backoff: it goes on the next run")
        handed_over = self.env["ir.cron.trigger"].sudo().search(
            [("cron_id", "=", cron.id), ("call_at", ">=", handing_over_from), ("call_at", "<=", fields.Datetime.now())])
        self.assertTrue(handed_over, "the next run is armed for now (its notification wakes a cron worker)")
        # Odoo's runner ends the job (odoo/addons/base/models/ir_cron.py, _reschedule_later): it
        # moves nextcall to the next interval and drops the triggers older than the job's
        # transaction. The hand-over's trigger outlives it, so the runner's next look (a new
        # transaction, whose now() is past the trigger) finds the cron ready at once.
        job = self._ready_jobs()[cron.id]
        self.env["ir.cron"]._reschedule_later(job)
        self.env.invalidate_all()
        self.assertGreater(cron.sudo().nextcall, fields.Datetime.now(), "the regular interval alone would wait")
        self.assertTrue(handed_over.exists(), "the hand-over outlives the runner's clean-up")
        self._run_cron()
        self.assertAcceptedExactlyOnce(online + offline)
        self.assertEqual(self._counters()["sessions"].get("Online"), 2)

    def test_budget_left_runs_everything(self):
        self.company.sudo().l10n_pl_ksef_batch_threshold = 10
        moves = self._queue(2) + self._queue(2, offline=True)
        self.env["account.move"].with_context(
            l10n_pl_ksef_engine_options=FAST, l10n_pl_ksef_run_until=time.monotonic() + 600)._cron_l10n_pl_ksef_submit()
        self.assertAcceptedExactlyOnce(moves)

    def test_most_urgent_company_goes_first(self):
        """A run cut by its budget serves the company whose waiting invoice has the nearest
        deadline first, then by id; one without a deadline last."""
        moves = self._queue(2, offline=True)
        other = self.env["res.company"].sudo().create({"name": "Pilna Firma Sp. z o.o."})
        today = fields.Date.context_today(moves[0])
        Move = self.env["account.move"]

        def set_row(move, **values):   # in SQL: the ordering is what is tested
            self.env.flush_all()
            self.env.cr.execute("UPDATE account_move SET %s WHERE id = %%s" % ", ".join("%s = %%s" % k for k in values),
                                [*values.values(), move.id])
            self.env.invalidate_all()

        set_row(moves[0], l10n_pl_ksef_deadline=today + datetime.timedelta(days=5))
        set_row(moves[1], l10n_pl_ksef_deadline=today + datetime.timedelta(days=1))
        self.assertEqual(Move._l10n_pl_ksef_engine_companies(), self.company)
        set_row(moves[0], company_id=other.id, l10n_pl_ksef_deadline=today)
        self.assertEqual(Move._l10n_pl_ksef_engine_companies().ids, [other.id, self.company.id], "due sooner: first")
        set_row(moves[0], l10n_pl_ksef_deadline=today + datetime.timedelta(days=2))
        self.assertEqual(Move._l10n_pl_ksef_engine_companies().ids, [self.company.id, other.id])
        set_row(moves[0], l10n_pl_ksef_deadline=None)
        self.assertEqual(Move._l10n_pl_ksef_engine_companies().ids, [self.company.id, other.id], "no deadline: last")
