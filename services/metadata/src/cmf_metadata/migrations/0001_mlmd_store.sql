-- The MLMD-shaped store of the metadata service. Surrogate ids are ours; the stable keys come
-- from the client (docs/wire-contract.md §2.3): pipeline name, stage name, execution uuid, artifact uri.

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

-- MLMD type ids, kept only because the CMF wire format carries a type_id on every object.
CREATE TABLE types (
    id    serial   PRIMARY KEY,
    kind  smallint NOT NULL CHECK (kind IN (0, 1, 2)),   -- 0 execution, 1 artifact, 2 context
    name  text     NOT NULL,
    UNIQUE (kind, name)
);

CREATE TABLE pipelines (
    id                            bigserial PRIMARY KEY,
    name                          text   NOT NULL UNIQUE,
    type_id                       integer NOT NULL REFERENCES types (id),
    properties                    jsonb  NOT NULL DEFAULT '{}',
    custom_properties             jsonb  NOT NULL DEFAULT '{}',
    create_time_since_epoch       bigint NOT NULL,
    last_update_time_since_epoch  bigint NOT NULL
);

CREATE TABLE stages (
    id                            bigserial PRIMARY KEY,
    pipeline_id                   bigint NOT NULL REFERENCES pipelines (id),
    name                          text   NOT NULL,
    type_id                       integer NOT NULL REFERENCES types (id),
    properties                    jsonb  NOT NULL DEFAULT '{}',
    custom_properties             jsonb  NOT NULL DEFAULT '{}',
    create_time_since_epoch       bigint NOT NULL,
    last_update_time_since_epoch  bigint NOT NULL,
    UNIQUE (pipeline_id, name)
);

-- An execution belongs to one stage (MLMD's association) and so to one pipeline.
CREATE TABLE executions (
    id                            bigserial PRIMARY KEY,
    pipeline_id                   bigint NOT NULL REFERENCES pipelines (id),
    stage_id                      bigint NOT NULL REFERENCES stages (id),
    type_id                       integer NOT NULL REFERENCES types (id),
    type                          text   NOT NULL,
    name                          text   NOT NULL DEFAULT '',
    uuid                          text   NOT NULL,   -- Execution_uuid as sent: a comma list
    properties                    jsonb  NOT NULL DEFAULT '{}',
    custom_properties             jsonb  NOT NULL DEFAULT '{}',
    create_time_since_epoch       bigint NOT NULL,
    last_update_time_since_epoch  bigint NOT NULL
);
CREATE INDEX executions_pipeline ON executions (pipeline_id, id);
CREATE INDEX executions_stage ON executions (stage_id, id);
CREATE INDEX executions_last_update ON executions (pipeline_id, last_update_time_since_epoch);
-- Re-used executions (a non-empty name) are found again by type and name.
CREATE UNIQUE INDEX executions_reused ON executions (pipeline_id, type, name) WHERE name <> '';

-- Set semantics of the comma-listed Execution_uuid: one row per member, unique per pipeline.
CREATE TABLE execution_uuids (
    pipeline_id   bigint NOT NULL REFERENCES pipelines (id),
    uuid          text   NOT NULL,
    execution_id  bigint NOT NULL REFERENCES executions (id),
    PRIMARY KEY (pipeline_id, uuid)
);
CREATE INDEX execution_uuids_execution ON execution_uuids (execution_id);

-- Artifacts are shared by every pipeline that used the same content (uri = content hash).
CREATE TABLE artifacts (
    id                            bigserial PRIMARY KEY,
    uri                           text   NOT NULL UNIQUE,
    type_id                       integer NOT NULL REFERENCES types (id),
    type                          text   NOT NULL,
    name                          text   NOT NULL,
    properties                    jsonb  NOT NULL DEFAULT '{}',
    custom_properties             jsonb  NOT NULL DEFAULT '{}',
    create_time_since_epoch       bigint NOT NULL,
    last_update_time_since_epoch  bigint NOT NULL
);
CREATE INDEX artifacts_type ON artifacts (type);

CREATE TABLE events (
    execution_id              bigint   NOT NULL REFERENCES executions (id),
    artifact_id               bigint   NOT NULL REFERENCES artifacts (id),
    type                      smallint NOT NULL,   -- MLMD Event.Type: 3 INPUT, 4 OUTPUT, ...
    position                  integer  NOT NULL,   -- order within the execution, as pushed
    step_key                  text     NOT NULL,   -- the artifact's name when it was linked
    milliseconds_since_epoch  bigint   NOT NULL,
    PRIMARY KEY (execution_id, artifact_id, type)
);
CREATE INDEX events_artifact ON events (artifact_id);

-- MLMD's attribution: which stage contexts an artifact was logged in.
CREATE TABLE attributions (
    artifact_id  bigint NOT NULL REFERENCES artifacts (id),
    stage_id     bigint NOT NULL REFERENCES stages (id),
    PRIMARY KEY (artifact_id, stage_id)
);
CREATE INDEX attributions_stage ON attributions (stage_id);

-- Joins two comma lists, keeping the first appearance of each entry: an artifact's `url`
-- property lists "<pipeline>:<remote path>" once per place it is stored.
CREATE FUNCTION merge_comma_lists(existing text, incoming text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT string_agg(entry, ',' ORDER BY first_seen)
    FROM (
        SELECT entry, min(ordinal) AS first_seen
        FROM unnest(string_to_array(concat_ws(',', nullif(existing, ''), nullif(incoming, '')), ','))
             WITH ORDINALITY AS t(entry, ordinal)
        WHERE entry <> ''
        GROUP BY entry
    ) AS entries
$$;
