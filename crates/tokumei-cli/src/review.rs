//! `tokumei application`, `tokumei committee`, `tokumei release` and `tokumei reid-test`: research
//! applications, the review committee, releases with the provision ledger, and the
//! re-identification battery.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use tokumei_review::{Field, Member, Outcome, Review, ReviewError, Vote};
use tokumei_vault::access::Role;

use crate::operator::{fail, report, session, AuthArgs, Failure, UserKeyArgs};
use crate::table::Table;
use crate::{EXIT_FAILURE, EXIT_USAGE};

mod application;
mod reid;

pub use application::{run_application, ApplicationCommand};
pub use reid::{run_reid, ReidArgs};

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

#[derive(Subcommand)]
pub enum CommitteeCommand {
    /// Put a committee user on the roster (a technician administers the roster).
    AddMember {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The member's user name (a user with the committee role).
        #[arg(long)]
        member: String,
        /// Name as listed on the roster.
        #[arg(long)]
        display_name: String,
        /// Affiliation.
        #[arg(long)]
        affiliation: String,
        /// The member's field.
        #[arg(long, value_parser = ["medical", "law-ethics", "security", "citizen"])]
        field: String,
        /// The chair (the committee has one).
        #[arg(long)]
        chair: bool,
        /// From outside the operator (a quorum needs one external member).
        #[arg(long)]
        external: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Take a member off the roster (a technician).
    RetireMember {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The member's user name.
        #[arg(long)]
        member: String,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// The roster: current and former members with their role, field and affiliation.
    Roster {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Open a meeting with the members present (a member records it; at least one present).
    Meeting {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Date (YYYY-MM-DD).
        #[arg(long)]
        date: String,
        /// A member present (user name); repeat for each member (`--present a --present b`), or
        /// separate names with commas.
        #[arg(long, value_delimiter = ',', required = true)]
        present: Vec<String>,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Declare one's conflict of interest with an application (before voting).
    Conflict {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Meeting id.
        #[arg(long, value_parser = crate::parse_id)]
        meeting: String,
        /// Application id.
        #[arg(long, value_parser = crate::parse_id)]
        application: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Vote on an application (once; votes are immutable).
    Vote {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Meeting id.
        #[arg(long, value_parser = crate::parse_id)]
        meeting: String,
        /// Application id.
        #[arg(long, value_parser = crate::parse_id)]
        application: String,
        /// The vote.
        #[arg(long, value_parser = ["approve", "reject", "abstain"])]
        vote: String,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Record the decision on an application (once; decisions are immutable).
    Decide {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Meeting id.
        #[arg(long, value_parser = crate::parse_id)]
        meeting: String,
        /// Application id.
        #[arg(long, value_parser = crate::parse_id)]
        application: String,
        /// The decision.
        #[arg(long, value_parser = ["approve", "approve-with-conditions", "revise", "reject"])]
        decision: String,
        /// Reasons.
        #[arg(long)]
        reason: String,
        /// A condition (repeatable; approve-with-conditions needs one).
        #[arg(long)]
        condition: Vec<String>,
        /// A requested item (`table.column`) the committee leaves out (repeatable).
        #[arg(long)]
        drop_item: Vec<String>,
        #[command(flatten)]
        auth: AuthArgs,
    },
}

pub fn run_committee(c: CommitteeCommand) -> ExitCode {
    match c {
        CommitteeCommand::AddMember {
            home,
            member,
            display_name,
            affiliation,
            field,
            chair,
            external,
            auth,
        } => report(
            (|| {
                let field = Field::parse(&field).ok_or((
                    EXIT_USAGE,
                    "--field is medical, law-ethics, security or citizen".to_string(),
                ))?;
                let (r, s) = open(&home, &auth, "committee.member.add", &[Role::Technician])?;
                let m = Member {
                    user: member.clone(),
                    display_name,
                    chair,
                    affiliation,
                    field,
                    external,
                    joined_at: String::new(),
                    left_at: None,
                };
                r.add_member(&s, &m).map_err(rfail)
            })(),
            |()| println!("{member} is on the committee's roster"),
        ),
        CommitteeCommand::RetireMember { home, member, auth } => report(
            (|| {
                let (r, s) = open(&home, &auth, "committee.member.retire", &[Role::Technician])?;
                r.retire_member(&s, &member).map_err(rfail)
            })(),
            |()| println!("{member} left the committee"),
        ),
        CommitteeCommand::Roster { home, auth } => report(
            (|| {
                let (r, _) = open(&home, &auth, "committee.roster", ANY)?;
                r.members().map_err(rfail)
            })(),
            |members| roster_table(&members).print(),
        ),
        CommitteeCommand::Meeting {
            home,
            date,
            present,
            auth,
        } => report(open_meeting(&home, &date, &present, &auth), |id| {
            println!("meeting {id} opened")
        }),
        CommitteeCommand::Conflict {
            home,
            meeting,
            application,
            reason,
            auth,
        } => report(
            (|| {
                let (r, s) = open(&home, &auth, "committee.conflict", &[Role::Committee])?;
                r.declare_conflict(&s, &meeting, &application, &reason)
                    .map_err(rfail)
            })(),
            |()| println!("conflict declared: you do not vote on {application}"),
        ),
        CommitteeCommand::Vote {
            home,
            meeting,
            application,
            vote,
            auth,
        } => report(
            (|| {
                let v = Vote::parse(&vote).ok_or((
                    EXIT_USAGE,
                    "--vote is approve, reject or abstain".to_string(),
                ))?;
                let (r, s) = open(&home, &auth, "committee.vote", &[Role::Committee])?;
                r.vote(&s, &meeting, &application, v).map_err(rfail)
            })(),
            |()| println!("vote recorded"),
        ),
        CommitteeCommand::Decide {
            home,
            meeting,
            application,
            decision,
            reason,
            condition,
            drop_item,
            auth,
        } => report(
            (|| {
                let o = Outcome::parse(&decision).ok_or((
                    EXIT_USAGE,
                    "--decision is approve, approve-with-conditions, revise or reject".to_string(),
                ))?;
                let (r, s) = open(&home, &auth, "committee.decide", &[Role::Committee])?;
                r.decide(
                    &s,
                    &meeting,
                    &application,
                    o,
                    &reason,
                    &condition,
                    &drop_item,
                )
                .map_err(rfail)
            })(),
            |d| {
                println!(
                    "decision on {}: {} (sha256 {})",
                    d.application_id,
                    d.outcome.code(),
                    d.sha256()
                )
            },
        ),
    }
}

/// Opens a meeting with the members named present (names trimmed, empty ones dropped; nobody
/// present is a usage error).
fn open_meeting(
    home: &std::path::Path,
    date: &str,
    present: &[String],
    auth: &AuthArgs,
) -> Result<String, Failure> {
    let present: Vec<String> = present
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if present.is_empty() {
        return Err((
            EXIT_USAGE,
            "--present names at least one member present".to_string(),
        ));
    }
    let (r, s) = open(home, auth, "committee.meeting", &[Role::Committee])?;
    r.open_meeting(&s, date, &present).map_err(rfail)
}

fn roster_table(members: &[Member]) -> Table {
    let mut t = Table::new(&[
        "user",
        "name",
        "role",
        "field",
        "from",
        "affiliation",
        "left",
    ]);
    for m in members {
        t.row(&[
            m.user.as_str(),
            &m.display_name,
            if m.chair { "chair" } else { "member" },
            m.field.code(),
            if m.external { "external" } else { "internal" },
            &m.affiliation,
            m.left_at.as_deref().unwrap_or("-"),
        ]);
    }
    t
}

#[derive(Subcommand)]
pub enum ReleaseCommand {
    /// Recipient side: check that a release folder (or an unpacked release package) is the
    /// operator's — its manifest signed by the operator's key, every file with its SHA-256.
    Verify {
        /// The release folder.
        release: PathBuf,
        /// File holding the operator's public key (hex; the operator publishes it as audit.pub).
        #[arg(long)]
        operator_key: PathBuf,
    },
    /// Recipient side: open a release package with the recipient's age identity (`tokumei key
    /// new`) into a new folder and check it as `verify` does; a package that does not verify is
    /// not kept.
    Open {
        /// The release package (`*.age`).
        package: PathBuf,
        /// The recipient's identity file (`NAME.key` from `tokumei key new`).
        #[arg(long)]
        identity: PathBuf,
        /// Folder to open it into (absent or empty).
        #[arg(long, value_parser = crate::out_dir)]
        out: PathBuf,
        /// File holding the operator's public key (hex; the operator publishes it as audit.pub).
        #[arg(long)]
        operator_key: PathBuf,
    },
    /// Record the recipient's certificate that a release was destroyed (its SHA-256 goes into the
    /// ledger and the audit log).
    Destroyed {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Release id.
        #[arg(long, value_parser = crate::parse_id)]
        release: String,
        /// The certificate document (any file: PDF, scan).
        #[arg(long)]
        certificate: PathBuf,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Build the release of an approved application: the cohort from the linked vault without
    /// opted-out persons, approved items only, per-release pseudonyms, the kind's rules (k = 10,
    /// year-month dates, rare codes, 90+ for anonymized), machine checks, tables, dictionary, report,
    /// manifest, and a package encrypted to the recipient; recorded in the provision ledger.
    Build {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Application id.
        #[arg(long, value_parser = crate::parse_id)]
        application: String,
        /// Output folder (absent or empty): the release as released, and the encrypted package.
        #[arg(long, value_parser = crate::out_dir)]
        out: PathBuf,
        /// Policy preset: jp-anonymized, jp-pseudonymized, hipaa-safe-harbor, ema-0070, or a preset
        /// file (TOML); by default the release kind's (jp-anonymized or jp-pseudonymized).
        #[arg(long)]
        preset: Option<String>,
        /// Overrides the preset's smallest equivalence class.
        #[arg(long, value_parser = crate::at_least_one)]
        k: Option<usize>,
        /// Overrides the preset's largest share suppressed to reach k (0–1).
        #[arg(long, value_parser = crate::share)]
        suppression_limit: Option<f64>,
        /// Overrides the preset's highest prosecutor risk of the re-identification test.
        #[arg(long)]
        max_prosecutor_risk: Option<f64>,
        /// Overrides the preset's highest linkage-attack success of the re-identification test.
        #[arg(long)]
        max_linkage_success: Option<f64>,
        /// Overrides the preset's highest membership-inference advantage.
        #[arg(long)]
        max_membership_advantage: Option<f64>,
        /// Overrides the preset's highest share of persons with a unique event trajectory (the
        /// build coarsens and truncates trajectories until it holds).
        #[arg(long)]
        max_trajectory_unique: Option<f64>,
        /// Overrides the preset's highest share of persons linked one-to-one to an earlier release
        /// of the same kind (joined on every value but the pseudonym).
        #[arg(long)]
        max_cross_release_linkable: Option<f64>,
        /// For evaluation on synthetic data only: write the pseudonym → person id map here.
        #[arg(long, hide = true)]
        evaluation_key: Option<PathBuf>,
        /// File holding the home passphrase (otherwise TOKUMEI_PASSPHRASE).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        user: UserKeyArgs,
    },
    /// The provision ledger: what was provided to whom, when, under which decision, and whether its
    /// destruction was certified.
    List {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        #[command(flatten)]
        auth: AuthArgs,
    },
}

/// The operator's public key from its file (hex, as the operator publishes it in audit.pub).
fn operator_key_file(path: &std::path::Path) -> Result<ed25519_dalek::VerifyingKey, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| (EXIT_USAGE, format!("{}: {e}", path.display())))?;
    tokumei_audit::public_key_from_hex(&text).map_err(|e| (EXIT_USAGE, e.to_string()))
}

pub fn run_release(c: ReleaseCommand) -> ExitCode {
    match c {
        ReleaseCommand::List { home, auth } => run_release_list(&home, &auth),
        ReleaseCommand::Verify {
            release,
            operator_key,
        } => report(
            (|| {
                let key = operator_key_file(&operator_key)?;
                tokumei_release::signed::verify(&release, &key)
                    .map_err(|e| (EXIT_FAILURE, e.to_string()))
            })(),
            |n| println!("release verified: signed by the operator, {n} files with their SHA-256"),
        ),
        ReleaseCommand::Open {
            package,
            identity,
            out,
            operator_key,
        } => report(
            (|| {
                let key = operator_key_file(&operator_key)?;
                tokumei_release::signed::open(&package, &identity, &out, &key)
                    .map_err(|e| (EXIT_FAILURE, e.to_string()))
            })(),
            |n| {
                println!(
                    "release opened into {} and verified: signed by the operator, {n} files with \
                     their SHA-256",
                    out.display()
                )
            },
        ),
        ReleaseCommand::Destroyed {
            home,
            release,
            certificate,
            auth,
        } => report(
            (|| {
                let bytes = std::fs::read(&certificate)
                    .map_err(|e| (EXIT_USAGE, format!("{}: {e}", certificate.display())))?;
                let (r, s) = open(&home, &auth, "release.destroyed", &[Role::Technician])?;
                r.record_destruction(&s, &release, &bytes).map_err(rfail)
            })(),
            |()| println!("destruction of {release} recorded"),
        ),
        ReleaseCommand::Build {
            home,
            application,
            out,
            preset,
            k,
            suppression_limit,
            max_prosecutor_risk,
            max_linkage_success,
            max_membership_advantage,
            max_trajectory_unique,
            max_cross_release_linkable,
            evaluation_key,
            passphrase_file,
            user,
        } => report(
            (|| {
                let pass =
                    crate::passphrase(passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
                let h = tokumei_vault::open(&home).map_err(fail)?;
                let s = session(&h, &user, Some(&pass), "release.build", &[Role::Technician])?;
                let key = h.unlock_data_key(&pass).map_err(fail)?;
                let r = Review::open(&h).map_err(rfail)?;
                let mut opts = tokumei_release::BuildOptions {
                    evaluation_key,
                    ..Default::default()
                };
                let scope = r
                    .approved_scope(&s, &application, opts.today)
                    .map_err(rfail)?;
                let usage = |e: tokumei_release::ReleaseError| (EXIT_USAGE, e.to_string());
                let mut p = match &preset {
                    Some(name) if std::path::Path::new(name).is_file() => {
                        let text = std::fs::read_to_string(name)
                            .map_err(|e| (EXIT_USAGE, format!("{name}: {e}")))?;
                        tokumei_release::Preset::parse(&text, name).map_err(usage)?
                    }
                    Some(name) => tokumei_release::Preset::named(name).map_err(usage)?,
                    None => {
                        tokumei_release::Preset::for_kind(scope.application.kind).map_err(usage)?
                    }
                };
                if let Some(k) = k {
                    p.k = k;
                }
                for (v, field) in [
                    (suppression_limit, &mut p.suppression_limit),
                    (max_prosecutor_risk, &mut p.max_prosecutor_risk),
                    (max_linkage_success, &mut p.max_linkage_success),
                    (max_membership_advantage, &mut p.max_membership_advantage),
                    (max_trajectory_unique, &mut p.max_trajectory_unique),
                    (
                        max_cross_release_linkable,
                        &mut p.max_cross_release_linkable,
                    ),
                ] {
                    if let Some(v) = v {
                        if !(0.0..=1.0).contains(&v) {
                            return Err((
                                EXIT_USAGE,
                                "limits and risk thresholds are between 0 and 1".to_string(),
                            ));
                        }
                        *field = v;
                    }
                }
                opts.preset = Some(p);
                tokumei_release::build(&h, &s, &key, &scope, &out, &opts).map_err(|e| match e {
                    tokumei_release::ReleaseError::Review(x) => rfail(x),
                    tokumei_release::ReleaseError::Vault(x) => fail(x),
                    e => (EXIT_FAILURE, e.to_string()),
                })
            })(),
            |r| print_built(&r),
        ),
    }
}

/// What `release build` reports: the release, its tables, the re-identification test, the
/// cross-release linkability and any warning on its usefulness.
fn print_built(r: &tokumei_release::Release) {
    println!(
        "release {} of application {}: {} persons ({} in the cohort, {} opted out, {} \
             suppressed); smallest class {} → {}; package {} (sha256 {})",
        r.release_id,
        r.application_id,
        r.persons,
        r.cohort,
        r.opted_out,
        r.suppressed,
        r.min_class.0,
        r.min_class.1,
        r.package.display(),
        r.package_sha256
    );
    for (t, n) in &r.rows {
        println!("  {t}: {n} rows");
    }
    let pct = |v: Option<f64>| {
        v.map(|v| format!("{:.2} %", v * 100.0))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "  re-identification test: linkage attack {} (unprocessed {}), membership \
             advantage {}, unique trajectories {}",
        pct(r.reid.attack_success),
        pct(r.reid_initial.attack_success),
        r.reid
            .membership_advantage
            .map(|a| format!("{a:.4}"))
            .unwrap_or_else(|| "-".into()),
        pct(r.reid.trajectory_unique)
    );
    for c in &r.cross_release {
        println!(
            "  cross-release: {} persons ({:.2} %) linked one-to-one to release {}",
            c.linkability.linked,
            c.linkability.share * 100.0,
            c.release_id
        );
    }
    for w in &r.warnings {
        eprintln!("warning: {w}; the release may not be usable (see its report)");
    }
}

/// `tokumei release list`: the provision ledger.
fn run_release_list(home: &std::path::Path, auth: &AuthArgs) -> ExitCode {
    report(
        (|| {
            let roles = &[Role::Technician, Role::Auditor, Role::Committee];
            let (r, _) = open(home, auth, "release.list", roles)?;
            r.provisions().map_err(rfail)
        })(),
        |ledger| {
            let mut t = Table::new(&[
                "release",
                "application",
                "kind",
                "provided",
                "expiry",
                "destroyed",
                "recipient",
            ]);
            for p in &ledger {
                t.row(&[
                    p.release_id.as_str(),
                    &p.application_id,
                    &p.kind,
                    &p.provided_at,
                    &p.contract_expiry,
                    p.destroyed_at.as_deref().unwrap_or("-"),
                    &p.recipient,
                ]);
            }
            t.print();
        },
    )
}

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
