//! The re-identification test battery (RULES §10 rule 72) on a release's persons table and event
//! tables:
//!
//! - k and uniqueness over the quasi-identifiers (every persons column but the pseudonym);
//! - prosecutor, journalist and marketer risk against a population register;
//! - a simulated linkage attack by an intruder holding that register (name, sex, birth date,
//!   address: only sex, birth date and municipality can meet the release), scored exactly with a
//!   truth key;
//! - membership inference (PWS Cup style, rule 72.5): with a truth key, the advantage (highest
//!   true-positive rate minus false-positive rate over every threshold) of an attacker who knows a
//!   register person's quasi-identifiers and scores them by the release persons per look-alike in
//!   the classes they agree with;
//! - trajectory uniqueness (rule 72.6): per event table with a code and a date column, the share of
//!   persons whose set of (date, code) events is unique in that table ([`unique_trajectories`]);
//!   the report keeps each table's share and the highest;
//! - cross-release linkability (rule 72.7, [`cross_release_linkability`]): two releases brought to
//!   a common granularity (the finer side's values coarsened to the values the other side holds)
//!   and joined on every non-pseudonym value a person carries (persons row and event rows),
//!   counting persons of the first release matched to exactly one person of the second.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

pub(crate) use tokumei_model::register::agrees;
pub use tokumei_model::register::RegisterPerson;
use tokumei_model::register::{
    self, Class, ClassFinder, RegisterCounts, RegisterEngine, RegisterError, RegisterJob,
};

use crate::checks::Table;

/// Figures of the battery.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReidReport {
    /// Persons in the release.
    pub persons: usize,
    /// Quasi-identifier columns used.
    pub quasi_identifiers: Vec<String>,
    /// Smallest equivalence class in the release.
    pub min_class: usize,
    /// Share of release persons unique in the release.
    pub sample_unique: f64,
    /// Highest prosecutor risk (1 / smallest class).
    pub prosecutor_max: f64,
    /// Average prosecutor risk (classes / persons).
    pub prosecutor_avg: f64,
    /// Highest journalist risk (1 / smallest matching group in the register).
    pub journalist_max: f64,
    /// Marketer risk: expected share of release persons an intruder matching on the register
    /// re-identifies correctly (1 / group size, averaged).
    pub marketer: f64,
    /// Share of release persons matching no register person.
    pub unmatched: f64,
    /// With a truth key: the share of release persons the simulated attack re-identifies correctly
    /// (expected, the intruder picking uniformly among the register persons matching).
    pub attack_success: Option<f64>,
    /// With a truth key: the membership-inference advantage the release adds over the base rate
    /// public statistics give, `max(0, release − public)` of the two attackers' advantages below.
    /// An attacker's advantage is the highest (true-positive rate − false-positive rate) over every
    /// threshold of claiming "member" for the register persons whose score reaches it; the release
    /// attacker scores a person by the highest release persons / register look-alikes over the
    /// released classes they agree with. `None` without a truth key or when the register has no
    /// member or no non-member.
    pub membership_advantage: Option<f64>,
    /// The advantage of the attacker holding the release alone (before subtracting what public
    /// statistics tell).
    pub membership_advantage_release: Option<f64>,
    /// The advantage of an attacker holding only public statistics: the membership rate per sex and
    /// 10-year age band.
    pub membership_advantage_public: Option<f64>,
    /// With a truth key: the share of register persons who are in the release (members).
    pub membership_base_rate: Option<f64>,
    /// The highest share, over the event tables with a code and a date column, of the persons
    /// (with an event in the table) whose trajectory (set of date and code) is unique in it.
    pub trajectory_unique: Option<f64>,
    /// That share per event table with a code and a date column.
    pub trajectory_unique_by_table: BTreeMap<String, f64>,
}

/// A person's events as (date, code), sorted and deduplicated.
type Trajectory<'a> = Vec<(Option<&'a str>, Option<&'a str>)>;

/// The trajectories of an event table's persons (keyed by pseudonym), or `None` when the table has
/// no code column (`icd10`, else `code`) or no date column (`date`, else `start_date`).
fn trajectories(t: &Table) -> Option<BTreeMap<&str, Trajectory<'_>>> {
    let code = t.col("icd10").or_else(|| t.col("code"))?;
    let date = t.col("date").or_else(|| t.col("start_date"))?;
    let mut traj: BTreeMap<&str, Trajectory> = BTreeMap::new();
    for row in &t.rows {
        if let Some(p) = row.first().and_then(|p| p.as_deref()) {
            traj.entry(p).or_default().push((
                row.get(date).and_then(|v| v.as_deref()),
                row.get(code).and_then(|v| v.as_deref()),
            ));
        }
    }
    for v in traj.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    Some(traj)
}

/// Uniqueness of a person's quasi-identifiers together with their trajectory in one event table: the
/// number of persons with at least one event in `t` and the pseudonyms (sorted) of those whose
/// (persons row without the pseudonym, trajectory) no other person shares. It bounds the trajectory
/// uniqueness of [`unique_trajectories`] (a unique trajectory is unique with any quasi-identifiers)
/// and what joining two releases of the same persons on every value finds through this table.
pub fn unique_records(persons: &Table, t: &Table) -> Option<(usize, Vec<String>)> {
    let traj = trajectories(t)?;
    let qi: HashMap<&str, &[Option<String>]> = persons
        .rows
        .iter()
        .filter_map(|r| Some((r.first()?.as_deref()?, r.get(1..).unwrap_or(&[]))))
        .collect();
    let empty: &[Option<String>] = &[];
    type Key<'a> = (&'a [Option<String>], &'a Trajectory<'a>);
    let keys: Vec<(&str, Key)> = traj
        .iter()
        .map(|(p, v)| (*p, (qi.get(p).copied().unwrap_or(empty), v)))
        .collect();
    let mut count: HashMap<&Key, usize> = HashMap::new();
    for (_, k) in &keys {
        *count.entry(k).or_default() += 1;
    }
    let unique = keys
        .iter()
        .filter(|(_, k)| count.get(k).copied() == Some(1))
        .map(|(p, _)| (*p).to_string())
        .collect();
    Some((traj.len(), unique))
}

/// Trajectory uniqueness in one event table: the number of persons with at least one event in it
/// and the pseudonyms (sorted) of those whose trajectory, the set of (date, code) of their events,
/// no other person of the table shares. The code column is `icd10`, else `code`; the date column
/// `date`, else `start_date`. `None` when the table has no code or no date column.
pub fn unique_trajectories(t: &Table) -> Option<(usize, Vec<String>)> {
    // Without quasi-identifiers, a record is its trajectory.
    unique_records(&Table::default(), t)
}

