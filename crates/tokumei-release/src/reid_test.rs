//! The re-identification test of a release folder, as an auditor or the committee runs it after the
//! build: reads the release's tables and manifest, the intruder's population register and, for
//! evaluations on synthetic data, the answer keys; runs the battery ([`crate::reid::run`]) and, against
//! an earlier release folder, the cross-release linkability.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::checks::Table;
use crate::reid::{cross_release_linkability, run_on, Linkability, RegisterPerson, ReidReport};
use crate::ReleaseError;

/// The event tables a release folder may hold, in the order the battery reads them.
pub const EVENT_TABLES: [&str; 6] = [
    "diagnoses",
    "prescriptions",
    "procedures",
    "lab_results",
    "encounters",
    "deaths",
];

/// What the test reads.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The release folder (`release build --out`).
    pub release: PathBuf,
    /// The population register: a CSV (`id` or `person_id`, `sex`, `birth_date`,
    /// `municipality_code` or `municipality`) or the synthetic truth's `persons.parquet`.
    pub population: PathBuf,
    /// The answer key (`pseudonym,person_id`), for evaluations on synthetic data only.
    pub truth: Option<PathBuf>,
    /// An earlier release folder to test cross-release linkability against, with its answer key.
    pub against: Option<PathBuf>,
    /// The answer key of `against`.
    pub against_truth: Option<PathBuf>,
}

/// What the test found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The battery's figures.
    pub report: ReidReport,
    /// Cross-release linkability to `against`, when given.
    pub cross_release: Option<Linkability>,
}

/// Runs the test. A missing or unusable file given by the caller is [`ReleaseError::Input`].
pub fn test(inputs: &Inputs) -> Result<Outcome, ReleaseError> {
    test_on(inputs, None)
}

/// Runs the test with the register's counts on `engine` (in this process when none): the figures
/// of [`test`].
pub fn test_on(
    inputs: &Inputs,
    engine: Option<&dyn tokumei_model::register::RegisterEngine>,
) -> Result<Outcome, ReleaseError> {
    let end = period_end(&inputs.release)?;
    let tables = read_release(&inputs.release)?;
    let register = read_register(&inputs.population)?;
    let truth = inputs.truth.as_deref().map(read_truth).transpose()?;
    let report = run_on(
        engine,
        &tables[0],
        &tables[1..],
        &register,
        end,
        truth.as_ref(),
    )?;
    let cross_release = match &inputs.against {
        Some(dir) => {
            let other = read_release(dir)?;
            let other_truth = inputs
                .against_truth
                .as_deref()
                .map(read_truth)
                .transpose()?;
            Some(cross_release_linkability(
                &tables,
                &other,
                truth.as_ref(),
                other_truth.as_ref(),
            ))
        }
        None => None,
    };
    Ok(Outcome {
        report,
        cross_release,
    })
}

fn input(path: &Path, what: impl std::fmt::Display) -> ReleaseError {
    ReleaseError::Input(format!("{}: {what}", path.display()))
}

/// The period end the release's ages refer to, from its manifest.
fn period_end(release: &Path) -> Result<NaiveDate, ReleaseError> {
    let path = release.join("manifest.json");
    let bytes = std::fs::read(&path).map_err(|e| input(release, e))?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| input(&path, e))?;
    manifest["period_to"]
        .as_str()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| input(&path, "names no period_to"))
}

/// A release folder's tables: persons first, then the event tables it has.
pub fn read_release(dir: &Path) -> Result<Vec<Table>, ReleaseError> {
    let persons = dir.join("tables/persons.csv");
    if !persons.is_file() {
        return Err(input(dir, "no tables/persons.csv"));
    }
    let mut tables = vec![read_csv_table(&persons, "persons")?];
    for t in EVENT_TABLES {
        let p = dir.join(format!("tables/{t}.csv"));
        if p.exists() {
            tables.push(read_csv_table(&p, t)?);
        }
    }
    Ok(tables)
}

