"""Local KSeF 2.0 simulator: a real HTTP server speaking the official OpenAPI paths and JSON shapes.

Run it
------
::

    python -m ksef.simulator --port 0 --state /tmp/ksef-sim.db \\
        --token 5265877635:my-ksef-token [--token NIP:TOKEN ...] \\
        [--rate-limits production|off] [--xsd-dir DIR] [--processing-delay 0.2] \\
        [--access-token-ttl 900] [--seed 0] [--verbose]

The first line on stdout is the base URL (``http://127.0.0.1:PORT``); the API lives under
``<base>/v2`` and the Latarnia under ``<base>/status`` and ``<base>/messages``. It binds to
127.0.0.1 only. ``--xsd-dir`` defaults to ``$KSEF_SHARED/ksef/xsd/FA3`` or
``<repo>/../shared/ksef/xsd/FA3``. All state (MF keys, tokens, sessions, invoice XML, UPO
page references, Latarnia messages, the token-signing secret) is in the SQLite ``--state`` file:
stopping and starting the process loses nothing. SIGTERM/SIGINT stop it cleanly.

From Python::

    from ksef.simulator import Simulator, start_subprocess, stop_subprocess
    sim = Simulator(state_path, tokens={"5265877635": "tok"}, rate_limits="off", processing_delay=0.05)
    base_url = sim.start()            # free port; in-process server thread
    ...; sim.stop()
    process, base_url = start_subprocess(state_path, tokens=["5265877635:tok"])  # waits until it answers
    stop_subprocess(process)

``ksef.simulator.testing.SimClient`` is a minimal client (token login, encryption, online and
batch sends) for tests, drills and benchmarks.

What it does (KSeF API 2.0 documentation and OpenAPI; ``offline/korekta-techniczna.md``)
---------------------------------------------------------------------------------------
* Auth: ``POST /auth/challenge``; ``/auth/ksef-token`` (RSA-OAEP decryption of
  ``token|timestampMs``, challenge lifetime 10 min, token registered for the context NIP);
  ``/auth/xades-signature`` (``ksef.xades.verify_signed_xml``; subject ``VATPL-<NIP>`` or
  ``TINPL-<NIP>``; Offline certificates refused with status 460, other NIP 415);
  ``GET /auth/{ref}`` (100 then final); ``/auth/token/redeem`` (once, then 21301);
  ``/auth/token/refresh``. Access/refresh tokens are HS256 JWTs (``exp`` readable); expired or
  revoked tokens get 401 Problem Details.
* ``GET /security/public-key-certificates``: one RSA-2048 key per usage, self-signed,
  ``CN=Ministerstwo Finansów``; an unknown/withdrawn ``publicKeyId`` gives 21470.
* Online and batch sessions, invoice and session status, paginated invoice lists
  (``pageSize`` 10..1000, ``x-continuation-token``), per-invoice and per-session UPO (v4-3,
  XSD-valid, therefore unsigned; ≤ 10,000 documents a page), pre-signed ``upoDownloadUrl`` /
  ``downloadUrl`` and batch upload URLs (``PUT /upload/...``) on the same server,
  ``GET /invoices/ksef/{n}``.
* Checks: ciphertext and plaintext size/hash (21402/21403, synchronous 400), decryption (435),
  FA(3) XSD (430 with the errors), > 1 MB (430), attachment outside batch (415), seller ≠ context
  (410), ``P_1`` in the future (450), duplicates on seller NIP + ``RodzajFaktury`` + ``P_2`` (440
  with ``originalSessionReferenceNumber``/``originalKsefNumber``), technical corrections
  (21167 / 21166), 10,000 invoices a session (21155, batch 420), batch parts ≤ 50 (21161) of
  ≤ 100 MB (21157), missing part (21205), upload time over (21208 / session 440).
* ``invoicingMode`` Offline when declared or when ``P_1`` is before the day of ``invoicingDate``
  (the send time online, the session opening in batch; Europe/Warsaw calendar days;
  ``offline/automatyczne-okreslanie-trybu-offline.md``).
* Statuses go 100 → 150 → final during ``processing_delay`` seconds (online invoices, auth);
  a closed online session is 170 until then; a batch is 150 while a worker thread processes it.
* Rate limits of ``limity/limity-api.md`` per (context, client IP) in sliding windows, 429 + ``Retry-After``.

Control API (JSON, never rate-limited or faulted; open unless a secret is set)
------------------------------------------------------------------------------
A simulator started with the environment variable ``KSEF_SIMULATOR_CONTROL_SECRET`` (a drill's:
see ``launcher.ensure_running``) answers ``/_control/*`` except ``health`` only to requests carrying
that secret in the ``X-KSeF-Simulator-Secret`` header (403 otherwise).

==========================================  ===============================================================
``GET  /_control/health``                   ``{"ok": true}``
``GET  /_control/counters``                 ``invoicesTotal``, ``invoicesAccepted``, ``invoicesByStatus``,
                                            ``acceptedBySeller`` {nip: n}, ``acceptedByHash`` {hash: n},
                                            ``submissionsByHash``, ``sessions`` {Online: n, Batch: n},
                                            ``apiCalls`` {context: {rate-limit group: requests}}
``POST /_control/reset``                    forget sessions, invoices, auth, Latarnia, faults, rate counters,
                                            issued certificates (keys, the CA and registered tokens stay)
``POST /_control/tokens``                   ``{"nip", "token"}`` or ``{"tokens": [...]}``; ``"revoked": true``
``GET|POST /_control/faults``               merge any of ``down`` (bool), ``down_mode`` ("503" | "close":
                                            drop the connection unanswered), ``error_ratio`` (0..1 of /v2
                                            calls answered 5xx before processing), ``error_statuses``
                                            ([500, 502, 503]), ``seed`` (re-seeds the generator),
                                            ``delay`` (s per /v2 call), ``stall_after_accept_seconds`` +
                                            ``stall_after_accept_count`` (invoice send, batch close, certificate
                                            request: store, then hold the answer), ``latarnia_down`` (502)
``POST /_control/faults/clear``             back to no faults
``POST /_control/rate-limits``              ``{"enabled": bool, "scale": 0.1, "reset": true}``
``POST /_control/expire``                   ``{"sessions": true}`` (open sessions expire now),
                                            ``{"access_tokens": true}`` (all issued access tokens → 401)
``POST /_control/keys/rotate``              ``{"mode": "transition"}`` (new keys, old still listed),
                                            ``"emergency"`` (new keys, old withdrawn → 21470),
                                            ``"retire-old"``; answers the new key list
``GET|POST /_control/config``               ``processing_delay``, ``access_token_ttl``, ``clock_offset``
                                            (s added to the server clock), ``max_invoices_per_session``
``POST /_control/latarnia``                 ``{"action": "maintenance"|"failure_start"|"failure_end"|
                                            "total_failure"|"total_failure_end", "eventId", "start", "end",
                                            "title", "text", "id", "version"}``; answers the message
``POST /_control/latarnia/clear``           remove all Latarnia messages
``GET  /_control/script``                   the outage script: ``{"steps": [{"id", "at", "action",
                                            "appliedAt"}], "pending": n, "now"}`` (times UTC, ``...Z``)
``POST /_control/script``                   ``{"steps": [{"at", "action", "id"?}]}`` replaces it (see below)
``POST /_control/script/advance``           play the next pending step now (409 when none is left)
``POST /_control/script/clear``             forget the script (what it did stays)
``POST /_control/certificates/status``      ``{"serial", "status": "Active"|"Blocked"|"Revoked"}``: what
                                            KSeF itself does to an issued certificate (``certificates_api.py``)
==========================================  ===============================================================

Outage script (drills; ``script.py``): steps play in ``at`` order on the simulator clock (with
``clock_offset``) when due - before any request is handled and every second from a ticker
thread. Actions: ``connection_lost`` (faults ``down`` with ``down_mode`` "close" and
``latarnia_down``), ``connection_restored``, ``latarnia:maintenance``, ``latarnia:failure_start``,
``latarnia:failure_end``, ``latarnia:total_failure``, ``latarnia:total_failure_end`` (the message
``POST /_control/latarnia`` would publish; an end closes the failure the script started). An
unknown action, a time without zone or an end without its start refuses the whole script (400).
The script, and a connection lost by it, survive a restart; ``/_control/reset`` clears them.

Latarnia: ``GET /status`` → ``{"status": AVAILABLE|MAINTENANCE|FAILURE|TOTAL_FAILURE,
"messages": [...]}`` (unfinished failures and not yet ended maintenance announcements),
``GET /messages`` → all messages, newest first; fields ``id``, ``eventId``, ``category``,
``type``, ``title``, ``text``, ``start``, ``end``, ``version``, ``published``.
"""
from .server import Simulator, start_subprocess, stop_subprocess  # noqa: F401
