#!/usr/bin/env python3
# pylint: disable=print-used  # a command-line program: printing is its output
"""Multi-company, multi-worker backlog flush (scripts/bench_backlog.sh, KSEF_BENCH_MODE=multi).

On copies of the kept template (scripts/bench_backlog_build.py: offline invoices of 3 Polish
companies), for each run: start the KSeF simulator (real HTTP on 127.0.0.1, PRODUCTION rate
limits, the OpenAPI's x-rate-limits, see ksef/simulator/ratelimit.py) with a token per company,
point the companies at it (in `odoo shell`, through the ORM), start a real Odoo server in
prefork mode (``--workers 2 --max-cron-threads 2``) with the bench-only server-wide module
``bench_sqlcount`` (--load, counts SQL statements and memory per process), arm the engine's
cron as the product does (an ``ir.cron.trigger`` row and the ``cron_trigger`` notification) and
wait until every invoice is accepted with a KSeF number and a UPO. Prints flush seconds,
invoices/s, batch sessions, peak RSS per worker process, SQL queries per invoice, the machine's
load; then checks exactly once: every invoice has exactly one KSeF number (all distinct) and one
accepted document, and the simulator accepted and received each invoice hash exactly once.

The baseline run is the single-company flush of the first KSEF_BENCH_BASELINE_N invoices of
company 1, made by the same server setup in the same run: the template's other invoices are
parked (``l10n_pl_ksef_next_try`` a day ahead, written through the ORM as the engine's own
backoff writes it) so the claim query still sees a 100k-row table.
"""
import argparse
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402
import requests  # noqa: E402

from ksef.simulator import start_subprocess, stop_subprocess  # noqa: E402

NIPS = ["5265877635", "7770000005", "9510000009"]
PYTHON = sys.executable
# the server through its launcher script: prefork re-executes sys.argv[0] for its gevent process
ODOO_BIN = str(Path(PYTHON).with_name("odoo"))
BASELINE_N = int(os.environ.get("KSEF_BENCH_BASELINE_N", "10000"))
WORKERS = int(os.environ.get("KSEF_BENCH_WORKERS", "2"))
CRON_THREADS = int(os.environ.get("KSEF_BENCH_CRON_THREADS", "2"))
PORT = int(os.environ.get("KSEF_BENCH_PORT", "18469"))
# Odoo's own limits by default (--limit-time-cpu 60, --limit-time-real-cron = --limit-time-real
# 120): the engine keeps each run within them (its time budget) and hands over to the next run.
LIMIT_CRON = os.environ.get("KSEF_BENCH_LIMIT_CRON")
LIMIT_CPU = os.environ.get("KSEF_BENCH_LIMIT_CPU")
LIMIT_ARGS = (["--limit-time-real-cron", LIMIT_CRON] if LIMIT_CRON else []) + (
    ["--limit-time-cpu", LIMIT_CPU] if LIMIT_CPU else [])
TIMEOUT = float(os.environ.get("KSEF_BENCH_TIMEOUT", "1800"))
GOAL_INVOICES, GOAL_SECONDS, GOAL_RSS_MB = 100000, 600.0, 1024.0

SETUP = r"""
import datetime, json, os
from odoo import fields
config = json.loads(os.environ["KSEF_BENCH_SETUP"])
for nip, token in config["tokens"].items():
    company = env["res.company"].search([("vat", "=", "PL" + nip)], limit=1)
    company.sudo().write({
        "l10n_pl_ksef_environment": "simulator", "l10n_pl_ksef_base_url": config["base_url"],
        "l10n_pl_ksef_latarnia_url": config["base_url"], "l10n_pl_ksef_auth_method": "token",
        "l10n_pl_ksef_token": token, "l10n_pl_ksef_timeout": 60.0, "l10n_pl_ksef_batch_threshold": 10,
        "l10n_pl_ksef_engine_failures": 0})
Move = env["account.move"].sudo().with_context(l10n_pl_ksef_engine=True)
waiting = Move.search([("l10n_pl_ksef_state", "=", "offline")], order="id")
if config["only"]:
    first = env["res.company"].search([("vat", "=", "PL" + config["only_nip"])], limit=1)
    keep = waiting.filtered(lambda m: m.company_id == first)[:config["only"]]
    # parked as the engine parks a retried invoice: next attempt a day ahead
    (waiting - keep)._l10n_pl_ksef_write({"l10n_pl_ksef_next_try": fields.Datetime.now() + datetime.timedelta(days=1)})
    waiting = keep
# the run measures the sending cron alone: the other crons wait (they run at start otherwise)
submit = env.ref("l10n_pl_ksef.ir_cron_l10n_pl_ksef_submit")
later = fields.Datetime.now() + datetime.timedelta(days=1)
env["ir.cron"].sudo().search([("id", "!=", submit.id)]).write({"nextcall": later})
submit.sudo().write({"nextcall": later, "active": True})
env["ir.cron.trigger"].sudo().search([]).unlink()
env.cr.commit()
with open(config["out"], "w") as out:
    json.dump({"ids": waiting.ids, "cron_id": submit.id}, out)
"""


