//! Acceptance checks on a generated region, made on the written files (not on internals).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};
use tokumei_model::checkdigit::insurer_number_is_valid;
use tokumei_model::events::{Death, Diagnosis, Encounter, LabResult, Prescription, Procedure};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::truth::{RecordLink, TruthCoverage, TruthNameChange, TruthPerson};
use tokumei_model::{InsuranceKind, SourceKind};
use tokumei_synth::dates::age_on;
use tokumei_synth::writer::{read_sources, read_table};
use tokumei_synth::{generate, Config};

const PEOPLE: u64 = 20_000;

struct Region {
    root: PathBuf,
    start: NaiveDate,
}

fn region() -> &'static Region {
    static R: OnceLock<Region> = OnceLock::new();
    R.get_or_init(|| {
        // A static is never dropped, so a `TempDir` here would leak 600 MB per run. The region
        // lives in the test target's scratch folder instead, replaced on every run.
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synth-region-20k");
        if root.exists() {
            std::fs::remove_dir_all(&root).expect("remove the previous run's region");
        }
        let config = Config {
            people: PEOPLE,
            seed: 7,
            out: root.clone(),
            ..Config::default()
        };
        generate(&config, &|_| {}).expect("generate");
        Region {
            root,
            start: NaiveDate::from_ymd_opt(2021, 4, 1).expect("date"),
        }
    })
}

fn persons() -> Vec<TruthPerson> {
    read_table(&region().root.join("truth/persons.parquet")).expect("persons")
}

#[test]
fn population_size_and_age_structure() {
    let r = region();
    let ps = persons();
    assert_eq!(ps.len() as u64, PEOPLE);
    let old = ps
        .iter()
        .filter(|p| age_on(p.birth_date, r.start) >= 65)
        .count();
    let share = old as f64 / ps.len() as f64;
    assert!((0.30..=0.40).contains(&share), "65+ share {share}");
    let children = ps
        .iter()
        .filter(|p| age_on(p.birth_date, r.start) < 15)
        .count();
    assert!(children > 0, "no children");
    let ids: BTreeSet<_> = ps.iter().map(|p| &p.person_id).collect();
    assert_eq!(ids.len(), ps.len(), "person ids are unique");
}

#[test]
fn surnames_are_skewed_with_a_long_tail_and_same_names_occur() {
    let ps = persons();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for p in &ps {
        *counts.entry(p.initial_surname_kanji.as_str()).or_default() += 1;
    }
    let top = counts.values().copied().max().unwrap_or(0) as f64 / ps.len() as f64;
    assert!(
        (0.01..=0.03).contains(&top),
        "commonest surname share {top}"
    );
    assert!(counts.len() > 500, "{} distinct surnames", counts.len());
    let mut same: HashMap<(&str, &str, i32), usize> = HashMap::new();
    for p in &ps {
        *same
            .entry((&p.surname_kanji, &p.given_kanji, p.birth_date.year()))
            .or_default() += 1;
    }
    assert!(
        same.values().any(|&n| n >= 2),
        "no two people share full name and birth year"
    );
}

#[test]
fn every_insurer_number_passes_its_check_digit() {
    let root = &region().root;
    let ids: Vec<IdentityRecord> = read_sources(root).expect("identities");
    let mut n = 0;
    for r in &ids {
        if let Some(num) = &r.insurer_number {
            n += 1;
            assert!(insurer_number_is_valid(num), "invalid insurer number {num}");
            let expected_len = if r.insurance_kind == Some(InsuranceKind::Kokuho) {
                6
            } else {
                8
            };
            assert_eq!(num.len(), expected_len);
        }
    }
    assert!(n > 1000);
    let covs: Vec<TruthCoverage> =
        read_table(&root.join("truth/coverages.parquet")).expect("coverages");
    assert!(covs
        .iter()
        .all(|c| insurer_number_is_valid(&c.insurer_number)));
}

#[test]
fn every_record_maps_to_exactly_one_person() {
    let root = &region().root;
    check_links(root);
    let ids: Vec<IdentityRecord> = read_sources(root).expect("identities");
    let kinds: BTreeSet<SourceKind> = ids.iter().map(|r| r.source_kind).collect();
    for k in [
        SourceKind::Emr,
        SourceKind::Fhir,
        SourceKind::Claims,
        SourceKind::Checkup,
        SourceKind::Death,
    ] {
        assert!(kinds.contains(&k), "no {k} record");
    }
}

