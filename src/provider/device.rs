//! The device authorization grant (RFC 8628): the device asks at
//! `POST device-authorization/`, the user approves at `device/`, and the device polls the
//! token endpoint ([`super::grants::device_code`]).
//!
//! # `POST device-authorization/` (§3.1–3.2)
//!
//! A form body only. A public client names itself with `client_id`; a confidential client
//! authenticates as at the token endpoint (HTTP Basic or the body, with the same
//! throttling). The client must be registered for the device-code grant
//! (`unauthorized_client` otherwise) and `scope` is checked as everywhere else (the
//! client's default scopes when absent). The answer (`Cache-Control: no-store`):
//!
//! | member | value |
//! |---|---|
//! | `device_code` | 43 random characters (256 bits) |
//! | `user_code` | from the user-code generator: by default 8 characters of RFC 8628 §6.1's base-20 alphabet, `XXXX-XXXX` |
//! | `verification_uri` | `OAUTH_DEVICE_VERIFICATION_URI`, else this server's `device/` page |
//! | `verification_uri_complete` | `OAUTH_DEVICE_VERIFICATION_URI_COMPLETE` with `{user_code}` replaced, else `verification_uri?user_code=…` |
//! | `expires_in` | `DEVICE_CODE_EXPIRE_SECONDS` (1800) |
//! | `interval` | `DEVICE_FLOW_INTERVAL` (5) |
//!
//! Both codes are stored only as checksums: the device code as every token is, the user
//! code in its normalized form ([`normalize_user_code`]), so the page matches it whatever
//! the case and with or without the dash. A user code that collides with a stored one is
//! drawn again.
//!
//! # `GET/POST device/` (§3.3)
//!
//! Login required: a visitor who is not signed in goes to the login page and comes back
//! (with the `user_code` of the link). `GET` shows the form to type the code, prefilled
//! from `?user_code=`. Posting the code (`user_code`, with the CSRF token) shows the
//! confirmation page, naming the application and the scopes; its approve / deny buttons
//! post `user_code` again with `action=accept` or `action=deny` (DOT's values), and the
//! result page follows. An unknown, expired or already used code is an error on the form
//! page, never a redirect. Wrong codes are throttled per user and per client address
//! (`DEVICE_USER_CODE_FAILURE_LIMIT`): when locked, the page
//! answers 429 with `Retry-After` and checks no code. Approving or denying is one
//! conditional update of the pending grant, so two tabs cannot both decide.
//!
//! The templates are `device.html` (the form), `device_confirm.html` and
//! `device_done.html`, overridable like the others
//! ([`ProviderBuilder::template_dir`](super::ProviderBuilder::template_dir)).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use serde_json::{json, Value};

use super::error::{json_response, no_store, OAuthError};
use super::grants::{self, GrantKind};
use super::pages::{as_visitor, error_page, redirect, render};
use super::params::Params;
use super::session::{Visitor, CSRF_FIELD};
use super::token::check_form;
use super::users::{AuthenticatedUser, UserAuthenticator};
use super::{client_auth, Provider};
use crate::crypto::token_checksum;
use crate::generators::{generate_token, normalize_user_code, UNICODE_ASCII_CHARACTER_SET};
use crate::model::{DeviceGrant, DeviceGrantStatus, NewDeviceGrant, Timestamp};
use crate::scope::Scopes;
use crate::store::{Store, StoreError};

/// Length of a device code.
pub const DEVICE_CODE_LENGTH: usize = 43;

/// Longest user code looked up (a generated one is far shorter).
const MAX_USER_CODE_LEN: usize = 64;

/// What a form shows back of a typed or linked user code: nothing when it is too long to
/// be one.
fn shown(code: &str) -> &str {
    if code.len() <= MAX_USER_CODE_LEN {
        code
    } else {
        ""
    }
}

/// The form's error for a code that was decided already (or is gone since).
const ALREADY_USED: &str =
    "This code was already used. Start again on your device to get a new one.";

/// How often a colliding user code is drawn again before giving up.
const USER_CODE_ATTEMPTS: usize = 4;

/// `POST device-authorization/`.
pub(crate) async fn device_authorization<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: Parts,
    body: Bytes,
) -> Response {
    match authorize_device(&p, &parts, &body).await {
        Ok(answer) => {
            let mut res = json_response(StatusCode::OK, answer.to_string());
            no_store(&mut res);
            res
        }
        Err(e) => e.into_response(),
    }
}

