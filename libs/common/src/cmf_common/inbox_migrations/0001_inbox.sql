-- What a consumer has applied: event ids (redelivery is at least once, so handlers skip ids
-- they have seen) and the highest sequence applied per subject (for consistency tokens).
CREATE TABLE consumer_inbox (
    consumer    text        NOT NULL,
    event_id    uuid        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX consumer_inbox_applied ON consumer_inbox (applied_at);

CREATE TABLE consumer_progress (
    consumer  text   NOT NULL,
    subject   text   NOT NULL,
    seq       bigint NOT NULL,
    PRIMARY KEY (consumer, subject)
);
