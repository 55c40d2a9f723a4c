"""Advance invoices (ZAL) and settlement invoices (ROZ), and their corrections (KOR_ZAL, KOR_ROZ).

* ZAL (art. 106b ust. 1 pkt 4, art. 106f ust. 1 of the VAT act): documents an advance received
  before the supply. Its totals are the advance (Odoo's invoice lines: the down payment at each
  rate); the order or contract it is paid for goes into ``Zamowienie`` (its value with VAT and its
  lines), kept on the invoice as "order lines".
* ROZ (art. 106f ust. 3): the final invoice after the supply. Its lines show the whole order
  (FaWiersz: "pełne wartości zamówienia lub umowy", XSD annotation), the lines deducting the
  advances stay out of FaWiersz but in the totals: P_13_x/P_14_x and P_15 are what remains to pay
  (XSD annotation of P_15). It names each advance invoice by its KSeF number (FakturaZaliczkowa).
* KOR_ZAL / KOR_ROZ: a credit note of a ZAL / ROZ.

A ROZ names its advance invoices' KSeF numbers: while one of them was issued offline and has no
number yet, the ROZ is held exactly like a credit note of an offline original and released when
the last number arrives (the lifecycle's "waits for references" rule, ``account_move_ksef_lifecycle``).

The kind is an explicit choice on the invoice. When ``sale`` is installed, its down-payment
lines propose it at posting (no dependency: the sale fields are looked up only if present).
"""
from odoo import _, api, fields, models

from ..ksef import fa3, fa3_parts
from .account_move import _to_decimal
from .account_move_ksef_lifecycle import REFERENCE_PENDING_STATES

INVOICE_KINDS = [
    ("VAT", "Regular invoice"),
    ("ZAL", "Advance invoice (ZAL)"),
    ("ROZ", "Settlement of advances (ROZ)"),
]


