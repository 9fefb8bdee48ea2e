//! `pull`: every record of a category to a JSONL file, one verified page at a time, with a
//! progress bar. Invariant (resume): after a page's lines are written and fsynced, the cursor
//! file `<out>.cursor` records the next cursor and the JSONL length that page ended at
//! (written to a temporary file, fsynced, renamed, directory fsynced). `--resume` truncates the
//! JSONL back to that length before pulling on, so a run killed anywhere — mid-page included —
//! leaves no partial line and no record twice.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use connectors::{Client, Page, PullRequest};
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::common::{Failure, Scope, print_json, record_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    scope: Scope,
    /// Only records in this grid subtree.
    #[arg(long)]
    grid: Option<String>,
    /// Page size, 1–500 (the hub's default is 100).
    #[arg(long)]
    limit: Option<u32>,
    /// The JSONL file to write (one record a line).
    #[arg(long)]
    out: PathBuf,
    /// Continue an interrupted pull from `<out>.cursor`.
    #[arg(long)]
    resume: bool,
    /// Stop after this many pages (the cursor file keeps the place; for tests and trials).
    #[arg(long, hide = true)]
    max_pages: Option<u64>,
}

/// `<out>.cursor`: where a pull stands. Invariant: `length` bytes of the JSONL hold exactly
/// `records` complete lines, and `cursor` is the `next_cursor` of the page that ended there.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Progress {
    category: String,
    purpose: String,
    case: Option<String>,
    grid: Option<String>,
    /// The cursor of the next page; `None` once the pull is complete.
    cursor: Option<String>,
    /// The JSONL length after the last fully written page.
    length: u64,
    records: u64,
    pages: u64,
    checkpoint_size: Option<u64>,
}

fn local(what: &str, path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::Usage(format!("{what} `{}`: {e}", path.display()))
}

fn sidecar(out: &Path, suffix: &str) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Write `progress` durably: temporary file, fsync, rename, fsync the directory.
fn save(out: &Path, progress: &Progress) -> Result<(), Failure> {
    let (path, tmp) = (sidecar(out, ".cursor"), sidecar(out, ".cursor.tmp"));
    let json = serde_json::to_vec(progress).map_err(|e| local("cannot encode", &path, e))?;
    let mut file = File::create(&tmp).map_err(|e| local("cannot create", &tmp, e))?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(|e| local("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| local("cannot replace", &path, e))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| local("cannot sync", &dir, e))
}

/// Where to start: fresh (the JSONL truncated), or the saved place with the JSONL cut back to it.
fn start(args: &Args) -> Result<(Progress, File), Failure> {
    let fresh = Progress {
        category: args.scope.category.clone(),
        purpose: args.scope.purpose.clone(),
        case: args.scope.case.clone(),
        grid: args.grid.clone(),
        cursor: None,
        length: 0,
        records: 0,
        pages: 0,
        checkpoint_size: None,
    };
    let cursor_path = sidecar(&args.out, ".cursor");
    let progress = if args.resume {
        let text = std::fs::read(&cursor_path)
            .map_err(|e| local("--resume: cannot read", &cursor_path, e))?;
        let saved: Progress = serde_json::from_slice(&text)
            .map_err(|e| local("--resume: not a cursor file", &cursor_path, e))?;
        if (&saved.category, &saved.purpose, &saved.case, &saved.grid)
            != (&fresh.category, &fresh.purpose, &fresh.case, &fresh.grid)
        {
            return Err(Failure::Usage(format!(
                "--resume: `{}` is a pull of another category, purpose, case or grid",
                cursor_path.display()
            )));
        }
        saved
    } else {
        fresh
    };
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&args.out)
        .map_err(|e| local("cannot open", &args.out, e))?;
    let len = file
        .metadata()
        .map_err(|e| local("cannot read", &args.out, e))?
        .len();
    if len < progress.length {
        return Err(Failure::Usage(format!(
            "--resume: `{}` is shorter ({len} bytes) than its cursor file says ({})",
            args.out.display(),
            progress.length
        )));
    }
    // INVARIANT (resume): drop whatever a killed run wrote after its last saved page.
    file.set_len(progress.length)
        .and_then(|()| file.sync_all())
        .map_err(|e| local("cannot truncate", &args.out, e))?;
    file.seek(SeekFrom::Start(progress.length))
        .map_err(|e| local("cannot seek", &args.out, e))?;
    if !args.resume {
        save(&args.out, &progress)?;
    }
    Ok((progress, file))
}

fn bar() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    let style = ProgressStyle::with_template("{spinner} {elapsed} {msg} ({per_sec} pages/s)")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Append `page`'s records as lines and fsync; returns the new length.
fn append(file: &File, out: &Path, page: &Page) -> Result<u64, Failure> {
    let mut writer = BufWriter::new(file);
    for record in &page.records {
        serde_json::to_writer(&mut writer, &record_json(record))
            .map_err(|e| local("cannot write", out, e))?;
        writer
            .write_all(b"\n")
            .map_err(|e| local("cannot write", out, e))?;
    }
    writer.flush().map_err(|e| local("cannot write", out, e))?;
    drop(writer);
    file.sync_data().map_err(|e| local("cannot sync", out, e))?;
    Ok(file
        .metadata()
        .map_err(|e| local("cannot read", out, e))?
        .len())
}

pub async fn run(client: &Client, args: Args) -> Result<(), Failure> {
    let (mut progress, file) = start(&args)?;
    let done_already = args.resume && progress.pages > 0 && progress.cursor.is_none();
    let started = Instant::now();
    let (first_records, first_pages) = (progress.records, progress.pages);
    if !done_already {
        let request = PullRequest {
            purpose: args.scope.purpose.clone(),
            case: args.scope.case.clone(),
            grid: args.grid.clone(),
            cursor: progress.cursor.clone(),
            limit: args.limit,
        };
        let bar = bar();
        let mut pages = std::pin::pin!(client.pull_all(&args.scope.category, request));
        let mut this_run = 0u64;
        // INVARIANT (verified): `pull_all` yields a page only after its receipt, inclusion and
        // the checkpoint's consistency verified; an error ends the pull with the cursor kept.
        while let Some(page) = pages.try_next().await.inspect_err(|_| bar.abandon())? {
            progress.length = append(&file, &args.out, &page)?;
            progress.records += u64::try_from(page.records.len()).unwrap_or(u64::MAX);
            progress.pages += 1;
            progress.cursor = page.next_cursor.clone();
            progress.checkpoint_size = Some(page.checkpoint_size);
            save(&args.out, &progress)?;
            this_run += 1;
            bar.inc(1);
            bar.set_message(format!(
                "{} records, {} pages, {:.0} records/s",
                progress.records,
                progress.pages,
                rate(progress.records - first_records, started)
            ));
            if args.max_pages.is_some_and(|max| this_run >= max) {
                break;
            }
        }
        bar.finish_and_clear();
    }
    print_json(&serde_json::json!({
        "out": args.out.display().to_string(),
        "records": progress.records,
        "pages": progress.pages,
        "records_this_run": progress.records - first_records,
        "pages_this_run": progress.pages - first_pages,
        "complete": progress.cursor.is_none(),
        "checkpoint_size": progress.checkpoint_size,
    }))
}

fn rate(records: u64, since: Instant) -> f64 {
    let secs = since.elapsed().as_secs_f64();
    if secs > 0.0 {
        records as f64 / secs
    } else {
        0.0
    }
}
