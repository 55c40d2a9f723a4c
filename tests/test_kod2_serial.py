"""Offline certificates judged by what KOD II needs (issue 15, 2): a 20-byte serial (the default
of ``cryptography`` and of many CAs) is written whole in KOD II; a certificate KOD II cannot use
is refused at upload, and the readiness panel signs a sample KOD II before showing green."""
import base64

from cryptography import x509 as crypto_x509
from cryptography.hazmat.primitives.asymmetric import rsa

from odoo.exceptions import UserError
from odoo.tests import tagged

from ..ksef import devcerts, qr
from .common import KSEF_TEST_NIP, KsefOfflineTestMixin, KsefTestCommon


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKod2Serial(KsefOfflineTestMixin, KsefTestCommon):

    def test_20_byte_serial_certificate_signs_offline_invoices(self):
        serial = crypto_x509.random_serial_number() | (1 << 158)
        certificate, x509, key = self._ksef_upload_certificate(serial=serial)
        self.assertEqual(certificate.l10n_pl_ksef_serial, "%040X" % serial)
        self.assertEqual(self.company.sudo().l10n_pl_ksef_offline_certificate_id, certificate)
        checks = {c["key"]: c for c in self.company._l10n_pl_ksef_offline_readiness_checks()}
        self.assertTrue(checks["certificate"]["ok"], checks["certificate"]["text"])

        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_issue_offline24()
        self.assertEqual(move.l10n_pl_ksef_state, "offline")
        self.assertEqual(move.l10n_pl_ksef_offline_certificate_serial, "%040X" % serial)
        link = qr.parse_certificate_url(move.l10n_pl_ksef_qr_certificate_url)
        self.assertEqual(link.certificate_serial, "%040X" % serial)
        self.assertEqual(link.seller_nip, KSEF_TEST_NIP)
        self.assertTrue(qr.verify_certificate_url(move.l10n_pl_ksef_qr_certificate_url, x509))

    def test_upload_refuses_a_key_kod2_cannot_sign_with(self):
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        certificate, key = devcerts.make_certificate(devcerts.OFFLINE, KSEF_TEST_NIP, private_key=weak)
        before = self.env["certificate.certificate"].sudo().search_count([])
        with self.assertRaises(UserError):   # ValidationError is one
            self._ksef_upload_certificate(certificate=certificate, key=key)
        self.assertEqual(self.env["certificate.certificate"].sudo().search_count([]), before, "nothing stored")
        self.assertFalse(self.company.sudo().l10n_pl_ksef_offline_certificate_id)

    def test_readiness_panel_signs_before_showing_green(self):
        certificate, _x509, _key = self._ksef_upload_certificate()
        self.company.sudo().write({"l10n_pl_ksef_responsible_id": self.user.id, "l10n_pl_ksef_last_drill_date": False})
        checks = {c["key"]: c for c in self.company._l10n_pl_ksef_offline_readiness_checks()}
        self.assertTrue(checks["certificate"]["ok"])
        self.assertFalse(checks["drill"]["ok"])
        self.company.invalidate_recordset()
        self.assertTrue(self.company.l10n_pl_ksef_offline_ready, "no drill yet is advice, not 'not ready'")
        panel = self.company.l10n_pl_ksef_offline_readiness_html
        self.assertEqual(panel.count("<i "), panel.count("</i>"), "icons closed, never nested")
        self.assertIn("fa-info-circle", panel)
        # The stored key is replaced behind the upload's back (e.g. a restored backup): the panel
        # finds out by signing, not by reading dates.
        _other, other_key = devcerts.make_certificate(devcerts.OFFLINE, KSEF_TEST_NIP)
        _cert_pem, key_pem = devcerts.to_pem(_other, other_key)
        certificate.private_key_id.sudo().write({"content": base64.b64encode(key_pem), "password": False})
        checks = {c["key"]: c for c in self.company._l10n_pl_ksef_offline_readiness_checks()}
        self.assertFalse(checks["certificate"]["ok"])
        self.assertIn(certificate.name, checks["certificate"]["text"])
        self.company.invalidate_recordset()
        self.assertFalse(self.company.l10n_pl_ksef_offline_ready)
