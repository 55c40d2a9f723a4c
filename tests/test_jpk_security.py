"""The KSeF facts of JPK periods, evidence, payments and KSeF's classification, attacked over RPC
by an Invoicing user (a KSeF user, no administrator), forged context included: what the web
client's /web/dataset/call_kw does (public methods only, then ``call_kw``)."""
import datetime

from odoo.api import call_kw
from odoo.exceptions import AccessError, UserError
from odoo.service.model import get_public_method
from odoo.tests import tagged

from .common import KsefTestCommon

FORGED = {"l10n_pl_ksef_drop_drill_notices": True, "l10n_pl_ksef_no_deadline_recompute": True}


@tagged("post_install_l10n", "post_install", "-at_install")
class TestJpkSecurity(KsefTestCommon):

    def rpc(self, model, method, args, kwargs=None):
        env = self.env(user=self.user, context=dict(self.env.context, **FORGED))
        get_public_method(env[model], method)
        return call_kw(env[model], method, args, kwargs or {})

    def test_ksef_facts_cannot_be_forged_over_rpc(self):
        move = self._ksef_invoice()
        event = self.env["l10n_pl_ksef.event"].sudo().create(
            {"source": "bip", "category": "FAILURE", "notice_ref": "K/2026/AWR/21", "title": "Awaria"})
        for values in ({"l10n_pl_ksef_ksef_offline": True}, {"l10n_pl_ksef_evidence_event_ids": [(4, event.id)]}):
            with self.assertRaises(AccessError):
                self.rpc("account.move", "write", [move.ids, values])
        period = self.env["l10n_pl_ksef.jpk.period"].sudo().create(
            {"company_id": self.company.id, "date_from": datetime.date(2026, 10, 1), "date_to": datetime.date(2026, 10, 31)})
        with self.assertRaises(AccessError):
            self.rpc("l10n_pl_ksef.jpk.period", "write", [period.ids, {"filing_date": "2026-11-20", "state": "filed"}])
        with self.assertRaises(AccessError):
            self.rpc("l10n_pl_ksef.jpk.line", "create", [{"period_id": period.id, "marker": "OFF"}])
        with self.assertRaises(AccessError):
            self.rpc("l10n_pl_ksef.collective.identifier", "create", [{"name": "x", "company_id": self.company.id}])
        with self.assertRaises(AccessError):
            self.rpc("l10n_pl_ksef.event.notice", "unlink", [event.notice_ids.ids])
        with self.assertRaises(UserError):  # AccessError is a UserError too
            self.rpc("l10n_pl_ksef.event.notice", "write", [event.notice_ids.ids, {"raw": "forged"}])
        # Private helpers are not reachable at all.
        with self.assertRaises(AccessError):
            self.rpc("l10n_pl_ksef.jpk.period", "_l10n_pl_ksef_record_filing", [period.ids, "2026-11-20"])
        with self.assertRaises(AccessError):
            self.rpc("account.move", "_l10n_pl_ksef_set_received_ksef_number", [move.ids, "x"])
        # What a user may do: record the filing through the dialog, with its checks.
        wizard = self.rpc("l10n_pl_ksef.jpk.filing", "create", [{"period_id": period.id, "filing_date": "2026-10-15"}])
        with self.assertRaisesRegex(UserError, "must be after the end of the period"):
            self.rpc("l10n_pl_ksef.jpk.filing", "action_confirm", [[wizard]])
        self.assertEqual(period.state, "open")
        self.assertEqual(len(event.notice_ids), 1, "the notice is still there, unchanged")
