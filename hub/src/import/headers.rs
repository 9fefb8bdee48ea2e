//! Header mapping: which column feeds which catalog field (the usual Chinese headers of grid
//! exports, the field names themselves, and the mapping file's `[columns]`), and turning a cell
//! into the JSON value the catalog parses (男/女, 户籍/流动, dates in their common spellings and
//! Excel serials). Nothing here validates a value: a cell that does not convert is passed on as
//! it is, and the catalog refuses it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::mapping::Mapping;
use super::{Cell, Pending, Row};

/// Where a column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Field(String),
    /// The record's grid code.
    Grid,
    /// Deliberately not imported (`"ignore"` in the mapping file).
    Ignore,
}

/// The usual headers of grid exports (persons), and the field each feeds.
const KNOWN: &[(&str, &str)] = &[
    ("姓名", "name"),
    ("公民身份号码", "id_number"),
    ("身份证号", "id_number"),
    ("身份证号码", "id_number"),
    ("性别", "gender"),
    ("出生日期", "birth_date"),
    ("联系电话", "phone"),
    ("手机号码", "phone"),
    ("手机", "phone"),
    ("现住址", "address"),
    ("住址", "address"),
    ("户号", "household_id"),
    ("户编号", "household_id"),
    ("户籍类型", "residence"),
    ("人员类型", "residence"),
    ("标签", "tags"),
    ("备注", "worker_notes"),
];

const GRID_HEADERS: &[&str] = &["网格编码", "所属网格", "grid"];

/// A header as compared: trimmed, without a BOM, spaces or a leading required-marker `*`.
fn normal(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '*' && *c != '＊')
        .collect::<String>()
        .to_lowercase()
}

/// The target of `header`: the mapping file first, then the usual headers and field names.
pub fn target(header: &str, mapping: &Mapping, fields: &[String]) -> Option<Target> {
    if let Some(t) = mapping.column(header) {
        return Some(t);
    }
    let h = normal(header);
    if GRID_HEADERS.contains(&h.as_str()) {
        return Some(Target::Grid);
    }
    if let Some((_, field)) = KNOWN.iter().find(|(k, _)| *k == h) {
        return Some(Target::Field((*field).to_owned()));
    }
    fields
        .iter()
        .find(|f| f.as_str() == h)
        .map(|f| Target::Field(f.clone()))
}

/// The column targets of one import, learned from the headers.
pub struct Mapper<'a> {
    mapping: &'a Mapping,
    key: String,
    fields: Vec<String>,
    targets: HashMap<Arc<str>, Option<Target>>,
    unknown: BTreeSet<String>,
}

impl<'a> Mapper<'a> {
    pub fn new(mapping: &'a Mapping, key: &str, fields: Vec<String>) -> Mapper<'a> {
        Mapper {
            mapping,
            key: key.to_owned(),
            fields,
            targets: HashMap::new(),
            unknown: BTreeSet::new(),
        }
    }

    pub fn learn(&mut self, headers: &[String]) {
        for h in headers {
            self.learn_one(h);
        }
    }

    fn learn_one(&mut self, header: &str) {
        if self.targets.contains_key(header) {
            return;
        }
        let t = target(header, self.mapping, &self.fields);
        if t.is_none() && !header.trim().is_empty() {
            self.unknown.insert(header.to_owned());
        }
        self.targets.insert(Arc::from(header), t);
    }

    /// Learn the headers a row brings (JSON lines name them per row).
    pub fn learn_row(&mut self, row: &Row) {
        for (h, _) in &row.cells {
            if !self.targets.contains_key(h) {
                self.learn_one(h);
            }
        }
    }

    /// Headers that feed no field (each listed once).
    pub fn unknown(&self) -> impl Iterator<Item = &String> {
        self.unknown.iter()
    }

    /// The record parts of a row.
    pub(super) fn map(&self, row: &Row) -> Pending {
        let mut fields = Map::new();
        let mut grid = None;
        for (h, cell) in &row.cells {
            match self.targets.get(h).and_then(Option::as_ref) {
                Some(Target::Grid) => grid = Some(text(cell)),
                Some(t @ Target::Field(name)) => {
                    fields.insert(name.clone(), convert(t, cell, self.mapping));
                }
                Some(Target::Ignore) | None => {}
            }
        }
        let key = fields.get(&self.key).map(|v| match v {
            Value::String(s) => s.trim().to_uppercase(),
            other => other.to_string(),
        });
        Pending {
            line: row.line,
            grid: grid.filter(|g| !g.is_empty()),
            fields,
            key,
        }
    }
}

/// A cell as text: numbers without a fraction print as integers (phone numbers and identity
/// numbers typed into a numeric cell).
fn text(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => s.trim().to_owned(),
        Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e17 => format!("{n:.0}"),
        Cell::Number(n) => n.to_string(),
        Cell::Json(v) => v.to_string(),
    }
}

