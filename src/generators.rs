//! Random client ids, client secrets, tokens and device user codes.
//!
//! This is Django OAuth Toolkit's `generators.py` plus the oauthlib helpers it
//! calls (`generate_token`, `generate_client_id`, `random_token_generator`) and
//! DOT's device `user_code_generator`. Every value comes from
//! [`generate_token`], which draws each character uniformly (no modulo bias) from
//! a character set with [`rand::rng`], a ChaCha12 CSPRNG seeded and periodically
//! reseeded from the operating system. DOT uses Python's `SystemRandom`, which
//! asks the OS for every character; a thread-local CSPRNG gives the same
//! unpredictability without a system call per character.
//!
//! | DOT / oauthlib | here | value |
//! |---|---|---|
//! | `ClientIdGenerator` | [`ClientIdGenerator`] | 40 characters of `a-zA-Z0-9` (never `:`, so HTTP Basic auth works) |
//! | `ClientSecretGenerator` | [`ClientSecretGenerator`] | `CLIENT_SECRET_GENERATOR_LENGTH` (128) characters of `a-zA-Z0-9` |
//! | `random_token_generator` | [`TokenGenerator`] | 40 characters of `a-zA-Z0-9` (oauthlib: 30); codes |
//! | (access and refresh tokens) | [`TimeOrderedTokenGenerator`] | an 8-character time prefix, `_`, 40 characters of `a-zA-Z0-9` |
//! | `user_code_generator` | [`UserCodeGenerator`] | 8 characters of RFC 8628 §6.1's base-20 `BCDFGHJKLMNPQRSTVWXZ`, shown `XXXX-XXXX` (DOT: base32hex) |
//!
//! [`Generators`] holds one of each and replaces DOT's class-path settings; a provider
//! takes it from [`ProviderBuilder::generators`](crate::provider::ProviderBuilder::generators).
//!
//! ```
//! use tower_oauth_toolkit::generators::{Generator, Generators, TokenGenerator};
//!
//! let client_id = Generators::default().client_id();
//! assert_eq!(client_id.len(), 40);
//! assert!(client_id.bytes().all(|b| b.is_ascii_alphanumeric()));
//!
//! let token = TokenGenerator::default().generate();
//! assert_eq!(token.len(), 40);
//! // Fewer than 160 bits of entropy is refused.
//! assert!(TokenGenerator::new(20).is_err());
//! ```

use std::fmt;

use rand::distr::{Distribution, Uniform};

use std::sync::Arc;

/// oauthlib's `UNICODE_ASCII_CHARACTER_SET`: `a-zA-Z0-9`, 62 characters.
pub const UNICODE_ASCII_CHARACTER_SET: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The base32hex alphabet (RFC 4648 §7) DOT uses for device user codes: `0-9A-V`.
pub const BASE32HEX_CHARACTER_SET: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUV";

/// RFC 8628 §6.1's user-code alphabet: 20 consonants, no vowels (no words) and no
/// digits or letters that look alike.
pub const BASE20_CHARACTER_SET: &str = "BCDFGHJKLMNPQRSTVWXZ";

/// Something that produces a fresh random string each time it is called.
///
/// This is the `.hash()` method of DOT's generator classes
/// (`CLIENT_ID_GENERATOR_CLASS`, `CLIENT_SECRET_GENERATOR_CLASS`) and the
/// `ACCESS_TOKEN_GENERATOR` / `REFRESH_TOKEN_GENERATOR` /
/// `OAUTH_DEVICE_USER_CODE_GENERATOR` callables. Install your own with the
/// [`Generators`] fields. A generator for client ids must
/// never produce `:` (it would break HTTP Basic client authentication), and a
/// token generator must keep at least 160 bits of entropy.
pub trait Generator: Send + Sync + fmt::Debug {
    /// Returns a new random value.
    fn generate(&self) -> String;
}

/// Returns `length` characters drawn uniformly and independently from `charset`
/// with a cryptographically secure generator (oauthlib's `generate_token`).
///
/// # Panics
///
/// If `charset` is empty or contains non-ASCII bytes.
///
/// ```
/// use tower_oauth_toolkit::generators::{generate_token, BASE32HEX_CHARACTER_SET};
///
/// let code = generate_token(8, BASE32HEX_CHARACTER_SET.as_bytes());
/// assert_eq!(code.len(), 8);
/// ```
pub fn generate_token(length: usize, charset: &[u8]) -> String {
    let mut out = String::with_capacity(length);
    push_random(&mut out, length, charset);
    out
}

