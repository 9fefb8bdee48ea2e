//! Idempotency keys of record writes: with a key (the `idempotency-key` header of
//! `POST /v1/records` and `/v1/records/batch`), `create` and `create_batch` happen once per key.
//! A retry with the same key and body gets the first answer (the same record ids, the same
//! receipt) and nothing is written or audited again; the same key with another body is 422, and
//! a retry while the first request is still being answered is 409, as for pulls. Keys are scoped
//! per principal (user or client) and remembered as long as pulls' keys
//! (`Store::IDEMPOTENCY_TTL_MS`).
//!
//! Crash safety. The key is claimed before anything is written, and its answer (the ledger
//! index of the write's entry and the record ids) commits in the records' own transaction, only
//! by the attempt that holds the claim (`Store::insert_records_once`). So whenever the process
//! dies, either the records and the answer both exist (the retry replays the answer) or neither
//! does (the retry writes). A claim whose request died does not block its key: a retry takes it
//! over when the claim was made under another boot id (its process was killed or restarted) or
//! longer ago than the request timeout (the request was cancelled and could not release it);
//! see `Store::claim_write_key`. A request that fails releases its claim at once; one that is
//! cancelled (the client went away, the request timed out) releases it from `Drop`.

use serde_json::{Map, Value};

use super::{BatchWritten, RecordInput, Records, Written};
use crate::auth::Principal;
use crate::error::Error;
use crate::idempotency::IdempotencyKey;
use crate::ledger::Receipt;
use crate::storage::{Claim, NewRecord, Store};
use crate::time::now_ms;

/// Added to the request timeout before a claim of this process counts as abandoned: the
/// request that made it has been dropped by then.
const LEASE_MARGIN_MS: i64 = 5_000;

/// The first answer of a write: record ids in request order and the receipt of its entry.
pub(super) struct Answer {
    pub(super) ids: Vec<String>,
    pub(super) receipt: Receipt,
}

impl Answer {
    /// The answer of a single create: its one record, at version 1.
    pub(super) fn one(self) -> Result<Written, Error> {
        let id = self
            .ids
            .into_iter()
            .next()
            .ok_or_else(|| Error::Integrity("a record write without its record".to_owned()))?;
        Ok(Written {
            id,
            version: 1,
            receipt: self.receipt,
        })
    }

    /// The answer of a batch: every record at version 1.
    pub(super) fn batch(self) -> BatchWritten {
        BatchWritten {
            ids: self.ids,
            receipt: self.receipt,
        }
    }
}

/// A write that carries an idempotency key.
pub(super) struct KeyedWrite {
    /// `user:<id>` or `client:<id>`.
    principal: String,
    key: String,
    fingerprint: Vec<u8>,
}

impl KeyedWrite {
    /// The write of `records` under `key`, if the request has one. `route` names the endpoint
    /// (`record` or `batch`), so that one key cannot be replayed on the other.
    pub(super) fn new(
        key: Option<IdempotencyKey>,
        who: &Principal,
        route: &str,
        records: &[RecordInput],
    ) -> Option<KeyedWrite> {
        key.map(|key| KeyedWrite {
            principal: who.subject(),
            key: key.as_str().to_owned(),
            fingerprint: fingerprint(route, records),
        })
    }
}

/// SHA-256 over the route and every record's inputs, each length-prefixed; `fields` in a
/// canonical JSON form (keys sorted), so that a client re-encoding the same body (another key
/// order, other whitespace) makes the same request.
fn fingerprint(route: &str, records: &[RecordInput]) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut part = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    part(route.as_bytes());
    part(&(records.len() as u64).to_be_bytes());
    for r in records {
        let mut fields = String::new();
        canonical_object(&r.fields, &mut fields);
        part(r.category.as_bytes());
        part(r.grid.as_bytes());
        part(r.purpose.as_bytes());
        match &r.legal_basis {
            Some(basis) => {
                part(b"some");
                part(basis.as_bytes());
            }
            None => part(b"none"),
        }
        match &r.retention_until {
            Some(until) => {
                part(b"some");
                part(until.as_bytes());
            }
            None => part(b"none"),
        }
        part(fields.as_bytes());
    }
    ctx.finish().as_ref().to_vec()
}

