//! C2SP signed notes (Ed25519), tlog checkpoints and Gridhub receipt messages (pure, no I/O).
//! Invariant: a note is accepted only if it is well formed per C2SP signed-note and carries a
//! valid signature of the verifier's key over exactly the text that is handed back.

use crate::hex::encode as hex;
use crate::key::Ed25519Key;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::digest::{SHA256, digest};
use ring::signature::{ED25519, UnparsedPublicKey};

/// Algorithm byte of Ed25519 keys in key hashes and verifier keys.
const ALG_ED25519: u8 = 0x01;
/// Every signature line starts with an em dash (U+2014) and a space.
pub(crate) const SIG_PREFIX: &str = "\u{2014} ";
/// Parsing stops at this many signature lines (as golang.org/x/mod/sumdb/note does).
pub(crate) const MAX_SIGNATURES: usize = 100;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("invalid key name: it must be non-empty, without whitespace or '+'")]
    InvalidKeyName,
    #[error("the signing key is not an ed25519 pkcs#8 v2 document")]
    InvalidSigningKey,
    #[error("malformed verifier key")]
    MalformedVerifierKey,
    #[error("verifier key hash does not match its name and public key")]
    VerifierKeyHashMismatch,
    #[error("unsupported key algorithm {0:#04x}")]
    UnsupportedAlgorithm(u8),
    #[error("note text must end with a newline")]
    TextNotTerminated,
    #[error("note text contains a control character other than newline")]
    InvalidText,
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),
    #[error("note has more than {MAX_SIGNATURES} signature lines")]
    TooManySignatures,
    #[error("note carries no signature by key {0}")]
    NotSigned(String),
    #[error("invalid signature")]
    BadSignature,
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
}

/// Key name rule of C2SP signed-note: non-empty, no whitespace, no '+'.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// Note text rule: ends with "\n" and has no control character other than "\n".
pub(crate) fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::TextNotTerminated);
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::InvalidText);
    }
    Ok(())
}

fn to_array<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    bytes.try_into().ok()
}

/// Key hash of an Ed25519 key: the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key).
pub fn key_hash(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    key_hash_for(ALG_ED25519, name, public_key)
}

/// Key hash of a key of algorithm `alg`: the first 4 bytes of
/// SHA-256(name ‖ "\n" ‖ alg ‖ public key).
pub(crate) fn key_hash_for(alg: u8, name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut input = Vec::with_capacity(name.len() + 2 + 32);
    input.extend_from_slice(name.as_bytes());
    input.push(b'\n');
    input.push(alg);
    input.extend_from_slice(public_key);
    let mut out = [0u8; 4];
    for (o, b) in out.iter_mut().zip(digest(&SHA256, &input).as_ref()) {
        *o = *b;
    }
    out
}

/// Verifier key string: `<name>+<hex key hash>+<base64(alg ‖ public key)>`.
pub(crate) fn vkey_for(alg: u8, name: &str, public_key: &[u8; 32]) -> String {
    let mut key = Vec::with_capacity(33);
    key.push(alg);
    key.extend_from_slice(public_key);
    format!(
        "{name}+{}+{}",
        hex(&key_hash_for(alg, name, public_key)),
        B64.encode(key)
    )
}

fn vkey_string(name: &str, public_key: &[u8; 32]) -> String {
    vkey_for(ALG_ED25519, name, public_key)
}

/// Parse a verifier key string `<name>+<8 hex>+<base64(alg ‖ public key)>` of algorithm `alg`:
/// its name, the key hash it states (for the caller to compare with the computed one) and the
/// public key.
pub(crate) fn parse_vkey(vkey: &str, alg: u8) -> Result<(&str, [u8; 4], [u8; 32]), NoteError> {
    // The name has no '+', but the base64 key may: split at the first two only.
    let (name, rest) = vkey
        .split_once('+')
        .ok_or(NoteError::MalformedVerifierKey)?;
    let (hash_hex, key_b64) = rest
        .split_once('+')
        .ok_or(NoteError::MalformedVerifierKey)?;
    if !is_valid_name(name) {
        return Err(NoteError::InvalidKeyName);
    }
    if hash_hex.len() != 8 || !hash_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NoteError::MalformedVerifierKey);
    }
    let hash = u32::from_str_radix(hash_hex, 16)
        .map_err(|_| NoteError::MalformedVerifierKey)?
        .to_be_bytes();
    let key = B64
        .decode(key_b64)
        .map_err(|_| NoteError::MalformedVerifierKey)?;
    let (&found, public_key) = key.split_first().ok_or(NoteError::MalformedVerifierKey)?;
    if found != alg {
        return Err(NoteError::UnsupportedAlgorithm(found));
    }
    let public_key: [u8; 32] = to_array(public_key).ok_or(NoteError::MalformedVerifierKey)?;
    Ok((name, hash, public_key))
}

