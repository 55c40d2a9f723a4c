"""Submission engine on the Odoo side: the retrying cron that flushes waiting invoices to KSeF.

Waiting invoices (``to_send`` and ``offline``, frozen, not in backoff) of each company go out
through ``ksef.submission.Submitter``: in batch sessions from ``l10n_pl_ksef_batch_threshold``
invoices of one mode upwards (a session never mixes offline and online invoices), one by one in
an interactive session below it. Nearest deadline first, then oldest.

Exactly once:
* rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED``: two workers never claim the same
  invoice; a claim never spans more than what the next session takes;
* ``EngineJournal`` (a ``ksef.submission.Journal``, ``l10n_pl_ksef_engine_journal``) stores every session in
  ``l10n_pl_ksef.session`` (kind, offline flag, the hashes it may hold) and marks its invoices
  ``sending`` — and commits — BEFORE any upload or send; from then on the row's state keeps
  every other worker away, even after the lock is gone;
* each run first ``reconcile``s the unsettled sessions (asks KSeF what it holds), and only
  what KSeF certainly does not have comes back to the queue;
* KSeF's own duplicate check is the last net: a 440 of our own file is adopted.

The cron is armed by events (``ir.cron._trigger``): an invoice joining the queue, Retry-After,
backoff, the end of a pause, the nearest deadline; its interval is only a safety net.
"""
import datetime
import json
import logging
import time

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, config

from ..ksef import errors as ksef_errors
from ..ksef import submission
from . import ksef_messages
from .account_move_ksef_lifecycle import ENGINE_QUEUE_STATES as WAITING_STATES, FOLLOW_UP_DELAY, ON_THE_WAY_STATES
from .l10n_pl_ksef_engine_journal import EngineJournal

_logger = logging.getLogger(__name__)

CRON_XMLID = "l10n_pl_ksef.ir_cron_l10n_pl_ksef_submit"
# A paused company (Latarnia maintenance/failure) is looked at again after this long at most.
PAUSE_RECHECK = datetime.timedelta(minutes=5)
# Post to KSeF never has an invoice in flight longer than this (a bounded wait plus timeouts).
POST_IN_FLIGHT = datetime.timedelta(minutes=10)
# Send an invoice at least this long before its deadline ends, even during a backoff.
DEADLINE_MARGIN = datetime.timedelta(hours=6)
MAX_CLAIM = submission.MAX_INVOICES_PER_SESSION
# Odoo stops a cron job that runs past its limits (``--limit-time-real-cron``, else
# ``--limit-time-real``: 120 s; with ``--workers`` also ``--limit-time-cpu``: 60 s). A run takes
# no new session after this share of the smallest limit and hands over to the next run at once,
# so a backlog of any size is flushed in runs that Odoo lets finish (a session in flight is
# never cut: it ends within one session's time of the budget).
RUN_SHARE_OF_LIMIT = 0.5
MIN_RUN_SECONDS = 5.0
RUN_SECONDS_PARAM = "l10n_pl_ksef.engine_run_seconds"   # seconds; 0: no budget


def run_seconds_from_limits(limit_time_real, limit_time_real_cron, limit_time_cpu, workers):
    """How long one engine run may take new work under Odoo's limits (None: no limit). Read as
    Odoo's server reads them (``odoo/service/server.py``): the multi-process server kills a cron
    worker after ``limit_time_real_cron`` (-1: ``limit_time_real``; 0: never) or
    ``limit_time_cpu``; the threaded server restarts after ``limit_time_real_cron`` when positive,
    else ``limit_time_real``."""
    if workers:
        real = limit_time_real if limit_time_real_cron == -1 else limit_time_real_cron
    else:
        real = limit_time_real_cron if limit_time_real_cron and limit_time_real_cron > 0 else limit_time_real
    limits = [real] if real and real > 0 else []
    if workers and limit_time_cpu and limit_time_cpu > 0:
        limits.append(limit_time_cpu)
    return max(MIN_RUN_SECONDS, min(limits) * RUN_SHARE_OF_LIMIT) if limits else None


