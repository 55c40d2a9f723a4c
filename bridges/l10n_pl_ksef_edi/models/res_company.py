"""One set of KSeF settings: l10n_pl_ksef's, per company. l10n_pl_edi's certificate follows our
Authentication certificate; its single global environment follows ours when it can."""
from odoo import _, api, fields, models
from odoo.exceptions import UserError

# l10n_pl_edi's global parameter and the environments it knows (everything else goes to production)
EDI_MODE_PARAM = "l10n_pl_edi_ksef.mode"
EDI_MODES = {"production": "prod", "test": "test"}


class ResCompany(models.Model):
    _inherit = "res.company"

    # Redefined: computed from our Authentication certificate (which our constraint keeps of
    # type Authentication: never an Offline one) and not stored, so that l10n_pl_edi's
    # neutralize.sql, which deletes the certificate its column points to, deletes nothing.
    l10n_pl_edi_certificate = fields.Many2one(
        compute="_compute_l10n_pl_edi_certificate", store=False, readonly=True)

    @api.depends("l10n_pl_ksef_auth_method", "l10n_pl_ksef_auth_certificate_id")
    def _compute_l10n_pl_edi_certificate(self):
        for company in self.sudo():
            company.l10n_pl_edi_certificate = (company.l10n_pl_ksef_auth_method == "certificate"
                                               and company.l10n_pl_ksef_auth_certificate_id)

    @api.model
    def _l10n_pl_ksef_edi_mode(self):
        """l10n_pl_edi's one environment ('prod' or 'test') for the Polish companies of this
        database, or None when it cannot express theirs (simulator, demo, or several)."""
        environments = set(self.sudo().search([("partner_id.country_id.code", "=", "PL")]).mapped("l10n_pl_ksef_environment"))
        modes = {EDI_MODES.get(environment) for environment in environments}
        return modes.pop() if len(modes) == 1 and None not in modes else None

    @api.model
    def _l10n_pl_ksef_edi_sync_mode(self):
        mode = self._l10n_pl_ksef_edi_mode()
        if mode:
            self.env["ir.config_parameter"].sudo().set_param(EDI_MODE_PARAM, mode)
        return mode

    def _l10n_pl_ksef_edi_mode_fits(self):
        mode = self._l10n_pl_ksef_edi_mode()
        return bool(mode) and all(EDI_MODES.get(c.l10n_pl_ksef_environment) == mode for c in self)

    def _l10n_pl_ksef_edi_check_mode(self):
        """Refuse, saying why, whatever would make l10n_pl_edi reach KSeF on its own when its one
        global environment cannot be this company's (it would silently use production)."""
        self._l10n_pl_ksef_edi_sync_mode()
        for company in self:
            if not company._l10n_pl_ksef_edi_mode_fits():
                environment = dict(company._fields["l10n_pl_ksef_environment"]._description_selection(self.env)).get(
                    company.l10n_pl_ksef_environment, company.l10n_pl_ksef_environment)
                raise UserError(_(
                    "Odoo's KSeF module (l10n_pl_edi) knows one KSeF environment for the whole database, test or "
                    "production. Company %(company)s uses the KSeF environment '%(environment)s' (Settings > "
                    "Invoicing > KSeF) and the Polish companies of this database do not all use the same test or "
                    "production environment, so it cannot reach KSeF for this company. Invoices go to KSeF with Post "
                    "to KSeF and vendor bills are downloaded over the company's own KSeF connection.",
                    company=company.name, environment=environment))

    def write(self, vals):
        result = super().write(vals)
        if "l10n_pl_ksef_environment" in vals:
            self._l10n_pl_ksef_edi_sync_mode()
        return result

    @api.model
    def _cron_l10n_pl_edi_refresh_tokens(self):
        # REPLACES l10n_pl_edi's: its login would use our certificate against its one global
        # environment. l10n_pl_ksef logs in per company, in the company's environment, when needed.
        return None
