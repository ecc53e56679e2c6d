-- The embedded server delivers outbox rows to its consumers in-process (no Kafka); a row that
-- still fails after bounded retries is set aside with its error, the embedded dead letter.
ALTER TABLE outbox
    ADD COLUMN delivery_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN delivery_error    text;

CREATE INDEX outbox_retention ON outbox ((coalesce(published_at, processed_at)))
    WHERE published_at IS NOT NULL OR processed_at IS NOT NULL;
