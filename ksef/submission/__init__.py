"""Submission engine: flush many invoices to KSeF exactly once.

Sources: the Ministry's KSeF 2.0 documentation (`sesja-interaktywna.md`, `sesja-wsadowa.md`,
`offline/korekta-techniczna.md`, `offline/automatyczne-okreslanie-trybu-offline.md`,
`faktury/weryfikacja-faktury.md`, `limity/limity-api.md`) and the OpenAPI (status tables in
``ksef.codes``).

Pure Python, no Odoo. The caller (the Odoo side, a script, a test) hands over ``Item`` objects
and gets one ``Outcome`` per item back; a ``Journal`` it implements makes progress durable
*before* each network effect, so that after a timeout or a crash ``Submitter.reconcile`` can ask
KSeF what it already holds instead of sending anything twice.

Why batch sessions
------------------
KSeF allows 180 interactive sends an hour per context (`limity/limity-api.md`): 10,000 offline invoices
would take about 56 hours one by one. One batch session (≤ 10,000 invoices, ≤ 50 parts of
≤ 100 MB before encryption, `sesja-wsadowa.md`) costs a handful of rate-limited calls: open, close,
some status polls, ``ceil(n/1000)`` result pages and one session-UPO page per 10,000 invoices.
Part uploads and pre-signed downloads are not rate-limited.

The flow
--------
``plan(items, ...)`` groups items into sessions: a session never mixes offline and online
modes; technical corrections (``hash_of_corrected_invoice``) are interactive only (`offline/korekta-techniczna.md`);
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
                       (for offline invoices: technical correction, `offline/korekta-techniczna.md`).
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
  closed (KSeF cancels it: session status 440, OpenAPI ``SessionStatusResponse.status``) or the session listing shows it absent.
* ``journal.session_opened`` runs before any upload or send, with every planned item key and
  hash, so the journal knows every session that may hold an item.
* ``reconcile(pending_sessions, items)`` reads those sessions from KSeF and turns what it finds
  into outcomes; only items KSeF does not have come back for resending.
* KSeF's own duplicate check (seller NIP + type + ``P_2``, `faktury/weryfikacja-faktury.md`) is the last safety net: a
  440 whose original is the same hash (found in the original session's listing) is adopted.
"""

from .engine import Submitter
from .items import (
    ACCEPTED, BATCH, DUPLICATE_ADOPTED, FINAL_STATUSES, MAX_INVOICES_PER_SESSION, ONLINE, PENDING, REJECTED, RETRY,
    Item, Outcome, Plan, ReconcileResult, SessionPlan, SessionRecord, SessionUpo,
)
from .journal import Journal, MemoryJournal
from .outcomes import PAGE_SIZE
from .planning import plan
from .retry import RetryLater, backoff, next_retry_after, retried

__all__ = [
    "ACCEPTED", "BATCH", "DUPLICATE_ADOPTED", "FINAL_STATUSES", "MAX_INVOICES_PER_SESSION", "ONLINE", "PAGE_SIZE",
    "PENDING", "REJECTED", "RETRY", "Item", "Journal", "MemoryJournal", "Outcome", "Plan", "ReconcileResult",
    "RetryLater", "SessionPlan", "SessionRecord", "SessionUpo", "Submitter", "backoff", "next_retry_after", "plan",
    "retried",
]