/// An Ed25519 signing key (held by the vault) with its C2SP key name.
pub struct NoteSigner {
    name: String,
    key: Arc<Ed25519Key>,
    public_key: [u8; 32],
    key_hash: [u8; 4],
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_hash", &hex(&self.key_hash))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// The signer named `name` (the log's origin) signing with the vault's `key`.
    pub fn new(name: &str, key: Arc<Ed25519Key>) -> Result<NoteSigner, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::InvalidKeyName);
        }
        let public_key = *key.public_key();
        Ok(NoteSigner {
            name: name.to_owned(),
            key,
            public_key,
            key_hash: key_hash(name, &public_key),
        })
    }

    /// As `new`, from a PKCS#8 v2 Ed25519 key (as `Ed25519KeyPair::generate_pkcs8` makes).
    pub fn from_pkcs8(name: &str, pkcs8: &[u8]) -> Result<NoteSigner, NoteError> {
        let key = Ed25519Key::from_pkcs8(pkcs8).map_err(|_| NoteError::InvalidSigningKey)?;
        NoteSigner::new(name, Arc::new(key))
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

    /// The C2SP verifier key string of this key.
    pub fn verifier_key(&self) -> String {
        vkey_string(&self.name, &self.public_key)
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            public_key: self.public_key,
            key_hash: self.key_hash,
        }
    }

    /// Sign `text` (which must end with "\n" and hold no other control character); returns
    /// the signed note: text, blank line, one signature line.
    pub fn sign_note(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let signature = self.key.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(4 + 64);
        blob.extend_from_slice(&self.key_hash);
        blob.extend_from_slice(&signature);
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            B64.encode(blob)
        ))
    }

    /// Sign `text` with several keys: the text, a blank line, one signature line per signer
    /// in the order given (a ledger key transition is signed by the old key and the new one).
    pub fn sign_note_by_all(signers: &[&NoteSigner], text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let mut note = format!("{text}\n");
        for signer in signers {
            let signature = signer.key.sign(text.as_bytes());
            let mut blob = Vec::with_capacity(4 + 64);
            blob.extend_from_slice(&signer.key_hash);
            blob.extend_from_slice(&signature);
            note.push_str(&format!(
                "{SIG_PREFIX}{} {}\n",
                signer.name,
                B64.encode(blob)
            ));
        }
        Ok(note)
    }

    /// A plain Ed25519 signature of `msg` (receipts).
    pub fn sign_raw(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg)
    }
}

/// An Ed25519 public key with its C2SP key name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    public_key: [u8; 32],
    key_hash: [u8; 4],
}

impl Verifier {
    /// Parse a verifier key string `<name>+<8 hex>+<base64(0x01 ‖ public key)>`.
    pub fn from_vkey(vkey: &str) -> Result<Verifier, NoteError> {
        let (name, hash, public_key) = parse_vkey(vkey, ALG_ED25519)?;
        Verifier::from_public_key(name, public_key).and_then(|v| {
            if v.key_hash == hash {
                Ok(v)
            } else {
                Err(NoteError::VerifierKeyHashMismatch)
            }
        })
    }