class L10nPlKsefSessionJournal(models.Model):
    """Sessions opened by the engine are journal entries: what KSeF may hold from us."""
    _inherit = "l10n_pl_ksef.session"

    engine = fields.Boolean(readonly=True, index=True,
                            help="Opened by the submission engine (not reused by the Post button).")
    kind = fields.Selection([("online", "Interactive"), ("batch", "Batch")], default="online", readonly=True)
    offline_mode = fields.Boolean(string="Offline invoices", readonly=True)
    invoice_hashes = fields.Text(readonly=True, help="JSON: invoice hash -> invoice id, for every invoice the "
                                                     "session may hold.")
    invoice_count = fields.Integer(readonly=True)
    journal_state = fields.Selection([
        ("opened", "Opened (sending)"), ("closed", "Closed (KSeF processing)"), ("settled", "Settled"),
    ], readonly=True, index=True)
    upo_ids = fields.Many2many("ir.attachment", string="Session UPO", readonly=True,
                               help="The collective UPO of a batch session, stored once for all its invoices.")

    def _l10n_pl_ksef_session_record(self):
        self.ensure_one()
        return submission.SessionRecord(
            self.reference_number, submission.BATCH if self.kind == "batch" else submission.ONLINE,
            self.offline_mode, json.loads(self.invoice_hashes or "{}"),
            self.create_date.replace(tzinfo=datetime.timezone.utc).timestamp() if self.create_date else None)


class ResCompanyKsefEngine(models.Model):
    _inherit = "res.company"

    l10n_pl_ksef_batch_threshold = fields.Integer(
        string="KSeF batch from", default=10,
        help="From this many waiting invoices of one mode, they go to KSeF in batch sessions "
             "(much faster, few rate-limited calls); fewer are sent one by one.")
    l10n_pl_ksef_engine_failures = fields.Integer(copy=False, readonly=True,
                                                  help="Consecutive failed runs of the KSeF sending (backoff).")


