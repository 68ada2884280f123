//! RFC 7662 introspection answers as `IntrospectionValidator` reads them
//! (`resource::introspection::parse_body`).
//!
//! Input: the answer's body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tower_oauth_toolkit::fuzzing;
use tower_oauth_toolkit::scope::Scopes;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fuzz_target!(|data: &[u8]| {
    // The parser reads the clock between these two.
    let before = now();
    let answer = fuzzing::introspection_answer(data);
    let after = now();
    let object: Option<Map<String, Value>> = serde_json::from_slice(data).ok();
    let Some(object) = object else {
        assert!(answer.is_err(), "a body that is not a JSON object was read");
        return;
    };
    let active = object.get("active");
    match answer {
        Ok(Some(info)) => {
            assert_eq!(active, Some(&Value::Bool(true)));
            assert!(info.active);
            assert_eq!(info.claims, object, "every member is kept as received");
            if let Some(exp) = info.exp {
                assert!(exp > before, "an expired token is active");
            }
            match object.get("scope") {
                Some(Value::String(s)) => assert_eq!(Scopes::parse(s).as_ref(), Ok(&info.scopes)),
                _ => assert!(info.scopes.is_empty()),
            }
            match object.get("aud") {
                Some(Value::String(a)) => assert_eq!(info.aud, std::slice::from_ref(a)),
                Some(Value::Array(a)) => assert_eq!(info.aud.len(), a.len()),
                _ => assert!(info.aud.is_empty()),
            }
            for (field, got) in [
                ("client_id", &info.client_id),
                ("username", &info.username),
                ("sub", &info.sub),
            ] {
                assert_eq!(object.get(field).and_then(Value::as_str), got.as_deref());
            }
        }
        // Inactive: said so, or expired.
        Ok(None) => assert!(
            active == Some(&Value::Bool(false))
                || object
                    .get("exp")
                    .and_then(Value::as_f64)
                    // Fractions are cut off, as the parser does.
                    .is_some_and(|exp| exp as i64 <= after),
            "{object:?} read as inactive"
        ),
        // Malformed: never for a plain well-formed answer.
        Err(message) => {
            assert!(!message.is_empty());
            assert!(
                !matches!(active, Some(Value::Bool(false))),
                "an inactive answer refused: {message}"
            );
        }
    }
});
