-- Nothing changes here: PostgreSQL keeps its idempotency keys in their indexed table, and
-- the log this migration reshapes on SQLite does not exist. The number stays in step.
SELECT 1;
