//! Reading and checking an authorization request: the response type, scopes, PKCE,
//! OpenID Connect's `nonce`, `claims`, `prompt` and `max_age`. No I/O: the application
//! has been read already, and every failure is a [`Rejection`].

use crate::provider::resources::{ResourcePolicy, Resources};
use http::StatusCode;
use serde_json::Value;

use super::CONTROL_FIELDS;
use crate::model::{Algorithm, Application, CodeChallengeMethod, GrantType, PkceChallenge};
use crate::provider::error::{ErrorCode, OAuthError};
use crate::provider::grants;
use crate::provider::params::Params;
use crate::provider::pkce;
use crate::scope::{Scopes, ScopesBackend};
use crate::settings::{ApprovalPrompt, Settings};

// ----- the request -----

/// The response types handled here (RFC 6749 §3.1.1; OAuth 2.0 Multiple Response Type
/// Encoding Practices; OIDC Core §3): a set of space-separated values, in any order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResponseType {
    /// Authorization code (§4.1).
    Code,
    /// Implicit (§4.2): the access token in the fragment.
    Token,
    /// OIDC implicit: an ID token alone (OIDC Core §3.2).
    IdToken,
    /// OIDC implicit: an ID token and an access token (OIDC Core §3.2).
    IdTokenToken,
    /// OIDC hybrid: a code and an ID token (OIDC Core §3.3).
    CodeIdToken,
    /// OIDC hybrid: a code and an access token (OIDC Core §3.3).
    CodeToken,
    /// OIDC hybrid: a code, an ID token and an access token (OIDC Core §3.3).
    CodeIdTokenToken,
}

impl ResponseType {
    /// The canonical spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ResponseType::Code => "code",
            ResponseType::Token => "token",
            ResponseType::IdToken => "id_token",
            ResponseType::IdTokenToken => "id_token token",
            ResponseType::CodeIdToken => "code id_token",
            ResponseType::CodeToken => "code token",
            ResponseType::CodeIdTokenToken => "code id_token token",
        }
    }

    /// Reads a `response_type` value as an unordered set of space-separated values
    /// (`"id_token code"` is `code id_token`). `None` for anything else: an unknown or
    /// repeated value, or no value at all.
    pub(crate) fn parse(raw: &str) -> Option<ResponseType> {
        let (mut code, mut token, mut id_token) = (false, false, false);
        for v in raw.split(' ').filter(|v| !v.is_empty()) {
            let seen = match v {
                "code" => &mut code,
                "token" => &mut token,
                "id_token" => &mut id_token,
                _ => return None,
            };
            if std::mem::replace(seen, true) {
                return None;
            }
        }
        Some(match (code, id_token, token) {
            (true, false, false) => ResponseType::Code,
            (false, false, true) => ResponseType::Token,
            (false, true, false) => ResponseType::IdToken,
            (false, true, true) => ResponseType::IdTokenToken,
            (true, true, false) => ResponseType::CodeIdToken,
            (true, false, true) => ResponseType::CodeToken,
            (true, true, true) => ResponseType::CodeIdTokenToken,
            (false, false, false) => return None,
        })
    }

    /// Whether the answer carries an authorization code.
    pub(crate) fn code(self) -> bool {
        matches!(
            self,
            ResponseType::Code
                | ResponseType::CodeIdToken
                | ResponseType::CodeToken
                | ResponseType::CodeIdTokenToken
        )
    }

    /// Whether the answer carries an access token.
    pub(crate) fn token(self) -> bool {
        matches!(
            self,
            ResponseType::Token
                | ResponseType::IdTokenToken
                | ResponseType::CodeToken
                | ResponseType::CodeIdTokenToken
        )
    }

    /// Whether the answer carries an ID token.
    pub(crate) fn id_token(self) -> bool {
        matches!(
            self,
            ResponseType::IdToken
                | ResponseType::IdTokenToken
                | ResponseType::CodeIdToken
                | ResponseType::CodeIdTokenToken
        )
    }

    /// Whether this response type exists only with OpenID Connect (`OIDC_ENABLED`).
    pub(crate) fn is_oidc(self) -> bool {
        !matches!(self, ResponseType::Code | ResponseType::Token)
    }

    /// Whether an application of grant type `grant` may use this response type (DOT's
    /// `validate_response_type`, except that openid-hybrid applications may also use
    /// `code`, as before OIDC was added here).
    pub(crate) fn allowed_for(self, grant: GrantType) -> bool {
        match self {
            ResponseType::Code => {
                matches!(
                    grant,
                    GrantType::AuthorizationCode | GrantType::OpenidHybrid
                )
            }
            ResponseType::Token | ResponseType::IdToken | ResponseType::IdTokenToken => {
                grant == GrantType::Implicit
            }
            ResponseType::CodeIdToken
            | ResponseType::CodeToken
            | ResponseType::CodeIdTokenToken => grant == GrantType::OpenidHybrid,
        }
    }

    /// Whether this is the implicit grant that `COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT`
    /// switches off (`token`, `id_token`, `id_token token`, as DOT gates them).
    pub(crate) fn is_implicit(self) -> bool {
        matches!(
            self,
            ResponseType::Token | ResponseType::IdToken | ResponseType::IdTokenToken
        )
    }

    /// Whether the answers go in the fragment: the default response mode of every type but
    /// `code` (OAuth 2.0 Multiple Response Type Encoding Practices §2.1, §5).
    pub(crate) fn fragment(self) -> bool {
        self != ResponseType::Code
    }
}