/// The membership-inference advantage of per-person scores (see [`register::advantage`]).
fn advantage(scored: &[(f64, bool)]) -> Option<f64> {
    let scores = register::score_counts(
        scored
            .iter()
            .fold(HashMap::<u64, (u64, u64)>::new(), |mut by, (s, m)| {
                let e = by.entry(s.to_bits()).or_default();
                if *m {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
                by
            })
            .into_iter()
            .map(|(s, (m, o))| (s, m, o)),
    );
    register::advantage(&scores)
}

/// The limits a release's battery is held to (a preset's re-identification thresholds); `None` leaves
/// a figure unchecked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Highest prosecutor risk.
    pub prosecutor: f64,
    /// Highest linkage-attack success (the marketer risk without a truth key).
    pub linkage: f64,
    /// Highest membership-inference advantage.
    pub membership: Option<f64>,
    /// Highest share of persons with a unique trajectory in any event table.
    pub trajectory: Option<f64>,
}

/// One threshold held against one figure of the battery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdCheck {
    /// The figure (`prosecutor risk`, `unique trajectories in diagnoses`).
    pub figure: String,
    /// Its value.
    pub value: f64,
    /// The highest value allowed.
    pub limit: f64,
}

impl ThresholdCheck {
    /// Whether the figure is within its limit.
    pub fn passed(&self) -> bool {
        !matches!(
            self.value.partial_cmp(&self.limit),
            Some(std::cmp::Ordering::Greater)
        )
    }

    /// The breach, described.
    pub fn breach(&self) -> String {
        format!("{} {:.4} (at most {})", self.figure, self.value, self.limit)
    }
}

impl ReidReport {
    /// Every threshold given, held against its figure (a figure the battery could not compute, or a
    /// threshold not given, is left out).
    pub fn checks(&self, t: &Thresholds) -> Vec<ThresholdCheck> {
        let check = |figure: &str, value: f64, limit: f64| ThresholdCheck {
            figure: figure.to_string(),
            value,
            limit,
        };
        let mut checks = vec![
            check("prosecutor risk", self.prosecutor_max, t.prosecutor),
            check(
                "linkage-attack success",
                self.attack_success.unwrap_or(self.marketer),
                t.linkage,
            ),
        ];
        if let (Some(max), Some(a)) = (t.membership, self.membership_advantage) {
            checks.push(check("membership-inference advantage", a, max));
        }
        if let Some(max) = t.trajectory {
            for (table, share) in &self.trajectory_unique_by_table {
                checks.push(check(
                    &format!("unique trajectories in {table}"),
                    *share,
                    max,
                ));
            }
        }
        checks
    }

    /// Every figure above its threshold, described (empty when the release passes).
    pub fn breaches(&self, t: &Thresholds) -> Vec<String> {
        self.checks(t)
            .iter()
            .filter(|c| !c.passed())
            .map(ThresholdCheck::breach)
            .collect()
    }
}

/// A row's value in a column (`None` when empty or out of range).
fn value(row: &[Option<String>], i: usize) -> Option<&str> {
    row.get(i).and_then(|v| v.as_deref())
}

/// Runs the battery in this process. `end` is the period end the release's ages refer to; `truth`
/// maps release pseudonyms to register ids when known (tests on synthetic data, or the vault's person
/// ids in a build).
pub fn run(
    persons: &Table,
    events: &[Table],
    register: &[RegisterPerson],
    end: NaiveDate,
    truth: Option<&HashMap<String, String>>,
) -> ReidReport {
    let in_process = |job: &RegisterJob| Ok::<_, std::convert::Infallible>(register::counts(job));
    let Ok(r) = run_with(persons, events, register, end, truth, in_process);
    r
}

/// Runs the battery with the register's counts on `engine` (in this process when none): the
/// figures of [`run`].
pub fn run_on(
    engine: Option<&dyn RegisterEngine>,
    persons: &Table,
    events: &[Table],
    register: &[RegisterPerson],
    end: NaiveDate,
    truth: Option<&HashMap<String, String>>,
) -> Result<ReidReport, RegisterError> {
    match engine {
        Some(e) => run_with(persons, events, register, end, truth, |job| e.counts(job)),
        None => Ok(run(persons, events, register, end, truth)),
    }
}

/// The battery, the register's counts taken by `count`.
fn run_with<E>(
    persons: &Table,
    events: &[Table],
    register: &[RegisterPerson],
    end: NaiveDate,
    truth: Option<&HashMap<String, String>>,
    count: impl FnOnce(&RegisterJob) -> Result<RegisterCounts, E>,
) -> Result<ReidReport, E> {
    let qis: Vec<(usize, String)> = persons
        .columns
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, c)| (i, c.clone()))
        .collect();
    let mut r = ReidReport {
        persons: persons.rows.len(),
        quasi_identifiers: qis.iter().map(|(_, c)| c.clone()).collect(),
        ..Default::default()
    };
    trajectory_uniqueness(&mut r, events);
    // Membership: the register persons a truth key names.
    let members = membership(register, truth);
    if let Some(m) = &members {
        if !register.is_empty() {
            r.membership_base_rate =
                Some(m.iter().filter(|x| **x).count() as f64 / register.len() as f64);
        }
    }
    if persons.rows.is_empty() {
        if let Some(m) = &members {
            let scored: Vec<(f64, bool)> = m.iter().map(|x| (0.0, *x)).collect();
            r.membership_advantage = advantage(&scored);
        }
        return Ok(r);
    }
    let (classes, release) = released_classes(persons, &qis);
    class_risks(&mut r, &release);
    let finder = ClassFinder::new(&r.quasi_identifiers, classes, end);
    let counts = count(&RegisterJob {
        finder: &finder,
        release: &release,
        register,
        members: members.as_deref(),
    })?;
    register_matches(
        &mut r,
        persons,
        &qis,
        &finder,
        &counts.groups,
        register,
        truth,
    );
    if let (Some(m), Some(scores)) = (&members, &counts.scores) {
        membership_inference(&mut r, scores, register, m, end);
    }
    Ok(r)
}

