//! OpenID Connect RP-Initiated Logout (`/o/logout/`) over real HTTP on loopback
//! (`axum::serve` on 127.0.0.1:0, the provider nested at `/o`), on an SQLite file, driven
//! by reqwest with a cookie jar and redirects off. ID tokens are minted here with the
//! provider's own keys (RS256) or a client secret (HS256) and stored with an access token,
//! so that the tokens a logout deletes — and those it keeps — can be observed.
#![cfg(all(feature = "provider", feature = "sqlite"))]

mod common;

use common::html::{hidden, hidden_fields};

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::{StatusCode, Url};
use serde_json::{json, Value};
use tower_oauth_toolkit::crypto::token_checksum;
use tower_oauth_toolkit::model::*;
use tower_oauth_toolkit::provider::oidc::keys::SigningKeys;
use tower_oauth_toolkit::provider::{Provider, StoreUsers};
use tower_oauth_toolkit::settings::{Secret, Settings};
use tower_oauth_toolkit::store::sql::SqlStore;
use tower_oauth_toolkit::store::{IssueTokens, Store};

const KEY_1: &str = include_str!("fixtures/rsa_private.pem");
const KEY_2: &str = include_str!("fixtures/rsa_private_2.pem");
const CB: &str = "https://rp.example/cb";
/// The post-logout redirect URI of the `rp` client.
const BYE: &str = "https://rp.example/bye";
/// The post-logout redirect URI of the `other` client.
const OTHER_BYE: &str = "https://other.example/bye";
/// The post-logout redirect URI of the `hs` client.
const HS_BYE: &str = "https://hs.example/bye";
/// The unhashed secret of the HS256 client `hs`.
const HS_SECRET: &str = "hs256-client-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
/// What the HS256 client `hs-hashed` has stored: a hash, not a usable key.
const HASHED: &str = "pbkdf2_sha256$720000$salt$c29tZWhhc2hlZHZhbHVlZm9ydGhlc2VjcmV0";
const PASSWORD: &str = "alice-password-1";
/// RFC 7636 Appendix B.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Server {
    base: Url,
    store: Arc<SqlStore>,
    http: reqwest::Client,
    keys: SigningKeys,
    alice: i64,
    bob: i64,
    _dir: tempfile::TempDir,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn now() -> i64 {
    Timestamp::now().unix()
}

/// A server with OIDC and RP-initiated logout on, `configure` applied last.
async fn start(configure: impl FnOnce(&mut Settings)) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = Settings::default();
    settings.oidc_enabled = true;
    settings.oidc_rp_initiated_logout_enabled = true;
    settings.oidc_rsa_private_key = Secret::new(KEY_1);
    settings.oidc_iss_endpoint = format!("http://{addr}/o");
    configure(&mut settings);
    let keys = SigningKeys::from_settings(&settings)
        .unwrap()
        .expect("a key is configured");

    let (store, dir) = common::sqlite_store().await;
    let store = Arc::new(store);
    let app = |id: &str, client_type: ClientType, logout_uris: &str, algorithm: Algorithm| {
        let mut a = NewApplication::new(id, client_type, GrantType::AuthorizationCode);
        a.redirect_uris = CB.into();
        a.post_logout_redirect_uris = logout_uris.into();
        a.name = format!("The {id} application");
        a.algorithm = algorithm;
        a
    };
    let mut hs = app("hs", ClientType::Confidential, HS_BYE, Algorithm::Hs256);
    hs.client_secret = HS_SECRET.into();
    hs.hash_client_secret = false;
    let mut hs_hashed = app(
        "hs-hashed",
        ClientType::Confidential,
        HS_BYE,
        Algorithm::Hs256,
    );
    hs_hashed.client_secret = HASHED.into();
    let mut confidential_http = app(
        "conf-http",
        ClientType::Confidential,
        "http://rp.example/bye",
        Algorithm::Rs256,
    );
    confidential_http.client_secret = HASHED.into();
    for a in [
        app("rp", ClientType::Public, BYE, Algorithm::Rs256),
        app("other", ClientType::Public, OTHER_BYE, Algorithm::Rs256),
        app(
            "public-http",
            ClientType::Public,
            "http://rp.example/bye",
            Algorithm::Rs256,
        ),
        confidential_http,
        hs,
        hs_hashed,
    ] {
        store.create_application(a).await.unwrap();
    }
    let users = StoreUsers::new(store.clone());
    let alice = users.create_user("alice", "", PASSWORD).await.unwrap().id;
    let bob = users
        .create_user("bob", "", "bob-password-1")
        .await
        .unwrap()
        .id;
    let provider = Provider::builder(settings, store.clone(), users)
        .secret_key(vec![7; 32])
        .build()
        .unwrap();
    let router = axum::Router::new().nest("/o", provider.router());
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Server {
        base: Url::parse(&format!("http://{addr}/o/")).unwrap(),
        store,
        http: client(),
        keys,
        alice,
        bob,
        _dir: dir,
    }
}

