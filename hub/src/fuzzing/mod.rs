//! Entry points for the `cargo fuzz` targets in `fuzz/` (feature `fuzzing`, never on by
//! default). Each takes the fuzzer's bytes and runs the hub's own code on them: the same
//! parsers and checks a request or a stored value goes through, never a copy of them. Where a
//! service interleaves its checks with storage lookups (does this grid, purpose or department
//! exist?), the entry point runs the checks around them as if every lookup had succeeded.
//!
//! A harness reports a broken property by panicking, so libFuzzer records the input; any other
//! panic, overflow, hang or OOM in the code under test is a finding too. A finding becomes a
//! regression test next to the parser it broke (docs/FUZZING.md).

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a fuzz harness reports a broken property by panicking; its fixtures cannot fail"
)]

pub mod bodies;
pub mod identity;
pub mod ledger;
pub mod text;

use std::sync::OnceLock;

use crate::vault::Vault;
use crate::vault::keyring::KeyringFile;

/// A vault with keys for every category of the default catalog (and the case texts), made once
/// per fuzzing process, as `gridhub init` makes one.
fn vault() -> &'static Vault {
    static VAULT: OnceLock<Vault> = OnceLock::new();
    VAULT.get_or_init(|| {
        let categories = policy::Catalog::default_catalog()
            .categories()
            .iter()
            .map(|c| c.name.as_str())
            .chain([crate::vault::CASE_TEXTS]);
        Vault::from_keyring(&KeyringFile::generate(categories, 0).expect("keyring")).expect("vault")
    })
}

/// The fuzzer's bytes as text: the hub only ever parses text that is valid UTF-8 (axum's and
/// serde's readers check it first).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The first byte chooses among `n` variants of a target; the rest is the input.
fn split_choice(data: &[u8], n: u8) -> Option<(u8, &[u8])> {
    let (first, rest) = data.split_first()?;
    Some((first % n, rest))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::extract::parse_json;
    use crate::routes::records::body::CreateRecord;

    /// A target's name and entry point.
    type Target = (&'static str, fn(&[u8]));

    fn corpus(target: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target)
    }

    fn inputs(target: &str) -> Vec<Vec<u8>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(corpus(target))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    /// The committed seeds and regression inputs of every target run clean, on stable and
    /// without cargo-fuzz: `cargo test -p gridhub-hub --features fuzzing fuzzing`.
    #[test]
    fn every_committed_input_runs_clean() {
        let targets: [Target; 11] = [
            ("record_body", super::bodies::record_body),
            ("grant_body", super::bodies::grant_body),
            ("case_body", super::bodies::case_body),
            ("role_body", super::bodies::role_body),
            ("row_filter", super::text::row_filter),
            ("grid_code", super::text::grid_code),
            ("field_value", super::text::field_value),
            ("signed_note", super::ledger::signed_note),
            ("merkle_proof", super::ledger::merkle_proof),
            ("jwt", super::identity::jwt),
            ("csr", super::identity::csr),
        ];
        for (target, run) in targets {
            let inputs = inputs(target);
            assert!(!inputs.is_empty(), "no seeds for {target}");
            inputs.iter().for_each(|input| run(input));
        }
    }

    /// The record seeds are valid records, so the fuzzer starts from bodies that reach sealing.
    #[test]
    fn the_record_seeds_reach_sealing() {
        for name in ["create-person", "create-household"] {
            let seed = std::fs::read(corpus("record_body").join(name)).unwrap();
            let req: CreateRecord = parse_json(&seed[1..]).unwrap();
            let input = crate::records::RecordInput::from(req);
            let category = policy::Catalog::default_catalog()
                .category(&input.category)
                .unwrap();
            assert!(category.parse_fields(&input.fields).is_ok(), "{name}");
            assert!(policy::GridCode::parse(&input.grid).is_ok(), "{name}");
        }
    }
}
