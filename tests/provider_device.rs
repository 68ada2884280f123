//! The device authorization grant (RFC 8628) over real HTTP on loopback: the `oauth2`
//! crate as the device, a cookie-jar browser as the user (login, code, approve), the
//! tokens checked at the demo API; every error of the device endpoint, the verification
//! pages and the token endpoint; the race of two polls after approval; the throttling of
//! wrong user codes; and metadata that advertises only what the token endpoint serves.
//! Every test runs on an SQLite file and on PostgreSQL.
#![cfg(all(feature = "cli", feature = "postgres"))]

#[macro_use]
mod common;

use common::provider::*;

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::StandardDeviceAuthorizationResponse;
use oauth2::{ClientId, DeviceAuthorizationUrl, Scope, TokenResponse, TokenUrl};
use serde_json::Value;
use tower_oauth_toolkit::crypto::token_checksum;
use tower_oauth_toolkit::generators::normalize_user_code;
use tower_oauth_toolkit::hashers::{hash_secret, SecretHasher};
use tower_oauth_toolkit::model::*;
use tower_oauth_toolkit::settings::Settings;
use tower_oauth_toolkit::store::Store;

/// HTTP Basic credentials of a request, if any.
type Basic = Option<(&'static str, &'static str)>;

/// Settings for these tests: devices may poll every second.
fn settings() -> Settings {
    let mut s = Settings::default();
    s.device_flow_interval = Duration::from_secs(1);
    s
}

/// The server with a public device client `tv` and a confidential one `tv-conf`
/// (secret `tv-secret`).
async fn server(db: Db, settings: Settings) -> Option<Server> {
    let srv = start(db, settings).await?;
    let mut tv = NewApplication::new("tv", ClientType::Public, GrantType::DeviceCode);
    tv.name = "Living-room TV".into();
    srv.store.create_application(tv).await.unwrap();
    let mut conf = NewApplication::new("tv-conf", ClientType::Confidential, GrantType::DeviceCode);
    conf.client_secret = hash_secret("tv-secret", SecretHasher::Argon2).unwrap();
    conf.name = "Set-top box".into();
    srv.store.create_application(conf).await.unwrap();
    Some(srv)
}

/// A device authorization by a raw form POST: (status, JSON, headers).
async fn device_authorization(
    srv: &Server,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    srv.post("/o/device-authorization/", basic, form).await
}

/// `device_code` and `user_code` of a fresh device authorization by `tv`.
async fn codes(srv: &Server) -> (String, String) {
    let (s, v, _) =
        device_authorization(srv, None, &[("client_id", "tv"), ("scope", "read")]).await;
    assert_eq!(s, 200, "{v}");
    (
        v["device_code"].as_str().unwrap().to_owned(),
        v["user_code"].as_str().unwrap().to_owned(),
    )
}

/// One poll of the token endpoint by the public client `tv`.
async fn poll(srv: &Server, device_code: &str) -> (u16, Value, reqwest::header::HeaderMap) {
    srv.token(
        None,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", "tv"),
        ],
    )
    .await
}

/// The user: a browser with a cookie jar, signed in as alice.
struct User {
    browser: reqwest::Client,
    device_url: String,
}

impl User {
    /// Opens `url` (a verification URI), is sent to the login page, signs in and comes
    /// back; returns the device page it came back to.
    async fn sign_in_at(srv: &Server, url: &str) -> (User, String) {
        let browser = common::http::browser();
        let res = browser.get(url).send().await.unwrap();
        assert_eq!(res.status(), 302, "login first");
        let login = res
            .url()
            .join(res.headers()["location"].to_str().unwrap())
            .unwrap();
        assert!(login.path().ends_with("/o/login/"), "{login}");
        let res = sign_in_as_alice(&browser, login).await;
        assert_eq!(res.status(), 303);
        let back = res
            .url()
            .join(res.headers()["location"].to_str().unwrap())
            .unwrap();
        assert_eq!(back.path(), "/o/device/", "{back}");
        let page = browser.get(back.clone()).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let user = User {
            browser,
            device_url: srv.url("/o/device/"),
        };
        (user, page.text().await.unwrap())
    }

