"""Server-wide module for the backlog benchmark (``--load=base,web,bench_sqlcount``), not part of
the add-on: counts the SQL statements each Odoo process executes and writes, about once a
second, ``$KSEF_BENCH_SQLCOUNT_DIR/<pid>.json`` = {pid, kind (master/http/cron), queries, rss_kb,
peak_rss_kb}. PostgreSQL is shared on the bench machine: counting in the client needs no
server-side logging and no restart. With ``KSEF_BENCH_PROFILE=1`` every cron job is run under
cProfile and its profile (top functions by cumulative time) written to ``<pid>-<n>.prof.txt``."""
import cProfile
import io
import json
import pstats
import os
import threading
import time

from odoo import sql_db
from odoo.service import server

DIRECTORY = os.environ.get("KSEF_BENCH_SQLCOUNT_DIR")
_state = {"pid": None, "count": 0, "kind": "master", "last": 0.0}
_lock = threading.Lock()


def _memory():
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def _dump():
    rss, peak = _memory()
    path = os.path.join(DIRECTORY, "%d.json" % _state["pid"])
    with open(path + ".tmp", "w") as out:
        json.dump({"pid": _state["pid"], "kind": _state["kind"], "queries": _state["count"],
                   "rss_kb": rss, "peak_rss_kb": peak}, out)
    os.replace(path + ".tmp", path)


def _writer(pid):
    while _state["pid"] == pid:
        with _lock:
            _dump()
        time.sleep(1.0)


def _count(statements=1):
    pid = os.getpid()
    with _lock:
        if _state["pid"] != pid:   # first statement of this (forked) process
            _state["pid"], _state["count"] = pid, 0
            threading.Thread(target=_writer, args=(pid,), daemon=True, name="bench_sqlcount").start()
        _state["count"] += statements


_execute = sql_db.Cursor.execute


def execute(self, query, params=None, log_exceptions=True):
    _count()
    return _execute(self, query, params, log_exceptions)


def _kind(worker_class, kind):
    start = worker_class.start

    def patched(self):
        _state["kind"] = kind
        _count(statements=0)   # listed from its start, queries or not
        return start(self)
    worker_class.start = patched


def _profiled(ir_cron_class):
    callback = ir_cron_class._callback
    runs = [0]

    def patched(self, cron_name, server_action_id):
        profile = cProfile.Profile()
        started = time.perf_counter()
        try:
            return profile.runcall(callback, self, cron_name, server_action_id)
        finally:
            runs[0] += 1
            stream = io.StringIO()
            stream.write("%s: %.1f s\n" % (cron_name, time.perf_counter() - started))
            pstats.Stats(profile, stream=stream).sort_stats("cumulative").print_stats(60)
            with open(os.path.join(DIRECTORY, "%d-%d.prof.txt" % (os.getpid(), runs[0])), "w") as out:
                out.write(stream.getvalue())
    ir_cron_class._callback = patched


if DIRECTORY:
    sql_db.Cursor.execute = execute
    _kind(server.WorkerHTTP, "http")
    _kind(server.WorkerCron, "cron")
    if os.environ.get("KSEF_BENCH_PROFILE"):
        from odoo.addons.base.models.ir_cron import ir_cron
        _profiled(ir_cron)
