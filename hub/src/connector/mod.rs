//! `gridhub connector run`: keeps a hub category in step with a department's table in
//! PostgreSQL or MySQL/MariaDB. Each pass reads the rows changed since the watermark in
//! `(updated_at, key)` order, maps their columns to catalog fields as `gridhub import` does, and
//! upserts them by the target key field through the records service (`--data-dir`, as the
//! operator) or `POST /v1/records/batch` with `upsert_by` (`--url`, as the logged-in user).
//!
//! Guarantees: the watermark is saved only after its batch committed, and writes are upserts by
//! key, so a kill at any point never makes a second record for a row; rows with equal
//! `updated_at` are told apart by the source key, so none is skipped or read twice in a pass. A
//! row the hub refuses goes to the reject file (its position in the pass, the field and the
//! problem: never a value) and the watermark moves past it: it comes back when its
//! `updated_at` changes at the source. A batch refused as a whole (authorisation, a conflict,
//! the hub unavailable) ends the pass without moving the watermark; the next pass retries it.
//! A pass that finds nothing new does not touch the hub at all.

mod config;
mod source;
mod watermark;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use crate::import::headers::{Target, convert, target};
use crate::import::progress::Progress;
use crate::import::rejects::Rejects;
use crate::import::sink::{Item, Outcome, Sink};
use crate::import::{Cell, HubTarget, Summary};
use config::Config;
use source::{Source, SourceRow};

