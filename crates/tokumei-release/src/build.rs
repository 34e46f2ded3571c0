//! The release build.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokumei_link::mpi::Mpi;
use tokumei_model::events::{Death, Diagnosis, Encounter, LabResult, Prescription, Procedure};
use tokumei_review::{ReleaseKind, Review, Scope};
use tokumei_vault::access::{Role, Session};
use tokumei_vault::home::DataKey;
use tokumei_vault::store::seal;
use tokumei_vault::Home;

use crate::checks::{self, Table, CODE_COLUMNS, FREE_TEXT, PERSON_QIS};
use crate::preset::{Dates, Preset};
use crate::ReleaseError;
use tokumei_model::register::RegisterEngine;

/// Parameters of a build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The policy preset (by default the release kind's: `jp-anonymized` or `jp-pseudonymized`).
    pub preset: Option<Preset>,
    /// The build date (contract and certification are checked against it).
    pub today: NaiveDate,
    /// For evaluation on synthetic data only: write the pseudonym → person id map here (owner-only).
    pub evaluation_key: Option<PathBuf>,
    /// Compute every figure of the build and the battery, but write and record nothing of a
    /// release (no release key, no tables, no package, no snapshot, no ledger entry; `out` is not
    /// touched). The access to the vault is audited (one entry, counts only).
    pub dry_run: bool,
    /// Where the battery's register counts run (in this process when none).
    pub register_engine: Option<tokumei_model::register::SharedEngine>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            preset: None,
            today: chrono::Utc::now().date_naive(),
            evaluation_key: None,
            dry_run: false,
            register_engine: None,
        }
    }
}

/// What a build produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Release {
    /// Release id (`R-` + 12 hex).
    pub release_id: String,
    /// Application.
    pub application_id: String,
    /// Kind.
    pub kind: String,
    /// The preset applied.
    pub preset: String,
    /// Persons in the cohort before the rules.
    pub cohort: usize,
    /// Persons left out because they asked to stop.
    pub opted_out: usize,
    /// The preset's k: smallest equivalence class over the person quasi-identifiers (0: none).
    pub k: usize,
    /// Persons suppressed to reach k.
    pub suppressed: usize,
    /// Persons released.
    pub persons: usize,
    /// Rows per table.
    pub rows: BTreeMap<String, usize>,
    /// The granularity chosen for each person quasi-identifier (the engine's optimum).
    pub transformation: BTreeMap<String, String>,
    /// Smallest equivalence class before and after.
    pub min_class: (usize, usize),
    /// Share of persons unique on the quasi-identifiers before and after.
    pub unique_share: (f64, f64),
    /// Highest prosecutor risk (1 / smallest class) before and after.
    pub max_risk: (f64, f64),
    /// The anonymization engine's risk figures over the person quasi-identifiers, before (the
    /// preset's granularity, the whole cohort) and after (the persons released).
    pub risk: (
        tokumei_anonymize::RiskSummary,
        tokumei_anonymize::RiskSummary,
    ),
    /// Code values generalized and suppressed.
    pub codes_generalized: usize,
    /// Code values suppressed.
    pub codes_suppressed: usize,
    /// What bounding trajectory uniqueness changed (presets that bound it).
    pub trajectory: TrajectoryProtection,
    /// (k, k^m)-anonymity over the persons with their events (presets with `event_m` > 0).
    pub events: Option<crate::events::EventProtection>,
    /// What the previous rule (k over the persons, at most 1 % unique trajectories) would have kept
    /// of the same cohort, for comparison (presets with `event_m` > 0).
    pub previous_rule: Option<PreviousRule>,
    /// Whether this was a dry run (nothing written or recorded).
    pub dry_run: bool,
    /// The m-event intruder (m = 1, 2, 3): quasi-identifiers and m known events of each target
    /// (drawn from the unprocessed data) against the release.
    pub event_attack: Vec<crate::reid_events::EventAttack>,
    /// The same intruder against the unprocessed data: the initial risk.
    pub event_attack_initial: Vec<crate::reid_events::EventAttack>,
    /// The utility goals and their figures (the whole report is `utility.json` and
    /// `utility.html` beside the release, for the operator and the committee).
    pub utility: Vec<crate::utility::Goal>,
    /// The same goals for what the previous rule would have released (presets with `event_m`).
    pub utility_previous_rule: Vec<crate::utility::Goal>,
    /// Columns approved but removed by the rules (free text).
    pub removed_columns: Vec<String>,
    /// The re-identification battery against the vault's population as the intruder's register.
    pub reid: crate::reid::ReidReport,
    /// The same battery on the released persons with unprocessed quasi-identifiers (sex, birth
    /// date, municipality): the initial risk.
    pub reid_initial: crate::reid::ReidReport,
    /// Cross-release linkability (rule 72.7) of this release to every earlier release of the same
    /// kind the home holds, in release-id order.
    pub cross_release: Vec<CrossRelease>,
    /// What the released event dates mean.
    pub dates: String,
    /// The images released (when the `images` items are approved).
    pub images: Option<crate::images::ImageSummary>,
    /// The preset's targets, in words.
    pub target: String,
    /// The period end the ages refer to.
    pub period_to: String,
    /// Warnings on the release's usefulness (`checks::utility_warnings`): reported, not refused.
    pub warnings: Vec<String>,
    /// What refuses this release (machine checks, re-identification thresholds): a build that
    /// meets one stops with it as its error, so only a dry run returns a release with refusals.
    pub refusals: Vec<String>,
    /// The encrypted package.
    #[serde(skip)]
    pub package: PathBuf,
    /// Its SHA-256.
    #[serde(skip)]
    pub package_sha256: String,
}

/// What the previous rule would have released of the same cohort.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PreviousRule {
    /// The bound on unique trajectories it applies.
    pub max_trajectory_unique: f64,
    /// Persons it releases.
    pub persons: usize,
    /// Rows per table it releases.
    pub rows: BTreeMap<String, usize>,
    /// What its trajectory bound changed.
    pub trajectory: TrajectoryProtection,
}

impl PreviousRule {
    /// Event rows it releases (every table but the persons).
    pub fn event_rows(&self) -> usize {
        self.rows
            .iter()
            .filter(|(t, _)| *t != "persons")
            .map(|(_, n)| n)
            .sum()
    }
}

/// The trajectory bound of the previous default rule, shown beside (k, k^m).
pub const PREVIOUS_TRAJECTORY_BOUND: f64 = 0.01;

/// Cross-release linkability of a release to one earlier release.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CrossRelease {
    /// The earlier release.
    pub release_id: String,
    /// The join of this release (A) to it (B), scored with both pseudonym keys.
    pub linkability: crate::reid::Linkability,
}

/// What the home keeps of a release for the cross-release test of later ones: the tables as
/// released and the pseudonym → person id map, sealed under the data key in the vault zone
/// (`vault/releases/<id>.enc`). The operator could rebuild the map from the sealed release key;
/// keeping it beside the tables spares that.
#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot {
    release_id: String,
    kind: String,
    tables: Vec<Table>,
    persons: HashMap<String, String>,
}

/// The folder of release snapshots in a home.
fn snapshot_dir(home: &Home) -> PathBuf {
    home.root.join("vault/releases")
}

/// Every earlier release of `kind` the home keeps, by release id.
fn earlier_releases(home: &Home, key: &DataKey, kind: &str) -> Result<Vec<Snapshot>, ReleaseError> {
    let dir = snapshot_dir(home);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| io_err(&dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "enc"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let sealed = std::fs::read(&p).map_err(|e| io_err(&p, e))?;
        let plain = tokumei_vault::store::open_sealed(key, &sealed)
            .map_err(|e| ReleaseError::Output(format!("{}: {e}", p.display())))?;
        let snap: Snapshot = serde_json::from_slice(&plain)
            .map_err(|e| ReleaseError::Output(format!("{}: {e}", p.display())))?;
        if snap.kind == kind {
            out.push(snap);
        }
    }
    Ok(out)
}

/// One person of the linked vault.
pub(crate) use tokumei_link::linked::Person;

/// Completed years of age, never negative.
pub(crate) fn age_on(birth: NaiveDate, day: NaiveDate) -> u32 {
    tokumei_model::age_on(birth, day).max(0) as u32
}

pub(crate) fn ym(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

fn day(s: &str) -> Result<NaiveDate, ReleaseError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| ReleaseError::Output(format!("{s} is not a YYYY-MM-DD date")))
}

use tokumei_link::linked::Clinical;

/// Builds the release of an application the committee approved (the review gate, then [`build`]
/// with the kind's preset unless `opts` names one): what the web's technicians call.
pub fn build_approved(
    home: &Home,
    s: &Session,
    key: &DataKey,
    application: &str,
    out: &Path,
    opts: &BuildOptions,
) -> Result<Release, ReleaseError> {
    s.require(home, "release.build", &[Role::Technician])?;
    let scope = tokumei_review::Review::open(home)?.approved_scope(s, application, opts.today)?;
    build(home, s, key, &scope, out, opts)
}

