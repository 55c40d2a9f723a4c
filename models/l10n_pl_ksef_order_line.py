from odoo import _, api, fields, models
from odoo.exceptions import UserError


class L10nPlKsefOrderLine(models.Model):
    """A line of the order or contract an advance invoice (ZAL) is paid for: FA(3) ``Zamowienie``
    (art. 106f ust. 1 pkt 4 of the VAT act). Not booked: it describes the order, in the invoice's
    currency."""

    _name = "l10n_pl_ksef.order.line"
    _description = "KSeF advance invoice: order line"
    _order = "move_id, sequence, id"
    _check_company_auto = True

    move_id = fields.Many2one("account.move", string="Invoice", required=True, ondelete="cascade", index=True)
    sequence = fields.Integer(default=10)
    company_id = fields.Many2one(related="move_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="move_id.currency_id")
    product_id = fields.Many2one("product.product", check_company=True)
    name = fields.Char(string="Description", required=True)
    quantity = fields.Float(digits="Product Unit of Measure", default=1.0)
    uom_id = fields.Many2one("uom.uom", string="Unit")
    price_unit = fields.Float(string="Unit Price (net)", digits="Product Price")
    tax_id = fields.Many2one("account.tax", string="VAT", check_company=True, domain="[('type_tax_use', '=', 'sale'), ('company_id', 'parent_of', company_id)]")
    price_subtotal = fields.Monetary(string="Net", compute="_compute_amounts", currency_field="currency_id")
    price_tax = fields.Monetary(string="VAT amount", compute="_compute_amounts", currency_field="currency_id")
    price_total = fields.Monetary(string="Gross", compute="_compute_amounts", currency_field="currency_id")

    @api.depends("quantity", "price_unit", "tax_id", "currency_id")
    def _compute_amounts(self):
        for line in self:
            if line.tax_id:
                taxes = line.tax_id.compute_all(line.price_unit, line.currency_id, line.quantity, product=line.product_id)
                line.price_subtotal, line.price_total = taxes["total_excluded"], taxes["total_included"]
            else:
                line.price_subtotal = line.price_total = line.currency_id.round(line.quantity * line.price_unit) if line.currency_id else line.quantity * line.price_unit
            line.price_tax = line.price_total - line.price_subtotal

    @api.onchange("product_id")
    def _onchange_product_id(self):
        if self.product_id:
            self.name = self.product_id.display_name
            self.uom_id = self.product_id.uom_id
            self.price_unit = self.product_id.lst_price
            self.tax_id = self.product_id.taxes_id.filtered(lambda t: t.company_id == self.move_id.company_id)[:1]

    def _check_move_draft(self):
        posted = self.move_id.filtered(lambda m: m.state != "draft")
        if posted:
            raise UserError(_("Invoice %(invoice)s is not a draft: its order lines can no longer change.",
                              invoice=", ".join(posted.mapped("display_name"))))

    @api.model_create_multi
    def create(self, vals_list):
        lines = super().create(vals_list)
        lines._check_move_draft()
        return lines

    def write(self, vals):
        self._check_move_draft()
        result = super().write(vals)
        self._check_move_draft()
        return result

    def unlink(self):
        self._check_move_draft()
        return super().unlink()
