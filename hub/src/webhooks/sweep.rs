//! Time-based events, by the injected clock: a case assignment due within a day
//! (`case.due_soon`) or past its deadline unreplied (`case.overdue`), and an approved grant
//! whose window ends within a day (`grant.expiring`). Invariant: each is written once per
//! (subject, kind) — the sweep mark is inserted in the events' own transaction.

use super::Webhooks;
use crate::error::Error;
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
        Ok(written)
    }
}
