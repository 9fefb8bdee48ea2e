//! Row filters of grants (API.md "Grants"): a small expression language over fields that are
//! not encrypted or are `indexed`, e.g. `tags has "elderly_alone" and not residence ==
//! "floating"`.
//!
//! ```text
//! expr       := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | primary
//! primary    := "(" expr ")" | comparison
//! comparison := field "has" string | field "==" string | field "!=" string
//! string     := '"' (any character but '"' and '\', or '\"' or '\\')* '"'
//! ```
//!
//! `parse` checks the text against a catalog category once, at grant creation: the field must
//! exist, be filterable (not encrypted, or indexed) and shareable (share class not `none`);
//! `has` needs a tag set and `==`/`!=` a single value; enum and tag literals must be allowed
//! values. Errors give the character position and what was expected, and never quote a string
//! literal (it might be personal data). `map_literals` then turns literals into whatever the
//! evaluator compares (the hub: blind-index tokens), and `matches` evaluates without
//! allocating.

use std::fmt;

use crate::catalog::{CategoryDef, FieldType, ShareClass};

/// Longest accepted filter text, in characters.
pub const MAX_CHARS: usize = 1000;
/// Deepest accepted nesting of `not` and parentheses.
pub const MAX_DEPTH: usize = 32;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The tag set contains the value.
    Has,
    Eq,
    Ne,
}

/// A parsed and checked filter whose literals are `V` (strings after `parse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowFilter<V = String> {
    Compare { field: String, op: Op, value: V },
    Not(Box<RowFilter<V>>),
    And(Box<RowFilter<V>>, Box<RowFilter<V>>),
    Or(Box<RowFilter<V>>, Box<RowFilter<V>>),
}

/// What a filter is evaluated against: one record's filterable fields.
pub trait RowView<V> {
    /// The record's tag set `field` contains `value`.
    fn has(&self, field: &str, value: &V) -> bool;
    /// The record's single value of `field` equals `value` (false when absent).
    fn equals(&self, field: &str, value: &V) -> bool;
}

/// Why a filter text was refused. `Display` names the position or the field, never a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// At character `position` (0-based), `expected` was needed and `found` was there.
    Syntax {
        position: usize,
        expected: &'static str,
        found: String,
    },
    /// `field` (named at `position`) cannot be used as written.
    Field {
        position: usize,
        field: String,
        problem: String,
    },
    TooLong,
    TooDeep,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::Syntax {
                position,
                expected,
                found,
            } => write!(
                f,
                "at position {position}: expected {expected}, found {found}"
            ),
            FilterError::Field {
                position,
                field,
                problem,
            } => write!(f, "at position {position}: field `{field}` {problem}"),
            FilterError::TooLong => write!(f, "longer than {MAX_CHARS} characters"),
            FilterError::TooDeep => write!(f, "nested deeper than {MAX_DEPTH} levels"),
        }
    }
}

impl std::error::Error for FilterError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    EqEq,
    NotEq,
    End,
}