async fn authorize_device<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    body: &[u8],
) -> Result<Value, OAuthError> {
    let inner = &p.inner;
    check_form(&parts.headers)?;
    let params = Params::parse(body);
    let app = client_auth::authenticate(inner, &parts.headers, &params).await?;
    if !grants::allows(&app, GrantKind::DeviceCode) {
        return Err(OAuthError::unauthorized_client(
            "This client may not use the device authorization grant.",
        ));
    }
    let scope = grants::requested_scopes(&*inner.scopes, &app, &params)?;
    let s = &*inner.settings;
    let now = Timestamp::now();
    let lifetime = s.device_code_expire_seconds;
    let interval = i64::try_from(s.device_flow_interval.as_secs()).unwrap_or(i64::MAX);
    let base = super::oidc::discovery::base_url(s, inner.issuer.as_ref(), parts);
    for _ in 0..USER_CODE_ATTEMPTS {
        let device_code =
            generate_token(DEVICE_CODE_LENGTH, UNICODE_ASCII_CHARACTER_SET.as_bytes());
        let user_code = inner.minter.user_code();
        let normalized = normalize_user_code(&user_code);
        if normalized.is_empty() || normalized.len() > MAX_USER_CODE_LEN {
            return Err(OAuthError::server(
                "the user-code generator made an empty or overlong code",
            ));
        }
        let row = NewDeviceGrant {
            device_code_checksum: token_checksum(&device_code),
            user_code_checksum: token_checksum(&normalized),
            scope: scope.to_string(),
            interval,
            expires: now.plus(lifetime),
            client_id: app.client_id.clone(),
            created: now,
        };
        match inner.store.create_device_grant(row).await {
            Ok(_) => {
                let (uri, complete) = verification_uris(s, &base, &user_code);
                return Ok(json!({
                    "device_code": device_code,
                    "user_code": user_code,
                    "verification_uri": uri,
                    "verification_uri_complete": complete,
                    "expires_in": lifetime.as_secs(),
                    "interval": interval,
                }));
            }
            // A user code (or, astronomically unlikely, a device code) already in use.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OAuthError::server(
        "no free user code after several draws: the user-code generator's codes are too few",
    ))
}

/// `verification_uri` and `verification_uri_complete` for `user_code`.
pub(crate) fn verification_uris(
    s: &crate::settings::Settings,
    base: &str,
    user_code: &str,
) -> (String, String) {
    let uri = s
        .oauth_device_verification_uri
        .clone()
        .unwrap_or_else(|| format!("{base}/device/"));
    let encoded: String = url::form_urlencoded::byte_serialize(user_code.as_bytes()).collect();
    let complete = match &s.oauth_device_verification_uri_complete {
        Some(template) => template.replace("{user_code}", &encoded),
        None => {
            let sep = if uri.contains('?') { '&' } else { '?' };
            format!("{uri}{sep}user_code={encoded}")
        }
    };
    (uri, complete)
}

/// `../login/?next=../device/?user_code=…`.
fn login_location(user_code: Option<&str>) -> String {
    let mut next = "../device/".to_owned();
    if let Some(code) = user_code.map(shown).filter(|c| !c.is_empty()) {
        next.push_str("?user_code=");
        next.extend(url::form_urlencoded::byte_serialize(code.as_bytes()));
    }
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("next", &next);
    format!("../login/?{}", q.finish())
}

/// `GET device/`: the form to type the user code.
pub(crate) async fn device_get<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: Parts,
) -> Response {
    let params = Params::parse(parts.uri.query().unwrap_or_default().as_bytes());
    let prefill = params.get("user_code").ok().flatten().unwrap_or_default();
    as_visitor(&p, &parts, async |visitor| {
        let user = visitor.user.clone();
        match (user, visitor.consent_csrf_token(&p.inner.keys)) {
            (Some(user), Some(csrf)) => {
                code_form(&p, StatusCode::OK, &csrf, &user, shown(prefill), None)
            }
            _ => redirect(StatusCode::FOUND, &login_location(Some(prefill))),
        }
    })
    .await
}

/// `POST device/`: a typed user code, or the approve / deny buttons.
pub(crate) async fn device_post<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    as_visitor(&p, &parts, async |visitor| {
        device_post_inner(&p, &parts, &params, visitor).await
    })
    .await
}

fn code_form<S, U>(
    p: &Provider<S, U>,
    status: StatusCode,
    csrf: &str,
    user: &AuthenticatedUser,
    user_code: &str,
    error: Option<&str>,
) -> Response {
    render(
        p,
        status,
        "device.html",
        json!({
            "action": "./",
            "csrf_token": csrf,
            "user": {"username": user.username},
            "user_code": user_code,
            "error": error,
        }),
    )
}

