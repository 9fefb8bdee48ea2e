//! Webhook endpoints and deliveries (issue 21), through `crate::webhooks`, which checks, audits
//! and stores:
//! - `PUT /v1/admin/webhooks/{destination}` `{url}`: register or replace a department's (or the
//!   DPOs', `dpo`) endpoint; answers its new secret once (rotating = PUT again);
//! - `GET /v1/admin/webhooks`, `DELETE /v1/admin/webhooks/{destination}`;
//! - `GET /v1/admin/webhooks/deliveries?state=dead`: the outbox, for operators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::Error;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::storage::OutboxRow;
use crate::webhooks::Endpoint;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/webhooks", get(list_webhooks))
        .route("/v1/admin/webhooks/deliveries", get(deliveries))
        .route(
            "/v1/admin/webhooks/{destination}",
            put(put_webhook).delete(delete_webhook),
        )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://civil-affairs.example/hooks/gridhub"}))]
pub struct WebhookUrl {
    /// An `https://` URL (at most 2 000 characters).
    #[schema(max_length = 2000, pattern = "^https://[^/?#]+")]
    url: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookSecretShown {
    destination: String,
    url: String,
    /// `whsec_<base64>`: shown this once; verify signatures with it (Standard Webhooks).
    secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookEndpoint {
    destination: String,
    url: String,
    updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    webhooks: Vec<WebhookEndpoint>,
}

impl From<Endpoint> for WebhookEndpoint {
    fn from(e: Endpoint) -> WebhookEndpoint {
        WebhookEndpoint {
            destination: e.destination,
            url: e.url,
            updated_at: crate::time::rfc3339(e.updated_at),
        }
    }
}

/// Register or replace the endpoint of a department (or `dpo`); the new secret is shown once.
#[utoipa::path(put, path = "/v1/admin/webhooks/{destination}", tag = "identity",
    request_body = WebhookUrl, security(("bearer" = [])),
    params(("destination" = String, Path, description = "a department id or `dpo`")),
    responses((status = 200, body = WebhookSecretShown), (status = 403), (status = 422)))]
pub async fn put_webhook(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(destination): ApiPath<String>,
    ApiJson(req): ApiJson<WebhookUrl>,
) -> Result<Json<WebhookSecretShown>, Error> {
    let (endpoint, secret) = state
        .webhooks
        .put_endpoint(&who, &destination, &req.url)
        .await?;
    Ok(Json(WebhookSecretShown {
        destination: endpoint.destination,
        url: endpoint.url,
        secret: secret.to_string(),
    }))
}

/// Every registered endpoint (never a secret).
#[utoipa::path(get, path = "/v1/admin/webhooks", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = WebhookList), (status = 403)))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<WebhookList>, Error> {
    let rows = state.webhooks.endpoints(&who).await?;
    Ok(Json(WebhookList {
        webhooks: rows.into_iter().map(WebhookEndpoint::from).collect(),
    }))
}

/// Remove an endpoint; its undelivered events wait (a replay after a new PUT sends them).
#[utoipa::path(delete, path = "/v1/admin/webhooks/{destination}", tag = "identity",
    security(("bearer" = [])), params(("destination" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(destination): ApiPath<String>,
) -> Result<StatusCode, Error> {
    state.webhooks.delete_endpoint(&who, &destination).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// Only rows in this state. Inlined: a parameter's `$ref` would point at a schema that
    /// no body registers.
    #[param(inline)]
    state: Option<DeliveryState>,
}

/// The state of an outbox row.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Delivery {
    /// The `webhook-id` (and `Nats-Msg-Id`).
    id: String,
    event: String,
    destination: String,
    /// `webhook` or `nats`.
    sink: String,
    state: String,
    attempts: i64,
    created_at: String,
    next_attempt_at: String,
    /// The last failure: an HTTP status or a transport failure, never a body.
    last_error: Option<String>,
    delivered_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    deliveries: Vec<Delivery>,
}

impl From<OutboxRow> for Delivery {
    fn from(r: OutboxRow) -> Delivery {
        Delivery {
            id: r.id,
            event: r.event,
            destination: r.destination,
            sink: r.sink,
            state: r.state,
            attempts: r.attempts,
            created_at: crate::time::rfc3339(r.created_at),
            next_attempt_at: crate::time::rfc3339(r.next_attempt_at),
            last_error: r.last_error,
            delivered_at: r.delivered_at.map(crate::time::rfc3339),
        }
    }
}

/// Outbox rows, newest first (at most 1 000), optionally in one state.
#[utoipa::path(get, path = "/v1/admin/webhooks/deliveries", tag = "identity",
    security(("bearer" = [])), params(DeliveryQuery),
    responses((status = 200, body = DeliveryList), (status = 403), (status = 422)))]
pub async fn deliveries(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<DeliveryList>, Error> {
    let rows = state
        .webhooks
        .deliveries(&who, q.state.map(DeliveryState::as_str))
        .await?;
    Ok(Json(DeliveryList {
        deliveries: rows.into_iter().map(Delivery::from).collect(),
    }))
}
