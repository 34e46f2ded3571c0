//! The persons' quasi-identifiers on the anonymization engine.
//!
//! Each released person column is taken at the preset's granularity (level 0) and generalized by a
//! hierarchy from `tokumei-anonymize`'s builders: ages (bands, top-coded), years and year-months
//! (5- and 10-year bands), municipality codes (to the prefecture), prefecture codes, and a flat
//! hierarchy for the rest; a missing value stays missing up to `*`. The engine's optimal search
//! chooses the levels (ARX's Loss, within the preset's suppression limit) and its risk figures
//! measure the persons before and after.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use tokumei_anonymize as anon;

use crate::build::{age_on, ym, Person};
use crate::preset::{Birth, Dates, Geography, Preset};
use crate::ReleaseError;

/// A missing value in the engine's table (the release writes it as an empty cell).
const MISSING: &str = "";

/// The hierarchy builder a person column uses, with the names of its levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builder {
    /// Kept as recorded or suppressed (`sex`).
    Flat,
    /// Ages in years, bands above, top-coded at the preset's age.
    Ages,
    /// Year-months, then years and year bands.
    YearMonths,
    /// Years, then year bands.
    Years,
    /// Municipality codes, then the prefecture.
    Municipalities,
    /// Prefecture codes.
    Prefectures,
    /// Never released under this preset (always missing).
    Withheld,
}

impl Builder {
    /// The builder of a person column under a preset.
    fn of(column: &str, preset: &Preset) -> Builder {
        match column {
            "age" => Builder::Ages,
            "birth_year_month" if preset.birth != Birth::Year => Builder::YearMonths,
            "birth_year_month" | "birth_year" => Builder::Years,
            "municipality" if preset.geography != Geography::Prefecture => Builder::Municipalities,
            "municipality" | "prefecture" => Builder::Prefectures,
            // Under relative days an absolute death month would anchor the person's index date;
            // the deaths table carries the death as days since it instead.
            "death_month" if preset.dates == Dates::Relative => Builder::Withheld,
            "death_month" if preset.dates != Dates::Year => Builder::YearMonths,
            "death_month" => Builder::Years,
            _ => Builder::Flat,
        }
    }

    /// The readable names of the levels below `*`.
    fn level_names(self) -> &'static [&'static str] {
        match self {
            Builder::Flat => &["as recorded"],
            Builder::Ages => &["years", "5-year bands", "10-year bands", "20-year bands"],
            Builder::YearMonths => &["year-month", "year", "5-year bands", "10-year bands"],
            Builder::Years => &["year", "5-year bands", "10-year bands"],
            Builder::Municipalities => &["municipality", "prefecture"],
            Builder::Prefectures => &["prefecture"],
            Builder::Withheld => &["not released (dates are relative)"],
        }
    }

    /// The hierarchy of the values present (missing values added as their own row).
    fn hierarchy(self, values: &[String], preset: &Preset) -> anon::Result<anon::Hierarchy> {
        let present: Vec<&str> = values
            .iter()
            .map(String::as_str)
            .filter(|v| *v != MISSING)
            .collect();
        if present.is_empty() {
            return anon::Hierarchy::from_rows(
                "missing",
                vec![vec![MISSING.to_string(), "*".to_string()]],
            );
        }
        let top = (preset.top_code_age > 0).then_some(preset.top_code_age);
        let h = match self {
            Builder::Flat | Builder::Withheld => anon::Hierarchy::flat(&present),
            Builder::Ages => anon::Hierarchy::ages(&present, top),
            Builder::YearMonths => anon::Hierarchy::year_months(&present),
            Builder::Years => anon::Hierarchy::years(&present),
            Builder::Municipalities => anon::Hierarchy::municipality_codes(&present),
            Builder::Prefectures => anon::Hierarchy::prefecture_codes(&present),
        }?;
        if present.len() < values.len() {
            h.with_missing(MISSING)
        } else {
            Ok(h)
        }
    }
}

