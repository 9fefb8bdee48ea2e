//! Per-request context: a request id (the client's if it is a sane token, else a new UUID),
//! the task-local that error bodies read it from, the source address that refusal entries name, an oversize check on `content-length`, a
//! whole-request timeout, a panic catcher, the security headers of every answer, and one
//! access-log line. The log names method, route
//! template, status and latency, never the query string or body (they may carry personal data).

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;

use crate::auth::Connection;
use crate::auth::source::REQUEST_SOURCE;
use crate::error::{Error, REQUEST_ID};
use crate::state::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

fn sane_request_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    ok.then(|| s.to_owned())
}

pub async fn request_context(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    // Ids the hub makes are UUIDv7, ordered by time: the ledger's `request_id` index then
    // grows at its right edge, instead of taking a random page per entry (which halved the
    // SQLite append rate; docs/PERFORMANCE.md "Audit search").
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(sane_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        req.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let source = req.extensions().get::<Connection>().map(|c| c.peer.ip());
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "-".to_owned());
    let started = Instant::now();
    let limit = state.settings.body_limit_bytes;
    let timeout = Duration::from_secs(state.settings.request_timeout_secs);

    let too_large = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > limit as u64);

    let handle = async move {
        if too_large {
            return Error::PayloadTooLarge.into_response();
        }
        let run = std::panic::AssertUnwindSafe(next.run(req)).catch_unwind();
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(response)) => response,
            Ok(Err(_panic)) => Error::Internal("handler panicked".to_owned()).into_response(),
            Err(_elapsed) => Error::Timeout.into_response(),
        }
    };
    let in_context = REQUEST_ID.scope(request_id.clone(), handle);
    let mut response = match source {
        Some(ip) => REQUEST_SOURCE.scope(ip, in_context).await,
        None => in_context.await,
    };

    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    security_headers(response.headers_mut());
    state.metrics.observe_request(
        &route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    tracing::info!(
        request_id,
        %method,
        route,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// On every answer: browsers keep to HTTPS for a year (`Strict-Transport-Security`; ignored on
/// the `--insecure-http` development listener, as browsers ignore it over plain HTTP), never
/// sniff a type, send no referrer (the console's pages keep theirs, `same-origin`), and store nothing (`no-store`: answers carry personal data or
/// tokens, and the few that do not gain nothing from a cache). A handler's own `Cache-Control`
/// is kept.
fn security_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}
