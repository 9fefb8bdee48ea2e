//! Grants (授权), API.md "Grants": a department requests one for itself (an admin for anyone);
//! a DPO other than the requester approves it — which issues a signed grant artefact — or
//! rejects it with a reason; DPOs and admins suspend, resume and revoke. Every transition is
//! audited before it is stored, and reaches the decision index on the next request.
//!
//! Refused at creation (422, naming the field): unknown fields or levels a field has no rule
//! for, share class `none`, a scope outside the grantee's jurisdiction (unless case-bound), a
//! bad row filter, `valid_until` ≤ `valid_from`, sensitive fields without a legal basis.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use policy::grant::{ANSWER_WORKING_DAYS, answer_due, check_terms};
use policy::{Disclosure, FieldProblem, GrantAction, GrantStatus, GrantTerms, GridCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::auth::tokens::TokenIssuer;
use crate::decisions::compile_filter;
use crate::error::{Error, current_request_id};
use crate::extract::ApiJson;
use crate::ledger::{Actor, Decision, EntryDraft};
use crate::state::AppState;
use crate::storage::{GrantRow, GrantTransition, Transitioned};
use crate::time::now_ms;
use crate::time::{parse_rfc3339, rfc3339};

/// The `typ` header of a grant artefact.
pub const ARTEFACT_TYPE: &str = "gridhub-grant+jwt";
/// How often approved grants past their window are marked expired.
pub const EXPIRY_SWEEP: Duration = Duration::from_secs(60);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/grants", post(request_grant).get(list_grants))
        .route("/v1/grants/{id}", get(get_grant))
        .route("/v1/grants/{id}/approve", post(approve))
        .route("/v1/grants/{id}/reject", post(reject))
        .route("/v1/grants/{id}/suspend", post(suspend))
        .route("/v1/grants/{id}/resume", post(resume))
        .route("/v1/grants/{id}/revoke", post(revoke))
        .route("/v1/grants/{id}/artefact", get(artefact))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// Department id.
    grantee: String,
    purpose: String,
    category: String,
    /// Field name → `clear` | `pseudonym` | `masked` | `generalized`.
    fields: BTreeMap<String, String>,
    /// Grid codes.
    scope: Vec<String>,
    #[serde(default)]
    row_filter: Option<String>,
    case_bound: bool,
    /// RFC 3339.
    valid_from: String,
    /// RFC 3339; after `valid_from`.
    valid_until: String,
    #[serde(default)]
    daily_quota: Option<u32>,
    /// Required when a sensitive field is requested.
    #[serde(default)]
    legal_basis: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GrantStatusBody {
    id: String,
    status: String,
}

#[derive(Serialize, ToSchema)]
pub struct GrantCreated {
    id: String,
    status: String,
    /// When the DPO must have answered (5 working days).
    answer_due: String,
}

#[derive(Serialize, ToSchema)]
pub struct GrantEventBody {
    at: String,
    actor: String,
    action: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GrantBody {
    id: String,
    grantee: String,
    purpose: String,
    category: String,
    #[schema(value_type = BTreeMap<String, String>)]
    fields: BTreeMap<String, Disclosure>,
    scope: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    row_filter: Option<String>,
    case_bound: bool,
    valid_from: String,
    valid_until: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    daily_quota: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    legal_basis: Option<String>,
    /// `expired` as soon as the window ends, even before the sweep records it.
    status: String,
    requested_by: String,
    requested_at: String,
    answer_due: String,
    /// Still `requested` after `answer_due`.
    overdue: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Present once approved; also at `GET /v1/grants/{id}/artefact`.
    has_artefact: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    history: Vec<GrantEventBody>,
}

#[derive(Serialize, ToSchema)]
pub struct GrantList {
    grants: Vec<GrantBody>,
}

/// The status shown to callers: an approved or suspended grant past its window is expired.
fn effective_status(row: &GrantRow, now: i64) -> GrantStatus {
    match row.status {
        GrantStatus::Approved | GrantStatus::Suspended if now >= row.terms.valid_until => {
            GrantStatus::Expired
        }
        other => other,
    }
}

fn grant_body(row: GrantRow, history: Vec<GrantEventBody>, now: i64) -> GrantBody {
    let status = effective_status(&row, now);
    GrantBody {
        overdue: status == GrantStatus::Requested && now > row.answer_due,
        status: status.as_str().to_owned(),
        has_artefact: row.artefact.is_some(),
        id: row.id,
        grantee: row.terms.grantee,
        purpose: row.terms.purpose,
        category: row.terms.category,
        fields: row.terms.fields,
        scope: row
            .terms
            .scope
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect(),
        row_filter: row.terms.row_filter,
        case_bound: row.terms.case_bound,
        valid_from: rfc3339(row.terms.valid_from),
        valid_until: rfc3339(row.terms.valid_until),
        daily_quota: row.terms.daily_quota,
        legal_basis: row.terms.legal_basis,
        requested_by: row.requested_by,
        requested_at: rfc3339(row.requested_at),
        answer_due: rfc3339(row.answer_due),
        decided_by: row.decided_by,
        decided_at: row.decided_at.map(rfc3339),
        reason: row.reason,
        history,
    }
}

fn problem(field: &str, text: &str) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        problem: text.to_owned(),
    }
}

