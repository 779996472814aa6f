-- People sign in with a user name and a password (issue 22, point 7). A password
-- user is the same actor a bearer token is: a user name, a role and a unit. Times
-- are unix seconds (UTC), the same on both engines. 0012 is another change's
-- number; sqlx applies migrations by version and accepts the gap.

-- `yiwang user create|passwd|lock|unlock`. password_hash is argon2id's PHC string
-- ($argon2id$v=19$m=19456,t=2,p=1$salt$hash): the salt and the parameters travel
-- with it. locked: an administrator locked the account (`yiwang user lock`); it
-- cannot sign in and its sessions stop working. device_id: the device a grid
-- worker first signed in on (人机格), NULL until then or after `user unlock`.
CREATE TABLE users (
    user_name      TEXT PRIMARY KEY,
    role           TEXT NOT NULL,
    unit           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    locked         BOOLEAN NOT NULL DEFAULT FALSE,
    device_id      TEXT
);

-- Failed sign-ins per user name as typed, whether or not such a user exists (the
-- lock-out must not tell which names exist): the failures of the window that
-- started at window_start, and the lock until locked_until.
CREATE TABLE sign_in_failures (
    user_name     TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    window_start  BIGINT NOT NULL,
    locked_until  BIGINT
);

-- A signed-in browser. The cookie's secret is stored as its SHA-256, like a token;
-- so is the CSRF token the session's state-changing requests must carry. The
-- actor's role and unit are read from users at each request.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    session_hash  TEXT NOT NULL UNIQUE,
    csrf_hash     TEXT NOT NULL,
    user_name     TEXT NOT NULL REFERENCES users (user_name) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX sessions_user ON sessions (user_name);
