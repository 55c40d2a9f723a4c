import datetime

from lxml import etree

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..ksef import crypto, ksef_number
from ..ksef import errors as ksef_errors
from ..models.account_move_ksef_correction import business_differences
from .common import NS, KsefOfflineTestMixin, KsefSimulatorCommon

CERT_NOT_BEFORE = datetime.datetime(2025, 1, 1)


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefCorrection(KsefOfflineTestMixin, KsefSimulatorCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_upload_certificate(not_before=CERT_NOT_BEFORE, valid_days=3650)
        # No Latarnia is asked here: an unreachable one on 127.0.0.1 stands for "unknown".
        cls.company.sudo().l10n_pl_ksef_latarnia_url = "http://127.0.0.1:9"

    def _counters(self):
        return self.ksef_control("counters", method="GET")

    def _offline_invoice(self, **values):
        move = self._ksef_invoice(**values)
        move._l10n_pl_ksef_issue_offline("offline24")
        self.assertEqual(move.l10n_pl_ksef_state, "offline")
        return move

    def _send_offline(self, move, user=None):
        """Send an invoice issued offline the way the submission engine will (with offlineMode):
        Post to KSeF takes invoices marked to send, so mark it so first."""
        self.assertTrue(move._l10n_pl_ksef_is_offline())
        move._l10n_pl_ksef_write({"l10n_pl_ksef_state": "to_send"})
        return move.with_user(user or self.user).action_l10n_pl_ksef_post()

    def _replace_frozen_xml(self, move, xml):
        """Stand for a file frozen by an older, buggy build: KSeF will reject it."""
        attachment = self.env["ir.attachment"].sudo().create({
            "name": "%s_FA3.xml" % move.name.replace("/", "_"), "raw": xml, "mimetype": "application/xml",
            "res_model": move._name, "res_id": move.id,
        })
        move._l10n_pl_ksef_write({
            "l10n_pl_ksef_xml_id": attachment.id,
            "l10n_pl_ksef_xml_hash": crypto.sha256_b64(xml),
            "l10n_pl_ksef_xml_hash_url": crypto.sha256_b64url(xml),
        })
        return attachment

    @staticmethod
    def _with_buyer_street(xml, street):
        root = etree.fromstring(xml)
        line = root.find("fa:Podmiot2/fa:Adres/fa:AdresL1", NS)
        line.text = street
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def _rejected_offline_invoice(self):
        """An invoice issued offline whose frozen file fails the FA(3) schema (a buyer address line
        over 512 characters): KSeF rejects it with 430."""
        move = self._offline_invoice()
        bad_xml = self._with_buyer_street(move._l10n_pl_ksef_frozen_xml(), "ul. Piotrkowska 100 " * 30)
        attachment = self._replace_frozen_xml(move, bad_xml)
        self._send_offline(move)
        self.assertEqual(move.l10n_pl_ksef_state, "rejected")
        rejection = move.l10n_pl_ksef_document_ids[:1]
        self.assertEqual((rejection.status_code, rejection.offline_mode), (430, True))
        return move, attachment, bad_xml

    # ---- technical correction --------------------------------------------------------------

    def test_technical_correction_end_to_end(self):
        move, rejected_attachment, rejected_xml = self._rejected_offline_invoice()
        rejected_hash = crypto.sha256_b64(rejected_xml)
        self.assertTrue(move.l10n_pl_ksef_show_technical_correction)

        move.with_user(self.user).action_l10n_pl_ksef_technical_correction()

        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertTrue(ksef_number.is_valid_ksef_number(move.l10n_pl_ksef_number))
        self.assertEqual(move.l10n_pl_ksef_corrected_hash, rejected_hash)
        self.assertEqual(move.l10n_pl_ksef_rejected_xml_id, rejected_attachment)
        new_xml = move._l10n_pl_ksef_frozen_xml()
        self.assertNotEqual(move.l10n_pl_ksef_xml_hash, rejected_hash)
        self.assertEqual(business_differences(rejected_xml, new_xml), [])
        # Sent in an interactive session, declared offline, naming the rejected file.
        correction = move.l10n_pl_ksef_document_ids.sorted("id")[-1]
        self.assertRecordValues(correction, [{
            "state": "accepted", "offline_mode": True, "hash_of_corrected_invoice": rejected_hash,
            "invoice_hash": move.l10n_pl_ksef_xml_hash, "ksef_number": move.l10n_pl_ksef_number,
        }])
        counters = self._counters()
        self.assertEqual(counters["acceptedByHash"].get(move.l10n_pl_ksef_xml_hash), 1)
        self.assertNotIn(rejected_hash, counters["acceptedByHash"])
        # KSeF holds exactly the corrected file under the new number.
        client = self._ksef_sim_client()
        answer = client.call("GET", "/v2/invoices/ksef/%s" % move.l10n_pl_ksef_number)
        self.assertEqual(answer.status_code, 200, answer.text)
        self.assertEqual(answer.content, new_xml)
        # The printed KOD I keeps the rejected file's hash: KSeF leads it to the correction.
        self.assertEqual(move._l10n_pl_ksef_printed_hash(), rejected_hash)
        self.assertEqual(move._l10n_pl_ksef_printed_hash_url(), crypto.sha256_b64url(rejected_xml))
        # The rejected original stays attached, unchanged and protected.
        self.assertEqual(rejected_attachment.raw, rejected_xml)
        with self.assertRaisesRegex(UserError, "frozen"):
            rejected_attachment.sudo().write({"raw": b"<x/>"})
        with self.assertRaisesRegex(UserError, "frozen"):
            rejected_attachment.sudo().unlink()
        self.assertIn("Technical correction prepared", " ".join(move.message_ids.mapped("body")))

        # A second technical correction is refused here, before KSeF is asked ...
        total = counters["invoicesTotal"]
        with self.assertRaisesRegex(UserError, "already technically corrected"):
            move.with_user(self.user).action_l10n_pl_ksef_technical_correction()
        self.assertEqual(self._counters()["invoicesTotal"], total)
        # ... and KSeF itself would answer 21166 (one accepted correction per original).
        other_xml = move._l10n_pl_ksef_build_xml(created_at=fields.Datetime.now() + datetime.timedelta(seconds=5))
        with self.assertRaises(ksef_errors.Rejected) as caught:
            move._l10n_pl_ksef_send_xml(self.company, other_xml, True, rejected_hash)
        self.assertEqual(caught.exception.code, 21166)

    def test_correction_waits_offline_when_ksef_is_unreachable(self):
        move, rejected_attachment, rejected_xml = self._rejected_offline_invoice()
        issued_at, kod2 = move.l10n_pl_ksef_offline_issued_at, move.l10n_pl_ksef_qr_certificate_url
        self.ksef_control("faults", {"down": True, "down_mode": "close"})
        move.with_user(self.user).action_l10n_pl_ksef_technical_correction()
        # Prepared and kept: waiting among the offline invoices, not issued offline a second time.
        self.assertEqual(move.l10n_pl_ksef_state, "offline")
        self.assertEqual(move.l10n_pl_ksef_corrected_hash, crypto.sha256_b64(rejected_xml))
        self.assertEqual(move._l10n_pl_ksef_hash_of_corrected_invoice(), crypto.sha256_b64(rejected_xml))
        self.assertEqual(move.l10n_pl_ksef_rejected_xml_id, rejected_attachment)
        self.assertEqual((move.l10n_pl_ksef_offline_issued_at, move.l10n_pl_ksef_qr_certificate_url), (issued_at, kod2))
        self.assertIn("technical correction is prepared", move.message_ids[0].body)
        # KSeF back: sent (as the engine will) with offlineMode and the hash of the rejected file.
        self.ksef_control("faults/clear")
        self._send_offline(move)
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertEqual(move.l10n_pl_ksef_document_ids.sorted("id")[-1].hash_of_corrected_invoice,
                         crypto.sha256_b64(rejected_xml))

    def test_correction_that_does_not_build_is_refused(self):
        """Master data still wrong (here a business buyer without its NIP): the rebuilt e-invoice
        is refused before anything is stored or sent."""
        move, _attachment, _xml = self._rejected_offline_invoice()
        self.buyer_pl.vat = False
        total = self._counters()["invoicesTotal"]
        with self.assertRaisesRegex(UserError, "needs a Tax ID"):
            move.with_user(self.user).action_l10n_pl_ksef_technical_correction()
        self.assertEqual(move.l10n_pl_ksef_state, "rejected")
        self.assertEqual(self._counters()["invoicesTotal"], total)

    def test_changed_business_content_is_refused(self):
        move, rejected_attachment, _xml = self._rejected_offline_invoice()
        # "Fixing" the buyer by giving it another tax identity changes the invoice's content.
        self.buyer_pl.vat = "PL1234563218"
        total = self._counters()["invoicesTotal"]
        with self.assertRaisesRegex(UserError, "(?s)must not change the content.*Podmiot2/NIP: 7251801126 -> 1234563218"):
            move.with_user(self.user).action_l10n_pl_ksef_technical_correction()
        self.assertEqual(move.l10n_pl_ksef_state, "rejected")
        self.assertEqual(move.l10n_pl_ksef_xml_id, rejected_attachment, "nothing may be half-stored")
        self.assertFalse(move.l10n_pl_ksef_corrected_hash)
        self.assertEqual(self._counters()["invoicesTotal"], total)

    def test_forbidden_character_in_line_name(self):
        """A line name with a character XML forbids: the file KSeF got is not even well-formed.
        After the name is cleaned, the correction goes through: same product, same amounts."""
        move = self._offline_invoice()
        xml = move._l10n_pl_ksef_frozen_xml().replace(b"<P_7>Us\xc5\x82uga</P_7>", b"<P_7>Us\xc5\x82uga\x0b</P_7>")
        self.assertIn(b"\x0b", xml)
        self._replace_frozen_xml(move, xml)
        self._send_offline(move)
        self.assertEqual(move.l10n_pl_ksef_state, "rejected")
        self.assertEqual(move.l10n_pl_ksef_document_ids[:1].status_code, 430)
        move.with_user(self.user).action_l10n_pl_ksef_technical_correction()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertEqual(move.l10n_pl_ksef_corrected_hash, crypto.sha256_b64(xml))

    def test_business_content_comparison(self):
        move = self._ksef_invoice(lines=[(100.0, self.tax_23, {"name": "Usługa serwisowa, pakiet A"}),
                                         (50.0, self.tax_8, {"name": "Książka"})])
        xml = move._l10n_pl_ksef_build_xml()

        def changed(path, text):
            root = etree.fromstring(xml)
            root.find(path, NS).text = text
            return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

        # What a technical fix may touch: addresses, punctuation and spacing of a line name.
        self.assertEqual(business_differences(xml, changed("fa:Podmiot2/fa:Adres/fa:AdresL1", "ul. Piotrkowska 100/2")), [])
        self.assertEqual(business_differences(xml, changed("fa:Fa/fa:FaWiersz/fa:P_7", "Usługa serwisowa - pakiet A")), [])
        # What it may not: a line's product, amounts or rate, a total, the date or the number.
        for path, text, where in [
            ("fa:Fa/fa:FaWiersz/fa:P_7", "Usługa serwisowa, pakiet B", "Fa/FaWiersz[1]/P_7"),
            ("fa:Fa/fa:FaWiersz/fa:P_11", "99.00", "Fa/FaWiersz[1]/P_11"),
            ("fa:Fa/fa:FaWiersz/fa:P_12", "8", "Fa/FaWiersz[1]/P_12"),
            ("fa:Fa/fa:P_13_1", "99.00", "Fa/P_13_1"),
            ("fa:Fa/fa:P_15", "1.00", "Fa/P_15"),
            ("fa:Fa/fa:P_1", "2020-01-01", "Fa/P_1"),
            ("fa:Fa/fa:P_2", "OTHER/1", "Fa/P_2"),
        ]:
            self.assertEqual([d[0] for d in business_differences(xml, changed(path, text))], [where], where)
        root = etree.fromstring(xml)
        root.find("fa:Fa", NS).remove(root.find("fa:Fa/fa:FaWiersz", NS))
        self.assertIn("Fa/FaWiersz count", [d[0] for d in business_differences(
            xml, etree.tostring(root, xml_declaration=True, encoding="UTF-8"))])

    def test_permission_rejection_is_not_corrected(self):
        move = self._offline_invoice()
        self.env["l10n_pl_ksef.document"].sudo().create({
            "move_id": move.id, "company_id": self.company.id, "invoice_hash": move.l10n_pl_ksef_xml_hash,
            "offline_mode": True, "state": "rejected", "status_code": 410,
            "status_description": "Nieprawidłowy zakres uprawnień",
        })
        move._l10n_pl_ksef_write({"l10n_pl_ksef_state": "rejected"})
        total = self._counters()["invoicesTotal"]
        with self.assertRaisesRegex(UserError, "(?s)lack of permissions.*code 410.*does not allow a technical correction"):
            move.with_user(self.user).action_l10n_pl_ksef_technical_correction()
        self.assertEqual(self._counters()["invoicesTotal"], total)
        self.assertFalse(move.l10n_pl_ksef_corrected_hash)

    def test_online_invoice_needs_no_technical_correction(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_freeze()
        move._l10n_pl_ksef_write({"l10n_pl_ksef_state": "rejected"})
        self.assertFalse(move.l10n_pl_ksef_show_technical_correction)
        with self.assertRaisesRegex(UserError, "not issued offline"):
            move.with_user(self.user).action_l10n_pl_ksef_technical_correction()

    # ---- credit notes of offline originals -------------------------------------------------

    def _credit_note(self, original):
        credit_note = original._reverse_moves([{"invoice_date": original.invoice_date, "ref": "Zwrot towaru"}])
        credit_note.action_post()
        return credit_note

    def test_credit_note_held_until_original_accepted(self):
        original = self._offline_invoice()
        credit_note = self._credit_note(original)
        total = self._counters()["invoicesTotal"]

        action = credit_note.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(action["tag"], "display_notification")
        self.assertIn("Held until the original has its KSeF number", action["params"]["title"])
        self.assertEqual(credit_note.l10n_pl_ksef_state, "to_send")
        self.assertTrue(credit_note.l10n_pl_ksef_waiting_original)
        self.assertFalse(credit_note.l10n_pl_ksef_xml_id, "a held credit note is not frozen")
        self.assertFalse(credit_note._l10n_pl_ksef_ready_to_send())
        self.assertEqual(self._counters()["invoicesTotal"], total, "nothing was sent")
        waiting = self.env["account.move"].with_user(self.user).search([("l10n_pl_ksef_waiting_original", "=", True)])
        self.assertIn(credit_note, waiting)
        # Issuing it offline holds it as well (its QR code would need the original's number).
        credit_note._l10n_pl_ksef_issue_offline("offline24")
        self.assertEqual(credit_note.l10n_pl_ksef_state, "to_send")
        self.assertFalse(credit_note.l10n_pl_ksef_xml_id)
        with self.assertRaisesRegex(UserError, "cannot be frozen yet"):
            credit_note.action_l10n_pl_ksef_freeze()
        self.assertEqual(sum("Held:" in body for body in credit_note.message_ids.mapped("body")), 1,
                         "the hold is said once")

        # The original reaches KSeF: the credit note is released ...
        self._send_offline(original)
        self.assertEqual(original.l10n_pl_ksef_state, "accepted")
        self.assertFalse(credit_note.l10n_pl_ksef_waiting_original)
        self.assertTrue(credit_note._l10n_pl_ksef_ready_to_send())
        self.assertNotIn(credit_note, self.env["account.move"].search([("l10n_pl_ksef_waiting_original", "=", True)]))
        self.assertIn("Released", credit_note.message_ids[0].body)
        # Frozen at release, with the original's number: the submission engine takes frozen rows.
        self.assertTrue(credit_note.l10n_pl_ksef_xml_id)
        self.assertEqual(credit_note.l10n_pl_ksef_state, "to_send")
        # ... and goes to KSeF referring to the original's KSeF number.
        credit_note.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(credit_note.l10n_pl_ksef_state, "accepted", credit_note.l10n_pl_ksef_error)
        root = etree.fromstring(credit_note._l10n_pl_ksef_frozen_xml())
        corrected = root.find("fa:Fa/fa:DaneFaKorygowanej", NS)
        self.assertEqual(root.findtext("fa:Fa/fa:RodzajFaktury", namespaces=NS), "KOR")
        self.assertEqual(corrected.findtext("fa:NrKSeFFaKorygowanej", namespaces=NS), original.l10n_pl_ksef_number)
        self.assertEqual(corrected.findtext("fa:NrKSeF", namespaces=NS), "1")
        self.assertEqual(corrected.findtext("fa:NrFaKorygowanej", namespaces=NS), original.name)

    def test_credit_note_released_when_number_stored_without_write(self):
        """The submission engine stores KSeF numbers set-based (no write()): the release still
        happens at the next run of the safety net."""
        original = self._offline_invoice()
        credit_note = self._credit_note(original)
        credit_note.action_l10n_pl_ksef_post()
        self.assertTrue(credit_note.l10n_pl_ksef_waiting_original)
        number = ksef_number.make_ksef_number(self.ksef_nip, original.invoice_date, "0100000000AB")
        self.env.cr.execute("UPDATE account_move SET l10n_pl_ksef_state = 'accepted', l10n_pl_ksef_number = %s "
                            "WHERE id = %s", [number, original.id])
        original.invalidate_recordset()
        original.modified(["l10n_pl_ksef_state", "l10n_pl_ksef_number"])
        self.assertFalse(credit_note.l10n_pl_ksef_waiting_original)
        self.assertFalse(credit_note.l10n_pl_ksef_xml_id)
        released = self.env["account.move"]._cron_l10n_pl_ksef_deadline_reminders()
        self.assertTrue(credit_note.l10n_pl_ksef_xml_id, (credit_note.l10n_pl_ksef_error, credit_note.message_ids.mapped("body")[:2]))
        root = etree.fromstring(credit_note._l10n_pl_ksef_frozen_xml())
        self.assertEqual(root.findtext("fa:Fa/fa:DaneFaKorygowanej/fa:NrKSeFFaKorygowanej", namespaces=NS), number)
        self.assertIsInstance(released, dict)
        # Idempotent: a second run releases nothing more and says nothing more.
        messages = len(credit_note.message_ids)
        self.assertFalse(self.env["account.move"]._l10n_pl_ksef_release_numbered_originals())
        self.assertEqual(len(credit_note.message_ids), messages)

    def test_credit_note_of_accepted_original_is_not_held(self):
        original = self._ksef_invoice()
        original.action_l10n_pl_ksef_post()
        credit_note = self._credit_note(original)
        self.assertTrue(credit_note._l10n_pl_ksef_ready_to_send())
        credit_note.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(credit_note.l10n_pl_ksef_state, "accepted")
        self.assertFalse(credit_note.l10n_pl_ksef_waiting_original)

