-- A device not seen for `devices.stale_after_secs` is dropped by housekeeping; this index
-- finds such devices without reading them all.
CREATE INDEX devices_by_last_seen ON devices (last_seen_at);
