//! The demo case: a dispute in the grid worker's community with one resident as its subject,
//! reported by the demo grid worker and dispatched by the admin to public security (which holds
//! the demo's case-bound grant) with a reply due in 5 working days. It goes through the same
//! `cases::Cases` methods as the API, so the same role checks, sealing and ledger-first rule
//! apply; its ledger entries carry the request id `demo`.

use anyhow::Context;
use policy::GridCode;

use super::acting;
use crate::cases::{AssignmentDraft, Cases, ReportDraft};
use crate::error::REQUEST_ID;
use crate::storage::Store;

/// The case's reply deadline, in working days.
const CASE_WORKING_DAYS: u32 = 5;
/// The department the case is dispatched to.
const ASSIGNEE: &str = "public-security";
/// The user who dispatches it (made by `gridhub init`; the only demo user whose role may
/// assign cases).
const DISPATCHER: &str = "admin";

/// The seeded case and its subject (a record id).
pub struct DemoCase {
    pub id: String,
    pub subject: String,
}

/// Report the demo case in `grid` about `subject` as the grid worker (user id `worker`) and
/// assign it to public security; `calendar` counts the reply deadline.
pub async fn seed(
    store: &Store,
    cases: &Cases,
    worker: &str,
    grid: &str,
    subject: &str,
) -> anyhow::Result<DemoCase> {
    let worker = acting::user(store, worker).await?;
    let dispatcher = acting::user_named(store, DISPATCHER).await?;
    let report = ReportDraft {
        grid: GridCode::parse(grid)?,
        kind: "dispute".to_owned(),
        summary: "邻里纠纷：楼上漏水引发争执，需核实当事人身份".to_owned(),
        subjects: vec![subject.to_owned()],
        confidential: false,
    };
    let dispatch = AssignmentDraft {
        departments: vec![ASSIGNEE.to_owned()],
        deadline: None,
        working_days: Some(CASE_WORKING_DAYS),
    };
    let id = REQUEST_ID
        .scope("demo".to_owned(), async {
            let case = cases
                .report(&worker, report)
                .await
                .context("cannot report the demo case")?;
            cases
                .assign(&dispatcher, &case.id, dispatch)
                .await
                .context("cannot assign the demo case")?;
            anyhow::Ok(case.id)
        })
        .await?;
    Ok(DemoCase {
        id,
        subject: subject.to_owned(),
    })
}
