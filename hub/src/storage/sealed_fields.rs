//! How a record's sealed fields are stored: all of them in one column of the record's row
//! (`records.sealed_fields`), each still its own AES-256-GCM ciphertext under the record's DEK
//! with its own associated data (record, field, KEK version). One column instead of one row
//! per field makes a disclosure page one index walk over `records` instead of a join per field
//! (see docs/PERFORMANCE.md). Removing a field or erasing the record rewrites the column without
//! its ciphertext (on SQLite, `secure_delete` zeroes the old cell).
//!
//! Format, version 1 (all integers big-endian):
//!
//! ```text
//! 0x01
//! then per field, in byte order of the names, each name at most once:
//!   name length (u16) ‖ name (UTF-8) ‖ KEK version (u32) ‖ ciphertext length (u32) ‖ ciphertext
//! ```
//!
//! SQL migration 0012 of each backend builds the same bytes from the old `record_fields` rows.
//! A record without sealed fields (or erased) stores NULL.

use thiserror::Error;

use crate::vault::SealedField;

const VERSION_1: u8 = 1;

/// The stored bytes do not parse as a set of sealed fields.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("stored sealed fields are malformed: {0}")]
pub struct Malformed(&'static str);

/// One field of a stored set, borrowed from the stored bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRef<'a> {
    pub field: &'a str,
    pub kek_version: u32,
    pub sealed: &'a [u8],
}

impl FieldRef<'_> {
    pub fn to_owned_field(self) -> SealedField {
        SealedField {
            field: self.field.to_owned(),
            kek_version: self.kek_version,
            sealed: self.sealed.to_vec(),
        }
    }
}

/// The stored form of `fields`, or None when there are none. Names are sorted; a name given
/// twice keeps its last ciphertext.
pub fn encode(fields: &[SealedField]) -> Result<Option<Vec<u8>>, Malformed> {
    let mut sorted: Vec<&SealedField> = fields.iter().collect();
    // Stable sort, then keep the last of equal names.
    sorted.sort_by(|a, b| a.field.as_bytes().cmp(b.field.as_bytes()));
    sorted.reverse();
    sorted.dedup_by(|a, b| a.field == b.field);
    sorted.reverse();
    if sorted.is_empty() {
        return Ok(None);
    }
    let size = 1 + sorted
        .iter()
        .map(|f| 10 + f.field.len() + f.sealed.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.push(VERSION_1);
    for f in sorted {
        let name_len = u16::try_from(f.field.len()).map_err(|_| Malformed("name too long"))?;
        let sealed_len =
            u32::try_from(f.sealed.len()).map_err(|_| Malformed("ciphertext too long"))?;
        out.extend_from_slice(&name_len.to_be_bytes());
        out.extend_from_slice(f.field.as_bytes());
        out.extend_from_slice(&f.kek_version.to_be_bytes());
        out.extend_from_slice(&sealed_len.to_be_bytes());
        out.extend_from_slice(&f.sealed);
    }
    Ok(Some(out))
}

/// The fields of stored bytes, in name order (None: no fields).
pub fn decode(bytes: Option<&[u8]>) -> Result<Vec<FieldRef<'_>>, Malformed> {
    let Some(bytes) = bytes else {
        return Ok(Vec::new());
    };
    let (&version, mut rest) = bytes.split_first().ok_or(Malformed("empty"))?;
    if version != VERSION_1 {
        return Err(Malformed("unknown version"));
    }
    let mut fields: Vec<FieldRef<'_>> = Vec::with_capacity(8);
    while !rest.is_empty() {
        let name_len = usize::from(u16::from_be_bytes(take_array(&mut rest)?));
        let name = take(&mut rest, name_len)?;
        let field = std::str::from_utf8(name).map_err(|_| Malformed("name is not UTF-8"))?;
        let kek_version = u32::from_be_bytes(take_array(&mut rest)?);
        let sealed_len = u32::from_be_bytes(take_array(&mut rest)?);
        let sealed_len = usize::try_from(sealed_len).map_err(|_| Malformed("length"))?;
        let sealed = take(&mut rest, sealed_len)?;
        if fields
            .last()
            .is_some_and(|prev| prev.field.as_bytes() >= field.as_bytes())
        {
            return Err(Malformed("names out of order or repeated"));
        }
        fields.push(FieldRef {
            field,
            kek_version,
            sealed,
        });
    }
    if fields.is_empty() {
        return Err(Malformed("no fields"));
    }
    Ok(fields)
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], Malformed> {
    if rest.len() < n {
        return Err(Malformed("truncated"));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn take_array<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], Malformed> {
    let head = take(rest, N)?;
    head.try_into().map_err(|_| Malformed("truncated"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn field(name: &str, version: u32, sealed: &[u8]) -> SealedField {
        SealedField {
            field: name.to_owned(),
            kek_version: version,
            sealed: sealed.to_vec(),
        }
    }

    #[test]
    fn round_trips_in_name_order() {
        let fields = [field("phone", 2, b"\x0c"), field("name", 1, b"\x0a\x0b")];
        let bytes = encode(&fields).unwrap().unwrap();
        let back: Vec<SealedField> = decode(Some(&bytes))
            .unwrap()
            .into_iter()
            .map(FieldRef::to_owned_field)
            .collect();
        assert_eq!(back, [fields[1].clone(), fields[0].clone()]);
    }

    /// The bytes migration 0012 builds in SQL for the same rows (see the migration test).
    #[test]
    fn has_the_documented_layout() {
        let bytes = encode(&[field("ab", 7, b"\xff\x00")]).unwrap().unwrap();
        assert_eq!(
            bytes,
            [1, 0, 2, b'a', b'b', 0, 0, 0, 7, 0, 0, 0, 2, 0xff, 0x00]
        );
    }

    #[test]
    fn no_fields_is_none_and_a_repeated_name_keeps_the_last() {
        assert_eq!(encode(&[]).unwrap(), None);
        assert!(decode(None).unwrap().is_empty());
        let bytes = encode(&[field("a", 1, b"old"), field("a", 1, b"new")])
            .unwrap()
            .unwrap();
        let back = decode(Some(&bytes)).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].sealed, b"new");
    }

    #[test]
    fn rejects_damaged_bytes() {
        let good = encode(&[field("a", 1, b"xyz"), field("b", 1, b"q")])
            .unwrap()
            .unwrap();
        // Every strict prefix is truncated or empty, but for the one that ends where the first
        // field does (version, name length, "a", KEK version, ciphertext length, "xyz").
        let first_field = 1 + 2 + 1 + 4 + 4 + 3;
        for cut in 0..good.len() {
            let decoded = decode(Some(&good[..cut]));
            if cut == first_field {
                assert_eq!(decoded.unwrap().len(), 1);
            } else {
                assert!(decoded.is_err(), "prefix of {cut} bytes");
            }
        }
        let mut version = good.clone();
        version[0] = 2;
        assert_eq!(decode(Some(&version)), Err(Malformed("unknown version")));
        // "b" before "a".
        let swapped = [&[1u8][..], &good[first_field..], &good[1..first_field]].concat();
        assert_eq!(
            decode(Some(&swapped)),
            Err(Malformed("names out of order or repeated"))
        );
    }
}
