//! `tokumei release`: build a release of an approved application (`tokumei_release::build`), the
//! provision ledger, the recipient's verification and opening of a release, and the certificate of
//! its destruction.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use tokumei_release::{Preset, Release, ReleaseError};
use tokumei_review::{Provision, Review};
use tokumei_vault::access::Role;

use super::{open, rfail};
use crate::operator::{fail, render, report, session, AuthArgs, Failure, UserKeyArgs};
use crate::table::Table;
use crate::{EXIT_FAILURE, EXIT_USAGE};

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
        /// Print the files verified as JSON (docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
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
        /// Print the files opened and verified as JSON (docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
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
    Build(Box<BuildArgs>),
    /// The provision ledger: what was provided to whom, when, under which decision, and whether its
    /// destruction was certified.
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
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Operator home.
    #[arg(long)]
    home: PathBuf,
    /// Where the re-identification battery's register counts run.
    #[command(flatten)]
    engine: crate::engine::EngineArgs,
    /// Application id.
    #[arg(long, value_parser = crate::parse_id)]
    application: String,
    /// Output folder (absent or empty): the release as released, and the encrypted package.
    #[arg(long, value_parser = crate::out_dir, required_unless_present = "dry_run")]
    out: Option<PathBuf>,
    /// Compute every figure of the build and the re-identification battery (cohort, suppression,
    /// risk, the attacks, what the previous rule would keep) and print them, writing nothing of a
    /// release: no tables, no package, no release key, no ledger entry (the access to the vault is
    /// audited). A release the build would refuse is shown with every reason, and the command exits 1.
    #[arg(long)]
    dry_run: bool,
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
    /// Overrides the preset's m of (k, k^m)-anonymity over persons with their events (0: off,
    /// the persons alone are k-anonymous).
    #[arg(long)]
    event_m: Option<usize>,
    /// Overrides the preset's highest share of persons singled out by an intruder who knows
    /// their quasi-identifiers and m of their events.
    #[arg(long)]
    max_event_attack: Option<f64>,
    /// Overrides the preset's share of event rows the (k, k^m) search should release (0: no floor;
    /// transformations that keep it rank before those that do not).
    #[arg(long)]
    event_min_rows_released: Option<f64>,
    /// Override the largest relative error of a protected code's prevalence (the preset's top
    /// conditions and drugs) the (k, k^m) search should keep (1: no ceiling).
    #[arg(long)]
    event_max_protected_error: Option<f64>,
    /// For evaluation on synthetic data only: write the pseudonym → person id map here.
    #[arg(long, hide = true)]
    evaluation_key: Option<PathBuf>,
    /// Print what was built as JSON (docs/json.md) instead of text; warnings still go to standard
    /// error.
    #[arg(long)]
    json: bool,
    /// File holding the home passphrase (otherwise TOKUMEI_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    user: UserKeyArgs,
}

/// The operator's public key from its file (hex, as the operator publishes it in audit.pub).
fn operator_key_file(path: &Path) -> Result<ed25519_dalek::VerifyingKey, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| (EXIT_USAGE, format!("{}: {e}", path.display())))?;
    tokumei_audit::public_key_from_hex(&text).map_err(|e| (EXIT_USAGE, e.to_string()))
}

/// What `release verify --json` and `release open --json` print.
#[derive(serde::Serialize)]
struct Verified {
    /// Files checked against their SHA-256 in the operator's signed manifest.
    files: usize,
}

