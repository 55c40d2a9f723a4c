from odoo import models
from odoo.addons.account.models.chart_template import template

# KSeF rate of each sales tax of Odoo's Polish chart (l10n_pl). Taxes not listed here
# (e.g. the triangular-transaction tax) must be given a KSeF rate by the accountant.
L10N_PL_TAX_KSEF_RATES = {
    "vs_kraj_23": {"l10n_pl_ksef_rate": "23"},
    "vs_kraj_usl_23": {"l10n_pl_ksef_rate": "23"},
    "vp_leas_sale": {"l10n_pl_ksef_rate": "23"},
    "vs_kraj_8": {"l10n_pl_ksef_rate": "8"},
    "vs_kraj_5": {"l10n_pl_ksef_rate": "5"},
    "vs_kraj_0": {"l10n_pl_ksef_rate": "0 KR"},
    "vs_zwrot_podróżnych_0": {"l10n_pl_ksef_rate": "0 KR"},
    "vs_kraj_zw": {"l10n_pl_ksef_rate": "zw",
                   "l10n_pl_ksef_exemption_basis": "art. 43 ust. 1 ustawy o VAT"},
    "vs_kraj_zw_gold": {"l10n_pl_ksef_rate": "zw",
                        "l10n_pl_ksef_exemption_basis": "art. 122 ustawy o VAT"},
    "vs_stal": {"l10n_pl_ksef_rate": "oo"},
    "vs_unia": {"l10n_pl_ksef_rate": "0 WDT"},
    "vs_unia_i42": {"l10n_pl_ksef_rate": "0 WDT"},
    "vs_unia_i63": {"l10n_pl_ksef_rate": "0 WDT"},
    "vs_dostu": {"l10n_pl_ksef_rate": "np II"},
    "vs_eksp_tow": {"l10n_pl_ksef_rate": "0 EX"},
    "vs_ekspu": {"l10n_pl_ksef_rate": "np I"},
}


class AccountChartTemplate(models.AbstractModel):
    _inherit = "account.chart.template"

    @template("pl", "account.tax")
    def _get_pl_ksef_account_tax(self):
        return L10N_PL_TAX_KSEF_RATES

    def _l10n_pl_ksef_set_tax_rates(self, companies):
        """Give the KSeF rates to taxes of companies whose Polish chart was loaded before us."""
        for company in companies:
            for xmlid, values in L10N_PL_TAX_KSEF_RATES.items():
                tax = self.with_company(company).ref(xmlid, raise_if_not_found=False)
                if tax and not tax.l10n_pl_ksef_rate:
                    tax.write(values)
