-- RFC 8707 resource indicators: the resources an authorization code, an access token (its
-- audience) and a refresh token (the whole set it may get access tokens for) are for,
-- space-separated absolute URIs; '' for none (no audience restriction), which is what
-- every row written before this migration has.
ALTER TABLE oauth2_grant ADD COLUMN resource TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth2_access_token ADD COLUMN resource TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth2_refresh_token ADD COLUMN resource TEXT NOT NULL DEFAULT '';
