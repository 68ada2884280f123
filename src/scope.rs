//! OAuth 2.0 scopes: the [`Scopes`] set and the [`ScopesBackend`] that says which
//! scopes exist.
//!
//! A `scope` parameter is a list of space-separated, case-sensitive scope tokens
//! (RFC 6749 §3.3):
//!
//! ```text
//! scope       = scope-token *( SP scope-token )
//! scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
//! ```
//!
//! [`Scopes::parse`] accepts exactly those tokens, keeps their first-seen order
//! and drops duplicates. It is lenient about spacing (leading, trailing and
//! repeated spaces are ignored, as DOT does by splitting on whitespace) but
//! refuses any other character outside the token set: `"`, `\`, tabs and other
//! control characters, and anything non-ASCII. [`Scopes`]'s `Display` writes the
//! canonical form, joined by single spaces.
//!
//! [`ScopesBackend`] is DOT's `BaseScopes` (`SCOPES_BACKEND_CLASS`);
//! [`SettingsScopes`] is its default `SettingsScopes`, built from the `SCOPES` and
//! `DEFAULT_SCOPES` settings.
//!
//! ```
//! use tower_oauth_toolkit::scope::{Scopes, ScopesBackend};
//! use tower_oauth_toolkit::settings::Settings;
//!
//! let requested = Scopes::parse("read  write read").unwrap();
//! assert_eq!(requested.to_string(), "read write");
//! assert!(Scopes::parse("read \"write\"").is_err());
//!
//! let backend = Settings::default().scopes_backend();
//! assert!(requested.is_subset(&backend.available_scopes(None)));
//! assert_eq!(backend.default_scopes(None).to_string(), "read write");
//! assert_eq!(backend.description("read"), Some("Reading scope"));
//! ```

use std::fmt;
use std::str::FromStr;

use indexmap::{IndexMap, IndexSet};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `DEFAULT_SCOPES` entry that stands for every scope in `SCOPES`.
pub const ALL_SCOPES: &str = "__all__";

/// A scope token or scope string that RFC 6749 §3.3 does not allow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The token contains a character outside `%x21 / %x23-5B / %x5D-7E`.
    #[error(
        "invalid scope {token:?}: the character {character:?} is not allowed in a scope token \
         (RFC 6749 §3.3)"
    )]
    InvalidCharacter {
        /// The offending token.
        token: String,
        /// The first character that is not allowed.
        character: char,
    },
    /// An empty scope token was inserted.
    #[error("invalid scope: a scope token cannot be empty (RFC 6749 §3.3)")]
    Empty,
}

fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

/// Checks that `token` is one RFC 6749 §3.3 `scope-token`.
///
/// ```
/// use tower_oauth_toolkit::scope::validate_scope_token;
///
/// assert!(validate_scope_token("openid").is_ok());
/// assert!(validate_scope_token("read:all").is_ok());
/// assert!(validate_scope_token("two words").is_err());
/// assert!(validate_scope_token("").is_err());
/// ```
///
/// # Errors
///
/// [`ScopeError`] naming the token and its first invalid character.
pub fn validate_scope_token(token: &str) -> Result<(), ScopeError> {
    if token.is_empty() {
        return Err(ScopeError::Empty);
    }
    match token.chars().find(|&c| !is_scope_char(c)) {
        Some(character) => Err(ScopeError::InvalidCharacter {
            token: token.to_owned(),
            character,
        }),
        None => Ok(()),
    }
}

/// An ordered set of scope tokens: insertion order, no duplicates, every token
/// valid per RFC 6749 §3.3.
///
/// Equality is set equality (order does not matter). Serialized as the
/// space-separated string, as in token responses and introspection answers.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    tokens: IndexSet<String>,
}

impl Scopes {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a space-separated `scope` string. Extra spaces are ignored; an
    /// empty or all-space string gives the empty set.
    ///
    /// # Errors
    ///
    /// [`ScopeError::InvalidCharacter`] naming the first token with a character
    /// outside the RFC 6749 §3.3 set (tabs and newlines included).
    pub fn parse(scope: &str) -> Result<Self, ScopeError> {
        let mut scopes = Self::new();
        for token in scope.split(' ').filter(|t| !t.is_empty()) {
            scopes.insert(token)?;
        }
        Ok(scopes)
    }

    /// Builds a set from individual tokens, checking each.
    ///
    /// # Errors
    ///
    /// [`ScopeError`] for the first invalid token.
    pub fn try_from_iter<I, S>(tokens: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut scopes = Self::new();
        for token in tokens {
            scopes.insert(token.as_ref())?;
        }
        Ok(scopes)
    }