/// Where the answers of a request with a trusted redirect URI go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// The redirect URI (as sent, or the only registered one).
    pub(crate) redirect_uri: String,
    /// Parameters go in the fragment (`token`) rather than the query.
    pub(crate) fragment: bool,
    /// The client's `state`, echoed.
    pub(crate) state: Option<String>,
    /// RFC 9207 `iss`, when enabled.
    pub(crate) iss: Option<String>,
}

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Shown to the user on the error page, never redirected.
    Page {
        status: StatusCode,
        error: Option<ErrorCode>,
        description: String,
    },
    /// Sent to the client's redirect URI.
    Redirect { target: Target, error: OAuthError },
}

impl Rejection {
    pub(crate) fn page(error: ErrorCode, description: impl Into<String>) -> Rejection {
        Rejection::Page {
            status: StatusCode::BAD_REQUEST,
            error: Some(error),
            description: description.into(),
        }
    }

    pub(crate) fn server(cause: impl std::fmt::Display) -> Rejection {
        let e = OAuthError::server(cause);
        Rejection::Page {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: Some(e.code),
            description: e.description,
        }
    }
}

/// OIDC `prompt` values that change the flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Prompt {
    pub(crate) none: bool,
    pub(crate) login: bool,
    pub(crate) consent: bool,
}

impl Prompt {
    pub(crate) fn parse(raw: Option<&str>) -> Result<Prompt, OAuthError> {
        let mut p = Prompt::default();
        for v in raw.unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                // select_account, create, …: nothing to do (OIDC Core §3.1.2.1 allows
                // ignoring values the server does not support).
                _ => {}
            }
        }
        if p.none && (p.login || p.consent) {
            return Err(OAuthError::invalid_request(
                "prompt=none cannot be combined with other prompt values.",
            ));
        }
        Ok(p)
    }
}

/// A checked authorization request.
#[derive(Debug)]
pub(crate) struct AuthRequest {
    pub(crate) app: Application,
    pub(crate) response_type: ResponseType,
    pub(crate) target: Target,
    /// Whether the client sent `redirect_uri` (the code then remembers it, §4.1.3).
    pub(crate) redirect_uri_sent: bool,
    pub(crate) scopes: Scopes,
    /// RFC 8707 resources the tokens are for.
    pub(crate) resources: Resources,
    pub(crate) challenge: Option<PkceChallenge>,
    pub(crate) nonce: String,
    pub(crate) claims: String,
    pub(crate) prompt: Prompt,
    pub(crate) approval: ApprovalPrompt,
    /// OIDC `max_age` (OIDC Core §3.1.2.1): the oldest login, in seconds, that may be
    /// used without logging in again.
    pub(crate) max_age: Option<u64>,
}

