"""Post to KSeF (online): send the frozen FA(3) file in an interactive session, follow its
status, keep every attempt as an ``l10n_pl_ksef.document``.

Never send twice, never lose: the invoice is frozen and marked ``to_send`` before any network
call; the KSeF reference of a sent invoice is recorded (and committed outside tests) before
its status is polled; an invoice in ``sending`` is only ever asked about, never sent again;
a KSeF duplicate (440) of our own file is adopted as the success it is.
"""
import datetime
import logging
import time

import psycopg2
import requests

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..ksef import errors as ksef_errors
from ..ksef import upo as ksef_upo
from . import ksef_messages
from .account_move_ksef_lifecycle import POSTABLE_STATES

_logger = logging.getLogger(__name__)

# Pauses between the quick status polls right after sending (bounded: about 4 s in all).
POLL_PAUSES = (0.2, 0.3, 0.5, 0.8, 1.0, 1.2)
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

        xml = self._l10n_pl_ksef_frozen_xml()
        offline_mode = bool(self._l10n_pl_ksef_is_offline())
        corrected_hash = self._l10n_pl_ksef_hash_of_corrected_invoice() or False
        company = self.company_id
        try:
            client, session_record, invoice_reference = self._l10n_pl_ksef_send_xml(
                company, xml, offline_mode, corrected_hash)
        except UNREACHABLE_ERRORS as error:
            _logger.info("KSeF unreachable while sending %s: %s", self.id, type(error).__name__)
            return self._l10n_pl_ksef_handle_unreachable(error)
        except ksef_errors.RateLimited as error:
            raise UserError(_("KSeF asks to slow down (too many requests). Post invoice %(invoice)s again in "
                              "%(seconds)s seconds.", invoice=self.display_name,
                              seconds=error.retry_after or 60)) from error
        except ksef_errors.AuthenticationFailed as error:
            raise UserError(_("KSeF refused the login of company %(company)s: %(error)s\nCheck the KSeF token or "
                              "certificate and the context identifier in Settings > Invoicing > KSeF.",
                              company=company.name, error=self._l10n_pl_ksef_error_text(error))) from error
        except (ksef_errors.Unauthorized, ksef_errors.Forbidden) as error:
            raise UserError(_("KSeF does not accept the credentials of company %(company)s (even after "
                              "renewing the access): %(error)s\nCheck the KSeF token or certificate and its "
                              "permission to send invoices (InvoiceWrite).",
                              company=company.name, error=self._l10n_pl_ksef_error_text(error))) from error
        except ksef_errors.Rejected as error:
            # Refused on arrival (HTTP 400): nothing is being processed; record the verdict.
            return self._l10n_pl_ksef_record_refusal(company, xml, offline_mode, corrected_hash, error)
        except ksef_errors.KsefError as error:
            raise UserError(_("KSeF did not accept invoice %(invoice)s: %(error)s",
                              invoice=self.display_name, error=self._l10n_pl_ksef_error_text(error))) from error

        document = self.env["l10n_pl_ksef.document"].sudo().create({
            "move_id": self.id,
            "company_id": company.id,
            "session_reference": session_record.reference_number,
            "invoice_reference": invoice_reference,
            "invoice_hash": self.l10n_pl_ksef_xml_hash,
            "offline_mode": offline_mode,
            "hash_of_corrected_invoice": corrected_hash,
            "state": "sending",
            "sent_at": fields.Datetime.now(),
        })
        self._l10n_pl_ksef_move_to("sending", {"l10n_pl_ksef_error": False})
        self._l10n_pl_ksef_log(_("Sent to KSeF (session %(session)s, reference %(reference)s); awaiting its verdict.",
                                 session=session_record.reference_number, reference=invoice_reference))
        self._l10n_pl_ksef_commit()
        self._l10n_pl_ksef_poll(document, client, POLL_PAUSES)
        return True

    def _l10n_pl_ksef_send_xml(self, company, xml, offline_mode, corrected_hash):
        """Send ``xml`` in the company's open session; return ``(client, session record, reference)``.
        A closed/expired session is replaced once; cached credentials KSeF no longer accepts are
        replaced by a fresh login once."""
        client = company._l10n_pl_ksef_client()
        for attempt in range(3):
            session_record, session = self.env["l10n_pl_ksef.session"]._l10n_pl_ksef_open_session(company, client)
            try:
                reference = client.send_invoice(session, xml, offline_mode=offline_mode,
                                                hash_of_corrected_invoice=corrected_hash or None)
                return client, session_record, reference
            except (ksef_errors.SessionClosed, ksef_errors.SessionNotFound):
                if attempt == 2:
                    raise
                session_record._l10n_pl_ksef_mark_closed()
            except ksef_errors.Unauthorized as error:
                if isinstance(error, ksef_errors.AuthenticationFailed) or client.l10n_pl_ksef_fresh_login or attempt == 2:
                    raise
                company.sudo()._l10n_pl_ksef_forget_tokens()
                client = company._l10n_pl_ksef_client(force_login=True)

    def _l10n_pl_ksef_record_refusal(self, company, xml, offline_mode, corrected_hash, error):
        # KSeF's own words when it gave any, else our translated account of the refusal.
        description = error.description or self._l10n_pl_ksef_error_text(error)
        self.env["l10n_pl_ksef.document"].sudo().create({
            "move_id": self.id,
            "company_id": company.id,
            "invoice_hash": self.l10n_pl_ksef_xml_hash,
            "offline_mode": offline_mode,
            "hash_of_corrected_invoice": corrected_hash,
            "state": "rejected",
            "status_code": error.code or 0,
            "status_description": description,
            "status_details": "\n".join(str(d) for d in error.details or []),
            "sent_at": fields.Datetime.now(),
            "checked_at": fields.Datetime.now(),
            "error": self._l10n_pl_ksef_error_text(error),
        })
        self._l10n_pl_ksef_set_rejected(error.code, description, error.details)
        return False

    def _l10n_pl_ksef_poll(self, document, client, pauses):
        """Ask KSeF about ``document`` a few times (bounded); apply a final status when one comes."""
        for index in range(len(pauses) + 1):
            try:
                status = client.invoice_status(document.session_reference, document.invoice_reference)
            except ksef_errors.KsefError as error:
                # The invoice is with KSeF: it stays "sending" and is asked about later.
                document.sudo().write({"checked_at": fields.Datetime.now(), "error": self._l10n_pl_ksef_error_text(error)})
                self._l10n_pl_ksef_log(_("KSeF status of the sent invoice could not be read (%(error)s); it will be "
                                         "checked again later.", error=self._l10n_pl_ksef_error_text(error)))
                return False
            if not status.is_pending:
                return self._l10n_pl_ksef_apply_status(document, client, status)
            if index < len(pauses):
                time.sleep(pauses[index])
        document.sudo().write({"checked_at": fields.Datetime.now(), "status_code": status.code,
                        "status_description": status.status.description})
        return False

    def _l10n_pl_ksef_apply_status(self, document, client, status):
        code = status.code
        common = {
            "checked_at": fields.Datetime.now(),
            "status_code": code,
            "status_description": status.status.description,
            "status_details": "\n".join(str(d) for d in status.status.details or []),
        }
        if status.is_success:
            upo_xml = self._l10n_pl_ksef_download_upo(client, document.session_reference,
                                                      invoice_reference=document.invoice_reference)
            return self._l10n_pl_ksef_set_accepted(document, status.ksef_number, status.acquisition_date, upo_xml, common,
                                                   invoicing_mode=status.invoicing_mode)
        error = status.error()
        if isinstance(error, ksef_errors.Duplicate) and self._l10n_pl_ksef_adopt_duplicate(document, client, error, common):
            return True
        if isinstance(error, ksef_errors.KsefUnavailable) or code == 405:
            # 405/500/550: KSeF did not process it (its trouble); nothing was accepted: send again.
            self._l10n_pl_ksef_apply_results([{
                "move": self, "document": document, "verdict": "retry", "code": code,
                "description": status.status.description or "", "error": self._l10n_pl_ksef_error_text(error),
                "retry_state": "offline" if document.offline_mode else "to_send",
                "document_values": common,
            }])
            return False
        self._l10n_pl_ksef_apply_results([{
            "move": self, "document": document, "verdict": "rejected", "code": code,
            "description": status.status.description, "details": status.status.details,
            "error": self._l10n_pl_ksef_error_text(error),
            "document_values": common,
        }])
        return False

    def _l10n_pl_ksef_download_upo(self, client, session_reference, invoice_reference=None, ksef_number=None):
        try:
            return client.invoice_upo(session_reference, invoice_reference=invoice_reference, ksef_number=ksef_number)
        except ksef_errors.KsefError as error:
            _logger.warning("KSeF UPO of invoice %s not downloaded: %s", self.id, error)
            return None

    def _l10n_pl_ksef_adopt_duplicate(self, document, client, error, common):
        """KSeF already holds an invoice with our number: when it is our own file (same hash, or
        a KSeF number we recorded before), an earlier sending succeeded; adopt it."""
        original = error.original_ksef_number
        if not original:
            return False
        known = original in self._l10n_pl_ksef_own_ksef_numbers()
        upo_xml, entry = None, None
        if error.original_session_reference_number:
            upo_xml = self._l10n_pl_ksef_download_upo(client, error.original_session_reference_number, ksef_number=original)
            if upo_xml:
                try:
                    entry = next((d for d in ksef_upo.parse_upo(upo_xml)["documents"] if d.ksef_number == original), None)
                except ValueError:
                    entry = None
        same_file = entry is not None and entry.document_hash in self._l10n_pl_ksef_own_hashes()
        if not (known or same_file):
            return False
        acquisition = entry.sent_at if entry is not None else None
        common = {**common, "session_reference": document.session_reference}
        self._l10n_pl_ksef_set_accepted(document, original, acquisition, upo_xml, common, adopted=True)
        return True

    def _l10n_pl_ksef_own_ksef_numbers(self):
        """KSeF numbers under which this invoice is known to be in KSeF (a 440 naming one is ours)."""
        return set(self.l10n_pl_ksef_document_ids.mapped("ksef_number")) - {False, None}

    def _l10n_pl_ksef_own_hashes(self):
        """Hashes of files of this very invoice that KSeF may hold (a 440 whose original has one is ours)."""
        return {self.l10n_pl_ksef_xml_hash} - {False, None}

    def _l10n_pl_ksef_update_status(self):
        """Ask KSeF about invoices in 'sending' (their last sending); apply what it says."""
        for move in self.filtered(lambda m: m.l10n_pl_ksef_state == "sending"):
            document = move.l10n_pl_ksef_document_ids.filtered(
                lambda d: d.state == "sending" and d.invoice_reference)[:1]
            if not document:
                continue
            try:
                client = move.company_id._l10n_pl_ksef_client()
            except UNREACHABLE_ERRORS + (ksef_errors.KsefError,) as error:
                raise UserError(_("KSeF status of invoice %(invoice)s cannot be checked now: %(error)s",
                                  invoice=move.display_name, error=self._l10n_pl_ksef_error_text(error))) from error
            move._l10n_pl_ksef_poll(document, client, POLL_PAUSES[:2])
        return True
