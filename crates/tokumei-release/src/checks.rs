//! Machine checks of a release against its kind's rules (RULES §11), run on the tables as written.

use std::collections::{HashMap, HashSet};

/// A release table: column names and string cells (`None` for empty).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Table {
    /// Table name.
    pub name: String,
    /// Column names; the first is always `pseudonym`.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<Option<String>>>,
}

impl Table {
    /// Index of a column.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// Columns that are never released (direct identifiers, contact and source ids).
pub const FORBIDDEN: &[&str] = &[
    "record_id",
    "local_patient_id",
    "surname_kanji",
    "given_kanji",
    "surname_kana",
    "given_kana",
    "birth_date",
    "town",
    "chome",
    "banchi",
    "postal_code",
    "insurer_number",
    "insured_symbol",
    "insured_number",
    "insured_branch",
    "facility_code",
    "event_id",
    "encounter_id",
];

/// Free-text columns (removed in every release kind).
pub const FREE_TEXT: &[&str] = &["department", "value_text", "name"];

/// Date columns of event tables.
pub const DATE_COLUMNS: &[&str] = &["date", "start_date", "end_date"];

/// Person quasi-identifiers: every releasable column of the persons table (the review catalogue's
/// first table).
pub const PERSON_QIS: &[&str] = tokumei_review::application::CATALOGUE[0].1;

/// Code columns checked for rare values.
pub const CODE_COLUMNS: &[(&str, &str)] = &[
    ("diagnoses", "icd10"),
    ("diagnoses", "code"),
    ("prescriptions", "code"),
    ("procedures", "code"),
    ("lab_results", "code"),
];

/// Share of a column's values that carry nothing (`*` or blank); `None` for an absent column or
/// an empty table.
fn empty_share(t: &Table, column: &str) -> Option<f64> {
    let i = t.col(column)?;
    if t.rows.is_empty() {
        return None;
    }
    let empty = t
        .rows
        .iter()
        .filter(|r| r[i].as_deref().is_none_or(|v| v.is_empty() || v == "*"))
        .count();
    Some(empty as f64 / t.rows.len() as f64)
}

/// Warnings on a release that passes its checks but may not be usable: a person
/// quasi-identifier released as `*` or blank for at least 90 % of persons, a code column `*` or
/// blank in at least half of its rows. A release researchers cannot use is a failure too: the
/// build reports these to the operator and in the release report.
pub fn utility_warnings(tables: &[Table]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(persons) = tables.iter().find(|t| t.name == "persons") {
        for c in PERSON_QIS {
            if let Some(share) = empty_share(persons, c).filter(|s| *s >= 0.9) {
                out.push(format!(
                    "persons.{c} is `*` or blank for {:.0} % of persons",
                    share * 100.0
                ));
            }
        }
    }
    for (table, column) in CODE_COLUMNS {
        let Some(t) = tables.iter().find(|t| t.name == *table) else {
            continue;
        };
        if let Some(share) = empty_share(t, column).filter(|s| *s >= 0.5) {
            out.push(format!(
                "{table}.{column} is `*` or blank in {:.0} % of rows",
                share * 100.0
            ));
        }
    }
    out
}

fn is_year_month(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[5..].iter().all(u8::is_ascii_digit)
}

fn is_year(v: &str) -> bool {
    v.len() == 4 && v.bytes().all(|b| b.is_ascii_digit())
}

fn is_relative_day(v: &str) -> bool {
    !v.is_empty()
        && v.strip_prefix('-')
            .unwrap_or(v)
            .bytes()
            .all(|b| b.is_ascii_digit())
}

/// A quarter `2022-Q1`.
fn is_quarter(v: &str) -> bool {
    v.len() == 7 && is_year(&v[..4]) && v[4..6] == *"-Q" && matches!(v.as_bytes()[6], b'1'..=b'4')
}

/// A band of whole numbers `lo-hi` (years `2020-2024`, days `0-29`, `-90--1`).
fn is_band(v: &str) -> bool {
    let signed = |x: &str| is_relative_day(x) && x.parse::<i64>().is_ok();
    let cut = v
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '-')
        .map(|(i, _)| i);
    cut.is_some_and(|i| {
        let (lo, hi) = (&v[..i], &v[i + 1..]);
        signed(lo) && signed(hi) && lo.parse::<i64>().ok() <= hi.parse::<i64>().ok()
    })
}

/// Month dates or their generalizations (quarter, year, `*`).
fn is_month_or_coarser(v: &str) -> bool {
    is_year_month(v) || is_quarter(v) || is_year(v) || v == "*"
}