    async fn signed_in(srv: &Server) -> User {
        Self::sign_in_at(srv, &srv.url("/o/device/")).await.0
    }

    /// The CSRF token of a fresh form page.
    async fn csrf(&self) -> String {
        let page = self.browser.get(&self.device_url).send().await.unwrap();
        let page = page.text().await.unwrap();
        common::html::hidden(&page, "csrfmiddlewaretoken").expect("a CSRF token")
    }

    /// Posts the device form: (status, page).
    async fn post(&self, fields: &[(&str, &str)]) -> (u16, String, reqwest::header::HeaderMap) {
        let mut form: Vec<(String, String)> =
            vec![("csrfmiddlewaretoken".into(), self.csrf().await)];
        form.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let res = self
            .browser
            .post(&self.device_url)
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, res.text().await.unwrap(), headers)
    }

    /// Types `code`, then presses `action` on the confirmation page.
    async fn decide(&self, code: &str, action: &str) -> (u16, String) {
        let (s, page, _) = self.post(&[("user_code", code)]).await;
        assert_eq!(s, 200, "{page}");
        assert!(page.contains("Connect Living-room TV?"), "{page}");
        let (s, page, _) = self.post(&[("user_code", code), ("action", action)]).await;
        (s, page)
    }
}

// ---------------------------------------------------------------------------------------

/// The whole flow with real clients: the `oauth2` crate asks for codes and polls while a
/// browser signs in through `verification_uri_complete`, checks the application and
/// scope on the confirmation page and approves; the device gets an access token that
/// the demo API accepts, and a refresh token that works.
async fn the_oauth2_crate_logs_a_device_in(db: Db) {
    let Some(srv) = server(db, settings()).await else {
        return;
    };
    let http = srv.http_fn();
    let client = BasicClient::new(ClientId::new("tv".into()))
        .set_token_uri(TokenUrl::new(srv.url("/o/token/")).unwrap())
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(srv.url("/o/device-authorization/")).unwrap(),
        );
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .expect("device authorization");
    let user_code = details.user_code().secret().clone();
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(details.verification_uri().as_str(), srv.url("/o/device/"));
    let complete = details
        .verification_uri_complete()
        .expect("verification_uri_complete")
        .secret()
        .clone();
    assert_eq!(
        complete,
        format!("{}?user_code={user_code}", srv.url("/o/device/"))
    );
    assert_eq!(details.interval(), Duration::from_secs(1));
    assert_eq!(details.expires_in(), Duration::from_secs(1800));

    // The device polls (pending) while the user approves.
    let polling = {
        let details = details.clone();
        let base = srv.base.clone();
        tokio::spawn(async move {
            let http_client = reqwest::Client::new();
            let http = move |req| send(http_client.clone(), req);
            let client = BasicClient::new(ClientId::new("tv".into()))
                .set_token_uri(TokenUrl::new(format!("{base}/o/token/")).unwrap());
            client
                .exchange_device_access_token(&details)
                .request_async(&http, tokio::time::sleep, Some(Duration::from_secs(60)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (user, page) = User::sign_in_at(&srv, &complete).await;
    assert!(
        page.contains(&format!("value=\"{user_code}\"")),
        "the code is prefilled: {page}"
    );
    let (s, page) = user.decide(&user_code, "accept").await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("Device connected"), "{page}");

    let token = polling.await.unwrap().expect("tokens after approval");
    assert_eq!(token.scopes().unwrap()[0].as_str(), "read");
    let (s, v) = srv.hello(token.access_token().secret()).await;
    assert_eq!(s, 200, "{v}");
    let refresh = token.refresh_token().expect("a refresh token");
    let (s, v, _) = srv
        .token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.secret()),
                ("client_id", "tv"),
            ],
        )
        .await;
    assert_eq!(s, 200, "refresh: {v}");
    assert_eq!(srv.hello(v["access_token"].as_str().unwrap()).await.0, 200);
    // The device code is single-use.
    let (s, v, _) = poll(&srv, &details.device_code().secret().clone()).await;
    assert_eq!((s, err(&v)), (400, "invalid_grant"), "{v}");
}

