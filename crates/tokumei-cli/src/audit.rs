//! `tokumei audit`: verify, checkpoint, export and verify exports of the audit log.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::args::*;
use crate::operator;
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
    },
}

/// A provider's audit entries: for a technician, an auditor, or that provider's own admin.
pub(crate) fn audit_export(
    home: &std::path::Path,
    provider: &str,
    out: &std::path::Path,
    auth: &HomeAuth,
) -> Result<usize, operator::Failure> {
    use tokumei_vault::access::Role;
    let home = tokumei_vault::open(home).map_err(operator::fail)?;
    let session = auth.session(
        &home,
        "audit.export",
        &[Role::Technician, Role::Auditor, Role::ProviderAdmin],
    )?;
    if session.role == Role::ProviderAdmin && session.provider_id.as_deref() != Some(provider) {
        session
            .audit(
                &home,
                "audit.export",
                "another provider's entries",
                "denied",
                None,
            )
            .map_err(operator::fail)?;
        return Err((
            EXIT_FAILURE,
            "denied: a provider's admin exports its own provider's entries only".into(),
        ));
    }
    let key = home.audit_public_key().map_err(operator::fail)?;
    let export = tokumei_audit::export_provider(&home.audit_dir(), &key, provider)
        .map_err(|e| (EXIT_FAILURE, e.to_string()))?;
    let json = serde_json::to_vec_pretty(&export).map_err(|e| (EXIT_FAILURE, e.to_string()))?;
    std::fs::write(out, json).map_err(|e| (EXIT_FAILURE, format!("{}: {e}", out.display())))?;
    session
        .audit(
            &home,
            "audit.export",
            &format!("{} entries", export.entries.len()),
            "ok",
            Some(provider),
        )
        .map_err(operator::fail)?;
    Ok(export.entries.len())
}

pub(crate) fn run_audit(a: AuditCommand) -> ExitCode {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_FAILURE)
    };
    match a {
        AuditCommand::Verify { home, checkpoint } => {
            let result = (|| -> Result<tokumei_audit::Verified, String> {
                let home = tokumei_vault::open(&home).map_err(|e| e.to_string())?;
                let checkpoint = match &checkpoint {
                    Some(f) => {
                        let bytes =
                            std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
                        Some(tokumei_audit::read_checkpoint(&bytes).map_err(|e| e.to_string())?)
                    }
                    None => None,
                };
                home.verify_audit(checkpoint.as_ref())
                    .map_err(|e| format!("audit log does not verify: {e}"))
            })();
            match result {
                Ok(v) => {
                    println!(
                        "audit log intact: {} entries, tree head {}{}",
                        v.entries,
                        v.head.map(|h| h.root).unwrap_or_default(),
                        if checkpoint.is_some() {
                            " (extends the checkpoint)"
                        } else {
                            ""
                        }
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        AuditCommand::Checkpoint { home, out } => {
            let result = (|| -> Result<tokumei_audit::SignedHead, String> {
                let home = tokumei_vault::open(&home).map_err(|e| e.to_string())?;
                let head = home
                    .verify_audit(None)
                    .map_err(|e| format!("audit log does not verify: {e}"))?
                    .operator_head
                    .ok_or("the audit log has no head signed by the operator yet")?;
                let json = serde_json::to_vec_pretty(&head).map_err(|e| e.to_string())?;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&out)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, &json))
                    .map_err(|e| format!("{}: {e}", out.display()))?;
                Ok(head)
            })();
            match result {
                Ok(h) => {
                    println!(
                        "checkpoint of {} entries written to {} (keep it outside the home)",
                        h.size,
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        AuditCommand::Export {
            home,
            provider,
            out,
            auth,
        } => operator::report(audit_export(&home, &provider, &out, &auth), |n| {
            println!("{n} entries of {provider} exported to {}", out.display())
        }),
        AuditCommand::VerifyExport {
            export,
            operator_key,
        } => {
            let result = (|| -> Result<usize, String> {
                let text = std::fs::read_to_string(&operator_key)
                    .map_err(|e| format!("{}: {e}", operator_key.display()))?;
                let key = tokumei_audit::public_key_from_hex(&text).map_err(|e| e.to_string())?;
                let bytes =
                    std::fs::read(&export).map_err(|e| format!("{}: {e}", export.display()))?;
                let export: tokumei_audit::ProviderExport =
                    serde_json::from_slice(&bytes).map_err(|e| format!("not an export: {e}"))?;
                tokumei_audit::verify_export(&export, &key).map_err(|e| e.to_string())
            })();
            match result {
                Ok(n) => {
                    println!("export verified: {n} entries proven in the operator's signed log");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("export does not verify: {e}")),
            }
        }
    }
}
