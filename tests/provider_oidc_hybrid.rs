//! OpenID Connect at the authorization endpoint: the implicit (`id_token`,
//! `id_token token`) and hybrid (`code id_token`, `code token`, `code id_token token`)
//! response types, `nonce`, `prompt=none` and `max_age`, over real HTTP on loopback
//! (`axum::serve` on 127.0.0.1:0, the provider nested at `/o`) on an SQLite file. A
//! browser is played by reqwest (cookie jar, redirects off); the relying party is the
//! `openidconnect` crate, which builds the hybrid request, verifies every ID token
//! (signature against the provider's JWKS, `iss`, `aud`, `exp`, `nonce`), checks
//! `c_hash` / `at_hash`, and exchanges the code.
#![cfg(all(feature = "provider", feature = "sqlite"))]

mod common;

use common::http::{browser, send};

use common::html::{hidden, hidden_fields};

use std::sync::Arc;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier,
    CoreJsonWebKeySet, CoreResponseType,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, AuthorizationCodeHash, ClientId, CsrfToken,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    TokenUrl,
};
use reqwest::header::LOCATION;
use reqwest::{StatusCode, Url};
use tower_oauth_toolkit::crypto::token_checksum;
use tower_oauth_toolkit::model::*;
use tower_oauth_toolkit::provider::oidc::keys::SigningKeys;
use tower_oauth_toolkit::provider::{Provider, StoreUsers};
use tower_oauth_toolkit::settings::{ApprovalPrompt, Secret, Settings};
use tower_oauth_toolkit::store::sql::SqlStore;
use tower_oauth_toolkit::store::Store;

const CB: &str = "https://client.example/cb";
const PASSWORD: &str = "alice-password-1";
const EMAIL: &str = "alice@example.com";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Server {
    base: Url,
    issuer: String,
    store: Arc<SqlStore>,
    http: reqwest::Client,
    jwks: CoreJsonWebKeySet,
    _dir: tempfile::TempDir,
}

