//! A consistent view of a home while it serves, in a folder the engine then reads at leisure.
//!
//! The caller holds the home's writer lock, so no receipt, linkage, release or purge is half-way.
//! What may still change under it is copied the way it changes:
//! - `*.sqlite`: SQLite's online backup API (a transaction-consistent copy while the web server
//!   writes its sessions); `-wal`, `-shm` and `-journal` files are not copied.
//! - `audit/entries.jsonl`: copied under a shared lock on the file (appends hold it exclusively),
//!   up to its last whole line.
//! - everything else: hard-linked. Tokumei never changes a file in place: files are written under a
//!   staging name and renamed over the old one, so a link keeps the old content whatever happens
//!   next, and restic's change detection (size, modification time, inode) sees an unchanged file.
//!
//! Left out: `locks/`, `work/` (scratch, and this stage itself), `web/tmp/`, and the staging files
//! of writes in progress (`.NAME.staging-PID`). A symbolic link in a home is refused: the home
//! holds none, and following one could copy what is not the home's.

use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokumei_audit::SignedHead;
use tokumei_vault::Home;

use crate::{io, BackupError};

/// The manifest at the root of every generation.
pub const MANIFEST: &str = "BACKUP.json";
/// Folders of the home that are never backed up.
const SKIP: [&str; 3] = ["locks", "work", "web/tmp"];

/// What a generation says of itself ([`MANIFEST`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `tokumei-backup/1`.
    pub format: String,
    /// The home's audit public key (hex): whose generation this is.
    pub audit_public_key: String,
    /// The last operator-signed tree head of the log in the generation.
    pub head: SignedHead,
    /// Entries in the generation's log (at least `head.size`).
    pub entries: u64,
    /// Files.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
}

/// A staged home.
#[derive(Debug)]
pub struct Staged {
    /// The folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Stages `home` into `dir` (emptied first), verifies the staged audit log and writes the
/// manifest. The caller holds the writer lock.
pub fn stage(home: &Home, dir: &Path) -> Result<Staged, BackupError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    tokumei_vault::home::make_private_dir(dir)?;
    let mut count = Count::default();
    copy_tree(&home.root, dir, Path::new(""), &mut count)?;
    let staged = tokumei_vault::open(dir)?;
    let verified = staged.verify_audit(None)?;
    let head = verified.operator_head.ok_or_else(|| {
        BackupError::Refused("the audit log holds no head signed by the operator".into())
    })?;
    let manifest = Manifest {
        format: "tokumei-backup/1".into(),
        audit_public_key: hex::encode(home.audit_public_key()?.to_bytes()),
        head,
        entries: verified.entries,
        files: count.files,
        bytes: count.bytes,
    };
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BackupError::Engine(format!("manifest: {e}")))?;
    tokumei_fs::write_atomic(&dir.join(MANIFEST), &text)?;
    Ok(Staged {
        dir: dir.to_path_buf(),
        manifest,
    })
}

#[derive(Default)]
struct Count {
    files: u64,
    bytes: u64,
}

fn skipped(rel: &Path, name: &str) -> bool {
    SKIP.iter().any(|s| rel == Path::new(s))
        || (name.starts_with('.') && name.contains(".staging-"))
        || name.ends_with(".sqlite-wal")
        || name.ends_with(".sqlite-shm")
        || name.ends_with(".sqlite-journal")
}

fn copy_tree(root: &Path, out: &Path, rel: &Path, count: &mut Count) -> Result<(), BackupError> {
    let from = root.join(rel);
    let mut names: Vec<_> = std::fs::read_dir(&from)
        .map_err(io(&from))?
        .collect::<Result<_, _>>()
        .map_err(io(&from))?;
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = rel.join(&name);
        if skipped(&rel, &name) {
            continue;
        }
        let src = root.join(&rel);
        let dst = out.join(&rel);
        let kind = e.file_type().map_err(io(&src))?;
        if kind.is_symlink() {
            return Err(BackupError::Refused(format!(
                "{} is a symbolic link; a home holds none",
                rel.display()
            )));
        }
        if kind.is_dir() {
            tokumei_vault::home::make_private_dir(&dst)?;
            copy_tree(root, out, &rel, count)?;
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        if name.ends_with(".sqlite") {
            sqlite_copy(&src, &dst)?;
        } else if rel == Path::new("audit").join(tokumei_audit::ENTRIES) {
            log_copy(&src, &dst)?;
        } else if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(io(&dst))?;
        }
        count.files += 1;
        count.bytes += std::fs::metadata(&dst).map_err(io(&dst))?.len();
    }
    Ok(())
}

/// A transaction-consistent copy of a live SQLite database.
fn sqlite_copy(src: &Path, dst: &Path) -> Result<(), BackupError> {
    let db = |e: rusqlite::Error| BackupError::Engine(format!("{}: {e}", src.display()));
    let from = rusqlite::Connection::open_with_flags(
        src,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    from.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(db)?;
    from.backup(rusqlite::DatabaseName::Main, dst, None)
        .map_err(db)?;
    Ok(())
}

/// The audit log up to its last whole line, read under a shared lock.
fn log_copy(src: &Path, dst: &Path) -> Result<(), BackupError> {
    let f = File::open(src).map_err(io(src))?;
    f.lock_shared().map_err(io(src))?;
    let mut reader = std::io::BufReader::new(&f);
    let mut out = std::io::BufWriter::new(File::create(dst).map_err(io(dst))?);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io(src))?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        out.write_all(&line).map_err(io(dst))?;
    }
    out.flush().map_err(io(dst))?;
    Ok(())
}
