from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from lxml import etree

from odoo import Command
from odoo.tests import tagged

from ..ksef import fa3
from .common import NS, KsefTestCommon
from ..ksef.simulator.testing import warsaw_today

CENT = Decimal("0.01")


def _d(value):
    return Decimal(repr(round(value, 2))).quantize(CENT)


@tagged("post_install_l10n", "post_install", "-at_install")
class TestFa3Matrix(KsefTestCommon):
    """Invoices as a Polish accountant issues them with Odoo's Polish chart: every sales tax of the
    chart, foreign currencies at awkward rates, instalments, discounts, both rounding methods,
    credit notes of every kind, advances. Each file is compared with the books: every P_13_x/P_14_x
    (and P_14_xW) with Odoo's own tax totals per rate, P_15 with the invoice total, to the grosz."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        chart = cls.env["account.chart.template"].with_company(cls.company)
        cls.tax_23_services = chart.ref("vs_kraj_usl_23")
        cls.tax_travel = chart.ref("vs_zwrot_podróżnych_0")
        cls.tax_gold = chart.ref("vs_kraj_zw_gold")
        cls.tax_dostu = chart.ref("vs_dostu")
        cls.tax_wdt_i42 = chart.ref("vs_unia_i42")

    # ---- the books -----------------------------------------------------------------------------

    def _expected_totals(self, move):
        """{element: Decimal} from Odoo's books: net per KSeF rate from the product lines, VAT per
        rate from the invoice's tax totals (Odoo's own summary), VAT in PLN for foreign currency."""
        sign = Decimal(-1) if move.move_type == "out_refund" else Decimal(1)
        foreign = move.currency_id != move.company_currency_id
        expected = defaultdict(Decimal)
        group_rate = {}
        for line in move.invoice_line_ids.filtered(lambda line: line.display_type == "product"):
            tax = line.tax_ids.flatten_taxes_hierarchy().filtered("l10n_pl_ksef_rate")
            net_field, _vat, _pln = fa3.RATE_TOTAL_FIELDS[tax.l10n_pl_ksef_rate]
            expected[net_field.upper()] += sign * _d(line.price_subtotal)
            group_rate[tax.tax_group_id.id] = tax.l10n_pl_ksef_rate
        for subtotal in move.tax_totals["subtotals"]:
            for group in subtotal["tax_groups"]:
                _net, vat_field, pln_field = fa3.RATE_TOTAL_FIELDS[group_rate[group["id"]]]
                if vat_field is None:
                    self.assertEqual(_d(group["tax_amount_currency"]), 0)
                    continue
                expected[vat_field.upper()] += sign * _d(group["tax_amount_currency"])
                if foreign:
                    expected[pln_field.upper()] += sign * _d(group["tax_amount"])
        expected["P_15"] = sign * _d(move.amount_total)
        return dict(expected)

    def _assert_books(self, move):
        xml = move.with_user(self.user)._l10n_pl_ksef_build_xml()  # validated against the XSD
        root = etree.fromstring(xml)
        found = {
            etree.QName(node).localname: Decimal(node.text)
            for node in root.find("fa:Fa", NS)
            if etree.QName(node).localname.startswith(("P_13_", "P_14_", "P_15"))
        }
        expected = self._expected_totals(move)
        self.assertEqual({key: value for key, value in found.items() if value or key in expected},
                         {key: value for key, value in expected.items() if value or key in found})
        # every net total has its VAT partner (XSD pairs) and the whole adds up
        self.assertEqual(sum(v for k, v in found.items() if k.startswith("P_13_")) + sum(
            v for k, v in found.items() if k.startswith("P_14_") and not k.endswith("W")), found["P_15"])
        return root

    def _invoice(self, lines, partner=None, move_type="out_invoice", **values):
        """lines: (product, quantity, price, discount, taxes)."""
        move = self.env["account.move"].create({
            "move_type": move_type,
            "partner_id": (partner or self.buyer_pl).id,
            "invoice_date": values.pop("invoice_date", warsaw_today()),
            "invoice_line_ids": [Command.create({
                "product_id": (product or self.product).id, "name": "Pozycja %d" % index, "quantity": quantity,
                "price_unit": price, "discount": discount, "tax_ids": [Command.set(taxes.ids)],
            }) for index, (product, quantity, price, discount, taxes) in enumerate(lines)],
            **values,
        })
        move.action_post()
        return move

    def _refund(self, move, changes=None):
        refund = move._reverse_moves([{"invoice_date": warsaw_today(), "ref": "Korekta"}])
        for index, values in (changes or {}).items():
            refund.invoice_line_ids.filtered(lambda line: line.display_type == "product")[index].write(values)
        refund.action_post()
        return refund

    # ---- rates of the Polish chart -------------------------------------------------------------

    def test_domestic_invoice_with_every_domestic_rate(self):
        root = self._assert_books(self._invoice([
            (None, 3, 199.99, 0, self.tax_23), (None, 1, 1500.0, 0, self.tax_23_services),
            (None, 7, 12.49, 0, self.tax_8), (None, 11, 3.33, 0, self.tax_5),
            (None, 1, 250.0, 0, self.tax_0), (None, 1, 80.0, 0, self.tax_travel),
            (None, 2, 345.67, 0, self.tax_zw), (None, 4, 1250.0, 0, self.tax_oo),
        ]))
        self.assertEqual(root.findtext("fa:Fa/fa:Adnotacje/fa:P_18", namespaces=NS), "1")  # the oo line

    def test_eu_invoice_goods_and_services(self):
        root = self._assert_books(self._invoice([
            (None, 10, 120.0, 0, self.tax_wdt), (None, 1, 99.0, 0, self.tax_wdt_i42),
            (None, 1, 2000.0, 0, self.tax_dostu),
        ], partner=self.buyer_eu))
        self.assertEqual(root.findtext("fa:Fa/fa:Adnotacje/fa:P_18", namespaces=NS), "1")

    def test_export_invoice_goods_and_services(self):
        self._assert_books(self._invoice([(None, 5, 640.0, 0, self.tax_export), (None, 1, 900.0, 0, self.tax_np)],
                                         partner=self.buyer_foreign))

    def test_exempt_gold(self):
        root = self._assert_books(self._invoice([(None, 1, 8400.0, 0, self.tax_gold)]))
        self.assertEqual(root.findtext("fa:Fa/fa:Adnotacje/fa:Zwolnienie/fa:P_19A", namespaces=NS), "art. 122 ustawy o VAT")

    # ---- currencies, instalments, discounts, rounding --------------------------------------------

    def test_foreign_currencies_at_awkward_rates(self):
        for code, rate in (("EUR", 1 / 4.3127), ("USD", 1 / 3.9871), ("GBP", 1 / 5.1234)):
            currency = self.setup_other_currency(code, rates=[("2000-01-01", rate)])
            move = self._invoice([(None, 3, 33.33, 0, self.tax_23), (None, 7, 14.29, 5, self.tax_8), (None, 1, 9.99, 0, self.tax_5)],
                                 partner=self.buyer_eu, currency_id=currency.id)
            root = self._assert_books(move)
            self.assertEqual(root.findtext("fa:Fa/fa:KodWaluty", namespaces=NS), code)
            # the VAT in PLN is the books' VAT in PLN
            self.assertEqual(sum(Decimal(n.text) for n in root.find("fa:Fa", NS) if etree.QName(n).localname.endswith("W")),
                             _d(-move.amount_tax_signed) * -1)

    def test_instalments_with_rounding(self):
        term = self.env["account.payment.term"].sudo().create({"name": "3 raty", "line_ids": [
            Command.create({"value": "percent", "value_amount": 33.33, "nb_days": 0}),
            Command.create({"value": "percent", "value_amount": 33.33, "nb_days": 30}),
            Command.create({"value": "percent", "value_amount": 33.34, "nb_days": 60}),
        ]})
        move = self._invoice([(None, 1, 1000.01, 0, self.tax_23)], invoice_payment_term_id=term.id)
        root = self._assert_books(move)
        self.assertEqual(len(root.findall("fa:Fa/fa:Platnosc/fa:TerminPlatnosci", NS)), 3)

    def test_discounts_and_fractional_quantities(self):
        root = self._assert_books(self._invoice([
            (None, 3, 33.33, 7.5, self.tax_23), (None, 0.125, 1999.99, 12.0, self.tax_8),
            (None, 17, 0.07, 33.0, self.tax_5), (None, 1, 100.0, 100.0, self.tax_23),
        ]))
        for line in root.findall("fa:Fa/fa:FaWiersz", NS):
            quantity, price, net = (Decimal(line.findtext("fa:%s" % name, namespaces=NS)) for name in ("P_8B", "P_9A", "P_11"))
            discount = Decimal(line.findtext("fa:P_10", default="0", namespaces=NS))
            self.assertLessEqual(abs(quantity * price - discount - net), CENT, etree.tostring(line))

    def test_both_rounding_methods(self):
        lines = [(None, 1, 0.37 + index * 0.13, 0, (self.tax_23, self.tax_8, self.tax_5)[index % 3]) for index in range(40)]
        for method in ("round_per_line", "round_globally"):
            self.company.sudo().tax_calculation_rounding_method = method
            self._assert_books(self._invoice(lines))

    def test_price_included_taxes(self):
        gross_23 = self.tax_23.sudo().copy({"name": "23% brutto", "price_include_override": "tax_included"})
        gross_8 = self.tax_8.sudo().copy({"name": "8% brutto", "price_include_override": "tax_included"})
        self._assert_books(self._invoice([(None, 3, 19.99, 0, gross_23), (None, 7, 4.49, 10, gross_8)]))

    # ---- credit notes ----------------------------------------------------------------------------

    def test_credit_notes_of_every_kind(self):
        original = self._invoice([(None, 10, 99.99, 5, self.tax_23), (None, 4, 25.0, 0, self.tax_8), (None, 1, 300.0, 0, self.tax_zw)])
        full = self._refund(original)
        returned = self._refund(original, {0: {"quantity": 3}, 1: {"quantity": 0}, 2: {"quantity": 0}})
        rebate = self._refund(original, {0: {"price_unit": 10.0, "discount": 0}, 1: {"price_unit": 2.5}, 2: {"price_unit": 0}})
        for refund in (full, returned, rebate):
            root = self._assert_books(refund)
            self.assertEqual(root.findtext("fa:Fa/fa:RodzajFaktury", namespaces=NS), "KOR")
            self.assertEqual(root.findtext("fa:Fa/fa:DaneFaKorygowanej/fa:NrFaKorygowanej", namespaces=NS), original.name)
            self.assertLess(Decimal(root.findtext("fa:Fa/fa:P_15", namespaces=NS)), 0)

    def test_foreign_currency_credit_note_after_a_rate_change(self):
        eur = self.setup_other_currency("EUR", rates=[("2000-01-01", 1 / 4.3127)])
        self.env["res.currency.rate"].sudo().create({"name": warsaw_today() - timedelta(days=1), "rate": 1 / 4.5011,
                                                     "currency_id": eur.id, "company_id": self.company.id})
        original = self._invoice([(None, 3, 333.33, 0, self.tax_23), (None, 1, 50.0, 0, self.tax_8)], partner=self.buyer_eu,
                                 currency_id=eur.id, invoice_date=warsaw_today() - timedelta(days=20))
        refund = self._refund(original, {0: {"quantity": 1}})
        root = self._assert_books(refund)
        self.assertEqual(Decimal(root.findtext("fa:Fa/fa:FaWiersz/fa:KursWaluty", namespaces=NS)), Decimal("4.3127"))

    # ---- advances ----------------------------------------------------------------------------------

    def test_advance_and_settlement_at_two_rates(self):
        advance = self.env["account.move"].create({
            "move_type": "out_invoice", "partner_id": self.buyer_pl.id, "invoice_date": warsaw_today(),
            "l10n_pl_ksef_invoice_kind": "ZAL",
            "invoice_line_ids": [
                Command.create({"name": "Zaliczka 23%", "price_unit": 333.33, "tax_ids": [Command.set(self.tax_23.ids)]}),
                Command.create({"name": "Zaliczka 8%", "price_unit": 111.11, "tax_ids": [Command.set(self.tax_8.ids)]}),
            ],
            "l10n_pl_ksef_order_line_ids": [
                Command.create({"name": "Meble biurowe", "quantity": 3, "price_unit": 333.33, "tax_id": self.tax_23.id}),
                Command.create({"name": "Książki", "quantity": 3, "price_unit": 111.11, "tax_id": self.tax_8.id}),
            ],
        })
        advance.action_post()
        root = self._assert_books(advance)
        self.assertEqual(root.findtext("fa:Fa/fa:Zamowienie/fa:WartoscZamowienia", namespaces=NS),
                         str(_d(advance.l10n_pl_ksef_order_total)))
        advance.sudo().write({"l10n_pl_ksef_number": "5265877635-20261101-0100001AF629-AF", "l10n_pl_ksef_state": "accepted"})
        settlement = self._invoice([
            (None, 3, 333.33, 0, self.tax_23), (None, 3, 111.11, 0, self.tax_8),
            (None, 1, -333.33, 0, self.tax_23), (None, 1, -111.11, 0, self.tax_8),
        ], l10n_pl_ksef_invoice_kind="ROZ", l10n_pl_ksef_advance_ids=[Command.set(advance.ids)])
        root = self._assert_books(settlement)
        self.assertEqual(len(root.findall("fa:Fa/fa:FaWiersz", NS)), 2)
        refund = self._refund(settlement, {0: {"quantity": 1}, 1: {"quantity": 0}, 2: {"quantity": 0}, 3: {"quantity": 0}})
        root = self._assert_books(refund)
        self.assertEqual(root.findtext("fa:Fa/fa:RodzajFaktury", namespaces=NS), "KOR_ROZ")
