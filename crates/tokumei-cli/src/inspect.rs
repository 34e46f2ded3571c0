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

/// Reads a ZIP archive of SS-MIX2 storage; `None` when it is not one.
fn read_archive(name: &str, bytes: &[u8]) -> Option<Vec<tokumei_formats::ssmix2::PatientReport>> {
    if !name.to_ascii_lowercase().contains("ssmix2") {
        return None;
    }
    tokumei_formats::ssmix2::read_zip(std::io::Cursor::new(bytes), "inspect").ok()
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
            if let Some(reports) = read_archive(&name, &bytes) {
                t.files += 1;
                for r in reports {
                    t.records += usize::from(r.record.is_some());
                    t.rejected += r.files.iter().map(|(_, f)| f.rejected.len()).sum::<usize>();
                    t.warnings += r.warnings();
                }
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
            let Some(reports) = read_archive(&name, &bytes) else {
                skipped += 1;
                continue;
            };
            inspected += 1;
            let patients = reports.len();
            let read = reports.iter().filter(|r| r.record.is_some()).count();
            let messages: usize = reports.iter().map(|r| r.files.len()).sum();
            let not_current: usize = reports.iter().map(|r| r.not_current).sum();
            let warnings: usize = reports.iter().map(|r| r.warnings()).sum();
            let errors: usize = reports.iter().map(|r| r.errors()).sum();
            println!("{}", f.display());
            println!("  format    SS-MIX2 storage (ZIP archive)");
            println!(
                "  messages  {messages} in {patients} patient folders ({not_current} not current)"
            );
            println!("  records   {read} read; {warnings} warnings, {errors} errors");
            let mut shown = 0;
            for r in &reports {
                for (path, fr) in &r.files {
                    for i in &fr.issues {
                        if shown < max_issues {
                            let sev = match i.severity {
                                Severity::Warning => "warning",
                                Severity::Error => "error",
                            };
                            println!(
                                "  {sev:7}   {}#{path}:{}: {}",
                                f.display(),
                                i.position,
                                i.message
                            );
                        }
                        shown += 1;
                    }
                }
            }
            if shown > max_issues {
                println!("  ... and {} more", shown - max_issues);
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
