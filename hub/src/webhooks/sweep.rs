//! Time-based events, by the injected clock: a case assignment due within a day
//! (`case.due_soon`) or past its deadline unreplied (`case.overdue`), an approved grant
//! whose window ends within a day (`grant.expiring`), and an anomaly of the last 24 hours
//! to the DPOs (`anomaly.flagged`). Invariant: each is written once per (subject, kind) —
//! the sweep mark is inserted in the events' own transaction.

use super::{DPO_DESTINATION, Webhooks};
use crate::error::Error;
use crate::oversight::Anomaly;
use crate::storage::OutboxEvent;
use crate::storage::outbox::case_event;

/// "Within a day".
const DAY_MS: i64 = 86_400_000;

impl Webhooks {
    /// Write the time-based events that are due now and were not written before; the number
    /// of subjects that got one.
    pub async fn sweep(&self) -> Result<usize, Error> {
        let now = self.clock.now_ms();
        let mut written = 0;
        for (case, kind, department, round, deadline) in self
            .store
            .assignments_due_by(now.saturating_add(DAY_MS))
            .await?
        {
            let what = if deadline <= now {
                "overdue"
            } else {
                "due_soon"
            };
            let event = case_event(
                &case,
                what,
                &kind,
                round,
                std::slice::from_ref(&department),
                deadline,
            );
            let mark = format!("case:{case}:{round}:{department}:{what}");
            if self.store.emit_once(&mark, &[event], now).await? {
                written += 1;
            }
        }
        for (grant, event) in self
            .store
            .grants_expiring(now, now.saturating_add(DAY_MS))
            .await?
        {
            let mark = format!("grant:{grant}:expiring");
            if self.store.emit_once(&mark, &[event], now).await? {
                written += 1;
            }
        }
        Ok(written + self.flag_anomalies(now).await?)
    }

    /// `anomaly.flagged` to the DPOs, once per anomaly id (stable while its entries stay in
    /// the window). Without a `dpo` endpoint the ledger is not scanned and nothing is marked,
    /// so anomalies still in the window are flagged once one is registered.
    async fn flag_anomalies(&self, now: i64) -> Result<usize, Error> {
        let endpoints = self.store.webhook_endpoints().await?;
        if !endpoints.iter().any(|e| e.destination == DPO_DESTINATION) {
            return Ok(0);
        }
        let mut written = 0;
        for anomaly in self.oversight.recent_anomalies().await? {
            let mark = format!("anomaly:{}", anomaly.id);
            if self
                .store
                .emit_once(&mark, &[anomaly_event(&anomaly)], now)
                .await?
            {
                written += 1;
            }
        }
        Ok(written)
    }
}

/// The event of an anomaly: ids, kind, counts, times and ledger indexes; never a user id or
/// a record (who looked is in the entries, which the DPO reads with `audit:read`).
fn anomaly_event(a: &Anomaly) -> OutboxEvent {
    OutboxEvent {
        event: "anomaly.flagged".to_owned(),
        data: serde_json::json!({
            "anomaly_id": a.id,
            "kind": a.kind,
            "client": a.actor.client,
            "department": a.actor.department,
            "count": a.count,
            "first": a.first,
            "last": a.last,
            "entries": a.entries,
        }),
        destinations: vec![DPO_DESTINATION.to_owned()],
        nats: false,
    }
}
