//! `tokumei key`: key pairs for recipients of releases and exports (no other tool needed).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::operator;

#[derive(Subcommand)]
pub(crate) enum KeyCommand {
    /// Make a recipient's age key pair: DIR/NAME.key (the secret identity, owner-only; opens
    /// releases and exports with `tokumei release open`) and DIR/NAME.recipient (age1…, to give to
    /// the operator for the application's or export's recipient). An existing file is never
    /// replaced.
    New {
        /// Folder for the two files.
        #[arg(long)]
        out: PathBuf,
        /// Name of the files.
        #[arg(long, value_parser = crate::parse_id)]
        name: String,
    },
}

pub(crate) fn run_key(c: KeyCommand) -> ExitCode {
    match c {
        KeyCommand::New { out, name } => operator::report(
            tokumei_vault::sealed::write_identity(&out, &name).map_err(operator::fail),
            |(key, public, recipient)| {
                println!("identity:  {} (keep it secret)", key.display());
                println!("recipient: {} ({recipient})", public.display());
            },
        ),
    }
}
