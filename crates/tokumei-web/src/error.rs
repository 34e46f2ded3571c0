//! The server's errors.

use std::path::PathBuf;

/// What can fail while serving.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The home (catalog, keys, audit log).
    #[error(transparent)]
    Vault(#[from] tokumei_vault::VaultError),
    /// The review store (applications, the provision ledger).
    #[error(transparent)]
    Review(#[from] tokumei_review::ReviewError),
    /// The audit log.
    #[error(transparent)]
    Audit(#[from] tokumei_audit::AuditError),
    /// The operator's audit-log operations (verification, search).
    #[error(transparent)]
    Log(#[from] tokumei_vault::auditlog::LogError),
    /// Requests to stop (recorded and purged by the linkage crate).
    #[error(transparent)]
    Link(#[from] tokumei_link::LinkError),
    /// A feasibility count.
    #[error(transparent)]
    Feasibility(#[from] tokumei_feasibility::FeasibilityError),
    /// The certificate or its key.
    #[error("TLS: {0}")]
    Tls(String),
    /// A file or socket.
    #[error("{path}: {source}")]
    Io {
        /// What was being read or bound.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The route table names a route no handler serves.
    #[error("no handler for the route {0}")]
    Route(String),
    /// An upload is refused (its size, its hash, its state).
    #[error("upload refused: {0}")]
    Upload(String),
    /// Not enough free disk for a declared upload beside the open ones.
    #[error("upload refused: {0}")]
    NoRoom(String),
    /// A background task ended abnormally.
    #[error("a server task failed: {0}")]
    Task(String),
}

pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> WebError {
    WebError::Io {
        path: path.into(),
        source,
    }
}
