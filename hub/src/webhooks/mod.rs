//! Webhooks and the NATS publisher (issue 21), fed by one transactional outbox
//! (`crate::storage::outbox`): the grant and case writes put their events in the outbox in their
//! own transactions; this service manages the endpoints, sweeps time-based events and delivers.
//!
//! Guarantees: every endpoint change is audited before it is stored; a secret is shown once and
//! stored sealed by the vault; an event is sent signed (Standard Webhooks) and marked delivered
//! only on a 2xx; failures are retried with backoff and end dead, never dropped silently.
//!
//! - `signature.rs`: Standard Webhooks secrets and signatures.
//! - `backoff.rs`: exponential backoff with full jitter.
//! - `delivery.rs`: the worker (`deliver_due`).
//! - `sweep.rs`: due-soon, overdue, expiring and anomaly events, each once (`sweep`).
//! - `nats.rs`: the JetStream publisher.

mod backoff;
mod delivery;
pub mod nats;
mod outbox;
mod replay;
pub mod signature;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

pub use backoff::Backoff;
pub use outbox::{DELIVERY_STATES, EVENT_TYPES};
pub use replay::{ReplayArgs, replay, replay_command};
use signature::WebhookSecret;

use crate::auth::{Access, Principal};
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft};
use crate::oversight::Oversight;
use crate::storage::{OutboxRow, Store, WebhookEndpointRow};
use crate::time::Clock;
use crate::vault::{CASE_TEXTS, SealedField, Vault, WrappedDek};

/// The destination of the DPOs' events.
pub const DPO_DESTINATION: &str = "dpo";

/// The webhook service. Cheap to share behind an `Arc`.
pub struct Webhooks {
    access: Access,
    store: Store,
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    backoff: Backoff,
    /// One delivery round at a time in this process (the worker's tick and a test's call).
    round: tokio::sync::Mutex<()>,
    /// The JetStream publisher, when `[nats]` is configured.
    nats: Option<nats::Publisher>,
    poll: Duration,
    /// Reads the anomalies the sweep flags to the DPOs (`anomaly.flagged`).
    oversight: Arc<Oversight>,
}

/// An endpoint as the admin API shows it (never its secret).
pub struct Endpoint {
    pub destination: String,
    pub url: String,
    pub updated_at: i64,
}

