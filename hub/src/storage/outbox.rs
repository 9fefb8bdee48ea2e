//! The transactional outbox of webhooks and the NATS publisher (issue 21), and the webhook
//! endpoints. Invariant: an outbox row is only ever inserted inside the write transaction of the
//! change it reports (`emit_events!`, used by the grant and case writes here) or of the sweep
//! mark that makes a time-based event unique (`emit_once`), so an event exists iff its change
//! committed. Rows hold ids, statuses, times and kinds only, never personal data.

use sqlx::Row;

use super::{Store, WriteTx, on_read, on_write};

/// `webhook` rows go to the destination's endpoint; `nats` rows to JetStream.
pub const SINK_WEBHOOK: &str = "webhook";
pub const SINK_NATS: &str = "nats";

/// An event to write in the transaction of the change that caused it.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    /// `case.assigned`, `grant.approved`, … (docs/OPERATIONS.md "Webhooks and NATS").
    pub event: String,
    /// Ids, statuses, times and kinds: never a record field value or a case text.
    pub data: serde_json::Value,
    /// Department ids or `dpo`; a destination without an endpoint gets no webhook row.
    pub destinations: Vec<String>,
    /// Also published to NATS (case events and checkpoints), when the publisher is on.
    pub nats: bool,
}

impl OutboxEvent {
    /// The JSON body every sink sends: `{"type", "timestamp", "data"}` (Standard Webhooks).
    pub fn body(&self, now: i64) -> String {
        serde_json::json!({
            "type": self.event,
            "timestamp": crate::time::rfc3339(now),
            "data": self.data,
        })
        .to_string()
    }
}

/// A row of the outbox.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: String,
    pub event: String,
    pub payload: String,
    pub destination: String,
    pub sink: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub state: String,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

/// A registered endpoint with its sealed secret.
#[derive(Debug, Clone)]
pub struct WebhookEndpointRow {
    pub destination: String,
    pub url: String,
    pub kek_version: u32,
    pub wrapped_dek: Vec<u8>,
    pub sealed_secret: Vec<u8>,
    pub updated_at: i64,
}

/// Which rows `replay_outbox` sets back to pending.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    pub id: Option<String>,
    /// Dead rows only.
    pub dead: bool,
    /// Rows created at or after this time (Unix ms).
    pub since: Option<i64>,
    pub destination: Option<String>,
}

/// The result of a delivery attempt, to store.
#[derive(Debug, Clone)]
pub enum DeliveryMark {
    Delivered,
    /// Retry at `next_attempt_at`, or dead when `dead`; `error` names a status or a transport
    /// failure only.
    Failed {
        next_attempt_at: i64,
        dead: bool,
        error: String,
    },
}

pub(super) const INSERT_WEBHOOK_ROW: &str = "INSERT INTO outbox (id, event, payload, destination, \
     sink, created_at, attempts, next_attempt_at, state) \
     SELECT $1, $2, $3, $4, 'webhook', $5, 0, $5, 'pending' \
     WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE destination = $4)";

pub(super) const INSERT_NATS_ROW: &str = "INSERT INTO outbox (id, event, payload, destination, \
     sink, created_at, attempts, next_attempt_at, state) \
     VALUES ($1, $2, $3, 'nats', 'nats', $4, 0, $4, 'pending')";

