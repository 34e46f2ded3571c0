//! Operator commands that act as a registered user: users and roles, exports from the identified
//! zone under the two-person rule, the quarantine, and purges after requests to stop.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tokumei_vault::access::{self, Role, Session};
use tokumei_vault::{Home, VaultError};

use crate::table::Table;
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

fn read_secret(file: &Path) -> Result<String, Failure> {
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
    let key = access::open_user_key(&key_file, &pass).map_err(fail)?;
    let s = access::authenticate(home, &key).map_err(fail)?;
    s.require(home, action, roles).map_err(fail)?;
    Ok(s)
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

fn open_home(path: &Path) -> Result<Home, Failure> {
    tokumei_vault::open(path).map_err(fail)
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Register a user with one role: writes DIR/<name>.key (encrypted with the new user's
    /// passphrase from TOKUMEI_NEW_USER_PASSPHRASE or --new-passphrase-file) and DIR/<name>.pub.
    /// Needs a technician and the home passphrase.
    Add(UserAddArgs),
    /// List users, roles, who requested and approved each grant, grants and reviews (reviews
    /// older than six months are flagged). Needs a technician or an auditor.
    List {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Revoke a user's grant. Needs a technician and the home passphrase.
    Revoke {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The user's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Record the periodic review of a user's grant. Needs a technician and the home passphrase.
    Review {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The user's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        auth: AuthArgs,
    },
}

#[derive(Args)]
pub struct UserAddArgs {
    /// Operator home.
    #[arg(long)]
    home: PathBuf,
    /// The new user's name (1–64 letters, digits, '-' or '_', starting with a letter or digit).
    #[arg(long)]
    name: String,
    /// technician, committee, researcher, auditor or provider-admin.
    #[arg(long)]
    role: String,
    /// The provider of a provider-admin.
    #[arg(long, value_parser = crate::parse_id)]
    provider: Option<String>,
    /// Who requested the grant (the user's department).
    #[arg(long)]
    requested_by: String,
    /// Who approved it (the department's manager).
    #[arg(long)]
    approved_by: String,
    /// Folder for the new key files.
    #[arg(long)]
    out: PathBuf,
    /// File holding the new user's passphrase (otherwise TOKUMEI_NEW_USER_PASSPHRASE).
    #[arg(long)]
    new_passphrase_file: Option<PathBuf>,
    /// scrypt work factor (log2 N) of the key wrapping.
    #[arg(long, hide = true)]
    scrypt_log_n: Option<u8>,
    #[command(flatten)]
    auth: AuthArgs,
}

pub fn run_user(c: UserCommand) -> ExitCode {
    match c {
        UserCommand::Add(a) => report(user_add(a), |(key, public)| {
            println!(
                "user key: {} (give it to the user; it opens with their passphrase)",
                key.display()
            );
            println!("public key: {}", public.display());
        }),
        UserCommand::List { home, auth } => report(
            (|| {
                let home = open_home(&home)?;
                auth.session(&home, "user.list", &[Role::Technician, Role::Auditor])?;
                home.catalog().and_then(|c| c.users()).map_err(fail)
            })(),
            |users| user_table(&users).print(),
        ),
        UserCommand::Revoke { home, name, auth } => report(
            change_user(&home, &auth, &name, "user.revoke", |c, n| c.revoke_user(n)),
            |()| println!("user {name} revoked"),
        ),
        UserCommand::Review { home, name, auth } => report(
            change_user(&home, &auth, &name, "user.review", |c, n| c.review_user(n)),
            |()| println!("review of user {name} recorded"),
        ),
    }
}

/// Users, their grants (who requested and approved each) and reviews, as a table.
fn user_table(users: &[access::User]) -> Table {
    let now = chrono::Utc::now();
    let mut t = Table::new(&[
        "name",
        "role",
        "provider",
        "requested by",
        "approved by",
        "granted",
        "reviewed",
        "status",
    ]);
    for u in users {
        let status = match (&u.revoked_at, u.review_due(now)) {
            (Some(r), _) => format!("revoked {r}"),
            (None, true) => "review due".to_string(),
            (None, false) => "active".to_string(),
        };
        t.row(&[
            u.name.as_str(),
            u.role.code(),
            u.provider_id.as_deref().unwrap_or("-"),
            &u.requested_by,
            &u.approved_by,
            &u.granted_at,
            &u.reviewed_at,
            &status,
        ]);
    }
    t
}

fn change_user(
    home: &Path,
    auth: &AuthArgs,
    name: &str,
    action: &str,
    f: impl Fn(&tokumei_vault::catalog::Catalog, &str) -> Result<(), VaultError>,
) -> Result<(), Failure> {
    let home = open_home(home)?;
    let s = auth.session(&home, action, &[Role::Technician])?;
    unlock_operator(&home, auth)?;
    let catalog = home.catalog().map_err(fail)?;
    f(&catalog, name).map_err(fail)?;
    audit(&home, &s, action, &format!("user {name}"), "ok", None)
}

/// Unlocks the operator's key with the home passphrase (--passphrase-file or TOKUMEI_PASSPHRASE):
/// users are signed by it.
fn unlock_operator(home: &tokumei_vault::Home, auth: &AuthArgs) -> Result<(), Failure> {
    let pass = auth.passphrase()?;
    home.unlock_data_key(&pass).map(|_| ()).map_err(fail)
}

/// Appends an audit entry as the session's user.
pub fn audit(
    home: &Home,
    s: &Session,
    action: &str,
    object: &str,
    result: &str,
    provider: Option<&str>,
) -> Result<(), Failure> {
    s.audit(home, action, object, result, provider)
        .map_err(fail)
}

fn user_add(a: UserAddArgs) -> Result<(PathBuf, PathBuf), Failure> {
    let home = open_home(&a.home)?;
    let s = a.auth.session(&home, "user.add", &[Role::Technician])?;
    unlock_operator(&home, &a.auth)?;
    let role = Role::parse(&a.role).ok_or((
        EXIT_USAGE,
        "--role is technician, committee, researcher, auditor or provider-admin".to_string(),
    ))?;
    if !access::valid_name(&a.name) {
        return Err((
            EXIT_USAGE,
            "--name is 1–64 letters, digits, '-' or '_', starting with a letter or digit".into(),
        ));
    }
    let new_pass = match &a.new_passphrase_file {
        Some(f) => read_secret(f)?,
        None => std::env::var("TOKUMEI_NEW_USER_PASSPHRASE").map_err(|_| {
            (
                EXIT_USAGE,
                "no passphrase for the new user: set TOKUMEI_NEW_USER_PASSPHRASE or pass \
                 --new-passphrase-file"
                    .to_string(),
            )
        })?,
    };
    let catalog = home.catalog().map_err(fail)?;
    if catalog.user(&a.name).map_err(fail)?.is_some() {
        return Err((
            EXIT_FAILURE,
            format!("user {} is already registered", a.name),
        ));
    }
    let key_path = a.out.join(format!("{}.key", a.name));
    let pub_path = a.out.join(format!("{}.pub", a.name));
    if key_path.exists() || pub_path.exists() {
        return Err((
            EXIT_USAGE,
            format!(
                "{} already exists; keys are never overwritten",
                key_path.display()
            ),
        ));
    }
    let (wrapped, public) = access::new_user_key(&new_pass, a.scrypt_log_n).map_err(fail)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    catalog
        .add_user(&access::User {
            name: a.name.clone(),
            role,
            provider_id: a.provider.clone(),
            public_key: public.clone(),
            requested_by: a.requested_by.clone(),
            approved_by: a.approved_by.clone(),
            granted_at: now.clone(),
            reviewed_at: now,
            revoked_at: None,
        })
        .map_err(fail)?;
    std::fs::create_dir_all(&a.out)
        .map_err(|e| (EXIT_FAILURE, format!("{}: {e}", a.out.display())))?;
    tokumei_vault::home::write_secret(&key_path, &wrapped).map_err(fail)?;
    std::fs::write(&pub_path, format!("{public}\n"))
        .map_err(|e| (EXIT_FAILURE, format!("{}: {e}", pub_path.display())))?;
    audit(
        &home,
        &s,
        "user.add",
        &format!(
            "user {} ({}; requested by {}, approved by {})",
            a.name,
            role.code(),
            a.requested_by,
            a.approved_by
        ),
        "ok",
        a.provider.as_deref(),
    )?;
    Ok((key_path, pub_path))
}

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
        /// File holding the home passphrase (otherwise TOKUMEI_PASSPHRASE).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        user: UserKeyArgs,
    },
}

pub fn run_export(c: ExportCommand) -> ExitCode {
    use tokumei_vault::export::{self, ExportKind};
    match c {
        ExportCommand::Request {
            home,
            kind,
            package,
            to,
            purpose,
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
                println!("export request {id} recorded; a second technician approves it with");
                println!("  tokumei export approve --home H {id}");
            },
        ),
        ExportCommand::Approve { home, id, auth } => report(
            (|| {
                let home = open_home(&home)?;
                let s = auth.session(&home, "export.approve", &[Role::Technician])?;
                export::approve(&home, &s, id).map_err(fail)
            })(),
            |r| {
                println!(
                    "export {} approved by {} (requested by {})",
                    r.id,
                    r.approved_by.unwrap_or_default(),
                    r.requested_by
                )
            },
        ),
        ExportCommand::Run {
            home,
            id,
            out,
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
                println!(
                    "export {} written to {}: {} file(s), {} bytes, encrypted to {}",
                    x.request.id,
                    out.display(),
                    x.files,
                    x.bytes,
                    x.request.recipient
                )
            },
        ),
    }
}

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
        passphrase_file,
        user,
    } = c;
    report(
        (|| {
            let pass = passphrase(passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
            let home = open_home(&home)?;
            let s = session(
                &home,
                &user,
                Some(&pass),
                "quarantine.list",
                &[Role::Technician],
            )?;
            let key = home.unlock_data_key(&pass).map_err(fail)?;
            let ids = match &package {
                Some(p) => vec![p.clone()],
                None => home.catalog().and_then(|c| c.receipt_ids()).map_err(fail)?,
            };
            let mut rows = Vec::new();
            for id in &ids {
                for q in tokumei_vault::store::read_quarantine(&home, &key, id).map_err(fail)? {
                    rows.push((id.clone(), q));
                }
            }
            audit(
                &home,
                &s,
                "quarantine.list",
                &match &package {
                    Some(p) => format!("package {p}"),
                    None => format!("{} package(s)", ids.len()),
                },
                &format!("ok: {} record(s) listed", rows.len()),
                None,
            )?;
            Ok(rows)
        })(),
        |rows| {
            let mut t = Table::new(&["package", "file", "lines", "reason"]);
            for (id, q) in &rows {
                let lines = format!("{}-{}", q.first_line, q.last_line);
                t.row(&[id.as_str(), &q.file, &lines, &q.reason]);
            }
            t.print();
            println!("{} quarantined record(s)", rows.len());
        },
    )
}
