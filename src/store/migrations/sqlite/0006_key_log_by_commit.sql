-- The idempotency log gets one row per commit instead of one per key: the keys a commit
-- claims go into `entries`, each as the 16-byte digest the process keys its memory by
-- (see src/store/idempotency.rs) followed by the 8-byte message ID. A row per key cost a
-- B-tree insert and four bound values per accepted message. Rows written before this
-- migration keep their one key in the named columns and are read as before.
CREATE TABLE idempotency_log_by_commit (
    seq         INTEGER PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    gateway_id  TEXT,
    idem_key    TEXT,
    message_id  BLOB,
    entries     BLOB,
    CHECK (entries IS NOT NULL
           OR (gateway_id IS NOT NULL AND idem_key IS NOT NULL AND message_id IS NOT NULL))
);
INSERT INTO idempotency_log_by_commit (seq, created_at, gateway_id, idem_key, message_id)
    SELECT seq, created_at, gateway_id, idem_key, message_id FROM idempotency_log;
DROP TABLE idempotency_log;
ALTER TABLE idempotency_log_by_commit RENAME TO idempotency_log;
