//! `tokumei reid-test`: the re-identification battery on a built release, as a readable summary
//! with a verdict per threshold and overall, or as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use tokumei_model::register::RegisterEngine;
use tokumei_release::reid::{Linkability, ReidReport, ThresholdCheck, Thresholds};
use tokumei_release::{reid_test, ReleaseError};

use crate::operator::Failure;
use crate::table::Table;
use crate::{EXIT_FAILURE, EXIT_USAGE};

/// `tokumei reid-test`: the re-identification battery on a built release.
#[derive(clap::Args)]
pub struct ReidArgs {
    /// The release folder (`release build --out`).
    #[arg(long)]
    release: PathBuf,
    /// The intruder's population register: a CSV (id or person_id, sex, birth_date,
    /// municipality_code) or the synthetic truth's `persons.parquet` (`tokumei synth --out DIR`
    /// writes DIR/truth/persons.parquet).
    #[arg(long)]
    population: PathBuf,
    /// The answer key, for evaluation on synthetic data only (a real release has none): a CSV with
    /// the header `pseudonym,person_id` and one row per release person, giving that person's id in
    /// the --population register (with the synthetic truth's persons.parquet: the true `person_id`
    /// of `tokumei synth`). No command writes it: it is assembled from the build's pseudonym map
    /// (`release build --evaluation-key FILE`: pseudonym → the vault's person id) and the
    /// synthetic truth (DIR/truth/record_links.parquet gives each synthetic record's true person;
    /// the vault gives records new random ids, so its records are matched to the synthetic ones by
    /// content). With it the battery scores the linkage attack exactly and measures membership
    /// inference; without it the linkage-attack threshold is held against the marketer risk.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Highest prosecutor risk allowed (0–1).
    #[arg(long, default_value_t = 0.1, value_parser = crate::share)]
    max_prosecutor_risk: f64,
    /// Highest share of persons the linkage attack may re-identify (0–1).
    #[arg(long, default_value_t = 0.05, value_parser = crate::share)]
    max_linkage_success: f64,
    /// Highest membership-inference advantage allowed (0–1; needs --truth); unchecked when
    /// absent.
    #[arg(long, requires = "truth", value_parser = crate::share)]
    max_membership_advantage: Option<f64>,
    /// Highest share, in any coded event table, of persons with a unique trajectory (0–1);
    /// unchecked when absent.
    #[arg(long, value_parser = crate::share)]
    max_trajectory_unique: Option<f64>,
    /// Another release folder (same layout) to test cross-release linkability against; the JSON
    /// printed becomes `{"battery": ..., "cross_release": ...}`.
    #[arg(long)]
    against: Option<PathBuf>,
    /// The answer key of the --against release (same form as --truth).
    #[arg(long, requires = "against")]
    against_truth: Option<PathBuf>,
    /// Highest share of persons linked one-to-one to the --against release (0–1); unchecked when
    /// absent.
    #[arg(long, requires = "against", value_parser = crate::share)]
    max_cross_release_linkable: Option<f64>,
    /// Print the figures as JSON (the breaches go to standard error) instead of the summary.
    #[arg(long)]
    json: bool,
    /// Where the register counts run (job files under the system's temporary folder unless
    /// --engine-work names another).
    #[command(flatten)]
    engine: crate::engine::EngineArgs,
}

/// The JSON printed with `--against`.
#[derive(serde::Serialize)]
struct WithCrossRelease<'a> {
    battery: &'a ReidReport,
    cross_release: &'a Linkability,
}

