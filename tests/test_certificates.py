import base64
import datetime

from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo import Command
from odoo.tests import new_test_user, tagged

from ..ksef import devcerts
from .common import KsefOfflineTestMixin, KsefTestCommon, KSEF_TEST_NIP


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefCertificates(KsefOfflineTestMixin, KsefTestCommon):

    def _count(self):
        return (self.env["certificate.certificate"].sudo().search_count([]),
                self.env["certificate.key"].sudo().search_count([]))

    def _upload_refused(self, message, **kwargs):
        before = self._count()
        offline_before = self.company.sudo().l10n_pl_ksef_offline_certificate_id
        with self.assertRaisesRegex((UserError, ValidationError), message):
            self._ksef_upload_certificate(**kwargs)
        self.assertEqual(self._count(), before, "nothing may be half-stored")
        self.assertEqual(self.company.sudo().l10n_pl_ksef_offline_certificate_id, offline_before)

    def test_upload_pem_pair(self):
        certificate, x509, _key = self._ksef_upload_certificate()
        self.assertEqual(certificate.scope, "l10n_pl_ksef")
        self.assertEqual(certificate.l10n_pl_ksef_kind, "Offline")
        self.assertEqual(certificate.l10n_pl_ksef_serial, "%016X" % x509.serial_number)
        self.assertEqual(len(certificate.l10n_pl_ksef_serial), 16)
        self.assertEqual(certificate.l10n_pl_ksef_identifier, "Nip %s" % KSEF_TEST_NIP)
        self.assertIn(certificate.l10n_pl_ksef_days_left, (728, 729, 730))
        self.assertTrue(certificate.private_key_id)
        self.assertEqual(self.company.sudo().l10n_pl_ksef_offline_certificate_id, certificate)
        self.assertEqual(self.company._l10n_pl_ksef_watched_certificates(), certificate)

    def test_upload_pkcs12_and_encrypted_pem(self):
        certificate, x509, _key = self._ksef_upload_certificate(file_format="pkcs12", password="Zażółć-123", key_type="rsa")
        self.assertEqual(certificate.l10n_pl_ksef_kind, "Offline")
        signer = self.company._l10n_pl_ksef_offline_signer()
        self.assertEqual(signer.serial, "%016X" % x509.serial_number)
        self.assertIsNotNone(signer.private_key)
        encrypted, _x509, _key = self._ksef_upload_certificate(password="hasło", name="encrypted")
        self.assertEqual(self.company.sudo().l10n_pl_ksef_offline_certificate_id, encrypted)

    def test_authentication_certificate_is_not_an_offline_certificate(self):
        self._upload_refused("not a KSeF Offline certificate", kind=devcerts.AUTHENTICATION)
        # stored as an authentication certificate, it still cannot become the Offline one
        auth, _x509, _key = self._ksef_upload_certificate(kind=devcerts.AUTHENTICATION, use_as_offline=False)
        self.assertEqual(auth.l10n_pl_ksef_kind, "Authentication")
        with self.assertRaisesRegex(ValidationError, "Authentication certificates are for logging in"):
            self.company.sudo().l10n_pl_ksef_offline_certificate_id = auth

    def test_bad_files_are_refused_with_clear_messages(self):
        certificate, key = self._ksef_make_certificate()
        _other_certificate, other_key = self._ksef_make_certificate()
        self._upload_refused("does not belong to this certificate", certificate=certificate, key=other_key)
        self._upload_refused("belongs to Nip 7251801126, not to NIP %s" % KSEF_TEST_NIP, nip="7251801126")
        self._upload_refused("expired", not_before=datetime.datetime(2020, 1, 1), valid_days=30)
        # wrong password (PKCS#12 and encrypted PEM key)
        p12 = devcerts.to_pkcs12(certificate, key, "right")
        wizard = self.env["l10n_pl_ksef.certificate.upload"].sudo()
        before = self._count()
        for values, message in [
            ({"file_format": "pkcs12", "certificate_file": base64.b64encode(p12), "password": "wrong"}, "password is wrong"),
            ({"file_format": "pkcs12", "certificate_file": base64.b64encode(p12[:200]), "password": "right"}, "damaged"),
            ({"file_format": "pem", "certificate_file": base64.b64encode(b"not a certificate at all"),
              "key_file": base64.b64encode(devcerts.to_pem(certificate, key)[1])}, "damaged"),
            ({"file_format": "pem", "certificate_file": base64.b64encode(devcerts.to_pem(certificate, key)[0]),
              "key_file": base64.b64encode(devcerts.to_pem(certificate, key, "right")[1]), "password": "wrong"}, "password is wrong"),
            ({"file_format": "pem", "certificate_file": base64.b64encode(devcerts.to_pem(certificate, key)[0])}, "private key file"),
        ]:
            with self.subTest(message=message), self.assertRaisesRegex(UserError, message):
                wizard.create({"name": "bad", "company_id": self.company.id, **values}).action_upload()
        self.assertEqual(self._count(), before)

    def test_only_administrators_see_certificates(self):
        self._ksef_upload_certificate()
        with self.assertRaises(AccessError):
            self.env["certificate.certificate"].search([])
        with self.assertRaises(AccessError):
            self.env["l10n_pl_ksef.certificate.upload"].create({"name": "x", "certificate_file": b"eA=="})

    def test_expiry_warnings_once_per_threshold(self):
        certificate, _x509, _key = self._ksef_upload_certificate()
        admins = new_test_user(self.env(su=True), login="ksef_admin", groups="base.group_user,base.group_system",
                               company_id=self.company.id, company_ids=[Command.set(self.company.ids)])
        admins |= self.env.ref("base.group_system").sudo().users.filtered(
            lambda u: not u.share and self.company in u.company_ids)
        Company = self.env["res.company"].sudo()

        def activities():
            return self.env["mail.activity"].sudo().search([
                ("res_model", "=", "certificate.certificate"), ("res_id", "=", certificate.id)])

        Company._cron_l10n_pl_ksef_certificate_expiry()
        self.assertFalse(activities(), "730 days left: no warning")
        self.assertFalse(self.company.l10n_pl_ksef_certificate_warning)
        end = certificate.date_end
        for days_before, threshold, expected in [(20, 30, 1), (19, 30, 1), (6, 7, 2), (5, 7, 2), (0.5, 1, 3)]:
            with freeze_time(end - datetime.timedelta(days=days_before)):
                Company._cron_l10n_pl_ksef_certificate_expiry()
                certificate.invalidate_recordset()
                self.assertEqual(certificate.l10n_pl_ksef_expiry_notified_days, threshold)
                self.assertEqual(len(activities()), expected * len(admins), "one activity per threshold and admin")
                self.assertEqual(set(activities().user_id), set(admins))
                self.company.invalidate_recordset(["l10n_pl_ksef_certificate_warning"])
                self.assertIn("expires in", self.company.l10n_pl_ksef_certificate_warning)

    def test_authentication_certificate_expiry_is_watched_too(self):
        """The KSeF login certificate runs out like the Offline one: without it nothing is sent."""
        auth, _x509, _key = self._ksef_upload_certificate(kind=devcerts.AUTHENTICATION, use_as_offline=False,
                                                         name="KSeF Logowanie")
        self.company.sudo().l10n_pl_ksef_auth_certificate_id = auth
        with freeze_time(auth.date_end - datetime.timedelta(days=5)):
            self.env["res.company"].sudo()._cron_l10n_pl_ksef_certificate_expiry()
            self.company.invalidate_recordset(["l10n_pl_ksef_certificate_warning"])
            self.assertIn("KSeF Logowanie", self.company.l10n_pl_ksef_certificate_warning)
        warnings = self.env["mail.activity"].sudo().search([
            ("res_model", "=", "certificate.certificate"), ("res_id", "=", auth.id)])
        self.assertTrue(warnings, "the administrators got the warning")
        self.assertIn("cannot log in to KSeF", str(warnings[0].note))
        self.assertEqual(auth.sudo().l10n_pl_ksef_expiry_notified_days, 7)

    def test_offline_readiness(self):
        company = self.company.sudo()
        company.write({"l10n_pl_ksef_responsible_id": False, "l10n_pl_ksef_last_drill_date": False})
        checks = {check["key"]: check for check in company._l10n_pl_ksef_offline_readiness_checks()}
        self.assertFalse(checks["certificate"]["ok"])
        self.assertIn("No KSeF Offline certificate", checks["certificate"]["text"])
        self.assertFalse(checks["responsible"]["ok"])
        self.assertTrue(checks["nip"]["ok"] and checks["environment"]["ok"])
        self.assertFalse(company.l10n_pl_ksef_offline_ready)
        self._ksef_upload_certificate()
        company.write({"l10n_pl_ksef_responsible_id": self.user.id, "l10n_pl_ksef_last_drill_date": "2026-01-15"})
        company.invalidate_recordset()
        checks = {check["key"]: check for check in company._l10n_pl_ksef_offline_readiness_checks()}
        self.assertTrue(all(check["ok"] for check in checks.values()), checks)
        self.assertIn("days left", checks["certificate"]["text"])
        self.assertTrue(company.l10n_pl_ksef_offline_ready)
        self.assertIn("Ready to issue invoices offline", company.l10n_pl_ksef_offline_readiness_html)
