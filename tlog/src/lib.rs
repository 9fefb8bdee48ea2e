//! Transparency-log primitives shared by the hub (which signs) and the department SDK (which
//! verifies and cosigns): RFC 9162 Merkle tree math and proofs (`merkle`), C2SP signed notes,
//! checkpoints and receipt messages (`note`), C2SP tlog-cosignature v1 witness cosignatures
//! (`cosignature`), the Ed25519 key that signs them (`key`) and the chain of ledger keys a
//! key rotation leaves (`keychain`).
//! Pure: no I/O, no async, nothing that a department system would not want to link.

pub mod cosignature;
pub mod hex;
pub mod key;
pub mod keychain;
pub mod merkle;
pub mod note;

pub use key::{Ed25519Key, NotEd25519};
pub use merkle::{Hash, NodeId};
