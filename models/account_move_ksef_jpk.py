"""The JPK_VAT KSeF marker of a sales document (its KSeF number, OFF, BFK or DI) as of a filing
date. The rule itself is the pure ``ksef.jpk``; here only the facts of the invoice are read."""
import pytz

from odoo import api, fields, models

from ..ksef import deadlines as ksef_deadlines
from ..ksef import jpk as ksef_jpk

WARSAW = pytz.timezone("Europe/Warsaw")
JPK_MARKERS = [(ksef_jpk.OFF, "OFF"), (ksef_jpk.BFK, "BFK"), (ksef_jpk.DI, "DI")]
# Sales documents that go into the JPK_VAT sales register.
JPK_MOVE_TYPES = ("out_invoice", "out_refund", "out_receipt")


class AccountMove(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_jpk_marker = fields.Selection(
        JPK_MARKERS, string="JPK marker", compute="_compute_l10n_pl_ksef_jpk",
        help="The marker of this document in a JPK_VAT filed today when it has no KSeF number: OFF (emergency "
             "mode invoice not yet in KSeF), BFK (invoice outside KSeF), DI (other document, or offline24 / "
             "unavailability invoice not yet in KSeF: the JPK must be corrected once it is numbered).")
    l10n_pl_ksef_jpk_value = fields.Char(
        string="JPK: KSeF number or marker", compute="_compute_l10n_pl_ksef_jpk",
        help="What the JPK_VAT sales register line of this document carries if filed today.")

    @api.depends("l10n_pl_ksef_number", "l10n_pl_ksef_state", "l10n_pl_ksef_offline_mode", "move_type", "invoice_date")
    def _compute_l10n_pl_ksef_jpk(self):
        today = self._l10n_pl_ksef_today()
        for move in self:
            marking = move._l10n_pl_ksef_jpk_marking(today) if move._l10n_pl_ksef_jpk_applies() else None
            move.l10n_pl_ksef_jpk_marker = marking.marker if marking else False
            move.l10n_pl_ksef_jpk_value = marking.value if marking else False

    def _l10n_pl_ksef_jpk_applies(self):
        self.ensure_one()
        return self.country_code == "PL" and self.move_type in JPK_MOVE_TYPES and self.state == "posted"

    def _l10n_pl_ksef_numbered_on(self):
        """The day (Polish time) KSeF assigned the number: the acquisition date KSeF reported,
        else when we learnt it."""
        self.ensure_one()
        if not self.l10n_pl_ksef_number:
            return None
        moment = self.l10n_pl_ksef_acquisition_date
        if not moment:
            accepted = self.sudo().l10n_pl_ksef_document_ids.filtered(
                lambda d: d.state == "accepted" and d.ksef_number == self.l10n_pl_ksef_number)[:1]
            moment = accepted.acquisition_date or accepted.checked_at or self.write_date
        return pytz.utc.localize(moment).astimezone(WARSAW).date()

    def _l10n_pl_ksef_jpk_outside_reason(self):
        """Why an invoice never meant for KSeF is outside it (``ksef.jpk.OUTSIDE_*``), or None."""
        self.ensure_one()
        if self.l10n_pl_ksef_state or self.l10n_pl_ksef_number:
            return None   # meant for KSeF: it carries its number or an offline marker
        obligation = self.company_id.l10n_pl_ksef_obligation_date
        if obligation and self.invoice_date and self.invoice_date < obligation:
            return ksef_jpk.OUTSIDE_BEFORE_OBLIGATION
        buyer = self.commercial_partner_id
        if not buyer.vat and not buyer.is_company:
            return ksef_jpk.OUTSIDE_B2C
        return None

    def _l10n_pl_ksef_jpk_document(self):
        """This document as ``ksef.jpk.RegisterDocument``."""
        self.ensure_one()
        mode = self.l10n_pl_ksef_offline_mode or None
        if self.l10n_pl_ksef_state == "outside" and not mode:
            mode = ksef_deadlines.TOTAL_FAILURE
        number = self.l10n_pl_ksef_number or None
        return ksef_jpk.RegisterDocument(
            is_invoice=self.move_type != "out_receipt",
            mode=mode,
            ksef_number=number,
            numbered_on=self._l10n_pl_ksef_numbered_on() if number else None,
            outside=self._l10n_pl_ksef_jpk_outside_reason(),
        )

    def _l10n_pl_ksef_jpk_marking(self, filing_date):
        self.ensure_one()
        return ksef_jpk.marking(self._l10n_pl_ksef_jpk_document(), filing_date)

