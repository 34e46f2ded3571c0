//! Counts before noise against the synthetic truth: a region is generated, its canonical tables are
//! counted with the region's true person index (what the vault holds once every record is linked to
//! its true person), and every figure of the attrition is computed again, independently, from the
//! truth's persons (sex, birth, death) and the records of each true person, by plain code written
//! per cohort. The true conditions check that the records say what the persons have; persons who
//! asked to stop are never counted.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use common::region;
use tokumei_feasibility::evaluate::{count, members, Population};
use tokumei_feasibility::Definition;
use tokumei_model::codes::CodeSystem;
use tokumei_model::events::{Diagnosis, Encounter, LabResult, Prescription, Procedure};
use tokumei_model::truth::{RecordLink, TruthCondition, TruthPerson};
use tokumei_synth::writer::{read_sources, read_table};
use tokumei_synth::{generate, Config};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// A true person with the records of every provider that belong to them.
#[derive(Default)]
struct Truthful {
    sex: String,
    birth: Option<NaiveDate>,
    death: Option<NaiveDate>,
    diagnoses: Vec<(NaiveDate, String)>,
    drugs: Vec<(NaiveDate, String)>,
    labs: Vec<(NaiveDate, String, Option<f64>)>,
    /// First and last day of any record.
    first: Option<NaiveDate>,
    last: Option<NaiveDate>,
}

impl Truthful {
    fn saw(&mut self, from: NaiveDate, to: NaiveDate) {
        self.first = Some(self.first.map_or(from, |f| f.min(from)));
        self.last = Some(self.last.map_or(to, |l| l.max(to)));
    }

    fn age(&self, on: NaiveDate) -> i32 {
        tokumei_model::age_on(self.birth.expect("birth"), on)
    }

    /// First diagnosis with an ICD-10 code under one of `codes`, between `from` and `to`.
    fn first_diagnosis(&self, codes: &[&str], from: &str, to: &str) -> Option<NaiveDate> {
        let (from, to) = (day(from), day(to));
        self.diagnoses
            .iter()
            .filter(|(d, c)| *d >= from && *d <= to && codes.iter().any(|x| c.starts_with(x)))
            .map(|(d, _)| *d)
            .min()
    }

    /// Distinct days with a diagnosis under `codes`, `from`..=`to` days after `index`.
    fn diagnosis_days(&self, codes: &[&str], index: NaiveDate, from: i64, to: i64) -> usize {
        distinct_days(&self.diagnoses, codes, index, from, to)
    }

    /// Distinct days with a drug under `prefixes`, `from`..=`to` days after `index`.
    fn drug_days(&self, prefixes: &[&str], index: NaiveDate, from: i64, to: i64) -> usize {
        distinct_days(&self.drugs, prefixes, index, from, to)
    }
}

/// Distinct days of the rows under `prefixes`, `from`..=`to` days after `index`.
fn distinct_days(
    rows: &[(NaiveDate, String)],
    prefixes: &[&str],
    index: NaiveDate,
    from: i64,
    to: i64,
) -> usize {
    let days: HashSet<NaiveDate> = rows
        .iter()
        .filter(|(d, c)| {
            let n = (*d - index).num_days();
            n >= from && n <= to && prefixes.iter().any(|p| c.starts_with(p))
        })
        .map(|(d, _)| *d)
        .collect();
    days.len()
}

/// The true person of a record.
fn of<'a>(
    out: &'a mut BTreeMap<String, Truthful>,
    links: &HashMap<String, String>,
    record: &str,
) -> &'a mut Truthful {
    out.get_mut(&links[record]).expect("person of a record")
}

/// Every true person (by id) with their records, read straight from the region's tables.
fn truth(region: &std::path::Path) -> BTreeMap<String, Truthful> {
    let mut out: BTreeMap<String, Truthful> = BTreeMap::new();
    for p in read_table::<TruthPerson>(&region.join("truth/persons.parquet")).expect("persons") {
        let t = out.entry(p.person_id).or_default();
        t.sex = p.sex.code().to_string();
        t.birth = Some(p.birth_date);
        t.death = p.death_date;
    }
    let links: HashMap<String, String> =
        read_table::<RecordLink>(&region.join("truth/record_links.parquet"))
            .expect("links")
            .into_iter()
            .map(|l| (l.record_id, l.person_id))
            .collect();
    for d in read_sources::<Diagnosis>(region).expect("diagnoses") {
        let icd = match (&d.icd10, d.code_system) {
            (Some(i), _) => i.replace('.', ""),
            (None, CodeSystem::Icd10) => d.code.replace('.', ""),
            _ => String::new(),
        };
        let t = of(&mut out, &links, &d.record_id);
        t.saw(d.date, d.date);
        t.diagnoses.push((d.date, icd));
    }
    for p in read_sources::<Prescription>(region).expect("prescriptions") {
        let t = of(&mut out, &links, &p.record_id);
        t.saw(p.date, p.date);
        t.drugs.push((p.date, p.code));
    }
    for p in read_sources::<Procedure>(region).expect("procedures") {
        of(&mut out, &links, &p.record_id).saw(p.date, p.date);
    }
    for l in read_sources::<LabResult>(region).expect("labs") {
        let t = of(&mut out, &links, &l.record_id);
        t.saw(l.date, l.date);
        t.labs.push((l.date, l.code, l.value_num));
    }
    for e in read_sources::<Encounter>(region).expect("encounters") {
        of(&mut out, &links, &e.record_id).saw(e.start_date, e.end_date.max(e.start_date));
    }
    out
}

