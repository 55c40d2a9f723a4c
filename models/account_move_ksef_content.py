"""Content rules of the FA(3) e-invoice taken from Odoo's own data.

Each rule cites where it comes from: the VAT act (ustawa o VAT) and the annotations of the
official FA(3) XSD. They complete the fa3.Invoice built by ``_l10n_pl_ksef_fa3_invoice``:

* P_16 "metoda kasowa" (art. 106e ust. 1 pkt 16): a tax due on payment (Odoo's cash-basis taxes).
* P_18 "odwrotne obciążenie" (art. 106e ust. 1 pkt 18): the buyer settles the VAT — ``oo`` lines,
  ``np II`` lines (art. 100 ust. 1 pkt 4: art. 28b services to an EU taxpayer) and ``np I``
  services to a business buyer (art. 28b: the buyer settles VAT or a tax of a similar kind).
* P_18A "mechanizm podzielonej płatności" (art. 106e ust. 1 pkt 18a, XSD annotation of P_18A): goods
  or services of Annex 15 to a business, total over 15,000 PLN (a foreign currency converted as the
  tax base is); P_12_Zal_15 on each Annex 15 line.
* GTU of the line from the product (l10n_pl's GTU code).
* TerminPlatnosci once per instalment of the payment terms (FA(3) takes up to 100).
* Zaplacono/DataZaplaty, or the partial payments, when the invoice was paid before it is issued.
* TypKorekty of a correction: where Odoo books it.
* A line label longer than the XSD's 512 characters is refused naming the line.
"""
from decimal import Decimal

from odoo import _, api, fields, models

from ..ksef import fa3

# XSD annotation of P_18A: "kwota należności ogółem przekracza kwotę 15 000 zł".
SPLIT_PAYMENT_THRESHOLD = Decimal("15000")
CORRECTION_TYPES = [
    ("1", "Effect at the date of the corrected invoice"),
    ("2", "Effect at the date of the correction"),
    ("3", "Effect at another date"),
]


def _amount(value):
    return Decimal(repr(round(value, 2))).quantize(Decimal("0.01"))