/// Claims of an ID token for `user` and `client_id`, expiring `exp_in` seconds from now.
fn claims(iss: &str, user: i64, client_id: &str, exp_in: i64) -> Value {
    json!({
        "iss": iss,
        "sub": user.to_string(),
        "aud": client_id,
        "iat": now(),
        "exp": now() + exp_in,
        "auth_time": now(),
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

fn hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// `token` with its payload replaced by `claims` (the signature kept).
fn with_payload(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

/// `token` with one character in the middle of its signature changed.
fn flip_signature(token: &str) -> String {
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    let i = sig.len() / 2;
    sig[i] = if sig[i] == 'A' { 'B' } else { 'A' };
    format!("{head}.{}", sig.into_iter().collect::<String>())
}

impl Server {
    fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap()
    }

    fn iss(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    fn logout_url(&self, pairs: &[(&str, &str)]) -> Url {
        let mut u = self.url("logout/");
        u.query_pairs_mut().extend_pairs(pairs);
        u
    }

    async fn get(&self, url: Url) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    async fn post(&self, url: Url, form: &[(String, String)]) -> reqwest::Response {
        self.http.post(url).form(form).send().await.unwrap()
    }

    /// An RS256 ID token signed with the provider's active key.
    fn rs256(&self, claims: &Value) -> String {
        self.keys.sign("JWT", claims).unwrap()
    }

    /// A valid RS256 ID token of `user` for `client_id`.
    fn id_token(&self, user: i64, client_id: &str) -> (String, String) {
        let c = claims(&self.iss(), user, client_id, 600);
        let jti = c["jti"].as_str().unwrap().to_owned();
        (self.rs256(&c), jti)
    }

    /// Stores an access token of `user` for `client_id`, with the ID token `jti` if
    /// given; returns the access token.
    async fn issue(&self, user: i64, client_id: &str, jti: Option<&str>) -> String {
        let app = self
            .store
            .find_application_by_client_id(client_id)
            .await
            .unwrap()
            .unwrap();
        let token = uuid::Uuid::new_v4().to_string();
        let created = Timestamp::now();
        let expires = created.add_secs(3600);
        self.store
            .issue_tokens(IssueTokens {
                access: NewAccessToken {
                    resource: String::new(),
                    token_checksum: token_checksum(&token),
                    application_id: Some(app.id),
                    user_id: Some(user),
                    source_refresh_token_id: None,
                    id_token_id: None,
                    grant_id: None,
                    expires,
                    scope: "openid read".into(),
                    created,
                },
                refresh: None,
                id_token: jti.map(|jti| NewIdToken {
                    user_id: Some(user),
                    jti: jti.to_owned(),
                    application_id: Some(app.id),
                    expires,
                    scope: "openid read".into(),
                    created,
                }),
            })
            .await
            .unwrap();
        token
    }

    async fn alive(&self, token: &str) -> bool {
        self.store
            .find_access_token(&token_checksum(token))
            .await
            .unwrap()
            .is_some()
    }

    async fn id_token_stored(&self, jti: &str) -> bool {
        self.store.find_id_token(jti).await.unwrap().is_some()
    }

    /// Logs `username` in through the login page.
    async fn login(&self, username: &str, password: &str) {
        let page = self.get(self.url("login/")).await.text().await.unwrap();
        let csrf = hidden(&page, "csrfmiddlewaretoken").expect("csrf field");
        let res = self
            .post(
                self.url("login/"),
                &owned(&[
                    ("username", username),
                    ("password", password),
                    ("csrfmiddlewaretoken", &csrf),
                ]),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.text().await.unwrap();
        assert!(body.contains("signed in as"), "{body}");
        assert!(self.logged_in().await);
    }

    async fn login_alice(&self) {
        self.login("alice", PASSWORD).await;
    }

    /// Whether the provider session is alive: an authorization request shows the
    /// consent page rather than sending the browser to the login page.
    async fn logged_in(&self) -> bool {
        let mut u = self.url("authorize/");
        u.query_pairs_mut().extend_pairs([
            ("response_type", "code"),
            ("client_id", "rp"),
            ("redirect_uri", CB),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]);
        let res = self.get(u).await;
        match res.status() {
            StatusCode::OK => true,
            StatusCode::FOUND => {
                let loc = res.headers()[LOCATION].to_str().unwrap().to_owned();
                assert!(loc.contains("login/"), "{loc}");
                false
            }
            other => panic!("authorize answered {other}"),
        }
    }
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn location(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
}

fn clears_session(res: &reqwest::Response) -> bool {
    res.headers().get_all(SET_COOKIE).iter().any(|v| {
        let v = v.to_str().unwrap();
        v.starts_with("oauth_toolkit_session=;") && v.contains("Max-Age=0")
    })
}

/// Asserts a 400 page without redirect; returns the body.
async fn assert_refused(res: reqwest::Response, what: &str) -> String {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{what}");
    assert!(location(&res).is_none(), "{what}: no redirect");
    assert!(!clears_session(&res), "{what}: session kept");
    let body = res.text().await.unwrap();
    assert!(body.contains("invalid_request"), "{what}: {body}");
    body
}

fn prompt_off(s: &mut Settings) {
    s.oidc_rp_initiated_logout_always_prompt = false;
}

#[tokio::test]
async fn disabled_endpoint_is_404() {
    for configure in [
        (|s: &mut Settings| s.oidc_rp_initiated_logout_enabled = false) as fn(&mut Settings),
        |s: &mut Settings| s.oidc_enabled = false,
    ] {
        let srv = start(configure).await;
        let (hint, _) = srv.id_token(srv.alice, "rp");
        let res = srv
            .get(srv.logout_url(&[("id_token_hint", &hint), ("post_logout_redirect_uri", BYE)]))
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert!(location(&res).is_none());
        let res = srv
            .post(srv.url("logout/"), &owned(&[("allow", "yes")]))
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    // Enabled: the same URL answers.
    let srv = start(|_| {}).await;
    assert_eq!(srv.get(srv.url("logout/")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn valid_hint_without_prompt_logs_out_deletes_the_clients_tokens_and_redirects() {
    let srv = start(prompt_off).await;
    srv.login_alice().await;
    let (hint, jti) = srv.id_token(srv.alice, "rp");
    let rp_token = srv.issue(srv.alice, "rp", Some(&jti)).await;
    let rp_token_2 = srv.issue(srv.alice, "rp", None).await;
    let other_token = srv.issue(srv.alice, "other", None).await;
    let bobs_token = srv.issue(srv.bob, "rp", None).await;

    let res = srv
        .get(srv.logout_url(&[
            ("id_token_hint", &hint),
            ("post_logout_redirect_uri", BYE),
            ("state", "st ate/1"),
            ("ui_locales", "fr"),
        ]))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(
        location(&res).as_deref(),
        Some("https://rp.example/bye?state=st+ate%2F1")
    );
    assert!(clears_session(&res), "the session cookie is cleared");
    assert!(!srv.logged_in().await, "the session has ended");

    // The user's tokens for the hint's client are gone, ID token included.
    assert!(!srv.alive(&rp_token).await);
    assert!(!srv.alive(&rp_token_2).await);
    assert!(!srv.id_token_stored(&jti).await);
    // Another client's token and another user's token are kept.
    assert!(srv.alive(&other_token).await);
    assert!(srv.alive(&bobs_token).await);

    // The same request again (its ID token row is gone): still accepted.
    let res = srv
        .get(srv.logout_url(&[("id_token_hint", &hint), ("post_logout_redirect_uri", BYE)]))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(location(&res).as_deref(), Some(BYE), "no state, no query");
}

#[tokio::test]
async fn delete_tokens_off_keeps_tokens() {
    let srv = start(|s| {
        prompt_off(s);
        s.oidc_rp_initiated_logout_delete_tokens = false;
    })
    .await;
    srv.login_alice().await;
    let (hint, jti) = srv.id_token(srv.alice, "rp");
    let token = srv.issue(srv.alice, "rp", Some(&jti)).await;
    let res = srv.get(srv.logout_url(&[("id_token_hint", &hint)])).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(body.contains("You are signed out"), "{body}");
    assert!(!srv.logged_in().await);
    assert!(srv.alive(&token).await);
    assert!(srv.id_token_stored(&jti).await);
}

#[tokio::test]
async fn unregistered_post_logout_redirect_uris_are_refused_and_never_followed() {
    let srv = start(prompt_off).await;
    srv.login_alice().await;
    let (hint, jti) = srv.id_token(srv.alice, "rp");
    let token = srv.issue(srv.alice, "rp", Some(&jti)).await;
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "foreign",
            vec![
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", "https://evil.example/bye"),
                ("state", "s"),
            ],
        ),
        (
            "another client's",
            vec![
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", OTHER_BYE),
            ],
        ),
        (
            "prefix",
            vec![
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", "https://rp.example/bye/more"),
            ],
        ),
        (
            "extra query",
            vec![
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", "https://rp.example/bye?x=1"),
            ],
        ),
        ("no client", vec![("post_logout_redirect_uri", BYE)]),
        (
            "unknown client",
            vec![("client_id", "nope"), ("post_logout_redirect_uri", BYE)],
        ),
        (
            "client_id differs from the hint's",
            vec![
                ("id_token_hint", &hint),
                ("client_id", "other"),
                ("post_logout_redirect_uri", BYE),
            ],
        ),
        (
            "client_id differs from the hint's, no redirect",
            vec![("id_token_hint", &hint), ("client_id", "other")],
        ),
        (
            "repeated parameter",
            vec![
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", BYE),
                ("post_logout_redirect_uri", "https://evil.example/"),
            ],
        ),
    ];
    for (what, pairs) in &cases {
        let res = srv.get(srv.logout_url(pairs)).await;
        assert_refused(res, what).await;
        // A relying party's POST is checked the same way.
        let res = srv.post(srv.url("logout/"), &owned(pairs)).await;
        assert_refused(res, what).await;
    }
    assert!(srv.logged_in().await, "still logged in");
    assert!(srv.alive(&token).await, "tokens kept");

    // The matching client_id is fine.
    let res = srv
        .get(srv.logout_url(&[
            ("id_token_hint", &hint),
            ("client_id", "rp"),
            ("post_logout_redirect_uri", BYE),
        ]))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(location(&res).as_deref(), Some(BYE));
}

#[tokio::test]
async fn bad_hints_are_refused() {
    let srv = start(prompt_off).await;
    srv.login_alice().await;
    let iss = srv.iss();
    let (hint, jti) = srv.id_token(srv.alice, "rp");
    let token = srv.issue(srv.alice, "rp", Some(&jti)).await;

    let mut as_bob = claims(&iss, srv.bob, "rp", 600);
    as_bob["jti"] = json!(jti);
    let wrong_iss = claims("https://evil.example/o", srv.alice, "rp", 600);
    let unknown_client = claims(&iss, srv.alice, "nope", 600);
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&iss, srv.alice, "rp", 600)).unwrap())
    );
    // Signed with a key the provider does not have.
    let other_key = {
        let mut s = Settings::default();
        s.oidc_rsa_private_key = Secret::new(KEY_2);
        SigningKeys::from_settings(&s)
            .unwrap()
            .unwrap()
            .sign("JWT", &claims(&iss, srv.alice, "rp", 600))
            .unwrap()
    };
    // Signed by us, but its stored ID token is another user's.
    let mut stolen_jti = claims(&iss, srv.bob, "rp", 600);
    stolen_jti["jti"] = json!(jti);
    // RS256 client, HS256 token keyed with the public key (algorithm confusion).
    let public_pem = include_str!("fixtures/rsa_public.pem");
    let confusion = hs256(&claims(&iss, srv.alice, "rp", 600), public_pem);
    // Not a user id.
    let mut odd_sub = claims(&iss, srv.alice, "rp", 600);
    odd_sub["sub"] = json!("alice");

    let cases: Vec<(&str, String)> = vec![
        ("signature changed", flip_signature(&hint)),
        (
            "payload changed",
            with_payload(&hint, &claims(&iss, srv.alice, "other", 600)),
        ),
        ("payload changed to bob", with_payload(&hint, &as_bob)),
        ("wrong issuer", srv.rs256(&wrong_iss)),
        ("unknown client", srv.rs256(&unknown_client)),
        ("alg none", alg_none),
        ("unknown key", other_key),
        ("stored ID token of another user", srv.rs256(&stolen_jti)),
        ("HS256 with the RSA public key", confusion),
        ("sub is not a user id", srv.rs256(&odd_sub)),
        ("garbage", "not.a.jwt".into()),
        ("one part", "abc".into()),
        ("huge", "a".repeat(20_000)),
    ];
    for (what, bad) in &cases {
        let res = srv
            .get(srv.logout_url(&[("id_token_hint", bad), ("post_logout_redirect_uri", BYE)]))
            .await;
        let body = assert_refused(res, what).await;
        assert!(body.contains("id_token_hint"), "{what}: {body}");
    }
    assert!(srv.logged_in().await, "still logged in");
    assert!(srv.alive(&token).await, "tokens kept");
    assert!(srv.id_token_stored(&jti).await);

    // The untouched hint works.
    let res = srv
        .get(srv.logout_url(&[("id_token_hint", &hint), ("post_logout_redirect_uri", BYE)]))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(!srv.logged_in().await);
}

#[tokio::test]
async fn expired_hints_are_accepted_by_default() {
    let srv = start(prompt_off).await;
    srv.login_alice().await;
    let expired = srv.rs256(&claims(&srv.iss(), srv.alice, "rp", -3600));
    let res = srv
        .get(srv.logout_url(&[
            ("id_token_hint", &expired),
            ("post_logout_redirect_uri", BYE),
        ]))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(location(&res).as_deref(), Some(BYE));
    assert!(!srv.logged_in().await);
}

#[tokio::test]
async fn expired_hints_are_refused_without_accept_expired_tokens() {
    let srv = start(|s| {
        prompt_off(s);
        s.oidc_rp_initiated_logout_accept_expired_tokens = false;
    })
    .await;
    srv.login_alice().await;
    let expired = srv.rs256(&claims(&srv.iss(), srv.alice, "rp", -3600));
    let res = srv
        .get(srv.logout_url(&[
            ("id_token_hint", &expired),
            ("post_logout_redirect_uri", BYE),
        ]))
        .await;
    assert_refused(res, "expired").await;
    assert!(srv.logged_in().await);
    // A live one still works.
    let (hint, _) = srv.id_token(srv.alice, "rp");
    let res = srv
        .get(srv.logout_url(&[("id_token_hint", &hint), ("post_logout_redirect_uri", BYE)]))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(!srv.logged_in().await);
}

#[tokio::test]
async fn always_prompt_asks_and_the_form_needs_csrf() {
    let srv = start(|_| {}).await;
    srv.login_alice().await;
    let (hint, jti) = srv.id_token(srv.alice, "rp");
    let token = srv.issue(srv.alice, "rp", Some(&jti)).await;
    let request = [
        ("id_token_hint", hint.as_str()),
        ("post_logout_redirect_uri", BYE),
        ("state", "xyz"),
    ];

    let res = srv.get(srv.logout_url(&request)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(location(&res).is_none());
    assert!(!clears_session(&res));
    let page = res.text().await.unwrap();
    assert!(page.contains("Sign out?"), "{page}");
    assert!(page.contains("The rp application"), "{page}");
    assert!(page.contains(r#"name="allow""#), "{page}");
    assert!(page.contains(r#"name="deny""#), "{page}");
    let fields = hidden_fields(&page);
    let csrf = hidden(&page, "csrfmiddlewaretoken").expect("csrf field");
    assert!(!csrf.is_empty());
    for (k, v) in request {
        assert!(
            fields.iter().any(|(fk, fv)| fk == k && fv == v),
            "{k} carried: {fields:?}"
        );
    }
    assert!(srv.logged_in().await, "asking does not log out");
    assert!(srv.alive(&token).await);

    let form = |extra: &[(&str, &str)]| {
        let mut f: Vec<(String, String)> = fields
            .iter()
            .filter(|(k, _)| k != "csrfmiddlewaretoken")
            .cloned()
            .collect();
        f.extend(owned(extra));
        f
    };
    // No CSRF token, a wrong one, one from the login page: 403, nothing changes.
    let login_page = srv.get(srv.url("login/")).await.text().await.unwrap();
    let login_csrf = hidden(&login_page, "csrfmiddlewaretoken").unwrap();
    for bad in [
        form(&[("allow", "Sign out")]),
        form(&[("allow", "Sign out"), ("csrfmiddlewaretoken", "forged")]),
        form(&[("allow", "Sign out"), ("csrfmiddlewaretoken", &login_csrf)]),
        form(&[("csrfmiddlewaretoken", "forged")]),
    ] {
        let res = srv.post(srv.url("logout/"), &bad).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(location(&res).is_none());
        assert!(!clears_session(&res));
    }
    assert!(srv.logged_in().await);
    assert!(srv.alive(&token).await);

    // A relying party's POST (no form fields) is asked like a GET.
    let res = srv.post(srv.url("logout/"), &owned(&request)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("Sign out?"));
    assert!(srv.logged_in().await);

    // Cancel: still signed in.
    let res = srv
        .post(
            srv.url("logout/"),
            &form(&[("deny", "Cancel"), ("csrfmiddlewaretoken", &csrf)]),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(location(&res).is_none());
    assert!(res.text().await.unwrap().contains("logout_denied"));
    assert!(srv.logged_in().await);
    assert!(srv.alive(&token).await);

    // CSRF token and allow: logged out, redirected with state.
    let res = srv
        .post(
            srv.url("logout/"),
            &form(&[("allow", "Sign out"), ("csrfmiddlewaretoken", &csrf)]),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&res).as_deref(),
        Some("https://rp.example/bye?state=xyz")
    );
    assert!(clears_session(&res));
    assert!(!srv.logged_in().await);
    assert!(!srv.alive(&token).await);
    assert!(!srv.id_token_stored(&jti).await);
}

#[tokio::test]
async fn a_hint_for_another_user_or_no_hint_asks_even_with_prompt_off() {
    let srv = start(prompt_off).await;
    srv.login_alice().await;
    let (bobs_hint, _) = srv.id_token(srv.bob, "rp");
    let cases: [&[(&str, &str)]; 2] = [
        &[
            ("id_token_hint", &bobs_hint),
            ("post_logout_redirect_uri", BYE),
        ],
        &[("client_id", "rp"), ("post_logout_redirect_uri", BYE)],
    ];
    for pairs in cases {
        let res = srv.get(srv.logout_url(pairs)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.text().await.unwrap().contains("Sign out?"));
        assert!(srv.logged_in().await);
    }

    // Confirming the client_id-only request: alice's tokens for rp go, others stay.
    let alices = srv.issue(srv.alice, "rp", None).await;
    let alices_other = srv.issue(srv.alice, "other", None).await;
    let page = srv
        .get(srv.logout_url(&[("client_id", "rp"), ("post_logout_redirect_uri", BYE)]))
        .await
        .text()
        .await
        .unwrap();
    let mut form = hidden_fields(&page);
    form.push(("allow".into(), "Sign out".into()));
    let res = srv.post(srv.url("logout/"), &form).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res).as_deref(), Some(BYE));
    assert!(!srv.logged_in().await);
    assert!(!srv.alive(&alices).await);
    assert!(srv.alive(&alices_other).await);
}

#[tokio::test]
async fn nobody_logged_in() {
    let srv = start(|_| {}).await;
    // No parameters: the signed-out page.
    let res = srv.get(srv.url("logout/")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("You are signed out"));
    // A valid hint: nothing to confirm (DOT); the hint user's tokens for the client go.
    let (hint, jti) = srv.id_token(srv.alice, "rp");
    let token = srv.issue(srv.alice, "rp", Some(&jti)).await;
    let res = srv
        .get(srv.logout_url(&[
            ("id_token_hint", &hint),
            ("post_logout_redirect_uri", BYE),
            ("state", "s"),
        ]))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(
        location(&res).as_deref(),
        Some("https://rp.example/bye?state=s")
    );
    assert!(!srv.alive(&token).await);
}

#[tokio::test]
async fn hs256_hints_use_the_unhashed_client_secret() {
    let srv = start(prompt_off).await;
    srv.login_alice().await;
    let iss = srv.iss();
    let token = srv.issue(srv.alice, "hs", None).await;
    let rp_token = srv.issue(srv.alice, "rp", None).await;

    // Wrong secret; a client whose stored secret is a hash (signing with the hash).
    for (what, bad) in [
        (
            "wrong secret",
            hs256(
                &claims(&iss, srv.alice, "hs", 600),
                "not-the-secret-0123456789",
            ),
        ),
        (
            "hashed secret",
            hs256(&claims(&iss, srv.alice, "hs-hashed", 600), HASHED),
        ),
        (
            "RS256 for an HS256 client",
            srv.rs256(&claims(&iss, srv.alice, "hs", 600)),
        ),
        (
            "payload changed",
            with_payload(
                &hs256(&claims(&iss, srv.alice, "hs", 600), HS_SECRET),
                &claims(&iss, srv.bob, "hs", 600),
            ),
        ),
    ] {
        let res = srv
            .get(srv.logout_url(&[
                ("id_token_hint", &bad),
                ("post_logout_redirect_uri", HS_BYE),
            ]))
            .await;
        assert_refused(res, what).await;
    }
    assert!(srv.logged_in().await);

    let hint = hs256(&claims(&iss, srv.alice, "hs", 600), HS_SECRET);
    let res = srv
        .get(srv.logout_url(&[
            ("id_token_hint", &hint),
            ("post_logout_redirect_uri", HS_BYE),
            ("state", "h"),
        ]))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(
        location(&res).as_deref(),
        Some("https://hs.example/bye?state=h")
    );
    assert!(!srv.logged_in().await);
    assert!(!srv.alive(&token).await);
    assert!(srv.alive(&rp_token).await);
}

#[tokio::test]
async fn hints_signed_with_an_inactive_key_are_accepted() {
    let srv = start(|s| {
        prompt_off(s);
        s.oidc_rsa_private_keys_inactive = vec![Secret::new(KEY_2)];
    })
    .await;
    srv.login_alice().await;
    let old = {
        let mut s = Settings::default();
        s.oidc_rsa_private_key = Secret::new(KEY_2);
        SigningKeys::from_settings(&s)
            .unwrap()
            .unwrap()
            .sign("JWT", &claims(&srv.iss(), srv.alice, "rp", 600))
            .unwrap()
    };
    let res = srv
        .get(srv.logout_url(&[("id_token_hint", &old), ("post_logout_redirect_uri", BYE)]))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(!srv.logged_in().await);
}

#[tokio::test]
async fn strict_redirect_uris_allow_http_only_for_confidential_clients() {
    for strict in [false, true] {
        let srv = start(|s| s.oidc_rp_initiated_logout_strict_redirect_uris = strict).await;
        let public = srv
            .get(srv.logout_url(&[
                ("client_id", "public-http"),
                ("post_logout_redirect_uri", "http://rp.example/bye"),
            ]))
            .await;
        if strict {
            assert_refused(public, "strict, public, http").await;
        } else {
            assert_eq!(public.status(), StatusCode::FOUND);
            assert_eq!(location(&public).as_deref(), Some("http://rp.example/bye"));
        }
        let confidential = srv
            .get(srv.logout_url(&[
                ("client_id", "conf-http"),
                ("post_logout_redirect_uri", "http://rp.example/bye"),
            ]))
            .await;
        assert_eq!(confidential.status(), StatusCode::FOUND, "strict={strict}");
        // https is fine either way.
        let https = srv
            .get(srv.logout_url(&[("client_id", "rp"), ("post_logout_redirect_uri", BYE)]))
            .await;
        assert_eq!(https.status(), StatusCode::FOUND);
    }
}
