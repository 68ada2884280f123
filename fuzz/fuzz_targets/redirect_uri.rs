//! Redirect-URI matching and choice (`provider::redirect_uri`: exact match, the
//! RFC 8252 §7.3 loopback rule, `ALLOW_URI_WILDCARDS`), under each combination of
//! `ALLOW_LOCALHOST_LOOPBACK` and `ALLOW_URI_WILDCARDS`.
//!
//! Input: the registered URIs (whitespace-separated, as stored) up to the first `\n`, the
//! requested URI after it (none if there is no `\n`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_oauth_toolkit::fuzzing;

const FLAGS: [(bool, bool); 4] = [(false, false), (false, true), (true, false), (true, true)];

/// `http://` + a loopback host + an optional port of 1 to 5 digits up to 65535 (what the
/// RFC 8252 §7.3 rule may relax).
fn is_loopback(uri: &str, allow_localhost: bool) -> bool {
    let Some(after) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = after.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = match authority.strip_prefix("[::1]") {
        Some(port) => ("[::1]", port),
        None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            (1..=5).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u32>().is_ok_and(|p| p <= 65535)
        });
    port_ok
        && (host == "127.0.0.1"
            || host == "[::1]"
            || (allow_localhost && host.eq_ignore_ascii_case("localhost")))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (registered, requested) = match text.split_once('\n') {
        Some((r, q)) => (r, Some(q)),
        None => (&*text, None),
    };
    let uris: Vec<&str> = registered.split_whitespace().collect();

    for (l, w) in FLAGS {
        for reg in &uris {
            // A registered URI always matches itself.
            assert!(fuzzing::redirect_uri_matches(reg, reg, l, w), "{reg:?}");
            if let Some(req) = requested {
                let m = fuzzing::redirect_uri_matches(reg, req, l, w);
                // More permissive settings never match less.
                if fuzzing::redirect_uri_matches(reg, req, false, false) {
                    assert!(m, "{reg:?} / {req:?} with {l} {w}");
                }
                if !w {
                    // Without wildcards the rule is symmetric, and only loopback URIs
                    // match another string.
                    assert_eq!(m, fuzzing::redirect_uri_matches(req, reg, l, w));
                    if m && reg != &req {
                        assert!(
                            is_loopback(reg, l) && is_loopback(req, l),
                            "{reg:?} / {req:?}"
                        );
                    }
                }
                if m && reg != &req && !is_loopback(req, l) {
                    // A wildcard match: same scheme, a host under the registered suffix.
                    assert!(w, "{reg:?} / {req:?}");
                    let (scheme, suffix) = reg.split_once("://*.").expect("a wildcard URI");
                    let rest = req.strip_prefix(scheme).and_then(|r| r.strip_prefix("://"));
                    let host = rest
                        .expect("same scheme")
                        .split(['/', '?', '#'])
                        .next()
                        .unwrap();
                    let suffix_host = suffix.split(['/', '?', '#']).next().unwrap();
                    let labels = host
                        .strip_suffix(suffix_host)
                        .and_then(|l| l.strip_suffix('.'))
                        .unwrap_or_else(|| panic!("{req:?} is not under {reg:?}"));
                    // Plain DNS labels: no userinfo, port or other authority trick.
                    assert!(
                        !labels.is_empty()
                            && labels
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
                        "{reg:?} / {req:?}"
                    );
                }
            }
        }

        match fuzzing::resolve_redirect_uri(registered, requested, l, w) {
            Ok(uri) => {
                assert!(!uri.contains('#'), "a fragment: {uri:?}");
                let scheme = uri.split_once(':').expect("a scheme").0;
                assert!(fuzzing::allowed_redirect_uri_schemes()
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(scheme)));
                match requested {
                    Some(req) => {
                        assert_eq!(uri, req);
                        assert!(uris
                            .iter()
                            .any(|reg| fuzzing::redirect_uri_matches(reg, req, l, w)));
                    }
                    None => {
                        assert_eq!(uris, [uri.as_str()], "chosen without being asked");
                        assert!(!uri.contains('*'));
                    }
                }
            }
            Err(message) => assert!(!message.is_empty()),
        }
    }
});
