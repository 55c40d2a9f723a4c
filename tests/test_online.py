import time

from lxml import etree

from odoo.tests import tagged

from ..ksef import crypto, ksef_number, upo
from ..ksef.simulator.testing import sample_invoice
from .common import KsefSimulatorCommon, shared_dir


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefOnline(KsefSimulatorCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.upo_schema = etree.XMLSchema(etree.parse(str(shared_dir() / "ksef" / "upo" / "upo-v4-3.xsd")))

    def _counters(self):
        return self.ksef_control("counters", method="GET")

    def test_post_end_to_end_as_accountant(self):
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertTrue(ksef_number.is_valid_ksef_number(move.l10n_pl_ksef_number), move.l10n_pl_ksef_number)
        self.assertTrue(move.l10n_pl_ksef_number.startswith(self.ksef_nip + "-"))
        self.assertTrue(move.l10n_pl_ksef_acquisition_date)
        # The UPO is stored, schema-valid, and acknowledges exactly our frozen file.
        upo_xml = move.l10n_pl_ksef_upo_id.raw
        self.upo_schema.assertValid(etree.fromstring(upo_xml))
        [entry] = upo.parse_upo(upo_xml)["documents"]
        self.assertEqual(entry.ksef_number, move.l10n_pl_ksef_number)
        self.assertEqual(entry.document_hash, crypto.sha256_b64(move._l10n_pl_ksef_frozen_xml()))
        self.assertEqual(entry.invoice_number, move.name)
        [document] = move.l10n_pl_ksef_document_ids
        self.assertRecordValues(document, [{
            "state": "accepted", "ksef_number": move.l10n_pl_ksef_number, "status_code": 200,
            "invoice_hash": move.l10n_pl_ksef_xml_hash, "offline_mode": False, "upo_id": move.l10n_pl_ksef_upo_id.id,
        }])
        self.assertTrue(document.invoice_reference and document.session_reference and document.sent_at)
        bodies = " ".join(move.message_ids.mapped("body"))
        self.assertIn(move.l10n_pl_ksef_number, bodies)
        self.assertIn(document.invoice_reference, bodies)
        self.assertFalse(move.l10n_pl_ksef_show_post)

    def test_accepted_invoice_is_not_posted_again(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_post()
        before = self._counters()["invoicesTotal"]
        with self.assertRaisesRegex(Exception, "cannot be posted to KSeF"):
            move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(self._counters()["invoicesTotal"], before)

    def test_session_is_reused(self):
        sessions_before = self._counters()["sessions"].get("Online", 0)
        first, second = self._ksef_invoice(), self._ksef_invoice()
        first.with_user(self.user).action_l10n_pl_ksef_post()
        second.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual((first + second).mapped("l10n_pl_ksef_state"), ["accepted", "accepted"])
        self.assertEqual(first.l10n_pl_ksef_document_ids.session_reference,
                         second.l10n_pl_ksef_document_ids.session_reference)
        self.assertEqual(self._counters()["sessions"].get("Online", 0) - sessions_before, 1)

    def test_expired_session_is_replaced(self):
        first = self._ksef_invoice()
        first.action_l10n_pl_ksef_post()
        self.ksef_control("expire", {"sessions": True})
        second = self._ksef_invoice()
        second.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(second.l10n_pl_ksef_state, "accepted")
        self.assertNotEqual(first.l10n_pl_ksef_document_ids.session_reference,
                            second.l10n_pl_ksef_document_ids.session_reference)

    def test_send_and_print_with_ksef_option(self):
        self.buyer_pl.email = "faktury@hurtownia-lodzka.pl"
        move = self._ksef_invoice()
        wizard = self.env["account.move.send.wizard"].with_user(self.user).with_context(
            active_model="account.move", active_ids=move.ids).create({})
        self.assertIn("pl_ksef", wizard.extra_edis)
        wizard.action_send_and_print()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertTrue(ksef_number.is_valid_ksef_number(move.l10n_pl_ksef_number))
        self.assertTrue(move.invoice_pdf_report_id)

    def test_send_and_print_batch_one_bad_invoice_does_not_block(self):
        good, bad = self._ksef_invoice(), self._ksef_invoice()
        # Another system already sent a different invoice under the bad one's number.
        self._ksef_sent_elsewhere(sample_invoice(bad.name))
        self.env["account.move.send"].with_user(self.user)._generate_and_send_invoices(
            good + bad, sending_methods=["manual"], extra_edis={"pl_ksef"}, allow_raising=False)
        self.assertEqual(good.l10n_pl_ksef_state, "accepted")
        self.assertEqual(bad.l10n_pl_ksef_state, "rejected")
        self.assertIn("440", bad.l10n_pl_ksef_error)

    def test_duplicate_of_our_own_file_is_adopted(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_freeze()
        # An earlier sending reached KSeF but its answer was lost: KSeF holds our very file.
        original = self._ksef_sent_elsewhere(move._l10n_pl_ksef_frozen_xml())
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertEqual(move.l10n_pl_ksef_number, original)
        self.assertTrue(move.l10n_pl_ksef_upo_id)
        self.assertEqual(move.l10n_pl_ksef_document_ids.status_code, 440)
        self.assertIn(original, move.message_ids[0].body)

    def test_duplicate_number_with_other_content_is_rejected(self):
        move = self._ksef_invoice()
        self._ksef_sent_elsewhere(sample_invoice(move.name))
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "rejected")
        self.assertFalse(move.l10n_pl_ksef_number)
        document = move.l10n_pl_ksef_document_ids
        self.assertEqual((document.state, document.status_code), ("rejected", 440))
        self.assertTrue(document.status_description)
        self.assertIn("440", move.l10n_pl_ksef_error)
        self.assertIn(document.status_description, move.l10n_pl_ksef_error)
        self.assertIn(document.status_description, move.message_ids[0].body)
        self.assertTrue(move.with_user(self.user).l10n_pl_ksef_show_post)

    def test_slow_processing_leaves_sending_and_is_never_sent_twice(self):
        self.ksef_control("config", {"processing_delay": 5.0})
        self.addCleanup(self.ksef_control, "config", {"processing_delay": 0.1})
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "sending")
        self.assertEqual(move.l10n_pl_ksef_document_ids.state, "sending")
        submitted = self._counters()["invoicesTotal"]
        # A retry asks KSeF about the earlier sending instead of sending again.
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(self._counters()["invoicesTotal"], submitted)
        self.assertEqual(len(move.l10n_pl_ksef_document_ids), 1)
        time.sleep(3.5)
        move.with_user(self.user).action_l10n_pl_ksef_refresh_status()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertTrue(ksef_number.is_valid_ksef_number(move.l10n_pl_ksef_number))
        self.assertEqual(move.l10n_pl_ksef_document_ids.state, "accepted")

    def test_chatter_in_polish_for_polish_user(self):
        self.env["res.lang"].sudo()._activate_lang("pl_PL")
        self.env["ir.module.module"].sudo()._load_module_terms(["l10n_pl_ksef"], ["pl_PL"], overwrite=True)
        self.user.sudo().lang = "pl_PL"
        move = self._ksef_invoice()
        move.with_user(self.user).with_context(lang="pl_PL").action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        bodies = " ".join(move.message_ids.mapped("body"))
        self.assertIn("Przyjęta przez KSeF", bodies)
        self.assertIn("Wysłano do KSeF", bodies)
        self.assertNotIn("Accepted by KSeF", bodies)
