//! Who runs an operator command: the user's key file and passphrases from the command line or the
//! environment, the session the vault opens with them, the exit code of a vault error, and the
//! printing of a result or an error. The commands themselves are in `user`, `export` and
//! `quarantine` (and the other command groups).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use tokumei_vault::access::{self, Role, Session};
use tokumei_vault::{Home, VaultError};

use crate::{passphrase, EXIT_FAILURE, EXIT_USAGE};

/// How a command learns who runs it.
#[derive(Args, Clone, Debug, Default)]
pub struct UserKeyArgs {
    /// The user's key file (default: TOKUMEI_USER_KEY, else the home's first technician).
    #[arg(long, env = "TOKUMEI_USER_KEY")]
    pub user_key: Option<PathBuf>,
    /// File holding the user key's passphrase (default: TOKUMEI_USER_PASSPHRASE, else the home
    /// passphrase).
    #[arg(long)]
    pub user_passphrase_file: Option<PathBuf>,
}

/// Who runs a command, and the home passphrase: it opens the home's first technician's key when no
/// user passphrase is given, and unlocks the operator's key for commands that sign.
#[derive(Args, Clone, Debug, Default)]
pub struct AuthArgs {
    /// File holding the home passphrase (otherwise TOKUMEI_PASSPHRASE).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    pub user: UserKeyArgs,
}

impl AuthArgs {
    /// The home passphrase, from --passphrase-file or TOKUMEI_PASSPHRASE.
    pub fn passphrase(&self) -> Result<String, Failure> {
        passphrase(self.passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))
    }

    /// Opens the session of the user running the command and checks its role (the home
    /// passphrase is read only when the user's key needs it).
    pub fn session(&self, home: &Home, action: &str, roles: &[Role]) -> Result<Session, Failure> {
        let given = match &self.passphrase_file {
            Some(_) => Some(self.passphrase()?),
            None => None,
        };
        session(home, &self.user, given.as_deref(), action, roles)
    }
}

/// A failure: exit code and message.
pub type Failure = (u8, String);

/// Maps a vault error to an exit code and message.
pub fn fail(e: VaultError) -> Failure {
    let code = match e {
        VaultError::Passphrase(_) => EXIT_USAGE,
        _ => EXIT_FAILURE,
    };
    (code, e.to_string())
}

/// A secret from a file, without its line end.
pub fn read_secret(file: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(file)
        .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
        .map_err(|e| (EXIT_USAGE, format!("cannot read {}: {e}", file.display())))
}

/// Opens the session of the user running the command and checks its role.
pub fn session(
    home: &Home,
    args: &UserKeyArgs,
    home_passphrase: Option<&str>,
    action: &str,
    roles: &[Role],
) -> Result<Session, Failure> {
    let key_file = match &args.user_key {
        Some(k) => k.clone(),
        None => home.default_user_key().ok_or((
            EXIT_USAGE,
            "no user key: pass --user-key or set TOKUMEI_USER_KEY".to_string(),
        ))?,
    };
    let pass = match &args.user_passphrase_file {
        Some(f) => read_secret(f)?,
        None => match std::env::var("TOKUMEI_USER_PASSPHRASE") {
            Ok(p) => p,
            Err(_) => match home_passphrase {
                Some(p) => p.to_string(),
                None => passphrase(None).map_err(|e| (EXIT_USAGE, e))?,
            },
        },
    };
    access::open_session(home, &key_file, &pass, action, roles).map_err(fail)
}

/// Prints an error and returns its exit code.
pub fn report<T>(r: Result<T, Failure>, ok: impl FnOnce(T)) -> ExitCode {
    match r {
        Ok(v) => {
            ok(v);
            ExitCode::SUCCESS
        }
        Err((code, e)) => {
            eprintln!("error: {e}");
            ExitCode::from(code)
        }
    }
}

/// Opens the operator home at `path`.
pub fn open_home(path: &Path) -> Result<Home, Failure> {
    tokumei_vault::open(path).map_err(fail)
}

/// Unlocks the data key (and with it the operator's key) with the home passphrase
/// (--passphrase-file or TOKUMEI_PASSPHRASE).
pub fn unlock(home: &Home, auth: &AuthArgs) -> Result<tokumei_vault::home::DataKey, Failure> {
    let pass = auth.passphrase()?;
    home.unlock_data_key(&pass).map_err(fail)
}

/// Prints a result as JSON (docs/json.md) or as text. The JSON goes out whole; a reader that went
/// away (`… | head`) ends it quietly.
pub fn render<T: serde::Serialize>(json: bool, value: &T, text: impl FnOnce(&T)) {
    if json {
        let _ = writeln!(std::io::stdout().lock(), "{}", crate::args::json(value));
    } else {
        text(value);
    }
}