/// A cohort: its definition, and per person the steps of its attrition as plain code computes
/// them (`None`: no index event; otherwise whether each step after the index holds).
struct Cohort {
    definition: &'static str,
    steps: fn(&Truthful) -> Option<Vec<bool>>,
}

const T2DM: &str = include_str!("common/t2dm_region.toml");

fn t2dm(t: &Truthful) -> Option<Vec<bool>> {
    let index = t.first_diagnosis(&["E11"], "2021-04-01", "2023-12-31")?;
    Some(vec![
        (40..=74).contains(&t.age(index)),
        true,
        t.drug_days(&["3962002", "622242501"], index, 0, 90) > 0,
        t.diagnosis_days(&["N18"], index, -365, -1) == 0,
    ])
}

const DEATHS: &str = r#"
name = "women with hypertension who died within a year"
[concept_sets]
htn = { icd10 = ["I10"] }
[index]
concept = "htn"
from = "2021-04-01"
to = "2022-03-31"
[demographics]
sex = "F"
[[rules]]
name = "aged 75 or more"
age = { min = 75 }
[[rules]]
name = "death within 365 days"
death = { from = 0, to = 365 }
"#;

fn deaths(t: &Truthful) -> Option<Vec<bool>> {
    let index = t.first_diagnosis(&["I10"], "2021-04-01", "2022-03-31")?;
    let died = t
        .death
        .is_some_and(|d| (0..=365).contains(&(d - index).num_days()));
    Some(vec![t.sex == "F", true, t.age(index) >= 75, died])
}

const HBA1C: &str = r#"
name = "high HbA1c and metformin on three days within a year"
[concept_sets]
hba1c = { labs = ["3D046"], value = { min = 6.5 } }
metformin = { drugs = ["3962002"] }
[index]
concept = "hba1c"
[demographics]
age = { min = 65 }
[observation]
before = 180
[[rules]]
name = "metformin on three days within a year"
event = { concept = "metformin", window = { from = -365, to = 365 }, at_least = 3 }
"#;

fn hba1c(t: &Truthful) -> Option<Vec<bool>> {
    let index = t
        .labs
        .iter()
        .filter(|(_, c, v)| c.starts_with("3D046") && v.is_some_and(|v| v >= 6.5))
        .map(|(d, _, _)| *d)
        .min()?;
    let observed = t.first.is_some_and(|f| (index - f).num_days() >= 180);
    Some(vec![
        t.age(index) >= 65,
        observed,
        t.drug_days(&["3962002", "622242501"], index, -365, 365) >= 3,
    ])
}

const CANCER: &[&str] = &["C16", "C18", "C22", "C25", "C34", "C50", "C61"];

const COLDS: &str = r#"
name = "colds in 2022 with hypertension or dyslipidaemia before, never cancer"
[concept_sets]
urti = { icd10 = ["J06"] }
htn = { icd10 = ["I10"] }
lipid = { icd10 = ["E78"] }
cancer = { icd10 = ["C16", "C18", "C22", "C25", "C34", "C50", "C61"] }
[index]
concept = "urti"
from = "2022-01-01"
to = "2022-12-31"
[[rules]]
name = "hypertension or dyslipidaemia before"
any = [
  { event = { concept = "htn", window = { to = -1 } } },
  { event = { concept = "lipid", window = { to = -1 } } },
]
[[rules]]
name = "never cancer"
not = { event = { concept = "cancer" } }
"#;

fn colds(t: &Truthful) -> Option<Vec<bool>> {
    let index = t.first_diagnosis(&["J06"], "2022-01-01", "2022-12-31")?;
    let before = |c: &str| t.diagnosis_days(&[c], index, i64::MIN / 4, -1) > 0;
    Some(vec![
        true,
        true,
        before("I10") || before("E78"),
        t.diagnosis_days(CANCER, index, i64::MIN / 4, i64::MAX / 4) == 0,
    ])
}

