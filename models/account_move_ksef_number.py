"""Which KSeF environment gave an invoice its KSeF number.

A KSeF number is unique inside one KSeF environment only: the test, demo and production KSeF
each number on their own, and every simulator (the demo's, each drill's) starts its own sequence.
So the uniqueness rule is per company and environment, never per database: a drill's simulator
may hand out a number a real invoice already holds from another environment.
"""
from odoo import fields, models
from odoo.tools.sql import column_exists


class AccountMoveKsefNumber(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_number_environment = fields.Char(
        string="KSeF number's environment", copy=False, readonly=True,
        help="The KSeF environment that assigned the KSeF number (test, demo, production, a simulator's "
             "address, or a drill): KSeF numbers are unique within one environment only.")

    def _l10n_pl_ksef_number_environment_key(self):
        """The environment this invoice talks to now: its drill's simulator for a drill invoice
        (each drill starts a fresh simulator), otherwise the company's KSeF environment."""
        self.ensure_one()
        if self.l10n_pl_ksef_drill_id:
            return "drill:%s" % self.l10n_pl_ksef_drill_id.id
        return self.company_id.sudo()._l10n_pl_ksef_environment_key()

    def _auto_init(self):
        cr = self.env.cr
        created = not column_exists(cr, self._table, "l10n_pl_ksef_number_environment")
        result = super()._auto_init()
        # Only on an upgrade: at install the company's KSeF columns are not there yet (nor any number).
        if created and column_exists(cr, "res_company", "l10n_pl_ksef_environment"):
            # Numbers held before the environment was recorded: the company's environment today
            # (drill invoices keep no number after their drill).
            self.env.cr.execute("""
                UPDATE account_move m
                   SET l10n_pl_ksef_number_environment = CASE
                       WHEN m.l10n_pl_ksef_drill_id IS NOT NULL THEN 'drill:' || m.l10n_pl_ksef_drill_id
                       WHEN c.l10n_pl_ksef_environment = 'simulator'
                            OR (c.l10n_pl_ksef_environment IS NULL AND COALESCE(c.l10n_pl_ksef_base_url, '') != '')
                       THEN 'simulator:' || regexp_replace(rtrim(trim(COALESCE(c.l10n_pl_ksef_base_url, '')), '/'),
                                                           '/v2$', '') || '/v2'
                       ELSE COALESCE(c.l10n_pl_ksef_environment, 'test') END
                  FROM res_company c
                 WHERE c.id = m.company_id AND m.l10n_pl_ksef_number IS NOT NULL
                   AND m.l10n_pl_ksef_number_environment IS NULL
            """)
        return result
