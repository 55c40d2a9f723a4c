"""How an invoice's KSeF deadline is said: always a date in the reader's date format (or, while
an announced failure goes on, the rule that will give it), with the reason in the reader's
language. The reason's key is stored; the sentences are made when read, so a Polish accountant
reads Polish even when a cron computed the deadline."""
import datetime

import pytz

from odoo import api, fields, models
from odoo.tools.misc import format_date, format_datetime

from ..ksef import deadlines as ksef_deadlines
from . import ksef_messages
from .account_move_ksef_lifecycle import ENGINE_QUEUE_STATES

WARSAW = pytz.timezone("Europe/Warsaw")


def _warsaw_date(moment):
    """The Polish calendar date of a naive UTC datetime (Odoo's storage)."""
    return pytz.utc.localize(moment).astimezone(WARSAW).date() if moment else None


class AccountMoveKsefDeadlineText(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_deadline_reason_key = fields.Char(
        string="KSeF deadline rule", copy=False, readonly=True,
        help="Which rule of the offline modes gave the deadline (the reason is worded from it when read).")
    l10n_pl_ksef_deadline_note = fields.Char(
        string="Deadline for sending to KSeF", compute="_compute_l10n_pl_ksef_deadline_note",
        help="By when this invoice issued offline must reach KSeF, and why.")
    l10n_pl_ksef_deadline_why = fields.Char(
        string="Reason for the deadline", compute="_compute_l10n_pl_ksef_deadline_note")
    l10n_pl_ksef_next_try_note = fields.Char(
        string="Next automatic attempt", compute="_compute_l10n_pl_ksef_deadline_note")

    # ---- words --------------------------------------------------------------------------------

    def _l10n_pl_ksef_date_text(self, day):
        return format_date(ksef_messages.user_language_env(self.env), day) if day else ""

    def _l10n_pl_ksef_moment_text(self, moment):
        """A moment in the reader's time zone (Warsaw when he has none), never UTC."""
        env = ksef_messages.user_language_env(self.env)
        return format_datetime(env, moment, tz=env.context.get("tz") or env.user.tz or "Europe/Warsaw",
                               dt_format="short") if moment else ""

    def _l10n_pl_ksef_reason_words(self, key, event_record):
        """The reason of a deadline rule in the reader's language, dates in his format."""
        self.ensure_one()
        _ = ksef_messages.user_language_env(self.env)._
        event = event_record.display_title if event_record else ""
        end = self._l10n_pl_ksef_date_text(_warsaw_date(event_record.date_end)) if event_record else ""
        texts = {
            ksef_deadlines.REASON_OFFLINE24: _(
                "Offline24: the next business day after the issue date %(date)s.",
                date=self._l10n_pl_ksef_date_text(self.invoice_date)),
            ksef_deadlines.REASON_UNAVAILABILITY: _(
                "KSeF unavailability %(event)s ended on %(end)s: the next business day after its end.",
                event=event, end=end),
            ksef_deadlines.REASON_UNAVAILABILITY_ONGOING: _(
                "KSeF unavailability %(event)s is still going on: the next business day after it ends "
                "(its end is not announced yet).", event=event),
            ksef_deadlines.REASON_FAILURE: _(
                "KSeF failure %(event)s ended on %(end)s: 7 business days after its end.", event=event, end=end),
            ksef_deadlines.REASON_FAILURE_ONGOING: _(
                "KSeF failure %(event)s is still going on: 7 business days after the failure ends "
                "(its end is not announced yet).", event=event),
            ksef_deadlines.REASON_TOTAL_FAILURE: _(
                "Total KSeF failure %(event)s: there is no obligation to send this invoice to KSeF.", event=event)
            if self.l10n_pl_ksef_offline_mode != ksef_deadlines.TOTAL_FAILURE else
            _("Issued during a total KSeF failure, outside KSeF: it is never sent to KSeF."),
        }
        return texts.get(key) or _("Deadline set by the KSeF rules for offline invoices.")

    def _l10n_pl_ksef_deadline_words(self, deadline, key):
        """The deadline itself, never empty: a date, or the rule while the event goes on."""
        _ = ksef_messages.user_language_env(self.env)._
        if deadline:
            return self._l10n_pl_ksef_date_text(deadline)
        return {
            ksef_deadlines.REASON_FAILURE_ONGOING: _("7 business days after the failure ends (not yet announced)"),
            ksef_deadlines.REASON_UNAVAILABILITY_ONGOING: _(
                "the next business day after the unavailability ends (not yet announced)"),
            ksef_deadlines.REASON_TOTAL_FAILURE: _("none: there is no obligation to send it"),
        }.get(key) or _("not known yet")

    def _l10n_pl_ksef_deadline_reason_text(self, result, event_record):
        # Stored for the chatter and the drill report: in the writer's language, dates formatted.
        return self._l10n_pl_ksef_reason_words(result.reason, event_record)

    @api.depends("l10n_pl_ksef_deadline", "l10n_pl_ksef_deadline_reason_key", "l10n_pl_ksef_deadline_event_id",
                 "l10n_pl_ksef_state", "l10n_pl_ksef_offline_mode", "l10n_pl_ksef_next_try", "invoice_date")
    @api.depends_context("lang", "uid", "tz")
    def _compute_l10n_pl_ksef_deadline_note(self):
        for move in self:
            key = move.l10n_pl_ksef_deadline_reason_key
            why = (move._l10n_pl_ksef_reason_words(key, move.sudo().l10n_pl_ksef_deadline_event_id)
                   if key else move.l10n_pl_ksef_deadline_reason)
            move.l10n_pl_ksef_deadline_why = why or False
            move.l10n_pl_ksef_deadline_note = False
            if move.l10n_pl_ksef_offline_mode and move.l10n_pl_ksef_state == "offline":
                _ = ksef_messages.user_language_env(move.env)._
                move.l10n_pl_ksef_deadline_note = _(
                    "Deadline for sending it to KSeF: %(deadline)s. %(why)s",
                    deadline=move._l10n_pl_ksef_deadline_words(move.l10n_pl_ksef_deadline, key), why=why or "")
            move.l10n_pl_ksef_next_try_note = False
            if move.l10n_pl_ksef_state in ENGINE_QUEUE_STATES and move.state == "posted":
                _ = ksef_messages.user_language_env(move.env)._
                when = move.l10n_pl_ksef_next_try
                move.l10n_pl_ksef_next_try_note = (
                    _("The next automatic attempt to send it to KSeF: %(when)s.",
                      when=move._l10n_pl_ksef_moment_text(max(when, fields.Datetime.now())))
                    if when else _("It is sent to KSeF automatically as soon as KSeF answers."))

    def _l10n_pl_ksef_expected_deadline(self, mode, event=None, now=None):
        """(deadline, reason key) this invoice would get if issued offline in ``mode`` now."""
        self.ensure_one()
        now = now or fields.Datetime.now()
        pairs = self.env["l10n_pl_ksef.event"].sudo()._l10n_pl_ksef_events_for(
            self.company_id._l10n_pl_ksef_event_environment())
        mode_event = None
        if event:
            mode_event = next((e for e, record in pairs if record == event), None)
        try:
            result = ksef_deadlines.effective_deadline(
                mode, self.invoice_date or _warsaw_date(now), [e for e, _record in pairs], mode_event=mode_event,
                issued_at=now)
        except ValueError:
            return None, None
        return result.deadline, result.reason

    def _l10n_pl_ksef_deadline_passed(self, deadline):
        today = _warsaw_date(fields.Datetime.now()) or datetime.date.today()
        return bool(deadline and deadline < today)

    # ---- after Post to KSeF -----------------------------------------------------------------

    def _l10n_pl_ksef_post_notification(self):
        """What Post to KSeF tells the accountant: the KSeF number, or the offline deadline, or
        when the next automatic attempt is."""
        self.ensure_one()
        _ = ksef_messages.user_language_env(self.env)._
        state = self.l10n_pl_ksef_state
        if state == "accepted":
            kind, title = "success", _("Accepted by KSeF")
            message = _("Invoice %(invoice)s has KSeF number %(number)s.", invoice=self.display_name,
                        number=self.l10n_pl_ksef_number)
        elif state == "offline":
            kind, title = "warning", _("Issued offline")
            message = " ".join(filter(None, [self.l10n_pl_ksef_deadline_note, self.l10n_pl_ksef_next_try_note]))
        elif state == "outside":
            kind, title = "warning", _("Issued outside KSeF")
            message = self.l10n_pl_ksef_deadline_why or ""
        elif state == "sending":
            kind, title = "info", _("Sent, awaiting KSeF")
            message = _("KSeF is still processing invoice %(invoice)s; its KSeF number is fetched automatically.",
                        invoice=self.display_name)
        else:
            return True
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {"type": kind, "title": title, "message": message, "sticky": False,
                       "next": {"type": "ir.actions.client", "tag": "soft_reload"}},
        }
