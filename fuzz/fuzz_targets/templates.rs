//! The provider's pages (`provider::templates`, the built-in `login.html`,
//! `authorize.html`, `logout.html` and `error.html`) rendered with fuzzed values in the
//! contexts the handlers build: application names, usernames, scope names and
//! descriptions, error descriptions, carried-over request fields, CSRF tokens.
//!
//! The check: the values change no markup. Each page is rendered twice, with the fuzzed
//! values and with neutral stand-ins (one per distinct value, empty kept empty, so every
//! `if` and comparison in the templates goes the same way); both must have the same
//! number of `<`, `>`, `"` and `'`, i.e. every such character of the input was escaped.
//!
//! Input: the first byte picks the page (low three bits) and which optional values are
//! present (the other bits); the rest is the values, separated by NUL bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tower_oauth_toolkit::fuzzing;

/// The page and its context, as the handlers build them (`login_page`,
/// `consent_page`, `titled_error_page`, the logout pages).
fn page(selector: u8, v: &[String]) -> (&'static str, Value) {
    let at = |i: usize| v.get(i).cloned().unwrap_or_default();
    let bit = |b: u8| selector & (1 << b) != 0;
    let opt = |b: u8, i: usize| if bit(b) { json!(at(i)) } else { Value::Null };
    // Entries after the fixed values, in pairs: scopes or request fields.
    let pairs = |from: usize, a: &str, b: &str| -> Vec<Value> {
        v.get(from..)
            .unwrap_or_default()
            .chunks(2)
            .take(8)
            .map(|c| json!({a: c[0], b: c.get(1).cloned().unwrap_or_default()}))
            .collect()
    };
    match selector & 7 {
        0 => (
            "login.html",
            json!({"action": "./", "csrf_token": at(0), "next": opt(3, 1),
                   "username": at(2), "error": opt(4, 3), "logged_in_as": null}),
        ),
        1 => (
            "login.html",
            json!({"action": "./", "csrf_token": "", "next": null, "username": "",
                   "error": null, "logged_in_as": at(0)}),
        ),
        2 | 3 => {
            let (scopes, fields) = if bit(3) {
                (pairs(4, "name", "description"), vec![])
            } else {
                (vec![], pairs(4, "name", "value"))
            };
            (
                "authorize.html",
                json!({"action": "./", "csrf_token": at(0),
                       "application": {"name": at(1), "client_id": at(2)},
                       "user": {"username": at(3)}, "scopes": scopes, "fields": fields}),
            )
        }
        4 => (
            "error.html",
            json!({"status": 400 + u16::from(selector >> 3), "title": at(0),
                   "description": at(1), "error": opt(7, 2)}),
        ),
        5 | 6 => {
            let application = if bit(3) {
                json!({"name": at(1), "client_id": at(2)})
            } else {
                Value::Null
            };
            let user = if bit(4) {
                json!({"username": at(3)})
            } else {
                Value::Null
            };
            (
                "logout.html",
                json!({"signed_out": false, "action": "./", "csrf_token": at(0),
                       "application": application, "user": user,
                       "fields": pairs(4, "name", "value")}),
            )
        }
        _ => {
            let application = if bit(3) {
                json!({"name": at(1), "client_id": at(2)})
            } else {
                Value::Null
            };
            (
                "logout.html",
                json!({"signed_out": true, "action": "./", "csrf_token": "",
                       "application": application, "user": null, "fields": []}),
            )
        }
    }
}

/// One stand-in per distinct value, the empty string kept empty.
fn neutral(values: &[String]) -> Vec<String> {
    let mut distinct: Vec<&str> = Vec::new();
    values
        .iter()
        .map(|v| {
            if v.is_empty() {
                return String::new();
            }
            let i = distinct.iter().position(|d| d == v).unwrap_or_else(|| {
                distinct.push(v);
                distinct.len() - 1
            });
            format!("value{i}")
        })
        .collect()
}

fn markup(html: &str) -> [usize; 4] {
    b"<>\"'".map(|c| html.bytes().filter(|&b| b == c).count())
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let values: Vec<String> = rest
        .split(|&b| b == 0)
        .take(24)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let (name, ctx) = page(selector, &values);
    let html = fuzzing::render_page(name, &ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (_, plain_ctx) = page(selector, &neutral(&values));
    let plain = fuzzing::render_page(name, &plain_ctx).unwrap();
    assert_eq!(
        markup(&html),
        markup(&plain),
        "{name}: a value changed the markup\n{html}"
    );
    if !plain.contains("<script") {
        assert!(!html.contains("<script"), "{name}: <script from the input");
    }
});
