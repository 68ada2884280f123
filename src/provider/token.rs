//! The token endpoint (RFC 6749 §3.2): `POST token/`, form-encoded, JSON answers with
//! `Cache-Control: no-store`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};

use super::error::{json_response, no_store, OAuthError};
use super::grants::{self, GrantContext, GrantKind};
use super::oidc::id_token::IdTokens;
use super::params::Params;
use super::users::UserAuthenticator;
use super::{client_auth, Provider};
use crate::model::{Application, Timestamp};
use crate::store::Store;

/// Refuses a body that is not `application/x-www-form-urlencoded` (the token,
/// introspection and revocation endpoints).
pub(crate) fn check_form(headers: &HeaderMap) -> Result<(), OAuthError> {
    if crate::resource::form::is_form_urlencoded(headers) {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "The request body must be application/x-www-form-urlencoded.",
        ))
    }
}

/// `POST token/`.
pub(crate) async fn token_endpoint<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: http::request::Parts,
    body: Bytes,
) -> Response {
    let headers = &parts.headers;
    let origin = headers.get(header::ORIGIN).cloned();
    let mut app_for_cors = None;
    let result = token_request(&p, &parts, &body, &mut app_for_cors).await;
    let mut res = match result {
        Ok(answer) => {
            let mut res = json_response(
                StatusCode::OK,
                serde_json::to_string(&answer).expect("token responses serialize"),
            );
            no_store(&mut res);
            res
        }
        Err(e) => e.into_response(),
    };
    cors(&p, origin.as_ref(), app_for_cors.as_deref(), &mut res);
    res
}

async fn token_request<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &http::request::Parts,
    body: &[u8],
    app_out: &mut Option<std::sync::Arc<Application>>,
) -> Result<grants::TokenResponse, OAuthError> {
    let inner = &p.inner;
    let headers = &parts.headers;
    check_form(headers)?;
    let params = Params::parse(body);
    let grant_type = params.require("grant_type")?;
    let Some(kind) = GrantKind::parse(grant_type) else {
        return Err(grants::unsupported(grant_type));
    };
    let app = client_auth::authenticate(inner, headers, &params).await?;
    *app_out = Some(app.clone());
    if !grants::allows(&app, kind) {
        return Err(OAuthError::unauthorized_client(format!(
            "This client may not use the {} grant.",
            kind.as_str()
        )));
    }
    let ctx = GrantContext {
        store: &*inner.store,
        users: &inner.users,
        minter: &inner.minter,
        scopes: &*inner.scopes,
        id_tokens: inner.oidc.as_ref().map(|oidc| IdTokens {
            settings: &inner.settings,
            oidc,
            claims: &*inner.claims,
            issuer: crate::provider::oidc::issuer(&inner.settings, inner.issuer.as_ref(), parts),
        }),
        successor_key: &inner.keys.successor,
        app: &app,
        params: &params,
        throttle: &inner.throttle,
        client_addr: crate::provider::throttle::client_addr(&parts.extensions),
        resource_policy: &*inner.resource_policy,
        // The one clock read of a token request: every grant decides with this time.
        now: Timestamp::now(),
    };
    match kind {
        GrantKind::AuthorizationCode => grants::authorization_code::grant(&ctx).await,
        GrantKind::ClientCredentials => grants::client_credentials::grant(&ctx).await,
        GrantKind::Password => grants::password::grant(&ctx).await,
        GrantKind::RefreshToken => grants::refresh_token::grant(&ctx).await,
        GrantKind::DeviceCode => grants::device_code::grant(&ctx).await,
    }
}

/// CORS on an actual request: the application's `allowed_origins` (RFC 6454 origins;
/// DOT's CORS support for public clients calling the token endpoint from a browser).
pub(crate) fn cors<S, U>(
    _p: &Provider<S, U>,
    origin: Option<&HeaderValue>,
    app: Option<&Application>,
    res: &mut Response,
) {
    let (Some(origin), Some(app)) = (origin, app) else {
        return;
    };
    let Ok(o) = origin.to_str() else { return };
    if app.allowed_origin_list().any(|allowed| allowed == o) {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// CORS preflight (`OPTIONS`) of the token, revocation and introspection endpoints: the
/// origin is allowed when some application lists it.
pub(crate) async fn preflight<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    headers: HeaderMap,
) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let Some(origin) = headers.get(header::ORIGIN) else {
        return res;
    };
    let Ok(o) = origin.to_str() else { return res };
    let allowed = match p.inner.applications.allowed_origins(&*p.inner.store).await {
        Ok(origins) => origins.contains(o),
        Err(e) => {
            tracing::error!(error = %e, "CORS preflight: listing applications failed");
            false
        }
    };
    if allowed {
        allow_preflight(res.headers_mut(), origin.clone());
        res.headers_mut()
            .append(header::VARY, HeaderValue::from_static("Origin"));
    }
    res
}

/// The headers of an accepted CORS preflight for `origin` (`*` or one origin): the
/// endpoints take GET/POST with `Authorization` and a form body; browsers may cache
/// the answer for ten minutes. No `Allow-Credentials`: no endpoint uses cookies.
pub(crate) fn allow_preflight(h: &mut http::HeaderMap, origin: HeaderValue) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
}
