//! `tokumei feasibility`: cohort counts for clinical-trial feasibility under disclosure control.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use tokumei_feasibility::{shown_text, CountAnswer, Definition, Policy};
use tokumei_vault::access::Role;

use crate::operator::{self, open_home, render, report, AuthArgs, Failure};
use crate::{EXIT_FAILURE, EXIT_USAGE};

#[derive(Subcommand)]
pub(crate) enum FeasibilityCommand {
    /// Count the persons of the linked vault who meet a cohort definition (TOML, or JSON for a
    /// `.json` file; docs/feasibility.md), never those who asked to stop: the attrition per rule
    /// and breakdowns by sex, age band, 二次医療圏 and provider, under the disclosure policy
    /// (default NDB-like: no cell of 1–9 shown or derivable, counts rounded to 10). Audited with
    /// the definition's hash. Needs a technician.
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
        /// Also write the answer as an HTML report (Japanese and English, the attrition chart).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Print the answer as JSON (docs/json.md).
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
    auth: &AuthArgs,
) -> Result<CountAnswer, Failure> {
    let def = Definition::read(definition).map_err(fail)?;
    let policy = match policy {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| (EXIT_USAGE, format!("{}: {e}", p.display())))?;
            Policy::parse(&text).map_err(fail)?
        }
        None => Policy::ndb(),
    };
    let home = open_home(home)?;
    let session = auth.session(&home, "feasibility.count", &[Role::Technician])?;
    let key = operator::unlock(&home, auth)?;
    tokumei_feasibility::count(&home, &session, &key, &def, &policy).map_err(fail)
}

fn print(a: &CountAnswer) {
    println!("{} (definition sha256 {})", a.name, a.definition_hash);
    if a.cached {
        println!("the answer given before to the same query on the same data (no quota spent)");
    }
    println!("policy: {}", a.answer.policy);
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
}

pub(crate) fn run(c: FeasibilityCommand) -> ExitCode {
    match c {
        FeasibilityCommand::Count {
            home,
            definition,
            policy,
            report: html,
            json,
            auth,
        } => {
            let answered = count(&home, &definition, policy.as_ref(), &auth).and_then(|a| {
                if let Some(path) = &html {
                    tokumei_feasibility::write_report(path, &a).map_err(fail)?;
                }
                Ok(a)
            });
            report(answered, |a| render(json, &a, print))
        }
        FeasibilityCommand::Schema => {
            print!("{}", tokumei_feasibility::definition::schema());
            ExitCode::SUCCESS
        }
    }
}
