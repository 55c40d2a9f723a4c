# pylint: disable=print-used  # a command-line program: printing is its output
"""Engine drill: the submission engine with REAL processes and COMMITTED data.

Odoo's test runner never commits, so it cannot show what happens when a real cron worker is
killed (SIGKILL) in the middle of a batch, or when two real workers run at once. This drill
does, against a ``python -m ksef.simulator`` subprocess with production rate limits:

* setup: a fresh database ``ksef_drill_<pid>`` (copied from ``--template`` or installed),
  a Polish company on the Polish chart (NIP 5265877635) connected to the simulator, invoices
  queued through the add-on's own queue action;
* scenario A, a worker killed mid-batch, twice, then restarted: 300 offline invoices;
  worker 1 parks right after the journal committed its batch session (before any upload) and
  is SIGKILLed; meanwhile worker 2 must leave that in-flight session alone; worker 3 opens a
  new batch and is SIGKILLed while KSeF, having accepted the close, holds the answer
  (simulator fault ``stall_after_accept``); worker 4 (the restart) must settle everything;
* scenario B, two workers at once: 150 online + 150 offline invoices, two worker processes
  started together.

Every worker is ``python -m odoo shell`` running the real cron entry point
``account.move._cron_l10n_pl_ksef_submit()``; the drill only observes (and, for worker 1,
parks the process after the journal's commit so that the kill point is exact).

Checks, each printed ``PASS <name>`` / ``FAIL <name>: <why>``: every invoice accepted, KSeF
received each invoice once (``submissionsByHash`` = ``acceptedByHash`` = 1), Odoo's accepted
count equals the simulator's, every stored KSeF number and ``l10n_pl_ksef_xml_hash`` equals what
KSeF holds (its stored XML hashes to it; ``GET /invoices/ksef/{n}`` for a sample), the frozen
files still hash to the stored hashes, no engine session left unsettled. Ends with
``N passed, N failed``; exit status 1 on any failure. The simulator and the database are
always cleaned up (``--keep`` keeps the database for a post-mortem).

Run: ``$KSEF_PY scripts/engine_drill.py [--template DB] [--keep]`` (scripts/test.sh step 3).
"""
import argparse
import base64
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ksef import crypto  # noqa: E402
from ksef.simulator import start_subprocess, stop_subprocess  # noqa: E402
from ksef.simulator.testing import SimClient  # noqa: E402

NIP = "5265877635"
TOKEN = "drill-token-5265877635"
COUNT_A = int(os.environ.get("KSEF_DRILL_A", "300"))
COUNT_B = int(os.environ.get("KSEF_DRILL_B", "300"))
COUNT_C = int(os.environ.get("KSEF_DRILL_C", "40"))
WORKER_TIMEOUT = 180.0
# The engine's own defaults, with quicker polls (the simulator processes in well under a second).
ENGINE_OPTIONS = {"poll_interval": 0.3, "session_timeout": 90.0}


def shared_dir():
    return Path(os.environ.get("KSEF_SHARED") or REPO.parent / "shared")


# ---- code run inside `odoo shell` (stdin; `env` is the superuser environment) ---------------