    /// A verifier for a raw Ed25519 public key under `name`.
    pub fn from_public_key(name: &str, public_key: [u8; 32]) -> Result<Verifier, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::InvalidKeyName);
        }
        Ok(Verifier {
            name: name.to_owned(),
            key_hash: key_hash(name, &public_key),
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

    /// The C2SP verifier key string of this key.
    pub fn verifier_key(&self) -> String {
        vkey_string(&self.name, &self.public_key)
    }

    /// Verify that `note` carries a valid signature by this key; returns the note text.
    /// Lines of other keys (another name, or our name with another key hash) are ignored, but
    /// every line must be well formed, a line of ours must verify, and there must be one.
    pub fn verify_note<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        // The signature block follows the last blank line; the text keeps its final "\n".
        let (text, sigs) = note
            .rfind("\n\n")
            .and_then(|i| Some((note.get(..=i)?, note.get(i + 2..)?)))
            .ok_or(NoteError::MalformedNote(
                "no blank line before the signatures",
            ))?;
        check_text(text)?;
        let sigs = sigs.strip_suffix('\n').ok_or(NoteError::MalformedNote(
            "signature block must end with a newline",
        ))?;
        if sigs.is_empty() {
            return Err(NoteError::MalformedNote("no signature lines"));
        }
        let mut verified = false;
        for (count, line) in sigs.split('\n').enumerate() {
            if count >= MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
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
            let blob = B64
                .decode(b64)
                .map_err(|_| NoteError::MalformedNote("signature is not valid base64"))?;
            let (hash, signature) = blob
                .split_at_checked(4)
                .filter(|(_, s)| !s.is_empty())
                .ok_or(NoteError::MalformedNote("signature is too short"))?;
            if name == self.name && hash == self.key_hash {
                self.verify_raw(text.as_bytes(), signature)?;
                verified = true;
            }
        }
        if verified {
            Ok(text)
        } else {
            Err(NoteError::NotSigned(self.name.clone()))
        }
    }

    /// Verify a plain Ed25519 signature (receipts).
    pub fn verify_raw(&self, msg: &[u8], sig: &[u8]) -> Result<(), NoteError> {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(msg, sig)
            .map_err(|_| NoteError::BadSignature)
    }
}

/// The body of a C2SP tlog checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: [u8; 32],
}