/// Builds the release of an approved scope into `out` (absent or empty), encrypts the package to
/// the recipient and records the provision. Needs a technician.
///
/// The build holds the home's writer lock and declares itself (an intent, [`tokumei_vault::intent`])
/// before it writes anything: the release is written into a staging folder beside `out`, committed
/// by its provision ledger entry, and only then moved into place and its outcome audited. A build
/// that fails removes its staging folder, its release key and its snapshot; one that is killed is
/// completed or rolled back by the next build's [`recover`], so that no release package exists
/// without its ledger entry and no ledger entry without its audit entry.
pub fn build(
    home: &Home,
    s: &Session,
    key: &DataKey,
    scope: &Scope,
    out: &Path,
    opts: &BuildOptions,
) -> Result<Release, ReleaseError> {
    s.require(home, "release.build", &[Role::Technician])?;
    if scope.proposed && !opts.dry_run {
        return Err(ReleaseError::Review(tokumei_review::ReviewError::Refused(
            "a preview's scope is for a dry run only; a release needs the committee's approval"
                .into(),
        )));
    }
    if opts.dry_run {
        // Reading the vault is an access: one entry, counts only; nothing else is written.
        let staging = staging_of(out);
        let mut none = None;
        let result = build_inner(home, s, key, scope, out, &staging, opts, &mut none);
        let outcome = match &result {
            Ok((r, _)) => format!(
                "computed: {} of {} persons, {} tables",
                r.persons,
                r.cohort,
                r.rows.len()
            ),
            Err(e) => format!("refused: {e}"),
        };
        let object = format!("application {}", scope.application_id);
        s.audit(home, "release.dry-run", &object, &outcome, None)?;
        return result.map(|(r, _)| r);
    }
    let _lock = tokumei_vault::lock::writer(
        home,
        "release build",
        tokumei_vault::lock::wait_from_env(),
        &|_| {},
    )?;
    recover(home)?;
    let staging = staging_of(out);
    let mut begun = None;
    let result = build_inner(home, s, key, scope, out, &staging, opts, &mut begun);
    let Some(pending) = begun else {
        return result.map(|(r, _)| r);
    };
    match result {
        Ok((release, Some(entry))) => {
            tokumei_vault::fault::point("release.committed");
            publish(&staging, out)?;
            tokumei_vault::intent::finish(home, pending, entry)?;
            Ok(release)
        }
        Ok((_, None)) => Err(ReleaseError::Output(
            "a build that declared itself returned no ledger entry".into(),
        )),
        Err(e) => {
            roll_back(home, &pending.intent)?;
            let entry = tokumei_audit::Entry::now(
                &s.user,
                s.role.code(),
                "release.build",
                &format!(
                    "release {} of application {}",
                    pending.intent.id, scope.application_id
                ),
                &format!("failed: {e}"),
                None,
            );
            tokumei_vault::intent::finish(home, pending, entry)?;
            Err(e)
        }
    }
}

/// The staging folder of a release written to `out` (a fixed name: recovery finds it).
fn staging_of(out: &Path) -> PathBuf {
    tokumei_fs::staging_name(out)
}

/// Moves a committed release from its staging folder into `out` (absent or empty), if it is not
/// there already.
fn publish(staging: &Path, out: &Path) -> Result<(), ReleaseError> {
    if !staging.exists() {
        return Ok(());
    }
    Ok(tokumei_fs::publish_dir(staging, out)?)
}

/// Whether the provision ledger holds `release_id`.
fn committed(home: &Home, release_id: &str) -> Result<bool, ReleaseError> {
    Ok(Review::open(home)?
        .provisions()?
        .iter()
        .any(|p| p.release_id == release_id))
}

/// Removes what an uncommitted build wrote: its staging folder, its release key, its snapshot.
fn roll_back(home: &Home, intent: &tokumei_vault::intent::Intent) -> Result<(), ReleaseError> {
    if committed(home, &intent.id)? {
        return Ok(());
    }
    let id = &intent.id;
    for p in [
        home.root.join(format!("keys/releases/{id}.key.enc")),
        snapshot_dir(home).join(format!("{id}.enc")),
    ] {
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
        }
    }
    if let Some(staging) = intent.paths.first() {
        if staging.exists() {
            std::fs::remove_dir_all(staging).map_err(|e| io_err(staging, e))?;
        }
    }
    Ok(())
}

/// Resolves every release build that was begun and never recorded (a killed build): a committed
/// one is moved into place if its staging folder is still there and its outcome is audited; an
/// uncommitted one is rolled back and recorded as such. Returns how many were resolved. The
/// caller holds the writer lock.
pub fn recover(home: &Home) -> Result<usize, ReleaseError> {
    let pending = tokumei_vault::intent::pending(home, "release.build")?;
    let n = pending.len();
    for p in pending {
        let done = committed(home, &p.intent.id)?;
        if done {
            if let [staging, out] = p.intent.paths.as_slice() {
                publish(staging, out)?;
            }
        } else {
            roll_back(home, &p.intent)?;
        }
        let entry =
            tokumei_vault::intent::recovered_entry(&p.intent, done, "its provision ledger entry");
        tokumei_vault::intent::finish(home, p, entry)?;
    }
    Ok(n)
}

/// Refuses an output folder that exists and is not empty.
fn ensure_empty(out: &Path) -> Result<(), ReleaseError> {
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| ReleaseError::Output(format!("{}: {e}", out.display())))?
            .next()
            .is_some()
    {
        return Err(ReleaseError::Output(format!(
            "{} exists and is not empty",
            out.display()
        )));
    }
    Ok(())
}

/// The preset of the build: the one given, or the kind's; it must be for the application's kind.
fn resolve_preset(
    app: &tokumei_review::Application,
    opts: &BuildOptions,
) -> Result<Preset, ReleaseError> {
    let kind = app.kind;
    let preset = match &opts.preset {
        Some(p) => p.clone(),
        None => Preset::for_kind(kind)?,
    };
    if preset.kind != kind.code() {
        return Err(ReleaseError::Output(format!(
            "preset {} is for {} releases; the application asks for {}",
            preset.name,
            preset.kind,
            kind.code()
        )));
    }
    Ok(preset)
}

/// The application's cohort among the persons (diagnosis codes by the period's end, age at its
/// end, sex, municipalities), without the persons who asked to stop: (cohort, its size before
/// them, how many asked to stop).
fn select_cohort<'a>(
    app: &tokumei_review::Application,
    persons: &'a BTreeMap<String, Person>,
    mpi: &Mpi,
    clinical: &Clinical,
    excluded: &HashSet<String>,
    end: NaiveDate,
) -> Result<(Vec<&'a Person>, usize, usize), ReleaseError> {
    let person_of = |record: &str| mpi.person_of.get(record).cloned();
    let c = &app.cohort;
    let with_code: HashSet<String> = if c.icd10.is_empty() {
        persons.keys().cloned().collect()
    } else {
        clinical
            .diagnoses
            .iter()
            .filter(|d| d.date <= end)
            .filter(|d| {
                d.icd10
                    .as_deref()
                    .is_some_and(|i| c.icd10.iter().any(|p| i.starts_with(p.as_str())))
            })
            .filter_map(|d| person_of(&d.record_id))
            .collect()
    };
    let mut cohort: Vec<&Person> = persons
        .values()
        .filter(|p| with_code.contains(&p.id))
        .filter(|p| {
            let age = p.birth.map(|b| age_on(b, end));
            c.age_min.is_none_or(|m| age.is_some_and(|a| a >= m))
                && c.age_max.is_none_or(|m| age.is_some_and(|a| a <= m))
        })
        .filter(|p| c.sex.as_ref().is_none_or(|s| p.sex.as_ref() == Some(s)))
        .filter(|p| {
            c.municipalities.is_empty()
                || p.municipality
                    .as_ref()
                    .is_some_and(|m| c.municipalities.contains(m))
        })
        .collect();
    let cohort_size = cohort.len();
    cohort.retain(|p| !excluded.contains(&p.id));
    let opted_out = cohort_size - cohort.len();
    if cohort.is_empty() {
        return Err(ReleaseError::Empty("the cohort is empty".into()));
    }

    Ok((cohort, cohort_size, opted_out))
}

/// The approved items per table (free text removed whatever was approved), the items so removed,
/// and the approved person quasi-identifiers.
fn approved_items(scope: &Scope) -> (BTreeMap<String, Vec<String>>, Vec<String>, Vec<String>) {
    let mut approved: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut removed_columns = Vec::new();
    for item in &scope.decision.approved_items {
        let Some((t, col)) = item.split_once('.') else {
            continue;
        };
        if FREE_TEXT.contains(&col) {
            removed_columns.push(item.clone());
            continue;
        }
        approved
            .entry(t.to_string())
            .or_default()
            .push(col.to_string());
    }
    let person_cols: Vec<String> = approved
        .get("persons")
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| PERSON_QIS.contains(&c.as_str()))
        .collect();

    (approved, removed_columns, person_cols)
}

/// Numeric values of the event tables clipped to the preset's percentiles (the 1st–99th under
/// jp-anonymized), over the whole cohort.
fn clip_events(tables: &mut [Table], preset: &Preset) {
    if preset.clip_percentile > 0 {
        for t in tables.iter_mut() {
            for col in ["daily_quantity", "days", "points", "count", "value_num"] {
                clip(t, col, preset.clip_percentile as usize);
            }
        }
    }
}

/// The event tables' code rules: rare codes generalized or suppressed, and trajectories bounded
/// (presets that bound them, `bound` < 1); returns (code values generalized, code values
/// suppressed, what bounding trajectories changed).
fn coarsen_events(
    tables: &mut Vec<Table>,
    preset: &Preset,
    bound: f64,
) -> (usize, usize, TrajectoryProtection) {
    let (mut generalized, mut code_suppressed) = (0, 0);
    let rare_pass = |tables: &mut Vec<Table>, generalized: &mut usize, suppressed: &mut usize| {
        if preset.rare_code_persons == 0 {
            return;
        }
        for (table, column) in CODE_COLUMNS {
            let Some(t) = tables.iter_mut().find(|t| t.name == *table) else {
                continue;
            };
            let Some(i) = t.col(column) else {
                continue;
            };
            let (g, s) = rare_codes(t, i, *column == "icd10", preset.rare_code_persons);
            *generalized += g;
            *suppressed += s;
        }
    };
    rare_pass(tables, &mut generalized, &mut code_suppressed);

    // Trajectories (rule 72.6): in every coded event table, the share of persons whose set of (date,
    // code) events, together with their quasi-identifiers, is unique is bounded: ICD-10 codes go to 3
    // characters, unique persons keep only their first event, and those still unique lose their
    // events in that table. Rows removed can leave a
    // code with too few persons, so rare codes are treated again; that only merges values, so no
    // trajectory becomes unique again.
    let mut trajectory = TrajectoryProtection::default();
    if bound < 1.0 {
        let (persons_table, events) = tables.split_at_mut(1);
        for t in events.iter_mut() {
            bound_trajectories(&persons_table[0], t, bound, &mut trajectory);
        }
        rare_pass(tables, &mut generalized, &mut code_suppressed);
    }

    (generalized, code_suppressed, trajectory)
}

