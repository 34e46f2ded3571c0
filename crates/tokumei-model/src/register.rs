//! A population register as an intruder holds it (sex, birth date, municipality), and the counts the
//! re-identification battery takes over it: for each released class (the quasi-identifier values a
//! release's persons share), how many register persons agree with it, and how well an attacker who
//! scores each register person by the release persons per look-alike tells members from the rest.
//!
//! These are the battery's population-sized counts. [`RegisterEngine`] is where they run: the
//! embedded loop here ([`counts`]), or a distributed engine that runs the same [`ClassFinder`] on
//! its workers and hands back the same numbers.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};

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

/// A released day (`2022-03-01`), or `None` for a value of another form.
pub fn day_of(value: &str) -> Option<NaiveDate> {
    (value.len() == 10)
        .then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
        .flatten()
}

/// A released year and month (`2022-03`), or `None` for a value of another form.
pub fn year_month_of(value: &str) -> Option<(i32, u32)> {
    let (y, m) = value.split_once('-')?;
    let ok = y.len() == 4
        && m.len() == 2
        && value
            .bytes()
            .filter(|b| *b != b'-')
            .all(|b| b.is_ascii_digit());
    ok.then(|| Some((y.parse().ok()?, m.parse().ok()?)))
        .flatten()
}

/// A released range (`40-49`, `90+`, `45`) as inclusive bounds.
fn range(v: &str) -> Option<(i32, i32)> {
    if let Some(lo) = v.strip_suffix('+') {
        return lo.parse().ok().map(|lo| (lo, i32::MAX));
    }
    match v.split_once('-') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => v.parse().ok().map(|x| (x, x)),
    }
}

