//! `checkpoint verify`: fetch the hub's checkpoint, verify its signature (and the required
//! witnesses' cosignatures) and its consistency with the state file, store it, print its size,
//! root and cosignature count. An inconsistency exits 1 with both signed notes as evidence.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use connectors::Client;

use super::common::{Failure, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Verify the current checkpoint against the state file and store it.
    Verify,
}

/// Signature lines of a signed note after the first (the ledger's): the cosignatures.
fn cosignatures(note: &str) -> usize {
    note.split_once("\n\n")
        .map_or(0, |(_, sigs)| {
            sigs.lines().filter(|l| l.starts_with('—')).count()
        })
        .saturating_sub(1)
}

pub async fn run(client: &Client, command: Command) -> Result<(), Failure> {
    match command {
        Command::Verify => {
            let checkpoint = client.checkpoint().await?;
            print_json(&serde_json::json!({
                "origin": checkpoint.checkpoint().origin,
                "size": checkpoint.size(),
                "root": B64.encode(checkpoint.checkpoint().root),
                "cosignatures": cosignatures(checkpoint.note()),
            }))
        }
    }
}
