//! Disclosure to department systems (API.md "Disclosure"): `GET /v1/data/{category}`.
//!
//! The path of a pull, in DESIGN.md §3's order: a certificate-bound client token (1); the
//! department's roles permit `data:read` (2); the candidate grants for (department, purpose,
//! category) valid now, else 403 `no_grant` (3); candidate records read page by page, pushed
//! down to SQL by the grants' scopes (and to the case's records when only case-bound grants
//! apply), each planned (4–5) and transformed, decrypting only what is disclosed; then the
//! ledger entry — actor, purpose, case, grants, every record with its per-field disclosure — is
//! appended and durable before a byte of data is sent (7), and the response carries its signed
//! receipt. Every refusal is audited too. `POST /v1/data/{category}/lookup` takes the same
//! path with the candidates narrowed to one blind-index token. With `Accept: application/age` the
//! same JSON is sealed to the client's registered age recipient (406 without one).
//! Daily quotas: a record counts once against each grant it drew on; an answer that would pass
//! a quota is refused whole (429 `quota_exceeded`, `retry-after` until midnight CST, audited).
//! With an `idempotency-key` header a retried request is the same disclosure: same records,
//! same receipt, no second ledger entry or quota count (the key is claimed before the first
//! answer, so concurrent retries cannot both disclose; no response body is stored).

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use policy::{FieldPlan, GridCode, Record, Refusal, Request};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, DepartmentCaller, Principal};
use crate::decisions::StoredRow;
use crate::error::{Error, current_request_id};
use crate::extract::ApiJson;
use crate::ledger::entry::{CanonicalEntry, parse_canonical};
use crate::ledger::merkle::leaf_hash;
use crate::ledger::{Appended, LedgerError};
use crate::ledger::{Decision, EntryDraft, Receipt, RecordRef, SharedLevels};
use crate::records::{self, DiscloseInput};
use crate::state::AppState;
use crate::storage::{Claim, EntryFilter, FieldNeeds, PageQuery, QuotaCharge, QuotaClaim, Store};
use crate::time::parse_rfc3339;
use crate::time::{cst_day, now_ms, seconds_to_cst_midnight};

/// Records per page unless `limit` says otherwise, and the most `limit` may ask.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;
/// Most candidate rows read from the database at a time while a page fills. The first read
/// asks for `limit` rows (a grant that keeps most records fills its page at once, reading no
/// row it does not use); each further read asks for four times more, up to this, so a row
/// filter keeping 1 record in 200 fills a page of 5 within a few reads. How many rows one
/// answer may read in all is the setting `pull_scan_budget_rows`.
const SCAN_CHUNK: u32 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/data/{category}", get(pull))
        .route("/v1/data/{category}/lookup", post(lookup))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PullQuery {
    /// The registered purpose the data is for.
    purpose: String,
    /// A case assigned to the department (needed for case-bound grants).
    #[serde(default)]
    case: Option<String>,
    /// Only records in this grid subtree.
    #[serde(default)]
    grid: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    /// 1–500, default 100.
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct DisclosedRecord {
    id: String,
    grid: String,
    /// Only the disclosed fields, each at its planned level.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
}

#[derive(Serialize, ToSchema)]
pub struct DisclosedPage {
    records: Vec<DisclosedRecord>,
    /// Pass as `cursor` for the next page; absent at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    /// False when the scan budget (`pull_scan_budget_rows`) ran out before the page was full
    /// and before the end: fewer than `limit` records, more may follow from `next_cursor`.
    complete: bool,
    /// The signed receipt of the ledger entry recording this disclosure.
    #[schema(value_type = Object)]
    receipt: Receipt,
}

/// `limit`: 1–500, default 100.
fn page_limit(asked: Option<u32>) -> Result<u32, Error> {
    let limit = asked.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::validation("limit", "1 to 500"))
    }
}

