//! The connector's `source.toml`: where the rows come from (`[source]`), where they go
//! (`[target]`), how columns map to catalog fields (`[columns]`, `[values.<field>]`, as in the
//! import mapping file) and how often to look (`interval`). Everything is checked at load, so a
//! bad file stops the connector before it touches either database, with a message naming the key.
//!
//! The source URL may carry a password: it is never printed, and `GRIDHUB_SOURCE_URL` overrides
//! it so that it need not sit in the file.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::import::mapping::{DEFAULT_PURPOSE, Mapping};

/// Rows per read and per upsert batch unless the file says otherwise.
const DEFAULT_BATCH: usize = 500;

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    source: SourceFile,
    target: TargetFile,
    #[serde(default)]
    columns: BTreeMap<String, String>,
    #[serde(default)]
    values: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default = "default_interval")]
    interval: String,
    #[serde(default)]
    batch_size: Option<usize>,
}

fn default_interval() -> String {
    "60s".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    url: Option<String>,
    table: Option<String>,
    query: Option<String>,
    key: String,
    updated_at: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    #[serde(default = "default_category")]
    category: String,
    key_field: String,
    grid: Option<String>,
    grid_column: Option<String>,
    purpose: Option<String>,
}

fn default_category() -> String {
    "person".to_owned()
}

/// Which SQL server the source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    /// MySQL and MariaDB.
    MySql,
}

/// What the rows are read from. Invariant: exactly one of a table and a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// A table or view, optionally schema-qualified (`schema.table`).
    Table(String),
    /// A `SELECT` used as a derived table: the connector adds the watermark condition, the
    /// order and the limit around it.
    Query(String),
}

/// A loaded, checked `source.toml`.
pub struct Config {
    pub dialect: Dialect,
    /// Invariant: a `postgres://`, `postgresql://`, `mysql://` or `mariadb://` URL (the latter
    /// rewritten to `mysql://`); never printed.
    pub url: String,
    pub relation: Relation,
    /// The source's key column (its primary key): the watermark's tie-breaker.
    pub key: String,
    pub updated_at: String,
    pub category: String,
    /// Invariant: non-empty; that it is an `indexed` field is checked by the records service.
    pub key_field: String,
    /// Columns, value maps, the default grid and the purpose, as the importer reads them.
    pub mapping: Mapping,
    pub interval: Duration,
    /// Invariant: 1..=`records::MAX_BATCH`.
    pub batch_size: usize,
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: File = toml::from_str(&text)
            .with_context(|| format!("{}: not a valid connector config", path.display()))?;
        let url = std::env::var("GRIDHUB_SOURCE_URL")
            .ok()
            .or_else(|| file.source.url.clone());
        Config::from_file(file, url)
            .with_context(|| format!("{}: invalid connector config", path.display()))
    }

    fn from_file(file: File, url: Option<String>) -> anyhow::Result<Config> {
        let url = url.context("source.url: missing (or set GRIDHUB_SOURCE_URL)")?;
        let (dialect, url) = dialect(&url)?;
        let relation = match (file.source.table, file.source.query) {
            (Some(t), None) if !t.trim().is_empty() => Relation::Table(t.trim().to_owned()),
            (None, Some(q)) if !q.trim().is_empty() => {
                Relation::Query(q.trim().trim_end_matches(';').to_owned())
            }
            _ => bail!("source: give either `table` or `query`"),
        };
        for (name, value) in [
            ("source.key", &file.source.key),
            ("source.updated_at", &file.source.updated_at),
            ("target.key_field", &file.target.key_field),
        ] {
            if value.trim().is_empty() {
                bail!("{name}: empty");
            }
        }
        let batch_size = file.batch_size.unwrap_or(DEFAULT_BATCH);
        if !(1..=crate::records::MAX_BATCH).contains(&batch_size) {
            bail!("batch_size: between 1 and {}", crate::records::MAX_BATCH);
        }
        let interval = parse_interval(&file.interval)
            .with_context(|| format!("interval: `{}` is not like 60s, 5m or 1h", file.interval))?;
        let mut columns = file.columns;
        if let Some(grid) = file.target.grid_column {
            columns.insert(grid, "grid".to_owned());
        }
        if let Some(grid) = &file.target.grid {
            policy::GridCode::parse(grid)
                .map_err(|_| anyhow::anyhow!("target.grid: `{grid}` is not a grid code"))?;
        }
        let mapping = Mapping {
            grid: file.target.grid,
            purpose: Some(
                file.target
                    .purpose
                    .unwrap_or_else(|| DEFAULT_PURPOSE.to_owned()),
            ),
            columns,
            values: file.values,
        };
        Ok(Config {
            dialect,
            url,
            relation,
            key: file.source.key,
            updated_at: file.source.updated_at,
            category: file.target.category,
            key_field: file.target.key_field,
            mapping,
            interval,
            batch_size,
        })
    }

    /// What identifies the rows this config reads (the watermark is valid for these only): a
    /// digest, so that a password in the URL never reaches the state file.
    pub fn fingerprint(&self) -> String {
        let relation = match &self.relation {
            Relation::Table(t) => format!("table\n{t}"),
            Relation::Query(q) => format!("query\n{q}"),
        };
        let text = format!(
            "{}\n{relation}\n{}\n{}\n{}\n{}",
            self.url, self.key, self.updated_at, self.category, self.key_field
        );
        let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        crate::hex::encode(digest.as_ref())
    }
}

