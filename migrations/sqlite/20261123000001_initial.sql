-- tower-oauth-toolkit schema, SQLite flavour. Mirrors migrations/postgres.
-- Token tables use plain rowid keys (no AUTOINCREMENT: one write less per insert); the
-- foreign keys clear or cascade every reference, so a reused id cannot be mistaken.
-- Times are INTEGER seconds since the Unix epoch (UTC). Tokens, codes and device/user codes
-- are stored only as SHA-256 hex checksums. ON DELETE actions follow Django OAuth Toolkit.

CREATE TABLE oauth2_user (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL,
    is_active     INTEGER NOT NULL DEFAULT 1,
    date_joined   INTEGER NOT NULL,
    last_login    INTEGER
);

CREATE TABLE oauth2_application (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id                 TEXT    NOT NULL UNIQUE,
    user_id                   INTEGER REFERENCES oauth2_user (id) ON DELETE CASCADE,
    redirect_uris             TEXT    NOT NULL DEFAULT '',
    post_logout_redirect_uris TEXT    NOT NULL DEFAULT '',
    client_type               TEXT    NOT NULL,
    authorization_grant_type  TEXT    NOT NULL,
    client_secret             TEXT    NOT NULL DEFAULT '',
    hash_client_secret        INTEGER NOT NULL DEFAULT 1,
    name                      TEXT    NOT NULL DEFAULT '',
    skip_authorization        INTEGER NOT NULL DEFAULT 0,
    created                   INTEGER NOT NULL,
    updated                   INTEGER NOT NULL,
    algorithm                 TEXT    NOT NULL DEFAULT '',
    allowed_origins           TEXT    NOT NULL DEFAULT '',
    pkce_required             INTEGER
);
CREATE INDEX oauth2_application_user_id ON oauth2_application (user_id);

CREATE TABLE oauth2_grant (
    id                    INTEGER PRIMARY KEY,
    user_id               INTEGER NOT NULL REFERENCES oauth2_user (id) ON DELETE CASCADE,
    code_checksum         TEXT    NOT NULL UNIQUE,
    application_id        INTEGER NOT NULL REFERENCES oauth2_application (id) ON DELETE CASCADE,
    expires               INTEGER NOT NULL,
    redirect_uri          TEXT    NOT NULL DEFAULT '',
    scope                 TEXT    NOT NULL DEFAULT '',
    code_challenge        TEXT    NOT NULL DEFAULT '',
    code_challenge_method TEXT    NOT NULL DEFAULT '',
    nonce                 TEXT    NOT NULL DEFAULT '',
    claims                TEXT    NOT NULL DEFAULT '',
    auth_time             INTEGER,
    created               INTEGER NOT NULL,
    used_at               INTEGER
);
CREATE INDEX oauth2_grant_expires ON oauth2_grant (expires);
CREATE INDEX oauth2_grant_user_id ON oauth2_grant (user_id);
CREATE INDEX oauth2_grant_application_id ON oauth2_grant (application_id);

CREATE TABLE oauth2_id_token (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER REFERENCES oauth2_user (id) ON DELETE CASCADE,
    jti            TEXT    NOT NULL UNIQUE,
    application_id INTEGER REFERENCES oauth2_application (id) ON DELETE CASCADE,
    expires        INTEGER NOT NULL,
    scope          TEXT    NOT NULL DEFAULT '',
    created        INTEGER NOT NULL
);
CREATE INDEX oauth2_id_token_expires ON oauth2_id_token (expires);
CREATE INDEX oauth2_id_token_user_id ON oauth2_id_token (user_id);
CREATE INDEX oauth2_id_token_application_id ON oauth2_id_token (application_id);

