//! The demo case: a dispute in the grid worker's community with one resident as its subject,
//! reported by the demo grid worker and dispatched by the admin to public security (which holds
//! the demo's case-bound grant) with a reply due in 5 working days. It goes through the same
//! `cases::Cases` methods as the API, so the same role checks, sealing and ledger-first rule
//! apply; its ledger entries carry the request id `demo`.

use std::sync::Arc;

use anyhow::Context;
use policy::{GridCode, WorkingCalendar};

use crate::auth::permissions::Permissions;
use crate::auth::{Access, Caller, Principal};
use crate::cases::{AssignmentDraft, Cases, ReportDraft};
use crate::decisions::Decisions;
use crate::error::REQUEST_ID;
use crate::ledger::Ledger;
use crate::startup::shipped_role_rows;
use crate::storage::{Store, UserRow, Versions};
use crate::time::now_ms;
use crate::vault::Vault;

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
    ledger: &Ledger,
    vault: Arc<Vault>,
    calendar: &WorkingCalendar,
    worker: &str,
    grid: &str,
    subject: &str,
) -> anyhow::Result<DemoCase> {
    let cases = service(store, ledger, vault, calendar).await?;
    let versions = store.versions().await?;
    let worker = user(store.user_by_id(worker).await?, "the demo grid worker")?;
    let dispatcher = user(
        store.user_by_username(DISPATCHER).await?,
        "the `admin` user",
    )?;
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
                .report(&principal(worker, versions), report)
                .await
                .context("cannot report the demo case")?;
            cases
                .assign(&principal(dispatcher, versions), &case.id, dispatch)
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

/// The case service over the demo's store, ledger and vault, with the shipped roles in place
/// (the hub seeds them at start, which comes after the demo).
async fn service(
    store: &Store,
    ledger: &Ledger,
    vault: Arc<Vault>,
    calendar: &WorkingCalendar,
) -> anyhow::Result<Cases> {
    store
        .seed_roles(&shipped_role_rows(), now_ms())
        .await
        .context("cannot seed the shipped roles")?;
    let permissions = Permissions::load(store.clone())
        .await
        .context("cannot load role permissions")?;
    let catalog = policy::Catalog::default_catalog();
    let decisions = Decisions::load(store.clone(), Arc::clone(&vault), catalog)
        .await
        .context("cannot build the decision index")?;
    Ok(Cases::new(
        Access::new(ledger.clone(), Arc::new(permissions)),
        store.clone(),
        vault,
        Arc::new(decisions),
        calendar.clone(),
    ))
}

fn user(row: Option<UserRow>, who: &str) -> anyhow::Result<UserRow> {
    row.filter(|u| !u.disabled)
        .with_context(|| format!("{who} is missing or disabled"))
}

/// The demo user acting, as an authenticated request would see them.
fn principal(user: UserRow, versions: Versions) -> Principal {
    Principal {
        caller: Caller::User {
            id: user.id,
            username: user.username,
        },
        department: user.department,
        roles: user.roles,
        on_behalf_of: None,
        versions,
    }
}
