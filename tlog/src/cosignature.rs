//! C2SP tlog-cosignature v1 (Ed25519) witness cosignatures of checkpoints (pure, no I/O).
//! Invariant: a cosignature line is accepted only if its name and key hash are the verifier's
//! (key hash over algorithm byte 0x04, never the 0x01 of plain signed notes), its blob is exactly
//! key hash ‖ 8-byte big-endian timestamp ‖ 64-byte signature, the timestamp is at most
//! 2^63 − 1, and the signature verifies over `cosignature/v1\ntime <timestamp>\n` ‖ the exact
//! checkpoint text (with its final newline, without signature lines).
//!
//! Spec: <https://c2sp.org/tlog-cosignature> (v1.0.0, "Ed25519 signed message").

use std::collections::HashSet;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, UnparsedPublicKey};

use crate::hex::encode as hex;
use crate::key::Ed25519Key;
use crate::note::{
    MAX_SIGNATURES, NoteError, SIG_PREFIX, Verifier, check_text, is_valid_name, key_hash_for,
    parse_vkey, vkey_for,
};

/// Algorithm byte of Ed25519 cosignature/v1 keys in key hashes and verifier keys.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// Key hash (4) ‖ timestamp (8) ‖ Ed25519 signature (64).
const BLOB_LEN: usize = 4 + 8 + 64;
/// The spec: the timestamp MUST NOT exceed 2^63 − 1.
const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Why a note does not carry the cosignatures asked for.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CosignError {
    /// The log's own signature is missing, invalid, or the note is malformed.
    #[error("the log's signature does not verify: {0}")]
    Log(NoteError),
    /// A line carries a listed witness's name and key hash but does not verify.
    #[error("the cosignature of witness `{witness}` does not verify: {error}")]
    BadCosignature { witness: String, error: NoteError },
    #[error(
        "{got} valid witness cosignature(s), {required} required, of the witnesses {}",
        named.join(", ")
    )]
    TooFewWitnesses {
        required: usize,
        got: usize,
        /// The names of the witness keys that were expected (as given).
        named: Vec<String>,
    },
}

/// Key hash of a cosignature/v1 key: the first 4 bytes of
/// SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key).
pub fn cosigner_key_hash(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    key_hash_for(ALG_COSIGNATURE_V1, name, public_key)
}

/// The message a cosignature/v1 signs: `cosignature/v1\ntime <decimal>\n` ‖ checkpoint text.
pub fn cosigned_message(checkpoint_text: &str, timestamp_secs: u64) -> String {
    format!("cosignature/v1\ntime {timestamp_secs}\n{checkpoint_text}")
}

fn vkey_string(name: &str, public_key: &[u8; 32]) -> String {
    vkey_for(ALG_COSIGNATURE_V1, name, public_key)
}

/// A witness's signing key with its cosigner name (a department system holds one).
pub struct Cosigner {
    name: String,
    key: Ed25519Key,
    key_hash: [u8; 4],
}

impl fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cosigner")
            .field("name", &self.name)
            .field("key_hash", &hex(&self.key_hash))
            .finish_non_exhaustive()
    }
}

