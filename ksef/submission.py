"""Submission engine: flush many invoices to KSeF exactly once (FACTS §1.5, §1.7, §2, §4.5–§4.12).

Pure Python, no Odoo. The caller (the Odoo side, a script, a test) hands over ``Item`` objects
and gets one ``Outcome`` per item back; a ``Journal`` it implements makes progress durable
*before* each network effect, so that after a timeout or a crash ``Submitter.reconcile`` can ask
KSeF what it already holds instead of sending anything twice.

Why batch sessions
------------------
KSeF allows 180 interactive sends an hour per context (FACTS §4.12): 10,000 offline invoices
would take about 56 hours one by one. One batch session (≤ 10,000 invoices, ≤ 50 parts of
≤ 100 MB before encryption, FACTS §4.6) costs a handful of rate-limited calls: open, close,
some status polls, ``ceil(n/1000)`` result pages and one session-UPO page per 10,000 invoices.
Part uploads and pre-signed downloads are not rate-limited.

The flow
--------
``plan(items, ...)`` groups items into sessions: a session never mixes offline and online
modes; technical corrections (``hash_of_corrected_invoice``) are interactive only (FACTS §1.7);
a group of at least ``batch_threshold`` invoices goes in batch sessions, smaller groups go
interactive.

``Submitter.submit(items)`` runs the plan:

* batch: package + open (``offlineMode`` per session) → ``journal.session_opened`` → parallel
  part uploads → close → ``journal.session_closed`` → poll the session until final → read all
  results (``/invoices`` pages of 1000, plus ``/invoices/failed`` when the counts say some
  failures were not listed) → map every result back to its item **by invoice hash** → session
  UPO pages (pre-signed download, one page holds up to 10,000 invoices) → ``journal.outcomes``
  in chunks → ``journal.session_settled``;
* interactive: open → ``journal.session_opened`` → send each → for sends whose answer was lost
  (5xx, timeout) list the session and resend only what KSeF does not have → poll → close →
  per-invoice UPO through the pre-signed ``upoDownloadUrl`` (not rate-limited).

UPO choice: for a batch the per-invoice UPO endpoints would cost 10,000 rate-limited calls
(1,200/h) or 10,000 pre-signed downloads; the collective session UPO is one download per
10,000 invoices and is the official, MF-signed document. Splitting it per invoice would break
the MF signature, so it is kept whole: every accepted outcome of the session points at the
same ``SessionUpo`` object (``outcome.session_upo``; store its XML once, link the invoices to
it); the engine checks that each accepted invoice's hash and KSeF number appear in it.
``upo="invoice"`` fetches per-invoice UPOs instead (parallel pre-signed downloads);
``upo="none"`` skips UPOs.

Outcome statuses and what the caller does
-----------------------------------------
``accepted``           KSeF number assigned: store it (and the UPO).
``duplicate_adopted``  KSeF answered 440 and the original is our own earlier send of the same
                       hash: store the original's KSeF number like ``accepted``.
``rejected``           KSeF refused the document (``code``/``description``/``details``); fix it
                       (for offline invoices: technical correction, FACTS §1.7).
``retry``              KSeF certainly does NOT hold this item (never sent, or verified absent):
                       send it again after ``retry_after`` seconds.
``pending``            KSeF MAY hold it (answer lost, still processing): never resend it as is;
                       call ``reconcile`` with the journal's sessions first.

Transient trouble (``KsefUnavailable``, ``KsefTimeout``, 5xx, ``RateLimited``) is retried inside
the engine with ``backoff`` while that is safe and short (``max_inline_wait``), and otherwise
surfaces as ``retry``/``pending`` outcomes carrying ``retry_after`` (``RetryLater`` is the
internal signal; ``next_retry_after(outcomes)`` gives the delay for the caller's scheduler).

Exactly once
------------
* An item is reported ``retry`` only when KSeF cannot have it: its batch session was never
  closed (KSeF cancels it, FACTS §4.7 code 440) or the session listing shows it absent.
* ``journal.session_opened`` runs before any upload or send, with every planned item key and
  hash, so the journal knows every session that may hold an item.
* ``reconcile(pending_sessions, items)`` reads those sessions from KSeF and turns what it finds
  into outcomes; only items KSeF does not have come back for resending.
* KSeF's own duplicate check (seller NIP + type + ``P_2``, FACTS §4.9) is the last safety net: a
  440 whose original is the same hash (found in the original session's listing) is adopted.
"""
import concurrent.futures
import contextlib
import dataclasses
import logging
import random
import threading
import time

import requests

from . import batch as batch_package
from . import crypto, safehttp
from . import upo as upo_module
from .errors import (
    KsefError, KsefUnavailable, RateLimited, Rejected, SessionClosed, SessionNotFound, error_from_response,
)

_logger = logging.getLogger(__name__)

ACCEPTED = "accepted"
REJECTED = "rejected"
DUPLICATE_ADOPTED = "duplicate_adopted"
PENDING = "pending"
RETRY = "retry"
FINAL_STATUSES = (ACCEPTED, DUPLICATE_ADOPTED, REJECTED)

ONLINE = "online"   # interactive session kind
BATCH = "batch"

MAX_INVOICES_PER_SESSION = batch_package.MAX_INVOICES
PAGE_SIZE = 1000                      # the largest page KSeF serves (FACTS §4.8)
_ZIP_OVERHEAD_PER_FILE = 200          # local header + central directory + deflate slack, bytes
_PENDING_INVOICE_CODES = (100, 150)
_RETRYABLE_INVOICE_CODES = (405, 500, 550)  # session error / KSeF trouble: not a verdict on the document
_DUPLICATE_CODE = 440

# Outcome preference when one item shows up in several sessions (reconcile).
_RANK = {ACCEPTED: 5, DUPLICATE_ADOPTED: 4, PENDING: 3, REJECTED: 2, RETRY: 1}


