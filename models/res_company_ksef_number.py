"""The company's KSeF environment key: KSeF numbers are unique per environment (see
account_move_ksef_number.py)."""
from odoo import models


class ResCompanyKsefNumber(models.Model):
    _inherit = "res.company"

    def _l10n_pl_ksef_environment_key(self):
        """test / demo / production, or ``simulator:<API address>``: each simulator numbers on its own."""
        self.ensure_one()
        environment = self.l10n_pl_ksef_environment
        if environment == "simulator" or (self.l10n_pl_ksef_base_url and not environment):
            url = (self.l10n_pl_ksef_base_url or "").strip().rstrip("/")
            return "simulator:%s" % (url if url.endswith("/v2") else url + "/v2")
        return environment or "test"