/// Whether a register person agrees with a released (possibly generalized) value of `column`; ages
/// are taken on `end`.
pub fn agrees(column: &str, value: &str, p: &RegisterPerson, end: NaiveDate) -> bool {
    if value == "*" {
        // Generalized to the top of its hierarchy: anyone agrees.
        return true;
    }
    match column {
        "sex" => p.sex.as_deref() == Some(value),
        "age" => {
            let Some(b) = p.birth else { return false };
            let a = crate::age_on(b, end);
            range(value).is_some_and(|(lo, hi)| a >= lo && a <= hi)
        }
        "birth_date" => p.birth.is_some_and(|b| day_of(value) == Some(b)),
        "birth_year_month" | "birth_year" => {
            let Some(b) = p.birth else { return false };
            if let Some(ym) = year_month_of(value) {
                ym == (b.year(), b.month())
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

/// A released class: its value in each quasi-identifier column (`None` for a blank, which anyone
/// agrees with).
pub type Class = Vec<Option<String>>;

/// One column's distinct released values, ready for the persons of a register: exact birth days and
/// year-months found by the person's own birth (a map), every other value tried in turn. Values are
/// numbered by their first appearance in the classes.
#[derive(Debug, Clone)]
struct ColumnValues {
    column: String,
    by_birth: HashMap<(i32, u32, u32), Vec<u32>>,
    rest: Vec<(u32, Option<String>)>,
}

impl ColumnValues {
    fn new(column: &str, values: &[Option<String>]) -> Self {
        let mut o = ColumnValues {
            column: column.to_string(),
            by_birth: HashMap::new(),
            rest: Vec::new(),
        };
        for (id, v) in values.iter().enumerate() {
            let id = id as u32;
            let key = match (column, v.as_deref()) {
                ("birth_date", Some(x)) => day_of(x).map(|d| (d.year(), d.month(), d.day())),
                ("birth_year_month" | "birth_year", Some(x)) => {
                    year_month_of(x).map(|(y, m)| (y, m, 0))
                }
                _ => None,
            };
            match key {
                Some(k) => o.by_birth.entry(k).or_default().push(id),
                None => o.rest.push((id, v.clone())),
            }
        }
        o
    }

    /// The numbers of the values person `p` agrees with.
    fn of(&self, p: &RegisterPerson, end: NaiveDate, out: &mut Vec<u32>) {
        out.clear();
        let key = p.birth.map(|b| match self.column.as_str() {
            "birth_date" => (b.year(), b.month(), b.day()),
            _ => (b.year(), b.month(), 0),
        });
        if let Some(ids) = key.and_then(|k| self.by_birth.get(&k)) {
            out.extend_from_slice(ids);
        }
        out.extend(
            self.rest
                .iter()
                .filter(|(_, v)| v.as_deref().is_none_or(|v| agrees(&self.column, v, p, end)))
                .map(|(id, _)| *id),
        );
    }
}

/// Finds the released classes a register person agrees with. Per column, a person agrees with few
/// of the released values (and with a blank), so their classes are found by enumerating those
/// combinations: O(register × combinations), not O(register × classes).
#[derive(Debug, Clone)]
pub struct ClassFinder {
    columns: Vec<String>,
    classes: Vec<Class>,
    values: Vec<ColumnValues>,
    /// A class's value numbers → its position in `classes`.
    index: HashMap<Vec<u32>, u32>,
    end: NaiveDate,
}

impl ClassFinder {
    /// The finder of `classes` over the quasi-identifier `columns`, ages taken on `end`. Classes are
    /// numbered by their position; a class given twice keeps its first number.
    pub fn new(columns: &[String], classes: Vec<Class>, end: NaiveDate) -> Self {
        let mut distinct: Vec<Vec<Option<String>>> = vec![Vec::new(); columns.len()];
        let mut numbers: Vec<HashMap<Option<&str>, u32>> = vec![HashMap::new(); columns.len()];
        let mut index = HashMap::with_capacity(classes.len());
        for (n, class) in classes.iter().enumerate() {
            let ids: Vec<u32> = (0..columns.len())
                .map(|c| {
                    let v = class.get(c).and_then(Option::as_deref);
                    *numbers[c].entry(v).or_insert_with(|| {
                        distinct[c].push(v.map(str::to_string));
                        (distinct[c].len() - 1) as u32
                    })
                })
                .collect();
            index.entry(ids).or_insert(n as u32);
        }
        let values = columns
            .iter()
            .zip(&distinct)
            .map(|(c, v)| ColumnValues::new(c, v))
            .collect();
        ClassFinder {
            columns: columns.to_vec(),
            classes,
            values,
            index,
            end,
        }
    }

    /// The quasi-identifier columns.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The classes, by number.
    pub fn classes(&self) -> &[Class] {
        &self.classes
    }

    /// The day ages are taken on.
    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// The numbers of the classes `p` agrees with, into `out` (cleared first).
    pub fn classes_of(&self, p: &RegisterPerson, out: &mut Vec<u32>) {
        out.clear();
        let mut options: Vec<Vec<u32>> = vec![Vec::new(); self.values.len()];
        for (o, v) in options.iter_mut().zip(&self.values) {
            v.of(p, self.end, o);
            if o.is_empty() {
                return;
            }
        }
        // Odometer over the per-column options.
        let mut at = vec![0usize; options.len()];
        let mut candidate = vec![0u32; options.len()];
        'combos: loop {
            for (c, o) in options.iter().enumerate() {
                candidate[c] = o[at[c]];
            }
            if let Some(n) = self.index.get(&candidate) {
                out.push(*n);
            }
            for c in (0..at.len()).rev() {
                at[c] += 1;
                if at[c] < options[c].len() {
                    continue 'combos;
                }
                at[c] = 0;
            }
            break;
        }
    }

    /// Whether `p` agrees with class `n` (false for a number out of range).
    pub fn agrees_with(&self, n: usize, p: &RegisterPerson) -> bool {
        self.classes.get(n).is_some_and(|class| {
            self.columns.iter().enumerate().all(|(c, column)| {
                class
                    .get(c)
                    .and_then(Option::as_deref)
                    .is_none_or(|v| agrees(column, v, p, self.end))
            })
        })
    }
}

/// The membership attacker's score of a register person: the highest released persons per register
/// look-alike over the classes they agree with (0 when none). `ratios` holds, per class, its release
/// persons over its register group.
pub fn score(classes: &[u32], ratios: &[f64]) -> f64 {
    classes
        .iter()
        .filter_map(|c| ratios.get(*c as usize))
        .fold(0.0f64, |best, r| best.max(*r))
}

/// Per class, release persons over register look-alikes (0 for a class nobody agrees with).
pub fn ratios(release: &[u64], groups: &[u64]) -> Vec<f64> {
    release
        .iter()
        .zip(groups)
        .map(|(k, g)| if *g == 0 { 0.0 } else { *k as f64 / *g as f64 })
        .collect()
}

/// A job of register counts.
pub struct RegisterJob<'a> {
    /// The released classes and the day ages are taken on.
    pub finder: &'a ClassFinder,
    /// Release persons per class (by class number).
    pub release: &'a [u64],
    /// The register.
    pub register: &'a [RegisterPerson],
    /// Per register person, whether they are in the release (known with a truth key): asks for the
    /// membership attacker's score histogram.
    pub members: Option<&'a [bool]>,
}

/// One score of the membership attacker with the register persons who get it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreCount {
    /// The score.
    pub score: f64,
    /// Members who get it.
    pub members: u64,
    /// Non-members who get it.
    pub others: u64,
}

/// What a register job counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegisterCounts {
    /// Per class, the register persons agreeing with it.
    pub groups: Vec<u64>,
    /// With members: every score given, highest first, with the persons who get it.
    pub scores: Option<Vec<ScoreCount>>,
}

