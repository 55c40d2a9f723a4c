"""Issue 11, findings 1-4, 6, 9, 10 and issue 15 (a drill's end that cannot fail half-way, the
drill report laid out like the invoice): a KSeF manager tries to turn a drill against the
company over RPC, and the drill's end meets trouble."""
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from ..ksef.simulator import control_secret, launcher
from .common import KsefDrillTestMixin, KsefOfflineTestMixin, KsefSimulatorCommon
from ..ksef.simulator.testing import warsaw_today
from .security_common import KsefRpcMixin

PAYLOAD = '<img src=x onerror="fetch(\'/web/dataset/call_kw\')">'


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@tagged("post_install_l10n", "post_install", "-at_install")
class TestKsefDrillSecurity(KsefRpcMixin, KsefDrillTestMixin, KsefOfflineTestMixin, KsefSimulatorCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._ksef_setup_offline_issuing(fallback="auto")
        cls._ksef_setup_drill()
        cls.other_company = cls.env["res.company"].sudo().create({"name": "Konkurencja Sp. z o.o."})

    def _rpc_drill(self, method, drill, *args, **kwargs):
        return self.rpc(self.manager, "l10n_pl_ksef.drill", method, drill.ids, *args, **kwargs)

    def _start(self, drill=None):
        drill = drill or self._drill()
        self._rpc_drill("action_l10n_pl_ksef_drill_start", drill)
        self.assertEqual(drill.state, "running")
        return drill

    # ---- 1. stored XSS in the report ---------------------------------------------------------

    def test_report_is_rendered_from_rows_and_a_payload_stays_text(self):
        drill = self._start()
        with self.assertRaises(AccessError):
            self._rpc_drill("write", drill, {"report_html": PAYLOAD})
        partner = self.env["res.partner"].create({"name": "Klient %s" % PAYLOAD, "country_id": self.pl.id,
                                                  "street": "ul. Prosta 1", "zip": "00-850", "city": "Warszawa"})
        move = self.env["account.move"].with_user(self.user).create({
            "move_type": "out_invoice", "partner_id": partner.id, "invoice_date": warsaw_today(),
            "invoice_line_ids": [Command.create({"product_id": self.product.id, "price_unit": 50.0,
                                                 "tax_ids": [Command.set(self.tax_23.ids)]})]})
        move.action_post()
        self._rpc_drill("action_l10n_pl_ksef_drill_end", drill)
        with self.assertRaises(AccessError):
            self._rpc_drill("write", drill, {"report_summary": PAYLOAD, "report_line_ids": [(5, 0, 0)]})
        with self.assertRaises(AccessError):
            self.rpc(self.manager, "l10n_pl_ksef.drill.report.line", "write", drill.report_line_ids.ids,
                     {"customer": PAYLOAD})
        self.assertEqual(drill.report_line_ids.mapped("number"), [move.name])
        # What the administrator's browser gets (the form's Report tab) and the printed report.
        administrator = self._ksef_rpc_user("ksef_settings_admin", "base.group_system,account.group_account_manager")
        html = self.rpc(administrator, "l10n_pl_ksef.drill", "read", drill.ids, ["report_html"])[0]["report_html"]
        printed, _type = self.env["ir.actions.report"]._render_qweb_html(
            "l10n_pl_ksef.action_report_l10n_pl_ksef_drill", drill.ids)
        for page in (str(html), printed.decode()):
            self.assertNotIn("<img src=x", page)
            self.assertIn("&lt;img src=x", page)
            self.assertIn(move.name, page)

    # ---- 2. forged lifecycle -----------------------------------------------------------------

    def test_lifecycle_fields_are_set_by_the_actions_only(self):
        before = self._settings()
        for values in ({"state": "running"}, {"journal_id": self.real_journal.id},
                       {"started_at": fields.Datetime.now()}, {"report_summary": "OK"},
                       {"saved_token": False}):
            with self.assertRaises(AccessError, msg=values):
                self.rpc(self.manager, "l10n_pl_ksef.drill", "create",
                         [{"name": "Podrobione", "company_id": self.company.id, "simulator_url": self.drill_url,
                           **values}])
        drill = self._drill()
        with self.assertRaises(AccessError):
            self._rpc_drill("write", drill, {"journal_id": self.real_journal.id})
        with self.assertRaises(AccessError):
            self.rpc(self.manager, "l10n_pl_ksef.drill", "create", [{"name": "x", "company_id": self.company.id}],
                     context={"default_state": "running"})
        self._start(drill)
        with self.assertRaises(AccessError):
            self._rpc_drill("write", drill, {"state": "done"})
        with self.assertRaises(AccessError):
            self._rpc_drill("write", drill, {"simulator_url": "http://127.0.0.1:9"})
        with self.assertRaises(AccessError):
            self.rpc(self.manager, "l10n_pl_ksef.drill.step", "write", drill.step_ids.ids, {"applied_at": False})
        # The real journal stays out of reach: End archives the drill's own journal only.
        self._rpc_drill("action_l10n_pl_ksef_drill_end", drill)
        self.assertTrue(self.real_journal.active)
        self.assertEqual(self._settings(), before)

    def test_end_restores_only_a_snapshot_it_really_took(self):
        """A drill made 'running' without Start (a forged state) saved nothing: End must not erase
        the company's token, address and login method."""
        before = self._settings()
        drill = self._drill()
        drill.sudo().write({"state": "running"})   # however it got there: no snapshot was taken
        self._rpc_drill("action_l10n_pl_ksef_drill_end", drill)
        self.assertEqual(drill.state, "done")
        self.assertEqual(self._settings(), before)
        self.assertIn("no snapshot", drill.end_error)

    def test_end_keeps_settings_an_administrator_changed_meanwhile(self):
        drill = self._start()
        # The administrator renews the company's KSeF token during the drill.
        self.company.sudo().l10n_pl_ksef_token = "renewed-real-token"
        self._rpc_drill("action_l10n_pl_ksef_drill_end", drill)
        company = self.company.sudo()
        self.assertEqual(company.l10n_pl_ksef_token, "renewed-real-token")
        self.assertEqual(company.l10n_pl_ksef_base_url, self.ksef_url, "the rest comes back")
        self.assertFalse(company.l10n_pl_ksef_running_drill_id)
        self.assertIn(company._fields["l10n_pl_ksef_token"].string, drill.end_error)
        # ... and the real secrets do not stay on the ended drill (finding 10).
        self.assertFalse(drill.sudo().saved_token)
        self.assertFalse(drill.sudo().saved_base_url)

    # ---- 3. cross-company ----------------------------------------------------------------------

    def test_a_manager_cannot_drive_another_companys_drill(self):
        theirs = self.env["l10n_pl_ksef.drill"].sudo().create({
            "name": "Ich ćwiczenia", "company_id": self.other_company.id, "simulator_url": self.drill_url})
        for method in ("action_l10n_pl_ksef_drill_start", "action_l10n_pl_ksef_drill_end",
                       "action_l10n_pl_ksef_drill_cancel", "action_l10n_pl_ksef_drill_next_step"):
            with self.assertRaises(AccessError, msg=method):
                self._rpc_drill(method, theirs)
        self.assertEqual(theirs.state, "draft")

    # ---- 4. the drill address --------------------------------------------------------------------

    def test_drill_address_is_parsed_not_matched(self):
        for url in ("http://127.0.0.1:1@10.0.0.7:8766", "http://127.0.0.1:8766@example.com",
                    "http://127.0.0.1:8766/../../../etc", "http://127.0.0.1.example.com:8766",
                    "http://localhost:8766?next=http://example.com", "https://127.0.0.1:8766",
                    "file:///etc/passwd", "http://127.0.0.1:notaport"):
            with self.assertRaises(ValidationError, msg=url):
                self.rpc(self.manager, "l10n_pl_ksef.drill", "create",
                         [{"name": "Adres", "company_id": self.company.id, "simulator_url": url}])
        for url in ("http://127.0.0.1:8766", "http://localhost:8766/", "http://127.0.0.2:8766"):
            self.rpc(self.manager, "l10n_pl_ksef.drill", "create",
                     [{"name": "Adres", "company_id": self.company.id, "simulator_url": url}])

    # ---- 6. drill safety tied to the endpoint ----------------------------------------------------

    def test_drill_invoices_never_reach_another_endpoint(self):
        drill = self._start()
        self._wait_script(1)
        move = self._user_invoice()
        self.assertEqual(move.l10n_pl_ksef_drill_id, drill)
        move.with_user(self.user).action_l10n_pl_ksef_issue_offline24()
        # An administrator points the company at its real KSeF while the drill still runs.
        self.company.sudo().write({"l10n_pl_ksef_base_url": self.ksef_url, "l10n_pl_ksef_latarnia_url": self.ksef_url})
        self.assertTrue(move._l10n_pl_ksef_drill_blocked())
        with self.assertRaisesRegex(UserError, "drill invoice"):
            move.with_user(self.user).action_l10n_pl_ksef_post()
        self.env["account.move"]._l10n_pl_ksef_engine_run(self.company)
        self.assertEqual(move.l10n_pl_ksef_state, "offline")
        self.assertEqual(self._counters(self.ksef_url)["invoicesTotal"], 0, "the real KSeF never saw it")

    # ---- 9. the drill's simulator ----------------------------------------------------------------

    def test_a_simulator_the_drill_starts_is_locked_and_stopped(self):
        url = "http://127.0.0.1:%d" % free_port()
        drill = self._start(self.env["l10n_pl_ksef.drill"].with_user(self.manager).create(
            {"name": "Własny symulator", "company_id": self.company.id, "simulator_url": url}))
        pid = drill.sudo().simulator_pid
        self.assertTrue(pid)
        self.addCleanup(launcher.stop, pid)
        self.assertTrue(launcher.is_running(url))
        # Anyone else on the host: no token for any NIP, no script, no faults.
        for path, payload in (("tokens", {"nip": "5265877635", "token": "mine"}), ("faults/clear", {}),
                              ("script/clear", {}), ("reset", {})):
            answer = requests.post("%s/_control/%s" % (url, path), json=payload, timeout=10)
            self.assertEqual(answer.status_code, 403, path)
        answer = requests.post(url + "/_control/faults/clear", json={}, timeout=10,
                               headers=control_secret.headers(drill.sudo().control_secret))
        self.assertEqual(answer.status_code, 200)
        self._rpc_drill("action_l10n_pl_ksef_drill_end", drill)
        for _attempt in range(50):
            if not launcher.is_running(url):
                break
            time.sleep(0.1)
        self.assertFalse(launcher.is_running(url), "the drill's simulator is stopped at its end")
        self.assertFalse(drill.sudo().control_secret)

    # ---- 10. what a manager learns about others ---------------------------------------------------

    def test_errors_do_not_name_other_companies(self):
        self.other_company.sudo().write({"l10n_pl_ksef_environment": "simulator",
                                         "l10n_pl_ksef_base_url": self.drill_url})
        drill = self._drill()
        with self.assertRaises(UserError) as caught:
            self._rpc_drill("action_l10n_pl_ksef_drill_start", drill)
        self.assertNotIn(self.other_company.name, str(caught.exception))
        self.assertIn("another company", str(caught.exception))

    def test_overview_tiles_are_their_owners(self):
        action = self.env["l10n_pl_ksef.dashboard"].with_user(self.user).action_l10n_pl_ksef_open_overview()
        tiles = self.env["l10n_pl_ksef.dashboard"].browse(action["domain"][0][2])
        self.assertTrue(tiles)
        with self.assertRaises(AccessError):
            self.rpc(self.manager, "l10n_pl_ksef.dashboard", "read", tiles.ids, ["name", "count"])
        self.assertFalse(self.rpc(self.manager, "l10n_pl_ksef.dashboard", "search", [("id", "in", tiles.ids)]))

    # ---- issue 15: an End that cannot fail half-way ------------------------------------------------

    def test_end_survives_a_failing_part(self):
        """While the drill runs, the accountant closes the sales period: the drill invoices can no
        longer be cancelled. End restores the company first, reports the trouble on the drill and
        finishes."""
        before = self._settings()
        drill = self._start()
        move = self._user_invoice()
        self.company.sudo().sale_lock_date = warsaw_today()
        self._rpc_drill("action_l10n_pl_ksef_drill_end", drill)
        self.assertEqual(drill.state, "done")
        self.assertEqual(self._settings(), before)
        self.assertFalse(self.company.sudo().l10n_pl_ksef_running_drill_id)
        self.assertIn(self.env._("cancelling the drill invoices"), drill.end_error)
        self.assertEqual(move.state, "posted", "the part that failed is undone, not half-done")
        self.assertIn("Problems while ending", drill.report_html)

    def test_end_with_a_number_a_real_invoice_already_has(self):
        """The drill simulator numbers its invoices like the company's KSeF did: the drill
        invoice gets a number a real invoice already has. KSeF numbers are unique per KSeF
        environment, so nothing clashes: End finishes, restores the settings and cancels the drill
        invoice, whose number the report keeps; the real invoice is untouched. (End surviving a
        part that does fail: test_end_survives_a_failing_part.)"""
        real = self._user_invoice(journal=self.real_journal)
        real.with_user(self.user).action_l10n_pl_ksef_issue_offline24()
        self.env["account.move"]._l10n_pl_ksef_engine_run(self.company)
        self.assertEqual(real.l10n_pl_ksef_state, "accepted")
        before = self._settings()
        drill = self._start(self._drill(offsets=(0, 0, 0, 0)))
        self._wait_script(4)
        move = self._user_invoice()
        move.with_user(self.user).action_l10n_pl_ksef_issue_offline24()
        self._rpc_drill("action_l10n_pl_ksef_drill_end", drill)
        self.assertEqual(drill.state, "done")
        self.assertEqual(self._settings(), before)
        self.assertFalse(self.company.sudo().l10n_pl_ksef_running_drill_id)
        self.assertEqual(move.state, "cancel", "drill invoices are cancelled")
        row = drill.sudo().report_line_ids.filtered(lambda line: line.move_id == move)
        self.assertEqual(row.ksef_number, real.l10n_pl_ksef_number, "the drill simulator gave the real invoice's number")
        self.assertEqual(real.l10n_pl_ksef_state, "accepted")
        self.assertTrue(real.l10n_pl_ksef_number)

    # ---- issue 15: the printed report ------------------------------------------------------------

    def test_printed_report_has_title_and_table_on_the_page(self):
        drill = self._start()
        moves = self._user_invoice() | self._user_invoice() | self._user_invoice()
        self._rpc_drill("action_l10n_pl_ksef_drill_end", drill)
        pdf, _type = self.env["ir.actions.report"].with_context(force_report_rendering=True)._render_qweb_pdf(
            "l10n_pl_ksef.action_report_l10n_pl_ksef_drill", drill.ids)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "drill.pdf"
            path.write_bytes(pdf)
            pages = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                                   check=True).stdout.decode().split("\f")
            boxes = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", str(path), "-"], capture_output=True,
                                   check=True).stdout.decode()
        first = " ".join(pages[0].split())
        self.assertIn("KSeF drill report: %s" % drill.name, first)
        self.assertIn("Invoices issued during the drill", first)
        self.assertIn(moves[0].name, first, "the table starts on the page of its title")
        # The table is never in fragments: each row whole on one page, under the table's header.
        for move in moves:
            holding = [" ".join(page.split()) for page in pages if move.name in page]
            self.assertEqual(len(holding), 1, move.name)
            self.assertIn("Submitted", holding[0].split(move.name)[0])
            self.assertIn("%s Hurtownia" % move.name, holding[0], "the row's cells stay together")

        title_top = min(float(line.split('yMin="')[1].split('"')[0]) for line in boxes.splitlines()
                        if ">drill</word>" in line)
        # Below the letterhead's room (the paper format's top margin, 52 mm as the invoice's), not under it.
        self.assertGreaterEqual(title_top, 52 / 25.4 * 72 - 1, boxes[:2000])