/// The device authorization endpoint's answers and errors (RFC 8628 §3.1–3.2).
async fn the_device_endpoint_checks_its_clients(db: Db) {
    let Some(srv) = server(db, settings()).await else {
        return;
    };
    // A public client by client_id; no-store; every member present.
    let (s, v, h) = device_authorization(&srv, None, &[("client_id", "tv")]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h["cache-control"], "no-store");
    for member in [
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
    ] {
        assert!(v[member].is_string(), "{member}: {v}");
    }
    assert_eq!(
        (v["expires_in"].as_u64(), v["interval"].as_u64()),
        (Some(1800), Some(1))
    );
    let code = v["user_code"].as_str().unwrap();
    assert!(
        code.len() == 9
            && code.as_bytes()[4] == b'-'
            && normalize_user_code(code)
                .bytes()
                .all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)),
        "{code}"
    );
    // Confidential clients must authenticate.
    let (s, v, _) = device_authorization(&srv, None, &[("client_id", "tv-conf")]).await;
    assert_eq!((s, err(&v)), (401, "invalid_client"), "{v}");
    let (s, v, _) = device_authorization(&srv, Some(("tv-conf", "wrong")), &[]).await;
    assert_eq!((s, err(&v)), (401, "invalid_client"), "{v}");
    let (s, v, _) = device_authorization(&srv, Some(("tv-conf", "tv-secret")), &[]).await;
    assert_eq!(s, 200, "{v}");
    // An unknown client; a client of another grant type.
    let (s, v, _) = device_authorization(&srv, None, &[("client_id", "nobody")]).await;
    assert_eq!((s, err(&v)), (401, "invalid_client"), "{v}");
    let (s, v, _) = device_authorization(&srv, Some(("cc", "cc-secret")), &[]).await;
    assert_eq!((s, err(&v)), (400, "unauthorized_client"), "{v}");
    // Scopes as everywhere: unknown ones refused, the defaults when absent.
    let (s, v, _) =
        device_authorization(&srv, None, &[("client_id", "tv"), ("scope", "read nope")]).await;
    assert_eq!((s, err(&v)), (400, "invalid_scope"), "{v}");
    // A form body only.
    let res = srv
        .http
        .post(srv.url("/o/device-authorization/"))
        .header("content-type", "application/json")
        .body(r#"{"client_id":"tv"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(err(&v), "invalid_request");
}

