//! `tokumei application`, `tokumei committee`, `tokumei release` and `tokumei reid-test`: research
//! applications, the review committee, releases with the provision ledger, and the
//! re-identification battery.

use tokumei_review::{Review, ReviewError};
use tokumei_vault::access::Role;

use crate::operator::{fail, AuthArgs, Failure};
use crate::{EXIT_FAILURE, EXIT_USAGE};

mod application;
mod committee;
mod reid;
mod release;

pub use application::{run_application, ApplicationCommand};
pub use committee::{run_committee, CommitteeCommand};
pub use reid::{run_reid, ReidArgs};
pub use release::{run_release, ReleaseCommand};

fn rfail(e: ReviewError) -> Failure {
    match e {
        ReviewError::Vault(v) => fail(v),
        ReviewError::Invalid(_) | ReviewError::Application(_) | ReviewError::NobodyPresent => {
            (EXIT_USAGE, e.to_string())
        }
        e => (EXIT_FAILURE, e.to_string()),
    }
}

/// Opens the home, the session (any role: the review store checks each action) and the store.
fn open(
    home: &std::path::Path,
    auth: &AuthArgs,
    action: &str,
    roles: &[Role],
) -> Result<(Review, tokumei_vault::access::Session), Failure> {
    let h = tokumei_vault::open(home).map_err(fail)?;
    let s = auth.session(&h, action, roles)?;
    let r = Review::open(&h).map_err(rfail)?;
    Ok((r, s))
}

const ANY: &[Role] = &[
    Role::Technician,
    Role::Committee,
    Role::Researcher,
    Role::Auditor,
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::CommandFactory;

    /// The commands of the review workflow and of the operator's users, as `--help` shows them.
    fn commands() -> Vec<(String, clap::Command)> {
        let cli = crate::Cli::command();
        let mut out = Vec::new();
        for group in [
            "application",
            "committee",
            "release",
            "user",
            "quarantine",
            "export",
        ] {
            let g = cli.find_subcommand(group).expect("group").clone();
            for c in g.get_subcommands() {
                out.push((format!("{group} {}", c.get_name()), c.clone()));
            }
        }
        let reid = cli.find_subcommand("reid-test").expect("reid-test").clone();
        out.push(("reid-test".to_string(), reid));
        out
    }

    #[test]
    fn every_argument_has_a_help_line_worded_alike_across_commands() {
        let mut wording: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for (name, c) in commands() {
            assert!(c.get_about().is_some(), "{name} has no description");
            for a in c.get_arguments().filter(|a| !a.is_hide_set()) {
                let id = a.get_id().to_string();
                if id == "help" {
                    continue;
                }
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(!help.trim().is_empty(), "{name}: --{id} has no help line");
                wording
                    .entry(id)
                    .or_default()
                    .entry(help)
                    .or_default()
                    .push(name.clone());
            }
        }
        for id in [
            "home",
            "passphrase_file",
            "user_key",
            "user_passphrase_file",
            "meeting",
            "application",
            "json",
        ] {
            let helps = &wording[id];
            let texts: Vec<&String> = helps.keys().collect();
            // `--json` names what it replaces (a table or text); everything else reads the same.
            if id == "json" {
                assert!(texts.iter().all(|t| t.starts_with("Print")), "{helps:?}");
            } else {
                assert_eq!(texts.len(), 1, "--{id} is worded differently: {helps:?}");
            }
        }
    }
}
