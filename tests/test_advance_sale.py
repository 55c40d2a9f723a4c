from lxml import etree

from odoo import Command
from odoo.tests import tagged

from .common import NS, KsefTestCommon


@tagged("post_install_l10n", "post_install", "-at_install")
class TestAdvanceFromSale(KsefTestCommon):
    """With ``sale`` installed (it is no dependency: run with ``-i sale``), a down-payment invoice
    is posted as an advance invoice (ZAL) carrying its sales order, and the final invoice that
    deducts it as a settlement (ROZ) naming it. Without ``sale`` there is nothing to test here."""

    def setUp(self):
        super().setUp()
        if "sale.order" not in self.env:
            self.skipTest("sale is not installed in this database")

    def _invoices(self, order, method, **values):
        wizard = self.env["sale.advance.payment.inv"].sudo().with_context(
            active_model="sale.order", active_ids=order.ids).create({"advance_payment_method": method, **values})
        before = order.invoice_ids
        wizard.create_invoices()
        return (order.invoice_ids - before).with_env(self.env)

    def test_down_payment_then_final_invoice(self):
        rack = self.env["product.product"].create({"name": "Regał magazynowy", "list_price": 500.0,
                                                   "taxes_id": [Command.set(self.tax_23.ids)]})
        order = self.env["sale.order"].sudo().create({
            "partner_id": self.buyer_pl.id,
            "order_line": [Command.create({"product_id": rack.id, "product_uom_qty": 4, "price_unit": 500.0,
                                           "tax_id": [Command.set(self.tax_23.ids)]})],
        })
        order.action_confirm()
        advance = self._invoices(order, "percentage", amount=50)
        advance.action_post()
        self.assertEqual(advance.l10n_pl_ksef_invoice_kind, "ZAL")
        self.assertEqual(advance.l10n_pl_ksef_order_line_ids.mapped("name"), order.order_line.filtered(
            lambda line: not line.is_downpayment and not line.display_type).mapped("name"))
        root = etree.fromstring(advance.with_user(self.user)._l10n_pl_ksef_build_xml())
        self.assertEqual(root.findtext("fa:Fa/fa:RodzajFaktury", namespaces=NS), "ZAL")
        self.assertEqual(root.findtext("fa:Fa/fa:Zamowienie/fa:WartoscZamowienia", namespaces=NS), "2460.00")
        self.assertEqual(root.findtext("fa:Fa/fa:P_15", namespaces=NS), "1230.00")
        advance.write({"l10n_pl_ksef_number": "5265877635-20261101-0100001AF629-AF", "l10n_pl_ksef_state": "accepted"})

        final = self._invoices(order, "delivered")
        final.action_post()
        self.assertEqual(final.l10n_pl_ksef_invoice_kind, "ROZ")
        self.assertEqual(final.l10n_pl_ksef_advance_ids, advance)
        root = etree.fromstring(final.with_user(self.user)._l10n_pl_ksef_build_xml())
        self.assertEqual(root.findtext("fa:Fa/fa:RodzajFaktury", namespaces=NS), "ROZ")
        self.assertEqual(root.findtext("fa:Fa/fa:FakturaZaliczkowa/fa:NrKSeFFaZaliczkowej", namespaces=NS),
                         advance.l10n_pl_ksef_number)
        self.assertEqual([n.text for n in root.findall("fa:Fa/fa:FaWiersz/fa:P_11", NS)], ["2000.00"])
        self.assertEqual(root.findtext("fa:Fa/fa:P_15", namespaces=NS), "1230.00")
