//! Arguments shared by several commands: value parsers of ids, dates, shares and folders; the home
//! passphrase; the session of a home user (`HomeAuth`); the writer lock with its waiting message.

use std::path::PathBuf;

use crate::operator;
use crate::EXIT_USAGE;

/// How a command that changes the home is authorised: the home passphrase and a user's key.
#[derive(clap::Args)]
pub(crate) struct HomeAuth {
    /// File holding the passphrase (otherwise TOKUMEI_PASSPHRASE).
    #[arg(long)]
    pub(crate) passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) user: operator::UserKeyArgs,
}

impl HomeAuth {
    /// Opens a session with one of `roles` on the home.
    pub(crate) fn session(
        &self,
        home: &tokumei_vault::Home,
        action: &str,
        roles: &[tokumei_vault::access::Role],
    ) -> Result<tokumei_vault::access::Session, operator::Failure> {
        let pass = passphrase(self.passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
        let session = operator::session(home, &self.user, Some(&pass), action, roles)?;
        // The passphrase also unlocks the operator's key (it signs users, providers and the log).
        home.unlock_data_key(&pass).map_err(operator::fail)?;
        Ok(session)
    }
}

/// Takes the home's writer lock for a command of the binary, saying so when it has to wait.
pub(crate) fn writer_lock(
    home: &tokumei_vault::Home,
    command: &str,
) -> Result<tokumei_vault::lock::WriterLock, operator::Failure> {
    tokumei_vault::lock::writer(
        home,
        command,
        tokumei_vault::lock::wait_from_env(),
        &|holder| eprintln!("waiting for another command to finish changing the home ({holder})"),
    )
    .map_err(operator::fail)
}

/// An output folder from the command line: absent, or a folder (an existing file exits 2 before
/// any work is done).
pub(crate) fn out_dir(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if p.exists() && !p.is_dir() {
        return Err("exists and is not a folder".into());
    }
    Ok(p)
}

/// A count of at least 1 (k, l) from the command line.
pub(crate) fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of at least 1".into()),
    }
}

/// A share between 0 and 1 from the command line.
pub(crate) fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err("expected a number from 0 to 1".into()),
    }
}

/// An id from the command line, checked against the one grammar (a bad one exits 2).
pub(crate) fn parse_id(s: &str) -> Result<String, String> {
    tokumei_model::ids::check(tokumei_model::ids::IdKind::Provider, s)
        .map(str::to_string)
        .map_err(|e| e.to_string().replacen("provider id", "id", 1))
}

/// A YYYY-MM-DD date from the command line (a bad one exits 2).
pub(crate) fn parse_date(s: &str) -> Result<String, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| "expected a date as YYYY-MM-DD".to_string())
}

/// The passphrase from a file or TOKUMEI_PASSPHRASE.
pub(crate) fn passphrase(file: Option<&PathBuf>) -> Result<String, String> {
    match file {
        Some(f) => std::fs::read_to_string(f)
            .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| format!("cannot read the passphrase file {}: {e}", f.display())),
        None => std::env::var("TOKUMEI_PASSPHRASE").map_err(|_| {
            "no passphrase: set TOKUMEI_PASSPHRASE or pass --passphrase-file".to_string()
        }),
    }
}

/// A result as pretty JSON for `--json` (the shapes are documented in docs/json.md).
pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
