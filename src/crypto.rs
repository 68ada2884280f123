//! Small cryptographic helpers shared by both halves of the crate.
//!
//! * [`token_checksum`]: the SHA-256 hex digest under which every access token, refresh
//!   token, authorization code and device code is stored and looked up (DOT's
//!   `token_checksum`). The plaintext value is never stored.
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

/// The lower-case hex SHA-256 digest of a token (64 characters).
///
/// Tokens, codes and device codes are stored only in this form: a database leak does not
/// leak usable credentials, and lookups stay a single indexed equality.
pub fn token_checksum(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The raw SHA-256 digest of a token, for in-memory cache keys.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two byte strings in constant time (for equal lengths; the length itself is
/// not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