/// The battery's outcome: (the release's figures, the unprocessed persons' figures, linkability to
/// each earlier release, pseudonym → person, the thresholds an anonymized release breaks).
type Battery = (
    crate::reid::ReidReport,
    crate::reid::ReidReport,
    Vec<CrossRelease>,
    HashMap<String, String>,
    Option<String>,
);

/// The re-identification battery against the vault's population, the initial risk and the
/// cross-release linkability, with the thresholds an anonymized release breaks (it is then
/// refused, see [`refuse`]).
#[allow(clippy::too_many_arguments)]
fn battery(
    (home, key): (&Home, &DataKey),
    opts: &BuildOptions,
    preset: &Preset,
    kind: ReleaseKind,
    tables: &[Table],
    persons: &BTreeMap<String, Person>,
    cohort: &[&Person],
    pseudonym: &HashMap<String, String>,
    end: NaiveDate,
) -> Result<Battery, ReleaseError> {
    // The re-identification battery, with the vault's population (every linked person) as the
    // register an intruder would hold; an anonymized release that breaks a threshold is not written.
    let register: Vec<crate::reid::RegisterPerson> = persons
        .values()
        .map(|p| crate::reid::RegisterPerson {
            id: p.id.clone(),
            sex: p.sex.clone(),
            birth: p.birth,
            municipality: p.municipality.clone(),
        })
        .collect();
    // The builder knows who is in the release, so the attack and the membership game are scored
    // against the truth: the register's ids are the vault's person ids.
    let truth: HashMap<String, String> = pseudonym
        .iter()
        .map(|(p, ps)| (ps.clone(), p.clone()))
        .collect();
    let engine = opts
        .register_engine
        .as_ref()
        .map(|e| &*e.0 as &dyn RegisterEngine);
    let reid = crate::reid::run_on(
        engine,
        &tables[0],
        &tables[1..],
        &register,
        end,
        Some(&truth),
    )?;
    // The initial risk: the same attack on the same persons with their quasi-identifiers unprocessed
    // (sex, birth date, municipality), as EMA's report asks.
    let unprocessed = unprocessed_persons(cohort, pseudonym);
    let reid_initial =
        crate::reid::run_on(engine, &unprocessed, &[], &register, end, Some(&truth))?;
    // Cross-release linkability: this release joined to each earlier one of the same kind.
    let cross_release: Vec<CrossRelease> = earlier_releases(home, key, kind.code())?
        .iter()
        .map(|e| CrossRelease {
            release_id: e.release_id.clone(),
            linkability: crate::reid::cross_release_linkability(
                tables,
                &e.tables,
                Some(&truth),
                Some(&e.persons),
            ),
        })
        .collect();
    let mut refusal = None;
    if kind == ReleaseKind::Anonymized {
        let mut broken = reid.breaches(&crate::reid::Thresholds {
            prosecutor: preset.max_prosecutor_risk,
            linkage: preset.max_linkage_success,
            membership: Some(preset.max_membership_advantage),
            trajectory: Some(preset.max_trajectory_unique),
        });
        for c in &cross_release {
            if let Some(b) = c
                .linkability
                .breach(preset.max_cross_release_linkable, &c.release_id)
            {
                broken.push(b);
            }
        }
        if !broken.is_empty() {
            refusal = Some(format!("re-identification test: {}", broken.join(", ")));
        }
    }
    Ok((reid, reid_initial, cross_release, truth, refusal))
}

/// A build stops at the first check it fails; a dry run goes on and reports every refusal with the
/// figures (`Release::refusals`).
fn refuse(
    refusals: &mut Vec<String>,
    refusal: Option<String>,
    opts: &BuildOptions,
) -> Result<(), ReleaseError> {
    match refusal {
        Some(r) if !opts.dry_run => Err(ReleaseError::Check(r)),
        Some(r) => {
            refusals.push(r);
            Ok(())
        }
        None => Ok(()),
    }
}

/// Person id → pseudonym, and person id → date shift in days.
type Pseudonyms = (HashMap<String, String>, HashMap<String, i64>);

/// Per-release pseudonyms (HMAC-SHA-256 of the person id under the release key) and, for presets
/// that shift dates, a consistent offset per person in ±182 days.
fn pseudonyms(
    cohort: &[&Person],
    release_key: &[u8; 32],
    dates: Dates,
) -> Result<Pseudonyms, ReleaseError> {
    let mut pseudonym: HashMap<String, String> = HashMap::new();
    let mut used = HashSet::new();
    for p in cohort {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(release_key)
            .map_err(|e| ReleaseError::Output(e.to_string()))?;
        mac.update(p.id.as_bytes());
        let ps = format!("P{}", &hex::encode(mac.finalize().into_bytes())[..20]);
        if !used.insert(ps.clone()) {
            return Err(ReleaseError::Output(
                "two persons drew one pseudonym".into(),
            ));
        }
        pseudonym.insert(p.id.clone(), ps);
    }
    // Date shifts (presets that shift): a consistent offset per person in ±182 days.
    let mut shift: HashMap<String, i64> = HashMap::new();
    if dates == Dates::Shift {
        for p in cohort {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(release_key)
                .map_err(|e| ReleaseError::Output(e.to_string()))?;
            mac.update(b"date-shift");
            mac.update(p.id.as_bytes());
            let b = mac.finalize().into_bytes();
            let v = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            shift.insert(p.id.clone(), (v % 365) as i64 - 182);
        }
    }
    Ok((pseudonym, shift))
}

/// Each person's first event in the release period (the index date of relative days).
fn index_dates(
    clinical: &Clinical,
    mpi: &Mpi,
    pseudonym: &HashMap<String, String>,
    from: NaiveDate,
    end: NaiveDate,
) -> HashMap<String, NaiveDate> {
    let person_of = |record: &str| mpi.person_of.get(record).cloned();
    let mut index_date: HashMap<String, NaiveDate> = HashMap::new();
    let in_period = |d: NaiveDate| d >= from && d <= end;
    let events = clinical
        .encounters
        .iter()
        .map(|e| (&e.record_id, e.start_date))
        .chain(clinical.diagnoses.iter().map(|e| (&e.record_id, e.date)))
        .chain(
            clinical
                .prescriptions
                .iter()
                .map(|e| (&e.record_id, e.date)),
        )
        .chain(clinical.procedures.iter().map(|e| (&e.record_id, e.date)))
        .chain(clinical.labs.iter().map(|e| (&e.record_id, e.date)))
        .chain(clinical.deaths.iter().map(|e| (&e.record_id, e.date)));
    for (record, d) in events.filter(|(_, d)| in_period(*d)) {
        if let Some(p) = person_of(record).filter(|p| pseudonym.contains_key(p)) {
            let slot = index_date.entry(p).or_insert(d);
            if d < *slot {
                *slot = d;
            }
        }
    }
    index_date
}

/// What writing an event needs: whose record it is, the person's pseudonym, and how dates are
/// released.
#[derive(Clone, Copy)]
pub(crate) struct EventContext<'a> {
    pub(crate) mpi: &'a Mpi,
    pub(crate) pseudonym: &'a HashMap<String, String>,
    pub(crate) index_date: &'a HashMap<String, NaiveDate>,
    pub(crate) shift: &'a HashMap<String, i64>,
    pub(crate) dates: Dates,
    pub(crate) from: NaiveDate,
    pub(crate) end: NaiveDate,
}

impl EventContext<'_> {
    fn person_of(&self, record: &str) -> Option<String> {
        self.mpi.person_of.get(record).cloned()
    }

    /// A date as the preset releases it.
    pub(crate) fn date_out(&self, record: &str, d: NaiveDate) -> String {
        match self.dates {
            Dates::Relative => {
                let index = self
                    .person_of(record)
                    .and_then(|p| self.index_date.get(&p).copied())
                    .unwrap_or(d);
                (d - index).num_days().to_string()
            }
            Dates::Month => ym(d),
            Dates::Year => d.year().to_string(),
            Dates::Day => d.to_string(),
            Dates::Shift => {
                let off = self
                    .person_of(record)
                    .and_then(|p| self.shift.get(&p).copied())
                    .unwrap_or(0);
                (d + chrono::Duration::days(off)).to_string()
            }
        }
    }
}

