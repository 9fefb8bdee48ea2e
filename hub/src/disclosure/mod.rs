//! Disclosure to department systems (DESIGN.md §3, API.md "Disclosure"): pulls and lookups.
//!
//! A disclosure goes through three steps, each a method, in this order:
//! - `decide`: the department's roles permit `data:read` / `data:lookup` (2); the candidate
//!   grants for (department, purpose, category) valid now, else 403 `no_grant` (3); candidate
//!   records read page by page and planned by the policy engine (4–5, `page`). Nothing is
//!   decrypted.
//! - `record`: the ledger entry — actor, purpose, case, grants, every record with its
//!   per-field levels, built from the same plans — is appended with the page's quota charge and
//!   is durable (6–7); with an idempotency key, a retry is answered from the first entry
//!   instead (`idempotency`).
//! - `release`: only then are the planned fields opened and transformed (`release`), and the
//!   page sealed to the client's age recipient if it asked for that.
//!
//! `explain` shows the plan of a request without disclosing anything (`explain`).
//!
//! Invariants: no field is decrypted before the ledger entry that names it is durable (a
//! `Recorded` page exists only after the append returned, and only `release` takes one); every
//! refusal is a `deny` entry before the error; a page is counted against a quota if and only if
//! its entry is durable.

mod ask;
mod explain;
mod idempotency;
mod page;
mod release;

use std::sync::Arc;

use policy::{Refusal, Request};

pub use ask::{Ask, Cursor, Delivery, Kind, LookupKey, PageLimit, category, within};
pub use explain::{ExplainAsk, Explanation, FieldExplanation, GrantExplanation};
pub use release::{Answer, DisclosedPage, DisclosedRecord};

use crate::auth::{Access, Caller, Principal};
use crate::decisions::Decisions;
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft, LedgerError, Receipt};
use crate::storage::{QuotaCharge, Store};
use crate::time::{cst_day, now_ms, seconds_to_cst_midnight};
use crate::vault::Vault;
use idempotency::Claimed;
use page::PlannedPage;

/// The disclosure service. Cheap to share (`Arc`).
pub struct Disclosures {
    access: Access,
    store: Store,
    vault: Arc<Vault>,
    decisions: Arc<Decisions>,
    /// Most candidate rows one answer may read (`pull_scan_budget_rows`).
    scan_budget: u32,
}

/// A page decided and planned; nothing recorded, nothing opened.
pub struct Decided {
    ask: Ask,
    department: String,
    page: PlannedPage,
    recipient: Option<age::x25519::Recipient>,
    now: i64,
}

/// A page whose ledger entry is durable: the only thing `release` opens fields for.
pub struct Recorded {
    decided: Decided,
    receipt: Receipt,
}

