//! `gridhub keys …` for KEKs: rotate a category's key (or the ledger's key) and rewrap, show the versions and the
//! rewrap's progress, and the keyring's export and import for the recovery drill
//! (docs/OPERATIONS.md "Key rotation" and "Keyring recovery drill").

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use zeroize::Zeroizing;

use super::rewrap::{self, Progress, Report};
use super::{Keys, policy_of};
use crate::config::Settings;
use crate::ledger::{Actor, Decision, EntryDraft};
use crate::storage::{KekState, Store};
use crate::time::SystemClock;
use crate::vault::Vault;
use crate::vault::keyring::{AgeFileStore, KeyringFile, KeyringStore};

/// The key service of an initialised data directory, for one command.
pub async fn open(settings: &Settings) -> anyhow::Result<Arc<Keys>> {
    let keyring = AgeFileStore::in_dir(&settings.data_dir);
    let vault = Arc::new(Vault::unlock(&keyring).context("cannot unlock the keyring")?);
    let store = Store::open(&settings.database()?).await?;
    let ledger = crate::startup::open_ledger(&vault, store.clone(), &settings.instance).await?;
    let keys = Arc::new(Keys::new(
        store,
        vault,
        keyring,
        ledger,
        Arc::new(SystemClock),
        policy_of(settings),
    ));
    keys.sync()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the key versions' states: {e}"))?;
    Ok(keys)
}

/// Rotate `category` and then rewrap in the foreground (unless `rewrap_now` is false).
pub async fn rotate(
    keys: &Keys,
    category: &str,
    rate: u32,
    rewrap_now: bool,
) -> anyhow::Result<()> {
    let rotation = keys
        .rotate(
            Actor::system(),
            "cli".to_owned(),
            category,
            "asked on the command line",
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot rotate `{category}`: {e}"))?;
    println!(
        "KEK of `{}`: version {} wraps new data keys from now on (ledger entry {}); running hubs \
         follow within {} s",
        rotation.category,
        rotation.version,
        rotation.ledger_index,
        super::POLL.as_secs()
    );
    if let Some(previous) = rotation.previous {
        println!("version {previous} is to be rewrapped, then retired");
    }
    if rewrap_now {
        rewrap_with_bar(keys, rate).await?;
    } else {
        println!(
            "the hub's background rewrap moves the data keys; `gridhub keys status` shows how far"
        );
    }
    Ok(())
}

/// Rotate the ledger's signing key (`keys::ledger_key`).
pub async fn rotate_ledger_key(keys: &Keys) -> anyhow::Result<()> {
    let r = keys
        .rotate_ledger_key(
            Actor::system(),
            "cli".to_owned(),
            "asked on the command line",
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot rotate the ledger key: {e}"))?;
    println!(
        "ledger signing key {} replaced by {} (ledger entry {}); the old key's checkpoints end \
         at size {}; running hubs follow within {} s",
        r.old_key_id,
        r.new_key_id,
        r.ledger_index,
        r.size,
        super::POLL.as_secs()
    );
    println!("new verifier key: {}", r.verifier);
    println!(
        "verifiers that pinned the old key follow the transition statement published at \
         GET /v1/audit/public-key"
    );
    Ok(())
}

/// Run the rewrap with a progress bar on stderr.
pub async fn rewrap_with_bar(keys: &Keys, rate: u32) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "rewrapping {msg} [{bar:40}] {pos}/{len} data keys ({per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    // Without a terminal (a timer's log) a line per batch instead of the bar.
    let lines = !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut show = |p: &Progress| {
        bar.set_message(format!("{} v{}→v{}", p.category, p.from, p.to));
        bar.set_length(u64::try_from(p.total).unwrap_or(0));
        bar.set_position(u64::try_from(p.moved).unwrap_or(0));
        if lines {
            println!(
                "rewrapped {}/{} data keys of `{}` v{}→v{}",
                p.moved, p.total, p.category, p.from, p.to
            );
        }
    };
    // The same holder for every run on this machine: a run killed here resumes at once when
    // started again here (elsewhere, once its lease has lapsed).
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let holder = format!("cli@{}", host.trim());
    let outcome = rewrap::run(keys, &holder, rate, &mut show).await;
    bar.finish_and_clear();
    match outcome.map_err(|e| anyhow::anyhow!("the rewrap stopped: {e}"))? {
        None => anyhow::bail!(
            "another process (a running hub) holds the rewrap now; `gridhub keys status` shows \
             its progress"
        ),
        Some(report) => {
            print_report(&report, keys.policy().retire_grace.as_secs());
            Ok(())
        }
    }
}

fn print_report(report: &Report, grace_secs: u64) {
    for (category, version) in &report.rotated {
        println!(
            "rotated `{category}` to version {version}: its old version had used its wrap budget"
        );
    }
    println!("{} data key(s) rewrapped", report.moved);
    for (category, version) in &report.retired {
        println!("retired `{category}` version {version}: it unwraps nothing from now on");
    }
    for (category, version) in &report.pending {
        println!(
            "`{category}` version {version} is not retired yet (it retires once nothing uses it \
             and {grace_secs} s have passed since the rotation; run `gridhub keys rewrap` again)"
        );
    }
}

/// The KEK versions with their states, data keys, wraps and the rewrap's progress.
pub async fn status(keys: &Keys) -> anyhow::Result<()> {
    let rows = keys.store().kek_rows().await?;
    println!(
        "{:<14} {:>7} {:>8} {:>10} {:>12} {:>10}",
        "category", "version", "state", "data keys", "wraps", "rewrapped"
    );
    for row in &rows {
        let deks = keys.store().deks_left(&row.category, row.version).await?;
        println!(
            "{:<14} {:>7} {:>8} {:>10} {:>12} {:>10}",
            row.category,
            row.version,
            row.state.as_str(),
            deks,
            row.wraps,
            row.rewrapped
        );
    }
    for row in rows.iter().filter(|r| r.state == KekState::Rewrap) {
        let left = keys.store().deks_left(&row.category, row.version).await?;
        let total = left + row.rewrapped;
        let pct = if total == 0 {
            100.0
        } else {
            row.rewrapped as f64 * 100.0 / total as f64
        };
        println!(
            "rewrap of `{}` version {}: {}/{} data keys moved ({pct:.1} %)",
            row.category, row.version, row.rewrapped, total
        );
    }
    println!(
        "the hub rotates a version by itself at {} wraps; wraps are refused past {} (90 % of 2^32)",
        keys.policy().rotate_after_wraps,
        crate::vault::KEK_WRAP_LIMIT
    );
    Ok(())
}

/// Write the whole keyring, sealed with age to `recipient` (an `age1…` X25519 public key held
/// offline), to `out`; audited as `keys.export`. The export holds every key: keep it as the
/// data directory's identity file is kept.
pub async fn export(settings: &Settings, recipient: &str, out: &Path) -> anyhow::Result<()> {
    let recipient: age::x25519::Recipient = recipient
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("--to is not an age X25519 recipient (age1…): {e}"))?;
    if out.exists() {
        anyhow::bail!("{} exists; give a new file", out.display());
    }
    let keyring = AgeFileStore::in_dir(&settings.data_dir);
    let file = keyring.load().context("cannot unlock the keyring")?;
    let vault = Vault::from_keyring(&file)?;
    let store = Store::open(&settings.database()?).await?;
    let ledger = crate::startup::open_ledger(&vault, store.clone(), &settings.instance).await?;
    // Audit first: an export the ledger cannot record is not made.
    ledger
        .append(
            EntryDraft::new(
                Actor::system(),
                "keys.export",
                Decision::Allow,
                "cli".to_owned(),
            )
            .reason(&format!(
                "the keyring ({} key categories) sealed to an offline age recipient",
                file.keks.len()
            )),
        )
        .await?;
    store.close().await;
    let plain = Zeroizing::new(serde_json::to_vec(&file)?);
    let sealed = age::encrypt(&recipient, &plain).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::vault::keyring::write_private(out, &sealed)?;
    println!(
        "keyring exported to {} (sealed to {}); `gridhub keys import` restores it",
        out.display(),
        recipient
    );
    Ok(())
}

