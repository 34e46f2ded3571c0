//! Canonical model of Tokumei.
//!
//! Every source format is read into, and every synthetic extract is written from, the same flat tables:
//!
//! * [`identity::IdentityRecord`]: the identifying fields of one source record (names in kanji and kana,
//!   birth date, sex, address, insurance identifiers, provider-local patient id). These belong to the
//!   identity zone only.
//! * clinical events ([`events`]): encounters, diagnoses, prescriptions, procedures, lab and checkup
//!   results and deaths, each keyed by the opaque `record_id` of the identity record it came with and
//!   carrying no identifying field.
//! * truth tables ([`truth`]): the answer key a synthetic region ships for linkage and
//!   re-identification tests.
//!
//! Each table has an Arrow schema ([`table::Table::schema`]) and converts to and from Arrow record batches.

pub mod checkdigit;
pub mod codes;
pub mod events;
pub mod identity;
pub mod ids;
pub mod postings;
pub mod register;
pub mod table;
pub mod truth;

pub use codes::{CodeSystem, DiagnosisOutcome, InsuranceKind, Setting, Sex, SourceKind};
pub use table::Table;

/// Errors of the canonical model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An Arrow operation failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A column expected by the table is absent.
    #[error("missing column `{0}`")]
    MissingColumn(String),
    /// A column has another Arrow type than the table declares.
    #[error("column `{column}` has type {found}, which this table does not expect")]
    ColumnType {
        /// Column name.
        column: String,
        /// The Arrow type found.
        found: String,
    },
    /// A non-nullable column holds a null.
    #[error("column `{column}` is null at row {row}")]
    UnexpectedNull {
        /// Column name.
        column: String,
        /// Row index in the batch.
        row: usize,
    },
    /// A value is not valid for its column (unknown code, date out of range).
    #[error("column `{column}` holds an invalid value `{value}`")]
    InvalidValue {
        /// Column name.
        column: String,
        /// The offending value (codes only, never identifying values).
        value: String,
    },
}

/// Completed years of age on `on` for someone born on `birth`.
pub fn age_on(birth: chrono::NaiveDate, on: chrono::NaiveDate) -> i32 {
    use chrono::Datelike;
    let mut age = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}
