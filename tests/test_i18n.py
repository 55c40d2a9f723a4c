"""A Polish user sees no English: the translation files are complete and up to date with the
code, and the main flows' messages, labels and panels come out in Polish."""
import base64
import datetime
import re
from pathlib import Path

import polib
from markupsafe import Markup

from odoo import SUPERUSER_ID, Command, api
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools.translate import TranslationModuleReader

from ..ksef import certificates as ksef_certificates
from ..ksef import devcerts
from ..ksef import errors as ksef_errors
from ..ksef import fa3
from ..models import ksef_messages
from ..models.certificate import certificate_error_message
from .common import KsefDrillTestMixin, KsefOfflineTestMixin, KsefTestCommon
from ..ksef.simulator.testing import warsaw_today

I18N = Path(__file__).resolve().parents[1] / "i18n"
# Words that only occur in English text. Deliberately not: "offline", "KSeF", "UPO", "NIP", "do",
# "to", "na" (Polish words or names that stay as they are in the Polish interface).
ENGLISH = re.compile(
    r"\b(the|is|are|not|cannot|must|with|has|was|and|for|this|of|invoices?|failure|none|maintenance|"
    r"error|certificate|file|key|password|sent|send|issued|deadline|company|yet|please|"
    r"business|day|days|next|until|ready|missing|valid|rejected|accepted|unavailable)\b", re.I)


def _text(value):
    return re.sub(r"<[^>]+>", " ", str(value or ""))


@tagged("post_install_l10n", "post_install", "-at_install")
class TestI18nFiles(KsefTestCommon):

    def test_every_pot_entry_is_translated_in_polish(self):
        pot = polib.pofile(str(I18N / "l10n_pl_ksef.pot"))
        po = {entry.msgid: entry for entry in polib.pofile(str(I18N / "pl.po"))}
        missing = [entry.msgid for entry in pot if entry.msgid not in po]
        empty = [msgid for msgid, entry in po.items() if not entry.msgstr.strip()]
        fuzzy = [msgid for msgid, entry in po.items() if "fuzzy" in entry.flags]
        self.assertFalse(missing, "in the .pot but not in pl.po (run scripts/i18n_export.sh)")
        self.assertFalse(empty, "untranslated in pl.po")
        self.assertFalse(fuzzy, "fuzzy (unchecked) translations in pl.po")
        for msgid, entry in po.items():
            # every placeholder of the English text must survive in the Polish one
            wanted = sorted(re.findall(r"%\([a-z_]+\)s|%s|%d", msgid))
            self.assertEqual(sorted(re.findall(r"%\([a-z_]+\)s|%s|%d", entry.msgstr)), wanted, msgid)

    def test_pot_is_up_to_date_with_the_code(self):
        """Every translatable string of the installed add-on (Python _(), views, data, field labels,
        selections, reports) is in the .pot, and the .pot has nothing the code no longer has."""
        exported = {row[4] for row in TranslationModuleReader(self.env.cr, modules=["l10n_pl_ksef"]) if row[4]}
        pot = {entry.msgid for entry in polib.pofile(str(I18N / "l10n_pl_ksef.pot"))}
        self.assertFalse(sorted(exported - pot)[:20], "strings missing from i18n/l10n_pl_ksef.pot: run "
                                                       "scripts/i18n_export.sh and translate them")
        self.assertFalse(sorted(pot - exported)[:20], "strings no longer in the code: run scripts/i18n_export.sh")


