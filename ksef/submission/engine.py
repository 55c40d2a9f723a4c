"""The engine: ``Submitter`` runs a plan against one authenticated client.

Its parts live beside it, one concern a file: ``retry`` (the one retry rule), ``outcomes``
(listings, outcomes by hash, the 440 rule), ``upos``, ``batch_run``, ``online_run`` and
``reconcile``; ``Submitter`` joins them and keeps the state they share.
"""
import contextlib
import random
import time

from .. import batch as batch_package
from .batch_run import BatchRun
from .items import BATCH, MAX_INVOICES_PER_SESSION
from .journal import MemoryJournal
from .online_run import OnlineRun
from .outcomes import Outcomes
from .planning import plan
from .reconcile import Reconcile
from .retry import Retrying
from .upos import Upos


class Submitter(Retrying, Outcomes, Upos, BatchRun, OnlineRun, Reconcile):
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
    ``online_session``     an interactive session the caller already opened (``OnlineSession``):
                           interactive sends go there and it is left open for the caller
                           (neither closed after sending nor in ``reconcile``);
    ``is_own_original``    ``f(item, original_ksef_number, original_hash_or_None) -> bool``: the
                           caller's own evidence that a 440's original is this item's (KSeF
                           numbers or file hashes it recorded); a same-hash original always is;
    ``poll_each``          interactive: poll each sent invoice's own status (by the reference KSeF
                           gave) instead of the session listing, for a few invoices and a user
                           waiting: that endpoint allows 1,200 calls an hour, the listing 200;
    ``rng``/``sleep``/``clock`` injectable for tests.
    """

    def __init__(self, client, journal=None, batch_threshold=10, max_part_size=batch_package.MAX_PART_SIZE,
                 max_invoices_per_session=MAX_INVOICES_PER_SESSION, upload_workers=4, upo="session",
                 poll_interval=1.0, session_timeout=600.0, max_inline_wait=30.0, max_attempts=5,
                 backoff_base=0.5, backoff_cap=60.0, uncertain_grace=0.5, trust_duplicates=False,
                 outcome_chunk=1000, rng=None, sleep=time.sleep, clock=time.monotonic, online_session=None,
                 is_own_original=None, poll_each=False):
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
        self.outcome_chunk = max(1, int(outcome_chunk))
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.clock = clock
        self.online_session = online_session
        self.is_own_original = is_own_original
        self.poll_each = poll_each
        self._sent_references = {}    # hash -> invoice reference KSeF gave when it took the send
        self._listings = {}     # session reference -> {hash: InvoiceStatus} (final listings only)
        self._original_listings = {}  # listings of sessions holding originals of duplicates
        self._session_upos = {}  # session reference -> [(SessionUpo, its UPO documents)] already read
        self.stats = {"requests": 0}
        self.phase_times = {}   # seconds spent per batch phase (package+open, upload, ...), summed

    @contextlib.contextmanager
    def _phase(self, name):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phase_times[name] = self.phase_times.get(name, 0.0) + time.perf_counter() - started

    # --- public API (``reconcile``: see ``Reconcile``) -------------------------------------

    def plan(self, items):
        return plan(items, self.batch_threshold, self.max_part_size, self.max_invoices_per_session)

    def submit(self, items):
        """Send ``items``; return one ``Outcome`` per item, in the order given."""
        items = list(items)
        self._listings.clear()
        self._original_listings.clear()
        self._session_upos.clear()
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
