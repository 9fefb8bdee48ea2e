//! The vault owns all key material of a running hub: it is built from the unsealed keyring and
//! offers sealing/opening of record fields, blind-index tokens and the token-signing keys.
//! Nothing outside this module sees a key's bytes, and no key is ever logged.

pub mod client_ca;
pub mod envelope;
pub mod keyring;
mod pseudonym;
pub mod random;
pub mod stats;

pub use pseudonym::Pseudonyms;
pub use tlog::{Ed25519Key, NotEd25519};

/// `HMAC-SHA256(key, category ‖ 0 ‖ field ‖ 0 ‖ value)`: blind-index tokens (under the index
/// key) and pseudonyms (under a department's key) of one field's value.
fn field_mac(key: &hmac::Key, category: &str, field: &str, value: &str) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(category.as_bytes());
    ctx.update(&[0]);
    ctx.update(field.as_bytes());
    ctx.update(&[0]);
    ctx.update(value.as_bytes());
    ctx.sign()
}

/// The KEK scope of case texts (summaries, replies, resolutions). Not a catalog category name
/// (those never contain `-`), so it cannot collide with one.
pub const CASE_TEXTS: &str = "case-texts";

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ring::hmac;
use zeroize::Zeroizing;

use client_ca::{CaError, ClientCa};
use envelope::{Dek, EnvelopeError, Kek};
use keyring::{KeyringError, KeyringFile, KeyringStore, decode_b64, decode_key};

/// With random 96-bit nonces a key may seal at most 2^32 messages (NIST SP 800-38D §8.3).
/// Gridhub refuses new wraps under a KEK past 90 % of that and asks for rotation.
pub const KEK_WRAP_LIMIT: i64 = (u32::MAX as i64 / 10) * 9;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no key for category `{0}`; run `gridhub keys rotate --category {0}`")]
    NoCategoryKey(String),
    #[error("key version {version} of category `{category}` is not in the keyring")]
    NoKeyVersion { category: String, version: u32 },
    #[error("key version {version} of category `{category}` is retired: it unwraps nothing")]
    RetiredKeyVersion { category: String, version: u32 },
    #[error("field `{field}` failed its integrity check")]
    FieldIntegrity { field: String },
    #[error("the data key of record `{0}` failed its integrity check")]
    DekIntegrity(String),
    #[error("cryptographic operation failed: {0}")]
    Crypto(EnvelopeError),
}

/// A wrapped DEK as stored with its record.
#[derive(Debug, Clone)]
pub struct WrappedDek {
    pub kek_version: u32,
    pub bytes: Vec<u8>,
}

/// One sealed field as stored: the KEK version is part of its associated data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedField {
    pub field: String,
    pub kek_version: u32,
    pub sealed: Vec<u8>,
}

/// A token-signing key (Ed25519): JWTs and grant artefacts, published in the JWKS by `kid`.
pub struct SigningKey {
    pub kid: String,
    pub key: Arc<Ed25519Key>,
}

/// One category's KEK versions and what each may do. Replaced whole (copy on write) when a
/// version is added or a state changes; a reader holds the `Arc` it took.
#[derive(Clone)]
struct CategoryKeks {
    /// Wraps new data keys.
    active: u32,
    versions: BTreeMap<u32, Arc<Kek>>,
    /// Versions that unwrap nothing any more (retired once no data key used them).
    retired: BTreeSet<u32>,
}

/// A category's KEK versions as the keyring lists them.
fn category_keks(
    category: &str,
    entries: &[keyring::KekEntry],
) -> Result<CategoryKeks, KeyringError> {
    let mut versions = BTreeMap::new();
    for entry in entries {
        let key = decode_key(&format!("KEK {category} v{}", entry.version), &entry.key)?;
        versions.insert(entry.version, Arc::new(Kek::new(entry.version, &key)));
    }
    let retired = entries
        .iter()
        .filter(|e| e.retired)
        .map(|e| e.version)
        .collect();
    let active = entries
        .iter()
        .filter(|e| !e.retired)
        .map(|e| e.version)
        .max()
        .ok_or_else(|| {
            KeyringError::Malformed(format!("category `{category}` has no active KEK"))
        })?;
    Ok(CategoryKeks {
        active,
        versions,
        retired,
    })
}

