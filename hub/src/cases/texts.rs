//! Case texts (summary, replies, resolution) and the vault. This is the one place where a case
//! text's plaintext meets the vault (as `records.rs` is for record fields): texts are sealed
//! under the case's own DEK, wrapped by the `case-texts` KEK, and named in their associated
//! data, so a text moved to another case or another name fails to open. Plaintext buffers are
//! zeroized on drop. Fails closed: one text that does not authenticate fails the whole read.

use zeroize::Zeroizing;

use super::input::CaseText;
use crate::error::Error;
use crate::storage::CaseRow;
use crate::vault::{CASE_TEXTS, RecordKey, SealedField, Vault, WrappedDek};

/// Which text of a case: its stored name.
pub(super) enum TextName<'a> {
    Summary,
    /// The reply of `department` in assignment round `round`.
    Reply {
        round: i64,
        department: &'a str,
    },
    Resolution,
}

impl TextName<'_> {
    fn stored(&self) -> String {
        match self {
            TextName::Summary => "summary".to_owned(),
            TextName::Reply { round, department } => format!("reply.{round}.{department}"),
            TextName::Resolution => "resolution".to_owned(),
        }
    }
}

/// An opened case text.
pub struct OpenText {
    /// `summary`, `reply.<round>.<department>` or `resolution`.
    pub name: String,
    pub text: Zeroizing<String>,
}

/// Seal the summary of a new case `case_id` under a fresh case key.
pub(super) fn seal_summary(
    vault: &Vault,
    case_id: &str,
    summary: &CaseText,
) -> Result<(WrappedDek, SealedField), Error> {
    let name = TextName::Summary.stored();
    let (wrapped, mut sealed) =
        vault.seal_new_record(CASE_TEXTS, case_id, &[(&name, summary.as_bytes())])?;
    let summary = sealed
        .pop()
        .ok_or_else(|| Error::Internal("sealing returned nothing".to_owned()))?;
    Ok((wrapped, summary))
}

/// Seal one more text of a stored case under its key.
pub(super) fn seal(
    vault: &Vault,
    case: &CaseRow,
    name: &TextName<'_>,
    text: &CaseText,
) -> Result<SealedField, Error> {
    let name = name.stored();
    case_key(vault, case)?
        .seal_fields(&[(&name, text.as_bytes())])?
        .pop()
        .ok_or_else(|| Error::Internal("sealing returned nothing".to_owned()))
}

/// Open every text of a stored case, in stored order.
pub(super) fn open_all(vault: &Vault, case: &CaseRow) -> Result<Vec<OpenText>, Error> {
    let key = case_key(vault, case)?;
    let mut texts = Vec::with_capacity(case.texts.len());
    for sealed in &case.texts {
        let plain = key.open_field(sealed)?;
        texts.push(OpenText {
            name: sealed.field.clone(),
            text: Zeroizing::new(String::from_utf8_lossy(&plain).into_owned()),
        });
    }
    Ok(texts)
}

/// The case's key. Every failure is `integrity_failed`, a missing KEK version included (the
/// `From<VaultError>` conversion would call that internal): a case key we cannot unwrap is
/// stored data we cannot authenticate, as the cases API has always answered.
fn case_key(vault: &Vault, case: &CaseRow) -> Result<RecordKey, Error> {
    vault
        .record_key(CASE_TEXTS, &case.id, &case.wrapped)
        .map_err(|e| Error::Integrity(e.to_string()))
}
