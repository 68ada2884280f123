//! A running provider for end-to-end tests: the standalone server's app (provider at
//! `/o/`, demo API) on 127.0.0.1:0 over an SQLite file or a PostgreSQL schema, with a few
//! applications and one user, and HTTP helpers.

use std::sync::Arc;

use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, ClientSecret, IntrospectionUrl, RevocationUrl, StandardRevocableToken, TokenUrl,
};
use serde_json::Value;
use tower_oauth_toolkit::crypto::token_checksum;
use tower_oauth_toolkit::hashers::{hash_secret, SecretHasher};
use tower_oauth_toolkit::model::*;
use tower_oauth_toolkit::provider::{Provider, StoreUsers};
use tower_oauth_toolkit::settings::Settings;
use tower_oauth_toolkit::store::sql::SqlStore;
use tower_oauth_toolkit::store::Store;

pub const REDIRECT: &str = "http://127.0.0.1:9/cb";

pub struct Server {
    pub base: String,
    pub store: Arc<SqlStore>,
    pub http: reqwest::Client,
    pub _dir: Option<tempfile::TempDir>,
}

#[derive(Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A store configured as `oauth-toolkit serve` configures it (token cache on).
pub async fn open(db: Db) -> Option<(SqlStore, Option<tempfile::TempDir>)> {
    match db {
        Db::Sqlite => {
            let (s, d) = super::sqlite_store_with(super::serve_options()).await;
            Some((s, Some(d)))
        }
        Db::Postgres => super::postgres_store_in_schema_with(super::serve_options())
            .await
            .map(|(s, _, _)| (s, None)),
    }
}

/// Starts the standalone server's app (provider at /o/, demo API) on 127.0.0.1:0 with a
/// few applications and one user.
pub async fn start(db: Db, settings: Settings) -> Option<Server> {
    let (store, dir) = open(db).await?;
    Some(start_with(store, dir, settings).await)
}

/// [`start`] on a store opened by the caller.
pub async fn start_with(
    store: SqlStore,
    dir: Option<tempfile::TempDir>,
    settings: Settings,
) -> Server {
    let store = Arc::new(store);
    let app = |id: &str, t: ClientType, g: GrantType, secret: Option<&str>| {
        let mut a = NewApplication::new(id, t, g);
        if let Some(s) = secret {
            a.client_secret = hash_secret(s, SecretHasher::Argon2).unwrap();
        }
        a.redirect_uris = REDIRECT.into();
        a.name = id.into();
        if id == "pub-pw" {
            a.allowed_origins = "https://spa.example".into();
        }
        a
    };
    for a in [
        app(
            "cc",
            ClientType::Confidential,
            GrantType::ClientCredentials,
            Some("cc-secret"),
        ),
        app(
            "pw",
            ClientType::Confidential,
            GrantType::Password,
            Some("pw-secret"),
        ),
        app("pub-pw", ClientType::Public, GrantType::Password, None),
        app(
            "code",
            ClientType::Confidential,
            GrantType::AuthorizationCode,
            Some("code-secret"),
        ),
        app(
            "other",
            ClientType::Confidential,
            GrantType::AuthorizationCode,
            Some("other-secret"),
        ),
    ] {
        store.create_application(a).await.unwrap();
    }
    // OpenID Connect clients: RS256, and HS256 with an unhashed secret (DOT's rule).
    let mut oidc = app(
        "oidc",
        ClientType::Confidential,
        GrantType::AuthorizationCode,
        Some("oidc-secret"),
    );
    oidc.algorithm = Algorithm::Rs256;
    store.create_application(oidc).await.unwrap();
    let mut hs = NewApplication::new(
        "oidc-hs",
        ClientType::Confidential,
        GrantType::AuthorizationCode,
    );
    hs.client_secret = "oidc-hs-secret-0123456789-0123456789".into();
    hs.hash_client_secret = false;
    hs.algorithm = Algorithm::Hs256;
    hs.redirect_uris = REDIRECT.into();
    hs.name = "oidc-hs".into();
    store.create_application(hs).await.unwrap();
    let users = StoreUsers::new(store.clone());
    users
        .create_user("alice", "", "alice-password-1")
        .await
        .unwrap();
    let provider = Provider::builder(settings, store.clone(), users)
        .secret_key(vec![7; 32])
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metadata = tower_oauth_toolkit::cli::demo_api_metadata(provider.settings(), None).unwrap();
    let router = tower_oauth_toolkit::cli::serve_app(&provider, &metadata);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Server {
        base: format!("http://{addr}"),
        store,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _dir: dir,
    }
}