/// A person's value of a column at the preset's granularity (level 0 of its hierarchy).
fn base_value(
    column: &str,
    builder: Builder,
    p: &Person,
    end: NaiveDate,
    preset: &Preset,
) -> Option<String> {
    let age = p.birth.map(|b| age_on(b, p.death.unwrap_or(end).min(end)));
    let top = preset.top_code_age;
    let old = top > 0 && age.is_some_and(|a| a >= top);
    match (column, builder) {
        (_, Builder::Withheld) => None,
        ("sex", _) => p.sex.clone(),
        ("age", _) if old => Some(format!("{top}+")),
        ("age", _) => age.map(|a| a.to_string()),
        ("birth_year_month" | "birth_year", _) if old => None,
        ("birth_year_month" | "birth_year", Builder::YearMonths) => p.birth.map(ym),
        ("birth_year_month" | "birth_year", _) => p.birth.map(|b| b.year().to_string()),
        ("municipality", Builder::Municipalities) => p.municipality.clone(),
        ("municipality" | "prefecture", _) => prefecture_code(p),
        ("death_month", Builder::YearMonths) => p.death.map(ym),
        ("death_month", _) => p.death.map(|d| d.year().to_string()),
        _ => None,
    }
}

/// The prefecture's code (JIS X 0401, the first two digits of the municipality code).
fn prefecture_code(p: &Person) -> Option<String> {
    p.municipality
        .as_deref()
        .and_then(tokumei_japan::place::prefecture_of_code)
        .map(|pref| pref.code.to_string())
}

/// One person column: its builder, every cohort person's level-0 value and its hierarchy.
pub(crate) struct Column {
    pub(crate) name: String,
    builder: Builder,
    pub(crate) values: Vec<String>,
    pub(crate) hierarchy: anon::Hierarchy,
}

impl Column {
    pub(crate) fn new(
        name: &str,
        cohort: &[&Person],
        end: NaiveDate,
        preset: &Preset,
    ) -> Result<Self, ReleaseError> {
        let builder = Builder::of(name, preset);
        let values: Vec<String> = cohort
            .iter()
            .map(|p| base_value(name, builder, p, end, preset).unwrap_or_else(|| MISSING.into()))
            .collect();
        let hierarchy = builder.hierarchy(&values, preset).map_err(engine_err)?;
        Ok(Column {
            name: name.to_string(),
            builder,
            values,
            hierarchy,
        })
    }

    /// Person `i`'s value at `level` (`None` when missing).
    pub(crate) fn value(&self, i: usize, level: usize) -> Option<String> {
        let v = self.hierarchy.generalize(&self.values[i], level)?;
        (v != MISSING).then(|| v.to_string())
    }

    /// The readable name of a level.
    pub(crate) fn level_name(&self, level: usize) -> String {
        if level >= self.hierarchy.height() {
            return "* (not released)".into();
        }
        let names = self.builder.level_names();
        names
            .get(level)
            .or(names.last())
            .copied()
            .unwrap_or("as recorded")
            .into()
    }
}

pub(crate) fn engine_err(e: anon::AnonError) -> ReleaseError {
    ReleaseError::Check(format!("anonymization: {e}"))
}

/// What protecting the persons' quasi-identifiers chose and cost.
pub(crate) struct Protected {
    /// The released quasi-identifier values of each person kept, in cohort order.
    pub rows: Vec<Vec<Option<String>>>,
    /// Persons suppressed.
    pub suppressed: usize,
    /// The engine's risk figures over the quasi-identifiers before (the preset's granularity, the
    /// whole cohort) and after (the released values of the persons kept).
    pub before: anon::RiskSummary,
    pub after: anon::RiskSummary,
    /// Each quasi-identifier's released granularity.
    pub transformation: BTreeMap<String, String>,
}

