//! `tokumei provider`: provider keys (provider side), registration and key rotation (operator side).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::args::*;
use crate::operator;
use crate::{EXIT_FAILURE, EXIT_USAGE};

#[derive(Subcommand)]
pub(crate) enum ProviderCommand {
    /// Create a provider's signing key pair: DIR/<id>.key (owner-only) and DIR/<id>.pub.
    Init {
        /// Provider id.
        #[arg(long, value_parser = parse_id)]
        id: String,
        /// Folder for the key files.
        #[arg(long)]
        out: PathBuf,
    },
    /// Register a new provider at the operator with its public key and the legally required
    /// details (a technician; an id already registered is refused).
    Add(ProviderAddArgs),
    /// List registered providers: id, name, notice start, notice filing, packages received (a
    /// technician, auditor or provider administrator; audited).
    List {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Print JSON (an array of providers: id, public_key, name, address, representative,
        /// acquisition, notice_filing, notice_start, receipts).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        user: operator::UserKeyArgs,
    },
    /// Request that a registered provider's key be replaced (a technician; a second technician
    /// approves with `approve-rotation`).
    RotateKey {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Provider id.
        #[arg(long, value_parser = parse_id)]
        id: String,
        /// The provider's new public key file.
        #[arg(long)]
        public_key: PathBuf,
        #[command(flatten)]
        auth: HomeAuth,
    },
    /// Register the age public key a provider's recruitment lists are sealed to (the provider
    /// makes it, e.g. `age-keygen`, and keeps the identity; a technician registers it; audited).
    /// When the provider has one already, this requests its replacement, which a second
    /// technician approves with `approve-recruit-key`.
    RecruitKey {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Provider id.
        #[arg(long, value_parser = parse_id)]
        id: String,
        /// The provider's age public key (`age1…`).
        #[arg(long)]
        recipient: String,
        #[command(flatten)]
        auth: HomeAuth,
    },
    /// Approve the pending replacement of a provider's recruitment key (a technician other than
    /// the requester, naming the same key).
    ApproveRecruitKey {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Provider id.
        #[arg(long, value_parser = parse_id)]
        id: String,
        /// The key requested (`age1…`), as the provider gave it.
        #[arg(long)]
        recipient: String,
        #[command(flatten)]
        auth: HomeAuth,
    },
    /// Approve a pending key rotation (a technician other than the requester).
    ApproveRotation {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Provider id.
        #[arg(long, value_parser = parse_id)]
        id: String,
        #[command(flatten)]
        auth: HomeAuth,
    },
}

#[derive(clap::Args)]
pub(crate) struct ProviderAddArgs {
    /// Operator home.
    #[arg(long)]
    home: PathBuf,
    /// Provider id.
    #[arg(long, value_parser = parse_id)]
    id: String,
    /// The provider's public key file (<id>.pub).
    #[arg(long)]
    public_key: PathBuf,
    /// A TOML file with the details below (keys name, address, representative, acquisition,
    /// notice_filing, notice_start); a flag given too overrides the file.
    #[arg(long)]
    details: Option<PathBuf>,
    /// Name (名称).
    #[arg(long)]
    name: Option<String>,
    /// Address (住所).
    #[arg(long)]
    address: Option<String>,
    /// Representative (代表者).
    #[arg(long)]
    representative: Option<String>,
    /// How the provider acquired the data (取得の経緯).
    #[arg(long)]
    acquisition: Option<String>,
    /// Reference of the notice filing with the minister.
    #[arg(long)]
    notice_filing: Option<String>,
    /// Date the notice to patients began (YYYY-MM-DD; required: receipt refuses records of
    /// patients seen before the notice period has run).
    #[arg(long, value_parser = parse_date)]
    notice_start: Option<String>,
    #[command(flatten)]
    auth: HomeAuth,
}

/// A provider's details in a TOML file (`provider add --details`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderDetails {
    name: Option<String>,
    address: Option<String>,
    representative: Option<String>,
    acquisition: Option<String>,
    notice_filing: Option<String>,
    notice_start: Option<String>,
}