/// The event tables of the approved items: events in the release period of persons released,
/// each under its person's pseudonym, rows sorted.
fn event_tables(
    clinical: &Clinical,
    approved: &BTreeMap<String, Vec<String>>,
    cx: &EventContext<'_>,
) -> Vec<Table> {
    let mut tables = Vec::new();
    let date_out = |record: &str, d: NaiveDate| cx.date_out(record, d);
    let in_period = |d: NaiveDate| d >= cx.from && d <= cx.end;
    let ps_of = |record: &str| -> Option<String> {
        cx.person_of(record)
            .and_then(|p| cx.pseudonym.get(&p).cloned())
    };
    let num = |v: Option<f64>| v.map(|x| format!("{x}"));
    macro_rules! event_table {
        ($name:literal, $rows:expr, $date:expr, $get:expr) => {
            if let Some(cols) = approved.get($name) {
                let mut t = Table {
                    name: $name.into(),
                    columns: std::iter::once("pseudonym".to_string())
                        .chain(cols.iter().cloned())
                        .collect(),
                    rows: Vec::new(),
                };
                for e in $rows.iter().filter(|e| in_period($date(e))) {
                    let Some(ps) = ps_of(&e.record_id) else {
                        continue;
                    };
                    let mut row = vec![Some(ps)];
                    for c in cols {
                        row.push($get(e, c.as_str()));
                    }
                    t.rows.push(row);
                }
                t.rows.sort();
                tables.push(t);
            }
        };
    }
    event_table!(
        "encounters",
        clinical.encounters,
        |e: &Encounter| e.start_date,
        |e: &Encounter, c: &str| match c {
            "setting" => Some(e.setting.code().to_string()),
            "start_date" => Some(date_out(&e.record_id, e.start_date)),
            "end_date" => Some(date_out(&e.record_id, e.end_date)),
            _ => None,
        }
    );
    event_table!(
        "diagnoses",
        clinical.diagnoses,
        |e: &Diagnosis| e.date,
        |e: &Diagnosis, c: &str| match c {
            "icd10" => e.icd10.clone(),
            "code" => Some(e.code.clone()),
            "date" => Some(date_out(&e.record_id, e.date)),
            "outcome" => e.outcome.map(|o| o.code().to_string()),
            _ => None,
        }
    );
    event_table!(
        "prescriptions",
        clinical.prescriptions,
        |e: &Prescription| e.date,
        |e: &Prescription, c: &str| match c {
            "code" => Some(e.code.clone()),
            "daily_quantity" => num(e.daily_quantity),
            "unit" => e.unit.clone(),
            "days" => e.days.map(|d| d.to_string()),
            "date" => Some(date_out(&e.record_id, e.date)),
            _ => None,
        }
    );
    event_table!(
        "procedures",
        clinical.procedures,
        |e: &Procedure| e.date,
        |e: &Procedure, c: &str| match c {
            "code" => Some(e.code.clone()),
            "points" => e.points.map(|d| d.to_string()),
            "count" => Some(e.count.to_string()),
            "date" => Some(date_out(&e.record_id, e.date)),
            _ => None,
        }
    );
    event_table!(
        "lab_results",
        clinical.labs,
        |e: &LabResult| e.date,
        |e: &LabResult, c: &str| match c {
            "code" => Some(e.code.clone()),
            "value_num" => num(e.value_num),
            "unit" => e.unit.clone(),
            "date" => Some(date_out(&e.record_id, e.date)),
            _ => None,
        }
    );
    event_table!(
        "deaths",
        clinical.deaths,
        |e: &Death| e.date,
        |e: &Death, c: &str| match c {
            "date" => Some(date_out(&e.record_id, e.date)),
            _ => None,
        }
    );

    tables
}

/// The smallest equivalence class of a risk summary (0 when empty).
fn min_class(r: &tokumei_anonymize::RiskSummary) -> usize {
    r.class_sizes.first().map_or(0, |&(size, _)| size as usize)
}

/// Declares the build (an intent naming its staging folder and output) before anything is written.
fn declare(
    home: &Home,
    s: &Session,
    staging: &Path,
    out: &Path,
    release_id: &str,
) -> Result<tokumei_vault::intent::Pending, ReleaseError> {
    if staging.exists() {
        std::fs::remove_dir_all(staging).map_err(|e| io_err(staging, e))?;
    }
    Ok(tokumei_vault::intent::begin(
        home,
        tokumei_vault::intent::Intent {
            kind: "release.build".into(),
            id: release_id.to_string(),
            actor: s.user.clone(),
            role: s.role.code().into(),
            provider: None,
            paths: vec![staging.to_path_buf(), out.to_path_buf()],
        },
    )?)
}

/// Seals the release key in the keys zone (processing-method information, never in the release)
/// and wipes it from memory.
fn seal_release_key(
    home: &Home,
    key: &DataKey,
    release_id: &str,
    release_key: &mut [u8; 32],
) -> Result<(), ReleaseError> {
    let key_dir = home.root.join("keys/releases");
    std::fs::create_dir_all(&key_dir).map_err(|e| io_err(&key_dir, e))?;
    let sealed = seal(key, release_key.as_slice());
    release_key.fill(0);
    tokumei_vault::home::write_secret(&key_dir.join(format!("{release_id}.key.enc")), &sealed?)?;
    Ok(())
}

/// The preset's thresholds as the report states them.
fn preset_target(preset: &Preset) -> String {
    format!(
        "k ≥ {}, at most {:.0} % suppressed, prosecutor risk ≤ {}, linkage-attack success ≤ {}, \
         membership-inference advantage ≤ {}, unique trajectories ≤ {}, persons linked one-to-one \
         to an earlier release ≤ {}, codes held by ≥ {} persons",
        preset.k,
        preset.suppression_limit * 100.0,
        preset.max_prosecutor_risk,
        preset.max_linkage_success,
        preset.max_membership_advantage,
        preset.max_trajectory_unique,
        preset.max_cross_release_linkable,
        preset.rare_code_persons
    )
}

/// Writes the evaluation key (pseudonym → person id, for evaluations on synthetic data only),
/// owner-only.
fn write_evaluation_key(
    path: &Path,
    pseudonym: &HashMap<String, String>,
) -> Result<(), ReleaseError> {
    let mut text = String::from("pseudonym,person_id\n");
    let mut pairs: Vec<(&String, &String)> = pseudonym.iter().map(|(p, ps)| (ps, p)).collect();
    pairs.sort();
    for (ps, p) in pairs {
        text.push_str(&format!("{ps},{p}\n"));
    }
    let _ = std::fs::remove_file(path);
    tokumei_vault::home::write_secret(path, text.as_bytes())?;
    Ok(())
}

/// The persons table: each released person's pseudonym and quasi-identifiers, rows sorted.
fn persons_table(
    person_cols: &[String],
    cohort: &[&Person],
    rows: &[Vec<Option<String>>],
    pseudonym: &HashMap<String, String>,
) -> Table {
    let mut t = Table {
        name: "persons".into(),
        columns: std::iter::once("pseudonym".to_string())
            .chain(person_cols.iter().cloned())
            .collect(),
        rows: Vec::new(),
    };
    for (p, qis) in cohort.iter().zip(rows) {
        let mut row = vec![Some(pseudonym[&p.id].clone())];
        row.extend(qis.iter().cloned());
        t.rows.push(row);
    }
    t.rows.sort();
    t
}

/// Keeps the rows of the persons released only.
fn keep_released(events: &mut [Table], pseudonym: &HashMap<String, String>) {
    let released: HashSet<&str> = pseudonym.values().map(String::as_str).collect();
    for t in events.iter_mut() {
        t.rows
            .retain(|r| r[0].as_deref().is_some_and(|p| released.contains(p)));
    }
}

/// What the rules protected: the released tables (persons first) and the figures of the steps.
struct Protection {
    tables: Vec<Table>,
    cohort_kept: usize,
    protected: crate::persons::Protected,
    events: Option<crate::events::EventProtection>,
    codes: (usize, usize),
    trajectory: TrajectoryProtection,
    pseudonym: HashMap<String, String>,
}

/// The events' rules: (k, k^m) jointly with the persons (`joint`), and the trajectory bound.
#[derive(Clone, Copy)]
struct EventRules {
    joint: bool,
    bound: f64,
}

/// The cohort before protection (persons and events) and each person's (sex, age band).
type Unprocessed = (Vec<Table>, HashMap<String, (String, String)>);

/// The utility report, the previous rule's, and the report as JSON and HTML.
type UtilityOut = (
    crate::utility::UtilityReport,
    Option<crate::utility::UtilityReport>,
    Vec<u8>,
    Vec<u8>,
);

/// Applies the preset's rules to the cohort and its events (at the preset's granularity): persons
/// with their events under (k, k^m) when the preset asks for it, else k over the persons and the
/// trajectory bound; then the rare-code rule. `cohort` keeps the persons released.
fn protect(
    cohort: &mut Vec<&Person>,
    mut events: Vec<Table>,
    pseudonym_all: &HashMap<String, String>,
    person_cols: &[String],
    rules: EventRules,
    preset: &Preset,
    end: NaiveDate,
) -> Result<Protection, ReleaseError> {
    let EventRules { joint, bound } = rules;
    let (protected, event_protection) = if joint {
        let ps: Vec<String> = cohort
            .iter()
            .map(|p| pseudonym_all[&p.id].clone())
            .collect();
        let (p, e) = crate::events::protect(person_cols, cohort, &ps, &mut events, end, preset)?;
        (p, Some(e))
    } else {
        (
            crate::persons::protect(person_cols, cohort, end, preset)?,
            None,
        )
    };
    let pseudonym: HashMap<String, String> = cohort
        .iter()
        .map(|p| (p.id.clone(), pseudonym_all[&p.id].clone()))
        .collect();
    keep_released(&mut events, &pseudonym);
    let mut tables = vec![persons_table(
        person_cols,
        cohort,
        &protected.rows,
        &pseudonym,
    )];
    tables.extend(events);
    let (generalized, suppressed, trajectory) = coarsen_events(&mut tables, preset, bound);
    Ok(Protection {
        tables,
        cohort_kept: cohort.len(),
        protected,
        events: event_protection,
        codes: (generalized, suppressed),
        trajectory,
        pseudonym,
    })
}

/// What the previous rule (k over the persons, the 1 % trajectory bound) keeps of the same cohort.
fn previous_rule(
    cohort: &[&Person],
    events: Vec<Table>,
    pseudonym_all: &HashMap<String, String>,
    person_cols: &[String],
    preset: &Preset,
    end: NaiveDate,
) -> Result<(PreviousRule, Vec<Table>), ReleaseError> {
    let mut cohort = cohort.to_vec();
    let bound = PREVIOUS_TRAJECTORY_BOUND;
    let p = protect(
        &mut cohort,
        events,
        pseudonym_all,
        person_cols,
        EventRules {
            joint: false,
            bound,
        },
        preset,
        end,
    )?;
    let summary = PreviousRule {
        max_trajectory_unique: bound,
        persons: p.cohort_kept,
        rows: p
            .tables
            .iter()
            .map(|t| (t.name.clone(), t.rows.len()))
            .collect(),
        trajectory: p.trajectory,
    };
    Ok((summary, p.tables))
}