/// Polls before and after the user's decision: pending, slow_down with the grown
/// interval, denied, expired, unknown, another client's code, a confidential client
/// without its secret, and a used code.
async fn polls_answer_every_state(db: Db) {
    let Some(srv) = server(db, settings()).await else {
        return;
    };
    let (device, user_code) = codes(&srv).await;
    // The first poll is pending; one right after it polls too fast.
    let (s, v, _) = poll(&srv, &device).await;
    assert_eq!((s, err(&v)), (400, "authorization_pending"), "{v}");
    let (s, v, h) = poll(&srv, &device).await;
    assert_eq!((s, err(&v)), (400, "slow_down"), "{v}");
    assert_eq!(v["interval"], 6, "1 s + 5 s: {v}");
    assert_eq!(h["retry-after"], "6");
    // The grown interval counts from now on: another quick poll is slow_down again.
    let (s, v, _) = poll(&srv, &device).await;
    assert_eq!(
        (s, err(&v), v["interval"].as_u64()),
        (400, "slow_down", Some(11)),
        "{v}"
    );

    // Another client's device code is unknown to it; a confidential client must
    // authenticate at the token endpoint too.
    let (s, v, _) = srv
        .token(
            Some(("tv-conf", "tv-secret")),
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", &device),
            ],
        )
        .await;
    assert_eq!((s, err(&v)), (400, "invalid_grant"), "{v}");
    let (s, v, _) = srv
        .token(
            None,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", &device),
                ("client_id", "tv-conf"),
            ],
        )
        .await;
    assert_eq!((s, err(&v)), (401, "invalid_client"), "{v}");
    // Unknown and missing device codes.
    let (s, v, _) = poll(&srv, "no-such-device-code").await;
    assert_eq!((s, err(&v)), (400, "invalid_grant"), "{v}");
    let (s, v, _) = srv
        .token(
            None,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", "tv"),
            ],
        )
        .await;
    assert_eq!((s, err(&v)), (400, "invalid_request"), "{v}");

    // Denied by the user.
    let user = User::signed_in(&srv).await;
    let (s, page) = user.decide(&user_code, "deny").await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("Device not connected"), "{page}");
    let (s, v, _) = poll(&srv, &device).await;
    assert_eq!((s, err(&v)), (400, "access_denied"), "{v}");

    // Expired: a grant whose time is up.
    let expired = format!("expired-{}", uuid_like());
    let expired_user_code = format!("XPD-{}", uuid_like());
    let now = Timestamp::now();
    srv.store
        .create_device_grant(NewDeviceGrant {
            device_code_checksum: token_checksum(&expired),
            user_code_checksum: token_checksum(&normalize_user_code(&expired_user_code)),
            scope: "read".into(),
            interval: 1,
            expires: now.add_secs(-1),
            client_id: "tv".into(),
            created: now.add_secs(-1801),
        })
        .await
        .unwrap();
    let (s, v, _) = poll(&srv, &expired).await;
    assert_eq!((s, err(&v)), (400, "expired_token"), "{v}");
    let (s, page, _) = user.post(&[("user_code", &expired_user_code)]).await;
    assert_eq!(s, 400);
    assert!(page.contains("This code has expired"), "{page}");

    // Approved, redeemed once, then used.
    let (device, user_code) = codes(&srv).await;
    let (s, page) = user
        .decide(&user_code.to_lowercase().replace('-', " "), "accept")
        .await;
    assert_eq!(s, 200, "lower case and a space instead of the dash: {page}");
    let (s, v, h) = poll(&srv, &device).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["refresh_token"].is_string(), "{v}");
    assert_eq!(srv.hello(v["access_token"].as_str().unwrap()).await.0, 200);
    let (s, v, _) = poll(&srv, &device).await;
    assert_eq!((s, err(&v)), (400, "invalid_grant"), "a used code: {v}");
    // Its user code is gone from the page too.
    let (s, page, _) = user.post(&[("user_code", &user_code)]).await;
    assert_eq!(s, 400);
    assert!(page.contains("This code is not valid"), "{page}");
}

