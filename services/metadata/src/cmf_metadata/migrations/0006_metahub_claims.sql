-- A schedule's run that a server process has claimed and not yet finished (docs/metahub.md,
-- "Schedules"): epoch ms of the claim, NULL once the run is logged. The claiming process holds
-- a session advisory lock on the schedule while it runs; a claim whose lock is free was left by
-- a process that died mid-run, and the next tick of any replica runs it once more.
ALTER TABLE metahub_schedules ADD COLUMN claimed_at bigint;
CREATE INDEX metahub_schedules_claimed ON metahub_schedules (id) WHERE claimed_at IS NOT NULL;
