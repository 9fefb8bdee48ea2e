//! Pure decision logic for Gridhub: grid codes, the data catalog, typed field values,
//! disclosure transforms, grants, cases and the decision engine. Invariant: no I/O and no
//! async — every function here is a pure computation over its arguments (and the compiled-in
//! default catalog).

pub mod calendar;
pub mod case;
pub mod catalog;
pub mod disclosure;
pub mod engine;
pub mod grant;
pub mod grid;
pub mod row_filter;
pub mod statistics;
pub mod transform;
pub mod value;

pub use calendar::{CalendarError, WorkingCalendar};
pub use case::{CaseStatus, CaseStep, Responsibility};
pub use catalog::{
    Catalog, CatalogError, CategoryDef, Evolution, FieldDef, FieldType, GeneralizeRule, MaskRule,
    Sensitivity, ShareClass,
};
pub use disclosure::{Disclosure, FieldPlan, Unreached, Withheld};
pub use engine::{
    Candidates, CompiledGrant, DecisionIndex, IndexError, LiveGrant, Record, RecordPlan, Refusal,
    Request,
};
pub use grant::{GrantAction, GrantStatus, GrantTerms};
pub use grid::{GridCode, GridCodeError};
pub use row_filter::{FilterError, RowFilter, RowView};
pub use statistics::{Dimension, StatisticsTerms};
pub use value::{FieldProblem, FieldValue, IdNumber, Phone, ValueProblem};
