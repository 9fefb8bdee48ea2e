//! Audit endpoints (API.md "Audit (DPO)"). Checkpoints, the public key and proofs are public
//! (they hold hashes only) so anyone holding a receipt or an old checkpoint can check the log;
//! entries and subject views are for DPOs and admins.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::{Error, current_request_id};
use crate::extract::{ApiPath, ApiQuery};
use crate::ledger::{Decision, EntryDraft, RecordRef};
use crate::state::AppState;
use crate::storage::EntryFilter;

/// Most entries returned by one page.
const MAX_PAGE: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/entries", get(entries))
        .route("/v1/audit/checkpoint", get(checkpoint))
        .route("/v1/audit/public-key", get(public_key))
        .route("/v1/audit/proofs/inclusion", get(inclusion))
        .route("/v1/audit/proofs/consistency", get(consistency))
        .route("/v1/audit/subjects/{id}", get(subject))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EntryQuery {
    /// First index (default 0).
    #[param(minimum = 0)]
    start: Option<i64>,
    /// One past the last index (default: the ledger size).
    #[param(minimum = 0)]
    end: Option<i64>,
    actor: Option<String>,
    purpose: Option<String>,
    case: Option<String>,
    /// `allow` or `deny`.
    #[param(pattern = "^(allow|deny)$")]
    decision: Option<String>,
    /// The action, exactly: e.g. `auth.token` (refusals of tokens) or `auth.token.refusals`
    /// (the per-minute summaries of anonymous refusals, SECURITY.md).
    action: Option<String>,
    /// RFC 3339 lower bound on entry time.
    #[param(format = DateTime)]
    since: Option<String>,
    /// RFC 3339 upper bound (exclusive).
    #[param(format = DateTime)]
    until: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    index: i64,
    /// The exact UTF-8 JSON text that was hashed into the leaf.
    canonical: String,
    #[schema(value_type = Object)]
    entry: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct EntryPage {
    entries: Vec<AuditEntry>,
    /// Pass as `start` for the next page; absent at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_start: Option<i64>,
}

fn parse_time(field: &str, v: &Option<String>) -> Result<Option<i64>, Error> {
    v.as_deref()
        .map(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
                .map_err(|_| Error::validation(field, "not an RFC 3339 time"))
        })
        .transpose()
}

pub(crate) fn to_entries(rows: Vec<(i64, String)>) -> Vec<AuditEntry> {
    rows.into_iter()
        .map(|(index, canonical)| {
            let entry = serde_json::from_str(&canonical).unwrap_or(serde_json::Value::Null);
            AuditEntry {
                index,
                canonical,
                entry,
            }
        })
        .collect()
}

/// Search the ledger by index range, actor, purpose, case, decision, action and time. Every
/// `deny` entry written in a request names its `source` address; anonymous refusals beyond the
/// first per address, action and minute are in one `<action>.refusals` entry with a
/// `refusals` object (`count`, `first_request_id`, `last_request_id`, `reasons`,
/// `window_start`, `window_end`).
#[utoipa::path(get, path = "/v1/audit/entries", tag = "audit", params(EntryQuery), security(("bearer" = [])),
    responses((status = 200, body = EntryPage), (status = 403), (status = 422)))]
pub async fn entries(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<EntryQuery>,
) -> Result<Json<EntryPage>, Error> {
    state
        .authorize(&who, "audit", "read", None, "audit.entries")
        .await?;
    if let Some(d) = &q.decision
        && d != "allow"
        && d != "deny"
    {
        return Err(Error::validation("decision", "not one of: allow, deny"));
    }
    let size = i64::try_from(state.ledger.size()).unwrap_or(i64::MAX);
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::validation("limit", "1 to 1000"));
    }
    for (name, index) in [("start", q.start), ("end", q.end)] {
        if index.is_some_and(|i| i < 0) {
            return Err(Error::validation(name, "a ledger index: 0 or more"));
        }
    }
    let filter = EntryFilter {
        start: q.start.unwrap_or(0),
        end: q.end.unwrap_or(size).min(size),
        actor: q.actor,
        purpose: q.purpose,
        case_id: q.case,
        decision: q.decision,
        action: q.action,
        since_ms: parse_time("since", &q.since)?,
        until_ms: parse_time("until", &q.until)?,
        limit,
    };
    let rows = state.store.ledger_entries(&filter).await?;
    let next_start = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|(i, _)| i + 1))
        .flatten();
    Ok(Json(EntryPage {
        entries: to_entries(rows),
        next_start,
    }))
}