/// Request a grant: `status: requested`, answer due in 5 working days (of the configured
/// working calendar).
#[utoipa::path(post, path = "/v1/grants", tag = "grants", request_body = GrantRequest,
    security(("bearer" = [])),
    responses((status = 201, body = GrantCreated), (status = 403), (status = 422)))]
pub async fn request_grant(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<GrantRequest>,
) -> Result<(StatusCode, Json<GrantCreated>), Error> {
    let own = who.department.as_deref() == Some(req.grantee.as_str());
    let action = if own { "request" } else { "request_any" };
    state
        .authorize(&who, "grants", action, None, "grant.request")
        .await?;
    let now = now_ms();
    let mut problems = Vec::new();
    let mut fields = BTreeMap::new();
    for (name, level) in &req.fields {
        match level.parse::<Disclosure>() {
            Ok(level) => {
                fields.insert(name.clone(), level);
            }
            Err(()) => problems.push(problem(
                &format!("fields.{name}"),
                "level must be clear, pseudonym, masked or generalized",
            )),
        }
    }
    let grantee = state.store.department(&req.grantee).await?;
    if grantee.is_none() {
        problems.push(problem("grantee", "unknown department"));
    }
    if !state.store.purpose_exists(&req.purpose).await? {
        problems.push(problem("purpose", "unknown purpose"));
    }
    let mut scope = Vec::new();
    for (i, g) in req.scope.iter().enumerate() {
        match GridCode::parse(g) {
            Ok(code) if state.store.grid_exists(&code).await? => scope.push(code),
            Ok(_) => problems.push(problem(&format!("scope[{i}]"), "unknown grid")),
            Err(_) => problems.push(problem(&format!("scope[{i}]"), "not a grid code")),
        }
    }
    let valid_from = parse_rfc3339(&req.valid_from);
    let valid_until = parse_rfc3339(&req.valid_until);
    if valid_from.is_none() {
        problems.push(problem("valid_from", "not an RFC 3339 time"));
    }
    if valid_until.is_none() {
        problems.push(problem("valid_until", "not an RFC 3339 time"));
    }
    let (Some(grantee), Some(valid_from), Some(valid_until), true) =
        (grantee, valid_from, valid_until, problems.is_empty())
    else {
        return Err(Error::Validation(problems));
    };
    let terms = GrantTerms {
        grantee: req.grantee,
        purpose: req.purpose,
        category: req.category,
        fields,
        scope,
        row_filter: req.row_filter,
        case_bound: req.case_bound,
        valid_from,
        valid_until,
        daily_quota: req.daily_quota,
        legal_basis: req
            .legal_basis
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty()),
    };
    let jurisdiction: Vec<GridCode> = grantee
        .jurisdiction
        .iter()
        .filter_map(|g| GridCode::parse(g).ok())
        .collect();
    let filter =
        check_terms(&terms, state.catalog, &jurisdiction, now).map_err(Error::Validation)?;
    if let (Some(filter), Some(category)) = (&filter, state.catalog.category(&terms.category)) {
        compile_filter(&state.vault, category, filter)
            .map_err(|p| Error::validation("row_filter", p))?;
    }
    let row = GrantRow {
        id: uuid::Uuid::now_v7().to_string(),
        status: GrantStatus::Requested,
        requested_by: who.subject(),
        requested_at: now,
        answer_due: answer_due(&state.settings.working_calendar, now, ANSWER_WORKING_DAYS)
            .ok_or_else(|| Error::Internal("the answer deadline is out of range".to_owned()))?,
        decided_by: None,
        decided_at: None,
        reason: None,
        artefact: None,
        updated_at: now,
        terms,
    };
    state
        .audit(
            grant_entry(who.actor(), "grant.request", Decision::Allow, &row)
                .reason("grant requested"),
        )
        .await?;
    state.store.insert_grant(&row).await?;
    Ok((
        StatusCode::CREATED,
        Json(GrantCreated {
            id: row.id,
            status: row.status.as_str().to_owned(),
            answer_due: rfc3339(row.answer_due),
        }),
    ))
}

