//! The keyring: every long-lived secret of a hub (per-category versioned KEKs, the blind-index
//! key, the pseudonym root key, the token-signing keys), stored on disk only as an age file.
//! Invariant: no type here implements a `Debug` or `Serialize` that could print key bytes,
//! except `KeyringFile`, which is only ever serialised straight into the age encryptor.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// File names inside the data directory.
pub const SEALED_KEYRING: &str = "keyring.age";
pub const KEYRING_IDENTITY: &str = "keyring.identity";

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("keyring file `{0}` is missing")]
    Missing(PathBuf),
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot unseal the keyring: {0}")]
    Unseal(String),
    #[error("keyring is malformed: {0}")]
    Malformed(String),
    #[error("cannot generate key material")]
    Random,
}

/// The plaintext keyring as serialised inside the age file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyringFile {
    pub format: u32,
    /// Category → KEK versions; the highest non-retired version wraps new DEKs.
    pub keks: BTreeMap<String, Vec<KekEntry>>,
    pub index_key: String,
    pub pseudonym_key: String,
    pub signing_keys: Vec<SigningKeyEntry>,
    /// Signs ledger checkpoints and receipts (Ed25519); separate from the token keys.
    #[serde(default)]
    pub ledger_key: Option<SigningKeyEntry>,
    /// The ledger key a rotation replaced, kept until the rotation's transition statement is
    /// in the database (`keys::ledger_key`): a rotation interrupted between saving this file
    /// and that commit completes at the next start. Dropped once the rotation completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_ledger_key: Option<SigningKeyEntry>,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct KekEntry {
    pub version: u32,
    /// base64 of 32 random bytes.
    pub key: String,
    pub created_at: i64,
    #[serde(default)]
    pub retired: bool,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyEntry {
    pub kid: String,
    /// base64 of an Ed25519 PKCS#8 document.
    pub pkcs8: String,
    pub created_at: i64,
}

impl std::fmt::Debug for KeyringFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringFile")
            .field("format", &self.format)
            .field("categories", &self.keks.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

pub(crate) fn random_key(rng: &SystemRandom) -> Result<Zeroizing<[u8; 32]>, KeyringError> {
    let mut key = Zeroizing::new([0u8; 32]);
    rng.fill(key.as_mut()).map_err(|_| KeyringError::Random)?;
    Ok(key)
}

pub(crate) fn new_signing_key(
    rng: &SystemRandom,
    now: i64,
) -> Result<SigningKeyEntry, KeyringError> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(rng).map_err(|_| KeyringError::Random)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyringError::Random)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, pair.public_key().as_ref());
    let kid = crate::hex::encode(digest.as_ref().get(..8).unwrap_or_default());
    Ok(SigningKeyEntry {
        kid,
        pkcs8: B64.encode(pkcs8.as_ref()),
        created_at: now,
    })
}

