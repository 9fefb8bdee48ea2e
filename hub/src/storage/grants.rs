//! Grants and their history, and the decision version. Every change that can alter a decision
//! (a grant's status, a case's assignees or status, a department's jurisdiction) bumps
//! `decision_state.version` in its own transaction, so every replica brings its decision index
//! up to date on its next request.

use std::collections::{BTreeMap, HashMap};

use policy::{Disclosure, GrantStatus, GrantTerms, GridCode, StatisticsTerms};
use sqlx::{QueryBuilder, Row};

use super::outbox::emit_grant_event;
use super::{Store, WriteTx, on_read, on_write};

pub(super) const BUMP_DECISION_VERSION: &str =
    "UPDATE decision_state SET version = version + 1 WHERE id = 1 RETURNING version";

/// The columns of `grants`, in the order `insert_grant` binds them.
macro_rules! grant_columns {
    () => {
        "id, grantee, purpose, category, fields, scope, row_filter, case_bound, valid_from, \
         valid_until, daily_quota, legal_basis, status, requested_by, requested_at, answer_due, \
         decided_by, decided_at, reason, artefact, updated_at, kind, statistics, consent, \
         consent_by, consent_at, consent_reason"
    };
}

/// A grant as stored.
#[derive(Debug, Clone)]
pub struct GrantRow {
    pub id: String,
    pub terms: GrantTerms,
    pub status: GrantStatus,
    /// `user:<id>` or `client:<id>`.
    pub requested_by: String,
    pub requested_at: i64,
    pub answer_due: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub reason: Option<String>,
    pub artefact: Option<String>,
    pub updated_at: i64,
    /// `Some` for a statistics grant (counts per cell, no record access; `terms.fields` is
    /// empty), `None` for a records grant.
    pub statistics: Option<StatisticsTerms>,
    /// The owning department's answer, for a grant on a department-owned category.
    pub consent: Option<Consent>,
}

/// Where the owner's consent to a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentState {
    Pending,
    Given,
    Declined,
}

impl ConsentState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentState::Pending => "pending",
            ConsentState::Given => "given",
            ConsentState::Declined => "declined",
        }
    }

    fn parse(s: &str) -> Option<ConsentState> {
        [
            ConsentState::Pending,
            ConsentState::Given,
            ConsentState::Declined,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// The owner's consent to a grant of its category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub state: ConsentState,
    /// Who answered (`user:<id>` or `client:<id>`), when, and why (required to decline).
    pub by: Option<String>,
    pub at: Option<i64>,
    pub reason: Option<String>,
}

impl GrantRow {
    /// Does this grant let data flow now (status aside from its window): approved by a DPO
    /// and, on a department-owned category, consented to by the owner.
    pub fn in_force(&self) -> bool {
        self.status == GrantStatus::Approved && self.consent_satisfied()
    }

    /// No consent needed, or given.
    pub fn consent_satisfied(&self) -> bool {
        self.consent
            .as_ref()
            .is_none_or(|c| c.state == ConsentState::Given)
    }

    /// A records grant in force: what the decision index holds.
    pub fn in_record_index(&self) -> bool {
        self.statistics.is_none() && self.in_force()
    }
}

/// The owner's answer on a grant, applied only if the grant is still in `status` with its
/// consent pending.
pub struct ConsentAnswer<'a> {
    pub id: &'a str,
    pub status: GrantStatus,
    pub to: ConsentState,
    /// The grant's status after the answer (`rejected` on a decline).
    pub next_status: GrantStatus,
    pub actor: &'a str,
    pub reason: Option<&'a str>,
    /// Signed when this answer puts the grant in force.
    pub artefact: Option<&'a str>,
    pub now: i64,
}

/// One step of a grant's history.
#[derive(Debug, Clone)]
pub struct GrantEvent {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub status: String,
    pub reason: Option<String>,
}

/// A status change to apply only if the grant is still in `from`.
pub struct GrantTransition<'a> {
    pub id: &'a str,
    pub from: GrantStatus,
    pub to: GrantStatus,
    pub actor: &'a str,
    pub action: &'a str,
    pub reason: Option<&'a str>,
    /// Set on approval; kept otherwise.
    pub artefact: Option<&'a str>,
    pub now: i64,
}

/// Outcome of a transition.
#[derive(Debug, PartialEq, Eq)]
pub enum Transitioned {
    /// Applied; the decision version is now this.
    Done { version: i64 },
    /// The grant was no longer in `from` (or is gone): nothing changed.
    Stale,
}