/// oauth2's HTTP goes through reqwest 0.13 here.
pub use super::http::send;

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn oauth_client(
        &self,
        id: &str,
        secret: Option<&str>,
    ) -> oauth2::Client<
        oauth2::basic::BasicErrorResponse,
        oauth2::basic::BasicTokenResponse,
        oauth2::basic::BasicTokenIntrospectionResponse,
        StandardRevocableToken,
        oauth2::basic::BasicRevocationErrorResponse,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
        oauth2::EndpointSet,
        oauth2::EndpointSet,
    > {
        let mut c = BasicClient::new(ClientId::new(id.into()))
            .set_token_uri(TokenUrl::new(self.url("/o/token/")).unwrap())
            .set_introspection_url(IntrospectionUrl::new(self.url("/o/introspect/")).unwrap())
            .set_revocation_url(RevocationUrl::new(self.url("/o/revoke_token/")).unwrap());
        if let Some(s) = secret {
            c = c.set_client_secret(ClientSecret::new(s.into()));
        }
        c
    }

    pub fn http_fn(
        &self,
    ) -> impl Fn(
        oauth2::HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, reqwest::Error>> + Send>,
    > + '_ {
        move |req| Box::pin(send(self.http.clone(), req))
    }

    /// A raw form POST to the token endpoint: (status, JSON, headers).
    pub async fn token(
        &self,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        self.post("/o/token/", basic, form).await
    }

    pub async fn post(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        )
    }

    pub async fn introspect(&self, token: &str) -> Value {
        let (s, v, _) = self
            .post(
                "/o/introspect/",
                Some(("cc", "cc-secret")),
                &[("token", token)],
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    pub async fn hello(&self, token: &str) -> (u16, Value) {
        let res = self
            .http
            .get(self.url("/api/hello"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let s = res.status().as_u16();
        (s, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn password_pair(&self) -> (String, String) {
        let (s, v, _) = self
            .token(
                Some(("pw", "pw-secret")),
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", "alice-password-1"),
                    ("scope", "read write"),
                ],
            )
            .await;
        assert_eq!(s, 200, "{v}");
        (
            v["access_token"].as_str().unwrap().to_owned(),
            v["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    /// An authorization code for `app`, written straight to the store (the authorize
    /// endpoint has its own tests).
    pub async fn code(
        &self,
        app: &str,
        challenge: Option<(&str, &str)>,
        expires_in: i64,
    ) -> String {
        let app = self
            .store
            .find_application_by_client_id(app)
            .await
            .unwrap()
            .unwrap();
        let user = self
            .store
            .find_user_by_username("alice")
            .await
            .unwrap()
            .unwrap();
        let code = format!("code-{}", uuid_like());
        let now = Timestamp::now();
        self.store
            .create_grant(NewGrant {
                resource: String::new(),
                user_id: user.id,
                code_checksum: token_checksum(&code),
                application_id: app.id,
                expires: now.add_secs(expires_in),
                redirect_uri: REDIRECT.into(),
                scope: "read".into(),
                pkce: challenge.map(|(challenge, method)| PkceChallenge {
                    challenge: challenge.to_owned(),
                    method: method.parse().expect("a PKCE method"),
                }),
                nonce: String::new(),
                claims: String::new(),
                auth_time: Some(now),
                created: now,
            })
            .await
            .unwrap();
        code
    }
}

pub fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub fn err(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

/// Fills in and posts the login form at `login_url` as alice; the answer (a redirect
/// back to where the login was asked for).
pub async fn sign_in_as_alice(
    browser: &reqwest::Client,
    login_url: reqwest::Url,
) -> reqwest::Response {
    let page = browser
        .get(login_url.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut form = super::html::hidden_fields(&page);
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), "alice-password-1".into()));
    browser.post(login_url).form(&form).send().await.unwrap()
}

impl Server {
    /// A browser (reqwest with a cookie jar) signing in as alice and approving the
    /// authorization request at `authorize_url`; returns the URL the provider redirects
    /// to (the client's callback, with the response in its query or fragment).
    pub async fn browser_approve(&self, authorize_url: reqwest::Url) -> reqwest::Url {
        use super::html::hidden_fields;
        let browser = super::http::browser();
        let follow = |res: &reqwest::Response| -> reqwest::Url {
            assert!(res.status().is_redirection(), "{}", res.status());
            let location = res.headers()["location"].to_str().unwrap();
            res.url().join(location).unwrap()
        };
        let res = browser.get(authorize_url).send().await.unwrap();
        let login_url = follow(&res);
        assert!(login_url.path().ends_with("/o/login/"), "{login_url}");
        let res = sign_in_as_alice(&browser, login_url).await;
        let back = follow(&res);
        let consent = browser.get(back).send().await.unwrap();
        if consent.status().is_redirection() {
            return follow(&consent); // consent not needed (skip_authorization)
        }
        assert_eq!(consent.status(), 200);
        let consent_url = consent.url().clone();
        let page = consent.text().await.unwrap();
        let mut form = hidden_fields(&page);
        form.push(("allow".into(), "Authorize".into()));
        let res = browser.post(consent_url).form(&form).send().await.unwrap();
        follow(&res)
    }
}
