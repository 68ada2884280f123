//! OpenID Connect with the `openidconnect` crate as the relying party, over real HTTP on
//! loopback: discovery, the code flow with PKCE and nonce, the ID token verified against
//! the JWKS (RS256) or the client secret (HS256), userinfo; key rotation; the metadata
//! documents and userinfo's RFC 6750 errors. On SQLite and PostgreSQL.
#![cfg(all(feature = "cli", feature = "postgres", feature = "jwt"))]

#[macro_use]
mod common;

use common::provider::*;

use std::sync::Arc;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenVerifier, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;
use tower_oauth_toolkit::provider::oidc::keys::SigningKeys;
use tower_oauth_toolkit::provider::{Provider, StoreUsers};
use tower_oauth_toolkit::settings::{Secret, Settings};
use tower_oauth_toolkit::store::Store;

const KEY_1: &str = include_str!("fixtures/rsa_private.pem");
const KEY_2: &str = include_str!("fixtures/rsa_private_2.pem");

fn oidc_settings(active: &str, inactive: &[&str]) -> Settings {
    let mut s = Settings::default();
    s.oidc_enabled = true;
    s.oidc_rsa_private_key = Secret::new(active);
    s.oidc_rsa_private_keys_inactive = inactive.iter().map(|k| Secret::new(*k)).collect();
    for (name, description) in [
        ("openid", "Sign you in"),
        ("profile", "Your user name"),
        ("email", "Your e-mail address"),
    ] {
        s.scopes.insert(name.into(), description.into());
    }
    s
}

/// What one relying-party login established, every check done by the openidconnect crate.
struct Login {
    id_token: String,
    subject: String,
    issuer: String,
    audience: String,
    auth_time: bool,
    at_hash_ok: bool,
}

/// Discovery, then the code flow (PKCE, nonce) for `client_id`, the ID token verified
/// (signature from the discovered JWKS or the client secret, iss, aud, exp, nonce), its
/// `at_hash` checked, and userinfo called: its `sub` must equal the ID token's.
async fn code_flow(srv: &Server, client_id: &str, secret: &str) -> Login {
    let http = srv.http_fn();
    let issuer = IssuerUrl::new(srv.url("/o")).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.into()),
        Some(ClientSecret::new(secret.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let callback = srv.browser_approve(url).await;
    let q: std::collections::HashMap<_, _> = callback.query_pairs().into_owned().collect();
    assert_eq!(q.get("state"), Some(state.secret()));
    let token = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = token.id_token().expect("an ID token for scope openid");
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("a valid ID token");
    let expected = match id_token.signing_key(&id_verifier) {
        Ok(key) => {
            AccessTokenHash::from_token(token.access_token(), id_token.signing_alg().unwrap(), key)
                .unwrap()
        }
        // HS256: no JWK to name the hash; OIDC Core §3.1.3.6 says SHA-256, left half.
        Err(_) => {
            use base64::Engine;
            use sha2::Digest;
            let digest = sha2::Sha256::digest(token.access_token().secret().as_bytes());
            AccessTokenHash::new(
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]),
            )
        }
    };
    let info: CoreUserInfoClaims = client
        .user_info(token.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(
        info.subject(),
        claims.subject(),
        "userinfo sub = ID token sub"
    );
    assert_eq!(
        info.preferred_username().map(|u| u.as_str()),
        Some("alice"),
        "profile claim"
    );
    Login {
        id_token: id_token.to_string(),
        subject: claims.subject().to_string(),
        issuer: claims.issuer().to_string(),
        audience: claims.audiences()[0].to_string(),
        auth_time: claims.auth_time().is_some(),
        at_hash_ok: claims.access_token_hash() == Some(&expected),
    }
}

fn kid_of(pem: &str) -> String {
    SigningKeys::from_settings(&oidc_settings(pem, &[]))
        .unwrap()
        .unwrap()
        .active()
        .kid()
        .to_owned()
}

