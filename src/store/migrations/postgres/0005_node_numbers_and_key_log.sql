-- Every process that opens the database takes the next node number for the message IDs
-- it assigns (see src/domain/message_ids.rs); only the latest row matters.
CREATE TABLE node_starts (
    id          BIGSERIAL PRIMARY KEY,
    started_at  BIGINT NOT NULL
);

-- Idempotency keys stay in their indexed table here: several nodes share this database,
-- so the database must be the one to see a retry. (SQLite keeps them in memory over a log.)