/// A `pseudonym,person_id` CSV.
fn read_truth(p: &Path) -> Result<HashMap<String, String>, ReleaseError> {
    let t = read_csv_table(p, "truth")?;
    Ok(t.rows
        .iter()
        .filter_map(|r| Some((r.first()?.clone()?, r.get(1)?.clone()?)))
        .collect())
}

/// The population register: the synthetic truth's persons (Parquet) or a CSV.
pub fn read_register(path: &Path) -> Result<Vec<RegisterPerson>, ReleaseError> {
    if path.extension().is_some_and(|e| e == "parquet") {
        // A large region's table is written in parts: persons.parquet, persons-0002.parquet, ...
        let mut persons: Vec<tokumei_model::truth::TruthPerson> = Vec::new();
        for part in tokumei_model::table::part_paths(path) {
            let bytes = std::fs::read(&part).map_err(|e| input(&part, e))?;
            persons.extend(tokumei_vault::store::read_parquet(bytes).map_err(|e| input(&part, e))?);
        }
        return Ok(persons
            .into_iter()
            .map(|p| RegisterPerson {
                id: p.person_id,
                sex: Some(p.sex.code().to_string()),
                birth: Some(p.birth_date),
                municipality: Some(p.municipality_code),
            })
            .collect());
    }
    let t = read_csv_table(path, "population")?;
    let col = |n: &[&str]| n.iter().find_map(|c| t.col(c));
    let id = col(&["id", "person_id"]).ok_or_else(|| input(path, "no id or person_id column"))?;
    let (sex, birth, muni) = (
        col(&["sex"]),
        col(&["birth_date"]),
        col(&["municipality_code", "municipality"]),
    );
    let cell = |r: &[Option<String>], i: Option<usize>| i.and_then(|i| r.get(i).cloned().flatten());
    Ok(t.rows
        .iter()
        .map(|r| RegisterPerson {
            id: cell(r, Some(id)).unwrap_or_default(),
            sex: cell(r, sex),
            birth: cell(r, birth).and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()),
            municipality: cell(r, muni),
        })
        .collect())
}

/// A CSV with a header row; empty cells are `None`.
fn read_csv_table(path: &Path, name: &str) -> Result<Table, ReleaseError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| input(path, e))?;
    let columns: Vec<String> = r
        .headers()
        .map_err(|e| input(path, e))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| input(path, e))?;
        rows.push(
            rec.iter()
                .map(|v| (!v.is_empty()).then(|| v.to_string()))
                .collect(),
        );
    }
    Ok(Table {
        name: name.to_string(),
        columns,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn a_release_folder_is_tested_against_a_csv_register() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rel = dir.path().join("release");
        write(&rel.join("manifest.json"), r#"{"period_to": "2024-03-31"}"#);
        write(
            &rel.join("tables/persons.csv"),
            "pseudonym,sex,age\na,M,40-49\nb,M,40-49\nc,F,50-59\n",
        );
        write(
            &dir.path().join("register.csv"),
            "id,sex,birth_date\n1,M,1980-01-01\n2,M,1981-01-01\n3,F,1970-01-01\n4,F,1969-02-02\n",
        );
        write(
            &dir.path().join("truth.csv"),
            "pseudonym,person_id\na,1\nb,2\nc,3\n",
        );
        let out = test(&Inputs {
            release: rel.clone(),
            population: dir.path().join("register.csv"),
            truth: Some(dir.path().join("truth.csv")),
            ..Default::default()
        })
        .expect("test");
        assert_eq!(out.report.persons, 3);
        assert_eq!(out.report.min_class, 1);
        assert!(out.report.attack_success.is_some());
        assert!(out.cross_release.is_none());
        let missing = test(&Inputs {
            release: dir.path().join("nothing"),
            population: dir.path().join("register.csv"),
            ..Default::default()
        });
        assert!(matches!(missing, Err(ReleaseError::Input(_))));
        let no_id = dir.path().join("bad.csv");
        write(&no_id, "sex\nM\n");
        assert!(
            matches!(read_register(&no_id), Err(ReleaseError::Input(m)) if m.contains("no id"))
        );
    }
}