/// The cohort before protection, for the utility report: the persons at the preset's granularity
/// and the events with codes as recorded and dates as days (days since the index date under
/// relative dates); and each person's (sex, age band at the period end).
fn unprocessed(
    clinical: &Clinical,
    approved: &BTreeMap<String, Vec<String>>,
    cx: &EventContext<'_>,
    cohort: &[&Person],
    person_cols: &[String],
    preset: &Preset,
) -> Result<Unprocessed, ReleaseError> {
    let raw = EventContext {
        dates: match cx.dates {
            Dates::Relative => Dates::Relative,
            _ => Dates::Day,
        },
        ..*cx
    };
    let rows = crate::persons::base_rows(person_cols, cohort, cx.end, preset)?;
    let mut tables = vec![persons_table(person_cols, cohort, &rows, cx.pseudonym)];
    tables.extend(event_tables(clinical, approved, &raw));
    let band = |p: &Person| -> String {
        match p.birth.map(|b| age_on(b, cx.end)) {
            None => "?".into(),
            Some(a) if a >= 90 => "90+".into(),
            Some(a) => format!("{}-{}", a / 10 * 10, a / 10 * 10 + 9),
        }
    };
    let strata = cohort
        .iter()
        .map(|p| {
            let sex = p.sex.clone().unwrap_or_else(|| "?".into());
            (cx.pseudonym[&p.id].clone(), (sex, band(p)))
        })
        .collect();
    Ok((tables, strata))
}

/// The utility report of the release (and of the previous rule's tables, when given) against the
/// cohort before protection, as (report, JSON, HTML).
fn utility_report(
    unprocessed: &[Table],
    strata: &HashMap<String, (String, String)>,
    released: &[Table],
    previous: Option<&[Table]>,
) -> Result<UtilityOut, ReleaseError> {
    let measure = |tables: &[Table]| {
        crate::utility::measure(&crate::utility::UtilityInput {
            unprocessed,
            released: tables,
            strata,
            targets: crate::utility::UtilityTargets::default(),
        })
    };
    let report = measure(released);
    let before = previous.map(measure);
    let label = "旧規則（一意な軌跡 1 % 以下） / the previous rule (≤ 1 % unique trajectories)";
    let html = crate::utility::html(&report, before.as_ref().map(|b| (label, b)));
    let json =
        serde_json::to_vec_pretty(&report).map_err(|e| ReleaseError::Output(e.to_string()))?;
    Ok((report, before, json, html.into_bytes()))
}

/// The m-event intruder against the release and the unprocessed data, and the refusal it causes.
type Attacks = (
    Vec<crate::reid_events::EventAttack>,
    Vec<crate::reid_events::EventAttack>,
    Option<String>,
);

/// Seed of the m-event intruder's draws (targets and known events).
const ATTACK_SEED: u64 = 0x746f_6b75_6d65_6931;

/// The m-event intruder (m = 1, 2, 3) against the release and against the unprocessed data
/// (`raw`: persons at the preset's granularity, events as recorded with day dates), with the
/// refusal of an anonymized release above the preset's bound at its m.
fn event_attacks(
    tables: &[Table],
    raw: &[Table],
    cohort: &[&Person],
    pseudonym: &HashMap<String, String>,
    preset: &Preset,
    kind: ReleaseKind,
    end: NaiveDate,
) -> Result<Attacks, ReleaseError> {
    use crate::reid_events::m_event_attack;
    let register: HashMap<String, crate::reid::RegisterPerson> = cohort
        .iter()
        .map(|p| {
            let r = crate::reid::RegisterPerson {
                id: p.id.clone(),
                sex: p.sex.clone(),
                birth: p.birth,
                municipality: p.municipality.clone(),
            };
            (pseudonym[&p.id].clone(), r)
        })
        .collect();
    // The intruder knows real dates: a day is brought to the preset's granularity before it is
    // compared with a released label.
    let day_to_base = |v: &str| -> String {
        match preset.dates {
            Dates::Month if v.len() == 10 => v[..7].to_string(),
            Dates::Year if v.len() == 10 => v[..4].to_string(),
            _ => v.to_string(),
        }
    };
    let covers = crate::events::Covers::of(&raw[1..], preset.dates, &day_to_base)?;
    let base = |column: &str, v: &str| -> String {
        if checks::DATE_COLUMNS.contains(&column) {
            day_to_base(v)
        } else {
            v.to_string()
        }
    };
    let release_covers = |t: &str, c: &str, released: &str, known: &str| {
        covers.covers(t, c, released, &base(c, known))
    };
    let ms = [1, 2, 3];
    let release = m_event_attack(
        &tables[0],
        &tables[1..],
        &raw[1..],
        &register,
        end,
        &release_covers,
        &ms,
        5000,
        ATTACK_SEED,
    );
    let initial_persons = unprocessed_persons(cohort, pseudonym);
    let equal = |_: &str, _: &str, released: &str, known: &str| released == known;
    let initial = m_event_attack(
        &initial_persons,
        &raw[1..],
        &raw[1..],
        &register,
        end,
        &equal,
        &ms,
        5000,
        ATTACK_SEED,
    );
    let m = preset.event_m.clamp(1, 3);
    let refusal = release
        .iter()
        .find(|a| a.m == m && a.share_correct > preset.max_event_attack)
        .filter(|_| kind == ReleaseKind::Anonymized)
        .map(|a| {
            format!(
                "re-identification test: an intruder knowing the quasi-identifiers and {m} events \
                 singles out {:.4} of the persons (at most {})",
                a.share_correct, preset.max_event_attack
            )
        });
    Ok((release, initial, refusal))
}

/// The released persons with sex, birth date and municipality unprocessed (the initial risk).
fn unprocessed_persons(cohort: &[&Person], pseudonym: &HashMap<String, String>) -> Table {
    Table {
        name: "persons".into(),
        columns: ["pseudonym", "sex", "birth_date", "municipality"]
            .map(String::from)
            .to_vec(),
        rows: cohort
            .iter()
            .map(|p| {
                vec![
                    Some(pseudonym[&p.id].clone()),
                    p.sex.clone(),
                    p.birth.map(|b| b.to_string()),
                    p.municipality.clone(),
                ]
            })
            .collect(),
    }
}

/// Draws the release key and id and makes the cohort's pseudonyms; a build that writes then
/// declares itself (see `build`) and seals the release key, a dry run wipes it. Returns (release
/// id, pseudonyms and shifts).
#[allow(clippy::too_many_arguments)]
fn declared_pseudonyms(
    home: &Home,
    s: &Session,
    key: &DataKey,
    (staging, out): (&Path, &Path),
    cohort: &[&Person],
    preset: &Preset,
    opts: &BuildOptions,
    begun: &mut Option<tokumei_vault::intent::Pending>,
) -> Result<(String, Pseudonyms, [u8; 32]), ReleaseError> {
    let (mut release_key, release_id) = release_key_and_id()?;
    let made = pseudonyms(cohort, &release_key, preset.dates)?;
    let image_key = derived_key(&release_key, b"dicom")?;
    if opts.dry_run {
        release_key.fill(0);
    } else {
        *begun = Some(declare(home, s, staging, out, &release_id)?);
        seal_release_key(home, key, &release_id, &mut release_key)?;
    }
    Ok((release_id, made, image_key))
}

/// The operator's pixel cleaning rules (RSNA CTP's script format) in `config/pixel-rules.script`
/// of the home, if the file is there.
fn pixel_rules(home: &Home) -> Result<Vec<tokumei_dicom::pixel::Rule>, ReleaseError> {
    let path = home.root.join("config/pixel-rules.script");
    match std::fs::read_to_string(&path) {
        Ok(text) => tokumei_dicom::pixel::parse_script(&text)
            .map_err(|e| ReleaseError::Output(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(&path, e)),
    }
}

/// The images of the release when the `images` items are approved: de-identified and checked; a
/// file with an identifying value or an unchanged listed attribute, or a table the machine checks
/// refuse, refuses the release.
fn release_images(
    job: &crate::images::ImageJob<'_>,
    preset: &Preset,
    refusals: &mut Vec<String>,
    opts: &BuildOptions,
) -> Result<ImagesOut, ReleaseError> {
    if job.columns.is_empty() {
        return Ok((None, None, Vec::new()));
    }
    // OCR's scratch images show burned-in text: in the home, owner-only, removed after.
    tokumei_vault::home::make_private_dir(&job.scratch)?;
    let result = crate::images::release(job);
    let _ = std::fs::remove_dir_all(&job.scratch);
    let (summary, table, files) = result?;
    let violations = checks::check(preset, std::slice::from_ref(&table));
    refuse(
        refusals,
        (!violations.is_empty()).then(|| violations.join("; ")),
        opts,
    )?;
    let hits = (!summary.findings.is_empty()).then(|| {
        let places: std::collections::BTreeSet<&str> = summary
            .findings
            .iter()
            .map(|(_, at, _)| at.as_str())
            .collect();
        format!(
            "{} finding(s) in released images: identifying values or unchanged attributes at {}",
            summary.findings.len(),
            places.into_iter().take(8).collect::<Vec<_>>().join(", ")
        )
    });
    refuse(refusals, hits, opts)?;
    Ok((Some(summary), Some(table), files))
}

/// What the images give the build: the summary, the `images` table and the files.
type ImagesOut = (
    Option<crate::images::ImageSummary>,
    Option<Table>,
    Vec<(String, Vec<u8>)>,
);

/// A key for one use derived from the release key (HMAC-SHA256 of the use's label).
fn derived_key(release_key: &[u8; 32], label: &[u8]) -> Result<[u8; 32], ReleaseError> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(release_key)
        .map_err(|e| ReleaseError::Output(e.to_string()))?;
    mac.update(label);
    Ok(mac.finalize().into_bytes().into())
}

