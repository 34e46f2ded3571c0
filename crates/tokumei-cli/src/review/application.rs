//! `tokumei application`: the template, submission, listing, display and withdrawal of research
//! applications.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use tokumei_review::application::{Application, Certification, Cohort, Problem, TEMPLATE};
use tokumei_review::{ReviewError, Status};
use tokumei_vault::access::Role;

use super::{open, rfail, ANY};
use crate::operator::{report, AuthArgs, Failure};
use crate::table::Table;
use crate::{EXIT_FAILURE, EXIT_USAGE};

#[derive(Subcommand)]
pub enum ApplicationCommand {
    /// Print a complete commented application file (every field, required or optional, with its
    /// meaning and allowed values) to fill in and submit; docs/applications.md describes the
    /// format.
    Template {
        /// Write the template to this file instead of standard output (an existing file is never
        /// overwritten).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Submit an application from a TOML file (see `application template` and
    /// docs/applications.md); every missing or invalid field is reported at once. A researcher, or
    /// a technician for them.
    Submit {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// The application file (TOML).
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// List applications and their state.
    List {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Show an application, its decision and its votes' tally.
    Show {
        /// Operator home.
        #[arg(long)]
        home: PathBuf,
        /// Application id.
        #[arg(value_parser = crate::parse_id)]
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Withdraw an application: no release follows it. A researcher or a technician.
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
        auth: AuthArgs,
    },
}

/// An application as `--json` prints it: its record and its state today.
#[derive(serde::Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    status: &'a Status,
    state: &'a str,
}

pub fn run_application(c: ApplicationCommand) -> ExitCode {
    let today = chrono::Utc::now().date_naive();
    match c {
        ApplicationCommand::Template { out } => report(write_template(out.as_deref()), |()| {
            if let Some(out) = &out {
                println!("application template written to {}", out.display());
            }
        }),
        ApplicationCommand::Submit { home, file, auth } => {
            report(submit(&home, &file, &auth), |id| {
                println!("application {id} submitted; it awaits the committee")
            })
        }
        ApplicationCommand::List { home, json, auth } => report(
            (|| {
                let (r, _) = open(&home, &auth, "application.list", ANY)?;
                r.applications().map_err(rfail)
            })(),
            |apps| {
                if json {
                    let shown: Vec<Shown> = apps
                        .iter()
                        .map(|status| Shown {
                            status,
                            state: status.state(today),
                        })
                        .collect();
                    print_json(&shown);
                } else {
                    application_table(&apps, today).print();
                }
            },
        ),
        ApplicationCommand::Show {
            home,
            id,
            json,
            auth,
        } => report(
            (|| {
                let (r, _) = open(&home, &auth, "application.show", ANY)?;
                r.status(&id)
                    .map_err(rfail)?
                    .ok_or((EXIT_FAILURE, format!("no application {id}")))
            })(),
            |st| {
                if json {
                    print_json(&Shown {
                        status: &st,
                        state: st.state(today),
                    });
                } else {
                    print_status(&st, today);
                }
            },
        ),
        ApplicationCommand::Withdraw {
            home,
            id,
            reason,
            auth,
        } => report(
            (|| {
                let roles = &[Role::Researcher, Role::Technician];
                let (r, s) = open(&home, &auth, "application.withdraw", roles)?;
                r.withdraw(&s, &id, &reason).map_err(rfail)
            })(),
            |()| println!("application {id} withdrawn"),
        ),
    }
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Writes the template to `out`, or prints it.
fn write_template(out: Option<&Path>) -> Result<(), Failure> {
    let Some(out) = out else {
        print!("{TEMPLATE}");
        return Ok(());
    };
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .and_then(|mut f| std::io::Write::write_all(&mut f, TEMPLATE.as_bytes()))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => (
                EXIT_USAGE,
                format!("{} exists; choose another --out", out.display()),
            ),
            _ => (EXIT_FAILURE, format!("{}: {e}", out.display())),
        })
}

fn submit(home: &Path, file: &Path, auth: &AuthArgs) -> Result<String, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| (EXIT_USAGE, format!("{}: {e}", file.display())))?;
    let app = Application::from_toml(&text).map_err(|e| match e {
        ReviewError::Application(p) => (EXIT_USAGE, problems(file, &p)),
        e => (EXIT_USAGE, format!("{}: {e}", file.display())),
    })?;
    let (r, s) = open(home, auth, "application.submit", ANY)?;
    r.submit(&s, &app).map_err(rfail)
}

