-- The status webhook of a gateway ID: where its status events go, and the secret that
-- signs them (sealed with the data key, as the API secret is).
ALTER TABLE gateway_ids ADD COLUMN status_url TEXT;
ALTER TABLE gateway_ids ADD COLUMN status_secret_sealed {bytes};
-- Status events waiting for their gateway ID's status URL. A row is written in the
-- transaction that records its event and delivered like a callback entry: claimed with a
-- lease, retried on the callback schedule, dead-lettered past the callback horizon.
CREATE TABLE status_outbox (
    id              {serial},
    gateway_id      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    attempts        {int} NOT NULL DEFAULT 0,
    next_attempt_at {int} NOT NULL,
    last_error      TEXT,
    dead            {int} NOT NULL DEFAULT 0,
    created_at      {int} NOT NULL
);
CREATE INDEX status_outbox_due ON status_outbox (dead, next_attempt_at);
