"""Podmiot3: the invoice's other parties, from what Odoo knows of them.

* The delivery address (``partner_shipping_id``) when it names another party than the buyer and
  its invoicing address: a unit of the buyer (its own contact, same company) is role 2 "Odbiorca"
  (XSD TRolaPodmiotu3: units or branches of the buyer that are not the buyer themselves); another
  company receiving the goods is "Inny podmiot" (RolaInna) described as "Odbiorca towarów lub
  usług", since none of the XSD roles covers it.
* The payer, when someone else pays for the buyer (role 6 "Dokonujący płatności"): chosen on the
  invoice, Odoo has no such notion of its own.
"""
from stdnum.pl import nip as stdnum_nip

from odoo import _, fields, models

from ..ksef import fa3_parts

OTHER_RECIPIENT = "Odbiorca towarów lub usług"  # OpisRoli: written in the e-invoice, in Polish


class AccountMove(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_payer_id = fields.Many2one(
        "res.partner", string="Paid by (third party)", copy=False, check_company=True,
        help="Someone other than the customer pays this invoice: the e-invoice names them as the payer (Podmiot3, "
             "role 'Dokonujący płatności').",
    )

    def _l10n_pl_ksef_complete_fa3(self, invoice, errors):
        super()._l10n_pl_ksef_complete_fa3(invoice, errors)
        invoice.third_parties = self._l10n_pl_ksef_third_parties(errors)

    def _l10n_pl_ksef_third_parties(self, errors):
        parties = []
        buyer = self.commercial_partner_id
        delivery = self.partner_shipping_id
        if delivery and delivery not in (buyer, self.partner_id) and delivery.name:
            unit = delivery.commercial_partner_id == buyer
            parties.append(self._l10n_pl_ksef_third_party(
                delivery, errors, role=fa3_parts.ROLE_RECIPIENT if unit else None,
                other_role=None if unit else OTHER_RECIPIENT, own_id_only=unit))
        payer = self.l10n_pl_ksef_payer_id
        if payer and payer.commercial_partner_id != buyer:
            parties.append(self._l10n_pl_ksef_third_party(payer.commercial_partner_id, errors, role=fa3_parts.ROLE_PAYER))
        return parties

    def _l10n_pl_ksef_third_party(self, partner, errors, role=None, other_role=None, own_id_only=False):
        """A ThirdParty for ``partner``; a unit of the buyer is identified only by a tax ID of its own
        (it is not the buyer: the buyer's NIP stays in Podmiot2)."""
        values = {
            "name": partner.name,
            "address": self._l10n_pl_ksef_address(partner),
            "email": partner.email or None,
            "role": role,
            "other_role": other_role,
        }
        source = partner if own_id_only else partner.commercial_partner_id
        vat = (source.vat or "").replace(" ", "").replace("-", "").upper()
        if own_id_only and source.commercial_partner_id.vat and source.vat == source.commercial_partner_id.vat:
            vat = ""
        country = source.country_id
        if vat and (not country or country.code == "PL"):
            nip = vat[2:] if vat.startswith("PL") else vat
            if not stdnum_nip.is_valid(nip):
                errors.append(_("%(party)s (third party of the invoice): Tax ID %(vat)s is not a valid Polish NIP.",
                                party=partner.display_name, vat=source.vat))
            values["nip"] = nip
        elif vat:
            values.update(self._l10n_pl_ksef_foreign_tax_id(vat, country))
        return fa3_parts.ThirdParty(**values)