impl Cosigner {
    /// The cosigner `name` (a schema-less URL is recommended) signing with `key`. Use a key
    /// for nothing else: cosignature/v1 does not commit to the name.
    pub fn new(name: &str, key: Ed25519Key) -> Result<Cosigner, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::InvalidKeyName);
        }
        let key_hash = cosigner_key_hash(name, key.public_key());
        Ok(Cosigner {
            name: name.to_owned(),
            key,
            key_hash,
        })
    }

    /// As `new`, from a PKCS#8 v2 Ed25519 key.
    pub fn from_pkcs8(name: &str, pkcs8: &[u8]) -> Result<Cosigner, NoteError> {
        let key = Ed25519Key::from_pkcs8(pkcs8).map_err(|_| NoteError::InvalidSigningKey)?;
        Cosigner::new(name, key)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public_key(&self) -> [u8; 32] {
        *self.key.public_key()
    }

    pub fn key_hash(&self) -> [u8; 4] {
        self.key_hash
    }

    /// The verifier key `<name>+<hex key hash>+<base64(0x04 ‖ public key)>`.
    pub fn vkey(&self) -> String {
        vkey_string(&self.name, self.key.public_key())
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            public_key: *self.key.public_key(),
            key_hash: self.key_hash,
        }
    }

    /// Cosign `checkpoint_text` (the note body: ends with "\n", no signature lines) as of
    /// `timestamp_secs` (POSIX seconds, at most 2^63 − 1). Returns one signature line
    /// `— <name> <base64(key hash ‖ timestamp ‖ signature)>`, without a trailing newline.
    pub fn cosign(&self, checkpoint_text: &str, timestamp_secs: u64) -> Result<String, NoteError> {
        check_text(checkpoint_text)?;
        if timestamp_secs > MAX_TIMESTAMP {
            return Err(NoteError::MalformedNote("timestamp exceeds 2^63 - 1"));
        }
        let signature = self
            .key
            .sign(cosigned_message(checkpoint_text, timestamp_secs).as_bytes());
        let mut blob = Vec::with_capacity(BLOB_LEN);
        blob.extend_from_slice(&self.key_hash);
        blob.extend_from_slice(&timestamp_secs.to_be_bytes());
        blob.extend_from_slice(&signature);
        Ok(format!("{SIG_PREFIX}{} {}", self.name, B64.encode(blob)))
    }
}

/// A signature line taken apart (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureLine<'a> {
    pub name: &'a str,
    pub key_hash: [u8; 4],
    pub timestamp: u64,
    pub signature: [u8; 64],
}

impl<'a> CosignatureLine<'a> {
    /// Parse `— <name> <base64>` (no newline) whose blob has the cosignature/v1 length.
    pub fn parse(line: &'a str) -> Result<CosignatureLine<'a>, NoteError> {
        let (name, b64) = split_line(line)?;
        let blob = B64
            .decode(b64)
            .map_err(|_| NoteError::MalformedNote("signature is not valid base64"))?;
        let (key_hash, rest) = blob
            .split_first_chunk::<4>()
            .ok_or(NoteError::MalformedNote("cosignature is not 76 bytes"))?;
        let (timestamp, signature) = rest
            .split_first_chunk::<8>()
            .ok_or(NoteError::MalformedNote("cosignature is not 76 bytes"))?;
        let signature: [u8; 64] = signature
            .try_into()
            .map_err(|_| NoteError::MalformedNote("cosignature is not 76 bytes"))?;
        let timestamp = u64::from_be_bytes(*timestamp);
        if timestamp > MAX_TIMESTAMP {
            return Err(NoteError::MalformedNote(
                "cosignature timestamp exceeds 2^63 - 1",
            ));
        }
        Ok(CosignatureLine {
            name,
            key_hash: *key_hash,
            timestamp,
            signature,
        })
    }
}

/// `— <name> <base64>` → (name, base64), with the name checked.
fn split_line(line: &str) -> Result<(&str, &str), NoteError> {
    let rest = line
        .strip_prefix(SIG_PREFIX)
        .ok_or(NoteError::MalformedNote(
            "signature line does not start with an em dash",
        ))?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or(NoteError::MalformedNote("signature line has no signature"))?;
    if !is_valid_name(name) {
        return Err(NoteError::MalformedNote(
            "invalid key name in a signature line",
        ));
    }
    if b64.is_empty() || b64.contains(['\n', ' ']) {
        return Err(NoteError::MalformedNote("signature is not valid base64"));
    }
    Ok((name, b64))
}

/// A witness's public key with its cosigner name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    public_key: [u8; 32],
    key_hash: [u8; 4],
}