/// The JSON value for `target` from `cell`: value maps (mapping file, then the built-in ones),
/// dates normalised; anything else as text.
pub fn convert(target: &Target, cell: &Cell, mapping: &Mapping) -> Value {
    let Target::Field(field) = target else {
        return Value::Null;
    };
    if let Cell::Json(v) = cell {
        return v.clone();
    }
    let raw = text(cell);
    if let Some(mapped) = mapping.value(field, &raw) {
        return Value::String(mapped);
    }
    match field.as_str() {
        "gender" => Value::String(
            match raw.as_str() {
                "男" | "男性" => "male",
                "女" | "女性" => "female",
                other => other,
            }
            .to_owned(),
        ),
        "residence" => Value::String(
            match raw.as_str() {
                "户籍" | "户籍人口" | "常住" | "常住人口" => "registered",
                "流动" | "流动人口" | "外来" => "floating",
                other => other,
            }
            .to_owned(),
        ),
        "birth_date" => Value::String(date(cell).unwrap_or(raw)),
        "id_number" => Value::String(raw.to_uppercase()),
        "tags" => Value::Array(
            raw.split([',', '，', '、', ';', '；'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| Value::String(t.to_owned()))
                .collect(),
        ),
        _ => Value::String(raw),
    }
}

/// A date as `YYYY-MM-DD`: from 1990-01-01, 1990/1/1, 1990.1.1, 19900101, 1990年1月1日, or an
/// Excel serial (days since 1899-12-30, the 1900 date system). `None` if it is none of these.
pub fn date(cell: &Cell) -> Option<String> {
    let (y, m, d) = match cell {
        Cell::Number(n) => serial(*n)?,
        Cell::Text(s) => {
            let s = s.trim();
            let s = s.split([' ', 'T']).next().unwrap_or(s);
            if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
                (
                    s.get(0..4)?.parse().ok()?,
                    s.get(4..6)?.parse().ok()?,
                    s.get(6..8)?.parse().ok()?,
                )
            } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                serial(s.parse().ok()?)?
            } else {
                let parts: Vec<&str> = s
                    .split(['-', '/', '.', '年', '月', '日'])
                    .filter(|p| !p.is_empty())
                    .collect();
                match parts.as_slice() {
                    [y, m, d] if y.len() == 4 => {
                        (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
                    }
                    _ => return None,
                }
            }
        }
        Cell::Json(_) => return None,
    };
    let month = time::Month::try_from(m).ok()?;
    let date = time::Date::from_calendar_date(y, month, d).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// The calendar date of an Excel serial (1900 system; serials before 1900-03-01 are off by
/// Lotus's leap-day bug and are refused).
fn serial(n: f64) -> Option<(i32, u8, u8)> {
    if !(61.0..2_958_466.0).contains(&n) {
        return None;
    }
    let epoch = time::Date::from_calendar_date(1899, time::Month::December, 30).ok()?;
    // INVARIANT: the range check above keeps the day count within i64 and the date range.
    let days = n.floor() as i64;
    let date = epoch.checked_add(time::Duration::days(days))?;
    Some((date.year(), u8::from(date.month()), date.day()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<String> {
        [
            "name",
            "id_number",
            "gender",
            "birth_date",
            "phone",
            "worker_notes",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    #[test]
    fn chinese_headers_map_to_person_fields() {
        let m = Mapping::default();
        let f = fields();
        assert_eq!(target("姓名", &m, &f), Some(Target::Field("name".into())));
        assert_eq!(
            target("身份证号码", &m, &f),
            Some(Target::Field("id_number".into()))
        );
        assert_eq!(
            target(" *公民身份号码 ", &m, &f),
            Some(Target::Field("id_number".into()))
        );
        assert_eq!(
            target("手机号码", &m, &f),
            Some(Target::Field("phone".into()))
        );
        assert_eq!(target("所属网格", &m, &f), Some(Target::Grid));
        assert_eq!(
            target("\u{feff}备注", &m, &f),
            Some(Target::Field("worker_notes".into()))
        );
        assert_eq!(target("phone", &m, &f), Some(Target::Field("phone".into())));
        assert_eq!(target("籍贯", &m, &f), None);
    }

    #[test]
    fn unknown_columns_are_listed_once() {
        let m = Mapping::default();
        let mut mapper = Mapper::new(&m, "id_number", fields());
        mapper.learn(&["姓名".into(), "籍贯".into(), "籍贯".into()]);
        assert_eq!(mapper.unknown().collect::<Vec<_>>(), vec!["籍贯"]);
    }

    #[test]
    fn enumerations_are_translated() {
        let m = Mapping::default();
        let g = Target::Field("gender".into());
        assert_eq!(
            convert(&g, &Cell::Text("男".into()), &m),
            Value::from("male")
        );
        assert_eq!(
            convert(&g, &Cell::Text("女".into()), &m),
            Value::from("female")
        );
        let r = Target::Field("residence".into());
        assert_eq!(
            convert(&r, &Cell::Text("流动".into()), &m),
            Value::from("floating")
        );
        let p = Target::Field("phone".into());
        assert_eq!(
            convert(&p, &Cell::Number(13812345678.0), &m),
            Value::from("13812345678")
        );
    }

    #[test]
    fn dates_in_their_common_spellings() {
        let t = |s: &str| date(&Cell::Text(s.into()));
        assert_eq!(t("1990-01-01").as_deref(), Some("1990-01-01"));
        assert_eq!(t("1990/1/1").as_deref(), Some("1990-01-01"));
        assert_eq!(t("19900101").as_deref(), Some("1990-01-01"));
        assert_eq!(t("1990年1月2日").as_deref(), Some("1990-01-02"));
        assert_eq!(t("1990-02-30"), None);
        assert_eq!(t("yesterday"), None);
    }

    #[test]
    fn excel_serials_are_dates() {
        // 32874 is 1990-01-01 in Excel's 1900 date system; 45292 is 2024-01-01.
        assert_eq!(date(&Cell::Number(32874.0)).as_deref(), Some("1990-01-01"));
        assert_eq!(date(&Cell::Number(45292.0)).as_deref(), Some("2024-01-01"));
        assert_eq!(
            date(&Cell::Text("32874".into())).as_deref(),
            Some("1990-01-01")
        );
        assert_eq!(date(&Cell::Number(-5.0)), None);
    }
}
