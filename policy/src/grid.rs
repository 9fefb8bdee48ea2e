//! Grid codes. Invariant: a `GridCode` holds 1–6 dot-separated segments of `[0-9A-Za-z-]`, each
//! 1..=32 characters, and a logical code (first segment `L`) names at least one grid after `L`;
//! `GridCode::parse` is the only constructor, and serde goes through it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Most segments a code may have (city › district › street › community › grid, plus one spare).
const MAX_SEGMENTS: usize = 6;
/// Most characters in one segment.
const MAX_SEGMENT_CHARS: usize = 32;
/// First segment of every logical grid (a department's own network, e.g. `L.court-execution`).
const LOGICAL_ROOT: &str = "L";

/// What is wrong with a grid code. Messages name segment positions (1-based), never echo input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridCodeError {
    #[error("grid code is empty")]
    Empty,
    #[error("grid code has more than {MAX_SEGMENTS} segments")]
    TooManySegments,
    #[error("grid code segment {position} is empty")]
    EmptySegment { position: usize },
    #[error("grid code segment {position} is longer than {MAX_SEGMENT_CHARS} characters")]
    SegmentTooLong { position: usize },
    #[error("grid code segment {position} may contain only ASCII letters, digits and `-`")]
    InvalidCharacter { position: usize },
    #[error("a logical grid code needs a name after `L`")]
    BareLogicalRoot,
}

/// A grid's dotted code, e.g. `330110.003.012.004.021` or `L.court-execution`.
///
/// Invariant: see the module documentation; `contains` is prefix-by-whole-segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GridCode(String);