/// Appends `length` random characters of `charset` to `out` (see [`generate_token`]).
fn push_random(out: &mut String, length: usize, charset: &[u8]) {
    assert!(
        !charset.is_empty() && charset.is_ascii(),
        "generate_token needs a non-empty ASCII character set"
    );
    // Uniform::new only fails for an empty range, excluded above.
    let index = Uniform::new(0, charset.len()).expect("non-empty character set");
    out.extend(
        index
            .sample_iter(rand::rng())
            .take(length)
            .map(|i| char::from(charset[i])),
    );
}

/// DOT's `ClientIdGenerator`: 40 characters of [`UNICODE_ASCII_CHARACTER_SET`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientIdGenerator;

impl ClientIdGenerator {
    /// Length of a generated client id (oauthlib `generate_client_id`).
    pub const LENGTH: usize = 40;
}

impl Generator for ClientIdGenerator {
    fn generate(&self) -> String {
        generate_token(Self::LENGTH, UNICODE_ASCII_CHARACTER_SET.as_bytes())
    }
}

/// DOT's `ClientSecretGenerator`: `length` characters of
/// [`UNICODE_ASCII_CHARACTER_SET`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientSecretGenerator {
    /// Number of characters (DOT `CLIENT_SECRET_GENERATOR_LENGTH`, default 128).
    pub length: usize,
}

impl ClientSecretGenerator {
    /// DOT's default `CLIENT_SECRET_GENERATOR_LENGTH`.
    pub const DEFAULT_LENGTH: usize = 128;
}

impl Default for ClientSecretGenerator {
    fn default() -> Self {
        Self {
            length: Self::DEFAULT_LENGTH,
        }
    }
}

impl Generator for ClientSecretGenerator {
    fn generate(&self) -> String {
        generate_token(self.length, UNICODE_ASCII_CHARACTER_SET.as_bytes())
    }
}

/// Generator for access tokens, refresh tokens, authorization codes and device
/// codes: `length` characters of [`UNICODE_ASCII_CHARACTER_SET`].
///
/// The default length is 40 characters, about 238 bits of entropy (oauthlib's
/// `random_token_generator` uses 30, about 179 bits). The length can be changed
/// with [`TokenGenerator::new`], which refuses anything under 160 bits (fewer
/// than [`TokenGenerator::MIN_LENGTH`] = 27 characters): bearer tokens are
/// looked up by value, so their unpredictability is their only protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenGenerator {
    length: usize,
}

impl TokenGenerator {
    /// Default token length: 40 characters, about 238 bits.
    pub const DEFAULT_LENGTH: usize = 40;
    /// Shortest accepted length: 27 characters of a 62-character set carry
    /// 160.8 bits; 26 would carry only 154.8.
    pub const MIN_LENGTH: usize = 27;

    /// A generator of `length`-character tokens.
    ///
    /// # Errors
    ///
    /// [`TokenLengthError`] if `length` gives less than 160 bits of entropy.
    pub fn new(length: usize) -> Result<Self, TokenLengthError> {
        if length < Self::MIN_LENGTH {
            return Err(TokenLengthError { length });
        }
        Ok(Self { length })
    }

    /// Number of characters in each token.
    pub fn length(&self) -> usize {
        self.length
    }
}

impl Default for TokenGenerator {
    fn default() -> Self {
        Self {
            length: Self::DEFAULT_LENGTH,
        }
    }
}

impl Generator for TokenGenerator {
    fn generate(&self) -> String {
        generate_token(self.length, UNICODE_ASCII_CHARACTER_SET.as_bytes())
    }
}

/// The default generator of access and refresh tokens: a time prefix, `_`, then
/// `length` random characters of [`UNICODE_ASCII_CHARACTER_SET`] (default 40, about 238
/// bits, the same randomness as [`TokenGenerator`]'s default; at least
/// [`TokenGenerator::MIN_LENGTH`]).
///
/// The prefix is the issue time in milliseconds since the Unix epoch, 8 characters of
/// `0-9A-Za-z` in ASCII order (until the year 8888), e.g.
/// `1c9XbP3k_Qm7…`. [`token_key`](crate::crypto::token_key) puts that time in front of
/// the token's digest, so the keys of new tokens are increasing: each insert touches the
/// right-hand pages of the unique index, which stay in cache and are shared by a whole
/// group commit, instead of one random index page per token. On SQLite that took the
/// client-credentials token endpoint from about 20 % to about 30 % of the bare path
/// (BENCHMARKS.md). The time is not secret (`expires_in` tells it too); the token's
/// unpredictability is all in the random part.
///
/// ```
/// use tower_oauth_toolkit::generators::{Generator, TimeOrderedTokenGenerator};
///
/// let token = TimeOrderedTokenGenerator::default().generate();
/// assert_eq!(token.len(), 8 + 1 + 40);
/// assert_eq!(token.as_bytes()[8], b'_');
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeOrderedTokenGenerator {
    length: usize,
}

