//! RFC 7591 client metadata of a registration request (`POST register/`, `PUT
//! register/<client_id>/`): read, checked with `createapplication`'s rules, and mapped
//! onto DOT's one-grant-type application model. See [`registration`](super::registration).

use serde_json::{json, Map, Value};

use super::registration::{metadata_error, Refusal};
use super::Provider;
use crate::application::{self, ApplicationSpec};
use crate::model::{Algorithm, ClientType, GrantType};
use crate::scope::Scopes;

/// The client metadata of a request, checked and normalized.
pub(super) struct Metadata {
    pub(super) spec: ApplicationSpec,
    /// What the read operation gives back (RFC 7591 §3.2.1), without credentials.
    pub(super) echo: Map<String, Value>,
}

fn strings(v: &Value, name: &str) -> Result<Vec<String>, Refusal> {
    let items = v
        .as_array()
        .ok_or_else(|| metadata_error(format!("{name} must be an array of strings.")))?;
    items
        .iter()
        .map(|i| {
            i.as_str()
                .map(str::to_owned)
                .ok_or_else(|| metadata_error(format!("{name} must be an array of strings.")))
        })
        .collect()
}

fn text(v: &Value, name: &str) -> Result<String, Refusal> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| metadata_error(format!("{name} must be a string.")))
}

const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// DOT's one grant type per client from RFC 7591 `grant_types` and `response_types`.
fn grant_type(grants: &[String], responses: &[String]) -> Result<GrantType, Refusal> {
    let mut primary: Vec<&str> = Vec::new();
    for g in grants {
        match g.as_str() {
            "refresh_token" => {}
            "authorization_code" | "implicit" | "password" | "client_credentials" | DEVICE_CODE => {
                if !primary.contains(&g.as_str()) {
                    primary.push(g);
                }
            }
            other => {
                return Err(metadata_error(format!(
                    "The grant type {other:?} is not supported."
                )))
            }
        }
    }
    let hybrid = responses
        .iter()
        .any(|r| r.split(' ').any(|p| p == "code") && r.contains(' '));
    let grant =
        match primary.as_slice() {
            [] if grants.is_empty() => GrantType::AuthorizationCode,
            [] => {
                return Err(metadata_error(
                    "refresh_token alone is not a grant a client can start with.",
                ))
            }
            ["authorization_code"] if hybrid => GrantType::OpenidHybrid,
            ["authorization_code"] => GrantType::AuthorizationCode,
            ["authorization_code", "implicit"] | ["implicit", "authorization_code"] if hybrid => {
                GrantType::OpenidHybrid
            }
            ["implicit"] => GrantType::Implicit,
            ["password"] => GrantType::Password,
            ["client_credentials"] => GrantType::ClientCredentials,
            [DEVICE_CODE] => GrantType::DeviceCode,
            _ => return Err(metadata_error(
                "One grant type per client (besides refresh_token): register one client per grant.",
            )),
        };
    let allowed: &[&str] = match grant {
        GrantType::AuthorizationCode => &["code"],
        GrantType::Implicit => &["token", "id_token", "id_token token"],
        GrantType::OpenidHybrid => &["code", "code id_token", "code token", "code id_token token"],
        _ => &[],
    };
    if let Some(bad) = responses.iter().find(|r| !allowed.contains(&r.as_str())) {
        return Err(metadata_error(format!(
            "The response type {bad:?} does not go with the grant type {grant}."
        )));
    }
    Ok(grant)
}

/// The grant types a client of `grant` may use here (its own and refresh tokens).
fn grant_types_of(grant: GrantType) -> Vec<&'static str> {
    match grant {
        GrantType::AuthorizationCode => vec!["authorization_code", "refresh_token"],
        GrantType::OpenidHybrid => vec!["authorization_code", "implicit", "refresh_token"],
        GrantType::Implicit => vec!["implicit"],
        GrantType::Password => vec!["password", "refresh_token"],
        GrantType::ClientCredentials => vec!["client_credentials", "refresh_token"],
        GrantType::DeviceCode => vec![DEVICE_CODE, "refresh_token"],
    }
}

