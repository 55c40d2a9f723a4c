import datetime
import tempfile
from pathlib import Path

import requests

from odoo import fields
from odoo.tests import tagged

from ..ksef import calendar as ksef_calendar
from ..ksef.simulator import start_subprocess, stop_subprocess
from .common import KsefOfflineTestMixin, KsefTestCommon


@tagged("post_install_l10n", "post_install", "-at_install")
class TestLatarnia(KsefOfflineTestMixin, KsefTestCommon):
    """Latarnia polling against the real simulator over HTTP on 127.0.0.1."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.simulator, cls.base_url = start_subprocess(Path(cls._tmp.name) / "sim.db", rate_limits="off")
        cls.addClassCleanup(stop_subprocess, cls.simulator)
        cls._ksef_upload_certificate(not_before=datetime.datetime(2025, 1, 1), valid_days=3650)
        cls.company.sudo().write({"l10n_pl_ksef_environment": "simulator", "l10n_pl_ksef_latarnia_url": cls.base_url})

    def setUp(self):
        super().setUp()
        self._control("/_control/reset", {})

    def _control(self, path, payload):
        response = requests.post(self.base_url + path, json=payload, timeout=10)
        response.raise_for_status()
        return response.json()

    def _latarnia(self, action, **values):
        return self._control("/_control/latarnia", {"action": action, **values})

    def _poll(self):
        return self.company._l10n_pl_ksef_poll_latarnia()[self.company.id]

    def _events(self):
        return self.env["l10n_pl_ksef.event"].search([("source", "=", "latarnia")])

    def test_failure_is_recorded_pauses_sending_and_moves_deadlines(self):
        self.assertEqual(self._poll(), "AVAILABLE")
        self.assertFalse(self.company._l10n_pl_ksef_sending_paused())
        self.assertFalse(self._events())
        move = self._ksef_invoice()
        move.action_l10n_pl_ksef_issue_offline24()
        offline24_deadline = move.l10n_pl_ksef_deadline

        started = self._latarnia("failure_start", title="Awaria KSeF", text="Trwa awaria.")
        self.assertEqual(self._poll(), "FAILURE")
        self.assertTrue(self.company._l10n_pl_ksef_sending_paused())
        event = self._events()
        self.assertEqual(len(event), 1)
        self.assertEqual((event.notice_ref, event.event_ref, event.category, event.message_type, event.environment),
                         (started["id"], started["eventId"], "FAILURE", "FAILURE_START", "simulator"))
        self.assertFalse(event.date_end)
        self.assertFalse(move.l10n_pl_ksef_deadline, "a failure announced while it waits: deadline open until it ends")
        self.assertEqual(self._poll(), "FAILURE")
        self.assertEqual(len(self._events()), 1, "polling is idempotent")

        ended = self._latarnia("failure_end", eventId=started["eventId"])
        self.assertEqual(self._poll(), "AVAILABLE")
        self.assertFalse(self.company._l10n_pl_ksef_sending_paused())
        self.assertEqual(len(self._events()), 2)
        end = self._events().filtered(lambda e: e.notice_ref == ended["id"])
        self.assertEqual(end.message_type, "FAILURE_END")
        self.assertTrue(end.date_end)
        end_day = fields.Date.context_today(move.with_context(tz="Europe/Warsaw"), end.date_end)
        self.assertEqual(move.l10n_pl_ksef_deadline, ksef_calendar.add_business_days(end_day, 7))
        self.assertGreater(move.l10n_pl_ksef_deadline, offline24_deadline)
        self.assertIn("7 business days", move.l10n_pl_ksef_deadline_reason)

    def test_newer_version_of_a_notice_replaces_the_old_one(self):
        first = self._latarnia("maintenance", id="K/2026/PLN/07", version=1, title="Prace serwisowe",
                               start="2030-01-05T20:00:00Z", end="2030-01-05T23:00:00Z")
        self._poll()
        self._control("/_control/latarnia/clear", {})
        self._latarnia("maintenance", id=first["id"], eventId=first["eventId"], version=2, title="Prace serwisowe (zmiana)",
                       start="2030-01-05T21:00:00Z", end="2030-01-06T01:00:00Z")
        self._poll()
        event = self._events()
        self.assertEqual(len(event), 1)
        self.assertEqual((event.version, event.title), (2, "Prace serwisowe (zmiana)"))
        self.assertEqual(event.date_end, datetime.datetime(2030, 1, 6, 1, 0))

    def test_latarnia_outage_is_not_a_ksef_failure(self):
        self._latarnia("failure_start")
        self.assertEqual(self._poll(), "FAILURE")
        self._control("/_control/faults", {"latarnia_down": True})
        with self.assertLogs("odoo.addons.l10n_pl_ksef.models.res_company_offline", level="WARNING") as logs:
            self.assertIsNone(self._poll())
        self.assertIn("keeping the last known KSeF status", logs.output[0])
        self.assertEqual(self.company.l10n_pl_ksef_latarnia_status, "FAILURE", "the last known status stays")
        self.assertIn("Latarnia could not be asked", self.company.l10n_pl_ksef_latarnia_error)
        # and a send that fails while Latarnia is down falls back to offline24, never to a failure mode
        self.company.sudo().l10n_pl_ksef_offline_fallback = "auto"
        move = self._ksef_invoice()
        move._l10n_pl_ksef_handle_unreachable(ConnectionError("connection refused"))
        self.assertEqual(move.l10n_pl_ksef_offline_mode, "offline24")

    def test_fallback_during_an_announced_failure_is_emergency_mode(self):
        self.company.sudo().l10n_pl_ksef_offline_fallback = "auto"
        started = self._latarnia("failure_start")
        move = self._ksef_invoice()
        move._l10n_pl_ksef_handle_unreachable(ConnectionError("HTTP 503"))
        self.assertEqual(move.l10n_pl_ksef_offline_mode, "emergency")
        self.assertEqual(move.l10n_pl_ksef_offline_event_id.notice_ref, started["id"])
        self.assertFalse(move.l10n_pl_ksef_deadline)
        self.assertIn("still going on", move.l10n_pl_ksef_deadline_reason)
        self._latarnia("failure_end", eventId=started["eventId"])
        self.env["res.company"]._cron_l10n_pl_ksef_poll_latarnia()
        end_day = fields.Date.context_today(move.with_context(tz="Europe/Warsaw"))
        self.assertEqual(move.l10n_pl_ksef_deadline, ksef_calendar.add_business_days(end_day, 7))

    def test_total_failure_issues_outside_ksef(self):
        self.company.sudo().l10n_pl_ksef_offline_fallback = "auto"
        self._latarnia("total_failure")
        move = self._ksef_invoice()
        move._l10n_pl_ksef_handle_unreachable(ConnectionError("timeout"))
        self.assertEqual((move.l10n_pl_ksef_offline_mode, move.l10n_pl_ksef_state), ("total_failure", "outside"))
        self.assertFalse(move.l10n_pl_ksef_qr_certificate_url)
