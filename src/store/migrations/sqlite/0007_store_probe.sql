-- One row a degraded writer rewrites to learn whether writes succeed again.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY,
    probed_at BIGINT NOT NULL
);
