//! Demo grants, so the demo tells the story of DESIGN.md at once:
//! - civil affairs holds an approved `elderly-care` grant over its district, for residents
//!   tagged `elderly_alone` (names clear, phones masked, birth dates as years);
//! - public security holds an approved case-bound `case-investigation` grant (the open case
//!   assigned to it is `demo/case.rs`'s);
//! - health holds nothing.
//!
//! Each goes through the ledger first, like the API. The grants are requested by the
//! departments' systems and approved by the demo DPO, with signed artefacts.

use std::collections::BTreeMap;

use anyhow::Context;
use policy::grant::{ANSWER_WORKING_DAYS, answer_due};
use policy::{Disclosure, GrantStatus, GrantTerms, GridCode, WorkingCalendar};

use crate::auth::tokens::TokenIssuer;
use crate::ledger::{Actor, Decision, EntryDraft, Ledger};
use crate::storage::{GrantRow, GrantTransition, Store};
use crate::time::now_ms;

const DAY_MS: i64 = 86_400_000;

/// What the demo set up, for the printed tour.
pub struct DemoStory {
    pub elderly_care_grant: String,
    pub case_grant: String,
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
    pub calendar: &'a WorkingCalendar,
}

/// Seed the demo grants; `city` is the demo city's code.
pub async fn seed(
    store: &Store,
    ledger: &Ledger,
    tokens: &TokenIssuer,
    accounts: &Accounts<'_>,
    city: &str,
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
    Ok(DemoStory {
        elderly_care_grant,
        case_grant,
    })
}