/// Restore a keyring exported by `export` into `data_dir`, opening it with the age identity in
/// `identity_file` and sealing it again to the directory's own identity. Refuses to replace a
/// keyring that holds keys the export does not (that would lose them) unless `force`.
pub fn import(
    data_dir: &Path,
    from: &Path,
    identity_file: &Path,
    force: bool,
) -> anyhow::Result<()> {
    let text = Zeroizing::new(
        std::fs::read_to_string(identity_file)
            .with_context(|| format!("cannot read {}", identity_file.display()))?,
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .ok_or_else(|| anyhow::anyhow!("{} holds no age identity", identity_file.display()))?;
    let identity: age::x25519::Identity = line
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{} holds no valid age identity", identity_file.display()))?;
    let sealed = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    let plain =
        Zeroizing::new(age::decrypt(&identity, &sealed).map_err(|e| {
            anyhow::anyhow!("cannot open {} with that identity: {e}", from.display())
        })?);
    let file: KeyringFile = serde_json::from_slice(&plain)
        .map_err(|_| anyhow::anyhow!("{} is not a gridhub keyring export", from.display()))?;
    Vault::from_keyring(&file).context("the exported keyring does not load")?;
    let store = AgeFileStore::in_dir(data_dir);
    if !store.identity.exists() {
        store.create_identity()?;
    }
    let current = (store.sealed.exists() && !force)
        .then(|| store.load().ok())
        .flatten();
    if let Some(current) = current {
        let missing = missing_keys(&current, &file);
        if !missing.is_empty() {
            anyhow::bail!(
                "the keyring in {} holds key versions the export does not ({}); importing \
                 would lose them (give --force to replace it anyway)",
                data_dir.display(),
                missing.join(", ")
            );
        }
    }
    store.save(&file)?;
    println!(
        "keyring restored into {} ({} key categories, sealed to {}); start the hub",
        data_dir.display(),
        file.keks.len(),
        store.identity.display()
    );
    Ok(())
}

/// KEK versions (and the ledger key) of `current` that `export` lacks.
fn missing_keys(current: &KeyringFile, export: &KeyringFile) -> Vec<String> {
    let mut missing = Vec::new();
    for (category, entries) in &current.keks {
        for e in entries {
            let there = export
                .keks
                .get(category)
                .is_some_and(|x| x.iter().any(|k| k.version == e.version && k.key == e.key));
            if !there {
                missing.push(format!("{category} v{}", e.version));
            }
        }
    }
    let current_ledger = current.ledger_key.as_ref().map(|e| e.pkcs8.as_str());
    let export_ledger = export.ledger_key.as_ref().map(|e| e.pkcs8.as_str());
    if current_ledger.is_some() && current_ledger != export_ledger {
        missing.push("the ledger key".to_owned());
    }
    missing
}
