"""Post to KSeF (online): the buttons, and every attempt kept as an ``l10n_pl_ksef.document``.

Never send twice, never lose: the invoice is frozen and reserved (``to_send``, committed) before
any network call; the sending itself is the engine's (``l10n_pl_ksef_engine_post``: its
Submitter on a one-invoice plan, its journal records the submission before the send); an
invoice in ``sending`` is only ever asked about, never sent again; a KSeF duplicate (440) of our
own file is adopted as the success it is (the Submitter's rule).
"""
import datetime
import logging

import psycopg2
import requests

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..ksef import errors as ksef_errors
from . import ksef_messages
from .account_move_ksef_lifecycle import POSTABLE_STATES

_logger = logging.getLogger(__name__)

UNREACHABLE_ERRORS = (ksef_errors.KsefUnavailable, requests.RequestException, ConnectionError, TimeoutError)


class AccountMove(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_acquisition_date = fields.Datetime(
        string="Received by KSeF on", copy=False, readonly=True,
        help="When KSeF accepted the invoice for processing (the date in its KSeF number).")
    l10n_pl_ksef_upo_id = fields.Many2one(
        "ir.attachment", string="KSeF UPO", copy=False, readonly=True,
        help="The official receipt (UPO) KSeF issued for this invoice.")
    l10n_pl_ksef_error = fields.Text(string="KSeF error", copy=False, readonly=True)
    l10n_pl_ksef_document_ids = fields.One2many(
        "l10n_pl_ksef.document", "move_id", string="KSeF submissions", readonly=True)
    l10n_pl_ksef_document_count = fields.Integer(compute="_compute_l10n_pl_ksef_document_count")
    l10n_pl_ksef_show_post = fields.Boolean(compute="_compute_l10n_pl_ksef_show_post")

    @api.depends("l10n_pl_ksef_document_ids")
    def _compute_l10n_pl_ksef_document_count(self):
        for move in self:
            move.l10n_pl_ksef_document_count = len(move.l10n_pl_ksef_document_ids)

    @api.depends("state", "move_type", "country_code", "l10n_pl_ksef_state")
    def _compute_l10n_pl_ksef_show_post(self):
        for move in self:
            move.l10n_pl_ksef_show_post = move._l10n_pl_ksef_is_applicable() and move.l10n_pl_ksef_state in POSTABLE_STATES

    # ---- hooks for other flows -------------------------------------------------------------

    def _l10n_pl_ksef_is_offline(self):
        """True when the invoice was issued offline (sent with ``offlineMode``); see the offline flow."""
        self.ensure_one()
        return False

    def _l10n_pl_ksef_hash_of_corrected_invoice(self):
        """Hash of the rejected original when this sending is a technical correction."""
        self.ensure_one()
        return False

    def _l10n_pl_ksef_handle_unreachable(self, error):
        """KSeF could not be reached (or did not answer): nothing was accepted, the invoice stays
        frozen and ready to send. The offline flow overrides this to issue the invoice offline."""
        self.ensure_one()
        self._l10n_pl_ksef_retry_soon()
        raise UserError(_(
            "KSeF cannot be reached right now, so invoice %(invoice)s was not sent. Its e-invoice stays "
            "frozen and is sent to KSeF automatically as soon as KSeF answers.%(offline)s\n\nDetails: %(error)s",
            invoice=self.display_name, error=self._l10n_pl_ksef_error_text(error),
            offline=self.env.context.get("l10n_pl_ksef_offline_off") or ""))

    # ---- buttons ---------------------------------------------------------------------------

    def action_l10n_pl_ksef_post(self):
        # A flow may answer with an action for the user (e.g. confirming an offline issue).
        actions = [result for result in (move._l10n_pl_ksef_post() for move in self) if isinstance(result, dict)]
        if not actions and len(self) == 1:
            return self._l10n_pl_ksef_post_notification()   # the KSeF number, or the offline deadline
        return actions[0] if actions else True

    def action_l10n_pl_ksef_post_selected(self):
        """List action: post the selected invoices that can go to KSeF (e.g. the overdue ones
        issued offline), leave the others alone and say how many KSeF accepted."""
        moves = self.filtered("l10n_pl_ksef_show_post")
        if not moves:
            raise UserError(_("None of the selected entries can be posted to KSeF: only posted customer invoices "
                              "and credit notes that KSeF has not accepted yet can."))
        action = moves.action_l10n_pl_ksef_post()
        if isinstance(action, dict):
            return action
        accepted = moves.filtered(lambda move: move.l10n_pl_ksef_state == "accepted")
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success" if accepted == moves else "warning",
                "message": _("KSeF accepted %(accepted)s of the %(count)s invoices sent.",
                             accepted=len(accepted), count=len(moves)),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_l10n_pl_ksef_refresh_status(self):
        self._l10n_pl_ksef_update_status()
        return True

    def action_l10n_pl_ksef_open_documents(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("KSeF submissions"),
            "res_model": "l10n_pl_ksef.document",
            "view_mode": "list,form",
            "domain": [("move_id", "=", self.id)],
            "context": {"create": False},
        }

    # ---- the flow --------------------------------------------------------------------------

    @api.model
    def _l10n_pl_ksef_can_commit(self):
        return self.env["account.move.send"]._can_commit()

    def _l10n_pl_ksef_commit(self):
        if self._l10n_pl_ksef_can_commit():
            self.env.cr.commit()  # pylint: disable=invalid-commit  # the frozen file must outlive a lost answer

    def _l10n_pl_ksef_lock(self):
        """Only one worker sends a given invoice at a time."""
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute("SELECT id FROM account_move WHERE id = %s FOR UPDATE NOWAIT", [self.id])
        except psycopg2.errors.LockNotAvailable:
            raise UserError(_("Invoice %s is being sent to KSeF by another user right now.", self.display_name)) from None

    def _l10n_pl_ksef_log(self, body, attachment_ids=None):
        # no_new_invoice: our XML attachments must not be read back as incoming invoices.
        return self.with_context(no_new_invoice=True).message_post(body=body, attachment_ids=attachment_ids or [])

    def _l10n_pl_ksef_error_text(self, error):
        """What an accountant reads about an error met on the way to KSeF (translated)."""
        return ksef_messages.ksef_error_text(self.env, error)

    def _l10n_pl_ksef_post(self):
        """Send this invoice to KSeF (or, when it was already sent, ask KSeF about it)."""
        self.ensure_one()
        if not self._l10n_pl_ksef_is_applicable():
            raise UserError(_("Only posted customer invoices and credit notes of a Polish company can be sent to "
                              "KSeF (%s).", self.display_name))
        if self.l10n_pl_ksef_state == "sending":
            # Sent before: its fate is KSeF's to tell, a second sending could create a duplicate.
            return self._l10n_pl_ksef_update_status()
        if self.l10n_pl_ksef_state not in POSTABLE_STATES:
            state = dict(self._fields["l10n_pl_ksef_state"]._description_selection(self.env))[self.l10n_pl_ksef_state]
            raise UserError(_("Invoice %(invoice)s cannot be posted to KSeF: its KSeF status is '%(state)s'.",
                              invoice=self.display_name, state=state))
        self._l10n_pl_ksef_lock()
        self.action_l10n_pl_ksef_freeze()
        # Reserved for this sending: the submission engine leaves the invoice alone meanwhile
        # (and picks it up after the reservation when this sending does not get through).
        self._l10n_pl_ksef_move_to(self.l10n_pl_ksef_state or "to_send", {
            "l10n_pl_ksef_next_try": fields.Datetime.now() + datetime.timedelta(minutes=5),
        })
        self._l10n_pl_ksef_commit()

        # One road to KSeF: the engine's Submitter on a one-invoice plan (see l10n_pl_ksef_engine_post).
        return self._l10n_pl_ksef_post_send()

    def _l10n_pl_ksef_own_ksef_numbers(self):
        """KSeF numbers under which this invoice is known to be in KSeF (a 440 naming one is ours)."""
        return set(self.l10n_pl_ksef_document_ids.mapped("ksef_number")) - {False, None}

    def _l10n_pl_ksef_own_hashes(self):
        """Hashes of files of this very invoice that KSeF may hold (a 440 whose original has one is ours)."""
        return {self.l10n_pl_ksef_xml_hash} - {False, None}

    def _l10n_pl_ksef_update_status(self):
        """Ask KSeF about invoices in 'sending' (their last sending) with the Submitter's
        reconcile, the engine's rule; apply what it says. Nothing is sent."""
        for move in self.filtered(lambda m: m.l10n_pl_ksef_state == "sending"):
            document = move.l10n_pl_ksef_document_ids.filtered(
                lambda d: d.state == "sending" and d.session_reference)[:1]
            if not document:
                continue
            try:
                client = move.company_id._l10n_pl_ksef_client()
                move._l10n_pl_ksef_reconcile_sent(document, client)
            except UNREACHABLE_ERRORS + (ksef_errors.KsefError,) as error:
                raise UserError(_("KSeF status of invoice %(invoice)s cannot be checked now: %(error)s",
                                  invoice=move.display_name, error=self._l10n_pl_ksef_error_text(error))) from error
        return True
