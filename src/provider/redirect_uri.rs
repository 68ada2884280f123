//! Redirect-URI matching (RFC 6749 §3.1.2, RFC 9700 §4.1.3): exact string equality,
//! the RFC 8252 §7.3 loopback rule (any port for `http://127.0.0.1` and `http://[::1]`,
//! and `http://localhost` with `ALLOW_LOCALHOST_LOOPBACK`), and `ALLOW_URI_WILDCARDS`
//! host wildcards (`*.example.com`); and choosing the redirect URI of a request, whose
//! failures are shown to the user, never redirected to.

use crate::model::Application;
use crate::settings::Settings;

fn scheme_allowed(settings: &Settings, uri: &str) -> bool {
    uri.split_once(':').is_some_and(|(scheme, _)| {
        settings
            .allowed_redirect_uri_schemes
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme))
    })
}

/// Splits `http://<loopback host>[:port]<rest>` into host and rest.
fn loopback_parts(uri: &str, allow_localhost: bool) -> Option<(&str, &str)> {
    let after = uri.strip_prefix("http://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (host, port) = match authority.strip_prefix("[::1]") {
        Some(port) => ("[::1]", port),
        None => match authority.find(':') {
            Some(i) => authority.split_at(i),
            None => (authority, ""),
        },
    };
    let host_ok = host == "127.0.0.1"
        || host == "[::1]"
        || (allow_localhost && host.eq_ignore_ascii_case("localhost"));
    if !host_ok {
        return None;
    }
    if !port.is_empty() {
        let digits = port.strip_prefix(':')?;
        let ok = (1..=5).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.parse::<u32>().is_ok_and(|p| p <= 65535);
        if !ok {
            return None;
        }
    }
    Some((host, rest))
}

/// Splits what follows `scheme://` into the authority and the rest.
fn split_authority(s: &str) -> (&str, &str) {
    s.split_at(s.find(['/', '?', '#']).unwrap_or(s.len()))
}

