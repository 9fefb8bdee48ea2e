//! The expiry sweep: approved and suspended grants whose window has ended are recorded as
//! `expired`, each audited before it is stored. Decisions never wait for it — the decision
//! index checks windows itself — so this only makes the stored status say what is true.

use std::sync::Arc;
use std::time::Duration;

use policy::{GrantAction, GrantStatus};

use super::{Grants, grant_entry};
use crate::error::Error;
use crate::ledger::{Actor, Decision};
use crate::storage::{GrantTransition, Transitioned};
use crate::time::now_ms;

/// How often approved grants past their window are marked expired.
pub const EXPIRY_SWEEP: Duration = Duration::from_secs(60);

impl Grants {
    /// Mark approved and suspended grants whose window has ended as expired, each audited; the
    /// number marked. A grant that changed meanwhile is left to the next sweep.
    pub async fn expire_due(&self) -> Result<usize, Error> {
        let now = now_ms();
        let mut expired = 0;
        for row in self.store.grants_past_window(now).await? {
            let entry = grant_entry(Actor::system(), "grant.expire", Decision::Allow, &row)
                .reason(&format!("{} → expired: the window ended", row.status));
            self.access.record(entry).await?;
            let outcome = self
                .store
                .transition_grant(&GrantTransition {
                    id: &row.id,
                    from: row.status,
                    to: GrantStatus::Expired,
                    actor: "system",
                    action: GrantAction::Expire.as_str(),
                    reason: None,
                    artefact: None,
                    now,
                })
                .await?;
            if let Transitioned::Done { version } = outcome {
                let id = row.id.clone();
                self.decisions
                    .apply(version, move |index| index.remove_grant(&id))?;
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// Run `expire_due` every `EXPIRY_SWEEP` until the process ends; failures are logged and
    /// retried on the next tick.
    pub fn spawn_expiry_sweep(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EXPIRY_SWEEP);
            loop {
                tick.tick().await;
                match self.expire_due().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(expired = n, "grants past their window marked expired"),
                    Err(e) => tracing::warn!(error = %e, "grant expiry sweep failed"),
                }
            }
        });
    }
}