/// The names sent more than once, the consent form's own fields excepted (linear: a
/// request with thousands of parameters costs no more than reading them).
pub(crate) fn repeated(params: &Params) -> Vec<&str> {
    let mut seen = std::collections::HashSet::with_capacity(params.pairs().len());
    let mut twice: Vec<&str> = Vec::new();
    for (k, _) in params.pairs() {
        // RFC 8707 §2: `resource` may be repeated.
        if CONTROL_FIELDS.contains(&k.as_str()) || k == "resource" {
            continue;
        }
        if !seen.insert(k.as_str()) && !twice.contains(&k.as_str()) {
            twice.push(k);
        }
    }
    twice
}

pub(crate) fn pkce_challenge(
    settings: &Settings,
    app: &Application,
    params: &Params,
) -> Result<Option<PkceChallenge>, OAuthError> {
    let challenge = params.get("code_challenge")?;
    let method = params.get("code_challenge_method")?;
    let Some(challenge) = challenge else {
        if method.is_some() {
            return Err(OAuthError::invalid_request(
                "code_challenge_method was sent without a code_challenge.",
            ));
        }
        if app.pkce_required.unwrap_or(settings.pkce_required) {
            return Err(OAuthError::invalid_request(
                "code_challenge required (PKCE, RFC 7636).",
            ));
        }
        return Ok(None);
    };
    let method = match method {
        None => CodeChallengeMethod::Plain,
        Some(m) => m.parse().map_err(|_| {
            OAuthError::invalid_request("Transform algorithm not supported: use S256 or plain.")
        })?,
    };
    if method == CodeChallengeMethod::Plain && settings.compliant_bcp_rfc9700_pkce_method {
        return Err(OAuthError::invalid_request(
            "The plain code_challenge_method is not allowed: use S256.",
        ));
    }
    let well_formed = pkce::is_valid_challenge(challenge)
        && (method != CodeChallengeMethod::S256 || challenge.len() == 43);
    if !well_formed {
        return Err(OAuthError::invalid_request(
            "Malformed code_challenge (RFC 7636 §4.2).",
        ));
    }
    Ok(Some(PkceChallenge {
        challenge: challenge.to_owned(),
        method,
    }))
}

/// Stage 2: everything after the redirect URI. Failures go back to `target`.
pub(crate) fn check_request(
    settings: &Settings,
    scopes: &dyn ScopesBackend,
    resource_policy: &dyn ResourcePolicy,
    app: Application,
    params: &Params,
    target: Target,
    redirect_uri_sent: bool,
) -> Result<AuthRequest, Rejection> {
    match check_rest(settings, scopes, resource_policy, &app, params) {
        Ok(c) => Ok(AuthRequest {
            app,
            response_type: c.response_type,
            target,
            redirect_uri_sent,
            scopes: c.scopes,
            resources: c.resources,
            challenge: c.challenge,
            nonce: c.nonce,
            claims: c.claims,
            prompt: c.prompt,
            approval: c.approval,
            max_age: c.max_age,
        }),
        Err(error) => Err(Rejection::Redirect { target, error }),
    }
}

/// What [`check_rest`] found valid.
struct Checked {
    response_type: ResponseType,
    scopes: Scopes,
    resources: Resources,
    challenge: Option<PkceChallenge>,
    nonce: String,
    claims: String,
    prompt: Prompt,
    approval: ApprovalPrompt,
    max_age: Option<u64>,
}

/// The response type of `params` when it is one this server handles: the OIDC ones only
/// with `OIDC_ENABLED` (without it they are unknown, as before OIDC was added).
pub(crate) fn known_response_type(settings: &Settings, raw: &str) -> Option<ResponseType> {
    ResponseType::parse(raw).filter(|rt| settings.oidc_enabled || !rt.is_oidc())
}