/// Every problem of an application file, one per line.
fn problems(file: &Path, p: &[Problem]) -> String {
    let lines: Vec<String> = p.iter().map(|p| format!("  {p}")).collect();
    format!(
        "{} is not accepted; {} problem(s):\n{}\n`tokumei application template` prints a complete \
         commented file; docs/applications.md describes every field",
        file.display(),
        p.len(),
        lines.join("\n")
    )
}

fn application_table(apps: &[Status], today: chrono::NaiveDate) -> Table {
    let mut t = Table::new(&["id", "state", "kind", "submitted", "title"]);
    for a in apps {
        t.row(&[
            a.id.as_str(),
            a.state(today),
            a.application.kind.code(),
            &a.submitted_at,
            &a.application.title,
        ]);
    }
    t
}

/// An absent value.
const NONE: &str = "—";

fn or_none(v: Option<&str>) -> &str {
    v.filter(|v| !v.trim().is_empty()).unwrap_or(NONE)
}

fn certification(a: &Application) -> String {
    let c = &a.applicant;
    match c.certification {
        Certification::None => "not certified".to_string(),
        _ => format!(
            "{} {}, valid until {}",
            c.certification.code(),
            or_none(c.certification_id.as_deref()),
            or_none(c.certification_valid_until.as_deref())
        ),
    }
}

fn cohort(c: &Cohort) -> String {
    let mut parts = Vec::new();
    if !c.icd10.is_empty() {
        parts.push(format!("ICD-10 {}", c.icd10.join(", ")));
    }
    if c.age_min.is_some() || c.age_max.is_some() {
        let age = |a: Option<u32>| a.map(|a| a.to_string()).unwrap_or_default();
        parts.push(format!("age {}–{}", age(c.age_min), age(c.age_max)));
    }
    if let Some(s) = &c.sex {
        parts.push(format!("sex {s}"));
    }
    if !c.municipalities.is_empty() {
        parts.push(format!("municipalities {}", c.municipalities.join(", ")));
    }
    if parts.is_empty() {
        "everybody".to_string()
    } else {
        parts.join("; ")
    }
}

fn print_status(st: &Status, today: chrono::NaiveDate) {
    let a = &st.application;
    let line = |label: &str, value: &str| println!("  {label:<16} {value}");
    println!("application {} — {}", st.id, a.title);
    line("state", st.state(today));
    line("kind", a.kind.code());
    line("applicant", &a.applicant.organisation);
    line("certification", &certification(a));
    line("responsible", &a.applicant.responsible_researcher);
    line("contact", or_none(a.applicant.contact.as_deref()));
    line("purpose", &a.purpose);
    line("period", &format!("{} – {}", a.period_from, a.period_to));
    line("contract expiry", &a.contract_expiry);
    line("cohort", &cohort(&a.cohort));
    line("items requested", &a.item_names().join(", "));
    if a.aggregate_dimensions > 0 {
        line(
            "aggregates",
            &format!("{} dimension(s)", a.aggregate_dimensions),
        );
    }
    line("revises", or_none(a.revises.as_deref()));
    line(
        "submitted",
        &format!("{} by {}", st.submitted_at, st.submitted_by),
    );
    line("withdrawn", or_none(st.withdrawn_at.as_deref()));
    match &st.decision {
        Some(d) => print_decision(d),
        None => line("decision", NONE),
    }
}

fn print_decision(d: &tokumei_review::Decision) {
    let line = |label: &str, value: &str| println!("  {label:<16} {value}");
    let recused = if d.recused.is_empty() {
        "none".to_string()
    } else {
        d.recused.join(", ")
    };
    line(
        "decision",
        &format!(
            "{} at {} ({} for, {} against, {} abstaining; recused: {recused})",
            d.outcome.code(),
            d.meeting_id,
            d.tally.0,
            d.tally.1,
            d.tally.2,
        ),
    );
    line("reasons", &d.reasons);
    for c in &d.conditions {
        line("condition", c);
    }
    if d.outcome.approves() {
        line("items approved", &d.approved_items.join(", "));
    }
    line("decision sha256", &d.sha256());
}
