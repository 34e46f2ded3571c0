//! `tokumei user`: register, list, revoke and review operator users (`tokumei_vault::users`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tokumei_vault::access::{self, Role};
use tokumei_vault::users::{self, Grant, NewUser, UserError};

use crate::operator::{fail, open_home, read_secret, render, report, unlock, AuthArgs, Failure};
use crate::table::Table;
use crate::{EXIT_FAILURE, EXIT_USAGE};

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
        /// Print JSON (docs/json.md) instead of a table.
        #[arg(long)]
        json: bool,
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
    /// Invite a user to sign in on the web (`tokumei serve`): prints the invitation's id and its
    /// one-time token (hand the token to the user; they type it into the enrolment page, with a
    /// new password, and get their TOTP secret). A second technician approves it first. Needs a
    /// technician and the home passphrase.
    Invite {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The user's name.
        #[arg(long)]
        name: String,
        /// Hours the invitation stays valid (1 to 168).
        #[arg(long, default_value_t = 72)]
        hours: u32,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Approve a web invitation (a technician other than the one who issued it). Needs the home
    /// passphrase.
    ApproveInvitation {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The invitation's id (`I-…`).
        #[arg(long)]
        id: String,
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
        UserCommand::Add(a) => report(user_add(a), |r| {
            println!(
                "user key: {} (give it to the user; it opens with their passphrase)",
                r.key_file.display()
            );
            println!("public key: {}", r.public_file.display());
        }),
        UserCommand::List { home, json, auth } => report(
            (|| {
                let home = open_home(&home)?;
                let s = auth.session(&home, "user.list", &[Role::Technician, Role::Auditor])?;
                users::list(&home, &s).map_err(fail)
            })(),
            |grants| render(json, &grants, |g| user_table(g).print()),
        ),
        UserCommand::Revoke { home, name, auth } => report(
            change_user(&home, &auth, &name, "user.revoke", users::revoke),
            |()| println!("user {name} revoked"),
        ),
        UserCommand::Invite {
            home,
            name,
            hours,
            auth,
        } => report(
            web_auth(&home, &auth, "web.invite", |w, s| w.invite(s, &name, hours)),
            |i| {
                println!(
                    "invitation {} for {}, valid until {}",
                    i.id, i.user, i.expires_at
                );
                println!("token (give it to the user; shown once): {}", i.token);
                println!(
                    "a second technician approves it: tokumei user approve-invitation --id {}",
                    i.id
                );
            },
        ),
        UserCommand::ApproveInvitation { home, id, auth } => report(
            web_auth(&home, &auth, "web.invite.approve", |w, s| w.approve(s, &id)),
            |()| println!("invitation {id} approved"),
        ),
        UserCommand::Review { home, name, auth } => report(
            change_user(&home, &auth, &name, "user.review", users::review),
            |()| println!("review of user {name} recorded"),
        ),
    }
}

/// Users, their grants (who requested and approved each) and reviews, as a table.
fn user_table(grants: &[Grant]) -> Table {
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
    for g in grants {
        let u = &g.user;
        let status = match (&u.revoked_at, g.review_due) {
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

/// Revokes or reviews a grant: a technician's session, the operator's key unlocked (users are
/// signed by it), then the vault's call.
fn change_user(
    home: &std::path::Path,
    auth: &AuthArgs,
    name: &str,
    action: &str,
    f: impl Fn(&tokumei_vault::Home, &access::Session, &str) -> Result<(), tokumei_vault::VaultError>,
) -> Result<(), Failure> {
    let home = open_home(home)?;
    let s = auth.session(&home, action, &[Role::Technician])?;
    unlock(&home, auth)?;
    f(&home, &s, name).map_err(fail)
}

/// Runs one web sign-in operation as a technician with the home unlocked.
fn web_auth<T>(
    home: &std::path::Path,
    auth: &AuthArgs,
    action: &str,
    f: impl FnOnce(
        &tokumei_vault::webauth::WebAuth,
        &access::Session,
    ) -> Result<T, tokumei_vault::VaultError>,
) -> Result<T, Failure> {
    let home = open_home(home)?;
    let s = auth.session(&home, action, &[Role::Technician])?;
    unlock(&home, auth)?;
    let web = tokumei_vault::webauth::WebAuth::open(&home).map_err(fail)?;
    f(&web, &s).map_err(fail)
}

fn user_add(a: UserAddArgs) -> Result<users::Registered, Failure> {
    let home = open_home(&a.home)?;
    let s = a.auth.session(&home, "user.add", &[Role::Technician])?;
    unlock(&home, &a.auth)?;
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
    let passphrase = match &a.new_passphrase_file {
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
    let new = NewUser {
        name: a.name,
        role,
        provider_id: a.provider,
        requested_by: a.requested_by,
        approved_by: a.approved_by,
        passphrase,
        scrypt_log_n: a.scrypt_log_n,
        out: a.out,
    };
    users::register(&home, &s, &new).map_err(|e| match e {
        UserError::Vault(v) => fail(v),
        e @ UserError::KeyFileExists(_) => (EXIT_USAGE, e.to_string()),
        e => (EXIT_FAILURE, e.to_string()),
    })
}
