-- Alarms: a message to tiers of recipients that rings until answered. The alarm's ID is
-- also the message ID of every delivery it makes. `next_due_at` is its timer (the next
-- tier, ring or expiry); a node that acts on it first holds `lease_until`.
CREATE TABLE alarms (
    id              {bytes}    PRIMARY KEY,
    gateway_id      TEXT    NOT NULL,
    account_id      {int} NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('triggered', 'acknowledged', 'resolved', 'expired')),
    priority        TEXT    NOT NULL CHECK (priority IN ('normal', 'high', 'critical')),
    dedup_key       TEXT,
    idem_key        TEXT,
    content         {bytes},
    ring_every_secs {int} NOT NULL,
    max_rings       {int} NOT NULL,
    required_acks   {int} NOT NULL,
    created_at      {int} NOT NULL,
    expires_at      {int} NOT NULL,
    ended_at        {int},
    next_due_at     {int} NOT NULL,
    lease_until     {int} NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX alarms_open_dedup ON alarms (gateway_id, dedup_key)
    WHERE dedup_key IS NOT NULL AND state IN ('triggered', 'acknowledged');
-- A retried trigger (the same Idempotency-Key) answers the alarm it made, open or not.
CREATE UNIQUE INDEX alarms_by_idem_key ON alarms (gateway_id, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX alarms_due ON alarms (next_due_at);
CREATE INDEX alarms_of_gateway ON alarms (gateway_id, created_at);

-- The tiers of an alarm; `groups` names on-call groups (newline-separated), resolved to
-- their members when the tier starts.
CREATE TABLE alarm_tiers (
    alarm_id    {bytes}    NOT NULL,
    tier        {int} NOT NULL,
    after_secs  {int} NOT NULL,
    groups      TEXT    NOT NULL DEFAULT '',
    started_at  {int},
    unpaid      {int} NOT NULL DEFAULT 0,
    PRIMARY KEY (alarm_id, tier)
);

-- Who an alarm reaches, in which tier, and what became of it. An end-to-end alarm holds
-- each recipient's box (`nonce`, `box`) until the tier starts; it is deleted then, or when
-- the alarm ends first.
CREATE TABLE alarm_recipients (
    alarm_id    {bytes}    NOT NULL,
    identity    TEXT    NOT NULL,
    tier        {int} NOT NULL,
    nonce       {bytes},
    box         {bytes},
    sent_at     {int},
    unpaid      {int} NOT NULL DEFAULT 0,
    rings       {int} NOT NULL DEFAULT 0,
    last_ring_at {int},
    answer      TEXT    CHECK (answer IN ('coming', 'not_coming')),
    eta_minutes {int},
    note        TEXT,
    answered_at {int},
    PRIMARY KEY (alarm_id, identity)
);

-- On-call groups of an account: names a tier can list instead of identities.
CREATE TABLE oncall_groups (
    id          {serial},
    account_id  {int} NOT NULL,
    name        TEXT    NOT NULL,
    created_at  {int} NOT NULL
);
CREATE UNIQUE INDEX oncall_groups_by_name ON oncall_groups (account_id, name);
CREATE TABLE oncall_members (
    group_id    {int} NOT NULL,
    identity    TEXT    NOT NULL,
    PRIMARY KEY (group_id, identity)
);

-- Monitoring systems that trigger alarms (Alertmanager, Grafana): each has a secret URL
-- token, stored as a keyed hash, and the alarm it triggers without the text (JSON: tiers
-- and policy, as POST /api/v1/alarms takes them).
CREATE TABLE integrations (
    id          {serial},
    token_hash  {bytes}    NOT NULL UNIQUE,
    gateway_id  TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('alertmanager')),
    template    TEXT    NOT NULL,
    created_at  {int} NOT NULL
);
