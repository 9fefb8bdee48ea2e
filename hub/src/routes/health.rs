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

/// Prometheus text: whether the ledger can write (and since when it cannot, why, and how many
/// operations it refused), its size and its group commits. No personal data, no identifiers.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain; version=0.0.4",
        description = "Prometheus text exposition format")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (commits, committed) = state.ledger.commit_stats();
    let (writable, since, refused, fault) = match state.ledger.health() {
        LedgerHealth::Writable => (1, 0, 0, None),
        LedgerHealth::Degraded {
            since_ms,
            refused,
            fault,
            ..
        } => (0, since_ms / 1000, refused, Some(fault)),
    };
    let mut text = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    metric(
        "gridhub_ledger_writable",
        "gauge",
        "1 while the audit ledger can commit; 0 while storage writes fail (writes and \
         disclosures are refused)",
        writable.to_string(),
    );
    metric(
        "gridhub_ledger_degraded_since_seconds",
        "gauge",
        "Unix time of the first failed write of the current outage, 0 when writable",
        since.to_string(),
    );
    metric(
        "gridhub_ledger_refused_operations",
        "gauge",
        "operations refused during the current outage",
        refused.to_string(),
    );
    if let Some(fault) = fault {
        text.push_str(&format!(
            "# HELP gridhub_ledger_fault the kind of storage fault of the current outage\n\
             # TYPE gridhub_ledger_fault gauge\ngridhub_ledger_fault{{kind=\"{}\"}} 1\n",
            fault.as_str()
        ));
    }
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    metric(
        "gridhub_ledger_entries",
        "gauge",
        "entries in the audit ledger",
        state.ledger.size().to_string(),
    );
    metric(
        "gridhub_ledger_commits_total",
        "counter",
        "ledger transactions committed by this process",
        commits.to_string(),
    );
    metric(
        "gridhub_ledger_committed_entries_total",
        "counter",
        "ledger entries committed by this process",
        committed.to_string(),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