/// Trajectory uniqueness per event table with a code and a date column, and the highest.
fn trajectory_uniqueness(r: &mut ReidReport, events: &[Table]) {
    for t in events {
        if let Some((n, unique)) = unique_trajectories(t) {
            let share = unique.len() as f64 / n.max(1) as f64;
            let e = r
                .trajectory_unique_by_table
                .entry(t.name.clone())
                .or_default();
            *e = e.max(share);
        }
    }
    r.trajectory_unique = r
        .trajectory_unique_by_table
        .values()
        .copied()
        .reduce(f64::max);
}

/// With a truth key: whether each register person is in the release.
fn membership(
    register: &[RegisterPerson],
    truth: Option<&HashMap<String, String>>,
) -> Option<Vec<bool>> {
    truth.map(|t| {
        let ids: std::collections::HashSet<&str> = t.values().map(String::as_str).collect();
        register
            .iter()
            .map(|p| ids.contains(p.id.as_str()))
            .collect()
    })
}

/// The released classes (in order) with their persons.
fn released_classes(persons: &Table, qis: &[(usize, String)]) -> (Vec<Class>, Vec<u64>) {
    let mut classes: BTreeMap<Class, u64> = BTreeMap::new();
    for row in &persons.rows {
        let key: Class = qis
            .iter()
            .map(|(i, _)| value(row, *i).map(str::to_string))
            .collect();
        *classes.entry(key).or_default() += 1;
    }
    classes.into_iter().unzip()
}

/// k, sample uniqueness and prosecutor risk of the release's persons: the anonymization engine's
/// risk figures over the released classes.
fn class_risks(r: &mut ReidReport, sizes: &[u64]) {
    let risk = tokumei_anonymize::risk_summary(sizes, None, None, 1.0);
    r.min_class = risk
        .class_sizes
        .first()
        .map_or(0, |&(size, _)| size as usize);
    r.sample_unique = risk.sample_uniques;
    r.prosecutor_max = risk.prosecutor_max;
    r.prosecutor_avg = risk.prosecutor_avg;
}

/// What an intruder matching the release persons on the register achieves: marketer and journalist
/// risk, the share matching nobody and, with a truth key, the simulated attack's expected success
/// (the true person is among the look-alikes when their register entry agrees with the class).
fn register_matches(
    r: &mut ReidReport,
    persons: &Table,
    qis: &[(usize, String)],
    finder: &ClassFinder,
    groups: &[u64],
    register: &[RegisterPerson],
    truth: Option<&HashMap<String, String>>,
) {
    let number: HashMap<&[Option<String>], usize> = finder
        .classes()
        .iter()
        .enumerate()
        .map(|(n, c)| (c.as_slice(), n))
        .collect();
    let mut by_id: HashMap<&str, Vec<&RegisterPerson>> = HashMap::new();
    if truth.is_some() {
        for p in register {
            by_id.entry(p.id.as_str()).or_default().push(p);
        }
    }
    // Per class: its release persons and those the attack finds among the look-alikes. The sums
    // run over the classes in their order, so the figures do not depend on the rows' order (the
    // release's pseudonyms).
    let mut tally = vec![(0u64, 0u64); groups.len()];
    let mut unmatched = 0usize;
    for row in &persons.rows {
        let key: Class = qis
            .iter()
            .map(|(i, _)| value(row, *i).map(str::to_string))
            .collect();
        let n = number.get(key.as_slice()).copied();
        let g = n.and_then(|n| groups.get(n)).copied().unwrap_or(0);
        let Some(n) = n.filter(|_| g > 0) else {
            unmatched += 1;
            continue;
        };
        let id = truth.and_then(|t| value(row, 0).and_then(|p| t.get(p)));
        let found = id
            .and_then(|id| by_id.get(id.as_str()))
            .is_some_and(|ps| ps.iter().any(|p| finder.agrees_with(n, p)));
        tally[n].0 += 1;
        tally[n].1 += u64::from(found);
    }
    let (mut marketer, mut success, mut min_group) = (0.0, 0.0, u64::MAX);
    for ((k, found), g) in tally.iter().zip(groups).filter(|((k, _), _)| *k > 0) {
        min_group = min_group.min(*g);
        marketer += *k as f64 / *g as f64;
        success += *found as f64 / *g as f64;
    }
    let n = persons.rows.len() as f64;
    r.marketer = marketer / n;
    r.unmatched = unmatched as f64 / n;
    r.journalist_max = if min_group == u64::MAX {
        0.0
    } else {
        1.0 / min_group as f64
    };
    r.attack_success = truth.map(|_| success / n);
}

/// Membership inference: a register person's score is the highest |K| / |G(K)| over the released
/// classes K they agree with (0 when none, see [`register::score`]); the advantage the release adds
/// is measured against what public statistics already tell.
fn membership_inference(
    r: &mut ReidReport,
    scores: &[register::ScoreCount],
    register: &[RegisterPerson],
    m: &[bool],
    end: NaiveDate,
) {
    r.membership_advantage_release = register::advantage(scores);
    r.membership_advantage_public = public_advantage(register, m, end);
    r.membership_advantage = match (
        r.membership_advantage_release,
        r.membership_advantage_public,
    ) {
        (Some(a), Some(b)) => Some((a - b).max(0.0)),
        (a, _) => a,
    };
}

/// What public statistics already tell: the advantage of scoring a register person by the
/// membership rate of their sex and 10-year age band (the cells of national prevalence tables).
fn public_advantage(register: &[RegisterPerson], m: &[bool], end: NaiveDate) -> Option<f64> {
    let cell = |p: &RegisterPerson| {
        (
            p.sex.clone(),
            p.birth
                .map(|b| (tokumei_model::age_on(b, end).max(0) / 10).min(9)),
        )
    };
    let mut rate: HashMap<(Option<String>, Option<i32>), (usize, usize)> = HashMap::new();
    for (p, &is_member) in register.iter().zip(m) {
        let e = rate.entry(cell(p)).or_default();
        e.0 += usize::from(is_member);
        e.1 += 1;
    }
    let public: Vec<(f64, bool)> = register
        .iter()
        .zip(m)
        .map(|(p, &is_member)| {
            let (k, n) = rate[&cell(p)];
            (k as f64 / n as f64, is_member)
        })
        .collect();
    advantage(&public)
}

