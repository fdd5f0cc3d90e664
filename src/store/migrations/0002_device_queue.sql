-- Per-device delivery. A message waits in queued_messages until every device of its
-- recipient that is responsible for it has acknowledged it. A device is responsible for
-- the messages queued after it registered (registered_after_seq); the first device of an
-- identity is responsible for everything already waiting.

ALTER TABLE devices ADD COLUMN registered_after_seq {int} NOT NULL DEFAULT 0;

CREATE TABLE message_acks (
    seq         {int} NOT NULL,
    device_id   {int} NOT NULL,
    acked_at    {int} NOT NULL,
    PRIMARY KEY (seq, device_id)
);

-- A resend after a lost server ack must not queue the message twice.
CREATE UNIQUE INDEX queued_messages_unique ON queued_messages (recipient, sender, message_id);

-- What the sender may learn about a message after its box is gone: metadata only.
CREATE TABLE message_events (
    id          {serial},
    sender      TEXT    NOT NULL,
    message_id  {bytes}    NOT NULL,
    recipient   TEXT    NOT NULL,
    event       TEXT    NOT NULL CHECK (event IN ('queued', 'delivered', 'read', 'acknowledged', 'declined', 'expired')),
    at          {int} NOT NULL
);
CREATE INDEX message_events_by_message ON message_events (sender, message_id);

-- A device resending a reply after a lost server ack must not reach the callback twice.
CREATE UNIQUE INDEX callback_outbox_unique ON callback_outbox (gateway_id, sender, message_id);