class AccountMove(models.Model):
    _inherit = "account.move"

    l10n_pl_ksef_correction_type = fields.Selection(
        CORRECTION_TYPES, string="KSeF correction effect", copy=False,
        help="TypKorekty of the FA(3) correction: in which period the correction takes effect in the VAT "
             "records. Left empty, it follows where Odoo books the correction: its accounting date in its own "
             "month (2), in the month of the corrected invoice (1), or another month (3).",
    )

    def _l10n_pl_ksef_booked_correction_type(self):
        """TypKorekty from the accounting dates of the correction and of the corrected invoice."""
        self.ensure_one()
        original = self.reversed_entry_id
        month = (self.date.year, self.date.month)
        if not self.invoice_date or month == (self.invoice_date.year, self.invoice_date.month):
            return "2"
        if original.date and month == (original.date.year, original.date.month):
            return "1"
        return "3"

    # ---- the credit note of a foreign-currency invoice keeps the original's rate ------------

    def _l10n_pl_ksef_keeps_original_rate(self):
        """A Polish credit note of a foreign-currency invoice: a changed tax base is converted at the
        rate used for it before the change (art. 31b ust. 1 of the VAT act), so Odoo books the credit
        note at its original's rate too."""
        self.ensure_one()
        original = self.reversed_entry_id
        return bool(
            self.move_type == "out_refund" and original.move_type == "out_invoice"
            and self.company_id.account_fiscal_country_id.code == "PL"
            and self.currency_id == original.currency_id and self.currency_id != self.company_currency_id
            and original.invoice_currency_rate
        )

    # A credit note's rate follows its original's: the field depends on itself through the link.
    invoice_currency_rate = fields.Float(recursive=True)

    @api.depends("reversed_entry_id.invoice_currency_rate")
    def _compute_expected_currency_rate(self):
        super()._compute_expected_currency_rate()
        for move in self:
            if move._l10n_pl_ksef_keeps_original_rate():
                move.expected_currency_rate = move.reversed_entry_id.invoice_currency_rate

    @api.depends("reversed_entry_id.invoice_currency_rate")
    def _compute_invoice_currency_rate(self):
        super()._compute_invoice_currency_rate()
        for move in self:
            if move._l10n_pl_ksef_keeps_original_rate():
                move.invoice_currency_rate = move.reversed_entry_id.invoice_currency_rate

    # ---- the content rules -----------------------------------------------------------------

    def _l10n_pl_ksef_product_lines(self):
        return self.invoice_line_ids.filtered(lambda line: line.display_type == "product")

    def _l10n_pl_ksef_complete_fa3(self, invoice, errors):
        super()._l10n_pl_ksef_complete_fa3(invoice, errors)
        product_lines = self._l10n_pl_ksef_product_lines()
        for line in product_lines:
            label = line.name or line.product_id.display_name or ""
            if len(label) > fa3.MAX_LINE_NAME:
                errors.append(_(
                    "Line '%(line)s…', Label: %(count)s characters; KSeF accepts at most %(max)s. Shorten the label "
                    "(the rest can go to the invoice's terms).", line=label[:60], count=len(label), max=fa3.MAX_LINE_NAME))
        mapped = len(product_lines) == len(invoice.lines)
        if mapped:
            for move_line, fa_line in zip(product_lines, invoice.lines):
                product = move_line.product_id
                fa_line.annex15 = bool(product) and product.product_tmpl_id._l10n_pl_ksef_is_annex15()
                fa_line.gtu = product.l10n_pl_vat_gtu or None if product else None
        self._l10n_pl_ksef_annotations(invoice, product_lines, errors)
        self._l10n_pl_ksef_payment_details(invoice, errors)
        if invoice.correction is not None:
            invoice.correction.correction_type = int(
                self.l10n_pl_ksef_correction_type or self._l10n_pl_ksef_booked_correction_type())

    def _l10n_pl_ksef_annotations(self, invoice, product_lines, errors):
        notes = invoice.annotations
        buyer = invoice.buyer
        business = bool(buyer.nip or buyer.eu_vat_number or buyer.tax_id)
        taxes = product_lines.tax_ids.flatten_taxes_hierarchy()
        # P_16: the tax is due on payment (art. 19a ust. 5 pkt 1 / art. 21 ust. 1): Odoo's cash-basis taxes.
        notes.cash_method = any(tax.tax_exigibility == "on_payment" for tax in taxes)
        for line in product_lines:
            rated = line.tax_ids.flatten_taxes_hierarchy().filtered("l10n_pl_ksef_rate")[:1]
            rate = rated.l10n_pl_ksef_rate
            service = line.product_id.type == "service" if line.product_id else rated.tax_scope == "service"
            if rate == "np II":
                if not business:
                    errors.append(_(
                        "Line '%(line)s', Taxes: %(tax)s is for services of art. 28b to a taxpayer of another EU "
                        "country (art. 100 ust. 1 pkt 4), but the customer %(partner)s has no tax ID. A consumer's "
                        "service is taxed in Poland.", line=(line.name or "")[:60], tax=rated.name,
                        partner=self.commercial_partner_id.name))
                notes.reverse_charge = True
            elif rate == "np I" and service and business:
                notes.reverse_charge = True
        # P_18A: Annex 15 goods/services to a business, total (in PLN, at the invoice's rate) over 15,000.
        annex15 = any(line.annex15 for line in invoice.lines) or any(
            line.annex15 for line in (invoice.order.lines if invoice.order else []))
        reference = self.reversed_entry_id if invoice.correction is not None and self.reversed_entry_id else self
        rate = reference.invoice_currency_rate or 1.0
        total_pln = abs(_amount(reference._l10n_pl_ksef_transaction_total() / rate))
        notes.split_payment = bool(annex15 and business and total_pln > SPLIT_PAYMENT_THRESHOLD)

    def _l10n_pl_ksef_transaction_total(self):
        """The gross value, in the invoice's currency, that the split-payment threshold looks at."""
        self.ensure_one()
        return self.amount_total

    def _l10n_pl_ksef_payment_details(self, invoice, errors):
        due_dates = sorted(set(self.line_ids.filtered(
            lambda line: line.display_type == "payment_term" and line.date_maturity).mapped("date_maturity")))
        if len(due_dates) > 100:
            errors.append(_("Payment Terms: %(count)s instalments; an FA(3) e-invoice takes at most 100 due dates.",
                            count=len(due_dates)))
            due_dates = due_dates[:100]
        paid_date, partials = None, []
        if self.move_type == "out_invoice" and self.payment_state in ("paid", "in_payment", "partial"):
            payments = [
                partial for partial in self._get_all_reconciled_invoice_partials()
                if not partial["is_exchange"] and not partial["aml"].move_id.is_invoice(include_receipts=True)
            ]
            if payments and self.payment_state in ("paid", "in_payment"):
                paid_date = max(partial["aml"].date for partial in payments)
            else:
                dated = sorted((partial["aml"].date, _amount(partial["amount"])) for partial in payments)[:100]
                partials = [(amount, day) for day, amount in dated]
        if not (due_dates or paid_date or partials):
            return
        if invoice.payment is None:
            invoice.payment = fa3.Payment()
        # Paid in full before issue: there is nothing left to pay by a due date.
        invoice.payment.due_dates = [] if paid_date else due_dates
        invoice.payment.paid_date = paid_date
        invoice.payment.partial_payments = partials
