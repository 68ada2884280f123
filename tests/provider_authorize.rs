//! The authorization endpoint, the login page and the consent page over real HTTP on
//! loopback (`axum::serve` on 127.0.0.1:0, the provider nested at `/o`), on an SQLite
//! file, driven by reqwest with a cookie jar and redirects off so every `Location` is
//! checked.
#![cfg(all(feature = "provider", feature = "sqlite"))]

mod common;

use common::html::{attr, hidden, hidden_fields, inputs};

use std::path::Path;
use std::sync::Arc;

use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, RETRY_AFTER, SET_COOKIE};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tower_oauth_toolkit::crypto::token_checksum;
use tower_oauth_toolkit::model::*;
use tower_oauth_toolkit::provider::{Provider, StoreUsers};
use tower_oauth_toolkit::settings::{ApprovalPrompt, Settings};
use tower_oauth_toolkit::store::sql::SqlStore;
use tower_oauth_toolkit::store::Store;

const CB: &str = "https://client.example/cb";
const LOOPBACK: &str = "http://127.0.0.1/callback";
const PASSWORD: &str = "alice-password-1";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Server {
    base: Url,
    store: Arc<SqlStore>,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn start(settings: Settings) -> Server {
    start_with(settings, None).await
}

async fn start_with(settings: Settings, template_dir: Option<&Path>) -> Server {
    let (store, dir) = common::sqlite_store().await;
    let store = Arc::new(store);
    let app = |id: &str, grant: GrantType, uris: &str| {
        let mut a = NewApplication::new(id, ClientType::Public, grant);
        a.redirect_uris = uris.into();
        a.name = format!("The {id} application");
        a
    };
    let mut skip = app("skip", GrantType::AuthorizationCode, CB);
    skip.skip_authorization = true;
    let mut no_pkce = app("no-pkce", GrantType::AuthorizationCode, CB);
    no_pkce.pkce_required = Some(false);
    for a in [
        app("code", GrantType::AuthorizationCode, CB),
        app(
            "multi",
            GrantType::AuthorizationCode,
            &format!("{CB} https://other.example/cb"),
        ),
        app("loop", GrantType::AuthorizationCode, LOOPBACK),
        app("implicit", GrantType::Implicit, CB),
        app("pw", GrantType::Password, CB),
        skip,
        no_pkce,
    ] {
        store.create_application(a).await.unwrap();
    }
    let users = StoreUsers::new(store.clone());
    users.create_user("alice", "", PASSWORD).await.unwrap();
    let mut builder = Provider::builder(settings, store.clone(), users).secret_key(vec![7; 32]);
    if let Some(d) = template_dir {
        builder = builder.template_dir(d);
    }
    let provider = builder.build().unwrap();
    let router = axum::Router::new().nest("/o", provider.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Server {
        base: Url::parse(&format!("http://{addr}/o/")).unwrap(),
        store,
        http: client(),
        dir,
    }
}

impl Server {
    fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap()
    }

    fn authorize_url(&self, pairs: &[(&str, &str)]) -> Url {
        let mut u = self.url("authorize/");
        u.query_pairs_mut().extend_pairs(pairs);
        u
    }

    async fn get(&self, url: Url) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    async fn post(&self, url: Url, form: &[(String, String)]) -> reqwest::Response {
        self.http.post(url).form(form).send().await.unwrap()
    }

    /// Logs alice in through the login page (no `next`).
    async fn login(&self) {
        let page = self.get(self.url("login/")).await.text().await.unwrap();
        let csrf = hidden(&page, "csrfmiddlewaretoken").expect("csrf field");
        let res = self
            .post(
                self.url("login/"),
                &owned(&[
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("csrfmiddlewaretoken", &csrf),
                ]),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.text().await.unwrap();
        assert!(body.contains("signed in as"), "{body}");
    }

    async fn grant_count(&self) -> i64 {
        let url = format!("sqlite://{}", self.dir.path().join("test.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let n = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM oauth2_grant")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `Location` of a redirect, resolved against the request URL.
fn location(res: &reqwest::Response) -> Url {
    let loc = res
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on a {} answer", res.status()))
        .to_str()
        .unwrap();
    res.url().join(loc).unwrap()
}

fn query(url: &Url) -> Vec<(String, String)> {
    url.query_pairs().into_owned().collect()
}

fn fragment(url: &Url) -> Vec<(String, String)> {
    url::form_urlencoded::parse(url.fragment().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn code_request(client_id: &str, state: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", client_id.into()),
        ("redirect_uri", CB.into()),
        ("scope", "read".into()),
        ("state", state.into()),
        ("code_challenge", CHALLENGE.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// GET authorize (logged in) and expect the consent page; its hidden fields.
async fn consent(s: &Server, pairs: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    let res = s.get(s.authorize_url(pairs)).await;
    assert_eq!(res.status(), StatusCode::OK, "expected the consent page");
    let body = res.text().await.unwrap();
    let fields = hidden_fields(&body);
    (body, fields)
}

/// Posts the consent form with `button` (`allow` or `deny`).
async fn decide(s: &Server, fields: &[(String, String)], button: &str) -> reqwest::Response {
    let mut form = fields.to_vec();
    form.push((button.into(), "x".into()));
    s.post(s.url("authorize/"), &form).await
}

async fn exchange(s: &Server, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = client()
        .post(s.url("token/"))
        .form(pairs)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

fn assert_error_page(res: &reqwest::Response) {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.headers().get(LOCATION).is_none(),
        "an error page never redirects"
    );
    assert!(res.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

// ----- tests -----

#[tokio::test]
async fn code_flow_with_pkce_s256_end_to_end() {
    let s = start(Settings::default()).await;
    let req = code_request("code", "xyz 123");
    let start_url = s.authorize_url(&as_refs(&req));

    // Not logged in: to the login page, with `next` leading back here.
    let res = s.get(start_url.clone()).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let login_url = location(&res);
    assert_eq!(login_url.path(), "/o/login/");

    let res = s.get(login_url.clone()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let page = res.text().await.unwrap();
    let all = inputs(&page);
    assert!(all.iter().any(|i| attr(i, "name") == Some("username")));
    assert!(all
        .iter()
        .any(|i| attr(i, "name") == Some("password") && attr(i, "type") == Some("password")));
    let csrf = hidden(&page, "csrfmiddlewaretoken").unwrap();
    let next = hidden(&page, "next").expect("next carried in the form");

    let res = s
        .post(
            s.url("login/"),
            &owned(&[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrfmiddlewaretoken", &csrf),
                ("next", &next),
            ]),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookies = set_cookies(res.headers());
    let session = cookies
        .iter()
        .find(|c| c.starts_with("oauth_toolkit_session="))
        .expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(!session.contains("Secure"), "plain http: {session}");
    let back = location(&res);
    assert_eq!(back.path(), "/o/authorize/");
    assert_eq!(query(&back), query(&start_url));

    // Consent page.
    let res = s.get(back).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let page = res.text().await.unwrap();
    assert!(page.contains("The code application"));
    assert!(page.contains("Reading scope"), "scope description shown");
    let fields = hidden_fields(&page);
    assert_eq!(param(&fields, "state"), Some("xyz 123"));
    assert_eq!(param(&fields, "code_challenge"), Some(CHALLENGE));
    assert!(page.contains("name=\"allow\""));

    // Approve.
    let res = decide(&s, &fields, "allow").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cb = location(&res);
    assert!(
        cb.as_str().starts_with("https://client.example/cb?"),
        "{cb}"
    );
    let q = query(&cb);
    assert_eq!(param(&q, "state"), Some("xyz 123"));
    let code = param(&q, "code").expect("code").to_string();
    assert!(code.len() >= 40);
    let grant = s
        .store
        .find_grant(&token_checksum(&code))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.scope, "read");
    assert_eq!(grant.redirect_uri, CB);
    assert_eq!(grant.pkce.as_ref().map(|p| p.method.as_str()), Some("S256"));
    assert!(
        !grant.code_checksum.contains(&code),
        "only the checksum is stored"
    );

    // Exchange at the token endpoint.
    let exchange_form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CB),
        ("client_id", "code"),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = exchange(&s, &exchange_form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["refresh_token"].is_string());
    // A wrong verifier would have failed; a replay fails.
    let (status, body) = exchange(&s, &exchange_form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn wrong_password_shows_the_login_page_again_without_a_session() {
    let s = start(Settings::default()).await;
    let page = s.get(s.url("login/")).await.text().await.unwrap();
    let csrf = hidden(&page, "csrfmiddlewaretoken").unwrap();
    let res = s
        .post(
            s.url("login/"),
            &owned(&[
                ("username", "alice"),
                ("password", "not-the-password"),
                ("csrfmiddlewaretoken", &csrf),
            ]),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(set_cookies(res.headers())
        .iter()
        .all(|c| !c.starts_with("oauth_toolkit_session=")));
    let page = res.text().await.unwrap();
    assert!(page.contains("correct username and password"), "{page}");
    assert!(inputs(&page)
        .iter()
        .any(|i| attr(i, "name") == Some("password")));
    assert_eq!(
        inputs(&page)
            .iter()
            .find(|i| attr(i, "name") == Some("username"))
            .and_then(|i| attr(i, "value")),
        Some("alice")
    );
    // Still not logged in.
    let req = code_request("code", "s");
    let res = s.get(s.authorize_url(&as_refs(&req))).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(location(&res).path(), "/o/login/");
}

/// After LOGIN_FAILURE_LIMIT wrong passwords the login page refuses the right one too,
/// says why and for how long (429, Retry-After), and signs in once the lockout is over
/// (issue 12).
#[tokio::test]
async fn failed_logins_are_throttled() {
    let mut settings = Settings::default();
    settings.login_failure_limit = 3;
    settings.lockout_seconds = std::time::Duration::from_secs(2);
    let s = start(settings).await;
    let attempt = |password: &'static str| {
        let s = &s;
        async move {
            let page = s.get(s.url("login/")).await.text().await.unwrap();
            let csrf = hidden(&page, "csrfmiddlewaretoken").unwrap();
            s.post(
                s.url("login/"),
                &owned(&[
                    ("username", "alice"),
                    ("password", password),
                    ("csrfmiddlewaretoken", &csrf),
                ]),
            )
            .await
        }
    };
    for _ in 0..3 {
        let res = attempt("not-the-password").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get(RETRY_AFTER).is_none());
    }
    let res = attempt(PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert!(set_cookies(res.headers())
        .iter()
        .all(|c| !c.starts_with("oauth_toolkit_session=")));
    let page = res.text().await.unwrap();
    assert!(page.contains("Too many failed sign-ins"), "{page}");
    assert!(page.contains("Try again in"), "{page}");
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    s.login().await;
}

#[tokio::test]
async fn login_without_csrf_token_is_forbidden() {
    let s = start(Settings::default()).await;
    let page = s.get(s.url("login/")).await.text().await.unwrap();
    let csrf = hidden(&page, "csrfmiddlewaretoken").unwrap();
    for token in ["", "forged-token", &csrf[..csrf.len() - 1]] {
        let res = s
            .post(
                s.url("login/"),
                &owned(&[
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("csrfmiddlewaretoken", token),
                ]),
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(set_cookies(res.headers())
            .iter()
            .all(|c| !c.starts_with("oauth_toolkit_session=")));
    }
    // A token from another browser (another pre-session cookie) does not work either.
    let other = client();
    let res = other
        .post(s.url("login/"))
        .form(&owned(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrfmiddlewaretoken", &csrf),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn consent_post_without_valid_csrf_is_forbidden_and_issues_nothing() {
    let s = start(Settings::default()).await;
    s.login().await;
    let req = code_request("code", "st");
    let (_, fields) = consent(&s, &as_refs(&req)).await;
    let without: Vec<_> = fields
        .iter()
        .filter(|(k, _)| k != "csrfmiddlewaretoken")
        .cloned()
        .collect();
    let res = decide(&s, &without, "allow").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get(LOCATION).is_none());
    let mut forged = without.clone();
    forged.push(("csrfmiddlewaretoken".into(), "AAAA".into()));
    let res = decide(&s, &forged, "allow").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Another user-agent with the right token but no session gets nothing either.
    let res = client()
        .post(s.url("authorize/"))
        .form(&[fields.clone(), owned(&[("allow", "x")])].concat())
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), StatusCode::OK);
    assert!(res
        .headers()
        .get(LOCATION)
        .is_none_or(|l| l.to_str().unwrap().starts_with("../login/")));
    assert_eq!(s.grant_count().await, 0, "nothing was issued");
    // The real form works.
    let res = decide(&s, &fields, "allow").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(param(&query(&location(&res)), "code").is_some());
    assert_eq!(s.grant_count().await, 1);
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_state() {
    let s = start(Settings::default()).await;
    s.login().await;
    let req = code_request("code", "keep-me");
    let (_, fields) = consent(&s, &as_refs(&req)).await;
    let res = decide(&s, &fields, "deny").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cb = location(&res);
    assert!(cb.as_str().starts_with(CB));
    let q = query(&cb);
    assert_eq!(param(&q, "error"), Some("access_denied"));
    assert_eq!(param(&q, "state"), Some("keep-me"));
    assert!(param(&q, "code").is_none());
    assert_eq!(s.grant_count().await, 0);
}

#[tokio::test]
async fn bad_client_or_redirect_uri_gets_the_error_page_never_a_redirect() {
    let s = start(Settings::default()).await;
    s.login().await;
    let cases: Vec<Vec<(&str, &str)>> = vec![
        // Unregistered redirect URI.
        vec![
            ("response_type", "code"),
            ("client_id", "code"),
            ("redirect_uri", "https://evil.example/cb"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
        // A registered URI with extra query parameters is not the registered URI.
        vec![
            ("response_type", "code"),
            ("client_id", "code"),
            ("redirect_uri", "https://client.example/cb?x=1"),
        ],
        // Unknown client.
        vec![
            ("response_type", "code"),
            ("client_id", "nobody"),
            ("redirect_uri", CB),
        ],
        // Missing client.
        vec![("response_type", "code"), ("redirect_uri", CB)],
        // Several registered, none sent.
        vec![("response_type", "code"), ("client_id", "multi")],
        // Repeated client_id / redirect_uri.
        vec![
            ("response_type", "code"),
            ("client_id", "code"),
            ("client_id", "code"),
        ],
        vec![
            ("response_type", "code"),
            ("client_id", "code"),
            ("redirect_uri", CB),
            ("redirect_uri", CB),
        ],
    ];
    for case in cases {
        let res = s.get(s.authorize_url(&case)).await;
        assert_error_page(&res);
        let body = res.text().await.unwrap();
        assert!(body.contains("<h1>"), "{body}");
    }
    let res = s
        .get(s.authorize_url(&[("response_type", "code"), ("client_id", "nobody")]))
        .await;
    let body = res.text().await.unwrap();
    assert!(body.contains("Invalid client_id"), "{body}");
}

#[tokio::test]
async fn loopback_redirect_accepts_any_port_but_not_another_host() {
    let s = start(Settings::default()).await;
    s.login().await;
    let with_uri = |uri: &'static str| {
        vec![
            ("response_type", "code"),
            ("client_id", "loop"),
            ("redirect_uri", uri),
            ("state", "lb"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
    };
    let (_, fields) = consent(&s, &with_uri("http://127.0.0.1:51234/callback")).await;
    let res = decide(&s, &fields, "allow").await;
    let cb = location(&res);
    assert_eq!(cb.port(), Some(51234));
    assert_eq!(cb.path(), "/callback");
    assert!(param(&query(&cb), "code").is_some());
    for bad in [
        "http://127.0.0.2:51234/callback",
        "http://localhost:51234/callback",
        "http://127.0.0.1:51234/other",
        "https://127.0.0.1:51234/callback",
    ] {
        let res = s.get(s.authorize_url(&with_uri(bad))).await;
        assert_error_page(&res);
    }
}

#[tokio::test]
async fn missing_pkce_when_required_redirects_with_invalid_request() {
    let s = start(Settings::default()).await;
    let pairs = [
        ("response_type", "code"),
        ("client_id", "code"),
        ("redirect_uri", CB),
        ("state", "p"),
    ];
    let res = s.get(s.authorize_url(&pairs)).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let q = query(&location(&res));
    assert!(location(&res).as_str().starts_with(CB));
    assert_eq!(param(&q, "error"), Some("invalid_request"));
    assert!(param(&q, "error_description")
        .unwrap()
        .contains("code_challenge"));
    assert_eq!(param(&q, "state"), Some("p"));
    // The application's own setting wins: no PKCE needed for "no-pkce".
    let pairs = [("response_type", "code"), ("client_id", "no-pkce")];
    let res = s.get(s.authorize_url(&pairs)).await;
    assert_eq!(location(&res).path(), "/o/login/");
    // A malformed challenge, and plain under COMPLIANT_BCP_RFC9700_PKCE_METHOD.
    let pairs = [
        ("response_type", "code"),
        ("client_id", "code"),
        ("code_challenge", "too-short"),
    ];
    let res = s.get(s.authorize_url(&pairs)).await;
    assert_eq!(
        param(&query(&location(&res)), "error"),
        Some("invalid_request")
    );
    let mut strict = Settings::default();
    strict.compliant_bcp_rfc9700_pkce_method = true;
    let s = start(strict).await;
    let pairs = [
        ("response_type", "code"),
        ("client_id", "code"),
        ("code_challenge", VERIFIER),
        ("code_challenge_method", "plain"),
    ];
    let res = s.get(s.authorize_url(&pairs)).await;
    assert_eq!(
        param(&query(&location(&res)), "error"),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn unknown_scope_redirects_with_invalid_scope() {
    let s = start(Settings::default()).await;
    let mut req = code_request("code", "sc");
    req[3].1 = "read launch-missiles".into();
    let res = s.get(s.authorize_url(&as_refs(&req))).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let q = query(&location(&res));
    assert_eq!(param(&q, "error"), Some("invalid_scope"));
    assert_eq!(param(&q, "state"), Some("sc"));
}

#[tokio::test]
async fn response_type_errors_redirect() {
    let s = start(Settings::default()).await;
    // A code-flow client asking for a token: unauthorized_client, in the fragment.
    let res = s
        .get(s.authorize_url(&[
            ("response_type", "token"),
            ("client_id", "code"),
            ("state", "f"),
        ]))
        .await;
    let cb = location(&res);
    assert!(cb.query().is_none());
    let f = fragment(&cb);
    assert_eq!(param(&f, "error"), Some("unauthorized_client"));
    assert_eq!(param(&f, "state"), Some("f"));
    // An unknown response type, a missing one, a password client.
    for (pairs, error) in [
        (
            vec![("response_type", "id_token"), ("client_id", "code")],
            "unsupported_response_type",
        ),
        (vec![("client_id", "code")], "invalid_request"),
        (
            vec![("response_type", "code"), ("client_id", "pw")],
            "unauthorized_client",
        ),
    ] {
        let res = s.get(s.authorize_url(&pairs)).await;
        assert_eq!(res.status(), StatusCode::FOUND);
        assert_eq!(param(&query(&location(&res)), "error"), Some(error));
    }
    // The implicit grant switched off (RFC 9700).
    let mut settings = Settings::default();
    settings.compliant_bcp_rfc9700_implicit_grant = true;
    let s = start(settings).await;
    let res = s
        .get(s.authorize_url(&[("response_type", "token"), ("client_id", "implicit")]))
        .await;
    assert_eq!(
        param(&fragment(&location(&res)), "error"),
        Some("unsupported_response_type")
    );
}

#[tokio::test]
async fn implicit_flow_returns_the_token_in_the_fragment() {
    let s = start(Settings::default()).await;
    s.login().await;
    let pairs = [
        ("response_type", "token"),
        ("client_id", "implicit"),
        ("redirect_uri", CB),
        ("scope", "read write"),
        ("state", "imp"),
    ];
    let (_, fields) = consent(&s, &pairs).await;
    let res = decide(&s, &fields, "allow").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cb = location(&res);
    assert!(cb.query().is_none(), "nothing in the query: {cb}");
    let f = fragment(&cb);
    assert_eq!(param(&f, "token_type"), Some("Bearer"));
    assert_eq!(param(&f, "scope"), Some("read write"));
    assert_eq!(param(&f, "state"), Some("imp"));
    assert!(param(&f, "refresh_token").is_none());
    let expires_in: i64 = param(&f, "expires_in").unwrap().parse().unwrap();
    assert!(expires_in > 35000);
    let token = param(&f, "access_token").unwrap();
    let stored = s
        .store
        .find_access_token(&token_checksum(token))
        .await
        .unwrap()
        .expect("token stored by checksum");
    assert_eq!(stored.username.as_deref(), Some("alice"));
    assert_eq!(stored.token.scope, "read write");
}

#[tokio::test]
async fn skip_authorization_skips_the_consent_page() {
    let s = start(Settings::default()).await;
    s.login().await;
    let req = code_request("skip", "sk");
    let res = s.get(s.authorize_url(&as_refs(&req))).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let q = query(&location(&res));
    assert!(param(&q, "code").is_some());
    assert_eq!(param(&q, "state"), Some("sk"));
}

#[tokio::test]
async fn approval_prompt_auto_skips_consent_once_a_token_covers_the_scopes() {
    let mut settings = Settings::default();
    settings.request_approval_prompt = ApprovalPrompt::Auto;
    let s = start(settings).await;
    s.login().await;
    let mut req = code_request("code", "a1");
    req[3].1 = "read write".into();
    // First time: the consent page.
    let (_, fields) = consent(&s, &as_refs(&req)).await;
    let res = decide(&s, &fields, "allow").await;
    let code = param(&query(&location(&res)), "code").unwrap().to_string();
    let (status, body) = exchange(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("client_id", "code"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Now a live token covers `read`: approved without a page.
    let mut again = code_request("code", "a2");
    again[3].1 = "read".into();
    let res = s.get(s.authorize_url(&as_refs(&again))).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let q = query(&location(&res));
    assert!(param(&q, "code").is_some());
    assert_eq!(param(&q, "state"), Some("a2"));
    // prompt=consent still asks.
    let mut forced = as_refs(&again);
    forced.push(("prompt", "consent"));
    consent(&s, &forced).await;
}

#[tokio::test]
async fn approval_prompt_force_always_asks_unless_the_request_says_auto() {
    let s = start(Settings::default()).await;
    s.login().await;
    let pairs = [
        ("response_type", "token"),
        ("client_id", "implicit"),
        ("scope", "read"),
    ];
    let (_, fields) = consent(&s, &pairs).await;
    let res = decide(&s, &fields, "allow").await;
    assert!(param(&fragment(&location(&res)), "access_token").is_some());
    // REQUEST_APPROVAL_PROMPT = force: asked again.
    consent(&s, &pairs).await;
    // DOT's approval_prompt=auto request parameter.
    let mut auto = pairs.to_vec();
    auto.push(("approval_prompt", "auto"));
    let res = s.get(s.authorize_url(&auto)).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(param(&fragment(&location(&res)), "access_token").is_some());
}

#[tokio::test]
async fn repeated_parameters_are_refused() {
    let s = start(Settings::default()).await;
    let base = code_request("code", "r");
    // Repeated state: invalid_request, and no state to echo.
    let mut pairs = as_refs(&base);
    pairs.push(("state", "again"));
    let res = s.get(s.authorize_url(&pairs)).await;
    let q = query(&location(&res));
    assert_eq!(param(&q, "error"), Some("invalid_request"));
    assert!(param(&q, "state").is_none());
    // Repeated scope: invalid_request with state.
    let mut pairs = as_refs(&base);
    pairs.push(("scope", "write"));
    let res = s.get(s.authorize_url(&pairs)).await;
    let q = query(&location(&res));
    assert_eq!(param(&q, "error"), Some("invalid_request"));
    assert!(param(&q, "error_description").unwrap().contains("scope"));
    assert_eq!(param(&q, "state"), Some("r"));
    // On the consent form too.
    s.login().await;
    let (_, fields) = consent(&s, &as_refs(&base)).await;
    let mut doubled = fields.clone();
    doubled.push(("code_challenge".into(), CHALLENGE.into()));
    let res = decide(&s, &doubled, "allow").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        param(&query(&location(&res)), "error"),
        Some("invalid_request")
    );
    assert_eq!(s.grant_count().await, 0);
}

/// 101 query parameters are refused as too many (an error page naming the limit), not
/// reported as a missing client_id (issue 12).
#[tokio::test]
async fn too_many_parameters_are_said_to_be_too_many() {
    let s = start(Settings::default()).await;
    let base = code_request("code", "r");
    let mut pairs: Vec<(String, String)> = base
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    for i in pairs.len()..=100 {
        pairs.push((format!("x{i}"), "1".into()));
    }
    assert_eq!(pairs.len(), 101);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let res = s.get(s.authorize_url(&refs)).await;
    assert_error_page(&res);
    let body = res.text().await.unwrap();
    assert!(body.contains("More than 100 parameters"), "{body}");
    assert!(!body.contains("client_id parameter is missing"), "{body}");
    // One fewer is an ordinary request.
    let res = s.get(s.authorize_url(&refs[..100])).await;
    assert_ne!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn consent_post_checks_the_request_again() {
    let s = start(Settings::default()).await;
    s.login().await;
    let req = code_request("code", "rv");
    let (_, fields) = consent(&s, &as_refs(&req)).await;
    let tamper = |name: &str, value: &str| -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(k, v)| {
                if k == name {
                    (k.clone(), value.to_string())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect()
    };
    let res = decide(
        &s,
        &tamper("redirect_uri", "https://evil.example/cb"),
        "allow",
    )
    .await;
    assert_error_page(&res);
    let res = decide(&s, &tamper("scope", "read admin"), "allow").await;
    assert_eq!(
        param(&query(&location(&res)), "error"),
        Some("invalid_scope")
    );
    let res = decide(&s, &tamper("code_challenge_method", "S512"), "allow").await;
    assert_eq!(
        param(&query(&location(&res)), "error"),
        Some("invalid_request")
    );
    assert_eq!(s.grant_count().await, 0);
}

#[tokio::test]
async fn omitted_redirect_uri_uses_the_registered_one_and_is_not_required_later() {
    let s = start(Settings::default()).await;
    s.login().await;
    let pairs = [
        ("response_type", "code"),
        ("client_id", "code"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let (_, fields) = consent(&s, &pairs).await;
    let res = decide(&s, &fields, "allow").await;
    let cb = location(&res);
    assert!(cb.as_str().starts_with(&format!("{CB}?code=")), "{cb}");
    let code = param(&query(&cb), "code").unwrap().to_string();
    let grant = s
        .store
        .find_grant(&token_checksum(&code))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.redirect_uri, "", "remembered as omitted");
    let (status, body) = exchange(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "code"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn prompt_none_without_session_is_login_required() {
    let s = start(Settings::default()).await;
    let req = code_request("code", "pn");
    let mut pairs = as_refs(&req);
    pairs.push(("prompt", "none"));
    let res = s.get(s.authorize_url(&pairs)).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let q = query(&location(&res));
    assert_eq!(param(&q, "error"), Some("login_required"));
    assert_eq!(param(&q, "state"), Some("pn"));
}

#[tokio::test]
async fn login_next_only_leads_back_to_the_provider() {
    let s = start(Settings::default()).await;
    for next in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "../../../x",
    ] {
        let mut login = s.url("login/");
        login.query_pairs_mut().append_pair("next", next);
        let page = s.get(login).await.text().await.unwrap();
        assert!(
            hidden(&page, "next").is_none(),
            "{next} dropped from the form"
        );
        let csrf = hidden(&page, "csrfmiddlewaretoken").unwrap();
        let res = s
            .post(
                s.url("login/"),
                &owned(&[
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("csrfmiddlewaretoken", &csrf),
                    ("next", next),
                ]),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{next} not followed");
        assert!(res.headers().get(LOCATION).is_none());
    }
}

#[tokio::test]
async fn session_cookie_is_secure_behind_https_and_tampering_logs_out() {
    let s = start(Settings::default()).await;
    // Behind a TLS-terminating proxy.
    let c = client();
    let res = c
        .get(s.url("login/"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let cookies = set_cookies(res.headers());
    let pre = cookies
        .iter()
        .find(|c| c.starts_with("oauth_toolkit_csrf="))
        .unwrap();
    assert!(pre.contains("Secure") && pre.contains("HttpOnly") && pre.contains("SameSite=Lax"));
    let page = res.text().await.unwrap();
    let csrf = hidden(&page, "csrfmiddlewaretoken").unwrap();
    let pre_value = pre.split(';').next().unwrap().to_string();
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(s.url("login/"))
        .header("x-forwarded-proto", "https")
        .header("cookie", &pre_value)
        .form(&owned(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrfmiddlewaretoken", &csrf),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookies = set_cookies(res.headers());
    let session = cookies
        .iter()
        .find(|c| c.starts_with("oauth_toolkit_session="))
        .expect("session cookie");
    assert!(session.contains("Secure"), "{session}");
    let value = session.split(';').next().unwrap().to_string();

    // The genuine cookie is a session; a tampered one is not (and is cleared).
    let req = code_request("code", "t");
    let url = s.authorize_url(&as_refs(&req));
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = plain
        .get(url.clone())
        .header("cookie", &value)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "consent page with the genuine cookie"
    );
    let mut forged = value.clone();
    forged.pop();
    forged.push(if value.ends_with('A') { 'B' } else { 'A' });
    let res = plain
        .get(url)
        .header("cookie", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(location(&res).path(), "/o/login/");
    assert!(set_cookies(res.headers())
        .iter()
        .any(|c| c.starts_with("oauth_toolkit_session=;") && c.contains("Max-Age=0")));
}

#[tokio::test]
async fn template_dir_overrides_a_built_in_page() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("login.html"),
        "{% extends \"base.html\" %}{% block content %}<p>ACME corporate sign-in</p>\
         <form method=\"post\" action=\"{{ action }}\">\
         <input type=\"hidden\" name=\"csrfmiddlewaretoken\" value=\"{{ csrf_token }}\">\
         <input name=\"username\"><input type=\"password\" name=\"password\">\
         <button>Go</button></form>{% endblock %}",
    )
    .unwrap();
    let s = start_with(Settings::default(), Some(dir.path())).await;
    let page = s.get(s.url("login/")).await.text().await.unwrap();
    assert!(page.contains("ACME corporate sign-in"), "{page}");
    assert!(hidden(&page, "csrfmiddlewaretoken").is_some());
    // The other pages are still the built-in ones.
    let res = s.get(s.authorize_url(&[("client_id", "nobody")])).await;
    assert!(res.text().await.unwrap().contains("Invalid client_id"));

    // A broken override fails the build with the file's name.
    std::fs::write(dir.path().join("authorize.html"), "{% for %}").unwrap();
    let (store, _tmp) = common::sqlite_store().await;
    let store = Arc::new(store);
    let err = Provider::builder(Settings::default(), store.clone(), StoreUsers::new(store))
        .template_dir(dir.path())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("authorize.html"), "{err}");
}
