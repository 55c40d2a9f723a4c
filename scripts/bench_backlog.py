# pylint: disable=print-used  # a command-line program: printing is its output
# Benchmark (issue: submission engine): flush a backlog of N offline invoices from Odoo to KSeF
# (the local simulator, PRODUCTION rate limits) with the engine's cron code, then the baseline
# in the same run: interactive sending only, same limits, for a bounded time. Run inside
# `odoo shell` on a throwaway copy of the demo database through scripts/bench_backlog.sh (it
# commits: the engine commits its journal before every network effect).
#   KSEF_BENCH_N (10000), KSEF_BENCH_BASELINE_SECONDS (60)
import datetime
import os
import tempfile
import threading
import time
from pathlib import Path

from odoo import Command, fields

from odoo.addons.l10n_pl_ksef.ksef.simulator import start_subprocess, stop_subprocess

N = int(os.environ.get("KSEF_BENCH_N", "10000"))
BASELINE_SECONDS = float(os.environ.get("KSEF_BENCH_BASELINE_SECONDS", "60"))
BASELINE_QUEUE = 300
CHUNK = 1000


def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class PeakRss(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.running = rss_mb(), True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.1)


company = env.company
nip = company._l10n_pl_ksef_nip()
chart = env["account.chart.template"].with_company(company)
tax = chart.ref("vs_kraj_23")
partner = env["res.partner"].search([("vat", "=", "PL7251801126")], limit=1)
product = env["product.product"].search([("default_code", "=", "LAP-01")], limit=1)
Move = env["account.move"].with_context(l10n_pl_ksef_engine=True, tracking_disable=True)
today = fields.Date.context_today(env.user.with_context(tz="Europe/Warsaw"))  # the day KSeF counts in


def queue(count, state):
    started = time.perf_counter()
    ids = []
    for start in range(0, count, CHUNK):
        moves = Move.create([{
            "move_type": "out_invoice", "partner_id": partner.id, "invoice_date": today,
            "invoice_line_ids": [Command.create({"product_id": product.id, "name": "Pozycja %d" % (start + i),
                                                 "quantity": 1, "price_unit": 10.0 + (start + i) % 97,
                                                 "tax_ids": [Command.set(tax.ids)]})],
        } for i in range(min(CHUNK, count - start))])
        moves.action_post()
        moves.action_l10n_pl_ksef_freeze()
        moves._l10n_pl_ksef_write({"l10n_pl_ksef_state": state})
        env.cr.commit()
        ids += moves.ids
        print("  queued %d/%d (%.0f s)" % (len(ids), count, time.perf_counter() - started), flush=True)
    return Move.browse(ids), time.perf_counter() - started


print("company %s (NIP %s); creating + posting + freezing %d offline invoices + %d for the baseline "
      "(not timed as flush)" % (company.name, nip, N, BASELINE_QUEUE), flush=True)
backlog, creation = queue(N, "offline")
baseline_moves, creation2 = queue(BASELINE_QUEUE, "to_send")
print("queued in %.0f s" % (creation + creation2))

token = "bench-backlog-token-%s" % nip
with tempfile.TemporaryDirectory(prefix="ksef-bench-") as tmp:
    process, base_url = start_subprocess(Path(tmp) / "state.db", tokens=["%s:%s" % (nip, token)],
                                         rate_limits="production")
    try:
        company.sudo().write({"l10n_pl_ksef_environment": "simulator", "l10n_pl_ksef_base_url": base_url,
                              "l10n_pl_ksef_auth_method": "token", "l10n_pl_ksef_token": token,
                              "l10n_pl_ksef_timeout": 60.0, "l10n_pl_ksef_batch_threshold": 10})
        # the baseline invoices wait until the flush is measured
        baseline_moves._l10n_pl_ksef_write({"l10n_pl_ksef_next_try": fields.Datetime.now() + datetime.timedelta(days=1)})
        env.cr.commit()
        print("simulator at %s (production rate limits)" % base_url)

        # ---- the flush ---------------------------------------------------------------------
        env.invalidate_all()
        peak = PeakRss()
        rss_before = rss_mb()
        peak.start()
        queries_before = env.cr.sql_log_count
        started = time.perf_counter()
        stats = Move.with_context(l10n_pl_ksef_engine_options={"poll_interval": 1.0})._l10n_pl_ksef_engine_run(company)
        wall = time.perf_counter() - started
        queries = env.cr.sql_log_count - queries_before
        peak.running = False
        env.invalidate_all()
        accepted = Move.search_count([("id", "in", backlog.ids), ("l10n_pl_ksef_state", "=", "accepted"),
                                      ("l10n_pl_ksef_number", "!=", False), ("l10n_pl_ksef_upo_id", "!=", False)])
        counters = __import__("requests").get(base_url + "/_control/counters", timeout=30).json()
        print()
        print("== FLUSH (batch sessions, engine cron code, Odoo) ==")
        print("outcomes             %s" % stats)
        print("accepted with number + UPO  %d / %d" % (accepted, N))
        print("KSeF says accepted   %d (sessions %s)" % (counters["invoicesAccepted"], counters["sessions"]))
        print("wall time            %.1f s" % wall)
        print("invoices per second  %.0f" % (N / wall))
        print("SQL queries          %d (%.2f per invoice)" % (queries, queries / N))
        print("RSS                  %.0f MB before, peak %.0f MB during the flush (+%.0f MB)"
              % (rss_before, peak.peak, peak.peak - rss_before))
        print("goal                 all %d numbered with UPO in <= 120 s: %s"
              % (N, "MET" if accepted == N and wall <= 120 else "NOT MET"))

        # ---- the baseline: interactive only, same limits, bounded time ---------------------
        company.sudo().l10n_pl_ksef_batch_threshold = 10 ** 6
        baseline_moves._l10n_pl_ksef_write({"l10n_pl_ksef_next_try": False})
        env.cr.commit()
        started = time.perf_counter()
        runs = 0
        while time.perf_counter() - started < BASELINE_SECONDS:
            runs += 1
            Move.with_context(l10n_pl_ksef_engine_options={"max_inline_wait": 0.0, "upo": "none",
                                                           "session_timeout": 20.0})._l10n_pl_ksef_engine_run(
                company, limit=40)
            env.invalidate_all()
            waiting = baseline_moves.filtered(lambda m: m.l10n_pl_ksef_state in ("to_send", "offline"))
            if not waiting:
                break
            tries = [t for t in waiting.mapped("l10n_pl_ksef_next_try") if t]
            pause = (min(tries) - fields.Datetime.now()).total_seconds() if tries else 0
            left = BASELINE_SECONDS - (time.perf_counter() - started)
            if pause > left:   # blocked by Retry-After past the window: the window's pace is what it is
                time.sleep(max(0.0, left))
                break
            time.sleep(max(0.0, pause))
        elapsed = time.perf_counter() - started
        env.invalidate_all()
        sent = len(baseline_moves.filtered(lambda m: m.l10n_pl_ksef_state == "accepted"))
        rate = sent / elapsed * 3600 if elapsed else 0
        print()
        print("== BASELINE (interactive only, same limits, engine with batch disabled) ==")
        print("ran for              %.1f s (%d runs)" % (elapsed, runs))
        print("accepted             %d" % sent)
        print("measured rate        %.0f invoices/h over this window" % rate)
        print("time for %d        %.1f h at the measured rate; %.1f h at the 180/h sustained cap"
              % (N, N / rate if rate else float("inf"), N / 180.0))
    finally:
        stop_subprocess(process)
