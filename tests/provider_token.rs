//! The provider's token, revocation and introspection endpoints over real HTTP on
//! loopback, driven by the `oauth2` crate where a client library would be used and by raw
//! requests for the error cases; the standalone server's demo API (`/api/hello`) checks
//! the tokens. Every test runs on an SQLite file and on PostgreSQL.
#![cfg(all(feature = "cli", feature = "postgres", feature = "jwt"))]

#[macro_use]
mod common;

use common::provider::*;

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, ClientSecret, ResourceOwnerPassword, ResourceOwnerUsername, Scope,
    StandardRevocableToken, TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use serde_json::Value;
use tower_oauth_toolkit::settings::Settings;
use tower_oauth_toolkit::store::Store;

// ---------------------------------------------------------------------------------------

async fn client_credentials_and_the_protected_api(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let http = srv.http_fn();
    let token = srv
        .oauth_client("cc", Some("cc-secret"))
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .expect("client credentials");
    assert!(
        token.refresh_token().is_none(),
        "no refresh token for client credentials"
    );
    assert_eq!(token.expires_in(), Some(Duration::from_secs(36000)));
    let (s, v) = srv.hello(token.access_token().secret()).await;
    assert_eq!((s, v["client_id"].as_str()), (200, Some("cc")));
    // A second request reuses the verified secret (same answer, no second Argon2 check).
    let again = srv
        .oauth_client("cc", Some("cc-secret"))
        .exchange_client_credentials()
        .add_scope(Scope::new("write".into()))
        .request_async(&http)
        .await
        .unwrap();
    let (s, v) = srv.hello(again.access_token().secret()).await;
    assert_eq!(s, 403, "write-only token on a read API: {v}");
    assert_eq!(srv.hello("not-a-token").await.0, 401);
    let res = srv.http.get(srv.url("/api/hello")).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

async fn password_refresh_rotation_revocation_introspection(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let http = srv.http_fn();
    let client = srv.oauth_client("pw", Some("pw-secret"));
    let first = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new("alice-password-1".into()),
        )
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .expect("password grant");
    let at1 = first.access_token().secret().clone();
    let rt1 = first.refresh_token().expect("refresh token").clone();
    let intro = client
        .introspect(first.access_token())
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(intro.active());
    assert_eq!(intro.username(), Some("alice"));
    assert_eq!(intro.client_id().map(|c| c.as_str()), Some("pw"));
    let (s, v) = srv.hello(&at1).await;
    assert_eq!((s, v["hello"].as_str()), (200, Some("alice")));

    // Refresh with rotation: a new pair; the old pair is dead.
    let second = client
        .exchange_refresh_token(&rt1)
        .request_async(&http)
        .await
        .expect("refresh");
    let rt2 = second.refresh_token().unwrap().clone();
    assert_ne!(rt2.secret(), rt1.secret());
    assert_eq!(
        srv.introspect(&at1).await,
        serde_json::json!({"active": false})
    );
    assert!(client
        .exchange_refresh_token(&rt1)
        .request_async(&http)
        .await
        .is_err());
    let at2 = second.access_token().secret().clone();
    assert_eq!(srv.introspect(&at2).await["active"], true);

    // Revoking the refresh token revokes its access token (RFC 7009, DOT 3.4.1). The
    // oauth2 crate refuses a revocation URL that is not https (RFC 7009 §2), so this one
    // request is made by hand, as the crate would (Basic auth, token_type_hint).
    assert!(matches!(
        client.revoke_token(StandardRevocableToken::RefreshToken(rt2.clone())),
        Err(oauth2::ConfigurationError::InsecureUrl(_))
    ));
    let (s, _, h) = srv
        .post(
            "/o/revoke_token/",
            Some(("pw", "pw-secret")),
            &[
                ("token", rt2.secret()),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(srv.introspect(&at2).await["active"], false);
    assert_eq!(srv.hello(&at2).await.0, 401);
    // Unknown token: 200 all the same.
    let (s, _, _) = srv
        .post(
            "/o/revoke_token/",
            Some(("pw", "pw-secret")),
            &[("token", "never-issued")],
        )
        .await;
    assert_eq!(s, 200);

    // A public client by client_id alone.
    let (s, v, _) = srv
        .token(
            None,
            &[
                ("grant_type", "password"),
                ("client_id", "pub-pw"),
                ("username", "alice"),
                ("password", "alice-password-1"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["scope"], "read write",
        "no scope asked: DEFAULT_SCOPES (__all__)"
    );
}

async fn token_endpoint_errors(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let cc = Some(("cc", "cc-secret"));
    let (s, v, h) = srv.token(cc, &[("grant_type", "foo")]).await;
    assert_eq!((s, err(&v)), (400, "unsupported_grant_type"));
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["pragma"], "no-cache");
    let (s, v, _) = srv.token(cc, &[]).await;
    assert_eq!((s, err(&v)), (400, "invalid_request"), "missing grant_type");
    let (s, v, _) = srv
        .token(
            cc,
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
        )
        .await;
    assert_eq!((s, err(&v)), (400, "invalid_request"), "repeated parameter");
    // invalid_client: unknown, wrong secret, confidential without secret.
    for basic in [Some(("nobody", "x")), Some(("cc", "wrong")), None] {
        let mut form = vec![("grant_type", "client_credentials")];
        if basic.is_none() {
            form.push(("client_id", "cc"));
        }
        let (s, v, h) = srv.token(basic, &form).await;
        assert_eq!((s, err(&v)), (401, "invalid_client"), "{basic:?}");
        assert!(
            h["www-authenticate"].to_str().unwrap().starts_with("Basic"),
            "{h:?}"
        );
    }
    let (s, v, _) = srv
        .token(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "cc"),
                ("client_secret", "cc-secret"),
            ],
        )
        .await;
    assert_eq!(s, 200, "secret in the body: {v}");
    let (s, v, _) = srv
        .token(
            cc,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "cc"),
                ("client_secret", "cc-secret"),
            ],
        )
        .await;
    assert_eq!(
        (s, err(&v)),
        (400, "invalid_request"),
        "two authentication methods"
    );
    // unauthorized_client: a grant the application may not use.
    let (s, v, _) = srv
        .token(
            cc,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-password-1"),
            ],
        )
        .await;
    assert_eq!((s, err(&v)), (400, "unauthorized_client"));
    // invalid_scope: unknown.
    let (s, v, _) = srv
        .token(
            cc,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "read admin"),
            ],
        )
        .await;
    assert_eq!((s, err(&v)), (400, "invalid_scope"));
    // invalid_grant: wrong password.
    let (s, v, _) = srv
        .token(
            Some(("pw", "pw-secret")),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "nope-nope-nope"),
            ],
        )
        .await;
    assert_eq!((s, err(&v)), (400, "invalid_grant"));
    let (s, v, _) = srv
        .token(
            Some(("pw", "pw-secret")),
            &[("grant_type", "password"), ("username", "alice")],
        )
        .await;
    assert_eq!((s, err(&v)), (400, "invalid_request"), "missing password");
    // Refresh: widening the scope, and another client's refresh token.
    let (_, rt) = srv.password_pair().await;
    let mut narrow_form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("scope", "read"),
    ];
    let (s, v, _) = srv.token(Some(("pw", "pw-secret")), &narrow_form).await;
    assert_eq!((s, v["scope"].as_str()), (200, Some("read")), "{v}");
    let rt2 = v["refresh_token"].as_str().unwrap().to_owned();
    narrow_form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", rt2.as_str()),
        ("scope", "read write"),
    ];
    let (s, v, _) = srv.token(Some(("pw", "pw-secret")), &narrow_form).await;
    assert_eq!(
        (s, err(&v)),
        (400, "invalid_scope"),
        "narrowing sticks: no widening back"
    );
    let (s, v, _) = srv
        .token(
            Some(("code", "code-secret")),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt2.as_str()),
            ],
        )
        .await;
    assert_eq!(
        (s, err(&v)),
        (400, "invalid_grant"),
        "another client's refresh token"
    );
    // The refresh token survived the foreign attempt.
    let (s, _, _) = srv
        .token(
            Some(("pw", "pw-secret")),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt2.as_str()),
            ],
        )
        .await;
    assert_eq!(s, 200);
}

