from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    l10n_pl_ksef_obligation_date = fields.Date(
        string="KSeF obligation from",
        help="The day from which the company must issue its invoices in KSeF (1 February 2026 for the largest "
             "taxpayers, 1 April 2026 for the others, 1 January 2027 for the smallest). Invoices dated before it "
             "without a KSeF number are reported in JPK_VAT with the marker BFK. Empty: every invoice falls under "
             "the obligation.")
    l10n_pl_ksef_payment_reference = fields.Boolean(
        string="KSeF number as payment reference",
        help="Once KSeF accepts a customer invoice, its KSeF number becomes the payment reference the customer is "
             "asked to quote (art. 108g of the VAT act: B2B payments name the KSeF number).")
