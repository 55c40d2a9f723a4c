"""SQLite state of the simulator: everything needed to survive a restart.

One connection shared by all threads behind one re-entrant lock (``Store.lock``); WAL mode so
a reader in another process (a test peeking at the file) never blocks us. Callers that need
an atomic check-then-write (duplicates, numbering) hold ``store.lock`` around it.
"""
import json
import sqlite3
import threading

from .schema import SCHEMA

# one invoice row as the API modules build it (Store.add_invoices)
INVOICE_COLUMNS = ("reference", "session_reference", "ordinal", "invoice_hash", "invoice_size", "file_name",
                   "invoice_number", "seller_nip", "invoice_kind", "issue_date", "ksef_number", "invoicing_date",
                   "acquisition_date", "permanent_storage_date", "invoicing_mode", "offline_mode",
                   "hash_of_corrected", "status_code", "status_description", "status_details", "status_extensions",
                   "received_ts", "ready_at", "xml")
# what an invoice's status view needs (not its XML)
INVOICE_LIST_COLUMNS = ("reference, ordinal, invoice_number, ksef_number, invoice_hash, file_name, invoicing_date,"
                        " acquisition_date, permanent_storage_date, invoicing_mode, status_code,"
                        " status_description, status_details, status_extensions, received_ts, ready_at")
# what a UPO needs of an invoice
UPO_COLUMNS = ("seller_nip, ksef_number, invoice_number, issue_date, invoicing_date, acquisition_date,"
               " invoice_hash, invoicing_mode, status_code, ready_at")

# Tables emptied by a reset; the MF keys and the registered KSeF tokens survive it.
RESETTABLE = ("challenges", "auth_operations", "sessions", "batch_parts", "invoices",
              "session_upo_pages", "latarnia_messages", "script_steps", "collective_identifiers",
              "collective_identifier_invoices",
              # KSeF certificates (their tables: certificates_api.py); the CA key survives
              "auth_certificates", "ksef_certificates", "certificate_enrollments", "certificate_limit_overrides")
# meta keys emptied by a reset (what the outage script remembers between its steps)
RESETTABLE_META = ("script_open_events", "script_connection")