/// Cross-release linkability (rule 72.7) of release A to release B.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Linkability {
    /// Persons in A.
    pub persons_a: usize,
    /// Persons in B.
    pub persons_b: usize,
    /// Persons of A whose values are unique in A and match exactly one person of B.
    pub linked: usize,
    /// `linked / persons_a`.
    pub share: f64,
    /// With both truth keys: the links joining two pseudonyms of the same register person.
    pub correct: Option<usize>,
    /// With both truth keys: `correct / persons_a`.
    pub correct_share: Option<f64>,
    /// Whether joining the two releases can tell anything neither tells alone: false when both
    /// hold the same tables and columns at the same granularity (a release built again of the
    /// same application and cohort), so that a linked person's joined record is the record each
    /// release already holds. Such a join is reported but is no breach.
    pub adds_information: bool,
}

impl Linkability {
    /// The limit on the linked share held against it, for the release named.
    pub fn check(&self, max: f64, against: &str) -> ThresholdCheck {
        ThresholdCheck {
            figure: format!("persons linked one-to-one to release {against}"),
            value: self.share,
            limit: max,
        }
    }

    /// The breach of a limit on the linked share, described, against the release named (none
    /// when the join adds no information).
    pub fn breach(&self, max: f64, against: &str) -> Option<String> {
        let c = self.check(max, against);
        (self.adds_information && !c.passed()).then(|| c.breach())
    }
}

/// How a column's values nest, for bringing two releases to a common granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nesting {
    /// Codes and areas: a coarser value is a prefix (ICD-10 `E11` holds `E119`, prefecture `02`
    /// holds municipality `022012`).
    Prefix,
    /// Numbers, bands and dates: a coarser value is a wider interval (`40-49` holds `42`, `1953`
    /// holds `1953-04`, which holds `1953-04-12`; `90+` holds `93`).
    Interval,
}

fn nesting(table: &str, column: &str) -> Nesting {
    if column == "municipality"
        || column == "prefecture"
        || crate::checks::CODE_COLUMNS.contains(&(table, column))
    {
        Nesting::Prefix
    } else {
        Nesting::Interval
    }
}

/// The closed interval a released value stands for: days for dates (`YYYY-MM-DD`, `YYYY-MM`,
/// quarters `YYYY-Qn`, `YYYY`, year bands `YYYY-YYYY`), plain numbers for ages, age bands and top codes (`N`, `A-B`,
/// `N+`, at most three digits each). `None` for anything else.
fn interval(v: &str) -> Option<(i64, i64)> {
    if !v.is_ascii() {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let day = |y: i32, m: u32, d: u32| {
        NaiveDate::from_ymd_opt(y, m, d).map(|x| i64::from(x.num_days_from_ce()))
    };
    let year = |y: &str| -> Option<(i64, i64)> {
        let y: i32 = y.parse().ok()?;
        Some((day(y, 1, 1)?, day(y, 12, 31)?))
    };
    let parts: Vec<&str> = v.split('-').collect();
    match parts.as_slice() {
        [y, m, d]
            if y.len() == 4
                && m.len() == 2
                && d.len() == 2
                && [y, m, d].iter().all(|p| digits(p)) =>
        {
            let x = day(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
            Some((x, x))
        }
        [y, m] if y.len() == 4 && m.len() == 2 && digits(y) && digits(m) => {
            let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
            let first = day(y, m, 1)?;
            let next = if m == 12 {
                day(y + 1, 1, 1)?
            } else {
                day(y, m + 1, 1)?
            };
            Some((first, next - 1))
        }
        [y, q] if y.len() == 4 && digits(y) && q.len() == 2 && q.starts_with('Q') => {
            let (y, q): (i32, u32) = (y.parse().ok()?, q[1..].parse().ok()?);
            let first = day(y, 3 * q.checked_sub(1).filter(|x| *x < 4)? + 1, 1)?;
            let next = if q == 4 {
                day(y + 1, 1, 1)?
            } else {
                day(y, 3 * q + 1, 1)?
            };
            Some((first, next - 1))
        }
        [a, b] if a.len() == 4 && b.len() == 4 && digits(a) && digits(b) => {
            let (lo, hi) = (year(a)?, year(b)?);
            (lo.0 <= hi.1).then_some((lo.0, hi.1))
        }
        [a, b] if a.len() <= 3 && b.len() <= 3 && digits(a) && digits(b) => {
            let (a, b): (i64, i64) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b).then_some((a, b))
        }
        [y] if y.len() == 4 && digits(y) => year(y),
        [n] if n.len() <= 3 && digits(n) => {
            let n: i64 = n.parse().ok()?;
            Some((n, n))
        }
        [n] => {
            let n = n.strip_suffix('+').filter(|n| n.len() <= 3 && digits(n))?;
            Some((n.parse().ok()?, i64::MAX))
        }
        _ => None,
    }
}

/// For one column of two releases: each value of `mine` that `theirs` does not hold verbatim,
/// mapped to the narrowest value of `theirs` holding it (when exactly one is narrowest), as an
/// attacker coarsens the finer release to the coarser one's granularity before joining.
fn coarsening<'a>(
    nesting: Nesting,
    mine: &std::collections::BTreeSet<&'a str>,
    theirs: &std::collections::BTreeSet<&'a str>,
) -> HashMap<&'a str, &'a str> {
    let mut out = HashMap::new();
    let finer = mine.iter().copied().filter(|x| !theirs.contains(x));
    match nesting {
        // The longest proper prefix that the other release holds.
        Nesting::Prefix => {
            for x in finer {
                let held = (1..x.len())
                    .rev()
                    .filter(|&n| x.is_char_boundary(n))
                    .find_map(|n| theirs.get(&x[..n]).copied());
                if let Some(y) = held {
                    out.insert(x, y);
                }
            }
        }
        // The shortest interval holding it, when no other is as short.
        Nesting::Interval => {
            let spans: Vec<(&str, (i64, i64))> = theirs
                .iter()
                .filter_map(|&y| interval(y).map(|s| (y, s)))
                .collect();
            for x in finer {
                let Some((c, d)) = interval(x) else {
                    continue;
                };
                let (mut best, mut tie): (Option<(&str, i64)>, bool) = (None, false);
                for &(y, (a, b)) in &spans {
                    if !(a <= c && d <= b && (a, b) != (c, d)) {
                        continue;
                    }
                    let width = b.saturating_sub(a);
                    match best {
                        Some((_, w)) if w < width => {}
                        Some((_, w)) if w == width => tie = true,
                        _ => {
                            best = Some((y, width));
                            tie = false;
                        }
                    }
                }
                if let (Some((y, _)), false) = (best, tie) {
                    out.insert(x, y);
                }
            }
        }
    }
    out
}

