"""Both KSeF modules installed (Odoo's l10n_pl_edi arriving by auto-install, this bridge too),
against the simulator over real HTTP: KSeF receives every invoice once, one verdict in both
modules' fields, one visible status, and l10n_pl_edi's vendor-bill download works."""
import base64
import datetime
import uuid
from unittest.mock import patch

from lxml import etree

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged
from odoo.tools import file_open

from odoo.addons.l10n_pl_edi.models.account_move import AccountMove as EdiAccountMove
from odoo.addons.l10n_pl_edi.tools.ksef_api_service import KsefApiService
from odoo.addons.l10n_pl_ksef.ksef import ksef_number
from odoo.addons.l10n_pl_ksef.ksef.simulator.testing import SimClient, sample_invoice
from odoo.addons.l10n_pl_ksef.tests.common import KsefOfflineTestMixin
from odoo.addons.l10n_pl_ksef.tests.test_engine import KsefEngineCommon

from .. import _l10n_pl_ksef_edi_post_init

SUPPLIER_NIP = "7251801126"


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefEdiBridge(KsefOfflineTestMixin, KsefEngineCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_setup_offline_issuing()
        cls.buyer_pl.email = "faktury@hurtownia-lodzka.pl"

    # -- helpers --------------------------------------------------------------------------

    def _send_and_print(self, move):
        """Send & Print with the defaults the wizard proposes, as the accountant."""
        wizard = self.env["account.move.send.wizard"].with_user(self.user).with_context(
            active_model="account.move", active_ids=move.ids).create({})
        wizard.action_send_and_print()
        return wizard

    def _accepted_in_ksef(self, move):
        """How many accepted invoices KSeF holds under this invoice's number (as seller)."""
        sim = self._ksef_sim_client()
        now = datetime.datetime.now(datetime.timezone.utc)
        answer = sim.call("POST", "/v2/invoices/query/metadata", params={"pageSize": 250}, json={
            "subjectType": "Subject1", "dateRange": {
                "dateType": "Invoicing", "from": (now - datetime.timedelta(hours=1)).isoformat(),
                "to": (now + datetime.timedelta(minutes=5)).isoformat()}})
        answer.raise_for_status()
        return [i for i in answer.json()["invoices"] if i["invoiceNumber"] == move.name]

    def assertOneVerdict(self, move, sent_once=True):
        """One KSeF number in both modules' fields, accepted once by KSeF, no error shown."""
        move.invalidate_recordset()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertTrue(ksef_number.is_valid_ksef_number(move.l10n_pl_ksef_number))
        self.assertEqual(move.l10n_pl_edi_status, "accepted")
        self.assertEqual(move.l10n_pl_edi_number, move.l10n_pl_ksef_number)
        self.assertFalse(move.l10n_pl_ksef_error)
        self.assertFalse(move.l10n_pl_edi_header)
        [held] = self._accepted_in_ksef(move)
        self.assertEqual(held["ksefNumber"], move.l10n_pl_ksef_number)
        if sent_once:
            self.assertEqual(self._counters()["invoicesTotal"], 1, "KSeF received the invoice more than once")
        return held

    def _their_sending(self, move):
        """What l10n_pl_edi's own sender does (its service, its file, its fields), pointed at the
        simulator: an invoice sent by it before this bridge existed."""
        sim = self._ksef_sim_client()
        self.company.sudo().write({"l10n_pl_edi_access_token": sim.access_token,
                                   "l10n_pl_edi_refresh_token": sim.refresh_token})
        service = KsefApiService(self.company)
        service.open_ksef_session()
        xml = move._l10n_pl_edi_render_xml().encode()
        reference = service.send_invoice(xml)["referenceNumber"]
        move.sudo().write({
            "l10n_pl_edi_status": "sent", "l10n_pl_edi_ref": reference,
            "l10n_pl_edi_session_id": self.company.sudo().l10n_pl_edi_session_id,
            "l10n_pl_edi_attachment_file": base64.b64encode(xml),
        })
        status = sim.wait_invoice(move.l10n_pl_edi_session_id, reference)
        self.assertEqual(status["status"]["code"], 200, status)
        return xml, status["ksefNumber"]

    def setUp(self):
        super().setUp()
        # l10n_pl_edi knows only the MF's two addresses: its service is pointed at the simulator
        # (as if its global environment were this one), so that its own sending really happens.
        patcher = patch.object(KsefApiService, "_get_api_url", lambda service: self.ksef_url + "/v2")
        patcher.start()
        self.addCleanup(patcher.stop)

    # -- exactly one sender ---------------------------------------------------------------

    def test_send_and_print_with_defaults_sends_once_through_our_engine(self):
        # l10n_pl_edi looks configured (tokens of its own): its sender would act if it could.
        self.company.sudo().write({"l10n_pl_edi_access_token": "theirs", "l10n_pl_edi_refresh_token": "theirs"})
        move = self._ksef_invoice()
        options = self.env["account.move.send"]._get_all_extra_edis()
        self.assertEqual(options["pl_ksef"]["label"], "Post to KSeF")
        wizard = self._send_and_print(move)
        self.assertIn("pl_ksef", wizard.extra_edis)
        self.assertOneVerdict(move)
        self.assertTrue(move.invoice_pdf_report_id)
        # our file and UPO are l10n_pl_edi's file and UPO: one of each
        self.assertEqual(move.l10n_pl_edi_attachment_id.raw, move._l10n_pl_ksef_frozen_xml())
        self.assertEqual(move.l10n_pl_edi_upo_id.raw, move.l10n_pl_ksef_upo_id.raw)
        self.assertFalse(move.show_reset_to_draft_button)

    def test_unconfigured_edi_module_shows_no_error(self):
        self.assertFalse(self.company.sudo().l10n_pl_edi_refresh_token)
        move = self._ksef_invoice()
        self.env["account.move.send"].with_user(self.user)._generate_and_send_invoices(
            move, sending_methods=["manual"], extra_edis={"pl_ksef"}, allow_raising=True)
        self.assertOneVerdict(move)
        self.assertNotIn("refresh token", " ".join(move.message_ids.mapped("body")))

    def test_our_button_then_send_and_print(self):
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self._send_and_print(move)
        self.assertOneVerdict(move)
        self.assertTrue(move.invoice_pdf_report_id)

    # -- adoption of what l10n_pl_edi sent ------------------------------------------------

    def test_their_accepted_invoice_is_adopted_without_sending(self):
        move = self._ksef_invoice()
        xml, number = self._their_sending(move)
        # l10n_pl_edi's status check (its own code) learns the verdict
        EdiAccountMove.action_l10n_pl_edi_update_invoice_status(move.sudo())
        self.assertEqual((move.l10n_pl_edi_status, move.l10n_pl_edi_number), ("accepted", number))
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertOneVerdict(move)
        self.assertEqual(move.l10n_pl_ksef_number, number)
        # the file KSeF holds is the frozen one (KOD I carries its hash)
        self.assertEqual(move._l10n_pl_ksef_frozen_xml(), xml)
        self.assertIn("adopted", move.l10n_pl_ksef_document_ids.status_description.lower() + " "
                      + " ".join(move.message_ids.mapped("body")).lower())

    def test_duplicate_of_their_number_is_adopted_not_rejected(self):
        move = self._ksef_invoice()
        xml, number = self._their_sending(move)
        # l10n_pl_edi never learnt the verdict ('sent'), and its environment cannot be asked
        # (the company works with the simulator): our Post sends, KSeF answers 440.
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertOneVerdict(move, sent_once=False)
        self.assertEqual(move.l10n_pl_ksef_number, number)
        self.assertEqual(move.l10n_pl_ksef_document_ids.sorted("id")[-1].status_code, 440)
        self.assertEqual(self._counters()["invoicesAccepted"], 1)

    def test_bridge_install_adopts_their_accepted_invoices(self):
        move = self._ksef_invoice()
        _xml, number = self._their_sending(move)
        EdiAccountMove.action_l10n_pl_edi_update_invoice_status(move.sudo())
        _l10n_pl_ksef_edi_post_init(self.env)
        self.assertEqual(move.l10n_pl_ksef_state, False, "no KSeF call during the install")
        self._run_cron()
        self.assertOneVerdict(move)
        self.assertEqual(move.l10n_pl_ksef_number, number)

    def test_a_forged_number_in_their_fields_is_not_adopted(self):
        move = self._ksef_invoice()
        other = self._ksef_invoice()
        other.action_l10n_pl_ksef_post()
        # the accountant cannot write a verdict into l10n_pl_edi's fields over RPC
        with self.assertRaises(AccessError):
            move.with_user(self.user).write({"l10n_pl_edi_status": "accepted",
                                             "l10n_pl_edi_number": other.l10n_pl_ksef_number})
        # and a number that is not this invoice's in KSeF is never taken on trust
        move.sudo().write({"l10n_pl_edi_status": "accepted", "l10n_pl_edi_number": "5265877635-20260101-0000000000AB-00"})
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertNotEqual(move.l10n_pl_ksef_number, other.l10n_pl_ksef_number)
        self.assertEqual(self._counters()["invoicesAccepted"], 2)

    # -- the engine and l10n_pl_edi's crons -----------------------------------------------

    def test_offline_invoice_flushed_while_their_crons_run(self):
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_issue_offline24()
        self.assertEqual(move.l10n_pl_ksef_state, "offline")
        self.assertFalse(move.l10n_pl_edi_status, "an interim state is never mirrored")
        Move = self.env["account.move"]
        Move._cron_l10n_pl_edi_check_invoice_status()
        self.env["res.company"]._cron_l10n_pl_edi_refresh_tokens()
        self._run_cron()
        Move._cron_l10n_pl_edi_check_invoice_status()
        Move._cron_l10n_pl_edi_download_bills()
        self.assertOneVerdict(move)
        self.assertAcceptedExactlyOnce(move)

    def test_batch_flush_mirrors_every_verdict(self):
        moves = self._queue(12, offline=True)
        self._run_cron()
        self.assertAcceptedExactlyOnce(moves)
        for move in moves:
            self.assertEqual((move.l10n_pl_edi_status, move.l10n_pl_edi_number), ("accepted", move.l10n_pl_ksef_number))
            self.assertEqual(move.l10n_pl_edi_attachment_id.raw, move._l10n_pl_ksef_frozen_xml())

    def test_engine_adopts_an_offline_invoice_their_module_got_accepted(self):
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_issue_offline24()
        _xml, number = self._their_sending(move)   # both sent it before the bridge existed
        EdiAccountMove.action_l10n_pl_edi_update_invoice_status(move.sudo())
        self._run_cron()
        self.assertOneVerdict(move)
        self.assertEqual(move.l10n_pl_ksef_number, number)
        self.assertEqual(self._counters()["invoicesAccepted"], 1)

    def test_rejection_is_mirrored(self):
        move = self._ksef_invoice()
        self._ksef_sent_elsewhere(sample_invoice(move.name))
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual((move.l10n_pl_ksef_state, move.l10n_pl_edi_status), ("rejected", "rejected"))
        self.assertFalse(move.l10n_pl_edi_number)

    # -- their receiving side over our connection -----------------------------------------

    def test_their_bill_download_fetches_a_purchase_invoice(self):
        supplier = SimClient(self.ksef_url)
        supplier.control("tokens", {"nip": SUPPLIER_NIP, "token": "supplier-token"})
        supplier.login(SUPPLIER_NIP, "supplier-token")
        xml = sample_invoice("FS/%s" % uuid.uuid4().hex[:8], seller_nip=SUPPLIER_NIP).decode()
        xml = xml.replace("<NIP>3861610227</NIP>", "<NIP>%s</NIP>" % self.ksef_nip).encode()
        session = supplier.open_online().json()["referenceNumber"]
        reference = supplier.send(session, xml).json()["referenceNumber"]
        number = supplier.wait_invoice(session, reference)["ksefNumber"]
        self.assertTrue(number)
        Move = self.env["account.move"]
        Move._cron_l10n_pl_edi_download_bills()
        bill = Move.search([("l10n_pl_edi_number", "=", number)])
        self.assertEqual(bill.move_type, "in_invoice")
        self.assertEqual(bill.company_id, self.company)
        self.assertAlmostEqual(bill.amount_total, 177.0)
        attachment = self.env["ir.attachment"].search([("res_model", "=", "account.move"), ("res_id", "=", bill.id)])
        self.assertIn(xml, attachment.mapped("raw"))
        # run again: nothing twice
        Move._cron_l10n_pl_edi_download_bills()
        self.assertEqual(Move.search_count([("l10n_pl_edi_number", "=", number)]), 1)

    # -- one set of screens, settings and certificates ------------------------------------

    def test_one_visible_status_and_one_settings_area(self):
        arch = self.env["account.move"].with_user(self.user).get_views([(False, "form")])["views"]["form"]["arch"]
        form = etree.fromstring(arch)
        for name in ("l10n_pl_edi_status", "l10n_pl_edi_header", "l10n_pl_edi_ref", "l10n_pl_edi_upo_id"):
            self.assertFalse(form.xpath("//field[@name='%s']" % name), name)
        for name in ("action_l10n_pl_edi_update_invoice_status", "action_l10n_pl_edi_get_invoice_UPO"):
            self.assertFalse(form.xpath("//button[@name='%s']" % name), name)
        self.assertTrue(form.xpath("//field[@name='l10n_pl_ksef_state']"))
        settings = etree.fromstring(self.env["res.config.settings"].sudo().get_views([(False, "form")])["views"]["form"]["arch"])
        self.assertFalse(settings.xpath("//setting[@id='l10n_pl_edi_register']"))
        self.assertFalse(settings.xpath("//field[@name='l10n_pl_edi_certificate']"))

    def test_their_environment_follows_ours_or_refuses(self):
        company = self.company.sudo()
        move = self._ksef_invoice()
        move.sudo().write({"l10n_pl_edi_status": "sent", "l10n_pl_edi_ref": "X"})
        # the simulator: l10n_pl_edi cannot reach it, it says so instead of asking production
        with self.assertRaisesRegex(UserError, "one KSeF environment"):
            move.with_user(self.user).action_l10n_pl_edi_update_invoice_status()
        others = self.env["res.company"].sudo().search([("partner_id.country_id.code", "=", "PL")]) - company
        others.write({"l10n_pl_ksef_environment": "production"})
        company.write({"l10n_pl_ksef_environment": "production"})
        self.assertEqual(self.env["ir.config_parameter"].sudo().get_param("l10n_pl_edi_ksef.mode"), "prod")
        company.write({"l10n_pl_ksef_environment": "test"})
        if others:   # two companies on two environments: not expressible, refused
            self.assertFalse(self.env["res.company"]._l10n_pl_ksef_edi_mode())
        others.write({"l10n_pl_ksef_environment": "test"})
        self.assertEqual(self.env["ir.config_parameter"].sudo().get_param("l10n_pl_edi_ksef.mode"), "test")
        # its own login is not a second way in
        with self.assertRaisesRegex(UserError, "Settings > Invoicing > KSeF"):
            self.env["res.config.settings"].sudo().create({})._l10n_pl_edi_ksef_authenticate()

    def test_their_certificate_is_our_authentication_certificate_and_survives_neutralization(self):
        company = self.company.sudo()
        self.assertFalse(company.l10n_pl_edi_certificate)   # token login: no certificate
        auth, _x509, _key = self._ksef_upload_certificate(kind="Authentication", use_as_offline=False,
                                                           name="KSeF Authentication")
        company.write({"l10n_pl_ksef_auth_method": "certificate", "l10n_pl_ksef_auth_certificate_id": auth.id})
        self.assertEqual(company.l10n_pl_edi_certificate, auth)
        self.assertNotEqual(company.l10n_pl_edi_certificate, company.l10n_pl_ksef_offline_certificate_id)
        with file_open("l10n_pl_edi/data/neutralize.sql") as sql:
            self.env.cr.execute(sql.read())
        self.assertTrue(auth.exists(), "l10n_pl_edi's neutralization deleted our Authentication certificate")
        self.assertTrue(self.certificate.exists())
