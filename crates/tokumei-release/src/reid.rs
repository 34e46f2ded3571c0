//! The re-identification test battery (RULES §10) on a release's persons table and event tables:
//! k and uniqueness, prosecutor / journalist / marketer risk against a population register, a
//! simulated linkage attack by an intruder holding that register (name, sex, birth date, address: only
//! sex, birth date and municipality can meet the release), and the uniqueness of event trajectories.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::checks::Table;

/// One person of a population register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterPerson {
    /// The register's id.
    pub id: String,
    /// `M` or `F`.
    pub sex: Option<String>,
    /// Birth date.
    pub birth: Option<NaiveDate>,
    /// Municipality code (6 digits).
    pub municipality: Option<String>,
}

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
    /// Share of persons whose trajectory (sequence of month and code) is unique in the release.
    pub trajectory_unique: Option<f64>,
}

/// A person's events as (month, code), sorted and deduplicated.
type Trajectory<'a> = Vec<(Option<&'a str>, Option<&'a str>)>;

/// Whether a register person agrees with a released (possibly generalized) value.
fn agrees(column: &str, value: &str, p: &RegisterPerson, end: NaiveDate) -> bool {
    let range = |v: &str| -> Option<(i32, i32)> {
        if let Some(lo) = v.strip_suffix('+') {
            return lo.parse().ok().map(|lo| (lo, i32::MAX));
        }
        match v.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => v.parse().ok().map(|x| (x, x)),
        }
    };
    match column {
        "sex" => p.sex.as_deref() == Some(value),
        "age" => {
            let Some(b) = p.birth else { return false };
            let a = tokumei_model::age_on(b, end);
            range(value).is_some_and(|(lo, hi)| a >= lo && a <= hi)
        }
        "birth_year_month" | "birth_year" => {
            let Some(b) = p.birth else { return false };
            if value.len() == 7 && value.as_bytes()[4] == b'-' {
                format!("{:04}-{:02}", b.year(), b.month()) == value
            } else {
                range(value).is_some_and(|(lo, hi)| b.year() >= lo && b.year() <= hi)
            }
        }
        "municipality" | "prefecture" => p
            .municipality
            .as_deref()
            .is_some_and(|m| m == value || (value.len() == 2 && m.starts_with(value))),
        _ => true,
    }
}

/// Runs the battery. `end` is the period end the release's ages refer to; `truth` maps release
/// pseudonyms to register ids when known (tests on synthetic data).
pub fn run(
    persons: &Table,
    events: &[Table],
    register: &[RegisterPerson],
    end: NaiveDate,
    truth: Option<&HashMap<String, String>>,
) -> ReidReport {
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
    if persons.rows.is_empty() {
        return r;
    }
    let mut classes: HashMap<Vec<Option<&str>>, usize> = HashMap::new();
    for row in &persons.rows {
        *classes
            .entry(qis.iter().map(|(i, _)| row[*i].as_deref()).collect())
            .or_default() += 1;
    }
    r.min_class = classes.values().copied().min().unwrap_or(0);
    r.sample_unique =
        classes.values().filter(|n| **n == 1).count() as f64 / persons.rows.len() as f64;
    r.prosecutor_max = 1.0 / r.min_class.max(1) as f64;
    r.prosecutor_avg = classes.len() as f64 / persons.rows.len() as f64;
    // Register groups per released class.
    let mut group: HashMap<Vec<Option<&str>>, Vec<&RegisterPerson>> = HashMap::new();
    for key in classes.keys() {
        let members: Vec<&RegisterPerson> = register
            .iter()
            .filter(|p| {
                qis.iter()
                    .zip(key)
                    .all(|((_, c), v)| v.is_none_or(|v| agrees(c, v, p, end)))
            })
            .collect();
        group.insert(key.clone(), members);
    }
    let (mut marketer, mut unmatched, mut min_group) = (0.0, 0usize, usize::MAX);
    let mut success = 0.0;
    for row in &persons.rows {
        let key: Vec<Option<&str>> = qis.iter().map(|(i, _)| row[*i].as_deref()).collect();
        let g = &group[&key];
        if g.is_empty() {
            unmatched += 1;
            continue;
        }
        min_group = min_group.min(g.len());
        marketer += 1.0 / g.len() as f64;
        if let Some(t) = truth {
            if let Some(id) = row[0].as_ref().and_then(|p| t.get(p)) {
                if g.iter().any(|p| &p.id == id) {
                    success += 1.0 / g.len() as f64;
                }
            }
        }
    }
    let n = persons.rows.len() as f64;
    r.marketer = marketer / n;
    r.unmatched = unmatched as f64 / n;
    r.journalist_max = if min_group == usize::MAX {
        0.0
    } else {
        1.0 / min_group as f64
    };
    r.attack_success = truth.map(|_| success / n);
    // Trajectories: the sequence of (month, code) per person in the first event table with a code.
    if let Some(t) = events
        .iter()
        .find(|t| t.col("code").or(t.col("icd10")).is_some())
    {
        let code = t.col("icd10").or(t.col("code"));
        let date = t.col("date").or(t.col("start_date"));
        let mut traj: BTreeMap<&str, Trajectory> = BTreeMap::new();
        for row in &t.rows {
            if let Some(p) = row[0].as_deref() {
                traj.entry(p).or_default().push((
                    date.and_then(|i| row[i].as_deref()),
                    code.and_then(|i| row[i].as_deref()),
                ));
            }
        }
        let mut count: HashMap<Trajectory, usize> = HashMap::new();
        for v in traj.values_mut() {
            v.sort();
            v.dedup();
            *count.entry(v.clone()).or_default() += 1;
        }
        let unique = traj.values().filter(|v| count[*v] == 1).count();
        r.trajectory_unique = Some(unique as f64 / traj.len().max(1) as f64);
    }
    r
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
        let exact = Table {
            name: "persons".into(),
            columns: vec![
                "pseudonym".into(),
                "sex".into(),
                "birth_year_month".into(),
                "municipality".into(),
            ],
            rows: reg
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let b = p.birth.expect("birth");
                    vec![
                        Some(format!("r{i}")),
                        p.sex.clone(),
                        Some(format!("{:04}-{:02}", b.year(), b.month())),
                        p.municipality.clone(),
                    ]
                })
                .collect(),
        };
        let r = run(&exact, &[], &reg, end, Some(&truth));
        assert!(r.attack_success.expect("truth") > 0.9, "{r:?}");
        let banded = Table {
            name: "persons".into(),
            columns: vec![
                "pseudonym".into(),
                "sex".into(),
                "age".into(),
                "municipality".into(),
            ],
            rows: reg
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    vec![
                        Some(format!("r{i}")),
                        p.sex.clone(),
                        Some("60-79".into()),
                        Some("02".into()),
                    ]
                })
                .collect(),
        };
        let r = run(&banded, &[], &reg, end, Some(&truth));
        assert!(
            (r.attack_success.expect("truth") - 0.05).abs() < 1e-9,
            "{r:?}"
        );
        assert_eq!(r.min_class, 20);
        assert!((r.prosecutor_max - 0.05).abs() < 1e-12);
    }
}