/// The m-event intruder, release and initial, and the utility report.
type RiskAndUtility = (Attacks, UtilityOut);

/// The m-event intruder against the release and the unprocessed data, and the utility report
/// (with the previous rule's tables beside, when given).
#[allow(clippy::too_many_arguments)]
fn risk_and_utility(
    tables: &[Table],
    raw: &[Table],
    strata: &HashMap<String, (String, String)>,
    previous: Option<&[Table]>,
    cohort: &[&Person],
    pseudonym: &HashMap<String, String>,
    preset: &Preset,
    kind: ReleaseKind,
    end: NaiveDate,
) -> Result<RiskAndUtility, ReleaseError> {
    let attacks = event_attacks(tables, raw, cohort, pseudonym, preset, kind, end)?;
    let utility = utility_report(raw, strata, tables, previous)?;
    Ok((attacks, utility))
}

/// Draws the release key and id.
fn release_key_and_id() -> Result<([u8; 32], String), ReleaseError> {
    let mut release_key = [0u8; 32];
    getrandom::fill(&mut release_key).map_err(|e| ReleaseError::Output(e.to_string()))?;
    let mut rid = [0u8; 6];
    getrandom::fill(&mut rid).map_err(|e| ReleaseError::Output(e.to_string()))?;
    Ok((release_key, format!("R-{}", hex::encode(rid))))
}

// Over 150 lines because it is the build's steps in their order, each one call on the values the
// steps before it made; split, the same dozen values would be passed around instead.
#[allow(clippy::too_many_arguments)]
fn build_inner(
    home: &Home,
    s: &Session,
    key: &DataKey,
    scope: &Scope,
    out: &Path,
    staging: &Path,
    opts: &BuildOptions,
    begun: &mut Option<tokumei_vault::intent::Pending>,
) -> Result<(Release, Option<tokumei_audit::Entry>), ReleaseError> {
    (!opts.dry_run).then(|| ensure_empty(out)).transpose()?;
    let app = &scope.application;
    let kind = app.kind;
    let preset = resolve_preset(app, opts)?;
    let from = day(&app.period_from)?;
    let end = day(&app.period_to)?;
    // The linked vault (the catalog opened once: each open checks its authorization state).
    let catalog = home.catalog()?;
    let vault = tokumei_link::linked::LinkedVault::read(home, key, &catalog)?;
    let (persons, excluded) = vault.persons(&catalog, key)?;
    let (mpi, clinical, identities) = (vault.mpi, vault.clinical, vault.identities);
    let (mut cohort, cohort_size, opted_out) =
        select_cohort(app, &persons, &mpi, &clinical, &excluded, end)?;
    let (approved, removed_columns, person_cols) = approved_items(scope);
    // Per-release pseudonyms of the whole cohort (a suppressed person's is never written).
    let (release_id, (pseudonym_all, shift), image_key) =
        declared_pseudonyms(home, s, key, (staging, out), &cohort, &preset, opts, begun)?;

    // Index dates (presets with relative days): the person's first event in the release period.
    let index_date = match preset.dates {
        Dates::Relative => index_dates(&clinical, &mpi, &pseudonym_all, from, end),
        _ => HashMap::new(),
    };
    let cx = EventContext {
        mpi: &mpi,
        pseudonym: &pseudonym_all,
        index_date: &index_date,
        shift: &shift,
        dates: preset.dates,
        from,
        end,
    };
    // The events of the approved tables at the preset's granularity, numeric values clipped.
    let mut events = event_tables(&clinical, &approved, &cx);
    clip_events(&mut events, &preset);
    let (raw, strata) = unprocessed(&clinical, &approved, &cx, &cohort, &person_cols, &preset)?;

    let joint = kind == ReleaseKind::Anonymized && preset.event_m > 0;
    let cols = &person_cols;
    let previous = joint
        .then(|| previous_rule(&cohort, events.clone(), &pseudonym_all, cols, &preset, end))
        .transpose()?;
    let p = protect(
        &mut cohort,
        events,
        &pseudonym_all,
        &person_cols,
        EventRules {
            joint,
            bound: preset.max_trajectory_unique,
        },
        &preset,
        end,
    )?;
    let tables = p.tables;
    let pseudonym = p.pseudonym;

    // The machine checks and the battery's thresholds: a release that fails one is not written; a
    // dry run reports them all with the figures.
    let mut refusals = Vec::new();
    let violations = checks::check(&preset, &tables);
    let failed = (!violations.is_empty()).then(|| violations.join("; "));
    refuse(&mut refusals, failed, opts)?;

    let (reid, reid_initial, cross_release, truth, broken) = battery(
        (home, key),
        opts,
        &preset,
        kind,
        &tables,
        &persons,
        &cohort,
        &pseudonym,
        end,
    )?;
    refuse(&mut refusals, broken, opts)?;
    let prev = previous.as_ref().map(|(_, t)| t.as_slice());
    let ((event_attack, event_attack_initial, singled_out), utility) = risk_and_utility(
        &tables, &raw, &strata, prev, &cohort, &pseudonym, &preset, kind, end,
    )?;
    refuse(&mut refusals, singled_out, opts)?;
    drop(raw);
    let mut image_job = image_job(
        (home, key),
        cx,
        &pseudonym,
        (&clinical, &identities),
        (app, &approved),
        (image_key, &release_id),
    )?;
    image_job.options = preset.image_profile_options()?;
    let (images, image_table, image_files) =
        release_images(&image_job, &preset, &mut refusals, opts)?;
    let mut tables = tables;
    tables.extend(image_table);
    let (before, after) = (p.protected.before, p.protected.after);
    let (utility_goals, utility_before, utility_json, utility_html) = utility;
    let mut release = Release {
        release_id: release_id.clone(),
        application_id: scope.application_id.clone(),
        kind: kind.code().to_string(),
        preset: preset.name.clone(),
        cohort: cohort_size,
        opted_out,
        k: preset.k,
        suppressed: p.protected.suppressed,
        persons: cohort.len(),
        rows: tables
            .iter()
            .map(|t| (t.name.clone(), t.rows.len()))
            .collect(),
        transformation: p.protected.transformation,
        min_class: (min_class(&before), min_class(&after)),
        unique_share: (before.sample_uniques, after.sample_uniques),
        max_risk: (before.prosecutor_max, after.prosecutor_max),
        risk: (before, after),
        codes_generalized: p.codes.0,
        codes_suppressed: p.codes.1,
        trajectory: p.trajectory,
        events: p.events,
        previous_rule: previous.map(|(summary, _)| summary),
        dry_run: opts.dry_run,
        event_attack,
        event_attack_initial,
        utility: utility_goals.goals_met,
        utility_previous_rule: utility_before.map(|u| u.goals_met).unwrap_or_default(),
        removed_columns,
        reid,
        reid_initial,
        cross_release,
        dates: dates_meaning(preset.dates).to_string(),
        images,
        target: preset_target(&preset),
        period_to: app.period_to.clone(),
        warnings: checks::utility_warnings(&tables),
        refusals,
        package: PathBuf::new(),
        package_sha256: String::new(),
    };
    if opts.dry_run {
        return Ok((release, None));
    }
    let written = Written {
        tables,
        images: image_files,
        truth,
        pseudonym: &pseudonym,
        utility: [utility_json, utility_html],
    };
    let entry = write_and_record(
        (home, s, key),
        scope,
        &preset,
        (staging, out),
        opts,
        written,
        &mut release,
    )?;
    Ok((release, Some(entry)))
}

/// What the images of a release need, from the build's context.
fn image_job<'a>(
    (home, key): (&'a Home, &'a DataKey),
    cx: EventContext<'a>,
    released: &'a HashMap<String, String>,
    (clinical, identities): (&'a Clinical, &'a [tokumei_model::identity::IdentityRecord]),
    (app, approved): (&tokumei_review::Application, &BTreeMap<String, Vec<String>>),
    (uid_key, release_id): ([u8; 32], &str),
) -> Result<crate::images::ImageJob<'a>, ReleaseError> {
    Ok(crate::images::ImageJob {
        home,
        key,
        kind: app.kind,
        images: &clinical.images,
        cx,
        identities,
        pseudonym: released,
        request: app.images.clone().unwrap_or_default(),
        uid_key,
        columns: approved.get("images").cloned().unwrap_or_default(),
        scratch: home.root.join(format!("work/ocr-{release_id}")),
        pixel_rules: pixel_rules(home)?,
        options: None,
    })
}

/// What a build writes besides its report: the tables, the pseudonym → person map of the
/// snapshot, the pseudonyms (for an evaluation key) and the utility report (JSON, HTML).
struct Written<'a> {
    tables: Vec<Table>,
    /// The de-identified images: (path in the release, bytes).
    images: Vec<(String, Vec<u8>)>,
    truth: HashMap<String, String>,
    pseudonym: &'a HashMap<String, String>,
    utility: [Vec<u8>; 2],
}

