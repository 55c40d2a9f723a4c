"""The JPK_VAT settings of the company in Settings."""
from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    l10n_pl_ksef_obligation_date = fields.Date(related="company_id.l10n_pl_ksef_obligation_date", readonly=False)
    l10n_pl_ksef_payment_reference = fields.Boolean(related="company_id.l10n_pl_ksef_payment_reference",
                                                    readonly=False)
