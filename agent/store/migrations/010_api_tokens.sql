-- The console's JSON API: tokens a script sends as `Authorization: Bearer ...`, each belonging to a
-- user and seeing what that user sees. Only a hash is kept (the token is printed once). Sign-ins are
-- also throttled per client address, which needs the attempts found by client.

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL,           -- what the owner calls it (the script that uses it)
    token_hash   bytea       NOT NULL UNIQUE,    -- sha256 of the token: a leaked table opens nothing
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
-- a name picks one live token of a user, so `--revoke --name` revokes exactly what it says
CREATE UNIQUE INDEX api_tokens_live_name_idx ON api_tokens (user_id, name) WHERE revoked_at IS NULL;

CREATE INDEX login_attempts_client_idx ON login_attempts (client, at DESC) WHERE NOT succeeded;