impl GridCode {
    /// Parses a grid code; the only way to build one.
    pub fn parse(code: &str) -> Result<GridCode, GridCodeError> {
        if code.is_empty() {
            return Err(GridCodeError::Empty);
        }
        let mut count = 0;
        for (index, segment) in code.split('.').enumerate() {
            let position = index + 1;
            if position > MAX_SEGMENTS {
                return Err(GridCodeError::TooManySegments);
            }
            if segment.is_empty() {
                return Err(GridCodeError::EmptySegment { position });
            }
            if segment.len() > MAX_SEGMENT_CHARS {
                return Err(GridCodeError::SegmentTooLong { position });
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(GridCodeError::InvalidCharacter { position });
            }
            count = position;
        }
        if count == 1 && code == LOGICAL_ROOT {
            return Err(GridCodeError::BareLogicalRoot);
        }
        Ok(GridCode(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `other` is this grid or lies beneath it. Compares whole segments, so `33011`
    /// does not contain `330110`.
    pub fn contains(&self, other: &GridCode) -> bool {
        match other.0.strip_prefix(self.0.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('.'),
            None => false,
        }
    }

    /// The enclosing grid, or `None` at the top of a hierarchy (a one-segment physical code, or
    /// a logical code directly under `L`, since `L` alone is not a grid).
    pub fn parent(&self) -> Option<GridCode> {
        let (parent, _) = self.0.rsplit_once('.')?;
        if parent == LOGICAL_ROOT {
            return None;
        }
        // INVARIANT (module): a prefix of whole segments of a valid code is itself valid.
        Some(GridCode(parent.to_owned()))
    }

    /// Number of segments, counting the `L` of a logical code (`L.court-execution` has depth 2).
    pub fn depth(&self) -> usize {
        self.0.split('.').count()
    }

    /// True for a department's logical grid (first segment `L`).
    pub fn is_logical(&self) -> bool {
        self.0.split('.').next() == Some(LOGICAL_ROOT)
    }
}

impl fmt::Display for GridCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for GridCode {
    type Error = GridCodeError;

    fn try_from(code: String) -> Result<Self, Self::Error> {
        GridCode::parse(&code)
    }
}

impl From<GridCode> for String {
    fn from(code: GridCode) -> String {
        code.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(s: &str) -> GridCode {
        GridCode::parse(s).unwrap()
    }

    #[test]
    fn physical_and_logical_codes_parse() {
        assert_eq!(code("330110.003.012.004.021").depth(), 5);
        assert!(!code("330110").is_logical());
        let logical = code("L.court-execution");
        assert!(logical.is_logical());
        assert_eq!(logical.depth(), 2);
        assert_eq!(logical.to_string(), "L.court-execution");
    }

    #[test]
    fn malformed_codes_are_rejected() {
        assert_eq!(GridCode::parse(""), Err(GridCodeError::Empty));
        assert_eq!(
            GridCode::parse("1.2.3.4.5.6.7"),
            Err(GridCodeError::TooManySegments)
        );
        assert_eq!(
            GridCode::parse("330110..003"),
            Err(GridCodeError::EmptySegment { position: 2 })
        );
        assert_eq!(
            GridCode::parse("330110."),
            Err(GridCodeError::EmptySegment { position: 2 })
        );
        assert_eq!(
            GridCode::parse(&"1".repeat(33)),
            Err(GridCodeError::SegmentTooLong { position: 1 })
        );
        assert_eq!(
            GridCode::parse("3301 10"),
            Err(GridCodeError::InvalidCharacter { position: 1 })
        );
        assert_eq!(
            GridCode::parse("330110.网格"),
            Err(GridCodeError::InvalidCharacter { position: 2 })
        );
        assert_eq!(GridCode::parse("L"), Err(GridCodeError::BareLogicalRoot));
    }

    #[test]
    fn containment_is_by_whole_segment() {
        assert!(code("330110").contains(&code("330110.003.012")));
        assert!(code("330110.003").contains(&code("330110.003")));
        assert!(!code("33011").contains(&code("330110")));
        assert!(!code("330110.003.012").contains(&code("330110.003")));
        assert!(!code("330110").contains(&code("L.court-execution")));
    }

    #[test]
    fn parent_walks_up_and_stops_at_the_top() {
        assert_eq!(code("330110.003.012").parent(), Some(code("330110.003")));
        assert_eq!(code("330110").parent(), None);
        assert_eq!(code("L.court.team-1").parent(), Some(code("L.court")));
        assert_eq!(code("L.court").parent(), None);
    }

    #[test]
    fn serde_goes_through_parse() {
        let parsed: GridCode = serde_json::from_str("\"330110.003\"").unwrap();
        assert_eq!(parsed, code("330110.003"));
        assert_eq!(serde_json::to_string(&parsed).unwrap(), "\"330110.003\"");
        assert!(serde_json::from_str::<GridCode>("\"330110..003\"").is_err());
    }

    fn segment() -> impl Strategy<Value = String> {
        "[0-9A-Za-z-]{1,32}"
    }

    fn segments(range: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(segment(), range)
            .prop_filter("`L` alone is not a grid", |s| s != &["L".to_owned()])
    }

    proptest! {
        #[test]
        fn parse_and_display_roundtrip(segs in segments(1..=6)) {
            let text = segs.join(".");
            let parsed = GridCode::parse(&text).unwrap();
            prop_assert_eq!(parsed.to_string(), text.clone());
            prop_assert_eq!(GridCode::parse(parsed.as_str()).unwrap(), parsed.clone());
            prop_assert_eq!(parsed.depth(), segs.len());
        }

        #[test]
        fn containment_is_reflexive(segs in segments(1..=6)) {
            let c = GridCode::parse(&segs.join(".")).unwrap();
            prop_assert!(c.contains(&c));
        }

        #[test]
        fn containment_is_transitive(
            a in segments(2..=2),
            b in segments(1..=2),
            c in segments(1..=2),
        ) {
            let ga = GridCode::parse(&a.join(".")).unwrap();
            let gb = GridCode::parse(&[a.clone(), b.clone()].concat().join(".")).unwrap();
            let gc = GridCode::parse(&[a, b, c].concat().join(".")).unwrap();
            prop_assert!(ga.contains(&gb) && gb.contains(&gc));
            prop_assert!(ga.contains(&gc));
            prop_assert!(!gc.contains(&ga));
        }

        #[test]
        fn containment_never_matches_a_partial_segment(
            segs in segments(1..=6),
            extra in "[0-9A-Za-z-]{1,8}",
        ) {
            let parent = GridCode::parse(&segs.join(".")).unwrap();
            let mut longer = segs.clone();
            let last = longer.last_mut().unwrap();
            last.push_str(&extra);
            prop_assume!(last.len() <= MAX_SEGMENT_CHARS);
            let sibling = GridCode::parse(&longer.join(".")).unwrap();
            prop_assert!(!parent.contains(&sibling));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
            let _ = GridCode::parse(&text);
        }
    }
}
