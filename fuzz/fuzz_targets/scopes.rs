//! Scope strings (`Scopes::parse`, RFC 6749 §3.3).
//!
//! Input: the `scope` parameter (bytes that are not UTF-8 cannot reach the parser:
//! form decoding makes them U+FFFD, so the input is read the same way).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_oauth_toolkit::scope::{validate_scope_token, Scopes};

fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let parsed = Scopes::parse(&input);
    let valid = input.chars().all(|c| c == ' ' || is_scope_char(c));
    assert_eq!(parsed.is_ok(), valid, "{input:?}: {parsed:?}");
    let Ok(scopes) = parsed else { return };

    // The tokens are the input's, first-seen order, no duplicates.
    let mut expected: Vec<&str> = Vec::new();
    for t in input.split(' ').filter(|t| !t.is_empty()) {
        if !expected.contains(&t) {
            expected.push(t);
        }
    }
    assert_eq!(scopes.iter().collect::<Vec<_>>(), expected);
    assert!(scopes.iter().all(|t| validate_scope_token(t).is_ok()));

    // The canonical form re-parses to the same set, in the same order, and is canonical.
    let shown = scopes.to_string();
    assert!(!shown.starts_with(' ') && !shown.ends_with(' ') && !shown.contains("  "));
    let again = Scopes::parse(&shown).expect("the canonical form parses");
    assert_eq!(again, scopes);
    assert_eq!(again.iter().collect::<Vec<_>>(), expected);
    assert_eq!(again.to_string(), shown);

    // Serialized as that string.
    let json = serde_json::to_string(&scopes).unwrap();
    assert_eq!(json, serde_json::to_string(&shown).unwrap());
    let back: Scopes = serde_json::from_str(&json).unwrap();
    assert_eq!(back, scopes);

    // Set laws.
    assert!(scopes.is_subset(&scopes));
    assert!(Scopes::new().is_subset(&scopes));
    assert_eq!(scopes.is_empty(), expected.is_empty());
    assert_eq!(scopes.len(), expected.len());
});