fn check_links(root: &Path) {
    let ids: Vec<IdentityRecord> = read_sources(root).expect("identities");
    let links: Vec<RecordLink> =
        read_table(&root.join("truth/record_links.parquet")).expect("links");
    let persons: BTreeSet<String> = read_table::<TruthPerson>(&root.join("truth/persons.parquet"))
        .expect("persons")
        .into_iter()
        .map(|p| p.person_id)
        .collect();
    let mut link_of: HashMap<&str, &RecordLink> = HashMap::new();
    for l in &links {
        assert!(
            link_of.insert(l.record_id.as_str(), l).is_none(),
            "record linked twice"
        );
        assert!(persons.contains(&l.person_id), "link to unknown person");
    }
    assert_eq!(ids.len(), links.len(), "links and records differ in number");
    for r in &ids {
        let l = link_of
            .get(r.record_id.as_str())
            .expect("record without link");
        assert_eq!(l.provider_id, r.provider_id);
        assert_eq!(l.source_kind, r.source_kind);
    }
    // Every event points at a record of its own provider.
    let record_ids: BTreeSet<&str> = ids.iter().map(|r| r.record_id.as_str()).collect();
    let encounters: Vec<Encounter> = read_sources(root).expect("encounters");
    assert!(encounters
        .iter()
        .all(|e| record_ids.contains(e.record_id.as_str())));
}

/// Record ids with injected noise of a kind starting with `prefix`.
fn noisy(root: &Path, prefix: &str) -> BTreeSet<String> {
    read_table::<tokumei_model::truth::TruthNoise>(&root.join("truth/noise.parquet"))
        .expect("noise")
        .into_iter()
        .filter(|n| n.kind.starts_with(prefix))
        .map(|n| n.record_id)
        .collect()
}

fn person_of_record(root: &Path) -> HashMap<String, String> {
    let links: Vec<RecordLink> =
        read_table(&root.join("truth/record_links.parquet")).expect("links");
    links
        .into_iter()
        .map(|l| (l.record_id, l.person_id))
        .collect()
}

#[test]
fn no_event_after_death() {
    let root = &region().root;
    assert!(persons().iter().any(|p| p.death_date.is_some()));
    check_deaths(root);
}

fn check_deaths(root: &Path) {
    let death: HashMap<String, NaiveDate> =
        read_table::<TruthPerson>(&root.join("truth/persons.parquet"))
            .expect("persons")
            .into_iter()
            .filter_map(|p| p.death_date.map(|d| (p.person_id, d)))
            .collect();
    let person = person_of_record(root);
    let check = |record: &str, date: NaiveDate, what: &str| {
        let p = &person[record];
        if let Some(d) = death.get(p) {
            assert!(date <= *d, "{what} on {date} after death on {d}");
        }
    };
    for e in read_sources::<Encounter>(root).expect("encounters") {
        check(&e.record_id, e.end_date, "encounter");
        assert!(e.start_date <= e.end_date);
    }
    for e in read_sources::<Diagnosis>(root).expect("diagnoses") {
        check(&e.record_id, e.date, "diagnosis");
        if let Some(o) = e.outcome_date {
            check(&e.record_id, o, "diagnosis outcome");
        }
    }
    for e in read_sources::<Prescription>(root).expect("prescriptions") {
        check(&e.record_id, e.date, "prescription");
    }
    for e in read_sources::<Procedure>(root).expect("procedures") {
        check(&e.record_id, e.date, "procedure");
    }
    for e in read_sources::<LabResult>(root).expect("lab results") {
        check(&e.record_id, e.date, "lab result");
    }
    let deaths: Vec<Death> = read_sources(root).expect("deaths");
    for e in &deaths {
        let p = &person[&e.record_id];
        assert_eq!(
            death.get(p),
            Some(&e.date),
            "death event disagrees with truth"
        );
    }
    // Every death has its municipal removal record.
    let recorded: BTreeSet<&String> = deaths.iter().map(|e| &person[&e.record_id]).collect();
    assert!(death.keys().all(|p| recorded.contains(p)));
}

#[test]
fn checkups_only_for_insured_aged_40_to_74() {
    let n = check_checkups(&region().root);
    assert!(n > 1000, "only {n} checkups");
}

