-- The artifact service's catalogue: the blobs it knows are stored (by digest, the artifact's
-- uri), and the resumable uploads in progress. The bytes live in the BlobStore.
CREATE TABLE blobs (
    digest     text        PRIMARY KEY,       -- md5, or md5.dir for a directory manifest
    size       bigint      NOT NULL,
    sha256     text,                          -- null: found in the store, written by another
    stored_at  timestamptz NOT NULL DEFAULT now()
);

-- A resumable upload: its parts live in the store under ``handle`` (an S3 upload id, or a
-- folder), so a session outlives the process that began it.
CREATE TABLE upload_sessions (
    id          uuid        PRIMARY KEY,
    digest      text        NOT NULL,
    handle      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    touched_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX upload_sessions_touched ON upload_sessions (touched_at);

-- The etag of the part last accepted under each number, through this service (a store may
-- list a part sent twice twice: this tells which is current).
CREATE TABLE upload_parts (
    session_id  uuid    NOT NULL REFERENCES upload_sessions (id) ON DELETE CASCADE,
    number      integer NOT NULL,
    etag        text    NOT NULL,
    PRIMARY KEY (session_id, number)
);
