//! Release: the fields of a recorded page opened and transformed, and the page delivered as
//! asked (JSON, or sealed with `age`). This is the only code that opens disclosed fields, and it
//! takes only a `Recorded` page, one whose ledger entry is durable.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::Recorded;
use crate::error::Error;
use crate::ledger::Receipt;
use crate::records::{self, DiscloseInput};
use crate::vault::Vault;

#[derive(Serialize, ToSchema)]
pub struct DisclosedRecord {
    id: String,
    grid: String,
    /// Only the disclosed fields, each at its planned level.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
}

/// The answer to a pull or a lookup (API.md "Disclosure").
#[derive(Serialize, ToSchema)]
pub struct DisclosedPage {
    records: Vec<DisclosedRecord>,
    /// Pass as `cursor` for the next page; absent at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    /// False when the scan budget (`pull_scan_budget_rows`) ran out before the page was full
    /// and before the end: fewer than `limit` records, more may follow from `next_cursor`.
    complete: bool,
    /// The signed receipt of the ledger entry recording this disclosure.
    #[schema(value_type = Object)]
    receipt: Receipt,
}

/// A released page, as it leaves.
pub enum Answer {
    Plain(DisclosedPage),
    /// The page's JSON sealed with `age` to the client's registered recipient (a complete
    /// `age` file).
    Sealed(Vec<u8>),
}

pub(super) fn release(vault: &Vault, recorded: Recorded) -> Result<Answer, Error> {
    let Recorded { decided, receipt } = recorded;
    let category = decided.ask.category;
    let pseudonyms = vault.pseudonyms(&decided.department);
    let records = decided
        .page
        .pending
        .into_iter()
        .map(|p| {
            let input = DiscloseInput {
                grid: &p.grid,
                public: &p.public,
                pseudonyms: &pseudonyms,
            };
            let fields = records::disclose(vault, category, &p.record, &input, &p.plan)?;
            Ok(DisclosedRecord {
                id: p.record.id,
                grid: p.record.grid,
                fields,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let page = DisclosedPage {
        records,
        next_cursor: decided.page.next_cursor.map(|c| c.as_str().to_owned()),
        complete: decided.page.complete,
        receipt,
    };
    match decided.recipient {
        None => Ok(Answer::Plain(page)),
        Some(recipient) => {
            let plain = zeroize::Zeroizing::new(
                serde_json::to_vec(&page)
                    .map_err(|e| Error::Internal(format!("cannot encode the page: {e}")))?,
            );
            // `age::encrypt` finishes the stream, so the ciphertext is complete.
            let sealed = age::encrypt(&recipient, &plain)
                .map_err(|e| Error::Internal(format!("cannot seal the page: {e}")))?;
            Ok(Answer::Sealed(sealed))
        }
    }
}
