//! Cases (事件), API.md "Cases": the closed loop reported → assigned → replied → closed, with
//! reassignment (a new round replaces the current assignees), joint dispatch to several
//! departments, deadlines and an overdue flag, and a satisfaction rating at close.
//!
//! An open assignment is a responsibility: it is what lets a case-bound grant reach the case's
//! records. Assigning and closing are audited before they are stored and reach the decision
//! index on the very next request. Case texts (summary, replies, resolution) may name people:
//! they are sealed under a per-case key and only shown to those who may read the case.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use policy::{CaseStatus, FieldProblem, GridCode, Responsibility};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{Error, current_request_id};
use crate::extract::ApiJson;
use crate::ledger::{Decision, EntryDraft, RecordRef};
use crate::state::AppState;
use crate::storage::{CaseChange, CaseRow, NewCase};
use crate::time::now_ms;
use crate::time::{parse_rfc3339, rfc3339};
use crate::vault::{CASE_TEXTS, SealedField};

/// Longest case text, in characters.
const MAX_TEXT_CHARS: usize = 2000;
/// Most subjects of one case and departments of one dispatch.
const MAX_SUBJECTS: usize = 50;
const MAX_ASSIGNEES: usize = 10;
/// Longest reply deadline given in working days (about three months).
const MAX_REPLY_WORKING_DAYS: u32 = 60;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/cases", post(report))
        .route("/v1/cases/{id}", get(get_case))
        .route("/v1/cases/{id}/assign", post(assign))
        .route("/v1/cases/{id}/reply", post(reply))
        .route("/v1/cases/{id}/close", post(close))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportCase {
    grid: String,
    /// What kind of case: 1–40 of `a-z 0-9 _ -` (e.g. `dispute`, `safety_hazard`).
    kind: String,
    /// Free text; sealed at rest.
    summary: String,
    /// Record ids of the people concerned.
    #[serde(default)]
    subjects: Vec<String>,
    /// Disclosures under this case are held back from subject access reports until it closes.
    #[serde(default)]
    confidential: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CaseStatusBody {
    id: String,
    status: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignCase {
    /// Department ids; replaces the current assignees.
    departments: Vec<String>,
    /// RFC 3339, in the future. Give this or `working_days`.
    #[serde(default)]
    deadline: Option<String>,
    /// Reply due this many working days (1–60, of the hub's working calendar) from now, at the
    /// same time of day (China Standard Time). Give this or `deadline`.
    #[serde(default)]
    working_days: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyCase {
    note: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseCase {
    resolution: String,
    /// 1–5.
    #[serde(default)]
    satisfaction: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AssignmentBody {
    department: String,
    round: i64,
    assigned_at: String,
    deadline: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    replied_at: Option<String>,
    /// Part of the current round (an open responsibility while the case is open).
    current: bool,
    /// Current, not replied, past its deadline, case open.
    overdue: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CaseEventBody {
    at: String,
    actor: String,
    action: String,
    #[schema(value_type = Object)]
    detail: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct CaseTextBody {
    /// `summary`, `reply.<round>.<department>` or `resolution`.
    name: String,
    text: String,
}

#[derive(Serialize, ToSchema)]
pub struct CaseBody {
    id: String,
    grid: String,
    kind: String,
    status: String,
    reported_by: String,
    reported_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<String>,
    /// Some current assignment is past its deadline without a reply.
    overdue: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    satisfaction: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    closed_at: Option<String>,
    confidential: bool,
    subjects: Vec<String>,
    assignments: Vec<AssignmentBody>,
    texts: Vec<CaseTextBody>,
    history: Vec<CaseEventBody>,
}

fn problem(field: &str, text: &str) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        problem: text.to_owned(),
    }
}

/// A case text: trimmed, 1–2000 characters, no control characters but newlines.
fn check_text(field: &str, text: &str, problems: &mut Vec<FieldProblem>) -> String {
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_TEXT_CHARS {
        problems.push(problem(field, "1–2000 characters"));
    } else if text.chars().any(|c| c.is_control() && c != '\n') {
        problems.push(problem(field, "contains control characters"));
    }
    text.to_owned()
}

fn valid_kind(kind: &str) -> bool {
    (1..=40).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn case_grid(row: &CaseRow) -> Result<GridCode, Error> {
    GridCode::parse(&row.grid).map_err(|_| Error::Internal("a stored case has a bad grid".into()))
}

async fn load(state: &AppState, id: &str) -> Result<CaseRow, Error> {
    state.store.case(id).await?.ok_or(Error::NotFound("case"))
}

fn seal_text(
    state: &AppState,
    row: &CaseRow,
    name: &str,
    text: &str,
) -> Result<SealedField, Error> {
    let key = state
        .vault
        .record_key(CASE_TEXTS, &row.id, &row.wrapped)
        .map_err(|e| Error::Integrity(e.to_string()))?;
    key.seal_fields(&[(name, text.as_bytes())])
        .map_err(|e| Error::Internal(e.to_string()))?
        .pop()
        .ok_or_else(|| Error::Internal("sealing returned nothing".to_owned()))
}

/// Open a case: the grid worker's report, with the records of the people concerned.
#[utoipa::path(post, path = "/v1/cases", tag = "cases", request_body = ReportCase,
    security(("bearer" = [])),
    responses((status = 201, body = CaseStatusBody), (status = 403), (status = 422)))]
pub async fn report(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<ReportCase>,
) -> Result<(StatusCode, Json<CaseStatusBody>), Error> {
    let grid =
        GridCode::parse(&req.grid).map_err(|_| Error::validation("grid", "not a grid code"))?;
    state
        .authorize(&who, "cases", "report", Some(&grid), "case.report")
        .await?;
    let mut problems = Vec::new();
    if !state.store.grid_exists(&grid).await? {
        problems.push(problem("grid", "unknown grid"));
    }
    if !valid_kind(&req.kind) {
        problems.push(problem("kind", "1–40 characters of a-z, 0-9, _ and -"));
    }
    let summary = check_text("summary", &req.summary, &mut problems);
    let mut subjects = req.subjects.clone();
    subjects.sort();
    subjects.dedup();
    if subjects.len() > MAX_SUBJECTS {
        problems.push(problem("subjects", "at most 50 records"));
    } else {
        let live = state.store.live_record_ids(&subjects).await?;
        for (i, s) in req.subjects.iter().enumerate() {
            if !live.contains(s) {
                problems.push(problem(&format!("subjects[{i}]"), "no such record"));
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let (wrapped, mut sealed) = state
        .vault
        .seal_new_record(CASE_TEXTS, &id, &[("summary", summary.as_bytes())])
        .map_err(|e| Error::Internal(e.to_string()))?;
    let summary = sealed
        .pop()
        .ok_or_else(|| Error::Internal("sealing returned nothing".to_owned()))?;
    let entry = EntryDraft::new(
        who.actor(),
        "case.report",
        Decision::Allow,
        current_request_id(),
    )
    .case(&id)
    .records(
        subjects
            .iter()
            .map(|s| RecordRef::new(s, std::iter::empty()))
            .collect(),
    )
    .reason(&format!("case of kind {} reported in {}", req.kind, grid));
    state.audit(entry).await?;
    let subjects_for_index = subjects.clone();
    let version = state
        .store
        .insert_case(&NewCase {
            id: id.clone(),
            grid: grid.as_str().to_owned(),
            kind: req.kind,
            reported_by: who.subject(),
            subjects,
            confidential: req.confidential,
            wrapped,
            summary,
            now: now_ms(),
        })
        .await?;
    state.decisions.set_case(
        version,
        &Responsibility {
            case: id.clone(),
            open: true,
            assignees: Vec::new(),
            records: subjects_for_index,
        },
    )?;
    Ok((
        StatusCode::CREATED,
        Json(CaseStatusBody {
            id,
            status: CaseStatus::Reported.as_str().to_owned(),
        }),
    ))
}

/// Bring the decision index up to date with a case change committed as `version`.
async fn apply_responsibility(state: &AppState, id: &str, version: i64) -> Result<(), Error> {
    if let Some(responsibility) = state.store.responsibility(id).await? {
        state.decisions.set_case(version, &responsibility)?;
    }
    Ok(())
}

fn changed(outcome: CaseChange, what: &str) -> Result<(CaseStatus, Option<i64>), Error> {
    match outcome {
        CaseChange::Done { status, version } => Ok((status, version)),
        CaseChange::NotFound => Err(Error::NotFound("case")),
        CaseChange::NotApplicable => Err(Error::Conflict(format!(
            "the case cannot be {what} in its current state"
        ))),
    }
}

/// Dispatch (or reassign) the case to departments with a deadline; replaces the current
/// assignees, whose access through this case ends on their next request.
#[utoipa::path(post, path = "/v1/cases/{id}/assign", tag = "cases", request_body = AssignCase,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CaseStatusBody), (status = 403), (status = 404),
        (status = 409), (status = 422)))]
pub async fn assign(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssignCase>,
) -> Result<Json<CaseStatusBody>, Error> {
    let row = load(&state, &id).await?;
    state
        .authorize(
            &who,
            "cases",
            "assign",
            Some(&case_grid(&row)?),
            "case.assign",
        )
        .await?;
    let now = now_ms();
    let mut problems = Vec::new();
    let mut departments = req.departments.clone();
    departments.sort();
    departments.dedup();
    if departments.is_empty() || departments.len() > MAX_ASSIGNEES {
        problems.push(problem("departments", "1–10 departments"));
    }
    for (i, d) in req.departments.iter().enumerate() {
        if state.store.department(d).await?.is_none() {
            problems.push(problem(&format!("departments[{i}]"), "unknown department"));
        }
    }
    let deadline = match assignment_deadline(&state, &req, now) {
        Ok(deadline) => Some(deadline),
        Err(why) => {
            problems.push(why);
            None
        }
    };
    let (Some(deadline), true) = (deadline, problems.is_empty()) else {
        return Err(Error::Validation(problems));
    };
    if !row.status.is_open() {
        return Err(Error::Conflict("the case is closed".to_owned()));
    }
    let entry = EntryDraft::new(
        who.actor(),
        "case.assign",
        Decision::Allow,
        current_request_id(),
    )
    .case(&id)
    .reason(&format!(
        "assigned to {} until {}",
        departments.join(","),
        rfc3339(deadline)
    ));
    state.audit(entry).await?;
    let outcome = state
        .store
        .assign_case(&id, &departments, deadline, &who.subject(), now)
        .await?;
    let (status, version) = changed(outcome, "assigned")?;
    if let Some(version) = version {
        apply_responsibility(&state, &id, version).await?;
    }
    Ok(Json(CaseStatusBody {
        id,
        status: status.as_str().to_owned(),
    }))
}

/// The deadline an assignment asks for: an RFC 3339 time in the future, or a number of working
/// days of the configured calendar from `now`.
fn assignment_deadline(state: &AppState, req: &AssignCase, now: i64) -> Result<i64, FieldProblem> {
    match (&req.deadline, req.working_days) {
        (Some(_), Some(_)) => Err(problem(
            "working_days",
            "give either deadline or working_days, not both",
        )),
        (None, None) => Err(problem(
            "deadline",
            "give a deadline (RFC 3339) or working_days",
        )),
        (Some(text), None) => match parse_rfc3339(text) {
            None => Err(problem("deadline", "not an RFC 3339 time")),
            Some(d) if d <= now => Err(problem("deadline", "must be in the future")),
            Some(d) => Ok(d),
        },
        (None, Some(days)) if !(1..=MAX_REPLY_WORKING_DAYS).contains(&days) => Err(problem(
            "working_days",
            &format!("1 to {MAX_REPLY_WORKING_DAYS}"),
        )),
        (None, Some(days)) => state
            .settings
            .working_calendar
            .after_working_days(now, days)
            .ok_or_else(|| problem("working_days", "the deadline is out of range")),
    }
}

/// An assignee department replies; the case is `replied` once every current assignee has.
#[utoipa::path(post, path = "/v1/cases/{id}/reply", tag = "cases", request_body = ReplyCase,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CaseStatusBody), (status = 403), (status = 404),
        (status = 409), (status = 422)))]
pub async fn reply(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReplyCase>,
) -> Result<Json<CaseStatusBody>, Error> {
    let row = load(&state, &id).await?;
    state
        .authorize(
            &who,
            "cases",
            "reply",
            Some(&case_grid(&row)?),
            "case.reply",
        )
        .await?;
    let mut problems = Vec::new();
    let note = check_text("note", &req.note, &mut problems);
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let assigned = row
        .assignments
        .iter()
        .find(|a| a.current && Some(&a.department) == who.department.as_ref());
    let Some(assignment) = assigned else {
        let why = "only a department currently assigned to the case may reply";
        let error = Error::Forbidden(why.to_owned());
        return Err(state.deny(who.actor(), "case.reply", why, error).await);
    };
    if assignment.replied_at.is_some() || row.status != CaseStatus::Assigned {
        return Err(Error::Conflict(
            "this department has already replied, or the case is not awaiting replies".to_owned(),
        ));
    }
    let name = format!("reply.{}.{}", assignment.round, assignment.department);
    let sealed = seal_text(&state, &row, &name, &note)?;
    let entry = EntryDraft::new(
        who.actor(),
        "case.reply",
        Decision::Allow,
        current_request_id(),
    )
    .case(&id)
    .reason("reply recorded");
    state.audit(entry).await?;
    let now = now_ms();
    let outcome = state
        .store
        .reply_case(&id, &assignment.department, &sealed, &who.subject(), now)
        .await?;
    let (status, _) = changed(outcome, "replied to")?;
    Ok(Json(CaseStatusBody {
        id,
        status: status.as_str().to_owned(),
    }))
}

/// Close the case with a resolution and an optional satisfaction rating (1–5); every
/// responsibility for it ends.
#[utoipa::path(post, path = "/v1/cases/{id}/close", tag = "cases", request_body = CloseCase,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CaseStatusBody), (status = 403), (status = 404),
        (status = 409), (status = 422)))]
