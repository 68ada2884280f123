//! RFC 7009 token revocation: `POST revoke_token/` with client authentication.
//!
//! `token_type_hint` (`access_token` / `refresh_token`) decides which table is searched
//! first; the other is searched too (§2.1). Only the client's own tokens are revoked; an
//! unknown token, or another client's, is answered 200 like a revoked one (§2.2: the
//! client cannot act on the difference, and it must not learn of other clients' tokens).
//! Revoking an access token revokes its refresh token and the other way round (DOT 3.4.1).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, StatusCode};

use super::error::{no_store, OAuthError};
use super::params::Params;
use super::token::{check_form, cors};
use super::users::UserAuthenticator;
use super::{client_auth, Provider};
use crate::crypto::token_checksum;
use crate::model::{Application, Timestamp};
use crate::store::Store;

/// `POST revoke_token/`.
pub(crate) async fn revoke_endpoint<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let origin = headers.get(header::ORIGIN).cloned();
    let mut app = None;
    let mut res = match revoke(&p, &headers, &body, &mut app).await {
        Ok(()) => {
            let mut res = StatusCode::OK.into_response();
            no_store(&mut res);
            res
        }
        Err(e) => e.into_response(),
    };
    cors(&p, origin.as_ref(), app.as_deref(), &mut res);
    res
}

async fn revoke<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    headers: &HeaderMap,
    body: &[u8],
    app_out: &mut Option<std::sync::Arc<Application>>,
) -> Result<(), OAuthError> {
    check_form(headers)?;
    let params = Params::parse(body);
    let app = client_auth::authenticate(&p.inner, headers, &params).await?;
    *app_out = Some(app.clone());
    let token = params.require("token")?;
    let hint = params.get("token_type_hint")?;
    // §2.1: the hint is only a hint; an unknown one is ignored (both tables are searched).
    let refresh_first = hint == Some("refresh_token");
    revoke_token(&*p.inner.store, &app, token, refresh_first).await
}

/// Revokes `token` if it is one of `app`'s (library entry point of the endpoint).
pub async fn revoke_token<S: Store>(
    store: &S,
    app: &Application,
    token: &str,
    refresh_first: bool,
) -> Result<(), OAuthError> {
    let checksum = token_checksum(token);
    let now = Timestamp::now();
    for refresh in [refresh_first, !refresh_first] {
        if refresh {
            if let Some(rt) = store.find_refresh_token(&checksum).await? {
                if rt.application_id == app.id {
                    store.revoke_refresh_token(rt.id, now).await?;
                }
                return Ok(());
            }
        } else if let Some(at) = store.find_access_token(&checksum).await? {
            if at.token.application_id == Some(app.id) {
                store.revoke_access_token(at.token.id, now).await?;
            }
            return Ok(());
        }
    }
    Ok(())
}