impl TimeOrderedTokenGenerator {
    /// A generator with `length` random characters after the prefix.
    ///
    /// # Errors
    ///
    /// [`TokenLengthError`] if `length` gives less than 160 bits of entropy.
    pub fn new(length: usize) -> Result<Self, TokenLengthError> {
        TokenGenerator::new(length).map(|g| Self { length: g.length })
    }

    /// Number of random characters after the prefix.
    pub fn length(&self) -> usize {
        self.length
    }
}

impl Default for TimeOrderedTokenGenerator {
    fn default() -> Self {
        Self {
            length: TokenGenerator::DEFAULT_LENGTH,
        }
    }
}

impl Generator for TimeOrderedTokenGenerator {
    fn generate(&self) -> String {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .min(62u64.pow(8) - 1);
        let mut token = String::with_capacity(crate::crypto::TIME_PREFIX_LEN + 1 + self.length);
        crate::crypto::encode_time_prefix(millis, &mut token);
        token.push('_');
        push_random(
            &mut token,
            self.length,
            UNICODE_ASCII_CHARACTER_SET.as_bytes(),
        );
        token
    }
}

/// Entropy in bits of `length` characters drawn uniformly from 62.
fn entropy_bits(length: usize) -> f64 {
    length as f64 * 62f64.log2()
}

/// [`TokenGenerator::new`] was given a length with less than 160 bits of entropy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a token of {length} characters carries {:.1} bits of entropy; at least 160 bits \
     ({} characters) are required",
    entropy_bits(*.length),
    TokenGenerator::MIN_LENGTH
)]
pub struct TokenLengthError {
    /// The refused length.
    pub length: usize,
}

/// The default device-flow user code (RFC 8628 §6.1): 8 characters of
/// [`BASE20_CHARACTER_SET`] (34.6 bits), shown as `XXXX-XXXX`. A user code is matched
/// case-insensitively and without its dashes or spaces (see
/// [`normalize_user_code`]); RFC 8628 §5.1 relies on its short lifetime and on the
/// throttling of wrong entries rather than on its length. DOT's generator draws 8
/// characters of base32hex instead, which includes vowels and `0`/`O`, `1`/`I`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserCodeGenerator;

impl UserCodeGenerator {
    /// Characters drawn for a user code (the dash not counted).
    pub const LENGTH: usize = 8;
}

impl Generator for UserCodeGenerator {
    fn generate(&self) -> String {
        let mut code = generate_token(Self::LENGTH, BASE20_CHARACTER_SET.as_bytes());
        code.insert(Self::LENGTH / 2, '-');
        code
    }
}