fn check_checkups(root: &Path) -> usize {
    let ids: Vec<IdentityRecord> = read_sources(root).expect("identities");
    let transposed = noisy(root, "birth-");
    let mut n = 0;
    for r in ids
        .iter()
        .filter(|r| r.source_kind == SourceKind::Checkup && !transposed.contains(&r.record_id))
    {
        n += 1;
        let birth = r.birth_date.expect("birth date");
        let age = age_on(birth, r.recorded_on);
        assert!((40..=74).contains(&age), "checkup at age {age}");
        assert_ne!(r.insurance_kind, Some(InsuranceKind::Koki));
        assert!(r.surname_kanji.is_none(), "checkups carry no kanji name");
        assert!(r.insurer_number.is_some());
    }
    let labs: Vec<LabResult> = read_sources(root).expect("labs");
    assert!(
        labs.iter().all(|l| l.code.len() == 17),
        "JLAC10 codes are 17 characters"
    );
    n
}

#[test]
fn late_elderly_insurance_from_75_and_life_events_happen() {
    let root = &region().root;
    let births: HashMap<String, NaiveDate> = persons()
        .into_iter()
        .map(|p| (p.person_id, p.birth_date))
        .collect();
    let covs: Vec<TruthCoverage> =
        read_table(&root.join("truth/coverages.parquet")).expect("coverages");
    let mut switched = 0;
    let mut by_person: BTreeMap<&str, Vec<&TruthCoverage>> = BTreeMap::new();
    for c in &covs {
        by_person.entry(&c.person_id).or_default().push(c);
        let age = age_on(births[&c.person_id], c.valid_from);
        assert_eq!(
            c.insurance_kind == InsuranceKind::Koki,
            age >= 75,
            "koki at age {age}"
        );
    }
    for list in by_person.values() {
        if list.windows(2).any(|w| {
            w[0].insurance_kind != InsuranceKind::Koki && w[1].insurance_kind == InsuranceKind::Koki
        }) {
            switched += 1;
        }
    }
    assert!(switched > 50, "{switched} people switched to koki at 75");
    let changes: Vec<TruthNameChange> =
        read_table(&root.join("truth/name_changes.parquet")).expect("names");
    assert!(!changes.is_empty(), "no marriage surname change");
    assert!(changes
        .iter()
        .all(|c| c.old_surname_kanji != c.new_surname_kanji));
    let addresses: Vec<tokumei_model::truth::TruthAddress> =
        read_table(&root.join("truth/addresses.parquet")).expect("addresses");
    let mut per_person: HashMap<&str, usize> = HashMap::new();
    for a in &addresses {
        *per_person.entry(a.person_id.as_str()).or_default() += 1;
    }
    let movers = per_person.values().filter(|&&n| n > 1).count();
    let share = movers as f64 / PEOPLE as f64;
    assert!((0.03..0.25).contains(&share), "movers {share}");
}

#[test]
fn claims_carry_the_name_in_force_at_the_time() {
    let root = &region().root;
    let changes: Vec<TruthNameChange> =
        read_table(&root.join("truth/name_changes.parquet")).expect("names");
    let person = person_of_record(root);
    let by_person: HashMap<&str, &TruthNameChange> =
        changes.iter().map(|c| (c.person_id.as_str(), c)).collect();
    let ids: Vec<IdentityRecord> = read_sources(root).expect("identities");
    let mut stale = noisy(root, "stale-surname");
    assert!(
        !stale.is_empty(),
        "some records keep the surname from before marriage"
    );
    stale.extend(noisy(root, "variant-kanji"));
    let mut checked = 0;
    for r in ids
        .iter()
        .filter(|r| r.source_kind == SourceKind::Claims && !stale.contains(&r.record_id))
    {
        if let Some(c) = by_person.get(person[&r.record_id].as_str()) {
            let expected = if r.recorded_on < c.date {
                &c.old_surname_kanji
            } else {
                &c.new_surname_kanji
            };
            assert_eq!(r.surname_kanji.as_ref(), Some(expected));
            checked += 1;
        }
    }
    assert!(checked > 0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(6))]

    /// The structural invariants hold for any seed and period, not only the one above.
    #[test]
    fn invariants_hold_for_any_seed(seed in proptest::prelude::any::<u64>(), months in 1u32..30, people in 1u64..400) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("r");
        let config = Config { people, seed, months, start: "2019-01".into(), out: root.clone(), force: false, noise: 5.0, ..Config::default() };
        let summary = generate(&config, &|_| {}).expect("generate");
        proptest::prop_assert_eq!(summary.people, people);
        check_links(&root);
        check_deaths(&root);
        check_checkups(&root);
    }
}

