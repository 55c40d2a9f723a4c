from odoo import _, models
from odoo.exceptions import UserError


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    def _set_l10n_pl_edi_certificate(self):
        # REPLACES l10n_pl_edi's: its certificate follows the KSeF Authentication certificate of
        # Settings > Invoicing > KSeF; saving the settings must not log in to its own environment.
        return None

    def _l10n_pl_edi_ksef_authenticate(self):
        raise UserError(_("The KSeF login is set in Settings > Invoicing > KSeF (KSeF login with a token or an "
                          "Authentication certificate), per company."))
