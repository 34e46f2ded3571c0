//! What a source file holds and what is wrong with it, as `tokumei inspect` reports it: every file
//! under the paths given, read through [`crate::any::read_file`] (the one entry point receipt uses
//! too), summarised with its first issues.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::any::{read_file, FileRead};
use crate::Severity;

/// The files under `path`: the path itself when it is a file, else every file below it, sorted by
/// path within each folder.
pub fn files_under(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            files_under(&e, out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// What one file holds.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The file as named (or found under a folder given).
    pub path: String,
    /// Its format.
    pub format: &'static str,
    /// Archive entries read (0 for a plain file).
    pub entries: usize,
    /// Encoding detected (plain files).
    pub encoding: Option<&'static str>,
    /// Lines by record type (plain files).
    pub lines: BTreeMap<String, usize>,
    /// Records read.
    pub records: usize,
    /// Records rejected (quarantined by receipt).
    pub rejected: usize,
    /// Warnings.
    pub warnings: usize,
    /// Errors.
    pub errors: usize,
    /// The first warnings and errors, in file order.
    pub issues: Vec<IssueAt>,
}

/// A warning or error with its position.
#[derive(Debug, Clone, Serialize)]
pub struct IssueAt {
    /// `warning` or `error`.
    pub severity: &'static str,
    /// The archive entry it is in (archives only).
    pub entry: Option<String>,
    /// Line (1-based).
    pub line: usize,
    /// Field (1-based), when known.
    pub field: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl Inspection {
    /// The summary of a file read, with at most `max_issues` issues.
    pub fn of(path: &Path, r: &FileRead, max_issues: usize) -> Inspection {
        let issues = r
            .issues
            .iter()
            .take(max_issues)
            .map(|(entry, i)| IssueAt {
                severity: match i.severity {
                    Severity::Warning => "warning",
                    Severity::Error => "error",
                },
                entry: entry.clone(),
                line: i.position.line,
                field: i.position.field,
                message: i.message.clone(),
            })
            .collect();
        Inspection {
            path: path.display().to_string(),
            format: r.kind.name(),
            entries: r.entries,
            encoding: r.encoding.as_ref().map(|e| e.name()),
            lines: r.line_counts.clone(),
            records: r.records.len(),
            rejected: r.rejected.len(),
            warnings: r.warnings(),
            errors: r.errors(),
            issues,
        }
    }

    /// Whether the file has an error or a rejected record.
    pub fn has_errors(&self) -> bool {
        self.errors > 0 || self.rejected > 0
    }
}

/// Reads and summarises one file: `None` when it is in no supported format.
pub fn inspect_file(path: &Path, max_issues: usize) -> std::io::Result<Option<Inspection>> {
    let bytes = std::fs::read(path)?;
    Ok(read_file(&path.to_string_lossy(), &bytes, "inspect")
        .map(|r| Inspection::of(path, &r, max_issues)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_found_in_order_and_summarised() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("b")).expect("dir");
        std::fs::write(dir.path().join("b/notes.txt"), "nothing").expect("write");
        std::fs::write(dir.path().join("a.csv"), "x").expect("write");
        let mut files = Vec::new();
        files_under(dir.path(), &mut files).expect("walk");
        let names: Vec<_> = files.iter().filter_map(|f| f.file_name()).collect();
        assert_eq!(names, ["a.csv", "notes.txt"]);
        assert!(inspect_file(&files[1], 5).expect("read").is_none());
        assert!(inspect_file(&dir.path().join("missing"), 5).is_err());
    }
}