async fn authorization_code_exchange_rules(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let code_client = Some(("code", "code-secret"));
    let exchange =
        |code: String, redirect: Option<&'static str>, verifier: Option<&'static str>| {
            let srv = &srv;
            async move {
                let mut form = vec![
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                ];
                if let Some(r) = redirect {
                    form.push(("redirect_uri", r));
                }
                if let Some(v) = verifier {
                    form.push(("code_verifier", v));
                }
                srv.token(code_client, &form).await
            }
        };
    // The happy path, with PKCE.
    let code = srv.code("code", Some((CHALLENGE, "S256")), 60).await;
    let (s, v, _) = exchange(code.clone(), Some(REDIRECT), Some(VERIFIER)).await;
    assert_eq!(s, 200, "{v}");
    let at = v["access_token"].as_str().unwrap().to_owned();
    let rt = v["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(srv.introspect(&at).await["username"], "alice");
    // Replay: invalid_grant, and what the code issued is revoked.
    let (s, v, _) = exchange(code, Some(REDIRECT), Some(VERIFIER)).await;
    assert_eq!((s, err(&v)), (400, "invalid_grant"));
    assert_eq!(
        srv.introspect(&at).await["active"],
        false,
        "replay revokes the access token"
    );
    let (s, v, _) = srv
        .token(
            code_client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
            ],
        )
        .await;
    assert_eq!(
        (s, err(&v)),
        (400, "invalid_grant"),
        "and the refresh token"
    );
    // Wrong verifier, missing verifier, wrong/missing redirect_uri, expired, other client's.
    let code = srv.code("code", Some((CHALLENGE, "S256")), 60).await;
    let (s, v, _) = exchange(
        code,
        Some(REDIRECT),
        Some("wrong-verifier-wrong-verifier-wrong-verifier-x"),
    )
    .await;
    assert_eq!((s, err(&v)), (400, "invalid_grant"), "wrong verifier");
    let code = srv.code("code", Some((CHALLENGE, "S256")), 60).await;
    let (s, v, _) = exchange(code, Some(REDIRECT), None).await;
    assert_eq!((s, err(&v)), (400, "invalid_request"), "missing verifier");
    let code = srv.code("code", Some((VERIFIER, "plain")), 60).await;
    let (s, v, _) = exchange(code, Some("http://127.0.0.1:9/elsewhere"), Some(VERIFIER)).await;
    assert_eq!((s, err(&v)), (400, "invalid_grant"), "wrong redirect_uri");
    let code = srv.code("code", Some((VERIFIER, "plain")), 60).await;
    let (s, v, _) = exchange(code.clone(), None, Some(VERIFIER)).await;
    assert_eq!(
        (s, err(&v)),
        (400, "invalid_request"),
        "missing redirect_uri"
    );
    let (s, v, _) = exchange(code, Some(REDIRECT), Some(VERIFIER)).await;
    assert_eq!(
        (s, err(&v)),
        (400, "invalid_grant"),
        "the failed attempt burned the code"
    );
    let code = srv.code("code", Some((CHALLENGE, "S256")), -1).await;
    let (s, v, _) = exchange(code, Some(REDIRECT), Some(VERIFIER)).await;
    assert_eq!((s, err(&v)), (400, "invalid_grant"), "expired code");
    let code = srv.code("other", Some((CHALLENGE, "S256")), 60).await;
    let (s, v, _) = exchange(code, Some(REDIRECT), Some(VERIFIER)).await;
    assert_eq!(
        (s, err(&v)),
        (400, "invalid_grant"),
        "another client's code"
    );
    let code = srv.code("code", None, 60).await;
    let (s, v, _) = exchange(code, Some(REDIRECT), Some(VERIFIER)).await;
    assert_eq!(
        (s, err(&v)),
        (400, "invalid_grant"),
        "verifier without challenge (downgrade)"
    );
}

