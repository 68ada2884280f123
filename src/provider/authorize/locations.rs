//! The URLs answers go to: the client's redirect URI with the answer's parameters (in the
//! query or the fragment, `state` and `iss` added), and the way to the login page and
//! back.

use super::request::Target;
use super::CONTROL_FIELDS;
use crate::provider::error::{description_chars, OAuthError};
use crate::provider::params::Params;

/// The authorize URL (relative to the login page) that re-issues the request in
/// `params`, without the consent form's fields and without `prompt=login` and `max_age`
/// (which the login about to happen satisfies: keeping them would send the user back to
/// the login page forever with `max_age=0`, or when the login time is unknown).
pub(crate) fn authorize_again(params: &Params) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.pairs() {
        if CONTROL_FIELDS.contains(&k.as_str()) || k == "max_age" {
            continue;
        }
        if k == "prompt" {
            let kept: Vec<&str> = v
                .split(' ')
                .filter(|x| !x.is_empty() && *x != "login")
                .collect();
            if !kept.is_empty() {
                q.append_pair(k, &kept.join(" "));
            }
            continue;
        }
        q.append_pair(k, v);
    }
    format!("../authorize/?{}", q.finish())
}

/// `../login/?next=…`.
pub(crate) fn login_location(params: &Params) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("next", &authorize_again(params));
    format!("../login/?{}", q.finish())
}

/// The redirect URI with `params`, `state` and `iss` added (query or fragment).
pub(crate) fn location(target: &Target, params: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    if let Some(state) = &target.state {
        q.append_pair("state", state);
    }
    if let Some(iss) = &target.iss {
        q.append_pair("iss", iss);
    }
    let encoded = q.finish();
    let uri = &target.redirect_uri;
    if target.fragment {
        format!("{uri}#{encoded}")
    } else if !uri.contains('?') {
        format!("{uri}?{encoded}")
    } else if uri.ends_with('?') || uri.ends_with('&') {
        format!("{uri}{encoded}")
    } else {
        format!("{uri}&{encoded}")
    }
}

pub(crate) fn error_location(target: &Target, error: &OAuthError) -> String {
    let description = description_chars(&error.description);
    location(
        target,
        &[
            ("error", error.code.as_str()),
            ("error_description", &description),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::authorize::test_support::*;

    #[test]
    fn locations() {
        let t = target();
        assert_eq!(
            location(&t, &[("code", "a b")]),
            "https://c.example/cb?code=a+b&state=s+t"
        );
        let mut q = t.clone();
        q.redirect_uri = "https://c.example/cb?x=1".into();
        q.iss = Some("https://as.example".into());
        assert_eq!(
            location(&q, &[("code", "c")]),
            "https://c.example/cb?x=1&code=c&state=s+t&iss=https%3A%2F%2Fas.example"
        );
        let mut f = t;
        f.fragment = true;
        f.state = None;
        assert_eq!(
            location(&f, &[("access_token", "t")]),
            "https://c.example/cb#access_token=t"
        );
        let e = OAuthError::invalid_scope("The scope \"x\" is unknown\u{e9}.");
        assert!(
            error_location(&f, &e).contains("error_description=The+scope+%27x%27+is+unknown%3F.")
        );
    }

    #[test]
    fn authorize_again_drops_form_fields_and_prompt_login() {
        let p = Params::parse(
            b"client_id=a&csrfmiddlewaretoken=t&allow=1&prompt=login+consent&state=x",
        );
        assert_eq!(
            authorize_again(&p),
            "../authorize/?client_id=a&prompt=consent&state=x"
        );
        let p = Params::parse(b"client_id=a&prompt=login");
        assert_eq!(authorize_again(&p), "../authorize/?client_id=a");
        let p = Params::parse(b"client_id=a&max_age=0&nonce=n");
        assert_eq!(authorize_again(&p), "../authorize/?client_id=a&nonce=n");
        assert!(login_location(&p).starts_with("../login/?next=..%2Fauthorize%2F%3Fclient_id%3Da"));
    }
}