async fn rs256_code_flow(db: Db) {
    let Some(srv) = start(db, oidc_settings(KEY_1, &[])).await else {
        return;
    };
    let login = code_flow(&srv, "oidc", "oidc-secret").await;
    assert_eq!(login.issuer, srv.url("/o"));
    assert_eq!(login.audience, "oidc");
    assert!(login.auth_time && login.at_hash_ok);
    let alice = srv
        .store
        .find_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(login.subject, alice.id.to_string());
    let header = jwt_header(&login.id_token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        header["kid"],
        kid_of(KEY_1),
        "kid is the RFC 7638 thumbprint"
    );
}

async fn hs256_code_flow(db: Db) {
    let Some(srv) = start(db, oidc_settings(KEY_1, &[])).await else {
        return;
    };
    let login = code_flow(&srv, "oidc-hs", "oidc-hs-secret-0123456789-0123456789").await;
    assert_eq!(jwt_header(&login.id_token)["alg"], "HS256");
    assert!(login.at_hash_ok);
}

/// A key moved to OIDC_RSA_PRIVATE_KEYS_INACTIVE stays in the JWKS: its ID tokens still
/// verify; new ones are signed by the new key.
async fn key_rotation(db: Db) {
    let Some(srv) = start(db, oidc_settings(KEY_1, &[])).await else {
        return;
    };
    let before = code_flow(&srv, "oidc", "oidc-secret").await;
    assert_eq!(jwt_header(&before.id_token)["kid"], kid_of(KEY_1));
    // The same database, a restarted provider with the new key active.
    let rotated = oidc_settings(KEY_2, &[KEY_1]);
    let store = srv.store.clone();
    let provider = Provider::builder(rotated, store.clone(), StoreUsers::new(store.clone()))
        .secret_key(vec![7; 32])
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metadata = tower_oauth_toolkit::cli::demo_api_metadata(provider.settings(), None).unwrap();
    let router = tower_oauth_toolkit::cli::serve_app(&provider, &metadata);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let srv2 = Server {
        base: format!("http://{addr}"),
        store: Arc::clone(&store),
        http: srv.http.clone(),
        _dir: None,
    };
    let jwks: Value = srv2
        .http
        .get(srv2.url("/o/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        [kid_of(KEY_2), kid_of(KEY_1)],
        "active first, then inactive"
    );
    // The old token verifies against the new server's JWKS.
    let set: openidconnect::core::CoreJsonWebKeySet = serde_json::from_value(jwks).unwrap();
    let old: openidconnect::core::CoreIdToken = before.id_token.parse().unwrap();
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new("oidc".into()),
        IssuerUrl::new(srv.url("/o")).unwrap(),
        set,
    )
    .require_issuer_match(false);
    old.claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .expect("a token of the retired key still verifies");
    let after = code_flow(&srv2, "oidc", "oidc-secret").await;
    assert_eq!(
        jwt_header(&after.id_token)["kid"],
        kid_of(KEY_2),
        "new key signs"
    );
}

