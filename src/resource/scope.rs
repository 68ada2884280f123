//! Scope policies, mirroring DOT's permissions:
//!
//! | policy | DOT | rule |
//! |---|---|---|
//! | [`ScopePolicy::Authenticated`] | `ProtectedResourceView` | any valid token |
//! | [`ScopePolicy::Required`] | `TokenHasScope` | every listed scope |
//! | [`ScopePolicy::ReadWrite`] | `TokenHasReadWriteScope` | the listed scopes plus READ_SCOPE for GET/HEAD/OPTIONS, WRITE_SCOPE otherwise |
//! | [`ScopePolicy::Alternatives`] | `TokenMatchesOASRequirements` | per method, the first alternative set the token fully has; a method not listed is denied |
//!
//! A policy is a layer option ([`BearerLayer::with_policy`](super::BearerLayer::with_policy));
//! give each route its own layer for per-route policies.

use std::collections::HashMap;

use http::Method;

use crate::scope::Scopes;

/// Which scopes a request needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ScopePolicy {
    /// Any valid token.
    #[default]
    Authenticated,
    /// Every one of these scopes.
    Required(Scopes),
    /// These scopes plus `read` for safe methods (GET, HEAD, OPTIONS) or `write` for the
    /// others.
    ReadWrite {
        /// Scopes needed whatever the method.
        required: Scopes,
        /// READ_SCOPE.
        read: String,
        /// WRITE_SCOPE.
        write: String,
    },
    /// Per method, alternative scope sets; the token must hold all scopes of at least one
    /// alternative. Methods not in the map are denied.
    Alternatives(HashMap<Method, Vec<Scopes>>),
}

impl ScopePolicy {
    /// `Required` from a space-separated list. Panics on an invalid scope token, which is
    /// a programming error in the route table, not bad input.
    pub fn required(scopes: &str) -> Self {
        ScopePolicy::Required(Scopes::parse(scopes).expect("valid scope tokens"))
    }

    /// `ReadWrite` with DOT's defaults (`read`, `write`) and no other scope.
    pub fn read_write() -> Self {
        ScopePolicy::ReadWrite {
            required: Scopes::new(),
            read: "read".into(),
            write: "write".into(),
        }
    }

    /// Checks a token's scopes for a request method: `Err` holds the scopes that would
    /// have satisfied the policy (for the `insufficient_scope` answer).
    pub fn check(&self, method: &Method, granted: &Scopes) -> Result<(), Scopes> {
        match self {
            ScopePolicy::Authenticated => Ok(()),
            ScopePolicy::Required(required) => {
                if required.is_subset(granted) {
                    Ok(())
                } else {
                    Err(required.clone())
                }
            }
            ScopePolicy::ReadWrite {
                required,
                read,
                write,
            } => {
                let mut need = required.clone();
                let extra = if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
                    read
                } else {
                    write
                };
                // Scope names here come from settings that were validated as scope tokens.
                let _ = need.insert(extra);
                if need.is_subset(granted) {
                    Ok(())
                } else {
                    Err(need)
                }
            }
            ScopePolicy::Alternatives(map) => {
                let Some(alternatives) = map.get(method) else {
                    return Err(Scopes::new());
                };
                if alternatives.iter().any(|alt| alt.is_subset(granted)) {
                    Ok(())
                } else {
                    Err(alternatives.first().cloned().unwrap_or_default())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Scopes {
        Scopes::parse(v).unwrap()
    }

    #[test]
    fn required_needs_all() {
        let p = ScopePolicy::required("read write");
        assert!(p.check(&Method::GET, &s("write read extra")).is_ok());
        assert_eq!(
            p.check(&Method::GET, &s("read")).unwrap_err(),
            s("read write")
        );
    }

    #[test]
    fn read_write_by_method() {
        let p = ScopePolicy::read_write();
        for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(p.check(&m, &s("read")).is_ok());
            assert!(p.check(&m, &s("write")).is_err());
        }
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(p.check(&m, &s("write")).is_ok());
            assert_eq!(p.check(&m, &s("read")).unwrap_err(), s("write"));
        }
    }

    #[test]
    fn alternatives_first_match_and_unlisted_denied() {
        let mut map = HashMap::new();
        map.insert(Method::GET, vec![s("read"), s("admin")]);
        map.insert(Method::POST, vec![s("create write")]);
        let p = ScopePolicy::Alternatives(map);
        assert!(p.check(&Method::GET, &s("admin")).is_ok());
        assert!(p.check(&Method::POST, &s("write create")).is_ok());
        assert!(p.check(&Method::POST, &s("write")).is_err());
        assert!(p
            .check(&Method::DELETE, &s("read write create admin"))
            .is_err());
    }
}