pub fn run_reid(a: ReidArgs) -> ExitCode {
    let (r, cross) = match battery(&a) {
        Ok(x) => x,
        Err((code, e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(code);
        }
    };
    let checks = checks(&a, &r, cross.as_ref());
    if a.json {
        print_json(&r, cross.as_ref());
        for c in checks.iter().filter(|c| !c.passed()) {
            eprintln!("the release breaks its thresholds: {}", c.breach());
        }
    } else {
        print_summary(&a, &r, cross.as_ref(), &checks);
    }
    if a.max_membership_advantage.is_some() && r.membership_advantage.is_none() {
        eprintln!(
            "note: no membership-inference advantage (the register holds no member or no \
             non-member of the release)"
        );
    }
    if checks.iter().all(ThresholdCheck::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

/// Every threshold given, held against its figure.
fn checks(a: &ReidArgs, r: &ReidReport, cross: Option<&Linkability>) -> Vec<ThresholdCheck> {
    let mut checks = r.checks(&Thresholds {
        prosecutor: a.max_prosecutor_risk,
        linkage: a.max_linkage_success,
        membership: a.max_membership_advantage,
        trajectory: a.max_trajectory_unique,
    });
    if let (Some(max), Some(c), Some(against)) = (a.max_cross_release_linkable, cross, &a.against) {
        checks.push(c.check(max, &against.display().to_string()));
    }
    checks
}

fn print_json(r: &ReidReport, cross: Option<&Linkability>) {
    let json = match cross {
        Some(c) => serde_json::to_string_pretty(&WithCrossRelease {
            battery: r,
            cross_release: c,
        }),
        None => serde_json::to_string_pretty(r),
    };
    println!("{}", json.unwrap_or_default());
}

fn print_summary(
    a: &ReidArgs,
    r: &ReidReport,
    cross: Option<&Linkability>,
    checks: &[ThresholdCheck],
) {
    println!(
        "re-identification test of {}: {} persons; quasi-identifiers {}",
        a.release.display(),
        r.persons,
        r.quasi_identifiers.join(", ")
    );
    println!();
    figures(r, cross).print();
    println!();
    let mut t = Table::new(&["threshold", "value", "at most", "result"]);
    for c in checks {
        let result = if c.passed() { "PASS" } else { "FAIL" };
        t.row(&[
            c.figure.clone(),
            format!("{:.4}", c.value),
            c.limit.to_string(),
            result.to_string(),
        ]);
    }
    t.print();
    if r.attack_success.is_none() {
        println!(
            "note: without --truth the linkage-attack threshold is held against the marketer risk"
        );
    }
    for note in unchecked(a, r) {
        println!("not checked: {note}");
    }
    let broken = checks.iter().filter(|c| !c.passed()).count();
    if broken == 0 {
        println!(
            "verdict: PASS ({} of {} thresholds hold)",
            checks.len(),
            checks.len()
        );
    } else {
        println!(
            "verdict: FAIL ({broken} of {} thresholds broken)",
            checks.len()
        );
    }
}

/// The battery's figures, one per row.
fn figures(r: &ReidReport, cross: Option<&Linkability>) -> Table {
    let f = |v: f64| format!("{v:.4}");
    let opt = |v: Option<f64>, why: &str| v.map_or_else(|| format!("- ({why})"), f);
    let mut t = Table::new(&["figure", "value"]);
    t.row(&["smallest class".to_string(), r.min_class.to_string()]);
    t.row(&["sample uniques".to_string(), f(r.sample_unique)]);
    t.row(&["prosecutor risk, highest".to_string(), f(r.prosecutor_max)]);
    t.row(&["prosecutor risk, average".to_string(), f(r.prosecutor_avg)]);
    t.row(&["journalist risk, highest".to_string(), f(r.journalist_max)]);
    t.row(&["marketer risk".to_string(), f(r.marketer)]);
    t.row(&["not in the register".to_string(), f(r.unmatched)]);
    let needs_truth = "needs --truth";
    t.row(&[
        "linkage-attack success".to_string(),
        opt(r.attack_success, needs_truth),
    ]);
    t.row(&[
        "membership-inference advantage".to_string(),
        opt(r.membership_advantage, needs_truth),
    ]);
    t.row(&[
        "unique trajectories, highest".to_string(),
        opt(r.trajectory_unique, "no coded event table"),
    ]);
    for (table, share) in &r.trajectory_unique_by_table {
        t.row(&[format!("unique trajectories in {table}"), f(*share)]);
    }
    if let Some(c) = cross {
        t.row(&[
            "persons linked one-to-one to --against".to_string(),
            format!("{} of {} ({})", c.linked, c.persons_a, f(c.share)),
        ]);
    }
    t
}

/// Thresholds left unchecked, and why.
fn unchecked(a: &ReidArgs, r: &ReidReport) -> Vec<&'static str> {
    let mut notes = Vec::new();
    if a.max_membership_advantage.is_none() || r.membership_advantage.is_none() {
        notes.push("membership-inference advantage (needs --truth and --max-membership-advantage)");
    }
    if a.max_trajectory_unique.is_none() {
        notes.push("unique trajectories (no --max-trajectory-unique)");
    }
    if a.against.is_some() && a.max_cross_release_linkable.is_none() {
        notes.push("cross-release linkability (no --max-cross-release-linkable)");
    }
    notes
}

/// Reads the release, the register and the answer keys, and runs the battery (one library call).
fn battery(a: &ReidArgs) -> Result<(ReidReport, Option<Linkability>), Failure> {
    let inputs = reid_test::Inputs {
        release: a.release.clone(),
        population: a.population.clone(),
        truth: a.truth.clone(),
        against: a.against.clone(),
        against_truth: a.against_truth.clone(),
    };
    let engine = a
        .engine
        .register_engine(&std::env::temp_dir().join("tokumei-engine"))
        .map_err(|e| (EXIT_USAGE, e))?;
    let engine = engine.as_ref().map(|e| &*e.0 as &dyn RegisterEngine);
    match reid_test::test_on(&inputs, engine) {
        Ok(o) => Ok((o.report, o.cross_release)),
        Err(e @ ReleaseError::Input(_)) => Err((EXIT_USAGE, e.to_string())),
        Err(e) => Err((EXIT_FAILURE, e.to_string())),
    }
}
