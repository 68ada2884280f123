//! Checks shared by the targets.

/// Whether an `error_description` is in RFC 6749 §5.2's character set
/// (`%x20-21 / %x23-5B / %x5D-7E`).
pub fn is_description(d: &str) -> bool {
    d.bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

/// An OAuth error answer is a JSON object with a known code and a description in the
/// RFC's character set.
pub fn check_error(e: &tower_oauth_toolkit::provider::OAuthError) {
    let json: serde_json::Value = serde_json::from_str(&e.to_json()).expect("error JSON parses");
    let code = json["error"].as_str().expect("error is a string");
    assert_eq!(code, e.code.as_str());
    let d = json["error_description"]
        .as_str()
        .expect("error_description is a string");
    assert!(
        is_description(d),
        "error_description {d:?} breaks RFC 6749 §5.2"
    );
}
