//! The NATS JetStream publisher: outbox rows of the `nats` sink (case events and signed
//! checkpoints) are published to `gridhub.<instance>.cases.<kind>` and
//! `gridhub.<instance>.checkpoints`, with `Nats-Msg-Id` = the outbox id so JetStream drops a
//! re-publish after a crash between its ack and our mark. Invariant: a row counts as delivered
//! only once JetStream acked it.

use std::time::Duration;

pub use async_nats;
use async_nats::jetstream;

use crate::config::NatsSettings;
use crate::storage::OutboxRow;

/// A connection to NATS with the stream in place.
#[derive(Clone)]
pub struct Publisher {
    context: jetstream::Context,
    /// `gridhub.<instance>` unless configured.
    prefix: String,
}

/// The default subject prefix of an instance: `gridhub.<instance>`.
pub fn prefix(instance: &str) -> String {
    format!("gridhub.{}", token(instance))
}

/// The subject of an event under `base`: `…checkpoints` for checkpoints, `…cases.<kind>` for
/// `case.<kind>`, `…<type>` otherwise.
pub fn subject(base: &str, event: &str) -> String {
    match event.split_once('.') {
        Some(("ledger", "checkpoint")) => format!("{base}.checkpoints"),
        Some(("case", kind)) => format!("{base}.cases.{}", token(kind)),
        _ => format!("{base}.{}", token(event)),
    }
}

/// A subject token: characters NATS gives meaning to (`.`, `*`, `>`, whitespace) become `_`.
fn token(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

impl Publisher {
    /// Connect and make sure the stream exists (created with the instance's subjects).
    pub async fn connect(settings: &NatsSettings, instance: &str) -> anyhow::Result<Publisher> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(settings.url.as_str())
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to NATS: {e}"))?;
        let context = jetstream::new(client);
        let prefix = settings
            .subject_prefix
            .clone()
            .unwrap_or_else(|| prefix(instance));
        context
            .get_or_create_stream(jetstream::stream::Config {
                name: settings.stream.clone(),
                subjects: vec![format!("{prefix}.>")],
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the NATS stream: {e}"))?;
        Ok(Publisher { context, prefix })
    }

    /// Publish `row` and wait for JetStream's ack; `Err` in a few words (never the payload).
    pub async fn publish(&self, row: &OutboxRow) -> Result<(), String> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, row.id.as_str());
        let ack = self
            .context
            .publish_with_headers(
                subject(&self.prefix, &row.event),
                headers,
                row.payload.clone().into(),
            )
            .await
            .map_err(|e| format!("NATS publish failed: {}", e.kind()))?;
        ack.await
            .map(|_| ())
            .map_err(|e| format!("NATS did not ack: {}", e.kind()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_event_type() {
        let base = prefix("hub-1");
        assert_eq!(
            subject(&base, "ledger.checkpoint"),
            "gridhub.hub-1.checkpoints"
        );
        assert_eq!(
            subject(&base, "case.overdue"),
            "gridhub.hub-1.cases.overdue"
        );
        assert_eq!(subject(&prefix("a.b"), "case.x*"), "gridhub.a_b.cases.x_");
    }
}