pub async fn close(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CloseCase>,
) -> Result<Json<CaseStatusBody>, Error> {
    let row = load(&state, &id).await?;
    state
        .authorize(
            &who,
            "cases",
            "close",
            Some(&case_grid(&row)?),
            "case.close",
        )
        .await?;
    let mut problems = Vec::new();
    let resolution = check_text("resolution", &req.resolution, &mut problems);
    if req.satisfaction.is_some_and(|s| !(1..=5).contains(&s)) {
        problems.push(problem("satisfaction", "1 to 5"));
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    if !row.status.is_open() {
        return Err(Error::Conflict("the case is already closed".to_owned()));
    }
    let sealed = seal_text(&state, &row, "resolution", &resolution)?;
    let entry = EntryDraft::new(
        who.actor(),
        "case.close",
        Decision::Allow,
        current_request_id(),
    )
    .case(&id)
    .reason(&match req.satisfaction {
        Some(s) => format!("closed, satisfaction {s}"),
        None => "closed".to_owned(),
    });
    state.audit(entry).await?;
    let outcome = state
        .store
        .close_case(&id, &sealed, req.satisfaction, &who.subject(), now_ms())
        .await?;
    let (status, version) = changed(outcome, "closed")?;
    if let Some(version) = version {
        apply_responsibility(&state, &id, version).await?;
    }
    Ok(Json(CaseStatusBody {
        id,
        status: status.as_str().to_owned(),
    }))
}

/// The case with its history and texts: for those whose role may read cases in its grid, and
/// for its current assignees. Reading is audited (the texts may name people).
#[utoipa::path(get, path = "/v1/cases/{id}", tag = "cases", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CaseBody), (status = 403), (status = 404)))]
pub async fn get_case(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<CaseBody>, Error> {
    let row = load(&state, &id).await?;
    let assignee = row.status.is_open()
        && row
            .assignments
            .iter()
            .any(|a| a.current && Some(&a.department) == who.department.as_ref());
    if !assignee {
        state
            .authorize(&who, "cases", "read", Some(&case_grid(&row)?), "case.read")
            .await?;
    }
    let key = state
        .vault
        .record_key(CASE_TEXTS, &row.id, &row.wrapped)
        .map_err(|e| Error::Integrity(e.to_string()))?;
    let mut texts = Vec::new();
    for sealed in &row.texts {
        let plain = key
            .open_field(sealed)
            .map_err(|e| Error::Integrity(e.to_string()))?;
        texts.push(CaseTextBody {
            name: sealed.field.clone(),
            text: String::from_utf8_lossy(&plain).into_owned(),
        });
    }
    let entry = EntryDraft::new(
        who.actor(),
        "case.read",
        Decision::Allow,
        current_request_id(),
    )
    .case(&id);
    state.audit(entry).await?;
    let now = now_ms();
    let open = row.status.is_open();
    let assignments: Vec<AssignmentBody> = row
        .assignments
        .iter()
        .map(|a| AssignmentBody {
            department: a.department.clone(),
            round: a.round,
            assigned_at: rfc3339(a.assigned_at),
            deadline: rfc3339(a.deadline),
            replied_at: a.replied_at.map(rfc3339),
            current: a.current,
            overdue: open && a.current && a.replied_at.is_none() && now > a.deadline,
        })
        .collect();
    Ok(Json(CaseBody {
        overdue: assignments.iter().any(|a| a.overdue),
        id: row.id,
        grid: row.grid,
        kind: row.kind,
        status: row.status.as_str().to_owned(),
        reported_by: row.reported_by,
        reported_at: rfc3339(row.reported_at),
        deadline: row.deadline.map(rfc3339),
        satisfaction: row.satisfaction,
        closed_at: row.closed_at.map(rfc3339),
        confidential: row.confidential,
        subjects: row.subjects,
        assignments,
        texts,
        history: row
            .events
            .into_iter()
            .map(|e| CaseEventBody {
                at: rfc3339(e.at),
                actor: e.actor,
                action: e.action,
                detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
    }))
}
