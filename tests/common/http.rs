//! HTTP for tests: the `oauth2` / `openidconnect` crates' client over reqwest 0.13, and a
//! browser (cookie jar, redirects not followed).

/// Sends an `oauth2`/`openidconnect` request with reqwest 0.13 (the crates' own reqwest
/// feature would pull reqwest 0.12).
pub async fn send(
    client: reqwest::Client,
    req: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = req.into_parts();
    let res = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut out = http::Response::builder().status(res.status());
    for (k, v) in res.headers() {
        out = out.header(k, v);
    }
    Ok(out.body(res.bytes().await?.to_vec()).unwrap())
}

/// A browser: a cookie jar, redirects returned to the test rather than followed.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
