//! Envelope encryption of record fields. Each record has its own data key (DEK, AES-256-GCM),
//! wrapped by its category's KEK. Both layers bind their context as associated data:
//! the wrapped DEK binds (category, record id, KEK version); a field ciphertext binds
//! (record id, field name, KEK version). Ciphertext moved to another record or field, or
//! relabelled with another key version, fails to open instead of decrypting as something else.
//! Stored layout of both: `nonce (12) ‖ ciphertext ‖ tag (16)`; nonces are random.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// Length of the AES-GCM tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("ciphertext failed authentication")]
    Forged,
    #[error("ciphertext is too short")]
    Truncated,
    #[error("random number generator failed")]
    Random,
    #[error("plaintext is too long to seal")]
    TooLong,
}

/// An unwrapped per-record data key, ready to seal and open that record's fields.
/// Invariant: only built by `Kek::new_dek` / `Kek::unwrap_dek`, for one record.
pub struct Dek {
    key: LessSafeKey,
}

impl std::fmt::Debug for Dek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dek(..)")
    }
}

/// One version of a category's key-encryption key.
pub struct Kek {
    pub(crate) version: u32,
    key: LessSafeKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek(v{})", self.version)
    }
}

fn aes_key(bytes: &[u8; 32]) -> LessSafeKey {
    // INVARIANT: AES-256 takes exactly 32 bytes, which the array type guarantees, so
    // `UnboundKey::new` cannot fail here.
    #[allow(clippy::expect_used)]
    let unbound = UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte AES-256 key");
    LessSafeKey::new(unbound)
}

fn dek_aad(category: &str, record_id: &str, kek_version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + category.len() + record_id.len());
    aad.extend_from_slice(b"gridhub/dek/v1\0");
    aad.extend_from_slice(category.as_bytes());
    aad.push(0);
    aad.extend_from_slice(record_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&kek_version.to_be_bytes());
    aad
}

fn field_aad(record_id: &str, field: &str, kek_version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + field.len() + record_id.len());
    aad.extend_from_slice(b"gridhub/field/v1\0");
    aad.extend_from_slice(record_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(field.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&kek_version.to_be_bytes());
    aad
}

/// Seal `plaintext` with `nonce`, producing `nonce ‖ ciphertext ‖ tag`.
fn seal(
    key: &LessSafeKey,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let body = out.get_mut(NONCE_LEN..).ok_or(EnvelopeError::TooLong)?;
    // Sealing only fails beyond AES-GCM's 64 GiB message limit.
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
        .map_err(|_| EnvelopeError::TooLong)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(EnvelopeError::Truncated);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| EnvelopeError::Truncated)?;
    let mut buf = body.to_vec();
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| EnvelopeError::Forged)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Randomness for one record operation (nonces, and the DEK of a new record), fetched from
/// the OS in a single call. Invariant: every byte is handed out at most once.
pub struct NoncePool {
    bytes: Zeroizing<Vec<u8>>,
    next: usize,
}

impl NoncePool {
    /// Room for `count` nonces and, when `with_key`, one 32-byte key.
    pub fn new(rng: &SystemRandom, count: usize) -> Result<NoncePool, EnvelopeError> {
        Self::sized(rng, count * NONCE_LEN)
    }

    pub fn with_key(rng: &SystemRandom, count: usize) -> Result<NoncePool, EnvelopeError> {
        Self::sized(rng, 32 + count * NONCE_LEN)
    }

    fn sized(rng: &SystemRandom, len: usize) -> Result<NoncePool, EnvelopeError> {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        rng.fill(&mut bytes).map_err(|_| EnvelopeError::Random)?;
        Ok(NoncePool { bytes, next: 0 })
    }

    fn take_key(&mut self) -> Result<Zeroizing<[u8; 32]>, EnvelopeError> {
        let chunk = self
            .bytes
            .get(self.next..self.next + 32)
            .ok_or(EnvelopeError::Random)?;
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(chunk);
        self.next += 32;
        Ok(key)
    }

    fn take(&mut self) -> Result<[u8; NONCE_LEN], EnvelopeError> {
        let chunk = self
            .bytes
            .get(self.next..self.next + NONCE_LEN)
            .ok_or(EnvelopeError::Random)?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(chunk);
        self.next += NONCE_LEN;
        Ok(nonce)
    }
}

impl Kek {
    pub(crate) fn new(version: u32, key: &[u8; 32]) -> Kek {
        Kek {
            version,
            key: aes_key(key),
        }
    }