pub fn run_release(c: ReleaseCommand) -> ExitCode {
    match c {
        ReleaseCommand::List { home, json, auth } => run_release_list(&home, json, &auth),
        ReleaseCommand::Verify {
            release,
            operator_key,
            json,
        } => report(
            (|| {
                let key = operator_key_file(&operator_key)?;
                tokumei_release::signed::verify(&release, &key)
                    .map_err(|e| (EXIT_FAILURE, e.to_string()))
            })(),
            |files| {
                render(json, &Verified { files }, |v| {
                    println!(
                        "release verified: signed by the operator, {} files with their SHA-256",
                        v.files
                    )
                })
            },
        ),
        ReleaseCommand::Open {
            package,
            identity,
            out,
            operator_key,
            json,
        } => report(
            (|| {
                let key = operator_key_file(&operator_key)?;
                tokumei_release::signed::open(&package, &identity, &out, &key)
                    .map_err(|e| (EXIT_FAILURE, e.to_string()))
            })(),
            |files| {
                render(json, &Verified { files }, |v| {
                    println!(
                        "release opened into {} and verified: signed by the operator, {} files \
                         with their SHA-256",
                        out.display(),
                        v.files
                    )
                })
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
        ReleaseCommand::Build(a) => {
            let mut refused = false;
            let code = report(build(&a), |r| {
                render(a.json, &Built::of(&r), |b| print_built(b.release));
                for w in &r.warnings {
                    eprintln!("warning: {w}; the release may not be usable (see its report)");
                }
                refused = !r.refusals.is_empty();
            });
            // A dry run that a build would refuse exits 1, as the build would.
            if refused {
                ExitCode::from(EXIT_FAILURE)
            } else {
                code
            }
        }
    }
}

/// The preset of a build: a preset file, a named preset, or the release kind's, with the
/// command line's overrides.
fn preset(a: &BuildArgs, kind: tokumei_review::ReleaseKind) -> Result<Preset, Failure> {
    let overrides = tokumei_release::preset::Overrides {
        k: a.k,
        suppression_limit: a.suppression_limit,
        max_prosecutor_risk: a.max_prosecutor_risk,
        max_linkage_success: a.max_linkage_success,
        max_membership_advantage: a.max_membership_advantage,
        max_trajectory_unique: a.max_trajectory_unique,
        max_cross_release_linkable: a.max_cross_release_linkable,
        event_m: a.event_m,
        max_event_attack: a.max_event_attack,
        event_min_rows_released: a.event_min_rows_released,
        event_max_protected_error: a.event_max_protected_error,
    };
    Preset::resolve(a.preset.as_deref(), kind, &overrides).map_err(|e| (EXIT_USAGE, e.to_string()))
}

/// `release build`: a technician's session, the approved scope (the review gate), the preset,
/// then the build.
fn build(a: &BuildArgs) -> Result<Release, Failure> {
    let pass = crate::passphrase(a.passphrase_file.as_ref()).map_err(|e| (EXIT_USAGE, e))?;
    let h = tokumei_vault::open(&a.home).map_err(fail)?;
    let s = session(
        &h,
        &a.user,
        Some(&pass),
        "release.build",
        &[Role::Technician],
    )?;
    let key = h.unlock_data_key(&pass).map_err(fail)?;
    let r = Review::open(&h).map_err(rfail)?;
    let register_engine = a
        .engine
        .register_engine(&a.home.join("work").join("engine"))
        .map_err(|e| (EXIT_USAGE, e))?;
    let mut opts = tokumei_release::BuildOptions {
        evaluation_key: a.evaluation_key.clone(),
        dry_run: a.dry_run,
        register_engine,
        ..Default::default()
    };
    let scope = r
        .approved_scope(&s, &a.application, opts.today)
        .map_err(rfail)?;
    opts.preset = Some(preset(a, scope.application.kind)?);
    // A dry run writes nothing: the output folder is neither needed nor touched.
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("."));
    tokumei_release::build(&h, &s, &key, &scope, &out, &opts).map_err(|e| match e {
        ReleaseError::Review(x) => rfail(x),
        ReleaseError::Vault(x) => fail(x),
        e => (EXIT_FAILURE, e.to_string()),
    })
}

/// What `release build --json` prints: the build's figures and the package.
#[derive(serde::Serialize)]
struct Built<'a> {
    #[serde(flatten)]
    release: &'a Release,
    /// The encrypted package (its path).
    package: String,
    /// Its SHA-256.
    package_sha256: &'a str,
}

impl<'a> Built<'a> {
    fn of(release: &'a Release) -> Built<'a> {
        Built {
            release,
            package: release.package.display().to_string(),
            package_sha256: &release.package_sha256,
        }
    }
}

/// What `release build` reports: the release, its tables, the re-identification test, the
/// cross-release linkability and any warning on its usefulness.
fn print_built(r: &Release) {
    let package = if r.dry_run {
        "dry run: nothing written or recorded".to_string()
    } else {
        format!(
            "package {} (sha256 {})",
            r.package.display(),
            r.package_sha256
        )
    };
    println!(
        "release {} of application {}: {} persons ({} in the cohort, {} opted out, {} \
             suppressed); smallest class {} → {}; {package}",
        r.release_id,
        r.application_id,
        r.persons,
        r.cohort,
        r.opted_out,
        r.suppressed,
        r.min_class.0,
        r.min_class.1,
    );
    for refusal in &r.refusals {
        println!("  a build would refuse this release: {refusal}");
    }
    print_events(r);
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
}

/// The (k, k^m) figures and what the previous rule would have kept.
fn print_events(r: &Release) {
    let Some(e) = &r.events else { return };
    println!(
        "  (k, k^m)-anonymity with k = {}, m = {}: {} of {} event rows released ({:.1} %), \
         {} items removed; loss: persons {:.3}, events {:.3}",
        e.k,
        e.m,
        e.rows_released,
        e.rows_before,
        100.0 * e.rows_released as f64 / e.rows_before.max(1) as f64,
        e.items_removed,
        e.loss.qi,
        e.loss.events
    );
    for (t, l) in &e.tables {
        println!("    {t}: {} {}, dates {}", l.code_column, l.codes, l.dates);
    }
    if e.min_rows_released > 0.0 {
        println!(
            "    the search ranked transformations releasing at least {:.0} % of the event rows first",
            100.0 * e.min_rows_released
        );
    }
    if let Some(err) = e.protected_error {
        println!(
            "    the {} codes per table held by the most persons: largest prevalence error {:.1} % \
             (ceiling {:.0} %)",
            e.protected_codes,
            100.0 * err,
            100.0 * e.max_protected_error
        );
    }
    if let Some(p) = &r.previous_rule {
        let rows = p.event_rows();
        println!(
            "  the previous rule (≤ {:.0} % unique trajectories) would release {} persons and {} \
             event rows",
            p.max_trajectory_unique * 100.0,
            p.persons,
            rows
        );
    }
}

/// `tokumei release list`: the provision ledger.
fn run_release_list(home: &Path, json: bool, auth: &AuthArgs) -> ExitCode {
    report(
        (|| {
            let roles = &[Role::Technician, Role::Auditor, Role::Committee];
            let (r, _) = open(home, auth, "release.list", roles)?;
            r.provisions().map_err(rfail)
        })(),
        |ledger| render(json, &ledger, |l| ledger_table(l).print()),
    )
}

fn ledger_table(ledger: &[Provision]) -> Table {
    let mut t = Table::new(&[
        "release",
        "application",
        "kind",
        "provided",
        "expiry",
        "destroyed",
        "recipient",
    ]);
    for p in ledger {
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
    t
}
