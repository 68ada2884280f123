//! Validation of redirect URIs and CORS origins at registration time (DOT's
//! `validators.py`: `AllowedURIValidator`, `REDIRECT_URI_VALIDATOR`,
//! `ALLOWED_ORIGIN_VALIDATOR`).
//!
//! A redirect URI must be absolute, use a scheme from `ALLOWED_REDIRECT_URI_SCHEMES`,
//! carry no fragment (RFC 6749 §3.1.2) and no user information, and name a host when its
//! scheme is a network scheme. Private-use schemes for native apps (`com.example.app:/cb`,
//! RFC 8252 §7.1) are accepted when allowed. A query is allowed. A leading `*.` host
//! wildcard is accepted only with `ALLOW_URI_WILDCARDS`.
//!
//! An origin (for CORS, `allowed_origins`) must be `scheme://host[:port]` with a scheme
//! from `ALLOWED_SCHEMES` and nothing else.
//!
//! ```
//! use tower_oauth_toolkit::validators::{validate_origin, validate_redirect_uri};
//! let schemes = vec!["http".to_string(), "https".to_string()];
//! assert!(validate_redirect_uri("https://app.example.com/cb?x=1", &schemes, false).is_ok());
//! assert!(validate_redirect_uri("https://app.example.com/cb#frag", &schemes, false).is_err());
//! assert!(validate_origin("https://app.example.com", &["https".to_string()], false).is_ok());
//! ```

use url::Url;

const NETWORK_SCHEMES: &[&str] = &["http", "https", "ws", "wss", "ftp"];

fn scheme_allowed(scheme: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| a.eq_ignore_ascii_case(scheme))
}

