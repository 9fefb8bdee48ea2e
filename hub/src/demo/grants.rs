//! Demo grants and a demo case, so the demo tells the story of DESIGN.md at once:
//! - civil affairs holds an approved `elderly-care` grant over its district, for residents
//!   tagged `elderly_alone` (names clear, phones masked, birth dates as years);
//! - public security holds an approved case-bound `case-investigation` grant, and one open case
//!   (a dispute in the worker's community, one resident as its subject) is assigned to it;
//! - health holds nothing.
//!
//! Each goes through the ledger first, like the API. The grants are requested by the
//! departments' systems and approved by the demo DPO, with signed artefacts.

use std::collections::BTreeMap;

use anyhow::Context;
use policy::grant::{ANSWER_WORKING_DAYS, answer_due};
use policy::{Disclosure, GrantStatus, GrantTerms, GridCode, WorkingCalendar};

use crate::auth::tokens::TokenIssuer;
use crate::ledger::{Actor, Decision, EntryDraft, Ledger, RecordRef};
use crate::storage::{GrantRow, GrantTransition, NewCase, Store};
use crate::time::now_ms;
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

fn terms(
    grantee: &str,
    purpose: &str,
    fields: &[(&str, Disclosure)],
    scope: &str,
    now: i64,
) -> anyhow::Result<GrantTerms> {
    Ok(GrantTerms {
        grantee: grantee.to_owned(),
        purpose: purpose.to_owned(),
        category: "person".to_owned(),
        fields: fields
            .iter()
            .map(|(f, d)| ((*f).to_owned(), *d))
            .collect::<BTreeMap<_, _>>(),
        scope: vec![GridCode::parse(scope)?],
        row_filter: None,
        case_bound: false,
        valid_from: now - DAY_MS,
        valid_until: now + 365 * DAY_MS,
        daily_quota: Some(10_000),
        legal_basis: None,
    })
}

async fn approved(
    store: &Store,
    ledger: &Ledger,
    tokens: &TokenIssuer,
    calendar: &WorkingCalendar,
    terms: GrantTerms,
    dpo: &str,
    now: i64,
) -> anyhow::Result<String> {
    let requester = format!("client:{}-system", terms.grantee);
    let row = GrantRow {
        id: uuid::Uuid::now_v7().to_string(),
        status: GrantStatus::Requested,
        requested_by: requester,
        requested_at: now,
        answer_due: answer_due(calendar, now, ANSWER_WORKING_DAYS)
            .context("the answer deadline is out of range")?,
        decided_by: None,
        decided_at: None,
        reason: None,
        artefact: None,
        updated_at: now,
        terms,
    };
    let entry = |action: &str, actor: Actor| {
        EntryDraft::new(actor, action, Decision::Allow, "demo".to_owned())
            .category(&row.terms.category)
            .purpose(&row.terms.purpose)
            .grants(vec![row.id.clone()])
    };
    ledger
        .append(
            entry(
                "grant.request",
                Actor {
                    client: Some(format!("{}-system", row.terms.grantee)),
                    department: Some(row.terms.grantee.clone()),
                    on_behalf_of: None,
                    user: None,
                },
            )
            .reason("grant requested"),
        )
        .await?;
    store.insert_grant(&row).await?;
    let artefact = crate::routes::grants::sign_artefact(tokens, &row, dpo, now)
        .map_err(|e| anyhow::anyhow!("cannot sign a demo grant artefact: {e}"))?;
    ledger
        .append(
            entry(
                "grant.approve",
                Actor::user(dpo.trim_start_matches("user:")),
            )
            .reason("requested → approved"),
        )
        .await?;
    store
        .transition_grant(&GrantTransition {
            id: &row.id,
            from: GrantStatus::Requested,
            to: GrantStatus::Approved,
            actor: dpo,
            action: "approve",
            reason: None,
            artefact: Some(&artefact),
            now,
        })
        .await?;
    Ok(row.id)
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
    tokens: &TokenIssuer,
    accounts: &Accounts<'_>,
    city: &str,
    grid: &str,
    subject: Option<&str>,
) -> anyhow::Result<DemoStory> {
    let now = now_ms();
    let dpo = &format!("user:{}", accounts.dpo);
    let mut care = terms(
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
    )?;
    care.row_filter = Some("tags has \"elderly_alone\"".to_owned());
    care.legal_basis = Some("Elderly Rights Protection Law art. 3; PIPL art. 13(5)".to_owned());
    let elderly_care_grant =
        approved(store, ledger, tokens, accounts.calendar, care, dpo, now).await?;

    let mut investigation = terms(
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
    )?;
    investigation.case_bound = true;
    investigation.legal_basis = Some("Criminal Procedure Law art. 54".to_owned());
    let case_grant = approved(
        store,
        ledger,
        tokens,
        accounts.calendar,
        investigation,
        dpo,
        now,
    )
    .await?;
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
