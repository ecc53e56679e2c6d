-- The transactional outbox: every committed change of a service leaves one row per event here,
-- written in the same transaction as the change. A relay (or the embedded delivery) reads it.
CREATE TABLE outbox (
    position      bigserial PRIMARY KEY,            -- global commit-ish order for relays
    id            uuid        NOT NULL UNIQUE,      -- the event id (UUIDv7), the idempotency key
    subject       text        NOT NULL,             -- pipeline name; also the Kafka key
    seq           bigint      NOT NULL,             -- per-subject sequence, assigned under its lock
    type          text        NOT NULL,
    source        text        NOT NULL,
    time          timestamptz NOT NULL,
    data          jsonb       NOT NULL,
    traceparent   text,
    published_at  timestamptz,
    processed_at  timestamptz,
    UNIQUE (subject, seq)
);

CREATE INDEX outbox_unpublished ON outbox (position) WHERE published_at IS NULL;
CREATE INDEX outbox_unprocessed ON outbox (position) WHERE processed_at IS NULL;

-- The last sequence handed out per subject.
CREATE TABLE outbox_sequences (
    subject  text   PRIMARY KEY,
    last_seq bigint NOT NULL
);
