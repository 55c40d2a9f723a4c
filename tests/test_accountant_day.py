"""The accountant's day (issue 15): deadlines from the moment of issue, said as a date in the
reader's format and language; Post to KSeF says what happened; recovery within a minute of KSeF
answering again, measured from the simulator's /_control/faults/clear to the KSeF number."""
import base64
import datetime
import threading
import time

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..ksef import calendar as ksef_calendar
from ..ksef import devcerts
from ..ksef import errors as ksef_errors
from ..ksef import ksef_number
from ..models import ksef_messages
from ..models.l10n_pl_ksef_engine_recovery import RETRY_SOON
from .common import KsefOfflineTestMixin, KsefSimulatorCommon
from ..ksef.simulator.testing import warsaw_today

RECOVERY_WINDOW = datetime.timedelta(seconds=60)


@tagged("post_install_l10n", "post_install", "-at_install")
class TestAccountantDay(KsefOfflineTestMixin, KsefSimulatorCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_setup_offline_issuing(fallback="auto")

    def _event(self, category, start, end=None, published=None):
        return self.env["l10n_pl_ksef.event"].sudo().create({
            "source": "bip", "category": category, "date_start": start, "date_end": end,
            "published": published or start, "notice_ref": "K/2026/AWR/%s" % category[:3]})

    # ---- point 8: the moment of issue -----------------------------------------------------

    def test_offline24_after_a_failure_that_ended_earlier_today(self):
        now = fields.Datetime.now()
        self._event("FAILURE", now - datetime.timedelta(hours=3), now - datetime.timedelta(minutes=30))
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_issue_offline24()
        self.assertEqual(move.l10n_pl_ksef_deadline, ksef_calendar.next_business_day(move.invoice_date),
                         "a failure over before the invoice was issued moves nothing")
        self.assertEqual(move.l10n_pl_ksef_deadline_reason_key, "offline24_next_business_day")
        # A failure announced while it waits does move it: unknown until the failure ends.
        failure = self._event("FAILURE", fields.Datetime.now() + datetime.timedelta(seconds=1))
        self.assertFalse(move.l10n_pl_ksef_deadline)
        self.assertIn("7 business days after the failure ends (not yet announced)", move.l10n_pl_ksef_deadline_note)
        failure.date_end = fields.Datetime.now() + datetime.timedelta(minutes=5)
        self.assertEqual(move.l10n_pl_ksef_deadline, ksef_calendar.add_business_days(
            fields.Date.context_today(move.with_context(tz="Europe/Warsaw")), 7))

    def test_fallback_after_post_keeps_no_hold(self):
        self.ksef_control("faults", {"down": True})
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "offline")
        self.assertFalse(move.l10n_pl_ksef_next_try, "the engine may try it at once, not after 5 minutes")

    # ---- point 5: deadlines said plainly ----------------------------------------------------

    def test_deadlines_in_the_readers_format_and_language(self):
        self.env["res.lang"].sudo()._activate_lang("pl_PL")
        self.env["ir.module.module"].sudo()._load_module_terms(["l10n_pl_ksef"], ["pl_PL"], overwrite=True)
        self.company.partner_id.sudo().lang = "en_US"   # left at the installer's English
        move = self._ksef_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_issue_offline24()
        deadline = move.l10n_pl_ksef_deadline
        polish = move.with_context(lang="pl_PL")
        self.assertIn(deadline.strftime("%d.%m.%Y"), polish.l10n_pl_ksef_deadline_note)
        self.assertIn(move.invoice_date.strftime("%d.%m.%Y"), polish.l10n_pl_ksef_deadline_note)
        self.assertIn("Termin przesłania do KSeF", polish.l10n_pl_ksef_deadline_note)
        self.assertNotIn(deadline.isoformat(), polish.l10n_pl_ksef_deadline_note, "one date format only")
        english = move.with_context(lang="en_US")
        self.assertIn(deadline.strftime("%m/%d/%Y"), english.l10n_pl_ksef_deadline_note)
        # A cron writes for a Polish company in Polish whatever its partner's language says.
        self.assertEqual(ksef_messages.company_language(self.company), "pl_PL")
        cron_move = ksef_messages.in_company_language(move.with_context(lang=None).sudo(), self.company)
        self.assertEqual(cron_move.env.lang, "pl_PL")

    def test_post_with_ksef_down_and_no_certificate_says_why_and_when(self):
        self.company.sudo().l10n_pl_ksef_offline_certificate_id = False
        self.ksef_control("faults", {"down": True})
        move = self._ksef_invoice()
        with self.assertRaises(UserError) as caught:
            move.with_user(self.user).action_l10n_pl_ksef_post()
        message = str(caught.exception)
        self.assertIn("could not be issued offline either", message)
        self.assertIn("Offline certificate", message)
        self.assertIn("automatically as soon as KSeF answers", message)
        self.assertNotIn("again later", message)

    def test_confirmation_dialog_gives_the_date(self):
        self.company.sudo().l10n_pl_ksef_offline_fallback = "confirm"
        self.ksef_control("faults", {"down": True})
        move = self._ksef_invoice()
        action = move.with_user(self.user).action_l10n_pl_ksef_post()
        wizard = self.env[action["res_model"]].with_user(self.user).browse(action["res_id"])
        expected = ksef_calendar.next_business_day(move.invoice_date)
        self.assertIn("%s: deadline for sending it to KSeF: %s." % (move.name, expected.strftime("%m/%d/%Y")),
                      wizard.explanation)
        self.assertIn("automatically as soon as KSeF answers", wizard.explanation)
        # Back-dated: its deadline has passed already, and the dialog says so.
        old = self._ksef_invoice(invoice_date=warsaw_today() - datetime.timedelta(days=10))
        action = old.with_user(self.user).action_l10n_pl_ksef_post()
        wizard = self.env[action["res_model"]].with_user(self.user).browse(action["res_id"])
        self.assertIn("already passed", wizard.explanation)
        self.assertIn(ksef_calendar.next_business_day(old.invoice_date).strftime("%m/%d/%Y"), wizard.explanation)

    def test_post_to_ksef_notifies_the_ksef_number(self):
        move = self._ksef_invoice()
        action = move.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(move.l10n_pl_ksef_state, "accepted")
        self.assertEqual(action["tag"], "display_notification")
        self.assertIn(move.l10n_pl_ksef_number, action["params"]["message"])
        self.ksef_control("faults", {"down": True})
        offline = self._ksef_invoice()
        action = offline.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual(offline.l10n_pl_ksef_state, "offline")
        self.assertIn(offline.l10n_pl_ksef_deadline.strftime("%m/%d/%Y"), action["params"]["message"])

    # ---- point 4: recovery within a minute ----------------------------------------------------

    def _next_run_after(self, moment):
        cron = self.env.ref("l10n_pl_ksef.ir_cron_l10n_pl_ksef_submit")
        trigger = self.env["ir.cron.trigger"].sudo().search(
            [("cron_id", "=", cron.id), ("call_at", ">=", moment - datetime.timedelta(seconds=1))],
            order="call_at asc", limit=1)
        return trigger.call_at

    def test_recovery_within_a_minute_of_ksef_answering_again(self):
        Move = self.env["account.move"]
        self.ksef_control("faults", {"down": True})
        queued = self._ksef_invoice()
        queued.with_user(self.user).action_l10n_pl_ksef_queue()
        offline = self._ksef_invoice()
        offline.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual((queued.l10n_pl_ksef_state, offline.l10n_pl_ksef_state), ("to_send", "offline"))
        # A long outage: many failed runs, each arming the next within RETRY_SOON (no hour-long backoff).
        for _attempt in range(8):
            failed_at = fields.Datetime.now()
            try:
                Move._cron_l10n_pl_ksef_submit()
            except ksef_errors.KsefError:
                pass   # the cron re-raises where it cannot commit (tests); it armed the next run first
            next_run = self._next_run_after(failed_at)
            self.assertTrue(next_run, "every failed try arms the next run")
            self.assertLessEqual(next_run, failed_at + RETRY_SOON + datetime.timedelta(seconds=1))
        self.assertGreaterEqual(self.company.sudo().l10n_pl_ksef_engine_failures, 8)
        self.assertIn("automatically", offline.l10n_pl_ksef_next_try_note or "")

        cleared_at = fields.Datetime.now()
        started = time.monotonic()
        self.ksef_control("faults/clear")
        next_run = self._next_run_after(failed_at)
        self.assertLessEqual(next_run - cleared_at, RECOVERY_WINDOW, "the next run is armed within the window")
        Move._cron_l10n_pl_ksef_submit()   # that run, as the cron runner starts it
        run_seconds = time.monotonic() - started
        self.assertEqual((queued.l10n_pl_ksef_state, offline.l10n_pl_ksef_state), ("accepted", "accepted"))
        self.assertTrue(ksef_number.is_valid_ksef_number(offline.l10n_pl_ksef_number))
        wait = max((next_run - cleared_at).total_seconds(), 0.0)
        measured = wait + run_seconds
        print(  # pylint: disable=print-used  # the issue asks for the figure printed
            "KSeF recovery: faults/clear -> KSeF numbers of 1 queued + 1 offline invoice in at most %.1f s "
            "(next run armed %.1f s after the clear, the run took %.1f s; window %d s)"
            % (measured, wait, run_seconds, RECOVERY_WINDOW.total_seconds()))
        self.assertLessEqual(measured, RECOVERY_WINDOW.total_seconds())

    def test_login_5xx_is_retried_inside_the_run(self):
        queued = self._ksef_invoice()
        queued.with_user(self.user).action_l10n_pl_ksef_queue()
        self.company.sudo().write({"l10n_pl_ksef_access_token": False, "l10n_pl_ksef_refresh_token": False})
        # KSeF answers 503 to the login, then recovers half a second later (real HTTP, real clock).
        self.ksef_control("faults", {"down": True, "down_mode": "503"})
        timer = threading.Timer(0.5, self.ksef_control, ["faults/clear"])
        timer.start()
        self.addCleanup(timer.cancel)
        self.env["account.move"]._cron_l10n_pl_ksef_submit()
        timer.join()
        self.assertEqual(queued.l10n_pl_ksef_state, "accepted", "the login was tried again within the run")
        self.assertFalse(self.company.sudo().l10n_pl_ksef_engine_failures)

    def test_runner_watches_for_ksef_coming_back(self):
        """Odoo's runner starts a future trigger only at its next minute tick: a run that met no KSeF
        watches for its return itself and hands over at once (real HTTP, real clock)."""
        queued = self._ksef_invoice()
        queued.with_user(self.user).action_l10n_pl_ksef_queue()
        Move = self.env["account.move"]
        self.ksef_control("faults", {"down": True})
        try:
            Move._cron_l10n_pl_ksef_submit()
        except ksef_errors.KsefError:
            pass
        self.assertTrue(self.company.sudo().l10n_pl_ksef_engine_failures)
        self.assertFalse(Move._l10n_pl_ksef_engine_watch(watch_for=1.0, every=0.3), "still down")
        # As after a session that could not be opened: the invoice waits for its own retry time.
        queued._l10n_pl_ksef_write({"l10n_pl_ksef_attempts": 3,
                                    "l10n_pl_ksef_next_try": fields.Datetime.now() + datetime.timedelta(seconds=25)})
        timer = threading.Timer(0.5, self.ksef_control, ["faults/clear"])
        timer.start()
        self.addCleanup(timer.cancel)
        started = time.monotonic()
        watching_from = fields.Datetime.now()
        self.assertTrue(Move._l10n_pl_ksef_engine_watch(watch_for=20.0, every=0.5))
        self.assertLess(time.monotonic() - started, 5.0, "seen within a few seconds of its return")
        cron = self.env.ref("l10n_pl_ksef.ir_cron_l10n_pl_ksef_submit")
        now_trigger = self.env["ir.cron.trigger"].sudo().search(
            [("cron_id", "=", cron.id), ("call_at", ">=", watching_from), ("call_at", "<=", fields.Datetime.now())])
        self.assertTrue(now_trigger, "the next run is armed for now: the runner is notified and starts it")
        self.assertFalse(queued.l10n_pl_ksef_next_try, "KSeF is back: the invoice does not wait for its retry time")
        Move._cron_l10n_pl_ksef_submit()
        self.assertEqual(queued.l10n_pl_ksef_state, "accepted")

    # ---- point 6: screens ---------------------------------------------------------------------

    def test_empty_overview_tile_opens_an_empty_list_without_sample_rows(self):
        Dashboard = self.env["l10n_pl_ksef.dashboard"].with_user(self.user)
        tile = Dashboard.create(Dashboard._l10n_pl_ksef_tile_values()[0])
        action = tile.action_l10n_pl_ksef_open_invoices()
        view_id = action["views"][0][0]
        arch = self.env["account.move"].with_user(self.user).get_views([(view_id, "list")])["views"]["list"]["arch"]
        self.assertIn('sample="0"', arch, "Odoo's faded sample invoices (in dollars) never stand in for an empty tile")
        self.assertFalse(self.env["account.move"].with_user(self.user).search_count(
            action["domain"] + tile._l10n_pl_ksef_tile_domain(tile.kind)))

    def test_certificate_upload_ends_with_a_confirmation(self):
        certificate, key = self._ksef_make_certificate()
        cert_pem, key_pem = devcerts.to_pem(certificate, key)
        wizard = self.env["l10n_pl_ksef.certificate.upload"].sudo().create({
            "company_id": self.company.id, "name": "KSeF Offline nowy", "file_format": "pem",
            "certificate_file": base64.b64encode(cert_pem), "key_file": base64.b64encode(key_pem)})
        action = wizard.action_upload()
        self.assertEqual(action["tag"], "display_notification", "no raw certificate form")
        self.assertIn("%016X" % certificate.serial_number, action["params"]["message"])
        self.assertEqual(self.company.sudo().l10n_pl_ksef_offline_certificate_id, wizard.certificate_id)
