import datetime
import subprocess
import tempfile
from pathlib import Path

from odoo.tests import tagged

from ..ksef import qr as ksef_qr
from .common import KsefOfflineTestMixin, KsefTestCommon, KSEF_TEST_NIP


@tagged("post_install_l10n", "post_install", "-at_install")
class TestOfflinePdf(KsefOfflineTestMixin, KsefTestCommon):
    """The real printed invoice: rendered by wkhtmltopdf, rasterised at 200 dpi, both codes
    decoded with zbarimg as a phone would, KOD II verified with the certificate's public key."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certificate, cls.x509, cls.key = cls._ksef_upload_certificate(
            not_before=datetime.datetime(2025, 1, 1), valid_days=3650)

    def _render(self, move):
        pdf, _type = self.env["ir.actions.report"].with_context(force_report_rendering=True)._render_qweb_pdf(
            "account.account_invoices", move.ids)
        self.assertTrue(pdf.startswith(b"%PDF"))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "invoice.pdf"
            path.write_bytes(pdf)
            text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True).stdout.decode()
            subprocess.run(["pdftoppm", "-r", "200", "-png", str(path), str(Path(tmp) / "page")], check=True)
            codes = []
            for page in sorted(Path(tmp).glob("page*.png")):
                run = subprocess.run(["/usr/bin/zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(page)],
                                     capture_output=True)
                self.assertIn(run.returncode, (0, 4), run.stderr)  # 4 = no code on this page
                codes += [line for line in run.stdout.decode().splitlines() if line]
        return text, codes

    def _kod1(self, move):
        return ksef_qr.invoice_url_from_hash("test", KSEF_TEST_NIP, move.invoice_date, move.l10n_pl_ksef_xml_hash)

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