/// A ledger key of the keyring file.
pub fn ledger_key_of(entry: &keyring::SigningKeyEntry) -> Result<Arc<Ed25519Key>, KeyringError> {
    let pkcs8 = decode_b64("ledger key", &entry.pkcs8)?;
    Ed25519Key::from_pkcs8(&pkcs8)
        .map(Arc::new)
        .map_err(|_| KeyringError::Malformed("ledger key is not Ed25519".to_owned()))
}

/// The unlocked keyring.
pub struct Vault {
    /// Category name → its KEKs. A short list scanned linearly: catalogs have a handful of
    /// categories, and this beats hashing the name on every record operation. Categories
    /// created while the hub runs (`add_category`) and KEK versions and states changed by a
    /// rotation (`add_kek_version`, `apply_states`) replace an entry's `Arc`.
    keks: std::sync::RwLock<Vec<(String, Arc<CategoryKeks>)>>,
    /// One keyring file rewrite at a time.
    keyring_writes: std::sync::Mutex<()>,
    index_key: hmac::Key,
    signing: Vec<SigningKey>,
    ledger_key: Option<Arc<Ed25519Key>>,
    /// The ledger key a rotation replaced, while the keyring still holds it
    /// (`KeyringFile::previous_ledger_key`).
    previous_ledger_key: Option<Arc<Ed25519Key>>,
    /// The hub CA (`with_client_ca`); `None` when this hub has no CA key.
    client_ca: Option<ClientCa>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let categories: Vec<String> = self
            .keks
            .read()
            .map(|k| k.iter().map(|(c, _)| c.clone()).collect())
            .unwrap_or_default();
        f.debug_struct("Vault")
            .field("categories", &categories)
            .finish_non_exhaustive()
    }
}

/// A record's unwrapped DEK together with the record it belongs to.
pub struct RecordKey {
    kek_version: u32,
    dek: Dek,
}

impl Vault {
    pub fn unlock(store: &dyn KeyringStore) -> Result<Vault, KeyringError> {
        Vault::from_keyring(&store.load()?)
    }

    pub fn from_keyring(file: &KeyringFile) -> Result<Vault, KeyringError> {
        let mut keks = Vec::new();
        for (category, entries) in &file.keks {
            keks.push((
                category.clone(),
                Arc::new(category_keks(category, entries)?),
            ));
        }
        let index_key = decode_key("index key", &file.index_key)?;
        let mut signing = Vec::new();
        for entry in &file.signing_keys {
            let pkcs8 = decode_b64("signing key", &entry.pkcs8)?;
            let key = Ed25519Key::from_pkcs8(&pkcs8)
                .map_err(|_| KeyringError::Malformed("signing key is not Ed25519".to_owned()))?;
            signing.push(SigningKey {
                kid: entry.kid.clone(),
                key: Arc::new(key),
            });
        }
        let ledger_key = file.ledger_key.as_ref().map(ledger_key_of).transpose()?;
        let previous_ledger_key = file
            .previous_ledger_key
            .as_ref()
            .map(ledger_key_of)
            .transpose()?;
        if signing.is_empty() {
            return Err(KeyringError::Malformed("no signing key".to_owned()));
        }
        Ok(Vault {
            keks: std::sync::RwLock::new(keks),
            keyring_writes: std::sync::Mutex::default(),
            index_key: hmac::Key::new(hmac::HMAC_SHA256, index_key.as_ref()),
            signing,
            ledger_key,
            previous_ledger_key,
            client_ca: None,
        })
    }

    fn category_keks(&self, category: &str) -> Option<Arc<CategoryKeks>> {
        let keks = self.keks.read().ok()?;
        keks.iter()
            .find(|(c, _)| c == category)
            .map(|(_, k)| Arc::clone(k))
    }

    fn lock_error() -> KeyringError {
        KeyringError::Malformed("the keyring lock is poisoned".to_owned())
    }

    /// Put `category`'s entry in place (added, or replaced whole).
    fn set_category_keks(&self, category: &str, keks: CategoryKeks) -> Result<(), KeyringError> {
        let mut all = self.keks.write().map_err(|_| Vault::lock_error())?;
        let keks = Arc::new(keks);
        match all.iter_mut().find(|(c, _)| c == category) {
            Some((_, slot)) => *slot = keks,
            None => all.push((category.to_owned(), keks)),
        }
        Ok(())
    }