/// The canonical records of the region by record id, with encounter references turned into the
/// encounter's index within its record (as readers give them).
fn canonical_records(root: &Path) -> HashMap<String, tokumei_model::events::SourceRecord> {
    use tokumei_model::events::{EventSet, SourceRecord};
    let ids: Vec<IdentityRecord> = read_sources(root).expect("identities");
    let mut records: HashMap<String, SourceRecord> = ids
        .into_iter()
        .map(|r| {
            (
                r.record_id.clone(),
                SourceRecord {
                    identity: r,
                    events: EventSet::default(),
                },
            )
        })
        .collect();
    let mut enc_index: HashMap<String, String> = HashMap::new();
    for e in read_sources::<Encounter>(root).expect("encounters") {
        if let Some(r) = records.get_mut(&e.record_id) {
            enc_index.insert(e.event_id.clone(), r.events.encounters.len().to_string());
            r.events.encounters.push(e);
        }
    }
    let idx = |e: &mut Option<String>| {
        *e = e.as_ref().and_then(|id| enc_index.get(id).cloned());
    };
    for mut e in read_sources::<Diagnosis>(root).expect("diagnoses") {
        idx(&mut e.encounter_id);
        if let Some(r) = records.get_mut(&e.record_id) {
            r.events.diagnoses.push(e);
        }
    }
    for mut e in read_sources::<Procedure>(root).expect("procedures") {
        idx(&mut e.encounter_id);
        if let Some(r) = records.get_mut(&e.record_id) {
            r.events.procedures.push(e);
        }
    }
    for mut e in read_sources::<Prescription>(root).expect("prescriptions") {
        idx(&mut e.encounter_id);
        if let Some(r) = records.get_mut(&e.record_id) {
            r.events.prescriptions.push(e);
        }
    }
    for mut e in read_sources::<LabResult>(root).expect("lab results") {
        idx(&mut e.encounter_id);
        if let Some(r) = records.get_mut(&e.record_id) {
            r.events.lab_results.push(e);
        }
    }
    for e in read_sources::<Death>(root).expect("deaths") {
        if let Some(r) = records.get_mut(&e.record_id) {
            r.events.deaths.push(e);
        }
    }
    records
}

#[test]
fn native_files_read_back_as_the_canonical_records() {
    use tokumei_model::truth::NativeLink;
    let root = &region().root;
    let links: Vec<NativeLink> =
        read_table(&root.join("truth/native_links.parquet")).expect("native links");
    let records = canonical_records(root);
    for kind in [
        SourceKind::Claims,
        SourceKind::Death,
        SourceKind::Emr,
        SourceKind::Fhir,
        SourceKind::Checkup,
    ] {
        assert_eq!(
            links.iter().filter(|l| l.source_kind == kind).count(),
            records
                .values()
                .filter(|r| r.identity.source_kind == kind)
                .count(),
            "every {kind} record is in a native file"
        );
    }

    let mut check = NativeCheck {
        records,
        malformed: noisy(root, "malformed-"),
        wrong_encoding: noisy(root, "malformed-encoding"),
        compared: BTreeMap::new(),
        legacy_deaths: 0,
    };
    assert!(
        !check.malformed.is_empty(),
        "some native records are malformed on purpose"
    );
    let mut files: BTreeMap<&str, Vec<&NativeLink>> = BTreeMap::new();
    for l in &links {
        let file = l.path.split('#').next().unwrap_or(&l.path);
        files.entry(file).or_default().push(l);
    }
    for (path, file_links) in files {
        let bytes = std::fs::read(root.join(path)).expect("native file");
        let file_name = path.rsplit('/').next().unwrap_or(path);
        if file_name.starts_with("ssmix2") && file_name.ends_with(".zip") {
            check.ssmix2_archive(path, &bytes, &file_links);
        } else if path.ends_with(".zip") {
            check.kenshin_archive(path, &bytes, &file_links);
        } else if path.ends_with(".ndjson") {
            check.fhir_file(path, &bytes, &file_links);
        } else {
            check.line_file(path, &bytes, &file_links);
        }
    }
    let NativeCheck {
        compared,
        legacy_deaths,
        ..
    } = check;
    assert!(compared[&SourceKind::Claims] > 1000, "{compared:?}");
    assert!(compared[&SourceKind::Death] > 100, "{compared:?}");
    assert!(
        legacy_deaths > 20,
        "legacy (Shift_JIS, era-dated) death exports: {legacy_deaths}"
    );
    assert!(compared[&SourceKind::Emr] > 1000, "{compared:?}");
    assert!(compared[&SourceKind::Fhir] > 300, "{compared:?}");
    assert!(compared[&SourceKind::Checkup] > 5000, "{compared:?}");
}

