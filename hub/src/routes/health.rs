//! Liveness, readiness and the ledger's figures for Prometheus.

use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;
use crate::ledger::Health as LedgerHealth;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'static str>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        database: None,
    })
}

/// How long `/readyz` waits for the database before answering 503.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// The ledger can commit, the database answers within a second, and the keyring is unlocked (it
/// is, or the hub would not have started). 503 `storage_unavailable` at once while writes are
/// failing (the message names the kind of fault), or when the database does not answer in time.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health),
        (status = 503, description = "storage writes are failing or the database does not answer \
            (`storage_unavailable`)")))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, Error> {
    if let LedgerHealth::Degraded { fault, .. } = state.ledger.health() {
        return Err(Error::StorageDegraded(fault.as_str()));
    }
    match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(answer) => answer?,
        Err(_) => return Err(Error::Timeout),
    }
    Ok(Json(Health {
        status: "ready",
        database: Some(state.store.backend_name()),
    }))
}

/// Prometheus text (`crate::metrics`): requests by route, method and status with latencies,
/// ledger entries by stream and decision, records and fields disclosed, the ledger's size,
/// health, append latency and group-commit size, connection pools, the outbox backlog. No
/// personal data, no identifiers. With `metrics_token` configured the scraper must send it as a
/// bearer token (401 `unauthenticated` otherwise, audited as `metrics.read`).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain; version=0.0.4",
        description = "Prometheus text exposition format"),
        (status = 401, description = "`metrics_token` is configured and the request does not \
            carry it (`unauthenticated`)")))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, Error> {
    if let Some(expected) = &state.settings.metrics_token {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Digests compared, not the tokens: how long the comparison takes says nothing about
        // the token.
        let digest = |t: &[u8]| ring::digest::digest(&ring::digest::SHA256, t);
        let matches = digest(given.as_bytes()).as_ref()
            == digest(secrecy::ExposeSecret::expose_secret(expected).as_bytes()).as_ref();
        if !matches {
            return Err(state
                .access
                .deny(
                    crate::ledger::Actor::default(),
                    "metrics.read",
                    "no or wrong metrics token",
                    Error::Unauthenticated,
                )
                .await);
        }
    }
    let text = state.metrics.render(&state.store, &state.ledger).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        text,
    ))
}
