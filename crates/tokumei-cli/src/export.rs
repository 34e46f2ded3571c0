//! `tokumei export`: exports from the identified zone under the two-person rule
//! (`tokumei_vault::export`): request, approve, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use tokumei_vault::access::Role;
use tokumei_vault::export::{self, ExportKind};

use crate::operator::{fail, open_home, render, report, session, AuthArgs, UserKeyArgs};
use crate::{passphrase, EXIT_USAGE};

#[derive(Subcommand)]
pub enum ExportCommand {
    /// Request an export from the identified zone (a technician); a second technician approves it.
    Request {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// quarantine (the report and the original files) or identities (CSV).
        #[arg(long)]
        kind: String,
        /// Package id.
        #[arg(long)]
        package: String,
        /// The age recipient the output is encrypted to (age1…).
        #[arg(long)]
        to: String,
        /// Why.
        #[arg(long)]
        purpose: String,
        /// Print the request's id as JSON (docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Approve a request: a technician other than the requester.
    Approve {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Request id.
        id: i64,
        /// Print the approved request as JSON (docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Run an approved request once (its requester or approver; needs the home passphrase).
    Run {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Request id.
        id: i64,
        /// Output file (age-encrypted tar).
        #[arg(long)]
        out: PathBuf,
        /// Print what was written as JSON (docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
        /// File holding the home passphrase (otherwise TOKUMEI_PASSPHRASE).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        user: UserKeyArgs,
    },
}

/// What `export request --json` prints.
#[derive(serde::Serialize)]
struct Requested {
    id: i64,
}

pub fn run_export(c: ExportCommand) -> ExitCode {
    match c {
        ExportCommand::Request {
            home,
            kind,
            package,
            to,
            purpose,
            json,
            auth,
        } => report(
            (|| {
                let kind = ExportKind::parse(&kind)
                    .ok_or((EXIT_USAGE, "--kind is quarantine or identities".to_string()))?;
                let home = open_home(&home)?;
                let s = auth.session(&home, "export.request", &[Role::Technician])?;
                export::request(&home, &s, kind, &package, &to, &purpose).map_err(fail)
            })(),
            |id| {
                render(json, &Requested { id }, |r| {
                    let id = r.id;
                    println!("export request {id} recorded; a second technician approves it with");
                    println!("  tokumei export approve --home H {id}");
                })
            },
        ),
        ExportCommand::Approve {
            home,
            id,
            json,
            auth,
        } => report(
            (|| {
                let home = open_home(&home)?;
                let s = auth.session(&home, "export.approve", &[Role::Technician])?;
                export::approve(&home, &s, id).map_err(fail)
            })(),
            |r| {
                render(json, &r, |r| {
                    println!(
                        "export {} approved by {} (requested by {})",
                        r.id,
                        r.approved_by.as_deref().unwrap_or_default(),
                        r.requested_by
                    )
                })
            },
        ),
        ExportCommand::Run {
            home,
            id,
            out,
            json,
            passphrase_file,
            user,
        } => report(
            (|| {
                let pass = passphrase(passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
                let home = open_home(&home)?;
                let s = session(&home, &user, Some(&pass), "export.run", &[Role::Technician])?;
                let key = home.unlock_data_key(&pass).map_err(fail)?;
                export::run(&home, &s, &key, id, &out).map_err(fail)
            })(),
            |x| {
                render(json, &x, |x| {
                    println!(
                        "export {} written to {}: {} file(s), {} bytes, encrypted to {}",
                        x.request.id,
                        out.display(),
                        x.files,
                        x.bytes,
                        x.request.recipient
                    )
                })
            },
        ),
    }
}
