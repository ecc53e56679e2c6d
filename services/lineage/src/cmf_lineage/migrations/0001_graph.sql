-- The lineage graph in PostgreSQL (the store used when no Neo4j is configured). Derived data:
-- it can always be rebuilt from the metadata service. Keys are the client's stable keys.

CREATE TABLE pipelines (
    name        text   PRIMARY KEY,
    properties  jsonb  NOT NULL DEFAULT '{}',
    version     bigint NOT NULL
);

CREATE TABLE stages (
    pipeline    text   NOT NULL,
    name        text   NOT NULL,
    properties  jsonb  NOT NULL DEFAULT '{}',
    version     bigint NOT NULL,
    PRIMARY KEY (pipeline, name)
);

-- An execution is keyed within its pipeline: the reference deduplicates uuids per pipeline,
-- so the same uuid pushed under two pipeline names is two executions.
CREATE TABLE executions (
    pipeline           text    NOT NULL,
    uuid               text    NOT NULL,       -- the first of its Execution_uuid list
    uuids              text[]  NOT NULL,
    stage              text    NOT NULL,
    type               text    NOT NULL,
    name               text    NOT NULL,
    display_name       text    NOT NULL,
    metadata_id        bigint  NOT NULL,
    properties         jsonb   NOT NULL DEFAULT '{}',
    custom_properties  jsonb   NOT NULL DEFAULT '{}',
    version            bigint  NOT NULL,
    PRIMARY KEY (pipeline, uuid)
);
CREATE INDEX executions_uuid ON executions (uuid);
CREATE INDEX executions_uuid_prefix ON executions (pipeline, left(uuid, 4));

CREATE TABLE artifacts (
    uri                text    PRIMARY KEY,
    type               text    NOT NULL,
    name               text    NOT NULL,
    display_name       text    NOT NULL,
    metadata_id        bigint  NOT NULL,
    properties         jsonb   NOT NULL DEFAULT '{}',
    custom_properties  jsonb   NOT NULL DEFAULT '{}',
    create_time        bigint  NOT NULL,
    version            bigint  NOT NULL
);
CREATE INDEX artifacts_metadata_id ON artifacts (metadata_id);

-- Pipeline membership of artifacts: an artifact shared by pipelines belongs to each.
CREATE TABLE artifact_pipelines (
    uri       text NOT NULL,
    pipeline  text NOT NULL,
    PRIMARY KEY (uri, pipeline)
);
CREATE INDEX artifact_pipelines_pipeline ON artifact_pipelines (pipeline);

-- kind 3: artifact -INPUT-> execution; kind 4: execution -OUTPUT-> artifact.
CREATE TABLE edges (
    pipeline   text     NOT NULL,
    execution  text     NOT NULL,
    artifact   text     NOT NULL,
    kind       smallint NOT NULL CHECK (kind IN (3, 4)),
    PRIMARY KEY (pipeline, execution, artifact, kind)
);
CREATE INDEX edges_artifact ON edges (artifact, kind);
