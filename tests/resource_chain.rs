//! Issue 14's chain over real HTTP on loopback: RFC 9728 protected-resource metadata on
//! the resource side (a bare `BearerLayer` API, no provider) and in `oauth-toolkit
//! serve`'s app, the RFC 8414 document where RFC 8414 §3 puts it, and from there to a
//! token for the API.
#![cfg(all(feature = "cli", feature = "postgres", feature = "jwt"))]

#[macro_use]
mod common;

use common::provider::*;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tower_oauth_toolkit::resource::{
    BearerError, BearerLayer, ProtectedResourceMetadata, ScopePolicy, TokenInfo,
};
use tower_oauth_toolkit::scope::Scopes;
use tower_oauth_toolkit::settings::Settings;
use tower_oauth_toolkit::store::Store;

/// Serves `router` on 127.0.0.1:0; its base URL.
async fn serve_router(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn challenge(res: &reqwest::Response) -> String {
    res.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A validator that knows two tokens: `good` (scope `read`) and `weak` (scope `other`).
async fn two_tokens(token: String) -> Result<Arc<TokenInfo>, BearerError> {
    let scope = match token.as_str() {
        "good" => "read",
        "weak" => "other",
        _ => return Err(BearerError::InvalidToken("unknown token".into())),
    };
    Ok(Arc::new(TokenInfo {
        active: true,
        scopes: Scopes::parse(scope).unwrap(),
        ..TokenInfo::default()
    }))
}

/// A resource server alone (feature `resource`, no provider): the 401 points to the
/// metadata, the metadata is served with CORS and caching, a 403 names the scopes.
#[tokio::test]
async fn a_bare_api_points_to_its_metadata() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let metadata = ProtectedResourceMetadata::new(&format!("{base}/v1"))
        .unwrap()
        .authorization_server("https://auth.example.com")
        .scopes_supported(["read"])
        .name("Example API");
    let api = Router::new()
        .route(
            "/v1/things",
            get(|| async { "things" }).layer(
                BearerLayer::new(two_tokens)
                    .with_policy(ScopePolicy::required("read"))
                    .with_resource_metadata(&metadata),
            ),
        )
        .route_service(&metadata.well_known_path(), metadata.service());
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    let http = reqwest::Client::new();
    let expected = format!("resource_metadata=\"{base}/.well-known/oauth-protected-resource/v1\"");

    let res = http.get(format!("{base}/v1/things")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        challenge(&res),
        format!("Bearer realm=\"api\", {expected}"),
        "no token: no error code, the metadata URL"
    );
    // A bad token, twice (the second answer is the memoised one): the URL both times.
    for _ in 0..2 {
        let res = http
            .get(format!("{base}/v1/things"))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let c = challenge(&res);
        assert!(c.contains("error=\"invalid_token\""), "{c}");
        assert!(c.ends_with(&expected), "{c}");
    }
    let res = http
        .get(format!("{base}/v1/things"))
        .bearer_auth("weak")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let c = challenge(&res);
    assert!(c.contains("error=\"insufficient_scope\""), "{c}");
    assert!(c.contains("scope=\"read\""), "403 names the scopes: {c}");
    assert!(c.ends_with(&expected), "{c}");
    let res = http
        .get(format!("{base}/v1/things"))
        .bearer_auth("good")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // The document, where the challenge said.
    let url = format!("{base}/.well-known/oauth-protected-resource/v1");
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "resource": format!("{base}/v1"),
            "authorization_servers": ["https://auth.example.com"],
            "scopes_supported": ["read"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Example API",
        })
    );
    let head = http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.bytes().await.unwrap().is_empty());
    let preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let post = http.post(&url).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD, OPTIONS");
}

