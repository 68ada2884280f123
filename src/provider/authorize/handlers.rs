//! The axum handlers of `authorize/`: read the application, check the request
//! ([`request`](super::request)), decide ([`decide`](super::decide)), then redirect, show
//! the consent page, or issue ([`issue`](super::issue)).

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use http::StatusCode;
use serde_json::{json, Value};

use super::decide::{next_step, Step};
use super::issue::{already_approved, approve};
use super::locations::{error_location, login_location};
use super::request::{
    check_request, known_response_type, repeated, AuthRequest, Rejection, ResponseType, Target,
};
use super::CONTROL_FIELDS;
use crate::model::Timestamp;
use crate::provider::error::{ErrorCode, OAuthError};
use crate::provider::pages::{as_visitor, error_page, redirect, render};
use crate::provider::params::Params;
use crate::provider::redirect_uri::resolve_redirect_uri;
use crate::provider::session::{Visitor, CSRF_FIELD};
use crate::provider::users::{AuthenticatedUser, UserAuthenticator};
use crate::provider::Provider;
use crate::settings::Settings;
use crate::store::Store;

/// RFC 9207 `iss`: `OIDC_ISS_ENDPOINT` or the provider's issuer URL (the builder refuses
/// the setting without one: an `iss` taken from the request's Host header would be the
/// client's choice).
fn issuer(settings: &Settings, configured: Option<&url::Url>, _parts: &Parts) -> Option<String> {
    if !settings.compliant_bcp_rfc9700_authz_response_iss {
        return None;
    }
    crate::provider::configured_issuer(settings, configured)
}

/// Checks a whole authorization request.
async fn validate<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    params: &Params,
    iss: Option<String>,
) -> Result<AuthRequest, Rejection> {
    let inner = &p.inner;
    let twice = repeated(params);
    for name in ["client_id", "redirect_uri"] {
        if twice.contains(&name) {
            return Err(Rejection::page(
                ErrorCode::InvalidRequest,
                format!("The {name} parameter was sent more than once."),
            ));
        }
    }
    // Too many parameters is said as such, not as a missing client_id.
    let client_id = params
        .get("client_id")
        .map_err(|e| Rejection::page(e.code, e.description))?;
    let Some(client_id) = client_id else {
        return Err(Rejection::page(
            ErrorCode::InvalidRequest,
            "The client_id parameter is missing.",
        ));
    };
    if let Err(e) = inner.resolve_client(client_id).await {
        return Err(match e.code {
            ErrorCode::InvalidClient => Rejection::page(ErrorCode::InvalidRequest, e.description),
            _ => Rejection::Page {
                status: e.status(),
                error: Some(e.code),
                description: e.description,
            },
        });
    }
    let app = match inner.store.find_application_by_client_id(client_id).await {
        Ok(Some(app)) => app,
        Ok(None) => {
            return Err(Rejection::page(
                ErrorCode::InvalidRequest,
                "Invalid client_id parameter value.",
            ))
        }
        Err(e) => return Err(Rejection::server(e)),
    };
    let sent = params.get("redirect_uri").ok().flatten();
    let redirect_uri = resolve_redirect_uri(&inner.settings, &app, sent)
        .map_err(|d| Rejection::page(ErrorCode::InvalidRequest, d))?;
    let target = Target {
        redirect_uri,
        fragment: !twice.contains(&"response_type")
            && params
                .get("response_type")
                .ok()
                .flatten()
                .and_then(|raw| known_response_type(&inner.settings, raw))
                .is_some_and(ResponseType::fragment),
        state: if twice.contains(&"state") {
            None
        } else {
            params.get("state").ok().flatten().map(str::to_owned)
        },
        iss,
    };
    check_request(
        &inner.settings,
        &*inner.scopes,
        &*inner.resource_policy,
        app,
        params,
        target,
        sent.is_some(),
    )
}

fn reject<S, U>(p: &Provider<S, U>, rejection: Rejection, redirect_status: StatusCode) -> Response {
    match rejection {
        Rejection::Page {
            status,
            error,
            description,
        } => error_page(p, status, error, &description),
        Rejection::Redirect { target, error } => {
            tracing::debug!(error = %error.code, "authorization request refused");
            redirect(redirect_status, &error_location(&target, &error))
        }
    }
}