pub(crate) fn run_provider(a: ProviderCommand) -> ExitCode {
    match a {
        ProviderCommand::Init { id, out } => {
            match tokumei_vault::package::provider_init(&id, &out) {
                Ok((key, public)) => {
                    println!("provider key: {} (keep it secret)", key.display());
                    println!(
                        "public key:   {} (give it to the operator)",
                        public.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
        ProviderCommand::Add(a) => operator::report(provider_add(&a), |()| {
            println!("provider {} registered", a.id)
        }),
        ProviderCommand::List { home, json, user } => operator::report(
            (|| {
                let home = tokumei_vault::open(&home).map_err(operator::fail)?;
                let roles = [
                    tokumei_vault::access::Role::Technician,
                    tokumei_vault::access::Role::Auditor,
                    tokumei_vault::access::Role::ProviderAdmin,
                ];
                let s = operator::session(&home, &user, None, "provider.list", &roles)?;
                tokumei_vault::provider::list(&home, &s).map_err(operator::fail)
            })(),
            |list| print!("{}", providers_text(&list, json)),
        ),
        ProviderCommand::RotateKey {
            home,
            id,
            public_key,
            auth,
        } => operator::report(
            std::fs::read_to_string(&public_key)
                .map_err(|e| (EXIT_USAGE, format!("{}: {e}", public_key.display())))
                .and_then(|key| {
                    as_technician(&home, &auth, "provider.rotate", |home, session| {
                        tokumei_vault::provider::request_rotation(home, session, &id, key.trim())
                    })
                }),
            |()| {
                println!("key rotation of provider {id} requested; a second technician approves it")
            },
        ),
        ProviderCommand::RecruitKey {
            home,
            id,
            recipient,
            auth,
        } => operator::report(
            as_technician(&home, &auth, "provider.recruit-key", |home, session| {
                tokumei_vault::provider::set_recruit_key(home, session, &id, &recipient)
            }),
            |done| match done {
                tokumei_vault::provider::RecruitKey::Registered => {
                    println!(
                        "provider {id}: recruitment lists will be sealed to the key registered"
                    )
                }
                tokumei_vault::provider::RecruitKey::Requested => println!(
                    "provider {id}: replacement of its recruitment key requested; a second \
                     technician approves it"
                ),
            },
        ),
        ProviderCommand::ApproveRecruitKey {
            home,
            id,
            recipient,
            auth,
        } => operator::report(
            as_technician(&home, &auth, "provider.recruit-key", |home, session| {
                tokumei_vault::provider::approve_recruit_key(home, session, &id, &recipient)
            }),
            |()| println!("provider {id}: new recruitment key in force"),
        ),
        ProviderCommand::ApproveRotation { home, id, auth } => operator::report(
            as_technician(&home, &auth, "provider.rotate", |home, session| {
                tokumei_vault::provider::approve_rotation(home, session, &id)
            }),
            |()| println!("provider {id}: new key in force"),
        ),
    }
}

/// Runs `op` as a technician of the home at `home` (the session opened, the operator's key
/// unlocked), a vault error reported as a failure.
fn as_technician<T>(
    home: &std::path::Path,
    auth: &HomeAuth,
    action: &str,
    op: impl FnOnce(
        &tokumei_vault::Home,
        &tokumei_vault::access::Session,
    ) -> Result<T, tokumei_vault::VaultError>,
) -> Result<T, operator::Failure> {
    let home = tokumei_vault::open(home).map_err(operator::fail)?;
    let session = auth.session(&home, action, &[tokumei_vault::access::Role::Technician])?;
    op(&home, &session).map_err(operator::fail)
}

pub(crate) fn provider_add(a: &ProviderAddArgs) -> Result<(), operator::Failure> {
    let usage = |e: String| (EXIT_USAGE, e);
    let home = tokumei_vault::open(&a.home).map_err(operator::fail)?;
    let session = a.auth.session(
        &home,
        "provider.add",
        &[tokumei_vault::access::Role::Technician],
    )?;
    let public = std::fs::read_to_string(&a.public_key)
        .map_err(|e| usage(format!("{}: {e}", a.public_key.display())))?;
    let file = match &a.details {
        Some(f) => {
            let text =
                std::fs::read_to_string(f).map_err(|e| usage(format!("{}: {e}", f.display())))?;
            toml::from_str::<ProviderDetails>(&text)
                .map_err(|e| usage(format!("{}: {e}", f.display())))?
        }
        None => ProviderDetails::default(),
    };
    let need = |flag: &Option<String>, file: Option<String>, what: &str| {
        flag.clone()
            .or(file)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                usage(format!(
                    "the provider's {what} is required (--{what} or `{}` in --details)",
                    what.replace('-', "_")
                ))
            })
    };
    let provider = tokumei_vault::catalog::Provider {
        id: a.id.clone(),
        public_key: public.trim().to_string(),
        name: need(&a.name, file.name, "name")?,
        address: need(&a.address, file.address, "address")?,
        representative: need(&a.representative, file.representative, "representative")?,
        acquisition: need(&a.acquisition, file.acquisition, "acquisition")?,
        notice_filing: a.notice_filing.clone().or(file.notice_filing),
        notice_start: Some(need(&a.notice_start, file.notice_start, "notice-start")?),
    };
    tokumei_vault::provider::register(&home, &session, &provider).map_err(operator::fail)
}

fn providers_text(list: &[tokumei_vault::provider::Listed], json: bool) -> String {
    if json {
        return serde_json::to_string_pretty(list).unwrap_or_default() + "\n";
    }
    let mut t = crate::table::Table::new(&[
        "id",
        "name",
        "notice start",
        "notice filing",
        "packages received",
    ]);
    for l in list {
        let p = &l.provider;
        t.row(&[
            p.id.as_str(),
            p.name.as_str(),
            p.notice_start.as_deref().unwrap_or("—"),
            p.notice_filing.as_deref().unwrap_or("—"),
            &l.receipts.to_string(),
        ]);
    }
    t.render()
}