/// What the native files are compared with, and what was compared.
struct NativeCheck {
    records: HashMap<String, tokumei_model::events::SourceRecord>,
    malformed: BTreeSet<String>,
    wrong_encoding: BTreeSet<String>,
    compared: BTreeMap<SourceKind, usize>,
    legacy_deaths: usize,
}

type Links<'a> = [&'a tokumei_model::truth::NativeLink];

impl NativeCheck {
    /// An SS-MIX2 storage archive: one patient folder per record.
    fn ssmix2_archive(&mut self, path: &str, bytes: &[u8], file_links: &Links) {
        let provider = &file_links[0].provider_id;
        let reports = tokumei_formats::ssmix2::read_zip(std::io::Cursor::new(bytes), provider)
            .expect("archive");
        assert_eq!(reports.len(), file_links.len(), "{path}");
        let by_folder: HashMap<String, &tokumei_formats::ssmix2::PatientReport> = reports
            .iter()
            .filter_map(|r| {
                let f = r.files.first()?;
                Some((tokumei_formats::ssmix2::patient_folder(&f.0).to_string(), r))
            })
            .collect();
        for l in file_links {
            let folder = l.path.split('#').nth(1).expect("entry");
            let rep = by_folder[folder];
            if self.wrong_encoding.contains(&l.record_id) {
                assert!(
                    rep.warnings() > 0,
                    "{}: wrong encoding not reported",
                    l.path
                );
                assert_eq!(rep.errors(), 0, "{}", l.path);
            } else if self.malformed.contains(&l.record_id) {
                assert!(rep.errors() > 0, "{}: malformed not reported", l.path);
                continue;
            } else {
                assert_eq!(
                    rep.errors() + rep.warnings(),
                    0,
                    "{}: {:?}",
                    l.path,
                    rep.files
                );
            }
            let got = rep.record.as_ref().expect("record");
            let want = tokumei_formats::ssmix2::canonicalize(&self.records[&l.record_id]);
            assert_eq!(got.identity, want.identity, "{}", l.path);
            assert_eq!(got.events, want.events, "{}", l.path);
            *self.compared.entry(SourceKind::Emr).or_default() += 1;
        }
    }

    /// A checkup submission archive: one document per record.
    fn kenshin_archive(&mut self, path: &str, bytes: &[u8], file_links: &Links) {
        let provider = &file_links[0].provider_id;
        let mut docs: HashMap<String, Vec<u8>> = HashMap::new();
        tokumei_formats::archive::for_each_entry(std::io::Cursor::new(bytes), |n, b| {
            docs.insert(n.to_string(), b);
        })
        .expect("archive");
        assert_eq!(docs.len(), file_links.len(), "{path}");
        for l in file_links {
            let entry = l.path.split('#').nth(1).expect("entry");
            let report = tokumei_formats::kenshin::read(&docs[entry], provider);
            if self.malformed.contains(&l.record_id) {
                assert!(report.errors() > 0, "{}: malformed not reported", l.path);
                continue;
            }
            assert_eq!(report.errors(), 0, "{}: {:?}", l.path, report.issues);
            let want = tokumei_formats::kenshin::canonicalize(&self.records[&l.record_id]);
            let got = &report.records[0].record;
            assert_eq!(got.identity, want.identity, "{}", l.path);
            assert_eq!(got.events, want.events, "{}", l.path);
            *self.compared.entry(SourceKind::Checkup).or_default() += 1;
        }
    }

    /// A FHIR NDJSON export: errors exactly on the lines malformed on purpose, every other bundle
    /// the canonical record.
    fn fhir_file(&mut self, path: &str, bytes: &[u8], file_links: &Links) {
        let provider = &file_links[0].provider_id;
        let report = tokumei_formats::fhir::read(bytes, provider);
        let at: HashMap<i64, &tokumei_formats::ParsedRecord> = report
            .records
            .iter()
            .map(|r| (r.first_line as i64, r))
            .collect();
        let error_lines: BTreeSet<i64> = report
            .issues
            .iter()
            .filter(|i| i.severity == tokumei_formats::Severity::Error)
            .map(|i| i.position.line as i64)
            .collect();
        let bad_lines: BTreeSet<i64> = file_links
            .iter()
            .filter(|l| self.malformed.contains(&l.record_id))
            .map(|l| l.first_line)
            .collect();
        assert_eq!(
            error_lines, bad_lines,
            "{path}: errors exactly where injected"
        );
        for l in file_links {
            if self.malformed.contains(&l.record_id) {
                continue;
            }
            let got = at.get(&l.first_line).expect("a record at the linked line");
            let want = tokumei_formats::fhir::canonicalize(&self.records[&l.record_id]);
            assert_eq!(
                got.record.identity, want.identity,
                "{path}:{}",
                l.first_line
            );
            assert_eq!(got.record.events, want.events, "{path}:{}", l.first_line);
            *self.compared.entry(SourceKind::Fhir).or_default() += 1;
        }
    }

