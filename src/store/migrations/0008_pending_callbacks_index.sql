-- Replies and receipts waiting for a gateway ID's callback are counted against caps per
-- sender and per gateway ID before each insert; this index holds just the pending ones.
CREATE INDEX callback_outbox_pending ON callback_outbox (gateway_id, sender) WHERE dead = 0;