    /// Adds one token; returns whether it was new.
    ///
    /// # Errors
    ///
    /// [`ScopeError`] if `token` is not a single valid scope token (so a string
    /// with a space in it is refused rather than silently becoming two scopes
    /// when the set is written out and parsed again).
    pub fn insert(&mut self, token: impl AsRef<str>) -> Result<bool, ScopeError> {
        let token = token.as_ref();
        validate_scope_token(token)?;
        if self.tokens.contains(token) {
            return Ok(false);
        }
        Ok(self.tokens.insert(token.to_owned()))
    }

    /// Whether `token` is in the set.
    pub fn contains(&self, token: &str) -> bool {
        self.tokens.contains(token)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.tokens.is_subset(&other.tokens)
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The scopes, in insertion order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.tokens.iter())
    }
}

/// Iterator over the tokens of a [`Scopes`], in insertion order.
#[derive(Clone, Debug)]
pub struct Iter<'a>(indexmap::set::Iter<'a, String>);

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.0.next().map(String::as_str)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a str;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Collects scope tokens.
///
/// # Panics
///
/// If a token is not a valid scope token. Use [`Scopes::try_from_iter`] for
/// tokens that do not come from another [`Scopes`] or from constants.
impl<S: AsRef<str>> FromIterator<S> for Scopes {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        match Self::try_from_iter(iter) {
            Ok(scopes) => scopes,
            Err(err) => panic!("Scopes::from_iter: {err}"),
        }
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, token) in self.tokens.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.tokens.iter()).finish()
    }
}

impl FromStr for Scopes {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, ScopeError> {
        Self::parse(s)
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let scope = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&scope).map_err(serde::de::Error::custom)
    }
}

/// Which scopes exist, which a client may request, and which it gets when it
/// asks for none: DOT's `BaseScopes` (`SCOPES_BACKEND_CLASS`).
///
/// `application` is the client id of the requesting application, or `None`
/// when there is none (DOT passes the application object and the request).
/// [`SettingsScopes`] ignores it; a backend can use it to give each client its
/// own scopes. Install one with `ProviderBuilder::scopes_backend`.
pub trait ScopesBackend: Send + Sync + fmt::Debug {
    /// Every scope the server knows, name → human-readable description
    /// (DOT `get_all_scopes`).
    fn all_scopes(&self) -> &IndexMap<String, String>;

    /// Scopes `application` may request (DOT `get_available_scopes`).
    fn available_scopes(&self, application: Option<&str>) -> Scopes;

    /// Scopes granted when `application` requests none; a subset of
    /// [`available_scopes`](ScopesBackend::available_scopes)
    /// (DOT `get_default_scopes`).
    fn default_scopes(&self, application: Option<&str>) -> Scopes;

    /// The description of `scope` shown on the consent page, if the scope exists.
    fn description(&self, scope: &str) -> Option<&str> {
        self.all_scopes().get(scope).map(String::as_str)
    }
}

/// DOT's `SettingsScopes`: every client may request every scope in `SCOPES`;
/// the default scopes are `DEFAULT_SCOPES`, where `"__all__"` means all of
/// `SCOPES`.
///
/// Names that are not valid scope tokens, and `DEFAULT_SCOPES` entries missing
/// from `SCOPES`, are left out here; `Settings::validate` reports them.
#[derive(Clone, Debug)]
pub struct SettingsScopes {
    all: IndexMap<String, String>,
    available: Scopes,
    default: Scopes,
}

impl SettingsScopes {
    /// A backend for the given `SCOPES` map and `DEFAULT_SCOPES` list.
    pub fn new(scopes: IndexMap<String, String>, default_scopes: &[String]) -> Self {
        let mut available = Scopes::new();
        for name in scopes.keys() {
            // Invalid names cannot be requested anyway; validate() reports them.
            let _ = available.insert(name);
        }
        let default = if default_scopes.iter().any(|s| s == ALL_SCOPES) {
            available.clone()
        } else {
            default_scopes
                .iter()
                .filter(|s| available.contains(s))
                .collect()
        };
        Self {
            all: scopes,
            available,
            default,
        }
    }
}

impl ScopesBackend for SettingsScopes {
    fn all_scopes(&self) -> &IndexMap<String, String> {
        &self.all
    }

    fn available_scopes(&self, _application: Option<&str>) -> Scopes {
        self.available.clone()
    }

