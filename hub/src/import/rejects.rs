//! The reject file: `line,field,problem`, one line per problem. Line numbers are the input's
//! (sheet row numbers for workbooks); fields and problems come from the catalog's checks, which
//! never echo a value. Nothing from a cell is ever written here.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;

pub struct Rejects {
    out: BufWriter<File>,
}

impl Rejects {
    /// Start the file, or (`resume`: a run continuing an earlier one) append to it.
    pub fn open(path: &Path, resume: bool) -> anyhow::Result<Rejects> {
        let appending = resume && path.exists();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(appending)
            .truncate(!appending)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = BufWriter::new(file);
        if !appending {
            writeln!(out, "line,field,problem")?;
        }
        Ok(Rejects { out })
    }

    pub fn row(&mut self, line: u64, field: &str, problem: &str) -> anyhow::Result<()> {
        writeln!(self.out, "{line},{},{}", quoted(field), quoted(problem))?;
        Ok(())
    }

    pub fn finish(&mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// A CSV field, quoted when it needs to be.
fn quoted(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_are_quoted() {
        assert_eq!(quoted("a,b"), "\"a,b\"");
        assert_eq!(quoted("say \"x\", y"), "\"say \"\"x\"\", y\"");
        assert_eq!(quoted("phone"), "phone");
    }
}
