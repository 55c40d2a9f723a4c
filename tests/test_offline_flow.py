from odoo.exceptions import UserError
from odoo.tests import tagged

from ..ksef import calendar as ksef_calendar
from ..ksef import ksef_number
from .common import KsefOfflineTestMixin, KsefPrintedPdfMixin, KsefSimulatorCommon


@tagged("post_install_l10n", "post_install", "-at_install")
class TestOfflineFlow(KsefPrintedPdfMixin, KsefOfflineTestMixin, KsefSimulatorCommon):
    """The whole outage, as the accountant lives it: KSeF is down, Post to KSeF issues the
    invoice offline24 with both codes printed, KSeF comes back, Post to KSeF submits the same
    file and the reprint shows the KSeF number under KOD I and no KOD II."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_setup_offline_issuing(fallback="auto")

    def test_outage_then_recovery(self):
        move = self._ksef_invoice().with_user(self.user)
        self.ksef_control("faults", {"down": True})
        move.action_l10n_pl_ksef_post()
        self.assertEqual((move.l10n_pl_ksef_state, move.l10n_pl_ksef_offline_mode), ("offline", "offline24"))
        self.assertEqual(move.l10n_pl_ksef_deadline, ksef_calendar.add_business_days(move.invoice_date, 1))
        frozen_hash = move.l10n_pl_ksef_xml_hash
        text, codes = self._render(move)
        self.assertEqual(sorted(codes), sorted([self._kod1(move), move.l10n_pl_ksef_qr_certificate_url]))
        self.assertIn("OFFLINE", text)
        self.assertIn("CERTYFIKAT", text)

        # Still down: a new attempt says so and changes nothing.
        with self.assertRaisesRegex(UserError, "stays issued offline"):
            move.action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "offline")

        self.ksef_control("faults/clear")
        move.action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertTrue(ksef_number.is_valid_ksef_number(move.l10n_pl_ksef_number))
        self.assertEqual(move.l10n_pl_ksef_xml_hash, frozen_hash, "the printed file is the file sent")
        document = move.l10n_pl_ksef_document_ids.filtered(lambda d: d.state == "accepted")
        self.assertTrue(document.offline_mode, "sent with offlineMode=true")
        self.assertEqual(document.invoice_hash, frozen_hash)

        text, codes = self._render(move)
        self.assertEqual(codes, [self._kod1(move)])
        self.assertIn(move.l10n_pl_ksef_number, text)
        self.assertNotIn("CERTYFIKAT", text)
