"""Post to KSeF, Send & Print and Refresh status on the engine's road: one invoice, one plan.

The button runs the submission engine's ``ksef.submission.Submitter`` on a one-invoice plan,
in the company's open interactive session (``l10n_pl_ksef.session``, reused until it expires),
with the engine's journal: the submission is recorded (``sending``, committed outside tests)
before the invoice is sent, and KSeF's verdict lands through ``_l10n_pl_ksef_apply_results``.
So the button and the cron share one way to send, one rule for a 440 duplicate (the
Submitter's, fed with the invoice's own KSeF numbers and hashes) and one way to ask KSeF about
a sent invoice (``Submitter.reconcile``).

What the user meets stays a bounded wait: a verdict, or the invoice stays ``sending`` and the
cron asks KSeF about it later; every error is a translated message naming invoice and company.
"""
import json
import logging

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..ksef import client as ksef_client
from ..ksef import errors as ksef_errors
from ..ksef import submission
from .account_move_ksef_send import UNREACHABLE_ERRORS
from .l10n_pl_ksef_engine import POST_IN_FLIGHT
from .l10n_pl_ksef_engine_journal import EngineJournal

_logger = logging.getLogger(__name__)

# The user waits for the verdict this long at most (then the cron follows up).
POST_WAIT = 4.0
# Refresh status asks KSeF once, briefly.
REFRESH_WAIT = 0.5
# The Submitter's options for one invoice sent while the user waits: no sleeping on KSeF's
# trouble (the user is told, the engine's next try follows), a short wait for the verdict.
POST_OPTIONS = {"batch_threshold": 2, "upo": "invoice", "poll_interval": 1.0, "session_timeout": POST_WAIT,
                "poll_each": True, "max_inline_wait": 0.0, "max_attempts": 1, "uncertain_grace": 0.2}
# Tries of one Post: a closed/expired session is replaced once, refused credentials renewed once.
POST_TRIES = 3


class PostJournal(EngineJournal):
    """The engine's journal for Post to KSeF: the session is the company's interactive one
    (already in ``l10n_pl_ksef.session``, never closed here); verdicts land one by one (tracked
    writes, chatter, UPO attached). An item KSeF certainly did not take (the send was refused
    before anything happened, or never answered) is not landed: its submission is undone and
    the caller tells the user, as before anything was sent."""

    bulk = False

    def __init__(self, env, company, session_record=None):
        super().__init__(env, company)
        self.session_record = session_record
        self.opened = {}    # move id -> (state, error) before this sending
        self.unsent = []    # outcomes of items KSeF does not hold from this sending

    def session_opened(self, record):
        moves = self.Move.browse(sorted(int(key) for key in record.hashes.values()))
        for move in moves:
            self.opened[move.id] = (move.l10n_pl_ksef_state, move.l10n_pl_ksef_error)
        self._journal_sending(moves, record)
        moves._l10n_pl_ksef_move_to("sending", {"l10n_pl_ksef_error": False})
        self.flush()

    def session_closed(self, session_reference):
        self.flush()    # the company's session stays open for the next invoices

    def session_settled(self, session_reference):
        self.flush()    # an engine session is settled by the engine's own reconcile

    def outcomes(self, outcomes):
        landed = []
        for outcome in outcomes:
            if (outcome.key in self.opened and not outcome.invoice_reference
                    and outcome.status in (submission.RETRY, submission.PENDING)):
                self.unsent.append(outcome)
            else:
                landed.append(outcome)
        if self.unsent:
            self.undo([outcome.key for outcome in self.unsent])
        for outcome in landed:
            if (outcome.key in self.opened and outcome.invoice_reference
                    and outcome.status != submission.DUPLICATE_ADOPTED):
                self.Move.browse(outcome.key)._l10n_pl_ksef_log(_(
                    "Sent to KSeF (session %(session)s, reference %(reference)s); awaiting its verdict.",
                    session=outcome.session_reference, reference=outcome.invoice_reference))
        if landed:
            super().outcomes(landed)
        self.flush()

    def undo(self, keys):
        """KSeF holds nothing of this sending: its submission goes, the invoice is as it was."""
        for key in keys:
            if key not in self.opened:
                continue
            state, error = self.opened.pop(key)
            self.env["l10n_pl_ksef.document"].sudo().search([
                ("move_id", "=", key), ("state", "=", "sending"), ("invoice_reference", "=", False),
                ("session_reference", "=", self.session_record.reference_number),
            ]).unlink()
            self.Move.browse(key)._l10n_pl_ksef_move_to(state, {"l10n_pl_ksef_error": error})
        self.flush()