fn grant_entry(actor: Actor, action: &str, decision: Decision, row: &GrantRow) -> EntryDraft {
    EntryDraft::new(actor, action, decision, current_request_id())
        .category(&row.terms.category)
        .purpose(&row.terms.purpose)
        .grants(vec![row.id.clone()])
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GrantFilter {
    grantee: Option<String>,
    status: Option<String>,
}

/// Does the caller read every grant (`grants:read`), or only its own department's?
async fn reads_all(state: &AppState, who: &Principal) -> bool {
    state
        .permits(who, crate::auth::permissions::NO_GRID, "grants", "read")
        .await
}

/// Grants, newest first (at most 1 000): every grant for DPOs and admins, a department's own
/// for the department.
#[utoipa::path(get, path = "/v1/grants", tag = "grants", params(GrantFilter),
    security(("bearer" = [])), responses((status = 200, body = GrantList), (status = 403)))]
pub async fn list_grants(
    State(state): State<AppState>,
    who: Principal,
    Query(filter): Query<GrantFilter>,
) -> Result<Json<GrantList>, Error> {
    let status = match filter.status.as_deref() {
        None => None,
        Some(s) => Some(
            GrantStatus::parse(s).ok_or_else(|| Error::validation("status", "unknown status"))?,
        ),
    };
    let grantee = if reads_all(&state, &who).await {
        filter.grantee
    } else {
        match (&who.department, &filter.grantee) {
            (Some(own), None) => Some(own.clone()),
            (Some(own), Some(asked)) if own == asked => Some(own.clone()),
            _ => {
                state
                    .authorize(&who, "grants", "read", None, "grant.read")
                    .await?;
                filter.grantee
            }
        }
    };
    let now = now_ms();
    let grants = state
        .store
        .grants(grantee.as_deref(), status)
        .await?
        .into_iter()
        .map(|g| grant_body(g, Vec::new(), now))
        .collect();
    Ok(Json(GrantList { grants }))
}

/// A grant the caller may see: DPOs and admins any, a department its own. Otherwise 403,
/// audited; unknown ids are 404.
async fn visible_grant(
    state: &AppState,
    who: &Principal,
    id: &str,
    audit_action: &str,
) -> Result<GrantRow, Error> {
    let row = state
        .store
        .grant(id)
        .await?
        .ok_or(Error::NotFound("grant"))?;
    if who.department.as_deref() == Some(row.terms.grantee.as_str()) {
        return Ok(row);
    }
    state
        .authorize(who, "grants", "read", None, audit_action)
        .await?;
    Ok(row)
}

/// One grant with its history.
#[utoipa::path(get, path = "/v1/grants/{id}", tag = "grants", security(("bearer" = [])),
    responses((status = 200, body = GrantBody), (status = 403), (status = 404)))]
pub async fn get_grant(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<GrantBody>, Error> {
    let row = visible_grant(&state, &who, &id, "grant.read").await?;
    let history = state
        .store
        .grant_events(&id)
        .await?
        .into_iter()
        .map(|e| GrantEventBody {
            at: rfc3339(e.at),
            actor: e.actor,
            action: e.action,
            status: e.status,
            reason: e.reason,
        })
        .collect();
    Ok(Json(grant_body(row, history, now_ms())))
}

/// The signed grant artefact: a compact JWS (`typ: gridhub-grant+jwt`, EdDSA) verifiable with
/// `/.well-known/jwks.json`.
#[utoipa::path(get, path = "/v1/grants/{id}/artefact", tag = "grants", security(("bearer" = [])),
    responses((status = 200, content_type = "application/jose", body = String),
        (status = 403), (status = 404), (status = 409)))]
