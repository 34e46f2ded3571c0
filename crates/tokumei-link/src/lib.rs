//! Linking the vault (名寄せ): which records held are one person.
//!
//! This crate stands between the vault (`tokumei-vault`: identities, opt-out registry, purges of
//! records) and everything that reads persons (`tokumei-review`, `tokumei-release`). It owns
//!
//! - the linked vault as its readers see it ([`linked`]: every package's identities and clinical
//!   tables, the persons the index defines with their sex, birth, municipality and death, and the
//!   persons who asked to stop);
//! - the master person index ([`mpi`]: record → random person id, stable across runs, encrypted
//!   under the data key in the identity zone);
//! - link runs ([`run()`]): every identity held through the record-linkage engine
//!   (`tokumei-linkage`) under the Japanese settings shipped here ([`JAPANESE`]), with the
//!   technicians' decisions applied (rejected pairs are cannot-link constraints of every run,
//!   accepted pairs join their persons unless that joins a rejected pair);
//! - the clerical review queue ([`review`]);
//! - purges of whole persons who asked to stop ([`purge`]): every record linked to a record in the
//!   registry, and the persons' fingerprints kept for later arrivals.
//!
//! Every operation takes the caller's writer lock as a witness
//! ([`tokumei_vault::lock::WriterLock`]) and audits what it did; nothing here prints.

pub mod linked;
pub mod mpi;
pub mod purge;
pub mod review;
mod run;

pub use run::{run, run_on, RunSummary};

/// The Japanese identity settings shipped with Tokumei: the default of every link run.
pub const JAPANESE: &str = include_str!("../settings/japanese.toml");

/// The shipped settings, parsed.
pub fn default_settings() -> Result<tokumei_linkage::Settings, LinkError> {
    Ok(tokumei_linkage::Settings::parse(JAPANESE, "japanese.toml")?)
}

/// What can go wrong while linking the vault.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The vault refused or failed.
    #[error(transparent)]
    Vault(#[from] tokumei_vault::VaultError),
    /// The linkage engine refused the settings or the data.
    #[error("linkage: {0}")]
    Engine(#[from] tokumei_linkage::LinkageError),
    /// The index could not be read or written.
    #[error("master person index: {0}")]
    Index(String),
    /// No random source.
    #[error("random source: {0}")]
    Random(String),
    /// File system error.
    #[error(transparent)]
    Io(#[from] tokumei_fs::IoError),
    /// No such pair in the review queue.
    #[error("no review pair {0}")]
    NoPair(u64),
    /// The pair was decided before.
    #[error("pair {id} was already {status}")]
    AlreadyDecided {
        /// Pair.
        id: u64,
        /// Its decision.
        status: String,
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_settings_parse_and_block_on_identity_columns() {
        let s = super::default_settings().expect("shipped settings");
        assert_eq!(s.id_column, "record_id");
        for c in s.used_columns() {
            assert!(
                tokumei_model::identity::IdentityRecord::COLUMNS.contains(&c.as_str()),
                "{c} is not an identity column"
            );
        }
    }
}
