-- Bulk lookups of phone and e-mail hashes are off for a gateway ID until the operator
-- turns them on (`tocsin admin gateway set-lookup ID --bulk on`).
ALTER TABLE gateway_ids ADD COLUMN bulk_lookup {int} NOT NULL DEFAULT 0;