impl Tok {
    /// How the token is named in an error: identifiers as written, strings never.
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(_) => "a string".to_owned(),
            Tok::LParen => "`(`".to_owned(),
            Tok::RParen => "`)`".to_owned(),
            Tok::EqEq => "`==`".to_owned(),
            Tok::NotEq => "`!=`".to_owned(),
            Tok::End => "the end".to_owned(),
        }
    }
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let start = i;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((start, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((start, Tok::RParen));
                i += 1;
            }
            '=' | '!' if chars.get(i + 1) == Some(&'=') => {
                out.push((start, if c == '=' { Tok::EqEq } else { Tok::NotEq }));
                i += 2;
            }
            '"' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(FilterError::Syntax {
                                position: start,
                                expected: "a closing `\"`",
                                found: "the end".to_owned(),
                            });
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => match chars.get(i + 1) {
                            Some(&e @ ('"' | '\\')) => {
                                value.push(e);
                                i += 2;
                            }
                            _ => {
                                return Err(FilterError::Syntax {
                                    position: i,
                                    expected: "`\\\"` or `\\\\` after a backslash",
                                    found: "another character".to_owned(),
                                });
                            }
                        },
                        Some(&ch) if ch.is_control() => {
                            return Err(FilterError::Syntax {
                                position: i,
                                expected: "a printable character in a string",
                                found: "a control character".to_owned(),
                            });
                        }
                        Some(&ch) => {
                            value.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((start, Tok::Str(value)));
            }
            c if c.is_ascii_lowercase() || c == '_' => {
                let mut word = String::new();
                while let Some(&ch) = chars.get(i) {
                    if ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' {
                        word.push(ch);
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push((start, Tok::Ident(word)));
            }
            _ => {
                return Err(FilterError::Syntax {
                    position: start,
                    expected: "a field, `not`, `(` or `)`",
                    found: if c.is_ascii_graphic() {
                        format!("`{c}`")
                    } else {
                        "another character".to_owned()
                    },
                });
            }
        }
    }
    out.push((chars.len(), Tok::End));
    Ok(out)
}

const KEYWORDS: [&str; 4] = ["and", "or", "not", "has"];

struct Parser<'a> {
    toks: Vec<(usize, Tok)>,
    at: usize,
    category: &'a CategoryDef,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> (usize, &Tok) {
        self.toks
            .get(self.at)
            .map_or((0, &Tok::End), |(p, t)| (*p, t))
    }

    fn bump(&mut self) -> (usize, Tok) {
        let item = self.toks.get(self.at).cloned().unwrap_or((0, Tok::End));
        self.at += 1;
        item
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek().1, Tok::Ident(w) if w == word)
    }

    fn expr(&mut self) -> Result<RowFilter, FilterError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.bump();
            left = RowFilter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<RowFilter, FilterError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.bump();
            left = RowFilter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<RowFilter, FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::TooDeep);
        }
        let result = if self.keyword("not") {
            self.bump();
            self.unary().map(|e| RowFilter::Not(Box::new(e)))
        } else {
            self.primary()
        };
        self.depth -= 1;
        result
    }

    fn primary(&mut self) -> Result<RowFilter, FilterError> {
        let (position, tok) = self.bump();
        match tok {
            Tok::LParen => {
                let inner = self.expr()?;
                match self.bump() {
                    (_, Tok::RParen) => Ok(inner),
                    (p, other) => Err(FilterError::Syntax {
                        position: p,
                        expected: "`)`, `and` or `or`",
                        found: other.describe(),
                    }),
                }
            }
            Tok::Ident(field) if !KEYWORDS.contains(&field.as_str()) => {
                self.comparison(position, field)
            }
            other => Err(FilterError::Syntax {
                position,
                expected: "a field, `not` or `(`",
                found: other.describe(),
            }),
        }
    }

    fn comparison(&mut self, position: usize, field: String) -> Result<RowFilter, FilterError> {
        let (op_at, op_tok) = self.bump();
        let op = match op_tok {
            Tok::Ident(w) if w == "has" => Op::Has,
            Tok::EqEq => Op::Eq,
            Tok::NotEq => Op::Ne,
            other => {
                return Err(FilterError::Syntax {
                    position: op_at,
                    expected: "`has`, `==` or `!=`",
                    found: other.describe(),
                });
            }
        };
        let value = match self.bump() {
            (_, Tok::Str(v)) => v,
            (p, other) => {
                return Err(FilterError::Syntax {
                    position: p,
                    expected: "a string in double quotes",
                    found: other.describe(),
                });
            }
        };
        self.check_field(position, &field, op, &value)?;
        Ok(RowFilter::Compare { field, op, value })
    }

    fn check_field(
        &self,
        position: usize,
        field: &str,
        op: Op,
        value: &str,
    ) -> Result<(), FilterError> {
        let refuse = |problem: &str| FilterError::Field {
            position,
            field: field.to_owned(),
            problem: problem.to_owned(),
        };
        let def = self
            .category
            .field(field)
            .ok_or_else(|| refuse(&format!("is not a field of `{}`", self.category.name)))?;
        if def.share == ShareClass::None {
            return Err(refuse("is never shared (share class `none`)"));
        }
        if def.encrypted && !def.indexed {
            return Err(refuse(
                "is encrypted and not indexed, so it cannot be filtered on",
            ));
        }
        match (&def.ty, op) {
            (FieldType::TagSet { values }, Op::Has) => {
                if !values.iter().any(|v| v == value) {
                    return Err(refuse(&format!(
                        "has no such tag; one of: {}",
                        values.join(", ")
                    )));
                }
            }
            (FieldType::TagSet { .. }, _) => {
                return Err(refuse("is a tag set: compare it with `has`"));
            }
            (_, Op::Has) => return Err(refuse("is not a tag set: compare it with `==` or `!=`")),
            (FieldType::Enum { values }, _) => {
                if !values.iter().any(|v| v == value) {
                    return Err(refuse(&format!(
                        "has no such value; one of: {}",
                        values.join(", ")
                    )));
                }
            }
            _ => {
                if value.trim().is_empty() {
                    return Err(refuse("cannot be compared with an empty string"));
                }
            }
        }
        Ok(())
    }
}

