//! Excel workbooks (.xlsx), first sheet, read cell by cell with calamine's streaming
//! `worksheet_cells_reader` (the sheet is never loaded whole; the shared-strings table is).
//! The header is the first row with at least two non-empty cells (a title row above it is
//! skipped); line numbers are sheet row numbers (1-based, as Excel shows them). Date cells
//! arrive as their serial number.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;

use anyhow::Context;
use calamine::{DataRef, Reader, Xlsx, open_workbook};

use super::{Cell, READ_AHEAD, Row, Source, SourceItem};

pub fn open(path: &Path) -> anyhow::Result<Source> {
    std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
    let read = Arc::new(AtomicU64::new(0));
    let (tx, rows) = std::sync::mpsc::sync_channel(READ_AHEAD);
    let (total_tx, total_rx) = std::sync::mpsc::sync_channel(1);
    let counter = Arc::clone(&read);
    let path: PathBuf = path.to_owned();
    std::thread::spawn(move || {
        if let Err(e) = stream(&path, &tx, &total_tx, &counter) {
            let _ = total_tx.try_send(0);
            let _ = tx.send(Err(e));
        }
    });
    let total = total_rx.recv().unwrap_or(0);
    Ok(Source {
        rows,
        read,
        total,
        headers: Vec::new(),
    })
}

fn cell(value: &DataRef<'_>) -> Option<Cell> {
    match value {
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            Some(Cell::Text(s.clone()))
        }
        DataRef::SharedString(s) => Some(Cell::Text((*s).to_owned())),
        DataRef::Int(i) => Some(Cell::Text(i.to_string())),
        DataRef::Float(f) => Some(Cell::Number(*f)),
        DataRef::Bool(b) => Some(Cell::Text(b.to_string())),
        DataRef::DateTime(dt) => Some(Cell::Number(dt.as_f64())),
        DataRef::Error(_) | DataRef::Empty => None,
    }
    .filter(|c| !matches!(c, Cell::Text(t) if t.trim().is_empty()))
}

/// Read the first sheet, sending its total row count, then its data rows.
fn stream(
    path: &Path,
    tx: &SyncSender<SourceItem>,
    total: &SyncSender<u64>,
    read: &AtomicU64,
) -> Result<(), String> {
    let unreadable = |_| "not a readable .xlsx workbook".to_owned();
    let mut book: Xlsx<_> = open_workbook(path).map_err(unreadable)?;
    let sheet = book
        .sheet_names()
        .into_iter()
        .next()
        .ok_or_else(|| "the workbook has no sheet".to_owned())?;
    let mut cells = book.worksheet_cells_reader(&sheet).map_err(unreadable)?;
    let _ = total.try_send(u64::from(cells.dimensions().end.0) + 1);
    let mut header: Option<Vec<(u32, Arc<str>)>> = None;
    let mut row: Vec<(u32, Cell)> = Vec::new();
    let mut current = 0_u32;
    loop {
        let next = cells
            .next_cell()
            .map_err(|_| format!("sheet row {}: not readable", current + 1))?;
        let position = next.as_ref().map(|c| c.get_position());
        if position.is_none_or(|(r, _)| r != current) {
            if !row.is_empty() && !emit(current, std::mem::take(&mut row), &mut header, tx) {
                return Ok(());
            }
            read.store(u64::from(current) + 1, Ordering::Relaxed);
        }
        let (Some(c), Some((r, col))) = (next, position) else {
            return Ok(());
        };
        current = r;
        if let Some(value) = cell(c.get_value()) {
            row.push((col, value));
        }
    }
}

/// Send a data row, or take it as the header; false once the receiver is gone.
fn emit(
    r: u32,
    row: Vec<(u32, Cell)>,
    header: &mut Option<Vec<(u32, Arc<str>)>>,
    tx: &SyncSender<SourceItem>,
) -> bool {
    let Some(names) = header else {
        if row.len() >= 2 {
            *header = Some(
                row.into_iter()
                    .map(|(col, c)| {
                        let text = match c {
                            Cell::Text(t) => t,
                            Cell::Number(n) => n.to_string(),
                            Cell::Json(v) => v.to_string(),
                        };
                        (col, Arc::from(text.trim()))
                    })
                    .collect(),
            );
        }
        return true;
    };
    let cells = row
        .into_iter()
        .filter_map(|(col, c)| {
            names
                .iter()
                .find(|(n, _)| *n == col)
                .map(|(_, name)| (Arc::clone(name), c))
        })
        .collect();
    tx.send(Ok(Row {
        line: u64::from(r) + 1,
        cells,
    }))
    .is_ok()
}
