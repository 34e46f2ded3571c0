//! `tokumei inspect`: what a source file holds and what is wrong with it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokumei_formats::any::read_file;
use tokumei_formats::Severity;

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
        let Some(r) = read_file(&f.to_string_lossy(), &bytes, "inspect") else {
            skipped += 1;
            continue;
        };
        inspected += 1;
        println!("{}", f.display());
        println!("  format    {}", r.kind.name());
        if r.entries > 0 {
            println!("  entries   {}", r.entries);
        }
        if let Some(e) = r.encoding {
            println!("  encoding  {}", e.name());
        }
        if !r.line_counts.is_empty() {
            let counts: Vec<String> = r
                .line_counts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            println!("  lines     {}", counts.join(", "));
        }
        println!(
            "  records   {} read, {} rejected; {} warnings, {} errors",
            r.records.len(),
            r.rejected.len(),
            r.warnings(),
            r.errors()
        );
        for (entry, i) in r.issues.iter().take(max_issues) {
            let sev = match i.severity {
                Severity::Warning => "warning",
                Severity::Error => "error",
            };
            match entry {
                Some(e) => println!(
                    "  {sev:7}   {}#{e}:{}: {}",
                    f.display(),
                    i.position,
                    i.message
                ),
                None => println!("  {sev:7}   {}:{}: {}", f.display(), i.position, i.message),
            }
        }
        if r.issues.len() > max_issues {
            println!("  ... and {} more", r.issues.len() - max_issues);
        }
        if r.errors() > 0 || !r.rejected.is_empty() {
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