/// 50 times: two concurrent refreshes with one token; exactly one wins, the loser gets
/// invalid_grant, and the winner's pair works.
async fn refresh_race(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let pw = Some(("pw", "pw-secret"));
    for i in 0..50 {
        let (_, rt) = srv.password_pair().await;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ];
        let (a, b) = tokio::join!(srv.token(pw, &form), srv.token(pw, &form));
        let mut oks: Vec<_> = [&a, &b].into_iter().filter(|r| r.0 == 200).collect();
        assert_eq!(oks.len(), 1, "try {i}: {a:?} / {b:?}");
        let loser = if a.0 == 200 { &b } else { &a };
        assert_eq!((loser.0, err(&loser.1)), (400, "invalid_grant"), "try {i}");
        let winner = oks.pop().unwrap();
        assert_eq!(
            srv.introspect(winner.1["access_token"].as_str().unwrap())
                .await["active"],
            true
        );
    }
}

/// 50 times: two concurrent exchanges of one code; one gets tokens, the other
/// invalid_grant — and the replay revokes the winner's tokens, whichever order the
/// database ran them in.
async fn code_replay_race(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let client = Some(("code", "code-secret"));
    for i in 0..50 {
        let code = srv.code("code", Some((CHALLENGE, "S256")), 60).await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ];
        let (a, b) = tokio::join!(srv.token(client, &form), srv.token(client, &form));
        let oks: Vec<_> = [&a, &b].into_iter().filter(|r| r.0 == 200).collect();
        assert_eq!(oks.len(), 1, "try {i}: {a:?} / {b:?}");
        let loser = if a.0 == 200 { &b } else { &a };
        assert_eq!(err(&loser.1), "invalid_grant", "try {i}");
        let at = oks[0].1["access_token"].as_str().unwrap();
        assert_eq!(
            srv.introspect(at).await["active"],
            false,
            "try {i}: replay revoked the tokens"
        );
    }
}

