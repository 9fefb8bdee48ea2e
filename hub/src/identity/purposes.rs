//! Registered purposes of processing, each with its legal basis: listed by anyone who may read
//! purposes, registered by admins. Invariants: a stored purpose has an id of 2–64 of
//! `a-z 0-9 -` starting with a letter, and a description and legal basis of 1–500 characters
//! each; every registration is a durable `purpose.create` entry before it is stored.
//! `routes/purposes.rs` and the console's purpose page call these same methods.

use super::{Identity, problem};
use crate::auth::Principal;
use crate::error::{Error, current_request_id};
use crate::ledger::{Decision, EntryDraft};
use crate::storage::PurposeRow;

/// A purpose as asked for: nothing checked yet.
pub struct PurposeDraft {
    pub id: String,
    pub description: String,
    pub legal_basis: String,
}

/// 2–64 of `a-z 0-9 -`, starting with a letter.
fn valid_purpose_id(id: &str) -> bool {
    (2..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && id.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
}

impl Identity {
    /// Registered purposes (role permission `purposes:read`).
    pub async fn purposes(&self, who: &Principal) -> Result<Vec<PurposeRow>, Error> {
        self.access
            .authorize(who, "purposes", "read", None, "purpose.read")
            .await?;
        Ok(self.store.purposes().await?)
    }

    /// Register a purpose (role permission `purposes:write`; audited before it is stored).
    pub async fn create_purpose(
        &self,
        who: &Principal,
        draft: PurposeDraft,
    ) -> Result<PurposeRow, Error> {
        self.access
            .authorize(who, "purposes", "write", None, "purpose.create")
            .await?;
        let row = checked_purpose(draft)?;
        self.access
            .record(
                EntryDraft::new(
                    who.actor(),
                    "purpose.create",
                    Decision::Allow,
                    current_request_id(),
                )
                .reason(&format!("purpose {}", row.id)),
            )
            .await?;
        if !self.store.insert_purpose(&row).await? {
            return Err(Error::Conflict("a purpose with this id exists".to_owned()));
        }
        tracing::info!(by = %who.id(), purpose = %row.id, "purpose registered");
        Ok(row)
    }
}

/// The row a draft describes, or every field problem it has.
fn checked_purpose(draft: PurposeDraft) -> Result<PurposeRow, Error> {
    let mut problems = Vec::new();
    if !valid_purpose_id(&draft.id) {
        problems.push(problem(
            "id",
            "2–64 characters of a-z, 0-9 and -, starting with a letter",
        ));
    }
    if draft.description.trim().is_empty() || draft.description.chars().count() > 500 {
        problems.push(problem("description", "1–500 characters"));
    }
    if draft.legal_basis.trim().is_empty() || draft.legal_basis.chars().count() > 500 {
        problems.push(problem(
            "legal_basis",
            "1–500 characters; a purpose needs its legal basis",
        ));
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    Ok(PurposeRow {
        id: draft.id,
        description: draft.description,
        legal_basis: draft.legal_basis,
    })
}

#[cfg(test)]
mod tests {
    use super::valid_purpose_id;

    #[test]
    fn purpose_ids_are_lowercase_words_with_hyphens() {
        assert!(valid_purpose_id("flood-relief"));
        assert!(valid_purpose_id("a1"));
        assert!(!valid_purpose_id("a"));
        assert!(!valid_purpose_id("1-relief"));
        assert!(!valid_purpose_id("Flood"));
        assert!(!valid_purpose_id(&"a".repeat(65)));
    }
}
