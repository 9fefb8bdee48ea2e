//! `gridhub import`: bulk import of grid data (Excel workbooks, CSV in UTF-8 or GB18030, JSON
//! lines) into one category, through the records service (`Records::upsert_batch`) on a data
//! directory or `POST /v1/records/batch` with `upsert_by` on a running hub.
//!
//! Guarantees: rows stream through a bounded channel (memory does not grow with the file);
//! every row is validated by the service's own checks (a refused batch's per-item problems send
//! those rows to the reject file and the rest is written again); writes are upserts by the key
//! field, so a re-run after a kill never creates a record twice, and the progress file lets it
//! skip what was committed; the reject file and every message name line numbers, fields and
//! problems, never a value from the input.

mod csv;
pub(crate) mod headers;
mod jsonl;
pub(crate) mod mapping;
pub(crate) mod progress;
pub(crate) mod rejects;
pub(crate) mod sink;
mod xlsx;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Map, Value};

use headers::Mapper;
use progress::Progress;
use rejects::Rejects;
pub use sink::HubTarget;
use sink::{Outcome, Sink};

/// Rows per write into a data directory (`crate::records::MAX_BATCH`): a batch's random
/// blind-index inserts share pages, so bigger batches write fewer pages per row.
const DEFAULT_LOCAL_BATCH: usize = crate::records::MAX_BATCH;
/// Rows per request through a running hub's API.
const DEFAULT_API_BATCH: usize = 1000;
/// Rows the reader may run ahead of the writer.
const READ_AHEAD: usize = 4096;

#[derive(Args)]
pub struct ImportArgs {
    /// The category the rows belong to.
    #[arg(long, default_value = "person")]
    pub category: String,
    /// The input: .xlsx, .csv or .jsonl.
    #[arg(long)]
    pub file: PathBuf,
    /// A mapping file (TOML): header → field, value maps, default grid and purpose.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// The hub written to.
    #[command(flatten)]
    pub hub: HubTarget,
    /// CSV encoding: utf-8 or gb18030 (default: UTF-8 if the file is valid UTF-8, else GB18030).
    #[arg(long)]
    pub encoding: Option<String>,
    /// Where rejected rows are listed (default FILE.rejects.csv).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// The indexed field that identifies a record (an existing one is updated).
    #[arg(long, default_value = "id_number")]
    pub key: String,
    /// Rows per write (1–5000; default 5000 into a data directory, 1000 through the API).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Validate everything and write nothing but the reject file.
    #[arg(long)]
    pub dry_run: bool,
}

/// One cell as the source gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A number (workbooks); dates in workbooks arrive as their serial number.
    Number(f64),
    /// A JSON value that is neither a string nor a number (JSON lines: arrays for sets).
    Json(Value),
}

/// One data row: its line (CSV, JSON lines) or sheet row number, and its non-empty cells by
/// header.
pub struct Row {
    pub line: u64,
    pub cells: Vec<(Arc<str>, Cell)>,
}

/// What a source reader sends: rows, or why it stopped.
pub type SourceItem = Result<Row, String>;

/// A started source: its rows arrive on `rows`; `bytes_read` counts input bytes consumed (or
/// rows, when `total` counts rows).
pub struct Source {
    pub rows: std::sync::mpsc::Receiver<SourceItem>,
    pub read: Arc<AtomicU64>,
    /// The progress total: file bytes, or sheet rows for workbooks.
    pub total: u64,
    /// Every header of the input, once known (all sources but JSON lines know it at the start).
    pub headers: Vec<String>,
}

fn open_source(args: &ImportArgs) -> anyhow::Result<Source> {
    let ext = args
        .file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "xlsx" | "xlsm" => xlsx::open(&args.file),
        "csv" | "txt" => csv::open(&args.file, args.encoding.as_deref()),
        "jsonl" | "ndjson" => jsonl::open(&args.file),
        _ => bail!("--file: expected a .xlsx, .csv or .jsonl file"),
    }
}

/// Counts of one run.
#[derive(Default, Debug)]
pub struct Summary {
    pub read: u64,
    pub skipped: u64,
    pub created: u64,
    pub updated: u64,
    pub rejected: u64,
}

