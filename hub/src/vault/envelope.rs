//! Envelope encryption of record fields. Each record has its own data key (DEK, AES-256-GCM),
//! wrapped by its category's KEK. Both layers bind their context as associated data:
//! the wrapped DEK binds (category, record id, KEK version); a field ciphertext binds
//! (record id, field name, KEK version). Ciphertext moved to another record or field, or
//! relabelled with another key version, fails to open instead of decrypting as something else.
//! Stored layout of both: `nonce (12) ‖ ciphertext ‖ tag (16)`; nonces are random.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::random;

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
    /// The record this key belongs to; every field it seals or opens is bound to it.
    record: RecordBinding,
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

/// Associated data up to this size is assembled on the stack (record ids and field names of
/// any sane length fit); longer input falls back to the heap.
const AAD_STACK: usize = 64;

/// A record id in the form the associated data carries it: `0x00 ‖ 16 UUID bytes` for UUIDs
/// (every id the hub issues), else `0x01 ‖ length ‖ bytes`. Computed once per record.
#[derive(Clone)]
pub enum RecordBinding {
    Uuid([u8; 17]),
    Other(Vec<u8>),
}

impl RecordBinding {
    pub fn new(record_id: &str) -> RecordBinding {
        match uuid::Uuid::try_parse(record_id) {
            Ok(u) => {
                let mut b = [0u8; 17];
                for (dst, src) in b.iter_mut().skip(1).zip(u.as_bytes()) {
                    *dst = *src;
                }
                RecordBinding::Uuid(b)
            }
            Err(_) => {
                let bytes = record_id.as_bytes();
                let len = u8::try_from(bytes.len()).unwrap_or(u8::MAX);
                let mut b = Vec::with_capacity(2 + bytes.len());
                b.push(1);
                b.push(len);
                b.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
                RecordBinding::Other(b)
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            RecordBinding::Uuid(b) => b,
            RecordBinding::Other(b) => b,
        }
    }
}

/// Run `f` on the associated data binding a ciphertext to its context, encoded compactly (GHASH
/// reads it on every operation, so every 16 bytes count):
/// `0x01 ‖ kind ‖ kek_version (u32 BE) ‖ record binding ‖ name`, where `name` (the field, or the
/// category for a wrapped DEK) runs to the end. Every part before `name` has a fixed or
/// self-delimiting length, so the encoding is injective.
fn with_aad<R>(
    kind: u8,
    record: &RecordBinding,
    name: &str,
    version: u32,
    f: impl FnOnce(&[u8]) -> R,
) -> R {
    let version = version.to_be_bytes();
    let parts: [&[u8]; 4] = [&[0x01, kind], &version, record.as_bytes(), name.as_bytes()];
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut stack = [0u8; AAD_STACK];
    let mut heap = Vec::new();
    let buf: &mut [u8] = match stack.get_mut(..total) {
        Some(slice) => slice,
        None => {
            heap.resize(total, 0);
            &mut heap
        }
    };
    for (dst, src) in buf.iter_mut().zip(parts.iter().flat_map(|p| p.iter())) {
        *dst = *src;
    }
    f(buf)
}

/// AAD of a wrapped DEK: (record, category, KEK version).
fn with_dek_aad<R>(
    category: &str,
    record: &RecordBinding,
    kek_version: u32,
    f: impl FnOnce(&[u8]) -> R,
) -> R {
    with_aad(b'D', record, category, kek_version, f)
}

/// AAD of a field ciphertext: (record, field name, KEK version).
fn with_field_aad<R>(
    record: &RecordBinding,
    field: &str,
    kek_version: u32,
    f: impl FnOnce(&[u8]) -> R,
) -> R {
    with_aad(b'F', record, field, kek_version, f)
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

fn fresh_nonce() -> Result<[u8; NONCE_LEN], EnvelopeError> {
    let mut nonce = [0u8; NONCE_LEN];
    random::fill(&mut nonce).map_err(|_| EnvelopeError::Random)?;
    Ok(nonce)
}

impl Kek {
    pub(crate) fn new(version: u32, key: &[u8; 32]) -> Kek {
        Kek {
            version,
            key: aes_key(key),
        }
    }

    /// Generate a DEK for a new record and wrap it under this KEK.
    pub fn new_dek(
        &self,
        category: &str,
        record_id: &str,
    ) -> Result<(Dek, Vec<u8>), EnvelopeError> {
        let record = RecordBinding::new(record_id);
        let mut raw = Zeroizing::new([0u8; 32]);
        random::fill(raw.as_mut()).map_err(|_| EnvelopeError::Random)?;
        let nonce = fresh_nonce()?;
        let wrapped = with_dek_aad(category, &record, self.version, |aad| {
            seal(&self.key, nonce, aad, raw.as_ref())
        })?;
        Ok((
            Dek {
                key: aes_key(&raw),
                record,
            },
            wrapped,
        ))
    }

    /// Unwrap a record's DEK; fails if it was wrapped for another record, category or version.
    pub fn unwrap_dek(
        &self,
        category: &str,
        record_id: &str,
        wrapped: &[u8],
    ) -> Result<Dek, EnvelopeError> {
        let record = RecordBinding::new(record_id);
        let raw = self.unwrap_raw(category, &record, wrapped)?;
        Ok(Dek {
            key: aes_key(&raw),
            record,
        })
    }

    fn unwrap_raw(
        &self,
        category: &str,
        record: &RecordBinding,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, EnvelopeError> {
        let plain = Zeroizing::new(with_dek_aad(category, record, self.version, |aad| {
            open(&self.key, aad, wrapped)
        })?);
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
        category: &str,
        record_id: &str,
        wrapped: &[u8],
    ) -> Result<Vec<u8>, EnvelopeError> {
        let record = RecordBinding::new(record_id);
        let raw = old.unwrap_raw(category, &record, wrapped)?;
        let nonce = fresh_nonce()?;
        with_dek_aad(category, &record, self.version, |aad| {
            seal(&self.key, nonce, aad, raw.as_ref())
        })
    }
}

impl Dek {
    /// Seal a field of this DEK's record.
    pub fn seal_field(
        &self,
        field: &str,
        kek_version: u32,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EnvelopeError> {
        let nonce = fresh_nonce()?;
        with_field_aad(&self.record, field, kek_version, |aad| {
            seal(&self.key, nonce, aad, plaintext)
        })
    }

    /// Open a field of this DEK's record.
    pub fn open_field(
        &self,
        field: &str,
        kek_version: u32,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        FIELDS_OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        with_field_aad(&self.record, field, kek_version, |aad| {
            open(&self.key, aad, sealed)
        })
        .map(Zeroizing::new)
    }
}

/// Fields opened (decryptions attempted) by this process since it started.
static FIELDS_OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many sealed fields this process has opened so far: what the statistics bench reads to
/// show that counting decrypts nothing (and what metrics may export).
pub fn fields_opened() -> u64 {
    FIELDS_OPENED.load(std::sync::atomic::Ordering::Relaxed)
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
        let (dek, wrapped) = kek(1).new_dek("person", "r1").unwrap();
        let sealed = dek.seal_field("name", 1, "张三".as_bytes()).unwrap();
        let dek2 = kek(1).unwrap_dek("person", "r1", &wrapped).unwrap();
        assert_eq!(
            dek2.open_field("name", 1, &sealed).unwrap().as_slice(),
            "张三".as_bytes()
        );
    }

    #[test]
    fn ciphertext_moved_to_another_field_record_or_version_fails() {
        let (dek, wrapped) = kek(1).new_dek("person", "r1").unwrap();
        let sealed = dek.seal_field("name", 1, b"x").unwrap();
        assert_eq!(
            dek.open_field("phone", 1, &sealed).unwrap_err(),
            EnvelopeError::Forged
        );
        assert_eq!(
            dek.open_field("name", 2, &sealed).unwrap_err(),
            EnvelopeError::Forged
        );
        // The DEK of another record does not open it, nor does this DEK bound to another record.
        let (other, _) = kek(1).new_dek("person", "r2").unwrap();
        assert_eq!(
            other.open_field("name", 1, &sealed).unwrap_err(),
            EnvelopeError::Forged
        );
        let rebound = kek(1).unwrap_dek("person", "r1", &wrapped).unwrap();
        assert!(rebound.open_field("name", 1, &sealed).is_ok());
        assert!(kek(1).unwrap_dek("person", "r2", &wrapped).is_err());
        assert!(kek(1).unwrap_dek("place", "r1", &wrapped).is_err());
        assert!(kek(2).unwrap_dek("person", "r1", &wrapped).is_err());
    }

    proptest! {
        #[test]
        fn any_flipped_bit_fails(pos in 0usize..64, bit in 0u8..8, text in ".{1,40}") {
            let (dek, _) = kek(1).new_dek("person", "r").unwrap();
            let mut sealed = dek.seal_field("f", 1, text.as_bytes()).unwrap();
            let i = pos % sealed.len();
            sealed[i] ^= 1 << bit;
            prop_assert!(dek.open_field("f", 1, &sealed).is_err());
        }
    }
}
