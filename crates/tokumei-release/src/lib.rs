//! Release builds: from an approved application's scope to tables, a data dictionary, a report, a
//! manifest and a package encrypted to the recipient, recorded in the provision ledger.
//!
//! A build takes nothing but a [`tokumei_review::Scope`] (so an application that was not approved
//! cannot produce a release) and releases only the approved items. It selects the cohort from the
//! linked vault (persons of the master person index), leaves out every person with a record in the
//! opt-out registry or with the fingerprint of a person who asked to stop, gives every person a
//! per-release pseudonym (HMAC-SHA-256 under a random key made for this release and kept sealed in
//! the keys zone: never derivable from a source id, never shared between releases), and applies the
//! release kind's rules (RULES §11):
//!
//! - anonymized (`jp-anonymized`): dates to year-month; birth to year-month, age top-coded at 90 with
//!   the birth month removed; free text removed; numeric values clipped to the 1st–99th percentile;
//!   k-anonymity (k = 10) over the person's quasi-identifiers through the anonymization engine
//!   (`persons`: each column's hierarchy from the engine's builders, its optimal search within the
//!   suppression limit, its risk figures before and after) — jointly with the persons' events under
//!   (k, k^m)-anonymity (`events`: any 2 events an intruder knows, with the quasi-identifiers, are
//!   shared by at least k persons; codes and dates generalized along their hierarchies, only the
//!   events that must go removed); codes held by fewer than 10 persons generalized (ICD-10 to its
//!   3-character category, then its WHO chapter) or suppressed; the m-event intruder (`reid_events`)
//!   and the utility report (`utility`) with every release;
//! - pseudonymized (`jp-pseudonymized`): day-level dates and birth year-month kept, free text removed,
//!   k and uniqueness reported for the committee.
//!
//! Every output is checked again against the kind's machine checks before it is written; a release
//! that fails a check is not written.

pub mod build;
pub mod checks;
pub mod events;
pub mod images;
mod persons;
pub mod preset;
pub mod preview;
pub mod reid;
pub mod reid_events;
pub mod reid_test;
pub mod report;
pub mod signed;
pub mod utility;

pub use build::{build, build_approved, BuildOptions, Release};
pub use preset::Preset;

/// Errors of a release build.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The review gate refused.
    #[error(transparent)]
    Review(#[from] tokumei_review::ReviewError),
    /// The operator home failed.
    #[error(transparent)]
    Vault(#[from] tokumei_vault::VaultError),
    /// The master person index could not be read.
    #[error(transparent)]
    Link(#[from] tokumei_link::LinkError),
    /// The audit log failed.
    #[error(transparent)]
    Audit(#[from] tokumei_audit::AuditError),
    /// A file or folder could not be read or written.
    #[error(transparent)]
    Io(#[from] tokumei_fs::IoError),
    /// The output folder is not usable.
    #[error("{0}")]
    Output(String),
    /// A file or folder given to read (a release folder, a register, an answer key) is missing or
    /// not usable.
    #[error("{0}")]
    Input(String),
    /// The release failed a machine check of its preset and was not written.
    #[error("the release fails its preset's checks and was not written: {0}")]
    Check(String),
    /// The engine of the battery's register counts failed.
    #[error(transparent)]
    Register(#[from] tokumei_model::register::RegisterError),
    /// Nothing to release (empty cohort after the rules).
    #[error("{0}")]
    Empty(String),
}