    /// Make sure `category` has a KEK: taken from the keyring in `store` if it has one there
    /// (another replica, or an earlier attempt, made it), else generated and saved there first.
    /// Only then is it used here, so no record is ever sealed under a key the keyring file
    /// does not hold.
    pub fn add_category(
        &self,
        store: &dyn KeyringStore,
        category: &str,
        now: i64,
    ) -> Result<(), KeyringError> {
        if self.category_keks(category).is_some() {
            return Ok(());
        }
        let _one = self
            .keyring_writes
            .lock()
            .map_err(|_| Vault::lock_error())?;
        if self.category_keks(category).is_some() {
            return Ok(());
        }
        let mut file = store.load()?;
        if !file.keks.contains_key(category) {
            file.add_kek_version(category, now)?;
            store.save(&file)?;
        }
        let entries = file
            .keks
            .get(category)
            .ok_or_else(|| KeyringError::Malformed(format!("no KEK for `{category}`")))?;
        self.set_category_keks(category, category_keks(category, entries)?)
    }

    /// Rotation, first step: a new KEK version of `category`, saved in the keyring in `store`
    /// first and only then known here. It wraps nothing until `apply_states` makes it active
    /// (the database says which version is active: `crate::keys`). Returns the new version.
    pub fn add_kek_version(
        &self,
        store: &dyn KeyringStore,
        category: &str,
        now: i64,
    ) -> Result<u32, KeyringError> {
        let _one = self
            .keyring_writes
            .lock()
            .map_err(|_| Vault::lock_error())?;
        let mut file = store.load()?;
        if !file.keks.contains_key(category) {
            return Err(KeyringError::Malformed(format!(
                "no KEK for `{category}` to rotate"
            )));
        }
        let version = file.add_kek_version(category, now)?;
        store.save(&file)?;
        self.learn_versions(&file)?;
        Ok(version)
    }

    /// Take the key versions of `file` (the keyring as another process may have saved it)
    /// that this vault does not hold yet, leaving which version does what as it is.
    pub fn learn_versions(&self, file: &KeyringFile) -> Result<(), KeyringError> {
        for (category, entries) in &file.keks {
            let loaded = category_keks(category, entries)?;
            let merged = match self.category_keks(category) {
                Some(current) => {
                    let mut merged = (*current).clone();
                    for (version, kek) in loaded.versions {
                        merged.versions.entry(version).or_insert(kek);
                    }
                    merged
                }
                None => loaded,
            };
            self.set_category_keks(category, merged)?;
        }
        Ok(())
    }

    /// Follow the database's states of the KEK versions (`crate::keys`): per category, the
    /// active version wraps new data keys and retired ones unwrap nothing. Fails, changing
    /// nothing of that category, if the active version is not in this vault (the keyring file
    /// must be reloaded first: `learn_versions`).
    pub fn apply_states(
        &self,
        states: &[(String, u32, crate::storage::KekState)],
    ) -> Result<(), VaultError> {
        use crate::storage::KekState;
        let mut categories: Vec<&str> = states.iter().map(|(c, _, _)| c.as_str()).collect();
        categories.sort_unstable();
        categories.dedup();
        for category in categories {
            let Some(current) = self.category_keks(category) else {
                continue;
            };
            let mut next = (*current).clone();
            for (_, version, state) in states.iter().filter(|(c, _, _)| c == category) {
                match state {
                    KekState::Active => {
                        if !next.versions.contains_key(version) {
                            return Err(VaultError::NoKeyVersion {
                                category: category.to_owned(),
                                version: *version,
                            });
                        }
                        next.active = *version;
                    }
                    KekState::Retired => {
                        next.retired.insert(*version);
                    }
                    KekState::Rewrap => {}
                }
            }
            next.retired.remove(&next.active);
            self.set_category_keks(category, next)
                .map_err(|e| VaultError::NoCategoryKey(e.to_string()))?;
        }
        Ok(())
    }