impl Checkpoint {
    /// `origin\nsize\nbase64(root)\n`, with no extension lines.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parse a checkpoint body (e.g. the text `Verifier::verify_note` returns). Extension lines
    /// after the root are tolerated (and dropped) but must be non-empty.
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        use NoteError::MalformedCheckpoint as Bad;
        let body = text
            .strip_suffix('\n')
            .ok_or(Bad("it must end with a newline"))?;
        if body.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Bad("it contains a control character"));
        }
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(Bad("empty origin"))?;
        let size = lines.next().ok_or(Bad("missing size line"))?;
        let root = lines.next().ok_or(Bad("missing root hash line"))?;
        if lines.any(str::is_empty) {
            return Err(Bad("empty extension line"));
        }
        let canonical = size == "0" || !size.starts_with('0');
        if size.is_empty() || !canonical || !size.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Bad("size is not a canonical decimal number"));
        }
        let size = size.parse().map_err(|_| Bad("size is too large"))?;
        let root = B64
            .decode(root)
            .map_err(|_| Bad("root hash is not valid base64"))?;
        let root = to_array(&root).ok_or(Bad("root hash is not 32 bytes"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// Receipt message: "gridhub-receipt/v1\n{index}\n{leaf_hash base64}\n{integrated_time}\n".
/// `integrated_time` is an RFC 3339 time made by the hub (it must hold no newline).
pub fn receipt_message(index: u64, leaf_hash: &[u8; 32], integrated_time: &str) -> String {
    format!(
        "gridhub-receipt/v1\n{index}\n{}\n{integrated_time}\n",
        B64.encode(leaf_hash)
    )
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::Ed25519KeyPair;

    use super::*;

    fn pkcs8() -> Vec<u8> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    fn signer(name: &str) -> NoteSigner {
        NoteSigner::from_pkcs8(name, &pkcs8()).unwrap()
    }

    const NAME: &str = "gridhub/test";

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "gridhub/test".to_owned(),
            size: 1234,
            root: [7; 32],
        }
    }

    /// A PKCS#8 v2 document for an Ed25519 seed, laid out as ring itself writes it.
    fn pkcs8_from_seed(seed: &[u8], public_key: &[u8]) -> Vec<u8> {
        let mut der = vec![
            0x30, 0x53, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(seed);
        der.extend_from_slice(&[0xa1, 0x23, 0x03, 0x21, 0x00]);
        der.extend_from_slice(public_key);
        der
    }

    // golang.org/x/mod/sumdb/note: the example of its package documentation.
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_SKEY_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n\
                           \n\
                           \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn the_go_sumdb_note_example_verifies_and_is_reproduced_byte_for_byte() {
        let v = Verifier::from_vkey(GO_VKEY).unwrap();
        assert_eq!(v.verify_note(GO_NOTE), Ok(GO_TEXT));
        assert_eq!(v.verifier_key(), GO_VKEY);
        let seed = B64.decode(GO_SKEY_B64).unwrap();
        assert_eq!(seed[0], ALG_ED25519);
        let s = NoteSigner::from_pkcs8(
            "PeterNeumann",
            &pkcs8_from_seed(&seed[1..], &v.public_key()),
        )
        .unwrap();
        assert_eq!(s.verifier_key(), GO_VKEY);
        assert_eq!(s.sign_note(GO_TEXT).unwrap(), GO_NOTE);
    }

    #[test]
    fn a_signed_note_verifies_and_returns_its_text() {
        let s = signer(NAME);
        let body = checkpoint().body();
        let note = s.sign_note(&body).unwrap();
        assert!(note.starts_with(&format!("{body}\n\u{2014} {NAME} ")));
        assert!(note.ends_with('\n'));
        let v = Verifier::from_vkey(&s.verifier_key()).unwrap();
        assert_eq!(v, s.verifier());
        assert_eq!(v.verify_note(&note), Ok(body.as_str()));
        assert_eq!(
            Checkpoint::parse(v.verify_note(&note).unwrap()),
            Ok(checkpoint())
        );
    }

    #[test]
    fn a_note_signed_by_another_key_with_the_same_name_is_not_accepted() {
        let (ours, theirs) = (signer(NAME), signer(NAME));
        let note = theirs.sign_note("hello\n").unwrap();
        assert_eq!(
            ours.verifier().verify_note(&note),
            Err(NoteError::NotSigned(NAME.to_owned()))
        );
        // Claiming our key hash does not help either.
        let mut blob = ours.key_hash().to_vec();
        blob.extend_from_slice(&theirs.sign_raw(b"hello\n"));
        let forged = format!("hello\n\n\u{2014} {NAME} {}\n", B64.encode(blob));
        assert_eq!(
            ours.verifier().verify_note(&forged),
            Err(NoteError::BadSignature)
        );
    }

    #[test]
    fn other_keys_lines_are_ignored_but_ours_must_be_there_and_valid() {
        let (ours, other) = (signer(NAME), signer("witness.example"));
        let text = "hello\n";
        let ours_line = ours.sign_note(text).unwrap().replacen("hello\n\n", "", 1);
        let other_line = other.sign_note(text).unwrap().replacen("hello\n\n", "", 1);
        for note in [
            format!("{text}\n{other_line}{ours_line}"),
            format!("{text}\n{ours_line}{other_line}"),
        ] {
            assert_eq!(ours.verifier().verify_note(&note), Ok(text));
            assert_eq!(other.verifier().verify_note(&note), Ok(text));
        }
        let only_other = format!("{text}\n{other_line}");
        assert_eq!(
            ours.verifier().verify_note(&only_other),
            Err(NoteError::NotSigned(NAME.to_owned()))
        );
    }

    #[test]
    fn tampering_with_any_byte_of_the_text_is_detected() {
        let s = signer(NAME);
        let v = s.verifier();
        let text = checkpoint().body();
        let note = s.sign_note(&text).unwrap();
        for i in 0..text.len() {
            let mut bytes = note.clone().into_bytes();
            bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(v.verify_note(&tampered).is_err(), "byte {i}");
        }
    }

    #[test]
    fn tampering_with_any_bit_of_the_signature_is_detected() {
        let s = signer(NAME);
        let v = s.verifier();
        let note = s.sign_note("hello\n").unwrap();
        let b64 = note.trim_end().rsplit(' ').next().unwrap();
        let blob = B64.decode(b64).unwrap();
        assert_eq!(blob.len(), 68);
        for bit in 0..blob.len() * 8 {
            let mut bad = blob.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let tampered = note.replace(b64, &B64.encode(&bad));
            let got = v.verify_note(&tampered);
            if bit < 32 {
                assert_eq!(
                    got,
                    Err(NoteError::NotSigned(NAME.to_owned())),
                    "key hash bit {bit}"
                );
            } else {
                assert_eq!(got, Err(NoteError::BadSignature), "signature bit {bit}");
            }
        }
    }

    #[test]
    fn malformed_notes_are_rejected() {
        let s = signer(NAME);
        let v = s.verifier();
        let note = s.sign_note("hello\n").unwrap();
        let line = note.trim_start_matches("hello\n\n");
        let bad = |n: &str| v.verify_note(n).unwrap_err();
        // Removed blank line.
        assert!(matches!(
            bad(&format!("hello\n{line}")),
            NoteError::MalformedNote(_)
        ));
        // Missing em dash (a plain hyphen or nothing).
        assert!(matches!(
            bad(&note.replace('\u{2014}', "-")),
            NoteError::MalformedNote(_)
        ));
        assert!(matches!(
            bad(&note.replace("\u{2014} ", "")),
            NoteError::MalformedNote(_)
        ));
        // Bad base64, empty signature, no signature, no final newline.
        assert!(matches!(
            bad(&note.replace('=', "")),
            NoteError::MalformedNote(_)
        ));
        assert!(matches!(
            bad(&format!("hello\n\n\u{2014} {NAME} \n")),
            NoteError::MalformedNote(_)
        ));
        assert!(matches!(
            bad(&format!("hello\n\n\u{2014} {NAME}\n")),
            NoteError::MalformedNote(_)
        ));
        assert!(matches!(
            bad(note.trim_end_matches('\n')),
            NoteError::MalformedNote(_)
        ));
        assert!(matches!(bad("hello\n\n"), NoteError::MalformedNote(_)));
        // A stray line after ours.
        assert!(matches!(
            bad(&format!("{note}junk\n")),
            NoteError::MalformedNote(_)
        ));
        // Text with a control character (signed by hand, as sign_note refuses it).
        let text = "hel\rlo\n";
        let mut blob = s.key_hash().to_vec();
        blob.extend_from_slice(&s.sign_raw(text.as_bytes()));
        let note = format!("{text}\n\u{2014} {NAME} {}\n", B64.encode(blob));
        assert_eq!(v.verify_note(&note), Err(NoteError::InvalidText));
    }

    #[test]
    fn more_than_a_hundred_signature_lines_are_refused() {
        let s = signer(NAME);
        let note = s.sign_note("hello\n").unwrap();
        let line = note.trim_start_matches("hello\n\n");
        let many = format!("hello\n\n{}", line.repeat(MAX_SIGNATURES + 1));
        assert_eq!(
            s.verifier().verify_note(&many),
            Err(NoteError::TooManySignatures)
        );
        let enough = format!("hello\n\n{}", line.repeat(MAX_SIGNATURES));
        assert_eq!(s.verifier().verify_note(&enough), Ok("hello\n"));
    }

    #[test]
    fn sign_note_refuses_unterminated_text_and_control_characters() {
        let s = signer(NAME);
        assert_eq!(s.sign_note("hello"), Err(NoteError::TextNotTerminated));
        assert_eq!(s.sign_note(""), Err(NoteError::TextNotTerminated));
        assert_eq!(s.sign_note("a\tb\n"), Err(NoteError::InvalidText));
        assert_eq!(s.sign_note("a\r\n"), Err(NoteError::InvalidText));
        // Blank lines inside the text are fine: the signatures follow the last one.
        let note = s.sign_note("a\n\nb\n").unwrap();
        assert_eq!(s.verifier().verify_note(&note), Ok("a\n\nb\n"));
    }

    #[test]
    fn the_verifier_key_has_the_c2sp_format_and_the_signature_lines_key_hash() {
        let s = signer(NAME);
        let vkey = s.verifier_key();
        let (name, rest) = vkey.split_once('+').unwrap();
        let (hash_hex, key_b64) = rest.split_once('+').unwrap();
        assert_eq!(name, NAME);
        assert_eq!(hash_hex.len(), 8);
        assert!(
            hash_hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        let key = B64.decode(key_b64).unwrap();
        assert_eq!(key.len(), 33);
        assert_eq!(key[0], 0x01);
        assert_eq!(key[1..], s.public_key());
        let note = s.sign_note("hello\n").unwrap();
        let blob = B64
            .decode(note.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        assert_eq!(hex(&blob[..4]), hash_hex);
        assert_eq!(blob[..4], s.key_hash());
        assert_eq!(s.key_hash(), key_hash(NAME, &s.public_key()));
    }

    #[test]
    fn a_signature_line_decoded_by_hand_verifies_with_ring_directly() {
        let s = signer(NAME);
        let text = checkpoint().body();
        let note = s.sign_note(&text).unwrap();
        let (before, line) = note.rsplit_once('\u{2014}').unwrap();
        assert_eq!(before, format!("{text}\n"));
        let (name, b64) = line.trim().split_once(' ').unwrap();
        assert_eq!(name, NAME);
        let blob = B64.decode(b64).unwrap();
        let public_key = B64
            .decode(s.verifier_key().splitn(3, '+').nth(2).unwrap())
            .unwrap();
        UnparsedPublicKey::new(&ED25519, &public_key[1..])
            .verify(text.as_bytes(), &blob[4..68])
            .unwrap();
    }

    #[test]
    fn a_vkey_with_another_name_fails() {
        let s = signer(NAME);
        let note = s.sign_note("hello\n").unwrap();
        // Renamed but with the old hash: the hash no longer matches.
        let renamed = s.verifier_key().replacen(NAME, "gridhub/other", 1);
        assert_eq!(
            Verifier::from_vkey(&renamed),
            Err(NoteError::VerifierKeyHashMismatch)
        );
        // Renamed consistently: a valid key, but the note has no line under that name.
        let other = Verifier::from_public_key("gridhub/other", s.public_key()).unwrap();
        assert_eq!(
            Verifier::from_vkey(&other.verifier_key()),
            Ok(other.clone())
        );
        assert_eq!(
            other.verify_note(&note),
            Err(NoteError::NotSigned("gridhub/other".to_owned()))
        );
    }

    #[test]
    fn malformed_verifier_keys_are_rejected() {
        let vkey = signer(NAME).verifier_key();
        let (name, rest) = vkey.split_once('+').unwrap();
        let (hash_hex, key_b64) = rest.split_once('+').unwrap();
        let key = B64.decode(key_b64).unwrap();
        let mut other_alg = key.clone();
        other_alg[0] = 0x04;
        for (bad, want) in [
            (name.to_owned(), NoteError::MalformedVerifierKey),
            (
                format!("{name}+{hash_hex}"),
                NoteError::MalformedVerifierKey,
            ),
            (format!("+{hash_hex}+{key_b64}"), NoteError::InvalidKeyName),
            (
                format!("a b+{hash_hex}+{key_b64}"),
                NoteError::InvalidKeyName,
            ),
            (
                format!("{name}+{}+{key_b64}", &hash_hex[1..]),
                NoteError::MalformedVerifierKey,
            ),
            (
                format!("{name}+0x{}+{key_b64}", &hash_hex[2..]),
                NoteError::MalformedVerifierKey,
            ),
            (
                format!("{name}+{hash_hex}+{}", &key_b64[1..]),
                NoteError::MalformedVerifierKey,
            ),
            (
                format!("{name}+{hash_hex}+"),
                NoteError::MalformedVerifierKey,
            ),
            (
                format!("{name}+{hash_hex}+{}", B64.encode(&key[..32])),
                NoteError::MalformedVerifierKey,
            ),
            (
                format!("{name}+{hash_hex}+{}", B64.encode(other_alg)),
                NoteError::UnsupportedAlgorithm(0x04),
            ),
            (
                format!("{name}+00000000+{key_b64}"),
                NoteError::VerifierKeyHashMismatch,
            ),
        ] {
            assert_eq!(Verifier::from_vkey(&bad), Err(want), "{bad}");
        }
        assert!(Verifier::from_vkey(&vkey).is_ok());
        assert!(Verifier::from_vkey(&vkey.replacen(hash_hex, &hash_hex.to_uppercase(), 1)).is_ok());
    }

    #[test]
    fn key_names_and_signing_keys_are_checked() {
        let key = pkcs8();
        for name in ["", "a b", "a+b", "a\tb", "a\nb", "a\u{a0}b"] {
            assert_eq!(
                NoteSigner::from_pkcs8(name, &key).unwrap_err(),
                NoteError::InvalidKeyName,
                "{name:?}"
            );
        }
        assert_eq!(
            NoteSigner::from_pkcs8(NAME, &key[1..]).unwrap_err(),
            NoteError::InvalidSigningKey
        );
        let debug = format!("{:?}", NoteSigner::from_pkcs8(NAME, &key).unwrap());
        assert!(debug.contains(NAME) && !debug.contains("key_pair"));
    }

    #[test]
    fn raw_signatures_verify_only_for_their_message_and_key() {
        let (s, t) = (signer(NAME), signer(NAME));
        let msg = receipt_message(42, &[9; 32], "2026-01-02T03:04:05.678Z");
        let sig = s.sign_raw(msg.as_bytes());
        assert_eq!(s.verifier().verify_raw(msg.as_bytes(), &sig), Ok(()));
        assert_eq!(
            t.verifier().verify_raw(msg.as_bytes(), &sig),
            Err(NoteError::BadSignature)
        );
        assert_eq!(
            s.verifier().verify_raw(b"other", &sig),
            Err(NoteError::BadSignature)
        );
        assert_eq!(
            s.verifier().verify_raw(msg.as_bytes(), &sig[..63]),
            Err(NoteError::BadSignature)
        );
    }

    #[test]
    fn the_receipt_message_has_the_documented_layout() {
        assert_eq!(
            receipt_message(42, &[0; 32], "2026-01-02T03:04:05.678Z"),
            "gridhub-receipt/v1\n42\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n2026-01-02T03:04:05.678Z\n"
        );
    }

    #[test]
    fn a_checkpoint_body_round_trips() {
        let c = checkpoint();
        assert_eq!(
            c.body(),
            format!("gridhub/test\n1234\n{}\n", B64.encode([7; 32]))
        );
        assert_eq!(Checkpoint::parse(&c.body()), Ok(c));
        let zero = Checkpoint {
            origin: "o".to_owned(),
            size: 0,
            root: [0; 32],
        };
        assert_eq!(Checkpoint::parse(&zero.body()), Ok(zero));
        let max = Checkpoint {
            origin: "o".to_owned(),
            size: u64::MAX,
            root: [255; 32],
        };
        assert_eq!(Checkpoint::parse(&max.body()), Ok(max));
    }

    #[test]
    fn checkpoint_extension_lines_are_tolerated_but_not_empty_ones() {
        let body = checkpoint().body();
        assert_eq!(
            Checkpoint::parse(&format!("{body}ext one\next two\n")),
            Ok(checkpoint())
        );
        assert!(Checkpoint::parse(&format!("{body}\n")).is_err());
        assert!(Checkpoint::parse(&format!("{body}ext\n\n")).is_err());
    }

    #[test]
    fn malformed_checkpoints_are_rejected() {
        let root = B64.encode([7; 32]);
        for bad in [
            format!("o\n01\n{root}\n"),
            format!("o\n00\n{root}\n"),
            format!("o\n+1\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n 1\n{root}\n"),
            format!("o\n1 \n{root}\n"),
            format!("o\n\n{root}\n"),
            format!("o\n18446744073709551616\n{root}\n"),
            format!("o\n1\n{root}"),
            format!("\n1\n{root}\n"),
            "o\n1\n".to_owned(),
            format!("o\n{root}\n"),
            "o\n".to_owned(),
            String::new(),
            format!("o\n1\n{}\n", B64.encode([7; 31])),
            format!("o\n1\n{}\n", B64.encode([7; 33])),
            format!("o\n1\n{}\n", root.trim_end_matches('=')),
            format!("o\n1\n{}\n", root.replace('H', "!")),
            format!("o\r\n1\n{root}\n"),
        ] {
            assert!(
                matches!(
                    Checkpoint::parse(&bad),
                    Err(NoteError::MalformedCheckpoint(_))
                ),
                "{bad:?}"
            );
        }
    }
}