/// `registered` = `scheme://*.suffix<rest>`: `requested` = `scheme://<labels>.suffix<rest>`.
fn wildcard_matches(registered: &str, requested: &str) -> bool {
    let Some((scheme, reg_after)) = registered.split_once("://*.") else {
        return false;
    };
    let Some(req_after) = requested
        .strip_prefix(scheme)
        .and_then(|r| r.strip_prefix("://"))
    else {
        return false;
    };
    let (reg_auth, reg_rest) = split_authority(reg_after);
    let (req_auth, req_rest) = split_authority(req_after);
    if reg_rest != req_rest || reg_auth.is_empty() {
        return false;
    }
    let Some(labels) = req_auth
        .strip_suffix(reg_auth)
        .and_then(|l| l.strip_suffix('.'))
    else {
        return false;
    };
    !labels.is_empty()
        && !labels.starts_with('.')
        && !labels.contains("..")
        && labels
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Whether `requested` may be used for the registered URI `registered`: equal strings, the
/// RFC 8252 §7.3 loopback rule, or an `ALLOW_URI_WILDCARDS` host wildcard.
pub(crate) fn redirect_uri_matches(settings: &Settings, registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let localhost = settings.allow_localhost_loopback;
    if let (Some((rh, rr)), Some((qh, qr))) = (
        loopback_parts(registered, localhost),
        loopback_parts(requested, localhost),
    ) {
        return rh.eq_ignore_ascii_case(qh) && rr == qr;
    }
    settings.allow_uri_wildcards && wildcard_matches(registered, requested)
}

/// The redirect URI to use (stage 1: a failure is shown, never redirected to).
pub(crate) fn resolve_redirect_uri(
    settings: &Settings,
    app: &Application,
    requested: Option<&str>,
) -> Result<String, String> {
    let registered: Vec<&str> = app.redirect_uri_list().collect();
    let uri = match requested {
        None => match registered.as_slice() {
            [] => return Err("This application has no registered redirect URI.".into()),
            [only] if !only.contains('*') => (*only).to_owned(),
            [_] => return Err("The redirect_uri parameter is missing.".into()),
            _ => {
                return Err(
                    "The redirect_uri parameter is required: this application has several.".into(),
                )
            }
        },
        Some(r) => {
            crate::validators::validate_redirect_uri(
                r,
                &settings.allowed_redirect_uri_schemes,
                false,
            )
            .map_err(|e| format!("Invalid redirect_uri: {e}."))?;
            if !registered
                .iter()
                .any(|reg| redirect_uri_matches(settings, reg, r))
            {
                return Err(
                    "Mismatching redirect URI: it is not registered for this application.".into(),
                );
            }
            r.to_owned()
        }
    };
    if !scheme_allowed(settings, &uri) || uri.contains('#') {
        return Err(
            "The redirect URI's scheme is not allowed (ALLOWED_REDIRECT_URI_SCHEMES).".into(),
        );
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GrantType;
    use crate::provider::authorize::test_support::app;

    #[test]
    fn redirect_uri_rules() {
        let s = Settings::default();
        assert!(redirect_uri_matches(
            &s,
            "https://a.example/cb",
            "https://a.example/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "https://a.example/cb",
            "https://a.example/cb?x=1"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "https://a.example/cb",
            "https://a.example/cb/"
        ));
        assert!(redirect_uri_matches(
            &s,
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000/cb"
        ));
        assert!(redirect_uri_matches(
            &s,
            "http://127.0.0.1:80/cb",
            "http://127.0.0.1:5000/cb"
        ));
        assert!(redirect_uri_matches(
            &s,
            "http://[::1]:1/cb",
            "http://[::1]:65535/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "http://127.0.0.1/cb",
            "http://127.0.0.1:99999/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "http://127.0.0.1/cb",
            "http://127.0.0.2:5000/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000/other"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000@evil/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "https://127.0.0.1/cb",
            "https://127.0.0.1:5000/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "http://localhost/cb",
            "http://localhost:5000/cb"
        ));
        let mut s2 = Settings {
            allow_localhost_loopback: true,
            ..Settings::default()
        };
        assert!(redirect_uri_matches(
            &s2,
            "http://localhost/cb",
            "http://localhost:5000/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "https://*.example.com/cb",
            "https://a.example.com/cb"
        ));
        s2.allow_uri_wildcards = true;
        assert!(redirect_uri_matches(
            &s2,
            "https://*.example.com/cb",
            "https://a.b.example.com/cb"
        ));
        assert!(!redirect_uri_matches(
            &s2,
            "https://*.example.com/cb",
            "https://example.com/cb"
        ));
        assert!(!redirect_uri_matches(
            &s2,
            "https://*.example.com/cb",
            "https://evilexample.com/cb"
        ));
        assert!(!redirect_uri_matches(
            &s2,
            "https://*.example.com/cb",
            "https://a.example.com/cb2"
        ));
        assert!(!redirect_uri_matches(
            &s2,
            "https://*.example.com/cb",
            "http://a.example.com/cb"
        ));
    }

    #[test]
    fn redirect_uri_resolution() {
        let s = Settings::default();
        let one = app(GrantType::AuthorizationCode, "https://a.example/cb");
        assert_eq!(
            resolve_redirect_uri(&s, &one, None).unwrap(),
            "https://a.example/cb"
        );
        assert!(resolve_redirect_uri(&s, &one, Some("https://evil.example/cb")).is_err());
        assert!(resolve_redirect_uri(&s, &one, Some("https://a.example/cb#x")).is_err());
        let two = app(
            GrantType::AuthorizationCode,
            "https://a.example/cb https://b.example/cb",
        );
        assert!(resolve_redirect_uri(&s, &two, None).is_err());
        assert_eq!(
            resolve_redirect_uri(&s, &two, Some("https://b.example/cb")).unwrap(),
            "https://b.example/cb"
        );
        let none = app(GrantType::AuthorizationCode, "");
        assert!(resolve_redirect_uri(&s, &none, None).is_err());
        let only_https = Settings {
            allowed_redirect_uri_schemes: vec!["https".into()],
            ..Settings::default()
        };
        let loopback = app(GrantType::AuthorizationCode, "http://127.0.0.1/cb");
        assert!(
            resolve_redirect_uri(&only_https, &loopback, Some("http://127.0.0.1:1234/cb")).is_err()
        );
        assert!(resolve_redirect_uri(&only_https, &loopback, None).is_err());
    }
}
