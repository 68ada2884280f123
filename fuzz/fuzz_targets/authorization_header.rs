//! The `Authorization` header (`resource::authorization`, `header_token`) and the
//! `access_token` form field (`form_token`).
//!
//! Input: `\n`-separated header values (a newline cannot be in one), the whole input
//! also read as a form body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_oauth_toolkit::fuzzing;

/// RFC 6750 §2.1 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let values: Vec<&[u8]> = data.split(|&b| b == b'\n').take(4).collect();
    let sent: Vec<&[u8]> = values
        .iter()
        .copied()
        .filter(|v| fuzzing::is_header_value(v))
        .collect();

    let auth = fuzzing::authorization(&values);
    match sent.as_slice() {
        [] => assert_eq!(auth, Ok(None)),
        [one] => {
            let visible = one.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
            match &auth {
                // Never anything but the header itself, and only visible ASCII.
                Ok(Some(v)) => {
                    assert!(visible, "accepted a non-ASCII header {one:?}");
                    assert_eq!(v.as_bytes(), *one);
                }
                Ok(None) => panic!("one header read as none"),
                Err(_) => assert!(!visible, "refused a visible-ASCII header {one:?}"),
            }
        }
        _ => assert!(auth.is_err(), "two Authorization headers accepted"),
    }

    let bearer = fuzzing::bearer_token(&values);
    if auth.is_err() {
        assert!(
            bearer.is_err(),
            "the bearer parser took a header the rule refuses"
        );
    }
    if let Ok(Some(token)) = &bearer {
        assert!(is_b64token(token), "not a b64token: {token:?}");
        let Ok(Some(header)) = &auth else {
            panic!("a token without the header")
        };
        let (scheme, rest) = header.split_once(' ').expect("scheme and token");
        assert!(scheme.eq_ignore_ascii_case("bearer"));
        assert_eq!(rest, token, "the token is the rest of the header, exactly");
    }
    if let Ok(Some(header)) = &auth {
        match header.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => {
                // Complete as well as sound: a well-formed header gives its token.
                if is_b64token(rest) {
                    assert_eq!(bearer.as_ref().ok(), Some(&Some(rest.to_owned())));
                } else {
                    assert!(bearer.is_err());
                }
            }
            _ if header.eq_ignore_ascii_case("bearer") => assert!(bearer.is_err()),
            // Another scheme carries no bearer token.
            _ => assert_eq!(bearer, Ok(None)),
        }
    }

    let form = fuzzing::form_token(data);
    let fields = url::form_urlencoded::parse(data)
        .filter(|(k, _)| k == "access_token")
        .count();
    match &form {
        Ok(Some(token)) => {
            assert_eq!(fields, 1);
            assert!(is_b64token(token), "not a b64token: {token:?}");
        }
        Ok(None) => assert_eq!(fields, 0),
        Err(_) => assert!(fields > 0),
    }
    if fields > 1 {
        assert!(form.is_err(), "two access_token fields accepted");
    }
});
