"""KSeF certificates obtained from Odoo (no key file), login with them, their health in KSeF, and
who may touch them - against a real simulator subprocess over HTTP."""
import base64
import datetime
import time

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from ..ksef import certificates as ksef_certificates
from ..ksef import devcerts
from ..ksef import enrollment as ksef_enrollment
from ..ksef.client import KsefClient
from .common import KsefOfflineTestMixin, KsefSimulatorCommon, KsefTestCommon
from .test_i18n import ENGLISH, _text

OTHER_NIP = "3861610227"


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefCertificateEnrollment(KsefOfflineTestMixin, KsefSimulatorCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.company
        cls.admin = new_test_user(cls.env(su=True), login="ksef_cert_admin", groups="base.group_user,base.group_system",
                                  company_id=company.id, company_ids=[Command.set(company.ids)])
        cls.manager = new_test_user(cls.env(su=True), login="ksef_cert_manager",
                                    groups="base.group_user,account.group_account_manager",
                                    company_id=company.id, company_ids=[Command.set(company.ids)])
        cls.env["ir.config_parameter"].sudo().set_param("report.url", "http://127.0.0.1:9")
        company.sudo().write({"l10n_pl_ksef_latarnia_url": cls.ksef_url, "l10n_pl_ksef_offline_fallback": "auto",
                              "l10n_pl_ksef_responsible_id": cls.user.id})

    def _request_both(self, **values):
        wizard = self.env["l10n_pl_ksef.certificate.request.wizard"].with_user(self.admin).create(values)
        action = wizard.action_request()
        return self.env["l10n_pl_ksef.certificate.request"].sudo().search(action["domain"], order="id")

    def _seal_client(self, nip=None):
        """A client of the simulator logged in like an administrator's own KSeF tool would be."""
        certificate, key = ksef_enrollment.self_signed_seal(nip or self.ksef_nip, "Firma Testowa")
        client = KsefClient(base_url=self.ksef_url + "/v2", poll_interval=0.05, timeout=10)
        client.authenticate_with_certificate("Nip", nip or self.ksef_nip, certificate, key, timeout=10)
        return client

    # ---- the journey of the issue's "done when" ----------------------------------------------

    def test_fresh_company_obtains_both_certificates_logs_in_and_a_revoked_offline_one_blocks(self):
        company = self.company.sudo()
        self.assertFalse(company.l10n_pl_ksef_offline_certificate_id or company.l10n_pl_ksef_auth_certificate_id)
        self.assertIn("2026-12-31", self.company.l10n_pl_ksef_login_warning, "still on a token: warned")
        login = {check["key"]: check for check in company._l10n_pl_ksef_offline_readiness_checks()}["login"]
        self.assertIn("2026-12-31", login["text"])
        self.assertIn("2026-12-31", company.l10n_pl_ksef_offline_readiness_html, "on the readiness panel")
        with freeze_time("2027-01-02"):
            login = {check["key"]: check for check in company._l10n_pl_ksef_offline_readiness_checks()}["login"]
            self.assertFalse(login["ok"], "a token no longer sends in 2027")
        requests = self._request_both()
        self.assertEqual(requests.mapped("state"), ["done", "done"], requests.mapped("status_text"))
        self.assertEqual(requests.mapped("certificate_type"), ["Authentication", "Offline"])
        auth, offline = requests.certificate_id
        company.invalidate_recordset()
        self.assertEqual(company.l10n_pl_ksef_offline_certificate_id, offline)
        self.assertEqual(company.l10n_pl_ksef_auth_certificate_id, auth)
        self.assertEqual(company.l10n_pl_ksef_auth_method, "certificate")
        self.assertFalse(self.company.l10n_pl_ksef_login_warning)
        self.assertNotIn("login", [check["key"] for check in company._l10n_pl_ksef_offline_readiness_checks()])
        for request, record in zip(requests, (auth, offline)):
            loaded = record._l10n_pl_ksef_load(with_private_key=True)  # the key in the store matches
            self.assertEqual((loaded.kind, loaded.nip, loaded.key_type), (request.certificate_type, self.ksef_nip, "EC"))
            self.assertEqual(record.l10n_pl_ksef_serial, request.serial)
            self.assertEqual(record.l10n_pl_ksef_kind, request.certificate_type)
            self.assertEqual(record.private_key_id, request.private_key_id)
            self.assertEqual(record.l10n_pl_ksef_status, "Active")
            self.assertGreater(record.l10n_pl_ksef_days_left, 700)
        # KSeF lists them; the limits are read
        self.assertEqual(company.l10n_pl_ksef_cert_remaining, 98)
        self.assertEqual(company.l10n_pl_ksef_cert_enrollment_remaining, 298)
        listed = self.env["l10n_pl_ksef.certificate.remote"].sudo().search([("company_id", "=", company.id)])
        self.assertEqual(sorted(listed.mapped("serial")), sorted(requests.mapped("serial")))
        self.assertEqual(set(listed.mapped("status")), {"Active"})
        self.assertEqual(listed.filtered(lambda row: row.certificate_id == offline).in_use, "signs KOD II")
        # the accountant posts to KSeF: the company logs in with its new Authentication certificate (XAdES)
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertTrue(move.l10n_pl_ksef_number)
        company.with_user(self.admin).action_l10n_pl_ksef_certificates_refresh()
        row = listed.filtered(lambda r: r.certificate_id == auth)
        self.assertTrue(row.last_use, "KSeF saw the login with the Authentication certificate")
        # offline works with the Offline certificate ...
        ready = {check["key"]: check for check in company._l10n_pl_ksef_offline_readiness_checks()}
        self.assertTrue(ready["certificate"]["ok"] and ready["certificate_status"]["ok"], ready)
        # ... until the administrator revokes it in KSeF
        row_offline = listed.filtered(lambda r: r.certificate_id == offline)
        row_offline.with_user(self.admin).with_context(l10n_pl_ksef_revocation_reason="KeyCompromise") \
            .action_l10n_pl_ksef_revoke()
        self.assertEqual(row_offline.status, "Revoked")
        self.assertEqual(offline.l10n_pl_ksef_status, "Revoked")
        self.assertEqual(row.status, "Active")
        later = self._ksef_invoice()
        with self.assertRaises(UserError) as refused:
            later._l10n_pl_ksef_issue_offline("offline24")
        self.assertIn(later.display_name, str(refused.exception))
        self.assertIn("Revoked", str(refused.exception))
        self.assertIn("fail verification", str(refused.exception))
        self.assertFalse(later.l10n_pl_ksef_state, "nothing half-written")
        company.invalidate_recordset()
        self.assertFalse(company.l10n_pl_ksef_offline_ready)
        self.assertIn("Revoked", company.l10n_pl_ksef_offline_readiness_html)
        alerts = offline.activity_ids.filtered(lambda activity: "Revoked" in activity.summary)
        self.assertIn(self.admin, alerts.user_id, "administrators are alerted")
        # KSeF down while posting: the fallback cannot sign KOD II, so the invoice stays to send
        self.ksef_control("faults", {"down": True})
        with self.assertRaises(UserError):
            later.action_l10n_pl_ksef_post()
        self.assertNotEqual(later.l10n_pl_ksef_state, "offline")

    def test_rsa_key_on_request(self):
        requests = self._request_both(request_authentication=False, key_algorithm="rsa_2048")
        self.assertEqual(requests.certificate_type, "Offline")
        loaded = requests.certificate_id._l10n_pl_ksef_load(with_private_key=True)
        self.assertEqual((loaded.key_type, loaded.public_key.key_size), ("RSA", 2048))
        self.assertEqual(self.company.sudo().l10n_pl_ksef_auth_method, "token", "no Authentication one: unchanged")

    # ---- health ------------------------------------------------------------------------------

    def test_daily_health_check_blocked_in_ksef_and_last_known_status_while_unreachable(self):
        self._request_both()
        company = self.company.sudo()
        offline = company.l10n_pl_ksef_offline_certificate_id
        Company = self.env["res.company"]
        with freeze_time("2026-12-03 03:00:00"):
            self.ksef_control("faults", {"down": True})
            Company._cron_l10n_pl_ksef_certificate_health()
            self.assertEqual(offline.l10n_pl_ksef_status, "Active", "last known status kept")
            self.assertTrue(offline.l10n_pl_ksef_status_error)
            company.invalidate_recordset()
            ready = {check["key"]: check for check in company._l10n_pl_ksef_offline_readiness_checks()}
            self.assertTrue(ready["certificate_status"]["ok"], "KSeF unreachable does not stop offline issuing")
            self.assertIn("Not confirmed for more than 48 hours", ready["certificate_status"]["text"])
            self.assertIn("The last known status is used", ready["certificate_status"]["text"])
            move = self._ksef_invoice()
            move.action_l10n_pl_ksef_post()  # KSeF down: issued offline with the last known Active status
            self.assertEqual(move.l10n_pl_ksef_state, "offline")
        self.ksef_control("faults/clear")
        self.ksef_control("certificates/status", {"serial": offline.l10n_pl_ksef_serial, "status": "Blocked"})
        with self.assertRaises(AccessError):
            self.company.with_user(self.manager).action_l10n_pl_ksef_check_certificate_health()
        self.assertEqual(offline.l10n_pl_ksef_status, "Active", "a KSeF manager cannot run it")
        self.company.with_user(self.admin).action_l10n_pl_ksef_check_certificate_health()
        self.assertEqual(offline.l10n_pl_ksef_status, "Blocked")
        self.assertFalse(offline.l10n_pl_ksef_status_error)
        alerts = offline.activity_ids.filtered(lambda activity: "Blocked" in activity.summary)
        self.assertIn(self.admin, alerts.user_id)
        company._l10n_pl_ksef_check_certificate_health()
        self.assertEqual(len(offline.activity_ids.filtered(lambda a: "Blocked" in a.summary)), len(alerts),
                         "alerted once")
        # KSeF unreachable again: the last known status (Blocked) still decides
        self.ksef_control("faults", {"down": True})
        self.assertIsNone(company._l10n_pl_ksef_check_certificate_health())
        blocked = self._ksef_invoice()
        with self.assertRaises(UserError) as refused:
            blocked.action_l10n_pl_ksef_issue_offline24()
        self.assertIn("Blocked", str(refused.exception))
        company.invalidate_recordset()
        self.assertIn("Blocked", company.l10n_pl_ksef_offline_status_text)
        # a neutralized copy does not ask KSeF at all
        self.ksef_control("faults/clear")
        self.ksef_control("certificates/status", {"serial": offline.l10n_pl_ksef_serial, "status": "Active"})
        self.env["ir.config_parameter"].sudo().set_param("database.is_neutralized", True)
        Company._cron_l10n_pl_ksef_certificate_health()
        self.assertEqual(offline.l10n_pl_ksef_status, "Blocked")
        self.assertIn("The last known status is used", company.l10n_pl_ksef_offline_status_text)

    # ---- bad inputs --------------------------------------------------------------------------

    def test_csr_refused_by_ksef_keeps_nothing(self):
        client = self._seal_client()
        data = ksef_enrollment.enrollment_data(client)
        other = ksef_enrollment.EnrollmentData(tuple(
            (name, "VATPL-%s" % OTHER_NIP if name == "organizationIdentifier" else value)
            for name, value in data.attributes))
        request = self.env["l10n_pl_ksef.certificate.request"].sudo().create({
            "name": "Cudzy certyfikat", "company_id": self.company.id, "certificate_type": "Offline"})
        keys_before = self.env["certificate.key"].sudo().search_count([])
        with self.assertRaises(UserError) as refused:
            request._l10n_pl_ksef_send(client, other)
        self.assertIn("does not match the identity", str(refused.exception))
        self.assertIn("Cudzy certyfikat", str(refused.exception))
        self.assertEqual(request.state, "draft")
        self.assertEqual(self.env["certificate.key"].sudo().search_count([]), keys_before)

    def test_request_with_another_companys_seal_is_refused(self):
        certificate, key = devcerts.make_certificate(devcerts.AUTHENTICATION, OTHER_NIP, name="Inna Firma")
        seal, _x509, _key = self._ksef_upload_certificate(certificate=certificate, key=key, use_as_offline=False,
                                                          name="Pieczec innej firmy")
        with self.assertRaises(UserError) as refused:
            self._request_both(signer_certificate_id=seal.id)
        self.assertIn("refused the login", str(refused.exception))
        self.assertFalse(self.env["l10n_pl_ksef.certificate.request"].sudo().search([]))
        self.assertFalse(self.company.sudo().l10n_pl_ksef_offline_certificate_id)

    def test_limits_exhausted(self):
        client = self._seal_client()
        client._request("POST", "/testdata/limits/subject/certificate", json={"certificate": {"maxCertificates": 1}})
        keys_before = self.env["certificate.key"].sudo().search_count([])
        with self.assertRaises(UserError) as refused:
            self._request_both()
        self.assertIn("KSeF allows no more certificates", str(refused.exception))
        self.assertIn("1 of 1 active certificates left (2 needed)", str(refused.exception))
        self.assertFalse(self.env["l10n_pl_ksef.certificate.request"].sudo().search([]))
        self.assertEqual(self.env["certificate.key"].sudo().search_count([]), keys_before)
        # one is still possible
        requests = self._request_both(request_authentication=False)
        self.assertEqual(requests.state, "done")
        self.company.sudo().invalidate_recordset()
        self.assertEqual(self.company.sudo().l10n_pl_ksef_cert_remaining, 0)
        self.assertFalse(self.company.sudo().l10n_pl_ksef_cert_can_request)

    def test_bad_certificate_name(self):
        with self.assertRaises(UserError) as refused:
            self._request_both(offline_name="Fakt. 1/2026")
        self.assertIn("Fakt. 1/2026", str(refused.exception))

    # ---- who may -----------------------------------------------------------------------------

    def test_private_keys_and_certificate_operations_are_for_administrators_only(self):
        requests = self._request_both()
        row = self.env["l10n_pl_ksef.certificate.remote"].sudo().search([], limit=1)
        for user in (self.user, self.manager):
            with self.subTest(user=user.login):
                with self.assertRaises(AccessError):
                    self.env["certificate.key"].with_user(user).search_read([], ["pem_key", "content"])
                with self.assertRaises(AccessError):
                    requests.private_key_id.with_user(user).read(["content"])
                with self.assertRaises(AccessError):
                    requests.with_user(user).read(["private_key_id", "name"])
                with self.assertRaises(AccessError):
                    self.env["l10n_pl_ksef.certificate.request.wizard"].with_user(user).create({})
                with self.assertRaises(AccessError):
                    self.company.with_user(user).action_l10n_pl_ksef_certificates_refresh()
                with self.assertRaises(AccessError):
                    row.with_user(user).action_l10n_pl_ksef_revoke()
                with self.assertRaises(AccessError):
                    requests.certificate_id[1].with_user(user).write({"l10n_pl_ksef_status": "Active"})
                with self.assertRaises(AccessError):
                    self.company.with_user(user).read(["l10n_pl_ksef_offline_certificate_id"])
        self.assertEqual(row.status, "Active", "not revoked by anyone")
        # the key is stored in the administrators' key store and never in the request's answer text
        pem = base64.b64decode(requests[0].private_key_id.with_context(bin_size=False).content)
        self.assertIn(b"PRIVATE KEY", pem)
        self.assertNotIn("PRIVATE", "".join(requests.mapped("status_text")))
        loaded = ksef_certificates.load_pem(base64.b64decode(requests[0].certificate_id.pem_certificate), pem)
        self.assertEqual(loaded.serial, requests[0].serial)

    # ---- tokens end on 31 December 2026 --------------------------------------------------------

    def test_company_on_a_token_gets_an_activity_in_december_2026(self):
        company = self.company.sudo()
        partner = company.partner_id

        def activities():
            return partner.activity_ids.filtered(lambda activity: "KSeF token" in (activity.summary or ""))

        with freeze_time("2026-11-30 12:00:00"):
            self.env["res.company"]._cron_l10n_pl_ksef_token_sunset()
        self.assertFalse(activities(), "not before December")
        with freeze_time("2026-12-01 06:00:00"):
            self.env["res.company"]._cron_l10n_pl_ksef_token_sunset()
            self.env["res.company"]._cron_l10n_pl_ksef_token_sunset()
        self.assertIn(self.admin, activities().user_id)
        self.assertEqual(len(activities()), len(set(activities().user_id)), "once per administrator")
        self.assertIn("31", activities()[0].summary)
        # a company logging in with a certificate is not warned
        other = self.env["res.company"].sudo().create({"name": "Druga Sp. z o.o.", "country_id": self.pl.id})
        self.assertEqual(other.l10n_pl_ksef_auth_method, "certificate", "certificate login by default")
        self.assertFalse(other.l10n_pl_ksef_login_warning)

    def test_request_still_processing_is_kept_and_followed_later(self):
        company = self.company.sudo()
        client = company.with_user(self.admin)._l10n_pl_ksef_certificate_client()
        data = ksef_enrollment.enrollment_data(client)
        request = self.env["l10n_pl_ksef.certificate.request"].sudo().create({
            "name": "Odoo Offline pozniej", "company_id": company.id, "certificate_type": "Offline"})
        self.ksef_control("config", {"processing_delay": 3600})
        request._l10n_pl_ksef_send(client, data)
        request._l10n_pl_ksef_follow(client, timeout=0.3)
        self.assertEqual(request.state, "sent")
        self.assertIn("still processing", request.status_text)
        self.assertTrue(request.private_key_id and request.reference_number, "KSeF holds it: the key is kept")
        # two hours later on KSeF's clock the certificate is issued; the scheduled action fetches it
        self.ksef_control("config", {"processing_delay": 0.1, "clock_offset": 7200})
        self.env["l10n_pl_ksef.certificate.request"]._cron_l10n_pl_ksef_certificate_requests()
        self.assertEqual(request.state, "done", request.status_text)
        self.assertEqual(company.l10n_pl_ksef_offline_certificate_id, request.certificate_id)
        self.assertEqual(request.certificate_id.private_key_id, request.private_key_id)

    def test_lost_answer_keeps_the_key_and_finds_the_certificate_by_its_key(self):
        """KSeF stores a request, then its answer never comes (the client gives up first): the key
        is kept and the certificate is found by its name - the one with this request's key, not an
        earlier certificate of the same name."""
        company = self.company.sudo()
        client = company.with_user(self.admin)._l10n_pl_ksef_certificate_client()
        data = ksef_enrollment.enrollment_data(client)
        Request = self.env["l10n_pl_ksef.certificate.request"].sudo()
        values = {"name": "Odoo Offline zgubiony", "company_id": company.id, "certificate_type": "Offline"}
        earlier = Request.create(values)
        earlier._l10n_pl_ksef_send(client, data)
        earlier._l10n_pl_ksef_follow(client)
        self.assertEqual(earlier.state, "done", earlier.status_text)
        request = Request.create(values)
        self.ksef_control("faults", {"stall_after_accept_seconds": 3.0, "stall_after_accept_count": 1})
        client.timeout = 1.0
        request._l10n_pl_ksef_send(client, data)     # no UserError: KSeF may hold it
        client.timeout = 10.0
        self.assertEqual(request.state, "sent")
        self.assertFalse(request.reference_number)
        self.assertTrue(request.private_key_id, "KSeF may hold the request: its key is kept")
        self.assertIn("lost", request.status_text)
        time.sleep(2.5)     # the held answer is over
        Request._cron_l10n_pl_ksef_certificate_requests()
        self.assertEqual(request.state, "done", request.status_text)
        self.assertNotEqual(request.serial, earlier.serial)
        self.assertEqual(request.certificate_id.private_key_id, request.private_key_id)
        self.assertEqual(company.l10n_pl_ksef_offline_certificate_id, request.certificate_id)

    def test_lost_request_without_trace_is_given_up_after_a_day(self):
        company = self.company.sudo()
        client = company.with_user(self.admin)._l10n_pl_ksef_certificate_client()
        data = ksef_enrollment.enrollment_data(client)
        request = self.env["l10n_pl_ksef.certificate.request"].sudo().create(
            {"name": "Odoo Offline nigdy", "company_id": company.id, "certificate_type": "Offline"})
        # the connection drops before KSeF processes anything: Odoo cannot know it
        self.ksef_control("faults", {"down": True, "down_mode": "close"})
        request._l10n_pl_ksef_send(client, data)
        self.ksef_control("faults/clear")
        key = request.private_key_id
        self.assertEqual(request.state, "sent")
        self.assertTrue(key)
        request._l10n_pl_ksef_follow(client)
        self.assertEqual(request.state, "sent", "no trace yet: looked for again later")
        self.assertIn("Odoo Offline nigdy", request.status_text)
        request.requested_at = datetime.datetime.now() - datetime.timedelta(hours=25)
        request._l10n_pl_ksef_follow(client)
        self.assertEqual(request.state, "rejected")
        self.assertIn("never reached KSeF", request.status_text)
        self.assertFalse(request.private_key_id)
        self.assertFalse(key.exists(), "a key no certificate will ever match is forgotten")


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefCertificatePolish(KsefOfflineTestMixin, KsefTestCommon):
    """What an administrator and an accountant read about KSeF certificates, in Polish."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"].sudo()._activate_lang("pl_PL")
        cls.env["ir.module.module"].sudo()._load_module_terms(["l10n_pl_ksef"], ["pl_PL"], overwrite=True)
        cls.user.sudo().lang = "pl_PL"
        cls.company.partner_id.sudo().lang = "pl_PL"
        cls.env = cls.env(user=cls.user, context=dict(cls.env.context, lang="pl_PL"))

    def assertPolish(self, text, what):
        self.assertTrue(_text(text).strip(), what)
        self.assertFalse(ENGLISH.findall(_text(text)), "%s: %r" % (what, text))

    def test_revoked_certificate_refusal_status_and_token_warning_in_polish(self):
        for model in ("l10n_pl_ksef.certificate.request", "l10n_pl_ksef.certificate.remote",
                      "l10n_pl_ksef.certificate.request.wizard"):
            for name, description in self.env[model].sudo().fields_get(attributes=["string", "help", "selection"]).items():
                if self.env[model]._fields[name]._module == "l10n_pl_ksef":
                    self.assertPolish(description["string"], "%s.%s" % (model, name))
                    for _key, label in description.get("selection") or []:
                        self.assertPolish(label, "%s.%s selection" % (model, name))
        self.company.sudo().l10n_pl_ksef_auth_method = "token"
        self.company.invalidate_recordset()
        self.assertPolish(self.company.l10n_pl_ksef_login_warning, "token warning")
        self.assertIn("2026-12-31", self.company.l10n_pl_ksef_login_warning)
        certificate, _x509, _key = self._ksef_upload_certificate()
        certificate._l10n_pl_ksef_set_status("Revoked", self.company)
        self.assertPolish(certificate.activity_ids[:1].note, "administrators' alert")
        move = self._ksef_invoice()
        with self.assertRaises(UserError) as refused:
            move._l10n_pl_ksef_issue_offline("offline24")
        self.assertPolish(str(refused.exception).replace(move.display_name, ""), "offline refused")
        self.assertIn("Unieważniony", str(refused.exception))
        self.company.invalidate_recordset()
        self.assertPolish(self.company.l10n_pl_ksef_offline_status_text, "status on the panel")


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefCertificateCompanies(KsefTestCommon):

    def test_an_administrator_of_one_company_does_not_see_anothers_requests(self):
        other = self.env["res.company"].sudo().create({"name": "Druga Sp. z o.o.", "vat": "PL3861610227",
                                                       "country_id": self.pl.id})
        Request = self.env["l10n_pl_ksef.certificate.request"].sudo()
        mine = Request.create({"name": "Odoo Offline moj", "company_id": self.company.id, "certificate_type": "Offline"})
        theirs = Request.create({"name": "Odoo Offline ich", "company_id": other.id, "certificate_type": "Offline"})
        admin = new_test_user(self.env(su=True), login="ksef_cert_admin_one", groups="base.group_user,base.group_system",
                              company_id=self.company.id, company_ids=[Command.set(self.company.ids)])
        visible = self.env["l10n_pl_ksef.certificate.request"].with_user(admin).search([])
        self.assertIn(mine, visible)
        self.assertNotIn(theirs, visible)
