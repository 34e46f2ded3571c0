//! `tokumei audit`: verify, checkpoint, export and verify exports of the audit log
//! (`tokumei_vault::auditlog`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use tokumei_vault::access::Role;
use tokumei_vault::auditlog::{self, LogError};

use crate::args::*;
use crate::operator::{self, render, Failure};
use crate::EXIT_FAILURE;

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the whole log; exits 0 only on an intact log, 1 naming the first bad entry otherwise.
    Verify {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// A signed tree head kept outside the home (`audit checkpoint`, or a provider's export):
        /// the log must extend it, so entries removed from its end or rewritten are caught.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Print the entries verified and the tree head as JSON (docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write the last tree head the operator signed (JSON) to keep outside the home, for
    /// `audit verify --checkpoint`; the log is verified first.
    Checkpoint {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Output file (not overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Print the checkpoint written as JSON (docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Export one provider's entries with inclusion proofs and the signed tree head (JSON).
    Export {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Provider id.
        #[arg(long, value_parser = crate::parse_id)]
        provider: String,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Print what was exported as JSON (docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: HomeAuth,
    },
    /// Verify a provider export with nothing but the operator's audit public key.
    VerifyExport {
        /// The export (JSON).
        export: PathBuf,
        /// File holding the operator's audit public key (hex), e.g. H/audit.pub.
        #[arg(long)]
        operator_key: PathBuf,
        /// Print what was proven as JSON (docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Prints an error and returns exit code 1 (every failure of the log's checks).
fn failed(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_FAILURE)
}

pub(crate) fn run_audit(a: AuditCommand) -> ExitCode {
    match a {
        AuditCommand::Verify {
            home,
            checkpoint,
            json,
        } => match verify(&home, checkpoint.as_deref()) {
            Ok(v) => {
                render(json, &v, |v| {
                    println!(
                        "audit log intact: {} entries, tree head {}{}",
                        v.entries,
                        v.root,
                        if v.extends_checkpoint {
                            " (extends the checkpoint)"
                        } else {
                            ""
                        }
                    )
                });
                ExitCode::SUCCESS
            }
            Err(e) => failed(&e),
        },
        AuditCommand::Checkpoint { home, out, json } => {
            let written = tokumei_vault::open(&home)
                .map_err(LogError::from)
                .and_then(|h| auditlog::write_checkpoint(&h, &out));
            match written {
                Ok(h) => {
                    render(json, &h, |h| {
                        println!(
                            "checkpoint of {} entries written to {} (keep it outside the home)",
                            h.size,
                            out.display()
                        )
                    });
                    ExitCode::SUCCESS
                }
                Err(e) => failed(&e),
            }
        }
        AuditCommand::Export {
            home,
            provider,
            out,
            json,
            auth,
        } => operator::report(audit_export(&home, &provider, &out, &auth), |x| {
            render(json, &x, |x| {
                println!(
                    "{} entries of {provider} exported to {}",
                    x.entries,
                    out.display()
                )
            })
        }),
        AuditCommand::VerifyExport {
            export,
            operator_key,
            json,
        } => match auditlog::verify_export(&export, &operator_key) {
            Ok(v) => {
                render(json, &v, |v| {
                    println!(
                        "export verified: {} entries proven in the operator's signed log",
                        v.entries
                    )
                });
                ExitCode::SUCCESS
            }
            Err(e) => failed(&format!("export does not verify: {e}")),
        },
    }
}

/// Verifies the log of the home at `home`, against the checkpoint in `checkpoint` if given.
fn verify(
    home: &std::path::Path,
    checkpoint: Option<&std::path::Path>,
) -> Result<auditlog::Verified, LogError> {
    let home = tokumei_vault::open(home)?;
    let checkpoint = checkpoint.map(auditlog::read_checkpoint).transpose()?;
    auditlog::verify(&home, checkpoint.as_ref())
}

/// A provider's audit entries: for a technician, an auditor, or that provider's own admin.
fn audit_export(
    home: &std::path::Path,
    provider: &str,
    out: &std::path::Path,
    auth: &HomeAuth,
) -> Result<auditlog::Exported, Failure> {
    let home = tokumei_vault::open(home).map_err(operator::fail)?;
    let roles = [Role::Technician, Role::Auditor, Role::ProviderAdmin];
    let session = auth.session(&home, "audit.export", &roles)?;
    auditlog::export_provider(&home, &session, provider, out).map_err(operator::fail)
}
