"""Issuing invoices offline: the four modes, their deadlines, the automatic fallback and the
QR codes printed on the invoice (the Ministry's ``tryby-offline.md`` and ``kody-qr.md``). Its
moves of the KSeF state are rows of the lifecycle's transition table (``account_move_ksef_lifecycle``):

    (none / to_send) --issue offline--> offline  (offline24, unavailability, emergency: KOD I + KOD II)
    (none / to_send) --issue offline--> outside  (total failure: no QR codes, never sent)

The submission engine moves ``offline`` invoices on once KSeF has them; the mode, the event that
justified it and the KOD II link stay on the invoice as evidence.
"""
import base64
import logging

from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..ksef import deadlines as ksef_deadlines
from ..ksef import qr as ksef_qr
from .account_move_ksef_lifecycle import FROZEN_OFFLINE_STATES, OFFLINE_FROM_STATES

_logger = logging.getLogger(__name__)

OFFLINE_MODES = [
    (ksef_deadlines.OFFLINE24, "Offline24 (issuer's choice or problem)"),
    (ksef_deadlines.UNAVAILABILITY, "KSeF unavailability (announced maintenance)"),
    (ksef_deadlines.EMERGENCY, "Emergency mode (announced KSeF failure)"),
    (ksef_deadlines.TOTAL_FAILURE, "Total failure (outside KSeF)"),
]
# Modes whose invoices go to KSeF later and carry KOD I + KOD II until then.
MODES_TO_SEND = (ksef_deadlines.OFFLINE24, ksef_deadlines.UNAVAILABILITY, ksef_deadlines.EMERGENCY)
# The event category that justifies a mode.
MODE_EVENT_CATEGORY = {
    ksef_deadlines.UNAVAILABILITY: ksef_deadlines.CATEGORY_MAINTENANCE,
    ksef_deadlines.EMERGENCY: ksef_deadlines.CATEGORY_FAILURE,
    ksef_deadlines.TOTAL_FAILURE: ksef_deadlines.CATEGORY_TOTAL_FAILURE,
}
KOD1_HEADER = "Sprawdź, czy Twoja faktura znajduje się w KSeF!"
KOD2_HEADER = "Zweryfikuj dostawcę faktury"
# Invoice fields that end up in the frozen FA(3) file (besides those Odoo already locks on
# posted entries): changing them would make the printed QR codes lie.
FROZEN_MOVE_FIELDS = {
    "partner_id", "commercial_partner_id", "invoice_date", "delivery_date", "currency_id", "invoice_line_ids",
    "line_ids", "name", "invoice_payment_term_id", "invoice_origin", "invoice_date_due", "partner_bank_id",
    "ref", "reversed_entry_id", "journal_id", "company_id", "move_type", "fiscal_position_id",
    "invoice_currency_rate", "date",
}
FROZEN_LINE_FIELDS = {
    "name", "quantity", "price_unit", "discount", "tax_ids", "product_id", "product_uom_id", "account_id",
    "amount_currency", "balance", "debit", "credit", "currency_id", "partner_id", "display_type", "move_id",
}