impl RowFilter<String> {
    /// Parse `text` and check it against `category`.
    pub fn parse(text: &str, category: &CategoryDef) -> Result<RowFilter, FilterError> {
        if text.chars().count() > MAX_CHARS {
            return Err(FilterError::TooLong);
        }
        let mut parser = Parser {
            toks: lex(text)?,
            at: 0,
            category,
            depth: 0,
        };
        let filter = parser.expr()?;
        match parser.bump() {
            (_, Tok::End) => Ok(filter),
            (position, other) => Err(FilterError::Syntax {
                position,
                expected: "`and`, `or` or the end",
                found: other.describe(),
            }),
        }
    }
}

impl<V> RowFilter<V> {
    /// The same filter with every literal converted by `f(field, literal)`.
    pub fn map_literals<W, E>(
        &self,
        f: &mut impl FnMut(&str, &V) -> Result<W, E>,
    ) -> Result<RowFilter<W>, E> {
        Ok(match self {
            RowFilter::Compare { field, op, value } => RowFilter::Compare {
                field: field.clone(),
                op: *op,
                value: f(field, value)?,
            },
            RowFilter::Not(e) => RowFilter::Not(Box::new(e.map_literals(f)?)),
            RowFilter::And(a, b) => {
                RowFilter::And(Box::new(a.map_literals(f)?), Box::new(b.map_literals(f)?))
            }
            RowFilter::Or(a, b) => {
                RowFilter::Or(Box::new(a.map_literals(f)?), Box::new(b.map_literals(f)?))
            }
        })
    }

    /// Does the record seen through `row` pass? Allocation-free.
    pub fn matches(&self, row: &impl RowView<V>) -> bool {
        match self {
            RowFilter::Compare { field, op, value } => match op {
                Op::Has => row.has(field, value),
                Op::Eq => row.equals(field, value),
                Op::Ne => !row.equals(field, value),
            },
            RowFilter::Not(e) => !e.matches(row),
            RowFilter::And(a, b) => a.matches(row) && b.matches(row),
            RowFilter::Or(a, b) => a.matches(row) || b.matches(row),
        }
    }

    /// The fields the filter reads (each once, in first-use order).
    pub fn fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        self.visit_fields(&mut |f| {
            if !out.contains(&f) {
                out.push(f);
            }
        });
        out
    }

    fn visit_fields<'a>(&'a self, f: &mut impl FnMut(&'a str)) {
        match self {
            RowFilter::Compare { field, .. } => f(field),
            RowFilter::Not(e) => e.visit_fields(f),
            RowFilter::And(a, b) | RowFilter::Or(a, b) => {
                a.visit_fields(f);
                b.visit_fields(f);
            }
        }
    }
}