/// A cursor is a record id (UUID text); anything else is refused before it reaches SQL.
fn valid_cursor(c: &str) -> bool {
    c.len() == 36 && c.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// Refuse, audited with the request's context.
async fn refuse(
    state: &AppState,
    who: &Principal,
    category: &str,
    ask: &Ask,
    reason: &str,
    error: Error,
) -> Error {
    let mut draft = EntryDraft::new(
        who.actor(),
        ask.action,
        Decision::Deny,
        current_request_id(),
    )
    .category(category)
    .purpose(&ask.purpose)
    .reason(reason);
    if let Some(case) = &ask.case {
        draft = draft.case(case);
    }
    match state.audit(draft).await {
        Ok(_) => error,
        Err(e) => e,
    }
}

/// What one disclosure asks for, after validation.
struct Ask {
    /// `data.read` or `data.lookup`: the ledger action and the role permission's action.
    action: &'static str,
    purpose: String,
    case: Option<String>,
    within: Option<GridCode>,
    cursor: Option<String>,
    limit: u32,
    /// A lookup: the field and the blind-index token of the value looked up.
    key: Option<(String, Vec<u8>)>,
    /// `idempotency-key`: a retry with the same key is the same disclosure.
    idempotency: Option<String>,
}

/// How long an idempotency key is remembered (record writes' keys too).
const IDEMPOTENCY_TTL_MS: i64 = Store::IDEMPOTENCY_TTL_MS;

/// `idempotency-key`: 1–64 characters of `A-Z a-z 0-9 . _ : -` (pulls, lookups and record
/// writes).
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    let valid = (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if valid {
        Ok(Some(key.to_owned()))
    } else {
        Err(Error::validation(
            "idempotency-key",
            "1–64 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'",
        ))
    }
}

/// What makes two requests the same request: SHA-256 over every input of the answer.
fn fingerprint(category: &str, ask: &Ask, sealed: bool) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let none = "\u{0}none";
    for part in [
        ask.action,
        category,
        &ask.purpose,
        ask.case.as_deref().unwrap_or(none),
        ask.within.as_ref().map_or(none, GridCode::as_str),
        ask.cursor.as_deref().unwrap_or(none),
        &ask.limit.to_string(),
        ask.key.as_ref().map_or(none, |(f, _)| f.as_str()),
        if sealed { "sealed" } else { "plain" },
    ] {
        ctx.update(part.as_bytes());
        ctx.update(&[0]);
    }
    if let Some((_, token)) = &ask.key {
        ctx.update(token);
    }
    ctx.finish().as_ref().to_vec()
}

/// A disclosure, once per idempotency key: a retry of the same request gets the same records
/// and the same receipt, with no second ledger entry and no second count against the quota.
async fn disclose(
    state: &AppState,
    who: &Principal,
    category_name: &str,
    ask: Ask,
    sealed: bool,
) -> Result<DisclosedPage, Error> {
    let Some(key) = ask.idempotency.clone() else {
        return disclose_once(state, who, category_name, &ask).await;
    };
    let client = who.id().to_owned();
    let now = now_ms();
    let print = fingerprint(category_name, &ask, sealed);
    match state
        .store
        .claim_idempotency(&client, &key, &print, now, now - IDEMPOTENCY_TTL_MS)
        .await?
    {
        Claim::Mismatch => Err(Error::validation(
            "idempotency-key",
            "already used for a different request",
        )),
        Claim::InProgress => Err(Error::Conflict(
            "a request with this idempotency key is still being answered".to_owned(),
        )),
        Claim::Replay { index } => replay(state, who, category_name, &ask, index).await,
        Claim::New => {
            let outcome = disclose_once(state, who, category_name, &ask).await;
            match &outcome {
                Ok(page) => {
                    let index = i64::try_from(page.receipt.index).unwrap_or(i64::MAX);
                    state
                        .store
                        .complete_idempotency(&client, &key, index)
                        .await?;
                }
                Err(_) => state.store.release_idempotency(&client, &key).await?,
            }
            outcome
        }
    }
}

/// Answer a retry from ledger entry `index`: the page is planned again (so a grant revoked in
/// between still stops it) and must disclose exactly the records and levels the entry recorded;
/// the receipt is the entry's. Nothing is written.
async fn replay(
    state: &AppState,
    who: &Principal,
    category_name: &str,
    ask: &Ask,
    index: i64,
) -> Result<DisclosedPage, Error> {
    let planned = plan_page(state, who, category_name, ask).await?;
    let (entry, receipt) = stored_receipt(state, index).await?;
    if entry.records != planned.refs {
        return Err(Error::Conflict(
            "the records changed since the first request with this idempotency key; use a new key"
                .to_owned(),
        ));
    }
    Ok(DisclosedPage {
        records: release(
            state,
            &planned.department,
            planned.category,
            planned.pending,
        )?,
        next_cursor: planned.next_cursor,
        complete: planned.complete,
        receipt,
    })
}

