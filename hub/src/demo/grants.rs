//! Demo grants and a demo case, so the demo tells the story of DESIGN.md at once:
//! - civil affairs holds an approved `elderly-care` grant over its district, for residents
//!   tagged `elderly_alone` (names clear, phones masked, birth dates as years);
//! - public security holds an approved case-bound `case-investigation` grant, and one open case
//!   (a dispute in the worker's community, one resident as its subject) is assigned to it;
//! - health holds nothing.
//!
//! Each goes through the ledger first, like the API. The grants go through the grant service
//! as the API's do: requested by the departments' systems and approved by the demo DPO, with
//! signed artefacts.

use std::sync::Arc;

use anyhow::Context;
use policy::{Disclosure, WorkingCalendar};

use crate::auth::permissions::Permissions;
use crate::auth::tokens::TokenIssuer;
use crate::auth::{Access, Caller, Principal};
use crate::decisions::Decisions;
use crate::error::REQUEST_ID;
use crate::grants::{GrantDraft, Grants};
use crate::ledger::{Actor, Decision, EntryDraft, Ledger, RecordRef};
use crate::storage::{NewCase, Store};
use crate::time::{now_ms, rfc3339};
use crate::vault::{CASE_TEXTS, Vault};

const DAY_MS: i64 = 86_400_000;
/// The demo case's reply deadline.
const CASE_WORKING_DAYS: u32 = 5;

/// What the demo set up, for the printed tour.
pub struct DemoStory {
    pub elderly_care_grant: String,
    pub case_grant: String,
    /// The assigned case and its subject; none when the worker's community has no resident.
    pub case: Option<(String, String)>,
}

fn draft(
    grantee: &str,
    purpose: &str,
    fields: &[(&str, Disclosure)],
    scope: &str,
    now: i64,
) -> GrantDraft {
    GrantDraft {
        grantee: grantee.to_owned(),
        purpose: purpose.to_owned(),
        category: "person".to_owned(),
        fields: fields
            .iter()
            .map(|(f, d)| ((*f).to_owned(), d.as_str().to_owned()))
            .collect(),
        scope: vec![scope.to_owned()],
        row_filter: None,
        case_bound: false,
        valid_from: rfc3339(now - DAY_MS),
        valid_until: rfc3339(now + 365 * DAY_MS),
        daily_quota: Some(10_000),
        legal_basis: None,
    }
}

/// The grant service over the demo's store and ledger, built as start-up builds the API's.
/// The shipped roles are seeded first (start-up would do it next), so that the demo's callers
/// pass the same role checks as the API's.
pub async fn service(
    store: &Store,
    ledger: &Ledger,
    vault: Arc<Vault>,
    tokens: TokenIssuer,
    calendar: &WorkingCalendar,
) -> anyhow::Result<Grants> {
    store
        .seed_roles(&crate::startup::shipped_role_rows(), now_ms())
        .await
        .context("cannot seed the shipped roles")?;
    let permissions = Permissions::load(store.clone())
        .await
        .context("cannot load role permissions")?;
    let catalog = policy::Catalog::default_catalog();
    let decisions = Decisions::load(store.clone(), Arc::clone(&vault), catalog)
        .await
        .map_err(|e| anyhow::anyhow!("cannot build the decision index: {e}"))?;
    Ok(Grants::new(
        Access::new(ledger.clone(), Arc::new(permissions)),
        store.clone(),
        vault,
        Arc::new(decisions),
        Arc::new(tokens),
        catalog,
        calendar.clone(),
    ))
}

/// The system of `department` (client `<department>-system`) as the API would see it.
async fn department_system(store: &Store, department: &str) -> anyhow::Result<Principal> {
    let id = format!("{department}-system");
    let client = store
        .client(&id)
        .await?
        .with_context(|| format!("the demo has no client `{id}`"))?;
    Ok(Principal {
        caller: Caller::Client {
            id: client.id,
            thumbprint: client.thumbprint,
        },
        department: Some(client.department),
        roles: client.roles,
        on_behalf_of: None,
        versions: store.versions().await?,
    })
}

/// Demo user `id` as the API would see it.
async fn demo_user(store: &Store, id: &str) -> anyhow::Result<Principal> {
    let user = store
        .user_by_id(id)
        .await?
        .with_context(|| format!("the demo has no user `{id}`"))?;
    Ok(Principal {
        caller: Caller::User {
            id: user.id,
            username: user.username,
        },
        department: user.department,
        roles: user.roles,
        on_behalf_of: None,
        versions: store.versions().await?,
    })
}

