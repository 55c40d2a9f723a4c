"""The simulator's SQLite schema (``store.Store`` creates it; ``CREATE ... IF NOT EXISTS``, so an
older state file gains the tables it lacks)."""

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
CREATE TABLE IF NOT EXISTS collective_identifiers (
    number TEXT PRIMARY KEY,
    context_nip TEXT NOT NULL,
    seller_nip TEXT NOT NULL,
    created_ts REAL NOT NULL,
    invoices TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS collective_identifier_invoices (
    number TEXT NOT NULL,
    ksef_number TEXT NOT NULL,
    context_nip TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS collective_identifier_invoices_ksef ON collective_identifier_invoices (ksef_number);
-- KSeF certificates (certificates_api.py); the CA key is in meta
CREATE TABLE IF NOT EXISTS auth_certificates (
    document_hash TEXT PRIMARY KEY,
    certificate_der BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS ksef_certificates (
    serial TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    common_name TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_value TEXT NOT NULL,
    certificate_der BLOB NOT NULL,
    public_key_der BLOB NOT NULL,
    valid_from REAL NOT NULL,
    valid_to REAL NOT NULL,
    request_date REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'Active',
    revocation_reason TEXT,
    last_use REAL
);
CREATE TABLE IF NOT EXISTS certificate_enrollments (
    reference TEXT PRIMARY KEY,
    subject_type TEXT NOT NULL,
    subject_value TEXT NOT NULL,
    request_date REAL NOT NULL,
    ready_at REAL NOT NULL,
    status_code INTEGER NOT NULL,
    status_details TEXT,
    serial TEXT
);
CREATE TABLE IF NOT EXISTS certificate_limit_overrides (
    subject_value TEXT PRIMARY KEY,
    max_enrollments INTEGER,
    max_certificates INTEGER
);
"""