/// The response types the authorization endpoint accepts with `settings`, as the
/// metadata documents advertise them: each listed in its setting
/// (`OAUTH2_RESPONSE_TYPES_SUPPORTED`, or `OIDC_RESPONSE_TYPES_SUPPORTED` for the OIDC
/// ones, which also need `OIDC_ENABLED`), less the implicit ones while
/// `COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT` is on — the same rules as [`check_request`].
pub(crate) fn response_types_enabled(settings: &Settings) -> Vec<&'static str> {
    let mut out = Vec::new();
    let candidates = settings
        .oauth2_response_types_supported
        .iter()
        .chain(&settings.oidc_response_types_supported);
    for raw in candidates {
        let Some(rt) = known_response_type(settings, raw) else {
            continue;
        };
        let list = if rt.is_oidc() {
            &settings.oidc_response_types_supported
        } else {
            &settings.oauth2_response_types_supported
        };
        let gated = rt.is_implicit() && settings.compliant_bcp_rfc9700_implicit_grant;
        if listed(list, rt) && !gated && !out.contains(&rt.as_str()) {
            out.push(rt.as_str());
        }
    }
    out
}

/// Whether `list` (a `*_RESPONSE_TYPES_SUPPORTED` setting) holds `rt`, compared as sets.
fn listed(list: &[String], rt: ResponseType) -> bool {
    list.iter().any(|t| ResponseType::parse(t) == Some(rt))
}

/// OIDC `max_age`: a non-negative number of seconds.
pub(crate) fn parse_max_age(raw: Option<&str>) -> Result<Option<u64>, OAuthError> {
    let Some(raw) = raw else { return Ok(None) };
    // Digits only: `u64::from_str` would also take a leading `+`.
    let digits = raw.bytes().all(|b| b.is_ascii_digit());
    match raw.parse::<u64>() {
        Ok(v) if digits => Ok(Some(v)),
        _ => Err(OAuthError::invalid_request(
            "max_age must be a non-negative number of seconds.",
        )),
    }
}

