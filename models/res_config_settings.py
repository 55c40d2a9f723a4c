from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    l10n_pl_ksef_environment = fields.Selection(related="company_id.l10n_pl_ksef_environment", readonly=False)
    l10n_pl_ksef_base_url = fields.Char(related="company_id.l10n_pl_ksef_base_url", readonly=False)
    l10n_pl_ksef_context_type = fields.Selection(related="company_id.l10n_pl_ksef_context_type", readonly=False)
    l10n_pl_ksef_context_value = fields.Char(related="company_id.l10n_pl_ksef_context_value", readonly=False)
    l10n_pl_ksef_auth_method = fields.Selection(related="company_id.l10n_pl_ksef_auth_method", readonly=False)
    l10n_pl_ksef_token = fields.Char(related="company_id.l10n_pl_ksef_token", readonly=False,
                                     groups="base.group_system")
    l10n_pl_ksef_auth_certificate_id = fields.Many2one(related="company_id.l10n_pl_ksef_auth_certificate_id",
                                                       readonly=False, groups="base.group_system")
    l10n_pl_ksef_timeout = fields.Float(related="company_id.l10n_pl_ksef_timeout", readonly=False)