impl Disclosures {
    pub fn new(
        access: Access,
        store: Store,
        vault: Arc<Vault>,
        decisions: Arc<Decisions>,
        scan_budget: u32,
    ) -> Disclosures {
        Disclosures {
            access,
            store,
            vault,
            decisions,
            scan_budget,
        }
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Rule 2: does the caller's role permit this kind of disclosure? Refused: 403, audited.
    /// Handlers call it before parsing the request, so a caller without the role is refused
    /// (and recorded) whatever it sent; `decide` checks it again, so no path skips it.
    pub async fn admit(&self, who: &Principal, kind: Kind) -> Result<(), Error> {
        self.access
            .authorize(who, "data", kind.permission(), None, kind.action())
            .await
    }

    /// DESIGN.md §3 rules 2–5 for one page: role permission, delivery, candidate grants, the
    /// page read and planned. Refusals are audited; nothing else is written.
    pub async fn decide(&self, who: &Principal, ask: Ask) -> Result<Decided, Error> {
        self.admit(who, ask.kind).await?;
        let recipient = self.recipient(who, &ask).await?;
        let department = who
            .department
            .clone()
            .ok_or_else(|| Error::Internal("a client without a department".to_owned()))?;
        self.decisions.refresh_to(who.versions.decision).await?;
        let now = now_ms();
        let request = Request {
            department: &department,
            category: &ask.category.name,
            purpose: &ask.purpose,
            case: ask.case.as_deref(),
            now,
        };
        let candidates = match self
            .decisions
            .with_index(|index| index.candidates(&request))?
        {
            Ok(c) => c,
            Err(Refusal::NoGrant | Refusal::UnknownCategory) => {
                let why = "no approved grant for this department, purpose and category";
                let error = Error::NoGrant(why.to_owned());
                return Err(self.refuse(who, &ask, why, error).await);
            }
        };
        if let Some(unreached) = candidates.case_refusal() {
            let why = format!(
                "every grant is case-bound and the case gives no responsibility ({})",
                unreached.as_str()
            );
            let error = Error::Forbidden(why.clone());
            return Err(self.refuse(who, &ask, &why, error).await);
        }
        let page = page::plan_page(
            &self.store,
            ask.category,
            &candidates,
            &ask,
            self.scan_budget,
        )
        .await?;
        Ok(Decided {
            ask,
            department,
            page,
            recipient,
            now,
        })
    }

    /// Record the decided page in the ledger, charged against today's quotas in the same
    /// commit (rule 6), and return it once the entry is durable. With an idempotency key the
    /// key is claimed first, and a retry is answered from the entry of the first answer.
    pub async fn record(&self, who: &Principal, decided: Decided) -> Result<Recorded, Error> {
        let Some(key) = decided.ask.idempotency.clone() else {
            return self.append(who, decided).await;
        };
        match idempotency::claim(&self.store, who, &key, &decided).await? {
            Claimed::Replay { index } => {
                let receipt = idempotency::replay(self.access.ledger(), index, &decided).await?;
                Ok(Recorded { decided, receipt })
            }
            Claimed::New => {
                let outcome = self.append(who, decided).await;
                let receipt = outcome.as_ref().ok().map(|r| &r.receipt);
                idempotency::settle(&self.store, who, &key, receipt).await?;
                outcome
            }
        }
    }

    /// Open and transform the recorded page's fields, and seal the page if it was asked for.
    pub fn release(&self, recorded: Recorded) -> Result<Answer, Error> {
        release::release(&self.vault, recorded)
    }

    async fn append(&self, who: &Principal, decided: Decided) -> Result<Recorded, Error> {
        let ask = &decided.ask;
        let page = &decided.page;
        let count = page.pending.len();
        let draft = entry(who, ask, Decision::Allow)
            .grants(page.credited.clone())
            .records(page.refs.clone())
            .reason(&match &ask.key {
                Some(key) => format!("lookup by {}: {count} records disclosed", key.field),
                None => format!("{count} records disclosed"),
            });
        let charge = QuotaCharge {
            day: cst_day(decided.now),
            claims: page.claims.clone(),
        };
        let appended = match self.access.ledger().append_charged(draft, charge).await {
            Ok(appended) => appended,
            Err(LedgerError::OverQuota { grant, left }) => {
                let why = format!(
                    "the daily quota of grant {grant} has {left} records left today; ask for fewer"
                );
                let error = Error::QuotaExceeded {
                    message: why.clone(),
                    retry_after_secs: seconds_to_cst_midnight(decided.now),
                };
                return Err(self.refuse(who, ask, &why, error).await);
            }
            Err(e) => return Err(e.into()),
        };
        let receipt = self.access.ledger().receipt(&appended);
        Ok(Recorded { decided, receipt })
    }

    /// A sealed answer needs the client's registered age recipient: otherwise 406, audited.
    /// Decided before anything is read, so a refusal discloses nothing.
    async fn recipient(
        &self,
        who: &Principal,
        ask: &Ask,
    ) -> Result<Option<age::x25519::Recipient>, Error> {
        if ask.delivery == Delivery::Plain {
            return Ok(None);
        }
        let recipient = match &who.caller {
            Caller::Client { id, .. } => self
                .store
                .client(id)
                .await?
                .and_then(|c| c.age_recipient)
                .and_then(|r| r.parse::<age::x25519::Recipient>().ok()),
            Caller::User { .. } | Caller::Operator => None,
        };
        match recipient {
            Some(r) => Ok(Some(r)),
            None => {
                let why = "a sealed response needs an age recipient registered for this client";
                let error = Error::NotAcceptable(why.to_owned());
                Err(self.refuse(who, ask, why, error).await)
            }
        }
    }

    /// Refuse, audited with the request's context.
    async fn refuse(&self, who: &Principal, ask: &Ask, reason: &str, error: Error) -> Error {
        let draft = entry(who, ask, Decision::Deny).reason(reason);
        match self.access.record(draft).await {
            Ok(_) => error,
            Err(e) => e,
        }
    }
}

/// The ledger entry of a disclosure or its refusal: who, the action, the category, purpose and
/// case asked for.
fn entry(who: &Principal, ask: &Ask, decision: Decision) -> EntryDraft {
    let draft = EntryDraft::new(
        who.actor(),
        ask.kind.action(),
        decision,
        current_request_id(),
    )
    .category(&ask.category.name)
    .purpose(&ask.purpose);
    match &ask.case {
        Some(case) => draft.case(case),
        None => draft,
    }
}
