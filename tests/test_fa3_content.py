from datetime import timedelta
from decimal import Decimal

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import NS, KsefTestCommon
from ..ksef.simulator.testing import warsaw_today


@tagged("post_install_l10n", "post_install", "-at_install")
class TestFa3Content(KsefTestCommon):
    """What an FA(3) file *says* (VAT act art. 106e and the XSD annotations), from Odoo's own data:
    reverse charge of art. 28b services, split payment, cash accounting, instalments, payments before
    issue, GTU, the correction's effect, credit notes' signs, rates and references."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.service = cls.env["product.product"].create({"name": "Konsulting IT", "type": "service", "default_code": "KONS"})
        cls.annex15_category = cls.env["product.category"].create({"name": "Stal (zał. 15)", "l10n_pl_ksef_annex15": True})
        cls.steel = cls.env["product.product"].create({
            "name": "Pręty stalowe", "categ_id": cls.annex15_category.id, "default_code": "STAL-12"})
        cls.tax_dostu = cls.env["account.chart.template"].with_company(cls.company).ref("vs_dostu")

    def _build(self, move):
        return self._parse(move.with_user(self.user)._l10n_pl_ksef_build_xml())

    def _text(self, root, path):
        node = root.find(path, NS)
        return node.text if node is not None else None

    def _texts(self, root, path):
        return [node.text for node in root.findall(path, NS)]

    def _invoice(self, product, price, taxes, partner=None, quantity=1.0, post=True, **values):
        move = self.env["account.move"].create({
            "move_type": values.pop("move_type", "out_invoice"),
            "partner_id": (partner or self.buyer_pl).id,
            "invoice_date": values.pop("invoice_date", warsaw_today()),
            "invoice_line_ids": [Command.create({
                "product_id": product.id, "quantity": quantity, "price_unit": price,
                "tax_ids": [Command.set(taxes.ids)], **values.pop("line", {}),
            })],
            **values,
        })
        if post:
            move.action_post()
        return move

    def _pay(self, move, amount, date):
        self.env["account.payment.register"].with_context(active_model="account.move", active_ids=move.ids).create({
            "amount": amount, "payment_date": date,
        })._create_payments()

    # ---- P_18: the buyer settles the VAT (art. 106e ust. 1 pkt 18) ---------------------------

    def test_services_to_eu_business_are_reverse_charge(self):
        root = self._build(self._invoice(self.service, 5000.0, self.tax_dostu, partner=self.buyer_eu))
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_9"), "5000.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:Adnotacje/fa:P_18"), "1")

    def test_services_outside_the_eu_to_a_business_are_reverse_charge(self):
        root = self._build(self._invoice(self.service, 800.0, self.tax_np, partner=self.buyer_foreign))
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_8"), "800.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:Adnotacje/fa:P_18"), "1")

    def test_goods_outside_the_country_are_not_reverse_charge(self):
        root = self._build(self._invoice(self.product, 800.0, self.tax_np, partner=self.buyer_foreign))
        self.assertEqual(self._text(root, "fa:Fa/fa:Adnotacje/fa:P_18"), "2")

    def test_art_28b_services_to_a_consumer_are_refused(self):
        move = self._invoice(self.service, 100.0, self.tax_dostu, partner=self.buyer_consumer)
        with self.assertRaises(UserError) as caught:
            move.with_user(self.user).action_l10n_pl_ksef_freeze()
        self.assertIn(move.name, str(caught.exception))
        self.assertIn("art. 28b", str(caught.exception))
        self.assertIn(self.buyer_consumer.name, str(caught.exception))
        self.assertFalse(move.l10n_pl_ksef_xml_id)

    # ---- P_18A and P_12_Zal_15: split payment ------------------------------------------------

    def test_split_payment_over_15000_pln_to_a_business(self):
        move = self._invoice(self.steel, 12300.0, self.tax_23, quantity=1.0)  # 15 129.00 gross
        root = self._build(move)
        self.assertEqual(self._text(root, "fa:Fa/fa:P_15"), "15129.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:Adnotacje/fa:P_18A"), "1")
        self.assertEqual(self._texts(root, "fa:Fa/fa:FaWiersz/fa:P_12_Zal_15"), ["1"])

    def test_split_payment_threshold_is_exceeded_not_reached(self):
        # XSD annotation of P_18A: "przekracza kwotę 15 000 zł": 15 000.00 exactly is not over it.
        root = self._build(self._invoice(self.steel, 12195.12, self.tax_23))
        self.assertEqual(self._text(root, "fa:Fa/fa:P_15"), "15000.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:Adnotacje/fa:P_18A"), "2")
        self.assertEqual(self._texts(root, "fa:Fa/fa:FaWiersz/fa:P_12_Zal_15"), ["1"])

    def test_no_split_payment_for_a_consumer_or_other_goods(self):
        root = self._build(self._invoice(self.steel, 20000.0, self.tax_23, partner=self.buyer_consumer))
        self.assertEqual(self._text(root, "fa:Fa/fa:Adnotacje/fa:P_18A"), "2")
        root = self._build(self._invoice(self.product, 20000.0, self.tax_23))
        self.assertEqual(self._text(root, "fa:Fa/fa:Adnotacje/fa:P_18A"), "2")
        self.assertEqual(self._texts(root, "fa:Fa/fa:FaWiersz/fa:P_12_Zal_15"), [])

    def test_split_payment_in_foreign_currency_uses_the_pln_value(self):
        eur = self.setup_other_currency("EUR", rates=[("2000-01-01", 0.25)])  # 1 EUR = 4 PLN
        # 3 100.00 EUR + 23 % = 3 813.00 EUR = 15 252.00 PLN: over the threshold only in PLN terms
        root = self._build(self._invoice(self.steel, 3100.0, self.tax_23, currency_id=eur.id))
        self.assertEqual(self._text(root, "fa:Fa/fa:P_15"), "3813.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:Adnotacje/fa:P_18A"), "1")

    def test_annex15_flag_on_the_product_itself(self):
        product = self.env["product.product"].create({"name": "Telefon komórkowy", "l10n_pl_ksef_annex15": True})
        root = self._build(self._invoice(product, 100.0, self.tax_23))
        self.assertEqual(self._texts(root, "fa:Fa/fa:FaWiersz/fa:P_12_Zal_15"), ["1"])

    # ---- P_16: cash accounting ---------------------------------------------------------------

    def test_cash_basis_tax_is_metoda_kasowa(self):
        self.company.sudo().tax_exigibility = True
        transition = self.company_data["default_account_tax_sale"].sudo().copy({"code": "221099"})
        cash_tax = self.tax_23.sudo().copy({"name": "23% kasowy", "tax_exigibility": "on_payment",
                                            "cash_basis_transition_account_id": transition.id})
        root = self._build(self._invoice(self.product, 100.0, cash_tax))
        self.assertEqual(self._text(root, "fa:Fa/fa:Adnotacje/fa:P_16"), "1")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_14_1"), "23.00")
        root = self._build(self._invoice(self.product, 100.0, self.tax_23))
        self.assertEqual(self._text(root, "fa:Fa/fa:Adnotacje/fa:P_16"), "2")

    # ---- payment: instalments, paid before issue ---------------------------------------------

    def test_one_due_date_per_instalment(self):
        term = self.env["account.payment.term"].sudo().create({"name": "30% teraz, 70% w 30 dni", "line_ids": [
            Command.create({"value": "percent", "value_amount": 30.0, "nb_days": 0}),
            Command.create({"value": "percent", "value_amount": 70.0, "nb_days": 30}),
        ]})
        move = self._invoice(self.product, 1000.0, self.tax_23, invoice_payment_term_id=term.id)
        root = self._build(move)
        expected = sorted(str(line.date_maturity) for line in move.line_ids if line.display_type == "payment_term")
        self.assertEqual(len(expected), 2)
        self.assertEqual(self._texts(root, "fa:Fa/fa:Platnosc/fa:TerminPlatnosci/fa:Termin"), expected)

    def test_paid_before_issue(self):
        move = self._invoice(self.product, 100.0, self.tax_23)
        day = warsaw_today()
        self._pay(move, move.amount_total, day)
        root = self._build(move)
        self.assertEqual(self._text(root, "fa:Fa/fa:Platnosc/fa:Zaplacono"), "1")
        self.assertEqual(self._text(root, "fa:Fa/fa:Platnosc/fa:DataZaplaty"), str(day))
        self.assertEqual(self._texts(root, "fa:Fa/fa:Platnosc/fa:TerminPlatnosci/fa:Termin"), [])

    def test_partly_paid_before_issue(self):
        move = self._invoice(self.product, 1000.0, self.tax_23)
        day = warsaw_today()
        self._pay(move, 230.0, day)
        root = self._build(move)
        self.assertEqual(self._text(root, "fa:Fa/fa:Platnosc/fa:ZnacznikZaplatyCzesciowej"), "1")
        self.assertEqual(self._texts(root, "fa:Fa/fa:Platnosc/fa:ZaplataCzesciowa/fa:KwotaZaplatyCzesciowej"), ["230.00"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:Platnosc/fa:ZaplataCzesciowa/fa:DataZaplatyCzesciowej"), [str(day)])
        self.assertIsNone(root.find("fa:Fa/fa:Platnosc/fa:Zaplacono", NS))

    # ---- lines -------------------------------------------------------------------------------

    def test_gtu_from_the_product(self):
        self.service.product_tmpl_id.l10n_pl_vat_gtu = "GTU_12"
        root = self._build(self._invoice(self.service, 100.0, self.tax_23))
        self.assertEqual(self._texts(root, "fa:Fa/fa:FaWiersz/fa:GTU"), ["GTU_12"])

    def test_label_over_512_characters_is_refused_naming_the_line(self):
        move = self._invoice(self.product, 100.0, self.tax_23, line={"name": "Dostawa " + "x" * 600})
        with self.assertRaises(UserError) as caught:
            move.with_user(self.user).action_l10n_pl_ksef_freeze()
        message = str(caught.exception)
        self.assertIn(move.name, message)
        self.assertIn("Dostawa xxx", message)
        self.assertIn("608", message)
        self.assertIn("512", message)
        self.assertNotIn("TZnakowy512", message)  # our sentence, not the schema validator's
        self.assertFalse(move.l10n_pl_ksef_xml_id)

    # ---- credit notes ------------------------------------------------------------------------

    def _reverse(self, move, date=None, **values):
        reversal = move._reverse_moves([{"invoice_date": date or warsaw_today(), "ref": "Korekta", **values}])
        return reversal

    def test_credit_note_of_a_discounted_line_adds_up(self):
        original = self._invoice(self.product, 200.0, self.tax_23, quantity=2.0, line={"discount": 10.0})
        refund = self._reverse(original)
        refund.action_post()
        root = self._build(refund)
        line = root.find("fa:Fa/fa:FaWiersz", NS)
        quantity, price, discount, net = (Decimal(line.find("fa:%s" % name, NS).text) for name in ("P_8B", "P_9A", "P_10", "P_11"))
        self.assertEqual((quantity, net), (Decimal(-2), Decimal("-360.00")))
        self.assertEqual(discount, Decimal("-40.00"))
        self.assertEqual(quantity * price - discount, net)

    def test_credit_note_in_foreign_currency_uses_the_original_rate(self):
        eur = self.setup_other_currency("EUR", rates=[("2000-01-01", 0.25)])  # 4 PLN
        today = warsaw_today()
        self.env["res.currency.rate"].sudo().create({"name": today - timedelta(days=2), "rate": 0.2,  # 5 PLN
                                                     "currency_id": eur.id, "company_id": self.company.id})
        original = self._invoice(self.product, 100.0, self.tax_23, currency_id=eur.id, invoice_date=today - timedelta(days=10),
                                 partner=self.buyer_eu)
        self.assertAlmostEqual(original.invoice_currency_rate, 0.25)
        refund = self._reverse(original)
        refund.action_post()
        self.assertAlmostEqual(refund.invoice_currency_rate, 0.25)
        self.assertAlmostEqual(refund.amount_tax_signed, -92.0)  # the books: 23 EUR at 4 PLN
        root = self._build(refund)
        self.assertEqual(self._text(root, "fa:Fa/fa:P_14_1"), "-23.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_14_1W"), "-92.00")
        self.assertEqual(Decimal(self._text(root, "fa:Fa/fa:FaWiersz/fa:KursWaluty")), Decimal(4))
        # an invoice of today, not a correction, takes today's rate
        self.assertAlmostEqual(self._invoice(self.product, 100.0, self.tax_23, currency_id=eur.id).invoice_currency_rate, 0.2)

    def test_reversing_a_credit_note_is_a_correction_of_the_credit_note(self):
        original = self._invoice(self.product, 100.0, self.tax_23)
        original.sudo().write({"l10n_pl_ksef_number": "5265877635-20261101-0100001AF629-AF", "l10n_pl_ksef_state": "accepted"})
        refund = self._reverse(original)
        refund.action_post()
        refund.sudo().write({"l10n_pl_ksef_number": "5265877635-20261102-0100002BF629-BF", "l10n_pl_ksef_state": "accepted"})
        again = self._reverse(refund)
        again.action_post()
        self.assertEqual(again.move_type, "out_invoice")
        root = self._build(again)
        self.assertEqual(self._text(root, "fa:Fa/fa:RodzajFaktury"), "KOR")
        self.assertEqual(self._text(root, "fa:Fa/fa:DaneFaKorygowanej/fa:NrFaKorygowanej"), refund.name)
        self.assertEqual(self._text(root, "fa:Fa/fa:DaneFaKorygowanej/fa:NrKSeFFaKorygowanej"), refund.l10n_pl_ksef_number)
        self.assertEqual(self._text(root, "fa:Fa/fa:P_15"), "123.00")
        self.assertEqual(self._text(root, "fa:Fa/fa:P_13_1"), "100.00")

    def test_reversal_of_an_offline_credit_note_is_held(self):
        original = self._invoice(self.product, 100.0, self.tax_23)
        original.sudo().write({"l10n_pl_ksef_number": "5265877635-20261101-0100001AF629-AF", "l10n_pl_ksef_state": "accepted"})
        refund = self._reverse(original)
        refund.action_post()
        refund.sudo().write({"l10n_pl_ksef_state": "offline"})
        again = self._reverse(refund)
        again.action_post()
        self.assertFalse(again.with_user(self.user)._l10n_pl_ksef_ready_to_send())
        with self.assertRaises(UserError):
            again.with_user(self.user)._l10n_pl_ksef_build_xml()

    def test_correction_type_follows_the_books_and_can_be_chosen(self):
        original = self._invoice(self.product, 100.0, self.tax_23)
        refund = self._reverse(original)
        refund.action_post()
        self.assertEqual(self._text(self._build(refund), "fa:Fa/fa:TypKorekty"), "2")
        refund.l10n_pl_ksef_correction_type = "1"
        self.assertEqual(self._text(self._build(refund), "fa:Fa/fa:TypKorekty"), "1")

    # ---- Podmiot3 ----------------------------------------------------------------------------

    def test_delivery_to_a_unit_of_the_buyer_is_recipient_role_2(self):
        branch = self.env["res.partner"].create({
            "name": "Oddział Kraków", "type": "delivery", "parent_id": self.buyer_pl.id,
            "street": "ul. Floriańska 3", "zip": "31-019", "city": "Kraków", "country_id": self.pl.id})
        root = self._build(self._invoice(self.product, 100.0, self.tax_23, partner_shipping_id=branch.id))
        [party] = root.findall("fa:Podmiot3", NS)
        self.assertEqual(party.findtext("fa:Rola", namespaces=NS), "2")
        self.assertEqual(party.findtext("fa:DaneIdentyfikacyjne/fa:Nazwa", namespaces=NS), "Oddział Kraków")
        self.assertEqual(party.findtext("fa:DaneIdentyfikacyjne/fa:BrakID", namespaces=NS), "1")  # the NIP is the buyer's
        self.assertEqual(party.findtext("fa:Adres/fa:AdresL2", namespaces=NS), "31-019 Kraków")
        self.assertEqual(self._text(root, "fa:Podmiot2/fa:DaneIdentyfikacyjne/fa:NIP"), "7251801126")

    def test_delivery_to_another_company_is_another_party(self):
        other = self.env["res.partner"].create({
            "name": "Magazyny Centralne Sp. z o.o.", "is_company": True, "vat": "PL5213017228",
            "street": "ul. Składowa 7", "zip": "61-897", "city": "Poznań", "country_id": self.pl.id})
        root = self._build(self._invoice(self.product, 100.0, self.tax_23, partner_shipping_id=other.id))
        [party] = root.findall("fa:Podmiot3", NS)
        self.assertEqual(party.findtext("fa:DaneIdentyfikacyjne/fa:NIP", namespaces=NS), "5213017228")
        self.assertEqual(party.findtext("fa:RolaInna", namespaces=NS), "1")
        self.assertEqual(party.findtext("fa:OpisRoli", namespaces=NS), "Odbiorca towarów lub usług")

    def test_payer_other_than_the_buyer(self):
        payer = self.env["res.partner"].create({"name": "Fundacja Rozwoju", "is_company": True, "vat": "PL5213017228",
                                                "country_id": self.pl.id})
        move = self._invoice(self.product, 100.0, self.tax_23, l10n_pl_ksef_payer_id=payer.id)
        root = self._build(move)
        [party] = root.findall("fa:Podmiot3", NS)
        self.assertEqual(party.findtext("fa:Rola", namespaces=NS), "6")
        self.assertEqual(party.findtext("fa:DaneIdentyfikacyjne/fa:NIP", namespaces=NS), "5213017228")
        with self.assertRaises(UserError):
            move.with_user(self.user).write({"l10n_pl_ksef_payer_id": False})

    def test_no_third_party_for_the_buyer_itself(self):
        root = self._build(self._invoice(self.product, 100.0, self.tax_23))
        self.assertEqual(root.findall("fa:Podmiot3", NS), [])
