//! `tokumei package` (provider side): seal an extract into a package for the operator.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::args::*;
use crate::{EXIT_FAILURE, EXIT_USAGE};

#[derive(clap::Args)]
pub(crate) struct PackageArgs {
    /// The provider's signing key (<id>.key); the provider id is its file stem unless --provider.
    #[arg(long)]
    provider_key: PathBuf,
    /// Provider id (default: the key file's stem).
    #[arg(long, value_parser = parse_id)]
    provider: Option<String>,
    /// The operator's age recipient (age1...), or a file holding it (the home's operator.recipient).
    #[arg(long)]
    to: String,
    /// Folder of the extract.
    #[arg(long = "in")]
    input: PathBuf,
    /// Package file to write.
    #[arg(long)]
    out: PathBuf,
    /// Extraction date (YYYY-MM-DD; default today).
    #[arg(long, value_parser = parse_date)]
    extracted_on: Option<String>,
    /// First day covered (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    period_from: Option<String>,
    /// Last day covered (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    period_to: Option<String>,
    /// The provider's notice filing reference.
    #[arg(long)]
    notice_filing: Option<String>,
    /// Date the provider's notice to patients began (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    notice_start: Option<String>,
    /// Leave out files with this extension (repeatable; e.g. `--exclude parquet` for the canonical
    /// tables `tokumei synth` writes beside a provider's native extract). Files in no source
    /// format are packed otherwise, named in a warning: the operator quarantines them.
    #[arg(long = "exclude", value_name = "EXT")]
    exclude: Vec<String>,
    /// Print the signed manifest as JSON (docs/json.md) instead of text; warnings still go to
    /// standard error.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run_package(a: PackageArgs) -> ExitCode {
    if a.out.is_dir() {
        eprintln!(
            "error: --out {} is a folder; the package is written to a file",
            a.out.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let result = (|| -> Result<tokumei_vault::package::Manifest, String> {
        let text = std::fs::read_to_string(&a.provider_key)
            .map_err(|e| format!("{}: {e}", a.provider_key.display()))?;
        let key = tokumei_audit::key_from_hex(&text).map_err(|e| e.to_string())?;
        let provider = a.provider.clone().unwrap_or_else(|| {
            a.provider_key
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default()
        });
        let opts = tokumei_vault::package::PackageOptions {
            extracted_on: a.extracted_on.clone(),
            period_from: a.period_from.clone(),
            period_to: a.period_to.clone(),
            notice_filing: a.notice_filing.clone(),
            notice_start: a.notice_start.clone(),
            package_id: None,
            exclude_extensions: a
                .exclude
                .iter()
                .map(|e| e.trim_start_matches('.').to_string())
                .collect(),
        };
        // The recipient is the `age1…` text or a file holding it (the home's operator.recipient).
        let to = match std::fs::read_to_string(&a.to) {
            Ok(text) if std::path::Path::new(&a.to).is_file() => text.trim().to_string(),
            _ => a.to.clone(),
        };
        tokumei_vault::package::package(&key, &provider, &to, &a.input, &a.out, &opts)
            .map_err(|e| e.to_string())
    })();
    match result {
        Ok(m) => {
            crate::operator::render(a.json, &m, |m| {
                println!(
                    "package {} of {}: {} files, {} records, sealed to {}",
                    m.package_id,
                    m.provider_id,
                    m.files.len(),
                    m.records(),
                    a.out.display()
                )
            });
            let unread: Vec<&str> = m
                .files
                .iter()
                .filter(|f| f.format.is_none())
                .map(|f| f.path.as_str())
                .collect();
            if !unread.is_empty() {
                eprintln!(
                    "warning: {} file(s) are in no source format and will be quarantined at receipt: \
                     {} (leave them out with --exclude EXT)",
                    unread.len(),
                    unread.join(", ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
