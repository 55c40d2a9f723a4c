"""Recovery within a minute of KSeF answering again (issue 15, point 4).

KSeF's return is only seen by asking: every failed try (a company run, an invoice's attempt,
Post to KSeF that met no KSeF) arms the next run of the submission engine within RETRY_SOON,
whatever the number of failures before; KSeF asking to wait (Retry-After) is still honoured.
When Latarnia or the engine sees KSeF available again after a pause, the engine runs at once.
A 5xx during login is retried inside the run instead of losing the whole company run.
"""
import datetime
import logging
import time

from odoo import api, fields, models

from ..ksef import errors as ksef_errors
from ..ksef import polling, submission
from .account_move_ksef_lifecycle import ENGINE_QUEUE_STATES
from .account_move_ksef_send import UNREACHABLE_ERRORS
from .res_company_offline import SENDING_PAUSED_STATUSES

_logger = logging.getLogger(__name__)

# The longest wait between two tries while KSeF does not answer: KSeF's return is seen within it.
RETRY_SOON = datetime.timedelta(seconds=30)
# While Latarnia announces a pause, the engine asks Latarnia again this often.
PAUSE_RECHECK = datetime.timedelta(seconds=30)
# Login attempts inside one run when KSeF answers 5xx (pauses in seconds between them).
LOGIN_PAUSES = (1.0, 2.0)
# Odoo's cron runner wakes for a trigger in the future only at its next minute tick: while KSeF
# does not answer (or Latarnia announces a pause), a run started by the runner watches for KSeF's
# return itself, asking every WATCH_EVERY seconds for WATCH_FOR seconds, then hands over to the
# next run at once. It costs one sleeping cron worker during an outage, and brings what waits to
# KSeF within seconds of its return instead of up to a minute and a half. The watch never runs
# past the run's time budget (``_l10n_pl_ksef_engine_time_left``): Odoo's cron limits hold.
WATCH_FOR = 45.0
WATCH_EVERY = 5.0


