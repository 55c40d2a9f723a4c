"""Sliding-window rate limits per (context, client IP) and endpoint group (KSeF ``limity/limity-api.md``)."""
import collections
import math
import re
import threading
import time

WINDOWS = (("second", 1.0), ("minute", 60.0), ("hour", 3600.0))
WINDOW_WORDS = {"second": "sekundę", "minute": "minutę", "hour": "godzinę"}

# (method, path regex under /v2, group, (per second, per minute, per hour)); first match wins.
PRODUCTION_LIMITS = [
    ("POST", r"/sessions/online", "onlineSession", (10, 30, 120)),
    ("POST", r"/sessions/online/[^/]+/invoices", "invoiceSend", (10, 30, 180)),
    ("POST", r"/sessions/online/[^/]+/close", "onlineSessionClose", (10, 30, 120)),
    ("POST", r"/sessions/batch", "batchSession", (10, 20, 60)),
    ("POST", r"/sessions/batch/[^/]+/close", "batchSessionClose", (10, 20, 60)),
    ("GET", r"/sessions", "sessionList", (5, 10, 60)),
    ("GET", r"/sessions/[^/]+/invoices/failed", "sessionFailedInvoiceList", (10, 20, 200)),
    ("GET", r"/sessions/[^/]+/invoices", "sessionInvoiceList", (10, 20, 200)),
    ("GET", r"/sessions/[^/]+/invoices/(?!ksef/)[^/]+", "invoiceStatus", (30, 120, 1200)),
    ("GET", r"/sessions/.*", "sessionMisc", (10, 120, 1200)),
    ("POST", r"/invoices/query/metadata", "invoiceMetadata", (8, 16, 20)),
    ("POST", r"/invoices/exports", "invoiceExport", (8, 16, 20)),
    ("GET", r"/invoices/exports/[^/]+", "invoiceExportStatus", (10, 60, 600)),
    ("GET", r"/invoices/ksef/[^/]+", "invoiceDownload", (8, 16, 64)),
    # API 2.7: POST /collective-identifiers (x-rate-limits); its reads fall under "other".
    ("POST", r"/collective-identifiers", "collectiveIdentifier", (10, 60, 120)),
    # Public endpoints (and the rest of the login flow): 60 req/s per IP.
    ("*", r"/auth/.*|/security/.*", "public", (60, None, None)),
    ("*", r".*", "other", (10, 30, 120)),
]
_COMPILED = [(method, re.compile(r"^%s$" % pattern), group, limits)
             for method, pattern, group, limits in PRODUCTION_LIMITS]


def group_of(method, path):
    for rule_method, pattern, group, limits in _COMPILED:
        if rule_method in ("*", method) and pattern.match(path):
            return group, limits
    raise AssertionError("no rate-limit rule for %s %s" % (method, path))


class RateLimiter:
    """``check(...)`` returns None (allowed, and counted) or ``(retry_after_s, message)``."""

    def __init__(self, enabled=True, scale=1.0, clock=time.monotonic):
        self.enabled = enabled
        self.scale = scale
        self.clock = clock
        self.lock = threading.Lock()
        self.hits = collections.defaultdict(collections.deque)
        self.calls = collections.Counter()     # (context, group) -> requests made, 429s included

    def configure(self, enabled=None, scale=None, reset=False):
        with self.lock:
            if enabled is not None:
                self.enabled = bool(enabled)
            if scale is not None:
                if scale <= 0:
                    raise ValueError("scale must be positive")
                self.scale = float(scale)
            if reset:
                self.hits.clear()
                self.calls.clear()

    def check(self, method, path, context, client_ip):
        group, limits = group_of(method, path)
        with self.lock:
            self.calls[(context, group)] += 1
        if not self.enabled:
            return None
        key = (group, context if group != "public" else None, client_ip)
        now = self.clock()
        with self.lock:
            hits = self.hits[key]
            while hits and hits[0] <= now - 3600.0:
                hits.popleft()
            for (name, length), limit in zip(WINDOWS, limits):
                if limit is None:
                    continue
                limit = max(1, int(limit * self.scale))
                # hits are sorted: the limit is reached when the limit-th newest is inside the window
                if len(hits) >= limit and hits[-limit] > now - length:
                    retry_after = max(1, math.ceil(hits[-limit] + length - now))
                    message = "Przekroczono limit %d żądań na %s. Spróbuj ponownie po %d sekundach." % (
                        limit, WINDOW_WORDS[name], retry_after)
                    return retry_after, message
            hits.append(now)
        return None

    def calls_by_context(self):
        """{context: {group: requests}} since the last reset: what a client cost KSeF."""
        with self.lock:
            result = {}
            for (context, group), count in self.calls.items():
                result.setdefault(context or "", {})[group] = count
            return result