fn cohorts() -> Vec<Cohort> {
    vec![
        Cohort {
            definition: T2DM,
            steps: t2dm,
        },
        Cohort {
            definition: DEATHS,
            steps: deaths,
        },
        Cohort {
            definition: HBA1C,
            steps: hba1c,
        },
        Cohort {
            definition: COLDS,
            steps: colds,
        },
    ]
}

/// The attrition (persons left after each step, the index first) and the final cohort's ids, as
/// plain code computes them from the truth, without the persons of `excluded`.
fn expected(
    truth: &BTreeMap<String, Truthful>,
    steps: fn(&Truthful) -> Option<Vec<bool>>,
    excluded: &HashSet<String>,
) -> (Vec<u64>, BTreeMap<String, u64>, HashSet<String>) {
    let mut left: Vec<u64> = Vec::new();
    let mut sexes: BTreeMap<String, u64> = BTreeMap::new();
    let mut final_cohort = HashSet::new();
    for (id, t) in truth.iter().filter(|(id, _)| !excluded.contains(*id)) {
        let Some(s) = steps(t) else { continue };
        if left.is_empty() {
            left = vec![0; s.len() + 1];
        }
        let passed = 1 + s.iter().take_while(|&&ok| ok).count();
        for l in left.iter_mut().take(passed) {
            *l += 1;
        }
        if passed == left.len() {
            *sexes.entry(t.sex.clone()).or_default() += 1;
            final_cohort.insert(id.clone());
        }
    }
    (left, sexes, final_cohort)
}

fn engine(
    def: &Definition,
    population: &Population,
    ids: &[String],
) -> (Vec<u64>, BTreeMap<String, u64>, HashSet<String>) {
    let c = count(def, population);
    let members = members(def, population)
        .into_iter()
        .map(|i| ids[i].clone())
        .collect();
    (c.steps.iter().map(|s| s.persons).collect(), c.sex, members)
}

/// A region of `people` generated with `seed` in a temporary folder (removed when dropped).
fn generated(people: u64, seed: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp");
    let config = Config {
        people,
        seed,
        out: dir.path().join("region"),
        ..Config::default()
    };
    generate(&config, &|_| {}).expect("generate");
    (dir, config.out)
}

#[test]
fn counts_before_noise_equal_the_counts_of_the_synthetic_truth() {
    let (_dir, region) = generated(6_000, 23);
    let region = &region;
    let truth = truth(region);
    let conditions: Vec<TruthCondition> =
        read_table(&region.join("truth/conditions.parquet")).expect("conditions");
    let none = HashSet::new();
    let (population, ids) = region::population(region, &none).expect("population");
    for cohort in cohorts() {
        let def = Definition::parse(cohort.definition, false).expect("definition");
        let want = expected(&truth, cohort.steps, &none);
        assert!(
            want.0[0] >= 30 && *want.0.last().expect("final") >= 5,
            "{}: {:?}",
            def.name,
            want.0
        );
        assert_eq!(engine(&def, &population, &ids), want, "{}", def.name);
    }
    // The records say what the persons have: everyone indexed on diabetes has it, begun by then.
    let def = Definition::parse(T2DM, false).expect("definition");
    let diabetic: HashMap<&str, NaiveDate> = conditions
        .iter()
        .filter(|c| c.icd10.starts_with("E11"))
        .map(|c| (c.person_id.as_str(), c.onset))
        .collect();
    for i in members(&def, &population) {
        let index = truth[&ids[i]].first_diagnosis(&["E11"], "2021-04-01", "2023-12-31");
        let onset = diabetic.get(ids[i].as_str()).expect("a true diabetic");
        assert!(
            index.is_some_and(|d| *onset <= d),
            "onset after the first record"
        );
    }
}

#[test]
fn persons_who_asked_to_stop_are_never_counted() {
    let (_dir, region) = generated(3_000, 29);
    let region = &region;
    let truth = truth(region);
    let none = HashSet::new();
    let mut cohort: Vec<String> = expected(&truth, colds, &none).2.into_iter().collect();
    cohort.sort();
    let stopped: HashSet<String> = cohort.into_iter().step_by(3).collect();
    assert!(stopped.len() >= 5, "{} stopped", stopped.len());
    let (population, ids) = region::population(region, &stopped).expect("population");
    let def = Definition::parse(COLDS, false).expect("definition");
    let (steps, sexes, members) = engine(&def, &population, &ids);
    assert!(members.is_disjoint(&stopped));
    assert_eq!((steps, sexes, members), expected(&truth, colds, &stopped));
}
