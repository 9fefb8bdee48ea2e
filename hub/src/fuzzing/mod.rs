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
