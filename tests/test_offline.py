import datetime

from odoo import Command, fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..ksef import calendar as ksef_calendar
from ..ksef import qr as ksef_qr
from .common import KsefOfflineTestMixin, KsefTestCommon, KSEF_TEST_NIP
from ..ksef.simulator.testing import warsaw_today

CERT_NOT_BEFORE = datetime.datetime(2025, 1, 1)


@tagged("post_install_l10n", "post_install", "-at_install")
class TestOffline(KsefOfflineTestMixin, KsefTestCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # valid from 2025 so that the MF worked example (July 2025) can be signed too
        cls.certificate, cls.x509, cls.key = cls._ksef_upload_certificate(not_before=CERT_NOT_BEFORE, valid_days=3650)
        # no Latarnia is asked in these tests: an unreachable one on 127.0.0.1 stands for "unknown"
        cls.company.sudo().l10n_pl_ksef_latarnia_url = "http://127.0.0.1:9"

    def _event(self, category, start, end=None, **values):
        return self.env["l10n_pl_ksef.event"].sudo().create({
            "source": "bip", "category": category, "date_start": start, "date_end": end,
            "published": values.pop("published", start), "notice_ref": values.pop("notice_ref", False), **values,
        })

    # ---- issuing offline24 -----------------------------------------------------------------

    def test_issue_offline24_as_accountant(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_issue_offline24()
        self.assertEqual(move.l10n_pl_ksef_state, "offline")
        self.assertEqual(move.l10n_pl_ksef_offline_mode, "offline24")
        self.assertTrue(move._l10n_pl_ksef_is_offline())
        self.assertTrue(move.l10n_pl_ksef_xml_id and move.l10n_pl_ksef_xml_hash)
        self.assertTrue(move.l10n_pl_ksef_offline_issued_at)
        self.assertEqual(move.l10n_pl_ksef_deadline, ksef_calendar.next_business_day(move.invoice_date))
        self.assertIn("next business day", move.l10n_pl_ksef_deadline_reason)
        # KOD II is signed with the Offline certificate for exactly the frozen file
        url = move.l10n_pl_ksef_qr_certificate_url
        link = ksef_qr.parse_certificate_url(url)
        self.assertEqual(link.certificate_serial, "%016X" % self.x509.serial_number)
        self.assertEqual((link.context_type, link.context_value, link.seller_nip), ("Nip", KSEF_TEST_NIP, KSEF_TEST_NIP))
        self.assertEqual(link.invoice_hash, move.l10n_pl_ksef_xml_hash_url)
        self.assertTrue(url.startswith("https://qr-test.ksef.mf.gov.pl/certificate/"))
        self.assertTrue(ksef_qr.verify_certificate_url(url, self.x509))
        self.assertIn("offline24", move.message_ids[0].body.lower())
        # a second issue is refused
        with self.assertRaisesRegex(UserError, "already"):
            move._l10n_pl_ksef_issue_offline("offline24")

    def test_issue_offline_without_certificate(self):
        self.company.sudo().l10n_pl_ksef_offline_certificate_id = False
        move = self._ksef_invoice()
        for mode in ("offline24",):
            with self.assertRaisesRegex(UserError, "Offline certificate"):
                move._l10n_pl_ksef_issue_offline(mode)
        self.assertFalse(move.l10n_pl_ksef_state)
        self.assertFalse(move.l10n_pl_ksef_xml_id, "nothing may be half-stored")
        self.assertFalse(move.l10n_pl_ksef_offline_mode)
        # a total failure needs no certificate: no QR codes at all
        move._l10n_pl_ksef_issue_offline("total_failure")
        self.assertEqual(move.l10n_pl_ksef_state, "outside")
        self.assertFalse(move._l10n_pl_ksef_is_offline())
        self.assertFalse(move.l10n_pl_ksef_deadline)
        self.assertFalse(move.l10n_pl_ksef_qr_certificate_url)
        self.assertEqual(move._l10n_pl_ksef_qr_codes(), [])
        self.assertIn("total KSeF failure", move.l10n_pl_ksef_deadline_reason)

    def test_event_modes_need_an_announced_event(self):
        move = self._ksef_invoice()
        with self.assertRaisesRegex(UserError, "no announced KSeF failure"):
            move._l10n_pl_ksef_issue_offline("emergency")
        self.assertFalse(move.l10n_pl_ksef_xml_id)

    # ---- deadlines -------------------------------------------------------------------------

    def test_mf_worked_example(self):
        """ksef-docs tryby-offline.md: offline24 on Wed 2025-07-08 -> Thu 07-09; a failure announced on 07-09
        and ending Sat 07-12 moves it to Tue 2025-07-22."""
        # P_1 in the past is fine for KSeF; only the creation stamp of the file is "now" (FA(3)
        # refuses creation dates before September 2025, so the clock is not turned back)
        move = self._ksef_invoice(invoice_date=datetime.date(2025, 7, 8))
        move.action_l10n_pl_ksef_issue_offline24()
        # ...but the invoice counts as issued offline on that Wednesday, before the failure.
        move.sudo().l10n_pl_ksef_offline_issued_at = datetime.datetime(2025, 7, 8, 10, 0)
        self.assertEqual(move.l10n_pl_ksef_deadline, datetime.date(2025, 7, 9))
        failure = self._event("FAILURE", datetime.datetime(2025, 7, 9, 7, 0), notice_ref="K/2025/AWR/01")
        self.assertFalse(move.l10n_pl_ksef_deadline, "unknown while the failure goes on")
        self.assertIn("still going on", move.l10n_pl_ksef_deadline_reason)
        failure.date_end = datetime.datetime(2025, 7, 12, 10, 0)
        self.assertEqual(move.l10n_pl_ksef_deadline, datetime.date(2025, 7, 22))
        self.assertEqual(move.l10n_pl_ksef_deadline_event_id, failure)
        self.assertIn("7 business days", move.l10n_pl_ksef_deadline_reason)
        self.assertIn("07/22/2025", move.message_ids[0].body, "the date in the reader's format")
        # announced after its deadline had passed, the failure revives nothing
        earlier = self._ksef_invoice(invoice_date=datetime.date(2025, 7, 1))
        earlier.action_l10n_pl_ksef_issue_offline24()
        self.assertEqual(earlier.l10n_pl_ksef_deadline, datetime.date(2025, 7, 2))
        # the invoice was issued before the failure: still offline24, still to send
        self.assertEqual(move.l10n_pl_ksef_offline_mode, "offline24")
        self.assertTrue(move._l10n_pl_ksef_is_offline())

    def test_total_failure_lifts_the_deadline(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_issue_offline24()
        self.assertTrue(move.l10n_pl_ksef_deadline)
        self._event("TOTAL_FAILURE", fields.Datetime.now() - datetime.timedelta(minutes=1))
        self.assertFalse(move.l10n_pl_ksef_deadline)
        self.assertIn("no obligation", move.l10n_pl_ksef_deadline_reason)
        self.assertEqual(move.l10n_pl_ksef_state, "offline", "it may still be sent; it just no longer must")

    def test_bip_notice_entered_by_hand_recomputes(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_issue_offline24()
        before = move.l10n_pl_ksef_deadline
        now = fields.Datetime.now()
        # Going on when the invoice was issued (a failure over before that would move nothing).
        notice = self._event("FAILURE", now - datetime.timedelta(hours=1), now + datetime.timedelta(minutes=5),
                             notice_ref="K/2026/AWR/02", published=now - datetime.timedelta(hours=1))
        expected = ksef_calendar.add_business_days(fields.Date.context_today(move.with_context(tz="Europe/Warsaw")), 7)
        self.assertEqual(move.l10n_pl_ksef_deadline, expected)
        self.assertGreater(move.l10n_pl_ksef_deadline, before)
        notice.action_archive()  # notices are evidence: archived, never deleted
        self.assertEqual(move.l10n_pl_ksef_deadline, before, "withdrawing the notice restores the deadline")

    # ---- automatic fallback ----------------------------------------------------------------

    def test_fallback_modes_from_latarnia(self):
        self.company.sudo().l10n_pl_ksef_offline_fallback = "auto"
        now = fields.Datetime.now()
        cases = [
            ("AVAILABLE", None, "offline24", "offline"),
            (None, None, "offline24", "offline"),  # Latarnia unreachable (127.0.0.1:9)
            ("FAILURE", None, "offline24", "offline"),  # FAILURE but no notice known: never more time than due
            ("TOTAL_FAILURE", None, "total_failure", "outside"),
        ]
        for status, _event, mode, state in cases:
            with self.subTest(status=status):
                move = self._ksef_invoice()
                self.assertIs(move._l10n_pl_ksef_fallback_to_offline(error=ConnectionError("timeout"), latarnia_status=status), True)
                self.assertEqual((move.l10n_pl_ksef_offline_mode, move.l10n_pl_ksef_state), (mode, state))
        maintenance = self._event("MAINTENANCE", now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=2),
                                  notice_ref="K/2026/PLN/01")
        move = self._ksef_invoice()
        move._l10n_pl_ksef_fallback_to_offline(latarnia_status="MAINTENANCE")
        self.assertEqual(move.l10n_pl_ksef_offline_mode, "unavailability")
        self.assertEqual(move.l10n_pl_ksef_offline_event_id, maintenance)
        end_day = fields.Date.context_today(move.with_context(tz="Europe/Warsaw"), maintenance.date_end)
        self.assertEqual(move.l10n_pl_ksef_deadline, ksef_calendar.next_business_day(end_day))
        failure = self._event("FAILURE", now - datetime.timedelta(minutes=30), notice_ref="K/2026/AWR/03")
        move = self._ksef_invoice()
        move._l10n_pl_ksef_handle_unreachable(ConnectionError("502"))  # Latarnia unreachable -> offline24
        self.assertEqual(move.l10n_pl_ksef_offline_mode, "offline24")
        move = self._ksef_invoice()
        move._l10n_pl_ksef_fallback_to_offline(latarnia_status="FAILURE")
        self.assertEqual(move.l10n_pl_ksef_offline_mode, "emergency")
        self.assertEqual(move.l10n_pl_ksef_offline_event_id, failure)
        self.assertFalse(move.l10n_pl_ksef_deadline, "the failure is still going on")

    def test_fallback_asks_for_confirmation(self):
        self.assertEqual(self.company.l10n_pl_ksef_offline_fallback, "confirm")
        move = self._ksef_invoice()
        action = move._l10n_pl_ksef_fallback_to_offline(error=ConnectionError("timeout"), latarnia_status="AVAILABLE")
        self.assertEqual(action["res_model"], "l10n_pl_ksef.offline.wizard")
        self.assertFalse(move.l10n_pl_ksef_state, "nothing happens before the confirmation")
        self.assertFalse(move.l10n_pl_ksef_xml_id)
        wizard = self.env["l10n_pl_ksef.offline.wizard"].browse(action["res_id"])
        self.assertEqual(wizard.mode, "offline24")
        self.assertIn("no connection to KSeF", wizard.explanation)  # worded, not the raw exception
        wizard.action_confirm()
        self.assertEqual(move.l10n_pl_ksef_state, "offline")

    # ---- frozen invoices stay as printed ---------------------------------------------------

    def test_editing_a_frozen_offline_invoice_is_refused(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_issue_offline24()
        xml_hash = move.l10n_pl_ksef_xml_hash
        other = self.buyer_consumer
        attempts = [
            lambda: move.write({"partner_id": other.id}),
            lambda: move.with_context(skip_readonly_check=True).write({"partner_id": other.id}),
            lambda: move.write({"ref": "changed"}),
            lambda: move.write({"invoice_origin": "SO999"}),
            lambda: move.write({"delivery_date": warsaw_today() - datetime.timedelta(days=3)}),
            lambda: move.write({"invoice_line_ids": [Command.update(move.invoice_line_ids[0].id, {"price_unit": 1.0})]}),
            lambda: move.invoice_line_ids[0].write({"name": "Inna usługa"}),
            lambda: move.invoice_line_ids[0].with_context(skip_readonly_check=True).write({"price_unit": 5.0}),
            lambda: move.button_draft(),
        ]
        for attempt in attempts:
            with self.subTest(attempt=attempt), self.assertRaises(UserError):
                with self.env.cr.savepoint():
                    attempt()
        with self.assertRaisesRegex(UserError, "issued offline"):
            move.with_context(skip_readonly_check=True).write({"partner_id": other.id})
        move.invalidate_recordset()
        self.assertEqual(move.partner_id, self.buyer_pl)
        self.assertEqual(move.invoice_line_ids.price_unit, 100.0)
        self.assertEqual(move.l10n_pl_ksef_xml_hash, xml_hash)
        self.assertEqual(move.l10n_pl_ksef_state, "offline")
        # things outside the e-invoice still change (internal note), and writing the same value is no change
        move.write({"narration": "Zapłacono gotówką", "ref": move.ref})
