-- The relay's progress is one mark per subject instead of a timestamp on every row.
--
-- Why: setting `published_at` rewrote each published row whole (the column sat in the predicate
-- of one index and the key of another, so the update was never HOT): ~30 us a row, a third of
-- the relay's time. Rows of a subject are published strictly in `seq` order, and sequences are
-- gap-free, so "published up to seq N" says the same thing for one row write per subject.
-- Only relays write this table (under the subject's advisory lock); pushes never touch it, so a
-- relay never waits for a long push of the same pipeline to commit.
CREATE TABLE outbox_published (
    subject        text   PRIMARY KEY,
    published_seq  bigint NOT NULL
);

-- Carry over what was published: everything before a subject's first unpublished row, or all
-- of it when none is left (rows already deleted by retention were published).
INSERT INTO outbox_published (subject, published_seq)
SELECT s.subject,
       coalesce((SELECT min(o.seq) - 1 FROM outbox o
                 WHERE o.subject = s.subject AND o.published_at IS NULL),
                s.last_seq)
FROM outbox_sequences s;

DROP INDEX outbox_retention;
DROP INDEX outbox_unpublished;
ALTER TABLE outbox DROP COLUMN published_at;

-- Retention finds old rows by the event's own time; a row is deleted once it is both that old
-- and handed on (published by the relay, or processed by the embedded delivery).
CREATE INDEX outbox_time ON outbox (time);
