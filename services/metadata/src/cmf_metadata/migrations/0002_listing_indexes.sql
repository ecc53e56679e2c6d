-- What the CMF listing routes (docs/wire-contract.md §1.4, §1.9) search and sort executions by.
--
-- executions-by-stage filters with ILIKE '%v%' over an execution's id, all its properties and
-- renderings of its creation time, and sorts by original_create_time_since_epoch as a number.
-- Computing that text per row per request costs ~6 µs (jsonb to text, to_char, lower) and
-- ILIKE over it is slower than LIKE over stored lower-case text, so each execution's search
-- text and sort key are kept in execution_search, written by statement-level triggers in the
-- push's own transaction (one set-based INSERT per statement, never a row-by-row round trip).
-- Its trigram index answers selective filters from the index; broad ones scan one stage.
-- An unfiltered page walks one of the two sort indexes (nulls last in either direction) and
-- takes its total from execution_stage_counts, kept by the same trigger: no count of the stage.

-- An epoch-milliseconds value stored as text, as a number; NULL when absent or not a plain
-- number (the reference's cast would fail the request instead).
CREATE FUNCTION cmf_epoch_ms(value text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN value ~ '^\s*-?[0-9]{1,15}(\.[0-9]{0,9})?\s*$'
                THEN value::double precision END
$$;

-- The UTC renderings of an epoch-ms time the reference's filter matches, run together as it
-- concatenates them: 'YYYY-MM-DD HH24:MI:SS', 'M/D/YYYY', 'YYYY', 'M', 'D'; '' without a time.
CREATE FUNCTION cmf_time_text(ms double precision) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        to_char(timezone('UTC', to_timestamp(ms / 1000.0)),
                'YYYY-MM-DD HH24:MI:SS"|"FMMM/FMDD/YYYY"|"YYYY"|"FMMM"|"FMDD'),
        '')
$$;

CREATE TABLE execution_search (
    execution_id  bigint PRIMARY KEY REFERENCES executions (id) ON DELETE CASCADE,
    pipeline_id   bigint NOT NULL,
    stage         text   NOT NULL,            -- the execution's Context_Type
    sort_time     double precision,           -- original_create_time_since_epoch, a number
    search_text   text   NOT NULL             -- lower(id, properties, custom, time renderings)
);
CREATE INDEX execution_search_page ON execution_search (pipeline_id, stage, sort_time, execution_id);
CREATE INDEX execution_search_page_desc
    ON execution_search (pipeline_id, stage, sort_time DESC NULLS LAST, execution_id DESC);
CREATE INDEX execution_search_text ON execution_search USING gin (search_text public.gin_trgm_ops);

-- How many executions each stage of a pipeline holds (executions are never deleted).
CREATE TABLE execution_stage_counts (
    pipeline_id  bigint NOT NULL,
    stage        text   NOT NULL,
    executions   bigint NOT NULL,
    PRIMARY KEY (pipeline_id, stage)
);

CREATE FUNCTION cmf_execution_search_rows() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO execution_search AS s (execution_id, pipeline_id, stage, sort_time, search_text)
    SELECT n.id, n.pipeline_id, n.type, t.ms,
           lower(n.id::text || n.properties::text || n.custom_properties::text
                 || cmf_time_text(t.ms))
    FROM changed_rows n
    CROSS JOIN LATERAL (
        SELECT cmf_epoch_ms(coalesce(n.custom_properties ->> 'original_create_time_since_epoch',
                                     n.properties ->> 'original_create_time_since_epoch')) AS ms
    ) t
    ORDER BY n.id
    ON CONFLICT (execution_id) DO UPDATE SET
        pipeline_id = excluded.pipeline_id,
        stage = excluded.stage,
        sort_time = excluded.sort_time,
        search_text = excluded.search_text;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO execution_stage_counts AS c (pipeline_id, stage, executions)
        SELECT n.pipeline_id, n.type, count(*) FROM changed_rows n
        GROUP BY n.pipeline_id, n.type
        ORDER BY n.pipeline_id, n.type
        ON CONFLICT (pipeline_id, stage) DO UPDATE SET executions = c.executions + excluded.executions;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER executions_search_on_insert AFTER INSERT ON executions
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cmf_execution_search_rows();
CREATE TRIGGER executions_search_on_update AFTER UPDATE ON executions
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cmf_execution_search_rows();

-- Executions already stored when this migration runs.
INSERT INTO execution_search (execution_id, pipeline_id, stage, sort_time, search_text)
SELECT e.id, e.pipeline_id, e.type, t.ms,
       lower(e.id::text || e.properties::text || e.custom_properties::text || cmf_time_text(t.ms))
FROM executions e
CROSS JOIN LATERAL (
    SELECT cmf_epoch_ms(coalesce(e.custom_properties ->> 'original_create_time_since_epoch',
                                 e.properties ->> 'original_create_time_since_epoch')) AS ms
) t;
INSERT INTO execution_stage_counts (pipeline_id, stage, executions)
SELECT pipeline_id, type, count(*) FROM executions GROUP BY pipeline_id, type;

-- Which artifacts each stage of a pipeline used or produced (an event on one of its
-- executions), by type and lower-case name, and how many of each type: artifact-types-by-stage
-- reads the counts, and an artifacts-by-stage page by name walks the index. Kept by a
-- statement-level trigger on events (artifacts keep their type and name once stored).
CREATE TABLE stage_artifacts (
    pipeline_id    bigint NOT NULL,
    stage          text   NOT NULL,
    artifact_type  text   NOT NULL,
    sort_name      text   NOT NULL,   -- lower(name)
    artifact_id    bigint NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    PRIMARY KEY (pipeline_id, stage, artifact_type, sort_name, artifact_id)
);

CREATE TABLE stage_artifact_counts (
    pipeline_id    bigint NOT NULL,
    stage          text   NOT NULL,
    artifact_type  text   NOT NULL,
    artifacts      bigint NOT NULL,
    PRIMARY KEY (pipeline_id, stage, artifact_type)
);

CREATE FUNCTION cmf_stage_artifact_rows() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    WITH added AS (
        INSERT INTO stage_artifacts (pipeline_id, stage, artifact_type, sort_name, artifact_id)
        SELECT DISTINCT e.pipeline_id, e.type, a.type, lower(a.name), a.id
        FROM new_events n
        JOIN executions e ON e.id = n.execution_id
        JOIN artifacts a ON a.id = n.artifact_id
        ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT DO NOTHING
        RETURNING pipeline_id, stage, artifact_type
    )
    INSERT INTO stage_artifact_counts AS c (pipeline_id, stage, artifact_type, artifacts)
    SELECT pipeline_id, stage, artifact_type, count(*) FROM added
    GROUP BY pipeline_id, stage, artifact_type
    ORDER BY pipeline_id, stage, artifact_type
    ON CONFLICT (pipeline_id, stage, artifact_type)
        DO UPDATE SET artifacts = c.artifacts + excluded.artifacts;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_stage_artifacts_on_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION cmf_stage_artifact_rows();

INSERT INTO stage_artifacts (pipeline_id, stage, artifact_type, sort_name, artifact_id)
SELECT DISTINCT e.pipeline_id, e.type, a.type, lower(a.name), a.id
FROM events ev
JOIN executions e ON e.id = ev.execution_id
JOIN artifacts a ON a.id = ev.artifact_id;
INSERT INTO stage_artifact_counts (pipeline_id, stage, artifact_type, artifacts)
SELECT pipeline_id, stage, artifact_type, count(*) FROM stage_artifacts
GROUP BY pipeline_id, stage, artifact_type;