class AccountMoveKsefPost(models.Model):
    _inherit = "account.move"

    @api.model
    def _l10n_pl_ksef_post_submitter(self, company, client, journal, online_session=None):
        """The engine's Submitter (same 440 evidence) tuned for a user who waits."""
        options = dict(POST_OPTIONS, **(self.env.context.get("l10n_pl_ksef_post_options") or {}))
        return submission.Submitter(client, journal=journal, online_session=online_session,
                                    is_own_original=self._l10n_pl_ksef_engine_is_own_original, **options)

    def _l10n_pl_ksef_post_send(self):
        """Send this (frozen, reserved) invoice on a one-invoice plan in the company's open
        interactive session; land KSeF's verdict. Returns True, or the offline flow's action."""
        self.ensure_one()
        company = self.company_id
        item = self._l10n_pl_ksef_engine_item()
        Session = self.env["l10n_pl_ksef.session"]
        force_login = False
        for attempt in range(POST_TRIES):
            journal = client = None
            try:
                client = company._l10n_pl_ksef_client(force_login=force_login)
                session_record, session = Session._l10n_pl_ksef_open_session(company, client)
                journal = PostJournal(self.env, company, session_record)
                submitter = self._l10n_pl_ksef_post_submitter(company, client, journal, online_session=session)
                [outcome] = submitter.submit([item])
            except ksef_errors.Unauthorized as error:
                if journal:
                    journal.undo(list(journal.opened))
                if (client is None or isinstance(error, ksef_errors.AuthenticationFailed)
                        or client.l10n_pl_ksef_fresh_login or attempt == POST_TRIES - 1):
                    return self._l10n_pl_ksef_post_refused(error)
                # cached credentials KSeF no longer accepts: a fresh login, once
                company.sudo()._l10n_pl_ksef_forget_tokens()
                force_login = True
                continue
            except UNREACHABLE_ERRORS + (ksef_errors.KsefError,) as error:
                if journal:
                    journal.undo(list(journal.opened))
                return self._l10n_pl_ksef_post_refused(error)
            if not journal.unsent:
                return True    # landed: accepted, adopted, rejected, or still awaiting KSeF
            error = outcome.error
            if isinstance(error, (ksef_errors.SessionClosed, ksef_errors.SessionNotFound)) and attempt < POST_TRIES - 1:
                session_record._l10n_pl_ksef_mark_closed()   # expired or closed by KSeF: a new one
                continue
            return self._l10n_pl_ksef_post_refused(error or ksef_errors.KsefUnavailable(outcome.description))
        raise AssertionError("unreachable")

    def _l10n_pl_ksef_post_refused(self, error):
        """KSeF did not take the invoice: tell the user why (nothing was accepted)."""
        company = self.company_id
        if isinstance(error, UNREACHABLE_ERRORS):
            _logger.info("KSeF unreachable while sending %s: %s", self.id, type(error).__name__)
            return self._l10n_pl_ksef_handle_unreachable(error)
        if isinstance(error, ksef_errors.RateLimited):
            raise UserError(_("KSeF asks to slow down (too many requests). Post invoice %(invoice)s again in "
                              "%(seconds)s seconds.", invoice=self.display_name,
                              seconds=error.retry_after or 60)) from error
        if isinstance(error, ksef_errors.AuthenticationFailed):
            raise UserError(_("KSeF refused the login of company %(company)s: %(error)s\nCheck the KSeF token or "
                              "certificate and the context identifier in Settings > Invoicing > KSeF.",
                              company=company.name, error=self._l10n_pl_ksef_error_text(error))) from error
        if isinstance(error, (ksef_errors.Unauthorized, ksef_errors.Forbidden)):
            raise UserError(_("KSeF does not accept the credentials of company %(company)s (even after "
                              "renewing the access): %(error)s\nCheck the KSeF token or certificate and its "
                              "permission to send invoices (InvoiceWrite).",
                              company=company.name, error=self._l10n_pl_ksef_error_text(error))) from error
        raise UserError(_("KSeF did not accept invoice %(invoice)s: %(error)s",
                          invoice=self.display_name, error=self._l10n_pl_ksef_error_text(error))) from error

    def _l10n_pl_ksef_reconcile_sent(self, document, client):
        """Ask KSeF about this invoice's sending ``document`` with the Submitter's reconcile (the
        rule the engine follows for its sessions) and land what KSeF says; nothing is sent."""
        self.ensure_one()
        company = self.company_id
        Session = self.env["l10n_pl_ksef.session"].sudo()
        session = Session.search([("reference_number", "=", document.session_reference)], limit=1)
        journal = PostJournal(self.env, company, session)
        online_session = None
        now = fields.Datetime.now()
        if session.engine:
            if not journal.take_over(session):
                return False    # the engine is working on that session right now: it lands the verdict
            record = session._l10n_pl_ksef_session_record()
        elif not document.invoice_reference and (document.sent_at or now - POST_IN_FLIGHT) > now - POST_IN_FLIGHT:
            return False        # a Post may still be sending it: KSeF's answer to that Post decides
        else:
            record = submission.SessionRecord(document.session_reference, submission.ONLINE, document.offline_mode,
                                              {document.invoice_hash: self.id}, None)
            if session.state == "open" and session.secret:
                # the company's interactive session: asked about, never closed
                online_session = ksef_client.OnlineSession.from_dict(json.loads(session.secret))
        try:
            submitter = self._l10n_pl_ksef_post_submitter(company, client, journal, online_session=online_session)
            submitter.session_timeout = REFRESH_WAIT
            result = submitter.reconcile([record], [self._l10n_pl_ksef_engine_item()])
        finally:
            journal.release()
        if result.to_resend:
            # KSeF does not hold it: back to the queue (the engine sends it), as its reconcile does
            description = _("Not received by KSeF; sent again.")
            journal.bulk = True     # landed exactly as the engine's reconcile lands it
            journal.outcomes([submission.Outcome(item.key, submission.RETRY, item.invoice_hash, retry_after=0,
                                                 description=description) for item in result.to_resend])
        return True