class AccountMoveKsefRecovery(models.Model):
    _inherit = "account.move"

    def _l10n_pl_ksef_retry_soon(self):
        """Post to KSeF met no KSeF: the engine tries again shortly (not after the reservation),
        by the engine's own next-try rule (within RETRY_SOON, before the deadline's margin)."""
        at = self._l10n_pl_ksef_engine_next_try(self, None)
        self._l10n_pl_ksef_write({"l10n_pl_ksef_next_try": at})
        self._l10n_pl_ksef_engine_arm(at)
        self._l10n_pl_ksef_commit()

    @api.model
    def _cron_l10n_pl_ksef_submit(self):
        engine = self._l10n_pl_ksef_engine_clocked()    # one clock for the run and its watch
        result = super(AccountMoveKsefRecovery, engine)._cron_l10n_pl_ksef_submit()
        # Only under Odoo's cron runner (it names the job), never in a test or a "Run manually" click.
        if engine.env.context.get("cron_id") and engine._l10n_pl_ksef_engine_can_commit():
            engine._l10n_pl_ksef_engine_watch(watch_for=engine._l10n_pl_ksef_engine_time_left(WATCH_FOR))
        return result

    @api.model
    def _l10n_pl_ksef_engine_watch(self, watch_for=WATCH_FOR, every=WATCH_EVERY):
        """Companies whose run met no KSeF (the run failed, or invoices wait for a retry) or a
        Latarnia pause: ask again every ``every`` seconds for at most ``watch_for`` seconds (what
        is left of the run's budget); as soon as KSeF (or Latarnia) answers, arm the next run now
        (the runner is notified and starts it at once). Returns True when KSeF came back."""
        self.env.flush_all()
        self.env.cr.execute("""
            SELECT DISTINCT company_id FROM account_move
             WHERE state = 'posted' AND l10n_pl_ksef_state IN %s
               AND l10n_pl_ksef_attempts > 0 AND l10n_pl_ksef_next_try > %s
        """, [ENGINE_QUEUE_STATES, fields.Datetime.now()])
        retrying = {row[0] for row in self.env.cr.fetchall()}   # a session could not be opened, etc.
        companies = self._l10n_pl_ksef_engine_companies().sudo().filtered(
            lambda c: c.l10n_pl_ksef_engine_failures or c.id in retrying or c._l10n_pl_ksef_sending_paused())
        if not companies:
            return False
        back = self.env["res.company"]
        if watch_for >= every:
            # the run has just met no KSeF: the first look is one pause later
            time.sleep(every)
            back = polling.until(lambda: companies.filtered(self._l10n_pl_ksef_ksef_answers), bool,
                                 timeout=watch_for - every, interval=every).value
        # Back: send now, retries included. Still down: the next run starts at once and keeps watching.
        if back:
            self._l10n_pl_ksef_release_retries(back.ids)
        self._l10n_pl_ksef_engine_arm(fields.Datetime.now())
        self._l10n_pl_ksef_engine_commit()
        return bool(back)

    @api.model
    def _l10n_pl_ksef_ksef_answers(self, company):
        """A cheap question: Latarnia when it announces a pause, else KSeF's public keys (no login)."""
        try:
            if company._l10n_pl_ksef_sending_paused():
                company._l10n_pl_ksef_poll_latarnia(timeout=5.0)
                return not company._l10n_pl_ksef_sending_paused()
            client = company._l10n_pl_ksef_new_client()
            client.timeout = min(client.timeout, 5.0)
            client.public_key_certificates(force_reload=True)
            return True
        except Exception as error:  # noqa: BLE001 - any failure means: not yet
            _logger.debug("KSeF of company %s still not answering: %s", company.id, type(error).__name__)
            return False

    @api.model
    def _l10n_pl_ksef_engine_failure_delay(self, error, failures):
        """Seconds until the next run after a failed company run: KSeF unreachable is looked at
        again within RETRY_SOON; other failures (e.g. refused credentials) back off up to an hour."""
        if isinstance(error, UNREACHABLE_ERRORS + (ksef_errors.KsefTimeout,)):
            return submission.backoff(failures, base=5.0, cap=RETRY_SOON.total_seconds())
        return submission.backoff(failures, base=30.0, cap=3600.0)

    @api.model
    def _l10n_pl_ksef_engine_next_try(self, move, retry_after):
        at = super()._l10n_pl_ksef_engine_next_try(move, retry_after)
        if retry_after is None:
            at = min(at, fields.Datetime.now() + RETRY_SOON)
        return at

    @api.model
    def _l10n_pl_ksef_engine_client(self, company):
        """The company's KSeF client; a login KSeF answers with 5xx is tried again in this run."""
        def wait_after(error, attempt):
            if not isinstance(error, ksef_errors.KsefUnavailable) or not error.http_status \
                    or attempt >= len(LOGIN_PAUSES):
                return None
            _logger.info("KSeF login of company %s answered %s; trying again in %.0f s",
                         company.id, error.http_status, LOGIN_PAUSES[attempt])
            return LOGIN_PAUSES[attempt]

        return submission.retried(company._l10n_pl_ksef_client, wait_after)

    @api.model
    def _l10n_pl_ksef_engine_run(self, company, limit=None):
        stats = super()._l10n_pl_ksef_engine_run(company, limit=limit)
        if stats.get(submission.ACCEPTED) or stats.get(submission.DUPLICATE_ADOPTED):
            self._l10n_pl_ksef_release_retries(company.ids)
        return stats

    @api.model
    def _l10n_pl_ksef_release_retries(self, company_ids):
        """KSeF answers again: invoices backing off after failed tries need not wait for their turn
        (never one Post to KSeF has reserved: it has no failed engine try). Arms the run now."""
        self.env.flush_all()
        self.env.cr.execute("""
            UPDATE account_move SET l10n_pl_ksef_next_try = NULL
             WHERE company_id = ANY(%s) AND state = 'posted' AND l10n_pl_ksef_state IN %s
               AND l10n_pl_ksef_next_try > %s AND l10n_pl_ksef_attempts > 0
         RETURNING id
        """, [list(company_ids), ENGINE_QUEUE_STATES, fields.Datetime.now()])
        released = [row[0] for row in self.env.cr.fetchall()]
        if released:
            self.browse(released).invalidate_recordset(["l10n_pl_ksef_next_try"])
        self._l10n_pl_ksef_engine_arm(fields.Datetime.now())
        return released

    @api.model
    def _l10n_pl_ksef_engine_paused(self, company):
        """Paused by Latarnia: ask Latarnia again (at most every PAUSE_RECHECK) so that the end of
        a failure is seen within a minute, not at the next 5-minute poll."""
        checked = company.sudo().l10n_pl_ksef_latarnia_checked_at
        if company._l10n_pl_ksef_sending_paused() and (
                not checked or checked <= fields.Datetime.now() - PAUSE_RECHECK + datetime.timedelta(seconds=5)):
            company._l10n_pl_ksef_poll_latarnia(timeout=5.0)
        resume = super()._l10n_pl_ksef_engine_paused(company)
        return min(resume, fields.Datetime.now() + PAUSE_RECHECK) if resume else None


class ResCompanyKsefRecovery(models.Model):
    _inherit = "res.company"

    def _l10n_pl_ksef_poll_latarnia(self, timeout=10.0):
        paused_before = {company.id for company in self.sudo()
                         if company.l10n_pl_ksef_latarnia_status in SENDING_PAUSED_STATUSES}
        result = super()._l10n_pl_ksef_poll_latarnia(timeout=timeout)
        back = [company_id for company_id in paused_before if result.get(company_id)
                and result[company_id] not in SENDING_PAUSED_STATUSES]
        if back:
            # KSeF is back: what waits goes now, not at the next scheduled run.
            _logger.info("Latarnia: KSeF available again for companies %s; sending what waits", back)
            self.env["account.move"]._l10n_pl_ksef_release_retries(back)
        return result