    fn default_scopes(&self, _application: Option<&str>) -> Scopes {
        self.default.clone()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parse_and_display() {
        let s = Scopes::parse("  write read  write ").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.to_string(), "write read");
        assert_eq!(s.iter().collect::<Vec<_>>(), ["write", "read"]);
        assert!(Scopes::parse("").unwrap().is_empty());
        assert!(Scopes::parse("   ").unwrap().is_empty());
        let all_allowed = "!#$%&'()*+,-./0123456789:;<=>?@AZ[]^_`az{|}~";
        assert_eq!(Scopes::parse(all_allowed).unwrap().to_string(), all_allowed);
    }

    #[test]
    fn invalid_characters_name_the_token() {
        for (input, token, character) in [
            ("read \"write\"", "\"write\"", '"'),
            ("a\\b", "a\\b", '\\'),
            ("read\twrite", "read\twrite", '\t'),
            ("read\nwrite", "read\nwrite", '\n'),
            ("lecture écriture", "écriture", 'é'),
            ("x\u{7f}", "x\u{7f}", '\u{7f}'),
        ] {
            let err = Scopes::parse(input).unwrap_err();
            assert_eq!(
                err,
                ScopeError::InvalidCharacter {
                    token: token.into(),
                    character
                },
                "{input:?}"
            );
            assert!(err.to_string().contains(&format!("{token:?}")), "{err}");
        }
    }

    #[test]
    fn insert_refuses_what_parse_refuses() {
        let mut s = Scopes::new();
        assert_eq!(s.insert("read"), Ok(true));
        assert_eq!(s.insert("read"), Ok(false));
        assert!(s.insert("two words").is_err());
        assert_eq!(s.insert(""), Err(ScopeError::Empty));
        assert!(Scopes::try_from_iter(["a", "b c"]).is_err());
    }

    #[test]
    #[should_panic(expected = "not allowed")]
    fn from_iter_panics_on_invalid_tokens() {
        let _: Scopes = ["ok", "not ok"].into_iter().collect();
    }

    #[test]
    fn set_semantics() {
        let rw = Scopes::parse("read write").unwrap();
        let r = Scopes::parse("read").unwrap();
        assert!(r.is_subset(&rw));
        assert!(!rw.is_subset(&r));
        assert!(Scopes::new().is_subset(&r));
        assert_eq!(rw, Scopes::parse("write read").unwrap());
        assert!(rw.contains("write") && !rw.contains("admin"));
        assert_eq!(format!("{rw:?}"), r#"{"read", "write"}"#);
    }

    #[test]
    fn serde_as_a_string() {
        let s = Scopes::parse("read write").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), r#""read write""#);
        let back: Scopes = serde_json::from_str(r#"" write  read ""#).unwrap();
        assert_eq!(back.to_string(), "write read");
        assert!(serde_json::from_str::<Scopes>(r#""a\\b""#).is_err());
    }

    #[test]
    fn settings_scopes() {
        let mut map = IndexMap::new();
        map.insert("read".to_owned(), "Reading".to_owned());
        map.insert("write".to_owned(), "Writing".to_owned());
        map.insert("admin".to_owned(), "Admin".to_owned());
        let all = SettingsScopes::new(map.clone(), &["__all__".into()]);
        assert_eq!(all.default_scopes(None).to_string(), "read write admin");
        assert_eq!(all.available_scopes(Some("client")).len(), 3);
        assert_eq!(all.description("admin"), Some("Admin"));
        assert_eq!(all.description("nope"), None);
        let some = SettingsScopes::new(map, &["write".into(), "unknown".into()]);
        assert_eq!(some.default_scopes(None).to_string(), "write");
        let none = SettingsScopes::new(IndexMap::new(), &[]);
        assert!(none.default_scopes(None).is_empty());
    }

    proptest! {
        #[test]
        fn display_round_trips(tokens in prop::collection::vec("[!#-\\[\\]-~]{1,12}", 0..8)) {
            let scopes = Scopes::try_from_iter(&tokens).unwrap();
            let again = Scopes::parse(&scopes.to_string()).unwrap();
            prop_assert_eq!(again.iter().collect::<Vec<_>>(), scopes.iter().collect::<Vec<_>>());
        }

        #[test]
        fn parse_never_accepts_bad_characters(s in "\\PC*") {
            if let Ok(scopes) = Scopes::parse(&s) {
                for token in &scopes {
                    prop_assert!(token.chars().all(is_scope_char));
                }
            }
        }
    }
}
