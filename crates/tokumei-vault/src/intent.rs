//! Intents: no operation exists without its audit entry.
//!
//! An operation whose commit lives outside the audit log (a receipt in the catalog, a release in
//! the provision ledger) first appends a `<kind>.begin` entry and writes an intent file
//! (`intents/<kind>-<id>.json`, synced) naming what it is about to do. Once committed, it appends
//! its outcome entry and only then removes the intent. A command killed anywhere in between (or
//! stopped by a full disk at the outcome's append) leaves the intent behind; the next command that
//! takes the writer lock resolves it — the operation's owner looks at its commit point and either
//! completes the record (`ok`, written at recovery) or removes what was left and records that it
//! was rolled back. Either way the log ends up holding one outcome for every operation begun.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokumei_audit::Entry;

use crate::home::{io, Home, VaultError};

/// What an operation declared before it began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// The operation (`receive`, `release`).
    pub kind: String,
    /// Its object's id (a package or release id, of the one grammar).
    pub id: String,
    /// Who began it.
    pub actor: String,
    /// In which role.
    pub role: String,
    /// The provider it concerns, if any.
    pub provider: Option<String>,
    /// Paths the operation writes outside the vault's own layout (a release's staging and output
    /// folders), for its owner's recovery.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
}

/// An intent on disk, not yet resolved.
#[derive(Debug)]
pub struct Pending {
    path: PathBuf,
    /// What was declared.
    pub intent: Intent,
}

fn dir(home: &Home) -> PathBuf {
    home.root.join("intents")
}

/// Declares an operation: its `begin` entry, then its intent file (synced). The caller holds the
/// writer lock.
pub fn begin(home: &Home, intent: Intent) -> Result<Pending, VaultError> {
    tokumei_model::ids::check(tokumei_model::ids::IdKind::Package, &intent.id)
        .map_err(|e| VaultError::Refused(e.to_string()))?;
    home.audit()?.append(Entry::now(
        &intent.actor,
        &intent.role,
        &format!("{}.begin", intent.kind),
        &format!("{} {}", intent.kind, intent.id),
        "begun",
        intent.provider.as_deref(),
    ))?;
    let d = dir(home);
    std::fs::create_dir_all(&d).map_err(|e| io(&d, e))?;
    let path = d.join(format!("{}-{}.json", intent.kind, intent.id));
    let bytes = serde_json::to_vec_pretty(&intent).map_err(|e| VaultError::Store(e.to_string()))?;
    tokumei_fs::write_atomic(&path, &bytes)?;
    sync_dir(&d)?;
    Ok(Pending { path, intent })
}

/// Records the operation's outcome, then forgets the intent. If the append fails, the intent
/// stays for the next command's recovery.
pub fn finish(home: &Home, pending: Pending, outcome: Entry) -> Result<(), VaultError> {
    home.audit()?.append(outcome)?;
    std::fs::remove_file(&pending.path).map_err(|e| io(&pending.path, e))
}

/// The unresolved intents of `kind`, oldest first by name.
pub fn pending(home: &Home, kind: &str) -> Result<Vec<Pending>, VaultError> {
    let d = dir(home);
    let Ok(rd) = std::fs::read_dir(&d) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{kind}-");
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| io(&d, e))?;
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with(&prefix) || !name.ends_with(".json") {
            continue;
        }
        let path = e.path();
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let intent: Intent = serde_json::from_slice(&bytes)
            .map_err(|_| VaultError::Store(format!("{} is damaged", path.display())))?;
        if intent.kind != kind || !tokumei_model::ids::is_valid(&intent.id) {
            return Err(VaultError::Store(format!("{} is damaged", path.display())));
        }
        out.push(Pending { path, intent });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The outcome entry of an operation resolved at recovery: `committed` says whether its commit
/// point was reached.
pub fn recovered_entry(i: &Intent, committed: bool, what: &str) -> Entry {
    Entry::now(
        &i.actor,
        &i.role,
        &i.kind,
        &format!("{} {}", i.kind, i.id),
        &if committed {
            format!("ok (recorded at recovery: the command stopped after {what} was committed)")
        } else {
            format!("failed: interrupted before {what} was committed; rolled back at recovery")
        },
        i.provider.as_deref(),
    )
}

#[cfg(unix)]
fn sync_dir(d: &Path) -> Result<(), VaultError> {
    std::fs::File::open(d)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(d, e))
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> Result<(), VaultError> {
    Ok(())
}