class AccountMove(models.Model):
    _inherit = "account.move"

    # The kind's fields change only in draft (the e-invoice is built from them): see
    # account_move_ksef_guard.DRAFT_ONLY_FIELDS.
    l10n_pl_ksef_invoice_kind = fields.Selection(
        INVOICE_KINDS, string="KSeF invoice kind", default="VAT", copy=True,
        help="Advance invoice (ZAL): documents a payment received before the supply; describe the order in its "
             "order lines. Settlement (ROZ): the final invoice deducting the advance invoices it names.",
    )
    l10n_pl_ksef_advance_ids = fields.Many2many(
        "account.move", "l10n_pl_ksef_move_advance_rel", "settlement_id", "advance_id",
        string="Advance invoices settled", copy=False, check_company=True,
        domain="[('move_type', '=', 'out_invoice'), ('state', '=', 'posted'), "
               "('l10n_pl_ksef_invoice_kind', '=', 'ZAL'), ('commercial_partner_id', '=', commercial_partner_id)]",
        help="The advance invoices (ZAL) this settlement invoice deducts; the e-invoice names their KSeF numbers.",
    )
    l10n_pl_ksef_order_line_ids = fields.One2many(
        "l10n_pl_ksef.order.line", "move_id", string="Order lines", copy=True,
        help="The order or contract the advance is paid for (art. 106f ust. 1 pkt 4 of the VAT act).",
    )
    l10n_pl_ksef_order_total = fields.Monetary(
        string="Order value (gross)", compute="_compute_l10n_pl_ksef_order_total", currency_field="currency_id")

    @api.depends("l10n_pl_ksef_order_line_ids.price_total")
    def _compute_l10n_pl_ksef_order_total(self):
        for move in self:
            move.l10n_pl_ksef_order_total = sum(move.l10n_pl_ksef_order_line_ids.mapped("price_total"))

    @api.depends("l10n_pl_ksef_advance_ids.l10n_pl_ksef_number", "l10n_pl_ksef_advance_ids.l10n_pl_ksef_state",
                 "reversed_entry_id.move_type")
    def _compute_l10n_pl_ksef_waiting_original(self):
        return super()._compute_l10n_pl_ksef_waiting_original()

    # ---- kind ------------------------------------------------------------------------------

    def _l10n_pl_ksef_fa3_kind(self):
        """RodzajFaktury of this invoice or credit note."""
        self.ensure_one()
        original = self.reversed_entry_id
        if self.move_type == "out_refund" and original:
            return {"ZAL": "KOR_ZAL", "ROZ": "KOR_ROZ"}.get(original.l10n_pl_ksef_invoice_kind, "KOR")
        if self.move_type == "out_refund" or original.move_type == "out_refund":
            return "KOR"
        return self.l10n_pl_ksef_invoice_kind or "VAT"

    def _l10n_pl_ksef_settled_advances(self):
        """The advance invoices this e-invoice names (a ROZ's own, a KOR_ROZ's original's)."""
        self.ensure_one()
        kind = self._l10n_pl_ksef_fa3_kind()
        if kind == "ROZ":
            return self.l10n_pl_ksef_advance_ids
        if kind == "KOR_ROZ":
            return self.reversed_entry_id.l10n_pl_ksef_advance_ids
        return self.browse()

    def _l10n_pl_ksef_referenced_invoices(self):
        """A settlement (or its correction) names its advance invoices by their KSeF numbers too."""
        return super()._l10n_pl_ksef_referenced_invoices() | self._l10n_pl_ksef_settled_advances()

    @api.model
    def _l10n_pl_ksef_referencing_domain(self, references):
        return ["|", "|", ("l10n_pl_ksef_advance_ids", "in", references.ids),
                ("reversed_entry_id.l10n_pl_ksef_advance_ids", "in", references.ids)] \
            + super()._l10n_pl_ksef_referencing_domain(references)

    # ---- FA(3) -----------------------------------------------------------------------------

    def _l10n_pl_ksef_complete_fa3(self, invoice, errors):
        kind = self._l10n_pl_ksef_fa3_kind()
        invoice.kind = kind
        if kind == "ZAL":
            # before the general rules: they read the order's Annex 15 goods for P_18A
            self._l10n_pl_ksef_advance_content(invoice, errors)
        super()._l10n_pl_ksef_complete_fa3(invoice, errors)
        if kind == "ZAL" and invoice.payment is not None and invoice.payment.paid_date and not self.delivery_date:
            # P_6 of an advance invoice: the day the advance was received, when it is not the issue
            # date (XSD annotation of P_6, art. 106b ust. 1 pkt 4).
            paid = invoice.payment.paid_date
            invoice.delivery_date = paid if paid != invoice.issue_date else None
        if kind == "ROZ":
            self._l10n_pl_ksef_settlement_content(invoice, errors)
        if kind in ("ROZ", "KOR_ROZ"):
            invoice.advance_invoices = self._l10n_pl_ksef_advance_references(errors)

    def _l10n_pl_ksef_advance_content(self, invoice, errors):
        orders = self.l10n_pl_ksef_order_line_ids
        if not orders:
            errors.append(_("Order lines: an advance invoice (ZAL) must describe the order or contract the advance is "
                            "paid for (art. 106f ust. 1 pkt 4 of the VAT act): add its order lines."))
            return
        lines = []
        for order_line in orders:
            rate = order_line.tax_id.l10n_pl_ksef_rate
            if not rate:
                errors.append(_("Order line '%(line)s', Tax: it needs a VAT tax with a 'KSeF VAT rate'.",
                                line=(order_line.name or "")[:60]))
                continue
            product = order_line.product_id
            lines.append(fa3_parts.OrderLine(
                name=order_line.name,
                code=product.default_code or None,
                unit=order_line.uom_id.name or None,
                quantity=_to_decimal(order_line.quantity, 6),
                unit_price=_to_decimal(order_line.price_unit, 8),
                net_amount=_to_decimal(order_line.price_subtotal),
                vat_amount=_to_decimal(order_line.price_tax) if fa3.RATE_TOTAL_FIELDS[rate][1] else None,
                rate=rate,
                gtu=product.l10n_pl_vat_gtu or None if product else None,
                annex15=bool(product) and product.product_tmpl_id._l10n_pl_ksef_is_annex15(),
            ))
        total = self.currency_id.round(self.l10n_pl_ksef_order_total)
        if self.currency_id.compare_amounts(self.amount_total, total) > 0:
            errors.append(_("Order lines: the advance (%(advance)s) is more than the order's value with VAT "
                            "(%(order)s).", advance=self.amount_total, order=total))
        invoice.order = fa3_parts.Order(total=_to_decimal(total), lines=lines)
        # The advance's lines are amounts received, not goods: FaWiersz is optional on a ZAL (XSD
        # annotation of FaWiersz) and the goods are those of Zamowienie.
        invoice.lines = []

    def _l10n_pl_ksef_transaction_total(self):
        """The split-payment threshold looks at the whole transaction, "bez względu na liczbę wynikających z
        niej płatności" (art. 19 pkt 2 of Prawo przedsiębiorców, to which art. 106e ust. 1 pkt 18a refers):
        an advance invoice's order, a settlement invoice before its deductions."""
        self.ensure_one()
        kind = self.l10n_pl_ksef_invoice_kind
        if self.move_type == "out_invoice" and kind == "ZAL" and self.l10n_pl_ksef_order_line_ids:
            return self.l10n_pl_ksef_order_total
        if self.move_type == "out_invoice" and kind == "ROZ":
            return self.amount_total - sum(self._l10n_pl_ksef_deduction_lines().mapped("price_total"))
        return super()._l10n_pl_ksef_transaction_total()

    def _l10n_pl_ksef_deduction_lines(self):
        """The lines of a settlement invoice that deduct its advances: sale's down-payment lines when
        ``sale`` is installed, otherwise the negative lines."""
        lines = self.invoice_line_ids.filtered(lambda line: line.display_type == "product")
        if "sale_line_ids" in lines._fields:
            deductions = lines.filtered(lambda line: any(line.sale_line_ids.mapped("is_downpayment")))
            if deductions:
                return deductions
        return lines.filtered(lambda line: line.currency_id.compare_amounts(line.price_subtotal, 0) < 0)

    def _l10n_pl_ksef_settlement_content(self, invoice, errors):
        advances = self.l10n_pl_ksef_advance_ids
        if not advances:
            errors.append(_("Advance invoices settled: a settlement invoice (ROZ) must name the advance invoices it "
                            "deducts (art. 106f ust. 3 of the VAT act)."))
            return
        deductions = self._l10n_pl_ksef_deduction_lines()
        deducted = -sum(deductions.mapped("price_total"))
        corrected = advances.reversal_move_ids.filtered(lambda m: m.state == "posted" and m.move_type == "out_refund")
        received = sum(advances.mapped("amount_total")) - sum(corrected.mapped("amount_total"))
        if self.currency_id.compare_amounts(deducted, received):
            errors.append(_("Invoice Lines: the lines deducting advances total %(deducted)s with VAT, but the advance "
                            "invoices %(advances)s total %(received)s.", deducted=self.currency_id.round(deducted),
                            advances=", ".join(advances.mapped("name")), received=self.currency_id.round(received)))
        others = advances.filtered(lambda m: m.commercial_partner_id != self.commercial_partner_id)
        if others:
            errors.append(_("Advance invoices settled: %(advances)s were issued to another customer.",
                            advances=", ".join(others.mapped("name"))))
        product_lines = self._l10n_pl_ksef_product_lines()
        if len(product_lines) == len(invoice.lines):
            # FaWiersz shows the whole order; the deductions are in the totals (what remains to pay).
            invoice.lines = [fa_line for move_line, fa_line in zip(product_lines, invoice.lines) if move_line not in deductions]
            for number, fa_line in enumerate(invoice.lines, start=1):
                fa_line.number = number

    def _l10n_pl_ksef_advance_references(self, errors):
        references = []
        for advance in self._l10n_pl_ksef_settled_advances():
            if advance.l10n_pl_ksef_number:
                references.append(fa3_parts.AdvanceInvoice(ksef_number=advance.l10n_pl_ksef_number))
            elif advance.l10n_pl_ksef_state in REFERENCE_PENDING_STATES:
                errors.append(_("Advance invoices settled: %(advance)s has no KSeF number yet; the settlement invoice "
                                "can be sent once KSeF has accepted it.", advance=advance.name))
            else:
                # Issued outside KSeF (total failure, or before the KSeF obligation).
                references.append(fa3_parts.AdvanceInvoice(number=advance.name))
        return references

    # ---- sale's down payments (only when ``sale`` is installed) ----------------------------

    def _post(self, soft=True):
        for move in self.filtered(lambda m: m.move_type == "out_invoice" and m.country_code == "PL"
                                  and m.l10n_pl_ksef_invoice_kind in (False, "VAT")):
            move._l10n_pl_ksef_kind_from_sale()
        return super()._post(soft=soft)

    def _l10n_pl_ksef_kind_from_sale(self):
        """Down-payment invoices of ``sale`` become ZAL (with their order's lines), final invoices
        deducting down payments become ROZ (naming the down-payment invoices)."""
        self.ensure_one()
        lines = self.invoice_line_ids.filtered(lambda line: line.display_type == "product")
        if not lines or "sale_line_ids" not in lines._fields:
            return
        down = lines.filtered(lambda line: any(line.sale_line_ids.mapped("is_downpayment")))
        if not down:
            return
        if down == lines and all(line.quantity > 0 for line in lines):
            orders = lines.sale_line_ids.order_id
            order_lines = orders.order_line.filtered(lambda line: not line.is_downpayment and not line.display_type)
            self.write({"l10n_pl_ksef_invoice_kind": "ZAL", "l10n_pl_ksef_order_line_ids": [fields.Command.create({
                "name": line.name,
                "product_id": line.product_id.id,
                "quantity": line.product_uom_qty,
                "uom_id": line.product_uom.id,
                "price_unit": line.price_unit * (1 - (line.discount or 0.0) / 100.0),
                "tax_id": line.tax_id[:1].id,
            }) for line in order_lines]})
            return
        deductions = down.filtered(lambda line: line.quantity < 0)
        advances = deductions.sale_line_ids.invoice_lines.move_id.filtered(
            lambda m: m != self and m.move_type == "out_invoice" and m.state == "posted")
        if advances:
            self.write({"l10n_pl_ksef_invoice_kind": "ROZ", "l10n_pl_ksef_advance_ids": [fields.Command.set(advances.ids)]})
