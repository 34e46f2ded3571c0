//! Files and folders written whole or not at all, and the one io error of the workspace.
//!
//! Everything Tokumei writes for keeps goes through here: a file is written beside its target
//! under a staging name, synced, renamed into place and its folder synced ([`write_atomic`],
//! [`StagedFile`] for writers that stream); a folder of outputs is filled under a staging name and
//! renamed into place once complete ([`StagedDir`], [`publish_dir`]). A staging file or folder
//! that is dropped before its commit is removed, so a failure leaves nothing half-written; a
//! process killed before the rename leaves only a staging name, never a partial target.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An io error naming the file or folder it happened to.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct IoError {
    /// The file or folder.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// Maps an io error to an [`IoError`] naming `path`: `.map_err(io(&p))`.
pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IoError + '_ {
    move |source| IoError {
        path: path.to_path_buf(),
        source,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "output".into())
}

/// The staging name beside `target` (`.NAME.staging`), for staging that a later run must find
/// (recovery); [`StagedFile`] and [`StagedDir`] add the process id to theirs.
pub fn staging_name(target: &Path) -> PathBuf {
    target.with_file_name(format!(".{}.staging", file_name(target)))
}

fn sync_parent(path: &Path) -> Result<(), IoError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir)),
        None => Ok(()),
    }
}

fn create_parent(path: &Path) -> Result<(), IoError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir).map_err(io(dir)),
        None => Ok(()),
    }
}

/// Writes `bytes` to `path` whole or not at all: a staging file beside it, synced, renamed into
/// place, the folder synced. Creates missing parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    let staged = StagedFile::new(path)?;
    let mut f = staged.create()?;
    f.write_all(bytes).map_err(io(staged.path()))?;
    drop(f);
    staged.commit()
}

/// A file written under a staging name beside its target, renamed into place by
/// [`StagedFile::commit`]; removed if dropped first.
#[derive(Debug)]
pub struct StagedFile {
    staging: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagedFile {
    /// Staging for `target` (`.NAME.staging-PID` beside it); creates missing parent folders.
    pub fn new(target: &Path) -> Result<Self, IoError> {
        create_parent(target)?;
        let staging = target.with_file_name(format!(
            ".{}.staging-{}",
            file_name(target),
            std::process::id()
        ));
        Ok(StagedFile {
            staging,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// The staging path, for writers that open it themselves.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Creates (truncates) the staging file.
    pub fn create(&self) -> Result<File, IoError> {
        File::create(&self.staging).map_err(io(&self.staging))
    }

    /// Syncs the staging file, renames it onto the target and syncs the folder.
    pub fn commit(mut self) -> Result<(), IoError> {
        File::open(&self.staging)
            .and_then(|f| f.sync_all())
            .map_err(io(&self.staging))?;
        std::fs::rename(&self.staging, &self.target).map_err(io(&self.target))?;
        self.committed = true;
        sync_parent(&self.target)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.staging);
        }
    }
}

/// A folder filled under a staging name beside its target, renamed into place by
/// [`StagedDir::commit`]; removed if dropped first.
#[derive(Debug)]
pub struct StagedDir {
    staging: PathBuf,
    target: PathBuf,
    replace: bool,
    committed: bool,
}

impl StagedDir {
    /// Staging for `target` (`.NAME.staging-PID` beside it, emptied if a killed run left it). With
    /// `replace`, the commit replaces a non-empty target; without, it refuses one.
    pub fn new(target: &Path, replace: bool) -> Result<Self, IoError> {
        create_parent(target)?;
        let staging = target.with_file_name(format!(
            ".{}.staging-{}",
            file_name(target),
            std::process::id()
        ));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        std::fs::create_dir(&staging).map_err(io(&staging))?;
        Ok(StagedDir {
            staging,
            target: target.to_path_buf(),
            replace,
            committed: false,
        })
    }

    /// The staging folder, to write into.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Moves the staging folder into place (replacing a non-empty target only if asked).
    pub fn commit(mut self) -> Result<(), IoError> {
        if self.replace && is_non_empty_dir(&self.target) {
            let old = self.staging.with_extension("old");
            std::fs::rename(&self.target, &old).map_err(io(&self.target))?;
            publish_dir(&self.staging, &self.target)?;
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        } else {
            publish_dir(&self.staging, &self.target)?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

fn is_non_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_some())
}

/// Renames a complete staging folder onto `target`, which must be absent or an empty folder,
/// and syncs the parent folder.
pub fn publish_dir(staging: &Path, target: &Path) -> Result<(), IoError> {
    if target.is_dir() && !is_non_empty_dir(target) {
        std::fs::remove_dir(target).map_err(io(target))?;
    }
    if target.exists() {
        return Err(IoError {
            path: target.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not an empty folder",
            ),
        });
    }
    std::fs::rename(staging, target).map_err(io(target))?;
    sync_parent(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_staging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("sub/a.txt");
        write_atomic(&p, b"one").expect("write");
        write_atomic(&p, b"two").expect("write");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        assert_eq!(names(&dir.path().join("sub")), vec!["a.txt"]);
    }

    #[test]
    fn a_dropped_staged_file_leaves_the_target_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"kept").expect("write");
        {
            let s = StagedFile::new(&p).expect("stage");
            let mut f = s.create().expect("create");
            f.write_all(b"half").expect("write");
        }
        assert_eq!(std::fs::read(&p).expect("read"), b"kept");
        assert_eq!(names(dir.path()), vec!["a.txt"]);
    }

    #[test]
    fn a_staged_folder_lands_whole_or_not_at_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        {
            let s = StagedDir::new(&out, false).expect("stage");
            std::fs::write(s.path().join("x"), b"1").expect("write");
        }
        assert!(!out.exists(), "dropped staging never appears as the target");
        assert!(names(dir.path()).is_empty());
        let s = StagedDir::new(&out, false).expect("stage");
        std::fs::write(s.path().join("x"), b"1").expect("write");
        s.commit().expect("commit");
        assert_eq!(names(&out), vec!["x"]);
        let s = StagedDir::new(&out, false).expect("stage");
        assert!(s.commit().is_err(), "a non-empty target is not replaced");
        let s = StagedDir::new(&out, true).expect("stage");
        std::fs::write(s.path().join("y"), b"2").expect("write");
        s.commit().expect("replace");
        assert_eq!(names(&out), vec!["y"]);
        assert_eq!(names(dir.path()), vec!["out"]);
    }

    #[test]
    fn errors_name_their_path() {
        let e = write_atomic(Path::new("/proc/no/such/folder/x"), b"").expect_err("fails");
        assert!(e.to_string().starts_with("/proc/no/such/folder"), "{e}");
    }
}