/// Canonical text (fully parenthesised), which parses back to the same filter.
impl fmt::Display for RowFilter<String> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowFilter::Compare { field, op, value } => {
                let op = match op {
                    Op::Has => "has",
                    Op::Eq => "==",
                    Op::Ne => "!=",
                };
                let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
                write!(f, "{field} {op} \"{escaped}\"")
            }
            RowFilter::Not(e) => write!(f, "not ({e})"),
            RowFilter::And(a, b) => write!(f, "({a}) and ({b})"),
            RowFilter::Or(a, b) => write!(f, "({a}) or ({b})"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;

    use super::*;
    use crate::Catalog;

    fn person() -> CategoryDef {
        Catalog::default_catalog()
            .category("person")
            .unwrap()
            .clone()
    }

    fn parse(text: &str) -> Result<RowFilter, FilterError> {
        RowFilter::parse(text, &person())
    }

    /// A record's filterable fields, in the simplest possible form.
    #[derive(Default)]
    struct Row {
        tags: HashSet<String>,
        values: HashMap<String, String>,
    }

    impl RowView<String> for Row {
        fn has(&self, field: &str, value: &String) -> bool {
            field == "tags" && self.tags.contains(value)
        }
        fn equals(&self, field: &str, value: &String) -> bool {
            self.values.get(field) == Some(value)
        }
    }

    fn row(tags: &[&str], residence: &str) -> Row {
        Row {
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            values: [("residence".to_owned(), residence.to_owned())].into(),
        }
    }

    #[test]
    fn the_examples_of_the_contract_parse_and_evaluate() {
        let f = parse(r#"tags has "elderly_alone""#).unwrap();
        assert!(f.matches(&row(&["elderly_alone"], "registered")));
        assert!(!f.matches(&row(&["minor"], "registered")));
        let f = parse(r#"residence == "floating""#).unwrap();
        assert!(f.matches(&row(&[], "floating")));
        assert!(!f.matches(&row(&[], "registered")));
        let f = parse(
            r#"tags has "elderly_alone" and not (residence == "floating" or tags has "minor")"#,
        )
        .unwrap();
        assert!(f.matches(&row(&["elderly_alone"], "registered")));
        assert!(!f.matches(&row(&["elderly_alone"], "floating")));
        assert!(!f.matches(&row(&["elderly_alone", "minor"], "registered")));
        assert_eq!(f.fields(), vec!["tags", "residence"]);
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        let f = parse(r#"not tags has "minor" and residence != "floating" or tags has "veteran""#)
            .unwrap();
        assert_eq!(
            f.to_string(),
            r#"((not (tags has "minor")) and (residence != "floating")) or (tags has "veteran")"#
        );
    }

    #[test]
    fn syntax_errors_name_the_position_and_the_expected_token() {
        let cases = [
            (r#"tags has"#, 8, "a string in double quotes"),
            (r#"tags "x""#, 5, "`has`, `==` or `!=`"),
            (r#"(tags has "minor""#, 17, "`)`, `and` or `or`"),
            (r#"tags has "minor" tags"#, 17, "`and`, `or` or the end"),
            (r#"and"#, 0, "a field, `not` or `(`"),
            (r#"tags has "minor"#, 9, "a closing `\"`"),
            (r#"tags = "minor""#, 5, "a field, `not`, `(` or `)`"),
            ("", 0, "a field, `not` or `(`"),
        ];
        for (text, position, expected) in cases {
            match parse(text) {
                Err(FilterError::Syntax {
                    position: p,
                    expected: e,
                    ..
                }) => assert_eq!((p, e), (position, expected), "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        // `号码` is six bytes but two characters: the stray `!` is character 21 (byte 25).
        match parse("household_id == \"号码\" !") {
            Err(FilterError::Syntax { position, .. }) => assert_eq!(position, 21),
            other => panic!("{other:?}"),
        }
        match parse("household_id == \"号码\" and 号") {
            Err(FilterError::Syntax { position, .. }) => assert_eq!(position, 25),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fields_that_cannot_be_filtered_are_refused_by_name() {
        for (text, field) in [
            (r#"name == "张三""#, "name"),
            (r#"worker_notes == "x""#, "worker_notes"),
            (r#"shoe_size == "42""#, "shoe_size"),
            (r#"tags == "minor""#, "tags"),
            (r#"residence has "floating""#, "residence"),
            (r#"residence == "nomad""#, "residence"),
            (r#"tags has "rich""#, "tags"),
            (r#"phone == " ""#, "phone"),
        ] {
            match parse(text) {
                Err(FilterError::Field { field: f, .. }) => assert_eq!(f, field, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        // Indexed encrypted fields and plain fields are fine.
        assert!(parse(r#"id_number == "330102199001011234""#).is_ok());
        assert!(parse(r#"household_id == "H-1""#).is_ok());
    }

    #[test]
    fn errors_never_quote_string_literals() {
        for text in [
            r#"name == "张三丰""#,
            r#"tags "张三丰""#,
            r#"residence == "floating" "张三丰""#,
            r#"phone == "13812345678" )"#,
        ] {
            let message = parse(text).unwrap_err().to_string();
            assert!(
                !message.contains("张三丰") && !message.contains("1381234"),
                "{message}"
            );
        }
    }

    #[test]
    fn limits_hold() {
        let deep = format!("{}tags has \"minor\"{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(parse(&deep), Err(FilterError::TooDeep));
        let nots = format!("{}tags has \"minor\"", "not ".repeat(40));
        assert_eq!(parse(&nots), Err(FilterError::TooDeep));
        let long = vec![r#"tags has "minor""#; 80].join(" or ");
        assert_eq!(parse(&long), Err(FilterError::TooLong));
    }

    #[test]
    fn literals_map_to_what_the_evaluator_compares() {
        let f = parse(r#"tags has "minor" or residence == "floating""#).unwrap();
        let mapped: RowFilter<usize> = f
            .map_literals(&mut |field: &str, v: &String| Ok::<_, ()>(field.len() + v.len()))
            .unwrap();
        struct Lengths;
        impl RowView<usize> for Lengths {
            fn has(&self, _: &str, v: &usize) -> bool {
                *v == "tags".len() + "minor".len()
            }
            fn equals(&self, _: &str, _: &usize) -> bool {
                false
            }
        }
        assert!(mapped.matches(&Lengths));
    }

    fn arb_filter() -> impl Strategy<Value = RowFilter> {
        let leaf = prop_oneof![
            prop::sample::select(vec![
                "elderly_alone",
                "disabled",
                "low_income",
                "key_person",
                "minor",
                "veteran"
            ])
            .prop_map(|t| RowFilter::Compare {
                field: "tags".into(),
                op: Op::Has,
                value: t.into()
            }),
            (
                prop::sample::select(vec!["registered", "floating"]),
                any::<bool>()
            )
                .prop_map(|(v, eq)| {
                    RowFilter::Compare {
                        field: "residence".into(),
                        op: if eq { Op::Eq } else { Op::Ne },
                        value: v.into(),
                    }
                }),
            "[a-z\"\\\\张 ]{1,8}"
                .prop_filter("not blank", |s| !s.trim().is_empty())
                .prop_map(|v| {
                    RowFilter::Compare {
                        field: "household_id".into(),
                        op: Op::Eq,
                        value: v,
                    }
                }),
        ];
        leaf.prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| RowFilter::Not(Box::new(e))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| RowFilter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner).prop_map(|(a, b)| RowFilter::Or(Box::new(a), Box::new(b))),
            ]
        })
    }

    proptest! {
        #[test]
        fn printing_then_parsing_gives_the_same_filter(f in arb_filter()) {
            let text = f.to_string();
            prop_assert_eq!(parse(&text).unwrap(), f);
        }
    }
}