/// Ledger entry `index`, which an idempotency key's answer names, with its receipt signed again
/// (the same receipt the first answer carried: same index, leaf hash and time).
pub(super) async fn stored_receipt(
    state: &AppState,
    index: i64,
) -> Result<(CanonicalEntry, Receipt), Error> {
    let rows = state
        .store
        .ledger_entries(&EntryFilter {
            start: index,
            end: index + 1,
            actor: None,
            purpose: None,
            case_id: None,
            decision: None,
            since_ms: None,
            until_ms: None,
            limit: 1,
        })
        .await?;
    let Some((_, canonical)) = rows.first() else {
        return Err(Error::Integrity(format!(
            "ledger entry {index} of an idempotency key is missing"
        )));
    };
    let entry = parse_canonical(canonical)
        .map_err(|e| Error::Integrity(format!("ledger entry {index}: {e}")))?;
    let time_ms = parse_rfc3339(&entry.time)
        .ok_or_else(|| Error::Integrity(format!("ledger entry {index} has a bad time")))?;
    let receipt = state.ledger.receipt(&Appended {
        index: entry.index,
        leaf_hash: leaf_hash(canonical.as_bytes()),
        time_ms,
    });
    Ok((entry, receipt))
}

/// The media type of a sealed response (`Accept: application/age`).
const AGE: &str = "application/age";

/// How the answer leaves: JSON, or JSON sealed with `age` to the client's registered recipient.
enum Delivery {
    Plain,
    Sealed(age::x25519::Recipient),
}

/// Does the request ask for a sealed body? Then the client must have registered a recipient:
/// otherwise 406, audited. Decided before anything is read, so a refusal discloses nothing.
async fn delivery(
    state: &AppState,
    who: &Principal,
    headers: &HeaderMap,
    category: &str,
    ask: &Ask,
) -> Result<Delivery, Error> {
    let wants_age = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            m.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(AGE))
        });
    if !wants_age {
        return Ok(Delivery::Plain);
    }
    let recipient = match &who.caller {
        Caller::Client { id, .. } => state
            .store
            .client(id)
            .await?
            .and_then(|c| c.age_recipient)
            .and_then(|r| r.parse::<age::x25519::Recipient>().ok()),
        Caller::User { .. } => None,
    };
    match recipient {
        Some(r) => Ok(Delivery::Sealed(r)),
        None => {
            let why = "a sealed response needs an age recipient registered for this client";
            let error = Error::NotAcceptable(why.to_owned());
            Err(refuse(state, who, category, ask, why, error).await)
        }
    }
}

/// The response in the form `delivery` says.
fn respond(page: DisclosedPage, delivery: Delivery) -> Result<Response, Error> {
    match delivery {
        Delivery::Plain => Ok(Json(page).into_response()),
        Delivery::Sealed(recipient) => {
            let plain = zeroize::Zeroizing::new(
                serde_json::to_vec(&page)
                    .map_err(|e| Error::Internal(format!("cannot encode the page: {e}")))?,
            );
            // `age::encrypt` finishes the stream, so the ciphertext is complete.
            let sealed = age::encrypt(&recipient, &plain)
                .map_err(|e| Error::Internal(format!("cannot seal the page: {e}")))?;
            Ok(([(header::CONTENT_TYPE, AGE)], sealed).into_response())
        }
    }
}

/// Pull the records a department's grants and responsibilities allow.
#[utoipa::path(get, path = "/v1/data/{category}", tag = "disclosure",
    params(("category" = String, Path), PullQuery,
        ("idempotency-key" = Option<String>, Header, description = "a retry with the same key is the same disclosure"),
        ("gridhub-on-behalf-of" = Option<String>, Header, description = "the officer the system acts for; recorded in the ledger")),
    security(("client_token" = [])),
    responses((status = 200, body = DisclosedPage,
            description = "JSON, or with `Accept: application/age` the same JSON sealed to the client's age recipient"),
        (status = 401), (status = 403), (status = 404), (status = 406), (status = 422),
        (status = 503)))]
