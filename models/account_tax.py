from odoo import fields, models

# FA(3) TStawkaPodatku: the rate code written in P_12 of each line, which also decides the
# P_13_x/P_14_x total the line's amounts go to (FA(3) XSD, ``TStawkaPodatku``).
KSEF_RATE_SELECTION = [
    ("23", "23%"),
    ("22", "22%"),
    ("8", "8%"),
    ("7", "7%"),
    ("5", "5%"),
    ("4", "4% (taxi flat rate)"),
    ("3", "3% (taxi flat rate)"),
    ("0 KR", "0% domestic"),
    ("0 WDT", "0% intra-EU supply of goods (WDT)"),
    ("0 EX", "0% export of goods"),
    ("zw", "Exempt (zw)"),
    ("oo", "Reverse charge (oo)"),
    ("np I", "Outside Polish VAT scope (np, outside the country)"),
    ("np II", "Outside Polish VAT scope (np, art. 100 sec. 1 item 4)"),
]


class AccountTax(models.Model):
    _inherit = "account.tax"

    l10n_pl_ksef_rate = fields.Selection(
        KSEF_RATE_SELECTION,
        string="KSeF VAT rate",
        help="How this tax is reported in the FA(3) e-invoice sent to KSeF (P_12 of the line). "
             "Invoices with a sales tax that has no KSeF rate cannot be sent to KSeF.",
    )
    l10n_pl_ksef_exemption_basis = fields.Char(
        string="KSeF exemption basis",
        help="Legal basis of the VAT exemption printed on the e-invoice (P_19A), e.g. "
             "'art. 43 ust. 1 pkt 37 ustawy o VAT'. Required for exempt (zw) taxes.",
    )