/// REFRESH_TOKEN_GRACE_PERIOD_SECONDS: a retry (sequential or concurrent) gets the same
/// successor pair; REFRESH_TOKEN_REUSE_PROTECTION: a late replay revokes the family.
async fn grace_period_and_reuse_protection(db: Db) {
    let mut settings = Settings::default();
    settings.refresh_token_grace_period_seconds = Duration::from_secs(60);
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let pw = Some(("pw", "pw-secret"));
    let (_, rt) = srv.password_pair().await;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    let (a, b) = tokio::join!(srv.token(pw, &form), srv.token(pw, &form));
    assert_eq!((a.0, b.0), (200, 200), "{a:?} / {b:?}");
    assert_eq!(a.1["access_token"], b.1["access_token"]);
    assert_eq!(a.1["refresh_token"], b.1["refresh_token"]);
    let (s, c, _) = srv.token(pw, &form).await;
    assert_eq!(
        (s, &c["refresh_token"]),
        (200, &a.1["refresh_token"]),
        "a later retry too"
    );

    let mut settings = Settings::default();
    settings.refresh_token_reuse_protection = true;
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let (_, rt1) = srv.password_pair().await;
    let (s, v, _) = srv
        .token(
            pw,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt1.as_str()),
            ],
        )
        .await;
    assert_eq!(s, 200);
    let (at2, rt2) = (
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
    );
    let (s, v, _) = srv
        .token(
            pw,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt1.as_str()),
            ],
        )
        .await;
    assert_eq!(
        (s, err(&v)),
        (400, "invalid_grant"),
        "replay of a rotated token"
    );
    assert_eq!(
        srv.introspect(&at2).await["active"],
        false,
        "the family's live pair is revoked"
    );
    let (s, _, _) = srv
        .token(
            pw,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt2.as_str()),
            ],
        )
        .await;
    assert_eq!(s, 400);
}