/// The newest signed checkpoint (C2SP signed note); a new one is signed if the log grew.
#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn checkpoint(State(state): State<AppState>) -> Result<impl IntoResponse, Error> {
    let note = state.ledger.checkpoint().await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note))
}

#[derive(Serialize, ToSchema)]
pub struct PublicKey {
    key_name: String,
    key_id: String,
    public_key: String,
    /// C2SP verifier key: `name+keyhash+base64(0x01‖key)`.
    verifier: String,
}

/// The ledger's Ed25519 verification key.
#[utoipa::path(get, path = "/v1/audit/public-key", tag = "audit", responses((status = 200, body = PublicKey)))]
pub async fn public_key(State(state): State<AppState>) -> Json<PublicKey> {
    let signer = state.ledger.signer();
    Json(PublicKey {
        key_name: signer.name().to_owned(),
        key_id: crate::hex::encode(&signer.key_hash()),
        public_key: B64.encode(signer.public_key()),
        verifier: signer.verifier_key(),
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The entry, below `size`.
    index: u64,
    /// A tree size the ledger has reached (at most its current size; else 400).
    #[param(minimum = 1)]
    size: u64,
}

#[derive(Serialize, ToSchema)]
pub struct InclusionProof {
    index: u64,
    size: u64,
    leaf_hash: String,
    proof: Vec<String>,
}

/// RFC 9162 §2.1.3 inclusion proof of entry `index` in the tree of `size` entries.
#[utoipa::path(get, path = "/v1/audit/proofs/inclusion", tag = "audit", params(InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 400)))]
pub async fn inclusion(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<Json<InclusionProof>, Error> {
    let (leaf, proof) = state.ledger.inclusion_proof(q.index, q.size).await?;
    Ok(Json(InclusionProof {
        index: q.index,
        size: q.size,
        leaf_hash: B64.encode(leaf),
        proof: proof.iter().map(|h| B64.encode(h)).collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    from: u64,
    to: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ConsistencyProof {
    from: u64,
    to: u64,
    proof: Vec<String>,
}

/// RFC 9162 §2.1.4 consistency proof between two tree sizes.
#[utoipa::path(get, path = "/v1/audit/proofs/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 400)))]
pub async fn consistency(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, Error> {
    let proof = state.ledger.consistency_proof(q.from, q.to).await?;
    Ok(Json(ConsistencyProof {
        from: q.from,
        to: q.to,
        proof: proof.iter().map(|h| B64.encode(h)).collect(),
    }))
}

/// Every entry that concerns one record (DPO and admin). The lookup itself is audited.
#[utoipa::path(get, path = "/v1/audit/subjects/{id}", tag = "audit", security(("bearer" = [])),
    params(("id" = String, Path, description = "record id")),
    responses((status = 200, body = EntryPage), (status = 403)))]
pub async fn subject(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EntryPage>, Error> {
    state
        .authorize(&who, "audit", "read", None, "audit.subject")
        .await?;
    let rows = state.store.ledger_entries_for_subject(&id, 10_000).await?;
    state
        .audit(
            EntryDraft::new(
                who.actor(),
                "audit.subject",
                Decision::Allow,
                current_request_id(),
            )
            .records(vec![RecordRef::new(&id, [])]),
        )
        .await?;
    Ok(Json(EntryPage {
        entries: to_entries(rows),
        next_start: None,
    }))
}
