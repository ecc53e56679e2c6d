-- CMFQuery's questions name an artifact by its name and an execution by its server id.
CREATE INDEX artifacts_name ON artifacts (name);
CREATE INDEX executions_metadata_id ON executions (metadata_id);
