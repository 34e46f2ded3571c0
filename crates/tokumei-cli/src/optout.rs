//! `tokumei optout`: requests to stop (停止の求め): add, import, purge.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::args::*;
use crate::operator;
use crate::{EXIT_FAILURE, EXIT_USAGE};

#[derive(Subcommand)]
pub(crate) enum OptoutCommand {
    /// Record one request, by provider + local patient id or by insurance identifiers, and purge the
    /// patient's records already held. Needs a technician.
    Add(Box<OptoutAddArgs>),
    /// Record every request of a CSV file (header: provider_id, local_patient_id, insurer_number,
    /// symbol, number, branch, requester, received_on, confirmed_on) and purge the records already
    /// held. Needs a technician.
    Import {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The CSV file.
        file: PathBuf,
        /// Print what was recorded and purged as JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        /// File holding the passphrase (otherwise TOKUMEI_PASSPHRASE).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        user: operator::UserKeyArgs,
    },
    /// Purge held records of every patient in the registry (recording a request does this already;
    /// run it to finish an interrupted purge).
    Purge {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Print what was purged as JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        /// File holding the passphrase (otherwise TOKUMEI_PASSPHRASE).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        user: operator::UserKeyArgs,
    },
}

#[derive(clap::Args)]
pub(crate) struct OptoutAddArgs {
    /// Operator home.
    #[arg(long)]
    home: PathBuf,
    /// Print what was recorded and purged as JSON (docs/json.md).
    #[arg(long)]
    json: bool,
    /// Provider of the local patient id.
    #[arg(long, requires = "patient_id")]
    provider: Option<String>,
    /// The provider's local patient id.
    #[arg(long, requires = "provider")]
    patient_id: Option<String>,
    /// 保険者番号.
    #[arg(long, requires = "number", conflicts_with = "patient_id")]
    insurer: Option<String>,
    /// 記号.
    #[arg(long)]
    symbol: Option<String>,
    /// 番号.
    #[arg(long, requires = "insurer")]
    number: Option<String>,
    /// 枝番.
    #[arg(long)]
    branch: Option<String>,
    /// Who asked: self, guardian or bereaved.
    #[arg(long)]
    requester: String,
    /// Date the request was received (YYYY-MM-DD).
    #[arg(long)]
    received: String,
    /// Date its receipt was confirmed to the requester (YYYY-MM-DD).
    #[arg(long)]
    confirmed: Option<String>,
    /// File holding the passphrase (otherwise TOKUMEI_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    user: operator::UserKeyArgs,
}

pub(crate) fn run_optout(a: OptoutCommand) -> ExitCode {
    use tokumei_vault::access::Role;
    use tokumei_vault::optout::{parse_csv, Request, Requester, Subject};
    let (home_path, pass_file, user) = match &a {
        OptoutCommand::Add(x) => (x.home.clone(), x.passphrase_file.clone(), x.user.clone()),
        OptoutCommand::Import {
            home,
            passphrase_file,
            user,
            ..
        }
        | OptoutCommand::Purge {
            home,
            passphrase_file,
            user,
            ..
        } => (home.clone(), passphrase_file.clone(), user.clone()),
    };
    let result = (|| -> Result<(usize, tokumei_vault::purge::PurgeReport), (u8, String)> {
        let pass = passphrase(pass_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
        let home = tokumei_vault::open(&home_path).map_err(operator::fail)?;
        let action = match &a {
            OptoutCommand::Purge { .. } => "optout.purge",
            _ => "optout.add",
        };
        let session = operator::session(&home, &user, Some(&pass), action, &[Role::Technician])?;
        let lock = writer_lock(&home, action)?;
        let data_key = home.unlock_data_key(&pass).map_err(operator::fail)?;
        let requests = match &a {
            OptoutCommand::Add(x) => {
                let subject = match (&x.provider, &x.patient_id, &x.insurer, &x.number) {
                    (Some(p), Some(l), _, _) => Subject::Patient {
                        provider_id: p.clone(),
                        local_patient_id: l.clone(),
                    },
                    (_, _, Some(i), Some(n)) => Subject::Insured {
                        insurer_number: i.clone(),
                        symbol: x.symbol.clone(),
                        number: n.clone(),
                        branch: x.branch.clone(),
                    },
                    _ => return Err((
                        EXIT_USAGE,
                        "name the patient: --provider and --patient-id, or --insurer and --number"
                            .into(),
                    )),
                };
                let requester = Requester::parse(&x.requester).ok_or((
                    EXIT_USAGE,
                    "--requester is self, guardian or bereaved".to_string(),
                ))?;
                vec![Request {
                    subject,
                    requester,
                    received_on: x.received.clone(),
                    confirmed_on: x.confirmed.clone(),
                }]
            }
            OptoutCommand::Import { file, .. } => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| (EXIT_FAILURE, format!("{}: {e}", file.display())))?;
                parse_csv(&text).map_err(operator::fail)?
            }
            OptoutCommand::Purge { .. } => Vec::new(),
        };
        let done = match &a {
            OptoutCommand::Purge { .. } => tokumei_link::purge::Recorded {
                requests: 0,
                purged: tokumei_link::purge::purge_all(&home, &session, &data_key, &lock)
                    .map_err(crate::link::fail)?,
            },
            _ => tokumei_link::purge::record_requests(&home, &session, &data_key, &requests, &lock)
                .map_err(crate::link::fail)?,
        };
        Ok((done.requests, done.purged))
    })();
    let json = match &a {
        OptoutCommand::Add(x) => x.json,
        OptoutCommand::Import { json, .. } | OptoutCommand::Purge { json, .. } => *json,
    };
    match result {
        Ok((n, purged)) if json => {
            let v = serde_json::json!({ "requests": n, "purged": purged });
            println!("{}", crate::args::json(&v));
            ExitCode::SUCCESS
        }
        Ok((n, purged)) => {
            if !matches!(a, OptoutCommand::Purge { .. }) {
                println!("{n} request(s) to stop recorded");
            }
            println!(
                "{} record(s) and {} event(s) already held were purged from {} package(s)",
                purged.records,
                purged.events,
                purged.touched.len()
            );
            ExitCode::SUCCESS
        }
        Err((code, e)) => {
            eprintln!("error: {e}");
            ExitCode::from(code)
        }
    }
}
