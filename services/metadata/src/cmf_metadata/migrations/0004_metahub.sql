-- Metahub (docs/metahub.md): the peers this server pulls from, their sync state, the
-- schedules of their syncs and the log of every run.

-- This server's identity: a peer's acknowledge answers with its id (X-CMF-Server-Id), so a
-- registration of ourselves under any alias of our address is refused.
CREATE TABLE metahub_identity (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    server_id uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO metahub_identity DEFAULT VALUES;

CREATE TABLE metahub_peers (
    id bigserial PRIMARY KEY,
    server_name text NOT NULL UNIQUE,
    host_info text NOT NULL,
    -- The peer's bearer token, Fernet-encrypted with METAHUB_SECRET_KEY; never returned.
    token_encrypted bytea,
    -- Epoch ms on the peer's clock: its changes after this are pulled by the next sync.
    -- Written only once a sync's merges have committed; NULL: never synced (a full sync).
    last_sync_time bigint,
    created_at bigint NOT NULL
);

CREATE TABLE metahub_schedules (
    id bigserial PRIMARY KEY,
    server_id bigint NOT NULL REFERENCES metahub_peers (id) ON DELETE CASCADE,
    timezone text NOT NULL,
    start_time_utc bigint NOT NULL,
    next_run_time_utc bigint,
    active boolean NOT NULL DEFAULT true,
    status text NOT NULL DEFAULT 'scheduled',
    one_time boolean NOT NULL,
    created_at bigint NOT NULL,
    recurrence_mode text,
    interval_unit text,
    interval_value integer,
    daily_time text,
    weekly_day text,
    weekly_time text
);
CREATE INDEX metahub_schedules_due ON metahub_schedules (next_run_time_utc) WHERE active;

CREATE TABLE metahub_sync_logs (
    id bigserial PRIMARY KEY,
    server_id bigint NOT NULL REFERENCES metahub_peers (id) ON DELETE CASCADE,
    schedule_id bigint REFERENCES metahub_schedules (id) ON DELETE SET NULL,
    run_time_utc bigint NOT NULL,
    status text NOT NULL,
    message text NOT NULL,
    sync_type text NOT NULL,
    executions_pulled integer NOT NULL DEFAULT 0,
    executions_merged integer NOT NULL DEFAULT 0
);
CREATE INDEX metahub_sync_logs_server ON metahub_sync_logs (server_id, id DESC);
CREATE INDEX metahub_sync_logs_schedule ON metahub_sync_logs (schedule_id, id DESC);
