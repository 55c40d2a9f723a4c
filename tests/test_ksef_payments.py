import uuid

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from ..ksef import payments as ksef_payments
from ..ksef.simulator.testing import SimClient, sample_invoice
from .common import KsefSimulatorCommon

SUPPLIER_NIP = "3861610227"


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefPayments(KsefSimulatorCommon):
    """Art. 108g: a customer invoice's KSeF number as its payment reference and the bank line that
    names it reconciles it; vendor bills received through KSeF are paid with their KSeF number, or
    three of them with one collective identifier asked of KSeF."""

    supplier_token = "sim-token-3861610227-supplier"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.sudo().l10n_pl_ksef_payment_reference = True
        cls.supplier = cls.env["res.partner"].create({
            "name": "Dostawca Papieru Sp. z o.o.", "is_company": True, "vat": "PL%s" % SUPPLIER_NIP,
            "street": "ul. Polna 3", "zip": "30-001", "city": "Kraków", "country_id": cls.pl.id,
        })
        cls.bank_journal = cls.company_data["default_journal_bank"]
        # The accountant also registers payments and bank lines.
        cls.user.sudo().groups_id = [Command.link(cls.env.ref("account.group_account_invoice").id)]

    def _statement_line(self, amount, label):
        return self.env["account.bank.statement.line"].with_user(self.user).create({
            "journal_id": self.bank_journal.id, "amount": amount, "payment_ref": label, "date": "2026-11-30",
        })

    def _received_bills(self, count):
        """``count`` invoices of the supplier to the company, sent by the supplier to KSeF, and
        their vendor bills in Odoo with the KSeF number a receiving bridge records."""
        self.ksef_control("tokens", {"nip": SUPPLIER_NIP, "token": self.supplier_token})
        seller = SimClient(self.ksef_url)
        seller.login(SUPPLIER_NIP, self.supplier_token)
        session = seller.open_online().json()["referenceNumber"]
        bills = self.env["account.move"]
        for index in range(count):
            xml = sample_invoice("FS/%s/%s" % (index, uuid.uuid4().hex[:6]), seller_nip=SUPPLIER_NIP)
            head, _sep, tail = xml.rpartition(b"<NIP>%s</NIP>" % SUPPLIER_NIP.encode())
            xml = head + b"<NIP>%s</NIP>" % self.ksef_nip.encode() + tail   # the buyer: our company
            sent = seller.send(session, xml).json()
            status = seller.wait_invoice(session, sent["referenceNumber"])
            self.assertEqual(status["status"]["code"], 200, status)
            bill = self._ksef_invoice(partner=self.supplier, move_type="in_invoice", ref="FS/%s" % index,
                                      lines=[(100.0 * (index + 1), self.tax_23, {})])
            bill._l10n_pl_ksef_set_received_ksef_number(status["ksefNumber"])
            bills |= bill
        return bills.with_user(self.user)

    def test_customer_invoice_paid_by_its_ksef_number(self):
        move = self._ksef_invoice().with_user(self.user)
        move.action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertEqual(move.payment_reference, move.l10n_pl_ksef_number, "asked to quote the KSeF number")
        # A line with the amount wrong is left alone, and the accountant is told why.
        wrong = self._statement_line(100.0, "Przelew za fakturę %s" % move.l10n_pl_ksef_number)
        self.assertFalse(wrong.is_reconciled)
        with self.assertRaisesRegex(UserError, "names no open invoice"):
            wrong.action_l10n_pl_ksef_match()
        line = self._statement_line(move.amount_total, "HURTOWNIA LODZKA PRZELEW NRKSEF %s"
                                    % move.l10n_pl_ksef_number.lower())
        self.assertTrue(line.is_reconciled, "matched by KSeF number by the reconciliation rule")
        self.assertIn(move.payment_state, ("paid", "in_payment"))
        rule = self.env["account.reconcile.model"].search([("l10n_pl_ksef_match_ksef_number", "=", True),
                                                           ("company_id", "=", self.company.id)])
        self.assertEqual((len(rule), rule.rule_type), (1, "invoice_matching"))
        # With the rule switched off nothing is matched.
        other = self._ksef_invoice().with_user(self.user)
        other.action_l10n_pl_ksef_post()
        rule.active = False
        line = self._statement_line(other.amount_total, other.l10n_pl_ksef_number)
        self.assertFalse(line.is_reconciled)

    def test_three_bills_paid_under_one_collective_identifier(self):
        bills = self._received_bills(3)
        single = bills[0]
        self.assertEqual(single.payment_reference, single.l10n_pl_ksef_number)
        wizard = self.env["account.payment.register"].with_user(self.user).with_context(
            active_model="account.move", active_ids=single.ids).create({})
        self.assertEqual(wizard.communication, single.l10n_pl_ksef_number, "one bill: its KSeF number is the memo")

        action = bills.action_l10n_pl_ksef_collective_identifier()
        identifier = self.env["l10n_pl_ksef.collective.identifier"].with_user(self.user).browse(action["res_id"])
        self.assertTrue(ksef_payments.is_valid_collective_identifier(identifier.name))
        self.assertTrue(identifier.name.startswith(SUPPLIER_NIP + "-IZ"))
        self.assertEqual(identifier.move_ids, bills)
        # KSeF knows it, with the three bills (real HTTP).
        client = self.company._l10n_pl_ksef_client()
        listed = ksef_payments.collective_identifier_invoices(client, identifier.name)
        self.assertEqual(sorted(i["ksefNumber"] for i in listed), sorted(bills.mapped("l10n_pl_ksef_number")))

        payment_action = identifier.action_l10n_pl_ksef_register_payment()
        wizard = self.env["account.payment.register"].with_user(self.user).with_context(
            **payment_action["context"]).create({})
        self.assertEqual(wizard.communication, identifier.name)
        payments = wizard._create_payments()
        self.assertEqual(len(payments), 1)
        self.assertEqual(payments.memo, identifier.name, "one payment, the IZ as its memo")
        self.assertTrue(all(b.payment_state in ("paid", "in_payment") for b in bills))

    def test_collective_identifier_refusals(self):
        bills = self._received_bills(2)
        Identifier = self.env["l10n_pl_ksef.collective.identifier"]
        # Over 500 bills: refused before KSeF is asked.
        many = self.env["account.move"].create([{"move_type": "in_invoice", "partner_id": self.supplier.id}
                                                for _ in range(501)]).with_user(self.user)
        with self.assertRaisesRegex(UserError, "501 bills selected.*at most 500"):
            many.action_l10n_pl_ksef_collective_identifier()
        plain = self._ksef_invoice(partner=self.supplier, move_type="in_invoice", ref="FS/PAPER").with_user(self.user)
        with self.assertRaisesRegex(UserError, "FS/PAPER|has no KSeF number"):
            (bills | plain).action_l10n_pl_ksef_collective_identifier()
        other_seller = self._ksef_invoice(partner=self.buyer_pl, move_type="in_invoice")
        with self.assertRaisesRegex(UserError, "not by the supplier"):
            other_seller._l10n_pl_ksef_set_received_ksef_number(bills[0].l10n_pl_ksef_number)
        with self.assertRaisesRegex(UserError, "is not a KSeF number"):
            other_seller._l10n_pl_ksef_set_received_ksef_number("FV/1/2026")
        # Forge-proof, as the accountant over RPC.
        with self.assertRaises(AccessError):
            Identifier.with_user(self.user).create({"name": "x", "company_id": self.company.id})
        identifier = Identifier.browse(bills.action_l10n_pl_ksef_collective_identifier()["res_id"])
        with self.assertRaises(AccessError):
            identifier.with_user(self.user).write({"name": "forged"})
        with self.assertRaises(AccessError):
            plain.write({"l10n_pl_ksef_collective_id": identifier.id})
        with self.assertRaisesRegex(UserError, "already paid under collective identifier"):
            bills.action_l10n_pl_ksef_collective_identifier()
