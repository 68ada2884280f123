//! The edge of `serve`: what every request must satisfy before any handler runs, applied
//! once in the server loop ([`run_server`](super::serve::run_server)) rather than per
//! endpoint.
//!
//! - **Host** (RFC 9112 §3.2): an HTTP/1.1 request without a `Host` header, or any request
//!   with more than one, is `400 Bad Request`.
//! - **Declared size**: a `Content-Length` over the body limit is `413` at once, before
//!   the body is polled — so hyper never sends `100 Continue` to an `Expect:
//!   100-continue` client it is about to refuse (RFC 9110 §10.1.1).
//! - **Body deadline**: the whole body must arrive within the request timeout counted
//!   from the end of the headers (which have their own `--header-read-timeout`); a client
//!   that trickles it, or sends none after announcing one, gets `408` and the connection
//!   is closed. A body without a declared length is cut off at the limit too (`413`).
//!
//! Bodies are read here in full (at most the limit: every endpoint of the server takes a
//! small form) and handed on as one buffer; a request without a body costs one check.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST};
use http::{HeaderValue, StatusCode, Version};
use http_body::Body as _;

/// The limits of [`guard`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct EdgeLimits {
    /// How long the body may take to arrive, from the end of the headers.
    pub(crate) request_timeout: Duration,
    /// The largest body accepted.
    pub(crate) max_body: usize,
}

/// A refusal from the edge: plain text, and the connection closed after it (the rest of
/// the request, if any, is not read).
fn refuse(status: StatusCode, message: &'static str) -> Response {
    let mut res = (status, message).into_response();
    res.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Checks `Host` and the body's size and deadline; see the [module docs](self).
pub(crate) async fn guard(State(limits): State<EdgeLimits>, req: Request, next: Next) -> Response {
    let hosts = req.headers().get_all(HOST).iter().count();
    if hosts > 1 || (hosts == 0 && req.version() == Version::HTTP_11) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "An HTTP/1.1 request needs exactly one Host header.\n",
        );
    }
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let read = read_body(body, limits.max_body, declared.unwrap_or(0) as usize);
    match tokio::time::timeout(limits.request_timeout, read).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(BodyError::TooLarge)) => too_large(),
        Ok(Err(BodyError::Broken)) => refuse(
            StatusCode::BAD_REQUEST,
            "The request body could not be read.\n",
        ),
        Err(_) => refuse(
            StatusCode::REQUEST_TIMEOUT,
            "The request body did not arrive in time.\n",
        ),
    }
}

fn too_large() -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "The request body is larger than this server accepts.\n",
    )
}

enum BodyError {
    TooLarge,
    Broken,
}

/// Reads `body` whole, refusing more than `limit` bytes. A body that arrives in one frame
/// (the usual small form) is passed on without a copy.
async fn read_body(mut body: Body, limit: usize, hint: usize) -> Result<Bytes, BodyError> {
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut total = 0usize;
    loop {
        let frame = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let data = match frame {
            None => break,
            Some(Err(_)) => return Err(BodyError::Broken),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue, // trailers
            },
        };
        total += data.len();
        if total > limit {
            return Err(BodyError::TooLarge);
        }
        match first.take() {
            None if rest.is_empty() => first = Some(data),
            None => rest.extend_from_slice(&data),
            Some(f) => {
                rest.reserve(hint.clamp(total, limit));
                rest.extend_from_slice(&f);
                rest.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| rest.freeze()))
}
