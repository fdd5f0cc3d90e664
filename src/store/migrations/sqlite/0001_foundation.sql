-- Foundation schema (SQLite). Times are unix milliseconds; flags are 0/1 integers so the
-- same SQL text runs on both engines through sqlx's Any driver.

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    -- Cached sum of this account's ledger rows, kept in the same transaction as each row.
    balance     INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at  INTEGER NOT NULL
);

CREATE TABLE ledger (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    INTEGER NOT NULL REFERENCES accounts (id),
    delta         INTEGER NOT NULL,
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    reason        TEXT    NOT NULL,
    message_id    BLOB,
    created_at    INTEGER NOT NULL
);
CREATE INDEX ledger_by_account ON ledger (account_id, id);

CREATE TABLE gateway_ids (
    id              TEXT    PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts (id),
    mode            TEXT    NOT NULL CHECK (mode IN ('basic', 'e2e')),
    secret_hash     BLOB    NOT NULL,
    secret_sealed   BLOB    NOT NULL,
    public_key      BLOB    NOT NULL,
    private_sealed  BLOB,
    callback_url    TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX gateway_ids_by_account ON gateway_ids (account_id);

CREATE TABLE identities (
    id            TEXT    PRIMARY KEY,
    phone_hash    BLOB,
    email_hash    BLOB,
    capabilities  TEXT    NOT NULL,
    revoked       INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);
CREATE INDEX identities_by_phone ON identities (phone_hash);
CREATE INDEX identities_by_email ON identities (email_hash);

-- Append-only key history: a key change is a new version, never an update.
CREATE TABLE identity_keys (
    identity_id  TEXT    NOT NULL REFERENCES identities (id),
    version      INTEGER NOT NULL,
    public_key   BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (identity_id, version)
);

CREATE TABLE devices (
    identity_id  TEXT    NOT NULL REFERENCES identities (id),
    device_id    INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    PRIMARY KEY (identity_id, device_id)
);

CREATE TABLE queued_messages (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  BLOB    NOT NULL,
    sender      TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    flags       INTEGER NOT NULL,
    nonce       BLOB    NOT NULL,
    body        BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX queued_messages_by_recipient ON queued_messages (recipient, seq);
CREATE INDEX queued_messages_by_expiry ON queued_messages (expires_at);

CREATE TABLE idempotency_keys (
    gateway_id  TEXT    NOT NULL,
    idem_key    TEXT    NOT NULL,
    message_id  BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (gateway_id, idem_key)
);

CREATE TABLE callback_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    gateway_id      TEXT    NOT NULL,
    sender          TEXT    NOT NULL,
    message_id      BLOB    NOT NULL,
    sent_at         INTEGER NOT NULL,
    nonce           BLOB    NOT NULL,
    body            BLOB    NOT NULL,
    nickname        TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    dead            INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE INDEX callback_outbox_due ON callback_outbox (dead, next_attempt_at);

CREATE TABLE blobs (
    id          BLOB    PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    size        INTEGER NOT NULL,
    persist     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX blobs_by_expiry ON blobs (expires_at);