/// k-anonymity over the person quasi-identifiers (anonymized releases): the engine's optimal search
/// over every column's hierarchy, minimizing ARX's Loss within the preset's suppression limit.
/// Removes the suppressed persons from `cohort` and returns the released values.
pub(crate) fn protect(
    person_cols: &[String],
    cohort: &mut Vec<&Person>,
    end: NaiveDate,
    preset: &Preset,
) -> Result<Protected, ReleaseError> {
    let columns = person_cols
        .iter()
        .map(|c| Column::new(c, cohort, end, preset))
        .collect::<Result<Vec<_>, _>>()?;
    let everyone: Vec<usize> = (0..cohort.len()).collect();
    let mut levels = vec![0usize; columns.len()];
    let before = risk(&rows_at(&columns, &levels, &everyone), preset);
    let mut dropped: HashSet<usize> = HashSet::new();
    if preset.k > 0 && !columns.is_empty() {
        let (chosen, suppressed) = optimal_levels(&columns, cohort.len(), preset)?;
        levels = chosen;
        dropped = suppressed.into_iter().collect();
    }
    let kept: Vec<usize> = everyone
        .into_iter()
        .filter(|i| !dropped.contains(i))
        .collect();
    if kept.is_empty() {
        return Err(ReleaseError::Empty(
            "every person of the cohort was suppressed".into(),
        ));
    }
    let rows = rows_at(&columns, &levels, &kept);
    let after = risk(&rows, preset);
    let mut i = 0;
    cohort.retain(|_| {
        i += 1;
        !dropped.contains(&(i - 1))
    });
    let transformation = columns
        .iter()
        .zip(&levels)
        .map(|(c, &l)| (c.name.clone(), c.level_name(l)))
        .collect();
    Ok(Protected {
        rows,
        suppressed: dropped.len(),
        before,
        after,
        transformation,
    })
}

/// Every cohort person's quasi-identifiers at the preset's granularity (level 0), before any
/// protection: the utility report's "before".
pub(crate) fn base_rows(
    person_cols: &[String],
    cohort: &[&Person],
    end: NaiveDate,
    preset: &Preset,
) -> Result<Vec<Vec<Option<String>>>, ReleaseError> {
    let columns = person_cols
        .iter()
        .map(|c| Column::new(c, cohort, end, preset))
        .collect::<Result<Vec<_>, _>>()?;
    let everyone: Vec<usize> = (0..cohort.len()).collect();
    Ok(rows_at(&columns, &vec![0; columns.len()], &everyone))
}

/// The released values of the persons `which` at the given levels.
pub(crate) fn rows_at(
    columns: &[Column],
    levels: &[usize],
    which: &[usize],
) -> Vec<Vec<Option<String>>> {
    which
        .iter()
        .map(|&i| {
            columns
                .iter()
                .zip(levels)
                .map(|(c, &l)| c.value(i, l))
                .collect()
        })
        .collect()
}

/// The engine's risk figures of released rows (each row one person), at the preset's highest
/// acceptable prosecutor risk as the threshold.
pub(crate) fn risk(rows: &[Vec<Option<String>>], preset: &Preset) -> anon::RiskSummary {
    let mut classes: HashMap<&[Option<String>], u64> = HashMap::new();
    for r in rows {
        *classes.entry(r.as_slice()).or_default() += 1;
    }
    let mut sizes: Vec<u64> = classes.into_values().collect();
    sizes.sort_unstable();
    anon::risk_summary(&sizes, None, None, preset.max_prosecutor_risk)
}

