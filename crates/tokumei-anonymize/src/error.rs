//! Typed errors of the anonymization engine.

use thiserror::Error;

/// Everything that can go wrong while configuring or running an anonymization.
#[derive(Debug, Error)]
pub enum AnonError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A CSV input could not be parsed.
    #[error("CSV {path}: {message}")]
    Csv { path: String, message: String },
    /// A Parquet or Arrow input could not be read or written.
    #[error("Parquet/Arrow {path}: {message}")]
    Arrow { path: String, message: String },
    /// A hierarchy file or builder input is malformed.
    #[error("hierarchy {name}: {message}")]
    Hierarchy { name: String, message: String },
    /// The configuration names a column that the table does not have.
    #[error("unknown column `{0}` (not in the input table)")]
    UnknownColumn(String),
    /// A column was given two roles or listed twice.
    #[error("column `{0}` is configured more than once")]
    DuplicateColumn(String),
    /// A quasi-identifier has no generalization hierarchy.
    #[error("quasi-identifier `{0}` has no generalization hierarchy")]
    MissingHierarchy(String),
    /// A value present in the data is not covered by the column's hierarchy.
    #[error("hierarchy of `{column}` has no row for the value `{value}` found in the data")]
    ValueNotInHierarchy { column: String, value: String },
    /// A privacy model refers to an attribute that is not sensitive.
    #[error("privacy model {model} refers to `{attribute}`, which is not a sensitive attribute")]
    NotSensitive { model: String, attribute: String },
    /// A parameter is outside its domain.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// Models that cannot be satisfied together, or a table too small for them.
    #[error("contradictory configuration: {0}")]
    Contradiction(String),
    /// The configuration is missing something required.
    #[error("configuration: {0}")]
    Config(String),
    /// No transformation satisfies the privacy models within the suppression limit.
    #[error("no transformation satisfies {0} within the suppression limit")]
    NoSolution(String),
    /// A transformation given explicitly does not fit the lattice.
    #[error("invalid transformation: {0}")]
    InvalidTransformation(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, AnonError>;

impl AnonError {
    pub(crate) fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        AnonError::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn hierarchy(name: impl Into<String>, message: impl Into<String>) -> Self {
        AnonError::Hierarchy {
            name: name.into(),
            message: message.into(),
        }
    }
}