impl CosignatureVerifier {
    /// Parse `<name>+<8 hex>+<base64(0x04 ‖ public key)>`. Plain signed-note keys (0x01) are
    /// refused: a witness key is registered as what it is.
    pub fn from_vkey(vkey: &str) -> Result<CosignatureVerifier, NoteError> {
        let (name, hash, public_key) = parse_vkey(vkey, ALG_COSIGNATURE_V1)?;
        let verifier = CosignatureVerifier::from_public_key(name, public_key)?;
        if verifier.key_hash != hash {
            return Err(NoteError::VerifierKeyHashMismatch);
        }
        Ok(verifier)
    }

    /// A verifier for a raw Ed25519 public key under `name`.
    pub fn from_public_key(
        name: &str,
        public_key: [u8; 32],
    ) -> Result<CosignatureVerifier, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::InvalidKeyName);
        }
        Ok(CosignatureVerifier {
            name: name.to_owned(),
            key_hash: cosigner_key_hash(name, &public_key),
            public_key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    pub fn key_hash(&self) -> [u8; 4] {
        self.key_hash
    }

    /// The canonical verifier key string (lowercase hex).
    pub fn vkey(&self) -> String {
        vkey_string(&self.name, &self.public_key)
    }

    /// Is `line` (well formed or not) one that claims to be this key's?
    fn claims(&self, line: &str) -> bool {
        CosignatureLine::parse(line)
            .is_ok_and(|l| l.name == self.name && l.key_hash == self.key_hash)
    }

    /// Verify one signature line (without newline) of this key over `checkpoint_text`;
    /// returns its timestamp. A line of another name or key hash is `NotSigned`.
    pub fn verify_line(&self, checkpoint_text: &str, line: &str) -> Result<u64, NoteError> {
        check_text(checkpoint_text)?;
        let parsed = CosignatureLine::parse(line)?;
        if parsed.name != self.name || parsed.key_hash != self.key_hash {
            return Err(NoteError::NotSigned(self.name.clone()));
        }
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(
                cosigned_message(checkpoint_text, parsed.timestamp).as_bytes(),
                &parsed.signature,
            )
            .map_err(|_| NoteError::BadSignature)?;
        Ok(parsed.timestamp)
    }
}

/// The signature lines of a signed note (each without its newline), in order.
fn signature_lines(note: &str) -> Result<(&str, Vec<&str>), NoteError> {
    let (text, sigs) = note
        .rfind("\n\n")
        .and_then(|i| Some((note.get(..=i)?, note.get(i + 2..)?)))
        .ok_or(NoteError::MalformedNote(
            "no blank line before the signatures",
        ))?;
    let sigs = sigs.strip_suffix('\n').ok_or(NoteError::MalformedNote(
        "signature block must end with a newline",
    ))?;
    if sigs.is_empty() {
        return Err(NoteError::MalformedNote("no signature lines"));
    }
    let lines: Vec<&str> = sigs.split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures);
    }
    Ok((text, lines))
}

/// Check that `note` is signed by the log (`log`) and cosigned by at least `required` distinct
/// keys among `witnesses`; returns the checkpoint text. Lines of keys not listed are ignored; a
/// line with a listed witness's name and key hash that does not verify is an error.
pub fn verify_witnesses(
    note: &str,
    log: &Verifier,
    witnesses: &[CosignatureVerifier],
    required: usize,
) -> Result<String, CosignError> {
    let text = log.verify_note(note).map_err(CosignError::Log)?;
    let (_, lines) = signature_lines(note).map_err(CosignError::Log)?;
    let mut seen: HashSet<([u8; 32], &str)> = HashSet::new();
    for witness in witnesses {
        for line in lines.iter().filter(|l| witness.claims(l)) {
            witness
                .verify_line(text, line)
                .map_err(|error| CosignError::BadCosignature {
                    witness: witness.name.clone(),
                    error,
                })?;
            seen.insert((witness.public_key, witness.name.as_str()));
        }
    }
    if seen.len() < required {
        return Err(CosignError::TooFewWitnesses {
            required,
            got: seen.len(),
            named: witnesses.iter().map(|w| w.vkey()).collect(),
        });
    }
    Ok(text.to_owned())
}