/// The optimal levels for k-anonymity within the suppression limit (ARX's Loss, global optimum over
/// the lattice of the columns' hierarchies) and the cohort indexes to suppress.
fn optimal_levels(
    columns: &[Column],
    persons: usize,
    preset: &Preset,
) -> Result<(Vec<usize>, Vec<usize>), ReleaseError> {
    if persons < preset.k {
        return Err(ReleaseError::Check(format!(
            "k = {} is larger than the cohort of {persons} persons",
            preset.k
        )));
    }
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let rows: Vec<Vec<&str>> = (0..persons)
        .map(|i| columns.iter().map(|c| c.values[i].as_str()).collect())
        .collect();
    let table = anon::Table::from_rows(&names, &rows).map_err(engine_err)?;
    let mut config = anon::Config::default()
        .model(anon::PrivacyModel::KAnonymity { k: preset.k as u64 })
        .suppression(preset.suppression_limit);
    config.search = anon::Search::Optimal;
    for c in columns {
        config = config.qi(&c.name, c.hierarchy.clone());
    }
    let anonymizer = anon::Anonymizer::new(&table, &config).map_err(engine_err)?;
    let outcome = match anonymizer.run() {
        Ok(o) => o,
        Err(anon::AnonError::NoSolution(_)) => {
            return Err(ReleaseError::Check(format!(
            "k = {} cannot be reached within the suppression limit of {:.0} % on {persons} persons",
            preset.k,
            preset.suppression_limit * 100.0,
        )))
        }
        Err(e) => return Err(engine_err(e)),
    };
    let order = anonymizer.quasi_identifiers();
    let levels = columns
        .iter()
        .map(|c| {
            order
                .iter()
                .position(|q| *q == c.name)
                .and_then(|i| outcome.report.transformation_vector.get(i))
                .map_or(0, |&l| l as usize)
        })
        .collect();
    let dropped = outcome
        .suppressed_rows
        .iter()
        .enumerate()
        .filter_map(|(i, &s)| s.then_some(i))
        .collect();
    Ok((levels, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, birth: &str, muni: &str) -> Person {
        Person {
            id: id.into(),
            sex: Some("M".into()),
            birth: NaiveDate::parse_from_str(birth, "%Y-%m-%d").ok(),
            municipality: Some(muni.into()),
            death: None,
        }
    }

    fn preset(k: usize) -> Preset {
        let mut p = Preset::named("jp-anonymized").expect("preset");
        p.k = k;
        p
    }

    #[test]
    fn each_column_has_its_builder_at_the_preset_granularity() {
        let p = preset(2);
        let end = NaiveDate::from_ymd_opt(2024, 3, 31).expect("date");
        let old = person("a", "1920-05-01", "022012");
        let young = person("b", "1980-07-15", "022021");
        let cohort = [&old, &young];
        let age = Column::new("age", &cohort, end, &p).expect("age");
        assert_eq!(age.values, vec!["90+", "43"]);
        assert_eq!(age.value(0, 2).as_deref(), Some("90+"));
        assert_eq!(age.value(1, 1).as_deref(), Some("40-44"));
        let birth = Column::new("birth_year_month", &cohort, end, &p).expect("birth");
        // The birth of a person aged 90 or more is removed, and stays missing at every level.
        assert_eq!(birth.values, vec!["", "1980-07"]);
        assert_eq!(birth.value(0, 1), None);
        assert_eq!(birth.value(1, 2).as_deref(), Some("1980-1984"));
        assert_eq!(birth.level_name(1), "year");
        let muni = Column::new("municipality", &cohort, end, &p).expect("municipality");
        assert_eq!(muni.value(1, 1).as_deref(), Some("02"));
        assert_eq!(muni.level_name(1), "prefecture");
        assert_eq!(muni.level_name(2), "* (not released)");
        assert_eq!(muni.value(0, 2).as_deref(), Some("*"));
    }

    #[test]
    fn persons_reach_k_and_the_risk_is_measured_before_and_after() {
        let p = preset(2);
        let end = NaiveDate::from_ymd_opt(2024, 3, 31).expect("date");
        let people: Vec<Person> = (0..6)
            .map(|i| {
                person(
                    &format!("p{i}"),
                    &format!("19{}0-0{}-01", 5 + i % 3, 1 + i),
                    "022012",
                )
            })
            .collect();
        let mut cohort: Vec<&Person> = people.iter().collect();
        let cols = vec!["sex".to_string(), "birth_year_month".to_string()];
        let out = protect(&cols, &mut cohort, end, &p).expect("protect");
        assert_eq!(out.before.classes, 6, "every birth month distinct");
        assert_eq!(out.before.prosecutor_max, 1.0);
        assert!(out.after.prosecutor_max <= 0.5, "{:?}", out.after);
        assert_eq!(out.rows.len(), cohort.len());
        assert_eq!(out.after.records as usize, cohort.len());
        assert_ne!(out.transformation["birth_year_month"], "year-month");
    }
}