/// Writes the release into its staging folder (tables, report, package; the utility report
/// beside it, outside the package) and records it (snapshot, ledger entry); returns the entry.
fn write_and_record(
    (home, s, key): (&Home, &Session, &DataKey),
    scope: &Scope,
    preset: &Preset,
    (staging, out): (&Path, &Path),
    opts: &BuildOptions,
    w: Written<'_>,
    release: &mut Release,
) -> Result<tokumei_audit::Entry, ReleaseError> {
    if let Some(path) = &opts.evaluation_key {
        write_evaluation_key(path, w.pseudonym)?;
    }
    let snapshot = Snapshot {
        release_id: release.release_id.clone(),
        kind: release.kind.clone(),
        tables: w.tables,
        persons: w.truth,
    };
    let signer = home.audit_signing_key()?;
    write_release(
        scope,
        preset,
        (&snapshot.tables, w.images),
        staging,
        out,
        &signer,
        release,
    )?;
    // The utility report stays with the operator and the committee (it holds figures of the
    // unprocessed cohort): beside the release, outside the package.
    for (name, bytes) in ["utility.json", "utility.html"].iter().zip(&w.utility) {
        let p = staging.join(name);
        std::fs::write(&p, bytes).map_err(|e| io_err(&p, e))?;
    }
    tokumei_vault::fault::point("release.written");
    record_release(home, s, key, scope, &snapshot, release)
}

/// Clips a numeric column to its 1st–99th percentile.
fn clip(t: &mut Table, column: &str, percentile: usize) {
    let Some(i) = t.col(column) else {
        return;
    };
    let mut values: Vec<f64> = t
        .rows
        .iter()
        .filter_map(|r| r[i].as_deref().and_then(|v| v.parse().ok()))
        .collect();
    if values.len() < 100 {
        return;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let lo = values[values.len() * percentile / 100];
    let hi = values[values.len() - 1 - values.len() * percentile / 100];
    for r in t.rows.iter_mut() {
        if let Some(v) = r[i].as_deref().and_then(|v| v.parse::<f64>().ok()) {
            let c = v.clamp(lo, hi);
            if c != v {
                r[i] = Some(format!("{c}"));
            }
        }
    }
}

/// Generalizes codes held by fewer than `min` persons (ICD-10: to the 3-character category, then
/// to the WHO chapter, `tokumei_japan::icd10`) and suppresses (`*`) what is still rare; returns
/// (generalized, suppressed) values.
fn rare_codes(t: &mut Table, i: usize, icd10: bool, min: usize) -> (usize, usize) {
    let count = |t: &Table| {
        let mut persons: HashMap<String, HashSet<String>> = HashMap::new();
        for r in &t.rows {
            if let (Some(c), Some(p)) = (&r[i], &r[0]) {
                persons.entry(c.clone()).or_default().insert(p.clone());
            }
        }
        persons
            .into_iter()
            .map(|(c, s)| (c, s.len()))
            .collect::<HashMap<String, usize>>()
    };
    let (mut generalized, mut suppressed) = (0, 0);
    if icd10 {
        use tokumei_japan::icd10::{category, chapter_of};
        let steps: [fn(&str) -> Option<String>; 2] = [
            |c| category(c).filter(|k| k != c),
            |c| category(c).and_then(|k| chapter_of(&k)).map(str::to_string),
        ];
        for step in steps {
            let n = count(t);
            for r in t.rows.iter_mut() {
                let Some(c) = r[i].clone() else { continue };
                if c == "*" || n.get(&c).is_none_or(|k| *k >= min) {
                    continue;
                }
                if let Some(g) = step(&c) {
                    r[i] = Some(g);
                    generalized += 1;
                }
            }
        }
    }
    let n = count(t);
    for r in t.rows.iter_mut() {
        if let Some(c) = r[i].clone() {
            if c != "*" && n.get(&c).is_some_and(|k| *k < min) {
                r[i] = Some("*".into());
                suppressed += 1;
            }
        }
    }
    (generalized, suppressed)
}

/// What bounding trajectory uniqueness changed in a release.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TrajectoryProtection {
    /// Tables whose ICD-10 codes were cut to 3 characters for it.
    pub icd10_to_3_characters: Vec<String>,
    /// Persons whose events in a table were cut to their first event (counted per table).
    pub truncated: usize,
    /// Persons whose events in a table were all dropped (counted per table).
    pub dropped: usize,
    /// Event rows removed.
    pub rows_removed: usize,
}

/// Bounds the share of persons of one event table whose quasi-identifiers together with their
/// trajectory are unique (so their trajectory alone is bounded too; see [`TrajectoryProtection`]).
fn bound_trajectories(persons: &Table, t: &mut Table, bound: f64, done: &mut TrajectoryProtection) {
    let above = |t: &Table| -> Option<HashSet<String>> {
        let (n, unique) = crate::reid::unique_records(persons, t)?;
        (n > 0 && unique.len() as f64 > bound * n as f64).then(|| unique.into_iter().collect())
    };
    if above(t).is_none() {
        return;
    }
    if let Some(i) = t.col("icd10") {
        for r in t.rows.iter_mut() {
            if let Some(c) = r[i].as_mut() {
                if let Some(k) = tokumei_japan::icd10::category(c) {
                    *c = k;
                }
            }
        }
        done.icd10_to_3_characters.push(t.name.clone());
    }
    let Some(unique) = above(t) else { return };
    // Unique persons keep their first event (earliest row; rows are sorted by pseudonym then columns).
    let before = t.rows.len();
    let date = crate::events::time_column(t);
    // Dates order as text (YYYY, YYYY-MM, YYYY-MM-DD) or, as days since an index date, as numbers.
    let when = |row: &[Option<String>]| -> (Option<i64>, Option<String>) {
        let v = date.and_then(|d| row[d].clone());
        (v.as_deref().and_then(|x| x.parse().ok()), v)
    };
    let mut first: HashMap<String, usize> = HashMap::new();
    for (i, r) in t.rows.iter().enumerate() {
        if let Some(p) = r[0].as_ref().filter(|p| unique.contains(*p)) {
            let better = first.get(p).is_none_or(|&j| when(r) < when(&t.rows[j]));
            if better {
                first.insert(p.clone(), i);
            }
        }
    }
    let keep_rows: HashSet<usize> = first.values().copied().collect();
    let mut i = 0;
    t.rows.retain(|r| {
        let keep = match &r[0] {
            Some(p) if unique.contains(p) => keep_rows.contains(&i),
            _ => true,
        };
        i += 1;
        keep
    });
    done.truncated += unique.len();
    // Persons still unique lose their events in this table. A unique person shares their key with
    // nobody, so dropping them leaves no one else unique: the bound then holds.
    if let Some(unique) = above(t) {
        done.dropped += unique.len();
        t.rows
            .retain(|r| r[0].as_ref().is_none_or(|p| !unique.contains(p)));
    }
    done.rows_removed += before - t.rows.len();
}

fn io_err(path: &Path, e: std::io::Error) -> ReleaseError {
    tokumei_fs::io(path)(e).into()
}

fn csv_bytes(t: &Table) -> Result<Vec<u8>, ReleaseError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&t.columns)
        .map_err(|e| ReleaseError::Output(e.to_string()))?;
    for r in &t.rows {
        w.write_record(r.iter().map(|v| v.as_deref().unwrap_or("")))
            .map_err(|e| ReleaseError::Output(e.to_string()))?;
    }
    w.into_inner()
        .map_err(|e| ReleaseError::Output(e.to_string()))
}