/// The attacker's reading of a column name: a birth year is a coarser birth year-month.
fn canonical(column: &str) -> &str {
    if column == "birth_year" {
        "birth_year_month"
    } else {
        column
    }
}

/// Two releases as an attacker aligns them before joining: `birth_year` read as
/// `birth_year_month`, and every value of a column both carry (persons columns, and the columns of
/// event tables of the same name) coarsened to the other release's granularity where the other
/// release holds it only coarser. Each column's value sets are read once, for both directions.
fn align(a: &[Table], b: &[Table]) -> (Vec<Table>, Vec<Table>) {
    /// (table, column, value → the coarser value the other release holds).
    type Maps<'x> = Vec<(usize, usize, HashMap<&'x str, &'x str>)>;
    fn values(t: &Table, i: usize) -> std::collections::BTreeSet<&str> {
        t.rows
            .iter()
            .filter_map(|r| r.get(i).and_then(|v| v.as_deref()))
            .collect()
    }
    let (mut maps_a, mut maps_b): (Maps, Maps) = (Vec::new(), Vec::new());
    for (ti, t) in a.iter().enumerate() {
        // The persons table pairs with the persons table, event tables by name.
        let other = if ti == 0 {
            b.first().map(|u| (0, u))
        } else {
            b.iter().enumerate().skip(1).find(|(_, u)| u.name == t.name)
        };
        let Some((ui, u)) = other else { continue };
        for (ci, c) in t.columns.iter().enumerate().skip(1) {
            let Some(oi) = u
                .columns
                .iter()
                .skip(1)
                .position(|d| canonical(d) == canonical(c))
                .map(|i| i + 1)
            else {
                continue;
            };
            let (va, vb) = (values(t, ci), values(u, oi));
            let n = nesting(&t.name, canonical(c));
            let (ma, mb) = (coarsening(n, &va, &vb), coarsening(n, &vb, &va));
            if !ma.is_empty() {
                maps_a.push((ti, ci, ma));
            }
            if !mb.is_empty() {
                maps_b.push((ui, oi, mb));
            }
        }
    }
    let apply = |tables: &[Table], maps: &Maps| -> Vec<Table> {
        tables
            .iter()
            .enumerate()
            .map(|(ti, t)| {
                let mut t = t.clone();
                for c in t.columns.iter_mut() {
                    *c = canonical(c).to_string();
                }
                for (_, ci, map) in maps.iter().filter(|(mt, _, _)| *mt == ti) {
                    for row in t.rows.iter_mut() {
                        if let Some(v) = row.get_mut(*ci) {
                            if let Some(y) = v.as_deref().and_then(|x| map.get(x)).copied() {
                                *v = Some(y.to_string());
                            }
                        }
                    }
                }
                t
            })
            .collect()
    };
    (apply(a, &maps_a), apply(b, &maps_b))
}

/// A person's values in one release: their persons-row values (the shared persons columns) and the
/// sorted multiset of their event rows (the table's shared columns, tagged with the table).
type LinkKey<'a> = (Vec<Option<&'a str>>, Vec<(&'a str, Vec<Option<&'a str>>)>);

/// The link keys of a release's persons, in persons-table order, with their pseudonyms. `shared`
/// names the event tables joined and, for each, the columns both releases carry.
fn link_keys<'a>(
    tables: &'a [Table],
    person_columns: &[&str],
    shared: &[(&str, Vec<&str>)],
) -> Vec<(Option<&'a str>, LinkKey<'a>)> {
    let Some(persons) = tables.first() else {
        return Vec::new();
    };
    let cols: Vec<Option<usize>> = person_columns.iter().map(|c| persons.col(c)).collect();
    let mut keys: Vec<(Option<&str>, LinkKey)> = persons
        .rows
        .iter()
        .map(|row| {
            let values = cols
                .iter()
                .map(|i| i.and_then(|i| row.get(i)).and_then(|v| v.as_deref()))
                .collect();
            (row.first().and_then(|v| v.as_deref()), (values, Vec::new()))
        })
        .collect();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, (p, _)) in keys.iter().enumerate() {
        if let Some(p) = p {
            index.entry(*p).or_insert(i);
        }
    }
    for t in tables.iter().skip(1) {
        let Some((_, columns)) = shared.iter().find(|(n, _)| *n == t.name) else {
            continue;
        };
        let idx: Vec<Option<usize>> = columns.iter().map(|c| t.col(c)).collect();
        for row in &t.rows {
            let Some(&i) = row
                .first()
                .and_then(|p| p.as_deref())
                .and_then(|p| index.get(p))
            else {
                continue;
            };
            let values = idx
                .iter()
                .map(|c| c.and_then(|c| row.get(c)).and_then(|v| v.as_deref()))
                .collect();
            keys[i].1 .1.push((t.name.as_str(), values));
        }
    }
    for (_, (_, ev)) in keys.iter_mut() {
        ev.sort_unstable();
    }
    keys
}

