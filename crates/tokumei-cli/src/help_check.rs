//! `--help` is complete: every subcommand says what it does and every argument what it takes.

use clap::CommandFactory;

/// `path: what is missing` for every subcommand without an `about` and every argument (other than
/// the generated help and version flags) without help text.
fn gaps(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
    for sub in cmd.get_subcommands() {
        let here = format!("{path} {}", sub.get_name());
        if sub.get_about().is_none() {
            out.push(format!("{here}: no description"));
        }
        gaps(sub, &here, out);
    }
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") {
            continue;
        }
        if arg.get_help().is_none() && arg.get_long_help().is_none() {
            out.push(format!("{path} --{id}: no help text"));
        }
    }
}

#[test]
fn every_subcommand_and_argument_is_described() {
    let cmd = crate::Cli::command();
    cmd.clone().debug_assert();
    let mut out = Vec::new();
    gaps(&cmd, "tokumei", &mut out);
    assert!(out.is_empty(), "incomplete --help:\n{}", out.join("\n"));
}

#[test]
fn a_missing_description_is_found() {
    let cmd = clap::Command::new("t")
        .subcommand(clap::Command::new("bare").arg(clap::Arg::new("x").long("x")));
    let mut out = Vec::new();
    gaps(&cmd, "t", &mut out);
    assert_eq!(
        out,
        vec!["t bare: no description", "t bare --x: no help text"]
    );
}
