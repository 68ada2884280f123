//! Form bodies at the token endpoint (`provider::params::Params` as the endpoint reads
//! it, the grant type, the requested scopes, and the error answers they give).
//!
//! Input: the body.
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tower_oauth_toolkit::fuzzing::{self, MAX_TOKEN_PARAMS};
use tower_oauth_toolkit::scope::Scopes;
use tower_oauth_toolkit::settings::Settings;

/// The scopes of DOT's default `SCOPES`, which the wrapper checks requests against.
static AVAILABLE: LazyLock<Scopes> =
    LazyLock::new(|| Settings::default().scopes_backend().available_scopes(None));

fuzz_target!(|data: &[u8]| {
    let form = fuzzing::token_form(data);
    assert!(form.pairs.len() <= MAX_TOKEN_PARAMS);
    assert!(
        form.pairs.iter().all(|(_, v)| !v.is_empty()),
        "an empty value was kept"
    );
    let full = form.pairs.len() == MAX_TOKEN_PARAMS;

    for (name, got) in &form.fields {
        let sent: Vec<&str> = form
            .pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        match got {
            Ok(Some(v)) => assert_eq!(sent, [v.as_str()], "{name}"),
            Ok(None) => assert!(sent.is_empty(), "{name} was sent"),
            Err(e) => {
                // Only a repeated parameter, or a request with too many, is refused.
                assert!(sent.len() > 1 || full, "{name} refused: {e:?}");
                common::check_error(e);
            }
        }
    }

    if let Some(grant) = form.grant {
        let grant_type = &form.fields[0];
        assert_eq!(grant_type.0, "grant_type");
        assert_eq!(grant_type.1.as_ref().ok(), Some(&Some(grant.to_owned())));
    }

    let scope = form
        .fields
        .iter()
        .find(|(name, _)| *name == "scope")
        .map(|(_, v)| v.as_ref().ok().cloned().flatten());
    match &form.scopes {
        Ok(scopes) => {
            assert!(scopes.is_subset(&AVAILABLE));
            if let Some(Some(raw)) = &scope {
                assert_eq!(Scopes::parse(raw).as_ref(), Ok(scopes));
            }
        }
        Err(e) => common::check_error(e),
    }

    // What was kept encodes and parses back to itself.
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&form.pairs)
        .finish();
    let again = fuzzing::token_form(encoded.as_bytes());
    assert_eq!(again.pairs, form.pairs);
});