impl Webhooks {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        access: Access,
        store: Store,
        vault: Arc<Vault>,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
        backoff: Backoff,
        poll: Duration,
        nats: Option<nats::Publisher>,
        oversight: Arc<Oversight>,
    ) -> Webhooks {
        if nats.is_some() {
            store.publish_to_nats();
        }
        Webhooks {
            access,
            store,
            vault,
            clock,
            http,
            backoff,
            round: tokio::sync::Mutex::new(()),
            nats,
            poll,
            oversight,
        }
    }

    /// Register or replace (rotating its secret) the endpoint of `destination` (a department
    /// or `dpo`); answers the new secret, `whsec_<base64>`, shown this once.
    pub async fn put_endpoint(
        &self,
        who: &Principal,
        destination: &str,
        url: &str,
    ) -> Result<(Endpoint, zeroize::Zeroizing<String>), Error> {
        self.access
            .authorize(who, "departments", "write", None, "webhook.put")
            .await?;
        self.known_destination(destination).await?;
        let url = checked_url(url)?;
        let secret = WebhookSecret::generate()
            .map_err(|_| Error::Internal("no randomness for a webhook secret".to_owned()))?;
        let (wrapped, sealed) = self.vault.seal_new_record(
            CASE_TEXTS,
            &binding(destination),
            &[("secret", secret.bytes())],
        )?;
        let sealed = sealed
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("sealing returned nothing".to_owned()))?;
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "webhook.put",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!(
                    "webhook endpoint of {destination} set to {url} (new secret)"
                )),
            )
            .await?;
        let now = self.clock.now_ms();
        self.store
            .put_webhook_endpoint(&WebhookEndpointRow {
                destination: destination.to_owned(),
                url: url.clone(),
                kek_version: wrapped.kek_version,
                wrapped_dek: wrapped.bytes,
                sealed_secret: sealed.sealed,
                updated_at: now,
            })
            .await?;
        let endpoint = Endpoint {
            destination: destination.to_owned(),
            url,
            updated_at: now,
        };
        Ok((endpoint, secret.text()))
    }

    /// Every endpoint (`departments:read`).
    pub async fn endpoints(&self, who: &Principal) -> Result<Vec<Endpoint>, Error> {
        self.access
            .authorize(who, "departments", "read", None, "webhook.read")
            .await?;
        Ok(self
            .store
            .webhook_endpoints()
            .await?
            .into_iter()
            .map(|e| Endpoint {
                destination: e.destination,
                url: e.url,
                updated_at: e.updated_at,
            })
            .collect())
    }

    /// Remove the endpoint of `destination` (audited); its undelivered rows stay pending.
    pub async fn delete_endpoint(&self, who: &Principal, destination: &str) -> Result<(), Error> {
        self.access
            .authorize(who, "departments", "write", None, "webhook.delete")
            .await?;
        let known = self.store.webhook_endpoints().await?;
        if !known.iter().any(|e| e.destination == destination) {
            return Err(Error::NotFound("webhook endpoint"));
        }
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "webhook.delete",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!("webhook endpoint of {destination} removed")),
            )
            .await?;
        if !self.store.delete_webhook_endpoint(destination).await? {
            return Err(Error::NotFound("webhook endpoint"));
        }
        Ok(())
    }

    /// Outbox rows, newest first, in `state` if given (`departments:read`).
    pub async fn deliveries(
        &self,
        who: &Principal,
        state: Option<&str>,
    ) -> Result<Vec<OutboxRow>, Error> {
        self.access
            .authorize(who, "departments", "read", None, "webhook.read")
            .await?;
        if let Some(state) = state
            && !DELIVERY_STATES.contains(&state)
        {
            return Err(Error::validation("state", "pending, delivered or dead"));
        }
        Ok(self.store.outbox_rows(state, 1000).await?)
    }

    /// The secret of a stored endpoint.
    fn secret_of(&self, endpoint: &WebhookEndpointRow) -> Result<WebhookSecret, Error> {
        let key = self
            .vault
            .record_key(
                CASE_TEXTS,
                &binding(&endpoint.destination),
                &WrappedDek {
                    kek_version: endpoint.kek_version,
                    bytes: endpoint.wrapped_dek.clone(),
                },
            )
            .map_err(|e| Error::Integrity(e.to_string()))?;
        let plain = key.open_field(&SealedField {
            field: "secret".to_owned(),
            kek_version: endpoint.kek_version,
            sealed: endpoint.sealed_secret.clone(),
        })?;
        WebhookSecret::from_bytes(&plain)
            .ok_or_else(|| Error::Integrity("a stored webhook secret has a bad length".to_owned()))
    }

    async fn known_destination(&self, destination: &str) -> Result<(), Error> {
        if destination == DPO_DESTINATION || self.store.department(destination).await?.is_some() {
            Ok(())
        } else {
            Err(Error::validation("destination", "a department id or `dpo`"))
        }
    }

    /// Run the sweep and the delivery worker every `poll` until the process ends; failures
    /// are logged and retried on the next tick.
    pub fn spawn_worker(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.sweep().await {
                    tracing::warn!(error = %e, "webhook sweep failed");
                }
                if let Err(e) = self.deliver_due().await {
                    tracing::warn!(error = %e, "webhook delivery round failed");
                }
            }
        });
    }
}

/// The vault binding of a destination's secret (its "record id" under `case-texts`).
pub(crate) fn binding(destination: &str) -> String {
    format!("webhook:{destination}")
}

/// An `https://` URL with a host, at most 2 000 characters.
fn checked_url(url: &str) -> Result<String, Error> {
    let bad = || {
        Error::validation(
            "url",
            "an https:// URL with a host, at most 2000 characters",
        )
    };
    if url.len() > 2000 {
        return Err(bad());
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| bad())?;
    if parsed.scheme() != "https" || parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(parsed.to_string())
}

/// The client the worker posts with: the system roots plus `ca_file`'s CAs, no redirects.
pub fn http_client(
    ca_file: Option<&std::path::Path>,
    timeout: Duration,
) -> anyhow::Result<reqwest::Client> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A system root rustls cannot parse is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if let Some(ca) = ca_file {
        for cert in CertificateDer::pem_file_iter(ca)
            .map_err(|e| anyhow::anyhow!("webhooks.ca_file {}: {e}", ca.display()))?
        {
            roots.add(cert?)?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_are_endpoints() {
        assert!(checked_url("https://dept.example/hooks").is_ok());
        for bad in ["http://dept.example/", "ftp://x/", "https://", "not a url"] {
            assert!(checked_url(bad).is_err(), "{bad}");
        }
    }
}