class Store:
    def __init__(self, path):
        self.path = str(path)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)

    def close(self):
        with self.lock:
            self.db.close()

    # -- small helpers -------------------------------------------------------------
    def one(self, sql, params=()):
        with self.lock:
            return self.db.execute(sql, params).fetchone()

    def all(self, sql, params=()):
        with self.lock:
            return self.db.execute(sql, params).fetchall()

    def run(self, sql, params=()):
        with self.lock:
            return self.db.execute(sql, params)

    def transaction(self):
        return _Transaction(self)

    def _insert(self, table, values):
        """Insert the row ``values`` ({column: value}; columns are ours, never a caller's input)."""
        self.run("INSERT INTO %s (%s) VALUES (%s)"
                 % (table, ", ".join(values), ", ".join(":" + name for name in values)), values)

    def _update(self, table, key_column, key, fields):
        """Set ``fields`` ({column: value}) on the row whose ``key_column`` is ``key``; rows changed."""
        return self.run("UPDATE %s SET %s WHERE %s = ?" % (table, ", ".join("%s = ?" % name for name in fields),
                                                           key_column), list(fields.values()) + [key]).rowcount

    def get_meta(self, key, default=None):
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(row["value"]) if row else default

    def set_meta(self, key, value):
        self.run("INSERT INTO meta (key, value) VALUES (?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, json.dumps(value)))

    def reset(self):
        with self.transaction() as db:
            for table in RESETTABLE:
                db.execute("DELETE FROM %s" % table)
            db.execute("DELETE FROM meta WHERE key IN (%s)" % ", ".join("?" * len(RESETTABLE_META)),
                       RESETTABLE_META)

    # -- MF keys and KSeF tokens ---------------------------------------------------
    def active_keys(self, usage=None):
        """Active MF keys, all (oldest first) or of ``usage`` (newest first)."""
        if usage is None:
            return self.all("SELECT * FROM mf_keys WHERE active = 1 ORDER BY id")
        return self.all("SELECT * FROM mf_keys WHERE active = 1 AND usage = ? ORDER BY id DESC", (usage,))

    def add_key(self, row):
        self.run("INSERT INTO mf_keys (private_key_pem, certificate_der, certificate_id, public_key_id, usage,"
                 " valid_from, valid_to) VALUES (:private_key_pem, :certificate_der, :certificate_id,"
                 " :public_key_id, :usage, :valid_from, :valid_to)", row)

    def newest_key_ids(self):
        """{usage: id} of the newest active key of each usage."""
        return {row["usage"]: row["id"] for row in self.all(
            "SELECT usage, MAX(id) AS id FROM mf_keys WHERE active = 1 GROUP BY usage")}

    def withdraw_key(self, key_id):
        self.run("UPDATE mf_keys SET active = 0 WHERE id = ?", (key_id,))

    def ksef_token(self, token):
        return self.one("SELECT * FROM ksef_tokens WHERE token = ?", (token,))

    def ksef_token_by_reference(self, reference):
        return self.one("SELECT * FROM ksef_tokens WHERE reference = ?", (reference,))

    def register_token(self, nip, token, new_reference):
        """Register (or re-activate for ``nip``) a KSeF token; its reference, ``new_reference`` if new."""
        with self.lock:
            existing = self.ksef_token(token)
            if existing:
                self.run("UPDATE ksef_tokens SET nip = ?, revoked = 0 WHERE token = ?", (nip, token))
                return existing["reference"]
            self.run("INSERT INTO ksef_tokens (token, nip, reference) VALUES (?, ?, ?)", (token, nip, new_reference))
            return new_reference

    def revoke_token(self, token):
        self.run("UPDATE ksef_tokens SET revoked = 1 WHERE token = ?", (token,))

    # -- authentication --------------------------------------------------------------
    def add_challenge(self, challenge, timestamp_ms, client_ip):
        self.run("INSERT INTO challenges (challenge, timestamp_ms, client_ip) VALUES (?, ?, ?)",
                 (challenge, timestamp_ms, client_ip))

    def take_challenge(self, challenge):
        """The challenge's row, deleted (a challenge serves once), or None."""
        with self.lock:
            row = self.one("SELECT * FROM challenges WHERE challenge = ?", (challenge,))
            if row is not None:
                self.run("DELETE FROM challenges WHERE challenge = ?", (challenge,))
        return row

    def add_auth_operation(self, values):
        self._insert("auth_operations", values)

    def auth_operation(self, reference):
        return self.one("SELECT * FROM auth_operations WHERE reference = ?", (reference,))

    def auth_operation_by(self, column, token):
        """The operation whose ``authentication_token`` or ``refresh_token`` is ``token``."""
        assert column in ("authentication_token", "refresh_token")
        return self.one("SELECT * FROM auth_operations WHERE %s = ?" % column, (token,))

    def update_auth_operation(self, reference, **fields):
        self._update("auth_operations", "reference", reference, fields)

    # -- sessions ----------------------------------------------------------------------
    def session(self, reference, kind=None):
        if kind:
            return self.one("SELECT * FROM sessions WHERE reference = ? AND kind = ?", (reference, kind))
        return self.one("SELECT * FROM sessions WHERE reference = ?", (reference,))

    def add_session(self, values):
        self._insert("sessions", values)

    def update_session(self, reference, **fields):
        self._update("sessions", "reference", reference, fields)

    def count_invoice(self, reference, updated):
        self.run("UPDATE sessions SET invoice_count = invoice_count + 1, updated = ? WHERE reference = ?",
                 (updated, reference))

    def sessions_of(self, context_value, kind, reference=None):
        sql = "SELECT * FROM sessions WHERE context_value = ? AND kind = ?"
        params = [context_value, kind]
        if reference:
            sql += " AND reference = ?"
            params.append(reference)
        return self.all(sql + " ORDER BY created_ts, reference", params)

    def batches_in_processing(self):
        return [row["reference"] for row in self.all(
            "SELECT reference FROM sessions WHERE kind = 'Batch' AND status_code = 150")]

    def expire_open_sessions(self, valid_until_ts, valid_until):
        self.run("UPDATE sessions SET valid_until_ts = ?, valid_until = ? WHERE status_code = 100",
                 (valid_until_ts, valid_until))

    def put_batch_part(self, reference, ordinal, data):
        self.run("INSERT INTO batch_parts (session_reference, ordinal, data) VALUES (?, ?, ?)"
                 " ON CONFLICT(session_reference, ordinal) DO UPDATE SET data = excluded.data",
                 (reference, ordinal, data))

    def batch_part_sizes(self, reference):
        return {row["ordinal"]: row["size"] for row in self.all(
            "SELECT ordinal, LENGTH(data) AS size FROM batch_parts WHERE session_reference = ?", (reference,))}

    def batch_parts(self, reference):
        return self.all("SELECT ordinal, data FROM batch_parts WHERE session_reference = ? ORDER BY ordinal",
                        (reference,))

    def drop_batch_parts(self, reference):
        self.run("DELETE FROM batch_parts WHERE session_reference = ?", (reference,))

    def add_upo_page(self, reference, session_reference, page):
        self.run("INSERT INTO session_upo_pages (reference, session_reference, page) VALUES (?, ?, ?)",
                 (reference, session_reference, page))

    def upo_pages(self, session_reference):
        return self.all("SELECT reference FROM session_upo_pages WHERE session_reference = ? ORDER BY page",
                        (session_reference,))

    def upo_page(self, reference, session_reference):
        row = self.one("SELECT page FROM session_upo_pages WHERE reference = ? AND session_reference = ?",
                       (reference, session_reference))
        return row["page"] if row else None

    # -- invoices ----------------------------------------------------------------------
    def add_invoices(self, rows):
        """Insert invoice rows: tuples in the order of ``INVOICE_COLUMNS``."""
        with self.lock:
            self.db.executemany("INSERT INTO invoices (%s) VALUES (%s)"
                                % (", ".join(INVOICE_COLUMNS), ", ".join("?" * len(INVOICE_COLUMNS))), rows)

    def latest_ready_at(self, session_reference):
        return self.one("SELECT MAX(ready_at) AS r FROM invoices WHERE session_reference = ?",
                        (session_reference,))["r"] or 0

    def accepted_count(self, session_reference):
        return self.one("SELECT COUNT(*) AS n FROM invoices WHERE session_reference = ? AND status_code = 200",
                        (session_reference,))["n"]

    def invoice_counts(self, session_reference, now):
        """(accepted, rejected) invoices of the session whose verdict is visible at ``now``."""
        row = self.one("SELECT SUM(CASE WHEN status_code = 200 AND ready_at <= ? THEN 1 ELSE 0 END) AS ok,"
                       " SUM(CASE WHEN status_code >= 400 AND ready_at <= ? THEN 1 ELSE 0 END) AS failed"
                       " FROM invoices WHERE session_reference = ?", (now, now, session_reference))
        return row["ok"] or 0, row["failed"] or 0

    def statuses_of_hash(self, invoice_hash, seller):
        """Status codes of the invoices with ``invoice_hash`` of ``seller`` (by seller NIP, else by
        the context of their session): what a technical correction may correct."""
        rows = self.all("SELECT status_code FROM invoices WHERE invoice_hash = ? AND seller_nip IS ?",
                        (invoice_hash, seller))
        if not rows:
            rows = self.all("SELECT i.status_code FROM invoices i JOIN sessions s ON s.reference = i.session_reference"
                            " WHERE i.invoice_hash = ? AND s.context_value LIKE ?", (invoice_hash, seller + "%"))
        return [row["status_code"] for row in rows]

    def accepted_corrections(self, corrected_hash):
        return self.one("SELECT COUNT(*) FROM invoices WHERE hash_of_corrected = ? AND status_code = 200",
                        (corrected_hash,))[0]

    def accepted_duplicate(self, seller_nip, invoice_kind, invoice_number):
        """(ksef_number, session_reference) of the accepted invoice with that key, or None."""
        row = self.one("SELECT ksef_number, session_reference FROM invoices WHERE seller_nip = ?"
                       " AND invoice_kind = ? AND invoice_number = ? AND status_code = 200 LIMIT 1",
                       (seller_nip, invoice_kind, invoice_number))
        return (row["ksef_number"], row["session_reference"]) if row else None

    def session_invoices(self, session_reference, limit, offset, failed_before=None):
        """A page of the session's invoices in order; with ``failed_before``, only those rejected by then."""
        sql = "SELECT %s FROM invoices WHERE session_reference = ?" % INVOICE_LIST_COLUMNS
        params = [session_reference]
        if failed_before is not None:
            sql += " AND status_code >= 400 AND ready_at <= ?"
            params.append(failed_before)
        return self.all(sql + " ORDER BY ordinal LIMIT ? OFFSET ?", params + [limit, offset])

    def session_invoice(self, session_reference, reference):
        return self.one("SELECT %s FROM invoices WHERE session_reference = ? AND reference = ?"
                        % INVOICE_LIST_COLUMNS, (session_reference, reference))

    def upo_invoice(self, session_reference, reference=None, ksef_number=None):
        """The UPO columns of one invoice of the session, found by reference or KSeF number."""
        column, value = ("reference", reference) if ksef_number is None else ("ksef_number", ksef_number)
        return self.one("SELECT %s FROM invoices WHERE session_reference = ? AND %s = ?" % (UPO_COLUMNS, column),
                        (session_reference, value))

    def upo_invoices(self, session_reference):
        return self.all("SELECT %s FROM invoices WHERE session_reference = ? AND status_code = 200"
                        " ORDER BY ordinal" % UPO_COLUMNS, (session_reference,))

    def accepted_invoice(self, ksef_number, columns="*"):
        return self.one("SELECT %s FROM invoices WHERE ksef_number = ? AND status_code = 200" % columns,
                        (ksef_number,))

    def invoice_by_ksef_number(self, ksef_number, columns="*"):
        return self.one("SELECT %s FROM invoices WHERE ksef_number = ?" % columns, (ksef_number,))

    def counters(self):
        """What ``GET /_control/counters`` reports, straight from the tables."""
        def grouped(sql):
            return {row[0]: row["n"] for row in self.all(sql)}
        return {
            "by_status": {str(code): n for code, n in grouped(
                "SELECT status_code, COUNT(*) AS n FROM invoices GROUP BY status_code").items()},
            "by_seller": grouped("SELECT seller_nip, COUNT(*) AS n FROM invoices WHERE status_code = 200"
                                 " GROUP BY seller_nip"),
            "by_hash": grouped("SELECT invoice_hash, COUNT(*) AS n FROM invoices WHERE status_code = 200"
                               " GROUP BY invoice_hash"),
            "submissions": grouped("SELECT invoice_hash, COUNT(*) AS n FROM invoices GROUP BY invoice_hash"),
            "sessions": grouped("SELECT kind, COUNT(*) AS n FROM sessions GROUP BY kind"),
        }

    # -- Latarnia ------------------------------------------------------------------------
    def latarnia_messages(self):
        return [dict(row) for row in self.all("SELECT * FROM latarnia_messages ORDER BY seq")]

    def latarnia_next(self, column):
        """The next free ``seq`` or ``event_id``."""
        assert column in ("seq", "event_id")
        return (self.one("SELECT MAX(%s) FROM latarnia_messages" % column)[0] or 0) + 1

    def latarnia_failure_start(self, event_id):
        return self.one("SELECT * FROM latarnia_messages WHERE event_id = ? AND type = 'FAILURE_START'"
                        " ORDER BY seq DESC", (event_id,))

    def add_latarnia_message(self, row):
        self.run("INSERT INTO latarnia_messages (id, seq, event_id, category, type, title, text, start, end_,"
                 " version, published) VALUES (:id, :seq, :event_id, :category, :type, :title, :text, :start,"
                 " :end_, :version, :published)", row)

    def clear_latarnia(self):
        self.run("DELETE FROM latarnia_messages")

    # -- outage script -------------------------------------------------------------------
    def script_steps(self):
        return self.all("SELECT * FROM script_steps ORDER BY position")

    def next_script_step(self):
        return self.one("SELECT * FROM script_steps WHERE applied_at IS NULL ORDER BY position LIMIT 1")

    def mark_script_step(self, position, applied_at, note):
        self.run("UPDATE script_steps SET applied_at = ?, note = ? WHERE position = ?", (applied_at, note, position))

    def replace_script(self, steps):
        """``steps``: (position, step_id, at, action) tuples (none: forget the script)."""
        with self.lock:
            self.run("DELETE FROM script_steps")
            self.db.executemany("INSERT INTO script_steps (position, step_id, at, action) VALUES (?, ?, ?, ?)",
                                steps)

    # -- received invoices (received.py) and collective identifiers (collective.py) ----------
    def visible_accepted_invoices(self, now, order_column):
        """Accepted invoices whose verdict is visible at ``now``, ordered by ``order_column``."""
        assert order_column in ("issue_date", "invoicing_date", "permanent_storage_date")
        return self.all("SELECT * FROM invoices WHERE status_code = 200 AND ready_at <= ? ORDER BY %s, ksef_number"
                        % order_column, (now,))

    def collective_uses(self, ksef_number, context_nip):
        return self.one("SELECT COUNT(*) AS n FROM collective_identifier_invoices"
                        " WHERE ksef_number = ? AND context_nip = ?", (ksef_number, context_nip))["n"]

    def add_collective_identifier(self, number, context_nip, seller_nip, created_ts, invoices, ksef_numbers):
        with self.transaction() as db:
            db.execute("INSERT INTO collective_identifiers (number, context_nip, seller_nip, created_ts, invoices)"
                       " VALUES (?, ?, ?, ?, ?)", (number, context_nip, seller_nip, created_ts, json.dumps(invoices)))
            db.executemany("INSERT INTO collective_identifier_invoices (number, ksef_number, context_nip)"
                           " VALUES (?, ?, ?)", [(number, ksef, context_nip) for ksef in ksef_numbers])

    def collective_identifier(self, number):
        return self.one("SELECT * FROM collective_identifiers WHERE number = ?", (number,))

    def collective_identifiers_of(self, ksef_number):
        return self.all("SELECT DISTINCT c.* FROM collective_identifiers c JOIN collective_identifier_invoices i"
                        " ON i.number = c.number WHERE i.ksef_number = ? ORDER BY c.created_ts DESC, c.number DESC",
                        (ksef_number,))

    def collective_identifiers_between(self, start_ts, end_ts):
        return self.all("SELECT * FROM collective_identifiers WHERE created_ts BETWEEN ? AND ?"
                        " ORDER BY created_ts DESC, number DESC", (start_ts, end_ts))

    # -- KSeF certificates (certificates_api.py) -----------------------------------------
    def remember_auth_certificate(self, document_hash, certificate_der):
        self.run("INSERT OR REPLACE INTO auth_certificates (document_hash, certificate_der) VALUES (?, ?)",
                 (document_hash, certificate_der))

    def auth_certificate(self, document_hash):
        """The DER of the certificate that signed the login document ``document_hash``, or None."""
        row = self.one("SELECT certificate_der FROM auth_certificates WHERE document_hash = ?", (document_hash,))
        return bytes(row["certificate_der"]) if row else None

    def ksef_certificate(self, serial, subject_value=None):
        if subject_value is None:
            return self.one("SELECT * FROM ksef_certificates WHERE serial = ?", (serial,))
        return self.one("SELECT * FROM ksef_certificates WHERE serial = ? AND subject_value = ?",
                        (serial, subject_value))

    def ksef_certificates_of(self, subject_value):
        return self.all("SELECT * FROM ksef_certificates WHERE subject_value = ? ORDER BY request_date, serial",
                        (subject_value,))

    def certificate_key_owner(self, public_key_der):
        row = self.one("SELECT subject_value FROM ksef_certificates WHERE public_key_der = ?", (public_key_der,))
        return row["subject_value"] if row else None

    def add_ksef_certificate(self, values):
        self._insert("ksef_certificates", values)

    def update_ksef_certificate(self, serial, **fields):
        """Change the certificate ``serial``; False when there is none."""
        return self._update("ksef_certificates", "serial", serial, fields) > 0

    def add_enrollment(self, values):
        self._insert("certificate_enrollments", values)

    def enrollment(self, reference, subject_value):
        return self.one("SELECT * FROM certificate_enrollments WHERE reference = ? AND subject_value = ?",
                        (reference, subject_value))

    def enrollment_count(self, subject_value):
        return self.one("SELECT COUNT(*) AS n FROM certificate_enrollments WHERE subject_value = ?",
                        (subject_value,))["n"]

    def certificate_limit_override(self, subject_value):
        return self.one("SELECT * FROM certificate_limit_overrides WHERE subject_value = ?", (subject_value,))

    def set_certificate_limits(self, subject_value, max_enrollments, max_certificates):
        self.run("INSERT OR REPLACE INTO certificate_limit_overrides (subject_value, max_enrollments,"
                 " max_certificates) VALUES (?, ?, ?)", (subject_value, max_enrollments, max_certificates))

    def drop_certificate_limits(self, subject_value):
        self.run("DELETE FROM certificate_limit_overrides WHERE subject_value = ?", (subject_value,))


class _Transaction:
    """``with store.transaction() as db:`` holds the lock and wraps BEGIN/COMMIT/ROLLBACK."""

    def __init__(self, store):
        self.store = store

    def __enter__(self):
        self.store.lock.acquire()
        self.store.db.execute("BEGIN IMMEDIATE")
        return self.store.db

    def __exit__(self, exc_type, exc, tb):
        try:
            self.store.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store.lock.release()
        return False