    fn kek(&self, category: &str, version: u32) -> Result<Arc<Kek>, VaultError> {
        let keks = self
            .category_keks(category)
            .ok_or_else(|| VaultError::NoCategoryKey(category.to_owned()))?;
        if keks.retired.contains(&version) {
            return Err(VaultError::RetiredKeyVersion {
                category: category.to_owned(),
                version,
            });
        }
        keks.versions
            .get(&version)
            .cloned()
            .ok_or_else(|| VaultError::NoKeyVersion {
                category: category.to_owned(),
                version,
            })
    }

    /// The KEK version that wraps new DEKs of `category`.
    pub fn active_kek_version(&self, category: &str) -> Result<u32, VaultError> {
        self.category_keks(category)
            .map(|k| k.active)
            .ok_or_else(|| VaultError::NoCategoryKey(category.to_owned()))
    }

    /// Seal a new record: fresh DEK, wrapped under the active KEK, and every field sealed.
    pub fn seal_new_record(
        &self,
        category: &str,
        record_id: &str,
        fields: &[(&str, &[u8])],
    ) -> Result<(WrappedDek, Vec<SealedField>), VaultError> {
        let version = self.active_kek_version(category)?;
        let kek = self.kek(category, version)?;
        let (dek, wrapped) = kek
            .new_dek(category, record_id)
            .map_err(VaultError::Crypto)?;
        let key = RecordKey {
            kek_version: version,
            dek,
        };
        let sealed = key.seal_fields(fields)?;
        Ok((
            WrappedDek {
                kek_version: version,
                bytes: wrapped,
            },
            sealed,
        ))
    }

    /// Unwrap a stored record's DEK; fails closed if the wrap was tampered with or moved.
    pub fn record_key(
        &self,
        category: &str,
        record_id: &str,
        wrapped: &WrappedDek,
    ) -> Result<RecordKey, VaultError> {
        let kek = self.kek(category, wrapped.kek_version)?;
        let dek = kek
            .unwrap_dek(category, record_id, &wrapped.bytes)
            .map_err(|_| VaultError::DekIntegrity(record_id.to_owned()))?;
        Ok(RecordKey {
            kek_version: wrapped.kek_version,
            dek,
        })
    }

    /// Rewrap a record's DEK under the active KEK of its category (rotation).
    pub fn rewrap(
        &self,
        category: &str,
        record_id: &str,
        wrapped: &WrappedDek,
    ) -> Result<WrappedDek, VaultError> {
        let version = self.active_kek_version(category)?;
        self.rewrap_to(category, record_id, wrapped, version)
    }

    /// Rewrap a data key under KEK version `version` of its category: unwrap and wrap, the
    /// fields it seals untouched (they bind their own KEK version).
    pub fn rewrap_to(
        &self,
        category: &str,
        record_id: &str,
        wrapped: &WrappedDek,
        version: u32,
    ) -> Result<WrappedDek, VaultError> {
        let old = self.kek(category, wrapped.kek_version)?;
        let new = self.kek(category, version)?;
        let bytes = new
            .rewrap_from(&old, category, record_id, &wrapped.bytes)
            .map_err(|_| VaultError::DekIntegrity(record_id.to_owned()))?;
        Ok(WrappedDek {
            kek_version: version,
            bytes,
        })
    }

    /// Blind-index token of a normalised term: `HMAC-SHA256(index_key, category‖field‖term)`.
    /// Lookups compare tokens, so indexed values are found without decrypting anything.
    pub fn blind_token(&self, category: &str, field: &str, term: &str) -> Vec<u8> {
        field_mac(&self.index_key, category, field, term)
            .as_ref()
            .to_vec()
    }

    /// The grantee `department`'s pseudonym key: its pseudonyms of values (16 lowercase base32
    /// characters) are stable for that department and unlinkable across departments. One key
    /// makes many pseudonyms (a page derives it once).
    pub fn pseudonyms(&self, department: &str) -> Pseudonyms {
        Pseudonyms::new(&self.index_key, department)
    }

    /// The newest signing key signs; all are published for verification.
    pub fn signing_keys(&self) -> &[SigningKey] {
        &self.signing
    }

    /// The vault with the hub CA of `pki_dir` loaded (if it holds a CA key), so client
    /// certificates are signed here.
    pub fn with_client_ca(mut self, pki_dir: &std::path::Path) -> Result<Vault, CaError> {
        self.client_ca = ClientCa::load(pki_dir)?;
        Ok(self)
    }