/// The metadata documents, userinfo's RFC 6750 answers, and everything OIDC is 404 while
/// OIDC_ENABLED is off (RFC 8414 metadata excepted).
async fn metadata_and_userinfo_errors(db: Db) {
    let mut settings = oidc_settings(KEY_1, &[]);
    settings.oidc_rp_initiated_logout_enabled = true;
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let get = |path: &'static str| {
        let srv = &srv;
        async move { srv.http.get(srv.url(path)).send().await.unwrap() }
    };
    let res = get("/o/.well-known/openid-configuration").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    for field in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "scopes_supported",
        "claims_supported",
        "token_endpoint_auth_methods_supported",
        "code_challenge_methods_supported",
        "end_session_endpoint",
    ] {
        assert!(doc.get(field).is_some(), "{field} missing: {doc}");
    }
    assert_eq!(doc["issuer"], srv.url("/o"));
    assert_eq!(doc["end_session_endpoint"], srv.url("/o/logout/"));
    let res = get("/o/.well-known/jwks.json").await;
    assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
    let res = get("/o/.well-known/oauth-authorization-server").await;
    assert_eq!(res.status(), 200);
    let meta: Value = res.json().await.unwrap();
    assert_eq!(meta["token_endpoint"], srv.url("/o/token/"));

    // userinfo: no token 401 without error code; bad token 401 invalid_token; a token
    // without openid 403 insufficient_scope; CORS.
    let res = get("/o/userinfo/").await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"userinfo\""
    );
    let res = srv
        .http
        .get(srv.url("/o/userinfo/"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let (access, _) = srv.password_pair().await; // scope "read write": no openid
    let res = srv
        .http
        .post(srv.url("/o/userinfo/"))
        .bearer_auth(&access)
        .header("origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    assert_eq!(res.headers()["access-control-allow-origin"], "*");

    let Some(off) = start(db, Settings::default()).await else {
        return;
    };
    for path in [
        "/o/.well-known/openid-configuration",
        "/o/.well-known/jwks.json",
        "/o/userinfo/",
    ] {
        let res = off.http.get(off.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path} while OIDC is off");
    }
    let res = off
        .http
        .get(off.url("/o/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Without OIDC an openid scope gets no ID token (and an OIDC app no error).
    let (s, v, _) = off
        .token(
            Some(("pw", "pw-secret")),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-password-1"),
            ],
        )
        .await;
    assert_eq!(s, 200);
    assert!(v.get("id_token").is_none());
}

fn jwt_header(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// userinfo finds the token with the resource side's RFC 6750 parsing: the header or a
/// form body field; two Authorization headers, or a token sent both ways, are refused.
async fn userinfo_reads_tokens_as_the_resource_side_does(db: Db) {
    let Some(srv) = start(db, oidc_settings(KEY_1, &[])).await else {
        return;
    };
    let alice = srv
        .store
        .find_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let app = srv
        .store
        .find_application_by_client_id("oidc")
        .await
        .unwrap()
        .unwrap();
    let token = "userinfo-test-token-0123456789abcdef";
    let now = tower_oauth_toolkit::model::Timestamp::now();
    srv.store
        .issue_tokens(tower_oauth_toolkit::store::IssueTokens {
            access: tower_oauth_toolkit::model::NewAccessToken {
                resource: String::new(),
                token_checksum: tower_oauth_toolkit::crypto::token_checksum(token),
                application_id: Some(app.id),
                user_id: Some(alice.id),
                source_refresh_token_id: None,
                id_token_id: None,
                grant_id: None,
                expires: now.add_secs(600),
                scope: "openid".into(),
                created: now,
            },
            refresh: None,
            id_token: None,
        })
        .await
        .unwrap();
    let url = srv.url("/o/userinfo/");
    let form = "application/x-www-form-urlencoded";

    let res = srv.http.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["sub"], alice.id.to_string());

    let res = srv
        .http
        .post(&url)
        .header("content-type", form)
        .body(format!("access_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the form body field is read");

    let res = srv
        .http
        .post(&url)
        .bearer_auth(token)
        .header("content-type", form)
        .body(format!("access_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "a token sent two ways");
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_request"));

    let res = srv
        .http
        .get(&url)
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "two Authorization headers");
}

on_both!(
    rs256_code_flow,
    hs256_code_flow,
    key_rotation,
    metadata_and_userinfo_errors,
    userinfo_reads_tokens_as_the_resource_side_does,
);

/// A bad OIDC_RSA_PRIVATE_KEY stops the provider at start-up, naming the setting.
#[test]
fn a_bad_key_fails_at_start_up_with_the_setting_name() {
    let store = Arc::new(tower_oauth_toolkit::store::memory::MemoryStore::new());
    for (active, inactive, setting) in [
        (
            "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----",
            vec![],
            "OIDC_RSA_PRIVATE_KEY",
        ),
        (
            KEY_1,
            vec!["-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----"],
            "OIDC_RSA_PRIVATE_KEYS_INACTIVE",
        ),
    ] {
        let settings = oidc_settings(active, &inactive);
        let err = Provider::builder(settings, store.clone(), StoreUsers::new(store.clone()))
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains(setting), "{err}");
        assert!(
            !err.contains("garbage") && !err.contains("not a key"),
            "no key material: {err}"
        );
    }
}
