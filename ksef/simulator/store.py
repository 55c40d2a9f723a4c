"""SQLite state of the simulator: everything needed to survive a restart.

One connection shared by all threads behind one re-entrant lock (``Store.lock``); WAL mode so
a reader in another process (a test peeking at the file) never blocks us. Callers that need
an atomic check-then-write (duplicates, numbering) hold ``store.lock`` around it.
"""
import json
import sqlite3
import threading

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mf_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    private_key_pem BLOB NOT NULL,
    certificate_der BLOB NOT NULL,
    certificate_id TEXT NOT NULL,
    public_key_id TEXT NOT NULL UNIQUE,
    usage TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS ksef_tokens (
    token TEXT PRIMARY KEY,
    nip TEXT NOT NULL,
    reference TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS challenges (
    challenge TEXT PRIMARY KEY,
    timestamp_ms INTEGER NOT NULL,
    client_ip TEXT
);
CREATE TABLE IF NOT EXISTS auth_operations (
    reference TEXT PRIMARY KEY,
    authentication_token TEXT NOT NULL UNIQUE,
    authentication_token_valid_until REAL NOT NULL,
    context_type TEXT NOT NULL,
    context_value TEXT NOT NULL,
    method TEXT NOT NULL,
    method_info TEXT NOT NULL,
    start_date TEXT NOT NULL,
    ready_at REAL NOT NULL,
    status_code INTEGER NOT NULL,
    status_description TEXT NOT NULL,
    status_details TEXT,
    token_reference TEXT,
    document_hash TEXT,
    redeemed INTEGER NOT NULL DEFAULT 0,
    refresh_token TEXT UNIQUE,
    refresh_valid_until REAL,
    last_refresh TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    reference TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    context_type TEXT NOT NULL,
    context_value TEXT NOT NULL,
    auth_reference TEXT NOT NULL,
    form_code TEXT NOT NULL,
    created TEXT NOT NULL,
    created_ts REAL NOT NULL,
    updated TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    valid_until_ts REAL NOT NULL,
    closed TEXT,
    status_code INTEGER NOT NULL,
    status_description TEXT NOT NULL,
    status_details TEXT,
    final_at REAL,
    aes_key BLOB,
    iv BLOB,
    key_error INTEGER NOT NULL DEFAULT 0,
    offline_mode INTEGER NOT NULL DEFAULT 0,
    batch_file TEXT,
    invoice_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_context ON sessions (context_value, kind, created_ts);
CREATE TABLE IF NOT EXISTS batch_parts (
    session_reference TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (session_reference, ordinal)
);
CREATE TABLE IF NOT EXISTS invoices (
    reference TEXT PRIMARY KEY,
    session_reference TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    invoice_hash TEXT NOT NULL,
    invoice_size INTEGER NOT NULL,
    file_name TEXT,
    invoice_number TEXT,
    seller_nip TEXT,
    invoice_kind TEXT,
    issue_date TEXT,
    ksef_number TEXT UNIQUE,
    invoicing_date TEXT NOT NULL,
    acquisition_date TEXT,
    permanent_storage_date TEXT,
    invoicing_mode TEXT,
    offline_mode INTEGER NOT NULL DEFAULT 0,
    hash_of_corrected TEXT,
    status_code INTEGER NOT NULL,
    status_description TEXT NOT NULL,
    status_details TEXT,
    status_extensions TEXT,
    received_ts REAL NOT NULL,
    ready_at REAL NOT NULL,
    xml BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS invoices_session_ordinal ON invoices (session_reference, ordinal);
CREATE INDEX IF NOT EXISTS invoices_duplicate_key ON invoices (seller_nip, invoice_kind, invoice_number, status_code);
CREATE INDEX IF NOT EXISTS invoices_hash ON invoices (invoice_hash);
CREATE INDEX IF NOT EXISTS invoices_corrected ON invoices (hash_of_corrected);
CREATE TABLE IF NOT EXISTS session_upo_pages (
    reference TEXT PRIMARY KEY,
    session_reference TEXT NOT NULL,
    page INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS latarnia_messages (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    event_id INTEGER NOT NULL,
    category TEXT NOT NULL,
    type TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    start TEXT,
    end_ TEXT,
    version INTEGER NOT NULL,
    published TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS script_steps (
    position INTEGER PRIMARY KEY,
    step_id TEXT NOT NULL,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    applied_at REAL,
    note TEXT
);
"""

# Tables emptied by a reset; the MF keys and the registered KSeF tokens survive it.
RESETTABLE = ("challenges", "auth_operations", "sessions", "batch_parts", "invoices",
              "session_upo_pages", "latarnia_messages", "script_steps",
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
