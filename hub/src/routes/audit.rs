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
use crate::oversight::audit_search::{AuditParams, AuditQuery, Order};
use crate::state::AppState;

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
    /// First index (default 0); oldest first, where the page starts (`next_start`).
    #[param(minimum = 0)]
    start: Option<i64>,
    /// One past the last index (default: the ledger size).
    #[param(minimum = 0)]
    end: Option<i64>,
    /// `asc` (default: oldest first, paged by `start`) or `desc` (newest first, paged by
    /// `before`).
    #[param(pattern = "^(asc|desc)$")]
    order: Option<String>,
    /// With `order=desc` only: entries below this index (the previous page's `next_before`).
    #[param(minimum = 0)]
    before: Option<i64>,
    /// The client id, or the user id of an entry without a client.
    #[param(max_length = 256)]
    actor: Option<String>,
    /// The actor's department.
    #[param(max_length = 256)]
    department: Option<String>,
    #[param(max_length = 256)]
    purpose: Option<String>,
    #[param(max_length = 256)]
    case: Option<String>,
    /// `allow` or `deny`.
    #[param(pattern = "^(allow|deny)$")]
    decision: Option<String>,
    /// The action, exactly: e.g. `auth.token` (refusals of tokens) or `auth.token.refusals`
    /// (the per-minute summaries of anonymous refusals, SECURITY.md).
    #[param(max_length = 256)]
    action: Option<String>,
    /// The kind of entry: `disclosure` (`data.*`, `decision.*`), `records` (`record.*`),
    /// `admin` (identity, roles, grids, catalog, purposes, departments, clients, grants, cases,
    /// keys, audit reads), `login` (`auth.*`, console sessions), `system` (`ledger.*`).
    #[param(pattern = "^(disclosure|records|admin|login|system)$")]
    stream: Option<String>,
    /// The entry's category.
    #[param(max_length = 256)]
    category: Option<String>,
    /// A field name in the field levels of any record the entry names.
    #[param(max_length = 256)]
    field: Option<String>,
    /// A grant id among the entry's `grants`.
    #[param(max_length = 256)]
    grant: Option<String>,
    /// The request id (`x-request-id`) the entry was written in.
    #[param(max_length = 256)]
    request_id: Option<String>,
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

impl EntryQuery {
    fn params(&self) -> AuditParams<'_> {
        AuditParams {
            start: self.start,
            end: self.end,
            limit: self.limit,
            order: self.order.as_deref(),
            before: self.before,
            since: self.since.as_deref(),
            until: self.until.as_deref(),
            department: self.department.as_deref(),
            actor: self.actor.as_deref(),
            action: self.action.as_deref(),
            decision: self.decision.as_deref(),
            category: self.category.as_deref(),
            field: self.field.as_deref(),
            purpose: self.purpose.as_deref(),
            grant: self.grant.as_deref(),
            case: self.case.as_deref(),
            request_id: self.request_id.as_deref(),
            stream: self.stream.as_deref(),
        }
    }
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
    /// Oldest first: pass as `start` for the next page; absent at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_start: Option<i64>,
    /// Newest first (`order=desc`): pass as `before` for the next page; absent at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
    /// The page is short because it examined its budget of entries (50 000), not because the
    /// range ended: `next_start` or `next_before` continues the scan. Absent on other pages
    /// and on the subject view.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    scan_limited: bool,
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

/// Search the ledger: by index range, actor, department, purpose, case, decision, action,
/// stream, category, field, grant, request id and time, oldest first (`start`, `next_start`)
/// or newest first (`order=desc`, `before`, `next_before`). A page examines at most 50 000
/// entries: a page cut short by that says `scan_limited` and its cursor continues. Every
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
    state.oversight.admit(&who, "audit.entries").await?;
    let query = AuditQuery::parse(&q.params())?;
    let page = state.oversight.search_entries(&who, &query).await?;
    let next = page.next.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let newest_first = matches!(query.order, Order::Descending { .. });
    Ok(Json(EntryPage {
        entries: to_entries(
            page.entries
                .into_iter()
                .map(|e| (i64::try_from(e.index).unwrap_or(i64::MAX), e.canonical))
                .collect(),
        ),
        next_start: next.filter(|_| !newest_first),
        next_before: next.filter(|_| newest_first),
        scan_limited: page.scan_limited,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckpointQuery {
    /// Serve the newest stored checkpoint carrying at least this many witness cosignatures
    /// (404 if there is none) instead of the newest checkpoint.
    #[param(minimum = 0)]
    min_cosignatures: Option<u64>,
}

/// The newest signed checkpoint (C2SP signed note); a new one is signed if the log grew. The
/// hub's signature line comes first, then every witness cosignature (C2SP tlog-cosignature/v1)
/// collected for that checkpoint (`POST /v1/audit/cosignatures`).
#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit", params(CheckpointQuery),
    responses((status = 200, content_type = "text/plain", body = String),
        (status = 404, description = "`min_cosignatures`: no stored checkpoint has that many")))]
pub async fn checkpoint(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CheckpointQuery>,
) -> Result<impl IntoResponse, Error> {
    let note = match q.min_cosignatures {
        None => {
            let note = state.ledger.checkpoint().await?;
            state.identity.with_cosignatures(note).await?
        }
        Some(min) => state.identity.cosigned_checkpoint(min).await?,
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note))
}

#[derive(Serialize, ToSchema)]
pub struct PublicKey {
    key_name: String,
    key_id: String,
    public_key: String,
    /// C2SP verifier key: `name+keyhash+base64(0x01‖key)`.
    verifier: String,
    /// The ledger key's transition statements, oldest first (empty: never rotated). Each is a
    /// signed note, signed by the old key and the new one, naming both and the size and root of
    /// the tree at the change (`gridhub-key-transition/v1`); a verifier that pinned an earlier
    /// key follows them to the current one.
    transitions: Vec<String>,
}

/// The ledger's Ed25519 verification key, and the statements of its rotations.
#[utoipa::path(get, path = "/v1/audit/public-key", tag = "audit",
    responses((status = 200, body = PublicKey), (status = 503)))]
pub async fn public_key(State(state): State<AppState>) -> Result<Json<PublicKey>, Error> {
    let chain = state.ledger.key_chain().await?;
    let signer = state.ledger.signer();
    Ok(Json(PublicKey {
        key_name: signer.name().to_owned(),
        key_id: crate::hex::encode(&signer.key_hash()),
        public_key: B64.encode(signer.public_key()),
        verifier: signer.verifier_key(),
        transitions: chain.transitions().to_vec(),
    }))
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
        next_before: None,
        scan_limited: false,
    }))
}