    /// Generate a DEK for a new record and wrap it under this KEK.
    /// `nonces` must come from `NoncePool::with_key`.
    pub fn new_dek(
        &self,
        nonces: &mut NoncePool,
        category: &str,
        record_id: &str,
    ) -> Result<(Dek, Vec<u8>), EnvelopeError> {
        let raw = nonces.take_key()?;
        let aad = dek_aad(category, record_id, self.version);
        let wrapped = seal(&self.key, nonces.take()?, &aad, raw.as_ref())?;
        Ok((Dek { key: aes_key(&raw) }, wrapped))
    }

    /// Unwrap a record's DEK; fails if it was wrapped for another record, category or version.
    pub fn unwrap_dek(
        &self,
        category: &str,
        record_id: &str,
        wrapped: &[u8],
    ) -> Result<Dek, EnvelopeError> {
        let raw = self.unwrap_raw(category, record_id, wrapped)?;
        Ok(Dek { key: aes_key(&raw) })
    }

    fn unwrap_raw(
        &self,
        category: &str,
        record_id: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, EnvelopeError> {
        let aad = dek_aad(category, record_id, self.version);
        let plain = Zeroizing::new(open(&self.key, &aad, wrapped)?);
        let mut raw = Zeroizing::new([0u8; 32]);
        if plain.len() != raw.len() {
            return Err(EnvelopeError::Forged);
        }
        raw.copy_from_slice(&plain);
        Ok(raw)
    }

    /// Key rotation: take a DEK wrapped under `old` and wrap it under `self`.
    pub fn rewrap_from(
        &self,
        old: &Kek,
        nonces: &mut NoncePool,
        category: &str,
        record_id: &str,
        wrapped: &[u8],
    ) -> Result<Vec<u8>, EnvelopeError> {
        let raw = old.unwrap_raw(category, record_id, wrapped)?;
        let aad = dek_aad(category, record_id, self.version);
        seal(&self.key, nonces.take()?, &aad, raw.as_ref())
    }
}

impl Dek {
    pub fn seal_field(
        &self,
        nonces: &mut NoncePool,
        record_id: &str,
        field: &str,
        kek_version: u32,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EnvelopeError> {
        let aad = field_aad(record_id, field, kek_version);
        seal(&self.key, nonces.take()?, &aad, plaintext)
    }

    pub fn open_field(
        &self,
        record_id: &str,
        field: &str,
        kek_version: u32,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let aad = field_aad(record_id, field, kek_version);
        open(&self.key, &aad, sealed).map(Zeroizing::new)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    fn kek(v: u32) -> Kek {
        Kek::new(v, &[7u8; 32])
    }

    #[test]
    fn field_roundtrips() {
        let rng = SystemRandom::new();
        let mut n = NoncePool::with_key(&rng, 2).unwrap();
        let (dek, wrapped) = kek(1).new_dek(&mut n, "person", "r1").unwrap();
        let sealed = dek
            .seal_field(&mut n, "r1", "name", 1, "张三".as_bytes())
            .unwrap();
        let dek2 = kek(1).unwrap_dek("person", "r1", &wrapped).unwrap();
        assert_eq!(
            dek2.open_field("r1", "name", 1, &sealed)
                .unwrap()
                .as_slice(),
            "张三".as_bytes()
        );
    }

    #[test]
    fn ciphertext_moved_to_another_field_record_or_version_fails() {
        let rng = SystemRandom::new();
        let mut n = NoncePool::with_key(&rng, 2).unwrap();
        let (dek, wrapped) = kek(1).new_dek(&mut n, "person", "r1").unwrap();
        let sealed = dek.seal_field(&mut n, "r1", "name", 1, b"x").unwrap();
        assert_eq!(
            dek.open_field("r1", "phone", 1, &sealed).unwrap_err(),
            EnvelopeError::Forged
        );
        assert_eq!(
            dek.open_field("r2", "name", 1, &sealed).unwrap_err(),
            EnvelopeError::Forged
        );
        assert_eq!(
            dek.open_field("r1", "name", 2, &sealed).unwrap_err(),
            EnvelopeError::Forged
        );
        assert!(kek(1).unwrap_dek("person", "r2", &wrapped).is_err());
        assert!(kek(1).unwrap_dek("place", "r1", &wrapped).is_err());
        assert!(kek(2).unwrap_dek("person", "r1", &wrapped).is_err());
    }

    proptest! {
        #[test]
        fn any_flipped_bit_fails(pos in 0usize..64, bit in 0u8..8, text in ".{1,40}") {
            let rng = SystemRandom::new();
            let mut n = NoncePool::with_key(&rng, 2).unwrap();
            let (dek, _) = kek(1).new_dek(&mut n, "person", "r").unwrap();
            let mut sealed = dek.seal_field(&mut n, "r", "f", 1, text.as_bytes()).unwrap();
            let i = pos % sealed.len();
            sealed[i] ^= 1 << bit;
            prop_assert!(dek.open_field("r", "f", 1, &sealed).is_err());
        }
    }
}