/// Append signature lines (each without newline) to a signed note, after its existing lines
/// (so the log's own line stays first). Lines already present are not added twice.
pub fn add_signature_lines<S: AsRef<str>>(note: &str, lines: &[S]) -> Result<String, NoteError> {
    let (_, existing) = signature_lines(note)?;
    let mut out = note.to_owned();
    let mut count = existing.len();
    let mut present: HashSet<&str> = existing.into_iter().collect();
    for line in lines {
        let line = line.as_ref();
        split_line(line)?;
        if !present.insert(line) {
            continue;
        }
        count += 1;
        if count > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use ring::digest::{SHA256, digest};
    use ring::rand::SystemRandom;
    use ring::signature::Ed25519KeyPair;

    use super::*;
    use crate::note::{Checkpoint, NoteSigner};

    fn pkcs8() -> Vec<u8> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    fn hex_decode(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn cosigner(name: &str) -> Cosigner {
        Cosigner::from_pkcs8(name, &pkcs8()).unwrap()
    }

    const LOG: &str = "gridhub/test";
    const TS: u64 = 1_679_315_147;

    fn text() -> String {
        Checkpoint {
            origin: LOG.to_owned(),
            size: 20_852_163,
            root: [7; 32],
        }
        .body()
    }

    fn blob_of(line: &str) -> Vec<u8> {
        B64.decode(line.rsplit(' ').next().unwrap()).unwrap()
    }

    fn with_blob(line: &str, blob: &[u8]) -> String {
        let (head, _) = line.rsplit_once(' ').unwrap();
        format!("{head} {}", B64.encode(blob))
    }

    #[test]
    fn a_cosignature_round_trips_with_its_timestamp() {
        let c = cosigner("witness.example/w1");
        let line = c.cosign(&text(), TS).unwrap();
        assert!(line.starts_with("\u{2014} witness.example/w1 "));
        assert!(!line.ends_with('\n'));
        assert_eq!(blob_of(&line).len(), 76);
        let v = CosignatureVerifier::from_vkey(&c.vkey()).unwrap();
        assert_eq!(v, c.verifier());
        assert_eq!(v.vkey(), c.vkey());
        assert_eq!(v.verify_line(&text(), &line), Ok(TS));
        assert_eq!(v.name(), "witness.example/w1");
    }

    #[test]
    fn the_signed_message_is_the_spec_layout() {
        let c = cosigner("w");
        let line = c.cosign(&text(), TS).unwrap();
        let blob = blob_of(&line);
        assert_eq!(blob[..4], c.key_hash());
        assert_eq!(blob[4..12], TS.to_be_bytes());
        let msg = format!("cosignature/v1\ntime 1679315147\n{}", text());
        assert_eq!(cosigned_message(&text(), TS), msg);
        UnparsedPublicKey::new(&ED25519, &c.public_key())
            .verify(msg.as_bytes(), &blob[12..])
            .unwrap();
        // The key hash is over 0x04, not the 0x01 of plain notes.
        let mut input = b"w\n\x04".to_vec();
        input.extend_from_slice(&c.public_key());
        assert_eq!(c.key_hash(), digest(&SHA256, &input).as_ref()[..4]);
        assert_ne!(
            c.key_hash(),
            crate::note::key_hash("w", &c.public_key()),
            "alg 0x01 and 0x04 key hashes differ"
        );
    }

    #[test]
    fn every_flipped_bit_of_the_text_is_refused() {
        let c = cosigner("w");
        let v = c.verifier();
        let text = text();
        let line = c.cosign(&text, TS).unwrap();
        for bit in 0..text.len() * 8 {
            let mut bytes = text.clone().into_bytes();
            bytes[bit / 8] ^= 1 << (bit % 8);
            let Ok(tampered) = String::from_utf8(bytes) else {
                continue;
            };
            assert!(v.verify_line(&tampered, &line).is_err(), "bit {bit}");
        }
        assert!(v.verify_line(&format!("{text}ext\n"), &line).is_err());
        assert!(v.verify_line(text.trim_end(), &line).is_err());
    }

    #[test]
    fn every_flipped_bit_of_the_blob_is_refused() {
        let c = cosigner("w");
        let v = c.verifier();
        let line = c.cosign(&text(), TS).unwrap();
        let blob = blob_of(&line);
        for bit in 0..blob.len() * 8 {
            let mut bad = blob.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let got = v.verify_line(&text(), &with_blob(&line, &bad));
            match bit {
                0..32 => assert_eq!(got, Err(NoteError::NotSigned("w".to_owned())), "{bit}"),
                // The top bit of the timestamp (bit 7 of its first byte) makes it exceed 2^63 - 1.
                39 => assert!(matches!(got, Err(NoteError::MalformedNote(_))), "{bit}"),
                _ => assert_eq!(got, Err(NoteError::BadSignature), "bit {bit}"),
            }
        }
        // Truncated, extended, empty.
        for bad in [&blob[..75], &[blob.as_slice(), &[0]].concat(), &[][..]] {
            assert!(matches!(
                v.verify_line(&text(), &with_blob(&line, bad)),
                Err(NoteError::MalformedNote(_))
            ));
        }
    }

    #[test]
    fn another_timestamp_with_the_same_signature_is_refused() {
        let c = cosigner("w");
        let line = c.cosign(&text(), TS).unwrap();
        let mut blob = blob_of(&line);
        blob[4..12].copy_from_slice(&(TS + 1).to_be_bytes());
        assert_eq!(
            c.verifier().verify_line(&text(), &with_blob(&line, &blob)),
            Err(NoteError::BadSignature)
        );
        assert!(c.cosign(&text(), 1 << 63).is_err());
        assert!(c.cosign(&text(), (1 << 63) - 1).is_ok());
    }

    #[test]
    fn a_wrong_name_or_key_is_refused() {
        let (c, other) = (cosigner("w"), cosigner("w"));
        let line = c.cosign(&text(), TS).unwrap();
        // Same key, another name: neither the name nor the key hash is ours.
        let renamed = line.replacen(" w ", " x ", 1);
        assert_eq!(
            c.verifier().verify_line(&text(), &renamed),
            Err(NoteError::NotSigned("w".to_owned()))
        );
        let x = CosignatureVerifier::from_public_key("x", c.public_key()).unwrap();
        assert_eq!(
            x.verify_line(&text(), &renamed),
            Err(NoteError::NotSigned("x".to_owned()))
        );
        // Another key under the same name.
        assert_eq!(
            other.verifier().verify_line(&text(), &line),
            Err(NoteError::NotSigned("w".to_owned()))
        );
    }

    #[test]
    fn a_line_with_the_alg_0x01_key_hash_is_not_a_cosignature() {
        let c = cosigner("w");
        let line = c.cosign(&text(), TS).unwrap();
        let mut blob = blob_of(&line);
        blob[..4].copy_from_slice(&crate::note::key_hash("w", &c.public_key()));
        assert_eq!(
            c.verifier().verify_line(&text(), &with_blob(&line, &blob)),
            Err(NoteError::NotSigned("w".to_owned()))
        );
        // And a plain signed-note key is not accepted as a witness key.
        let plain = NoteSigner::from_pkcs8("w", &pkcs8()).unwrap();
        assert_eq!(
            CosignatureVerifier::from_vkey(&plain.verifier_key()),
            Err(NoteError::UnsupportedAlgorithm(0x01))
        );
    }

    #[test]
    fn malformed_lines_and_vkeys_are_refused() {
        let c = cosigner("w");
        let v = c.verifier();
        let line = c.cosign(&text(), TS).unwrap();
        for bad in [
            line.replacen('\u{2014}', "-", 1),
            line.replacen("\u{2014} ", "", 1),
            line.replacen(' ', "  ", 1),
            format!("{line}\n"),
            format!("{line} "),
            "\u{2014} w".to_owned(),
            "\u{2014} w ".to_owned(),
            line.replace('=', "!"),
        ] {
            assert!(
                matches!(
                    v.verify_line(&text(), &bad),
                    Err(NoteError::MalformedNote(_) | NoteError::NotSigned(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            v.verify_line("no newline", &line),
            Err(NoteError::TextNotTerminated)
        );
        let vkey = c.vkey();
        assert_eq!(
            CosignatureVerifier::from_vkey(&vkey.replacen("w+", "x+", 1)),
            Err(NoteError::VerifierKeyHashMismatch)
        );
        assert!(CosignatureVerifier::from_vkey("w+00000000").is_err());
        assert!(CosignatureVerifier::from_vkey(&vkey[..vkey.len() - 4]).is_err());
        assert_eq!(
            Cosigner::from_pkcs8("a b", &pkcs8()).unwrap_err(),
            NoteError::InvalidKeyName
        );
    }

    // transparency-dev/formats note/note_cosigv1_test.go (TestCoSigV1NewVerifier): a native
    // cosignature/v1 vkey of a running witness; its key hash is over 0x04.
    #[test]
    fn a_published_witness_vkey_parses_with_its_key_hash() {
        let vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
        let v = CosignatureVerifier::from_vkey(vkey).unwrap();
        assert_eq!(v.name(), "remora.n621.de");
        assert_eq!(hex(&v.key_hash()), "da77ade7");
        assert_eq!(v.vkey(), vkey);
    }

    // The example of c2sp.org/tlog-cosignature: its line's timestamp is the `time 1679315147`
    // of the spec's signed-message example; and transparency-dev/formats'
    // TestCosignatureTimestamp vector (1727964367).
    #[test]
    fn the_spec_examples_timestamps_parse() {
        let spec = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==";
        let parsed = CosignatureLine::parse(spec).unwrap();
        assert_eq!(parsed.name, "witness.example.com/w1");
        assert_eq!(parsed.timestamp, 1_679_315_147);
        assert_eq!(hex(&parsed.key_hash), "8d66cf3f");
        let go = "\u{2014} w ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==";
        assert_eq!(CosignatureLine::parse(go).unwrap().timestamp, 1_727_964_367);
        // A plain note signature (68 bytes) is not a cosignature.
        let plain = "\u{2014} w eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=";
        assert!(CosignatureLine::parse(plain).is_err());
    }

    /// RFC 8032 §7.1 test 1 key: Ed25519 is deterministic, so the line is fixed; the test in
    /// `tests/api/witnesses.rs` checks lines with ed25519-dalek, an independent implementation.
    #[test]
    fn a_fixed_key_gives_a_fixed_line() {
        let seed = hex_decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let public = hex_decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let mut der = vec![
            0x30, 0x53, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&seed);
        der.extend_from_slice(&[0xa1, 0x23, 0x03, 0x21, 0x00]);
        der.extend_from_slice(&public);
        let c = Cosigner::from_pkcs8("witness.example/w1", &der).unwrap();
        assert_eq!(c.public_key()[..], public[..]);
        let line = c.cosign(&text(), TS).unwrap();
        assert_eq!(line, c.cosign(&text(), TS).unwrap());
        assert_eq!(c.verifier().verify_line(&text(), &line), Ok(TS));
    }

    fn signed(log: &NoteSigner, witnesses: &[&Cosigner]) -> String {
        let note = log.sign_note(&text()).unwrap();
        let lines: Vec<String> = witnesses
            .iter()
            .map(|w| w.cosign(&text(), TS).unwrap())
            .collect();
        add_signature_lines(&note, &lines).unwrap()
    }

    #[test]
    fn k_of_n_witnesses_are_counted() {
        let log = NoteSigner::from_pkcs8(LOG, &pkcs8()).unwrap();
        let (a, b, c) = (cosigner("a"), cosigner("b"), cosigner("c"));
        let all = [a.verifier(), b.verifier(), c.verifier()];
        let note = signed(&log, &[&a, &b]);
        assert!(note.starts_with(&log.sign_note(&text()).unwrap()));
        assert_eq!(note.lines().count(), 3 + 1 + 3);
        assert_eq!(
            verify_witnesses(&note, &log.verifier(), &all, 2),
            Ok(text())
        );
        assert_eq!(
            verify_witnesses(&note, &log.verifier(), &all, 3),
            Err(CosignError::TooFewWitnesses {
                required: 3,
                got: 2,
                named: all.iter().map(CosignatureVerifier::vkey).collect()
            })
        );
        // The same witness listed twice, or its line twice, counts once.
        let twice = [a.verifier(), a.verifier()];
        let doubled = format!("{note}{}\n", a.cosign(&text(), TS + 5).unwrap());
        assert!(matches!(
            verify_witnesses(&doubled, &log.verifier(), &twice, 2),
            Err(CosignError::TooFewWitnesses { got: 1, .. })
        ));
        // Unknown keys' lines are ignored.
        let stranger = cosigner("stranger");
        let noted = add_signature_lines(&note, &[stranger.cosign("x\n", 1).unwrap()]).unwrap();
        assert_eq!(
            verify_witnesses(&noted, &log.verifier(), &all, 2),
            Ok(text())
        );
        // The log's line must verify.
        let other_log = NoteSigner::from_pkcs8(LOG, &pkcs8()).unwrap();
        assert!(matches!(
            verify_witnesses(&note, &other_log.verifier(), &all, 0),
            Err(CosignError::Log(_))
        ));
    }

    #[test]
    fn a_forged_line_of_a_listed_witness_is_an_error() {
        let log = NoteSigner::from_pkcs8(LOG, &pkcs8()).unwrap();
        let (a, b) = (cosigner("a"), cosigner("b"));
        let note = log.sign_note(&text()).unwrap();
        let line = a.cosign(&text(), TS).unwrap();
        let mut blob = blob_of(&line);
        blob[40] ^= 1;
        let forged = add_signature_lines(
            &note,
            &[with_blob(&line, &blob), b.cosign(&text(), TS).unwrap()],
        )
        .unwrap();
        assert!(matches!(
            verify_witnesses(&forged, &log.verifier(), &[a.verifier(), b.verifier()], 1),
            Err(CosignError::BadCosignature { witness, error: NoteError::BadSignature }) if witness == "a"
        ));
        // A cosignature over another checkpoint does not count for this one.
        let elsewhere =
            add_signature_lines(&note, &[a.cosign("o\n1\nAA==\n", TS).unwrap()]).unwrap();
        assert!(matches!(
            verify_witnesses(&elsewhere, &log.verifier(), &[a.verifier()], 1),
            Err(CosignError::BadCosignature { .. })
        ));
    }

    #[test]
    fn add_signature_lines_keeps_the_log_line_first_and_checks_lines() {
        let log = NoteSigner::from_pkcs8(LOG, &pkcs8()).unwrap();
        let note = log.sign_note(&text()).unwrap();
        let a = cosigner("a");
        let line = a.cosign(&text(), TS).unwrap();
        let out = add_signature_lines(&note, &[line.clone(), line.clone()]).unwrap();
        assert_eq!(out, format!("{note}{line}\n"));
        assert_eq!(
            add_signature_lines(&out, std::slice::from_ref(&line)).unwrap(),
            out
        );
        assert_eq!(log.verifier().verify_note(&out), Ok(text().as_str()));
        assert!(add_signature_lines(&note, &["junk"]).is_err());
        assert!(add_signature_lines(&note, &[format!("{line}\n\u{2014} x y")]).is_err());
        assert!(add_signature_lines(&text(), &[line]).is_err());
        assert_eq!(
            add_signature_lines::<&str>(&note, &[]).unwrap(),
            note,
            "nothing to add"
        );
    }
}
