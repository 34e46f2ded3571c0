//! `tokumei application`, `tokumei committee` and `tokumei release list`: research applications,
//! the review committee and the provision ledger.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use tokumei_review::application::Application;
use tokumei_review::{Field, Member, Outcome, Review, ReviewError, Vote};
use tokumei_vault::access::Role;

use crate::operator::{fail, report, session, Failure, UserKeyArgs};
use crate::{EXIT_FAILURE, EXIT_USAGE};

fn rfail(e: ReviewError) -> Failure {
    match e {
        ReviewError::Vault(v) => fail(v),
        ReviewError::Invalid(_) => (EXIT_USAGE, e.to_string()),
        e => (EXIT_FAILURE, e.to_string()),
    }
}

/// Opens the home, the session (any role: the review store checks each action) and the store.
fn open(
    home: &std::path::Path,
    user: &UserKeyArgs,
    action: &str,
    roles: &[Role],
) -> Result<(Review, tokumei_vault::access::Session), Failure> {
    let h = tokumei_vault::open(home).map_err(fail)?;
    let s = session(&h, user, None, action, roles)?;
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
pub enum ApplicationCommand {
    /// Submit an application from a TOML file (applicant, purpose, items, cohort, period, kind,
    /// recipient key, security plan, contract expiry). A researcher, or a technician for them.
    Submit {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The application (TOML).
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        user: UserKeyArgs,
    },
    /// List applications and their state.
    List {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        #[command(flatten)]
        user: UserKeyArgs,
    },
    /// Show an application, its decision and its votes' tally.
    Show {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Application id.
        #[arg(value_parser = crate::parse_id)]
        id: String,
        #[command(flatten)]
        user: UserKeyArgs,
    },
    /// Withdraw an application: no release follows it.
    Withdraw {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Application id.
        #[arg(value_parser = crate::parse_id)]
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        user: UserKeyArgs,
    },
}

pub fn run_application(c: ApplicationCommand) -> ExitCode {
    let today = chrono::Utc::now().date_naive();
    match c {
        ApplicationCommand::Submit { home, file, user } => report(
            (|| {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| (EXIT_USAGE, format!("{}: {e}", file.display())))?;
                let app = Application::from_toml(&text)
                    .map_err(|e| (EXIT_USAGE, format!("{}: {e}", file.display())))?;
                let (r, s) = open(&home, &user, "application.submit", ANY)?;
                r.submit(&s, &app).map_err(rfail)
            })(),
            |id| println!("application {id} submitted; it awaits the committee"),
        ),
        ApplicationCommand::List { home, user } => report(
            (|| {
                let (r, _) = open(&home, &user, "application.list", ANY)?;
                r.applications().map_err(rfail)
            })(),
            |apps| {
                println!("{:<8} {:<26} {:<14} title", "id", "state", "kind");
                for a in apps {
                    println!(
                        "{:<8} {:<26} {:<14} {}",
                        a.id,
                        a.state(today),
                        a.application.kind.code(),
                        a.application.title
                    );
                }
            },
        ),
        ApplicationCommand::Show { home, id, user } => report(
            (|| {
                let (r, _) = open(&home, &user, "application.show", ANY)?;
                r.status(&id)
                    .map_err(rfail)?
                    .ok_or((EXIT_FAILURE, format!("no application {id}")))
            })(),
            |st| {
                let a = &st.application;
                println!("application {} — {}", st.id, a.title);
                println!("  state            {}", st.state(today));
                println!("  kind             {}", a.kind.code());
                println!(
                    "  applicant        {} ({:?}); responsible: {}",
                    a.applicant.organisation,
                    a.applicant.certification,
                    a.applicant.responsible_researcher
                );
                println!("  purpose          {}", a.purpose);
                println!("  period           {} – {}", a.period_from, a.period_to);
                println!("  contract expiry  {}", a.contract_expiry);
                println!("  items requested  {}", a.item_names().join(", "));
                println!(
                    "  submitted        {} by {}",
                    st.submitted_at, st.submitted_by
                );
                if let Some(d) = &st.decision {
                    println!(
                        "  decision         {} at {} ({} for, {} against, {} abstaining; recused: {})",
                        d.outcome.code(),
                        d.meeting_id,
                        d.tally.0,
                        d.tally.1,
                        d.tally.2,
                        if d.recused.is_empty() {
                            "none".to_string()
                        } else {
                            d.recused.join(", ")
                        }
                    );
                    println!("  reasons          {}", d.reasons);
                    for c in &d.conditions {
                        println!("  condition        {c}");
                    }
                    if d.outcome.approves() {
                        println!("  items approved   {}", d.approved_items.join(", "));
                    }
                    println!("  decision sha256  {}", d.sha256());
                }
            },
        ),
        ApplicationCommand::Withdraw {
            home,
            id,
            reason,
            user,
        } => report(
            (|| {
                let (r, s) = open(
                    &home,
                    &user,
                    "application.withdraw",
                    &[Role::Researcher, Role::Technician],
                )?;
                r.withdraw(&s, &id, &reason).map_err(rfail)
            })(),
            |()| println!("application {id} withdrawn"),
        ),
    }
}

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
        /// medical, law-ethics, security or citizen.
        #[arg(long)]
        field: String,
        /// The chair.
        #[arg(long)]
        chair: bool,
        /// From outside the operator.
        #[arg(long)]
        external: bool,
        #[command(flatten)]
        user: UserKeyArgs,
    },
    /// Take a member off the roster.
    RetireMember {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The member's user name.
        #[arg(long)]
        member: String,
        #[command(flatten)]
        user: UserKeyArgs,
    },
    /// The roster.
    Roster {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        #[command(flatten)]
        user: UserKeyArgs,
    },
    /// Open a meeting with the members present (a member records it).
    Meeting {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Date (YYYY-MM-DD).
        #[arg(long)]
        date: String,
        /// Members present (user names, comma-separated).
        #[arg(long, value_delimiter = ',')]
        present: Vec<String>,
        #[command(flatten)]
        user: UserKeyArgs,
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
        user: UserKeyArgs,
    },
    /// Vote on an application: approve, reject or abstain (once; votes are immutable).
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
        /// approve, reject or abstain.
        vote: String,
        #[command(flatten)]
        user: UserKeyArgs,
    },
    /// Record the decision: approve, approve-with-conditions, revise or reject (immutable).
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
        /// approve, approve-with-conditions, revise or reject.
        #[arg(long)]
        decision: String,
        /// Reasons.
        #[arg(long)]
        reason: String,
        /// A condition (repeatable).
        #[arg(long)]
        condition: Vec<String>,
        /// A requested item (`table.column`) the committee leaves out (repeatable).
        #[arg(long)]
        drop_item: Vec<String>,
        #[command(flatten)]
        user: UserKeyArgs,
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
            user,
        } => report(
            (|| {
                let field = Field::parse(&field).ok_or((
                    EXIT_USAGE,
                    "--field is medical, law-ethics, security or citizen".to_string(),
                ))?;
                let (r, s) = open(&home, &user, "committee.member.add", &[Role::Technician])?;
                r.add_member(
                    &s,
                    &Member {
                        user: member.clone(),
                        display_name,
                        chair,
                        affiliation,
                        field,
                        external,
                        joined_at: String::new(),
                        left_at: None,
                    },
                )
                .map_err(rfail)
            })(),
            |()| println!("{member} is on the committee's roster"),
        ),
        CommitteeCommand::RetireMember { home, member, user } => report(
            (|| {
                let (r, s) = open(&home, &user, "committee.member.retire", &[Role::Technician])?;
                r.retire_member(&s, &member).map_err(rfail)
            })(),
            |()| println!("{member} left the committee"),
        ),
        CommitteeCommand::Roster { home, user } => report(
            (|| {
                let (r, _) = open(&home, &user, "committee.roster", ANY)?;
                r.members().map_err(rfail)
            })(),
            |members| {
                for m in members {
                    println!(
                        "{:<12} {:<20} {:<7} {:<10} {:<9} {} {}",
                        m.user,
                        m.display_name,
                        if m.chair { "chair" } else { "member" },
                        m.field.code(),
                        if m.external { "external" } else { "internal" },
                        m.affiliation,
                        m.left_at.map(|l| format!("(left {l})")).unwrap_or_default()
                    );
                }
            },
        ),
        CommitteeCommand::Meeting {
            home,
            date,
            present,
            user,
        } => report(
            (|| {
                let (r, s) = open(&home, &user, "committee.meeting", &[Role::Committee])?;
                r.open_meeting(&s, &date, &present).map_err(rfail)
            })(),
            |id| println!("meeting {id} opened"),
        ),
        CommitteeCommand::Conflict {
            home,
            meeting,
            application,
            reason,
            user,
        } => report(
            (|| {
                let (r, s) = open(&home, &user, "committee.conflict", &[Role::Committee])?;
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
            user,
        } => report(
            (|| {
                let v = Vote::parse(&vote).ok_or((
                    EXIT_USAGE,
                    "the vote is approve, reject or abstain".to_string(),
                ))?;
                let (r, s) = open(&home, &user, "committee.vote", &[Role::Committee])?;
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
            user,
        } => report(
            (|| {
                let o = Outcome::parse(&decision).ok_or((
                    EXIT_USAGE,
                    "--decision is approve, approve-with-conditions, revise or reject".to_string(),
                ))?;
                let (r, s) = open(&home, &user, "committee.decide", &[Role::Committee])?;
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
        user: UserKeyArgs,
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
        user: UserKeyArgs,
    },
}

pub fn run_release(c: ReleaseCommand) -> ExitCode {
    match c {
        ReleaseCommand::List { home, user } => run_release_list(home, user),
        ReleaseCommand::Verify {
            release,
            operator_key,
        } => report(
            (|| {
                let text = std::fs::read_to_string(&operator_key)
                    .map_err(|e| (EXIT_USAGE, format!("{}: {e}", operator_key.display())))?;
                let key = tokumei_audit::public_key_from_hex(&text)
                    .map_err(|e| (EXIT_USAGE, e.to_string()))?;
                tokumei_release::signed::verify(&release, &key)
                    .map_err(|e| (EXIT_FAILURE, e.to_string()))
            })(),
            |n| println!("release verified: signed by the operator, {n} files with their SHA-256"),
        ),
        ReleaseCommand::Destroyed {
            home,
            release,
            certificate,
            user,
        } => report(
            (|| {
                let bytes = std::fs::read(&certificate)
                    .map_err(|e| (EXIT_USAGE, format!("{}: {e}", certificate.display())))?;
                let (r, s) = open(&home, &user, "release.destroyed", &[Role::Technician])?;
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
            |r| {
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
            },
        ),
    }
}

/// `tokumei release list`: the provision ledger.
fn run_release_list(home: PathBuf, user: UserKeyArgs) -> ExitCode {
    report(
        (|| {
            let (r, _) = open(
                &home,
                &user,
                "release.list",
                &[Role::Technician, Role::Auditor, Role::Committee],
            )?;
            r.provisions().map_err(rfail)
        })(),
        |ledger| {
            println!(
                "{:<15} {:<8} {:<14} {:<21} {:<11} {:<21} recipient",
                "release", "appl.", "kind", "provided", "expiry", "destroyed"
            );
            for p in ledger {
                println!(
                    "{:<15} {:<8} {:<14} {:<21} {:<11} {:<21} {}",
                    p.release_id,
                    p.application_id,
                    p.kind,
                    p.provided_at,
                    p.contract_expiry,
                    p.destroyed_at.as_deref().unwrap_or("-"),
                    p.recipient
                );
            }
        },
    )
}

/// `tokumei reid-test`: the re-identification battery on a built release.
#[derive(clap::Args)]
pub struct ReidArgs {
    /// The release folder (`release build --out`).
    #[arg(long)]
    release: PathBuf,
    /// The intruder's population register: a CSV (id, sex, birth_date, municipality_code) or the
    /// synthetic truth's `persons.parquet`.
    #[arg(long)]
    population: PathBuf,
    /// For evaluation: a CSV mapping release pseudonyms to register ids (`pseudonym,person_id`).
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Highest prosecutor risk allowed.
    #[arg(long, default_value_t = 0.1)]
    max_prosecutor_risk: f64,
    /// Highest share of persons the linkage attack may re-identify.
    #[arg(long, default_value_t = 0.05)]
    max_linkage_success: f64,
    /// Highest membership-inference advantage allowed (needs `--truth`); unchecked when absent.
    #[arg(long, requires = "truth")]
    max_membership_advantage: Option<f64>,
    /// Highest share, in any coded event table, of persons with a unique trajectory; unchecked
    /// when absent.
    #[arg(long)]
    max_trajectory_unique: Option<f64>,
    /// Another release folder (same layout) to test cross-release linkability against; the JSON
    /// printed becomes `{"battery": ..., "cross_release": ...}`.
    #[arg(long)]
    against: Option<PathBuf>,
    /// For evaluation: the `pseudonym,person_id` CSV of the `--against` release.
    #[arg(long, requires = "against")]
    against_truth: Option<PathBuf>,
    /// Highest share of persons linked one-to-one to the `--against` release; unchecked when
    /// absent.
    #[arg(long, requires = "against")]
    max_cross_release_linkable: Option<f64>,
}

fn read_csv_table(
    path: &std::path::Path,
    name: &str,
) -> Result<tokumei_release::checks::Table, Failure> {
    let mut r = csv::Reader::from_path(path)
        .map_err(|e| (EXIT_FAILURE, format!("{}: {e}", path.display())))?;
    let columns: Vec<String> = r
        .headers()
        .map_err(|e| (EXIT_FAILURE, format!("{}: {e}", path.display())))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| (EXIT_FAILURE, format!("{}: {e}", path.display())))?;
        rows.push(
            rec.iter()
                .map(|v| (!v.is_empty()).then(|| v.to_string()))
                .collect(),
        );
    }
    Ok(tokumei_release::checks::Table {
        name: name.to_string(),
        columns,
        rows,
    })
}

pub fn run_reid(a: ReidArgs) -> ExitCode {
    use std::collections::HashMap;
    use std::path::Path;
    use tokumei_release::checks::Table;
    use tokumei_release::reid::{
        cross_release_linkability, run, Linkability, RegisterPerson, ReidReport,
    };
    /// The JSON printed with `--against`.
    #[derive(serde::Serialize)]
    struct WithCrossRelease<'a> {
        battery: &'a ReidReport,
        cross_release: &'a Linkability,
    }
    // A release folder's tables: persons first, then the event tables it has.
    let read_release = |dir: &Path| -> Result<Vec<Table>, Failure> {
        let mut tables = vec![read_csv_table(&dir.join("tables/persons.csv"), "persons")?];
        for t in [
            "diagnoses",
            "prescriptions",
            "procedures",
            "lab_results",
            "encounters",
            "deaths",
        ] {
            let p = dir.join(format!("tables/{t}.csv"));
            if p.exists() {
                tables.push(read_csv_table(&p, t)?);
            }
        }
        Ok(tables)
    };
    // A `pseudonym,person_id` CSV.
    let read_truth = |p: &Path| -> Result<HashMap<String, String>, Failure> {
        let t = read_csv_table(p, "truth")?;
        Ok(t.rows
            .iter()
            .filter_map(|r| Some((r.first()?.clone()?, r.get(1)?.clone()?)))
            .collect())
    };
    let result = (|| -> Result<(ReidReport, Option<Linkability>), Failure> {
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(a.release.join("manifest.json"))
                .map_err(|e| (EXIT_USAGE, format!("{}: {e}", a.release.display())))?,
        )
        .map_err(|e| (EXIT_FAILURE, format!("manifest.json: {e}")))?;
        let end = manifest["period_to"]
            .as_str()
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .ok_or((EXIT_FAILURE, "manifest.json names no period_to".to_string()))?;
        let tables = read_release(&a.release)?;
        let register: Vec<RegisterPerson> =
            if a.population.extension().is_some_and(|e| e == "parquet") {
                tokumei_synth::writer::read_table::<tokumei_model::truth::TruthPerson>(
                    &a.population,
                )
                .map_err(|e| (EXIT_FAILURE, e.to_string()))?
                .into_iter()
                .map(|p| RegisterPerson {
                    id: p.person_id,
                    sex: Some(p.sex.code().to_string()),
                    birth: Some(p.birth_date),
                    municipality: Some(p.municipality_code),
                })
                .collect()
            } else {
                let t = read_csv_table(&a.population, "population")?;
                let col = |n: &[&str]| n.iter().find_map(|c| t.col(c));
                let (id, sex, birth, muni) = (
                    col(&["id", "person_id"]),
                    col(&["sex"]),
                    col(&["birth_date"]),
                    col(&["municipality_code", "municipality"]),
                );
                let Some(id) = id else {
                    return Err((
                        EXIT_USAGE,
                        format!("{}: no id or person_id column", a.population.display()),
                    ));
                };
                t.rows
                    .iter()
                    .map(|r| RegisterPerson {
                        id: r[id].clone().unwrap_or_default(),
                        sex: sex.and_then(|i| r[i].clone()),
                        birth: birth.and_then(|i| {
                            r[i].as_deref()
                                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                        }),
                        municipality: muni.and_then(|i| r[i].clone()),
                    })
                    .collect()
            };
        let truth = a.truth.as_deref().map(read_truth).transpose()?;
        let report = run(&tables[0], &tables[1..], &register, end, truth.as_ref());
        let cross = match &a.against {
            Some(dir) => {
                if !dir.join("tables/persons.csv").is_file() {
                    return Err((
                        EXIT_USAGE,
                        format!("{}: no tables/persons.csv", dir.display()),
                    ));
                }
                let other = read_release(dir)?;
                let other_truth = a.against_truth.as_deref().map(read_truth).transpose()?;
                Some(cross_release_linkability(
                    &tables,
                    &other,
                    truth.as_ref(),
                    other_truth.as_ref(),
                ))
            }
            None => None,
        };
        Ok((report, cross))
    })();
    match result {
        Ok((r, cross)) => {
            let json = match &cross {
                Some(c) => serde_json::to_string_pretty(&WithCrossRelease {
                    battery: &r,
                    cross_release: c,
                }),
                None => serde_json::to_string_pretty(&r),
            };
            println!("{}", json.unwrap_or_default());
            if a.max_membership_advantage.is_some() && r.membership_advantage.is_none() {
                eprintln!(
                    "note: no membership-inference advantage (the register holds no member or no \
                     non-member of the release)"
                );
            }
            let mut breaches = r.breaches(&tokumei_release::reid::Thresholds {
                prosecutor: a.max_prosecutor_risk,
                linkage: a.max_linkage_success,
                membership: a.max_membership_advantage,
                trajectory: a.max_trajectory_unique,
            });
            if let (Some(max), Some(c), Some(against)) =
                (a.max_cross_release_linkable, &cross, &a.against)
            {
                breaches.extend(c.breach(max, &against.display().to_string()));
            }
            for b in &breaches {
                eprintln!("the release breaks its thresholds: {b}");
            }
            let broken = !breaches.is_empty();
            if broken {
                ExitCode::from(EXIT_FAILURE)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err((code, e)) => {
            eprintln!("error: {e}");
            ExitCode::from(code)
        }
    }
}
