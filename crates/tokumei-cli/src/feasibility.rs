//! `tokumei feasibility`: cohort counts for clinical-trial feasibility under disclosure control.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use tokumei_feasibility::budget::Balance;
use tokumei_feasibility::counter::Counter;
use tokumei_feasibility::{shown_text, CountAnswer, Definition, Policy};
use tokumei_vault::access::Role;

use crate::operator::{self, open_home, render, report, AuthArgs, Failure};
use crate::{EXIT_FAILURE, EXIT_USAGE};

#[derive(Subcommand)]
pub(crate) enum FeasibilityCommand {
    /// Count the persons of the linked vault who meet a cohort definition (TOML, or JSON for a
    /// `.json` file; docs/feasibility.md), never those who asked to stop: the attrition per rule
    /// and breakdowns by sex, age band, 二次医療圏 and provider, under the disclosure policy
    /// (default NDB-like: no cell of 1–9 shown or derivable, counts rounded to 10) after
    /// differential-privacy noise charged to the privacy budget. Audited with the definition's
    /// hash. A technician, or a researcher under an approved feasibility application naming them.
    Count {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The cohort definition.
        #[arg(long)]
        definition: PathBuf,
        /// A disclosure policy file (TOML) instead of the default.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// The approved feasibility application asked under (required of a researcher; charged to
        /// its budget).
        #[arg(long)]
        application: Option<String>,
        /// Also write the answer as an HTML report (Japanese and English, the attrition chart).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Print the answer as JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: AuthArgs,
        /// Where the code index's postings are built (job files under `HOME/work/engine` by
        /// default); the counts are the same.
        #[command(flatten)]
        engine: crate::engine::EngineArgs,
    },
    /// Show the privacy budget spent and left (ε) under the policy: your own, or a named user's
    /// (technicians only). Audited.
    Budget {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Another user (technicians only).
        #[arg(long = "for")]
        for_user: Option<String>,
        /// Also what is left under this feasibility application.
        #[arg(long)]
        application: Option<String>,
        /// A disclosure policy file (TOML) instead of the default.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Print the balance as JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Print the JSON Schema of cohort definitions.
    Schema,
}

fn fail(e: tokumei_feasibility::FeasibilityError) -> Failure {
    use tokumei_feasibility::FeasibilityError as E;
    let code = match e {
        E::Definition(_) | E::Policy(_) | E::Io(..) => EXIT_USAGE,
        _ => EXIT_FAILURE,
    };
    (code, e.to_string())
}

fn count(
    home: &std::path::Path,
    definition: &std::path::Path,
    policy: Option<&PathBuf>,
    application: Option<&str>,
    auth: &AuthArgs,
    engine: &crate::engine::EngineArgs,
) -> Result<CountAnswer, Failure> {
    let def = Definition::read(definition).map_err(fail)?;
    let policy = read_policy(policy)?;
    let postings = engine
        .postings_engine(&home.join("work").join("engine"))
        .map_err(|e| (EXIT_USAGE, e))?;
    let home = open_home(home)?;
    let session = auth.session(
        &home,
        "feasibility.count",
        &[Role::Technician, Role::Researcher],
    )?;
    let key = operator::unlock(&home, auth)?;
    let counter = Counter::new(postings);
    tokumei_feasibility::count(&home, &session, &key, &def, &policy, application, &counter)
        .map_err(fail)
}

fn read_policy(policy: Option<&PathBuf>) -> Result<Policy, Failure> {
    match policy {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| (EXIT_USAGE, format!("{}: {e}", p.display())))?;
            Policy::parse(&text).map_err(fail)
        }
        None => Ok(Policy::ndb()),
    }
}

fn budget(
    home: &std::path::Path,
    for_user: Option<&str>,
    application: Option<&str>,
    policy: Option<&PathBuf>,
    auth: &AuthArgs,
) -> Result<Balance, Failure> {
    let policy = read_policy(policy)?;
    let home = open_home(home)?;
    let session = auth.session(
        &home,
        "feasibility.budget",
        &[Role::Technician, Role::Researcher],
    )?;
    let key = operator::unlock(&home, auth)?;
    tokumei_feasibility::budget(&home, &session, &key, &policy, for_user, application).map_err(fail)
}

fn print_balance(b: &Balance) {
    let window = b
        .user_window_days
        .map_or_else(String::new, |d| format!(" in the last {d} days"));
    println!(
        "user {}: ε {} spent{window}, {} left (an answer spends {})",
        b.user, b.user_spent, b.user_left, b.per_count
    );
    if let Some(a) = &b.application {
        println!(
            "application {a}: ε {} spent, {} left",
            b.application_spent, b.application_left
        );
    }
}