impl KeyringFile {
    /// A fresh keyring with a version-1 KEK for each of `categories`.
    pub fn generate<'a>(
        categories: impl IntoIterator<Item = &'a str>,
        now: i64,
    ) -> Result<KeyringFile, KeyringError> {
        let rng = SystemRandom::new();
        let mut keks = BTreeMap::new();
        for category in categories {
            keks.insert(
                category.to_owned(),
                vec![KekEntry {
                    version: 1,
                    key: B64.encode(&random_key(&rng)?[..]),
                    created_at: now,
                    retired: false,
                }],
            );
        }
        Ok(KeyringFile {
            format: 1,
            keks,
            index_key: B64.encode(&random_key(&rng)?[..]),
            pseudonym_key: B64.encode(&random_key(&rng)?[..]),
            signing_keys: vec![new_signing_key(&rng, now)?],
            ledger_key: Some(new_signing_key(&rng, now)?),
            previous_ledger_key: None,
        })
    }

    /// A new ledger key; the current one becomes `previous_ledger_key` (replacing any left
    /// there by an earlier rotation, which completed: `keys::ledger_key`). Returns the new one.
    pub fn rotate_ledger_key(&mut self, now: i64) -> Result<SigningKeyEntry, KeyringError> {
        let current = self
            .ledger_key
            .take()
            .ok_or_else(|| KeyringError::Malformed("no ledger key to rotate".to_owned()))?;
        let next = new_signing_key(&SystemRandom::new(), now)?;
        self.previous_ledger_key = Some(current);
        self.ledger_key = Some(next.clone());
        Ok(next)
    }

    /// Add a new KEK version for `category` (or its first one); returns the new version.
    pub fn add_kek_version(&mut self, category: &str, now: i64) -> Result<u32, KeyringError> {
        let rng = SystemRandom::new();
        let versions = self.keks.entry(category.to_owned()).or_default();
        let next = versions.iter().map(|k| k.version).max().unwrap_or(0) + 1;
        versions.push(KekEntry {
            version: next,
            key: B64.encode(&random_key(&rng)?[..]),
            created_at: now,
            retired: false,
        });
        Ok(next)
    }

    /// Rotate the token-signing key: a new key signs from the next start; earlier keys stay
    /// published (JWKS) and verifying while tokens they signed may live. A key is dropped
    /// once its successor is older than `keep_ms` (the longest token lifetime plus margin).
    /// Returns the new key id and the ids dropped.
    pub fn rotate_signing_key(
        &mut self,
        now: i64,
        keep_ms: i64,
    ) -> Result<(String, Vec<String>), KeyringError> {
        let entry = new_signing_key(&SystemRandom::new(), now)?;
        let kid = entry.kid.clone();
        self.signing_keys.push(entry);
        let successors_created: Vec<i64> = self
            .signing_keys
            .iter()
            .skip(1)
            .map(|k| k.created_at)
            .collect();
        let mut dropped = Vec::new();
        let mut keep = Vec::with_capacity(self.signing_keys.len());
        for (i, key) in self.signing_keys.drain(..).enumerate() {
            let superseded_at = successors_created.get(i).copied();
            match superseded_at {
                Some(at) if now - at > keep_ms => dropped.push(key.kid),
                _ => keep.push(key),
            }
        }
        self.signing_keys = keep;
        Ok((kid, dropped))
    }
}