/// The event a grant's move to `to` emits (`grant.<name>`); none for `requested`, which only a
/// new grant has (`insert_grant` emits it).
fn grant_event_name(from: GrantStatus, to: GrantStatus) -> Option<&'static str> {
    match to {
        GrantStatus::Requested => None,
        GrantStatus::Approved if from == GrantStatus::Suspended => Some("resumed"),
        GrantStatus::Approved => Some("approved"),
        GrantStatus::Rejected => Some("rejected"),
        GrantStatus::Suspended => Some("suspended"),
        GrantStatus::Revoked => Some("revoked"),
        GrantStatus::Expired => Some("expired"),
    }
}

fn decode_error(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored grant has a bad {what}").into())
}

fn grant_from_row<R>(r: &R) -> Result<GrantRow, sqlx::Error>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> bool: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let fields: String = r.try_get("fields")?;
    let fields: BTreeMap<String, Disclosure> =
        serde_json::from_str(&fields).map_err(|_| decode_error("field list"))?;
    let scope: String = r.try_get("scope")?;
    let scope: Vec<String> = serde_json::from_str(&scope).map_err(|_| decode_error("scope"))?;
    let scope = scope
        .iter()
        .map(|g| GridCode::parse(g))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| decode_error("scope"))?;
    let status: String = r.try_get("status")?;
    let quota: Option<i64> = r.try_get("daily_quota")?;
    let statistics: Option<String> = r.try_get("statistics")?;
    let statistics = statistics
        .map(|text| serde_json::from_str::<StatisticsTerms>(&text))
        .transpose()
        .map_err(|_| decode_error("statistics terms"))?;
    let consent: Option<String> = r.try_get("consent")?;
    let consent = match consent {
        None => None,
        Some(state) => Some(Consent {
            state: ConsentState::parse(&state).ok_or_else(|| decode_error("consent"))?,
            by: r.try_get("consent_by")?,
            at: r.try_get("consent_at")?,
            reason: r.try_get("consent_reason")?,
        }),
    };
    Ok(GrantRow {
        id: r.try_get("id")?,
        terms: GrantTerms {
            grantee: r.try_get("grantee")?,
            purpose: r.try_get("purpose")?,
            category: r.try_get("category")?,
            fields,
            scope,
            row_filter: r.try_get("row_filter")?,
            case_bound: r.try_get("case_bound")?,
            valid_from: r.try_get("valid_from")?,
            valid_until: r.try_get("valid_until")?,
            daily_quota: quota
                .map(u32::try_from)
                .transpose()
                .map_err(|_| decode_error("quota"))?,
            legal_basis: r.try_get("legal_basis")?,
        },
        status: GrantStatus::parse(&status).ok_or_else(|| decode_error("status"))?,
        requested_by: r.try_get("requested_by")?,
        requested_at: r.try_get("requested_at")?,
        answer_due: r.try_get("answer_due")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        reason: r.try_get("reason")?,
        artefact: r.try_get("artefact")?,
        updated_at: r.try_get("updated_at")?,
        statistics,
        consent,
    })
}

