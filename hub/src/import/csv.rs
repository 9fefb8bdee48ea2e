//! CSV in UTF-8 (with or without a BOM) or GB18030, decoded as it streams. Without
//! `--encoding`, a file that is valid UTF-8 throughout is UTF-8, anything else GB18030 (one
//! streaming pass over the file decides). The first record is the header; line numbers are
//! the file's (a quoted field spanning lines counts its first).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use encoding_rs::{Encoding, GB18030, UTF_8};
use encoding_rs_io::DecodeReaderBytesBuilder;

use super::{Cell, READ_AHEAD, Row, Source};

/// Counts the bytes read through it (the progress bar's position).
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Is everything `reader` yields valid UTF-8?
pub fn is_utf8(mut reader: impl Read) -> std::io::Result<bool> {
    let mut buf = vec![0_u8; 1 << 20];
    let mut carry = 0;
    loop {
        let n = reader.read(buf.get_mut(carry..).unwrap_or_default())?;
        let filled = carry + n;
        let chunk = buf.get(..filled).unwrap_or_default();
        if n == 0 {
            return Ok(std::str::from_utf8(chunk).is_ok());
        }
        match std::str::from_utf8(chunk) {
            Ok(_) => carry = 0,
            // An incomplete sequence at the end: keep it for the next read.
            Err(e) if e.error_len().is_none() => {
                let valid = e.valid_up_to();
                buf.copy_within(valid..filled, 0);
                carry = filled - valid;
            }
            Err(_) => return Ok(false),
        }
    }
}

/// The encoding `name` names, or the detected one.
fn encoding(path: &Path, name: Option<&str>) -> anyhow::Result<&'static Encoding> {
    match name.map(str::to_ascii_lowercase).as_deref() {
        Some("utf-8" | "utf8") => Ok(UTF_8),
        Some("gb18030" | "gbk" | "gb2312") => Ok(GB18030),
        Some(_) => bail!("--encoding: utf-8 or gb18030"),
        None => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            Ok(if is_utf8(file)? { UTF_8 } else { GB18030 })
        }
    }
}

pub fn open(path: &Path, name: Option<&str>) -> anyhow::Result<Source> {
    let encoding = encoding(path, name)?;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let total = file.metadata()?.len();
    let read = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: file,
        read: Arc::clone(&read),
    };
    let decoded = DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding))
        .bom_override(true)
        .build(counting);
    let mut reader = ::csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(decoded);
    let headers: Vec<String> = reader
        .headers()
        .context("cannot read the header line")?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
        .collect();
    let names: Vec<Arc<str>> = headers.iter().map(|h| Arc::from(h.as_str())).collect();
    let (tx, rows) = std::sync::mpsc::sync_channel(READ_AHEAD);
    std::thread::spawn(move || {
        let mut record = ::csv::StringRecord::new();
        loop {
            let item = match reader.read_record(&mut record) {
                Ok(false) => return,
                Ok(true) => Ok(Row {
                    line: record.position().map_or(0, |p| p.line()),
                    cells: names
                        .iter()
                        .zip(record.iter())
                        .filter(|(_, v)| !v.trim().is_empty())
                        .map(|(h, v)| (Arc::clone(h), Cell::Text(v.to_owned())))
                        .collect(),
                }),
                // The error names a position, never the text.
                Err(e) => Err(match e.position() {
                    Some(p) => format!("line {}: not valid CSV", p.line()),
                    None => "not valid CSV".to_owned(),
                }),
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
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_and_gb18030_are_told_apart() {
        let text = "姓名,性别\n张三,男\n";
        assert!(is_utf8(text.as_bytes()).expect("reads"));
        let (gb, _, _) = GB18030.encode(text);
        assert!(!is_utf8(&gb[..]).expect("reads"));
        assert!(is_utf8(&b"\xef\xbb\xbfname\n"[..]).expect("reads"));
    }

    #[test]
    fn a_character_split_across_reads_is_still_utf8() {
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        assert!(is_utf8(Dribble("网格编码".as_bytes())).expect("reads"));
    }
}