class AccountMove(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_offline_mode = fields.Selection(
        OFFLINE_MODES, string="KSeF offline mode", copy=False, readonly=True, tracking=True,
    )
    l10n_pl_ksef_offline_event_id = fields.Many2one(
        "l10n_pl_ksef.event", string="Offline justification", copy=False, readonly=True, ondelete="restrict",
        help="The announced KSeF maintenance or failure under which the invoice was issued offline.",
    )
    l10n_pl_ksef_offline_issued_at = fields.Datetime(string="Issued offline on", copy=False, readonly=True)
    l10n_pl_ksef_deadline = fields.Date(
        string="KSeF deadline", copy=False, readonly=True, index=True, tracking=True,
        help="The last day to send this invoice issued offline to KSeF. Recomputed whenever KSeF events "
             "are announced while it waits. Empty: no obligation, or not known until an event ends.",
    )
    l10n_pl_ksef_deadline_reason = fields.Char(string="Why this deadline", copy=False, readonly=True)
    l10n_pl_ksef_deadline_event_id = fields.Many2one(
        "l10n_pl_ksef.event", string="Deadline set by", copy=False, readonly=True, ondelete="set null",
    )
    l10n_pl_ksef_qr_certificate_url = fields.Char(
        string="KOD II link", copy=False, readonly=True,
        help="The issuer verification link (KOD II) signed with the Offline certificate when the invoice "
             "was issued offline.",
    )
    l10n_pl_ksef_offline_certificate_serial = fields.Char(string="Offline certificate serial", copy=False, readonly=True)
    l10n_pl_ksef_deadline_overdue = fields.Boolean(
        string="KSeF deadline passed", compute="_compute_l10n_pl_ksef_deadline_overdue")
    l10n_pl_ksef_certificate_warning = fields.Char(related="company_id.l10n_pl_ksef_certificate_warning")

    @api.depends("l10n_pl_ksef_deadline", "l10n_pl_ksef_state")
    def _compute_l10n_pl_ksef_deadline_overdue(self):
        today = self._l10n_pl_ksef_today()
        for move in self:
            move.l10n_pl_ksef_deadline_overdue = bool(
                move.l10n_pl_ksef_state == "offline" and move.l10n_pl_ksef_deadline
                and move.l10n_pl_ksef_deadline < today)

    # ---- hooks used by the online flow -----------------------------------------------------

    def _l10n_pl_ksef_is_offline(self):
        """True for an invoice issued offline in a mode that is sent to KSeF later: it goes with
        ``offlineMode=true`` (and stays declared offline even when it arrives on its issue day)."""
        self.ensure_one()
        return self.l10n_pl_ksef_offline_mode in MODES_TO_SEND

    def _l10n_pl_ksef_handle_unreachable(self, error):
        """KSeF could not be reached while sending: fall back to issuing offline. Without a usable
        Offline certificate (KOD II cannot be signed) the invoice stays frozen and ready to send,
        with the online flow's message."""
        if self.l10n_pl_ksef_state == "offline":
            raise UserError(_(
                "KSeF still cannot be reached. Invoice %(invoice)s stays issued offline and is sent automatically as "
                "soon as KSeF answers. Deadline for sending it to KSeF: %(deadline)s.",
                invoice=self.display_name,
                deadline=self._l10n_pl_ksef_deadline_words(self.l10n_pl_ksef_deadline, self.l10n_pl_ksef_deadline_reason_key),
            ))
        try:
            self.company_id._l10n_pl_ksef_offline_signer()
        except UserError as problem:
            # Say why it was not issued offline instead (the fallback is off without a usable certificate).
            return super(AccountMove, self.with_context(l10n_pl_ksef_offline_off="\n\n" + _(
                "It could not be issued offline either: %(problem)s", problem=problem.args[0]))
            )._l10n_pl_ksef_handle_unreachable(error)
        return self._l10n_pl_ksef_fallback_to_offline(error=error)

    # ---- issuing offline -------------------------------------------------------------------

    def action_l10n_pl_ksef_issue_offline24(self):
        """The accountant's choice: issue in offline24 mode (sent to KSeF by the next business day)."""
        self._l10n_pl_ksef_issue_offline(ksef_deadlines.OFFLINE24)
        return True

    def _l10n_pl_ksef_check_can_issue_offline(self, mode):
        self.ensure_one()
        if mode not in dict(OFFLINE_MODES):
            raise UserError(_("Unknown KSeF offline mode %s.", mode))
        if not self._l10n_pl_ksef_is_applicable():
            raise UserError(_("Invoice %s cannot be issued offline: only posted customer invoices and credit "
                              "notes of a Polish company go to KSeF.", self.display_name))
        if self.l10n_pl_ksef_state not in OFFLINE_FROM_STATES:
            state = dict(self._fields["l10n_pl_ksef_state"]._description_selection(self.env)).get(self.l10n_pl_ksef_state)
            raise UserError(_("Invoice %(invoice)s cannot be issued offline: its KSeF status is already '%(state)s'.",
                              invoice=self.display_name, state=state))

    def _l10n_pl_ksef_issue_offline(self, mode, event=None):
        """Issue these invoices offline in ``mode`` (optionally under ``event``, an
        ``l10n_pl_ksef.event``): freeze the FA(3) file, sign KOD II with the company's Offline
        certificate (not for a total failure), set the state, the deadline and say so in the chatter.
        Each invoice is all-or-nothing: on any error it stays exactly as it was."""
        for move in self:
            move._l10n_pl_ksef_check_can_issue_offline(mode)
            move_event = event or move._l10n_pl_ksef_current_event(mode)
            if mode in (ksef_deadlines.UNAVAILABILITY, ksef_deadlines.EMERGENCY) and not move_event:
                if mode == ksef_deadlines.UNAVAILABILITY:
                    raise UserError(_(
                        "Invoice %(invoice)s cannot be issued in KSeF unavailability mode: no announced KSeF "
                        "maintenance is recorded. Record the BIP MF notice under KSeF events first, or issue "
                        "in offline24 mode.", invoice=move.display_name))
                raise UserError(_(
                    "Invoice %(invoice)s cannot be issued in emergency mode: no announced KSeF failure is "
                    "recorded. Record the BIP MF notice under KSeF events first, or issue in offline24 mode.",
                    invoice=move.display_name))
            signer = None
            if mode in MODES_TO_SEND:
                try:
                    signer = move.company_id._l10n_pl_ksef_offline_signer()
                except (UserError, ValidationError) as error:
                    raise UserError(_("Invoice %(invoice)s cannot be issued offline: %(problem)s",
                                      invoice=move.display_name, problem=error.args[0])) from None
            with self.env.cr.savepoint():
                move.action_l10n_pl_ksef_freeze()
                values = {
                    "l10n_pl_ksef_offline_mode": mode,
                    "l10n_pl_ksef_offline_event_id": move_event.id if move_event else False,
                    "l10n_pl_ksef_offline_issued_at": fields.Datetime.now(),
                    # No hold left from Post to KSeF's reservation: the engine tries it within seconds.
                    "l10n_pl_ksef_next_try": False,
                }
                if signer:
                    company = move.company_id
                    values["l10n_pl_ksef_qr_certificate_url"] = ksef_qr.certificate_url_from_hash(
                        company._l10n_pl_ksef_qr_environment(), "Nip", company._l10n_pl_ksef_nip(),
                        company._l10n_pl_ksef_nip(), signer.serial, move.l10n_pl_ksef_xml_hash, signer.private_key)
                    values["l10n_pl_ksef_offline_certificate_serial"] = signer.serial
                move._l10n_pl_ksef_move_to("offline" if mode in MODES_TO_SEND else "outside", values)
                move._l10n_pl_ksef_recompute_deadlines(notify=False)
                move._l10n_pl_ksef_post_offline_message()
        return True

    def _l10n_pl_ksef_post_offline_message(self):
        self.ensure_one()
        mode = dict(self._fields["l10n_pl_ksef_offline_mode"]._description_selection(self.env))[self.l10n_pl_ksef_offline_mode]
        lines = [_("Issued offline in mode: %s.", mode)]
        if self.l10n_pl_ksef_offline_event_id:
            lines.append(_("Justification: %s.", self.l10n_pl_ksef_offline_event_id.display_title))
        if self.l10n_pl_ksef_offline_mode == ksef_deadlines.TOTAL_FAILURE:
            lines.append(_("Issued during a total KSeF failure, outside KSeF: it carries no QR codes and is never sent to KSeF."))
        else:
            lines.append(_("FA(3) file frozen (SHA-256 %s); the printed invoice carries KOD I (OFFLINE) and KOD II (CERTYFIKAT).",
                           self.l10n_pl_ksef_xml_hash))
            if self.l10n_pl_ksef_deadline:
                lines.append(_("Deadline for sending it to KSeF: %(deadline)s. %(reason)s",
                               deadline=self._l10n_pl_ksef_date_text(self.l10n_pl_ksef_deadline),
                               reason=self.l10n_pl_ksef_deadline_reason))
            else:
                lines.append(_("Deadline for sending it to KSeF: %(deadline)s. %(reason)s",
                               deadline=self._l10n_pl_ksef_deadline_words(False, self.l10n_pl_ksef_deadline_reason_key),
                               reason=self.l10n_pl_ksef_deadline_reason or ""))
        self.message_post(body=Markup("<br/>").join(lines))

    def _l10n_pl_ksef_current_event(self, mode):
        """The stored event that justifies ``mode`` now: the latest announced, not ended, one of
        the right category (an empty recordset when there is none or the mode needs none)."""
        self.ensure_one()
        category = MODE_EVENT_CATEGORY.get(mode)
        if not category:
            return self.env["l10n_pl_ksef.event"]
        now = fields.Datetime.now()
        pairs = self.env["l10n_pl_ksef.event"].sudo()._l10n_pl_ksef_events_for(
            self.company_id._l10n_pl_ksef_event_environment())
        current = [(event, record) for event, record in pairs
                   if event.category == category and (event.start is None or event.start <= now)
                   and (event.end is None or event.end >= now)]
        if not current:
            return self.env["l10n_pl_ksef.event"]
        return max(current, key=lambda pair: pair[1].published)[1].sudo(False)

    # ---- automatic fallback ----------------------------------------------------------------

    def _l10n_pl_ksef_fallback_to_offline(self, error=None, latarnia_status=None):
        """KSeF could not take these invoices now (connection error, timeout, 5xx): decide the
        offline mode from Latarnia and issue them offline, at once or after one confirmation
        (company setting "Offline fallback").

        ``latarnia_status``: a Latarnia status string when already known; otherwise Latarnia is
        asked now. Latarnia unreachable or AVAILABLE -> offline24; MAINTENANCE -> unavailability;
        FAILURE -> emergency; TOTAL_FAILURE -> total failure. Returns True when issued, or the
        confirmation wizard action."""
        moves = self.filtered(lambda m: m.l10n_pl_ksef_state in OFFLINE_FROM_STATES)
        if not moves:
            return True
        company = moves.company_id
        if len(company) != 1:
            result = True
            for company_moves in moves.grouped("company_id").values():
                result = company_moves._l10n_pl_ksef_fallback_to_offline(error, latarnia_status)
            return result
        if latarnia_status is None:
            latarnia_status = company._l10n_pl_ksef_poll_latarnia(timeout=5.0).get(company.id)
        mode = ksef_deadlines.fallback_mode(latarnia_status)
        event = moves[0]._l10n_pl_ksef_current_event(mode)
        if mode in (ksef_deadlines.UNAVAILABILITY, ksef_deadlines.EMERGENCY) and not event:
            # Latarnia says so but no notice is known: offline24 never claims more time than the law gives.
            mode = ksef_deadlines.OFFLINE24
        if company.l10n_pl_ksef_offline_fallback == "auto" or self.env.context.get("l10n_pl_ksef_offline_confirmed"):
            moves._l10n_pl_ksef_issue_offline(mode, event or None)
            return True
        wizard = self.env["l10n_pl_ksef.offline.wizard"].create({
            "move_ids": [fields.Command.set(moves.ids)],
            "mode": mode,
            "event_id": event.id if event else False,
            "latarnia_status": latarnia_status or False,
            "error_text": self._l10n_pl_ksef_error_text(error) if error else False,
        })
        return wizard._l10n_pl_ksef_action()

    # ---- deadlines -------------------------------------------------------------------------

    @api.model
    def _l10n_pl_ksef_recompute_waiting_deadlines(self):
        """After KSeF events change: recompute the deadline of every invoice still waiting offline."""
        waiting = self.search([("l10n_pl_ksef_state", "=", "offline"), ("l10n_pl_ksef_offline_mode", "!=", False)])
        waiting._l10n_pl_ksef_recompute_deadlines()
        return waiting

    def _l10n_pl_ksef_recompute_deadlines(self, notify=True):
        Event = self.env["l10n_pl_ksef.event"].sudo()
        events_by_environment = {}
        for move in self:
            mode = move.l10n_pl_ksef_offline_mode
            if not mode:
                continue
            environment = move.company_id._l10n_pl_ksef_event_environment()
            if environment not in events_by_environment:
                events_by_environment[environment] = Event._l10n_pl_ksef_events_for(environment)
            pairs = events_by_environment[environment]
            justification = move.sudo().l10n_pl_ksef_offline_event_id
            mode_event = None
            if justification and mode in (ksef_deadlines.UNAVAILABILITY, ksef_deadlines.EMERGENCY):
                mode_event = next((event for event, record in pairs if _same_event(record, justification)), None)
            try:
                result = ksef_deadlines.effective_deadline(
                    mode, move.invoice_date, [event for event, _record in pairs], mode_event=mode_event,
                    issued_at=move.l10n_pl_ksef_offline_issued_at or None)
            except ValueError as error:
                _logger.warning("KSeF deadline of invoice %s cannot be computed: %s", move.id, error)
                continue
            governing = next((record for event, record in pairs if event is result.event), Event.browse())
            reason = move._l10n_pl_ksef_deadline_reason_text(result, governing)
            old_deadline = move.l10n_pl_ksef_deadline
            if (old_deadline, move.l10n_pl_ksef_deadline_reason, move.l10n_pl_ksef_deadline_reason_key) == (
                    result.deadline or False, reason, result.reason):
                continue
            move._l10n_pl_ksef_write({
                "l10n_pl_ksef_deadline": result.deadline or False,
                "l10n_pl_ksef_deadline_reason": reason,
                "l10n_pl_ksef_deadline_reason_key": result.reason,
                "l10n_pl_ksef_deadline_event_id": governing.id or False,
            })
            if notify:
                if result.deadline:
                    move.message_post(body=_("KSeF deadline recomputed: %(deadline)s. %(reason)s",
                                             deadline=move._l10n_pl_ksef_date_text(result.deadline), reason=reason))
                else:
                    move.message_post(body=_("KSeF deadline recomputed: there is no deadline any more. %(reason)s",
                                             reason=reason))

    # ---- frozen offline invoices stay as printed ------------------------------------------

    def write(self, vals):
        frozen_fields = FROZEN_MOVE_FIELDS.intersection(vals)
        if frozen_fields:
            frozen = self.filtered(lambda m: m.l10n_pl_ksef_state in FROZEN_OFFLINE_STATES)
            changed = [field for field in frozen_fields if any(_differs(move, field, vals[field]) for move in frozen)]
            if frozen and changed:
                raise UserError(_(
                    "Invoice %(invoice)s was issued offline and its e-invoice is frozen as printed (QR codes "
                    "included): %(fields)s cannot be changed. Issue a credit note instead.",
                    invoice=", ".join(frozen.mapped("display_name")),
                    fields=", ".join(sorted(self._fields[field].get_description(self.env)["string"] for field in changed))))
        return super().write(vals)

    # ---- printed QR codes ------------------------------------------------------------------

    def _l10n_pl_ksef_qr_codes(self):
        """The KSeF codes to print, each {"kind", "url", "label", "header", "image"} (image as a
        PNG data URI): KOD I "OFFLINE" + KOD II "CERTYFIKAT" while an offline invoice waits, KOD I
        with the KSeF number once accepted, nothing otherwise (e.g. total failure)."""
        self.ensure_one()
        company = self.company_id
        if not self.l10n_pl_ksef_xml_hash or not company._l10n_pl_ksef_nip():
            return []
        codes = []
        # A technically corrected invoice keeps the code of its original file (already printed).
        kod1 = ksef_qr.invoice_url_from_hash(
            company._l10n_pl_ksef_qr_environment(), company._l10n_pl_ksef_nip(), self.invoice_date,
            self._l10n_pl_ksef_printed_hash())
        if self.l10n_pl_ksef_state == "offline" and self.l10n_pl_ksef_offline_mode in MODES_TO_SEND:
            codes.append({"kind": "kod1", "url": kod1, "label": ksef_qr.KOD1_LABEL_OFFLINE, "header": KOD1_HEADER})
            if _official_qr_url(self.l10n_pl_ksef_qr_certificate_url):
                codes.append({"kind": "kod2", "url": self.l10n_pl_ksef_qr_certificate_url,
                              "label": ksef_qr.KOD2_LABEL, "header": KOD2_HEADER})
        elif self.l10n_pl_ksef_state == "accepted" and self.l10n_pl_ksef_number:
            codes.append({"kind": "kod1", "url": kod1, "label": self.l10n_pl_ksef_number, "header": KOD1_HEADER})
        for code in codes:
            code["image"] = "data:image/png;base64,%s" % base64.b64encode(ksef_qr.qr_png(code["url"])).decode()
        return codes


def _official_qr_url(url):
    """KOD II is printed and linked only when it points to an official KSeF QR host (the stored
    URL is written by our code only; this keeps a forged one off paper all the same)."""
    return bool(url) and url.startswith(tuple(base + "/" for base in ksef_qr.QR_BASE.values()))


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    def write(self, vals):
        frozen_fields = FROZEN_LINE_FIELDS.intersection(vals)
        if frozen_fields:
            frozen = self.move_id.filtered(lambda m: m.l10n_pl_ksef_state in FROZEN_OFFLINE_STATES)
            if frozen:
                raise UserError(_(
                    "Invoice %(invoice)s was issued offline and its e-invoice is frozen as printed (QR codes "
                    "included): its lines cannot be changed. Issue a credit note instead.",
                    invoice=", ".join(frozen.mapped("display_name"))))
        return super().write(vals)


def _same_event(record, justification):
    """True when ``record`` (the newest notice of an event) and ``justification`` are notices of
    the same event."""
    if record == justification:
        return True
    return bool(record.event_ref and record.event_ref == justification.event_ref
                and record.source == justification.source and record.environment == justification.environment)


def _differs(move, name, value):
    """Whether writing ``value`` would change ``move[name]`` (x2many commands always count)."""
    field = move._fields[name]
    if field.type in ("one2many", "many2many"):
        return True
    return field.convert_to_cache(value, move) != field.convert_to_cache(move[name], move)