/// The dialect of `url`, and the URL sqlx understands.
fn dialect(url: &str) -> anyhow::Result<(Dialect, String)> {
    let (scheme, rest) = url
        .split_once("://")
        .context("source.url: not a database URL")?;
    match scheme {
        "postgres" | "postgresql" => Ok((Dialect::Postgres, url.to_owned())),
        "mysql" => Ok((Dialect::MySql, url.to_owned())),
        "mariadb" => Ok((Dialect::MySql, format!("mysql://{rest}"))),
        _ => bail!("source.url: expected postgres://, mysql:// or mariadb://"),
    }
}

/// `60s`, `5m`, `1h`, `500ms`, or a bare number of seconds; never zero.
pub fn parse_interval(text: &str) -> Option<Duration> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().ok()?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    };
    (!duration.is_zero()).then_some(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Config> {
        let file: File = toml::from_str(text)?;
        let url = file.source.url.clone();
        Config::from_file(file, url)
    }

    const GOOD: &str = r#"
        interval = "5m"
        [source]
        url = "mariadb://root@127.0.0.1/civil"
        table = "civil.residents"
        key = "id"
        updated_at = "modified"
        [target]
        key_field = "id_number"
        grid = "330110.001"
        grid_column = "grid_code"
        [columns]
        sfzh = "id_number"
        [values.gender]
        "1" = "male"
    "#;

    #[test]
    fn a_full_config_loads_into_typed_parts() {
        let c = parse(GOOD).expect("loads");
        assert_eq!(c.dialect, Dialect::MySql);
        assert!(c.url.starts_with("mysql://"));
        assert_eq!(c.relation, Relation::Table("civil.residents".into()));
        assert_eq!(c.interval, Duration::from_secs(300));
        assert_eq!(c.batch_size, DEFAULT_BATCH);
        assert_eq!(c.category, "person");
        assert_eq!(c.mapping.grid.as_deref(), Some("330110.001"));
        assert_eq!(c.mapping.purpose(), DEFAULT_PURPOSE);
        assert_eq!(
            c.mapping.column("grid_code"),
            Some(crate::import::headers::Target::Grid)
        );
        assert_eq!(c.mapping.value("gender", "1").as_deref(), Some("male"));
    }

    #[test]
    fn table_and_query_together_are_refused() {
        let text = GOOD.replace("table = ", "query = \"SELECT 1\"\ntable = ");
        assert!(parse(&text).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(parse(&GOOD.replace("interval = \"5m\"", "interval = \"soon\"")).is_err());
        assert!(parse(&GOOD.replace("mariadb://", "oracle://")).is_err());
        assert!(parse(&GOOD.replace("grid = \"330110.001\"", "grid = \"a b\"")).is_err());
        assert!(parse(&GOOD.replace("[columns]", "colour = 1\n[columns]")).is_err());
    }

    #[test]
    fn intervals_read_in_the_usual_units() {
        assert_eq!(parse_interval("60s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_interval("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_interval("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_interval("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_interval("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_interval("0s"), None);
        assert_eq!(parse_interval("s"), None);
    }

    #[test]
    fn the_fingerprint_hides_the_url_and_follows_the_source() {
        let a = parse(GOOD).expect("loads");
        assert!(!a.fingerprint().contains("root"));
        let b = parse(&GOOD.replace("key = \"id\"", "key = \"rid\"")).expect("loads");
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