impl Store {
    /// The version of everything decisions depend on.
    pub async fn decision_version(&self) -> Result<i64, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query("SELECT version FROM decision_state WHERE id = 1")
                .fetch_one(pool)
                .await?
                .try_get("version")
        })
    }

    /// Store a new grant request (status `requested`) with its first history event.
    pub async fn insert_grant(&self, g: &GrantRow) -> Result<(), sqlx::Error> {
        let fields = serde_json::to_string(&g.terms.fields).map_err(|_| decode_error("fields"))?;
        let scope: Vec<&str> = g.terms.scope.iter().map(GridCode::as_str).collect();
        let scope = serde_json::to_string(&scope).map_err(|_| decode_error("scope"))?;
        let statistics = g
            .statistics
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|_| decode_error("statistics terms"))?;
        let kind = if g.statistics.is_some() {
            "statistics"
        } else {
            "records"
        };
        let consent = g.consent.as_ref().map(|c| c.state.as_str());
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            sqlx::query(concat!(
                "INSERT INTO grants (",
                grant_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                 $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, \
                 NULL, NULL, NULL)"
            ))
            .bind(g.id.clone())
            .bind(g.terms.grantee.clone())
            .bind(g.terms.purpose.clone())
            .bind(g.terms.category.clone())
            .bind(fields.clone())
            .bind(scope.clone())
            .bind(g.terms.row_filter.clone())
            .bind(g.terms.case_bound)
            .bind(g.terms.valid_from)
            .bind(g.terms.valid_until)
            .bind(g.terms.daily_quota.map(i64::from))
            .bind(g.terms.legal_basis.clone())
            .bind(g.status.as_str())
            .bind(g.requested_by.clone())
            .bind(g.requested_at)
            .bind(g.answer_due)
            .bind(g.decided_by.clone())
            .bind(g.decided_at)
            .bind(g.reason.clone())
            .bind(g.artefact.clone())
            .bind(g.updated_at)
            .bind(kind)
            .bind(statistics.clone())
            .bind(consent)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO grant_events (grant_id, seq, at, actor, action, status, reason) \
                 VALUES ($1, 1, $2, $3, 'request', $4, NULL)",
            )
            .bind(g.id.clone())
            .bind(g.requested_at)
            .bind(g.requested_by.clone())
            .bind(g.status.as_str())
            .execute(&mut *tx)
            .await?;
            // The request's event, in its transaction (the outbox invariant).
            emit_grant_event!(self, tx, g.id.as_str(), "requested", g.requested_at);
            tx.commit().await
        })
    }

    pub async fn grant(&self, id: &str) -> Result<Option<GrantRow>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants WHERE id = $1"
            ))
            .bind(id.to_owned())
            .fetch_optional(pool)
            .await?
            .map(|r| grant_from_row(&r))
            .transpose()
        })
    }

    /// Grants, newest request first, optionally of one grantee, in one status and/or on one
    /// category.
    pub async fn grants(
        &self,
        grantee: Option<&str>,
        status: Option<GrantStatus>,
        category: Option<&str>,
    ) -> Result<Vec<GrantRow>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants WHERE ($1 IS NULL OR grantee = $1) \
                 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR category = $3) \
                 ORDER BY requested_at DESC, id LIMIT 1000"
            ))
            .bind(grantee.map(str::to_owned))
            .bind(status.map(GrantStatus::as_str))
            .bind(category.map(str::to_owned))
            .fetch_all(pool)
            .await?
            .iter()
            .map(grant_from_row)
            .collect()
        })
    }

    /// Approved grants (the ones a decision index holds).
    pub async fn approved_grants(&self) -> Result<Vec<GrantRow>, sqlx::Error> {
        self.grants_in(GrantStatus::Approved).await
    }

    async fn grants_in(&self, status: GrantStatus) -> Result<Vec<GrantRow>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants WHERE status = $1"
            ))
            .bind(status.as_str())
            .fetch_all(pool)
            .await?
            .iter()
            .map(grant_from_row)
            .collect()
        })
    }

    /// A grant's history, oldest first.
    pub async fn grant_events(&self, id: &str) -> Result<Vec<GrantEvent>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT at, actor, action, status, reason FROM grant_events \
                 WHERE grant_id = $1 ORDER BY seq",
            )
            .bind(id.to_owned())
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(GrantEvent {
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    status: r.try_get("status")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
        })
    }

    /// Move a grant from `t.from` to `t.to` with a history event and a decision-version bump,
    /// all in one transaction; `Stale` if it was no longer in `t.from`.
    pub async fn transition_grant(
        &self,
        t: &GrantTransition<'_>,
    ) -> Result<Transitioned, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let done = sqlx::query(
                "UPDATE grants SET status = $3, updated_at = $4, \
                 decided_by = CASE WHEN $5 THEN $6 ELSE decided_by END, \
                 decided_at = CASE WHEN $5 THEN $4 ELSE decided_at END, \
                 reason = COALESCE($7, reason), artefact = COALESCE($8, artefact) \
                 WHERE id = $1 AND status = $2",
            )
            .bind(t.id.to_owned())
            .bind(t.from.as_str())
            .bind(t.to.as_str())
            .bind(t.now)
            .bind(t.from == GrantStatus::Requested)
            .bind(t.actor.to_owned())
            .bind(t.reason.map(str::to_owned))
            .bind(t.artefact.map(str::to_owned))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(Transitioned::Stale);
            }
            sqlx::query(
                "INSERT INTO grant_events (grant_id, seq, at, actor, action, status, reason) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6 FROM grant_events \
                 WHERE grant_id = $1",
            )
            .bind(t.id.to_owned())
            .bind(t.now)
            .bind(t.actor.to_owned())
            .bind(t.action.to_owned())
            .bind(t.to.as_str())
            .bind(t.reason.map(str::to_owned))
            .execute(&mut *tx)
            .await?;
            if let Some(what) = grant_event_name(t.from, t.to) {
                emit_grant_event!(self, tx, t.id, what, t.now);
            }
            let version: i64 = sqlx::query(BUMP_DECISION_VERSION)
                .fetch_one(&mut *tx)
                .await?
                .try_get("version")?;
            tx.commit().await?;
            Ok(Transitioned::Done { version })
        })
    }

    /// Record the owner's answer on a grant whose consent is pending and whose status is still
    /// `a.status`, with a history event and a decision-version bump, in one transaction;
    /// `Stale` if either changed meanwhile.
    pub async fn answer_consent(&self, a: &ConsentAnswer<'_>) -> Result<Transitioned, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let done = sqlx::query(
                "UPDATE grants SET consent = $3, consent_by = $4, consent_at = $5, \
                 consent_reason = $6, status = $7, updated_at = $5, \
                 artefact = COALESCE($8, artefact) \
                 WHERE id = $1 AND status = $2 AND consent = 'pending'",
            )
            .bind(a.id.to_owned())
            .bind(a.status.as_str())
            .bind(a.to.as_str())
            .bind(a.actor.to_owned())
            .bind(a.now)
            .bind(a.reason.map(str::to_owned))
            .bind(a.next_status.as_str())
            .bind(a.artefact.map(str::to_owned))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(Transitioned::Stale);
            }
            let action = match a.to {
                ConsentState::Declined => "decline",
                _ => "consent",
            };
            sqlx::query(
                "INSERT INTO grant_events (grant_id, seq, at, actor, action, status, reason) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6 FROM grant_events \
                 WHERE grant_id = $1",
            )
            .bind(a.id.to_owned())
            .bind(a.now)
            .bind(a.actor.to_owned())
            .bind(action)
            .bind(a.next_status.as_str())
            .bind(a.reason.map(str::to_owned))
            .execute(&mut *tx)
            .await?;
            let what = match a.to {
                ConsentState::Declined => "declined",
                _ => "consented",
            };
            emit_grant_event!(self, tx, a.id, what, a.now);
            let version: i64 = sqlx::query(BUMP_DECISION_VERSION)
                .fetch_one(&mut *tx)
                .await?
                .try_get("version")?;
            tx.commit().await?;
            Ok(Transitioned::Done { version })
        })
    }

    /// Approved statistics grants of `grantee` on `category` for `purpose`.
    pub async fn statistics_grants(
        &self,
        grantee: &str,
        category: &str,
        purpose: &str,
    ) -> Result<Vec<GrantRow>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants WHERE grantee = $1 AND category = $2 AND purpose = $3 \
                 AND kind = 'statistics' AND status = 'approved' ORDER BY id"
            ))
            .bind(grantee.to_owned())
            .bind(category.to_owned())
            .bind(purpose.to_owned())
            .fetch_all(pool)
            .await?
            .iter()
            .map(grant_from_row)
            .collect()
        })
    }

    /// Approved or suspended grants whose window has ended (for the expiry sweep).
    pub async fn grants_past_window(&self, now: i64) -> Result<Vec<GrantRow>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants \
                 WHERE status IN ('approved', 'suspended') AND valid_until <= $1 LIMIT 500"
            ))
            .bind(now)
            .fetch_all(pool)
            .await?
            .iter()
            .map(grant_from_row)
            .collect()
        })
    }

    /// Records counted so far against each (grant, day) of `keys`; absent keys have none.
    /// Read on the write connection (SQLite): only the ledger writer calls this, just before
    /// its commit, and it must not queue behind the page reads for a read connection.
    pub async fn quota_usage(
        &self,
        keys: &[(String, String)],
    ) -> Result<HashMap<(String, String), i64>, sqlx::Error> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        on_write!(self, |pool| {
            let mut out = HashMap::with_capacity(keys.len());
            let mut qb = QueryBuilder::new("SELECT grant_id, day, records FROM grant_usage WHERE ");
            for (i, (grant, day)) in keys.iter().enumerate() {
                if i > 0 {
                    qb.push(" OR ");
                }
                qb.push("(grant_id = ");
                qb.push_bind(grant.clone());
                qb.push(" AND day = ");
                qb.push_bind(day.clone());
                qb.push(")");
            }
            for row in qb.build().fetch_all(pool).await? {
                out.insert(
                    (row.try_get("grant_id")?, row.try_get("day")?),
                    row.try_get("records")?,
                );
            }
            Ok(out)
        })
    }
}

/// What one disclosure counts against its grants' daily quotas on `day` (`YYYY-MM-DD`, CST):
/// all of it, or nothing when any claim would pass its quota.
#[derive(Debug, Clone)]
pub struct QuotaCharge {
    pub day: String,
    pub claims: Vec<QuotaClaim>,
}

/// A batch's increase of one grant's use on one day, applied only if it stays within `quota`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageIncrease {
    pub grant: String,
    pub day: String,
    pub records: i64,
    pub quota: u32,
}

/// Records one disclosure counts against one grant's daily quota.
#[derive(Debug, Clone)]
pub struct QuotaClaim {
    pub grant: String,
    pub quota: u32,
    pub records: i64,
}
