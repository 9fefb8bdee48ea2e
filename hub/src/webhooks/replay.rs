//! `gridhub webhooks replay`: set matching outbox rows back to pending on a data directory's
//! database (the hub may be stopped), audited first.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::{Overrides, Settings};
use crate::ledger::{Actor, Decision, EntryDraft};
use crate::startup::open_ledger;
use crate::storage::{ReplayFilter, Store};
use crate::vault::Vault;
use crate::vault::keyring::AgeFileStore;

/// Set the rows matching `filter` back to pending, due now; the number of rows. The replay is
/// recorded in the audit ledger before anything changes.
pub async fn replay(
    data_dir: PathBuf,
    database_url: Option<String>,
    filter: ReplayFilter,
) -> anyhow::Result<u64> {
    if filter.id.is_none() && !filter.dead && filter.since.is_none() {
        anyhow::bail!("name the rows to replay: --id, --dead or --since");
    }
    let settings = Settings::load(
        None,
        Overrides {
            data_dir: Some(data_dir.clone()),
            listen: None,
            database_url,
        },
    )?;
    let vault =
        Vault::unlock(&AgeFileStore::in_dir(&data_dir)).context("cannot unlock the keyring")?;
    let store = Store::open(&settings.database()?)
        .await
        .context("cannot open the database")?;
    let result = replay_in(&store, &vault, &settings.instance, &filter).await;
    store.close().await;
    result
}

async fn replay_in(
    store: &Store,
    vault: &Vault,
    instance: &str,
    filter: &ReplayFilter,
) -> anyhow::Result<u64> {
    let ledger = open_ledger(vault, store.clone(), instance).await?;
    let mut what = Vec::new();
    if let Some(id) = &filter.id {
        what.push(format!("id {id}"));
    }
    if filter.dead {
        what.push("dead".to_owned());
    }
    if let Some(since) = filter.since {
        what.push(format!("since {}", crate::time::rfc3339(since)));
    }
    if let Some(d) = &filter.destination {
        what.push(format!("destination {d}"));
    }
    ledger
        .append(
            EntryDraft::new(
                Actor::system(),
                "webhook.replay",
                Decision::Allow,
                "cli".to_owned(),
            )
            .reason(&format!("outbox rows replayed: {}", what.join(", "))),
        )
        .await
        .map_err(|e| anyhow::anyhow!("the audit ledger cannot record the replay: {e}"))?;
    Ok(store.replay_outbox(filter, crate::time::now_ms()).await?)
}

/// `gridhub webhooks replay`.
#[derive(clap::Args)]
#[command(group(
    clap::ArgGroup::new("rows").required(true).multiple(true).args(["id", "dead", "since"])
))]
pub struct ReplayArgs {
    #[arg(long, env = "GRIDHUB_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The database, if not the one the data directory's config names.
    #[arg(long, env = "GRIDHUB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// One row, by its `webhook-id`.
    #[arg(long)]
    pub id: Option<String>,
    /// Dead rows.
    #[arg(long)]
    pub dead: bool,
    /// Rows created at or after this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only rows of this destination (a department id, `dpo` or `nats`).
    #[arg(long)]
    pub destination: Option<String>,
}

/// Run `gridhub webhooks replay` and print how many rows are pending again.
pub async fn replay_command(args: ReplayArgs) -> anyhow::Result<()> {
    let since = match &args.since {
        Some(text) => Some(
            crate::time::parse_rfc3339(text)
                .ok_or_else(|| anyhow::anyhow!("--since: an RFC 3339 time"))?,
        ),
        None => None,
    };
    let filter = ReplayFilter {
        id: args.id,
        dead: args.dead,
        since,
        destination: args.destination,
    };
    let n = replay(args.data_dir, args.database_url, filter).await?;
    println!("{n} events set back to pending");
    Ok(())
}
