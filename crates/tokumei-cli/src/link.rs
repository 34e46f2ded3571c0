//! `tokumei link` and `tokumei link review`: argument parsing and rendering around
//! `tokumei_link::run`, `tokumei_link::review::pending` and `tokumei_link::review::decide`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tokumei_link::review::{Decision, PendingPair};
use tokumei_link::{LinkError, RunSummary};
use tokumei_linkage::Settings;
use tokumei_vault::access::Role;

use crate::operator::{report, session, Failure, UserKeyArgs};
use crate::{passphrase, EXIT_FAILURE, EXIT_USAGE};

/// Maps a linking error to an exit code and message.
pub fn fail(e: LinkError) -> Failure {
    match e {
        LinkError::Vault(v) => crate::operator::fail(v),
        e => (EXIT_FAILURE, e.to_string()),
    }
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LinkArgs {
    #[command(subcommand)]
    sub: Option<LinkSub>,
    /// Operator home.
    #[arg(long)]
    home: Option<PathBuf>,
    /// Linkage settings (default: the Japanese identity settings shipped with Tokumei).
    #[arg(long)]
    settings: Option<PathBuf>,
    /// Print the run's summary as JSON (docs/json.md).
    #[arg(long)]
    json: bool,
    /// File holding the home passphrase (otherwise TOKUMEI_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    user: UserKeyArgs,
    #[command(flatten)]
    engine: crate::engine::EngineArgs,
}

#[derive(Subcommand)]
enum LinkSub {
    /// The clerical review queue: list pending pairs side by side, or accept / reject one. Accepted
    /// pairs are joined at the next run.
    Review {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Accept pair N (the same person).
        #[arg(long, conflicts_with = "reject")]
        accept: Option<u64>,
        /// Reject pair N (different persons).
        #[arg(long)]
        reject: Option<u64>,
        /// Print JSON (docs/json.md): the pending pairs, or the decision recorded.
        #[arg(long)]
        json: bool,
        /// File holding the home passphrase (otherwise TOKUMEI_PASSPHRASE).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        user: UserKeyArgs,
    },
}

fn summary_text(x: &RunSummary) -> String {
    format!(
        "master person index: {} records of {} persons ({} candidate pairs scored); {} persons \
         created, {} merges, {} splits; {} accepted pair(s) joined, {} left apart (they would join \
         a rejected pair); {} pairs wait for review (tokumei link review); {} records purged for \
         requests to stop",
        x.records,
        x.persons,
        x.candidates,
        x.changes.created,
        x.changes.merges,
        x.changes.splits,
        x.accepted_joined,
        x.accepted_refused,
        x.pending,
        x.purged
    )
}

pub fn run(a: LinkArgs) -> ExitCode {
    match a.sub {
        Some(LinkSub::Review {
            home,
            accept,
            reject,
            json,
            passphrase_file,
            user,
        }) => review(home, (accept, reject), json, passphrase_file, user),
        None => report(
            (|| {
                let home_path = a
                    .home
                    .clone()
                    .ok_or((EXIT_USAGE, "--home is required".to_string()))?;
                let settings = match &a.settings {
                    Some(p) => Settings::load(p).map_err(|e| (EXIT_USAGE, e.to_string()))?,
                    None => tokumei_link::default_settings().map_err(fail)?,
                };
                let engine = a
                    .engine
                    .pair_engine(&home_path.join("work").join("engine"))
                    .map_err(|e| (EXIT_USAGE, e))?;
                let pass = passphrase(a.passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
                let home = tokumei_vault::open(&home_path).map_err(crate::operator::fail)?;
                let s = session(&home, &a.user, Some(&pass), "link.run", &[Role::Technician])?;
                let lock = crate::writer_lock(&home, "link")?;
                let key = home.unlock_data_key(&pass).map_err(crate::operator::fail)?;
                tokumei_link::run_on(engine.as_deref(), &home, &s, &key, &settings, &lock)
                    .map_err(fail)
            })(),
            |x| match a.json {
                true => println!("{}", crate::args::json(&x)),
                false => println!("{}", summary_text(&x)),
            },
        ),
    }
}

fn pending_text(pending: &[PendingPair]) -> String {
    let mut text = String::new();
    for p in pending {
        text.push_str(&format!(
            "pair {} (probability {:.3})\n",
            p.id, p.probability
        ));
        for f in &p.fields {
            text.push_str(&format!("  {:<11} {:<24} {}\n", f.label, f.left, f.right));
        }
    }
    text.push_str(&format!(
        "{} pair(s) pending; decide with --accept N or --reject N\n",
        pending.len()
    ));
    text
}

fn review(
    home: PathBuf,
    (accept, reject): (Option<u64>, Option<u64>),
    json: bool,
    passphrase_file: Option<PathBuf>,
    user: UserKeyArgs,
) -> ExitCode {
    report(
        (|| {
            let pass = passphrase(passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
            let home = tokumei_vault::open(&home).map_err(crate::operator::fail)?;
            let s = session(
                &home,
                &user,
                Some(&pass),
                "link.review",
                &[Role::Technician],
            )?;
            let lock = crate::writer_lock(&home, "link review")?;
            let key = home.unlock_data_key(&pass).map_err(crate::operator::fail)?;
            let decision = accept
                .map(|i| (i, Decision::Accepted))
                .or(reject.map(|i| (i, Decision::Rejected)));
            if let Some((id, d)) = decision {
                tokumei_link::review::decide(&home, &s, &key, id, d, &lock).map_err(fail)?;
                if json {
                    let v = serde_json::json!({ "pair": id, "decision": d });
                    return Ok(format!("{}\n", crate::args::json(&v)));
                }
                return Ok(format!(
                    "pair {id} {}; it takes effect at the next `tokumei link`, whose summary says \
                     whether accepted pairs were joined\n",
                    d.code()
                ));
            }
            let pending = tokumei_link::review::pending(&home, &s, &key).map_err(fail)?;
            Ok(match json {
                true => format!("{}\n", crate::args::json(&pending)),
                false => pending_text(&pending),
            })
        })(),
        |t| print!("{t}"),
    )
}