fn parquet_bytes(t: &Table) -> Result<Vec<u8>, ReleaseError> {
    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    let schema = Arc::new(Schema::new(
        t.columns
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = (0..t.columns.len())
        .map(|i| {
            Arc::new(StringArray::from(
                t.rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    let e = |e: &dyn std::fmt::Display| ReleaseError::Output(e.to_string());
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|x| e(&x))?;
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).map_err(|x| e(&x))?;
    w.write(&batch).map_err(|x| e(&x))?;
    w.close().map_err(|x| e(&x))?;
    Ok(out)
}

/// What each released column means.
/// What released event dates mean under a preset's date rule.
fn dates_meaning(dates: Dates) -> &'static str {
    match dates {
        Dates::Month => "year-month (YYYY-MM)",
        Dates::Year => "year (YYYY)",
        Dates::Day => "day (YYYY-MM-DD)",
        Dates::Shift => {
            "day (YYYY-MM-DD), shifted by a consistent random offset per person (±182 days)"
        }
        Dates::Relative => "days since the person's index date (their first event in the period)",
    }
}

fn dictionary(
    tables: &[Table],
    preset: &Preset,
    transformation: &BTreeMap<String, String>,
) -> serde_json::Value {
    let date = dates_meaning(preset.dates);
    let granularity = |c: &str| -> String {
        transformation
            .get(c)
            .cloned()
            .unwrap_or_else(|| "as recorded".into())
    };
    let describe = |t: &str, c: &str| -> String {
        match (t, c) {
            (_, "pseudonym") => {
                "per-release pseudonym of the person (never shared with another release)".into()
            }
            ("persons", "sex") => "sex (M/F)".into(),
            ("persons", "age") => format!(
                "age at the end of the period (or at death), {}, {}+ top-coded",
                granularity("age"),
                preset.top_code_age
            ),
            ("persons", "birth_year_month" | "birth_year") => format!(
                "birth, {}; empty for persons aged {}+",
                granularity(c),
                preset.top_code_age
            ),
            ("persons", "municipality") => format!(
                "residence: {} (全国地方公共団体コード, 6 digits; prefecture: JIS X 0401, 2 digits)",
                granularity("municipality")
            ),
            ("persons", "prefecture") => "prefecture code (JIS X 0401)".into(),
            ("persons", "death_month") => format!("death, {}", granularity("death_month")),
            (_, "date" | "start_date" | "end_date") => format!("date, {date}"),
            ("images", "study_date") => format!("study date, {date}"),
            ("images", "modality") => "DICOM Modality (CT, MR, CR, US ...)".into(),
            ("images", "body_part") => "DICOM Body Part Examined".into(),
            ("images", "file") => format!(
                "the DICOM file in this release, de-identified under PS3.15 Annex E (the \
                 release's pseudonym as Patient ID and Patient's Name; UIDs unrelated to any other \
                 release; dates {date}{})",
                if preset.dates == Dates::Relative {
                    ", counted from 2000-01-01 in the file"
                } else {
                    ""
                }
            ),
            (_, "icd10") => {
                "ICD-10 code (rare codes generalized to the 3-character category or the WHO chapter in Roman numerals, or `*`)"
                    .into()
            }
            (_, "code") => "code of the source's master (rare codes `*`)".into(),
            (_, c) => c.replace('_', " "),
        }
    };
    serde_json::json!(tables
        .iter()
        .map(|t| serde_json::json!({
            "table": t.name,
            "rows": t.rows.len(),
            "columns": t.columns.iter().map(|c| serde_json::json!({"name": c, "meaning": describe(&t.name, c)})).collect::<Vec<_>>(),
        }))
        .collect::<Vec<_>>())
}

/// Writes the release folder (tables, dictionary, reports, manifest) and the package sealed to the
/// recipient into `staging` (moved to `out` once committed); sets the package's path and hash.
#[allow(clippy::too_many_arguments)]
fn write_release(
    scope: &Scope,
    preset: &Preset,
    (tables, images): (&[Table], Vec<(String, Vec<u8>)>),
    staging: &Path,
    out: &Path,
    signer: &ed25519_dalek::SigningKey,
    r: &mut Release,
) -> Result<(), ReleaseError> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for t in tables {
        files.push((format!("tables/{}.csv", t.name), csv_bytes(t)?));
        files.push((format!("tables/{}.parquet", t.name), parquet_bytes(t)?));
    }
    files.extend(images);
    let dict = serde_json::to_vec_pretty(&dictionary(tables, preset, &r.transformation))
        .map_err(|e| ReleaseError::Output(e.to_string()))?;
    files.push(("dictionary.json".into(), dict));
    files.push((
        "report.html".into(),
        crate::report::html(r, scope).into_bytes(),
    ));
    let report = serde_json::to_vec_pretty(&*r).map_err(|e| ReleaseError::Output(e.to_string()))?;
    files.push(("report.json".into(), report));
    let manifest = serde_json::json!({
        "release_id": r.release_id,
        "application_id": r.application_id,
        "decision_sha256": scope.decision_sha256,
        "kind": r.kind,
        "period_from": scope.application.period_from,
        "period_to": scope.application.period_to,
        "recipient": scope.application.applicant.organisation,
        "files": files.iter().map(|(n, b)| serde_json::json!({"path": n, "sha256": hex::encode(Sha256::digest(b)), "bytes": b.len()})).collect::<Vec<_>>(),
    });
    let manifest =
        serde_json::to_vec_pretty(&manifest).map_err(|e| ReleaseError::Output(e.to_string()))?;
    // Signed by the operator, so that a recipient can check where the release came from.
    let signature = crate::signed::sign_manifest(signer, &manifest);
    files.push(("manifest.json".into(), manifest));
    files.push(("manifest.sig".into(), signature.into_bytes()));
    // The release zone: the tables as released (for the re-identification test) and the package.
    for (name, bytes) in &files {
        let p = staging.join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
        }
        std::fs::write(&p, bytes).map_err(|e| io_err(&p, e))?;
    }
    let recipient: age::x25519::Recipient = scope
        .application
        .recipient_key
        .trim()
        .parse()
        .map_err(|_| ReleaseError::Output("the recipient key is not an age key".into()))?;
    let pkg_name = format!("{}.tar.age", r.release_id);
    let pkg = staging.join(&pkg_name);
    let mut sealed = tokumei_vault::sealed::SealedTar::create(&pkg, &recipient, 0o644)
        .map_err(|e| io_err(&pkg, e))?;
    for (name, bytes) in &files {
        sealed
            .append_bytes(name, bytes)
            .map_err(|e| io_err(&pkg, e))?;
    }
    sealed.finish().map_err(|e| io_err(&pkg, e))?;
    let bytes = std::fs::read(&pkg).map_err(|e| io_err(&pkg, e))?;
    r.package = out.join(pkg_name);
    r.package_sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(())
}

/// Records a written release: the snapshot for later releases' cross-release test, then the
/// provision ledger entry that commits the release; returns its audit entry (written once the
/// release is in place).
fn record_release(
    home: &Home,
    s: &Session,
    key: &DataKey,
    scope: &Scope,
    snapshot: &Snapshot,
    r: &Release,
) -> Result<tokumei_audit::Entry, ReleaseError> {
    let dir = snapshot_dir(home);
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    let plain = serde_json::to_vec(snapshot).map_err(|e| ReleaseError::Output(e.to_string()))?;
    tokumei_vault::home::write_secret(
        &dir.join(format!("{}.enc", r.release_id)),
        &seal(key, &plain)?,
    )?;
    let review = Review::open(home)?;
    review.record_provision(
        s,
        &tokumei_review::Provision {
            release_id: r.release_id.clone(),
            application_id: r.application_id.clone(),
            decision_sha256: scope.decision_sha256.clone(),
            recipient: scope.application.applicant.organisation.clone(),
            kind: r.kind.clone(),
            package_sha256: r.package_sha256.clone(),
            provided_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            contract_expiry: scope.application.contract_expiry.clone(),
            destroyed_at: None,
            destruction_certificate_sha256: None,
        },
    )?;
    Ok(tokumei_audit::Entry::now(
        &s.user,
        s.role.code(),
        "release.build",
        &format!(
            "release {} of application {}: {} persons, {} suppressed, {} opted out",
            r.release_id, r.application_id, r.persons, r.suppressed, r.opted_out
        ),
        &format!(
            "ok: {}, smallest class {} → {}, package sha256 {}",
            r.transformation
                .iter()
                .map(|(c, g)| format!("{c} {g}"))
                .collect::<Vec<_>>()
                .join(", "),
            r.min_class.0,
            r.min_class.1,
            r.package_sha256
        ),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    /// 60 persons in six classes of ten; every person has a few diagnoses, most of them unique sets.
    fn release() -> (Table, Table) {
        let persons = Table {
            name: "persons".into(),
            columns: vec!["pseudonym".into(), "sex".into(), "age".into()],
            rows: (0..60)
                .map(|i| {
                    vec![
                        s(&format!("P{i:03}")),
                        s(if i % 2 == 0 { "M" } else { "F" }),
                        s(["40-49", "50-59", "60-69"][i % 3]),
                    ]
                })
                .collect(),
        };
        let mut rows = Vec::new();
        for i in 0..60usize {
            for j in 0..(1 + i % 4) {
                rows.push(vec![
                    s(&format!("P{i:03}")),
                    s(&format!("E1{}.{}", (i + j) % 10, j % 3)),
                    s(&format!("2022-{:02}", 1 + (i * 7 + j) % 12)),
                ]);
            }
        }
        // Ten persons share one common trajectory.
        for i in 60..70usize {
            rows.push(vec![s(&format!("Q{i:03}")), s("E11.9"), s("2022-01")]);
        }
        let diagnoses = Table {
            name: "diagnoses".into(),
            columns: vec!["pseudonym".into(), "icd10".into(), "date".into()],
            rows,
        };
        (persons, diagnoses)
    }

    #[test]
    fn trajectories_are_bounded_with_the_quasi_identifiers() {
        let (persons, mut dx) = release();
        let (n, unique) = crate::reid::unique_records(&persons, &dx).expect("coded");
        assert!(
            unique.len() as f64 > 0.5 * n as f64,
            "{} of {n}",
            unique.len()
        );
        let mut done = TrajectoryProtection::default();
        bound_trajectories(&persons, &mut dx, 0.01, &mut done);
        let (n, unique) = crate::reid::unique_records(&persons, &dx).expect("coded");
        assert!(
            unique.len() as f64 <= 0.01 * n as f64,
            "{} of {n}",
            unique.len()
        );
        let (_, alone) = crate::reid::unique_trajectories(&dx).expect("coded");
        assert!(alone.len() as f64 <= 0.01 * n as f64);
        assert_eq!(done.icd10_to_3_characters, vec!["diagnoses".to_string()]);
        assert!(dx
            .rows
            .iter()
            .all(|r| r[1].as_deref().is_some_and(|c| c.len() <= 3)));
        assert!(done.truncated > 0 && done.rows_removed > 0, "{done:?}");
        // The ten persons sharing a trajectory keep their events.
        assert_eq!(
            dx.rows
                .iter()
                .filter(|r| r[0].as_deref().is_some_and(|p| p.starts_with('Q')))
                .count(),
            10
        );
    }

    #[test]
    fn truncation_keeps_the_first_event_also_in_relative_days() {
        let persons = Table {
            name: "persons".into(),
            columns: vec!["pseudonym".into(), "sex".into()],
            rows: (0..3).map(|i| vec![s(&format!("P{i}")), s("F")]).collect(),
        };
        let mut dx = Table {
            name: "diagnoses".into(),
            columns: vec!["pseudonym".into(), "code".into(), "date".into()],
            rows: vec![
                vec![s("P0"), s("A"), s("120")],
                vec![s("P0"), s("B"), s("37")],
                vec![s("P0"), s("C"), s("5")],
                vec![s("P1"), s("C"), s("5")],
                vec![s("P2"), s("C"), s("5")],
            ],
        };
        let mut done = TrajectoryProtection::default();
        bound_trajectories(&persons, &mut dx, 0.0, &mut done);
        let p0: Vec<_> = dx.rows.iter().filter(|r| r[0] == s("P0")).collect();
        assert_eq!(p0.len(), 1);
        assert_eq!(p0[0][2], s("5"), "the earliest day, not the smallest text");
        assert_eq!((done.truncated, done.dropped, done.rows_removed), (1, 0, 2));
    }

    #[test]
    fn a_bound_already_met_changes_nothing() {
        let (persons, mut dx) = release();
        let before = dx.clone();
        let mut done = TrajectoryProtection::default();
        bound_trajectories(&persons, &mut dx, 1.0, &mut done);
        assert_eq!(dx, before);
        assert_eq!(done.rows_removed, 0);
    }
}