/// Why an engine could not count.
#[derive(Debug, thiserror::Error)]
#[error("register counts: {0}")]
pub struct RegisterError(pub String);

/// Where a job of register counts runs.
pub trait RegisterEngine: Sync {
    /// The counts of `job`: equal to [`counts`]'s.
    fn counts(&self, job: &RegisterJob<'_>) -> Result<RegisterCounts, RegisterError>;
}

/// A register engine shared by the work that uses it (a build's options, a server's jobs).
#[derive(Clone)]
pub struct SharedEngine(pub std::sync::Arc<dyn RegisterEngine + Send>);

impl std::fmt::Debug for SharedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedEngine")
    }
}

/// The counts of `job` in this process.
pub fn counts(job: &RegisterJob<'_>) -> RegisterCounts {
    let n = job.finder.classes().len();
    let mut groups = vec![0u64; n];
    // Every person's classes, kept (one after another) when the scores need them again, so the
    // finder runs once per person.
    let keep = job.members.is_some();
    let (mut all, mut ends) = (Vec::new(), Vec::new());
    let mut found = Vec::new();
    for p in job.register {
        job.finder.classes_of(p, &mut found);
        for c in &found {
            groups[*c as usize] += 1;
        }
        if keep {
            all.extend_from_slice(&found);
            ends.push(all.len());
        }
    }
    let scores = job.members.map(|members| {
        let ratios = ratios(job.release, &groups);
        let mut by_score: HashMap<u64, (u64, u64)> = HashMap::new();
        let starts = std::iter::once(0).chain(ends.iter().copied());
        for ((start, end), member) in starts.zip(&ends).zip(members) {
            let e = by_score
                .entry(score(&all[start..*end], &ratios).to_bits())
                .or_default();
            if *member {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        score_counts(by_score.into_iter().map(|(s, (m, o))| (s, m, o)))
    });
    RegisterCounts { groups, scores }
}

/// Score counts from (score bits, members, others), highest score first.
pub fn score_counts(rows: impl IntoIterator<Item = (u64, u64, u64)>) -> Vec<ScoreCount> {
    let mut out: Vec<ScoreCount> = rows
        .into_iter()
        .map(|(s, members, others)| ScoreCount {
            score: f64::from_bits(s),
            members,
            others,
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

/// The membership-inference advantage of a score histogram: the highest (TPR − FPR) over thresholds
/// τ of claiming "member" when `score ≥ τ` (τ above every score gives 0). `None` when there is no
/// member or no non-member.
pub fn advantage(scores: &[ScoreCount]) -> Option<f64> {
    let members: u64 = scores.iter().map(|s| s.members).sum();
    let others: u64 = scores.iter().map(|s| s.others).sum();
    if members == 0 || others == 0 {
        return None;
    }
    let (mut tp, mut fp, mut best) = (0u64, 0u64, 0.0f64);
    for s in scores {
        tp += s.members;
        fp += s.others;
        best = best.max(tp as f64 / members as f64 - fp as f64 / others as f64);
    }
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(sex: &str, birth: &str, municipality: &str) -> RegisterPerson {
        RegisterPerson {
            id: format!("{sex}{birth}{municipality}"),
            sex: Some(sex.into()),
            birth: NaiveDate::parse_from_str(birth, "%Y-%m-%d").ok(),
            municipality: Some(municipality.into()),
        }
    }

    fn class(values: &[Option<&str>]) -> Class {
        values.iter().map(|v| v.map(str::to_string)).collect()
    }

    fn finder() -> ClassFinder {
        let columns = ["sex", "age", "birth_year_month", "prefecture"].map(String::from);
        let classes = vec![
            class(&[Some("M"), Some("40-49"), Some("1980-05"), Some("13")]),
            class(&[Some("M"), Some("40-49"), Some("*"), None]),
            class(&[Some("F"), Some("90+"), Some("1930-1939"), Some("01")]),
            class(&[Some("M"), Some("40-49"), Some("1980-05"), Some("13")]),
        ];
        let end = NaiveDate::from_ymd_opt(2024, 3, 31).expect("date");
        ClassFinder::new(&columns, classes, end)
    }

    #[test]
    fn a_person_finds_exactly_the_classes_they_agree_with() {
        let f = finder();
        let people = [
            person("M", "1980-05-02", "131016"),
            person("M", "1980-06-02", "131016"),
            person("F", "1933-01-01", "011002"),
            person("F", "1980-05-02", "131016"),
        ];
        let mut found = Vec::new();
        for p in &people {
            f.classes_of(p, &mut found);
            found.sort_unstable();
            // The duplicate class (3) keeps the first number.
            let every: Vec<u32> = (0..3u32)
                .filter(|n| f.agrees_with(*n as usize, p))
                .collect();
            assert_eq!(found, every, "{}", p.id);
        }
        f.classes_of(&people[0], &mut found);
        found.sort_unstable();
        assert_eq!(found, [0, 1]);
    }

    #[test]
    fn counts_and_the_advantage_follow_the_groups() {
        let f = finder();
        let register = vec![
            person("M", "1980-05-02", "131016"),
            person("M", "1980-06-02", "131016"),
            person("F", "1933-01-01", "011002"),
            person("F", "1980-05-02", "131016"),
        ];
        let release = [1, 2, 1, 0];
        let members = [true, true, false, false];
        let job = RegisterJob {
            finder: &f,
            release: &release,
            register: &register,
            members: Some(&members),
        };
        let c = counts(&job);
        assert_eq!(c.groups, [1, 2, 1, 0]);
        let scores = c.scores.expect("scores");
        // Person 0: max(1/1, 2/2) = 1; person 1: 2/2 = 1; person 2: 1/1 = 1; person 3: 0.
        assert_eq!(
            scores,
            [
                ScoreCount {
                    score: 1.0,
                    members: 2,
                    others: 1
                },
                ScoreCount {
                    score: 0.0,
                    members: 0,
                    others: 1
                },
            ]
        );
        assert_eq!(advantage(&scores), Some(0.5));
        let members_only = [ScoreCount {
            score: 1.0,
            members: 2,
            others: 0,
        }];
        assert_eq!(advantage(&members_only), None);
    }

    #[test]
    fn released_values_agree_as_the_register_reads_them() {
        let end = NaiveDate::from_ymd_opt(2024, 3, 31).expect("date");
        let p = person("M", "1980-05-02", "131016");
        assert!(agrees("age", "40-49", &p, end));
        assert!(agrees("age", "43", &p, end));
        assert!(!agrees("age", "90+", &p, end));
        assert!(agrees("birth_date", "1980-05-02", &p, end));
        assert!(agrees("birth_year", "1980-1989", &p, end));
        assert!(agrees("prefecture", "13", &p, end));
        assert!(agrees("municipality", "131016", &p, end));
        assert!(!agrees("municipality", "131017", &p, end));
        assert!(agrees("sex", "*", &p, end));
        assert_eq!(year_month_of("1980-5"), None);
        assert_eq!(day_of("1980-05-2"), None);
    }

    #[test]
    fn the_values_found_by_birth_are_those_every_comparison_finds() {
        let end = NaiveDate::from_ymd_opt(2024, 3, 31).expect("date");
        let values = [
            None,
            Some("*"),
            Some("1950-01-01"),
            Some("1950-04-11"),
            Some("1950-04"),
            Some("1950-01"),
            Some("1950-1959"),
            Some("1951"),
            Some("1950-02-30"),
            Some("x"),
        ];
        let people: Vec<RegisterPerson> = (0..12u64)
            .map(|i| RegisterPerson {
                id: format!("p{i}"),
                sex: Some(if i % 2 == 0 { "M" } else { "F" }.into()),
                birth: NaiveDate::from_ymd_opt(1950, 1, 1)
                    .and_then(|d| d.checked_add_days(chrono::Days::new(i * 100))),
                municipality: Some("022012".into()),
            })
            .collect();
        for column in ["birth_date", "birth_year_month", "birth_year", "sex", "age"] {
            let classes: Vec<Class> = values.iter().map(|v| class(&[*v])).collect();
            let f = ClassFinder::new(&[column.to_string()], classes, end);
            let mut got = Vec::new();
            for p in &people {
                let want: Vec<u32> = (0..values.len() as u32)
                    .filter(|n| values[*n as usize].is_none_or(|v| agrees(column, v, p, end)))
                    .collect();
                f.classes_of(p, &mut got);
                got.sort_unstable();
                assert_eq!(got, want, "{column} for {}", p.id);
            }
        }
        let f = ClassFinder::new(&["birth_date".into()], vec![class(&[values[2]])], end);
        let mut got = Vec::new();
        f.classes_of(&people[0], &mut got);
        assert_eq!(got, [0]);
    }
}