def log(text):
    print(text, flush=True)


def free_port(preferred):
    for port in range(preferred, preferred + 200, 2):
        with socket.socket() as s1, socket.socket() as s2:
            try:
                s1.bind(("127.0.0.1", port))
                s2.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port pair from %d" % preferred)


def load_average():
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def counters_of(directory):
    procs = {}
    for path in glob.glob(os.path.join(directory, "*.json")):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        procs[data["pid"]] = data
    return procs


def rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def children(pid):
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    except OSError:
        return []
    return [int(p) for p in out.split()]


def flush(label, db, addons_path, load_dir, only, tmp):
    """One measured flush; returns a dict of figures."""
    tokens = {nip: "bench-multi-token-%s" % nip for nip in NIPS}
    sim_log = os.path.join(tmp, "%s-simulator.log" % label)
    process, base_url = start_subprocess(Path(tmp) / ("%s-state.db" % label), tokens=tokens,
                                         rate_limits="production", log_path=sim_log)
    server = None
    try:
        out = os.path.join(tmp, "%s-setup.json" % label)
        setup = {"base_url": base_url, "tokens": tokens, "only": only, "only_nip": NIPS[0], "out": out}
        subprocess.run([PYTHON, "-m", "odoo", "shell", "-d", db, "--addons-path", addons_path, "--log-level=warn",
                        "--no-http", "--max-cron-threads=0"], input=SETUP.encode(), check=True,
                       stdout=subprocess.DEVNULL, env=dict(os.environ, TZ="UTC", KSEF_BENCH_SETUP=json.dumps(setup)))
        with open(out) as f:
            prepared = json.load(f)
        ids, cron_id = prepared["ids"], prepared["cron_id"]
        count = len(ids)
        counts_dir = os.path.join(tmp, "%s-sqlcount" % label)
        os.makedirs(counts_dir)
        port = free_port(PORT)
        server_log = os.path.join(tmp, "%s-odoo.log" % label)
        server = subprocess.Popen(
            [ODOO_BIN, "server", "-d", db, "--db-filter", "^%s$" % db, "--addons-path",
             addons_path + "," + load_dir, "--load", "base,web,bench_sqlcount",
             "--workers", str(WORKERS), "--max-cron-threads", str(CRON_THREADS),
             *LIMIT_ARGS, "--http-port", str(port), "--gevent-port", str(port + 1),
             "--http-interface", "127.0.0.1", "--logfile", server_log, "--log-level", "info"],
            env=dict(os.environ, TZ="UTC", KSEF_BENCH_SQLCOUNT_DIR=counts_dir), stdin=subprocess.DEVNULL,
            start_new_session=True)
        # ready when both cron workers have polled the database
        deadline = time.time() + 120
        while time.time() < deadline:
            crons = [p for p in counters_of(counts_dir).values() if p["kind"] == "cron"]
            if len(crons) >= CRON_THREADS:
                break
            if server.poll() is not None:
                raise RuntimeError("Odoo server exited (log: %s)" % server_log)
            time.sleep(0.5)
        time.sleep(2.0)
        before = counters_of(counts_dir)
        connection = psycopg2.connect(dbname=db)
        connection.autocommit = True
        cr = connection.cursor()
        load_before = load_average()
        started = time.perf_counter()
        # what ir.cron._trigger() does: a trigger row, then the notification the cron workers wait for
        cr.execute("INSERT INTO ir_cron_trigger (cron_id, call_at, create_date, write_date) "
                   "VALUES (%s, now() at time zone 'UTC', now() at time zone 'UTC', now() at time zone 'UTC')",
                   [cron_id])
        # the cron workers LISTEN on the "postgres" database (odoo/service/server.py WorkerCron.start)
        notify = psycopg2.connect(dbname="postgres")
        notify.autocommit = True
        notify.cursor().execute("SELECT pg_notify('cron_trigger', %s)", [db])
        notify.close()
        peak = {}
        done = 0
        last_print = 0.0
        while True:
            cr.execute("""SELECT count(*) FROM account_move WHERE id = ANY(%s) AND l10n_pl_ksef_state = 'accepted'
                          AND l10n_pl_ksef_number IS NOT NULL AND l10n_pl_ksef_upo_id IS NOT NULL""", [ids])
            done = cr.fetchone()[0]
            for pid in [server.pid] + children(server.pid):
                rss = rss_mb(pid)
                if rss is not None:
                    peak[pid] = max(peak.get(pid, 0.0), rss)
            elapsed = time.perf_counter() - started
            if done >= count or elapsed > TIMEOUT or server.poll() is not None:
                break
            if elapsed - last_print >= 30:
                last_print = elapsed
                log("  [%s] %.0f s: %d/%d numbered with UPO (load %s)" % (label, elapsed, done, count, load_average()))
            time.sleep(1.0)
        wall = time.perf_counter() - started
        load_after = load_average()
        time.sleep(2.5)   # the counters are written every second
        after = counters_of(counts_dir)
        queries = {pid: data["queries"] - before.get(pid, {}).get("queries", 0) for pid, data in after.items()}
        kinds = {pid: data["kind"] for pid, data in after.items()}
        hwm = {pid: data["peak_rss_kb"] / 1024.0 for pid, data in after.items()}
        cr.execute("SELECT count(*) FROM l10n_pl_ksef_session WHERE engine AND kind = 'batch'")
        batch_sessions = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM l10n_pl_ksef_session WHERE engine AND kind = 'online'")
        online_sessions = cr.fetchone()[0]
        checks = exactly_once(cr, ids, base_url)
        connection.close()
        return {"label": label, "count": count, "done": done, "wall": wall, "queries": sum(queries.values()),
                "queries_by_kind": {k: sum(q for p, q in queries.items() if kinds[p] == k) for k in set(kinds.values())},
                "peak_rss": {pid: (kinds.get(pid, "?"), max(peak.get(pid, 0.0), hwm.get(pid, 0.0)))
                             for pid in set(peak) | set(hwm)},
                "batch_sessions": batch_sessions, "online_sessions": online_sessions,
                "load": (load_before, load_after), "checks": checks, "log": server_log,
                "cron_log": cron_log_counts(server_log, cron_id)}
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        stop_subprocess(process)


