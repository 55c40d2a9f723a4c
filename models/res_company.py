from stdnum.pl import nip as stdnum_nip

from odoo import models


class ResCompany(models.Model):
    _inherit = "res.company"

    def _l10n_pl_ksef_nip(self):
        """The company's NIP as KSeF wants it (10 digits), or False when missing or invalid."""
        self.ensure_one()
        vat = (self.vat or "").replace(" ", "").replace("-", "").upper()
        nip = vat[2:] if vat.startswith("PL") else vat
        return nip if nip and stdnum_nip.is_valid(nip) else False