/// Decode a base64 32-byte key from the keyring.
pub(crate) fn decode_key(what: &str, b64: &str) -> Result<Zeroizing<[u8; 32]>, KeyringError> {
    let bytes = Zeroizing::new(
        B64.decode(b64)
            .map_err(|_| KeyringError::Malformed(format!("{what} is not base64")))?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(KeyringError::Malformed(format!("{what} is not 32 bytes")));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

pub(crate) fn decode_b64(what: &str, b64: &str) -> Result<Zeroizing<Vec<u8>>, KeyringError> {
    B64.decode(b64)
        .map(Zeroizing::new)
        .map_err(|_| KeyringError::Malformed(format!("{what} is not base64")))
}

/// Where a keyring is stored and how it is unsealed. A KMS/HSM provider (PKCS#11, Vault
/// transit) would implement the same two operations.
pub trait KeyringStore {
    fn load(&self) -> Result<KeyringFile, KeyringError>;
    fn save(&self, keyring: &KeyringFile) -> Result<(), KeyringError>;
}

/// An age file sealed to an X25519 identity kept beside it (mode 0600). For production, keep the
/// identity elsewhere (a mounted secret) and point `identity` at it.
pub struct AgeFileStore {
    pub sealed: PathBuf,
    pub identity: PathBuf,
}

impl AgeFileStore {
    pub fn in_dir(dir: &Path) -> AgeFileStore {
        AgeFileStore {
            sealed: dir.join(SEALED_KEYRING),
            identity: dir.join(KEYRING_IDENTITY),
        }
    }

    /// Create a new identity file; refuses to overwrite one.
    pub fn create_identity(&self) -> Result<(), KeyringError> {
        let identity = age::x25519::Identity::generate();
        let text = Zeroizing::new(format!(
            "# gridhub keyring identity: whoever holds this file can unseal {SEALED_KEYRING}\n{}\n",
            identity.to_string().expose_secret()
        ));
        write_private(&self.identity, text.as_bytes())
    }

    fn identity(&self) -> Result<age::x25519::Identity, KeyringError> {
        let text = Zeroizing::new(read(&self.identity)?);
        let text = String::from_utf8(text.to_vec())
            .map_err(|_| KeyringError::Unseal("identity file is not UTF-8".to_owned()))?;
        let line = text
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .ok_or_else(|| {
                KeyringError::Unseal("identity file holds no age identity".to_owned())
            })?;
        age::x25519::Identity::from_str(line.trim()).map_err(|_| {
            KeyringError::Unseal("identity file holds no valid age identity".to_owned())
        })
    }
}

impl KeyringStore for AgeFileStore {
    fn load(&self) -> Result<KeyringFile, KeyringError> {
        let identity = self.identity()?;
        let sealed = read(&self.sealed)?;
        let plain = Zeroizing::new(
            age::decrypt(&identity, &sealed).map_err(|e| KeyringError::Unseal(e.to_string()))?,
        );
        serde_json::from_slice(&plain).map_err(|e| KeyringError::Malformed(e.to_string()))
    }

    fn save(&self, keyring: &KeyringFile) -> Result<(), KeyringError> {
        let recipient = self.identity()?.to_public();
        let plain = Zeroizing::new(
            serde_json::to_vec(keyring).map_err(|e| KeyringError::Malformed(e.to_string()))?,
        );
        // `age::encrypt` calls `finish()` on the stream writer, so the output is complete.
        let sealed =
            age::encrypt(&recipient, &plain).map_err(|e| KeyringError::Unseal(e.to_string()))?;
        // Write beside, then rename: a crash never leaves a half-written keyring.
        let tmp = self.sealed.with_extension("age.tmp");
        write_private(&tmp, &sealed)?;
        std::fs::rename(&tmp, &self.sealed).map_err(|source| KeyringError::Io {
            path: self.sealed.clone(),
            source,
        })?;
        // The rename itself is durable only once the directory is.
        match self.sealed.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
            _ => Ok(()),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, KeyringError> {
    if !path.exists() {
        return Err(KeyringError::Missing(path.to_path_buf()));
    }
    std::fs::read(path).map_err(|source| KeyringError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Write a file anyone may read (certificates, the config), fsynced.
pub(crate) fn write_public(path: &Path, bytes: &[u8]) -> Result<(), KeyringError> {
    let io = |source| KeyringError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::create(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Make a directory's entries durable (the files created in it, renames into it): without
/// this a crash or a failing disk right after `init` can leave names pointing at nothing.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), KeyringError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| KeyringError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// Write a file readable by its owner only, fsynced.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyringError> {
    let io = |source| KeyringError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keyring_roundtrips_through_age_and_file_is_not_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let store = AgeFileStore::in_dir(dir.path());
        store.create_identity().unwrap();
        let ring = KeyringFile::generate(["person", "place"], 1).unwrap();
        let kek = ring.keks["person"][0].key.clone();
        store.save(&ring).unwrap();
        let sealed = std::fs::read(dir.path().join(SEALED_KEYRING)).unwrap();
        assert!(!sealed.windows(kek.len()).any(|w| w == kek.as_bytes()));
        let back = store.load().unwrap();
        assert_eq!(back.keks["person"][0].key, kek);
    }

    #[test]
    fn rotating_the_signing_key_keeps_recent_keys_and_drops_old_ones() {
        let mut ring = KeyringFile::generate(["person"], 0).unwrap();
        let first = ring.signing_keys[0].kid.clone();
        let (second, dropped) = ring.rotate_signing_key(1_000, 10_000).unwrap();
        assert!(
            dropped.is_empty(),
            "the first key verifies tokens it signed"
        );
        assert_eq!(ring.signing_keys.len(), 2);
        let (third, dropped) = ring.rotate_signing_key(20_000, 10_000).unwrap();
        assert_eq!(
            dropped,
            vec![first],
            "superseded 19 s ago, longer than kept"
        );
        let kids: Vec<_> = ring.signing_keys.iter().map(|k| k.kid.clone()).collect();
        assert_eq!(kids, vec![second, third]);
    }

    #[test]
    fn wrong_identity_cannot_unseal() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let sa = AgeFileStore::in_dir(a.path());
        let sb = AgeFileStore::in_dir(b.path());
        sa.create_identity().unwrap();
        sb.create_identity().unwrap();
        sa.save(&KeyringFile::generate(["person"], 1).unwrap())
            .unwrap();
        std::fs::copy(a.path().join(SEALED_KEYRING), b.path().join(SEALED_KEYRING)).unwrap();
        assert!(matches!(sb.load(), Err(KeyringError::Unseal(_))));
    }
}
