//! `tokumei inspect`: what a source file holds and what is wrong with it, read through
//! `tokumei_formats::any::read_file` (the one entry point receipt uses too), as text or `--json`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokumei_formats::inspect::{files_under, inspect_file, Inspection};

#[derive(clap::Args)]
pub(crate) struct InspectArgs {
    /// Files or folders.
    #[arg(required = true)]
    pub(crate) paths: Vec<PathBuf>,
    /// Issues printed per file (all are counted).
    #[arg(long, default_value_t = 50)]
    pub(crate) max_issues: usize,
    /// Print one JSON object (docs/json.md) instead of text; the exit code is the same.
    #[arg(long)]
    pub(crate) json: bool,
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

/// A file's lines of the text report.
fn write_text(f: &Inspection, out: &mut impl Write) -> std::io::Result<()> {
    let name = clean(&f.path);
    writeln!(out, "{name}")?;
    writeln!(out, "  format    {}", f.format)?;
    if f.entries > 0 {
        writeln!(out, "  entries   {}", f.entries)?;
    }
    if let Some(e) = f.encoding {
        writeln!(out, "  encoding  {e}")?;
    }
    if !f.lines.is_empty() {
        let counts: Vec<String> = f
            .lines
            .iter()
            .map(|(k, v)| format!("{} {v}", clean(k)))
            .collect();
        writeln!(out, "  lines     {}", counts.join(", "))?;
    }
    writeln!(
        out,
        "  records   {} read, {} rejected; {} warnings, {} errors",
        f.records, f.rejected, f.warnings, f.errors
    )?;
    for i in &f.issues {
        let at = match &i.entry {
            Some(e) => format!("{name}#{}", clean(e)),
            None => name.clone(),
        };
        let position = tokumei_formats::Position {
            line: i.line,
            field: i.field,
        };
        writeln!(
            out,
            "  {:7}   {at}:{position}: {}",
            i.severity,
            clean(&i.message)
        )?;
    }
    let total = f.warnings + f.errors;
    if total > f.issues.len() {
        writeln!(out, "  ... and {} more", total - f.issues.len())?;
    }
    Ok(())
}

/// What `inspect --json` prints: every file read and the totals.
#[derive(serde::Serialize)]
struct Report {
    files: Vec<Inspection>,
    inspected: usize,
    not_supported: usize,
    with_errors: usize,
}

/// Inspects every file under `paths`; exit 0 when no file has an error, 1 otherwise, 2 for a path
/// that cannot be read. Output that is no longer read (`inspect … | head`) ends the command
/// quietly.
pub fn run(a: &InspectArgs) -> ExitCode {
    let mut files = Vec::new();
    for p in &a.paths {
        if let Err(e) = files_under(p, &mut files) {
            return unreadable(p, &e);
        }
    }
    let mut out = std::io::stdout().lock();
    let result = if a.json {
        json(&files, a.max_issues, &mut out)
    } else {
        text(&files, a.max_issues, &mut out)
    };
    match result {
        Ok(code) => code,
        Err(Stop::Closed) => ExitCode::SUCCESS,
        Err(Stop::Unreadable(f, e)) => unreadable(&f, &e),
    }
}

fn unreadable(path: &Path, e: &std::io::Error) -> ExitCode {
    eprintln!(
        "error: cannot read {}: {e}",
        clean(&path.display().to_string())
    );
    ExitCode::from(2)
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

/// Reads `f`: `None` when it is in no supported format.
fn inspect(f: &Path, max_issues: usize) -> Result<Option<Inspection>, Stop> {
    inspect_file(f, max_issues).map_err(|e| Stop::Unreadable(f.to_path_buf(), e))
}

fn exit_code(with_errors: usize) -> ExitCode {
    if with_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The text report, written as each file is read.
fn text(files: &[PathBuf], max_issues: usize, out: &mut impl Write) -> Result<ExitCode, Stop> {
    let (mut inspected, mut skipped, mut with_errors) = (0usize, 0usize, 0usize);
    for f in files {
        let Some(i) = inspect(f, max_issues)? else {
            skipped += 1;
            continue;
        };
        inspected += 1;
        write_text(&i, out)?;
        with_errors += usize::from(i.has_errors());
    }
    writeln!(
        out,
        "{inspected} files inspected, {skipped} not in a supported format, {with_errors} with errors"
    )?;
    Ok(exit_code(with_errors))
}

/// The JSON report, written once every file is read.
fn json(files: &[PathBuf], max_issues: usize, out: &mut impl Write) -> Result<ExitCode, Stop> {
    let mut report = Report {
        files: Vec::new(),
        inspected: 0,
        not_supported: 0,
        with_errors: 0,
    };
    for f in files {
        match inspect(f, max_issues)? {
            Some(i) => {
                report.inspected += 1;
                report.with_errors += usize::from(i.has_errors());
                report.files.push(i);
            }
            None => report.not_supported += 1,
        }
    }
    writeln!(out, "{}", crate::args::json(&report))?;
    Ok(exit_code(report.with_errors))
}
