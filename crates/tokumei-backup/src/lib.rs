//! Backups of the operator home, restore and relocation at another site, and key escrow.
//!
//! - [`target`]: where generations go (`config/backup.toml`): a folder (a mounted volume, write-once
//!   media) or SFTP to a second site over OpenSSH, with the site's host key pinned.
//! - [`restic`]: the engine. Generations are restic snapshots: content-defined chunks, addressed
//!   by their hash, deduplicated across generations, encrypted and authenticated (AES-256 in
//!   counter mode with Poly1305-AES) under the repository's master key, which restic keeps wrapped
//!   by the repository password (scrypt). The password is derived from the home's data key, so the
//!   backup target holds no plaintext and no secret of the home; key escrow recovers it with the
//!   data key, and `backup init` can also seal it to the relocation site's age recipient.
//! - [`stage`]: a consistent view of a home while it serves: under the writer lock, the SQLite
//!   catalogs through SQLite's online backup, the audit log up to its last whole line, every other
//!   file hard-linked (they are only ever replaced by rename, never changed in place).
//! - [`generation`]: `backup create | list | verify | prune`. Each generation names the
//!   operator-signed tree head it covers and is itself an audit entry; retention counts generations
//!   by that audit sequence, never by a client's clock.
//! - [`escrow`]: the data key, the receiving identity and the audit signing key split k-of-n among
//!   named custodians (Shamir's scheme over GF(256), the `blahaj` crate), each share wrapped by its
//!   custodian's own passphrase.
//! - [`restore`]: `restore --site`: two technicians, every chunk verified before anything is
//!   written, a staging home checked (audit log verified and extending the generation's head) and
//!   only then switched into place; re-keyed under a new passphrase.

pub mod escrow;
pub mod generation;
pub mod restic;
pub mod restore;
pub mod stage;
pub mod target;

use std::path::{Path, PathBuf};

use tokumei_vault::VaultError;

/// Errors of backups, restores and key escrow. Messages name files, generations and chunks, never
/// an identifying value or a secret.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The home refused or failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The backup engine failed.
    #[error("backup engine: {0}")]
    Engine(String),
    /// The repository is damaged: the missing or damaged chunks are named.
    #[error("damaged repository: {}", .0.join("; "))]
    Damaged(Vec<String>),
    /// Refused by a rule (two people, an older generation, a target in use).
    #[error("refused: {0}")]
    Refused(String),
    /// Key escrow failed (too few shares, shares of different splits, a wrong passphrase).
    #[error("escrow: {0}")]
    Escrow(String),
    /// The backup configuration is malformed.
    #[error("config/backup.toml: {0}")]
    Config(String),
}

impl From<tokumei_fs::IoError> for BackupError {
    fn from(e: tokumei_fs::IoError) -> Self {
        BackupError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl From<tokumei_audit::AuditError> for BackupError {
    fn from(e: tokumei_audit::AuditError) -> Self {
        BackupError::Vault(VaultError::Audit(e))
    }
}

/// An io error naming its file.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Appends an audit entry to `home`'s log (signed by whoever this process signs as).
pub(crate) fn audit(
    home: &tokumei_vault::Home,
    actor: &str,
    role: &str,
    action: &str,
    object: &str,
    outcome: &str,
) -> Result<tokumei_audit::SignedHead, BackupError> {
    let entry = tokumei_audit::Entry::now(actor, role, action, object, outcome, None);
    Ok(home.audit()?.append(entry).map_err(VaultError::Audit)?)
}