fn check_rest(
    settings: &Settings,
    scopes: &dyn ScopesBackend,
    resource_policy: &dyn ResourcePolicy,
    app: &Application,
    params: &Params,
) -> Result<Checked, OAuthError> {
    if let Some(name) = repeated(params).first() {
        return Err(OAuthError::invalid_request(format!(
            "The {name} parameter was sent more than once."
        )));
    }
    // OIDC Core §3.1.2.6, §6: request objects are not supported (yet); saying so beats
    // answering the request without the parameters the object would have carried.
    if params.get("request")?.is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "The request parameter (a request object) is not supported.",
        ));
    }
    if params.get("request_uri")?.is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "The request_uri parameter is not supported.",
        ));
    }
    let unsupported = |d: String| OAuthError::new(ErrorCode::UnsupportedResponseType, d);
    let response_type = match params.get("response_type")? {
        None => {
            return Err(OAuthError::invalid_request(
                "The response_type parameter is missing.",
            ))
        }
        Some(raw) => known_response_type(settings, raw)
            .ok_or_else(|| unsupported(format!("The response type {raw:?} is not supported.")))?,
    };
    let name = response_type.as_str();
    let enabled = if response_type.is_oidc() {
        listed(&settings.oidc_response_types_supported, response_type)
    } else {
        listed(&settings.oauth2_response_types_supported, response_type)
    };
    if !enabled {
        return Err(unsupported(format!(
            "The response type {name:?} is not enabled on this server."
        )));
    }
    if response_type.is_implicit() && settings.compliant_bcp_rfc9700_implicit_grant {
        return Err(unsupported(
            "The implicit grant is disabled (RFC 9700 §2.1.2).".into(),
        ));
    }
    if !response_type.allowed_for(app.authorization_grant_type) {
        return Err(OAuthError::unauthorized_client(format!(
            "This client may not use the {name} response type."
        )));
    }
    let requested = grants::requested_scopes(scopes, app, params)?;
    let resources = Resources::requested(params, app, resource_policy)?;
    let nonce = params.get("nonce")?.unwrap_or_default().to_owned();
    if response_type.id_token() {
        // OIDC Core §3.1.2.1: without `openid` this is no OpenID Connect request, and
        // nothing else can ask for an ID token.
        if !requested.contains("openid") {
            return Err(OAuthError::invalid_scope(format!(
                "The response type {name:?} needs the openid scope."
            )));
        }
        if app.algorithm == Algorithm::NoAlgorithm {
            return Err(OAuthError::unauthorized_client(
                "This client has no ID token signing algorithm.",
            ));
        }
        // OIDC Core §3.2.2.1, §3.3.2.11: an ID token from the authorization endpoint
        // needs a nonce (replay protection).
        if nonce.is_empty() {
            return Err(OAuthError::invalid_request(format!(
                "The nonce parameter is required with the response type {name:?}."
            )));
        }
    }
    let challenge = if response_type.code() {
        pkce_challenge(settings, app, params)?
    } else {
        None
    };
    let claims = match params.get("claims")? {
        None => String::new(),
        Some(c) => {
            if serde_json::from_str::<serde_json::Map<String, Value>>(c).is_err() {
                return Err(OAuthError::invalid_request(
                    "The claims parameter must be a JSON object.",
                ));
            }
            c.to_owned()
        }
    };
    let prompt = Prompt::parse(params.get("prompt")?)?;
    let max_age = parse_max_age(params.get("max_age")?)?;
    let approval = match params.get("approval_prompt")? {
        Some("auto") => ApprovalPrompt::Auto,
        Some("force") => ApprovalPrompt::Force,
        _ => settings.request_approval_prompt,
    };
    Ok(Checked {
        response_type,
        scopes: requested,
        resources,
        challenge,
        nonce,
        claims,
        prompt,
        approval,
        max_age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::authorize::test_support::*;

    #[test]
    fn request_objects_are_refused_by_name() {
        let s = Settings::default();
        let a = || app(GrantType::AuthorizationCode, "https://c.example/cb");
        assert_eq!(
            code_of(check(
                &s,
                a(),
                "response_type=code&request=eyJhbGciOiJub25lIn0.e30."
            )),
            Some(ErrorCode::RequestNotSupported)
        );
        assert_eq!(
            code_of(check(
                &s,
                a(),
                "response_type=code&request_uri=https%3A%2F%2Fc.example%2Fr"
            )),
            Some(ErrorCode::RequestUriNotSupported)
        );
        let with_pkce =
            format!("response_type=code&code_challenge={S256}&code_challenge_method=S256");
        assert_eq!(code_of(check(&s, a(), &with_pkce)), None);
    }

    #[test]
    fn request_checks() {
        let s = Settings::default();
        let code_app = || app(GrantType::AuthorizationCode, "https://c.example/cb");
        let q = format!("response_type=code&code_challenge={S256}&code_challenge_method=S256");
        let ok = check(&s, code_app(), &q).unwrap();
        assert_eq!(ok.response_type, ResponseType::Code);
        assert_eq!(
            ok.challenge,
            Some(PkceChallenge {
                challenge: S256.to_owned(),
                method: CodeChallengeMethod::S256
            })
        );
        assert_eq!(
            code_of(check(&s, code_app(), "response_type=code")),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code_of(check(&s, code_app(), "")),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code_of(check(&s, code_app(), "response_type=id_token")),
            Some(ErrorCode::UnsupportedResponseType)
        );
        assert_eq!(
            code_of(check(&s, code_app(), "response_type=token")),
            Some(ErrorCode::UnauthorizedClient)
        );
        assert_eq!(
            code_of(check(&s, code_app(), &format!("{q}&scope=read+nope"))),
            Some(ErrorCode::InvalidScope)
        );
        assert_eq!(
            code_of(check(&s, code_app(), &format!("{q}&foo=1&foo=2"))),
            Some(ErrorCode::InvalidRequest)
        );
        // PKCE details.
        let bad = format!("response_type=code&code_challenge={S256}&code_challenge_method=S512");
        assert_eq!(
            code_of(check(&s, code_app(), &bad)),
            Some(ErrorCode::InvalidRequest)
        );
        let short = "response_type=code&code_challenge=abc&code_challenge_method=plain";
        assert_eq!(
            code_of(check(&s, code_app(), short)),
            Some(ErrorCode::InvalidRequest)
        );
        let plain = format!("response_type=code&code_challenge={S256}");
        assert_eq!(
            check(&s, code_app(), &plain)
                .unwrap()
                .challenge
                .unwrap()
                .method,
            CodeChallengeMethod::Plain
        );
        let strict = Settings {
            compliant_bcp_rfc9700_pkce_method: true,
            ..Settings::default()
        };
        assert_eq!(
            code_of(check(&strict, code_app(), &plain)),
            Some(ErrorCode::InvalidRequest)
        );
        let mut optional = code_app();
        optional.pkce_required = Some(false);
        assert!(check(&s, optional, "response_type=code")
            .unwrap()
            .challenge
            .is_none());
        // Implicit.
        let implicit = || app(GrantType::Implicit, "https://c.example/cb");
        assert!(check(&s, implicit(), "response_type=token").is_ok());
        let no_implicit = Settings {
            compliant_bcp_rfc9700_implicit_grant: true,
            ..Settings::default()
        };
        assert_eq!(
            code_of(check(&no_implicit, implicit(), "response_type=token")),
            Some(ErrorCode::UnsupportedResponseType)
        );
        let code_only = Settings {
            oauth2_response_types_supported: vec!["code".into()],
            ..Settings::default()
        };
        assert_eq!(
            code_of(check(&code_only, implicit(), "response_type=token")),
            Some(ErrorCode::UnsupportedResponseType)
        );
        assert_eq!(
            code_of(check(&s, implicit(), "response_type=code")),
            Some(ErrorCode::UnauthorizedClient)
        );
        // prompt and claims.
        assert_eq!(
            code_of(check(
                &s,
                implicit(),
                "response_type=token&prompt=none+login"
            )),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code_of(check(&s, implicit(), "response_type=token&claims=nope")),
            Some(ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn response_types_are_unordered_sets() {
        use ResponseType::*;
        for rt in [
            Code,
            Token,
            IdToken,
            IdTokenToken,
            CodeIdToken,
            CodeToken,
            CodeIdTokenToken,
        ] {
            assert_eq!(ResponseType::parse(rt.as_str()), Some(rt));
        }
        assert_eq!(ResponseType::parse("token id_token"), Some(IdTokenToken));
        assert_eq!(ResponseType::parse("id_token code"), Some(CodeIdToken));
        assert_eq!(
            ResponseType::parse("token id_token code"),
            Some(CodeIdTokenToken)
        );
        assert_eq!(ResponseType::parse("token code"), Some(CodeToken));
        for bad in [
            "",
            " ",
            "code code",
            "none",
            "code none",
            "Code",
            "id-token",
            "code,token",
        ] {
            assert_eq!(ResponseType::parse(bad), None, "{bad:?}");
        }
        assert!(CodeIdTokenToken.code() && CodeIdTokenToken.token() && CodeIdTokenToken.id_token());
        assert!(!IdToken.token() && !IdToken.code() && IdToken.id_token());
        assert!(!Code.fragment() && CodeIdToken.fragment() && Token.fragment());
    }

    #[test]
    fn oidc_request_checks() {
        let off = Settings::default();
        let on = Settings {
            oidc_enabled: true,
            scopes: [("openid", "OpenID"), ("read", "Reading")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..Settings::default()
        };
        let with_alg = |grant| {
            let mut a = app(grant, "https://c.example/cb");
            a.algorithm = crate::model::Algorithm::Rs256;
            a
        };
        let implicit = || with_alg(GrantType::Implicit);
        let hybrid = || with_alg(GrantType::OpenidHybrid);
        let pkce = format!("code_challenge={S256}&code_challenge_method=S256");
        let q = |rt: &str, extra: &str| format!("response_type={rt}&scope=openid+read{extra}");

        // Off: unknown response types, as before.
        for rt in ["id_token", "id_token+token", "code+id_token", "code+token"] {
            assert_eq!(
                code_of(check(&off, hybrid(), &q(rt, "&nonce=n"))),
                Some(ErrorCode::UnsupportedResponseType),
                "{rt}"
            );
        }
        // On: implicit types for implicit apps, hybrid types for hybrid apps, any order.
        let ok = check(&on, implicit(), &q("token+id_token", "&nonce=n")).unwrap();
        assert_eq!(ok.response_type, ResponseType::IdTokenToken);
        assert_eq!(ok.nonce, "n");
        assert!(ok.challenge.is_none());
        let ok = check(
            &on,
            hybrid(),
            &q("id_token+code", &format!("&nonce=n&{pkce}")),
        )
        .unwrap();
        assert_eq!(ok.response_type, ResponseType::CodeIdToken);
        assert!(
            ok.challenge.is_some(),
            "PKCE applies to every type with a code"
        );
        assert_eq!(
            code_of(check(&on, hybrid(), &q("code+id_token", "&nonce=n"))),
            Some(ErrorCode::InvalidRequest),
            "no code_challenge"
        );
        // `code token` returns no ID token: no nonce needed.
        assert!(check(&on, hybrid(), &q("code+token", &format!("&{pkce}"))).is_ok());
        // `code` stays open to hybrid apps.
        assert!(check(&on, hybrid(), &q("code", &format!("&{pkce}"))).is_ok());
        // Wrong grant type.
        for (a, rt) in [
            (hybrid(), "id_token"),
            (hybrid(), "id_token+token"),
            (hybrid(), "token"),
            (implicit(), "code+id_token"),
            (with_alg(GrantType::AuthorizationCode), "code+id_token"),
            (with_alg(GrantType::AuthorizationCode), "id_token"),
        ] {
            assert_eq!(
                code_of(check(&on, a, &q(rt, &format!("&nonce=n&{pkce}")))),
                Some(ErrorCode::UnauthorizedClient),
                "{rt}"
            );
        }
        // openid, algorithm, nonce.
        assert_eq!(
            code_of(check(
                &on,
                implicit(),
                "response_type=id_token&scope=read&nonce=n"
            )),
            Some(ErrorCode::InvalidScope)
        );
        let mut no_alg = implicit();
        no_alg.algorithm = crate::model::Algorithm::NoAlgorithm;
        assert_eq!(
            code_of(check(&on, no_alg, &q("id_token", "&nonce=n"))),
            Some(ErrorCode::UnauthorizedClient)
        );
        assert_eq!(
            code_of(check(&on, implicit(), &q("id_token", ""))),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code_of(check(
                &on,
                hybrid(),
                &q("code+id_token+token", &format!("&{pkce}"))
            )),
            Some(ErrorCode::InvalidRequest)
        );
        // OIDC_RESPONSE_TYPES_SUPPORTED, compared as sets.
        let narrow = Settings {
            oidc_response_types_supported: vec!["code".into(), "token id_token".into()],
            ..on.clone()
        };
        assert!(check(&narrow, implicit(), &q("id_token+token", "&nonce=n")).is_ok());
        assert_eq!(
            code_of(check(&narrow, implicit(), &q("id_token", "&nonce=n"))),
            Some(ErrorCode::UnsupportedResponseType)
        );
        // The RFC 9700 implicit gate covers id_token too (as DOT), not the hybrid flow.
        let gated = Settings {
            compliant_bcp_rfc9700_implicit_grant: true,
            ..on.clone()
        };
        assert_eq!(
            code_of(check(&gated, implicit(), &q("id_token", "&nonce=n"))),
            Some(ErrorCode::UnsupportedResponseType)
        );
        assert!(check(
            &gated,
            hybrid(),
            &q("code+id_token", &format!("&nonce=n&{pkce}"))
        )
        .is_ok());
        // max_age.
        assert_eq!(
            check(&on, implicit(), &q("id_token", "&nonce=n&max_age=30"))
                .unwrap()
                .max_age,
            Some(30)
        );
        assert_eq!(
            code_of(check(
                &on,
                implicit(),
                &q("id_token", "&nonce=n&max_age=-1")
            )),
            Some(ErrorCode::InvalidRequest)
        );
    }
}