/// The verification pages: login first (the code carried through), an unknown code and
/// an already decided one shown as errors on the page (never a redirect), CSRF, and an
/// unknown action.
async fn the_pages_keep_users_on_the_page(db: Db) {
    let Some(srv) = server(db, settings()).await else {
        return;
    };
    let anonymous = common::http::browser();
    let res = anonymous
        .get(srv.url("/o/device/?user_code=WDJB-MJHT"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str().unwrap();
    assert_eq!(
        location,
        "../login/?next=..%2Fdevice%2F%3Fuser_code%3DWDJB-MJHT"
    );
    let res = anonymous
        .post(srv.url("/o/device/"))
        .form(&[("user_code", "WDJB-MJHT")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "a post without a session logs in first");

    let user = User::signed_in(&srv).await;
    let (s, page, _) = user.post(&[("user_code", "BBBB-BBBB")]).await;
    assert_eq!(s, 400);
    assert!(page.contains("This code is not valid"), "{page}");
    assert!(
        page.contains("value=\"BBBB-BBBB\""),
        "kept in the field: {page}"
    );
    let (s, page, _) = user.post(&[("user_code", "")]).await;
    assert_eq!(s, 400);
    assert!(page.contains("Enter the code"), "{page}");

    // CSRF: a post without the token is refused.
    let (_, user_code) = codes(&srv).await;
    let res = user
        .browser
        .post(&user.device_url)
        .form(&[("user_code", user_code.as_str()), ("action", "accept")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // The confirmation page names the application and the scope.
    let (s, page, _) = user.post(&[("user_code", &user_code)]).await;
    assert_eq!(s, 200);
    assert!(
        page.contains("Living-room TV") && page.contains("Reading scope"),
        "{page}"
    );
    let (s, _, _) = user
        .post(&[("user_code", &user_code), ("action", "maybe")])
        .await;
    assert_eq!(s, 400);
    // Approved once; the second decision is an error on the page.
    let (s, _) = user.decide(&user_code, "accept").await;
    assert_eq!(s, 200);
    let (s, page, _) = user
        .post(&[("user_code", &user_code), ("action", "deny")])
        .await;
    assert_eq!(s, 400);
    assert!(page.contains("already used"), "{page}");
}

/// After DEVICE_USER_CODE_FAILURE_LIMIT wrong codes the page refuses further tries —
/// the right code included — with 429 and Retry-After.
async fn wrong_user_codes_are_throttled(db: Db) {
    let mut s = settings();
    s.device_user_code_failure_limit = 2;
    let Some(srv) = server(db, s).await else {
        return;
    };
    let (_, user_code) = codes(&srv).await;
    let user = User::signed_in(&srv).await;
    for wrong in ["BBBB-BBBB", "CCCC-CCCC"] {
        let (s, page, _) = user.post(&[("user_code", wrong)]).await;
        assert_eq!(s, 400, "{page}");
    }
    let (s, page, h) = user.post(&[("user_code", &user_code)]).await;
    assert_eq!(s, 429, "{page}");
    assert!(page.contains("Too many wrong codes"), "{page}");
    let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Signing in again does not reset the count: it is the user's, not the session's.
    let again = User::signed_in(&srv).await;
    let (s, _, _) = again.post(&[("user_code", &user_code)]).await;
    assert_eq!(s, 429);
}

/// Two polls racing after the approval: tokens exactly once, 50 times.
async fn concurrent_polls_redeem_once(db: Db) {
    let Some(srv) = server(db, settings()).await else {
        return;
    };
    let alice = srv
        .store
        .find_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    for round in 0..50 {
        let device = format!("race-{round}-{}", uuid_like());
        let now = Timestamp::now();
        let g = srv
            .store
            .create_device_grant(NewDeviceGrant {
                device_code_checksum: token_checksum(&device),
                user_code_checksum: token_checksum(&format!("RACE{round}{}", uuid_like())),
                scope: "read".into(),
                interval: 1,
                expires: now.add_secs(600),
                client_id: "tv".into(),
                created: now,
            })
            .await
            .unwrap();
        assert!(srv
            .store
            .update_device_grant_status(
                g.id,
                DeviceGrantStatus::AuthorizationPending,
                DeviceGrantStatus::Authorized,
                Some(alice.id),
            )
            .await
            .unwrap());
        let (a, b) = tokio::join!(poll(&srv, &device), poll(&srv, &device));
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 400], "round {round}: {} / {}", a.1, b.1);
        let (ok, lost) = if a.0 == 200 { (a, b) } else { (b, a) };
        assert_eq!(err(&lost.1), "invalid_grant", "round {round}");
        assert_eq!(
            srv.hello(ok.1["access_token"].as_str().unwrap()).await.0,
            200
        );
        assert!(srv
            .store
            .find_device_grant(&token_checksum(&device))
            .await
            .unwrap()
            .is_none());
    }
}

/// With OpenID Connect on, a device approved for `openid` gets a signed ID token for the
/// approving user, with the client as its audience.
async fn an_openid_device_gets_an_id_token(db: Db) {
    let mut s = settings();
    s.oidc_enabled = true;
    s.oidc_rsa_private_key =
        tower_oauth_toolkit::settings::Secret::new(include_str!("fixtures/rsa_private.pem"));
    s.scopes
        .insert("openid".into(), "OpenID Connect scope".into());
    let Some(srv) = server(db, s).await else {
        return;
    };
    let mut app = NewApplication::new("tv-oidc", ClientType::Public, GrantType::DeviceCode);
    app.algorithm = Algorithm::Rs256;
    srv.store.create_application(app).await.unwrap();
    let (s, v, _) = device_authorization(
        &srv,
        None,
        &[("client_id", "tv-oidc"), ("scope", "openid read")],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let device = v["device_code"].as_str().unwrap().to_owned();
    let user_code = v["user_code"].as_str().unwrap().to_owned();
    let user = User::signed_in(&srv).await;
    let (s, page, _) = user.post(&[("user_code", &user_code)]).await;
    assert_eq!(s, 200, "{page}");
    let (s, page, _) = user
        .post(&[("user_code", &user_code), ("action", "accept")])
        .await;
    assert_eq!(s, 200, "{page}");
    let (s, v, _) = srv
        .token(
            None,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", &device),
                ("client_id", "tv-oidc"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id_token = v["id_token"].as_str().expect("an ID token for openid");
    let key =
        jsonwebtoken::DecodingKey::from_rsa_pem(include_bytes!("fixtures/rsa_public.pem")).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["tv-oidc"]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .expect("signed by the provider's key, for the client")
        .claims;
    let alice = srv
        .store
        .find_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims["sub"], alice.id.to_string(), "{claims}");
    assert!(claims.get("nonce").is_none(), "{claims}");
}

/// Both metadata documents advertise the device endpoint and only grant types that the
/// token endpoint serves: each advertised one is tried there with a client of its type
/// and never answers `unsupported_grant_type`; the RFC 9700 gates take password and
/// implicit out of the documents as they take them out of service.
async fn metadata_advertises_only_what_works(db: Db) {
    for gated in [false, true] {
        let mut s = settings();
        s.oidc_enabled = true;
        s.oidc_rsa_private_key =
            tower_oauth_toolkit::settings::Secret::new(include_str!("fixtures/rsa_private.pem"));
        s.compliant_bcp_rfc9700_password_grant = gated;
        s.compliant_bcp_rfc9700_implicit_grant = gated;
        let Some(srv) = server(db, s).await else {
            return;
        };
        for doc in [
            "/o/.well-known/oauth-authorization-server",
            "/o/.well-known/openid-configuration",
        ] {
            let v: Value = srv
                .http
                .get(srv.url(doc))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(
                v["device_authorization_endpoint"],
                srv.url("/o/device-authorization/"),
                "{doc}: {v}"
            );
            let grants: Vec<&str> = v["grant_types_supported"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g.as_str().unwrap())
                .collect();
            assert!(
                grants.contains(&"urn:ietf:params:oauth:grant-type:device_code"),
                "{doc}: {grants:?}"
            );
            assert_eq!(grants.contains(&"password"), !gated, "{doc}: {grants:?}");
            assert_eq!(grants.contains(&"implicit"), !gated, "{doc}: {grants:?}");
            let responses: Vec<&str> = v["response_types_supported"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g.as_str().unwrap())
                .collect();
            assert_eq!(responses.contains(&"token"), !gated, "{doc}: {responses:?}");
            assert!(responses.contains(&"code"), "{doc}: {responses:?}");
            for grant in grants {
                let (client, form): (Basic, Vec<(&str, &str)>) = match grant {
                    "authorization_code" => (
                        Some(("code", "code-secret")),
                        vec![("code", "nope"), ("redirect_uri", REDIRECT)],
                    ),
                    "password" => (
                        Some(("pw", "pw-secret")),
                        vec![("username", "alice"), ("password", "alice-password-1")],
                    ),
                    "client_credentials" => (Some(("cc", "cc-secret")), vec![]),
                    "refresh_token" => (Some(("pw", "pw-secret")), vec![("refresh_token", "nope")]),
                    "urn:ietf:params:oauth:grant-type:device_code" => {
                        (None, vec![("client_id", "tv"), ("device_code", "nope")])
                    }
                    // The implicit grant is served by the authorization endpoint.
                    "implicit" => continue,
                    other => panic!("{doc} advertises {other:?}, which no test knows"),
                };
                let mut form = form;
                form.push(("grant_type", grant));
                let (s, v, _) = srv.token(client, &form).await;
                assert_ne!(
                    err(&v),
                    "unsupported_grant_type",
                    "{doc}: {grant} ({s}): {v}"
                );
            }
        }
        // What the gates take out is refused at the token endpoint.
        let (_, v, _) = srv
            .token(
                Some(("pw", "pw-secret")),
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", "alice-password-1"),
                ],
            )
            .await;
        assert_eq!(err(&v) == "unsupported_grant_type", gated, "{v}");
    }
}

on_both!(
    the_oauth2_crate_logs_a_device_in,
    the_device_endpoint_checks_its_clients,
    polls_answer_every_state,
    the_pages_keep_users_on_the_page,
    wrong_user_codes_are_throttled,
    concurrent_polls_redeem_once,
    an_openid_device_gets_an_id_token,
    metadata_advertises_only_what_works,
);