/// Cross-release linkability (rule 72.7): an attacker joins two releases on every value a person
/// carries but the pseudonym. `a[0]` and `b[0]` are the persons tables (column 0 the pseudonym), the
/// rest event tables. The attacker first brings the two releases to a common granularity: a value
/// one release holds only coarser (a birth year against a birth year-month, a prefecture against a
/// municipality, a 3-character ICD-10 code against a 4-character one, an age band against an age,
/// a year against a month) is coarsened to it on the finer side. A person's key is then their
/// values in the persons columns both releases have (by name, in A's order) and the sorted
/// multiset of their rows, over the columns both releases have, in the event tables both have
/// under the same name. A person of A is linked when their key is unique in A and matches exactly
/// one person of B. With both truth keys (pseudonym → register id), a link is correct when the two
/// pseudonyms map to the same register id.
pub fn cross_release_linkability(
    a: &[Table],
    b: &[Table],
    truth_a: Option<&HashMap<String, String>>,
    truth_b: Option<&HashMap<String, String>>,
) -> Linkability {
    let same_shape = a.len() == b.len()
        && a.iter().all(|t| {
            b.iter()
                .any(|u| u.name == t.name && u.columns[1..] == t.columns[1..])
        });
    let (aligned_a, aligned_b) = align(a, b);
    let adds_information = !(same_shape && aligned_a == a && aligned_b == b);
    let (a, b) = (aligned_a.as_slice(), aligned_b.as_slice());
    let person_columns: Vec<&str> = match (a.first(), b.first()) {
        (Some(pa), Some(pb)) => pa
            .columns
            .iter()
            .skip(1)
            .filter(|c| pb.columns.iter().skip(1).any(|d| d == *c))
            .map(String::as_str)
            .collect(),
        _ => Vec::new(),
    };
    let shared: Vec<(&str, Vec<&str>)> = a
        .iter()
        .skip(1)
        .filter_map(|t| {
            let u = b.iter().skip(1).find(|u| u.name == t.name)?;
            let columns: Vec<&str> = t
                .columns
                .iter()
                .skip(1)
                .filter(|c| u.columns.iter().skip(1).any(|d| d == *c))
                .map(String::as_str)
                .collect();
            (!columns.is_empty()).then_some((t.name.as_str(), columns))
        })
        .collect();
    let keys_a = link_keys(a, &person_columns, &shared);
    let keys_b = link_keys(b, &person_columns, &shared);
    let mut count_a: HashMap<&LinkKey, usize> = HashMap::new();
    for (_, k) in &keys_a {
        *count_a.entry(k).or_default() += 1;
    }
    let mut in_b: HashMap<&LinkKey, (usize, Option<&str>)> = HashMap::new();
    for (p, k) in &keys_b {
        let e = in_b.entry(k).or_insert((0, *p));
        e.0 += 1;
    }
    let both = truth_a.zip(truth_b);
    let (mut linked, mut correct) = (0usize, 0usize);
    for (p, k) in &keys_a {
        if count_a.get(k).copied() != Some(1) {
            continue;
        }
        let Some((1, q)) = in_b.get(k).copied() else {
            continue;
        };
        linked += 1;
        if let Some((ta, tb)) = both {
            let ida = p.and_then(|p| ta.get(p));
            let idb = q.and_then(|q| tb.get(q));
            if ida.is_some() && ida == idb {
                correct += 1;
            }
        }
    }
    let persons_a = keys_a.len();
    let share = |x: usize| x as f64 / persons_a.max(1) as f64;
    Linkability {
        persons_a,
        persons_b: keys_b.len(),
        linked,
        share: share(linked),
        correct: both.map(|_| correct),
        correct_share: both.map(|_| share(correct)),
        adds_information,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn register() -> Vec<RegisterPerson> {
        (0..40)
            .map(|i| RegisterPerson {
                id: format!("p{i}"),
                sex: Some(if i % 2 == 0 { "M" } else { "F" }.into()),
                birth: Some(d("1950-01-01") + chrono::Days::new(i * 100)),
                municipality: Some(if i < 20 { "022012" } else { "022021" }.into()),
            })
            .collect()
    }

    #[test]
    fn exact_quasi_identifiers_are_re_identified_and_bands_protect() {
        let reg = register();
        let end = d("2024-03-31");
        let truth: HashMap<String, String> = (0..40)
            .map(|i| (format!("r{i}"), format!("p{i}")))
            .collect();
        let exact = table(
            "persons",
            &["pseudonym", "sex", "birth_year_month", "municipality"],
            reg.iter()
                .enumerate()
                .map(|(i, p)| exact_row(format!("r{i}"), p))
                .collect(),
        );
        let r = run(&exact, &[], &reg, end, Some(&truth));
        assert!(r.attack_success.expect("truth") > 0.9, "{r:?}");
        let banded = table(
            "persons",
            &["pseudonym", "sex", "age", "municipality"],
            reg.iter()
                .enumerate()
                .map(|(i, p)| {
                    row(&[
                        &format!("r{i}"),
                        p.sex.as_deref().unwrap_or(""),
                        "60-79",
                        "02",
                    ])
                })
                .collect(),
        );
        let r = run(&banded, &[], &reg, end, Some(&truth));
        assert!(
            (r.attack_success.expect("truth") - 0.05).abs() < 1e-9,
            "{r:?}"
        );
        assert_eq!(r.min_class, 20);
        assert!((r.prosecutor_max - 0.05).abs() < 1e-12);
    }

    fn table(name: &str, columns: &[&str], rows: Vec<Vec<Option<String>>>) -> Table {
        Table {
            name: name.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        }
    }

    fn row(values: &[&str]) -> Vec<Option<String>> {
        values
            .iter()
            .map(|v| (!v.is_empty()).then(|| v.to_string()))
            .collect()
    }

    fn exact_row(pseudonym: String, p: &RegisterPerson) -> Vec<Option<String>> {
        let b = p.birth.expect("birth");
        vec![
            Some(pseudonym),
            p.sex.clone(),
            Some(format!("{:04}-{:02}", b.year(), b.month())),
            p.municipality.clone(),
        ]
    }

    #[test]
    fn membership_advantage_is_one_when_the_release_is_a_municipality() {
        let reg = register();
        let end = d("2024-03-31");
        // Every register person of 022012 (p0..p19) and no one else.
        let truth: HashMap<String, String> = (0..20)
            .map(|i| (format!("r{i}"), format!("p{i}")))
            .collect();
        let exact = table(
            "persons",
            &["pseudonym", "sex", "birth_year_month", "municipality"],
            reg.iter()
                .take(20)
                .enumerate()
                .map(|(i, p)| exact_row(format!("r{i}"), p))
                .collect(),
        );
        let r = run(&exact, &[], &reg, end, Some(&truth));
        assert!(
            (r.membership_advantage_release.expect("advantage") - 1.0).abs() < 1e-12,
            "{r:?}"
        );
        // The members are also the older half of the register, which public statistics by age
        // band partly tell; the release's own advantage is what is left.
        let public = r.membership_advantage_public.expect("public");
        assert!(public > 0.0 && public < 1.0, "{r:?}");
        assert!(
            (r.membership_advantage.expect("advantage") - (1.0 - public)).abs() < 1e-12,
            "{r:?}"
        );
        assert!((r.membership_base_rate.expect("base rate") - 0.5).abs() < 1e-12);
        // Coarse classes still give the municipality away.
        let coarse = table(
            "persons",
            &["pseudonym", "sex", "age", "municipality"],
            reg.iter()
                .take(20)
                .enumerate()
                .map(|(i, p)| {
                    vec![
                        Some(format!("r{i}")),
                        p.sex.clone(),
                        Some("60-79".into()),
                        p.municipality.clone(),
                    ]
                })
                .collect(),
        );
        let r = run(&coarse, &[], &reg, end, Some(&truth));
        assert!(
            r.membership_advantage_release.expect("advantage") > 0.99,
            "{r:?}"
        );
        // Without a truth key there is no membership figure.
        let r = run(&coarse, &[], &reg, end, None);
        assert_eq!(r.membership_advantage, None);
        assert_eq!(r.membership_base_rate, None);
    }

    #[test]
    fn membership_advantage_is_small_for_an_alternating_release_with_coarse_classes() {
        let end = d("2024-03-31");
        let reg: Vec<RegisterPerson> = (0..200u64)
            .map(|i| RegisterPerson {
                id: format!("p{i}"),
                sex: Some(if (i / 2) % 2 == 0 { "M" } else { "F" }.into()),
                birth: Some(d("1940-01-01") + chrono::Days::new(i * 97)),
                municipality: Some(["022012", "022021", "022039"][(i % 3) as usize].into()),
            })
            .collect();
        let band = |p: &RegisterPerson| {
            let a = tokumei_model::age_on(p.birth.expect("birth"), end);
            let lo = a / 10 * 10;
            format!("{lo}-{}", lo + 9)
        };
        let released: Vec<&RegisterPerson> = reg.iter().step_by(2).collect();
        let truth: HashMap<String, String> = released
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("r{i}"), p.id.clone()))
            .collect();
        let persons = table(
            "persons",
            &["pseudonym", "sex", "age", "prefecture"],
            released
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    vec![
                        Some(format!("r{i}")),
                        p.sex.clone(),
                        Some(band(p)),
                        Some("02".into()),
                    ]
                })
                .collect(),
        );
        let r = run(&persons, &[], &reg, end, Some(&truth));
        let adv = r.membership_advantage.expect("advantage");
        assert!((0.0..=0.1).contains(&adv), "{r:?}");
        assert!((r.membership_base_rate.expect("base rate") - 0.5).abs() < 1e-12);
        // The same persons with exact quasi-identifiers: every member scores 1, every
        // non-member 0 (nobody shares a birth month and municipality here).
        let exact = table(
            "persons",
            &["pseudonym", "sex", "birth_year_month", "municipality"],
            released
                .iter()
                .enumerate()
                .map(|(i, p)| exact_row(format!("r{i}"), p))
                .collect(),
        );
        let r = run(&exact, &[], &reg, end, Some(&truth));
        assert!(r.membership_advantage.expect("advantage") > 0.9, "{r:?}");
    }

    #[test]
    fn advantage_groups_ties_and_needs_both_sides() {
        // Two members and two non-members tied at 0.5: no threshold separates them.
        let tied = [(0.5, true), (0.5, false), (0.5, true), (0.5, false)];
        assert_eq!(advantage(&tied), Some(0.0));
        let split = [(0.2, false), (0.9, true), (0.5, true), (0.5, false)];
        assert_eq!(advantage(&split), Some(0.5));
        assert_eq!(advantage(&[(1.0, true)]), None);
        assert_eq!(advantage(&[(1.0, false)]), None);
    }

    #[test]
    fn trajectories_are_measured_per_coded_table() {
        let diagnoses = table(
            "diagnoses",
            &["pseudonym", "icd10", "code", "date"],
            vec![
                // r0 and r1 share their trajectory through icd10 (preferred over code).
                row(&["r0", "A00", "111", "2020-01"]),
                row(&["r1", "A00", "222", "2020-01"]),
                // r2's duplicate rows count once; r2 and r3 differ only in order: shared.
                row(&["r2", "B00", "333", "2020-02"]),
                row(&["r2", "B00", "333", "2020-02"]),
                row(&["r2", "C00", "333", "2020-03"]),
                row(&["r3", "C00", "333", "2020-03"]),
                row(&["r3", "B00", "333", "2020-02"]),
                // r4 is alone.
                row(&["r4", "A00", "111", "2020-02"]),
            ],
        );
        let (n, unique) = unique_trajectories(&diagnoses).expect("coded");
        assert_eq!(n, 5);
        assert_eq!(unique, vec!["r4".to_string()]);
        let prescriptions = table(
            "prescriptions",
            &["pseudonym", "code", "days", "date"],
            vec![
                row(&["r0", "610", "7", "2020-01"]),
                row(&["r1", "620", "7", "2020-01"]),
            ],
        );
        let encounters = table(
            "encounters",
            &["pseudonym", "setting", "start_date"],
            vec![row(&["r0", "O", "2020-01"])],
        );
        let undated = table(
            "procedures",
            &["pseudonym", "code"],
            vec![row(&["r0", "140"])],
        );
        assert_eq!(unique_trajectories(&encounters), None);
        assert_eq!(unique_trajectories(&undated), None);
        let persons = table(
            "persons",
            &["pseudonym", "sex"],
            (0..5).map(|i| row(&[&format!("r{i}"), "M"])).collect(),
        );
        let r = run(
            &persons,
            &[encounters, diagnoses, prescriptions, undated],
            &register(),
            d("2024-03-31"),
            None,
        );
        assert_eq!(
            r.trajectory_unique_by_table.keys().collect::<Vec<_>>(),
            ["diagnoses", "prescriptions"]
        );
        assert!((r.trajectory_unique_by_table["diagnoses"] - 0.2).abs() < 1e-12);
        assert!((r.trajectory_unique_by_table["prescriptions"] - 1.0).abs() < 1e-12);
        assert_eq!(r.trajectory_unique, Some(1.0));
        // No coded table: no trajectory figure.
        let r = run(&persons, &[], &register(), d("2024-03-31"), None);
        assert_eq!(r.trajectory_unique, None);
        assert!(r.trajectory_unique_by_table.is_empty());
    }

    /// A release of the register's 40 persons under `prefix` pseudonyms: persons 0 and 1 look
    /// the same and have no event, every third person from 3 on has diagnoses.
    fn release(prefix: &str, coarse_dates: bool) -> (Vec<Table>, HashMap<String, String>) {
        let reg = register();
        let mut persons: Vec<Vec<Option<String>>> = reg
            .iter()
            .enumerate()
            .map(|(i, p)| exact_row(format!("{prefix}{i}"), p))
            .collect();
        persons[1] = exact_row(format!("{prefix}1"), &reg[0]);
        let mut diagnoses = Vec::new();
        for i in (3..40).step_by(3) {
            for m in [1 + i % 12, 1 + (i * 5) % 12] {
                let date = if coarse_dates {
                    "2020".to_string()
                } else {
                    format!("2020-{m:02}")
                };
                diagnoses.push(row(&[&format!("{prefix}{i}"), "E11", &date]));
            }
        }
        // Another order of rows than the persons' order.
        diagnoses.reverse();
        persons.reverse();
        let truth = (0..40)
            .map(|i| (format!("{prefix}{i}"), format!("p{i}")))
            .collect();
        (
            vec![
                table(
                    "persons",
                    &["pseudonym", "sex", "birth_year_month", "municipality"],
                    persons,
                ),
                table("diagnoses", &["pseudonym", "icd10", "date"], diagnoses),
            ],
            truth,
        )
    }

    #[test]
    fn cross_release_links_the_unique_persons_of_identical_releases() {
        let (a, truth_a) = release("a", false);
        let (b, truth_b) = release("b", false);
        let l = cross_release_linkability(&a, &b, Some(&truth_a), Some(&truth_b));
        let unique = run(&a[0], &a[1..], &register(), d("2024-03-31"), None).sample_unique;
        assert_eq!((l.persons_a, l.persons_b), (40, 40));
        assert_eq!(l.linked, 38);
        assert!((l.share - unique).abs() < 1e-12, "{l:?} {unique}");
        assert_eq!(l.correct, Some(l.linked));
        assert_eq!(l.correct_share, Some(l.share));
        // Without both truth keys there is no correctness figure.
        let l = cross_release_linkability(&a, &b, Some(&truth_a), None);
        assert_eq!((l.linked, l.correct, l.correct_share), (38, None, None));
    }

    #[test]
    fn cross_release_brings_both_releases_to_the_coarser_granularity() {
        let (a, truth_a) = release("a", false);
        let (b, truth_b) = release("b", false);
        let (c, truth_c) = release("c", true);
        let exact = cross_release_linkability(&a, &b, Some(&truth_a), Some(&truth_b));
        // Months against years: the attacker cuts the months to years and links as many.
        let coarse = cross_release_linkability(&a, &c, Some(&truth_a), Some(&truth_c));
        assert_eq!(coarse.linked, exact.linked, "{coarse:?} {exact:?}");
        assert_eq!(coarse.correct, Some(coarse.linked));
        let back = cross_release_linkability(&c, &a, Some(&truth_c), Some(&truth_a));
        assert_eq!(back.linked, exact.linked, "{back:?}");
        // A birth year against a birth year-month (another column name, coarser values): the
        // year-month is cut to the year. Persons born in one year with the same sex and
        // municipality no longer tell apart by their persons row; the rest still link, more than
        // a join that ignored the birth.
        let mut years = c.clone();
        let bi = years[0].col("birth_year_month").expect("birth");
        years[0].columns[bi] = "birth_year".into();
        for row in years[0].rows.iter_mut() {
            if let Some(v) = row[bi].as_mut() {
                v.truncate(4);
            }
        }
        let by_year = cross_release_linkability(&a, &years, Some(&truth_a), Some(&truth_c));
        let mut no_birth = c.clone();
        no_birth[0].columns[bi] = "withheld".into();
        let without = cross_release_linkability(&a, &no_birth, None, None);
        assert_eq!(
            (by_year.linked, without.linked),
            (27, 0),
            "{by_year:?} {without:?}"
        );
        assert_eq!(by_year.correct, Some(by_year.linked));
        // An event table whose columns differ is joined on the columns both carry (the code).
        let mut d = c.clone();
        d[1].columns[2] = "month".into();
        let code_only = cross_release_linkability(&a, &d, None, None);
        assert_eq!(code_only.linked, 38);
    }

    /// Whether `coarsening` takes the finer value `inner` to `outer`, the other release's only value.
    fn holds(nesting: Nesting, outer: &str, inner: &str) -> bool {
        let mine = [inner].into_iter().collect();
        let theirs = [outer].into_iter().collect();
        coarsening(nesting, &mine, &theirs).get(inner) == Some(&outer)
    }

    #[test]
    fn released_values_nest_as_an_attacker_coarsens_them() {
        let i = Nesting::Interval;
        assert!(holds(i, "1953", "1953-04"));
        assert!(holds(i, "1953-04", "1953-04-12"));
        assert!(holds(i, "1950-1959", "1953"));
        assert!(holds(i, "1950-1954", "1953-04"));
        assert!(holds(i, "40-44", "42"));
        assert!(holds(i, "40-49", "40-44"));
        assert!(holds(i, "90+", "93"));
        assert!(!holds(i, "4", "42"));
        assert!(!holds(i, "1954", "1953-12"));
        assert!(!holds(i, "1953", "1953"));
        assert!(!holds(i, "M", "F"));
        let p = Nesting::Prefix;
        assert!(holds(p, "E11", "E119"));
        assert!(holds(p, "02", "022012"));
        assert!(!holds(p, "E12", "E119"));
        // Nothing odd is read as a date or a number, and nothing panics on it.
        for v in [
            "",
            "-",
            "1953-13",
            "1953-02-30",
            "２０２０",
            "１９５３-04",
            "+",
            "1000+",
            "9-1",
            "1959-1950",
        ] {
            assert_eq!(interval(v), None, "{v}");
        }
        assert_eq!(interval("90+"), Some((90, i64::MAX)));
        // The narrowest value holding a finer one is chosen; values held verbatim stay.
        let mine = ["1953-04", "1960-01", "1970-05"].into_iter().collect();
        let theirs = ["1953", "1950-1959", "1960-01", "1970-1979", "1970-1974"]
            .into_iter()
            .collect();
        let map = coarsening(i, &mine, &theirs);
        assert_eq!(map.get("1953-04"), Some(&"1953"));
        assert_eq!(map.get("1960-01"), None);
        assert_eq!(map.get("1970-05"), Some(&"1970-1974"));
    }

    #[test]
    fn a_linked_share_above_the_limit_is_a_breach_naming_the_release() {
        let l = Linkability {
            persons_a: 200,
            persons_b: 200,
            linked: 3,
            share: 0.015,
            adds_information: true,
            ..Default::default()
        };
        assert_eq!(l.breach(0.05, "R-1"), None);
        // The same share, joining two releases of the same shape: reported, no breach.
        let same = Linkability {
            adds_information: false,
            ..l.clone()
        };
        assert_eq!(same.breach(0.01, "R-1"), None);
        let b = l.breach(0.01, "R-1").expect("breach");
        assert!(b.contains("R-1") && b.contains("0.0150"), "{b}");
    }
}