/// A row ready to submit: its line and the record's parts.
struct Pending {
    line: u64,
    grid: Option<String>,
    fields: Map<String, Value>,
    key: Option<String>,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    if let Some(size) = args.batch_size
        && !(1..=crate::records::MAX_BATCH).contains(&size)
    {
        bail!("--batch-size: between 1 and {}", crate::records::MAX_BATCH);
    }
    let mapping = match &args.mapping {
        Some(path) => mapping::Mapping::load(path)?,
        None => mapping::Mapping::default(),
    };
    let sink = Arc::new(Sink::open(&args.hub).await?);
    let started = Instant::now();
    let result = import(&args, &mapping, &sink).await;
    sink.close().await;
    let summary = result?;
    let secs = started.elapsed().as_secs_f64();
    let written = summary.created + summary.updated;
    println!(
        "{}rows read {}, skipped (already imported) {}, created {}, updated {}, rejected {}; \
         {:.1} s, {:.0} records/s",
        if args.dry_run { "dry run: " } else { "" },
        summary.read,
        summary.skipped,
        summary.created,
        summary.updated,
        summary.rejected,
        secs,
        if secs > 0.0 {
            written as f64 / secs
        } else {
            0.0
        },
    );
    if summary.rejected > 0 {
        println!("rejected rows: {}", rejects_path(&args).display());
    }
    Ok(())
}

fn rejects_path(args: &ImportArgs) -> PathBuf {
    args.rejects
        .clone()
        .unwrap_or_else(|| suffixed(&args.file, ".rejects.csv"))
}

/// `FILE` + `suffix` (`people.xlsx.rejects.csv`).
fn suffixed(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

async fn import(
    args: &ImportArgs,
    mapping: &mapping::Mapping,
    sink: &Arc<Sink>,
) -> anyhow::Result<Summary> {
    let progress_path = suffixed(&args.file, ".import-progress");
    let fingerprint = progress::fingerprint(&args.file)?;
    let resume_after = if args.dry_run {
        0
    } else {
        progress::committed_line(&progress_path, &fingerprint)
    };
    let source = open_source(args)?;
    let mut mapper = Mapper::new(mapping, &args.key, sink.fields(&args.category).await?);
    mapper.learn(&source.headers);
    let mut rejects = Rejects::open(&rejects_path(args), resume_after > 0)?;
    let bar = Progress::new(source.total, Arc::clone(&source.read));
    let mut run = Run {
        args,
        mapping,
        sink: Arc::clone(sink),
        summary: Summary::default(),
        rejects: &mut rejects,
        progress_path,
        fingerprint,
        batch: Vec::new(),
        keys: std::collections::HashSet::new(),
        in_flight: None,
        batch_size: args.batch_size.unwrap_or(if args.hub.url.is_some() {
            DEFAULT_API_BATCH
        } else {
            DEFAULT_LOCAL_BATCH
        }),
    };
    while let Ok(item) = tokio::task::block_in_place(|| source.rows.recv()) {
        let row = item.map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
        run.summary.read += 1;
        if row.line <= resume_after {
            run.summary.skipped += 1;
            continue;
        }
        mapper.learn_row(&row);
        let pending = mapper.map(&row);
        run.add(pending).await?;
        bar.tick(&run.summary);
    }
    run.finish().await?;
    bar.finish(&run.summary);
    for header in mapper.unknown() {
        eprintln!(
            "warning: column `{header}` matches no field of `{}`; not imported",
            args.category
        );
    }
    let summary = std::mem::take(&mut run.summary);
    rejects.finish()?;
    Ok(summary)
}

/// The state of one import between batches.
struct Run<'a> {
    args: &'a ImportArgs,
    mapping: &'a mapping::Mapping,
    sink: Arc<Sink>,
    summary: Summary,
    rejects: &'a mut Rejects,
    progress_path: PathBuf,
    fingerprint: String,
    batch: Vec<Pending>,
    /// Key values in `batch` (a repeated key waits for the next batch, where it updates).
    keys: std::collections::HashSet<String>,
    /// The batch being sealed while the one before it commits.
    in_flight: Option<InFlight>,
    batch_size: usize,
}

/// A batch whose sealing runs on its own task.
struct InFlight {
    batch: Vec<Pending>,
    prepared: tokio::task::JoinHandle<anyhow::Result<sink::Prepared>>,
}