/// Year dates or their generalizations (year bands, `*`).
fn is_year_or_coarser(v: &str) -> bool {
    is_year(v) || is_band(v) || v == "*"
}

/// Days since the index date or their bands, `*`.
fn is_relative_or_coarser(v: &str) -> bool {
    is_relative_day(v) || is_band(v) || v == "*"
}

/// Day dates or their generalizations (month, year, year bands, `*`).
fn is_day_or_coarser(v: &str) -> bool {
    is_day(v) || is_year_month(v) || is_year_or_coarser(v)
}

fn is_day(v: &str) -> bool {
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
}

/// Checks a release against its preset; returns every violation found (empty when it passes).
pub fn check(preset: &crate::preset::Preset, tables: &[Table]) -> Vec<String> {
    use crate::preset::Dates;
    let mut v = common(tables);
    let (ok, what): (fn(&str) -> bool, &str) = match preset.dates {
        Dates::Month => (is_month_or_coarser, "year-month"),
        Dates::Year => (is_year_or_coarser, "year"),
        Dates::Day | Dates::Shift => (is_day_or_coarser, "day"),
        Dates::Relative => (is_relative_or_coarser, "days since the index date"),
    };
    v.extend(dates(tables, ok, what));
    if preset.top_code_age > 0 {
        v.extend(top_coded(tables, preset.top_code_age));
    }
    if preset.k > 0 {
        v.extend(k_anonymous(tables, preset.k));
    }
    if preset.rare_code_persons > 0 {
        v.extend(rare_codes(tables, preset.rare_code_persons));
    }
    if preset.kind == "anonymized" && preset.event_m > 0 {
        v.extend(k_m_anonymous(tables, preset.k.max(1), preset.event_m));
    }
    v
}

/// (k, k^m)-anonymity on the tables as written: each person's class is their quasi-identifier
/// values, their items the distinct (table, code, date) of their events (the code column `icd10`,
/// else `code`, else none; the date `date`, else `start_date`); counted again by the engine's
/// checker, independently of the search that produced them.
fn k_m_anonymous(tables: &[Table], k: usize, m: usize) -> Vec<String> {
    let Some(p) = tables.iter().find(|t| t.name == "persons") else {
        return Vec::new();
    };
    let qis: Vec<usize> = PERSON_QIS.iter().filter_map(|q| p.col(q)).collect();
    let mut class_of: HashMap<Vec<Option<&str>>, u32> = HashMap::new();
    let mut person: HashMap<&str, usize> = HashMap::new();
    let mut classes = Vec::new();
    for r in &p.rows {
        let key: Vec<Option<&str>> = qis.iter().map(|&i| r[i].as_deref()).collect();
        let next = class_of.len() as u32;
        classes.push(*class_of.entry(key).or_insert(next));
        if let Some(ps) = r[0].as_deref() {
            person.insert(ps, person.len());
        }
    }
    let mut item_of: HashMap<(usize, Option<&str>, Option<&str>), u32> = HashMap::new();
    let mut items: Vec<Vec<u32>> = vec![Vec::new(); classes.len()];
    for (ti, t) in tables
        .iter()
        .enumerate()
        .filter(|(_, t)| t.name != "persons")
    {
        let Some(time) = crate::events::time_column(t) else {
            continue;
        };
        let code = crate::events::code_column(t);
        for r in &t.rows {
            let Some(&pi) = r[0].as_deref().and_then(|ps| person.get(ps)) else {
                continue;
            };
            let key = (ti, code.and_then(|c| r[c].as_deref()), r[time].as_deref());
            let next = item_of.len() as u32;
            items[pi].push(*item_of.entry(key).or_insert(next));
        }
    }
    let broken = tokumei_anonymize::setvalued::violations(&classes, items, k, m);
    if broken == 0 {
        Vec::new()
    } else {
        vec![format!(
            "events: {broken} sets of at most {m} events with the quasi-identifiers are shared \
             by fewer than {k} persons"
        )]
    }
}

/// Event dates of every table have the granularity `ok` accepts.
fn dates(tables: &[Table], ok: fn(&str) -> bool, what: &str) -> Vec<String> {
    let mut v = Vec::new();
    for t in tables {
        for (i, c) in t.columns.iter().enumerate() {
            if DATE_COLUMNS.contains(&c.as_str())
                && t.rows
                    .iter()
                    .filter_map(|r| r[i].as_deref())
                    .any(|x| !ok(x))
            {
                v.push(format!("{}.{c}: a date finer or other than {what}", t.name));
            }
        }
    }
    v
}

