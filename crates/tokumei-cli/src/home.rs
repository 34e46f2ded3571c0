//! `tokumei init` and `tokumei home` (check, migrate).

use std::path::PathBuf;
use std::process::ExitCode;

use tokumei_vault::access::Role;

use crate::args::*;
use crate::operator;
use crate::{EXIT_FAILURE, EXIT_USAGE};

#[derive(clap::Subcommand)]
pub(crate) enum HomeCommand {
    /// Check the layout version, the keys (the data key unlocks, the receiving identity and the
    /// audit key match what is published, key files owner-only), the audit log (against a
    /// checkpoint, if given), every receipt's files and kept original, stray files and interrupted
    /// operations; exit 1 on any problem.
    Check {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// A signed tree head kept outside the home (`audit checkpoint`).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Print the findings as JSON (docs/json.md) instead of text; the exit code is the same.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: HomeAuth,
    },
    /// Upgrade a home made by an older Tokumei to the current layout, in place (the home
    /// passphrase authorises it); a home made by a newer one is refused by every command.
    Migrate {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        #[command(flatten)]
        auth: HomeAuth,
    },
}

pub(crate) fn run_home(c: HomeCommand) -> ExitCode {
    match c {
        HomeCommand::Check {
            home,
            checkpoint,
            json,
            auth,
        } => match check(&home, checkpoint.as_deref(), &auth) {
            Ok(report) => {
                operator::render(json, &report, |report| {
                    for f in &report.findings {
                        println!(
                            "{} {}",
                            if f.problem { "PROBLEM" } else { "ok     " },
                            f.what
                        );
                    }
                    println!("{} problem(s)", report.problems);
                });
                if report.problems == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(EXIT_FAILURE)
                }
            }
            Err((code, e)) => {
                eprintln!("error: {e}");
                ExitCode::from(code)
            }
        },
        HomeCommand::Migrate { home, auth } => operator::report(
            (|| {
                // The passphrase authorises a migration: no session opens on a home whose users
                // are not yet signed.
                let home = tokumei_vault::open(&home).map_err(operator::fail)?;
                let pass =
                    passphrase(auth.passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
                let key = home.unlock_data_key(&pass).map_err(operator::fail)?;
                tokumei_vault::home::migrate(&home, &key)
                    .map(|(_, steps)| steps)
                    .map_err(operator::fail)
            })(),
            |steps| {
                if steps.is_empty() {
                    println!("the home is at the current layout; nothing to do");
                }
                for step in steps {
                    println!("migrated: layout {step}");
                }
            },
        ),
    }
}

/// `home check`: a technician's session, the data key, the checkpoint (an unreadable one is a usage
/// error), then the vault's check.
fn check(
    home: &std::path::Path,
    checkpoint: Option<&std::path::Path>,
    auth: &HomeAuth,
) -> Result<tokumei_vault::check::Report, operator::Failure> {
    let home = tokumei_vault::open(home).map_err(operator::fail)?;
    let s = auth.session(&home, "home.check", &[Role::Technician])?;
    let pass = passphrase(auth.passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
    let key = home.unlock_data_key(&pass).map_err(operator::fail)?;
    let checkpoint = checkpoint
        .map(tokumei_vault::auditlog::read_checkpoint)
        .transpose()
        .map_err(|e| (EXIT_USAGE, e.to_string()))?;
    tokumei_vault::check::check_home(&home, &s, &key, checkpoint.as_ref()).map_err(operator::fail)
}

#[derive(clap::Args)]
pub(crate) struct InitArgs {
    /// Folder of the new home (absent or empty).
    #[arg(long, value_parser = out_dir)]
    home: PathBuf,
    /// File holding the passphrase (otherwise TOKUMEI_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// Name of the first technician (its key is kept in the home, wrapped by the passphrase).
    #[arg(long, default_value = "operator")]
    user: String,
    /// scrypt work factor (log2 N) of the passphrase wrapping; by default about one second of work.
    #[arg(long, hide = true)]
    scrypt_log_n: Option<u8>,
}

pub(crate) fn run_init(a: InitArgs) -> ExitCode {
    let pass = match passphrase(a.passphrase_file.as_ref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match tokumei_vault::home::init_with_user(&a.home, &pass, a.scrypt_log_n, &a.user) {
        Ok(s) => {
            println!("operator home created at {}", a.home.display());
            println!(
                "  first technician:                        {} (key in keys/users/, opened with the passphrase)",
                a.user
            );
            println!("  receiving recipient (give to providers): {}", s.recipient);
            println!(
                "  audit public key (publish):              {}",
                s.audit_public_key
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                tokumei_vault::VaultError::Exists(_) | tokumei_vault::VaultError::Passphrase(_) => {
                    ExitCode::from(EXIT_USAGE)
                }
                _ => ExitCode::from(EXIT_FAILURE),
            }
        }
    }
}
