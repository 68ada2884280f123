-- RFC 7591/7592 dynamic client registration: one row per dynamically registered client,
-- with its registration access token (SHA-256 checksum only), the scope that token
-- carries (DCR_REGISTRATION_SCOPE when issued), its expiry (NULL: never, DOT's year 9999)
-- and the client metadata it was registered with (JSON), which RFC 7592 reads give back;
-- `used`: when a cleanup run first saw a token or code of the client (NULL: never).
CREATE TABLE oauth2_registration (
    id             INTEGER PRIMARY KEY,
    application_id INTEGER NOT NULL UNIQUE REFERENCES oauth2_application (id) ON DELETE CASCADE,
    token_checksum TEXT    NOT NULL UNIQUE,
    scope          TEXT    NOT NULL DEFAULT '',
    expires        INTEGER,
    metadata       TEXT    NOT NULL DEFAULT '{}',
    created        INTEGER NOT NULL,
    used           INTEGER
);
CREATE INDEX oauth2_registration_created ON oauth2_registration (created);