/// Ages at or above `top` must be top-coded (`top+`), with the birth removed.
fn top_coded(tables: &[Table], top: u32) -> Vec<String> {
    let mut v = Vec::new();
    let label = format!("{top}+");
    for t in tables {
        if let Some(i) = t.col("age") {
            let over = t
                .rows
                .iter()
                .filter_map(|r| r[i].as_deref())
                .any(|x| x.parse::<u32>().is_ok_and(|a| a >= top));
            if over {
                v.push(format!(
                    "{}.age: an age of {top} or more is not top-coded",
                    t.name
                ));
            }
            for b in ["birth_year_month", "birth_year"] {
                if let Some(j) = t.col(b) {
                    if t.rows
                        .iter()
                        .any(|r| r[i].as_deref() == Some(label.as_str()) && r[j].is_some())
                    {
                        v.push(format!("{}.{b}: kept for a person aged {top}+", t.name));
                    }
                }
            }
        }
    }
    v
}

/// Every equivalence class over the person quasi-identifiers holds at least `k` persons.
fn k_anonymous(tables: &[Table], k: usize) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(p) = tables.iter().find(|t| t.name == "persons") {
        let qis: Vec<usize> = PERSON_QIS.iter().filter_map(|q| p.col(q)).collect();
        if !qis.is_empty() {
            let mut classes: HashMap<Vec<Option<&str>>, usize> = HashMap::new();
            for r in &p.rows {
                *classes
                    .entry(qis.iter().map(|&i| r[i].as_deref()).collect())
                    .or_default() += 1;
            }
            if let Some(min) = classes.values().min() {
                if *min < k {
                    v.push(format!(
                        "persons: an equivalence class of {min} persons (k = {k} required)"
                    ));
                }
            }
        }
    }
    v
}

/// No released code is held by fewer than `rare` persons.
fn rare_codes(tables: &[Table], rare: usize) -> Vec<String> {
    let mut v = Vec::new();
    for (table, column) in CODE_COLUMNS {
        let Some(t) = tables.iter().find(|t| t.name == *table) else {
            continue;
        };
        let Some(i) = t.col(column) else {
            continue;
        };
        let mut persons: HashMap<&str, HashSet<&str>> = HashMap::new();
        for r in &t.rows {
            if let (Some(code), Some(p)) = (r[i].as_deref(), r[0].as_deref()) {
                if code != "*" {
                    persons.entry(code).or_default().insert(p);
                }
            }
        }
        if persons.values().any(|s| s.len() < rare) {
            v.push(format!(
                "{table}.{column}: a code held by fewer than {rare} persons"
            ));
        }
    }
    v
}

