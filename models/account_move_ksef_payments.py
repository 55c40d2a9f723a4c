"""KSeF numbers in payments (VAT act art. 108g): the customer invoice's payment reference, the
vendor bill's KSeF number (filled by a receiving bridge) proposed as the payment memo, and
collective identifiers (IZ) that pay up to 500 bills of one seller with one memo."""
from stdnum.pl import nip as stdnum_nip

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..ksef import ksef_number as ksef_numbers


class AccountMove(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_collective_id = fields.Many2one(
        "l10n_pl_ksef.collective.identifier", string="KSeF collective identifier", copy=False, readonly=True,
        index="btree_not_null", help="The collective identifier (IZ) under which this bill is paid.")

    # ---- customer invoices: the KSeF number as payment reference ----------------------------

    @api.model
    def _l10n_pl_ksef_apply_results(self, results, bulk=False):
        outcome = super()._l10n_pl_ksef_apply_results(results, bulk=bulk)
        numbered = self.browse([r["move"].id for r in results if r["verdict"] in ("accepted", "adopted")])
        if numbered:
            numbered._l10n_pl_ksef_after_numbered(results)
        return outcome

    def _l10n_pl_ksef_after_numbered(self, results):
        """Hook run once KSeF numbered these invoices (``results``: the verdicts applied)."""
        for move in self.filtered(lambda m: m.move_type == "out_invoice" and m.l10n_pl_ksef_number
                                  and m.company_id.l10n_pl_ksef_payment_reference):
            if move.payment_reference != move.l10n_pl_ksef_number:
                move.sudo()._l10n_pl_ksef_write({"payment_reference": move.l10n_pl_ksef_number})

    # ---- vendor bills: the KSeF number from the receiving side ---------------------------

    def _l10n_pl_ksef_set_received_ksef_number(self, number):
        """For bridges that receive purchase invoices from KSeF: record ``number`` on this vendor
        bill (checked: a KSeF number, of the bill's supplier) and propose it as the payment memo."""
        self.ensure_one()
        if self.move_type not in ("in_invoice", "in_refund"):
            raise UserError(_("%(bill)s is no vendor bill: a received KSeF number belongs on vendor bills only.",
                              bill=self.display_name))
        if not ksef_numbers.is_valid_ksef_number(number or ""):
            raise UserError(_("Vendor bill %(bill)s: '%(number)s' is not a KSeF number.",
                              bill=self.display_name, number=number or ""))
        vat = self.commercial_partner_id.vat or ""
        supplier_nip = vat[2:] if vat.upper().startswith("PL") else vat
        if stdnum_nip.is_valid(supplier_nip) and stdnum_nip.compact(supplier_nip) != number[:10]:
            raise UserError(_("Vendor bill %(bill)s: KSeF number %(number)s was issued by NIP %(issuer)s, not by the "
                              "supplier %(supplier)s (NIP %(nip)s).", bill=self.display_name, number=number,
                              issuer=number[:10], supplier=self.commercial_partner_id.name, nip=supplier_nip))
        values = {"l10n_pl_ksef_number": number}
        if not self.payment_reference or self.payment_reference in (self.ref, self.name):
            values["payment_reference"] = number
        self.sudo()._l10n_pl_ksef_write(values)
        return True

    # ---- collective identifiers -----------------------------------------------------------

    def action_l10n_pl_ksef_collective_identifier(self):
        """Group the selected vendor bills into one KSeF collective identifier (IZ)."""
        identifier = self.env["l10n_pl_ksef.collective.identifier"]._l10n_pl_ksef_create_for(self)
        return {
            "type": "ir.actions.act_window", "res_model": identifier._name, "res_id": identifier.id,
            "view_mode": "form", "target": "current",
        }
