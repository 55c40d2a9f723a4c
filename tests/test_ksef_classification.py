import datetime

from freezegun import freeze_time

from odoo.exceptions import AccessError
from odoo.tests import tagged

from ..ksef import qr as ksef_qr
from .common import KsefOfflineTestMixin, KsefPrintedPdfMixin, KsefSimulatorCommon
from ..ksef.simulator.testing import warsaw_today


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefOfflineClassification(KsefPrintedPdfMixin, KsefOfflineTestMixin, KsefSimulatorCommon):
    """An invoice dated yesterday is posted to KSeF online today: KSeF records it as Offline
    (P_1 before the day it was accepted). Odoo marks it, the reprint carries KOD I "OFFLINE" and
    KOD II, and the accountant is told to hand the buyer the new printout."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_setup_offline_issuing(fallback="auto")

    def test_late_online_invoice_is_classified_offline_by_ksef(self):
        yesterday = warsaw_today() - datetime.timedelta(days=1)
        move = self._ksef_invoice(invoice_date=yesterday).with_user(self.user)
        move.action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertFalse(move.l10n_pl_ksef_offline_mode, "sent online")
        self.assertTrue(move.l10n_pl_ksef_ksef_offline)
        self.assertTrue(ksef_qr.verify_certificate_url(move.l10n_pl_ksef_qr_certificate_url, self.x509.public_key()))
        text, codes = self._render(move)
        self.assertEqual(sorted(codes), sorted([self._kod1(move), move.l10n_pl_ksef_qr_certificate_url]))
        self.assertIn("OFFLINE", text)
        self.assertIn("CERTYFIKAT", text)
        activity = move.activity_ids.filtered(lambda a: "OFFLINE printout" in (a.summary or ""))
        self.assertEqual(len(activity), 1)
        self.assertIn("hand the buyer the new printout", move.message_ids[:3].mapped("body")[0] + activity.note)
        with self.assertRaises(AccessError):
            move.write({"l10n_pl_ksef_ksef_offline": False})

    def test_undated_invoice_is_dated_by_the_warsaw_calendar(self):
        """At 00:30 in Warsaw (23:30 UTC) an invoice posted without a date carries Warsaw's day,
        whatever the poster's time zone: with the UTC day KSeF would classify it Offline."""
        for tz in (False, "UTC", "America/New_York", "Europe/Warsaw"):
            self.user.tz = tz
            with freeze_time("2026-11-30 23:30:00"):
                move = self._ksef_invoice(post=False, invoice_date=False).with_user(self.user)
                move.action_post()
            self.assertEqual(move.invoice_date, datetime.date(2026, 12, 1), tz)
            self.assertEqual(move.date, datetime.date(2026, 12, 1), tz)
        # A dated invoice keeps its date.
        with freeze_time("2026-11-30 23:30:00"):
            dated = self._ksef_invoice(invoice_date=datetime.date(2026, 11, 30))
        self.assertEqual(dated.invoice_date, datetime.date(2026, 11, 30))

    def test_invoice_sent_on_its_issue_day_stays_online(self):
        move = self._ksef_invoice().with_user(self.user)
        move.action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertFalse(move.l10n_pl_ksef_ksef_offline)
        text, codes = self._render(move)
        self.assertEqual(codes, [self._kod1(move)])
        self.assertNotIn("CERTYFIKAT", text)
        self.assertIn(move.l10n_pl_ksef_number, text)