/// The form in which a user code is compared and stored (as a checksum): ASCII letters
/// upper-cased, dashes and white space dropped — `wdjb-mjht`, `WDJB MJHT` and `WDJBMJHT`
/// are one code. Applied both to the generated code and to what a user types, so a
/// custom [`Generator`] may use any alphabet.
pub fn normalize_user_code(code: &str) -> String {
    code.chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The generators a provider uses: DOT's class-path settings
/// `CLIENT_ID_GENERATOR_CLASS`, `CLIENT_SECRET_GENERATOR_CLASS`,
/// `ACCESS_TOKEN_GENERATOR`, `REFRESH_TOKEN_GENERATOR` and
/// `OAUTH_DEVICE_USER_CODE_GENERATOR`, as Rust values. Install them with
/// [`ProviderBuilder::generators`](crate::provider::ProviderBuilder::generators) (and
/// pass them to [`application::register`](crate::application::register)); the defaults
/// are DOT's.
///
/// ```
/// use std::sync::Arc;
/// use tower_oauth_toolkit::generators::{Generators, TokenGenerator};
///
/// let generators = Generators {
///     access_token: Arc::new(TokenGenerator::new(64).unwrap()),
///     ..Generators::default()
/// };
/// assert_eq!(generators.access_token().len(), 64);
/// assert_eq!(generators.client_secret(128).len(), 128);
/// ```
#[derive(Clone, Debug)]
pub struct Generators {
    /// Client ids; default [`ClientIdGenerator`].
    pub client_id: Arc<dyn Generator>,
    /// Client secrets; `None` means a [`ClientSecretGenerator`] of
    /// `CLIENT_SECRET_GENERATOR_LENGTH` characters.
    pub client_secret: Option<Arc<dyn Generator>>,
    /// Access tokens; default [`TimeOrderedTokenGenerator`].
    pub access_token: Arc<dyn Generator>,
    /// Refresh tokens; `None` means the access-token generator.
    pub refresh_token: Option<Arc<dyn Generator>>,
    /// Device-flow user codes; default [`UserCodeGenerator`].
    pub user_code: Arc<dyn Generator>,
}

impl Default for Generators {
    /// DOT's generators (with time-ordered access and refresh tokens).
    fn default() -> Self {
        Generators {
            client_id: Arc::new(ClientIdGenerator),
            client_secret: None,
            access_token: Arc::new(TimeOrderedTokenGenerator::default()),
            refresh_token: None,
            user_code: Arc::new(UserCodeGenerator),
        }
    }
}

impl Generators {
    /// A new client id (DOT `CLIENT_ID_GENERATOR_CLASS`).
    pub fn client_id(&self) -> String {
        self.client_id.generate()
    }

    /// A new client secret: the `client_secret` generator, or, when it is unset, a
    /// [`ClientSecretGenerator`] of `length` (`CLIENT_SECRET_GENERATOR_LENGTH`)
    /// characters (DOT `CLIENT_SECRET_GENERATOR_CLASS`).
    pub fn client_secret(&self, length: usize) -> String {
        match &self.client_secret {
            Some(generator) => generator.generate(),
            None => ClientSecretGenerator { length }.generate(),
        }
    }

    /// A new access token (DOT `ACCESS_TOKEN_GENERATOR`).
    pub fn access_token(&self) -> String {
        self.access_token.generate()
    }

    /// A new refresh token: the `refresh_token` generator, or the access-token
    /// generator when it is unset (DOT `REFRESH_TOKEN_GENERATOR`).
    pub fn refresh_token(&self) -> String {
        self.refresh_token
            .as_ref()
            .unwrap_or(&self.access_token)
            .generate()
    }

    /// A new device-flow user code (DOT `OAUTH_DEVICE_USER_CODE_GENERATOR`).
    pub fn user_code(&self) -> String {
        self.user_code.generate()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn only_alphanumeric(s: &str) -> bool {
        s.bytes().all(|b| b.is_ascii_alphanumeric())
    }

    #[test]
    fn character_sets() {
        assert_eq!(UNICODE_ASCII_CHARACTER_SET.len(), 62);
        let set: HashSet<u8> = UNICODE_ASCII_CHARACTER_SET.bytes().collect();
        assert_eq!(set.len(), 62);
        assert!(only_alphanumeric(UNICODE_ASCII_CHARACTER_SET));
        assert_eq!(BASE32HEX_CHARACTER_SET.len(), 32);
    }

    #[test]
    fn min_length_is_the_160_bit_boundary() {
        assert!(entropy_bits(TokenGenerator::MIN_LENGTH) >= 160.0);
        assert!(entropy_bits(TokenGenerator::MIN_LENGTH - 1) < 160.0);
        assert!(TokenGenerator::new(TokenGenerator::MIN_LENGTH).is_ok());
        let err = TokenGenerator::new(26).unwrap_err();
        assert_eq!(err.length, 26);
        assert!(err.to_string().contains("160 bits"), "{err}");
        assert!(entropy_bits(TokenGenerator::DEFAULT_LENGTH) > 238.0);
    }

    #[test]
    fn user_codes_are_base20_in_two_groups() {
        for _ in 0..100 {
            let code = UserCodeGenerator.generate();
            assert_eq!(code.len(), 9, "{code}");
            assert_eq!(&code[4..5], "-", "{code}");
            let plain = normalize_user_code(&code);
            assert_eq!(plain.len(), 8);
            assert!(plain
                .bytes()
                .all(|b| BASE20_CHARACTER_SET.as_bytes().contains(&b)));
        }
    }

    #[test]
    fn user_codes_match_whatever_the_case_dashes_or_spaces() {
        assert_eq!(normalize_user_code("wdjb-mjht"), "WDJBMJHT");
        assert_eq!(normalize_user_code(" WDJB MJHT\n"), "WDJBMJHT");
        assert_eq!(normalize_user_code("WDJBMJHT"), "WDJBMJHT");
        assert_ne!(normalize_user_code("WDJB-MJHX"), "WDJBMJHT");
    }

    #[test]
    fn every_character_is_used() {
        // 62 symbols, 40_000 draws: each is expected ~645 times.
        let drawn: HashSet<char> = generate_token(40_000, UNICODE_ASCII_CHARACTER_SET.as_bytes())
            .chars()
            .collect();
        assert_eq!(drawn.len(), 62);
    }

    #[test]
    #[should_panic(expected = "non-empty ASCII")]
    fn empty_charset_panics() {
        generate_token(1, b"");
    }

    #[derive(Debug)]
    struct Fixed(&'static str);

    impl Generator for Fixed {
        fn generate(&self) -> String {
            self.0.to_owned()
        }
    }

    #[test]
    fn time_ordered_tokens_have_a_time_prefix_and_increasing_keys() {
        let generator = TimeOrderedTokenGenerator::default();
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let first = generator.generate();
        assert_eq!(first.len(), 49);
        assert_eq!(first.as_bytes()[8], b'_');
        assert!(only_alphanumeric(&first[..8]) && only_alphanumeric(&first[9..]));
        let key = crate::crypto::token_key(&first);
        let mut millis = [0u8; 8];
        millis[2..].copy_from_slice(&key[..6]);
        let millis = u64::from_be_bytes(millis);
        assert!(
            (before..before + 60_000).contains(&millis),
            "{millis} vs {before}"
        );

        std::thread::sleep(std::time::Duration::from_millis(3));
        let later = generator.generate();
        assert!(crate::crypto::token_key(&later) > key);
        assert_ne!(first[9..], later[9..]);

        assert!(TimeOrderedTokenGenerator::new(26).is_err());
        assert_eq!(
            TimeOrderedTokenGenerator::new(27).unwrap().generate().len(),
            36
        );
    }

    #[test]
    fn settings_hooks_are_honoured() {
        let g = Generators::default();
        // CLIENT_SECRET_GENERATOR_LENGTH's default.
        assert_eq!(g.client_secret(128).len(), 128);
        // Time-ordered by default: 8 + `_` + 40 (the 40 random characters of before).
        assert_eq!(g.access_token().len(), 49);
        assert_eq!(g.refresh_token().len(), 49);
        assert_eq!(g.user_code().len(), 9);

        assert_eq!(g.client_secret(50).len(), 50);

        let mut g = Generators {
            client_id: Arc::new(Fixed("id")),
            client_secret: Some(Arc::new(Fixed("secret"))),
            access_token: Arc::new(Fixed("access")),
            refresh_token: None,
            user_code: Arc::new(Fixed("USER")),
        };
        assert_eq!(g.client_id(), "id");
        assert_eq!(g.client_secret(128), "secret");
        assert_eq!(g.access_token(), "access");
        // Unset refresh generator falls back to the access-token one.
        assert_eq!(g.refresh_token(), "access");
        assert_eq!(g.user_code(), "USER");
        g.refresh_token = Some(Arc::new(Fixed("refresh")));
        assert_eq!(g.refresh_token(), "refresh");
    }

    proptest! {
        #[test]
        fn client_ids_are_40_alphanumerics(_seed in any::<u8>()) {
            let id = ClientIdGenerator.generate();
            prop_assert_eq!(id.len(), 40);
            prop_assert!(only_alphanumeric(&id));
            prop_assert!(!id.contains(':'));
        }

        #[test]
        fn secrets_have_the_configured_length(length in 1usize..=255) {
            let secret = ClientSecretGenerator { length }.generate();
            prop_assert_eq!(secret.len(), length);
            prop_assert!(only_alphanumeric(&secret));
        }

        #[test]
        fn tokens_have_the_configured_length(length in TokenGenerator::MIN_LENGTH..=255) {
            let token = TokenGenerator::new(length).unwrap().generate();
            prop_assert_eq!(token.len(), length);
            prop_assert!(only_alphanumeric(&token));
        }

        #[test]
        fn short_token_lengths_are_refused(length in 0usize..TokenGenerator::MIN_LENGTH) {
            prop_assert!(TokenGenerator::new(length).is_err());
        }
    }

    #[test]
    fn tokens_are_unique_across_many_draws() {
        let generator = TokenGenerator::default();
        let tokens: HashSet<String> = (0..100_000).map(|_| generator.generate()).collect();
        assert_eq!(tokens.len(), 100_000);
        let ids: HashSet<String> = (0..10_000).map(|_| ClientIdGenerator.generate()).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
