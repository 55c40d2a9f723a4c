from odoo import fields, models


class ProductCategory(models.Model):
    _inherit = "product.category"

    l10n_pl_ksef_annex15 = fields.Boolean(
        string="Annex 15 goods/services (split payment)",
        help="The products of this category (and of its subcategories) are goods or services listed in "
             "Annex 15 to the Polish VAT act. Their invoice lines carry the Annex 15 marker (P_12_Zal_15) and an "
             "invoice to a business whose total exceeds 15,000 PLN says 'mechanizm podzielonej płatności' (P_18A).",
    )

    def _l10n_pl_ksef_is_annex15(self):
        self.ensure_one()
        category = self
        while category:
            if category.l10n_pl_ksef_annex15:
                return True
            category = category.parent_id
        return False


class ProductTemplate(models.Model):
    _inherit = "product.template"

    l10n_pl_ksef_annex15 = fields.Boolean(
        string="Annex 15 goods/services (split payment)",
        help="This product is listed in Annex 15 to the Polish VAT act (e.g. steel, fuel, electronics, scrap, "
             "construction services). Its invoice lines carry the Annex 15 marker (P_12_Zal_15) and an invoice to a "
             "business whose total exceeds 15,000 PLN says 'mechanizm podzielonej płatności' (P_18A). Can also be "
             "set on the product category.",
    )

    def _l10n_pl_ksef_is_annex15(self):
        self.ensure_one()
        return self.l10n_pl_ksef_annex15 or bool(self.categ_id and self.categ_id._l10n_pl_ksef_is_annex15())
