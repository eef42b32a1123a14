-- Connect sessions, the OAuth states they hand out, and connections.
-- Timestamps are unix seconds (BIGINT); ciphertexts are vault blobs bound to
-- (table, column, row id); lists are JSON text.

CREATE TABLE connect_sessions (
    id              TEXT PRIMARY KEY,          -- unguessable; it is the capability in connect_url
    app_id          TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    owner           TEXT NOT NULL,
    profile         TEXT NOT NULL,
    scopes          TEXT NOT NULL,             -- JSON array of requested scopes
    return_to       TEXT,
    status          TEXT NOT NULL DEFAULT 'pending',  -- pending | awaiting_site | completed
    browser_hash    TEXT,                      -- SHA-256 hex of the browser cookie that finished the callback
    connection_id   TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    completed_at    BIGINT
);
CREATE INDEX connect_sessions_app ON connect_sessions (app_id);

CREATE TABLE connect_states (
    state_hash      TEXT PRIMARY KEY,          -- SHA-256 hex of the OAuth state value
    session_id      TEXT NOT NULL REFERENCES connect_sessions(id) ON DELETE CASCADE,
    browser_hash    TEXT NOT NULL,             -- SHA-256 hex of the browser-binding cookie
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
CREATE INDEX connect_states_session ON connect_states (session_id);

CREATE TABLE connections (
    id                      TEXT PRIMARY KEY,
    app_id                  TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    owner                   TEXT NOT NULL,
    profile                 TEXT NOT NULL,
    status                  TEXT NOT NULL,     -- active | needs_reauth | disconnected
    account_id              TEXT,
    account_email           TEXT,
    account_name            TEXT,
    scopes                  TEXT NOT NULL DEFAULT '[]',   -- JSON array, as granted
    sites                   TEXT NOT NULL DEFAULT '[]',   -- JSON array of accessible sites
    site_cloud_id           TEXT,
    site_url                TEXT,
    access_token            BLOB,              -- encrypted
    refresh_token           BLOB,              -- encrypted
    access_expires_at       BIGINT,
    refresh_issued_at       BIGINT,            -- when the current refresh token was issued (90-day inactivity)
    token_version           BIGINT NOT NULL DEFAULT 0,  -- +1 every time a token pair is stored
    -- The in-flight refresh mark (DESIGN §4): written before calling Atlassian,
    -- cleared in the transaction that stores the new pair.
    refresh_inflight_token  BLOB,              -- encrypted: the old refresh token being exchanged
    refresh_started_at      BIGINT,            -- first attempt with that token (reuse window)
    refresh_lease_until     BIGINT,            -- a live claim by some process
    refresh_attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at         BIGINT,            -- transient-failure backoff
    last_refresh_error      TEXT,
    connected_at            BIGINT NOT NULL,
    last_refreshed_at       BIGINT,
    last_used_at            BIGINT,
    disconnected_at         BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    UNIQUE (app_id, owner, profile)
);
CREATE INDEX connections_app_created ON connections (app_id, created_at, id);
CREATE INDEX connections_keepalive ON connections (status, refresh_issued_at);