SETUP = r'''
import base64, datetime, json, os
from odoo import Command, fields
nip, count_a, count_b = os.environ["KSEF_DRILL_NIP"], int(os.environ["KSEF_DRILL_A"]), int(os.environ["KSEF_DRILL_B"])
count_c = int(os.environ["KSEF_DRILL_C"])
env["ir.config_parameter"].set_param("l10n_pl_ksef.xsd_path", os.environ["KSEF_DRILL_XSD"])
pln = env.ref("base.PLN")
pln.active = True
# chart_template_load: no automatic install of other Polish modules; the chart is loaded below
company = env["res.company"].with_context(chart_template_load=True).create({
    "name": "Drill Sp. z o.o.", "country_id": env.ref("base.pl").id, "currency_id": pln.id,
    "vat": "PL" + nip, "street": "ul. Marszałkowska 1", "zip": "00-001", "city": "Warszawa",
})
env.user.company_ids |= company
env = env(context=dict(env.context, allowed_company_ids=[company.id]))
company = company.with_env(env)
env["account.chart.template"].try_loading("pl", company=company, install_demo=False)
tax = env["account.chart.template"].with_company(company).ref("vs_kraj_23")
assert tax.l10n_pl_ksef_rate == "23", "chart 'pl' loaded without the KSeF rates: %r" % tax.l10n_pl_ksef_rate
company.sudo().write({
    "l10n_pl_ksef_environment": "simulator", "l10n_pl_ksef_base_url": os.environ["KSEF_DRILL_URL"],
    "l10n_pl_ksef_auth_method": "token", "l10n_pl_ksef_token": os.environ["KSEF_DRILL_TOKEN"],
    # long enough that a stalled answer keeps the worker waiting until the drill kills it
    "l10n_pl_ksef_timeout": 120.0,
    "l10n_pl_ksef_batch_threshold": 10,
})
buyer = env["res.partner"].create({
    "name": "Hurtownia Łódzka S.A.", "is_company": True, "vat": "PL7251801126", "street": "ul. Piotrkowska 100",
    "zip": "90-004", "city": "Łódź", "country_id": env.ref("base.pl").id})
product = env["product.product"].create({"name": "Usługa", "default_code": "SRV", "list_price": 100.0})
Move = env["account.move"].with_company(company).with_context(tracking_disable=True)
today = fields.Date.context_today(env.user.with_context(tz="Europe/Warsaw"))  # the day KSeF counts in

def queue(count, offline, hold):
    moves = Move.create([{
        "move_type": "out_invoice", "partner_id": buyer.id, "invoice_date": today,
        "invoice_line_ids": [Command.create({"product_id": product.id, "name": "Usługa %d" % i, "quantity": 1,
                                             "price_unit": 10.0 + i % 97, "tax_ids": [Command.set(tax.ids)]})],
    } for i in range(count)])
    moves.action_post()
    moves.action_l10n_pl_ksef_queue()            # the add-on's own queueing: freeze + to_send
    assert set(moves.mapped("l10n_pl_ksef_state")) == {"to_send"}, set(moves.mapped("l10n_pl_ksef_state"))
    values = {"l10n_pl_ksef_state": "offline"} if offline else {}
    if hold:     # not yet: released by the drill when its scenario starts
        values["l10n_pl_ksef_next_try"] = fields.Datetime.now() + datetime.timedelta(days=30)
    if values:
        moves._l10n_pl_ksef_write(values)
    env.cr.commit()
    return moves.ids

result = {"company": company.id, "a": queue(count_a, True, False),
          "b_online": queue(count_b // 2, False, True), "b_offline": queue(count_b - count_b // 2, True, True),
          "c": queue(count_c, True, True)}
result["c_xml"] = {str(move.id): base64.b64encode(move._l10n_pl_ksef_frozen_xml()).decode()
                   for move in env["account.move"].browse(result["c"])}
env.cr.commit()
print("DRILL-SETUP " + json.dumps(result), flush=True)
'''

WORKER = r'''
import json, os, time
from contextlib import ExitStack
from unittest.mock import patch
from odoo.addons.l10n_pl_ksef.models import l10n_pl_ksef_engine_journal as engine_journal

Move = type(env["account.move"])
runs = []
run_engine = Move._l10n_pl_ksef_engine_run

def observed_run(self, company, limit=None):      # observation only: what this worker did
    stats = run_engine(self, company, limit=limit)
    runs.append(stats)
    return stats

with ExitStack() as stack:
    stack.enter_context(patch.object(Move, "_l10n_pl_ksef_engine_run", observed_run))
    if os.environ.get("KSEF_DRILL_PARK_AFTER_OPEN"):
        session_opened = engine_journal.EngineJournal.session_opened

        def session_opened_then_park(journal, record):
            session_opened(journal, record)        # the journal commits the session here
            print("DRILL-PARKED " + record.reference, flush=True)
            while True:                            # wait for the SIGKILL: no upload ever happens
                time.sleep(60)
        stack.enter_context(patch.object(engine_journal.EngineJournal, "session_opened", session_opened_then_park))
    print("DRILL-START", flush=True)
    env["account.move"].with_context(
        l10n_pl_ksef_engine_options=json.loads(os.environ["KSEF_DRILL_OPTIONS"]))._cron_l10n_pl_ksef_submit()
env.cr.commit()
print("DRILL-DONE " + json.dumps(runs), flush=True)
'''