    /// The hub CA, if this hub has its key.
    pub fn client_ca(&self) -> Option<&ClientCa> {
        self.client_ca.as_ref()
    }

    /// The ledger's checkpoint and receipt key (it signs; its bytes stay here).
    pub fn ledger_key(&self) -> Option<Arc<Ed25519Key>> {
        self.ledger_key.clone()
    }

    /// The ledger key a rotation replaced, while the keyring still holds it.
    pub fn previous_ledger_key(&self) -> Option<Arc<Ed25519Key>> {
        self.previous_ledger_key.clone()
    }

    pub fn current_signing_key(&self) -> Option<&SigningKey> {
        self.signing.last()
    }
}

impl RecordKey {
    pub fn kek_version(&self) -> u32 {
        self.kek_version
    }

    /// Seal fields of this record (new values on create or update).
    pub fn seal_fields(&self, fields: &[(&str, &[u8])]) -> Result<Vec<SealedField>, VaultError> {
        let mut out = Vec::with_capacity(fields.len());
        for (field, plain) in fields {
            let sealed = self
                .dek
                .seal_field(field, self.kek_version, plain)
                .map_err(VaultError::Crypto)?;
            out.push(SealedField {
                field: (*field).to_owned(),
                kek_version: self.kek_version,
                sealed,
            });
        }
        Ok(out)
    }

    /// Open one stored field; fails closed on any tampering or relocation.
    pub fn open_field(&self, field: &SealedField) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.dek
            .open_field(&field.field, field.kek_version, &field.sealed)
            .map_err(|_| VaultError::FieldIntegrity {
                field: field.field.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::storage::KekState;
    use keyring::AgeFileStore;

    fn states(active: u32, retired: &[u32]) -> Vec<(String, u32, KekState)> {
        let mut out = vec![("person".to_owned(), active, KekState::Active)];
        out.extend(
            retired
                .iter()
                .map(|v| ("person".to_owned(), *v, KekState::Retired)),
        );
        out
    }

    /// A rotation: the new version wraps new keys only once the states say so; a rewrap moves a
    /// data key without touching its fields; a retired version unwraps nothing although its key
    /// bytes are still in the keyring.
    #[test]
    fn rotation_rewrap_and_retirement() {
        let dir = tempfile::tempdir().unwrap();
        let store = AgeFileStore::in_dir(dir.path());
        store.create_identity().unwrap();
        store
            .save(&KeyringFile::generate(["person"], 1).unwrap())
            .unwrap();
        let vault = Vault::unlock(&store).unwrap();
        let (wrapped, sealed) = vault
            .seal_new_record("person", "r1", &[("name", b"x".as_slice())])
            .unwrap();
        assert_eq!(wrapped.kek_version, 1);

        let v2 = vault.add_kek_version(&store, "person", 2).unwrap();
        assert_eq!(v2, 2);
        assert_eq!(
            vault.active_kek_version("person").unwrap(),
            1,
            "a new version wraps nothing until the database makes it active"
        );
        vault.apply_states(&states(2, &[])).unwrap();
        assert_eq!(vault.active_kek_version("person").unwrap(), 2);

        let moved = vault.rewrap_to("person", "r1", &wrapped, 2).unwrap();
        assert_eq!(moved.kek_version, 2);
        let key = vault.record_key("person", "r1", &moved).unwrap();
        assert_eq!(&key.open_field(&sealed[0]).unwrap()[..], b"x");

        vault.apply_states(&states(2, &[1])).unwrap();
        assert!(matches!(
            vault.record_key("person", "r1", &wrapped),
            Err(VaultError::RetiredKeyVersion { version: 1, .. })
        ));
        assert!(vault.record_key("person", "r1", &moved).is_ok());

        // Another process's vault learns version 2 from the keyring file.
        let other = Vault::from_keyring(&KeyringFile::generate(["person"], 1).unwrap()).unwrap();
        assert!(other.apply_states(&states(2, &[])).is_err());
        other.learn_versions(&store.load().unwrap()).unwrap();
        other.apply_states(&states(2, &[1])).unwrap();
        assert_eq!(other.active_kek_version("person").unwrap(), 2);
    }
}
