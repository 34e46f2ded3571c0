//! `tokumei receive`: packages into the vault.

use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::*;
use crate::operator;
use crate::{EXIT_FAILURE, EXIT_USAGE};

#[derive(clap::Args)]
pub(crate) struct ReceiveArgs {
    /// Operator home.
    #[arg(long)]
    home: PathBuf,
    /// Package files.
    #[arg(required = true)]
    packages: Vec<PathBuf>,
    /// Print one JSON object per package, in an array (docs/json.md), instead of text.
    #[arg(long)]
    json: bool,
    /// File holding the passphrase (otherwise TOKUMEI_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    user: operator::UserKeyArgs,
}

pub(crate) fn run_receive(a: ReceiveArgs) -> ExitCode {
    use tokumei_vault::receive::{Outcome, Stage};
    let prepared = (|| -> Result<_, operator::Failure> {
        let pass = passphrase(a.passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
        let home = tokumei_vault::open(&a.home).map_err(operator::fail)?;
        let session = operator::session(
            &home,
            &a.user,
            Some(&pass),
            "receive",
            &[tokumei_vault::access::Role::Technician],
        )?;
        let key = home.unlock_data_key(&pass).map_err(operator::fail)?;
        Ok((home, session, key))
    })();
    let (home, session, key) = match prepared {
        Ok(x) => x,
        Err((code, e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(code);
        }
    };
    let mut failed = 0;
    let mut results = Vec::new();
    for p in &a.packages {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} {msg} [{bar:30}] {pos}/{len}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let progress = |stage: Stage| match stage {
            Stage::Opening { bytes } => {
                bar.set_message(format!("{name}: decrypting and checking {bytes} bytes"));
                bar.tick();
            }
            Stage::Reading { done, total } => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(format!("{name}: reading files"));
            }
            Stage::Landing => bar.set_message(format!("{name}: writing into the vault")),
            Stage::Waiting => bar.set_message(format!(
                "{name}: waiting for another command to finish changing the home"
            )),
        };
        let outcome =
            tokumei_vault::receive::receive_with(&home, p, &session.user, &key, &progress);
        bar.finish_and_clear();
        if a.json {
            failed += usize::from(outcome.is_err());
            results.push(outcome_json(p, &outcome));
            continue;
        }
        match outcome {
            Ok(Outcome::Received {
                manifest, report, ..
            }) => {
                println!(
                    "{}: received package {} of {} ({} files; {} records in the manifest): {} \
                     records stored, {} quarantined, {} refused by opt-out, {} refused by the notice \
                     period; {} images stored, {} images refused with their patient",
                    p.display(),
                    manifest.package_id,
                    manifest.provider_id,
                    manifest.files.len(),
                    manifest.records(),
                    report.stored,
                    report.quarantined,
                    report.refusals.opted_out,
                    report.refusals.too_early,
                    report.images,
                    report.images_refused
                );
                for f in &report.mismatched {
                    println!(
                        "  warning: {f}: the records read differ from the count in the manifest"
                    );
                }
            }
            Ok(Outcome::AlreadyReceived {
                package_id,
                received_at,
            }) => println!(
                "{}: package {package_id} was already received on {received_at} with the same \
                 bytes; nothing changed",
                p.display()
            ),
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                failed += 1;
            }
        }
    }
    if a.json {
        println!("{}", crate::args::json(&results));
    }
    if failed > 0 {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// One package's outcome for `receive --json`.
fn outcome_json(
    path: &std::path::Path,
    outcome: &Result<tokumei_vault::receive::Outcome, tokumei_vault::VaultError>,
) -> serde_json::Value {
    use tokumei_vault::receive::Outcome;
    let file = path.display().to_string();
    match outcome {
        Ok(Outcome::Received {
            manifest, report, ..
        }) => serde_json::json!({
            "file": file,
            "outcome": "received",
            "package_id": manifest.package_id,
            "provider_id": manifest.provider_id,
            "files": manifest.files.len(),
            "records_in_manifest": manifest.records(),
            "stored": report.stored,
            "quarantined": report.quarantined,
            "refused_opted_out": report.refusals.opted_out,
            "refused_notice_period": report.refusals.too_early,
            "images": report.images,
            "images_refused": report.images_refused,
            "count_mismatches": report.mismatched,
        }),
        Ok(Outcome::AlreadyReceived {
            package_id,
            received_at,
        }) => serde_json::json!({
            "file": file,
            "outcome": "already_received",
            "package_id": package_id,
            "received_at": received_at,
        }),
        Err(e) => serde_json::json!({ "file": file, "outcome": "refused", "error": e.to_string() }),
    }
}
