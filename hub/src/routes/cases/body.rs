//! The cases API's bodies: requests as the API accepts them (turned into the service's drafts)
//! and responses as it answers (built from the service's results). Shapes are API.md's.

use policy::GridCode;
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::cases::{AssignmentDraft, CaseState, CaseView, ClosingDraft, OpenText, ReportDraft};
use crate::error::Error;
use crate::time::rfc3339;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grid": "330110.001.001.001", "kind": "dispute",
    "summary": "邻里噪音纠纷", "subjects": [], "confidential": false}))]
pub struct ReportCase {
    /// A grid code.
    #[schema(pattern = "^(?!L$)[A-Za-z0-9-]{1,32}(\\.[A-Za-z0-9-]{1,32}){0,5}$")]
    grid: String,
    /// What kind of case: 1–40 of `a-z 0-9 _ -` (e.g. `dispute`, `safety_hazard`).
    #[schema(pattern = "^[a-z0-9_-]{1,40}$")]
    kind: String,
    /// Free text; sealed at rest.
    /// 1–2 000 characters, no control characters but newlines.
    #[schema(
        max_length = 2000,
        pattern = "^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*$"
    )]
    summary: String,
    /// Record ids of the people concerned (at most 50).
    #[serde(default)]
    #[schema(max_items = 50)]
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
#[schema(example = json!({"departments": ["civil-affairs"], "working_days": 5}))]
pub struct AssignCase {
    /// 1–10 department ids; replaces the current assignees.
    #[schema(min_items = 1, max_items = 10)]
    departments: Vec<String>,
    /// RFC 3339, in the future. Give this or `working_days`.
    #[serde(default)]
    #[schema(format = DateTime)]
    deadline: Option<String>,
    /// Reply due this many working days (1–60, of the hub's working calendar) from now, at the
    /// same time of day (China Standard Time). Give this or `deadline`.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 1, maximum = 60)]
    working_days: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyCase {
    /// 1–2 000 characters, no control characters but newlines.
    #[schema(
        max_length = 2000,
        pattern = "^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*$"
    )]
    pub(crate) note: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseCase {
    /// 1–2 000 characters, no control characters but newlines.
    #[schema(
        max_length = 2000,
        pattern = "^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*$"
    )]
    resolution: String,
    /// 1–5.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 1, maximum = 5)]
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
    // Zeroized once the response is written.
    #[schema(value_type = String)]
    #[serde(serialize_with = "plain_text")]
    text: Zeroizing<String>,
}

fn plain_text<S: Serializer>(text: &Zeroizing<String>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(text)
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

impl ReportCase {
    /// The report as the service takes it; the grid code is checked here, before the role
    /// check, as it always was.
    pub fn into_draft(self) -> Result<ReportDraft, Error> {
        let grid = GridCode::parse(&self.grid)
            .map_err(|_| Error::validation("grid", "not a grid code"))?;
        Ok(ReportDraft {
            grid,
            kind: self.kind,
            summary: self.summary,
            subjects: self.subjects,
            confidential: self.confidential,
        })
    }
}

impl From<AssignCase> for AssignmentDraft {
    fn from(req: AssignCase) -> AssignmentDraft {
        AssignmentDraft {
            departments: req.departments,
            deadline: req.deadline,
            working_days: req.working_days,
        }
    }
}

impl From<CloseCase> for ClosingDraft {
    fn from(req: CloseCase) -> ClosingDraft {
        ClosingDraft {
            resolution: req.resolution,
            satisfaction: req.satisfaction,
        }
    }
}

impl From<CaseState> for CaseStatusBody {
    fn from(state: CaseState) -> CaseStatusBody {
        CaseStatusBody {
            id: state.id,
            status: state.status.as_str().to_owned(),
        }
    }
}

impl From<CaseView> for CaseBody {
    fn from(view: CaseView) -> CaseBody {
        let overdue = view.overdue();
        let row = view.case;
        CaseBody {
            overdue,
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
            assignments: view
                .assignments
                .into_iter()
                .map(|a| AssignmentBody {
                    department: a.assignment.department,
                    round: a.assignment.round,
                    assigned_at: rfc3339(a.assignment.assigned_at),
                    deadline: rfc3339(a.assignment.deadline),
                    replied_at: a.assignment.replied_at.map(rfc3339),
                    current: a.assignment.current,
                    overdue: a.overdue,
                })
                .collect(),
            texts: view
                .texts
                .into_iter()
                .map(|OpenText { name, text }| CaseTextBody { name, text })
                .collect(),
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
        }
    }
}