async fn introspection_endpoint_auth(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let (at, _) = srv.password_pair().await;
    // No credentials: 401.
    let res = srv
        .http
        .post(srv.url("/o/introspect/"))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A public client id is no credential (RFC 7662 §2.1).
    let (s, v, _) = srv
        .post(
            "/o/introspect/",
            None,
            &[("client_id", "pub-pw"), ("token", at.as_str())],
        )
        .await;
    assert_eq!((s, err(&v)), (401, "invalid_client"), "public client");
    // A Bearer token without the introspection scope: 403 insufficient_scope (RFC 6750);
    // a bad one: 401 invalid_token; with the scope: allowed (GET too).
    let res = srv
        .http
        .post(srv.url("/o/introspect/"))
        .bearer_auth(&at)
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let www = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        www.contains("insufficient_scope") && www.contains("introspection"),
        "{www}"
    );
    let res = srv
        .http
        .post(srv.url("/o/introspect/"))
        .bearer_auth("no-such-token")
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let mut settings = Settings::default();
    settings
        .scopes
        .insert("introspection".into(), "Introspect tokens".into());
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let (s, v, _) = srv
        .token(
            Some(("cc", "cc-secret")),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "introspection"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let rs_token = v["access_token"].as_str().unwrap().to_owned();
    let (user_at, user_rt) = srv.password_pair().await;
    let res = srv
        .http
        .get(srv.url("/o/introspect/"))
        .query(&[("token", user_at.as_str())])
        .bearer_auth(&rs_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    for field in [
        "active",
        "scope",
        "exp",
        "iat",
        "client_id",
        "username",
        "sub",
        "token_type",
    ] {
        assert!(v.get(field).is_some(), "{field} missing in {v}");
    }
    let v = srv.introspect(&user_rt).await;
    assert_eq!(
        (v["active"].as_bool(), v["token_type"].as_str()),
        (Some(true), Some("refresh_token"))
    );
    assert_eq!(
        srv.introspect("unknown").await,
        serde_json::json!({"active": false})
    );
}

/// CORS: a preflight from an origin some application allows, and the answer to that
/// application's request, carry Access-Control-Allow-Origin; other origins get none.
async fn cors_for_allowed_origins(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    for (origin, allowed) in [
        ("https://spa.example", true),
        ("https://evil.example", false),
    ] {
        let res = srv
            .http
            .request(reqwest::Method::OPTIONS, srv.url("/o/token/"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        assert_eq!(
            res.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            allowed.then_some(origin),
            "preflight from {origin}"
        );
        let res = srv
            .http
            .post(srv.url("/o/token/"))
            .header("origin", origin)
            .form(&[
                ("grant_type", "password"),
                ("client_id", "pub-pw"),
                ("username", "alice"),
                ("password", "alice-password-1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            allowed.then_some(origin),
            "token answer to {origin}"
        );
    }
    // Another application's request from the SPA origin: no CORS header.
    let res = srv
        .http
        .post(srv.url("/o/token/"))
        .header("origin", "https://spa.example")
        .basic_auth("cc", Some("cc-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

/// The authorization code flow as a web app runs it: the `oauth2` crate builds the
/// authorize URL (PKCE S256, state), a browser (reqwest with a cookie jar) signs in on the
/// login page and approves on the consent page, and the crate exchanges the code, calls
/// the API and refreshes.
async fn authorization_code_flow_with_the_oauth2_crate(db: Db) {
    use common::html::hidden_fields;
    use oauth2::{AuthUrl, AuthorizationCode, CsrfToken, PkceCodeChallenge, RedirectUrl};
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let http = srv.http_fn();
    let client = BasicClient::new(ClientId::new("code".into()))
        .set_client_secret(ClientSecret::new("code-secret".into()))
        .set_auth_uri(AuthUrl::new(srv.url("/o/authorize/")).unwrap())
        .set_token_uri(TokenUrl::new(srv.url("/o/token/")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let follow = |res: &reqwest::Response| -> reqwest::Url {
        assert!(res.status().is_redirection(), "{}", res.status());
        let location = res.headers()["location"].to_str().unwrap();
        res.url().join(location).unwrap()
    };
    // Not signed in: the authorize request sends the browser to the login page.
    let res = browser.get(url.clone()).send().await.unwrap();
    let login_url = follow(&res);
    assert!(login_url.path().ends_with("/o/login/"), "{login_url}");
    let page = browser
        .get(login_url.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut form = hidden_fields(&page);
    assert!(form.iter().any(|(k, _)| k == "csrfmiddlewaretoken"));
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), "alice-password-1".into()));
    let res = browser.post(login_url).form(&form).send().await.unwrap();
    // Signed in: back to the authorize URL, which now shows the consent page.
    let back = follow(&res);
    let consent = browser.get(back).send().await.unwrap();
    assert_eq!(consent.status(), 200);
    let consent_url = consent.url().clone();
    let page = consent.text().await.unwrap();
    assert!(
        page.contains("Reading scope"),
        "the scope's description is listed"
    );
    let mut form = hidden_fields(&page);
    form.push(("allow".into(), "Authorize".into()));
    let res = browser.post(consent_url).form(&form).send().await.unwrap();
    let callback = follow(&res);
    assert!(callback.as_str().starts_with(REDIRECT), "{callback}");
    let q: std::collections::HashMap<_, _> = callback.query_pairs().into_owned().collect();
    assert_eq!(
        q.get("state").map(String::as_str),
        Some(state.secret().as_str())
    );
    let code = q.get("code").expect("code").clone();

    let token = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    assert_eq!(token.scopes().map(|s| s[0].as_str()), Some("read"));
    let (s, v) = srv.hello(token.access_token().secret()).await;
    assert_eq!((s, v["hello"].as_str()), (200, Some("alice")));
    let refreshed = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&http)
        .await
        .expect("refresh");
    assert_eq!(srv.hello(refreshed.access_token().secret()).await.0, 200);
    // The code is single-use: a second exchange fails and revokes what it issued.
    let (_, verifier2) = PkceCodeChallenge::new_random_sha256();
    assert!(client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier2)
        .request_async(&http)
        .await
        .is_err());
    assert_eq!(srv.hello(refreshed.access_token().secret()).await.0, 401);
}

/// ACCESS_TOKEN_FORMAT = "jwt": RFC 9068 access tokens that the crate's own JwtValidator
/// accepts from the provider's JWKS, that are still stored (by checksum) so revocation and
/// introspection work, and whose grace-period retry gives the same JWT back.
async fn jwt_access_tokens(db: Db) {
    use tower_oauth_toolkit::provider::oidc::keys::SigningKeys;
    use tower_oauth_toolkit::resource::{JwtValidator, TokenValidator};
    use tower_oauth_toolkit::settings::{AccessTokenFormat, Secret};
    let mut settings = Settings::default();
    settings.access_token_format = AccessTokenFormat::Jwt;
    settings.oidc_rsa_private_key = Secret::new(include_str!("fixtures/rsa_private.pem"));
    settings.oidc_iss_endpoint = "https://auth.example".into();
    settings.oauth2_protected_resource_identifier = "https://api.example".into();
    settings.refresh_token_grace_period_seconds = Duration::from_secs(60);
    let jwks = SigningKeys::from_settings(&settings)
        .unwrap()
        .unwrap()
        .jwks();
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let (s, v, _) = srv
        .token(
            Some(("cc", "cc-secret")),
            &[("grant_type", "client_credentials"), ("scope", "read")],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let jwt = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt.split('.').count(), 3, "a JWS: {jwt}");
    let validator = JwtValidator::builder()
        .jwks_json(&jwks.to_string())
        .issuer("https://auth.example")
        .audience(&["https://api.example"])
        .build()
        .unwrap();
    let info = validator
        .validate(jwt.clone())
        .await
        .expect("valid RFC 9068 token");
    assert_eq!(info.client_id.as_deref(), Some("cc"));
    assert_eq!(
        info.sub.as_deref(),
        Some("cc"),
        "sub is the client without a user"
    );
    assert!(info.scopes.contains("read"));
    assert_eq!(srv.hello(&jwt).await.0, 200, "the store knows it too");
    assert_eq!(srv.introspect(&jwt).await["active"], true);
    let (s, _, _) = srv
        .post(
            "/o/revoke_token/",
            Some(("cc", "cc-secret")),
            &[("token", jwt.as_str())],
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(srv.introspect(&jwt).await["active"], false);
    assert_eq!(
        srv.hello(&jwt).await.0,
        401,
        "revoked: the store-backed API refuses it"
    );

    // A user's token, refreshed twice with the same refresh token inside the grace period.
    let (at, rt) = srv.password_pair().await;
    let info = validator.validate(at).await.unwrap();
    assert_eq!(info.username, None);
    assert!(
        info.sub.as_deref().unwrap().parse::<i64>().is_ok(),
        "sub is the user id"
    );
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    let (s1, a, _) = srv.token(Some(("pw", "pw-secret")), &form).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s2, b, _) = srv.token(Some(("pw", "pw-secret")), &form).await;
    assert_eq!((s1, s2), (200, 200), "{a} / {b}");
    assert_eq!(
        a["access_token"], b["access_token"],
        "same JWT a second later"
    );
    assert_eq!(a["refresh_token"], b["refresh_token"]);
    validator
        .validate(b["access_token"].as_str().unwrap().to_owned())
        .await
        .unwrap();
}

/// Fixes from the security review: deactivated users, rotation off with a grace period,
/// unknown revocation hints, oversized requests.
async fn review_regressions(db: Db) {
    let mut settings = Settings::default();
    settings.rotate_refresh_token = false;
    settings.refresh_token_grace_period_seconds = Duration::from_secs(30);
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let pw = Some(("pw", "pw-secret"));
    // Without rotation each refresh gives a new access token, even with a grace period.
    let (_, rt) = srv.password_pair().await;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    let (s1, a, _) = srv.token(pw, &form).await;
    let (s2, b, _) = srv.token(pw, &form).await;
    assert_eq!((s1, s2), (200, 200));
    assert_ne!(
        a["access_token"], b["access_token"],
        "no derived, repeated access token"
    );
    assert_eq!(
        b["refresh_token"].as_str(),
        Some(rt.as_str()),
        "same refresh token (DOT)"
    );
    let at = b["access_token"].as_str().unwrap().to_owned();
    // A deactivated user: introspection says inactive, refresh and code exchange fail.
    let alice = srv
        .store
        .find_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let code = srv.code("code", Some((VERIFIER, "plain")), 60).await;
    assert!(srv.store.set_user_active(alice.id, false).await.unwrap());
    assert_eq!(srv.introspect(&at).await["active"], false);
    assert_eq!(srv.introspect(&rt).await["active"], false);
    assert_eq!(srv.hello(&at).await.0, 401, "StoreValidator refuses it too");
    let (s, v, _) = srv.token(pw, &form).await;
    assert_eq!(
        (s, err(&v)),
        (400, "invalid_grant"),
        "refresh for an inactive user"
    );
    let (s, v, _) = srv
        .token(
            Some(("code", "code-secret")),
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(
        (s, err(&v)),
        (400, "invalid_grant"),
        "code of an inactive user"
    );
    let (s, v, _) = srv
        .token(
            pw,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-password-1"),
            ],
        )
        .await;
    assert_eq!(
        (s, err(&v)),
        (400, "invalid_grant"),
        "password grant for an inactive user"
    );
    assert!(srv.store.set_user_active(alice.id, true).await.unwrap());
    assert_eq!(srv.introspect(&at).await["active"], true, "reactivated");
    assert_eq!(srv.hello(&at).await.0, 200);
    // An unknown token_type_hint is ignored (RFC 7009 §2.1): the token is revoked.
    let (s, _, _) = srv
        .post(
            "/o/revoke_token/",
            pw,
            &[("token", at.as_str()), ("token_type_hint", "id_token")],
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(srv.introspect(&at).await["active"], false);
    // Too many parameters; a body over the limit.
    let many: Vec<(String, String)> = (0..150).map(|i| (format!("k{i}"), "v".into())).collect();
    let mut form: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    form.push(("grant_type", "client_credentials"));
    let (s, v, _) = srv.token(Some(("cc", "cc-secret")), &form).await;
    assert_eq!((s, err(&v)), (400, "invalid_request"), "{v}");
    let big = "x".repeat(100 * 1024);
    let (s, _, _) = srv
        .token(
            Some(("cc", "cc-secret")),
            &[("grant_type", "client_credentials"), ("pad", big.as_str())],
        )
        .await;
    assert_eq!(s, 413, "body over 64 KiB");
}

/// One rule for credentials (issue 12): two Authorization headers are invalid_request
/// at the token, introspection and revocation endpoints as at the API, and no
/// error_description carries a `"` (RFC 6749 §5.2).
async fn two_authorization_headers_and_description_characters(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let (s, v, _) = srv
        .token(
            Some(("cc", "cc-secret")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let token = v["access_token"].as_str().unwrap().to_owned();
    let basic = |id: &str, secret: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    for (path, body) in [
        ("/o/token/", "grant_type=client_credentials".to_owned()),
        ("/o/introspect/", format!("token={token}")),
        ("/o/revoke_token/", format!("token={token}")),
    ] {
        // The good credentials first, then a wrong pair: the first must not win.
        let res = srv
            .http
            .post(srv.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", basic("cc", "cc-secret"))
            .header("authorization", basic("cc", "wrong"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request", "{path}: {v}");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("more than one Authorization header"),
            "{path}: {v}"
        );
    }
    // The token was neither revoked nor read by those requests.
    assert_eq!(srv.introspect(&token).await["active"], true);

    // A description built with a quoted value (the unknown scope) is rendered without `"`.
    let (s, v, _) = srv
        .token(
            Some(("cc", "cc-secret")),
            &[("grant_type", "client_credentials"), ("scope", "nope")],
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(v["error"], "invalid_scope");
    let d = v["error_description"].as_str().unwrap();
    assert!(d.contains("'nope'") && !d.contains('"'), "{d}");
    assert!(
        d.bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
        "{d}"
    );
}

/// A code_verifier that is not one (RFC 7636 §4.1) is invalid_request, not invalid_grant.
async fn a_malformed_code_verifier_is_invalid_request(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let code = srv.code("code", Some((CHALLENGE, "S256")), 60).await;
    let (s, v, _) = srv
        .token(
            Some(("code", "code-secret")),
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", "too-short"),
            ],
        )
        .await;
    assert_eq!((s, err(&v)), (400, "invalid_request"), "{v}");
}

/// One failed redemption burns the code (issue 12): after a wrong verifier, a malformed
/// verifier, a wrong or missing redirect_uri, or another client presenting it, the right
/// request with the right client gets invalid_grant — the verifier cannot be guessed.
async fn a_failed_redemption_burns_the_code(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let exchange = |client: (&'static str, &'static str),
                    code: String,
                    redirect: Option<&'static str>,
                    verifier: &'static str| {
        let srv = &srv;
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("code_verifier", verifier),
            ];
            if let Some(r) = redirect {
                form.push(("redirect_uri", r));
            }
            let (s, v, _) = srv.token(Some(client), &form).await;
            (s, err(&v).to_owned())
        }
    };
    let code_client = ("code", "code-secret");
    let wrong = "wrong-verifier-wrong-verifier-wrong-verifier-x";
    type Attempt = (
        &'static str,
        (&'static str, &'static str),
        Option<&'static str>,
        &'static str,
    );
    let attempts: [Attempt; 5] = [
        ("wrong verifier", code_client, Some(REDIRECT), wrong),
        ("malformed verifier", code_client, Some(REDIRECT), "short"),
        (
            "wrong redirect_uri",
            code_client,
            Some("http://127.0.0.1:9/x"),
            VERIFIER,
        ),
        ("missing redirect_uri", code_client, None, VERIFIER),
        (
            "another client",
            ("other", "other-secret"),
            Some(REDIRECT),
            VERIFIER,
        ),
    ];
    for (what, client, redirect, verifier) in attempts {
        let code = srv.code("code", Some((CHALLENGE, "S256")), 60).await;
        let (s, e) = exchange(client, code.clone(), redirect, verifier).await;
        assert_eq!(s, 400, "{what}: {e}");
        let (s, e) = exchange(code_client, code, Some(REDIRECT), VERIFIER).await;
        assert_eq!(
            (s, e.as_str()),
            (400, "invalid_grant"),
            "{what} burns the code"
        );
    }
    // The control: an untouched code is exchanged.
    let code = srv.code("code", Some((CHALLENGE, "S256")), 60).await;
    let (s, e) = exchange(code_client, code, Some(REDIRECT), VERIFIER).await;
    assert_eq!(s, 200, "{e}");
}

/// Guessing is throttled (issue 12): after LOGIN_FAILURE_LIMIT wrong passwords the
/// password grant refuses even the right one, with Retry-After, until the lockout ends;
/// after CLIENT_AUTH_FAILURE_LIMIT wrong secrets a client is refused the same way —
/// except a secret the server verified recently, so the real client keeps working.
async fn guessing_is_throttled(db: Db) {
    let mut settings = Settings::default();
    settings.login_failure_limit = 3;
    settings.client_auth_failure_limit = 3;
    settings.lockout_seconds = Duration::from_secs(2);
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let password = |pw: &'static str| {
        let srv = &srv;
        async move {
            srv.token(
                Some(("pw", "pw-secret")),
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", pw),
                ],
            )
            .await
        }
    };
    for _ in 0..3 {
        let (s, v, h) = password("wrong-password").await;
        assert_eq!((s, err(&v)), (400, "invalid_grant"), "{v}");
        assert!(h.get("retry-after").is_none());
    }
    let (s, v, h) = password("alice-password-1").await;
    assert_eq!((s, err(&v)), (400, "invalid_grant"), "locked: {v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("Too many"),
        "{v}"
    );
    let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (s, v, _) = password("alice-password-1").await;
    assert_eq!(s, 200, "after the lockout: {v}");

    // Client authentication, per client id.
    let cc = |secret: &'static str| {
        let srv = &srv;
        async move {
            srv.token(
                Some(("cc", secret)),
                &[("grant_type", "client_credentials")],
            )
            .await
        }
    };
    for _ in 0..3 {
        let (s, v, _) = cc("wrong-secret").await;
        assert_eq!((s, err(&v)), (401, "invalid_client"), "{v}");
    }
    let (s, v, h) = cc("cc-secret").await;
    assert_eq!((s, err(&v)), (401, "invalid_client"), "locked: {v}");
    assert!(h.contains_key("retry-after"), "{h:?}");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (s, v, _) = cc("cc-secret").await;
    assert_eq!(s, 200, "after the lockout: {v}");
    // Now verified: more guesses lock the id, and the proven secret still works.
    for _ in 0..4 {
        let (s, _, _) = cc("wrong-secret").await;
        assert_eq!(s, 401);
    }
    let (s, v, _) = cc("cc-secret").await;
    assert_eq!(s, 200, "a recently verified secret is not locked out: {v}");
    let (s, v, _) = cc("another-wrong-secret").await;
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("Too many"),
        "{s} {v}"
    );
}

/// The introspection answer of a live access token, byte for byte: every RFC 7662
/// member this server sends (with `aud` from OAUTH2_PROTECTED_RESOURCE_IDENTIFIER), in
/// sorted order; and `{"active":false}` alone for an unknown token.
async fn an_introspection_answer_has_every_member(db: Db) {
    let mut settings = Settings::default();
    settings.oauth2_protected_resource_identifier = "https://api.example".into();
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let (at, _) = srv.password_pair().await;
    let row = srv
        .store
        .find_access_token(&tower_oauth_toolkit::crypto::token_checksum(&at))
        .await
        .unwrap()
        .unwrap();
    let res = srv
        .http
        .post(srv.url("/o/introspect/"))
        .basic_auth("cc", Some("cc-secret"))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = res.text().await.unwrap();
    let expected = format!(
        r#"{{"active":true,"aud":"https://api.example","client_id":"pw","exp":{},"iat":{},"scope":"read write","sub":"{}","token_type":"Bearer","username":"alice"}}"#,
        row.token.expires.unix(),
        row.token.created.unix(),
        row.token.user_id.unwrap(),
    );
    assert_eq!(body, expected);
    let res = srv
        .http
        .post(srv.url("/o/introspect/"))
        .basic_auth("cc", Some("cc-secret"))
        .form(&[("token", "no-such-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), r#"{"active":false}"#);
}

on_both!(
    an_introspection_answer_has_every_member,
    guessing_is_throttled,
    a_failed_redemption_burns_the_code,
    a_malformed_code_verifier_is_invalid_request,
    two_authorization_headers_and_description_characters,
    client_credentials_and_the_protected_api,
    password_refresh_rotation_revocation_introspection,
    token_endpoint_errors,
    authorization_code_exchange_rules,
    refresh_race,
    code_replay_race,
    grace_period_and_reuse_protection,
    introspection_endpoint_auth,
    cors_for_allowed_origins,
    authorization_code_flow_with_the_oauth2_crate,
    jwt_access_tokens,
    review_regressions,
);
