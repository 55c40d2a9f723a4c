#!/usr/bin/env python3
# pylint: disable=print-used  # a command-line program: printing is its output
"""Benchmark: flush an offline backlog to KSeF (the local simulator) with ksef.submission.

    python3 scripts/bench_flush.py [-n 10000] [--baseline-seconds 75] [--profile]

Starts the simulator as a subprocess with PRODUCTION rate limits (the Ministry's `limity/limity-api.md`), generates N
small offline FA(3) invoices with ksef.fa3 (distinct P_2), flushes them with the Submitter in
batch sessions and prints wall time, invoices/s, peak memory and the number of HTTP requests;
then the BASELINE in the same run: interactive sends only, under the same limits, for a bounded
time, with the measured rate and the time N would take at that pace. It prints numbers; it is
not a test. Run from the repository root (or anywhere: the root is put on sys.path).
"""
import argparse
import collections
import cProfile
import datetime
import io
import pstats
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
import zoneinfo
from decimal import Decimal as D
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from ksef import fa3  # noqa: E402
from ksef.client import KsefClient  # noqa: E402
from ksef.simulator import start_subprocess, stop_subprocess  # noqa: E402
from ksef.submission import ACCEPTED, Item, MemoryJournal, Submitter, next_retry_after  # noqa: E402

SELLER_NIP = "5265877635"
BASELINE_NIP = "7740001454"
TOKENS = {SELLER_NIP: "bench-token-seller", BASELINE_NIP: "bench-token-baseline"}


# --- count every HTTP request this process makes ------------------------------------------

class RequestCounter:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind = collections.Counter()
        self._original = requests.Session.send

    def install(self):
        counter, original = self, self._original

        def send(session, request, **kwargs):
            path = request.path_url.split("?", 1)[0]
            kind = "%s %s" % (request.method, _shape(path))
            with counter.lock:
                counter.by_kind[kind] += 1
            return original(session, request, **kwargs)
        requests.Session.send = send

    def reset(self):
        with self.lock:
            self.by_kind.clear()

    @property
    def total(self):
        return sum(self.by_kind.values())


def _shape(path):
    """/v2/sessions/20260202-SB-.../invoices -> /v2/sessions/{ref}/invoices (for the table)."""
    parts = []
    for part in path.split("/"):
        parts.append("{ref}" if any(c.isdigit() for c in part) and len(part) > 12 else part)
    return "/".join(parts)


# --- invoices -----------------------------------------------------------------------------

def invoice_xml(nip, number, issue_date):
    net = D("100.00")
    vat = D("23.00")
    return fa3.build(fa3.Invoice(
        seller=fa3.Seller(nip=nip, name="Sprzedawca Testowy", address=fa3.Address(country="PL", line1="ul. A 1")),
        buyer=fa3.Buyer(nip="3861610227", name="Nabywca Testowy", address=fa3.Address(country="PL", line1="ul. B 2")),
        number=number, issue_date=issue_date,
        created_at=datetime.datetime(2026, 2, 2, 9, 0, tzinfo=datetime.timezone.utc),
        totals=fa3.Totals(p_15=net + vat).add("23", net, vat),
        lines=[fa3.Line(name="Usługa", net_amount=net, rate="23", quantity=D(1), unit="szt", unit_price=net)],
    ))


def make_items(nip, count, prefix):
    yesterday = datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Warsaw")).date() - datetime.timedelta(days=1)
    return [Item.of(n, invoice_xml(nip, "%s/%06d" % (prefix, n), yesterday), True) for n in range(count)]


def login(base_url, nip):
    client = KsefClient(base_url=base_url + "/v2", poll_interval=0.2, timeout=60)
    client.authenticate_with_token("Nip", nip, TOKENS[nip], timeout=30)
    return client


# --- runs ---------------------------------------------------------------------------------