fn check_host(url: &Url, raw: &str, allow_wildcards: bool) -> Result<(), String> {
    let host = url.host_str().unwrap_or_default();
    // Judge the raw text, not the parsed URL: the WHATWG parser behind `url` repairs
    // `https:///cb` and `https:host/cb` into URLs with a host, treats `\` as `/`, and
    // percent-encodes `*`. Other parsers (a client's, a proxy's) may read such strings
    // differently, which is how open redirects are made.
    let after_scheme = raw.get(url.scheme().len()..).unwrap_or_default();
    let authority = after_scheme
        .strip_prefix("://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
    if NETWORK_SCHEMES.contains(&url.scheme()) {
        let Some(authority) = authority.filter(|a| !a.is_empty()) else {
            return Err(format!("{raw:?} has no host"));
        };
        if host.is_empty()
            || authority
                .chars()
                .any(|c| c == '\\' || c == '@' || !c.is_ascii() || c.is_ascii_control() || c == ' ')
        {
            return Err(format!(
                "{raw:?}: the host part must be plain ASCII, without user information or backslashes"
            ));
        }
    }
    let authority = authority.unwrap_or_default();
    if authority.contains('*') || host.contains('*') || host.contains("%2A") {
        let wildcard_ok = allow_wildcards
            && authority.starts_with("*.")
            && !authority[2..].contains('*')
            && authority[2..].contains('.');
        if !wildcard_ok {
            return Err(if allow_wildcards {
                format!("{raw:?}: a wildcard is only allowed as the leading label (*.example.com)")
            } else {
                format!("{raw:?}: wildcards are not allowed (ALLOW_URI_WILDCARDS is off)")
            });
        }
    }
    Ok(())
}

/// Checks one redirect URI; the error says what is wrong with it.
pub fn validate_redirect_uri(
    uri: &str,
    allowed_schemes: &[String],
    allow_wildcards: bool,
) -> Result<(), String> {
    if uri.contains('#') {
        return Err(format!("{uri:?}: redirect URIs must not contain fragments"));
    }
    // Wildcard hosts do not parse; check them on a stand-in host.
    let parse_target = uri.replacen("://*.", "://wildcard.", 1);
    let url =
        Url::parse(&parse_target).map_err(|e| format!("{uri:?} is not an absolute URI ({e})"))?;
    if !scheme_allowed(url.scheme(), allowed_schemes) {
        return Err(format!(
            "{uri:?}: scheme {:?} is not in ALLOWED_REDIRECT_URI_SCHEMES ({})",
            url.scheme(),
            allowed_schemes.join(", ")
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{uri:?}: redirect URIs must not contain user information"
        ));
    }
    check_host(&url, uri, allow_wildcards)
}

/// Checks one CORS origin (`scheme://host[:port]`).
pub fn validate_origin(
    origin: &str,
    allowed_schemes: &[String],
    allow_wildcards: bool,
) -> Result<(), String> {
    let parse_target = origin.replacen("://*.", "://wildcard.", 1);
    let url =
        Url::parse(&parse_target).map_err(|e| format!("{origin:?} is not a valid origin ({e})"))?;
    if !scheme_allowed(url.scheme(), allowed_schemes) {
        return Err(format!(
            "{origin:?}: scheme {:?} is not in ALLOWED_SCHEMES ({})",
            url.scheme(),
            allowed_schemes.join(", ")
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{origin:?}: an origin needs a host"));
    }
    let bare = (url.path().is_empty() || url.path() == "/")
        && !origin.trim_end_matches('/').contains(['?', '#']);
    if !bare
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "{origin:?}: an origin is scheme://host[:port] with no path, query or fragment"
        ));
    }
    check_host(&url, origin, allow_wildcards)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn redirect_uris() {
        let web = s(&["http", "https"]);
        assert!(validate_redirect_uri("https://example.com/cb", &web, false).is_ok());
        assert!(validate_redirect_uri("http://127.0.0.1/cb", &web, false).is_ok());
        assert!(validate_redirect_uri("https://example.com/cb?a=b", &web, false).is_ok());
        assert!(
            validate_redirect_uri("https://example.com/cb#", &web, false)
                .unwrap_err()
                .contains("fragments")
        );
        assert!(validate_redirect_uri("/relative/cb", &web, false)
            .unwrap_err()
            .contains("absolute"));
        assert!(validate_redirect_uri("ftp://example.com/cb", &web, false)
            .unwrap_err()
            .contains("ALLOWED_REDIRECT_URI_SCHEMES"));
        assert!(
            validate_redirect_uri("https://user:pw@example.com/cb", &web, false)
                .unwrap_err()
                .contains("user information")
        );
        assert!(validate_redirect_uri("https:///cb", &web, false)
            .unwrap_err()
            .contains("no host"));
        assert!(validate_redirect_uri("https:/example.com/cb", &web, false)
            .unwrap_err()
            .contains("no host"));
        let native = s(&["https", "com.example.app"]);
        assert!(validate_redirect_uri("com.example.app:/oauth2redirect", &native, false).is_ok());
        assert!(validate_redirect_uri("com.example.app:/oauth2redirect", &web, false).is_err());
    }

    #[test]
    fn wildcards_need_the_setting() {
        let web = s(&["https"]);
        assert!(
            validate_redirect_uri("https://*.example.com/cb", &web, false)
                .unwrap_err()
                .contains("ALLOW_URI_WILDCARDS")
        );
        assert!(validate_redirect_uri("https://*.example.com/cb", &web, true).is_ok());
        assert!(validate_redirect_uri("https://a.*.example.com/cb", &web, true).is_err());
        assert!(validate_origin("https://*.example.com", &web, true).is_ok());
        assert!(validate_origin("https://*.example.com", &web, false).is_err());
    }

    #[test]
    fn origins() {
        let https = s(&["https"]);
        assert!(validate_origin("https://example.com", &https, false).is_ok());
        assert!(validate_origin("https://example.com:8443", &https, false).is_ok());
        assert!(validate_origin("http://example.com", &https, false)
            .unwrap_err()
            .contains("ALLOWED_SCHEMES"));
        assert!(validate_origin("https://example.com/path", &https, false).is_err());
        assert!(validate_origin("https://example.com?q=1", &https, false).is_err());
        assert!(validate_origin("example.com", &https, false).is_err());
    }
}
