//! The small languages inside bodies: the row-filter language of grants, grid codes, and the
//! typed field values of the catalog with the disclosure transforms applied to them.

use std::sync::OnceLock;

use policy::transform::disclose;
use policy::{Catalog, Disclosure, FieldDef, FieldValue, FilterError, GridCode, RowFilter};
use serde_json::Value;

use super::{split_choice, text, vault};
use crate::decisions::compile_filter;

/// A grant's `row_filter` against one category of the default catalog (the first byte picks
/// it): parsing, printing and parsing again gives the same filter, and compiling it against
/// the blind index keeps its fields.
pub fn row_filter(data: &[u8]) {
    let categories = Catalog::default_catalog().categories();
    let count = u8::try_from(categories.len()).expect("a few categories");
    let Some((choice, rest)) = split_choice(data, count) else {
        return;
    };
    let category = &categories[usize::from(choice)];
    let Some(source) = text(rest) else {
        return;
    };
    let Ok(filter) = RowFilter::parse(source, category) else {
        return;
    };
    let printed = filter.to_string();
    match RowFilter::parse(&printed, category) {
        Ok(again) => assert_eq!(again, filter, "a printed filter parses to itself"),
        // Printing adds parentheses: a filter near the limits may no longer fit them.
        Err(FilterError::TooLong | FilterError::TooDeep) => {}
        Err(e) => panic!("a printed filter does not parse again: {e}"),
    }
    if let Ok(compiled) = compile_filter(vault(), category, &filter) {
        assert_eq!(
            compiled.fields(),
            filter.fields(),
            "compiling keeps the fields"
        );
    }
}

/// Grid codes, two per input (the lines of the text): a code parses to itself, serde reads
/// it the same way, its parents parse and contain it, and containment both ways is equality.
pub fn grid_code(data: &[u8]) {
    let Some(source) = text(data) else {
        return;
    };
    let (first, second) = source.split_once('\n').unwrap_or((source, ""));
    let codes: Vec<GridCode> = [first, second]
        .into_iter()
        .filter_map(checked_grid)
        .collect();
    if let [a, b] = codes.as_slice()
        && a.contains(b)
        && b.contains(a)
    {
        assert_eq!(a, b, "grids that contain each other are equal");
    }
}

fn checked_grid(source: &str) -> Option<GridCode> {
    let from_serde = serde_json::from_value::<GridCode>(Value::String(source.to_owned())).ok();
    let code = GridCode::parse(source).ok();
    assert_eq!(from_serde, code, "serde reads a grid code as `parse` does");
    let code = code?;
    assert_eq!(code.as_str(), source, "a grid code is kept as written");
    assert!(code.contains(&code));
    let mut child = code.clone();
    while let Some(parent) = child.parent() {
        assert!(
            parent.contains(&code) && parent != code,
            "a parent holds its child"
        );
        assert_eq!(
            parent.depth() + 1,
            child.depth(),
            "a parent is one segment up"
        );
        assert_eq!(
            GridCode::parse(parent.as_str()).ok().as_ref(),
            Some(&parent)
        );
        child = parent;
    }
    Some(code)
}

/// Every field of the default catalog, with its category's name.
fn fields() -> &'static [(&'static str, &'static FieldDef)] {
    static FIELDS: OnceLock<Vec<(&'static str, &'static FieldDef)>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        Catalog::default_catalog()
            .categories()
            .iter()
            .flat_map(|c| c.fields.iter().map(|f| (c.name.as_str(), f)))
            .collect()
    })
}

/// One submitted value of one catalog field (the first byte picks it; the rest is JSON, or
/// else taken as a JSON string): a value that parses is stored and read back unchanged, and
/// each disclosure level either withholds it or yields a value, a mask never the whole text.
pub fn field_value(data: &[u8]) {
    let fields = fields();
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let Some((_, def)) = fields.get(usize::from(*first) % fields.len()) else {
        return;
    };
    let submitted = match serde_json::from_slice::<Value>(rest) {
        Ok(v) => v,
        Err(_) => match text(rest) {
            Some(s) => Value::String(s.to_owned()),
            None => return,
        },
    };
    let Ok(value) = def.parse_value(&submitted) else {
        return;
    };
    let stored = value.to_json();
    assert_eq!(
        def.decode_stored(&stored).as_ref(),
        Ok(&value),
        "a stored value reads back as it was parsed"
    );
    let _ = value.index_terms();
    let grid = GridCode::parse("3301").expect("a grid code");
    for level in [
        Disclosure::Clear,
        Disclosure::Pseudonym,
        Disclosure::Masked,
        Disclosure::Generalized,
    ] {
        let shown = disclose(def, level, &value, &grid, |t| format!("p{}", t.len()));
        if level == Disclosure::Masked
            && let (Some(Value::String(masked)), Some(clear)) = (&shown, clear_text(&value))
            // A `*` the mask hides looks the same hidden: only values without one can tell.
            && !clear.is_empty()
            && !clear.contains('*')
        {
            assert_ne!(masked, clear, "a mask never shows the whole value");
            assert_eq!(masked.chars().count(), clear.chars().count());
        }
    }
}

fn clear_text(value: &FieldValue) -> Option<&str> {
    match value {
        FieldValue::Text(s) => Some(s.as_str()),
        FieldValue::IdNumber(id) => Some(id.as_str()),
        FieldValue::Phone(p) => Some(p.as_str()),
        _ => None,
    }
}