/// Checks every release kind shares: no forbidden or free-text column, a pseudonym on every row,
/// pseudonyms of the persons table unique.
fn common(tables: &[Table]) -> Vec<String> {
    let mut v = Vec::new();
    for t in tables {
        if t.columns.first().map(String::as_str) != Some("pseudonym") {
            v.push(format!("{}: the first column is not the pseudonym", t.name));
        }
        for c in &t.columns {
            if FORBIDDEN.contains(&c.as_str()) {
                v.push(format!("{}.{c}: a direct identifier or source id", t.name));
            }
            if FREE_TEXT.contains(&c.as_str()) {
                v.push(format!("{}.{c}: free text", t.name));
            }
        }
        if t.rows.iter().any(|r| r.first().is_none_or(|p| p.is_none())) {
            v.push(format!("{}: a row without a pseudonym", t.name));
        }
    }
    if let Some(p) = tables.iter().find(|t| t.name == "persons") {
        let mut seen = HashSet::new();
        if !p.rows.iter().all(|r| seen.insert(r[0].clone())) {
            v.push("persons: a pseudonym appears twice".into());
        }
        let known: HashSet<&Option<String>> = p.rows.iter().map(|r| &r[0]).collect();
        for t in tables.iter().filter(|t| t.name != "persons") {
            if t.rows.iter().any(|r| !known.contains(&r[0])) {
                v.push(format!("{}: a pseudonym not in persons", t.name));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_quasi_identifiers_are_the_persons_columns_of_the_catalogue() {
        assert_eq!(tokumei_review::application::CATALOGUE[0].0, "persons");
        assert!(PERSON_QIS.contains(&"birth_year_month") && PERSON_QIS.contains(&"municipality"));
    }

    /// The jp-anonymized preset with a small k and rare-code floor for tiny tables.
    fn jp_anonymized(tables: &[Table], k: usize, rare: usize) -> Vec<String> {
        let mut p = crate::preset::Preset::named("jp-anonymized").expect("preset");
        p.k = k;
        p.rare_code_persons = rare;
        check(&p, tables)
    }

    fn persons(rows: &[(&str, &str, &str)]) -> Table {
        Table {
            name: "persons".into(),
            columns: vec!["pseudonym".into(), "sex".into(), "age".into()],
            rows: rows
                .iter()
                .map(|(p, s, a)| {
                    vec![
                        Some(p.to_string()),
                        Some(s.to_string()),
                        Some(a.to_string()),
                    ]
                })
                .collect(),
        }
    }

    #[test]
    fn small_classes_and_uncoded_ages_fail() {
        let t = persons(&[("a", "M", "40"), ("b", "M", "40"), ("c", "F", "91")]);
        let v = jp_anonymized(&[t], 2, 1);
        assert!(
            v.iter().any(|m| m.contains("equivalence class of 1")),
            "{v:?}"
        );
        assert!(v.iter().any(|m| m.contains("90 or more")), "{v:?}");
    }

    #[test]
    fn identifiers_and_fine_dates_fail() {
        let mut t = persons(&[("a", "M", "40"), ("b", "M", "40")]);
        t.columns.push("surname_kana".into());
        for r in &mut t.rows {
            r.push(Some("x".into()));
        }
        let e = Table {
            name: "diagnoses".into(),
            columns: vec!["pseudonym".into(), "date".into()],
            rows: vec![vec![Some("a".into()), Some("2024-01-15".into())]],
        };
        let v = jp_anonymized(&[t, e], 2, 1);
        assert!(v.iter().any(|m| m.contains("surname_kana")), "{v:?}");
        assert!(
            v.iter()
                .any(|m| m.contains("finer or other than year-month")),
            "{v:?}"
        );
    }

    #[test]
    fn a_clean_release_passes() {
        let t = persons(&[("a", "M", "40"), ("b", "M", "40")]);
        let e = Table {
            name: "diagnoses".into(),
            columns: vec!["pseudonym".into(), "date".into(), "icd10".into()],
            rows: vec![
                vec![Some("a".into()), Some("2024-Q1".into()), Some("E11".into())],
                vec![Some("b".into()), Some("2024-Q1".into()), Some("E11".into())],
            ],
        };
        assert_eq!(jp_anonymized(&[t, e], 2, 2), Vec::<String>::new());
    }

    #[test]
    fn an_event_held_by_fewer_than_k_with_the_quasi_identifiers_fails() {
        let t = persons(&[("a", "M", "40"), ("b", "M", "40")]);
        let row =
            |p: &str, d: &str| vec![Some(p.to_string()), Some(d.to_string()), Some("E11".into())];
        let e = Table {
            name: "diagnoses".into(),
            columns: vec!["pseudonym".into(), "date".into(), "icd10".into()],
            // (E11, January) and (E11, February) are each held by one person of the class.
            rows: vec![row("a", "2024-01"), row("b", "2024-02")],
        };
        let v = jp_anonymized(&[t, e], 2, 2);
        assert!(
            v.iter().any(|m| m.contains("shared by fewer than 2")),
            "{v:?}"
        );
    }

    #[test]
    fn a_release_of_stars_and_blanks_is_warned_about() {
        let v = |x: &str| Some(x.to_string());
        let persons = Table {
            name: "persons".into(),
            columns: vec!["pseudonym".into(), "sex".into(), "age".into()],
            rows: (0..10)
                .map(|i| {
                    vec![
                        v(&format!("p{i}")),
                        v("*"),
                        v(if i == 0 { "40-49" } else { "*" }),
                    ]
                })
                .collect(),
        };
        let diagnoses = Table {
            name: "diagnoses".into(),
            columns: vec!["pseudonym".into(), "icd10".into()],
            rows: vec![
                vec![v("p1"), v("*")],
                vec![v("p2"), None],
                vec![v("p3"), v("E11")],
            ],
        };
        let w = utility_warnings(&[persons, diagnoses]);
        assert_eq!(
            w,
            vec![
                "persons.sex is `*` or blank for 100 % of persons".to_string(),
                "persons.age is `*` or blank for 90 % of persons".to_string(),
                "diagnoses.icd10 is `*` or blank in 67 % of rows".to_string(),
            ]
        );
        let fine = Table {
            name: "diagnoses".into(),
            columns: vec!["pseudonym".into(), "icd10".into()],
            rows: vec![
                vec![v("p1"), v("E11")],
                vec![v("p2"), v("*")],
                vec![v("p3"), v("I10")],
            ],
        };
        assert!(utility_warnings(&[fine]).is_empty());
    }
}
