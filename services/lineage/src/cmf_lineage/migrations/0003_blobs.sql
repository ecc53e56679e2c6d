-- The blobs the artifact service holds (its cmf.artifacts.blob.stored.v1 events): an artifact
-- is stored when a blob's digest is its uri. Kept apart from artifacts, so a blob that arrives
-- before its artifact (or is no artifact's: a file of a directory) is kept all the same.
CREATE TABLE blobs (
    digest  text    PRIMARY KEY,     -- md5, or md5.dir for a directory's manifest
    size    bigint  NOT NULL,
    sha256  text                     -- null: found in the store, written by another
);

-- How many blob events each consumer applied: part of its graph version, which must grow with
-- every applied batch (a blob event's subject is its digest, so it is counted here rather than
-- given a consumer_progress row per blob).
CREATE TABLE blob_progress (
    consumer  text    PRIMARY KEY,
    applied   bigint  NOT NULL
);