async fn device_post_inner<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    params: &Params,
    visitor: &mut Visitor,
) -> Response {
    let inner = &p.inner;
    let typed = params.get("user_code").ok().flatten().unwrap_or_default();
    let Some(user) = visitor.user.clone() else {
        // The session ended between the page and the click: log in and come back.
        return redirect(StatusCode::SEE_OTHER, &login_location(Some(typed)));
    };
    if !visitor.check_consent_csrf(&inner.keys, params.get(CSRF_FIELD).ok().flatten()) {
        tracing::info!("device form refused: missing or invalid CSRF token");
        return error_page(
            p,
            StatusCode::FORBIDDEN,
            None,
            "CSRF verification failed: reload the page and try again.",
        );
    }
    let Some(csrf) = visitor.consent_csrf_token(&inner.keys) else {
        return redirect(StatusCode::SEE_OTHER, &login_location(Some(typed)));
    };
    let shown = shown(typed);
    let form =
        |status: StatusCode, error: &str| code_form(p, status, &csrf, &user, shown, Some(error));
    let normalized = normalize_user_code(typed);
    if normalized.is_empty() {
        return form(
            StatusCode::BAD_REQUEST,
            "Enter the code shown on your device.",
        );
    }
    let addr = super::throttle::client_addr(&parts.extensions);
    if let Some(locked) = inner.throttle.user_code_locked(user.id, addr).await {
        tracing::info!("device code refused: too many wrong codes");
        let message = format!(
            "Too many wrong codes. Try again in {} seconds.",
            locked.seconds()
        );
        let mut res = form(StatusCode::TOO_MANY_REQUESTS, &message);
        res.headers_mut().insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(locked.seconds()),
        );
        return res;
    }
    let found = if normalized.len() > MAX_USER_CODE_LEN {
        Ok(None)
    } else {
        inner
            .store
            .find_device_grant_by_user_code(&token_checksum(&normalized))
            .await
    };
    let grant = match found {
        Ok(Some(g)) => g,
        Ok(None) => {
            inner.throttle.user_code_failed(user.id, addr).await;
            tracing::info!("device code refused: unknown user code");
            return form(
                StatusCode::BAD_REQUEST,
                "This code is not valid. Check the code shown on your device and try again.",
            );
        }
        Err(e) => return store_error(p, e),
    };
    let now = Timestamp::now();
    if now >= grant.expires || grant.status == DeviceGrantStatus::Expired {
        return form(
            StatusCode::BAD_REQUEST,
            "This code has expired. Start again on your device to get a new one.",
        );
    }
    if grant.status != DeviceGrantStatus::AuthorizationPending {
        return form(StatusCode::BAD_REQUEST, ALREADY_USED);
    }
    let app = match inner
        .applications
        .get(&*inner.store, &grant.client_id)
        .await
    {
        Ok(Some(app)) => app,
        Ok(None) => {
            return form(
                StatusCode::BAD_REQUEST,
                "The application that asked for this code no longer exists.",
            )
        }
        Err(e) => return error_page(p, e.status(), Some(e.code), &e.description),
    };
    let name = if app.name.trim().is_empty() {
        app.client_id.clone()
    } else {
        app.name.clone()
    };
    let to = match params.get("action").ok().flatten() {
        None => return confirm_page(p, &csrf, &user, &grant, &name, &app.client_id, shown),
        Some("accept") => DeviceGrantStatus::Authorized,
        Some("deny") => DeviceGrantStatus::Denied,
        Some(_) => {
            return error_page(
                p,
                StatusCode::BAD_REQUEST,
                None,
                "Unknown action: use the Approve or Deny button.",
            )
        }
    };
    match inner
        .store
        .update_device_grant_status(
            grant.id,
            DeviceGrantStatus::AuthorizationPending,
            to,
            Some(user.id),
        )
        .await
    {
        Ok(true) => {
            let approved = to == DeviceGrantStatus::Authorized;
            tracing::info!(
                device_grant_id = grant.id,
                approved,
                "device authorization decided"
            );
            render(
                p,
                StatusCode::OK,
                "device_done.html",
                json!({
                    "approved": approved,
                    "application": {"name": name, "client_id": app.client_id},
                    "user": {"username": user.username},
                }),
            )
        }
        // Decided in another tab, or expired and cleaned up, since the page was shown.
        Ok(false) => form(StatusCode::BAD_REQUEST, ALREADY_USED),
        Err(e) => store_error(p, e),
    }
}

fn confirm_page<S, U>(
    p: &Provider<S, U>,
    csrf: &str,
    user: &AuthenticatedUser,
    grant: &DeviceGrant,
    name: &str,
    client_id: &str,
    user_code: &str,
) -> Response {
    let scopes: Vec<Value> = Scopes::parse(&grant.scope)
        .unwrap_or_default()
        .iter()
        .map(|s| json!({"name": s, "description": p.inner.scopes.description(s).unwrap_or(s)}))
        .collect();
    render(
        p,
        StatusCode::OK,
        "device_confirm.html",
        json!({
            "action": "./",
            "csrf_token": csrf,
            "user": {"username": user.username},
            "application": {"name": name, "client_id": client_id},
            "scopes": scopes,
            "user_code": user_code,
        }),
    )
}

fn store_error<S, U>(p: &Provider<S, U>, e: StoreError) -> Response {
    // A busy database is 503, anything else 500.
    let e = OAuthError::from(e);
    error_page(p, e.status(), Some(e.code), &e.description)
}
