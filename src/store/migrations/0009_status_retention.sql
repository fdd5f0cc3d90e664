-- Status events and dead-lettered callback entries are purged after their retention
-- periods; this index finds the old events without reading them all.
CREATE INDEX message_events_by_time ON message_events (at);