/// Reads and checks the client metadata of a request body.
pub(super) fn parse_metadata<S, U>(p: &Provider<S, U>, body: &[u8]) -> Result<Metadata, Refusal> {
    let settings = &*p.inner.settings;
    let object: Map<String, Value> = serde_json::from_slice(body).map_err(|_| {
        metadata_error("The request body must be a JSON object of client metadata.")
    })?;
    let get = |k: &str| object.get(k).filter(|v| !v.is_null());
    let redirect_uris = match get("redirect_uris") {
        Some(v) => strings(v, "redirect_uris")?,
        None => Vec::new(),
    };
    if let Some(bad) = redirect_uris
        .iter()
        .find(|u| u.contains(char::is_whitespace))
    {
        return Err(Refusal::Metadata(
            "invalid_redirect_uri",
            format!("The redirect URI {bad:?} contains whitespace."),
        ));
    }
    let auth_method = match get("token_endpoint_auth_method") {
        Some(v) => text(v, "token_endpoint_auth_method")?,
        None => "client_secret_basic".to_owned(),
    };
    let client_type = match auth_method.as_str() {
        "none" => ClientType::Public,
        "client_secret_basic" | "client_secret_post" => ClientType::Confidential,
        other => {
            return Err(metadata_error(format!(
                "The token_endpoint_auth_method {other:?} is not supported (client_secret_basic, client_secret_post or none)."
            )))
        }
    };
    let grants = match get("grant_types") {
        Some(v) => strings(v, "grant_types")?,
        None => Vec::new(),
    };
    let mut responses = match get("response_types") {
        Some(v) => strings(v, "response_types")?,
        None => Vec::new(),
    };
    let grant = grant_type(&grants, &responses)?;
    let allowed = &settings.dcr_allowed_grant_types;
    if let Some(bad) = grant_types_of(grant)
        .into_iter()
        .find(|g| *g != "refresh_token" && !allowed.iter().any(|a| a == g))
    {
        return Err(metadata_error(format!(
            "The grant type {bad:?} is not open to dynamically registered clients here (DCR_ALLOWED_GRANT_TYPES)."
        )));
    }
    if responses.is_empty() && grant.requires_redirect_uri() {
        // RFC 7591 §2: the default is `code`.
        responses = match grant {
            GrantType::Implicit => vec!["token".into()],
            _ => vec!["code".into()],
        };
    }
    let algorithm = match get("id_token_signed_response_alg") {
        None if settings.oidc_rsa_private_key.is_empty() => Algorithm::NoAlgorithm,
        None => Algorithm::Rs256,
        Some(v) => match text(v, "id_token_signed_response_alg")?.as_str() {
            "RS256" => Algorithm::Rs256,
            "HS256" => return Err(metadata_error(
                "HS256 signs with the client secret, which this server stores hashed: use RS256.",
            )),
            other => {
                return Err(metadata_error(format!(
                    "The id_token_signed_response_alg {other:?} is not supported (RS256)."
                )))
            }
        },
    };
    let scope = match get("scope") {
        Some(v) => {
            let raw = text(v, "scope")?;
            let scopes = Scopes::parse(&raw)
                .map_err(|e| metadata_error(format!("Malformed scope: {e}.")))?;
            let known = p.inner.scopes.available_scopes(None);
            if let Some(bad) = scopes.iter().find(|s| !known.contains(s)) {
                return Err(metadata_error(format!("The scope {bad:?} is unknown.")));
            }
            Some(scopes.to_string())
        }
        None => None,
    };
    let post_logout = match get("post_logout_redirect_uris") {
        Some(v) => strings(v, "post_logout_redirect_uris")?,
        None => Vec::new(),
    };
    let name = match get("client_name") {
        Some(v) => text(v, "client_name")?,
        None => String::new(),
    };
    if name.chars().count() > 255 {
        return Err(metadata_error(
            "client_name must be at most 255 characters.",
        ));
    }
    let mut spec = ApplicationSpec::new(client_type, grant);
    spec.redirect_uris = redirect_uris.join(" ");
    spec.post_logout_redirect_uris = post_logout.join(" ");
    spec.name = name.clone();
    spec.algorithm = algorithm;

    let mut echo = Map::new();
    echo.insert("redirect_uris".into(), json!(redirect_uris));
    echo.insert("token_endpoint_auth_method".into(), auth_method.into());
    echo.insert("grant_types".into(), json!(grant_types_of(grant)));
    echo.insert("response_types".into(), json!(responses));
    if !name.is_empty() {
        echo.insert("client_name".into(), name.into());
    }
    if let Some(scope) = scope {
        echo.insert("scope".into(), scope.into());
    }
    if !post_logout.is_empty() {
        echo.insert("post_logout_redirect_uris".into(), json!(post_logout));
    }
    if algorithm == Algorithm::Rs256 {
        echo.insert("id_token_signed_response_alg".into(), "RS256".into());
    }
    for key in [
        "client_uri",
        "logo_uri",
        "tos_uri",
        "policy_uri",
        "software_id",
        "software_version",
    ] {
        if let Some(v) = get(key) {
            let v = text(v, key)?;
            if v.len() > 2048 {
                return Err(metadata_error(format!("{key} is too long.")));
            }
            echo.insert(key.into(), v.into());
        }
    }
    if let Some(v) = get("contacts") {
        let contacts = strings(v, "contacts")?;
        if contacts.len() > 20 {
            return Err(metadata_error("At most 20 contacts."));
        }
        echo.insert("contacts".into(), json!(contacts));
    }
    Ok(Metadata { spec, echo })
}