/// Request `draft` as the grantee's system and approve it as `dpo`, through the grant service
/// (ledger entries under request id `demo`); the grant's id.
async fn approved(
    store: &Store,
    grants: &Grants,
    draft: GrantDraft,
    dpo: &str,
) -> anyhow::Result<String> {
    let requester = department_system(store, &draft.grantee).await?;
    let approver = demo_user(store, dpo).await?;
    REQUEST_ID
        .scope("demo".to_owned(), async {
            let row = grants
                .request(&requester, draft)
                .await
                .map_err(|e| anyhow::anyhow!("demo grant request refused: {e:?}"))?;
            grants
                .approve(&approver, &row.id, None)
                .await
                .map_err(|e| anyhow::anyhow!("demo grant approval refused: {e:?}"))?;
            Ok(row.id)
        })
        .await
}

/// The demo users that act in the story (user ids), and the working calendar their deadlines
/// are counted in.
pub struct Accounts<'a> {
    pub dpo: &'a str,
    pub worker: &'a str,
    pub calendar: &'a WorkingCalendar,
}

/// Seed the demo grants and, when there is a resident in the worker's community `grid`
/// (`subject`), the demo case; `city` is the demo city's code.
#[allow(clippy::too_many_arguments)]
pub async fn seed(
    store: &Store,
    ledger: &Ledger,
    vault: &Vault,
    grants: &Grants,
    accounts: &Accounts<'_>,
    city: &str,
    grid: &str,
    subject: Option<&str>,
) -> anyhow::Result<DemoStory> {
    let now = now_ms();
    let mut care = draft(
        "civil-affairs",
        "elderly-care",
        &[
            ("name", Disclosure::Clear),
            ("phone", Disclosure::Masked),
            ("birth_date", Disclosure::Generalized),
            ("address", Disclosure::Generalized),
            ("tags", Disclosure::Clear),
        ],
        &format!("{city}.001"),
        now,
    );
    care.row_filter = Some("tags has \"elderly_alone\"".to_owned());
    care.legal_basis = Some("Elderly Rights Protection Law art. 3; PIPL art. 13(5)".to_owned());
    let elderly_care_grant = approved(store, grants, care, accounts.dpo).await?;

    let mut investigation = draft(
        "public-security",
        "case-investigation",
        &[
            ("name", Disclosure::Clear),
            ("id_number", Disclosure::Clear),
            ("phone", Disclosure::Clear),
            ("address", Disclosure::Clear),
            ("birth_date", Disclosure::Clear),
        ],
        city,
        now,
    );
    investigation.case_bound = true;
    investigation.legal_basis = Some("Criminal Procedure Law art. 54".to_owned());
    let case_grant = approved(store, grants, investigation, accounts.dpo).await?;
    let case = match subject {
        Some(subject) => Some((
            assigned_case(store, ledger, vault, accounts, grid, subject, now).await?,
            subject.to_owned(),
        )),
        None => None,
    };
    Ok(DemoStory {
        elderly_care_grant,
        case_grant,
        case,
    })
}

/// A dispute in `grid` with `subject`, reported by the worker and assigned to public security
/// with a reply due in 5 working days.
async fn assigned_case(
    store: &Store,
    ledger: &Ledger,
    vault: &Vault,
    accounts: &Accounts<'_>,
    grid: &str,
    subject: &str,
    now: i64,
) -> anyhow::Result<String> {
    let worker = accounts.worker;
    let deadline = accounts
        .calendar
        .after_working_days(now, CASE_WORKING_DAYS)
        .context("the case deadline is out of range")?;
    let case = uuid::Uuid::now_v7().to_string();
    let summary = "邻里纠纷：楼上漏水引发争执，需核实当事人身份";
    let (wrapped, mut sealed) = vault
        .seal_new_record(CASE_TEXTS, &case, &[("summary", summary.as_bytes())])
        .context("cannot seal the demo case summary")?;
    let summary = sealed.pop().context("sealing returned nothing")?;
    ledger
        .append(
            EntryDraft::new(
                Actor::user(worker),
                "case.report",
                Decision::Allow,
                "demo".to_owned(),
            )
            .case(&case)
            .records(vec![RecordRef::new(subject, std::iter::empty())])
            .reason(&format!("case of kind dispute reported in {grid}")),
        )
        .await?;
    store
        .insert_case(&NewCase {
            id: case.clone(),
            grid: grid.to_owned(),
            kind: "dispute".to_owned(),
            reported_by: format!("user:{worker}"),
            subjects: vec![subject.to_owned()],
            confidential: false,
            wrapped,
            summary,
            now,
        })
        .await?;
    ledger
        .append(
            EntryDraft::new(
                Actor::system(),
                "case.assign",
                Decision::Allow,
                "demo".to_owned(),
            )
            .case(&case)
            .reason("assigned to public-security"),
        )
        .await?;
    store
        .assign_case(
            &case,
            &["public-security".to_owned()],
            deadline,
            "system",
            now,
        )
        .await?;
    Ok(case)
}