/// JSON text of `value` with every object's keys in sorted order.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => canonical_object(map, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn canonical_object(map: &Map<String, Value>, out: &mut String) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        canonical(value, out);
    }
    out.push('}');
}

/// How a keyed write goes on after its claim.
pub(super) enum Begun {
    /// Write (under the claim, if the request has a key).
    Write(Option<Attempt>),
    /// The key already has an answer for this very request: answer it again.
    Replay(Answer),
}

/// Claim the request's key, if it has one.
pub(super) async fn begin(records: &Records, keyed: Option<KeyedWrite>) -> Result<Begun, Error> {
    let Some(keyed) = keyed else {
        return Ok(Begun::Write(None));
    };
    let attempt = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let timeout_ms = i64::try_from(records.request_timeout.as_secs())
        .unwrap_or(i64::MAX / 2_000)
        .saturating_mul(1_000);
    let lease_before = now
        .saturating_sub(timeout_ms)
        .saturating_sub(LEASE_MARGIN_MS);
    let claim = records
        .store
        .claim_write_key(
            &keyed.principal,
            &keyed.key,
            &keyed.fingerprint,
            &attempt,
            now,
            lease_before,
        )
        .await?;
    match claim {
        Claim::New => Ok(Begun::Write(Some(Attempt {
            store: records.store.clone(),
            principal: keyed.principal,
            key: keyed.key,
            id: attempt,
            settled: false,
        }))),
        Claim::Replay { index } => Ok(Begun::Replay(replay(records, &keyed, index).await?)),
        Claim::InProgress => Err(Error::Conflict(
            "a request with this idempotency key is still being answered".to_owned(),
        )),
        Claim::Mismatch => Err(Error::validation(
            "idempotency-key",
            "already used for a different request",
        )),
    }
}

/// The stored answer of `keyed`, its receipt signed again from ledger entry `index`. Nothing is
/// written. The entry must name exactly the stored records.
async fn replay(records: &Records, keyed: &KeyedWrite, index: i64) -> Result<Answer, Error> {
    let ids = records
        .store
        .write_key_records(&keyed.principal, &keyed.key)
        .await?
        // Forgotten since the claim read it (it expired just then): a retry writes anew.
        .ok_or_else(|| {
            Error::Conflict("the idempotency key expired meanwhile; try again".to_owned())
        })?;
    let at = u64::try_from(index)
        .map_err(|_| Error::Integrity("an idempotency key has a bad index".to_owned()))?;
    let (entry, receipt) = records.access.ledger().stored_receipt(at).await?;
    if !entry.records.iter().map(|r| &r.id).eq(ids.iter()) {
        return Err(Error::Integrity(format!(
            "ledger entry {index} does not name the records of its idempotency key"
        )));
    }
    tracing::info!(
        count = ids.len(),
        ledger_index = index,
        "record write replayed for its idempotency key"
    );
    Ok(Answer { ids, receipt })
}

/// A claim held by this request.
///
/// Invariant: released (`settle` after a failure, or `Drop`) unless the request ended; the
/// release never touches a key that has an answer or that another attempt took over.
pub(super) struct Attempt {
    store: Store,
    principal: String,
    key: String,
    /// Random per attempt; the claim row names its holder.
    id: String,
    settled: bool,
}

