//! `tokumei quarantine list`: the records that could not be read (`tokumei_vault::quarantine`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use tokumei_vault::access::Role;
use tokumei_vault::quarantine::Listed;

use crate::operator::{fail, open_home, render, report, session, UserKeyArgs};
use crate::table::Table;
use crate::{passphrase, EXIT_USAGE};

#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined records (file, lines, reason) of every package or of one. Needs a
    /// technician and the home passphrase: the report is encrypted (SS-MIX2 entry names carry
    /// patient ids).
    List {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Only this package (its id); by default every package received.
        #[arg(long)]
        package: Option<String>,
        /// Print JSON (docs/json.md) instead of a table.
        #[arg(long)]
        json: bool,
        /// File holding the home passphrase (otherwise TOKUMEI_PASSPHRASE).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        user: UserKeyArgs,
    },
}

pub fn run_quarantine(c: QuarantineCommand) -> ExitCode {
    let QuarantineCommand::List {
        home,
        package,
        json,
        passphrase_file,
        user,
    } = c;
    report(
        (|| {
            let pass = passphrase(passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
            let home = open_home(&home)?;
            let action = "quarantine.list";
            let s = session(&home, &user, Some(&pass), action, &[Role::Technician])?;
            let key = home.unlock_data_key(&pass).map_err(fail)?;
            tokumei_vault::quarantine::list(&home, &s, &key, package.as_deref()).map_err(fail)
        })(),
        |rows| render(json, &rows, |rows| print_table(rows)),
    )
}

fn print_table(rows: &[Listed]) {
    let mut t = Table::new(&["package", "file", "lines", "reason"]);
    for r in rows {
        let q = &r.record;
        let lines = format!("{}-{}", q.first_line, q.last_line);
        t.row(&[r.package_id.as_str(), &q.file, &lines, &q.reason]);
    }
    t.print();
    println!("{} quarantined record(s)", rows.len());
}