# --- data ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Item:
    """One invoice to submit.

    ``key`` is the caller's identifier (e.g. the ``account.move`` id), ``invoice_hash`` the
    Base64 SHA-256 of ``xml_bytes`` (API form; checked here so a stale hash is caught before it
    reaches KSeF), ``offline_mode`` the declared mode, ``hash_of_corrected_invoice`` the hash of a
    rejected original when this is a technical correction (requires ``offline_mode``).
    """
    key: object
    xml_bytes: bytes = dataclasses.field(repr=False)
    invoice_hash: str
    offline_mode: bool
    hash_of_corrected_invoice: str = None

    def __post_init__(self):
        if not isinstance(self.xml_bytes, (bytes, bytearray)) or not self.xml_bytes:
            raise ValueError("item %r: xml_bytes must be non-empty bytes" % (self.key,))
        actual = crypto.sha256_b64(bytes(self.xml_bytes))
        if actual != self.invoice_hash:
            raise ValueError("item %r: invoice_hash %s is not the SHA-256 of its XML (%s)"
                             % (self.key, self.invoice_hash, actual))
        if self.hash_of_corrected_invoice and not self.offline_mode:
            raise ValueError("item %r: a technical correction must be sent with offline_mode=True" % (self.key,))

    @classmethod
    def of(cls, key, xml_bytes, offline_mode, hash_of_corrected_invoice=None):
        """Build an item computing its hash."""
        xml_bytes = bytes(xml_bytes)
        return cls(key, xml_bytes, crypto.sha256_b64(xml_bytes), bool(offline_mode), hash_of_corrected_invoice)

    @property
    def is_technical_correction(self):
        return bool(self.hash_of_corrected_invoice)


@dataclasses.dataclass(frozen=True)
class SessionUpo:
    """One page of a collective session UPO, shared by every outcome it covers (store it once)."""
    session_reference: str
    upo_reference: str
    xml: bytes = dataclasses.field(repr=False)


@dataclasses.dataclass
class Outcome:
    """What happened to one item. See the module docstring for the meaning of ``status``."""
    key: object
    status: str
    invoice_hash: str = None
    ksef_number: str = None
    acquisition_date: object = None      # aware datetime (KSeF receipt = numbering time)
    invoicing_mode: str = None           # "Online" / "Offline" as KSeF decided (FACTS §1.5)
    code: int = None
    description: str = None
    details: list = dataclasses.field(default_factory=list)
    upo_xml: bytes = dataclasses.field(default=None, repr=False)   # per-invoice UPO, when fetched
    session_upo: SessionUpo = dataclasses.field(default=None, repr=False)  # shared session UPO page
    session_reference: str = None
    invoice_reference: str = None
    retry_after: float = None            # for ``retry``/``pending``: seconds before trying again
    original_session_reference: str = None   # for ``duplicate_adopted``
    # The exception behind a retry/pending/rejected outcome, when there was one: the ERP words
    # it for its users (``description`` falls back to its English text for logs).
    error: Exception = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def is_final(self):
        return self.status in FINAL_STATUSES


@dataclasses.dataclass
class SessionPlan:
    kind: str            # ONLINE or BATCH
    offline_mode: bool
    items: list


@dataclasses.dataclass
class Plan:
    sessions: list

    @property
    def interactive(self):
        return [s for s in self.sessions if s.kind == ONLINE]

    @property
    def batches(self):
        return [s for s in self.sessions if s.kind == BATCH]


@dataclasses.dataclass
class SessionRecord:
    """What the journal must keep about a session that may hold our items (JSON-friendly).

    ``hashes`` maps invoice hash -> item key for every item planned into the session.
    No secret (AES key) is needed to reconcile, so none is kept.
    """
    reference: str
    kind: str
    offline_mode: bool
    hashes: dict
    opened_at: float = None

    @property
    def item_keys(self):
        return list(self.hashes.values())

    def to_dict(self):
        return {"reference": self.reference, "kind": self.kind, "offline_mode": self.offline_mode,
                "hashes": dict(self.hashes), "opened_at": self.opened_at}

    @classmethod
    def from_dict(cls, data):
        return cls(data["reference"], data["kind"], bool(data["offline_mode"]), dict(data["hashes"]),
                   data.get("opened_at"))


@dataclasses.dataclass
class ReconcileResult:
    outcomes: list      # Outcome for every item KSeF knows about (or that is still undecided)
    to_resend: list     # Items KSeF does not have: safe to submit again


class RetryLater(Exception):
    """KSeF is unavailable or rate-limiting for longer than the engine waits inline."""

    def __init__(self, after_seconds, cause=None):
        self.after_seconds = float(after_seconds)
        self.cause = cause
        super().__init__("retry after %.1f s%s" % (self.after_seconds, ": %s" % cause if cause else ""))