/// The refusal of a spec that `createapplication`'s rules reject.
pub(super) fn invalid(errors: Vec<application::FieldError>) -> Refusal {
    let redirect = errors
        .iter()
        .find(|e| matches!(e.field, "redirect_uris" | "post_logout_redirect_uris"));
    match redirect {
        Some(e) => Refusal::Metadata(
            "invalid_redirect_uri",
            format!("{}: {}.", e.field, e.message),
        ),
        None => metadata_error(
            errors
                .iter()
                .map(|e| format!("{}: {}.", e.field, e.message))
                .collect::<Vec<_>>()
                .join(" "),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn grant_types_map_to_dots_one_per_client() {
        assert_eq!(grant_type(&[], &[]).unwrap(), GrantType::AuthorizationCode);
        assert_eq!(
            grant_type(&v(&["authorization_code", "refresh_token"]), &v(&["code"])).unwrap(),
            GrantType::AuthorizationCode
        );
        assert_eq!(
            grant_type(&v(&["client_credentials"]), &[]).unwrap(),
            GrantType::ClientCredentials
        );
        assert_eq!(
            grant_type(&v(&[DEVICE_CODE, "refresh_token"]), &[]).unwrap(),
            GrantType::DeviceCode
        );
        assert_eq!(
            grant_type(
                &v(&["authorization_code", "implicit"]),
                &v(&["code id_token"])
            )
            .unwrap(),
            GrantType::OpenidHybrid
        );
        for (grants, responses) in [
            (v(&["authorization_code", "password"]), v(&[])),
            (v(&["refresh_token"]), v(&[])),
            (v(&["jwt-bearer"]), v(&[])),
            (v(&["client_credentials"]), v(&["code"])),
            (v(&["authorization_code"]), v(&["token"])),
        ] {
            assert!(
                grant_type(&grants, &responses).is_err(),
                "{grants:?} {responses:?}"
            );
        }
    }
}