/// `serve`'s demo API with the settings at their defaults: everything derived from the
/// request, and the chain from the API's URL to the token endpoint holds together.
async fn serve_publishes_the_demo_api_metadata(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let base = &srv.base;
    let res = srv.http.get(srv.url("/api/hello")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let c = challenge(&res);
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/api/hello");
    assert!(
        c.ends_with(&format!("resource_metadata=\"{metadata_url}\"")),
        "{c}"
    );
    let res = srv.http.get(&metadata_url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let doc: Value = res.json().await.unwrap();
    // RFC 9728 §3.3: the resource is the URL the metadata URL was made from.
    assert_eq!(doc["resource"], format!("{base}/api/hello"));
    assert_eq!(
        doc["authorization_servers"],
        serde_json::json!([format!("{base}/o")])
    );
    assert_eq!(doc["scopes_supported"], serde_json::json!(["read"]));
    assert_eq!(
        doc["bearer_methods_supported"],
        serde_json::json!(["header"])
    );
    assert!(doc.get("resource_name").is_none());
    // RFC 8414 §3: the issuer `{base}/o` has its document at the root, path inserted.
    let issuer = doc["authorization_servers"][0].as_str().unwrap();
    let path = issuer.strip_prefix(base.as_str()).unwrap();
    let res = srv
        .http
        .get(format!(
            "{base}/.well-known/oauth-authorization-server{path}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let as_meta: Value = res.json().await.unwrap();
    assert_eq!(as_meta["issuer"], issuer, "RFC 8414 §3.3");
    assert_eq!(as_meta["token_endpoint"], format!("{base}/o/token/"));
    // The same document as under the mount.
    let under_mount: Value = srv
        .http
        .get(srv.url("/o/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(as_meta, under_mount);
    // A token for the scope the metadata names opens the API.
    let (status, v, _) = srv
        .token(
            Some(("cc", "cc-secret")),
            &[("grant_type", "client_credentials"), ("scope", "read")],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, hello) = srv.hello(v["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{hello}");
}

/// The `OAUTH2_PROTECTED_RESOURCE_*` settings, DOT's names, fill the document.
async fn resource_settings_fill_the_document(db: Db) {
    let mut settings = Settings::default();
    settings.oauth2_protected_resource_identifier = "https://api.example.com/v2".into();
    settings.oauth2_protected_resource_authorization_servers = vec![
        "https://auth.example.com".into(),
        "https://backup.example.com".into(),
    ];
    settings.oauth2_protected_resource_bearer_methods_supported =
        vec!["header".into(), "body".into()];
    settings.oauth2_protected_resource_name = "Example".into();
    settings.oauth2_protected_resource_documentation = "https://docs.example.com".into();
    settings.oauth2_protected_resource_policy_uri = "https://example.com/policy".into();
    settings.oauth2_protected_resource_tos_uri = "https://example.com/tos".into();
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let res = srv.http.get(srv.url("/api/hello")).send().await.unwrap();
    let c = challenge(&res);
    assert!(
        c.ends_with(
            "resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/v2\""
        ),
        "{c}"
    );
    let doc: Value = srv
        .http
        .get(srv.url("/.well-known/oauth-protected-resource/v2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "resource": "https://api.example.com/v2",
            "authorization_servers": ["https://auth.example.com", "https://backup.example.com"],
            "scopes_supported": ["read"],
            "bearer_methods_supported": ["header", "body"],
            "resource_name": "Example",
            "resource_documentation": "https://docs.example.com",
            "resource_policy_uri": "https://example.com/policy",
            "resource_tos_uri": "https://example.com/tos",
        })
    );
}

#[tokio::test]
async fn a_derived_identifier_follows_the_host() {
    let metadata = ProtectedResourceMetadata::derived("/api")
        .unwrap()
        .same_origin_authorization_server("/o");
    let api = Router::new()
        .route(
            "/api",
            get(|| async { "ok" })
                .layer(BearerLayer::new(two_tokens).with_resource_metadata(&metadata)),
        )
        .route_service(&metadata.well_known_path(), metadata.service());
    let base = serve_router(api).await;
    let http = reqwest::Client::new();
    for host in ["api.one.test", "api.two.test:8443"] {
        let res = http
            .get(format!("{base}/api"))
            .header("host", host)
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        let c = challenge(&res);
        assert!(
            c.ends_with(&format!(
                "resource_metadata=\"http://{host}/.well-known/oauth-protected-resource/api\""
            )),
            "{c}"
        );
        let res = http
            .get(format!("{base}/.well-known/oauth-protected-resource/api"))
            .header("host", host)
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["vary"], "host");
        let doc: Value = res.json().await.unwrap();
        assert_eq!(doc["resource"], format!("https://{host}/api"));
        assert_eq!(
            doc["authorization_servers"],
            serde_json::json!([format!("https://{host}/o")])
        );
    }
}

const API_A: &str = "https://a.example/api";
const API_B: &str = "https://b.example/api";

fn pkce_pair() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = hex::encode(rand::random::<[u8; 32]>());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The authorize URL of the `code` client with PKCE and `resources`.
fn authorize_url(srv: &Server, challenge: &str, resources: &[&str]) -> reqwest::Url {
    let mut url = reqwest::Url::parse(&srv.url("/o/authorize/")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", "code")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "read")
            .append_pair("state", "s1")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        for r in resources {
            q.append_pair("resource", r);
        }
    }
    url
}

fn query_param(url: &reqwest::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// RFC 8707 at the token endpoint of every grant, at the authorization endpoint, and in
/// what introspection says (`aud`).
async fn resource_indicators_in_the_provider(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let cc = Some(("cc", "cc-secret"));
    // client_credentials: one resource → `aud` a string; two → an array.
    let (s, v, _) = srv
        .token(
            cc,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "read"),
                ("resource", API_A),
            ],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let at_a = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(srv.introspect(&at_a).await["aud"], API_A);
    let (s, v, _) = srv
        .token(
            cc,
            &[
                ("grant_type", "client_credentials"),
                ("resource", API_A),
                ("resource", API_B),
            ],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        srv.introspect(v["access_token"].as_str().unwrap()).await["aud"],
        serde_json::json!([API_A, API_B])
    );
    // Without `resource`: no audience (this server has no OAUTH2_PROTECTED_RESOURCE_IDENTIFIER).
    let (_, v, _) = srv.token(cc, &[("grant_type", "client_credentials")]).await;
    assert!(srv
        .introspect(v["access_token"].as_str().unwrap())
        .await
        .get("aud")
        .is_none());
    // Bad values: invalid_target, 400, nothing issued.
    let many: Vec<String> = (0..21).map(|i| format!("https://a.example/{i}")).collect();
    let mut too_many = vec![("grant_type", "client_credentials")];
    too_many.extend(many.iter().map(|r| ("resource", r.as_str())));
    for form in [
        vec![("grant_type", "client_credentials"), ("resource", "api")],
        vec![
            ("grant_type", "client_credentials"),
            ("resource", "https://a.example/api#x"),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("resource", "http://a.example/api"),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("resource", "urn:example:api"),
        ],
        too_many,
    ] {
        let (s, v, _) = srv.token(cc, &form).await;
        assert_eq!((s, err(&v)), (400, "invalid_target"), "{form:?}: {v}");
        assert!(v["error_description"].as_str().unwrap().len() > 10, "{v}");
    }
    // Loopback http is fine for development.
    let (s, v, _) = srv
        .token(
            cc,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "http://127.0.0.1:8000/api"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // password + refresh: the refresh token keeps both resources; each refresh may narrow
    // to one, never widen.
    let pw = Some(("pw", "pw-secret"));
    let (s, v, _) = srv
        .token(
            pw,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-password-1"),
                ("scope", "read"),
                ("resource", API_A),
                ("resource", API_B),
            ],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let mut rt = v["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        srv.introspect(&rt).await["aud"],
        serde_json::json!([API_A, API_B])
    );
    for (ask, aud) in [
        (API_A, serde_json::json!(API_A)),
        (API_B, serde_json::json!(API_B)),
    ] {
        let (s, v, _) = srv
            .token(
                pw,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("resource", ask),
                ],
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            srv.introspect(v["access_token"].as_str().unwrap()).await["aud"],
            aud
        );
        rt = v["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(
            srv.introspect(&rt).await["aud"],
            serde_json::json!([API_A, API_B]),
            "the rotated refresh token keeps the whole set"
        );
    }
    let (s, v, _) = srv
        .token(
            pw,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("resource", "https://c.example/api"),
            ],
        )
        .await;
    assert_eq!((s, err(&v)), (400, "invalid_target"), "{v}");
    // Nothing asked: the new access token is for everything the refresh token is.
    let (s, v, _) = srv
        .token(
            pw,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        srv.introspect(v["access_token"].as_str().unwrap()).await["aud"],
        serde_json::json!([API_A, API_B])
    );

    // Authorization code: the resources of the authorization request are stored with the
    // code; the exchange may narrow them, and a wider one burns the code.
    let code_client = Some(("code", "code-secret"));
    let (verifier, challenge) = pkce_pair();
    let back = srv
        .browser_approve(authorize_url(&srv, &challenge, &[API_A]))
        .await;
    let code = query_param(&back, "code").expect("a code");
    let exchange = |code: String, verifier: String, resource: Option<&'static str>| {
        let srv = &srv;
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("redirect_uri", REDIRECT.to_owned()),
                ("code_verifier", verifier),
            ];
            if let Some(r) = resource {
                form.push(("resource", r.to_owned()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            srv.token(code_client, &form).await
        }
    };
    let (s, v, _) = exchange(code.clone(), verifier.clone(), Some(API_B)).await;
    assert_eq!((s, err(&v)), (400, "invalid_target"), "{v}");
    let (s, v, _) = exchange(code, verifier, None).await;
    assert_eq!(
        (s, err(&v)),
        (400, "invalid_grant"),
        "the refused exchange burned the code: {v}"
    );
    let (verifier, challenge) = pkce_pair();
    let back = srv
        .browser_approve(authorize_url(&srv, &challenge, &[API_A, API_B]))
        .await;
    let code = query_param(&back, "code").expect("a code");
    let (s, v, _) = exchange(code, verifier, Some(API_B)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        srv.introspect(v["access_token"].as_str().unwrap()).await["aud"],
        API_B
    );
    assert_eq!(
        srv.introspect(v["refresh_token"].as_str().unwrap()).await["aud"],
        serde_json::json!([API_A, API_B])
    );

    // At the authorization endpoint, a bad resource goes back to the client.
    let browser = common::http::browser();
    let (_, challenge) = pkce_pair();
    let res = browser
        .get(authorize_url(&srv, &challenge, &["not-a-uri"]))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let location = reqwest::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_target")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("s1"));
}

/// JWT access tokens carry the resources as `aud` (else the configured identifier); ID
/// tokens keep the client as theirs.
async fn jwt_access_tokens_carry_the_audience(db: Db) {
    use tower_oauth_toolkit::provider::oidc::keys::SigningKeys;
    use tower_oauth_toolkit::settings::{AccessTokenFormat, Secret};
    let mut settings = Settings::default();
    settings.access_token_format = AccessTokenFormat::Jwt;
    settings.oidc_rsa_private_key = Secret::new(include_str!("fixtures/rsa_private.pem"));
    settings.oidc_iss_endpoint = "https://auth.example".into();
    settings.oauth2_protected_resource_identifier = "https://default.example/api".into();
    let jwks = SigningKeys::from_settings(&settings)
        .unwrap()
        .unwrap()
        .jwks();
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let claims = |jwt: &str| -> Value {
        use base64::Engine;
        let payload = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let cc = Some(("cc", "cc-secret"));
    let mint = |resources: &'static [&'static str]| {
        let srv = &srv;
        async move {
            let mut form = vec![("grant_type", "client_credentials"), ("scope", "read")];
            form.extend(resources.iter().map(|r| ("resource", *r)));
            let (s, v, _) = srv.token(cc, &form).await;
            assert_eq!(s, 200, "{v}");
            v["access_token"].as_str().unwrap().to_owned()
        }
    };
    let one = mint(&[API_A]).await;
    assert_eq!(claims(&one)["aud"], API_A);
    let two = mint(&[API_A, API_B]).await;
    assert_eq!(claims(&two)["aud"], serde_json::json!([API_A, API_B]));
    let none = mint(&[]).await;
    assert_eq!(claims(&none)["aud"], "https://default.example/api");
    // The JWT validator of resource B: A's token refused, B's (and A+B's) accepted.
    use tower_oauth_toolkit::resource::{JwtValidator, TokenValidator};
    let for_b = JwtValidator::builder()
        .jwks_json(&jwks.to_string())
        .issuer("https://auth.example")
        .audience(&[API_B])
        .build()
        .unwrap();
    let e = for_b.validate(one.clone()).await.unwrap_err();
    assert!(matches!(e, BearerError::InvalidToken(_)), "{e:?}");
    assert_eq!(e.status(), 401);
    assert!(for_b.validate(two.clone()).await.is_ok());
    assert!(for_b.validate(none.clone()).await.is_err());
    assert!(
        for_b.validate_now(&one).unwrap().is_err(),
        "the synchronous path checks too"
    );
    // Tokens without `aud` at all (another issuer's) pass only when allowed.
    let lenient = JwtValidator::builder()
        .jwks_json(&jwks.to_string())
        .audience(&[API_B])
        .allow_tokens_without_audience(true)
        .build()
        .unwrap();
    assert!(
        lenient.validate(one).await.is_err(),
        "another audience is still refused"
    );
    assert!(lenient.validate(two).await.is_ok());
}

/// The store and introspection validators of resource B refuse a token minted for A.
async fn every_validator_checks_the_audience(db: Db) {
    use tower_oauth_toolkit::resource::{
        IntrospectionAuth, IntrospectionValidator, StoreValidator, TokenValidator,
    };
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let cc = Some(("cc", "cc-secret"));
    let mut tokens = Vec::new();
    for resources in [&[API_A][..], &[API_B], &[API_A, API_B], &[]] {
        let mut form = vec![("grant_type", "client_credentials"), ("scope", "read")];
        form.extend(resources.iter().map(|r| ("resource", *r)));
        let (s, v, _) = srv.token(cc, &form).await;
        assert_eq!(s, 200, "{v}");
        tokens.push(v["access_token"].as_str().unwrap().to_owned());
    }
    let [for_a, for_b, for_both, for_none] = <[String; 4]>::try_from(tokens).unwrap();
    let store_b = StoreValidator::new(srv.store.clone()).with_audience(API_B);
    let introspection_b = IntrospectionValidator::builder(
        srv.url("/o/introspect/"),
        IntrospectionAuth::Basic {
            client_id: "cc".into(),
            client_secret: "cc-secret".into(),
        },
    )
    .audience(API_B)
    .build()
    .unwrap();
    async fn outcome<V: TokenValidator>(v: &V, token: &str) -> Result<(), u16> {
        // Twice: the second answer may come from a cache, and must say the same.
        let first = v
            .validate(token.to_owned())
            .await
            .map(|_| ())
            .map_err(|e| e.status().as_u16());
        let again = match v.validate_now(token) {
            Some(r) => r.map(|_| ()).map_err(|e| e.status().as_u16()),
            None => v
                .validate(token.to_owned())
                .await
                .map(|_| ())
                .map_err(|e| e.status().as_u16()),
        };
        assert_eq!(first, again, "cached answers agree");
        first
    }
    for (name, ok_a, ok_b, ok_both, ok_none) in [
        (
            "store",
            outcome(&store_b, &for_a).await,
            outcome(&store_b, &for_b).await,
            outcome(&store_b, &for_both).await,
            outcome(&store_b, &for_none).await,
        ),
        (
            "introspection",
            outcome(&introspection_b, &for_a).await,
            outcome(&introspection_b, &for_b).await,
            outcome(&introspection_b, &for_both).await,
            outcome(&introspection_b, &for_none).await,
        ),
    ] {
        assert_eq!(ok_a, Err(401), "{name}: a token for A is refused by B");
        assert_eq!(ok_b, Ok(()), "{name}");
        assert_eq!(ok_both, Ok(()), "{name}");
        assert_eq!(
            ok_none,
            Err(401),
            "{name}: no audience is refused by default"
        );
    }
    // The validator's own cache (answers from it are checked too), and the flag given
    // before the audience.
    let cached_b = StoreValidator::new(srv.store.clone())
        .with_cache(std::time::Duration::from_secs(60), 100)
        .with_audience(API_B);
    for _ in 0..2 {
        assert_eq!(outcome(&cached_b, &for_a).await, Err(401));
        assert_eq!(outcome(&cached_b, &for_b).await, Ok(()));
    }
    let lenient = StoreValidator::new(srv.store.clone())
        .allow_tokens_without_audience(true)
        .with_audience(API_B);
    assert_eq!(outcome(&lenient, &for_none).await, Ok(()));
    assert_eq!(outcome(&lenient, &for_a).await, Err(401));
    let lenient = IntrospectionValidator::builder(
        srv.url("/o/introspect/"),
        IntrospectionAuth::Basic {
            client_id: "cc".into(),
            client_secret: "cc-secret".into(),
        },
    )
    .audience(API_B)
    .allow_tokens_without_audience(true)
    .build()
    .unwrap();
    assert_eq!(outcome(&lenient, &for_none).await, Ok(()));
    assert_eq!(outcome(&lenient, &for_a).await, Err(401));
}

/// `serve`'s demo API with a configured identifier refuses tokens for other resources
/// and takes tokens for it, or without an audience.
async fn the_demo_api_checks_a_configured_audience(db: Db) {
    let mut settings = Settings::default();
    settings.oauth2_protected_resource_identifier = API_B.into();
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let cc = Some(("cc", "cc-secret"));
    for (resource, status) in [(Some(API_A), 401), (Some(API_B), 200), (None, 200)] {
        let mut form = vec![("grant_type", "client_credentials"), ("scope", "read")];
        form.extend(resource.map(|r| ("resource", r)));
        let (_, v, _) = srv.token(cc, &form).await;
        let (s, body) = srv.hello(v["access_token"].as_str().unwrap()).await;
        assert_eq!(s, status, "{resource:?}: {body}");
    }
}

fn dcr_settings(policy: tower_oauth_toolkit::settings::DcrPolicy) -> Settings {
    let mut s = Settings::default();
    s.dcr_enabled = true;
    s.dcr_registration_policy = policy;
    s
}

/// [`dcr_settings`] that also lets registered clients use client credentials.
fn dcr_settings_with_client_credentials(
    policy: tower_oauth_toolkit::settings::DcrPolicy,
) -> Settings {
    let mut s = dcr_settings(policy);
    s.dcr_allowed_grant_types.push("client_credentials".into());
    s
}

/// A JSON request to the provider: (status, JSON, headers).
async fn send_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
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

/// DCR is off by default: 404 and no `registration_endpoint`.
async fn registration_is_off_by_default(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let body = serde_json::json!({"redirect_uris": [REDIRECT]});
    let (s, v, _) = send_json(
        &srv.http,
        reqwest::Method::POST,
        &srv.url("/o/register/"),
        None,
        Some(&body),
    )
    .await;
    assert_eq!(s, 404, "{v}");
    let meta: Value = srv
        .http
        .get(srv.url("/o/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(meta.get("registration_endpoint").is_none(), "{meta}");
}

/// RFC 7591 registration and every RFC 7592 operation, open policy.
async fn dynamic_registration_and_management(db: Db) {
    use tower_oauth_toolkit::settings::DcrPolicy;
    // By default a registered client cannot use client credentials (or the password
    // grant): open registration would otherwise hand out tokens with no user involved.
    let Some(plain) = start(db, dcr_settings(DcrPolicy::Open)).await else {
        return;
    };
    for grant in ["client_credentials", "password"] {
        let body = serde_json::json!({"grant_types": [grant]});
        let (s, v, _) = send_json(
            &plain.http,
            reqwest::Method::POST,
            &plain.url("/o/register/"),
            None,
            Some(&body),
        )
        .await;
        assert_eq!(
            (s, err(&v)),
            (400, "invalid_client_metadata"),
            "{grant}: {v}"
        );
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .contains("DCR_ALLOWED_GRANT_TYPES"));
    }
    let Some(srv) = start(db, dcr_settings_with_client_credentials(DcrPolicy::Open)).await else {
        return;
    };
    let http = &srv.http;
    let register = srv.url("/o/register/");
    let meta: Value = http
        .get(srv.url("/o/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["registration_endpoint"], register);
    let body = serde_json::json!({
        "redirect_uris": [REDIRECT],
        "client_name": "An agent",
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "read",
        "client_uri": "https://agent.example",
        "contacts": ["ops@agent.example"],
        "unknown_member": {"is": "ignored"},
    });
    let (s, v, h) = send_json(http, reqwest::Method::POST, &register, None, Some(&body)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(h["cache-control"], "no-store");
    let client_id = v["client_id"].as_str().unwrap().to_owned();
    let token = v["registration_access_token"].as_str().unwrap().to_owned();
    let uri = v["registration_client_uri"].as_str().unwrap().to_owned();
    assert_eq!(uri, srv.url(&format!("/o/register/{client_id}/")));
    assert!(v.get("client_secret").is_none(), "a public client: {v}");
    assert!(v["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    for (k, expected) in [
        ("client_name", serde_json::json!("An agent")),
        ("redirect_uris", serde_json::json!([REDIRECT])),
        ("token_endpoint_auth_method", serde_json::json!("none")),
        (
            "grant_types",
            serde_json::json!(["authorization_code", "refresh_token"]),
        ),
        ("response_types", serde_json::json!(["code"])),
        ("scope", serde_json::json!("read")),
        ("client_uri", serde_json::json!("https://agent.example")),
        ("contacts", serde_json::json!(["ops@agent.example"])),
    ] {
        assert_eq!(v[k], expected, "{k}: {v}");
    }
    assert!(v.get("unknown_member").is_none());
    let app = srv
        .store
        .find_application_by_client_id(&client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.name, "An agent");
    assert_eq!(
        app.client_type,
        tower_oauth_toolkit::model::ClientType::Public
    );

    // Read.
    let (s, read, _) = send_json(http, reqwest::Method::GET, &uri, Some(&token), None).await;
    assert_eq!(s, 200, "{read}");
    assert_eq!(read["client_id"], client_id.as_str());
    assert_eq!(read["client_name"], "An agent");
    // RFC 7592 §3: the token in use comes back with the client information.
    assert_eq!(read["registration_access_token"], token.as_str());
    assert_eq!(read["registration_client_uri"], uri.as_str());
    // Wrong, missing and another client's tokens: 401 invalid_token.
    let (s2, v2, _) = send_json(
        http,
        reqwest::Method::POST,
        &register,
        None,
        Some(
            &serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
        ),
    )
    .await;
    assert_eq!(s2, 201, "{v2}");
    let other_token = v2["registration_access_token"].as_str().unwrap().to_owned();
    for bad in [Some("not-the-token"), None, Some(other_token.as_str())] {
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let (s, v, h) = send_json(http, method.clone(), &uri, bad, None).await;
            assert_eq!(
                (s, err(&v)),
                (401, "invalid_token"),
                "{method} {bad:?}: {v}"
            );
            assert!(h["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"));
        }
    }

    // Update: replaced metadata, a new registration token, the old one dead.
    let update = serde_json::json!({
        "client_id": client_id,
        "redirect_uris": [REDIRECT, "http://127.0.0.1:9/other"],
        "client_name": "A renamed agent",
        "token_endpoint_auth_method": "none",
    });
    let (s, v, _) = send_json(
        http,
        reqwest::Method::PUT,
        &uri,
        Some(&token),
        Some(&update),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["client_name"], "A renamed agent");
    assert!(v.get("client_uri").is_none(), "a PUT replaces the metadata");
    let new_token = v["registration_access_token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    assert_eq!(
        send_json(http, reqwest::Method::GET, &uri, Some(&token), None)
            .await
            .0,
        401,
        "rotated out"
    );
    assert_eq!(
        send_json(http, reqwest::Method::GET, &uri, Some(&new_token), None)
            .await
            .0,
        200
    );
    let app = srv
        .store
        .find_application_by_client_id(&client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.name, "A renamed agent");
    assert_eq!(
        app.redirect_uris,
        format!("{REDIRECT} http://127.0.0.1:9/other")
    );
    // Bad updates.
    for (body, code) in [
        (
            serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
            "invalid_request",
        ),
        (
            serde_json::json!({"client_id": client_id, "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"client_id": client_id, "redirect_uris": ["not a uri"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            serde_json::json!({"client_id": client_id, "registration_access_token": "x", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
            "invalid_request",
        ),
    ] {
        let (s, v, _) = send_json(
            http,
            reqwest::Method::PUT,
            &uri,
            Some(&new_token),
            Some(&body),
        )
        .await;
        assert_eq!((s, err(&v)), (400, code), "{body}: {v}");
    }

    // A confidential client: a secret (once, stored hashed) that works at the token endpoint.
    let (s, v, _) = send_json(
        http,
        reqwest::Method::POST,
        &register,
        None,
        Some(&serde_json::json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
        })),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let cc_id = v["client_id"].as_str().unwrap().to_owned();
    let cc_secret = v["client_secret"].as_str().unwrap().to_owned();
    let cc_token = v["registration_access_token"].as_str().unwrap().to_owned();
    let cc_uri = v["registration_client_uri"].as_str().unwrap().to_owned();
    assert_eq!(v["client_secret_expires_at"], 0);
    let stored = srv
        .store
        .find_application_by_client_id(&cc_id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(stored.client_secret, cc_secret, "stored hashed");
    let (s, t, _) = srv
        .token(
            Some((&cc_id, &cc_secret)),
            &[("grant_type", "client_credentials"), ("scope", "read")],
        )
        .await;
    assert_eq!(s, 200, "{t}");
    let access = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(srv.hello(&access).await.0, 200);
    // Delete: 204, and the client and its tokens are gone.
    let (s, _, _) = send_json(
        http,
        reqwest::Method::DELETE,
        &cc_uri,
        Some(&cc_token),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(
        send_json(http, reqwest::Method::GET, &cc_uri, Some(&cc_token), None)
            .await
            .0,
        401
    );
    let (s, t, _) = srv
        .token(
            Some((&cc_id, &cc_secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!((s, err(&t)), (401, "invalid_client"), "{t}");
    assert_eq!(srv.hello(&access).await.0, 401, "its tokens went with it");

    // Registration errors.
    let long = "x".repeat(300);
    for (body, code) in [
        (
            serde_json::json!({"redirect_uris": ["not a uri"]}),
            "invalid_redirect_uri",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://a.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            serde_json::json!({"grant_types": ["authorization_code"]}),
            "invalid_redirect_uri",
        ),
        (
            serde_json::json!({"redirect_uris": "https://a.example/cb"}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"grant_types": ["password", "client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"grant_types": ["client_credentials"], "response_types": ["code"]}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"redirect_uris": [REDIRECT], "scope": "read no-such-scope"}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"redirect_uris": [REDIRECT], "id_token_signed_response_alg": "HS256"}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"redirect_uris": [REDIRECT], "client_name": long}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!(["not", "an", "object"]),
            "invalid_client_metadata",
        ),
    ] {
        let (s, v, _) = send_json(http, reqwest::Method::POST, &register, None, Some(&body)).await;
        assert_eq!((s, err(&v)), (400, code), "{body}: {v}");
        assert!(!v["error_description"].as_str().unwrap().is_empty());
    }
    // Not JSON at all.
    let res = http
        .post(&register)
        .form(&[("redirect_uris", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(err(&v), "invalid_client_metadata");
}

/// Who may register: a signed-in user from this server's origin, or the holder of an
/// initial access token; and at most DCR_REGISTRATIONS_PER_HOUR requests per address.
async fn registration_policies_and_rate_limit(db: Db) {
    use tower_oauth_toolkit::settings::DcrPolicy;
    let body =
        serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"});
    // A signed-in user.
    let Some(srv) = start(db, dcr_settings(DcrPolicy::Authenticated)).await else {
        return;
    };
    let register = srv.url("/o/register/");
    let (s, v, _) = send_json(
        &srv.http,
        reqwest::Method::POST,
        &register,
        None,
        Some(&body),
    )
    .await;
    assert_eq!((s, err(&v)), (403, "access_denied"), "{v}");
    let browser = common::http::browser();
    let login = reqwest::Url::parse(&srv.url("/o/login/")).unwrap();
    // Signed in (the login page answers 200 without a `next` to go back to).
    let res = sign_in_as_alice(&browser, login).await;
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );
    let (s, v, _) = send_json(
        &browser,
        reqwest::Method::POST,
        &register,
        None,
        Some(&body),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let app = srv
        .store
        .find_application_by_client_id(v["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let alice = srv
        .store
        .find_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.user_id, Some(alice.id), "the user owns the client");
    // The same session from another site's page: refused.
    let res = browser
        .post(&register)
        .header("content-type", "application/json")
        .header("origin", "https://evil.example")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = browser
        .post(&register)
        .header("content-type", "application/json")
        .header("sec-fetch-site", "cross-site")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "Sec-Fetch-Site: cross-site");
    // The server's own page: its origin, same-origin.
    let res = browser
        .post(&register)
        .header("content-type", "application/json")
        .header("origin", srv.base.as_str())
        .header("sec-fetch-site", "same-origin")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // An initial access token.
    let mut settings = dcr_settings(DcrPolicy::InitialAccessToken);
    settings
        .scopes
        .insert("oauth2_provider:dcr".into(), "Register clients".into());
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let register = srv.url("/o/register/");
    let (s, v, _) = send_json(
        &srv.http,
        reqwest::Method::POST,
        &register,
        None,
        Some(&body),
    )
    .await;
    assert_eq!((s, err(&v)), (401, "invalid_token"), "{v}");
    let (_, t, _) = srv
        .token(
            Some(("cc", "cc-secret")),
            &[("grant_type", "client_credentials"), ("scope", "read")],
        )
        .await;
    let wrong_scope = t["access_token"].as_str().unwrap().to_owned();
    let (s, _, _) = send_json(
        &srv.http,
        reqwest::Method::POST,
        &register,
        Some(&wrong_scope),
        Some(&body),
    )
    .await;
    assert_eq!(s, 401, "a token without the registration scope");
    let (_, t, _) = srv
        .token(
            Some(("cc", "cc-secret")),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "oauth2_provider:dcr"),
            ],
        )
        .await;
    let initial = t["access_token"].as_str().unwrap().to_owned();
    let (s, v, _) = send_json(
        &srv.http,
        reqwest::Method::POST,
        &register,
        Some(&initial),
        Some(&body),
    )
    .await;
    assert_eq!(s, 201, "{v}");

    // The rate limit.
    let mut settings = dcr_settings(DcrPolicy::Open);
    settings.dcr_registrations_per_hour = 2;
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let register = srv.url("/o/register/");
    for expected in [201, 201, 429, 429] {
        let (s, v, h) = send_json(
            &srv.http,
            reqwest::Method::POST,
            &register,
            None,
            Some(&body),
        )
        .await;
        assert_eq!(s, expected, "{v}");
        if s == 429 {
            assert!(h.contains_key("retry-after"));
        }
    }
}

/// cleartokens removes registered clients that never got a token, past the configured
/// age (off by default), and counts them.
async fn cleanup_removes_unused_registered_clients(db: Db) {
    use tower_oauth_toolkit::cleanup::{clear_expired_with, NoProgress};
    use tower_oauth_toolkit::model::Timestamp;
    use tower_oauth_toolkit::settings::DcrPolicy;
    use tower_oauth_toolkit::store::CleanupStep;
    let Some(srv) = start(db, dcr_settings_with_client_credentials(DcrPolicy::Open)).await else {
        return;
    };
    let register = srv.url("/o/register/");
    let mut ids = Vec::new();
    let mut secrets = Vec::new();
    for _ in 0..3 {
        let (s, v, _) = send_json(
            &srv.http,
            reqwest::Method::POST,
            &register,
            None,
            Some(&serde_json::json!({"grant_types": ["client_credentials"]})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["client_id"].as_str().unwrap().to_owned());
        secrets.push(v["client_secret"].as_str().unwrap().to_owned());
    }
    // The second one is used.
    let (s, t, _) = srv
        .token(
            Some((&ids[1], &secrets[1])),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(s, 200, "{t}");
    // The third one was used too, but its token is gone by the time the age is reached
    // (revoked here; expired and cleared would be the same): a cleanup run saw it first.
    let (s, third, _) = srv
        .token(
            Some((&ids[2], &secrets[2])),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(s, 200, "{third}");
    let later = Timestamp::now().add_secs(3600);
    // Off by default.
    let report = clear_expired_with(&*srv.store, &Settings::default(), later, &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(report.deleted(CleanupStep::UnusedRegisteredClients), 0);
    let (s, _, _) = srv
        .post(
            "/o/revoke_token/",
            Some((&ids[2], &secrets[2])),
            &[("token", third["access_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(s, 200);
    let mut settings = Settings::default();
    settings.dcr_unused_client_max_age_seconds = Some(std::time::Duration::from_secs(600));
    // Younger than the age: kept.
    let report = clear_expired_with(&*srv.store, &settings, Timestamp::now(), &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(report.deleted(CleanupStep::UnusedRegisteredClients), 0);
    let report = clear_expired_with(&*srv.store, &settings, later, &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(report.deleted(CleanupStep::UnusedRegisteredClients), 1);
    assert!(srv
        .store
        .find_application_by_client_id(&ids[0])
        .await
        .unwrap()
        .is_none());
    assert!(
        srv.store
            .find_application_by_client_id(&ids[1])
            .await
            .unwrap()
            .is_some(),
        "used: kept"
    );
    assert!(
        srv.store
            .find_application_by_client_id(&ids[2])
            .await
            .unwrap()
            .is_some(),
        "used once, its token gone since: kept"
    );
    // Clients made by createapplication are never touched.
    assert!(srv
        .store
        .find_application_by_client_id("cc")
        .await
        .unwrap()
        .is_some());
}

/// A test HTTP server of client metadata documents on 127.0.0.1: `/good.json` (for
/// `REDIRECT`, cacheable for a minute), `/mismatch.json` (another client_id),
/// `/big.json` (2 kB), `/slow.json` (3 s late), `/text.json` (text/plain),
/// `/elsewhere.json` (a redirect to another host name).
async fn document_server() -> String {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let port = listener.local_addr().unwrap().port();
    let doc = |id: String, name: &str| {
        serde_json::json!({
            "client_id": id,
            "client_name": name,
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    };
    let json = |v: Value| {
        (
            [
                ("content-type", "application/json"),
                ("cache-control", "public, max-age=60"),
            ],
            v.to_string(),
        )
            .into_response()
    };
    let b = base.clone();
    let good = doc(format!("{b}/good.json"), "A document client");
    let mismatch = doc(format!("{b}/other.json"), "Mismatch");
    let mut big = doc(format!("{b}/big.json"), "Big");
    big["padding"] = "x".repeat(2048).into();
    let slow = doc(format!("{b}/slow.json"), "Slow");
    let app = Router::new()
        .route(
            "/good.json",
            get(move || {
                let v = good.clone();
                async move { json(v) }
            }),
        )
        .route(
            "/mismatch.json",
            get(move || {
                let v = mismatch.clone();
                async move { json(v) }
            }),
        )
        .route(
            "/big.json",
            get(move || {
                let v = big.clone();
                async move { json(v) }
            }),
        )
        .route(
            "/slow.json",
            get(move || {
                let v = slow.clone();
                async move {
                    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                    json(v)
                }
            }),
        )
        .route("/text.json", get(|| async { "not json" }))
        .route(
            "/elsewhere.json",
            get(move || async move {
                (
                    http::StatusCode::FOUND,
                    [("location", format!("http://localhost:{port}/good.json"))],
                )
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// RFC 8414 §3: where the metadata of the issuer `issuer` is.
fn as_metadata_url(issuer: &str) -> String {
    let u = reqwest::Url::parse(issuer).unwrap();
    format!(
        "{}/.well-known/oauth-authorization-server{}",
        u.origin().ascii_serialization(),
        u.path().trim_end_matches('/')
    )
}

/// From nothing but the API's URL to a 200, over real HTTP, as an MCP-style client does:
/// 401 → resource metadata → authorization-server metadata → registration (or a client
/// metadata document URL as the client id) → authorization code + PKCE with `resource`
/// (login and consent over HTTP) → token → the API.
async fn follow_the_chain(srv: &Server, api: &str, document_client: Option<String>) {
    let http = &srv.http;
    // 1. The API says where its metadata is.
    let res = http.get(api).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let c = challenge(&res);
    let metadata_url = c
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no resource_metadata in {c}"))
        .to_owned();
    // 2. The resource metadata names the resource and its authorization server.
    let rm: Value = http
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resource = rm["resource"].as_str().unwrap().to_owned();
    assert_eq!(resource, api, "RFC 9728 §3.3: the resource is the API");
    let issuer = rm["authorization_servers"][0].as_str().unwrap().to_owned();
    let scope = rm["scopes_supported"][0].as_str().unwrap().to_owned();
    // 3. The authorization server's metadata, where RFC 8414 §3 puts it.
    let asm: Value = http
        .get(as_metadata_url(&issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asm["issuer"], issuer.as_str());
    assert!(asm["code_challenge_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&"S256".into()));
    // 4. A client id: registered (RFC 7591), or the document's URL.
    let client_id = match document_client {
        Some(url) => {
            assert_eq!(asm["client_id_metadata_document_supported"], true, "{asm}");
            url
        }
        None => {
            let endpoint = asm["registration_endpoint"]
                .as_str()
                .expect("a registration endpoint");
            let body = serde_json::json!({
                "client_name": "An MCP-style agent",
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            });
            let (s, v, _) =
                send_json(http, reqwest::Method::POST, endpoint, None, Some(&body)).await;
            assert_eq!(s, 201, "{v}");
            v["client_id"].as_str().unwrap().to_owned()
        }
    };
    // 5. Authorization code + PKCE, for this resource; the user signs in and consents.
    let (verifier, challenge_value) = pkce_pair();
    let mut url = reqwest::Url::parse(asm["authorization_endpoint"].as_str().unwrap()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", &scope)
        .append_pair("state", "chain")
        .append_pair("code_challenge", &challenge_value)
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", &resource);
    let back = srv.browser_approve(url).await;
    assert_eq!(query_param(&back, "state").as_deref(), Some("chain"));
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    // 6. The token, for this resource only.
    let res = http
        .post(asm["token_endpoint"].as_str().unwrap())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id.as_str()),
            ("code_verifier", verifier.as_str()),
            ("resource", resource.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let t: Value = res.json().await.unwrap();
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        srv.introspect(access).await["aud"],
        resource.as_str(),
        "its audience is the API"
    );
    // 7. The API answers.
    let res = http.get(api).bearer_auth(access).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let hello: Value = res.json().await.unwrap();
    assert_eq!(hello["client_id"], client_id.as_str());
}

async fn the_chain_with_dynamic_registration(db: Db) {
    use tower_oauth_toolkit::settings::DcrPolicy;
    let Some(srv) = start(db, dcr_settings(DcrPolicy::Open)).await else {
        return;
    };
    let api = srv.url("/api/hello");
    follow_the_chain(&srv, &api, None).await;
}

async fn the_chain_with_a_client_metadata_document(db: Db) {
    let docs = document_server().await;
    let mut settings = Settings::default();
    settings.cimd_enabled = true;
    settings.cimd_allow_loopback = true;
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let api = srv.url("/api/hello");
    let client_id = format!("{docs}/good.json");
    follow_the_chain(&srv, &api, Some(client_id.clone())).await;
    let app = srv
        .store
        .find_application_by_client_id(&client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.name, "A document client");
    assert_eq!(
        app.client_type,
        tower_oauth_toolkit::model::ClientType::Public
    );
}

/// Client metadata documents that are refused, each with its reason, at the
/// authorization endpoint (an error page, no redirect) and the token endpoint
/// (`invalid_client`).
async fn client_metadata_documents_are_checked(db: Db) {
    let docs = document_server().await;
    let mut settings = Settings::default();
    settings.cimd_enabled = true;
    settings.cimd_allow_loopback = true;
    settings.cimd_max_document_size = 1024;
    settings.cimd_fetch_timeout_seconds = std::time::Duration::from_millis(500);
    settings.cimd_failure_backoff_seconds = std::time::Duration::ZERO;
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let port = docs.rsplit(':').next().unwrap();
    for (client_id, reason) in [
        (
            "http://client.example/meta.json".to_owned(),
            "must be https",
        ),
        ("https://10.0.0.7/meta.json".to_owned(), "private address"),
        (
            "https://169.254.169.254/latest/meta-data".to_owned(),
            "private address",
        ),
        (format!("{docs}/mismatch.json"), "client_id is not the URL"),
        (format!("{docs}/big.json"), "larger than 1024 bytes"),
        (format!("{docs}/text.json"), "is not application"),
        (
            format!("{docs}/elsewhere.json"),
            "redirects to another host",
        ),
        (format!("{docs}/missing.json"), "answered 404"),
        (
            format!("http://127.0.0.1:{port}/a/../good.json"),
            "dot segments",
        ),
    ] {
        let (_, challenge_value) = pkce_pair();
        let mut url = reqwest::Url::parse(&srv.url("/o/authorize/")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("code_challenge", &challenge_value)
            .append_pair("code_challenge_method", "S256");
        let res = srv.http.get(url).send().await.unwrap();
        assert_eq!(res.status(), 400, "{client_id}");
        let page = res.text().await.unwrap();
        assert!(
            page.contains(reason),
            "{client_id}: {reason:?} not in {page}"
        );
        let (s, v, _) = srv
            .token(
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", &client_id),
                    ("code", "x"),
                ],
            )
            .await;
        assert_eq!((s, err(&v)), (401, "invalid_client"), "{client_id}: {v}");
    }
    // An unreachable or slow host is a 503 (it may come back), not a refusal.
    let slow = format!("{docs}/slow.json");
    let (s, v, _) = srv
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &slow),
                ("code", "x"),
            ],
        )
        .await;
    assert_eq!((s, err(&v)), (503, "temporarily_unavailable"), "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{v}"
    );
    // Without the development setting a loopback document is refused too.
    let mut settings = Settings::default();
    settings.cimd_enabled = true;
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let (s, v, _) = srv
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &format!("{docs}/good.json")),
                ("code", "x"),
            ],
        )
        .await;
    assert_eq!((s, err(&v)), (401, "invalid_client"), "{v}");
    assert!(
        v["error_description"].as_str().unwrap().contains("https"),
        "{v}"
    );
    // And with CIMD off, a URL is just an unknown client.
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let meta: Value = srv
        .http
        .get(srv.url("/o/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["client_id_metadata_document_supported"], false);
    let good = format!("{docs}/good.json");
    let (s, v, _) = srv
        .token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &good),
                ("code", "x"),
            ],
        )
        .await;
    assert_eq!((s, err(&v)), (401, "invalid_client"), "{v}");
    assert!(
        srv.store
            .find_application_by_client_id(&good)
            .await
            .unwrap()
            .is_none(),
        "not fetched"
    );
}

on_both!(
    the_chain_with_dynamic_registration,
    the_chain_with_a_client_metadata_document,
    client_metadata_documents_are_checked,
    registration_is_off_by_default,
    dynamic_registration_and_management,
    registration_policies_and_rate_limit,
    cleanup_removes_unused_registered_clients,
    serve_publishes_the_demo_api_metadata,
    resource_settings_fill_the_document,
    resource_indicators_in_the_provider,
    jwt_access_tokens_carry_the_audience,
    every_validator_checks_the_audience,
    the_demo_api_checks_a_configured_audience,
);
