-- Every process that opens the database takes the next node number for the message IDs
-- it assigns (see src/domain/message_ids.rs); only the latest row matters.
CREATE TABLE node_starts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  INTEGER NOT NULL
);

-- On SQLite every write goes through one process, which holds the idempotency keys of
-- the window in memory. The table becomes a log in commit order with no index on the key:
-- a random index entry per accepted message costs a whole page in the write-ahead log at
-- every commit. The log is read back into memory at start and trimmed oldest first.
CREATE TABLE idempotency_log (
    seq         INTEGER PRIMARY KEY,
    gateway_id  TEXT    NOT NULL,
    idem_key    TEXT    NOT NULL,
    message_id  BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);
INSERT INTO idempotency_log (gateway_id, idem_key, message_id, created_at)
    SELECT gateway_id, idem_key, message_id, created_at FROM idempotency_keys
    ORDER BY created_at;
DROP TABLE idempotency_keys;
