//! `tokumei inspect`: what a source file holds and what is wrong with it.

use std::io::Write;
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

/// Text from a file made safe for a terminal: control characters (ESC, CR, ...) are shown as
/// escapes, never sent raw.
fn clean(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// Inspects every file under `paths`; exit 0 when no file has an error, 1 otherwise, 2 for a path
/// that cannot be read. Output that is no longer read (`inspect … | head`) ends the command
/// quietly.
pub fn run(paths: &[PathBuf], max_issues: usize) -> ExitCode {
    let mut files = Vec::new();
    for p in paths {
        if let Err(e) = files_under(p, &mut files) {
            eprintln!(
                "error: cannot read {}: {e}",
                clean(&p.display().to_string())
            );
            return ExitCode::from(2);
        }
    }
    let mut out = std::io::stdout().lock();
    match report(&files, max_issues, &mut out) {
        Ok(code) => code,
        Err(Stop::Closed) => ExitCode::SUCCESS,
        Err(Stop::Unreadable(f, e)) => {
            eprintln!(
                "error: cannot read {}: {e}",
                clean(&f.display().to_string())
            );
            ExitCode::from(2)
        }
    }
}

enum Stop {
    /// Standard output was closed (or failed): nothing more can be said.
    Closed,
    /// A file could not be read.
    Unreadable(PathBuf, std::io::Error),
}

impl From<std::io::Error> for Stop {
    fn from(_: std::io::Error) -> Stop {
        Stop::Closed
    }
}

fn report(files: &[PathBuf], max_issues: usize, out: &mut impl Write) -> Result<ExitCode, Stop> {
    let (mut inspected, mut skipped, mut with_errors) = (0usize, 0usize, 0usize);
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| Stop::Unreadable(f.clone(), e))?;
        let Some(r) = read_file(&f.to_string_lossy(), &bytes, "inspect") else {
            skipped += 1;
            continue;
        };
        inspected += 1;
        let name = clean(&f.display().to_string());
        writeln!(out, "{name}")?;
        writeln!(out, "  format    {}", r.kind.name())?;
        if r.entries > 0 {
            writeln!(out, "  entries   {}", r.entries)?;
        }
        if let Some(e) = r.encoding {
            writeln!(out, "  encoding  {}", e.name())?;
        }
        if !r.line_counts.is_empty() {
            let counts: Vec<String> = r
                .line_counts
                .iter()
                .map(|(k, v)| format!("{} {v}", clean(k)))
                .collect();
            writeln!(out, "  lines     {}", counts.join(", "))?;
        }
        writeln!(
            out,
            "  records   {} read, {} rejected; {} warnings, {} errors",
            r.records.len(),
            r.rejected.len(),
            r.warnings(),
            r.errors()
        )?;
        for (entry, i) in r.issues.iter().take(max_issues) {
            let sev = match i.severity {
                Severity::Warning => "warning",
                Severity::Error => "error",
            };
            let at = match entry {
                Some(e) => format!("{name}#{}", clean(e)),
                None => name.clone(),
            };
            writeln!(
                out,
                "  {sev:7}   {at}:{}: {}",
                i.position,
                clean(&i.message)
            )?;
        }
        if r.issues.len() > max_issues {
            writeln!(out, "  ... and {} more", r.issues.len() - max_issues)?;
        }
        if r.errors() > 0 || !r.rejected.is_empty() {
            with_errors += 1;
        }
    }
    writeln!(
        out,
        "{inspected} files inspected, {skipped} not in a supported format, {with_errors} with errors"
    )?;
    Ok(if with_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
#[derive(clap::Args)]
pub(crate) struct InspectArgs {
    /// Files or folders.
    #[arg(required = true)]
    pub(crate) paths: Vec<PathBuf>,
    /// Issues printed per file (all are counted).
    #[arg(long, default_value_t = 50)]
    pub(crate) max_issues: usize,
}
