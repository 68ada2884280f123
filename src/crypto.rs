//! Small cryptographic helpers shared by both halves of the crate.
//!
//! * [`token_checksum`]: the 64 hex characters under which every access token, refresh
//!   token, authorization code and device code is stored and looked up (DOT's
//!   `token_checksum`), and [`token_key`], the same 32 bytes raw (in-memory cache keys).
//!   For a token of any other shape it is the SHA-256 digest of the token, as in DOT; for
//!   a *time-ordered* token (the default access and refresh tokens, see
//!   [`TimeOrderedTokenGenerator`](crate::generators::TimeOrderedTokenGenerator)) its
//!   first 6 bytes are the issue time the token carries in its prefix and the other 26
//!   the leading bytes of its SHA-256 digest, so new keys land at the right-hand edge of
//!   the unique index instead of on a random page each (a write of one index page per
//!   token, which bounded the token endpoint on SQLite). The plaintext value is never
//!   stored either way; the time is not secret (the `created` column holds it too).
//! * [`constant_time_eq`]: comparison of secrets that does not leak, through its timing,
//!   how many leading bytes matched.
//!
//! ```
//! use tower_oauth_toolkit::crypto::{constant_time_eq, token_checksum};
//!
//! let sum = token_checksum("abc");
//! assert_eq!(sum.len(), 64);
//! assert_eq!(sum, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
//! assert!(constant_time_eq(b"secret", b"secret"));
//! assert!(!constant_time_eq(b"secret", b"secreT"));
//! ```

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The key of a token in lower-case hex (64 characters): [`token_key`] encoded.
///
/// Tokens, codes and device codes are stored only in this form: a database leak does not
/// leak usable credentials, and lookups stay a single indexed equality.
pub fn token_checksum(token: &str) -> String {
    hex::encode(token_key(token))
}

/// Length of the time prefix of a time-ordered token (before its `_`).
pub(crate) const TIME_PREFIX_LEN: usize = 8;

/// The fewest characters after the `_` of a time-ordered token (160 bits of `a-zA-Z0-9`).
pub(crate) const TIME_RANDOM_MIN_LEN: usize = 27;

/// The alphabet of the time prefix, in ASCII order so that prefixes of equal length sort
/// as the times they encode.
pub(crate) const TIME_PREFIX_ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The store and cache key of a token, 32 bytes.
///
/// * A time-ordered token — 8 characters of `0-9A-Za-z` encoding milliseconds since the
///   Unix epoch, `_`, then at least 27 more characters — has the 48-bit big-endian time
///   followed by the first 26 bytes (208 bits) of the SHA-256 digest of the whole token.
/// * Any other token has its SHA-256 digest (DOT's checksum, so checksums of tokens
///   imported from DOT or made by a custom generator are unchanged).
///
/// The shape is a pure function of the token, so issuing and looking up always agree.
///
/// ```
/// use tower_oauth_toolkit::crypto::{token_checksum, token_key};
///
/// // Other shapes: the SHA-256 digest.
/// assert_eq!(&token_checksum("abc")[..8], "ba7816bf");
/// // A time-ordered token: its time first, so later tokens sort after earlier ones.
/// let early = token_key("0000001A_abcdefghijklmnopqrstuvwxyzABCDE");
/// let later = token_key("0000001B_0000000000000000000000000000000");
/// assert_eq!(&early[..6], &[0, 0, 0, 0, 0, 62 + 10]);
/// assert!(early < later);
/// ```
pub fn token_key(token: &str) -> [u8; 32] {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    match time_prefix(token) {
        Some(millis) => {
            let mut key = [0u8; 32];
            key[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
            key[6..].copy_from_slice(&digest[..26]);
            key
        }
        None => digest,
    }
}

/// The milliseconds a time-ordered token carries, or `None` for any other shape.
fn time_prefix(token: &str) -> Option<u64> {
    let bytes = token.as_bytes();
    if bytes.len() < TIME_PREFIX_LEN + 1 + TIME_RANDOM_MIN_LEN || bytes[TIME_PREFIX_LEN] != b'_' {
        return None;
    }
    let mut millis = 0u64;
    for &b in &bytes[..TIME_PREFIX_LEN] {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return None,
        };
        // 62^8 < 2^48: eight digits always fit the key's six bytes.
        millis = millis * 62 + u64::from(digit);
    }
    Some(millis)
}

/// Encodes `millis` (below 62^8) as the 8-character time prefix.
pub(crate) fn encode_time_prefix(mut millis: u64, out: &mut String) {
    let mut digits = [0u8; TIME_PREFIX_LEN];
    for d in digits.iter_mut().rev() {
        *d = TIME_PREFIX_ALPHABET[(millis % 62) as usize];
        millis /= 62;
    }
    out.extend(digits.iter().map(|&b| char::from(b)));
}

/// Compares two byte strings in constant time (for equal lengths; the length itself is
/// not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    #[test]
    fn other_shapes_keep_the_plain_digest() {
        for token in [
            "abc",
            "",
            // Right length but no `_` at position 8, a `_` but a non-alphanumeric prefix,
            // and a prefix with a random part that is too short.
            "0000001Aa_bcdefghijklmnopqrstuvwxyzABCDE",
            "0000-01A_abcdefghijklmnopqrstuvwxyzABCDE",
            "0000001A_abcdefghijklmnopqrstuvwxyz",
        ] {
            assert_eq!(token_key(token), sha256(token), "{token:?}");
            assert_eq!(token_checksum(token), hex::encode(sha256(token)));
        }
    }

    #[test]
    fn time_ordered_tokens_carry_their_time_then_their_digest() {
        let mut prefix = String::new();
        let millis = 1_795_000_000_123u64;
        encode_time_prefix(millis, &mut prefix);
        let token = format!("{prefix}_{}", "x".repeat(40));
        let key = token_key(&token);
        assert_eq!(&key[..6], &millis.to_be_bytes()[2..]);
        assert_eq!(&key[6..], &sha256(&token)[..26]);
        assert_eq!(time_prefix(&token), Some(millis));
    }

    #[test]
    fn keys_sort_by_time_whatever_the_random_part() {
        let mut last = None;
        for (millis, random) in [
            (0u64, 'z'),
            (1, 'a'),
            (61, 'Z'),
            (62, '0'),
            (3_843, 'z'),
            (1_795_000_000_000, 'a'),
            (62u64.pow(8) - 1, '0'),
        ] {
            let mut token = String::new();
            encode_time_prefix(millis, &mut token);
            token.push('_');
            token.extend(std::iter::repeat_n(random, 27));
            let key = token_key(&token);
            assert_eq!(time_prefix(&token), Some(millis));
            if let Some(last) = last {
                assert!(key > last, "{millis}");
            }
            last = Some(key);
        }
    }
}
