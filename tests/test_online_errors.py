import base64
import datetime
import socket

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from ..ksef import devcerts, ksef_number
from .common import KsefSimulatorCommon


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefOnlineErrors(KsefSimulatorCommon):

    def _assert_intact(self, move, xml_hash):
        self.assertEqual(move.state, "posted")
        self.assertIn(move.l10n_pl_ksef_state, (False, "to_send"))
        self.assertEqual(move.l10n_pl_ksef_xml_hash, xml_hash)
        self.assertFalse(move.l10n_pl_ksef_document_ids)
        self.assertFalse(move.l10n_pl_ksef_number)

    def _frozen_invoice(self):
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_freeze()
        return move, move.l10n_pl_ksef_xml_hash

    # ---- unreachable ---------------------------------------------------------------------

    def test_ksef_down_then_posted_later(self):
        move, xml_hash = self._frozen_invoice()
        for mode in ("503", "close"):
            self.ksef_control("faults", {"down": True, "down_mode": mode})
            with self.assertRaisesRegex(UserError, "KSeF cannot be reached"):
                move.with_user(self.user).action_l10n_pl_ksef_post()
            self._assert_intact(move, xml_hash)
        self.ksef_control("faults/clear")
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertEqual(move.l10n_pl_ksef_xml_hash, xml_hash)

    def test_closed_port_is_unreachable(self):
        move, xml_hash = self._frozen_invoice()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        self.company.sudo().l10n_pl_ksef_base_url = "http://127.0.0.1:%s" % closed_port
        with self.assertRaisesRegex(UserError, "KSeF cannot be reached"):
            move.with_user(self.user).action_l10n_pl_ksef_post()
        self._assert_intact(move, xml_hash)
        self.company.sudo().l10n_pl_ksef_base_url = self.ksef_url
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")

    # ---- credentials -----------------------------------------------------------------------

    def test_wrong_token_gives_clear_message(self):
        self.company.sudo().l10n_pl_ksef_token = "not-the-registered-token"
        move, xml_hash = self._frozen_invoice()
        with self.assertRaisesRegex(UserError, "KSeF refused the login of company"):
            move.with_user(self.user).action_l10n_pl_ksef_post()
        self._assert_intact(move, xml_hash)

    def test_expired_access_token_refreshed_once_then_clear_error(self):
        first = self._ksef_invoice()
        first.with_user(self.user).action_l10n_pl_ksef_post()
        company = self.company.sudo()
        access, refresh = company.l10n_pl_ksef_access_token, company.l10n_pl_ksef_refresh_token
        self.assertTrue(access and refresh)
        # Mid-session, KSeF stops accepting the access token: one refresh, and the invoice goes.
        self.ksef_control("expire", {"access_tokens": True})
        second = self._ksef_invoice()
        second.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(second.l10n_pl_ksef_state, "accepted")
        self.assertNotEqual(company.l10n_pl_ksef_access_token, access)
        self.assertEqual(company.l10n_pl_ksef_refresh_token, refresh, "a refresh, not a new login")
        # When even renewed tokens are refused, the user gets a clear error, nothing is sent.
        self.ksef_control("config", {"access_token_ttl": 0.001})
        self.addCleanup(self.ksef_control, "config", {"access_token_ttl": 900})
        self.ksef_control("expire", {"access_tokens": True})
        third, xml_hash = self._frozen_invoice()
        with self.assertRaisesRegex(UserError, "does not accept the credentials"):
            third.with_user(self.user).action_l10n_pl_ksef_post()
        self._assert_intact(third, xml_hash)

    def test_expired_refresh_token_means_new_login(self):
        self._ksef_invoice().action_l10n_pl_ksef_post()
        company = self.company.sudo()
        old_refresh = company.l10n_pl_ksef_refresh_token
        company.l10n_pl_ksef_refresh_token_until = datetime.datetime.now() - datetime.timedelta(minutes=1)
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertNotEqual(company.l10n_pl_ksef_refresh_token, old_refresh)

    def test_token_never_logged_nor_in_chatter(self):
        move = self._ksef_invoice()
        # Everything the add-on (and its KSeF client) and the HTTP stack log, at every level.
        with self.assertLogs("odoo.addons.l10n_pl_ksef", level="DEBUG") as captured, \
                self.assertLogs("urllib3", level="DEBUG") as captured_http:
            move.with_user(self.user).action_l10n_pl_ksef_post()
            self.ksef_control("faults", {"down": True})
            with self.assertRaises(UserError) as raised:
                self._ksef_invoice().with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        company = self.company.sudo()
        secrets = [self.ksef_token, company.l10n_pl_ksef_access_token, company.l10n_pl_ksef_refresh_token]
        self.assertTrue(all(secrets))
        texts = captured.output + captured_http.output + move.message_ids.mapped("body") + [str(raised.exception), move.l10n_pl_ksef_error or ""]
        for secret in secrets:
            for text in texts:
                self.assertNotIn(secret, text)
        # The token is a field for administrators only.
        self.assertNotIn("l10n_pl_ksef_token", self.company.with_user(self.user).fields_get())

    # ---- certificate login ----------------------------------------------------------------

    def _certificate(self, kind=devcerts.AUTHENTICATION, password="haslo-123", upload_password=None, **options):
        certificate, key = devcerts.make_certificate(kind, self.ksef_nip, **options)
        bundle = devcerts.to_pkcs12(certificate, key, password)
        return self.env["certificate.certificate"].sudo().create({
            "name": "KSeF %s" % kind,
            "content": base64.b64encode(bundle),
            "pkcs12_password": upload_password if upload_password is not None else password,
            "company_id": self.company.id,
        })

    def test_certificate_login(self):
        record = self._certificate()
        self.company.sudo().write({"l10n_pl_ksef_auth_method": "certificate", "l10n_pl_ksef_auth_certificate_id": record.id,
                            "l10n_pl_ksef_token": False})
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertTrue(ksef_number.is_valid_ksef_number(move.l10n_pl_ksef_number))

    def test_offline_certificate_refused_for_login(self):
        record = self._certificate(kind=devcerts.OFFLINE)
        with self.assertRaisesRegex(ValidationError, "only an Authentication certificate can log in"):
            self.company.sudo().write({"l10n_pl_ksef_auth_method": "certificate", "l10n_pl_ksef_auth_certificate_id": record.id})

    def test_expired_certificate_refused_for_login(self):
        record = self._certificate(not_before=datetime.datetime.utcnow() - datetime.timedelta(days=400), valid_days=30)
        with self.assertRaisesRegex(ValidationError, "is not valid now"):
            self.company.sudo().write({"l10n_pl_ksef_auth_method": "certificate", "l10n_pl_ksef_auth_certificate_id": record.id})

    def test_wrong_pkcs12_password_refused(self):
        record = self._certificate(upload_password="zle-haslo")
        with self.assertRaisesRegex(ValidationError, "PKCS#12 password is wrong"):
            self.company.sudo().write({"l10n_pl_ksef_auth_method": "certificate", "l10n_pl_ksef_auth_certificate_id": record.id})

    def test_certificate_of_another_nip_refused(self):
        certificate, key = devcerts.make_certificate(devcerts.AUTHENTICATION, "7251801126")
        record = self.env["certificate.certificate"].sudo().create({
            "name": "other", "content": base64.b64encode(devcerts.to_pkcs12(certificate, key, "x")),
            "pkcs12_password": "x", "company_id": self.company.id})
        with self.assertRaisesRegex(ValidationError, "7251801126"):
            self.company.sudo().write({"l10n_pl_ksef_auth_certificate_id": record.id})
