//! # tower-oauth-toolkit
//!
//! An OAuth 2.0 + OpenID Connect toolkit for [tower], hyper and axum services, with the
//! settings, models and semantics of [Django OAuth Toolkit] 3.4 ("DOT"), so that a DOT user
//! finds everything where they expect it — and, where DOT is weaker than the RFCs or
//! RFC 9700 (OAuth 2.0 Security Best Current Practice), the RFC behaviour.
//!
//! The crate has two halves:
//!
//! * the **authorization server** (feature `provider`): [`provider::Provider`] gives DOT's
//!   endpoints (authorize with login and consent, token, revocation, introspection, and
//!   OpenID Connect) as an axum router, over the [`store`] — SQLite (the embedded default)
//!   or PostgreSQL — with DOT's [`settings`]; `oauth-toolkit serve` runs it standalone;
//! * the **resource server** (feature `resource`): tower layers that check bearer tokens.
//!
//! ## Quick start: storage
//!
//! ```
//! use tower_oauth_toolkit::crypto::token_checksum;
//! use tower_oauth_toolkit::model::{ClientType, GrantType, NewAccessToken, NewApplication, Timestamp};
//! use tower_oauth_toolkit::store::{memory::MemoryStore, IssueTokens, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::new();
//! let app = store
//!     .create_application(NewApplication::new(
//!         "my-client-id",
//!         ClientType::Confidential,
//!         GrantType::ClientCredentials,
//!     ))
//!     .await?;
//! let now = Timestamp::now();
//! store
//!     .issue_tokens(IssueTokens {
//!         access: NewAccessToken {
//!             // Only the SHA-256 checksum of a token is ever stored.
//!             token_checksum: token_checksum("the-token-value"),
//!             application_id: Some(app.id),
//!             user_id: None,
//!             source_refresh_token_id: None,
//!             id_token_id: None,
//!             grant_id: None,
//!             expires: now.add_secs(36000),
//!             scope: "read write".into(),
//!             created: now,
//!             // RFC 8707 resources (the token's audience); none here.
//!             resource: String::new(),
//!         },
//!         refresh: None,
//!         id_token: None,
//!     })
//!     .await?;
//! let found = store.find_access_token(&token_checksum("the-token-value")).await?;
//! assert_eq!(found.unwrap().token.scope, "read write");
//! # Ok(()) }
//! ```
//!
//! With the `sqlite` or `postgres` feature, `store::sql::SqlStore::connect` opens a
//! database by URL (`sqlite://oauth-toolkit.db`, `postgres://…`) and applies the migrations.
//!
//! [tower]: https://docs.rs/tower
//! [Django OAuth Toolkit]: https://django-oauth-toolkit.readthedocs.io/
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(test),
    warn(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)
)]

#[cfg(feature = "provider")]
pub mod application;
pub mod cleanup;
#[cfg(feature = "cli")]
pub mod cli;
pub mod crypto;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod generators;
#[cfg(feature = "provider")]
pub mod hashers;
pub mod model;
#[cfg(feature = "provider")]
pub mod provider;
#[cfg(feature = "resource")]
pub mod resource;
pub mod scope;
pub mod settings;
pub mod store;
pub mod validators;