class AccountMoveKsefEngine(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_next_try = fields.Datetime(
        string="KSeF next attempt", copy=False, readonly=True, index=True,
        help="KSeF asked to wait, or could not be reached: the invoice is sent again from this time on.")
    l10n_pl_ksef_attempts = fields.Integer(string="KSeF attempts", copy=False, readonly=True)

    # ---- arming the cron (an invoice joining the queue arms it: see the lifecycle) ---------

    @api.model
    def _l10n_pl_ksef_engine_arm(self, at):
        cron = self.env.ref(CRON_XMLID, raise_if_not_found=False)
        if cron:
            cron.sudo()._trigger(max(at, fields.Datetime.now()))

    def action_l10n_pl_ksef_queue(self):
        """Freeze and queue invoices for the automatic sending (the cron sends them shortly)."""
        moves = self.filtered(lambda m: m._l10n_pl_ksef_is_applicable() and not m.l10n_pl_ksef_state)
        held = moves.filtered(lambda m: not m._l10n_pl_ksef_ready_to_send())
        held._l10n_pl_ksef_hold()
        moves -= held
        moves.action_l10n_pl_ksef_freeze()
        moves._l10n_pl_ksef_move_to("to_send")
        return True

    # ---- the cron --------------------------------------------------------------------------

    @api.model
    def _cron_l10n_pl_ksef_submit(self):
        if self.env["ir.config_parameter"].sudo().get_param("database.is_neutralized"):
            _logger.info("KSeF sending skipped: this database is neutralized")
            return
        engine = self._l10n_pl_ksef_engine_clocked()    # the run's budget rides in the context
        for company in engine._l10n_pl_ksef_engine_companies():
            company_engine = ksef_messages.in_company_language(engine.with_company(company), company)
            try:
                company_engine._l10n_pl_ksef_engine_run(company)
                if company.l10n_pl_ksef_engine_failures:
                    company.sudo().l10n_pl_ksef_engine_failures = 0
                    engine._l10n_pl_ksef_engine_commit()
                company_engine._l10n_pl_ksef_engine_follow_posted(company)
            except Exception as error:  # one company's trouble never stops the others
                can_commit = engine._l10n_pl_ksef_engine_can_commit()
                if can_commit:
                    engine.env.cr.rollback()
                failures = company.sudo().l10n_pl_ksef_engine_failures + 1
                delay = engine._l10n_pl_ksef_engine_failure_delay(error, failures)
                _logger.warning("KSeF sending of company %s failed (%s: %s); next try in %.0f s",
                                company.id, type(error).__name__, error if isinstance(error, ksef_errors.KsefError)
                                else "", delay)
                company.sudo().l10n_pl_ksef_engine_failures = failures
                # Every failed run arms the next one, before anything else can go wrong.
                engine._l10n_pl_ksef_engine_arm(fields.Datetime.now() + datetime.timedelta(seconds=delay))
                if not can_commit:
                    raise
                engine._l10n_pl_ksef_engine_commit()
            if engine._l10n_pl_ksef_engine_time_up():
                # the run's one hand-over (a company's run stops taking sessions at the same moment)
                engine._l10n_pl_ksef_engine_hand_over()
                break

    # ---- the run's time budget ------------------------------------------------------------

    @api.model
    def _l10n_pl_ksef_engine_run_seconds(self):
        """Seconds one run may take new work: ``l10n_pl_ksef.engine_run_seconds`` when set (0: no
        budget), else from Odoo's limits (``run_seconds_from_limits``)."""
        param = self.env["ir.config_parameter"].sudo().get_param(RUN_SECONDS_PARAM)
        if param not in (None, False, ""):
            try:
                seconds = float(param)
            except ValueError:
                _logger.warning("KSeF: %s=%r is not a number of seconds; Odoo's limits apply", RUN_SECONDS_PARAM, param)
            else:
                return max(MIN_RUN_SECONDS, seconds) if seconds > 0 else None
        return run_seconds_from_limits(config["limit_time_real"], config["limit_time_real_cron"],
                                       config["limit_time_cpu"], config["workers"])

    @api.model
    def _l10n_pl_ksef_engine_clocked(self):
        """This model with the run's clock (``l10n_pl_ksef_run_until``, on ``time.monotonic``),
        started now unless a caller already started it."""
        if "l10n_pl_ksef_run_until" in self.env.context:
            return self
        seconds = self._l10n_pl_ksef_engine_run_seconds()
        return self.with_context(l10n_pl_ksef_run_until=time.monotonic() + seconds if seconds else None)

    @api.model
    def _l10n_pl_ksef_engine_time_left(self, cap):
        until = self.env.context.get("l10n_pl_ksef_run_until")
        return cap if until is None else max(0.0, min(cap, until - time.monotonic()))

    @api.model
    def _l10n_pl_ksef_engine_time_up(self):
        until = self.env.context.get("l10n_pl_ksef_run_until")
        return until is not None and time.monotonic() >= until

    @api.model
    def _l10n_pl_ksef_engine_hand_over(self):
        """The budget is spent and work is left: the next run starts at once. The trigger is
        stamped after this job began, so the runner's end-of-job clean-up (which drops triggers
        older than the job) keeps it, and its notification wakes a cron worker."""
        _logger.info("KSeF sending: this run's time is up; the next run goes on at once")
        self._l10n_pl_ksef_engine_arm(fields.Datetime.now())
        self._l10n_pl_ksef_engine_commit()

    @api.model
    def _l10n_pl_ksef_engine_follow_posted(self, company):
        """Invoices that Post to KSeF sent but left awaiting KSeF's verdict (still processing
        when the user's request ended): ask KSeF about them, never send them again. The
        engine's own sessions are settled by reconcile instead."""
        engine_sessions = self.env["l10n_pl_ksef.session"].sudo().search(
            [("company_id", "=", company.id), ("engine", "=", True)]).mapped("reference_number")
        # A submission KSeF gave no reference for is asked about only when no Post can still be
        # sending it (its worker died between the journal and KSeF's answer).
        documents = self.env["l10n_pl_ksef.document"].sudo().search([
            ("company_id", "=", company.id), ("state", "=", "sending"), ("session_reference", "!=", False),
            "|", ("invoice_reference", "!=", False), ("sent_at", "<", fields.Datetime.now() - POST_IN_FLIGHT),
            ("move_id.l10n_pl_ksef_state", "=", "sending"), ("session_reference", "not in", engine_sessions),
        ])
        moves = documents.move_id
        if not moves:
            return
        try:
            moves.with_context(l10n_pl_ksef_engine=True)._l10n_pl_ksef_update_status()
        except UserError as error:  # KSeF unreachable: look again later
            _logger.info("KSeF status of company %s invoices not checked now: %s", company.id, error)
        if moves.filtered(lambda m: m.l10n_pl_ksef_state == "sending"):
            self._l10n_pl_ksef_engine_arm(fields.Datetime.now() + FOLLOW_UP_DELAY)
        self._l10n_pl_ksef_engine_commit()

    @api.model
    def _l10n_pl_ksef_engine_companies(self):
        """Companies with work, the one whose waiting invoice has the nearest deadline first (a
        run cut by its budget serves the most urgent first), then by id."""
        self.env.flush_all()
        self.env.cr.execute("""
            SELECT company_id FROM (
                SELECT company_id, l10n_pl_ksef_deadline AS deadline FROM account_move
                 WHERE l10n_pl_ksef_state IN %s AND state = 'posted'
                UNION ALL
                SELECT company_id, NULL FROM l10n_pl_ksef_session
                 WHERE engine AND journal_state IN ('opened', 'closed')
            ) work
             GROUP BY company_id
             ORDER BY MIN(deadline) NULLS LAST, company_id
        """, [ON_THE_WAY_STATES])
        return self.env["res.company"].browse([row[0] for row in self.env.cr.fetchall()])

    @api.model
    def _l10n_pl_ksef_engine_can_commit(self):
        return self.env["account.move.send"]._can_commit() and not self.env.context.get("l10n_pl_ksef_no_commit")

    @api.model
    def _l10n_pl_ksef_engine_commit(self):
        if self._l10n_pl_ksef_engine_can_commit():
            self.env.cr.commit()  # pylint: disable=invalid-commit  # exactly once: journal before upload

    @api.model
    def _l10n_pl_ksef_engine_paused(self, company):
        """None when sending may go on; else when to look again."""
        paused = getattr(company, "_l10n_pl_ksef_sending_paused", None)
        if not paused or not paused():
            return None
        resumes = getattr(company, "_l10n_pl_ksef_sending_resumes_at", None)
        at = resumes() if resumes else None
        return min(at, fields.Datetime.now() + PAUSE_RECHECK) if at else fields.Datetime.now() + PAUSE_RECHECK

    @api.model
    def _l10n_pl_ksef_engine_submitter(self, company, client, journal):
        options = {"batch_threshold": max(1, company.l10n_pl_ksef_batch_threshold or 10),
                   "max_inline_wait": 30.0, "session_timeout": 300.0}
        options.update(self.env.context.get("l10n_pl_ksef_engine_options") or {})
        return submission.Submitter(client, journal=journal, is_own_original=self._l10n_pl_ksef_engine_is_own_original,
                                    **options)

    @api.model
    def _l10n_pl_ksef_engine_is_own_original(self, item, ksef_number, invoice_hash):
        """The Odoo side's evidence for the Submitter's one 440 rule: the original KSeF names is
        this invoice's when its KSeF number or its file's hash is one this invoice is known by
        (``_l10n_pl_ksef_own_ksef_numbers``/``_l10n_pl_ksef_own_hashes``, extended by bridges)."""
        move = self.sudo().browse(int(item.key)).exists()
        if not move:
            return False
        return ksef_number in move._l10n_pl_ksef_own_ksef_numbers() or (
            bool(invoice_hash) and invoice_hash in move._l10n_pl_ksef_own_hashes())

    @api.model
    def _l10n_pl_ksef_engine_failure_delay(self, error, failures):
        return submission.backoff(failures, base=30.0, cap=3600.0)

    @api.model
    def _l10n_pl_ksef_engine_client(self, company):
        return company._l10n_pl_ksef_client()

    @api.model
    def _l10n_pl_ksef_engine_journal(self, company):
        return EngineJournal(self.env, company)

    @api.model
    def _l10n_pl_ksef_engine_run(self, company, limit=None):
        """One run for one company: reconcile unsettled sessions, then send the queue.
        Returns counts by outcome status."""
        Move = self.with_context(l10n_pl_ksef_engine=True).sudo().with_company(company)
        stats = {}
        resume_at = Move._l10n_pl_ksef_engine_paused(company)
        if resume_at:
            _logger.info("KSeF sending of company %s paused (Latarnia); looking again at %s", company.id, resume_at)
            Move._l10n_pl_ksef_engine_arm(resume_at)
            return stats
        unsettled = Move.env["l10n_pl_ksef.session"].sudo().search([
            ("company_id", "=", company.id), ("engine", "=", True), ("journal_state", "in", ("opened", "closed"))],
            order="id")
        if not unsettled and not Move._l10n_pl_ksef_engine_claim(company, 1, lock=False):
            return stats
        client = Move._l10n_pl_ksef_engine_client(company)
        journal = Move._l10n_pl_ksef_engine_journal(company)
        submitter = Move._l10n_pl_ksef_engine_submitter(company, client, journal)
        try:
            Move._l10n_pl_ksef_engine_send(company, submitter, journal, unsettled, stats, limit)
        finally:
            journal.release()
        Move._l10n_pl_ksef_engine_rearm(company)
        return stats

    @api.model
    def _l10n_pl_ksef_engine_send(self, company, submitter, journal, unsettled, stats, limit):
        Move = self
        unsettled = unsettled.filtered(journal.take_over)
        if unsettled:
            Move._l10n_pl_ksef_engine_reconcile(submitter, journal, unsettled, stats)
        seen = []
        limit = limit or 10 * MAX_CLAIM
        while len(seen) < limit:
            if seen and Move._l10n_pl_ksef_engine_time_up():
                return      # the cron hands over to the next run
            ids = Move._l10n_pl_ksef_engine_claim(company, min(MAX_CLAIM, limit - len(seen)), exclude=seen)
            if not ids:
                break
            seen += ids
            read_started = time.perf_counter()
            items = Move._l10n_pl_ksef_engine_items(Move.browse(ids))
            read_seconds = time.perf_counter() - read_started
            for index, session_plan in enumerate(submitter.plan(items).sessions):
                session_items = session_plan.items
                if index and Move._l10n_pl_ksef_engine_time_up():
                    return  # the cron hands over to the next run
                if index:
                    # the previous session's commit released the row locks: take them again
                    still = set(Move._l10n_pl_ksef_engine_claim(company, len(session_items),
                                                                only=[i.key for i in session_items]))
                    session_items = [i for i in session_items if i.key in still]
                if not session_items:
                    continue
                started, phases = time.perf_counter(), dict(submitter.phase_times)
                outcomes = submitter.submit(session_items)
                for outcome in outcomes:
                    stats[outcome.status] = stats.get(outcome.status, 0) + 1
                # a session that could not even be opened reports its items without journaling
                unjournaled = [o for o in outcomes if o.status == submission.RETRY and not o.session_reference]
                if unjournaled:
                    journal.outcomes(unjournaled)
                flush_started = time.perf_counter()
                journal.flush()
                flush_seconds = time.perf_counter() - flush_started
                # where a flush spends its time, for whoever sizes the server (no invoice data)
                spent = {name: seconds - phases.get(name, 0.0) for name, seconds in submitter.phase_times.items()}
                spent["journal flush"] = flush_seconds
                if not index:
                    spent = {"reading the frozen files": read_seconds, **spent}
                spent = ", ".join("%s %.1f s" % item for item in spent.items() if item[1] >= 0.05)
                _logger.info("KSeF sending of company %s: %d invoices (%s session) in %.1f s%s", company.id,
                             len(session_items), session_plan.kind, time.perf_counter() - started,
                             ": " + spent if spent else "")

    @api.model
    def _l10n_pl_ksef_engine_claim(self, company, limit, exclude=(), only=None, lock=True):
        """Ids of waiting invoices, nearest deadline first, then oldest; locked (SKIP LOCKED)."""
        order = SQL("m.id")
        if "l10n_pl_ksef_deadline" in self._fields and self._fields["l10n_pl_ksef_deadline"].store:
            order = SQL("m.l10n_pl_ksef_deadline ASC NULLS LAST, m.id")
        query = SQL("""
            SELECT m.id FROM account_move m
             WHERE m.company_id = %(company)s AND m.state = 'posted'
               AND m.l10n_pl_ksef_state IN %(states)s AND m.l10n_pl_ksef_xml_id IS NOT NULL
               AND (m.l10n_pl_ksef_next_try IS NULL OR m.l10n_pl_ksef_next_try <= %(now)s)
               AND %(scope)s
               %(exclude)s %(only)s
             ORDER BY %(order)s
             LIMIT %(limit)s
             %(lock)s
        """, company=company.id, states=WAITING_STATES, now=fields.Datetime.now(),
            scope=self._l10n_pl_ksef_engine_scope(company),
            exclude=SQL("AND m.id != ALL(%s)", list(exclude)) if exclude else SQL(),
            only=SQL("AND m.id = ANY(%s)", list(only)) if only is not None else SQL(),
            order=order, limit=limit, lock=SQL("FOR UPDATE OF m SKIP LOCKED") if lock else SQL())
        self.env.flush_all()
        self.env.cr.execute(query)
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _l10n_pl_ksef_engine_scope(self, company):
        """SQL condition on ``m`` (account_move): which waiting invoices of ``company`` may go to its
        current KSeF connection (the drill mode narrows it)."""
        return SQL("TRUE")

    @api.model
    def _l10n_pl_ksef_engine_items(self, moves):
        """``submission.Item``s of the frozen bytes (hash-checked); unreadable ones are set aside."""
        items = []
        for move in moves:
            try:
                items.append(move._l10n_pl_ksef_engine_item())
            except Exception as error:  # noqa: BLE001 - a broken file must not block the queue
                _logger.warning("KSeF: invoice %s not sent, frozen XML unusable: %s", move.id, error)
                move._l10n_pl_ksef_write({"l10n_pl_ksef_error": str(error),
                                          "l10n_pl_ksef_next_try": fields.Datetime.now() + datetime.timedelta(days=1)})
        return items

    def _l10n_pl_ksef_engine_item(self):
        """The ``submission.Item`` of this invoice's frozen bytes (the same for the engine and Post)."""
        self.ensure_one()
        xml = self._l10n_pl_ksef_frozen_xml()
        offline = self.l10n_pl_ksef_state == "offline" or bool(self._l10n_pl_ksef_is_offline())
        corrected = self._l10n_pl_ksef_hash_of_corrected_invoice() or None
        return submission.Item(self.id, xml, self.l10n_pl_ksef_xml_hash, offline, corrected)

    @api.model
    def _l10n_pl_ksef_engine_reconcile(self, submitter, journal, sessions, stats):
        """Ask KSeF about every unsettled session before sending anything again."""
        ids = set()
        for session in sessions:
            ids.update(int(key) for key in json.loads(session.invoice_hashes or "{}").values())
        moves = self.browse(sorted(ids)).exists().filtered(lambda m: m.l10n_pl_ksef_state == "sending")
        items = self._l10n_pl_ksef_engine_items(moves)
        records = [session._l10n_pl_ksef_session_record() for session in sessions]
        journal.remember(sessions)
        result = submitter.reconcile(records, items)
        for outcome in result.outcomes:
            stats["reconciled_" + outcome.status] = stats.get("reconciled_" + outcome.status, 0) + 1
        if result.to_resend:
            # KSeF does not hold them: back to the queue, sent below in this very run
            # _() looks for the environment in its caller's frame: not inside the comprehension.
            description = _("Not received by KSeF; sent again.")
            journal.outcomes([submission.Outcome(item.key, submission.RETRY, item.invoice_hash, retry_after=0,
                                                 description=description)
                              for item in result.to_resend])
        journal.flush()

    @api.model
    def _l10n_pl_ksef_engine_rearm(self, company):
        """Arm the cron for the earliest moment something can be done: a retry time, a pending
        session, or the margin before the nearest deadline."""
        at = []
        self.env.flush_all()
        self.env.cr.execute("""
            SELECT MIN(l10n_pl_ksef_next_try) FROM account_move
             WHERE company_id = %s AND state = 'posted' AND l10n_pl_ksef_state IN %s
        """, [company.id, WAITING_STATES])
        next_try = self.env.cr.fetchone()[0]
        if next_try:
            at.append(next_try)
        if self.env["l10n_pl_ksef.session"].sudo().search_count([
                ("company_id", "=", company.id), ("engine", "=", True),
                ("journal_state", "in", ("opened", "closed"))], limit=1):
            at.append(fields.Datetime.now() + datetime.timedelta(seconds=30))
        if at:
            self._l10n_pl_ksef_engine_arm(min(at))

    @api.model
    def _l10n_pl_ksef_engine_next_try(self, move, retry_after):
        """When a retried invoice may go again: Retry-After or backoff, never past the margin
        before its deadline."""
        delay = retry_after if retry_after is not None else submission.backoff(move.l10n_pl_ksef_attempts, 5.0, 3600.0)
        at = fields.Datetime.now() + datetime.timedelta(seconds=max(0.0, delay))
        deadline = move.l10n_pl_ksef_deadline if "l10n_pl_ksef_deadline" in move._fields else None
        if deadline:
            latest = datetime.datetime.combine(deadline, datetime.time.min) - DEADLINE_MARGIN
            if latest > fields.Datetime.now():
                at = min(at, latest)
        return at