impl Run<'_> {
    async fn add(&mut self, pending: Pending) -> anyhow::Result<()> {
        if pending.grid.is_none() && self.mapping.grid.is_none() {
            self.rejects.row(
                pending.line,
                "grid",
                "missing (no grid column and no default grid)",
            )?;
            self.summary.rejected += 1;
            return Ok(());
        }
        if let Some(key) = &pending.key
            && self.keys.contains(key)
        {
            self.flush().await?;
        }
        if let Some(key) = &pending.key {
            self.keys.insert(key.clone());
        }
        self.batch.push(pending);
        if self.batch.len() >= self.batch_size {
            self.flush().await?;
        }
        Ok(())
    }

    /// Start sealing the batch on another task, and commit the batch before it meanwhile
    /// (so that sealing, on one core, overlaps the database's work, on the other). Batches
    /// still commit one at a time in the order of their rows.
    async fn flush(&mut self) -> anyhow::Result<()> {
        self.keys.clear();
        let batch = std::mem::take(&mut self.batch);
        if batch.is_empty() {
            return Ok(());
        }
        let items = batch.iter().map(|p| self.input(p)).collect();
        let sink = Arc::clone(&self.sink);
        let key = self.args.key.clone();
        let dry_run = self.args.dry_run;
        let prepared = tokio::spawn(async move { sink.prepare(items, &key, dry_run).await });
        match self.in_flight.replace(InFlight { batch, prepared }) {
            Some(previous) => self.settle(previous).await,
            None => Ok(()),
        }
    }

    /// Flush the last rows and commit every batch still in flight.
    async fn finish(&mut self) -> anyhow::Result<()> {
        self.flush().await?;
        match self.in_flight.take() {
            Some(last) => self.settle(last).await,
            None => Ok(()),
        }
    }

    /// Commit a prepared batch; rows the service refuses go to the reject file and the rest
    /// is submitted again (at most once per refused row). The progress file then moves past
    /// the batch's last line.
    async fn settle(&mut self, job: InFlight) -> anyhow::Result<()> {
        let InFlight {
            mut batch,
            prepared,
        } = job;
        let Some(last) = batch.last().map(|p| p.line) else {
            return Ok(());
        };
        let prepared = prepared.await.context("the sealing task failed")??;
        let mut outcome = self.sink.commit(prepared).await?;
        loop {
            match outcome {
                Outcome::Written { created, updated } => {
                    self.summary.created += created;
                    self.summary.updated += updated;
                    break;
                }
                Outcome::Refused(problems) => {
                    let mut bad = std::collections::BTreeSet::new();
                    for (index, field, problem) in problems {
                        let Some(p) = batch.get(index) else {
                            bail!("the hub named a record the batch does not hold");
                        };
                        self.rejects.row(p.line, &field, &problem)?;
                        bad.insert(index);
                    }
                    if bad.is_empty() {
                        bail!("the batch was refused without naming a record");
                    }
                    self.summary.rejected += bad.len() as u64;
                    batch = batch
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !bad.contains(i))
                        .map(|(_, p)| p)
                        .collect();
                    // Every row of the batch was rejected: they are done with too.
                    if batch.is_empty() {
                        break;
                    }
                    let items = batch.iter().map(|p| self.input(p)).collect();
                    outcome = self
                        .sink
                        .write(items, &self.args.key, self.args.dry_run)
                        .await?;
                }
            }
        }
        if !self.args.dry_run {
            progress::record(&self.progress_path, &self.fingerprint, last)?;
        }
        Ok(())
    }

    fn input(&self, p: &Pending) -> sink::Item {
        sink::Item {
            category: self.args.category.clone(),
            grid: p
                .grid
                .clone()
                .or_else(|| self.mapping.grid.clone())
                .unwrap_or_default(),
            fields: p.fields.clone(),
            purpose: self.mapping.purpose(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_and_progress_files_sit_beside_the_input() {
        let file = Path::new("/tmp/people.xlsx");
        assert_eq!(
            suffixed(file, ".rejects.csv"),
            PathBuf::from("/tmp/people.xlsx.rejects.csv")
        );
    }

    #[test]
    fn counters_start_at_zero() {
        let s = Summary::default();
        assert_eq!(s.read + s.created + s.updated + s.rejected, 0);
    }
}