/// Insert `records` (the write's entry is ledger entry `ledger_index`), with the key's answer in
/// the same transaction when there is a key. 409 if a retry took the claim over meanwhile:
/// then nothing was inserted, and the retry's answer is the one that counts.
pub(super) async fn insert(
    store: &Store,
    records: &[NewRecord],
    attempt: Option<&Attempt>,
    ledger_index: u64,
) -> Result<(), Error> {
    let Some(attempt) = attempt else {
        return Ok(store.insert_records(records, now_ms()).await?);
    };
    let index = i64::try_from(ledger_index)
        .map_err(|_| Error::Internal(format!("ledger index {ledger_index} out of range")))?;
    let answered = store
        .insert_records_once(
            records,
            now_ms(),
            &attempt.principal,
            &attempt.key,
            &attempt.id,
            index,
        )
        .await?;
    if answered {
        Ok(())
    } else {
        Err(Error::Conflict(
            "a retry with this idempotency key took this request over".to_owned(),
        ))
    }
}

/// End the attempt with the request's outcome: after a failure the key may be used again.
pub(super) async fn settle(
    attempt: Option<Attempt>,
    outcome: Result<Answer, Error>,
) -> Result<Answer, Error> {
    if let Some(mut attempt) = attempt {
        attempt.settled = true;
        if outcome.is_err() {
            attempt.release().await;
        }
    }
    outcome
}

impl Attempt {
    async fn release(&self) {
        if let Err(e) = self
            .store
            .release_write_key(&self.principal, &self.key, &self.id)
            .await
        {
            // The claim stays until a retry takes it over (after the lease, or after a restart).
            tracing::warn!(error = %e, "cannot release a record write's idempotency key");
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // The request was cancelled between claim and answer; whatever it left open was rolled
        // back (`WriteTx`), or it committed, and then the release finds an answer and does
        // nothing.
        let attempt = Attempt {
            store: self.store.clone(),
            principal: std::mem::take(&mut self.principal),
            key: std::mem::take(&mut self.key),
            id: std::mem::take(&mut self.id),
            settled: true,
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { attempt.release().await });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn record(fields: Value) -> RecordInput {
        RecordInput {
            category: "person".to_owned(),
            grid: "330110.001".to_owned(),
            fields: fields.as_object().cloned().unwrap(),
            purpose: "p".to_owned(),
            legal_basis: None,
            retention_until: None,
        }
    }

    #[test]
    fn the_same_body_in_another_key_order_is_the_same_request() {
        let a = record(json!({"name": "张三", "tags": ["a", {"x": 1, "y": 2}]}));
        let b = record(json!({"tags": ["a", {"y": 2, "x": 1}], "name": "张三"}));
        assert_eq!(
            fingerprint("record", std::slice::from_ref(&a)),
            fingerprint("record", std::slice::from_ref(&b))
        );
    }

    #[test]
    fn any_other_value_route_or_order_is_another_request() {
        let a = record(json!({"name": "张三"}));
        let b = record(json!({"name": "张四"}));
        let base = fingerprint("batch", &[record(json!({"name": "张三"})), b]);
        assert_ne!(
            fingerprint("record", std::slice::from_ref(&a)),
            fingerprint("batch", std::slice::from_ref(&a))
        );
        assert_ne!(
            base,
            fingerprint(
                "batch",
                &[
                    record(json!({"name": "张四"})),
                    record(json!({"name": "张三"}))
                ]
            )
        );
        assert_ne!(
            base,
            fingerprint("batch", &[record(json!({"name": "张三"}))])
        );
        let mut with_basis = record(json!({"name": "张三"}));
        with_basis.legal_basis = Some(String::new());
        assert_ne!(
            fingerprint("record", std::slice::from_ref(&a)),
            fingerprint("record", std::slice::from_ref(&with_basis))
        );
        let mut kept_until = record(json!({"name": "张三"}));
        kept_until.retention_until = Some("2031-01-01T00:00:00Z".to_owned());
        assert_ne!(
            fingerprint("record", &[record(json!({"name": "张三"}))]),
            fingerprint("record", std::slice::from_ref(&kept_until)),
            "a retention date is part of the request"
        );
    }
}