pub async fn artefact(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Error> {
    let row = visible_grant(&state, &who, &id, "grant.read").await?;
    let jws = row
        .artefact
        .ok_or_else(|| Error::Conflict("the grant has not been approved".to_owned()))?;
    Ok(([(header::CONTENT_TYPE, "application/jose")], jws))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// Required to reject; optional otherwise. One line, at most 500 characters.
    #[serde(default)]
    reason: Option<String>,
}

/// The claims of a grant artefact.
#[derive(Serialize)]
struct ArtefactClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    jti: &'a str,
    /// The grantee department.
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    grantee: &'a str,
    purpose: &'a str,
    category: &'a str,
    fields: &'a BTreeMap<String, Disclosure>,
    scope: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    row_filter: Option<&'a str>,
    case_bound: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    daily_quota: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    legal_basis: Option<&'a str>,
    requested_by: &'a str,
    approved_by: &'a str,
}

/// The signed artefact of `row` approved by `approver` (a subject, `user:<id>`) at `now`.
pub fn sign_artefact(
    tokens: &TokenIssuer,
    row: &GrantRow,
    approver: &str,
    now: i64,
) -> Result<String, Error> {
    let claims = ArtefactClaims {
        iss: tokens.issuer(),
        sub: &row.id,
        jti: &row.id,
        aud: &row.terms.grantee,
        iat: now / 1000,
        nbf: row.terms.valid_from / 1000,
        exp: row.terms.valid_until / 1000,
        grantee: &row.terms.grantee,
        purpose: &row.terms.purpose,
        category: &row.terms.category,
        fields: &row.terms.fields,
        scope: row.terms.scope.iter().map(GridCode::as_str).collect(),
        row_filter: row.terms.row_filter.as_deref(),
        case_bound: row.terms.case_bound,
        daily_quota: row.terms.daily_quota,
        legal_basis: row.terms.legal_basis.as_deref(),
        requested_by: &row.requested_by,
        approved_by: approver,
    };
    tokens
        .sign_document(ARTEFACT_TYPE, &claims)
        .map_err(|e| Error::Internal(format!("cannot sign the grant artefact: {e}")))
}

fn check_reason(reason: Option<&str>, required: bool) -> Result<Option<String>, Error> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    match reason {
        None if required => Err(Error::validation(
            "reason",
            "a rejection must give its reason",
        )),
        Some(r) if r.chars().count() > 500 || r.contains(['\n', '\r']) => Err(Error::validation(
            "reason",
            "one line of at most 500 characters",
        )),
        r => Ok(r.map(str::to_owned)),
    }
}

/// The permission each action needs: approving and rejecting is the DPO's; suspending,
/// resuming and revoking is `manage`.
fn permission(action: GrantAction) -> &'static str {
    match action {
        GrantAction::Approve | GrantAction::Reject => "approve",
        _ => "manage",
    }
}

