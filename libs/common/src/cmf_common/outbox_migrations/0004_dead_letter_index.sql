-- The embedded delivery's dead letters (rows it gave up on, kept with their error) are counted
-- for the cmf_dlq_depth gauge every few seconds: a partial index holds only them, so the count
-- never scans the outbox.
CREATE INDEX outbox_dead_letters ON outbox (position) WHERE delivery_error IS NOT NULL;
