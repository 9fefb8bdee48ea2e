//! JSON lines: one object per line, its members named like columns. Blank lines are skipped;
//! a line that is not an object stops the import naming its line number.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use serde_json::Value;

use super::{Cell, READ_AHEAD, Row, Source};

pub fn open(path: &Path) -> anyhow::Result<Source> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let total = file.metadata()?.len();
    let read = Arc::new(AtomicU64::new(0));
    let (tx, rows) = std::sync::mpsc::sync_channel(READ_AHEAD);
    let counter = Arc::clone(&read);
    std::thread::spawn(move || {
        let mut names: std::collections::HashMap<String, Arc<str>> = Default::default();
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let number = i as u64 + 1;
            let item = match line {
                Err(e) => Err(format!("line {number}: {e}")),
                Ok(text) => {
                    counter.fetch_add(text.len() as u64 + 1, Ordering::Relaxed);
                    if text.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Value>(&text) {
                        Ok(Value::Object(object)) => Ok(Row {
                            line: number,
                            cells: object
                                .into_iter()
                                .filter(|(_, v)| !v.is_null())
                                .map(|(k, v)| {
                                    let name = names
                                        .entry(k.clone())
                                        .or_insert_with(|| Arc::from(k.as_str()))
                                        .clone();
                                    let cell = match v {
                                        Value::String(s) => Cell::Text(s),
                                        Value::Number(n) => Cell::Text(n.to_string()),
                                        other => Cell::Json(other),
                                    };
                                    (name, cell)
                                })
                                .collect(),
                        }),
                        _ => Err(format!("line {number}: not a JSON object")),
                    }
                }
            };
            let stop = item.is_err();
            if tx.send(item).is_err() || stop {
                return;
            }
        }
    });
    Ok(Source {
        rows,
        read,
        total,
        headers: Vec::new(),
    })
}
