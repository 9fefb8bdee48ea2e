//! Demo grants, so the demo tells the story of DESIGN.md at once:
//! - civil affairs holds an approved `elderly-care` grant over its district, for residents
//!   tagged `elderly_alone` (names clear, phones masked, birth dates as years);
//! - public security holds an approved case-bound `case-investigation` grant (the open case
//!   assigned to it is `demo/case.rs`'s);
//! - health holds nothing.
//!
//! Each goes through the ledger first, like the API. The grants go through the grant service
//! as the API's do: requested by the departments' systems and approved by the demo DPO, with
//! signed artefacts.

use policy::{Disclosure, WorkingCalendar};

use super::acting;
use crate::error::REQUEST_ID;
use crate::grants::{GrantDraft, Grants};
use crate::storage::Store;
use crate::time::{now_ms, rfc3339};

const DAY_MS: i64 = 86_400_000;

/// What the demo set up, for the printed tour.
pub struct DemoStory {
    pub elderly_care_grant: String,
    pub case_grant: String,
}

fn draft(
    grantee: &str,
    purpose: &str,
    fields: &[(&str, Disclosure)],
    scope: &str,
    now: i64,
) -> GrantDraft {
    GrantDraft {
        kind: None,
        group_by: None,
        min_cell: None,
        privacy: None,
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

/// Request `draft` as the grantee's system and approve it as `dpo`, through the grant service
/// (ledger entries under request id `demo`); the grant's id.
async fn approved(
    store: &Store,
    grants: &Grants,
    draft: GrantDraft,
    dpo: &str,
) -> anyhow::Result<String> {
    let requester = acting::department_system(store, &draft.grantee).await?;
    let approver = acting::user(store, dpo).await?;
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
    pub calendar: &'a WorkingCalendar,
}

/// Seed the demo grants; `city` is the demo city's code.
pub async fn seed(
    store: &Store,
    grants: &Grants,
    accounts: &Accounts<'_>,
    city: &str,
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
    Ok(DemoStory {
        elderly_care_grant,
        case_grant,
    })
}
