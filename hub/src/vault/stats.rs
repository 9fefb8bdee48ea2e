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
}

impl Vault {
    /// Every category's KEK versions (those of the keyring and those added while running),
    /// by category name. Names and numbers only: no key material leaves.
    pub fn kek_versions(&self) -> Vec<KekVersions> {
        let mut out: Vec<KekVersions> = self
            .keks
            .iter()
            .map(|(category, keks)| KekVersions {
                category: category.clone(),
                active: keks.active,
                versions: keks.versions.keys().copied().collect(),
            })
            .collect();
        if let Ok(added) = self.added.read() {
            out.extend(added.iter().map(|(category, keks)| KekVersions {
                category: category.clone(),
                active: keks.active,
                versions: keks.versions.keys().copied().collect(),
            }));
        }
        out.sort_by(|a, b| a.category.cmp(&b.category));
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::vault::keyring::KeyringFile;

    #[test]
    fn every_category_lists_its_versions_and_the_active_one() {
        let mut file = KeyringFile::generate(["person", "place"], 0).unwrap();
        file.add_kek_version("person", 1).unwrap();
        let vault = Vault::from_keyring(&file).unwrap();
        let listed = vault.kek_versions();
        assert_eq!(
            listed,
            vec![
                KekVersions {
                    category: "person".into(),
                    active: 2,
                    versions: vec![1, 2]
                },
                KekVersions {
                    category: "place".into(),
                    active: 1,
                    versions: vec![1]
                },
            ]
        );
    }
}
