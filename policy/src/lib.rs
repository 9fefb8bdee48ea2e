//! Pure decision logic for Gridhub: grid codes, the data catalog, typed field values and
//! disclosure transforms. Invariant: no I/O and no async — every function here is a pure
//! computation over its arguments (and the compiled-in default catalog).

pub mod catalog;
pub mod grid;
pub mod row_filter;
pub mod transform;
pub mod value;

pub use catalog::{
    Catalog, CatalogError, CategoryDef, FieldDef, FieldType, GeneralizeRule, MaskRule, Sensitivity,
    ShareClass,
};
pub use grid::{GridCode, GridCodeError};
pub use row_filter::{FilterError, RowFilter, RowView};
pub use value::{FieldProblem, FieldValue, IdNumber, Phone, ValueProblem};
