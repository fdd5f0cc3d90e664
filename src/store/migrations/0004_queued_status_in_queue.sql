-- A message waiting in the queue no longer has a 'queued' status event: its queue row
-- (created_at) is that status, and the event is written when the row is deleted (last
-- ack or expiry). This keeps one index write per accepted message off the hot path.
-- The queue's unique index now leads with (sender, message_id), so it also answers the
-- status lookup of a message still queued.
DROP INDEX queued_messages_unique;
CREATE UNIQUE INDEX queued_messages_unique ON queued_messages (sender, message_id, recipient);
-- Messages queued by an earlier version keep their status in the queue row too.
DELETE FROM message_events WHERE event = 'queued' AND EXISTS (
    SELECT 1 FROM queued_messages q
    WHERE q.sender = message_events.sender AND q.message_id = message_events.message_id
      AND q.recipient = message_events.recipient);
-- Idempotency keys are forgotten after `messages.idempotency_window_secs`, oldest first.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
