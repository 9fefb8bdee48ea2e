//! The watchlist of grants a DPO should look at again (data minimisation: candidates for
//! revocation), `GET /v1/grants/watchlist` and the console's watchlist page:
//! - grants in force that expire within `EXPIRING_DAYS` days (with the days left);
//! - case-bound grants whose department holds no current assignment on an open case (all its
//!   cases are closed, or it never had one): the grant reaches nothing now;
//! - grants unused for `UNUSED_DAYS` days: nothing disclosed or counted under them since
//!   (or since approval, if never), from the use the ledger writer counts in the same
//!   transaction as each disclosure's entry.
//!
//! "Now" is the caller's clock (the hub's injected clock), so a test can move it.

use serde::Serialize;
use utoipa::ToSchema;

use super::Grants;
use crate::auth::Principal;
use crate::error::Error;
use crate::time::{parse_cst_local, rfc3339};

/// Grants that end within this many days are listed.
pub const EXPIRING_DAYS: i64 = 14;
/// Grants unused for this many days are listed.
pub const UNUSED_DAYS: i64 = 30;

const DAY_MS: i64 = 86_400_000;

/// One grant on the watchlist.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WatchedGrant {
    pub id: String,
    pub grantee: String,
    pub category: String,
    pub purpose: String,
    pub case_bound: bool,
    /// `records` or `statistics`.
    pub kind: &'static str,
    /// RFC 3339.
    pub valid_until: String,
    /// Whole days until `valid_until`.
    pub days_left: i64,
    /// The last China Standard Time day anything was disclosed or counted under the grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
    /// Whole days since the last use (since approval if never used).
    pub idle_days: i64,
    /// Closed cases the grantee was ever assigned (case-bound grants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_cases: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Watchlist {
    /// Approved grants ending within 14 days, soonest first.
    pub expiring: Vec<WatchedGrant>,
    /// Case-bound grants whose department has no open case assigned (all closed, or none).
    pub cases_closed: Vec<WatchedGrant>,
    /// Grants with nothing disclosed or counted under them for 30 days, longest idle first.
    pub unused: Vec<WatchedGrant>,
}

impl Grants {
    /// The watchlist at `now` (`grants:read`, refusals audited as `grant.watchlist`).
    pub async fn watchlist(&self, who: &Principal, now: i64) -> Result<Watchlist, Error> {
        self.access
            .authorize(who, "grants", "read", None, "grant.watchlist")
            .await?;
        let last_use = self.store.grant_last_use_days().await?;
        let (open_assigned, closed) = self.store.case_assignment_summary().await?;
        let mut list = Watchlist {
            expiring: Vec::new(),
            cases_closed: Vec::new(),
            unused: Vec::new(),
        };
        for row in self.store.approved_grants().await? {
            let t = &row.terms;
            if !row.in_force() || now >= t.valid_until {
                continue;
            }
            let last_used = last_use.get(&row.id).cloned();
            let idle_since = match &last_used {
                Some(day) => parse_cst_local(&format!("{day}T00:00")).unwrap_or(now),
                None => row.decided_at.unwrap_or(row.requested_at).max(t.valid_from),
            };
            let watched = WatchedGrant {
                id: row.id.clone(),
                grantee: t.grantee.clone(),
                category: t.category.clone(),
                purpose: t.purpose.clone(),
                case_bound: t.case_bound,
                kind: if row.statistics.is_some() {
                    "statistics"
                } else {
                    "records"
                },
                valid_until: rfc3339(t.valid_until),
                days_left: (t.valid_until - now) / DAY_MS,
                last_used,
                idle_days: (now - idle_since).max(0) / DAY_MS,
                closed_cases: t
                    .case_bound
                    .then(|| closed.get(&t.grantee).copied().unwrap_or(0)),
            };
            if t.valid_until - now <= EXPIRING_DAYS * DAY_MS {
                list.expiring.push(watched.clone());
            }
            if t.case_bound && !open_assigned.contains(&t.grantee) {
                list.cases_closed.push(watched.clone());
            }
            if watched.idle_days >= UNUSED_DAYS {
                list.unused.push(watched);
            }
        }
        list.expiring.sort_by_key(|g| g.days_left);
        list.unused.sort_by_key(|g| std::cmp::Reverse(g.idle_days));
        Ok(list)
    }
}
