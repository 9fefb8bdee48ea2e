//! The HTTP surface: one `router()` per resource, merged here under the shared middleware
//! (request ids, body limit, timeout, panic catcher, access log). Every failure leaves as the
//! JSON error of `crate::error`, including 404/405 and oversize bodies.

mod admin;
mod anomalies;
pub(crate) mod audit;
mod auth;
pub(crate) mod cases;
mod catalog;
mod data;
mod decisions;
mod departments;
pub mod grants;
mod grids;
mod health;
// Ledger status and verification, key versions (issue 20).
pub(crate) mod ledger_keys;
mod middleware;
pub mod openapi;
mod openapi_errors;
mod purposes;
pub(crate) mod records;
pub(crate) mod roles;
mod subject_report;
// The grant watchlist and who can see one record (issue 20).
pub(crate) mod watch;
// Webhook endpoints and deliveries (issue 21).
pub(crate) mod webhooks;
// Departments as witnesses: keys and cosignatures (issue 21).
pub(crate) mod witnesses;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::limit::RequestBodyLimitLayer;

use crate::error::Error;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let limit = state.settings.body_limit_bytes;
    Router::new()
        .merge(health::router())
        .merge(openapi::router())
        .merge(auth::router())
        .merge(admin::router())
        .merge(departments::router())
        .merge(roles::router())
        .merge(grids::router())
        .merge(catalog::router())
        .merge(purposes::router())
        .merge(records::router())
        .merge(grants::router())
        .merge(cases::router())
        .merge(decisions::router())
        .merge(data::router())
        .merge(audit::router())
        .merge(ledger_keys::router())
        .merge(watch::router())
        .merge(subject_report::router())
        .merge(anomalies::router())
        .merge(webhooks::router())
        .merge(witnesses::router())
        .merge(crate::console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::request_context,
        ))
        .with_state(state)
}

async fn not_found() -> Error {
    Error::NotFound("route")
}

async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}
