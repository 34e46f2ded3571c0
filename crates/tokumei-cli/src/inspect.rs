//! `tokumei inspect`: what a source file holds and what is wrong with it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokumei_formats::{read, sniff, Severity};

fn files_under(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
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

/// What was read from a ZIP archive of source files.
struct ArchiveRead {
    /// What the archive holds.
    kind: &'static str,
    /// Entries (messages, documents) read.
    entries: usize,
    /// Records read (SS-MIX2: patients).
    records: usize,
    /// Records or messages rejected.
    rejected: usize,
    /// Issues, each with the entry it is in.
    issues: Vec<(String, tokumei_formats::Issue)>,
}

impl ArchiveRead {
    fn count(&self, severity: Severity) -> usize {
        self.issues
            .iter()
            .filter(|(_, i)| i.severity == severity)
            .count()
    }
}

/// Reads a ZIP archive: SS-MIX2 storage (name contains `ssmix2`) patient by patient, anything else
/// entry by entry in the entry's own format; `None` when it is not a readable archive.
fn read_archive(name: &str, bytes: &[u8]) -> Option<ArchiveRead> {
    let cursor = std::io::Cursor::new(bytes);
    if name.to_ascii_lowercase().contains("ssmix2") {
        let reports = tokumei_formats::ssmix2::read_zip(cursor, "inspect").ok()?;
        let mut out = ArchiveRead {
            kind: "SS-MIX2 storage (ZIP archive)",
            entries: 0,
            records: 0,
            rejected: 0,
            issues: Vec::new(),
        };
        for r in reports {
            out.records += usize::from(r.record.is_some());
            for (path, fr) in r.files {
                out.entries += 1;
                out.rejected += fr.rejected.len();
                out.issues
                    .extend(fr.issues.into_iter().map(|i| (path.clone(), i)));
            }
        }
        return Some(out);
    }
    let mut out = ArchiveRead {
        kind: "ZIP archive of source files",
        entries: 0,
        records: 0,
        rejected: 0,
        issues: Vec::new(),
    };
    tokumei_formats::archive::for_each_entry(cursor, |entry, data| {
        let file = entry.rsplit('/').next().unwrap_or(entry);
        let Some(format) = sniff(file, &data[..data.len().min(64)]) else {
            return;
        };
        if format == tokumei_formats::Format::Kenshin {
            out.kind = "特定健診 submission archive (CDA documents)";
        }
        let r = read(format, &data, "inspect");
        out.entries += 1;
        out.records += r.records.len();
        out.rejected += r.rejected.len();
        out.issues
            .extend(r.issues.into_iter().map(|i| (entry.to_string(), i)));
    })
    .ok()?;
    Some(out)
}

/// Totals of reading every supported file under a folder.
#[derive(Debug, Default)]
pub struct Totals {
    /// Files read.
    pub files: usize,
    /// Records read.
    pub records: usize,
    /// Records rejected.
    pub rejected: usize,
    /// Warnings.
    pub warnings: usize,
}

/// Reads every supported file under `root` without printing.
pub fn read_all(root: &Path) -> std::io::Result<Totals> {
    let mut files = Vec::new();
    files_under(root, &mut files)?;
    let mut t = Totals::default();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let bytes = std::fs::read(&f)?;
        if tokumei_formats::archive::is_zip(&bytes) {
            if let Some(a) = read_archive(&name, &bytes) {
                t.files += 1;
                t.records += a.records;
                t.rejected += a.rejected;
                t.warnings += a.count(Severity::Warning);
            }
            continue;
        }
        let Some(format) = sniff(&name, &bytes[..bytes.len().min(64)]) else {
            continue;
        };
        let r = read(format, &bytes, "demo");
        t.files += 1;
        t.records += r.records.len();
        t.rejected += r.rejected.len();
        t.warnings += r.warnings();
    }
    Ok(t)
}

/// Inspects every file under `paths`; exit 0 when no file has an error, 1 otherwise, 2 for a path
/// that cannot be read.
pub fn run(paths: &[PathBuf], max_issues: usize) -> ExitCode {
    let mut files = Vec::new();
    for p in paths {
        if let Err(e) = files_under(p, &mut files) {
            eprintln!("error: cannot read {}: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    let (mut inspected, mut skipped, mut with_errors) = (0usize, 0usize, 0usize);
    for f in &files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", f.display());
                return ExitCode::from(2);
            }
        };
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if tokumei_formats::archive::is_zip(&bytes) {
            let Some(a) = read_archive(&name, &bytes) else {
                skipped += 1;
                continue;
            };
            inspected += 1;
            let (warnings, errors) = (a.count(Severity::Warning), a.count(Severity::Error));
            println!("{}", f.display());
            println!("  format    {}", a.kind);
            println!("  entries   {}", a.entries);
            println!(
                "  records   {} read, {} rejected; {warnings} warnings, {errors} errors",
                a.records, a.rejected
            );
            for (entry, i) in a.issues.iter().take(max_issues) {
                let sev = match i.severity {
                    Severity::Warning => "warning",
                    Severity::Error => "error",
                };
                println!(
                    "  {sev:7}   {}#{entry}:{}: {}",
                    f.display(),
                    i.position,
                    i.message
                );
            }
            if a.issues.len() > max_issues {
                println!("  ... and {} more", a.issues.len() - max_issues);
            }
            if errors > 0 {
                with_errors += 1;
            }
            continue;
        }
        let Some(format) = sniff(&name, &bytes[..bytes.len().min(64)]) else {
            skipped += 1;
            continue;
        };
        inspected += 1;
        let report = read(format, &bytes, "inspect");
        println!("{}", f.display());
        println!("  format    {}", format.name());
        println!(
            "  encoding  {}",
            report.encoding.map(|e| e.name()).unwrap_or("unknown")
        );
        let counts: Vec<String> = report
            .line_counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("  lines     {}", counts.join(", "));
        println!(
            "  records   {} read, {} rejected; {} warnings, {} errors",
            report.records.len(),
            report.rejected.len(),
            report.warnings(),
            report.errors()
        );
        for i in report.issues.iter().take(max_issues) {
            let sev = match i.severity {
                Severity::Warning => "warning",
                Severity::Error => "error",
            };
            println!("  {sev:7}   {}:{}: {}", f.display(), i.position, i.message);
        }
        if report.issues.len() > max_issues {
            println!("  ... and {} more", report.issues.len() - max_issues);
        }
        if report.errors() > 0 {
            with_errors += 1;
        }
    }
    println!(
        "{inspected} files inspected, {skipped} not in a supported format, {with_errors} with errors"
    );
    if with_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
