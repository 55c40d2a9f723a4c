"""The company's KSeF connection settings are checked when they are saved, not when an invoice
meets them: an address that is not http(s) would otherwise pass for a KSeF outage (and send
invoices offline), a timeout of zero or less would end in a traceback."""
from odoo import _, api, models
from odoo.exceptions import ValidationError

from ..ksef import safeurl


class ResCompanyKsefGuard(models.Model):
    _inherit = "res.company"

    @api.constrains("l10n_pl_ksef_base_url", "l10n_pl_ksef_latarnia_url")
    def _check_l10n_pl_ksef_addresses(self):
        for company in self:
            for field in ("l10n_pl_ksef_base_url", "l10n_pl_ksef_latarnia_url"):
                url = company[field]
                if not url:
                    continue
                try:
                    safeurl.http_url(url)
                except safeurl.UnsafeUrl:
                    raise ValidationError(_(
                        "Company %(company)s, %(field)s: %(url)s is not a web address. KSeF and Latarnia are "
                        "reached over http:// or https:// (e.g. http://127.0.0.1:8765 for the local simulator), "
                        "without a user name or password in the address.",
                        company=company.name, field=company._fields[field].get_description(self.env)["string"],
                        url=url)) from None

    @api.constrains("l10n_pl_ksef_timeout")
    def _check_l10n_pl_ksef_timeout(self):
        for company in self:
            if not company.l10n_pl_ksef_timeout > 0:
                raise ValidationError(_(
                    "Company %(company)s, KSeF timeout: %(timeout)s s is not a waiting time; give the number of "
                    "seconds KSeF may take to answer (e.g. 30).",
                    company=company.name, timeout=company.l10n_pl_ksef_timeout))