-- access_token <-> refresh_token reference each other; SQLite resolves foreign keys when
-- rows change, so the forward reference to oauth2_refresh_token is fine here.
CREATE TABLE oauth2_access_token (
    id                      INTEGER PRIMARY KEY,
    user_id                 INTEGER REFERENCES oauth2_user (id) ON DELETE CASCADE,
    source_refresh_token_id INTEGER REFERENCES oauth2_refresh_token (id) ON DELETE SET NULL,
    token_checksum          TEXT    NOT NULL UNIQUE,
    id_token_id             INTEGER REFERENCES oauth2_id_token (id) ON DELETE CASCADE,
    application_id          INTEGER REFERENCES oauth2_application (id) ON DELETE CASCADE,
    grant_id                INTEGER REFERENCES oauth2_grant (id) ON DELETE SET NULL,
    expires                 INTEGER NOT NULL,
    scope                   TEXT    NOT NULL DEFAULT '',
    created                 INTEGER NOT NULL
);
-- Columns that are NULL for most tokens (client credentials have no user, source refresh
-- token, ID token or code) get partial indexes: such inserts do not touch them, and every
-- lookup by one of these columns (`= $1`, foreign-key actions) implies IS NOT NULL.
CREATE INDEX oauth2_access_token_expires ON oauth2_access_token (expires);
CREATE INDEX oauth2_access_token_application_id ON oauth2_access_token (application_id);
CREATE INDEX oauth2_access_token_user_app ON oauth2_access_token (user_id, application_id)
    WHERE user_id IS NOT NULL;
CREATE INDEX oauth2_access_token_grant_id ON oauth2_access_token (grant_id)
    WHERE grant_id IS NOT NULL;
CREATE UNIQUE INDEX oauth2_access_token_source_refresh_token_id
    ON oauth2_access_token (source_refresh_token_id) WHERE source_refresh_token_id IS NOT NULL;
CREATE UNIQUE INDEX oauth2_access_token_id_token_id
    ON oauth2_access_token (id_token_id) WHERE id_token_id IS NOT NULL;

CREATE TABLE oauth2_refresh_token (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER REFERENCES oauth2_user (id) ON DELETE CASCADE,
    token_checksum  TEXT    NOT NULL UNIQUE,
    application_id  INTEGER NOT NULL REFERENCES oauth2_application (id) ON DELETE CASCADE,
    access_token_id INTEGER REFERENCES oauth2_access_token (id) ON DELETE SET NULL,
    token_family    TEXT,
    created         INTEGER NOT NULL,
    revoked         INTEGER
);
CREATE UNIQUE INDEX oauth2_refresh_token_access_token_id
    ON oauth2_refresh_token (access_token_id) WHERE access_token_id IS NOT NULL;
CREATE INDEX oauth2_refresh_token_family ON oauth2_refresh_token (token_family)
    WHERE token_family IS NOT NULL;
CREATE INDEX oauth2_refresh_token_revoked ON oauth2_refresh_token (revoked);
CREATE INDEX oauth2_refresh_token_user_id ON oauth2_refresh_token (user_id);
CREATE INDEX oauth2_refresh_token_application_id ON oauth2_refresh_token (application_id);

CREATE TABLE oauth2_device_grant (
    id                   INTEGER PRIMARY KEY,
    user_id              INTEGER REFERENCES oauth2_user (id) ON DELETE CASCADE,
    device_code_checksum TEXT    NOT NULL UNIQUE,
    user_code_checksum   TEXT    NOT NULL UNIQUE,
    scope                TEXT    NOT NULL DEFAULT '',
    poll_interval        INTEGER NOT NULL DEFAULT 5,
    expires              INTEGER NOT NULL,
    status               TEXT    NOT NULL DEFAULT 'authorization-pending',
    client_id            TEXT    NOT NULL,
    last_checked         INTEGER NOT NULL,
    created              INTEGER NOT NULL
);
CREATE INDEX oauth2_device_grant_expires ON oauth2_device_grant (expires);
CREATE INDEX oauth2_device_grant_client_id ON oauth2_device_grant (client_id);
CREATE INDEX oauth2_device_grant_user_id ON oauth2_device_grant (user_id);
