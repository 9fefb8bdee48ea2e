//! Liveness and readiness.

use std::time::Duration;

use axum::extract::State;
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
