-- The owner's console: who may sign in (argon2 hashes only), which businesses each owner sees,
-- server-side sessions, and the login attempts that throttle password guessing. Messages gain who
-- called the caller back, and when.

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text        NOT NULL,          -- argon2id, as argon2-cffi encodes it
    role          text        NOT NULL CHECK (role IN ('owner', 'operator')),  -- an operator sees every business
    locked_until  timestamptz,                   -- set after too many wrong passwords
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_idx ON users (lower(email));

CREATE TABLE user_businesses (
    user_id  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    business text   NOT NULL,                    -- as calls.business spells it (the brain's name)
    PRIMARY KEY (user_id, business)
);

CREATE TABLE web_sessions (
    token_hash bytea       PRIMARY KEY,          -- sha256 of the cookie's token: a leaked table opens no session
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);

CREATE TABLE login_attempts (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email     text        NOT NULL,              -- as typed, lower-cased: unknown addresses are throttled too
    succeeded boolean     NOT NULL,
    client    text,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_email_idx ON login_attempts (email, at DESC);

ALTER TABLE messages ADD COLUMN called_back_at timestamptz;
ALTER TABLE messages ADD COLUMN called_back_by bigint REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX messages_awaiting_callback_idx ON messages (business, created_at DESC)
    WHERE callback_requested AND called_back_at IS NULL;
