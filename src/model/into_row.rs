//! What each `New*` insert becomes once stored under its primary key: the same for
//! every store.

use super::{
    AccessToken, Application, DeviceGrant, DeviceGrantStatus, Grant, IdToken, NewAccessToken,
    NewApplication, NewDeviceGrant, NewGrant, NewIdToken, NewRefreshToken, NewUser, RefreshToken,
    User,
};

impl NewUser {
    /// The stored row this insert becomes under primary key `id`.
    pub fn into_row(self, id: i64) -> User {
        User {
            id,
            username: self.username,
            email: self.email,
            password_hash: self.password_hash,
            is_active: self.is_active,
            date_joined: self.date_joined,
            last_login: None,
        }
    }
}

impl NewApplication {
    /// The stored row this insert becomes under primary key `id`.
    pub fn into_row(self, id: i64) -> Application {
        Application {
            id,
            client_id: self.client_id,
            user_id: self.user_id,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            client_type: self.client_type,
            authorization_grant_type: self.authorization_grant_type,
            client_secret: self.client_secret,
            hash_client_secret: self.hash_client_secret,
            name: self.name,
            skip_authorization: self.skip_authorization,
            created: self.created,
            updated: self.created,
            algorithm: self.algorithm,
            allowed_origins: self.allowed_origins,
            pkce_required: self.pkce_required,
        }
    }
}

impl NewGrant {
    /// The stored row this insert becomes under primary key `id`.
    pub fn into_row(self, id: i64) -> Grant {
        Grant {
            id,
            user_id: self.user_id,
            code_checksum: self.code_checksum,
            application_id: self.application_id,
            expires: self.expires,
            redirect_uri: self.redirect_uri,
            scope: self.scope,
            pkce: self.pkce,
            nonce: self.nonce,
            claims: self.claims,
            auth_time: self.auth_time,
            created: self.created,
            used_at: None,
            resource: self.resource,
        }
    }
}

impl NewAccessToken {
    /// The stored row this insert becomes under primary key `id`.
    pub fn into_row(self, id: i64) -> AccessToken {
        AccessToken {
            id,
            user_id: self.user_id,
            source_refresh_token_id: self.source_refresh_token_id,
            token_checksum: self.token_checksum,
            id_token_id: self.id_token_id,
            application_id: self.application_id,
            grant_id: self.grant_id,
            expires: self.expires,
            scope: self.scope,
            created: self.created,
            resource: self.resource,
        }
    }
}

impl NewRefreshToken {
    /// The stored row this insert becomes under primary key `id`.
    pub fn into_row(self, id: i64) -> RefreshToken {
        RefreshToken {
            id,
            user_id: self.user_id,
            token_checksum: self.token_checksum,
            application_id: self.application_id,
            access_token_id: self.access_token_id,
            token_family: self.token_family,
            created: self.created,
            revoked: None,
            resource: self.resource,
        }
    }
}

impl NewIdToken {
    /// The stored row this insert becomes under primary key `id`.
    pub fn into_row(self, id: i64) -> IdToken {
        IdToken {
            id,
            user_id: self.user_id,
            jti: self.jti,
            application_id: self.application_id,
            expires: self.expires,
            scope: self.scope,
            created: self.created,
        }
    }
}

impl NewDeviceGrant {
    /// The stored row this insert becomes under primary key `id` (pending, unclaimed).
    pub fn into_row(self, id: i64) -> DeviceGrant {
        DeviceGrant {
            id,
            user_id: None,
            device_code_checksum: self.device_code_checksum,
            user_code_checksum: self.user_code_checksum,
            scope: self.scope,
            interval: self.interval,
            expires: self.expires,
            status: DeviceGrantStatus::AuthorizationPending,
            client_id: self.client_id,
            // One interval before creation: the first poll is never too soon.
            last_checked: self.created.add_secs(self.interval.saturating_neg()),
            created: self.created,
        }
    }
}
