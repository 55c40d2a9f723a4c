import datetime

from odoo.tests import tagged

from ..ksef import qr as ksef_qr
from .common import KsefOfflineTestMixin, KsefPrintedPdfMixin, KsefTestCommon


@tagged("post_install_l10n", "post_install", "-at_install")
class TestOfflinePdf(KsefPrintedPdfMixin, KsefOfflineTestMixin, KsefTestCommon):
    """The real printed invoice: rendered by wkhtmltopdf, rasterised at 200 dpi, both codes
    decoded with zbarimg as a phone would, KOD II verified with the certificate's public key."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certificate, cls.x509, cls.key = cls._ksef_upload_certificate(
            not_before=datetime.datetime(2025, 1, 1), valid_days=3650)
        # wkhtmltopdf would fetch the CSS from this very server, whose asset requests wait on the
        # test transaction: point it at a closed port so it renders the (inline-styled) codes at once
        cls.env["ir.config_parameter"].sudo().set_param("report.url", "http://127.0.0.1:9")

    def test_offline_invoice_prints_both_codes(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_issue_offline24()
        text, codes = self._render(move)
        kod2 = [code for code in codes if "/certificate/" in code]
        self.assertEqual(len(codes), 2, codes)
        self.assertIn(self._kod1(move), codes)
        self.assertEqual(kod2, [move.l10n_pl_ksef_qr_certificate_url])
        self.assertTrue(ksef_qr.verify_certificate_url(kod2[0], self.x509.public_key()))
        for expected in ("OFFLINE", "CERTYFIKAT", "Sprawdź, czy Twoja faktura znajduje się w KSeF!",
                         "Zweryfikuj dostawcę faktury"):
            self.assertIn(expected, text)

    def test_accepted_reprint_shows_ksef_number_and_no_kod2(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_issue_offline24()
        number = "5265877635-%s-0100001AB2C3-4D" % move.invoice_date.strftime("%Y%m%d")
        move.sudo().write({"l10n_pl_ksef_state": "accepted", "l10n_pl_ksef_number": number})
        text, codes = self._render(move)
        self.assertEqual(codes, [self._kod1(move)])
        self.assertIn(number, text)
        self.assertNotIn("CERTYFIKAT", text)
        self.assertNotIn("OFFLINE", text)

    def test_total_failure_prints_no_codes(self):
        move = self._ksef_invoice()
        move._l10n_pl_ksef_issue_offline("total_failure")
        text, codes = self._render(move)
        self.assertEqual(codes, [])
        self.assertIn("awarii całkowitej", text)
        self.assertNotIn("CERTYFIKAT", text)
