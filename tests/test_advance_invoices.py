import datetime
from decimal import Decimal

from lxml import etree

from odoo import Command, api
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..models.account_move_ksef_correction import business_differences
from .common import NS, KsefOfflineTestMixin, KsefSimulatorCommon
from ..ksef.simulator.testing import warsaw_today


@tagged("post_install_l10n", "post_install", "-at_install")
class TestAdvanceInvoices(KsefOfflineTestMixin, KsefSimulatorCommon):
    """Advance (ZAL) and settlement (ROZ) invoices and their corrections (KOR_ZAL, KOR_ROZ), as a
    Polish B2B sale goes: an order of 2 460.00 gross, an advance of 1 230.00, the final invoice
    deducting it. Sent to the simulator online and offline; the content checked to the grosz."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_upload_certificate(not_before=datetime.datetime(2025, 1, 1), valid_days=3650)
        cls.company.sudo().l10n_pl_ksef_latarnia_url = "http://127.0.0.1:9"
        cls.rack = cls.env["product.product"].create({"name": "Regał magazynowy", "default_code": "REG-1", "list_price": 500.0})
        cls.assembly = cls.env["product.product"].create({"name": "Montaż regałów", "type": "service", "list_price": 100.0})

    def _root(self, move):
        return etree.fromstring(move._l10n_pl_ksef_frozen_xml() if move.l10n_pl_ksef_xml_id
                                else move.with_user(self.user)._l10n_pl_ksef_build_xml())

    def _texts(self, root, path):
        return [node.text for node in root.findall(path, NS)]

    def _advance(self, amount=1000.0, post=True):
        move = self.env["account.move"].create({
            "move_type": "out_invoice",
            "partner_id": self.buyer_pl.id,
            "invoice_date": warsaw_today(),
            "l10n_pl_ksef_invoice_kind": "ZAL",
            "invoice_line_ids": [Command.create({
                "name": "Zaliczka 50% na zamówienie ZAM/2026/017", "quantity": 1, "price_unit": amount,
                "tax_ids": [Command.set(self.tax_23.ids)],
            })],
            "l10n_pl_ksef_order_line_ids": [
                Command.create({"product_id": self.rack.id, "name": "Regał magazynowy", "quantity": 3, "price_unit": 500.0,
                                "tax_id": self.tax_23.id, "uom_id": self.rack.uom_id.id}),
                Command.create({"product_id": self.assembly.id, "name": "Montaż regałów", "quantity": 5, "price_unit": 100.0,
                                "tax_id": self.tax_23.id}),
            ],
        })
        if post:
            move.action_post()
        return move

    def _settlement(self, advances, deduction=1000.0, post=True):
        move = self.env["account.move"].create({
            "move_type": "out_invoice",
            "partner_id": self.buyer_pl.id,
            "invoice_date": warsaw_today(),
            "l10n_pl_ksef_invoice_kind": "ROZ",
            "l10n_pl_ksef_advance_ids": [Command.set(advances.ids)],
            "invoice_line_ids": [
                Command.create({"product_id": self.rack.id, "name": "Regał magazynowy", "quantity": 3, "price_unit": 500.0,
                                "tax_ids": [Command.set(self.tax_23.ids)]}),
                Command.create({"product_id": self.assembly.id, "name": "Montaż regałów", "quantity": 5, "price_unit": 100.0,
                                "tax_ids": [Command.set(self.tax_23.ids)]}),
                Command.create({"name": "Rozliczenie zaliczki %s" % ", ".join(advances.mapped("name")), "quantity": 1,
                                "price_unit": -deduction, "tax_ids": [Command.set(self.tax_23.ids)]}),
            ],
        })
        if post:
            move.action_post()
        return move

    def _refund(self, move, price=None):
        refund = move._reverse_moves([{"invoice_date": warsaw_today(), "ref": "Zmiana zamówienia"}])
        if price is not None:
            refund.invoice_line_ids[:1].price_unit = price
        refund.action_post()
        return refund

    # ---- ZAL ---------------------------------------------------------------------------------

    def test_advance_invoice_online(self):
        advance = self._advance()
        advance.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(advance.l10n_pl_ksef_state, "accepted", advance.l10n_pl_ksef_error)
        root = self._root(advance)
        self.assertEqual(self._texts(root, "fa:Fa/fa:RodzajFaktury"), ["ZAL"])
        # the totals are the advance received, as booked
        self.assertEqual(self._texts(root, "fa:Fa/fa:P_13_1"), ["1000.00"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:P_14_1"), ["230.00"])
        self.assertEqual(Decimal(self._texts(root, "fa:Fa/fa:P_15")[0]), Decimal(str(advance.amount_total)).quantize(Decimal("0.01")))
        # the order: its value with VAT and its lines
        self.assertEqual(self._texts(root, "fa:Fa/fa:Zamowienie/fa:WartoscZamowienia"), ["2460.00"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:Zamowienie/fa:ZamowienieWiersz/fa:P_7Z"), ["Regał magazynowy", "Montaż regałów"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:Zamowienie/fa:ZamowienieWiersz/fa:P_11NettoZ"), ["1500.00", "500.00"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:Zamowienie/fa:ZamowienieWiersz/fa:P_11VatZ"), ["345.00", "115.00"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:FaWiersz"), [])

    def test_advance_received_before_the_invoice_date(self):
        advance = self._advance()
        received = warsaw_today() - datetime.timedelta(days=3)
        self.env["account.payment.register"].with_context(active_model="account.move", active_ids=advance.ids).create({
            "amount": advance.amount_total, "payment_date": received})._create_payments()
        root = self._root(advance)
        self.assertEqual(self._texts(root, "fa:Fa/fa:P_6"), [str(received)])
        self.assertEqual(self._texts(root, "fa:Fa/fa:Platnosc/fa:DataZaplaty"), [str(received)])

    def test_advance_without_order_is_refused(self):
        advance = self.env["account.move"].create({
            "move_type": "out_invoice", "partner_id": self.buyer_pl.id, "invoice_date": warsaw_today(),
            "l10n_pl_ksef_invoice_kind": "ZAL",
            "invoice_line_ids": [Command.create({"name": "Zaliczka", "price_unit": 100.0, "tax_ids": [Command.set(self.tax_23.ids)]})],
        })
        advance.action_post()
        with self.assertRaisesRegex(UserError, "Order lines: an advance invoice"):
            advance.with_user(self.user).action_l10n_pl_ksef_freeze()
        self.assertFalse(advance.l10n_pl_ksef_xml_id)

    def test_advance_over_the_order_value_is_refused(self):
        advance = self._advance(amount=2100.0)  # 2 583.00 gross > 2 460.00
        with self.assertRaisesRegex(UserError, "more than the order's value"):
            advance.with_user(self.user).action_l10n_pl_ksef_freeze()

    def test_kind_and_order_cannot_change_once_posted(self):
        advance = self._advance()
        with self.assertRaises(UserError):
            advance.with_user(self.user).write({"l10n_pl_ksef_invoice_kind": "VAT"})
        with self.assertRaises(UserError):
            advance.l10n_pl_ksef_order_line_ids[:1].with_user(self.user).write({"price_unit": 1.0})
        with self.assertRaises(UserError):
            advance.l10n_pl_ksef_order_line_ids[:1].with_user(self.user).unlink()

    # ---- ROZ ---------------------------------------------------------------------------------

    def test_settlement_online_names_the_advance_ksef_number(self):
        advance = self._advance()
        advance.action_l10n_pl_ksef_post()
        settlement = self._settlement(advance)
        settlement.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(settlement.l10n_pl_ksef_state, "accepted", settlement.l10n_pl_ksef_error)
        root = self._root(settlement)
        self.assertEqual(self._texts(root, "fa:Fa/fa:RodzajFaktury"), ["ROZ"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:FakturaZaliczkowa/fa:NrKSeFFaZaliczkowej"), [advance.l10n_pl_ksef_number])
        # FaWiersz: the whole order; the deduction is only in the totals (what remains to pay)
        self.assertEqual(self._texts(root, "fa:Fa/fa:FaWiersz/fa:P_7"), ["Regał magazynowy", "Montaż regałów"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:FaWiersz/fa:NrWierszaFa"), ["1", "2"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:P_13_1"), ["1000.00"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:P_14_1"), ["230.00"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:P_15"), ["1230.00"])
        self.assertAlmostEqual(settlement.amount_total, 1230.0)

    def test_settlement_must_deduct_what_the_advances_received(self):
        advance = self._advance()
        advance.sudo().write({"l10n_pl_ksef_number": "5265877635-20261101-0100001AF629-AF", "l10n_pl_ksef_state": "accepted"})
        settlement = self._settlement(advance, deduction=900.0)
        with self.assertRaisesRegex(UserError, "deducting advances total"):
            settlement.with_user(self.user).action_l10n_pl_ksef_freeze()

    def test_settlement_without_advances_is_refused(self):
        settlement = self._settlement(self.env["account.move"])
        with self.assertRaisesRegex(UserError, "must name the advance invoices"):
            settlement.with_user(self.user).action_l10n_pl_ksef_freeze()

    def test_settlement_waits_for_an_offline_advance(self):
        advance = self._advance()
        advance._l10n_pl_ksef_issue_offline("offline24")
        self.assertEqual(advance.l10n_pl_ksef_state, "offline")
        settlement = self._settlement(advance)
        action = settlement.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertIn("advance invoices have their KSeF numbers", action["params"]["title"])
        self.assertEqual(settlement.l10n_pl_ksef_state, "to_send")
        self.assertTrue(settlement.l10n_pl_ksef_waiting_original)
        self.assertFalse(settlement.l10n_pl_ksef_xml_id)
        self.assertFalse(settlement._l10n_pl_ksef_ready_to_send())
        self.assertIn(advance.name, settlement.message_ids[0].body)
        # issued offline itself, it is held as well: its QR code would print a file without the number
        settlement._l10n_pl_ksef_issue_offline("offline24")
        self.assertFalse(settlement.l10n_pl_ksef_xml_id)
        with self.assertRaisesRegex(UserError, "cannot be frozen yet"):
            settlement.action_l10n_pl_ksef_freeze()
        # the advance reaches KSeF: the settlement is released, frozen with its number, and sent
        advance._l10n_pl_ksef_write({"l10n_pl_ksef_state": "to_send"})
        advance.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(advance.l10n_pl_ksef_state, "accepted", advance.l10n_pl_ksef_error)
        self.assertFalse(settlement.l10n_pl_ksef_waiting_original)
        self.assertTrue(settlement.l10n_pl_ksef_xml_id)
        self.assertIn("Released", settlement.message_ids[0].body)
        settlement.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(settlement.l10n_pl_ksef_state, "accepted", settlement.l10n_pl_ksef_error)
        root = self._root(settlement)
        self.assertEqual(self._texts(root, "fa:Fa/fa:FakturaZaliczkowa/fa:NrKSeFFaZaliczkowej"), [advance.l10n_pl_ksef_number])

    def test_settlement_of_two_advances_one_outside_ksef(self):
        first = self._advance(amount=600.0)
        first.sudo().write({"l10n_pl_ksef_number": "5265877635-20261101-0100001AF629-AF", "l10n_pl_ksef_state": "accepted"})
        second = self._advance(amount=400.0)
        second.sudo().write({"l10n_pl_ksef_state": "outside"})  # issued during a total failure
        root = self._root(self._settlement(first | second))
        refs = root.findall("fa:Fa/fa:FakturaZaliczkowa", NS)
        self.assertEqual([[etree.QName(child).localname for child in ref] for ref in refs],
                         [["NrKSeFFaZaliczkowej"], ["NrKSeFZN", "NrFaZaliczkowej"]])
        self.assertEqual(refs[1].findtext("fa:NrFaZaliczkowej", namespaces=NS), second.name)

    # ---- corrections -------------------------------------------------------------------------

    def test_credit_note_of_an_advance_is_kor_zal(self):
        advance = self._advance()
        advance.action_l10n_pl_ksef_post()
        refund = self._refund(advance, price=200.0)
        refund.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(refund.l10n_pl_ksef_state, "accepted", refund.l10n_pl_ksef_error)
        root = self._root(refund)
        self.assertEqual(self._texts(root, "fa:Fa/fa:RodzajFaktury"), ["KOR_ZAL"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:DaneFaKorygowanej/fa:NrKSeFFaKorygowanej"), [advance.l10n_pl_ksef_number])
        self.assertEqual(self._texts(root, "fa:Fa/fa:P_13_1"), ["-200.00"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:P_15"), ["-246.00"])

    def test_credit_note_of_a_settlement_is_kor_roz(self):
        advance = self._advance()
        advance.action_l10n_pl_ksef_post()
        settlement = self._settlement(advance)
        settlement.action_l10n_pl_ksef_post()
        refund = self._refund(settlement)
        refund.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(refund.l10n_pl_ksef_state, "accepted", refund.l10n_pl_ksef_error)
        root = self._root(refund)
        self.assertEqual(self._texts(root, "fa:Fa/fa:RodzajFaktury"), ["KOR_ROZ"])
        self.assertEqual(self._texts(root, "fa:Fa/fa:DaneFaKorygowanej/fa:NrKSeFFaKorygowanej"), [settlement.l10n_pl_ksef_number])
        self.assertEqual(self._texts(root, "fa:Fa/fa:FakturaZaliczkowa/fa:NrKSeFFaZaliczkowej"), [advance.l10n_pl_ksef_number])
        self.assertEqual(self._texts(root, "fa:Fa/fa:P_15"), ["-1230.00"])

    def test_rpc_cannot_rewrite_a_posted_invoice_kind_or_order(self):
        """Over RPC, as the accountant (no administrator): a posted advance invoice keeps its kind,
        order and settled advances; a settlement cannot name another company's advance."""
        advance = self._advance()
        Move = self.env["account.move"].with_user(self.user)
        for values in ({"l10n_pl_ksef_invoice_kind": "VAT"},
                       {"l10n_pl_ksef_order_line_ids": [Command.create({"name": "x", "price_unit": 1.0})]},
                       {"l10n_pl_ksef_advance_ids": [Command.set(advance.ids)]}):
            with self.assertRaises(UserError):
                api.call_kw(Move, "write", [advance.ids, values], {})
        Line = self.env["l10n_pl_ksef.order.line"].with_user(self.user)
        with self.assertRaises(UserError):
            api.call_kw(Line, "create", [{"move_id": advance.id, "name": "dopisana", "price_unit": 1.0}], {})
        with self.assertRaises(UserError):
            api.call_kw(Line, "write", [advance.l10n_pl_ksef_order_line_ids.ids, {"quantity": 99}], {})
        self.assertEqual(advance.l10n_pl_ksef_order_total, 2460.0)
        other_company = self.env["res.company"].sudo().create({"name": "Inna Sp. z o.o."})
        self.env.user.sudo().company_ids |= other_company
        self.env["account.journal"].sudo().create({"name": "Sprzedaż", "type": "sale", "code": "INNA",
                                                   "company_id": other_company.id})
        foreign = self.env["account.move"].sudo().create({"move_type": "out_invoice", "company_id": other_company.id,
                                                           "partner_id": self.buyer_pl.id})
        settlement = self._settlement(advance, post=False)
        with self.assertRaises(UserError):
            api.call_kw(Move, "write", [settlement.ids, {"l10n_pl_ksef_advance_ids": [Command.set(foreign.ids)]}], {})

    def test_technical_correction_may_not_change_the_advances_named(self):
        advance = self._advance()
        advance.sudo().write({"l10n_pl_ksef_number": "5265877635-20261101-0100001AF629-AF", "l10n_pl_ksef_state": "accepted"})
        settlement = self._settlement(advance)
        xml = settlement.with_user(self.user)._l10n_pl_ksef_build_xml()
        other = xml.replace(advance.l10n_pl_ksef_number.encode(), b"5265877635-20261101-0100002BF629-11")
        self.assertNotEqual(xml, other)
        differences = business_differences(xml, other)
        self.assertEqual([path for path, _old, _new in differences],
                         ["Fa/FakturaZaliczkowa[1]/FakturaZaliczkowa/NrKSeFFaZaliczkowej"])
        order_xml = self._advance().with_user(self.user)._l10n_pl_ksef_build_xml()
        changed = order_xml.replace(b"<WartoscZamowienia>2460.00<", b"<WartoscZamowienia>2461.00<")
        self.assertEqual([path for path, _old, _new in business_differences(order_xml, changed)],
                         ["Fa/Zamowienie[1]/Zamowienie/WartoscZamowienia"])
