//! The delivery worker: claims due pending rows, sends each (webhooks: a signed POST; NATS: a
//! JetStream publish acked by the stream) and marks the outcome through the storage writer.
//! Invariant: a row is marked delivered only after a 2xx (webhooks) or a JetStream ack (NATS);
//! nothing here holds a transaction open across a send.

use std::time::Duration;

use super::{Webhooks, signature::WebhookSecret};
use crate::error::Error;
use crate::storage::outbox::{SINK_NATS, SINK_WEBHOOK};
use crate::storage::{DeliveryMark, OutboxRow, WebhookEndpointRow};

/// Rows taken per round and sink.
const BATCH: i64 = 200;
/// How long a claimed row is kept from other workers while it is sent.
const LEASE: Duration = Duration::from_secs(120);

impl Webhooks {
    /// Send every due pending row once; the number delivered. Tests call this after moving
    /// the clock, as the worker does on its tick.
    pub async fn deliver_due(&self) -> Result<usize, Error> {
        let _round = self.round.lock().await;
        let mut delivered = self.deliver_webhooks().await?;
        if let Some(nats) = &self.nats {
            delivered += self.deliver_nats(nats).await?;
        }
        Ok(delivered)
    }

    async fn deliver_webhooks(&self) -> Result<usize, Error> {
        let now = self.clock.now_ms();
        let rows = self.store.due_outbox(SINK_WEBHOOK, now, BATCH).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let endpoints = self.store.webhook_endpoints().await?;
        let mut delivered = 0;
        for row in rows {
            if !self.claim(&row).await? {
                continue;
            }
            let Some(endpoint) = endpoints.iter().find(|e| e.destination == row.destination) else {
                // Removed since: the row fails until dead (a replay after a new PUT sends it).
                self.fail(&row, "no endpoint for the destination".to_owned())
                    .await?;
                continue;
            };
            match self.post(endpoint, &row).await {
                Ok(()) => {
                    self.mark(&row, DeliveryMark::Delivered).await?;
                    delivered += 1;
                }
                Err(error) => self.fail(&row, error).await?,
            }
        }
        Ok(delivered)
    }

    async fn deliver_nats(&self, nats: &super::nats::Publisher) -> Result<usize, Error> {
        let now = self.clock.now_ms();
        let mut delivered = 0;
        for row in self.store.due_outbox(SINK_NATS, now, BATCH).await? {
            if !self.claim(&row).await? {
                continue;
            }
            match nats.publish(&row).await {
                Ok(()) => {
                    self.mark(&row, DeliveryMark::Delivered).await?;
                    delivered += 1;
                }
                Err(error) => self.fail(&row, error).await?,
            }
        }
        Ok(delivered)
    }

    async fn claim(&self, row: &OutboxRow) -> Result<bool, Error> {
        let now = self.clock.now_ms();
        let lease = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        Ok(self
            .store
            .claim_outbox(row, now, now.saturating_add(lease))
            .await?)
    }

    async fn mark(&self, row: &OutboxRow, mark: DeliveryMark) -> Result<(), Error> {
        let now = self.clock.now_ms();
        Ok(self.store.mark_outbox(&row.id, &mark, now).await?)
    }

    /// Schedule the next attempt of `row` (as read before its claim counted this attempt)
    /// after backoff, or mark it dead.
    async fn fail(&self, row: &OutboxRow, error: String) -> Result<(), Error> {
        let attempts = u32::try_from(row.attempts.saturating_add(1)).unwrap_or(u32::MAX);
        let delay = self.backoff.jittered(attempts.saturating_sub(1));
        let delay = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        let dead = self.backoff.exhausted(attempts);
        tracing::info!(id = %row.id, attempts, dead, error = %error, "event not delivered");
        self.mark(
            row,
            DeliveryMark::Failed {
                next_attempt_at: self.clock.now_ms().saturating_add(delay),
                dead,
                error,
            },
        )
        .await
    }

    /// POST `row` to `endpoint`, signed; `Err` names the status or the transport failure
    /// (never the body either way).
    async fn post(&self, endpoint: &WebhookEndpointRow, row: &OutboxRow) -> Result<(), String> {
        let secret: WebhookSecret = self
            .secret_of(endpoint)
            .map_err(|_| "the endpoint's secret cannot be opened".to_owned())?;
        let timestamp = self.clock.now_ms().div_euclid(1000);
        let signature = secret.sign(&row.id, timestamp, &row.payload);
        let resp = self
            .http
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &row.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(row.payload.clone())
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", status.as_u16()))
        }
    }
}

/// A transport failure in a few words (reqwest's text may carry the URL, which is configuration,
/// not personal data, but the kind is all an operator needs).
fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else if e.is_request() {
        "request failed".to_owned()
    } else {
        "transport error".to_owned()
    }
}