@tagged("post_install_l10n", "post_install", "-at_install")
class TestPolishInterface(KsefDrillTestMixin, KsefOfflineTestMixin, KsefTestCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"].sudo()._activate_lang("pl_PL")
        cls.env["ir.module.module"].sudo()._load_module_terms(["l10n_pl_ksef"], ["pl_PL"], overwrite=True)
        cls._ksef_setup_drill(lang="pl_PL")
        cls.user.sudo().lang = "pl_PL"
        cls.company.partner_id.sudo().lang = "pl_PL"
        cls.env = cls.env(user=cls.user, context=dict(cls.env.context, lang="pl_PL"))
        cls.company.sudo().l10n_pl_ksef_latarnia_url = "http://127.0.0.1:9"

    def assertPolish(self, text, what=""):
        text = _text(text)
        self.assertTrue(text.strip(), "%s: empty" % what)
        found = ENGLISH.findall(text)
        self.assertFalse(found, "%s: English words %s in %r" % (what, found, text))

    def assertFieldsPolish(self, model):
        """Labels, help texts and selection labels of the add-on's fields of ``model`` are Polish;
        returns those fields' descriptions by name."""
        described = model.fields_get(attributes=["string", "help", "selection"])
        ours = {name: d for name, d in described.items() if name.startswith("l10n_pl_ksef")
                or model._fields[name]._module == "l10n_pl_ksef"}
        for name, description in ours.items():
            self.assertPolish(description["string"], "%s.%s string" % (model._name, name))
            if description.get("help"):
                self.assertPolish(description["help"], "%s.%s help" % (model._name, name))
            for _key, label in description.get("selection") or []:
                self.assertPolish(label, "%s.%s selection" % (model._name, name))
        return ours

    def assertRefusedInPolish(self, call, what, exceptions=(UserError, ValidationError)):
        try:
            with self.env.cr.savepoint():   # like assertRaises: a refused write leaves nothing in the cache
                call()
        except exceptions as error:
            self.assertPolish(error.args[0], what)
            return error.args[0]
        self.fail("%s: not refused" % what)

    def test_field_labels_help_and_selections(self):
        for model in ("account.move", "res.company", "certificate.certificate", "l10n_pl_ksef.document",
                      "l10n_pl_ksef.event", "account.tax", "res.config.settings"):
            ours = self.assertFieldsPolish(self.env[model].sudo())
            self.assertTrue(ours, model)

    def test_post_to_ksef_on_a_misconfigured_company(self):
        self.company.sudo().write({"l10n_pl_ksef_environment": "simulator", "l10n_pl_ksef_base_url": False})
        move = self._ksef_invoice()
        message = self.assertRefusedInPolish(move.action_l10n_pl_ksef_post, "Post to KSeF without an address")
        self.assertIn(self.company.name, message)

    def test_invoice_that_cannot_be_mapped(self):
        move = self._ksef_invoice(lines=[(100.0, self.env["account.tax"], {})])
        message = self.assertRefusedInPolish(move.action_l10n_pl_ksef_freeze, "line without tax")
        self.assertIn("Pozycja", message)

    def test_certificate_upload_refusals(self):
        self.assertRefusedInPolish(lambda: self._ksef_upload_certificate(kind=devcerts.AUTHENTICATION),
                                   "Authentication certificate as the Offline one")
        self.assertRefusedInPolish(lambda: self._ksef_upload_certificate(nip="1234563218"), "another NIP")
        certificate, key = self._ksef_make_certificate()
        _other, other_key = self._ksef_make_certificate()
        self.assertRefusedInPolish(lambda: self._ksef_upload_certificate(certificate, other_key), "key mismatch")
        self.assertRefusedInPolish(lambda: self._ksef_upload_certificate(
            not_before=datetime.datetime(2020, 1, 1), valid_days=30), "expired")
        wizard = self.env["l10n_pl_ksef.certificate.upload"].sudo()
        p12 = devcerts.to_pkcs12(certificate, key, "right")
        cert_pem, key_pem = devcerts.to_pem(certificate, key)
        for values, what in [
            ({"file_format": "pkcs12", "certificate_file": base64.b64encode(p12), "password": "wrong"}, "wrong password"),
            ({"file_format": "pkcs12", "certificate_file": base64.b64encode(p12[:200]), "password": "right"}, "damaged p12"),
            ({"file_format": "pem", "certificate_file": base64.b64encode(b"not a certificate"),
              "key_file": base64.b64encode(key_pem)}, "damaged certificate"),
            ({"file_format": "pem", "certificate_file": base64.b64encode(cert_pem),
              "key_file": base64.b64encode(b"not a key")}, "damaged key"),
            ({"file_format": "pem", "certificate_file": base64.b64encode(cert_pem)}, "no key"),
        ]:
            with self.subTest(what=what):
                self.assertRefusedInPolish(
                    lambda: wizard.create({"name": "bad", "company_id": self.company.id, **values}).action_upload(), what)

    def test_every_certificate_error_has_a_polish_sentence(self):
        for error in (
            ksef_certificates.CorruptFileError("x", what="certificate"),
            ksef_certificates.CorruptFileError("x", what="private key"),
            ksef_certificates.CorruptFileError("x", what="PKCS#12"),
            ksef_certificates.WrongPasswordError("x"),
            ksef_certificates.PasswordRequiredError("x"),
            ksef_certificates.MissingPrivateKeyError("x"),
            ksef_certificates.KeyMismatchError("x"),
            ksef_certificates.UnsupportedKeyError("x"),
            ksef_certificates.CertificateExpiredError("x", serial="0A", valid_to="2024-01-01"),
            ksef_certificates.CertificateNotYetValidError("x", serial="0A", valid_from="2030-01-01"),
            ksef_certificates.WrongKindError("x", serial="0A", required="Offline", actual="Authentication"),
            ksef_certificates.WrongKindError("x", serial="0A", required="Authentication", actual="Offline"),
            ksef_certificates.WrongKindError("x", serial="0A", required="Offline", actual=None),
            ksef_certificates.IdentifierMismatchError("x", serial="0A", expected="5265877635", actual="Nip 1234563218",
                                                      identifiers=(("Nip", "1234563218"),)),
            ksef_certificates.IdentifierMismatchError("x", serial="0A", expected="5265877635", actual="?",
                                                      identifiers=()),
        ):
            self.assertPolish(certificate_error_message(self.env, error, "Cert"), error.code)

    def test_every_ksef_error_kind_has_a_polish_sentence(self):
        polish = "Brak uprawnień"
        for error in (
            ksef_errors.KsefUnavailable(http_status=503), ksef_errors.KsefUnavailable(code=550),
            ksef_errors.KsefUnavailable("no route"), ksef_errors.KsefTimeout("slow"),
            ksef_errors.RateLimited(retry_after=30, http_status=429),
            ksef_errors.AuthenticationFailed(code=450, description=polish),
            ksef_errors.Unauthorized(http_status=401), ksef_errors.Forbidden(reason_code="missing-permissions"),
            ksef_errors.Gone(http_status=410), ksef_errors.PublicKeyUnknown(code=21470),
            ksef_errors.SessionNotFound(code=21173), ksef_errors.SessionClosed(code=21180),
            ksef_errors.Duplicate(code=440, original_ksef_number="5265877635-20250101-0100001A1B2C-D3"),
            ksef_errors.Duplicate(code=440), ksef_errors.Rejected(code=21405, details=[polish]),
            ksef_errors.SessionFailed(code=415), ksef_errors.IntegrityError("hash"), ksef_errors.KsefError(code=999),
            ksef_errors.KsefError(), ConnectionError("refused"), TimeoutError("slow"),
        ):
            text = ksef_messages.ksef_error_text(self.env, error)
            self.assertPolish(text, repr(error))
            if getattr(error, "description", None) or getattr(error, "details", None):
                self.assertIn(polish, text, "KSeF's own words are shown as the detail")
        self.assertPolish(ksef_messages.fa3_error_text(self.env, fa3.Fa3Error("seller.address is required"))
                          .split(":")[0], "FA(3) problem")

    def test_offline_flow_messages_and_readiness_panel(self):
        self.company.sudo().l10n_pl_ksef_offline_certificate_id = False
        self.assertPolish(self.company.l10n_pl_ksef_offline_readiness_html, "readiness panel, not ready")
        move = self._ksef_invoice()
        self.assertRefusedInPolish(lambda: move._l10n_pl_ksef_issue_offline("offline24"), "no Offline certificate")
        self._ksef_upload_certificate()
        self.company.invalidate_recordset()
        self.assertPolish(self.company.l10n_pl_ksef_offline_readiness_html, "readiness panel with a certificate")
        self.assertRefusedInPolish(lambda: move._l10n_pl_ksef_issue_offline("emergency"), "emergency without a notice")
        self.assertRefusedInPolish(lambda: move._l10n_pl_ksef_issue_offline("unavailability"),
                                   "unavailability without a notice")
        move.action_l10n_pl_ksef_issue_offline24()
        self.assertEqual(move.l10n_pl_ksef_state, "offline")
        self.assertPolish(move.message_ids[0].body, "chatter of an offline issue")
        self.assertPolish(move.l10n_pl_ksef_deadline_reason, "deadline reason")
        self.assertRefusedInPolish(lambda: move._l10n_pl_ksef_issue_offline("offline24"), "issued twice")

    def test_cron_jobs_write_in_the_company_language(self):
        """A cron job runs as OdooBot, whose language is English here: what it writes for a Polish
        company (deadline reminders, certificate warnings, Latarnia problems) is Polish anyway."""
        self.assertNotEqual(self.env.ref("base.user_root").lang, "pl_PL")
        cron_env = api.Environment(self.env.cr, SUPERUSER_ID, {})
        move = self._ksef_invoice()
        move.sudo()._l10n_pl_ksef_write({
            "l10n_pl_ksef_state": "offline", "l10n_pl_ksef_offline_mode": "offline24",
            "l10n_pl_ksef_deadline": warsaw_today() - datetime.timedelta(days=3)})
        cron_env["account.move"]._cron_l10n_pl_ksef_deadline_reminders()
        reminder = self.env["mail.activity"].sudo().search([
            ("res_model", "=", "account.move"), ("res_id", "=", move.id),
            ("activity_type_id", "=", self.env.ref("l10n_pl_ksef.mail_activity_type_l10n_pl_ksef_deadline").id)])
        self.assertTrue(reminder, "the overdue invoice got its reminder")
        self.assertPolish(reminder[0].summary, "deadline reminder written by the cron")
        self.assertPolish(reminder[0].note, "deadline reminder note written by the cron")

        certificate, _x509, _key = self._ksef_upload_certificate(
            not_before=datetime.datetime.now() - datetime.timedelta(days=360), valid_days=365)
        cron_env["res.company"]._cron_l10n_pl_ksef_certificate_expiry()
        warning = certificate.sudo().activity_ids
        self.assertTrue(warning, "the certificate that expires in 5 days got its warning")
        self.assertPolish(warning[0].summary, "certificate warning written by the cron")
        self.assertPolish(warning[0].note, "certificate warning note written by the cron")

        cron_env["res.company"]._cron_l10n_pl_ksef_poll_latarnia()   # Latarnia at a closed port
        self.company.invalidate_recordset()
        self.assertPolish(self.company.sudo().l10n_pl_ksef_latarnia_error, "Latarnia problem written by the cron")

    def test_verdict_messages(self):
        move = self._ksef_invoice()
        document = self.env["l10n_pl_ksef.document"]
        move.sudo()._l10n_pl_ksef_apply_results([{
            "move": move, "document": document, "verdict": "rejected", "code": 450,
            "description": "Błąd weryfikacji semantyki dokumentu faktury", "details": ["Nieprawidłowy NIP"]}])
        self.assertPolish(move.l10n_pl_ksef_error, "rejection on the invoice")
        self.assertPolish(move.message_ids[0].body, "rejection in the chatter")
        move.sudo()._l10n_pl_ksef_apply_results([{
            "move": move, "document": document, "verdict": "accepted",
            "ksef_number": "5265877635-20250101-0100001A1B2C-D3"}])
        body = move.message_ids[0].body
        self.assertIsInstance(body, Markup)
        self.assertPolish(body, "acceptance in the chatter")

    def test_group_names(self):
        for xmlid, name in (("l10n_pl_ksef.group_l10n_pl_ksef_user", "KSeF / Użytkownik"),
                            ("l10n_pl_ksef.group_l10n_pl_ksef_manager", "KSeF / Kierownik")):
            group = self.env.ref(xmlid).sudo()
            self.assertEqual(group.display_name, name)
            self.assertPolish(group.comment, "%s description" % xmlid)

    def test_drill_flow_of_a_polish_manager(self):
        self._reset_drill_simulator()
        manager_env = self.env(user=self.manager)
        for model in ("l10n_pl_ksef.drill", "l10n_pl_ksef.drill.step"):
            ours = self.assertFieldsPolish(manager_env[model])
            self.assertIn("state" if model == "l10n_pl_ksef.drill" else "action", ours)

        empty = self._drill()
        empty.step_ids = [Command.clear()]
        self.assertRefusedInPolish(empty.with_user(self.manager).action_l10n_pl_ksef_drill_start,
                                   "drill without steps")

        # Both first steps at minute 0: the connection is lost and restored at once, so the drill
        # invoice reaches the simulator when the drill ends and the report has a full row.
        drill = self._drill(offsets=(0, 0, 10, 20))
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_start()
        self.assertEqual(drill.state, "running")
        self.assertPolish(drill.message_ids.filtered("body")[0].body, "drill started in the chatter")
        self.assertPolish(self.company.l10n_pl_ksef_offline_readiness_html, "readiness panel during a drill")
        other = self._drill()
        self.assertRefusedInPolish(other.with_user(self.manager).action_l10n_pl_ksef_drill_start,
                                   "a second running drill")
        self.assertRefusedInPolish(lambda: other.sudo().write({"state": "running"}), "a second running drill (rule)")
        real = self._user_invoice(journal=self.real_journal)
        self.assertRefusedInPolish(real.action_l10n_pl_ksef_post, "a real invoice posted during the drill")
        self.assertRefusedInPolish(real.action_l10n_pl_ksef_issue_offline24, "a real invoice issued offline")

        self._wait_script(2)
        practice = self._user_invoice()
        self.assertEqual(practice.l10n_pl_ksef_drill_id, drill)
        practice.action_l10n_pl_ksef_issue_offline24()
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_refresh()
        self.assertRefusedInPolish(self._drill().with_user(self.manager).action_l10n_pl_ksef_drill_next_step,
                                   "next step of a planned drill")
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_end()
        self.assertEqual((drill.state, drill.report_invoice_count, drill.report_offline_count), ("done", 1, 1))
        self.assertTrue(drill.report_all_in_time, drill.report_html)
        self.assertPolish(drill.report_summary, "report summary")
        self.assertPolish(drill.report_html, "drill report")
        self.assertIn("Tak", drill.report_html)
        self.assertPolish(drill.message_ids.filtered("body")[0].body, "drill ended in the chatter")
        self.company.invalidate_recordset()
        panel = self.company.l10n_pl_ksef_offline_readiness_html
        self.assertIn(drill.report_summary, panel)
        self.assertPolish(panel, "readiness panel with the last drill")
        self.assertRefusedInPolish(practice.action_l10n_pl_ksef_post, "a drill invoice after its drill")
