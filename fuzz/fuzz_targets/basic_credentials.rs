//! Client credentials (`provider::client_auth::credentials`): HTTP Basic (RFC 6749
//! §2.3.1, id and secret form-url-encoded inside base64) or the body.
//!
//! Input: the `Authorization` header value up to the first `\n`, the form body after it.
//! The same two parts are also used as a client id and secret, encoded as a client
//! would, and must come back unchanged.
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use tower_oauth_toolkit::fuzzing;

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };

    // As sent.
    let sent_header = fuzzing::is_header_value(header).then_some(header);
    match fuzzing::client_credentials(&[header], body) {
        Ok(Some((id, secret))) => {
            assert!(!id.is_empty(), "an empty client id was accepted");
            assert!(
                secret.as_deref() != Some(""),
                "an empty secret counts as none"
            );
        }
        Ok(None) => {}
        Err(e) => common::check_error(&e),
    }
    let basic = sent_header
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| h.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
    let body_secret =
        url::form_urlencoded::parse(body).any(|(k, v)| k == "client_secret" && !v.is_empty());
    if basic && body_secret {
        assert!(
            fuzzing::client_credentials(&[header], body).is_err(),
            "Basic and a body secret at once were accepted"
        );
    }

    // As a client would encode them.
    let id = String::from_utf8_lossy(header);
    let secret = String::from_utf8_lossy(body);
    let pair = format!("{}:{}", form_encode(&id), form_encode(&secret));
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    let got = fuzzing::client_credentials(&[value.as_bytes()], b"");
    if id.is_empty() {
        assert!(got.is_err(), "Basic with an empty client id was accepted");
    } else {
        let expected = (
            id.into_owned(),
            (!secret.is_empty()).then(|| secret.into_owned()),
        );
        assert_eq!(got.ok().flatten(), Some(expected));
    }
    // Two Authorization headers are refused, whatever they hold.
    assert!(fuzzing::client_credentials(&[value.as_bytes(), value.as_bytes()], b"").is_err());
});
