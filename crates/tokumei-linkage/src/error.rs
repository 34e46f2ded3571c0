//! Errors of the linkage engine. Messages name files, lines and columns, never a cell's value.

use std::path::PathBuf;

/// Everything that can go wrong while reading inputs, validating settings or linking.
#[derive(Debug, thiserror::Error)]
pub enum LinkageError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The settings file is not valid TOML or does not match the settings schema.
    #[error("settings {file}: {message}")]
    Settings {
        /// Settings file (or `<inline>`).
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The settings refer to a column that they do not declare under `[columns]`.
    #[error(
        "settings {file}: {place} names unknown column `{column}` (declare it under [columns])"
    )]
    UnknownColumn {
        /// Settings file (or `<inline>`).
        file: String,
        /// Where in the settings (e.g. `comparisons[2]`).
        place: String,
        /// The column name.
        column: String,
    },
    /// An input table lacks a column that the settings use.
    #[error("{file}: missing column `{column}` (used by the settings)")]
    MissingColumn {
        /// Input file or dataset name.
        file: String,
        /// The column name.
        column: String,
    },
    /// A CSV cell is not valid text in the declared encoding.
    #[error("{file}: line {line}, column `{column}`: not valid {encoding} (set `encoding` in the settings, e.g. \"shift_jis\")")]
    Encoding {
        /// Input file.
        file: String,
        /// 1-based line.
        line: u64,
        /// Column name (or number when the header itself is unreadable).
        column: String,
        /// Declared encoding.
        encoding: String,
    },
    /// A CSV file is malformed.
    #[error("{file}: line {line}: {message}")]
    Csv {
        /// Input file.
        file: String,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// An input table is unusable as a whole (no header, duplicate column, ...).
    #[error("{file}: {message}")]
    Input {
        /// Input file or dataset name.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Blocking produced more candidate pairs than the configured limit.
    #[error("blocking produced more than {limit} candidate pairs; tighten the blocking rules or raise max_candidate_pairs")]
    TooManyPairs {
        /// The limit.
        limit: u64,
    },
    /// The engine that finds candidate pairs failed (a distributed engine's job).
    #[error("linkage engine: {message}")]
    Engine {
        /// What went wrong (never a value of a record).
        message: String,
    },
}
