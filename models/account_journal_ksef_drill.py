"""The drill journal's flag: its invoices are drill invoices."""
from odoo import fields, models


class AccountJournalKsefDrill(models.Model):
    _inherit = "account.journal"

    l10n_pl_ksef_drill = fields.Boolean(
        string="KSeF drill journal", readonly=True, copy=False,
        help="Invoices of this journal are drill invoices: never real, never sent to the real KSeF.")
