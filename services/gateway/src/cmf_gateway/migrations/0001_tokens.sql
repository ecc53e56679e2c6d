-- The gateway's API tokens (cmf_gateway.auth.tokens): only the SHA-256 of each token is kept.
CREATE TABLE tokens (
    id text PRIMARY KEY,
    name text NOT NULL,
    secret_sha256 bytea NOT NULL UNIQUE,
    scope text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    pipeline_prefix text,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);

-- One row: moved on by every revocation, in the revoking transaction. Each gateway replica
-- reads it several times a second and drops its cached tokens when it moved, so a revocation
-- is seen everywhere within a second, whoever revoked (the CLI, another replica).
CREATE TABLE token_revocations (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version bigint NOT NULL
);
INSERT INTO token_revocations (version) VALUES (0);