pub async fn pull(
    State(state): State<AppState>,
    DepartmentCaller(who): DepartmentCaller,
    Path(category): Path<String>,
    headers: HeaderMap,
    Query(q): Query<PullQuery>,
) -> Result<Response, Error> {
    state
        .authorize(&who, "data", "read", None, "data.read")
        .await?;
    let limit = page_limit(q.limit)?;
    let within = match &q.grid {
        None => None,
        Some(g) => {
            Some(GridCode::parse(g).map_err(|_| Error::validation("grid", "not a grid code"))?)
        }
    };
    if q.cursor.as_deref().is_some_and(|c| !valid_cursor(c)) {
        return Err(Error::validation("cursor", "not a cursor this hub issued"));
    }
    let ask = Ask {
        action: "data.read",
        purpose: q.purpose,
        case: q.case,
        within,
        cursor: q.cursor,
        limit,
        key: None,
        idempotency: idempotency_key(&headers)?,
    };
    let delivery = delivery(&state, &who, &headers, &category, &ask).await?;
    let sealed = matches!(delivery, Delivery::Sealed(_));
    respond(
        disclose(&state, &who, &category, ask, sealed).await?,
        delivery,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    purpose: String,
    #[serde(default)]
    case: Option<String>,
    /// Exactly one `indexed` field and its value, e.g. `{"id_number": "…"}`; compared through
    /// the blind index, never by decrypting.
    #[schema(value_type = Object)]
    key: Map<String, Value>,
    /// 1–500, default 100.
    #[serde(default)]
    limit: Option<u32>,
}

/// Look a subject up by an indexed field (identity number, phone, …), under the same grants
/// and responsibilities as a pull.
#[utoipa::path(post, path = "/v1/data/{category}/lookup", tag = "disclosure",
    params(("category" = String, Path),
        ("idempotency-key" = Option<String>, Header, description = "a retry with the same key is the same disclosure"),
        ("gridhub-on-behalf-of" = Option<String>, Header, description = "the officer the system acts for; recorded in the ledger")),
    request_body = LookupRequest,
    security(("client_token" = [])),
    responses((status = 200, body = DisclosedPage,
            description = "JSON, or with `Accept: application/age` the same JSON sealed to the client's age recipient"),
        (status = 401), (status = 403), (status = 404), (status = 406), (status = 422),
        (status = 503)))]
pub async fn lookup(
    State(state): State<AppState>,
    DepartmentCaller(who): DepartmentCaller,
    Path(category_name): Path<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LookupRequest>,
) -> Result<Response, Error> {
    state
        .authorize(&who, "data", "lookup", None, "data.lookup")
        .await?;
    let category = state
        .catalog
        .category(&category_name)
        .ok_or(Error::NotFound("category"))?;
    let limit = page_limit(req.limit)?;
    let mut key = req.key.iter();
    let (Some((field, value)), None) = (key.next(), key.next()) else {
        return Err(Error::validation("key", "name exactly one indexed field"));
    };
    let path = format!("key.{field}");
    let def = category
        .field(field)
        .filter(|d| d.indexed)
        .ok_or_else(|| Error::validation(&path, "not an indexed field of this category"))?;
    let term = match (&def.ty, value) {
        (policy::FieldType::TagSet { values }, Value::String(tag)) if values.contains(tag) => {
            tag.clone()
        }
        (policy::FieldType::TagSet { .. }, _) => {
            return Err(Error::validation(&path, "not one of the field's tags"));
        }
        _ => def
            .parse_value(value)
            .ok()
            .and_then(|v| v.index_terms().into_iter().next())
            .ok_or_else(|| Error::validation(&path, "not a valid value of this field"))?,
    };
    let token = state.vault.blind_token(&category.name, field, &term);
    let ask = Ask {
        action: "data.lookup",
        purpose: req.purpose,
        case: req.case,
        within: None,
        cursor: None,
        limit,
        key: Some((field.clone(), token)),
        idempotency: idempotency_key(&headers)?,
    };
    let delivery = delivery(&state, &who, &headers, &category.name, &ask).await?;
    let sealed = matches!(delivery, Delivery::Sealed(_));
    respond(
        disclose(&state, &who, &category.name, ask, sealed).await?,
        delivery,
    )
}

/// A page planned and transformed, not yet recorded or sent.
struct Planned {
    category: &'static policy::CategoryDef,
    /// The department the page is for (its pseudonym key).
    department: String,
    /// Planned, not yet opened: `release` opens them after the ledger entry is durable.
    pending: Vec<Pending>,
    refs: Vec<RecordRef>,
    credited: BTreeSet<String>,
    claims: Vec<QuotaClaim>,
    next_cursor: Option<String>,
    /// See `DisclosedPage::complete`.
    complete: bool,
    now: i64,
}

