//! `checkpoint verify`: fetch the hub's checkpoint, verify its signature (and the required
//! witnesses' cosignatures) and its consistency with the state file, store it, print its size,
//! root, cosignature count and the ledger keys trusted (the pinned key, the current key and the
//! number of key transitions followed between them). An inconsistency exits 1 with both signed
//! notes as evidence.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use connectors::Client;

use super::common::{Failure, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Verify the current checkpoint against the state file and store it.
    Verify,
}

/// Signature lines of a signed note by other keys than the ledger's (named `origin`; at a key
/// rotation two ledger keys sign): the cosignatures.
fn cosignatures(note: &str, origin: &str) -> usize {
    let ledger = format!("— {origin} ");
    note.rsplit_once("\n\n").map_or(0, |(_, sigs)| {
        sigs.lines()
            .filter(|l| l.starts_with('—') && !l.starts_with(&ledger))
            .count()
    })
}

pub async fn run(client: &Client, command: Command) -> Result<(), Failure> {
    match command {
        Command::Verify => {
            let checkpoint = client.checkpoint().await?;
            let origin = &checkpoint.checkpoint().origin;
            let keys = client.ledger_keys().map(|k| {
                serde_json::json!({
                    "pinned": k.pinned,
                    "current": k.current,
                    "transitions": k.transitions.len(),
                })
            });
            print_json(&serde_json::json!({
                "origin": origin,
                "size": checkpoint.size(),
                "root": B64.encode(checkpoint.checkpoint().root),
                "cosignatures": cosignatures(checkpoint.note(), origin),
                "ledger_key": keys,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cosignatures_are_the_lines_of_keys_other_than_the_ledgers() {
        let note =
            "gridhub/x\n3\nroot\n\n— gridhub/x AAAA\n— gridhub/x BBBB\n— civil/witness CCCC\n";
        assert_eq!(super::cosignatures(note, "gridhub/x"), 1);
        assert_eq!(
            super::cosignatures("gridhub/x\n3\nroot\n\n— gridhub/x AAAA\n", "gridhub/x"),
            0
        );
    }
}
