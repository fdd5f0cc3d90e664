-- Foundation schema ({engine}). Times are unix milliseconds; flags are 0/1 integers so the
-- same SQL text runs on both engines through sqlx's Any driver.

CREATE TABLE accounts (
    id          {serial},
    name        TEXT    NOT NULL UNIQUE,
    -- Cached sum of this account's ledger rows, kept in the same transaction as each row.
    balance     {int} NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at  {int} NOT NULL
);

CREATE TABLE ledger (
    id            {serial},
    account_id    {int} NOT NULL REFERENCES accounts (id),
    delta         {int} NOT NULL,
    balance_after {int} NOT NULL CHECK (balance_after >= 0),
    reason        TEXT    NOT NULL,
    message_id    {bytes},
    created_at    {int} NOT NULL
);
CREATE INDEX ledger_by_account ON ledger (account_id, id);

CREATE TABLE gateway_ids (
    id              TEXT    PRIMARY KEY,
    account_id      {int} NOT NULL REFERENCES accounts (id),
    mode            TEXT    NOT NULL CHECK (mode IN ('basic', 'e2e')),
    secret_hash     {bytes}    NOT NULL,
    secret_sealed   {bytes}    NOT NULL,
    public_key      {bytes}    NOT NULL,
    private_sealed  {bytes},
    callback_url    TEXT,
    created_at      {int} NOT NULL
);
CREATE INDEX gateway_ids_by_account ON gateway_ids (account_id);

CREATE TABLE identities (
    id            TEXT    PRIMARY KEY,
    phone_hash    {bytes},
    email_hash    {bytes},
    capabilities  TEXT    NOT NULL,
    revoked       {int} NOT NULL DEFAULT 0,
    created_at    {int} NOT NULL
);
CREATE INDEX identities_by_phone ON identities (phone_hash);
CREATE INDEX identities_by_email ON identities (email_hash);

-- Append-only key history: a key change is a new version, never an update.
CREATE TABLE identity_keys (
    identity_id  TEXT    NOT NULL REFERENCES identities (id),
    version      {int} NOT NULL,
    public_key   {bytes}    NOT NULL,
    created_at   {int} NOT NULL,
    PRIMARY KEY (identity_id, version)
);

CREATE TABLE devices (
    identity_id  TEXT    NOT NULL REFERENCES identities (id),
    device_id    {int} NOT NULL,
    created_at   {int} NOT NULL,
    last_seen_at {int} NOT NULL,
    PRIMARY KEY (identity_id, device_id)
);

CREATE TABLE queued_messages (
    seq         {serial},
    message_id  {bytes}    NOT NULL,
    sender      TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    flags       {int} NOT NULL,
    nonce       {bytes}    NOT NULL,
    body        {bytes}    NOT NULL,
    created_at  {int} NOT NULL,
    expires_at  {int} NOT NULL
);
CREATE INDEX queued_messages_by_recipient ON queued_messages (recipient, seq);
CREATE INDEX queued_messages_by_expiry ON queued_messages (expires_at);

CREATE TABLE idempotency_keys (
    gateway_id  TEXT    NOT NULL,
    idem_key    TEXT    NOT NULL,
    message_id  {bytes}    NOT NULL,
    created_at  {int} NOT NULL,
    PRIMARY KEY (gateway_id, idem_key)
);

CREATE TABLE callback_outbox (
    id              {serial},
    gateway_id      TEXT    NOT NULL,
    sender          TEXT    NOT NULL,
    message_id      {bytes}    NOT NULL,
    sent_at         {int} NOT NULL,
    nonce           {bytes}    NOT NULL,
    body            {bytes}    NOT NULL,
    nickname        TEXT,
    attempts        {int} NOT NULL DEFAULT 0,
    next_attempt_at {int} NOT NULL,
    last_error      TEXT,
    dead            {int} NOT NULL DEFAULT 0,
    created_at      {int} NOT NULL
);
CREATE INDEX callback_outbox_due ON callback_outbox (dead, next_attempt_at);

CREATE TABLE blobs (
    id          {bytes}    PRIMARY KEY,
    account_id  {int} NOT NULL REFERENCES accounts (id),
    size        {int} NOT NULL,
    persist     {int} NOT NULL DEFAULT 0,
    created_at  {int} NOT NULL,
    expires_at  {int} NOT NULL
);
CREATE INDEX blobs_by_expiry ON blobs (expires_at);