fn print(a: &CountAnswer) {
    println!("{} (definition sha256 {})", a.name, a.definition_hash);
    if a.cached {
        println!(
            "the answer given before to the same query on the same data (no quota or budget spent)"
        );
    }
    println!(
        "policy: {}; ε {} (ledger row {}); ranges are 95 % intervals of the true counts",
        a.answer.policy, a.answer.epsilon, a.ledger_row
    );
    for s in &a.answer.steps {
        println!("  {:<40} {}", s.name, shown_text(&s.persons));
    }
    println!("persons: {}", shown_text(&a.answer.total));
    for (name, b) in [
        ("sex", &a.answer.sex),
        ("age band", &a.answer.age_band),
        ("二次医療圏", &a.answer.area),
        ("provider", &a.answer.provider),
    ] {
        match &b.withheld {
            Some(why) => println!("by {name}: withheld ({why})"),
            None => {
                let cells: Vec<String> = b
                    .cells
                    .iter()
                    .map(|(k, v)| format!("{k} {}", shown_text(v)))
                    .collect();
                println!("by {name}: {}", cells.join(", "));
            }
        }
    }
    if let Some(b) = &a.balance {
        print_balance(b);
    }
}

pub(crate) fn run(c: FeasibilityCommand) -> ExitCode {
    match c {
        FeasibilityCommand::Count {
            home,
            definition,
            policy,
            application,
            report: html,
            json,
            auth,
            engine,
        } => {
            let answered = count(
                &home,
                &definition,
                policy.as_ref(),
                application.as_deref(),
                &auth,
                &engine,
            )
            .and_then(|a| {
                if let Some(path) = &html {
                    tokumei_feasibility::write_report(path, &a).map_err(fail)?;
                }
                Ok(a)
            });
            report(answered, |a| render(json, &a, print))
        }
        FeasibilityCommand::Budget {
            home,
            for_user,
            application,
            policy,
            json,
            auth,
        } => report(
            budget(
                &home,
                for_user.as_deref(),
                application.as_deref(),
                policy.as_ref(),
                &auth,
            ),
            |b| render(json, &b, print_balance),
        ),
        FeasibilityCommand::Schema => {
            print!("{}", tokumei_feasibility::definition::schema());
            ExitCode::SUCCESS
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum RecruitCommand {
    /// Build the recruitment lists of an approved recruitment protocol (a feasibility application
    /// with `recruitment = true`): for each provider with a recruitment key
    /// (`provider recruit-key`), its own local patient ids who meet the definition, sealed to that
    /// key into OUT/<application>-<provider>.json.age; persons who asked to stop are never listed.
    /// Each list is a provision ledger entry. Needs a technician.
    Build {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The recruitment protocol (an approved feasibility application).
        #[arg(long)]
        application: String,
        /// The cohort definition (as for `feasibility count`).
        #[arg(long)]
        definition: PathBuf,
        /// Folder the sealed lists are written to.
        #[arg(long)]
        out: PathBuf,
        /// Print the lists built as JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// The recruitment lists delivered, from the provision ledger (technicians and auditors).
    List {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
}

fn recruit_build(
    home: &std::path::Path,
    application: &str,
    definition: &std::path::Path,
    out: &std::path::Path,
    auth: &AuthArgs,
) -> Result<Vec<tokumei_feasibility::recruit::Built>, Failure> {
    let def = Definition::read(definition).map_err(fail)?;
    let home = open_home(home)?;
    let session = auth.session(&home, "recruit.build", &[Role::Technician])?;
    let key = operator::unlock(&home, auth)?;
    tokumei_feasibility::recruit::build(&home, &session, &key, &def, application, out).map_err(fail)
}

fn recruit_list(
    home: &std::path::Path,
    auth: &AuthArgs,
) -> Result<Vec<tokumei_review::Provision>, Failure> {
    let home = open_home(home)?;
    let session = auth.session(&home, "recruit.list", &[Role::Technician, Role::Auditor])?;
    tokumei_feasibility::recruit::list(&home, &session).map_err(fail)
}

pub(crate) fn run_recruit(c: RecruitCommand) -> ExitCode {
    match c {
        RecruitCommand::Build {
            home,
            application,
            definition,
            out,
            json,
            auth,
        } => report(
            recruit_build(&home, &application, &definition, &out, &auth),
            |lists| {
                render(json, &lists, |lists| {
                    for l in lists {
                        println!(
                            "{}: {} patient(s), {} (sha256 {}), ledger {}",
                            l.provider,
                            l.patients,
                            l.file.display(),
                            l.sha256,
                            l.provision_id
                        );
                    }
                })
            },
        ),
        RecruitCommand::List { home, json, auth } => report(recruit_list(&home, &auth), |lists| {
            render(json, &lists, |lists| {
                for p in lists {
                    println!(
                        "{}  {}  {}  sha256 {}",
                        p.provided_at, p.application_id, p.recipient, p.package_sha256
                    );
                }
            })
        }),
    }
}