/// Write `$events` (an iterator of `&OutboxEvent`) into the open transaction `$tx` of `$store`
/// at `$now`: one `webhook` row per destination with an endpoint, one `nats` row when the event
/// goes to NATS and the publisher is on. Expanded inside `on_write!` bodies, once per backend.
macro_rules! emit_events {
    ($store:expr, $tx:expr, $events:expr, $now:expr) => {{
        for ev in $events {
            let ev: &$crate::storage::OutboxEvent = ev;
            let body = ev.body($now);
            for dest in &ev.destinations {
                sqlx::query($crate::storage::outbox::INSERT_WEBHOOK_ROW)
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(ev.event.clone())
                    .bind(body.clone())
                    .bind(dest.clone())
                    .bind($now)
                    .execute(&mut *$tx)
                    .await?;
            }
            if ev.nats && $store.nats_outbox() {
                sqlx::query($crate::storage::outbox::INSERT_NATS_ROW)
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(ev.event.clone())
                    .bind(body.clone())
                    .bind($now)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    }};
}
pub(crate) use emit_events;

/// Read grant `$id`'s parties inside `$tx` and emit `grant.<$what>` to them.
macro_rules! emit_grant_event {
    ($store:expr, $tx:expr, $id:expr, $what:expr, $now:expr) => {{
        let row = sqlx::query(
            "SELECT g.grantee, g.category, g.status, g.valid_until, c.owner FROM grants g \
             LEFT JOIN catalog_categories c ON c.name = g.category WHERE g.id = $1",
        )
        .bind($id.to_owned())
        .fetch_optional(&mut *$tx)
        .await?;
        if let Some(row) = row {
            let grantee: String = row.try_get("grantee")?;
            let owner: Option<String> = row.try_get("owner")?;
            let valid_until: i64 = row.try_get("valid_until")?;
            let status: String = row.try_get("status")?;
            let category: String = row.try_get("category")?;
            let event = $crate::storage::outbox::grant_event(
                $id,
                $what,
                &status,
                &category,
                &grantee,
                owner,
                valid_until,
            );
            $crate::storage::outbox::emit_events!($store, $tx, [&event], $now);
        }
    }};
}
pub(crate) use emit_grant_event;

/// The event `grant.<what>` of a grant to its grantee and, on a department-owned category, its
/// owner.
pub fn grant_event(
    id: &str,
    what: &str,
    status: &str,
    category: &str,
    grantee: &str,
    owner: Option<String>,
    valid_until: i64,
) -> OutboxEvent {
    let mut destinations = vec![grantee.to_owned()];
    if let Some(owner) = owner.filter(|o| o != grantee) {
        destinations.push(owner);
    }
    OutboxEvent {
        event: format!("grant.{what}"),
        data: serde_json::json!({
            "grant_id": id,
            "status": status,
            "category": category,
            "grantee": grantee,
            "valid_until": crate::time::rfc3339(valid_until),
        }),
        destinations,
        nats: false,
    }
}

/// The event `case.<what>` of a case to `departments`.
pub fn case_event(
    id: &str,
    what: &str,
    kind: &str,
    round: i64,
    departments: &[String],
    deadline: i64,
) -> OutboxEvent {
    OutboxEvent {
        event: format!("case.{what}"),
        data: serde_json::json!({
            "case_id": id,
            "kind": kind,
            "round": round,
            "departments": departments,
            "deadline": crate::time::rfc3339(deadline),
        }),
        destinations: departments.to_vec(),
        nats: true,
    }
}

/// A new signed checkpoint (the C2SP note), for the NATS sink only.
pub fn checkpoint_event(size: i64, note: &str) -> OutboxEvent {
    OutboxEvent {
        event: "ledger.checkpoint".to_owned(),
        data: serde_json::json!({ "size": size, "note": note }),
        destinations: Vec::new(),
        nats: true,
    }
}

fn row_from<R>(r: &R) -> Result<OutboxRow, sqlx::Error>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(OutboxRow {
        id: r.try_get("id")?,
        event: r.try_get("event")?,
        payload: r.try_get("payload")?,
        destination: r.try_get("destination")?,
        sink: r.try_get("sink")?,
        created_at: r.try_get("created_at")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        state: r.try_get("state")?,
        last_error: r.try_get("last_error")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

const OUTBOX_COLUMNS: &str = "SELECT id, event, payload, destination, sink, created_at, attempts, \
     next_attempt_at, state, last_error, delivered_at FROM outbox";

impl Store {
    /// Write `events` in a transaction of their own (a checkpoint's event: the checkpoint is
    /// stored before it is served, and its event follows it).
    pub async fn emit(&self, events: &[OutboxEvent], now: i64) -> Result<(), sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            emit_events!(self, tx, events, now);
            tx.commit().await
        })
    }

    /// Write `events` unless `mark` was written before, with the mark, in one transaction:
    /// each time-based event once. True when written.
    pub async fn emit_once(
        &self,
        mark: &str,
        events: &[OutboxEvent],
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let done = sqlx::query(
                "INSERT INTO outbox_sweep_marks (mark_key, created_at) VALUES ($1, $2) \
                 ON CONFLICT (mark_key) DO NOTHING",
            )
            .bind(mark.to_owned())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            emit_events!(self, tx, events, now);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Pending rows of `sink` due at `now`, oldest first.
    pub async fn due_outbox(
        &self,
        sink: &str,
        now: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let sql = format!(
            "{OUTBOX_COLUMNS} WHERE state = 'pending' AND sink = $1 \
             AND (attempts = 0 OR next_attempt_at <= $2) ORDER BY created_at, id LIMIT $3"
        );
        on_read!(self, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(sink.to_owned())
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(row_from)
                .collect()
        })
    }

    /// Take row `r` for one attempt, counted now (so a crash mid-send still counts it): its
    /// next attempt moves to `lease_until`, so no other worker (another replica) sends it
    /// meanwhile. False when someone else took it first. A row never tried (`attempts` 0: new,
    /// or replayed) is due whatever its time, so events stamped by another clock are never
    /// held back.
    pub async fn claim_outbox(
        &self,
        r: &OutboxRow,
        now: i64,
        lease_until: i64,
    ) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let done = sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $3 \
                 WHERE id = $1 AND state = 'pending' AND attempts = $4 \
                 AND (attempts = 0 OR next_attempt_at <= $2)",
            )
            .bind(r.id.clone())
            .bind(now)
            .bind(lease_until)
            .bind(r.attempts)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Store the outcome of an attempt on row `id`.
    pub async fn mark_outbox(
        &self,
        id: &str,
        mark: &DeliveryMark,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        on_write!(self, |pool| {
            match mark {
                DeliveryMark::Delivered => sqlx::query(
                    "UPDATE outbox SET state = 'delivered', delivered_at = $2, \
                     last_error = NULL WHERE id = $1 AND state = 'pending'",
                )
                .bind(id.to_owned())
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ()),
                DeliveryMark::Failed {
                    next_attempt_at,
                    dead,
                    error,
                } => sqlx::query(
                    "UPDATE outbox SET next_attempt_at = $2, state = $3, last_error = $4 \
                     WHERE id = $1 AND state = 'pending'",
                )
                .bind(id.to_owned())
                .bind(*next_attempt_at)
                .bind(if *dead { "dead" } else { "pending" })
                .bind(error.clone())
                .execute(pool)
                .await
                .map(|_| ()),
            }
        })
    }

    /// Outbox rows not yet delivered (and not dead), by sink: the webhook and NATS backlog.
    pub async fn outbox_backlog(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT sink, COUNT(*) AS n FROM outbox WHERE state = 'pending' GROUP BY sink",
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("sink")?, r.try_get("n")?)))
            .collect()
        })
    }

    /// Outbox rows, newest first, optionally in one state.
    pub async fn outbox_rows(
        &self,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let sql = format!(
            "{OUTBOX_COLUMNS} WHERE ($1 IS NULL OR state = $1) \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        on_read!(self, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(state.map(str::to_owned))
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(row_from)
                .collect()
        })
    }

    /// Set the rows matching `f` back to pending, due at `now`, with their attempts reset;
    /// the number of rows.
    pub async fn replay_outbox(&self, f: &ReplayFilter, now: i64) -> Result<u64, sqlx::Error> {
        on_write!(self, |pool| {
            let done = sqlx::query(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1, \
                 delivered_at = NULL WHERE ($2 IS NULL OR id = $2) \
                 AND ($3 = FALSE OR state = 'dead') AND ($4 IS NULL OR created_at >= $4) \
                 AND ($5 IS NULL OR destination = $5)",
            )
            .bind(now)
            .bind(f.id.clone())
            .bind(f.dead)
            .bind(f.since)
            .bind(f.destination.clone())
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    /// Register or replace the endpoint of `e.destination`.
    pub async fn put_webhook_endpoint(&self, e: &WebhookEndpointRow) -> Result<(), sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            sqlx::query(
                "INSERT INTO webhook_endpoints (destination, url, kek_version, wrapped_dek, \
                 sealed_secret, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (destination) DO UPDATE SET url = excluded.url, \
                 kek_version = excluded.kek_version, wrapped_dek = excluded.wrapped_dek, \
                 sealed_secret = excluded.sealed_secret, updated_at = excluded.updated_at",
            )
            .bind(e.destination.clone())
            .bind(e.url.clone())
            .bind(i64::from(e.kek_version))
            .bind(e.wrapped_dek.clone())
            .bind(e.sealed_secret.clone())
            .bind(e.updated_at)
            .execute(&mut *tx)
            .await?;
            super::keys::charge_kek!(&mut *tx, crate::vault::CASE_TEXTS, e.kek_version, 1_i64);
            tx.commit().await
        })
    }

    /// Every endpoint, by destination.
    pub async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpointRow>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT destination, url, kek_version, wrapped_dek, sealed_secret, updated_at \
                 FROM webhook_endpoints ORDER BY destination",
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                let version: i64 = r.try_get("kek_version")?;
                Ok(WebhookEndpointRow {
                    destination: r.try_get("destination")?,
                    url: r.try_get("url")?,
                    kek_version: u32::try_from(version).map_err(|_| {
                        sqlx::Error::Decode("stored endpoint has a bad key version".into())
                    })?,
                    wrapped_dek: r.try_get("wrapped_dek")?,
                    sealed_secret: r.try_get("sealed_secret")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
        })
    }

    /// Remove the endpoint of `destination`; false if there was none. Its pending rows stay
    /// (a replay after a new PUT delivers them).
    pub async fn delete_webhook_endpoint(&self, destination: &str) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let done = sqlx::query("DELETE FROM webhook_endpoints WHERE destination = $1")
                .bind(destination.to_owned())
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Current, unreplied assignments of open cases due at or before `until`: (case, kind,
    /// department, round, deadline).
    pub async fn assignments_due_by(
        &self,
        until: i64,
    ) -> Result<Vec<(String, String, String, i64, i64)>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT a.case_id, c.kind, a.department, a.round, a.deadline \
                 FROM case_assignments a JOIN cases c ON c.id = a.case_id \
                 WHERE a.current = $1 AND a.replied_at IS NULL AND c.status <> 'closed' \
                 AND a.deadline <= $2 ORDER BY a.deadline LIMIT 1000",
            )
            .bind(true)
            .bind(until)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("case_id")?,
                    r.try_get("kind")?,
                    r.try_get("department")?,
                    r.try_get("round")?,
                    r.try_get("deadline")?,
                ))
            })
            .collect()
        })
    }

    /// Approved grants whose window ends in (`now`, `until`]: the expiring ones, with their
    /// parties' event.
    pub async fn grants_expiring(
        &self,
        now: i64,
        until: i64,
    ) -> Result<Vec<(String, OutboxEvent)>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query(
                "SELECT g.id, g.grantee, g.category, g.status, g.valid_until, c.owner \
                 FROM grants g LEFT JOIN catalog_categories c ON c.name = g.category \
                 WHERE g.status = 'approved' AND g.valid_until > $1 AND g.valid_until <= $2 \
                 LIMIT 1000",
            )
            .bind(now)
            .bind(until)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let grantee: String = r.try_get("grantee")?;
                let category: String = r.try_get("category")?;
                let status: String = r.try_get("status")?;
                let event = grant_event(
                    &id,
                    "expiring",
                    &status,
                    &category,
                    &grantee,
                    r.try_get("owner")?,
                    r.try_get("valid_until")?,
                );
                Ok((id, event))
            })
            .collect()
        })
    }
}