VERIFY = r'''
import json, os
from odoo.addons.l10n_pl_ksef.ksef import crypto
ids = json.loads(os.environ["KSEF_DRILL_IDS"])
rows = {}
for move in env["account.move"].browse(ids):
    try:
        frozen = crypto.sha256_b64(move._l10n_pl_ksef_frozen_xml())
    except Exception as error:
        frozen = "unreadable: %s" % error
    rows[move.id] = frozen
print("DRILL-VERIFY " + json.dumps(rows), flush=True)
'''


class Drill:
    def __init__(self, args):
        self.args = args
        self.passed = 0
        self.failed = 0
        self.db = "ksef_drill_%d" % os.getpid()
        self.tmp = Path(tempfile.mkdtemp(prefix="ksef-drill-"))
        self.workers = []          # every Popen started, for the cleanup
        self.sim = None
        self.base_url = None
        self.db_created = False
        addons = self.tmp / "addons"
        addons.mkdir()
        (addons / "l10n_pl_ksef").symlink_to(REPO)
        import odoo
        odoo_root = Path(odoo.__file__).resolve().parent.parent
        self.odoo_args = ["--addons-path=%s,%s,%s" % (odoo_root / "odoo" / "addons", odoo_root / "addons", addons),
                          "--data-dir=%s" % (self.tmp / "data"), "--no-http", "--max-cron-threads=0",
                          "--log-level=warn"]
        self.started = time.monotonic()

    # ---- reporting ------------------------------------------------------------------------

    def log(self, message):
        print("[drill %5.1fs] %s" % (time.monotonic() - self.started, message), flush=True)

    def check(self, name, ok, why=""):
        if ok:
            self.passed += 1
            print("PASS %s" % name, flush=True)
        else:
            self.failed += 1
            print("FAIL %s: %s" % (name, why), flush=True)
        return ok

    # ---- processes ------------------------------------------------------------------------

    def odoo_env(self, **extra):
        environ = dict(os.environ, TZ="UTC", PYTHONUNBUFFERED="1")
        environ.update({k: str(v) for k, v in extra.items()})
        return environ

    def start_shell(self, name, code, **extra):
        out = open(self.tmp / ("%s.out" % name), "wb")
        err = open(self.tmp / ("%s.log" % name), "wb")
        process = subprocess.Popen([sys.executable, "-m", "odoo", "shell", "-d", self.db] + self.odoo_args,
                                   stdin=subprocess.PIPE, stdout=out, stderr=err, env=self.odoo_env(**extra),
                                   cwd=str(self.tmp))
        out.close()
        err.close()
        process.stdin.write(code.encode())
        process.stdin.close()
        process.drill_name = name
        self.workers.append(process)
        return process

    def output(self, process):
        return (self.tmp / ("%s.out" % process.drill_name)).read_text(errors="replace")

    def errors(self, process):
        return (self.tmp / ("%s.log" % process.drill_name)).read_text(errors="replace")

    def marker(self, process, prefix):
        for line in self.output(process).splitlines():
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        return None

    def wait(self, process, timeout=WORKER_TIMEOUT):
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(process)
            raise RuntimeError("%s did not finish within %.0f s; its log ends:\n%s" % (
                process.drill_name, timeout, self.errors(process)[-3000:]))
        return process.returncode

    def kill(self, process):
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(30)

    def run_shell(self, name, code, marker, timeout=WORKER_TIMEOUT, **extra):
        process = self.start_shell(name, code, **extra)
        code = self.wait(process, timeout)
        value = self.marker(process, marker)
        if code != 0 or value is None:
            raise RuntimeError("%s failed (exit %s):\n%s" % (name, code, self.errors(process)[-4000:]))
        return value

    def worker(self, name, **extra):
        return self.start_shell(name, WORKER, KSEF_DRILL_OPTIONS=json.dumps(ENGINE_OPTIONS), **extra)

    def worker_runs(self, process):
        value = self.marker(process, "DRILL-DONE")
        return json.loads(value) if value is not None else None

    def worker_trouble(self, process):
        """Why a finished worker did not run cleanly (exit status, a failed company run), or ''."""
        if process.returncode != 0:
            return "%s exited with %s: %s" % (process.drill_name, process.returncode, self.errors(process)[-2000:])
        if self.worker_runs(process) is None:
            return "%s printed no result: %s" % (process.drill_name, self.errors(process)[-2000:])
        log = self.errors(process)
        if "KSeF sending of company" in log or "Traceback" in log:
            return "%s logged trouble: %s" % (process.drill_name, log[-2000:])
        return ""

    def poll(self, what, condition, timeout=120.0, interval=0.1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(interval)
        raise RuntimeError("timed out waiting for %s" % what)

    # ---- the simulator and the database ----------------------------------------------------

    def control(self, action, payload=None, method="POST"):
        answer = requests.request(method, "%s/_control/%s" % (self.base_url, action), json=payload, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def counters(self):
        return self.control("counters", method="GET")

    def ksef_rows(self):
        """What KSeF holds, from the simulator's own state: every stored invoice, with its XML."""
        connection = sqlite3.connect("file:%s?mode=ro" % (self.tmp / "ksef.db"), uri=True, timeout=30)
        try:
            return connection.execute(
                "SELECT ksef_number, invoice_hash, status_code, xml, session_reference FROM invoices").fetchall()
        finally:
            connection.close()

    def ksef_session_status(self, reference):
        connection = sqlite3.connect("file:%s?mode=ro" % (self.tmp / "ksef.db"), uri=True, timeout=30)
        try:
            row = connection.execute("SELECT status_code FROM sessions WHERE reference = ?", (reference,)).fetchone()
            return row[0] if row else None
        finally:
            connection.close()

    def sql(self, query, params=()):
        connection = psycopg2.connect(dbname=self.db)
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(query, params)
                return cursor.fetchall() if cursor.description else None
        finally:
            connection.close()

    def engine_sessions(self):
        return self.sql("SELECT reference_number, journal_state, kind, offline_mode, invoice_count"
                        " FROM l10n_pl_ksef_session WHERE engine ORDER BY id")

    def states(self, ids):
        return dict(self.sql("SELECT l10n_pl_ksef_state, COUNT(*) FROM account_move WHERE id = ANY(%s)"
                             " GROUP BY l10n_pl_ksef_state", (list(ids),)))

    def create_database(self):
        if self.args.template:
            subprocess.run(["createdb", "-T", self.args.template, self.db], check=True)
            self.db_created = True
            # A database fresh from Odoo's test run was never analysed: PostgreSQL planned the set-up's
            # queries (hundreds of invoices written in one transaction) for empty tables, and one of
            # Odoo's payment-state queries took minutes (set-up 170 s instead of 30 s).
            subprocess.run(["psql", "-q", "-d", self.db, "-c", "ANALYZE"], check=True)
            self.log("database %s copied from %s" % (self.db, self.args.template))
            return
        self.db_created = True
        result = subprocess.run([sys.executable, "-m", "odoo", "-d", self.db, "-i", "l10n_pl_ksef",
                                 "--without-demo=all", "--stop-after-init"] + self.odoo_args,
                                env=self.odoo_env(), cwd=str(self.tmp), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError("installing l10n_pl_ksef failed:\n%s" % result.stderr[-4000:])
        self.log("database %s installed" % self.db)

    def cleanup(self):
        for process in self.workers:
            try:
                self.kill(process)
            except Exception as error:  # noqa: BLE001 - clean up the rest anyway
                self.log("could not stop %s: %s" % (process.drill_name, error))
        if self.sim is not None:
            stop_subprocess(self.sim)
        if self.db_created and not self.args.keep:
            subprocess.run(["dropdb", "--if-exists", "--force", self.db], check=False)
        elif self.db_created:
            self.log("database %s kept (--keep)" % self.db)
        if self.args.keep:
            self.log("logs kept in %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- the exactly-once checks ------------------------------------------------------------

    def check_exactly_once(self, label, ids, received=1):
        """All ``ids`` accepted; KSeF accepted each once (and received it ``received`` times);
        Odoo's numbers and hashes are KSeF's."""
        ids = list(ids)
        moves = self.sql("SELECT id, l10n_pl_ksef_state, l10n_pl_ksef_number, l10n_pl_ksef_xml_hash"
                         " FROM account_move WHERE id = ANY(%s)", (ids,))
        not_accepted = [(i, s) for i, s, _n, _h in moves if s != "accepted"]
        self.check("%s: all %d invoices accepted in Odoo" % (label, len(ids)),
                   len(moves) == len(ids) and not not_accepted,
                   "%d of %d not accepted, states %s" % (len(not_accepted), len(ids), self.states(ids)))
        counters = self.counters()
        hashes = [h for _i, _s, _n, h in moves]
        accepted_by_hash = counters["acceptedByHash"]
        submissions = counters["submissionsByHash"]
        wrong = {h: accepted_by_hash.get(h, 0) for h in hashes if accepted_by_hash.get(h, 0) != 1}
        self.check("%s: KSeF accepted each invoice exactly once" % label, not wrong,
                   "%d hashes accepted != 1 time, e.g. %s" % (len(wrong), list(wrong.items())[:3]))
        resent = {h: submissions.get(h, 0) for h in hashes if submissions.get(h, 0) != received}
        self.check("%s: KSeF received each invoice %s" % (
                       label, "exactly once (no resend)" if received == 1 else "%d times" % received), not resent,
                   "%d hashes received != %d time(s), e.g. %s" % (len(resent), received, list(resent.items())[:3]))
        odoo_accepted = self.sql("SELECT COUNT(*) FROM account_move WHERE l10n_pl_ksef_state = 'accepted'")[0][0]
        self.check("%s: Odoo accepted count == simulator accepted count" % label,
                   odoo_accepted == counters["invoicesAccepted"],
                   "Odoo %d, simulator %d" % (odoo_accepted, counters["invoicesAccepted"]))
        held = {number: (invoice_hash, crypto.sha256_b64(bytes(xml)))
                for number, invoice_hash, status, xml, _s in self.ksef_rows() if status == 200}
        mismatched = []
        for move_id, _state, number, invoice_hash in moves:
            ksef_hash, received = held.get(number, (None, None))
            if not (number and invoice_hash and ksef_hash == invoice_hash == received):
                mismatched.append((move_id, number, invoice_hash, ksef_hash, received))
        self.check("%s: each stored KSeF number and hash is what KSeF received" % label, not mismatched,
                   "%d mismatches, e.g. %s" % (len(mismatched), mismatched[:2]))
        unsettled = [s for s in self.engine_sessions() if s[1] in ("opened", "closed")]
        self.check("%s: no engine session left unsettled" % label, not unsettled, str(unsettled[:3]))

    # ---- the drill ----------------------------------------------------------------------------

    def setup(self):
        self.sim, self.base_url = start_subprocess(
            self.tmp / "ksef.db", tokens=["%s:%s" % (NIP, TOKEN)], rate_limits="production",
            processing_delay=0.1, xsd_dir=shared_dir() / "ksef" / "xsd" / "FA3", log_path=self.tmp / "simulator.log")
        self.log("simulator at %s (production rate limits)" % self.base_url)
        self.create_database()
        ids = json.loads(self.run_shell(
            "setup", SETUP, "DRILL-SETUP", timeout=420, KSEF_DRILL_NIP=NIP, KSEF_DRILL_TOKEN=TOKEN, KSEF_DRILL_URL=self.base_url,
            KSEF_DRILL_XSD=shared_dir() / "ksef" / "xsd" / "FA3", KSEF_DRILL_A=COUNT_A, KSEF_DRILL_B=COUNT_B,
            KSEF_DRILL_C=COUNT_C))
        self.ids_a, self.ids_b, self.ids_c = ids["a"], ids["b_online"] + ids["b_offline"], ids["c"]
        self.xml_c = {int(k): base64.b64decode(v) for k, v in ids["c_xml"].items()}
        self.log("company %s on chart 'pl'; queued %d offline (A), %d + %d (B) and %d (C) held"
                 % (ids["company"], len(self.ids_a), len(ids["b_online"]), len(ids["b_offline"]), len(self.ids_c)))

    def scenario_a(self):
        self.log("A: worker 1 runs the cron and parks right after its journal commits the batch session")
        first = self.worker("a1-parked", KSEF_DRILL_PARK_AFTER_OPEN=1)
        reference = self.poll("worker 1 to park", lambda: self.marker(first, "DRILL-PARKED")
                              or (first.poll() is not None and "exited"), timeout=WORKER_TIMEOUT)
        if reference == "exited":
            raise RuntimeError("worker 1 exited before opening a session:\n%s" % self.errors(first)[-4000:])
        sessions = self.engine_sessions()
        self.check("A: the batch session is committed before any upload",
                   [s[:3] for s in sessions] == [(reference, "opened", "batch")] and sessions[0][4] == len(self.ids_a)
                   and self.states(self.ids_a) == {"sending": len(self.ids_a)}
                   and self.ksef_session_status(reference) == 100 and self.counters()["invoicesTotal"] == 0,
                   "sessions %s, states %s, KSeF session status %s, counters %s" % (
                       sessions, self.states(self.ids_a), self.ksef_session_status(reference), self.counters()))

        self.log("A: worker 2 runs while worker 1 is alive (in-flight session)")
        second = self.worker("a2-concurrent")
        self.wait(second)
        trouble = self.worker_trouble(second)
        sessions = self.engine_sessions()
        self.check("A: a second worker leaves the in-flight session alone",
                   not trouble and [s[:2] for s in sessions] == [(reference, "opened")]
                   and self.states(self.ids_a) == {"sending": len(self.ids_a)}
                   and self.counters()["sessions"] == {"Batch": 1},
                   trouble or "sessions %s, states %s, counters %s" % (
                       sessions, self.states(self.ids_a), self.counters()))

        self.kill(first)
        self.log("A: worker 1 SIGKILLed (exit %s); KSeF will hold the next batch close's answer" % first.returncode)
        self.control("faults", {"stall_after_accept_seconds": 150, "stall_after_accept_count": 1})
        third = self.worker("a3-killed-after-close")

        def accepted_but_unanswered():
            if third.poll() is not None:
                return "exited"
            opened = [s for s in self.engine_sessions() if s[0] != reference and s[1] == "opened"]
            return opened and self.counters()["invoicesAccepted"] >= len(self.ids_a) and opened[0][0]
        second_reference = self.poll("KSeF to accept worker 3's batch", accepted_but_unanswered,
                                     timeout=WORKER_TIMEOUT, interval=0.2)
        if second_reference == "exited":
            raise RuntimeError("worker 3 exited before its batch was accepted:\n%s" % self.errors(third)[-4000:])
        self.kill(third)
        self.log("A: worker 3 SIGKILLed while waiting for the close answer (session %s)" % second_reference)
        sessions = dict((s[0], s[1]) for s in self.engine_sessions())
        self.check("A: killed after KSeF accepted the batch, before Odoo knew",
                   sessions.get(reference) == "settled" and sessions.get(second_reference) == "opened"
                   and self.states(self.ids_a) == {"sending": len(self.ids_a)}
                   and self.ksef_session_status(reference) == 100,
                   "journal %s, states %s, first KSeF session status %s" % (
                       sessions, self.states(self.ids_a), self.ksef_session_status(reference)))

        self.control("faults/clear")
        self.log("A: worker 4 (the restart)")
        fourth = self.worker("a4-restart")
        self.wait(fourth)
        trouble = self.worker_trouble(fourth)
        self.check("A: the restarted worker runs cleanly", not trouble, trouble)
        self.log("A: restart did %s" % self.worker_runs(fourth))
        self.check_exactly_once("A", self.ids_a)

    def scenario_b(self):
        self.sql("UPDATE account_move SET l10n_pl_ksef_next_try = NULL WHERE id = ANY(%s)", (self.ids_b,))
        self.log("B: %d invoices (online + offline) released; two workers start at once" % len(self.ids_b))
        workers = [self.worker("b1"), self.worker("b2")]
        for process in workers:
            self.wait(process)
        trouble = "; ".join(filter(None, (self.worker_trouble(p) for p in workers)))
        self.check("B: both workers run cleanly", not trouble, trouble)
        for process in workers:
            self.log("B: %s did %s" % (process.drill_name, self.worker_runs(process)))
        self.check_exactly_once("B", self.ids_b)

    def scenario_c(self):
        """A database restored from a backup taken before its invoices were sent: KSeF already
        holds them, Odoo sends them again; KSeF answers 440 (duplicate) and the engine must
        adopt the originals (same hash), never mark them rejected."""
        client = SimClient(self.base_url)
        client.login(NIP, TOKEN)
        before = self.counters()["invoicesAccepted"]
        reference = client.send_batch({"%05d.xml" % i: self.xml_c[move_id] for i, move_id in
                                       enumerate(self.ids_c, start=1)}, offline_mode=True)
        self.poll("KSeF to accept the earlier send", lambda: self.counters()["invoicesAccepted"]
                  >= before + len(self.ids_c), timeout=60, interval=0.3)
        self.log("C: KSeF already holds the %d invoices (session %s); Odoo, restored, sends them again"
                 % (len(self.ids_c), reference))
        self.sql("UPDATE account_move SET l10n_pl_ksef_next_try = NULL WHERE id = ANY(%s)", (self.ids_c,))
        worker = self.worker("c1-after-restore")
        self.wait(worker)
        trouble = self.worker_trouble(worker)
        self.check("C: the worker runs cleanly", not trouble, trouble)
        self.log("C: worker did %s" % self.worker_runs(worker))
        self.check_exactly_once("C", self.ids_c, received=2)

    def final_checks(self):
        ids = self.ids_a + self.ids_b + self.ids_c
        frozen = json.loads(self.run_shell("verify", VERIFY, "DRILL-VERIFY", KSEF_DRILL_IDS=json.dumps(ids)))
        stored = dict(self.sql("SELECT id, l10n_pl_ksef_xml_hash FROM account_move WHERE id = ANY(%s)", (ids,)))
        bad = [(i, stored.get(int(i)), h) for i, h in frozen.items() if stored.get(int(i)) != h]
        self.check("all: every frozen file still hashes to its stored l10n_pl_ksef_xml_hash",
                   len(frozen) == len(ids) and not bad, "%d bad, e.g. %s" % (len(bad), bad[:2]))
        # the official download: what KSeF serves under the KSeF number is the frozen file
        sample = self.sql("SELECT l10n_pl_ksef_number, l10n_pl_ksef_xml_hash FROM account_move"
                          " WHERE id = ANY(%s) AND l10n_pl_ksef_number IS NOT NULL ORDER BY id", (ids,))
        sample = sample[::max(1, len(sample) // 5)][:5]
        client = SimClient(self.base_url)
        client.login(NIP, TOKEN)
        wrong = []
        for number, invoice_hash in sample:
            answer = client.call("GET", "/v2/invoices/ksef/%s" % number)
            if answer.status_code != 200 or crypto.sha256_b64(answer.content) != invoice_hash:
                wrong.append((number, answer.status_code))
        self.check("all: GET /invoices/ksef/{n} serves the stored hash's file (%d sampled)" % len(sample),
                   sample and not wrong, str(wrong or "no invoice to sample"))
        counters = self.counters()
        self.log("simulator: %d invoices, %d accepted, sessions %s" % (
            counters["invoicesTotal"], counters["invoicesAccepted"], counters["sessions"]))

    def run(self):
        try:
            self.setup()
            for step in (self.scenario_a, self.scenario_b, self.scenario_c, self.final_checks):
                try:
                    step()
                except Exception as error:  # noqa: BLE001 - report it, go on with the next scenario
                    self.check(step.__name__, False, "%s: %s" % (type(error).__name__, error))
        except Exception as error:  # noqa: BLE001 - setup trouble is one failure, then clean up
            self.check("setup", False, "%s: %s" % (type(error).__name__, error))
        finally:
            self.cleanup()
        self.log("done")
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 0 if self.failed == 0 and self.passed else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--template", help="copy this installed database instead of installing l10n_pl_ksef")
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs (post-mortem)")
    return Drill(parser.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