    /// A claims (UKE) or death-record file: the malformed records rejected where injected, every
    /// other record read back at its lines.
    fn line_file(&mut self, path: &str, bytes: &[u8], file_links: &Links) {
        let provider = &file_links[0].provider_id;
        let report = if path.ends_with(".UKE") {
            tokumei_formats::uke::read(bytes, provider)
        } else {
            tokumei_formats::death::read(bytes, provider)
        };
        let bad: Vec<&&tokumei_model::truth::NativeLink> = file_links
            .iter()
            .filter(|l| self.malformed.contains(&l.record_id))
            .collect();
        assert_eq!(report.warnings(), 0, "{path}: {:?}", report.issues.first());
        assert_eq!(report.errors(), bad.len(), "{path}: {:?}", report.issues);
        assert_eq!(report.rejected.len(), bad.len(), "{path}");
        for (rejected, link) in report.rejected.iter().zip(&bad) {
            assert_eq!(
                rejected.first_line as i64, link.first_line,
                "{path}: rejected where injected"
            );
        }
        assert_eq!(report.records.len() + bad.len(), file_links.len(), "{path}");
        let at: HashMap<i64, &tokumei_formats::ParsedRecord> = report
            .records
            .iter()
            .map(|r| (r.first_line as i64, r))
            .collect();
        for l in file_links
            .iter()
            .filter(|l| !self.malformed.contains(&l.record_id))
        {
            let got = at.get(&l.first_line).expect("a record at the linked line");
            assert_eq!(got.last_line as i64, l.last_line);
            let want = &self.records[&l.record_id];
            let want = if path.ends_with(".UKE") {
                tokumei_formats::uke::canonicalize(want)
            } else if report.encoding == Some(tokumei_formats::encoding::Detected::ShiftJis) {
                self.legacy_deaths += 1;
                tokumei_formats::death::canonicalize_for(
                    want,
                    tokumei_formats::death::Encoding::ShiftJis,
                )
            } else {
                tokumei_formats::death::canonicalize(want)
            };
            assert_eq!(
                got.record.identity, want.identity,
                "{path}:{}",
                l.first_line
            );
            assert_eq!(got.record.events, want.events, "{path}:{}", l.first_line);
            *self.compared.entry(l.source_kind).or_default() += 1;
        }
    }
}

#[test]
fn noise_of_every_kind_is_injected_and_recorded() {
    let root = &region().root;
    let noise: Vec<tokumei_model::truth::TruthNoise> =
        read_table(&root.join("truth/noise.parquet")).expect("noise");
    let kinds: BTreeSet<&str> = noise.iter().map(|n| n.kind.as_str()).collect();
    for k in [
        "stale-surname",
        "stale-address",
        "variant-kanji",
        "kana-missing",
        "kana-typo",
        "kana-half-width",
        "kana-hiragana",
        "birth-day-month-transposed",
        "branch-missing",
        "branch-mistyped",
        "malformed-truncated",
        "malformed-date",
        "malformed-code",
        "malformed-encoding",
    ] {
        assert!(kinds.contains(k), "no {k} noise");
    }
    // Noise changes what the provider holds: a half-width kana record really is half-width.
    let half: BTreeSet<&str> = noise
        .iter()
        .filter(|n| n.kind == "kana-half-width")
        .map(|n| n.record_id.as_str())
        .collect();
    let ids: Vec<IdentityRecord> = read_sources(root).expect("identities");
    let mut seen = 0;
    for r in ids.iter().filter(|r| half.contains(r.record_id.as_str())) {
        let kana = r.surname_kana.as_deref().unwrap_or("");
        assert!(
            kana.chars().all(|c| ('\u{FF61}'..='\u{FF9F}').contains(&c)),
            "{kana}"
        );
        seen += 1;
    }
    assert!(seen > 0);
}
