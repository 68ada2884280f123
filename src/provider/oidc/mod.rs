//! The OpenID Connect parts of the provider. For now these are its RSA signing [`keys`]
//! (`OIDC_RSA_PRIVATE_KEY`, `OIDC_RSA_PRIVATE_KEYS_INACTIVE`), which sign RFC 9068 JWT
//! access tokens and feed the JWKS. ID tokens, discovery metadata, userinfo and
//! RP-initiated logout will be added here later.

pub mod keys;