def cron_log_counts(server_log, cron_id):
    """From the server log: engine runs (Odoo logs each callback of a job), runs that handed over
    on their time budget, and cron workers Odoo stopped on its limits (never expected)."""
    with open(server_log, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    return {
        "runs": len(re.findall(r"Job .*? \(%d\) processed" % cron_id, text)),
        "handovers": text.count("this run's time is up"),
        "killed": len(re.findall(r"timeout after \d+s|CPU time limit .* reached|virtual real time limit", text)),
    }


def exactly_once(cr, ids, base_url):
    """Never sent twice: one distinct KSeF number per invoice, one accepted document per invoice,
    and KSeF (the simulator) received and accepted each invoice hash once."""
    cr.execute("""SELECT count(*), count(DISTINCT l10n_pl_ksef_number), count(l10n_pl_ksef_number)
                    FROM account_move WHERE id = ANY(%s)""", [ids])
    total, distinct_numbers, numbered = cr.fetchone()
    cr.execute("""SELECT count(*) FILTER (WHERE n = 1), count(*) FILTER (WHERE n > 1)
                    FROM (SELECT move_id, count(*) AS n FROM l10n_pl_ksef_document
                           WHERE move_id = ANY(%s) AND state = 'accepted' GROUP BY move_id) d""", [ids])
    one_document, several_documents = cr.fetchone()
    cr.execute("SELECT l10n_pl_ksef_xml_hash FROM account_move WHERE id = ANY(%s)", [ids])
    hashes = [row[0] for row in cr.fetchall()]
    counters = requests.get(base_url + "/_control/counters", timeout=300).json()
    accepted_once = sum(1 for h in hashes if counters["acceptedByHash"].get(h) == 1)
    submitted_once = sum(1 for h in hashes if counters["submissionsByHash"].get(h) == 1)
    api_calls = {}
    for groups in (counters.get("apiCalls") or {}).values():
        for group, calls in groups.items():
            api_calls[group] = api_calls.get(group, 0) + calls
    return {"api_calls": api_calls, "invoices": total, "numbered": numbered, "distinct_numbers": distinct_numbers,
            "one_accepted_document": one_document, "several_accepted_documents": several_documents,
            "ksef_accepted_once": accepted_once, "ksef_submitted_once": submitted_once,
            "ksef_sessions": counters.get("sessions"),
            "ok": total == numbered == distinct_numbers == one_document == accepted_once == submitted_once
            and not several_documents}


def show(run):
    c = run["checks"]
    workers = sorted(((kind, mb) for kind, mb in run["peak_rss"].values() if kind in ("cron", "http")),
                     key=lambda km: (km[0], -km[1]))
    return [
        ("invoices", "%d" % run["count"]),
        ("numbered with UPO", "%d" % run["done"]),
        ("flush seconds", "%.1f" % run["wall"]),
        ("invoices per second", "%.0f" % (run["done"] / run["wall"])),
        ("batch sessions", "%d (+%d interactive)" % (run["batch_sessions"], run["online_sessions"])),
        ("peak RSS per worker", ", ".join("%s %.0f" % km for km in workers) + " MB"),
        ("SQL queries", "%d" % run["queries"]),
        ("SQL queries per invoice", "%.2f" % (run["queries"] / max(1, run["count"]))),
        ("  of which cron workers", "%.2f" % (run["queries_by_kind"].get("cron", 0) / max(1, run["count"]))),
        ("engine runs (budget hand-overs)", "%d (%d)" % (run["cron_log"]["runs"], run["cron_log"]["handovers"])),
        ("cron workers stopped by Odoo", "%d" % run["cron_log"]["killed"]),
        ("KSeF calls: invoice list/failed", "%d / %d" % (c["api_calls"].get("sessionInvoiceList", 0),
                                                         c["api_calls"].get("sessionFailedInvoiceList", 0))),
        ("KSeF calls: session status+UPO", "%d" % c["api_calls"].get("sessionMisc", 0)),
        ("exactly once", "YES" if c["ok"] else "NO"),
        ("  distinct KSeF numbers", "%d of %d" % (c["distinct_numbers"], c["invoices"])),
        ("  1 accepted document", "%d (more than 1: %d)" % (c["one_accepted_document"], c["several_accepted_documents"])),
        ("  KSeF accepted/received once", "%d / %d" % (c["ksef_accepted_once"], c["ksef_submitted_once"])),
        ("load average before", run["load"][0]),
        ("load average after", run["load"][1]),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-db", required=True)
    parser.add_argument("--multi-db", required=True)
    parser.add_argument("--addons-path", required=True)
    parser.add_argument("--load-dir", required=True)
    args = parser.parse_args()
    runs = []
    keep = os.environ.get("KSEF_BENCH_LOGDIR")
    if keep:
        os.makedirs(keep, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ksef-bench-multi-", dir=keep or None) as tmp:
        log("Odoo prefork server: --workers %d --max-cron-threads %d %s; "
            "simulator with production rate limits; logs in %s"
            % (WORKERS, CRON_THREADS, " ".join(LIMIT_ARGS) or "(Odoo's default time limits)", tmp))
        if BASELINE_N and os.environ.get("KSEF_BENCH_BASELINE_N", "") != "0":
            log("== baseline: %d offline invoices of 1 company ==" % BASELINE_N)
            runs.append(flush("baseline", args.baseline_db, args.addons_path, args.load_dir, BASELINE_N, tmp))
        if os.environ.get("KSEF_BENCH_SKIP_MULTI") != "1":
            log("== multi: every offline invoice of the 3 companies ==")
            runs.append(flush("multi", args.multi_db, args.addons_path, args.load_dir, 0, tmp))
        if keep:
            os.rename(tmp, tmp + "-kept")
            os.makedirs(tmp)
    rows = [show(run) for run in runs]
    print()
    print("%-30s" % "" + "".join("%-44s" % ("%s (%d)" % (r["label"], r["count"])) for r in runs))
    for i, (name, _value) in enumerate(rows[0]):
        print("%-30s" % name + "".join("%-44s" % row[i][1] for row in rows))
    multi = [r for r in runs if r["label"] == "multi"]
    if multi:
        run = multi[0]
        worst = max((mb for kind, mb in run["peak_rss"].values() if kind in ("cron", "http")), default=0.0)
        met = run["done"] == run["count"] and run["wall"] <= GOAL_SECONDS and worst <= GOAL_RSS_MB \
            and run["checks"]["ok"] and not run["cron_log"]["killed"]
        print()
        print("goal: all %d numbered with UPO in <= %.0f s, RSS per worker <= %.0f MB, sent once, "
              "no cron worker stopped by Odoo's limits: %s"
              % (run["count"], GOAL_SECONDS, GOAL_RSS_MB, "MET" if met else "NOT MET"))
        if run["count"] < GOAL_INVOICES:
            print("      (only %d invoices in this template: the goal is stated for %d)" % (run["count"], GOAL_INVOICES))
        if len(runs) == 2:
            base = runs[0]
            print("queries per invoice: %.2f at %d, %.2f at %d" % (
                base["queries"] / base["count"], base["count"], run["queries"] / run["count"], run["count"]))


if __name__ == "__main__":
    main()