def flush(base_url, count, counter, profile):
    started = time.perf_counter()
    items = make_items(SELLER_NIP, count, "BENCH/%d" % int(time.time()))
    generated = time.perf_counter() - started
    print("generated %d offline FA(3) invoices in %.1f s (%.0f B average)"
          % (count, generated, sum(len(i.xml_bytes) for i in items) / count))
    client = login(base_url, SELLER_NIP)
    journal = MemoryJournal()
    submitter = Submitter(client, journal=journal, upload_workers=4, poll_interval=0.5, upo="session",
                          session_timeout=600)
    counter.reset()
    tracemalloc.start()
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    outcomes = submitter.submit(items)
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    accepted = [o for o in outcomes if o.status == ACCEPTED]
    with_upo = [o for o in accepted if o.session_upo is not None]
    sessions = {o.session_reference for o in outcomes}
    requests_made, by_kind = counter.total, dict(counter.by_kind)
    counters = requests.get(base_url + "/_control/counters", timeout=60).json()
    once = all(counters["acceptedByHash"].get(i.invoice_hash) == 1 and
               counters["submissionsByHash"].get(i.invoice_hash) == 1 for i in items)
    by_hash = {o.invoice_hash: o.ksef_number for o in accepted}
    print()
    print("== FLUSH (batch sessions, production rate limits) ==")
    print("invoices             %d" % count)
    print("accepted / with UPO  %d / %d   (statuses: %s)" % (
        len(accepted), len(with_upo), dict(collections.Counter(o.status for o in outcomes))))
    print("batch sessions       %d" % len(sessions))
    print("wall time            %.1f s" % wall)
    print("throughput           %.0f invoices/s" % (count / wall))
    print("peak Python memory   %.1f MB (tracemalloc, during the flush)" % (peak / 1e6))
    print("max RSS              %.1f MB (getrusage, whole bench process)"
          % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    print("HTTP requests        %d" % requests_made)
    for kind, n in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print("    %6d  %s" % (n, kind))
    print("exactly once         %s (simulator: each hash submitted once and accepted once)" % once)
    print("KSeF numbers unique  %s" % (len(set(by_hash.values())) == len(accepted)))
    print("goal <= 120 s        %s" % ("MET" if wall <= 120 and len(with_upo) == count else "NOT MET"))
    if profiler:
        print()
        print("-- client-side profile of the flush (top 15 by cumulative time) --")
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(15)
        print(stream.getvalue())
    phases = getattr(submitter, "phase_times", None)
    if phases:
        print("phases: " + ", ".join("%s %.1f s" % kv for kv in phases.items()))
    return wall


def baseline(base_url, count, seconds, counter):
    """Interactive sends only, same limits, for at most ``seconds``."""
    items = make_items(BASELINE_NIP, 400, "BASE/%d" % int(time.time()))
    client = login(base_url, BASELINE_NIP)
    counter.reset()
    started = time.perf_counter()
    deadline = started + seconds
    sent = 0
    first_block = None
    waits = []
    while items and time.perf_counter() < deadline:
        left = deadline - time.perf_counter()
        submitter = Submitter(client, batch_threshold=10 ** 9, poll_interval=0.2, upo="none",
                              max_inline_wait=0.0, session_timeout=30)
        outcomes = submitter.submit(items[:40])
        accepted = [o for o in outcomes if o.status == ACCEPTED]
        sent += len(accepted)
        done = {o.key for o in outcomes if o.is_final}
        items = [i for i in items if i.key not in done]
        wait = next_retry_after(outcomes)
        if wait:
            if first_block is None:
                first_block = (time.perf_counter() - started, sent, wait)
            waits.append(wait)
            if wait > left:
                break
            time.sleep(wait)
    elapsed = time.perf_counter() - started
    rate_per_hour_measured = sent / elapsed * 3600
    print()
    print("== BASELINE (interactive only, same limits) ==")
    print("ran for              %.1f s" % elapsed)
    print("accepted             %d" % sent)
    if first_block:
        print("first 429 after      %.1f s and %d invoices (Retry-After %s s)" % first_block)
    print("measured rate        %.1f invoices/min (%.0f/h over this window)" % (sent / elapsed * 60,
                                                                               rate_per_hour_measured))
    print("sustained limit      180 sends/h (limity/limity-api.md, per context)")
    hours_measured = count / rate_per_hour_measured if rate_per_hour_measured else float("inf")
    print("time for %d        %.1f h at the measured rate; %.1f h at the 180/h cap"
          % (count, hours_measured, count / 180.0))
    print("HTTP requests        %d" % counter.total)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--count", type=int, default=10000)
    parser.add_argument("--baseline-seconds", type=float, default=75.0)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the client side of the flush")
    parser.add_argument("--sim-log", help="file for the simulator's stderr")
    args = parser.parse_args()
    counter = RequestCounter()
    counter.install()
    with tempfile.TemporaryDirectory(prefix="ksef-bench-") as tmp:
        process, base_url = start_subprocess(Path(tmp) / "state.db", tokens=TOKENS,
                                             rate_limits="production", log_path=args.sim_log)
        try:
            print("simulator at %s (production rate limits)" % base_url)
            flush(base_url, args.count, counter, args.profile)
            if not args.no_baseline:
                baseline(base_url, args.count, args.baseline_seconds, counter)
        finally:
            stop_subprocess(process)


if __name__ == "__main__":
    main()
