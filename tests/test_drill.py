"""KSeF drill mode, end to end: a second real simulator subprocess plays the drill while the
test's "real KSeF" (KsefSimulatorCommon's simulator) must never see a drill invoice."""
import datetime

import requests

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from .common import KsefDrillTestMixin, KsefOfflineTestMixin, KsefPrintedPdfMixin, KsefSimulatorCommon

@tagged("post_install_l10n", "post_install", "-at_install")
class TestDrill(KsefPrintedPdfMixin, KsefDrillTestMixin, KsefOfflineTestMixin, KsefSimulatorCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_setup_offline_issuing(fallback="auto")
        cls._ksef_setup_drill()

    # ---- the whole drill -------------------------------------------------------------------

    def test_drill_from_start_to_report(self):
        before = self._settings()
        drill = self._drill()
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_start()
        company = self.company.sudo()
        self.assertEqual(drill.state, "running")
        self.assertEqual((company.l10n_pl_ksef_environment, company.l10n_pl_ksef_base_url,
                          company.l10n_pl_ksef_latarnia_url), ("simulator", self.drill_url, self.drill_url))
        self.assertNotEqual(company.l10n_pl_ksef_token, before["l10n_pl_ksef_token"])
        self.assertNotEqual(company.l10n_pl_ksef_offline_certificate_id, self.certificate,
                            "drill invoices are never signed with the real Offline certificate")
        self.assertIn("DRILL", company.l10n_pl_ksef_offline_certificate_id.name)
        self.assertEqual(drill.end_by, drill.started_at + datetime.timedelta(minutes=80))
        self.assertEqual(drill.sudo().saved_token, before["l10n_pl_ksef_token"])
        with self.assertRaises(AccessError):
            drill.with_user(self.user).saved_token  # noqa: B018 - administrators only
        self._wait_script(1)

        # Connection lost: the accountant issues as usual; Post to KSeF falls back to offline24.
        first = self._user_invoice()
        self.assertEqual(first.journal_id, drill.journal_id)
        self.assertTrue(first.name.startswith(drill.journal_id.code + "/"), first.name)
        self.assertEqual(first.l10n_pl_ksef_drill_id, drill)
        first.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual((first.l10n_pl_ksef_state, first.l10n_pl_ksef_offline_mode), ("offline", "offline24"))
        text, codes = self._render(first)
        self.assertIn("ĆWICZENIA / DRILL", text)
        self.assertEqual(sorted(codes), sorted([self._kod1(first), first.l10n_pl_ksef_qr_certificate_url]))

        # A real invoice meanwhile: refused by Post to KSeF, skipped by the engine.
        real = self._user_invoice(journal=self.real_journal)
        self.assertFalse(real.l10n_pl_ksef_drill_id)
        self.assertFalse(real.name.startswith(drill.journal_id.code))
        with self.assertRaisesRegex(UserError, "%s.*drill is running" % real.name.replace("/", ".")):
            real.with_user(self.user).action_l10n_pl_ksef_post()
        with self.assertRaisesRegex(UserError, "drill is running"):
            real.with_user(self.user).action_l10n_pl_ksef_issue_offline24()
        real.with_user(self.user).action_l10n_pl_ksef_queue()
        self.assertEqual(real.l10n_pl_ksef_state, "to_send")

        # Connection back, failure announced: the company reads it from the (simulated) Latarnia.
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_next_step()
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_next_step()
        self.assertEqual(company.l10n_pl_ksef_latarnia_status, "FAILURE")
        self.assertEqual(len(drill.step_ids.filtered("applied_at")), 3)
        second = self._user_invoice()
        second.with_user(self.user).action_l10n_pl_ksef_post()
        self.assertEqual((second.l10n_pl_ksef_state, second.l10n_pl_ksef_offline_mode), ("offline", "emergency"))
        self.assertTrue(second.l10n_pl_ksef_offline_event_id)
        self.env["account.move"]._l10n_pl_ksef_engine_run(self.company)   # paused by the failure
        self.assertEqual((first | second).mapped("l10n_pl_ksef_state"), ["offline", "offline"])
        self.assertEqual(real.l10n_pl_ksef_state, "to_send")

        # Failure ends; the trainer ends the drill: everything goes, the report is written.
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_next_step()
        self.assertEqual(company.l10n_pl_ksef_latarnia_status, "AVAILABLE")
        numbers = (first | second).mapped("name")
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_end()
        self.assertEqual(drill.state, "done")
        self.assertEqual(self._counters(self.drill_url)["invoicesAccepted"], 2, [
            (m.name, m.l10n_pl_ksef_error, m.l10n_pl_ksef_document_ids.mapped(lambda d: (d.state, d.status_code,
             d.status_description, d.error))) for m in first | second])
        simulated_numbers = (first | second).l10n_pl_ksef_document_ids.filtered(
            lambda d: d.state == "accepted").mapped("ksef_number")
        self.assertEqual(len(simulated_numbers), 2)
        self.assertFalse((first | second).filtered("l10n_pl_ksef_number"),
                         "the simulator's numbers never block a real KSeF number")
        self.assertEqual((first | second).mapped("state"), ["cancel", "cancel"], "drill invoices never count")
        self.assertEqual(real.l10n_pl_ksef_state, "to_send", "the real invoice waited")
        self.assertEqual(self._counters(self.ksef_url)["invoicesTotal"], 0)

        self.assertEqual((drill.report_invoice_count, drill.report_offline_count, drill.report_in_time_count),
                         (2, 2, 2))
        self.assertTrue(drill.report_all_in_time)
        self.assertIn("all submitted in time", drill.report_summary)
        for expected in numbers + simulated_numbers + [self.user.name, "Offline24", "Emergency mode", self.buyer_pl.name,
                                   "Company loses its connection (offline24)"]:
            self.assertIn(expected, drill.report_html)
        pdf, _type = self.env["ir.actions.report"].with_context(force_report_rendering=True)._render_qweb_pdf(
            "l10n_pl_ksef.action_report_l10n_pl_ksef_drill", drill.ids)
        self.assertTrue(pdf.startswith(b"%PDF"))

        # The company is exactly as before, with its last drill on the readiness panel.
        self.assertEqual(self._settings(), before)
        self.assertFalse(company.l10n_pl_ksef_running_drill_id)
        self.assertEqual(company.l10n_pl_ksef_last_drill_date, fields.Date.context_today(drill))
        self.assertIn(drill.report_summary, company.l10n_pl_ksef_offline_readiness_html)
        self.assertFalse(drill.journal_id.active)

        # Back on the real KSeF: only the real invoice goes; drill invoices never do.
        self.env["account.move"]._l10n_pl_ksef_engine_run(self.company)
        self.assertEqual(real.l10n_pl_ksef_state, "accepted")
        self.assertEqual(self._counters(self.ksef_url)["invoicesTotal"], 1)
        with self.assertRaises(UserError):
            first.with_user(self.user).action_l10n_pl_ksef_post()

    # ---- refusals and safety nets ----------------------------------------------------------

    def test_only_managers_start_and_one_drill_per_company(self):
        drill = self._drill()
        invoicing_user = self.env["res.users"].sudo().create({
            "name": "Fakturzystka", "login": "ksef-drill-invoicing", "company_id": self.company.id,
            "company_ids": [Command.set(self.company.ids)],
            "groups_id": [Command.set([self.env.ref("account.group_account_invoice").id])],
        })
        with self.assertRaises(AccessError):
            drill.with_user(invoicing_user).action_l10n_pl_ksef_drill_start()
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_start()
        other = self._drill()
        with self.assertRaisesRegex(UserError, "already running"):
            other.with_user(self.manager).action_l10n_pl_ksef_drill_start()
        with self.assertRaises(ValidationError):
            other.sudo().state = "running"
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_end()
        self.assertEqual(drill.report_summary, "No invoice was issued during the drill.")

    def test_never_the_simulator_a_company_uses_as_its_ksef(self):
        """The demo's company works with a local simulator as its KSeF: a drill on that same
        simulator would clear it, so it is refused before anything is touched."""
        before = self._settings()
        self.company.sudo().l10n_pl_ksef_base_url = self.drill_url + "/"
        # Something a reset would clear: a Latarnia notice of the company's "real KSeF".
        requests.post(self.drill_url + "/_control/latarnia", json={"action": "maintenance"},
                      timeout=10).raise_for_status()
        notices = requests.get(self.drill_url + "/messages", timeout=10).json()
        self.assertTrue(notices)
        drill = self._drill()
        with self.assertRaisesRegex(UserError, "works with it as its KSeF"):
            drill.with_user(self.manager).action_l10n_pl_ksef_drill_start()
        self.assertEqual(drill.state, "draft")
        self.assertFalse(self.company.sudo().l10n_pl_ksef_running_drill_id)
        self.assertEqual(requests.get(self.drill_url + "/messages", timeout=10).json(), notices,
                         "the simulator was not touched")
        self.company.sudo().l10n_pl_ksef_base_url = before["l10n_pl_ksef_base_url"]
        self.assertEqual(self._settings(), before)
        self.assertEqual(self.env["l10n_pl_ksef.drill"].new({}).simulator_url, "http://127.0.0.1:8766",
                         "drills propose a simulator of their own, not the demo's (8765)")

    def test_drill_journal_only_during_a_drill(self):
        drill = self._drill()
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_start()
        journal = drill.journal_id
        draft = self._user_invoice(post=False)
        self.assertEqual(draft.journal_id, journal)
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_end()
        self.assertEqual(draft.state, "cancel", "drafts of the drill are cancelled too")
        self.assertEqual(self._user_invoice().journal_id, self.real_journal, "outside a drill: the real books")
        late = self.env["account.move"].create({
            "move_type": "out_invoice", "partner_id": self.buyer_pl.id, "journal_id": journal.id,
            "invoice_line_ids": [Command.create({"product_id": self.product.id, "price_unit": 10.0,
                                                 "tax_ids": [Command.set(self.tax_23.ids)]})],
        })
        with self.assertRaisesRegex(UserError, "no KSeF drill is running"):
            late.action_post()

    def test_refused_when_a_real_offline_invoice_is_due_during_the_drill(self):
        real = self._user_invoice()
        real.with_user(self.user).action_l10n_pl_ksef_issue_offline24()
        drill = self._drill(offsets=(0, 10, 10, 3 * 24 * 60))
        with self.assertRaisesRegex(UserError, "(?s)must reach KSeF before the drill would end.*%s" % real.name):
            drill.with_user(self.manager).action_l10n_pl_ksef_drill_start()
        self.assertEqual(self.company.sudo().l10n_pl_ksef_environment, "simulator")
        self.assertEqual(self.company.sudo().l10n_pl_ksef_base_url, self.ksef_url)

    def test_forgotten_drill_ends_by_itself(self):
        before = self._settings()
        drill = self._drill()
        drill.with_user(self.manager).action_l10n_pl_ksef_drill_start()
        self.env["l10n_pl_ksef.drill"]._cron_l10n_pl_ksef_drill_autoend()
        self.assertEqual(drill.state, "running", "not before its end time")
        drill.sudo().end_by = fields.Datetime.now() - datetime.timedelta(minutes=1)
        self.env["l10n_pl_ksef.drill"]._cron_l10n_pl_ksef_drill_autoend()
        self.assertEqual(drill.state, "done")
        self.assertEqual(self._settings(), before)
        script = requests.get(self.drill_url + "/_control/script", timeout=10).json()
        self.assertFalse(script["steps"], "the simulator's script is cleared")