#[derive(Subcommand)]
pub enum ConnectorCommand {
    /// Keep a category in step with a SQL table: one pass now, then one every `interval`
    /// (or only one with --once).
    Run(RunArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The connector's source.toml (its watermark is kept beside it, in FILE.state).
    #[arg(long)]
    pub config: PathBuf,
    /// Run one pass and exit.
    #[arg(long)]
    pub once: bool,
    /// The hub written to.
    #[command(flatten)]
    pub hub: HubTarget,
    /// Where a pass lists its rejected rows (default FILE.rejects.csv; each pass that rejects
    /// something rewrites it).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
}

pub async fn command(command: ConnectorCommand) -> anyhow::Result<()> {
    match command {
        ConnectorCommand::Run(args) => run(args).await,
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    if args.hub.data_dir.is_none() == args.hub.url.is_none() {
        bail!("give --data-dir or --url");
    }
    let config = Config::load(&args.config)?;
    let source = Source::connect(&config).await?;
    let connector = Connector {
        hub: args.hub.clone(),
        state: watermark::path_for(&args.config),
        rejects: args
            .rejects
            .clone()
            .unwrap_or_else(|| suffixed(&args.config, ".rejects.csv")),
        fingerprint: config.fingerprint(),
        config,
        source,
    };
    let result = connector.run_passes(args.once).await;
    connector.source.close().await;
    result
}

fn suffixed(file: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

struct Connector {
    config: Config,
    source: Source,
    /// The hub the rows are written to.
    hub: HubTarget,
    state: PathBuf,
    rejects: PathBuf,
    fingerprint: String,
}

/// A row ready to submit: its position in the pass and the record.
struct Pending {
    position: u64,
    item: Item,
    key: Option<String>,
}

impl Connector {
    async fn run_passes(&self, once: bool) -> anyhow::Result<()> {
        loop {
            let started = Instant::now();
            match self.pass().await {
                Ok(s) => println!(
                    "pass: rows read {}, created {}, updated {}, rejected {}; {:.1} s",
                    s.read,
                    s.created,
                    s.updated,
                    s.rejected,
                    started.elapsed().as_secs_f64()
                ),
                Err(e) if once => return Err(e),
                Err(e) => eprintln!("error: the pass stopped: {e:#}; retrying after the interval"),
            }
            if once {
                return Ok(());
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.interval) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }

    /// One pass: everything after the watermark, batch by batch.
    async fn pass(&self) -> anyhow::Result<Summary> {
        let mut summary = Summary::default();
        let mut after = watermark::load(&self.state, &self.fingerprint)?;
        let total = self.source.pending(after.as_ref()).await?;
        if total == 0 {
            return Ok(summary);
        }
        let sink = Sink::open(&self.hub).await?;
        let read = Arc::new(AtomicU64::new(0));
        let bar = Progress::new(total, Arc::clone(&read));
        let mut pass = Pass {
            connector: self,
            sink: &sink,
            rejects: None,
            targets: Vec::new(),
        };
        let result = async {
            pass.targets = pass.learn_columns().await?;
            loop {
                let rows = self
                    .source
                    .batch(after.as_ref(), self.config.batch_size)
                    .await?;
                let Some(last) = rows.last().map(|r| r.watermark.clone()) else {
                    break;
                };
                pass.write_rows(rows, &mut summary).await?;
                read.store(summary.read, Ordering::Relaxed);
                bar.tick(&summary);
                // INVARIANT (watermark-after-commit): every row up to `last` is committed or
                // in the reject file.
                watermark::save(&self.state, &self.fingerprint, &last)?;
                after = Some(last);
            }
            anyhow::Ok(())
        }
        .await;
        bar.finish(&summary);
        if let Some(r) = pass.rejects.as_mut() {
            r.finish()?;
        }
        sink.close().await;
        result?;
        if summary.rejected > 0 {
            println!("rejected rows: {}", self.rejects.display());
        }
        Ok(summary)
    }
}

/// The state of one pass between batches.
struct Pass<'a> {
    connector: &'a Connector,
    sink: &'a Sink,
    /// Opened (and truncated) at the pass's first reject.
    rejects: Option<Rejects>,
    /// Each source column's target, in column order.
    targets: Vec<Option<Target>>,
}

impl Pass<'_> {
    async fn learn_columns(&self) -> anyhow::Result<Vec<Option<Target>>> {
        let c = &self.connector.config;
        let fields = self.sink.fields(&c.category).await?;
        let mut targets = Vec::new();
        for column in self.connector.source.columns() {
            let t = target(column, &c.mapping, &fields);
            if t.is_none() && **column != *c.key && **column != *c.updated_at {
                eprintln!(
                    "warning: column `{column}` matches no field of `{}`; not imported",
                    c.category
                );
            }
            targets.push(t);
        }
        Ok(targets)
    }

    fn reject(&mut self, position: u64, field: &str, problem: &str) -> anyhow::Result<()> {
        if self.rejects.is_none() {
            self.rejects = Some(Rejects::open(&self.connector.rejects, false)?);
        }
        if let Some(r) = self.rejects.as_mut() {
            r.row(position, field, problem)?;
        }
        Ok(())
    }

    /// Map and write one batch of source rows (split where a key repeats, since one upsert
    /// batch holds each key once).
    async fn write_rows(&mut self, rows: Vec<SourceRow>, s: &mut Summary) -> anyhow::Result<()> {
        let mut batch = Vec::new();
        let mut keys = HashSet::new();
        for row in rows {
            s.read += 1;
            let Some(pending) = self.map(s.read, row)? else {
                s.rejected += 1;
                continue;
            };
            if let Some(key) = &pending.key
                && !keys.insert(key.clone())
            {
                self.flush(std::mem::take(&mut batch), s).await?;
                keys.clear();
                keys.insert(key.clone());
            }
            batch.push(pending);
        }
        self.flush(batch, s).await
    }

    /// The record of a row, or `None` when it is rejected before the hub sees it.
    fn map(&mut self, position: u64, row: SourceRow) -> anyhow::Result<Option<Pending>> {
        let c = &self.connector.config;
        let mut fields = Map::new();
        let mut grid = None;
        for ((_, value), t) in row.cells.into_iter().zip(&self.targets) {
            let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            match t {
                Some(Target::Grid) => grid = Some(value.trim().to_owned()),
                Some(t @ Target::Field(name)) => {
                    fields.insert(name.clone(), convert(t, &Cell::Text(value), &c.mapping));
                }
                Some(Target::Ignore) | None => {}
            }
        }
        let Some(grid) = grid.or_else(|| c.mapping.grid.clone()) else {
            self.reject(
                position,
                "grid",
                "missing (no grid column value and no default grid)",
            )?;
            return Ok(None);
        };
        let key = fields.get(&c.key_field).map(|v| match v {
            Value::String(s) => s.trim().to_uppercase(),
            other => other.to_string(),
        });
        Ok(Some(Pending {
            position,
            item: Item {
                category: c.category.clone(),
                grid,
                fields,
                purpose: c.mapping.purpose(),
            },
            key,
        }))
    }

    /// Submit `batch`; rows the hub refuses go to the reject file and the rest is submitted
    /// again (at most once per refused row).
    async fn flush(&mut self, mut batch: Vec<Pending>, s: &mut Summary) -> anyhow::Result<()> {
        let key_field = &self.connector.config.key_field;
        while !batch.is_empty() {
            let items = batch.iter().map(|p| clone_item(&p.item)).collect();
            match self.sink.write(items, key_field, false).await? {
                Outcome::Written { created, updated } => {
                    s.created += created;
                    s.updated += updated;
                    return Ok(());
                }
                Outcome::Refused(problems) => {
                    let mut bad = std::collections::BTreeSet::new();
                    for (index, field, problem) in problems {
                        let Some(position) = batch.get(index).map(|p| p.position) else {
                            bail!("the hub named a record the batch does not hold");
                        };
                        self.reject(position, &field, &problem)?;
                        bad.insert(index);
                    }
                    if bad.is_empty() {
                        bail!("the hub refused the batch without naming a record");
                    }
                    s.rejected += bad.len() as u64;
                    batch = batch
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !bad.contains(i))
                        .map(|(_, p)| p)
                        .collect();
                }
            }
        }
        Ok(())
    }
}

fn clone_item(item: &Item) -> Item {
    Item {
        category: item.category.clone(),
        grid: item.grid.clone(),
        fields: item.fields.clone(),
        purpose: item.purpose.clone(),
    }
}