def backoff(attempt, base=1.0, cap=300.0, rng=None):
    """Exponential backoff with jitter: a delay in ``[d/2, d]`` where ``d = min(cap, base * 2**attempt)``.

    Half fixed, half random ("equal jitter"): never near zero, yet clients that failed together
    do not retry together. ``attempt`` counts from 0.
    """
    if attempt < 0:
        raise ValueError("attempt counts from 0")
    rng = rng or random
    ceiling = min(float(cap), float(base) * (2 ** min(attempt, 62)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def next_retry_after(outcomes):
    """The shortest ``retry_after`` among ``retry``/``pending`` outcomes (None if none)."""
    delays = [o.retry_after for o in outcomes if o.status in (RETRY, PENDING) and o.retry_after is not None]
    return min(delays) if delays else None


class Journal:
    """Callbacks that make progress durable; subclass and override what you store.

    Every method is called from the submitting thread, before the network effect it announces
    becomes possible; an exception raised here stops the engine (nothing more is sent).
    """

    def session_opened(self, record):
        """A session exists in KSeF and is about to receive ``record.hashes``' items.
        Called before any upload or send. Keep ``record`` until ``session_settled``."""

    def batch_part_uploaded(self, session_reference, ordinal_number):
        """One batch part is uploaded (informational)."""

    def session_closed(self, session_reference):
        """The close request was accepted: KSeF will process the session."""

    def outcomes(self, outcomes):
        """A chunk of outcomes (list of ``Outcome``); store them in bulk."""

    def session_settled(self, session_reference):
        """Every item of the session has an outcome; its record may be dropped."""


class MemoryJournal(Journal):
    """A journal in memory: for tests, scripts and as a reference implementation."""

    def __init__(self):
        self.sessions = {}          # reference -> SessionRecord
        self.settled = set()
        self.closed = set()
        self.parts = {}             # reference -> [ordinals]
        self.results = {}           # key -> last Outcome
        self.events = []            # (event, reference or count) in order

    def session_opened(self, record):
        self.sessions[record.reference] = record
        self.events.append(("opened", record.reference))

    def batch_part_uploaded(self, session_reference, ordinal_number):
        self.parts.setdefault(session_reference, []).append(ordinal_number)

    def session_closed(self, session_reference):
        self.closed.add(session_reference)
        self.events.append(("closed", session_reference))

    def outcomes(self, outcomes):
        for outcome in outcomes:
            self.results[outcome.key] = outcome
        self.events.append(("outcomes", len(outcomes)))

    def session_settled(self, session_reference):
        self.settled.add(session_reference)
        self.events.append(("settled", session_reference))

    def pending_sessions(self):
        return [record for ref, record in self.sessions.items() if ref not in self.settled]


# --- planning -----------------------------------------------------------------------------

def _chunks(items, count):
    """Split ``items`` into ``count`` nearly equal consecutive chunks."""
    size, extra = divmod(len(items), count)
    chunks, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append(items[start:end])
        start = end
    return [c for c in chunks if c]


def _batch_chunks(items, max_invoices, budget):
    """Consecutive groups of at most ``max_invoices`` items and ``budget`` estimated ZIP bytes."""
    groups, current, size = [], [], 0
    for item in items:
        cost = len(item.xml_bytes) + _ZIP_OVERHEAD_PER_FILE
        if cost > budget:
            raise ValueError("item %r (%d bytes) cannot fit in a batch package" % (item.key, len(item.xml_bytes)))
        if current and (len(current) >= max_invoices or size + cost > budget):
            groups.append(current)
            current, size = [], 0
        current.append(item)
        size += cost
    if current:
        groups.append(current)
    # even out the sessions when the split is by count (10,001 -> 5,001 + 5,000, not 10,000 + 1)
    if len(groups) > 1 and all(len(g) <= max_invoices for g in groups):
        total_size = sum(len(i.xml_bytes) + _ZIP_OVERHEAD_PER_FILE for i in items)
        count = len(groups)
        even = _chunks(items, count)
        if all(sum(len(i.xml_bytes) + _ZIP_OVERHEAD_PER_FILE for i in g) <= budget for g in even) \
                and total_size <= budget * count:
            groups = even
    return groups


def plan(items, batch_threshold=10, max_part_size=batch_package.MAX_PART_SIZE,
         max_invoices_per_session=MAX_INVOICES_PER_SESSION, max_parts=batch_package.MAX_PARTS):
    """Split ``items`` into interactive sends and batch sessions.

    * a session never mixes offline and online modes;
    * technical corrections go interactive only (with the offline group);
    * a mode group of at least ``batch_threshold`` items goes in batch sessions of at most
      ``max_invoices_per_session`` invoices whose ZIP fits in ``max_parts`` parts of
      ``max_part_size`` bytes (sizes are estimated on the uncompressed XML, which deflate never
      exceeds by more than the per-file slack counted here);
    * keys and hashes must be unique (two identical XML files are the same invoice).
    """
    items = list(items)
    seen_keys, seen_hashes = set(), set()
    for item in items:
        if item.key in seen_keys:
            raise ValueError("item key %r appears twice" % (item.key,))
        if item.invoice_hash in seen_hashes:
            raise ValueError("item %r has the same XML (hash) as another item" % (item.key,))
        seen_keys.add(item.key)
        seen_hashes.add(item.invoice_hash)
    if not 1 <= max_invoices_per_session <= MAX_INVOICES_PER_SESSION:
        raise ValueError("max_invoices_per_session must be 1..%d" % MAX_INVOICES_PER_SESSION)
    if not 1 <= max_parts <= batch_package.MAX_PARTS or not 1 <= max_part_size <= batch_package.MAX_PART_SIZE:
        raise ValueError("batch parts: at most %d parts of %d bytes"
                         % (batch_package.MAX_PARTS, batch_package.MAX_PART_SIZE))
    budget = min(max_parts * max_part_size, batch_package.MAX_PACKAGE_SIZE)
    sessions = []
    for offline_mode in (True, False):
        group = [i for i in items if i.offline_mode == offline_mode and not i.is_technical_correction]
        corrections = [i for i in items if i.offline_mode == offline_mode and i.is_technical_correction]
        interactive = list(corrections)
        if group and len(group) >= batch_threshold:
            for chunk in _batch_chunks(group, max_invoices_per_session, budget):
                sessions.append(SessionPlan(BATCH, offline_mode, chunk))
        else:
            interactive += group
        if interactive:
            count = -(-len(interactive) // max_invoices_per_session)
            for chunk in _chunks(interactive, count):
                sessions.append(SessionPlan(ONLINE, offline_mode, chunk))
    return Plan(sessions)


# --- the engine ---------------------------------------------------------------------------

class _Stop(Exception):
    """Internal: stop sending in this session; the rest of its items get ``outcome``-like status."""

    def __init__(self, status, retry_after, error):
        self.status, self.retry_after, self.error = status, retry_after, error
        super().__init__(str(error))


class Submitter:
    """Runs plans against one authenticated ``ksef.client.KsefClient``.

    ``journal``            a ``Journal`` (default: an in-memory one, ``submitter.journal``);
    ``batch_threshold``    smallest mode group sent in batch (see ``plan``);
    ``max_part_size``      batch part size before encryption (tests use small parts);
    ``upload_workers``     parallel part uploads / UPO downloads;
    ``upo``                "session" (batch: session UPO page shared by its outcomes; interactive:
                           per-invoice UPO), "invoice" (always per-invoice) or "none";
    ``poll_interval``      longest pause between status polls (polls start faster);
    ``session_timeout``    how long to wait for a session/invoices to be processed before
                           reporting ``pending``;
    ``max_inline_wait``    the longest Retry-After/backoff slept inside the engine; longer waits
                           become ``retry``/``pending`` outcomes for the caller's scheduler;
    ``max_attempts``       tries of one idempotent call on transient errors;
    ``uncertain_grace``    pause before checking what KSeF got after a lost send answer;
    ``trust_duplicates``   adopt a 440 even when the original's hash cannot be confirmed;
    ``online_session``     an interactive session the caller already holds open (e.g. the Odoo
                           company's session reused by Post to KSeF): interactive plans send in it;
                           the Submitter never opens another one for them and never closes it
                           (neither after sending nor in ``reconcile``);
    ``is_own_original``    ``f(item, original_ksef_number, original_hash_or_None) -> bool``: the
                           caller's own evidence that a 440's original is this item's (KSeF
                           numbers or file hashes it recorded); a same-hash original always is;
    ``poll_each``          interactive: poll each sent invoice's own status (by the reference KSeF
                           gave) instead of the session listing, for a few invoices (a user
                           waiting): that endpoint allows 1,200 calls an hour, the listing 200;
    ``rng``/``sleep``/``clock`` injectable for tests.
    """

    def __init__(self, client, journal=None, batch_threshold=10, max_part_size=batch_package.MAX_PART_SIZE,
                 max_invoices_per_session=MAX_INVOICES_PER_SESSION, upload_workers=4, upo="session",
                 poll_interval=1.0, session_timeout=600.0, max_inline_wait=30.0, max_attempts=5,
                 backoff_base=0.5, backoff_cap=60.0, uncertain_grace=0.5, trust_duplicates=False,
                 outcome_chunk=1000, rng=None, sleep=time.sleep, clock=time.monotonic,
                 online_session=None, is_own_original=None, poll_each=False):
        if upo not in ("session", "invoice", "none"):
            raise ValueError("upo must be 'session', 'invoice' or 'none'")
        self.client = client
        self.journal = journal if journal is not None else MemoryJournal()
        self.batch_threshold = batch_threshold
        self.max_part_size = max_part_size
        self.max_invoices_per_session = max_invoices_per_session
        self.upload_workers = max(1, int(upload_workers))
        self.upo = upo
        self.poll_interval = poll_interval
        self.session_timeout = session_timeout
        self.max_inline_wait = max_inline_wait
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.uncertain_grace = uncertain_grace
        self.trust_duplicates = trust_duplicates
        self.online_session = online_session
        self.is_own_original = is_own_original
        self.poll_each = poll_each
        self.outcome_chunk = max(1, int(outcome_chunk))
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.clock = clock
        self._local = threading.local()
        self._listings = {}     # session reference -> {hash: InvoiceStatus} (final listings only)
        self._original_listings = {}  # listings of sessions holding originals of duplicates
        self._sent_references = {}    # hash -> invoice reference KSeF gave when it took the send
        self.stats = {"requests": 0}
        self.phase_times = {}   # seconds spent per batch phase (package+open, upload, ...), summed

    @contextlib.contextmanager
    def _phase(self, name):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phase_times[name] = self.phase_times.get(name, 0.0) + time.perf_counter() - started

    # --- public API ----------------------------------------------------------------------

    def plan(self, items):
        return plan(items, self.batch_threshold, self.max_part_size, self.max_invoices_per_session)

    def submit(self, items):
        """Send ``items``; return one ``Outcome`` per item, in the order given."""
        items = list(items)
        self._listings.clear()
        self._original_listings.clear()
        self._sent_references.clear()
        results = {}
        for session_plan in self.plan(items).sessions:
            if session_plan.kind == BATCH:
                outcomes = self._run_batch(session_plan)
            else:
                outcomes = self._run_online(session_plan)
            for outcome in outcomes:
                results[outcome.key] = outcome
        return [results[item.key] for item in items]

    def reconcile(self, pending_sessions, items):
        """Ask KSeF what it holds from ``pending_sessions`` (``SessionRecord``s from the journal).

        ``items`` are the caller's items that may be in those sessions (any superset is fine).
        Returns ``ReconcileResult(outcomes, to_resend)``: outcomes for what KSeF has (or is still
        processing: ``pending``), and the items it does not have. Nothing is sent.
        """
        items = list(items)
        self._listings.clear()
        self._original_listings.clear()
        by_hash = {item.invoice_hash: item for item in items}
        best = {}
        settled = []
        for record in sorted(pending_sessions, key=lambda r: (r.opened_at or 0, r.reference)):
            ours = {h: by_hash[h] for h in record.hashes if h in by_hash}
            try:
                found, session_done = self._reconcile_session(record, ours)
            except RetryLater as exc:
                found = {item.key: self._outcome(item, PENDING, session=record.reference,
                                                 retry_after=exc.after_seconds, error=exc.cause)
                         for item in ours.values()}
                session_done = False
            for key, outcome in found.items():
                if key not in best or _RANK[outcome.status] > _RANK[best[key].status]:
                    best[key] = outcome
            if session_done:
                settled.append(record.reference)
        outcomes = [best[item.key] for item in items if item.key in best and best[item.key].status != RETRY]
        to_resend = [item for item in items if item.key not in best or best[item.key].status == RETRY]
        self._journal_outcomes(outcomes)
        for reference in settled:
            self.journal.session_settled(reference)
        return ReconcileResult(outcomes, to_resend)

    # --- transient-error policy -------------------------------------------------------------

    def _call(self, what, function, *args, **kwargs):
        """Run an idempotent call; retry transient failures with backoff while the waits stay
        short; otherwise raise ``RetryLater``. Non-transient ``KsefError``s propagate."""
        attempt = 0
        while True:
            self.stats["requests"] += 1
            try:
                return function(*args, **kwargs)
            except RateLimited as exc:
                wait = exc.retry_after if exc.retry_after is not None else backoff(
                    attempt, self.backoff_base, self.backoff_cap, self.rng)
                error = exc
            except KsefUnavailable as exc:
                wait = backoff(attempt, self.backoff_base, self.backoff_cap, self.rng)
                error = exc
            attempt += 1
            if attempt >= self.max_attempts or wait > self.max_inline_wait:
                if not isinstance(error, RateLimited):
                    wait = max(wait, backoff(attempt, self.backoff_base * 4, self.backoff_cap * 5, self.rng))
                raise RetryLater(wait, error) from error
            _logger.info("KSeF %s: %s; retrying in %.1f s", what, type(error).__name__, wait)
            self.sleep(wait)

    # --- HTTP to pre-signed URLs (uploads, UPO downloads): one requests.Session per thread -----

    def _http(self):
        session = getattr(self._local, "http", None)
        if session is None:
            session = self._local.http = requests.Session()
        return session

    def _presigned(self, method, url, headers=None, data=None):
        try:
            # A total deadline (plus upload time at 1 MB/s at least) and a size cap, as every KSeF call.
            total = self.client.timeout + (len(data) / 1_000_000 if isinstance(data, (bytes, bytearray)) else 0)
            response = safehttp.bounded_request(self._http(), method, url, total, headers=headers or {}, data=data)
        except (requests.RequestException, ValueError) as exc:
            raise KsefUnavailable("pre-signed %s failed: %s" % (method, type(exc).__name__)) from exc
        if response.status_code not in (200, 201):
            raise error_from_response(response)
        announced = response.headers.get("x-ms-meta-hash")
        if method == "GET" and announced and announced != crypto.sha256_b64(response.content):
            raise KsefUnavailable("downloaded document does not match its x-ms-meta-hash")
        return response.content

    # --- listings --------------------------------------------------------------------------

    def _list(self, reference, failed=False):
        """Every entry of a session's invoice list, page by page, each page retried on its own."""
        from .client import InvoiceStatus
        path = "/sessions/%s/invoices%s" % (reference, "/failed" if failed else "")
        entries, continuation = [], None
        while True:
            headers = {"x-continuation-token": continuation} if continuation else None
            data = self._call("list invoices", lambda: self.client._request(
                "GET", path, params={"pageSize": PAGE_SIZE}, headers=headers).json())
            entries.extend(InvoiceStatus.from_json(entry) for entry in data.get("invoices") or [])
            continuation = data.get("continuationToken")
            if not continuation:
                return entries

    def _final_listing(self, reference, status=None):
        """{hash: InvoiceStatus} of a processed session; the failed list is read only when the
        counts say the main list missed failures."""
        if reference in self._listings:
            return self._listings[reference]
        entries = self._list(reference)
        failed_seen = sum(1 for e in entries if (e.status.code or 0) >= 400)
        if status is not None and (status.failed_invoice_count or 0) > failed_seen:
            entries += self._list(reference, failed=True)
        listing = {}
        for entry in entries:
            previous = listing.get(entry.invoice_hash)
            if previous is None or _entry_rank(entry) > _entry_rank(previous):
                listing[entry.invoice_hash] = entry
        if status is not None and status.is_final and not any(e.is_pending for e in listing.values()):
            self._listings[reference] = listing
        return listing

    # --- outcomes --------------------------------------------------------------------------

    @staticmethod
    def _outcome(item, status, session=None, entry=None, retry_after=None, error=None):
        outcome = Outcome(item.key, status, item.invoice_hash, session_reference=session, retry_after=retry_after)
        if entry is not None:
            outcome.invoice_reference = entry.reference_number
            outcome.ksef_number = entry.ksef_number
            outcome.acquisition_date = entry.acquisition_date
            outcome.invoicing_mode = entry.invoicing_mode
            if entry.status.code != 200:
                outcome.code = entry.status.code
                outcome.description = entry.status.description
                outcome.details = list(entry.status.details)
        if error is not None:
            outcome.error = error
            if outcome.code is None:
                outcome.code = getattr(error, "code", None) or getattr(error, "http_status", None)
            outcome.description = outcome.description or str(error)
            outcome.details = outcome.details or list(getattr(error, "details", []) or [])
        return outcome

    def _outcomes_from_listing(self, items_by_hash, listing, session_reference):
        """Turn a session listing into outcomes for our items; items absent get ``None``."""
        outcomes, duplicates = {}, []
        for invoice_hash, item in items_by_hash.items():
            entry = listing.get(invoice_hash)
            if entry is None:
                continue
            code = entry.status.code
            if code == 200:
                outcomes[item.key] = self._outcome(item, ACCEPTED, session_reference, entry)
            elif code in _PENDING_INVOICE_CODES:
                outcomes[item.key] = self._outcome(item, PENDING, session_reference, entry,
                                                   retry_after=self.poll_interval)
            elif code == _DUPLICATE_CODE:
                duplicates.append((item, entry))
            elif code in _RETRYABLE_INVOICE_CODES:
                outcomes[item.key] = self._outcome(item, RETRY, session_reference, entry,
                                                   retry_after=backoff(1, self.backoff_base, self.backoff_cap,
                                                                       self.rng))
            else:
                outcomes[item.key] = self._outcome(item, REJECTED, session_reference, entry)
        for item, entry in duplicates:
            outcomes[item.key] = self._resolve_duplicate(item, entry, session_reference)
        return outcomes

    def _original_entry(self, session_reference, ksef_number):
        """The entry of an already numbered invoice in its session. Such an entry no longer
        changes, so one listing of the session serves every duplicate that points at it (the
        listing endpoint allows 20 calls a minute)."""
        listing = self._original_listings.get(session_reference)
        if listing is None or not any(e.ksef_number == ksef_number for e in listing.values()):
            listing = self._original_listings[session_reference] = self._final_listing(session_reference)
        return next((e for e in listing.values() if e.ksef_number == ksef_number), None)

    def _resolve_duplicate(self, item, entry, session_reference):
        """440: adopt the original when it is our own earlier send of the same hash."""
        extensions = entry.status.extensions or {}
        original_number = extensions.get("originalKsefNumber")
        original_session = extensions.get("originalSessionReferenceNumber")
        rejected = self._outcome(item, REJECTED, session_reference, entry)
        if not original_number or not original_session:
            return rejected
        try:
            original = self._original_entry(original_session, original_number)
        except (RetryLater, KsefError) as exc:
            # Not knowing is not a rejection: KSeF holds the document; settle it on a later run.
            _logger.info("cannot read original session %s of duplicate %s: %s", original_session, item.key, exc)
            return self._outcome(item, PENDING, session_reference, entry, error=exc,
                                 retry_after=getattr(exc, "after_seconds", None) or getattr(exc, "retry_after", None)
                                 or backoff(1, self.backoff_base, self.backoff_cap, self.rng))
        same_hash = original is not None and original.invoice_hash == item.invoice_hash
        own = same_hash or (self.is_own_original is not None and bool(self.is_own_original(
            item, original_number, original.invoice_hash if original is not None else None)))
        if not own and not (self.trust_duplicates and original is None):
            if original is not None:
                rejected.details = rejected.details + [
                    "The original %s has another content hash (%s): a different document uses this number."
                    % (original_number, original.invoice_hash)]
            return rejected
        adopted = Outcome(item.key, DUPLICATE_ADOPTED, item.invoice_hash, ksef_number=original_number,
                          code=_DUPLICATE_CODE, description=entry.status.description,
                          details=list(entry.status.details), session_reference=original_session,
                          invoice_reference=original.reference_number if original else None,
                          acquisition_date=original.acquisition_date if original else None,
                          invoicing_mode=original.invoicing_mode if original else None,
                          original_session_reference=original_session)
        if not own:
            adopted.details.append("Original content hash not confirmed (trust_duplicates).")
        if self.upo != "none" and original is not None:
            adopted.upo_xml = self._invoice_upo(original_session, original)
        return adopted

    def _invoice_upo(self, session_reference, entry):
        """Per-invoice UPO: the pre-signed URL (not rate-limited), else the API by KSeF number."""
        try:
            if entry.upo_download_url:
                return self._with_retries("download UPO", self._presigned, "GET", entry.upo_download_url)
            return self._call("invoice UPO", self.client.invoice_upo, session_reference,
                              ksef_number=entry.ksef_number)
        except (RetryLater, KsefError) as exc:
            _logger.info("UPO of %s not fetched now (%s); fetch it later by KSeF number",
                         entry.ksef_number, type(exc).__name__)
            return None

    def _with_retries(self, what, function, *args):
        """Like ``_call`` for pre-signed URLs (not counted against API limits)."""
        return self._call(what, function, *args)

    def _attach_invoice_upos(self, outcomes, listing):
        """Per-invoice UPOs for accepted outcomes, downloaded in parallel."""
        wanted = [o for o in outcomes if o.status == ACCEPTED and o.upo_xml is None]
        if not wanted:
            return
        entries = {o.key: listing[o.invoice_hash] for o in wanted}
        with concurrent.futures.ThreadPoolExecutor(self.upload_workers) as pool:
            futures = {pool.submit(self._invoice_upo, o.session_reference, entries[o.key]): o for o in wanted}
            for future in concurrent.futures.as_completed(futures):
                futures[future].upo_xml = future.result()

    def _attach_session_upo(self, outcomes, reference, status):
        """Download the session UPO pages once; link every accepted outcome found in them."""
        accepted = {o.invoice_hash: o for o in outcomes if o.status == ACCEPTED}
        if not accepted or not status.upo_pages:
            return
        for page in status.upo_pages:
            try:
                if page.download_url:
                    xml = self._with_retries("download session UPO", self._presigned, "GET", page.download_url)
                else:
                    xml = self._call("session UPO", self.client.session_upo_page, reference, page.reference_number)
            except (RetryLater, KsefError) as exc:
                _logger.warning("session UPO page %s of %s not fetched (%s)", page.reference_number, reference, exc)
                continue
            shared = SessionUpo(reference, page.reference_number, xml)
            for document in upo_module.parse_upo(xml)["documents"]:
                outcome = accepted.get(document.document_hash)
                if outcome is not None and outcome.ksef_number == document.ksef_number:
                    outcome.session_upo = shared

    def _journal_outcomes(self, outcomes):
        for start in range(0, len(outcomes), self.outcome_chunk):
            self.journal.outcomes(outcomes[start:start + self.outcome_chunk])

    # --- batch sessions --------------------------------------------------------------------

    def _run_batch(self, session_plan):
        items = session_plan.items
        named = [("%05d.xml" % index, item.xml_bytes) for index, item in enumerate(items, start=1)]
        try:
            with self._phase("package+open"):
                session = self._call("open batch session", self.client.open_batch_session, named,
                                     offline_mode=session_plan.offline_mode, max_part_size=self.max_part_size)
        except RetryLater as exc:
            return [self._outcome(item, RETRY, retry_after=exc.after_seconds, error=exc.cause) for item in items]
        except KsefError as exc:   # refused outright (e.g. 21157 sizes): nothing was opened
            return [self._outcome(item, RETRY, retry_after=self.backoff_cap, error=exc) for item in items]
        reference = session.reference_number
        record = SessionRecord(reference, BATCH, session_plan.offline_mode,
                               {item.invoice_hash: item.key for item in items}, time.time())
        self.journal.session_opened(record)

        try:
            with self._phase("upload"):
                self._upload_parts(session)
        except (RetryLater, KsefError) as exc:
            # never closed: KSeF will cancel the session, so none of its items can be in KSeF
            after = exc.after_seconds if isinstance(exc, RetryLater) else backoff(
                2, self.backoff_base, self.backoff_cap, self.rng)
            outcomes = [self._outcome(item, RETRY, reference, retry_after=after,
                                      error=getattr(exc, "cause", None) or exc) for item in items]
            self._journal_outcomes(outcomes)
            self.journal.session_settled(reference)
            return outcomes

        with self._phase("close"):
            closed = self._close_batch(reference)
        if closed is not True:
            status = RETRY if closed is False else PENDING
            outcomes = [self._outcome(item, status, reference, retry_after=self.poll_interval * 4)
                        for item in items]
            self._journal_outcomes(outcomes)
            if status == RETRY:
                self.journal.session_settled(reference)
            return outcomes
        self.journal.session_closed(reference)
        return self._collect(record, {item.invoice_hash: item for item in items})

    def _upload_parts(self, session):
        parts = {part.ordinal_number: part for part in session.package.parts}
        requests_by_ordinal = {r.ordinal_number: r for r in session.part_upload_requests}
        if set(parts) - set(requests_by_ordinal):
            raise KsefError("KSeF gave no upload address for part(s) %s" % sorted(set(parts) - set(requests_by_ordinal)),
                            reference_number=session.reference_number)

        def upload(ordinal):
            request = requests_by_ordinal[ordinal]
            headers = {k: v for k, v in request.headers.items() if v is not None}
            self._call("upload part", self._presigned, request.method.upper(), request.url, headers,
                       parts[ordinal].content)
            return ordinal

        workers = min(self.upload_workers, len(parts))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(upload, ordinal) for ordinal in sorted(parts)]
            try:
                for future in concurrent.futures.as_completed(futures):
                    self.journal.batch_part_uploaded(session.reference_number, future.result())
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _close_batch(self, reference):
        """True: closed (KSeF processes it); False: certainly not closed; None: unknown."""
        for attempt in range(self.max_attempts):
            try:
                self.stats["requests"] += 1
                self.client.close_batch_session(reference)
                return True
            except RateLimited as exc:
                wait = exc.retry_after or backoff(attempt, self.backoff_base, self.backoff_cap, self.rng)
                if wait > self.max_inline_wait:
                    return False        # a 429 is answered before anything happens
                self.sleep(wait)
                continue
            except SessionClosed:
                pass                    # maybe our own earlier close got through: look below
            except KsefUnavailable:
                self.sleep(min(self.uncertain_grace, self.max_inline_wait))
            except KsefError as exc:
                _logger.warning("closing batch session %s refused: %s", reference, exc)
                return False
            try:
                status = self._call("session status", self.client.session_status, reference)
            except RetryLater:
                return None
            if status.code == 440:
                return False            # cancelled: nothing of it will ever be processed
            if status.code != 100:
                return True             # 150 or final: our close got through
        return None

    def _wait_session(self, reference, deadline, final_codes=None):
        """Poll until final (or ``final_codes``); None when the deadline passes first."""
        delay = min(0.2, self.poll_interval)
        while True:
            status = self._call("session status", self.client.session_status, reference)
            if status.is_final or (final_codes and status.code in final_codes):
                return status
            if self.clock() + delay > deadline:
                return None
            self.sleep(delay)
            delay = min(self.poll_interval, delay * 1.5)

    def _collect(self, record, items_by_hash):
        """After closing: wait, read every result, map by hash, UPO, journal."""
        reference = record.reference
        deadline = self.clock() + self.session_timeout
        try:
            with self._phase("wait processing"):
                status = self._wait_session(reference, deadline)
            if status is None:
                outcomes = [self._outcome(item, PENDING, reference, retry_after=self.poll_interval * 10)
                            for item in items_by_hash.values()]
                self._journal_outcomes(outcomes)
                return outcomes
            with self._phase("read results"):
                listing = self._final_listing(reference, status)
                found = self._outcomes_from_listing(items_by_hash, listing, reference)
        except RetryLater as exc:
            outcomes = [self._outcome(item, PENDING, reference, retry_after=exc.after_seconds, error=exc.cause)
                        for item in items_by_hash.values()]
            self._journal_outcomes(outcomes)
            return outcomes
        outcomes = []
        for item in items_by_hash.values():
            outcome = found.get(item.key)
            if outcome is None:  # the processed session does not list it: it is not in KSeF
                outcome = self._outcome(item, RETRY, reference, retry_after=backoff(
                    1, self.backoff_base, self.backoff_cap, self.rng))
                outcome.code, outcome.description = status.code, status.status.description
            outcomes.append(outcome)
        with self._phase("upo"):
            if self.upo == "session":
                self._attach_session_upo(outcomes, reference, status)
            elif self.upo == "invoice":
                self._attach_invoice_upos(outcomes, listing)
        with self._phase("journal"):
            self._journal_outcomes(outcomes)
            self.journal.session_settled(reference)
        return outcomes

    # --- interactive sessions ----------------------------------------------------------------

    def _run_online(self, session_plan):
        items = session_plan.items
        try:
            session = self.online_session or self._call("open online session", self.client.open_online_session)
        except RetryLater as exc:
            return [self._outcome(item, RETRY, retry_after=exc.after_seconds, error=exc.cause) for item in items]
        reference = session.reference_number
        record = SessionRecord(reference, ONLINE, session_plan.offline_mode,
                               {item.invoice_hash: item.key for item in items}, time.time())
        self.journal.session_opened(record)

        results = {}          # key -> Outcome decided without KSeF processing (sync refusals, retry)
        sent = {}             # hash -> item
        uncertain = []        # items whose send answer was lost
        stop = None
        lost_in_a_row = 0
        for index, item in enumerate(items):
            if stop is None and lost_in_a_row >= 3:   # KSeF is not answering: stop, keep the rest unsent
                stop = _Stop(RETRY, backoff(2, self.backoff_base, self.backoff_cap, self.rng),
                             KsefUnavailable("3 invoice sends in a row got no answer"))
            if stop is not None:
                results[item.key] = self._outcome(item, stop.status, reference, retry_after=stop.retry_after,
                                                  error=stop.error)
                continue
            lost_before = len(uncertain)
            stop = self._send_and_file(session, item, sent, uncertain, results)
            if stop is None:
                lost_in_a_row = lost_in_a_row + 1 if len(uncertain) > lost_before else 0

        if uncertain:
            self._settle_uncertain(session, uncertain, sent, results, allow_resend=stop is None)

        outcomes = list(results.values())
        if sent:
            outcomes += self._poll_online(reference, sent)
        if session is not self.online_session:
            try:
                self._call("close online session", self.client.close_online_session, reference)
                self.journal.session_closed(reference)
            except (RetryLater, KsefError) as exc:
                _logger.info("online session %s not closed (%s); it expires on its own", reference, exc)
        self._journal_outcomes(outcomes)
        if all(o.status != PENDING for o in outcomes):
            self.journal.session_settled(reference)
        order = {item.key: index for index, item in enumerate(items)}
        return sorted(outcomes, key=lambda o: order[o.key])

    def _send_one(self, session, item):
        """True: accepted for processing; None: answer lost (uncertain); a ``Rejected`` error:
        refused synchronously. Raises ``_Stop`` when the session must stop sending."""
        attempt = 0
        while True:
            self.stats["requests"] += 1
            try:
                reference = self.client.send_invoice(session, item.xml_bytes, offline_mode=item.offline_mode,
                                                     hash_of_corrected_invoice=item.hash_of_corrected_invoice)
                self._sent_references[item.invoice_hash] = reference
                return True
            except RateLimited as exc:   # answered before anything happened: safe to resend
                wait = exc.retry_after if exc.retry_after is not None else backoff(
                    attempt, self.backoff_base, self.backoff_cap, self.rng)
                if wait > self.max_inline_wait:
                    raise _Stop(RETRY, wait, exc)
                self.sleep(wait)
                attempt += 1
            except (SessionClosed, SessionNotFound) as exc:
                raise _Stop(RETRY, backoff(0, self.backoff_base, self.backoff_cap, self.rng), exc)
            except KsefUnavailable as exc:
                # the invoice may or may not be stored: only the session listing can tell
                attempt += 1
                if attempt >= 2:
                    raise _Stop("uncertain", backoff(attempt, self.backoff_base, self.backoff_cap, self.rng), exc)
                return None
            except Rejected as exc:
                return exc

    def _send_and_file(self, session, item, sent, uncertain, results):
        """Send ``item`` once and file it under ``sent`` (accepted for processing), ``uncertain``
        (answer lost) or ``results`` (refused now, or to retry later). Returns the ``_Stop``
        that should end this session's sending (a lost answer there becomes a retry), or None."""
        reference = session.reference_number
        try:
            verdict = self._send_one(session, item)
        except _Stop as exc:
            if exc.status == "uncertain":
                uncertain.append(item)
                return _Stop(RETRY, exc.retry_after, exc.error)
            results[item.key] = self._outcome(item, exc.status, reference, retry_after=exc.retry_after,
                                              error=exc.error)
            return exc
        if verdict is True:
            sent[item.invoice_hash] = item
        elif verdict is None:
            uncertain.append(item)
        else:
            results[item.key] = self._outcome(item, REJECTED, reference, error=verdict)
        return None

    def _settle_uncertain(self, session, uncertain, sent, results, allow_resend):
        """Lost answers: list the session, keep what KSeF has, resend what it does not; repeat
        for answers lost again, at most ``max_attempts`` rounds (then ``pending``)."""
        reference = session.reference_number
        for round_number in range(self.max_attempts):
            self.sleep(self.uncertain_grace)
            try:
                listing = {e.invoice_hash: e for e in self._list(reference)}
            except RetryLater as exc:
                for item in uncertain:
                    results[item.key] = self._outcome(item, PENDING, reference, retry_after=exc.after_seconds,
                                                      error=exc.cause)
                return
            still_uncertain = []
            for item in uncertain:
                if item.invoice_hash in listing:
                    sent[item.invoice_hash] = item
                elif not allow_resend:
                    results[item.key] = self._outcome(item, RETRY, reference, retry_after=backoff(
                        2, self.backoff_base, self.backoff_cap, self.rng))
                else:  # a stop here ends nothing: the other lost answers still need settling
                    self._send_and_file(session, item, sent, still_uncertain, results)
            uncertain = still_uncertain
            if not uncertain:
                return
            self.sleep(backoff(round_number, self.backoff_base, self.backoff_cap, self.rng))
        for item in uncertain:
            results[item.key] = self._outcome(item, PENDING, reference, retry_after=backoff(
                2, self.backoff_base, self.backoff_cap, self.rng))

    def _poll_online(self, reference, sent):
        """Wait for the sent invoices' final statuses (session list pages), then UPOs."""
        deadline = self.clock() + self.session_timeout
        delay = min(0.2, self.poll_interval)
        # the list endpoint allows 20 calls a minute: the pause grows to 3 s at least
        longest = max(self.poll_interval, 3.0)
        listing = {}
        each = self.poll_each and all(h in self._sent_references for h in sent)
        try:
            while True:
                if each:
                    listing = {h: self._call("invoice status", self.client.invoice_status, reference,
                                             self._sent_references[h]) for h in sent}
                else:
                    listing = {e.invoice_hash: e for e in self._list(reference)}
                waiting = [h for h in sent if h not in listing or listing[h].is_pending]
                if not waiting or self.clock() + delay > deadline:
                    break
                self.sleep(delay)
                delay = min(longest, delay * 2)
        except RetryLater as exc:
            outcomes = [self._outcome(item, PENDING, reference, retry_after=exc.after_seconds, error=exc.cause)
                        for item in sent.values()]
            for outcome in outcomes:
                outcome.invoice_reference = self._sent_references.get(outcome.invoice_hash)
            return outcomes
        found = self._outcomes_from_listing(sent, listing, reference)
        outcomes = []
        for item in sent.values():
            outcome = found.get(item.key) or self._outcome(
                item, PENDING, reference, retry_after=self.poll_interval * 10)  # sent but not listed yet
            outcome.invoice_reference = outcome.invoice_reference or self._sent_references.get(item.invoice_hash)
            outcomes.append(outcome)
        if self.upo != "none":
            self._attach_invoice_upos(outcomes, listing)
        return outcomes

    # --- reconciliation ----------------------------------------------------------------------

    def _reconcile_session(self, record, ours):
        """Outcomes for ``ours`` ({hash: item}) from one journaled session, and whether the
        session is settled (nothing in it can change any more)."""
        reference = record.reference
        try:
            status = self._call("session status", self.client.session_status, reference)
        except SessionNotFound:
            return {}, True
        if record.kind == BATCH and status.code in (100, 440):
            # never closed (or cancelled): KSeF has processed none of its invoices and never will
            # once we stop touching it; its items are not in KSeF
            return {}, True
        deadline = self.clock() + self.session_timeout
        if record.kind == BATCH:
            status = self._wait_session(reference, deadline)
            if status is None:
                return {item.key: self._outcome(item, PENDING, reference, retry_after=self.poll_interval * 10)
                        for item in ours.values()}, False
            listing = self._final_listing(reference, status)
        else:
            delay = min(0.2, self.poll_interval)
            while True:
                listing = {e.invoice_hash: e for e in self._list(reference)}
                if not any(listing[h].is_pending for h in ours if h in listing) or self.clock() + delay > deadline:
                    break
                self.sleep(delay)
                delay = min(self.poll_interval, delay * 1.5)
            keep_open = self.online_session is not None and self.online_session.reference_number == reference
            if status.code == 100 and not keep_open:   # still open: close it so KSeF issues the session UPO
                try:
                    self._call("close online session", self.client.close_online_session, reference)
                except (RetryLater, KsefError) as exc:
                    _logger.info("online session %s not closed during reconcile: %s", reference, exc)
        found = self._outcomes_from_listing(ours, listing, reference)
        accepted = [o for o in found.values() if o.status == ACCEPTED]
        if self.upo != "none" and accepted:
            if record.kind == BATCH and self.upo == "session":
                self._attach_session_upo(accepted, reference, status)
            else:
                self._attach_invoice_upos(accepted, listing)
        done = not any(o.status == PENDING for o in found.values())
        return found, done


def _entry_rank(entry):
    code = entry.status.code
    return 3 if code == 200 else 2 if code in _PENDING_INVOICE_CODES else 1
