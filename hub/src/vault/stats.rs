//! What the vault can say about its keys without showing one: each category's KEK versions
//! and which of them wraps new data keys. Counting the data keys each version wraps is the
//! store's (`Store::dek_counts`); `oversight::ledger_keys` puts the two together.

use super::Vault;

/// One category's KEK versions, oldest first, and the one that wraps new DEKs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekVersions {
    pub category: String,
    /// Invariant: one of `versions`.
    pub active: u32,
    pub versions: Vec<u32>,
    /// Versions that unwrap nothing any more.
    pub retired: Vec<u32>,
}

impl Vault {
    /// Every category's KEK versions (those of the keyring and those added while running),
    /// by category name. Names and numbers only: no key material leaves.
    pub fn kek_versions(&self) -> Vec<KekVersions> {
        let mut out: Vec<KekVersions> = self
            .keks
            .read()
            .map(|keks| {
                keks.iter()
                    .map(|(category, keks)| KekVersions {
                        category: category.clone(),
                        active: keks.active,
                        versions: keks.versions.keys().copied().collect(),
                        retired: keks.retired.iter().copied().collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.category.cmp(&b.category));
        out
    }
}