fn oidc_settings() -> Settings {
    let mut s = Settings::default();
    s.oidc_enabled = true;
    s.oidc_rsa_private_key = Secret::new(include_str!("fixtures/rsa_private.pem"));
    s.scopes = [
        ("openid", "OpenID Connect"),
        ("profile", "Your profile"),
        ("email", "Your email address"),
        ("read", "Reading scope"),
        ("write", "Writing scope"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    s
}

/// Starts the provider with `settings` (the issuer is set to the server's URL + `/o`).
async fn start(mut settings: Settings) -> Server {
    let (store, dir) = common::sqlite_store().await;
    let store = Arc::new(store);
    let app = |id: &str, grant: GrantType, skip: bool| {
        let mut a = NewApplication::new(id, ClientType::Public, grant);
        a.redirect_uris = CB.into();
        a.name = format!("The {id} application");
        a.algorithm = Algorithm::Rs256;
        a.skip_authorization = skip;
        a
    };
    let mut no_alg = app("no-alg", GrantType::Implicit, false);
    no_alg.algorithm = Algorithm::NoAlgorithm;
    for a in [
        app("hybrid", GrantType::OpenidHybrid, false),
        app("hybrid-skip", GrantType::OpenidHybrid, true),
        app("implicit", GrantType::Implicit, false),
        app("code", GrantType::AuthorizationCode, false),
        no_alg,
    ] {
        store.create_application(a).await.unwrap();
    }
    let users = StoreUsers::new(store.clone());
    users.create_user("alice", EMAIL, PASSWORD).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let issuer = format!("http://{addr}/o");
    settings.oidc_iss_endpoint = issuer.clone();
    let jwks = match SigningKeys::from_settings(&settings) {
        Ok(Some(keys)) => serde_json::from_value(keys.jwks()).expect("a JWKS openidconnect reads"),
        _ => CoreJsonWebKeySet::new(Vec::new()),
    };
    let provider = Provider::builder(settings, store.clone(), users)
        .secret_key(vec![7; 32])
        .build()
        .unwrap();
    let router = axum::Router::new().nest("/o", provider.router());
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Server {
        base: Url::parse(&format!("{issuer}/")).unwrap(),
        issuer,
        store,
        http: browser(),
        jwks,
        _dir: dir,
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

    /// Signs alice in on the login page at `login_url` (or the bare login page); returns
    /// the answer to the login form.
    async fn login_at(&self, login_url: Url) -> reqwest::Response {
        let page = self.get(login_url.clone()).await.text().await.unwrap();
        assert!(hidden(&page, "csrfmiddlewaretoken").is_some(), "csrf field");
        let mut form = hidden_fields(&page);
        form.push(("username".into(), "alice".into()));
        form.push(("password".into(), PASSWORD.into()));
        self.http.post(login_url).form(&form).send().await.unwrap()
    }

    async fn login(&self) {
        let res = self.login_at(self.url("login/")).await;
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// GET `url` (logged in, consent needed), approve on the consent page; the callback.
    async fn consent_and_allow(&self, url: Url) -> Url {
        let res = self.get(url).await;
        assert_eq!(res.status(), StatusCode::OK, "expected the consent page");
        let page = res.text().await.unwrap();
        let mut form = hidden_fields(&page);
        form.push(("allow".into(), "Authorize".into()));
        let res = self
            .http
            .post(self.url("authorize/"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        location(&res)
    }

    /// The relying party: a public client with the provider's JWKS.
    fn rp(
        &self,
        client_id: &str,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
    > {
        CoreClient::new(
            ClientId::new(client_id.into()),
            IssuerUrl::new(self.issuer.clone()).unwrap(),
            self.jwks.clone(),
        )
        .set_auth_uri(openidconnect::AuthUrl::from_url(self.url("authorize/")))
        .set_token_uri(TokenUrl::from_url(self.url("token/")))
        .set_redirect_uri(RedirectUrl::new(CB.into()).unwrap())
    }

    fn verifier(&self, client_id: &str) -> CoreIdTokenVerifier<'static> {
        CoreIdTokenVerifier::new_public_client(
            ClientId::new(client_id.into()),
            IssuerUrl::new(self.issuer.clone()).unwrap(),
            self.jwks.clone(),
        )
    }
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

/// A callback on the client's redirect URI with everything in the fragment.
fn fragment_answer(cb: &Url) -> Vec<(String, String)> {
    assert!(cb.as_str().starts_with(CB), "{cb}");
    assert!(cb.query().is_none(), "nothing in the query: {cb}");
    fragment(cb)
}

/// Verifies `jwt` (signature, iss, aud, exp, nonce) and returns its claims.
fn verified(s: &Server, client_id: &str, jwt: &str, nonce: &str) -> CoreIdTokenClaims {
    let token: CoreIdToken = jwt.parse().expect("an ID token");
    token
        .claims(&s.verifier(client_id), &Nonce::new(nonce.into()))
        .expect("a valid ID token")
        .clone()
}

/// `c_hash` of `code` as the RP computes it with the ID token's algorithm and key.
fn code_hash(s: &Server, client_id: &str, jwt: &str, code: &str) -> AuthorizationCodeHash {
    let token: CoreIdToken = jwt.parse().unwrap();
    let verifier = s.verifier(client_id);
    AuthorizationCodeHash::from_code(
        &AuthorizationCode::new(code.into()),
        token.signing_alg().unwrap(),
        token.signing_key(&verifier).unwrap(),
    )
    .unwrap()
}

/// `at_hash` of `access` as the RP computes it.
fn access_hash(s: &Server, client_id: &str, jwt: &str, access: &str) -> AccessTokenHash {
    let token: CoreIdToken = jwt.parse().unwrap();
    let verifier = s.verifier(client_id);
    AccessTokenHash::from_token(
        &AccessToken::new(access.into()),
        token.signing_alg().unwrap(),
        token.signing_key(&verifier).unwrap(),
    )
    .unwrap()
}

// ----- tests -----

/// `code id_token` as a relying party runs it with the `openidconnect` crate: the crate
/// builds the request (nonce, state, PKCE), the browser signs in and consents, the
/// fragment's ID token verifies with the nonce and its `c_hash` matches the code, and the
/// code's exchange gives a second ID token for the same user with the same nonce.
#[tokio::test]
async fn hybrid_code_id_token_verified_by_openidconnect_then_exchanged() {
    let s = start(oidc_settings()).await;
    let rp = s.rp("hybrid");
    let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::Hybrid(vec![CoreResponseType::Code, CoreResponseType::IdToken]),
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    assert!(
        query(&url)
            .iter()
            .any(|(k, v)| k == "response_type" && v == "code id_token"),
        "{url}"
    );

    // Not signed in: the login page, which leads back to the request.
    let res = s.get(url).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let login_url = location(&res);
    assert_eq!(login_url.path(), "/o/login/");
    let res = s.login_at(login_url).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location(&res);
    assert_eq!(back.path(), "/o/authorize/");
    let cb = s.consent_and_allow(back).await;

    let f = fragment_answer(&cb);
    assert_eq!(param(&f, "state"), Some(state.secret().as_str()));
    assert!(
        param(&f, "access_token").is_none(),
        "code id_token: no token"
    );
    let code = param(&f, "code").expect("code").to_owned();
    let jwt = param(&f, "id_token").expect("id_token").to_owned();
    let claims = verified(&s, "hybrid", &jwt, nonce.secret());
    assert_eq!(
        claims.nonce().map(|n| n.secret().as_str()),
        Some(nonce.secret().as_str())
    );
    assert_eq!(
        claims.code_hash(),
        Some(&code_hash(&s, "hybrid", &jwt, &code)),
        "c_hash"
    );
    assert!(
        claims.access_token_hash().is_none(),
        "no at_hash without a token"
    );
    let auth_time = claims.auth_time().expect("auth_time from the session");
    assert!((chrono_now() - auth_time.timestamp()).abs() < 60);
    assert_eq!(
        claims.preferred_username().map(|u| u.as_str()),
        Some("alice")
    );
    assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
    // A c_hash that matches no other code.
    assert_ne!(
        claims.code_hash(),
        Some(&code_hash(&s, "hybrid", &jwt, "other-code"))
    );
    // The wrong nonce is refused.
    let token: CoreIdToken = jwt.parse().unwrap();
    assert!(token
        .claims(&s.verifier("hybrid"), &Nonce::new("not-the-nonce".into()))
        .is_err());

    // The code at the token endpoint, by the crate.
    let http = {
        let c = reqwest::Client::new();
        move |req: openidconnect::HttpRequest| send(c.clone(), req)
    };
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(pkce_verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    assert!(tokens.refresh_token().is_some());
    let second = tokens
        .id_token()
        .expect("an ID token from the token endpoint");
    let second_claims = second
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("valid");
    assert_eq!(second_claims.subject(), claims.subject(), "same sub");
    assert_eq!(
        second_claims.access_token_hash(),
        Some(&access_hash(
            &s,
            "hybrid",
            &second.to_string(),
            tokens.access_token().secret()
        ))
    );
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn hybrid_code_id_token_token_and_code_token() {
    let s = start(oidc_settings()).await;
    s.login().await;
    // `code id_token token`: all three, c_hash and at_hash both match.
    let url = s.authorize_url(&[
        ("response_type", "token code id_token"),
        ("client_id", "hybrid"),
        ("redirect_uri", CB),
        ("scope", "openid read"),
        ("state", "s1"),
        ("nonce", "n-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    let f = fragment_answer(&s.consent_and_allow(url).await);
    let code = param(&f, "code").expect("code");
    let access = param(&f, "access_token").expect("access_token");
    let jwt = param(&f, "id_token").expect("id_token");
    assert_eq!(param(&f, "token_type"), Some("Bearer"));
    assert_eq!(param(&f, "scope"), Some("openid read"));
    assert!(param(&f, "expires_in").unwrap().parse::<i64>().unwrap() > 35000);
    assert!(param(&f, "refresh_token").is_none());
    assert_eq!(param(&f, "state"), Some("s1"));
    let claims = verified(&s, "hybrid", jwt, "n-1");
    assert_eq!(
        claims.code_hash(),
        Some(&code_hash(&s, "hybrid", jwt, code))
    );
    assert_eq!(
        claims.access_token_hash(),
        Some(&access_hash(&s, "hybrid", jwt, access))
    );
    // The ID token is stored with the access token, which links to it.
    let stored = s
        .store
        .find_access_token(&token_checksum(access))
        .await
        .unwrap()
        .expect("access token stored");
    let idt_id = stored.token.id_token_id.expect("linked ID token");
    let jti = jwt_claim(jwt, "jti");
    let idt = s
        .store
        .find_id_token(&jti)
        .await
        .unwrap()
        .expect("ID token stored");
    assert_eq!(idt.id, idt_id);

    // `code token`: a code and a token, no ID token (and no nonce needed).
    let url = s.authorize_url(&[
        ("response_type", "code token"),
        ("client_id", "hybrid"),
        ("scope", "openid read"),
        ("state", "s2"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    let f = fragment_answer(&s.consent_and_allow(url).await);
    assert!(param(&f, "id_token").is_none());
    let code = param(&f, "code").expect("code").to_owned();
    let access = param(&f, "access_token").expect("access_token").to_owned();
    // The code exchange gives an ID token (openid was granted) without a nonce.
    let res = reqwest::Client::new()
        .post(s.url("token/"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "hybrid"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    let jwt = body["id_token"].as_str().expect("id_token");
    let token: CoreIdToken = jwt.parse().unwrap();
    token
        .claims(&s.verifier("hybrid"), |n: Option<&Nonce>| {
            n.is_none()
                .then_some(())
                .ok_or("unexpected nonce".to_owned())
        })
        .expect("valid, without nonce");
    // The front-channel token is tied to the code: a replayed code revokes it too.
    assert!(s
        .store
        .find_access_token(&token_checksum(&access))
        .await
        .unwrap()
        .is_some());
    let res = reqwest::Client::new()
        .post(s.url("token/"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "hybrid"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(s
        .store
        .find_access_token(&token_checksum(&access))
        .await
        .unwrap()
        .is_none());
}

/// A claim of a JWT's payload, read without verification (the tests verify elsewhere).
fn jwt_claim(jwt: &str, name: &str) -> String {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v[name].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn implicit_id_token_token_and_id_token_alone() {
    let s = start(oidc_settings()).await;
    s.login().await;
    // `id_token token`: both, at_hash matches.
    let url = s.authorize_url(&[
        ("response_type", "id_token token"),
        ("client_id", "implicit"),
        ("redirect_uri", CB),
        ("scope", "openid profile"),
        ("state", "i1"),
        ("nonce", "nonce-i1"),
    ]);
    let f = fragment_answer(&s.consent_and_allow(url).await);
    let access = param(&f, "access_token").expect("access_token");
    let jwt = param(&f, "id_token").expect("id_token");
    assert!(param(&f, "code").is_none());
    assert_eq!(param(&f, "state"), Some("i1"));
    let claims = verified(&s, "implicit", jwt, "nonce-i1");
    assert_eq!(
        claims.access_token_hash(),
        Some(&access_hash(&s, "implicit", jwt, access))
    );
    assert_ne!(
        claims.access_token_hash(),
        Some(&access_hash(&s, "implicit", jwt, "another-token"))
    );
    assert!(claims.code_hash().is_none());
    assert!(s
        .store
        .find_access_token(&token_checksum(access))
        .await
        .unwrap()
        .is_some());

    // `id_token` alone: an ID token and no access token.
    let url = s.authorize_url(&[
        ("response_type", "id_token"),
        ("client_id", "implicit"),
        ("scope", "openid email"),
        ("state", "i2"),
        ("nonce", "nonce-i2"),
    ]);
    let f = fragment_answer(&s.consent_and_allow(url).await);
    assert!(
        param(&f, "access_token").is_none(),
        "no access token: {f:?}"
    );
    assert!(param(&f, "token_type").is_none());
    assert!(param(&f, "code").is_none());
    assert_eq!(param(&f, "state"), Some("i2"));
    let jwt = param(&f, "id_token").expect("id_token");
    let claims = verified(&s, "implicit", jwt, "nonce-i2");
    assert!(claims.access_token_hash().is_none());
    assert!(claims.code_hash().is_none());
    // Without an access token, the scopes' claims come in the ID token (OIDC Core §5.4).
    assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
    assert!(claims.preferred_username().is_none(), "profile not granted");
    // Issued alone, it is still stored (logout and cleanup find it by jti).
    let stored = s
        .store
        .find_id_token(&jwt_claim(jwt, "jti"))
        .await
        .unwrap()
        .expect("a lone ID token is stored");
    assert_eq!(stored.scope, "openid email");
}

#[tokio::test]
async fn oidc_request_errors_redirect_in_the_fragment() {
    let s = start(oidc_settings()).await;
    s.login().await;
    let expect = |res: &reqwest::Response, error: &str, state: &str| {
        assert_eq!(res.status(), StatusCode::FOUND);
        let f = fragment_answer(&location(res));
        assert_eq!(param(&f, "error"), Some(error), "{f:?}");
        assert_eq!(param(&f, "state"), Some(state));
        assert!(param(&f, "id_token").is_none() && param(&f, "access_token").is_none());
    };
    // No nonce: implicit and hybrid flows that return an ID token.
    let res = s
        .get(s.authorize_url(&[
            ("response_type", "id_token"),
            ("client_id", "implicit"),
            ("scope", "openid"),
            ("state", "e1"),
        ]))
        .await;
    expect(&res, "invalid_request", "e1");
    let res = s
        .get(s.authorize_url(&[
            ("response_type", "id_token token"),
            ("client_id", "implicit"),
            ("scope", "openid"),
            ("state", "e2"),
        ]))
        .await;
    expect(&res, "invalid_request", "e2");
    let res = s
        .get(s.authorize_url(&[
            ("response_type", "code id_token"),
            ("client_id", "hybrid"),
            ("scope", "openid"),
            ("state", "e3"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]))
        .await;
    expect(&res, "invalid_request", "e3");
    // No openid scope.
    let res = s
        .get(s.authorize_url(&[
            ("response_type", "id_token"),
            ("client_id", "implicit"),
            ("scope", "read"),
            ("state", "e4"),
            ("nonce", "n"),
        ]))
        .await;
    expect(&res, "invalid_scope", "e4");
    // Response types the grant type does not allow (DOT's mapping).
    for (client, rt) in [
        ("hybrid", "id_token"),
        ("implicit", "code id_token"),
        ("code", "code id_token"),
        ("code", "id_token token"),
    ] {
        let res = s
            .get(s.authorize_url(&[
                ("response_type", rt),
                ("client_id", client),
                ("scope", "openid"),
                ("state", "e5"),
                ("nonce", "n"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ]))
            .await;
        expect(&res, "unauthorized_client", "e5");
    }
    // An application without an ID-token algorithm.
    let res = s
        .get(s.authorize_url(&[
            ("response_type", "id_token"),
            ("client_id", "no-alg"),
            ("scope", "openid"),
            ("state", "e6"),
            ("nonce", "n"),
        ]))
        .await;
    expect(&res, "unauthorized_client", "e6");

    // OIDC off: the same requests are unknown response types (in the query).
    let mut off = oidc_settings();
    off.oidc_enabled = false;
    let s = start(off).await;
    for rt in ["id_token", "id_token token"] {
        let res = s
            .get(s.authorize_url(&[
                ("response_type", rt),
                ("client_id", "implicit"),
                ("scope", "openid"),
                ("nonce", "n"),
            ]))
            .await;
        assert_eq!(
            param(&query(&location(&res)), "error"),
            Some("unsupported_response_type")
        );
    }
}

#[tokio::test]
async fn prompt_none_login_required_consent_required_or_silent_success() {
    let mut settings = oidc_settings();
    settings.request_approval_prompt = ApprovalPrompt::Auto;
    let s = start(settings).await;
    let silent = |client: &'static str, rt: &'static str, state: &'static str| {
        vec![
            ("response_type", rt),
            ("client_id", client),
            ("scope", "openid"),
            ("state", state),
            ("nonce", "silent-nonce"),
            ("prompt", "none"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
    };
    // No session: login_required, never a page.
    let res = s
        .get(s.authorize_url(&silent("hybrid-skip", "code id_token", "p1")))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let f = fragment_answer(&location(&res));
    assert_eq!(param(&f, "error"), Some("login_required"));
    assert_eq!(param(&f, "state"), Some("p1"));

    s.login().await;
    // Session + skip_authorization: the normal answer, silently.
    let res = s
        .get(s.authorize_url(&silent("hybrid-skip", "code id_token", "p2")))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let f = fragment_answer(&location(&res));
    assert!(param(&f, "error").is_none(), "{f:?}");
    assert_eq!(param(&f, "state"), Some("p2"));
    let code = param(&f, "code").expect("code");
    let jwt = param(&f, "id_token").expect("id_token");
    let claims = verified(&s, "hybrid-skip", jwt, "silent-nonce");
    assert_eq!(
        claims.code_hash(),
        Some(&code_hash(&s, "hybrid-skip", jwt, code))
    );

    // Session, no consent yet: consent_required.
    let res = s
        .get(s.authorize_url(&silent("implicit", "id_token token", "p3")))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let f = fragment_answer(&location(&res));
    assert_eq!(param(&f, "error"), Some("consent_required"));
    assert_eq!(param(&f, "state"), Some("p3"));
    // Consent once (REQUEST_APPROVAL_PROMPT=auto)…
    let mut first = silent("implicit", "id_token token", "p4");
    first.retain(|(k, _)| *k != "prompt");
    let f = fragment_answer(&s.consent_and_allow(s.authorize_url(&first)).await);
    assert!(param(&f, "access_token").is_some());
    // …then the live token covers the scopes: prompt=none answers silently.
    let res = s
        .get(s.authorize_url(&silent("implicit", "id_token token", "p5")))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let f = fragment_answer(&location(&res));
    assert_eq!(param(&f, "state"), Some("p5"));
    let access = param(&f, "access_token").expect("access_token");
    let jwt = param(&f, "id_token").expect("id_token");
    let claims = verified(&s, "implicit", jwt, "silent-nonce");
    assert_eq!(
        claims.access_token_hash(),
        Some(&access_hash(&s, "implicit", jwt, access))
    );
}

#[tokio::test]
async fn max_age_sends_a_stale_session_back_to_the_login_page() {
    let s = start(oidc_settings()).await;
    s.login().await;
    let request = |max_age: &'static str, prompt: Option<&'static str>| {
        let mut pairs = vec![
            ("response_type", "code id_token"),
            ("client_id", "hybrid-skip"),
            ("scope", "openid"),
            ("state", "m"),
            ("nonce", "max-age-nonce"),
            ("max_age", max_age),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        if let Some(p) = prompt {
            pairs.push(("prompt", p));
        }
        pairs
    };
    // A fresh session satisfies a generous max_age.
    let res = s.get(s.authorize_url(&request("3600", None))).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let f = fragment_answer(&location(&res));
    assert!(param(&f, "id_token").is_some(), "{f:?}");

    // max_age=0: always a new login; with prompt=none, login_required.
    let res = s.get(s.authorize_url(&request("0", Some("none")))).await;
    let f = fragment_answer(&location(&res));
    assert_eq!(param(&f, "error"), Some("login_required"));
    let res = s.get(s.authorize_url(&request("0", None))).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let login_url = location(&res);
    assert_eq!(login_url.path(), "/o/login/");

    // An older session: max_age=1 two seconds after the login.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let res = s.get(s.authorize_url(&request("1", Some("none")))).await;
    let f = fragment_answer(&location(&res));
    assert_eq!(param(&f, "error"), Some("login_required"));
    let res = s.get(s.authorize_url(&request("1", None))).await;
    let login_url = location(&res);
    assert_eq!(login_url.path(), "/o/login/");
    let before = chrono_now();
    // Signing in again comes back to the request, which now succeeds.
    let res = s.login_at(login_url).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location(&res);
    assert_eq!(back.path(), "/o/authorize/");
    let res = s.get(back).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let f = fragment_answer(&location(&res));
    let jwt = param(&f, "id_token").expect("id_token after the new login");
    let claims = verified(&s, "hybrid-skip", jwt, "max-age-nonce");
    let auth_time = claims.auth_time().expect("auth_time").timestamp();
    assert!(auth_time >= before, "the new login's time");

    // A malformed max_age.
    let res = s.get(s.authorize_url(&request("soon", None))).await;
    let f = fragment_answer(&location(&res));
    assert_eq!(param(&f, "error"), Some("invalid_request"));
}