async fn transition(
    state: &AppState,
    who: &Principal,
    id: &str,
    action: GrantAction,
    body: TransitionBody,
) -> Result<Json<GrantStatusBody>, Error> {
    let audit_action = format!("grant.{}", action.as_str());
    state
        .authorize(who, "grants", permission(action), None, &audit_action)
        .await?;
    let reason = check_reason(body.reason.as_deref(), action == GrantAction::Reject)?;
    let row = state
        .store
        .grant(id)
        .await?
        .ok_or(Error::NotFound("grant"))?;
    let now = now_ms();
    if matches!(action, GrantAction::Approve | GrantAction::Reject)
        && row.requested_by == who.subject()
    {
        let why = "the requester of a grant cannot decide on it";
        let error = Error::Forbidden(why.to_owned());
        return Err(state.deny(who.actor(), &audit_action, why, error).await);
    }
    let current = effective_status(&row, now);
    let Some(next) = current.after(action) else {
        return Err(Error::Conflict(format!(
            "cannot {} a grant that is {current}",
            action.as_str()
        )));
    };
    if action == GrantAction::Approve && now >= row.terms.valid_until {
        return Err(Error::Conflict(
            "the grant's window has already ended".to_owned(),
        ));
    }
    let artefact = match action {
        GrantAction::Approve => Some(sign_artefact(&state.tokens, &row, &who.subject(), now)?),
        _ => None,
    };
    let mut entry = grant_entry(who.actor(), &audit_action, Decision::Allow, &row);
    entry = entry.reason(&match &reason {
        Some(r) => format!("{current} → {next}: {r}"),
        None => format!("{current} → {next}"),
    });
    state.audit(entry).await?;
    let outcome = state
        .store
        .transition_grant(&GrantTransition {
            id,
            from: row.status,
            to: next,
            actor: &who.subject(),
            action: action.as_str(),
            reason: reason.as_deref(),
            artefact: artefact.as_deref(),
            now,
        })
        .await?;
    let Transitioned::Done { version } = outcome else {
        return Err(Error::Conflict(
            "the grant changed meanwhile; read it again".to_owned(),
        ));
    };
    let live = state.decisions.live_grant(&row)?;
    state.decisions.apply(version, |index| {
        // Only an unknown category fails, and stored grants name known ones.
        let _ = index.upsert_grant(&live, next);
    })?;
    Ok(Json(GrantStatusBody {
        id: id.to_owned(),
        status: next.as_str().to_owned(),
    }))
}

macro_rules! transition_route {
    ($name:ident, $action:expr, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "grants", request_body = Option<TransitionBody>,
            params(("id" = String, Path)), security(("bearer" = [])),
            responses((status = 200, body = GrantStatusBody), (status = 403), (status = 404),
                (status = 409), (status = 422)))]
        pub async fn $name(
            State(state): State<AppState>,
            who: Principal,
            Path(id): Path<String>,
            body: axum::body::Bytes,
        ) -> Result<Json<GrantStatusBody>, Error> {
            // The body is optional: none, or `{"reason": "..."}`.
            let body = if body.iter().all(u8::is_ascii_whitespace) {
                TransitionBody::default()
            } else {
                crate::extract::parse_json(&body)?
            };
            transition(&state, &who, &id, $action, body).await
        }
    };
}

transition_route!(
    approve,
    GrantAction::Approve,
    "/v1/grants/{id}/approve",
    "Approve a requested grant (a DPO other than the requester); issues the signed artefact."
);
transition_route!(
    reject,
    GrantAction::Reject,
    "/v1/grants/{id}/reject",
    "Reject a requested grant; `reason` is required."
);
transition_route!(
    suspend,
    GrantAction::Suspend,
    "/v1/grants/{id}/suspend",
    "Suspend an approved grant (no data flows until resumed)."
);
transition_route!(
    resume,
    GrantAction::Resume,
    "/v1/grants/{id}/resume",
    "Resume a suspended grant."
);
transition_route!(
    revoke,
    GrantAction::Revoke,
    "/v1/grants/{id}/revoke",
    "Revoke a grant for good; effective for the next request."
);

/// Mark approved and suspended grants whose window has ended as expired, each audited. The
/// decision index already ignores them (it checks windows); this makes the status say so.
pub async fn expire_due(state: &AppState) -> Result<usize, Error> {
    let now = now_ms();
    let mut expired = 0;
    for row in state.store.grants_past_window(now).await? {
        let entry = grant_entry(Actor::system(), "grant.expire", Decision::Allow, &row)
            .reason(&format!("{} → expired: the window ended", row.status));
        state.audit(entry).await?;
        let outcome = state
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
            state
                .decisions
                .apply(version, |index| index.remove_grant(&row.id))?;
            expired += 1;
        }
    }
    Ok(expired)
}

/// Run `expire_due` every `EXPIRY_SWEEP` until the process ends; failures are logged and
/// retried on the next tick.
pub fn spawn_expiry_sweep(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EXPIRY_SWEEP);
        loop {
            tick.tick().await;
            match expire_due(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "grants past their window marked expired"),
                Err(e) => tracing::warn!(error = %e, "grant expiry sweep failed"),
            }
        }
    });
}
