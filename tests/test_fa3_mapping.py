from decimal import Decimal

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import NS, KsefTestCommon
from ..ksef.simulator.testing import warsaw_today


@tagged("post_install_l10n", "post_install", "-at_install")
class TestFa3Mapping(KsefTestCommon):
    """A matrix of invoice shapes: each must give an XSD-valid FA(3) file whose totals are
    Odoo's to the grosz (_l10n_pl_ksef_build_xml validates against the official schema)."""

    def _build(self, move):
        xml = move.with_user(self.user)._l10n_pl_ksef_build_xml()
        self.assertFalse(xml.startswith(b"\xef\xbb\xbf"), "no BOM")
        root = self._parse(xml)
        sign = Decimal(-1) if move.move_type == "out_refund" else Decimal(1)
        self.assertEqual(self._total(root, "P_15"), sign * Decimal(str(move.amount_total)).quantize(Decimal("0.01")))
        self.assertEqual(self._sum_totals(root, "P_13_"), sign * Decimal(str(move.amount_untaxed)).quantize(Decimal("0.01")))
        self.assertEqual(self._sum_totals(root, "P_14_"), sign * Decimal(str(move.amount_tax)).quantize(Decimal("0.01")))
        self.assertEqual(len(root.findall("fa:Fa/fa:FaWiersz", NS)), len(move.invoice_line_ids.filtered(lambda line: line.display_type == "product")))
        return root

    def _text(self, root, path):
        node = root.find(path, NS)
        return node.text if node is not None else None

    def _rates(self, root):
        return [n.text for n in root.findall("fa:Fa/fa:FaWiersz/fa:P_12", NS)]

    # ---- rates -----------------------------------------------------------------------------

    def test_rate_23_polish_business(self):
        move = self._ksef_invoice(lines=[(1000.0, self.tax_23, {})])
        root = self._build(move)
        self.assertEqual(self._text(root, "fa:Podmiot1/fa:DaneIdentyfikacyjne/fa:NIP"), "5265877635")
        self.assertEqual(self._text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:NIP"), "7251801126")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_1"), "1000.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_14_1"), "230.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:RodzajFaktury"), "VAT")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_2"), move.name)

    def test_rate_8(self):
        root = self._build(self._ksef_invoice(lines=[(50.0, self.tax_8, {"quantity": 3})]))
        self.assertEqual((self._text(root, "fa:Fa/fa:P_13_2"), self._text(root, "fa:Fa/fa:P_14_2")), ("150.00", "12.00"))
        self.assertEqual(self._rates(root), ["8"])

    def test_rate_5(self):
        root = self._build(self._ksef_invoice(lines=[(79.9, self.tax_5, {})]))
        self.assertEqual((self._text(root, "fa:Fa/fa:P_13_3"), self._text(root, "fa:Fa/fa:P_14_3")), ("79.90", "4.00"))

    def test_rate_0_domestic(self):
        root = self._build(self._ksef_invoice(lines=[(100.0, self.tax_0, {})]))
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_6_1"), "100.00")
        self.assertEqual(self._rates(root), ["0 KR"])

    def test_intra_eu_supply_to_eu_vat_number(self):
        root = self._build(self._ksef_invoice(partner=self.buyer_eu, lines=[(1000.0, self.tax_wdt, {})]))
        self.assertEqual(self._text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:KodUE"), "DE")
        self.assertEqual(self._text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:NrVatUE"), "811907980")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_6_2"), "1000.00")
        self.assertEqual(self._rates(root), ["0 WDT"])

    def test_export_to_non_eu_tax_id(self):
        root = self._build(self._ksef_invoice(partner=self.buyer_foreign, lines=[(2000.0, self.tax_export, {})]))
        self.assertEqual(self._text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:KodKraju"), "US")
        self.assertEqual(self._text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:NrID"), "987654321")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_6_3"), "2000.00")

    def test_exempt_with_legal_basis(self):
        root = self._build(self._ksef_invoice(lines=[(1200.0, self.tax_zw, {})]))
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_7"), "1200.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:Adnotacje/fa:Zwolnienie/fa:P_19"), "1")
        self.assertEqual(self._text(root, "fa:Fa/fa:Adnotacje/fa:Zwolnienie/fa:P_19A"), self.tax_zw.l10n_pl_ksef_exemption_basis)

    def test_outside_scope_np(self):
        root = self._build(self._ksef_invoice(partner=self.buyer_foreign, lines=[(500.0, self.tax_np, {})]))
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_8"), "500.00")
        self.assertEqual(self._rates(root), ["np I"])

    def test_reverse_charge_oo(self):
        root = self._build(self._ksef_invoice(lines=[(3000.0, self.tax_oo, {})]))
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_10"), "3000.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:Adnotacje/fa:P_18"), "1")
        self.assertEqual(self._rates(root), ["oo"])

    def test_several_rates_in_one_invoice(self):
        root = self._build(self._ksef_invoice(lines=[
            (100.0, self.tax_23, {}), (200.0, self.tax_8, {}), (300.0, self.tax_5, {}),
            (400.0, self.tax_zw, {}), (500.0, self.tax_0, {}), (10.0, self.tax_23, {}),
        ]))
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_1"), "110.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_14_1"), "25.30")
        self.assertEqual(self._rates(root), ["23", "8", "5", "zw", "0 KR", "23"])

    # ---- buyers ----------------------------------------------------------------------------

    def test_consumer_without_nip(self):
        root = self._build(self._ksef_invoice(partner=self.buyer_consumer))
        self.assertEqual(self._text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:BrakID"), "1")
        self.assertEqual(self._text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:Nazwa"), "Jan Kowalski")

    def test_foreign_business_without_tax_id(self):
        self.buyer_foreign.vat = False
        root = self._build(self._ksef_invoice(partner=self.buyer_foreign, lines=[(10.0, self.tax_np, {})]))
        self.assertEqual(self._text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:BrakID"), "1")

    def test_names_with_diacritics_and_markup_characters(self):
        self.buyer_pl.name = "Żółć & Gęślą <Jaźń> \"Spółka\" 'z o.o.'"
        root = self._build(self._ksef_invoice(lines=[(10.0, self.tax_23, {"name": "Łódź <&> \"cytat\" 'apostrof' ąęśćżźńół"})]))
        self.assertEqual(self._text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:Nazwa"), self.buyer_pl.name)
        self.assertEqual(self._text(root, "fa:Fa/fa:FaWiersz/fa:P_7"), "Łódź <&> \"cytat\" 'apostrof' ąęśćżźńół")

    # ---- lines and rounding ----------------------------------------------------------------

    def test_discount(self):
        root = self._build(self._ksef_invoice(lines=[(200.0, self.tax_23, {"quantity": 2, "discount": 10})]))
        self.assertEqual(self._text(root, "fa:Fa/fa:FaWiersz/fa:P_10"), "40.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:FaWiersz/fa:P_11"), "360.00")

    def test_full_discount_gives_zero_amount_line(self):
        root = self._build(self._ksef_invoice(lines=[(100.0, self.tax_23, {}), (50.0, self.tax_23, {"discount": 100})]))
        self.assertEqual([n.text for n in root.findall("fa:Fa/fa:FaWiersz/fa:P_11", NS)], ["100.00", "0.00"])

    def test_zero_price_line(self):
        root = self._build(self._ksef_invoice(lines=[(100.0, self.tax_23, {}), (0.0, self.tax_8, {"name": "Gratis"})]))
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_2"), "0.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_14_2"), "0.00")

    def test_rounding_many_small_lines(self):
        # 7 × 0.01 at 23 %: Odoo rounds VAT globally or per line; the file must follow Odoo.
        self._build(self._ksef_invoice(lines=[(0.01, self.tax_23, {}) for _i in range(7)]))

    def test_rounding_fractional_quantity_and_price(self):
        root = self._build(self._ksef_invoice(lines=[(33.33, self.tax_8, {"quantity": 1.5}), (0.333, self.tax_23, {"quantity": 3})]))
        self.assertEqual(root.find("fa:Fa/fa:FaWiersz/fa:P_8B", NS).text, "1.5")

    def test_price_included_tax(self):
        tax_incl = self.tax_23.sudo().copy({"name": "23% brutto", "price_include_override": "tax_included"})
        root = self._build(self._ksef_invoice(lines=[(123.0, tax_incl, {})]))
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_1"), "100.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_15"), "123.00")

    def test_units_of_measure(self):
        kg = self.env.ref("uom.product_uom_kgm")
        self.product.write({"uom_id": kg.id, "uom_po_id": kg.id})
        root = self._build(self._ksef_invoice(lines=[(12.5, self.tax_5, {"quantity": 4})]))
        self.assertEqual(self._text(root, "fa:Fa/fa:FaWiersz/fa:P_8A"), kg.name)
        self.assertEqual(self._text(root, "fa:Fa/fa:FaWiersz/fa:Indeks"), "SRV")

    def test_five_hundred_lines(self):
        lines = [(round(1 + i * 0.37, 2), (self.tax_23, self.tax_8, self.tax_5)[i % 3], {"quantity": 1 + i % 4}) for i in range(500)]
        root = self._build(self._ksef_invoice(lines=lines))
        self.assertEqual(root.findall("fa:Fa/fa:FaWiersz/fa:NrWierszaFa", NS)[-1].text, "500")

    # ---- currency, payment, dates ----------------------------------------------------------

    def test_foreign_currency_vat_in_pln(self):
        eur = self.setup_other_currency("EUR", rates=[("2000-01-01", 0.25)])  # 1 EUR = 4 PLN
        move = self._ksef_invoice(partner=self.buyer_eu, currency_id=eur.id, lines=[(100.0, self.tax_23, {}), (10.0, self.tax_8, {})])
        root = self._build(move)
        self.assertEqual(self._text(root, "fa:Fa/fa:KodWaluty"), "EUR")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_14_1"), "23.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_14_1W"), "92.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_14_2W"), "3.20")
        self.assertEqual(Decimal(self._text(root, "fa:Fa/fa:FaWiersz/fa:KursWaluty")), Decimal(4))
        self.assertEqual(sum(Decimal(n.text) for n in root.iterfind("fa:Fa/*", NS) if n.tag.endswith("W")),
                         Decimal(str(abs(move.amount_tax_signed))).quantize(Decimal("0.01")))

    def test_due_date_payment_terms_and_bank_account(self):
        bank = self.env["res.partner.bank"].create({"acc_number": "PL61 1090 1014 0000 0712 1981 2874", "partner_id": self.company.partner_id.id})
        term = self.env.ref("account.account_payment_term_30days")
        move = self._ksef_invoice(partner_bank_id=bank.id, invoice_payment_term_id=term.id)
        root = self._build(move)
        self.assertEqual(self._text(root, "fa:Fa/fa:Platnosc/fa:TerminPlatnosci/fa:Termin"), str(move.invoice_date_due))
        self.assertEqual(self._text(root, "fa:Fa/fa:Platnosc/fa:RachunekBankowy/fa:NrRB"), "PL61109010140000071219812874")
        self.assertIn(term.name, [n.text for n in root.findall("fa:Fa/fa:DodatkowyOpis/fa:Wartosc", NS)])

    def test_delivery_date_differs_from_issue_date(self):
        today = warsaw_today()
        move = self._ksef_invoice(delivery_date=fields.Date.subtract(today, days=3))
        root = self._build(move)
        self.assertEqual(self._text(root, "fa:Fa/fa:P_6"), str(move.delivery_date))
        self.assertEqual(self._text(root, "fa:Fa/fa:P_1"), str(today))

    # ---- credit notes ----------------------------------------------------------------------

    def _credit_note(self, original, reason="Zwrot towaru", **kwargs):
        reversal = original._reverse_moves([{"invoice_date": warsaw_today(), "ref": reason, **kwargs}])
        reversal.action_post()
        return reversal

    def test_credit_note_of_invoice_with_ksef_number(self):
        original = self._ksef_invoice(lines=[(100.0, self.tax_23, {})])
        original.sudo().write({"l10n_pl_ksef_number": "5265877635-20250826-0100001AF629-AF", "l10n_pl_ksef_state": "accepted"})
        root = self._build(self._credit_note(original))
        self.assertEqual(self._text(root, "fa:Fa/fa:RodzajFaktury"), "KOR")
        self.assertEqual(self._text(root, "fa:Fa/fa:PrzyczynaKorekty"), "Zwrot towaru")
        self.assertEqual(self._text(root, "fa:Fa/fa:DaneFaKorygowanej/fa:NrKSeF"), "1")
        self.assertEqual(self._text(root, "fa:Fa/fa:DaneFaKorygowanej/fa:NrKSeFFaKorygowanej"), original.l10n_pl_ksef_number)
        self.assertEqual(self._text(root, "fa:Fa/fa:DaneFaKorygowanej/fa:NrFaKorygowanej"), original.name)
        self.assertEqual(self._text(root, "fa:Fa/fa:P_15"), "-123.00")

    def test_credit_note_of_invoice_issued_outside_ksef(self):
        original = self._ksef_invoice(lines=[(100.0, self.tax_23, {}), (100.0, self.tax_8, {})])
        root = self._build(self._credit_note(original))
        self.assertEqual(self._text(root, "fa:Fa/fa:DaneFaKorygowanej/fa:NrKSeFN"), "1")
        self.assertIsNone(root.find("fa:Fa/fa:DaneFaKorygowanej/fa:NrKSeF", NS))

    def test_partial_credit_note(self):
        original = self._ksef_invoice(lines=[(1000.0, self.tax_23, {})])
        refund = original._reverse_moves([{"invoice_date": warsaw_today(), "ref": "Rabat posprzedażowy"}])
        refund.invoice_line_ids.price_unit = 100.0
        refund.action_post()
        root = self._build(refund)
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_1"), "-100.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_14_1"), "-23.00")

    # ---- what cannot be mapped: a clear error, nothing stored ------------------------------

    def _assert_refused(self, move, *fragments):
        with self.assertRaises(UserError) as caught:
            move.with_user(self.user).action_l10n_pl_ksef_freeze()
        message = str(caught.exception)
        for fragment in ((move.name,) if move.state == "posted" else ()) + fragments:
            self.assertIn(fragment, message)
        self.assertFalse(move.l10n_pl_ksef_xml_id)
        self.assertFalse(move.l10n_pl_ksef_xml_hash)
        self.assertFalse(self.env["ir.attachment"].search([("res_model", "=", "account.move"), ("res_id", "=", move.id), ("name", "like", "FA3")]))

    def test_error_company_without_nip(self):
        move = self._ksef_invoice()
        self.company.sudo().vat = False
        self._assert_refused(move, "NIP", self.company.name)

    def test_error_polish_business_without_nip(self):
        self.buyer_pl.vat = False
        self._assert_refused(self._ksef_invoice(), "NIP", self.buyer_pl.name)

    def test_error_invalid_buyer_nip(self):
        self.buyer_pl.with_context(no_vat_validation=True).vat = "PL1234567890"
        self._assert_refused(self._ksef_invoice(), "PL1234567890")

    def test_error_tax_without_ksef_rate(self):
        triangular = self.env["account.chart.template"].with_company(self.company).ref("vs_unia_triangular")
        self.assertFalse(triangular.l10n_pl_ksef_rate)
        self._assert_refused(self._ksef_invoice(partner=self.buyer_eu, lines=[(10.0, triangular, {})]), "KSeF VAT rate", triangular.name)

    def test_error_exempt_tax_without_basis(self):
        self.tax_zw.sudo().l10n_pl_ksef_exemption_basis = False
        self._assert_refused(self._ksef_invoice(lines=[(10.0, self.tax_zw, {})]), "exemption basis")

    def test_error_future_issue_date(self):
        move = self._ksef_invoice(invoice_date=fields.Date.add(warsaw_today(), days=5))
        self._assert_refused(move, "future")

    def test_error_credit_note_without_original(self):
        refund = self._ksef_invoice(move_type="out_refund")
        self._assert_refused(refund, "Reversal of")

    def test_error_draft_invoice(self):
        self._assert_refused(self._ksef_invoice(post=False), "posted")

    def test_polish_taxes_have_ksef_rates(self):
        self.assertEqual(
            [t.l10n_pl_ksef_rate for t in (self.tax_23, self.tax_8, self.tax_5, self.tax_0, self.tax_zw, self.tax_wdt, self.tax_export, self.tax_np, self.tax_oo)],
            ["23", "8", "5", "0 KR", "zw", "0 WDT", "0 EX", "np I", "oo"],
        )
