//! RFC 7636 Proof Key for Code Exchange.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::crypto::constant_time_eq;
use crate::model::CodeChallengeMethod;

/// RFC 7636 §4.1/§4.2: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A code challenge has the verifier's syntax (an S256 challenge is 43 characters).
pub fn is_valid_challenge(c: &str) -> bool {
    is_valid_verifier(c)
}

/// `BASE64URL(SHA256(verifier))`.
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` answers `challenge` under `method`, compared in constant time.
pub fn verify(method: CodeChallengeMethod, challenge: &str, verifier: &str) -> bool {
    if !is_valid_verifier(verifier) {
        return false;
    }
    match method {
        CodeChallengeMethod::S256 => {
            constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes())
        }
        CodeChallengeMethod::Plain => constant_time_eq(verifier.as_bytes(), challenge.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            s256(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(verify(
            CodeChallengeMethod::S256,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            verifier
        ));
        assert!(!verify(
            CodeChallengeMethod::S256,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN",
            verifier
        ));
        assert!(verify(CodeChallengeMethod::Plain, verifier, verifier));
        assert!(
            !verify(CodeChallengeMethod::Plain, "short", "short"),
            "too short"
        );
    }
}