/// A record planned for release: what `release` needs to open and transform its fields once
/// the ledger entry naming them is durable. Invariant: `allowed` holds exactly the fields the
/// entry records for this record.
struct Pending {
    record: crate::storage::PageRecord,
    grid: GridCode,
    public: Map<String, Value>,
    plan: Vec<FieldPlan>,
    allowed: BTreeSet<String>,
}

/// Open and transform the planned fields, after the entry that records them is durable; only
/// the fields the entry names are given.
fn release(
    state: &AppState,
    department: &str,
    category: &policy::CategoryDef,
    pending: Vec<Pending>,
) -> Result<Vec<DisclosedRecord>, Error> {
    let pseudonyms = state.vault.pseudonyms(department);
    pending
        .into_iter()
        .map(|p| {
            let input = DiscloseInput {
                grid: &p.grid,
                public: &p.public,
                pseudonyms: &pseudonyms,
            };
            let mut fields = records::disclose(&state.vault, category, &p.record, &input, &p.plan)?;
            fields.retain(|name, _| p.allowed.contains(name));
            Ok(DisclosedRecord {
                id: p.record.id,
                grid: p.record.grid,
                fields,
            })
        })
        .collect()
}

/// Decide, read, plan and transform one page (DESIGN.md §3 rules 3–5). Refusals are audited;
/// nothing else is written.
async fn plan_page(
    state: &AppState,
    who: &Principal,
    category_name: &str,
    ask: &Ask,
) -> Result<Planned, Error> {
    let department = who
        .department
        .clone()
        .ok_or_else(|| Error::Internal("a client without a department".to_owned()))?;
    let category = state
        .catalog
        .category(category_name)
        .ok_or(Error::NotFound("category"))?;
    let limit = ask.limit;
    state.decisions.refresh_to(who.versions.decision).await?;
    let request = Request {
        department: &department,
        category: &category.name,
        purpose: &ask.purpose,
        case: ask.case.as_deref(),
        now: now_ms(),
    };
    let candidates = match state
        .decisions
        .with_index(|index| index.candidates(&request))?
    {
        Ok(c) => c,
        Err(Refusal::NoGrant | Refusal::UnknownCategory) => {
            let why = "no approved grant for this department, purpose and category";
            let error = Error::NoGrant(why.to_owned());
            return Err(refuse(state, who, &category.name, ask, why, error).await);
        }
    };
    if let Some(unreached) = candidates.case_refusal() {
        let why = format!(
            "every grant is case-bound and the case gives no responsibility ({})",
            unreached.as_str()
        );
        let error = Error::Forbidden(why.clone());
        return Err(refuse(state, who, &category.name, ask, &why, error).await);
    }
    let scopes: Vec<String> = candidates
        .grants()
        .iter()
        .flat_map(|g| g.scope().iter().map(|s| s.as_str().to_owned()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let only = candidates.only_case_records();
    let needs = FieldNeeds::of(category, &candidates);
    let within = ask.within.as_ref().map(|w| w.as_str().to_owned());
    let mut after = ask.cursor.clone();
    let names = candidates.field_names();
    let mut pending: Vec<Pending> = Vec::new();
    let mut refs = Vec::new();
    // Records per grant in this answer: a record counts once against each grant it drew on.
    let mut per_grant: BTreeMap<usize, i64> = BTreeMap::new();
    // Records that got the same field levels share one map of them in the entry.
    let mut shared_levels = SharedLevels::default();
    let mut exhausted = false;
    let budget = state.settings.pull_scan_budget_rows;
    let mut scanned = 0u32;
    let mut chunk = limit;
    while scanned < budget {
        chunk = chunk.min(budget - scanned);
        let page = state
            .store
            .disclosure_page(&PageQuery {
                category: &category.name,
                scopes: &scopes,
                only: only.as_deref(),
                within: within.as_deref(),
                token: ask.key.as_ref().map(|(f, t)| (f.as_str(), t.as_slice())),
                after: after.as_deref(),
                limit: i64::from(chunk),
                needs: &needs,
            })
            .await?;
        scanned += chunk;
        exhausted = page.len() < chunk as usize;
        chunk = (chunk.saturating_mul(4)).min(SCAN_CHUNK.max(limit));
        for record in page {
            after = Some(record.id.clone());
            let grid = GridCode::parse(&record.grid)
                .map_err(|_| Error::Integrity(format!("record `{}` has a bad grid", record.id)))?;
            let public = records::public_fields(&record.id, &record.plain_fields)?;
            let row = StoredRow::new(&record.tokens, public);
            let plan = candidates.plan(&Record {
                id: &record.id,
                grid: &grid,
                row: &row,
            });
            if !plan.discloses() {
                continue;
            }
            // What the entry records is decided here, from the plan and what the record holds;
            // nothing is decrypted before the entry is durable (`release`).
            let mut levels = Vec::new();
            let mut drew_on = BTreeSet::new();
            let mut allowed = BTreeSet::new();
            for (at, ((name, field), def)) in names
                .iter()
                .zip(plan.fields())
                .zip(&category.fields)
                .enumerate()
            {
                if let FieldPlan::Disclosed { level, grant } = field
                    && records::releases(def, *level, &record, row.plain())
                {
                    levels.push((at, level.as_str()));
                    drew_on.insert(*grant as usize);
                    allowed.insert(name.clone());
                }
            }
            for g in drew_on {
                *per_grant.entry(g).or_default() += 1;
            }
            let levels = shared_levels.get(names, levels);
            refs.push(RecordRef::sharing(&record.id, levels));
            pending.push(Pending {
                public: row.plain().clone(),
                grid,
                plan: plan.fields().to_vec(),
                allowed,
                record,
            });
            if pending.len() == limit as usize {
                break;
            }
        }
        if exhausted || pending.len() == limit as usize {
            break;
        }
    }
    // Grants the answer drew on (for the entry's `grants`).
    let credited = per_grant
        .keys()
        .filter_map(|g| Some(candidates.grants().get(*g)?.id.to_string()))
        .collect();
    // The cursor resumes after the last record looked at, unless the scan reached the end.
    let full = pending.len() == limit as usize;
    let next_cursor = if exhausted && !full { None } else { after };
    // Neither full nor at the end: the budget cut the page short.
    let complete = full || exhausted;
    let claims = per_grant
        .iter()
        .filter_map(|(g, n)| {
            let grant = candidates.grants().get(*g)?;
            Some(QuotaClaim {
                grant: grant.id.to_string(),
                quota: grant.daily_quota()?,
                records: *n,
            })
        })
        .collect();
    Ok(Planned {
        category,
        department: department.clone(),
        pending,
        refs,
        credited,
        claims,
        next_cursor,
        complete,
        now: request.now,
    })
}

/// The shared path of pulls and lookups: plan the page, count it against the quotas, record it
/// in the ledger, answer with the receipt.
async fn disclose_once(
    state: &AppState,
    who: &Principal,
    category_name: &str,
    ask: &Ask,
) -> Result<DisclosedPage, Error> {
    let Planned {
        category,
        department,
        pending,
        refs,
        credited,
        claims,
        next_cursor,
        complete,
        now,
    } = plan_page(state, who, category_name, ask).await?;
    let mut draft = EntryDraft::new(
        who.actor(),
        ask.action,
        Decision::Allow,
        current_request_id(),
    )
    .category(&category.name)
    .purpose(&ask.purpose)
    .grants(credited.into_iter().collect())
    .records(refs)
    .reason(&match &ask.key {
        Some((field, _)) => format!("lookup by {field}: {} records disclosed", pending.len()),
        None => format!("{} records disclosed", pending.len()),
    });
    if let Some(case) = &ask.case {
        draft = draft.case(case);
    }
    // Audit before release: nothing is sent unless this entry is durable. Rule 6: today's
    // quotas are counted in the same commit, all or nothing, so a page is counted if and only
    // if its entry is durable.
    let charge = QuotaCharge {
        day: cst_day(now),
        claims,
    };
    let appended = match state.ledger.append_charged(draft, charge).await {
        Ok(appended) => appended,
        Err(LedgerError::OverQuota { grant, left }) => {
            let why = format!(
                "the daily quota of grant {grant} has {left} records left today; ask for fewer"
            );
            let error = Error::QuotaExceeded {
                message: why.clone(),
                retry_after_secs: seconds_to_cst_midnight(now),
            };
            return Err(refuse(state, who, &category.name, ask, &why, error).await);
        }
        Err(e) => return Err(e.into()),
    };
    let receipt = state.ledger.receipt(&appended);
    // Released only now that the entry naming every field is durable.
    let disclosed = release(state, &department, category, pending)?;
    Ok(DisclosedPage {
        records: disclosed,
        next_cursor,
        complete,
        receipt,
    })
}
