//! The mapping file (`--mapping map.toml`): columns the built-in headers do not cover, value
//! maps for enumerations, a default grid and a default purpose.
//!
//! ```toml
//! grid = "330110.001.001.001"        # for rows without a grid column
//! purpose = "population-registration"
//! [columns]
//! "身份证" = "id_number"
//! "片区编码" = "grid"
//! "籍贯" = "ignore"
//! [values.gender]
//! "M" = "male"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use super::headers::Target;

/// The purpose recorded when neither the mapping nor the row says otherwise.
pub const DEFAULT_PURPOSE: &str = "population-registration";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Grid of rows without a grid column (or an empty cell).
    pub grid: Option<String>,
    pub purpose: Option<String>,
    /// Header → field name, `grid`, or `ignore`.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Field → (cell text → value).
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
}

impl Mapping {
    pub fn load(path: &Path) -> anyhow::Result<Mapping> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}: not a valid mapping", path.display()))
    }

    /// The target the file gives `header`, if any.
    pub fn column(&self, header: &str) -> Option<Target> {
        let to = self.columns.get(header.trim())?;
        Some(match to.as_str() {
            "grid" => Target::Grid,
            "ignore" => Target::Ignore,
            field => Target::Field(field.to_owned()),
        })
    }

    /// The value the file maps `raw` to for `field`, if any.
    pub fn value(&self, field: &str, raw: &str) -> Option<String> {
        self.values.get(field)?.get(raw).cloned()
    }

    pub fn purpose(&self) -> String {
        self.purpose
            .clone()
            .unwrap_or_else(|| DEFAULT_PURPOSE.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_file_names_columns_values_and_defaults() {
        let m: Mapping = toml::from_str(
            "grid = \"330110.001\"\n[columns]\n\"身份证\" = \"id_number\"\n\"片区\" = \"grid\"\n\
             [values.gender]\n\"M\" = \"male\"\n",
        )
        .expect("parses");
        assert_eq!(m.column("身份证"), Some(Target::Field("id_number".into())));
        assert_eq!(m.column("片区"), Some(Target::Grid));
        assert_eq!(m.value("gender", "M").as_deref(), Some("male"));
        assert_eq!(m.purpose(), DEFAULT_PURPOSE);
        assert!(toml::from_str::<Mapping>("colums = {}").is_err());
    }
}