fn consent_page<S, U>(
    p: &Provider<S, U>,
    req: &AuthRequest,
    user: &AuthenticatedUser,
    params: &Params,
    csrf_token: &str,
) -> Response {
    let scopes: Vec<Value> = req
        .scopes
        .iter()
        .map(|s| json!({"name": s, "description": p.inner.scopes.description(s).unwrap_or(s)}))
        .collect();
    let fields: Vec<Value> = params
        .pairs()
        .iter()
        .filter(|(k, _)| !CONTROL_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let name = if req.app.name.trim().is_empty() {
        &req.app.client_id
    } else {
        &req.app.name
    };
    render(
        p,
        StatusCode::OK,
        "authorize.html",
        json!({
            "action": "./",
            "csrf_token": csrf_token,
            "application": {"name": name, "client_id": req.app.client_id},
            "user": {"username": user.username},
            "scopes": scopes,
            "resources": req.resources.iter().collect::<Vec<_>>(),
            "fields": fields,
        }),
    )
}

/// `GET authorize/`.
pub(crate) async fn authorize_get<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: Parts,
) -> Response {
    let params = Params::parse(parts.uri.query().unwrap_or_default().as_bytes());
    as_visitor(&p, &parts, async |visitor| {
        authorize_get_inner(&p, &parts, &params, visitor).await
    })
    .await
}

async fn authorize_get_inner<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    params: &Params,
    visitor: &mut Visitor,
) -> Response {
    let iss = issuer(&p.inner.settings, p.inner.issuer.as_ref(), parts);
    let req = match validate(p, params, iss).await {
        Ok(r) => r,
        Err(rej) => return reject(p, rej, StatusCode::FOUND),
    };
    let approved = match &visitor.user {
        Some(user) => match already_approved(p, &req, user).await {
            Ok(a) => a,
            Err(rej) => return reject(p, rej, StatusCode::FOUND),
        },
        None => false,
    };
    let step = next_step(&req, visitor.user.as_ref(), approved, Timestamp::now());
    match (step, visitor.user.clone()) {
        (Step::Login, _) => redirect(StatusCode::FOUND, &login_location(params)),
        (Step::Fail(code), user) => {
            let description = match (code, user) {
                (ErrorCode::LoginRequired, None) => "The user is not logged in.",
                (ErrorCode::LoginRequired, Some(_)) => "The user must log in again.",
                _ => "The user has not approved this client.",
            };
            redirect(
                StatusCode::FOUND,
                &error_location(&req.target, &OAuthError::new(code, description)),
            )
        }
        (Step::Approve, Some(user)) => {
            redirect(StatusCode::FOUND, &approve(p, parts, &req, &user).await)
        }
        (Step::Consent, Some(user)) => match visitor.consent_csrf_token(&p.inner.keys) {
            Some(token) => consent_page(p, &req, &user, params, &token),
            None => redirect(StatusCode::FOUND, &login_location(params)),
        },
        // next_step only approves or asks for consent when someone is logged in.
        (Step::Approve | Step::Consent, None) => {
            redirect(StatusCode::FOUND, &login_location(params))
        }
    }
}

/// `POST authorize/`: the consent form.
pub(crate) async fn authorize_post<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    as_visitor(&p, &parts, async |visitor| {
        authorize_post_inner(&p, &parts, &params, visitor).await
    })
    .await
}

async fn authorize_post_inner<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    params: &Params,
    visitor: &Visitor,
) -> Response {
    let Some(user) = &visitor.user else {
        // The session ended between the page and the click: log in and start again.
        return redirect(StatusCode::SEE_OTHER, &login_location(params));
    };
    let presented = params.get(CSRF_FIELD).ok().flatten();
    if !visitor.check_consent_csrf(&p.inner.keys, presented) {
        tracing::info!("consent form refused: missing or invalid CSRF token");
        return error_page(
            p,
            StatusCode::FORBIDDEN,
            None,
            "CSRF verification failed: reload the page and try again.",
        );
    }
    let iss = issuer(&p.inner.settings, p.inner.issuer.as_ref(), parts);
    let req = match validate(p, params, iss).await {
        Ok(r) => r,
        Err(rej) => return reject(p, rej, StatusCode::SEE_OTHER),
    };
    let allow =
        matches!(params.get("allow"), Ok(Some(_))) && matches!(params.get("deny"), Ok(None));
    if !allow {
        let denied = OAuthError::new(ErrorCode::AccessDenied, "The user denied the request.");
        return redirect(StatusCode::SEE_OTHER, &error_location(&req.target, &denied));
    }
    redirect(StatusCode::SEE_OTHER, &approve(p, parts, &req, user).await)
}
