//! Turns a simulated person into the records each provider holds, and into the truth tables.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use rand::Rng;
use tokumei_model::events::SourceRecord;
use tokumei_model::events::{Death, Diagnosis, Encounter, LabResult, Prescription, Procedure};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::truth::{
    TruthAddress, TruthCondition, TruthCoverage, TruthNameChange, TruthPerson,
};
use tokumei_model::{CodeSystem, DiagnosisOutcome, InsuranceKind, SourceKind};

use crate::care::{Checkup, ItemValue, Visit};
use crate::dates::{month_of, plus_days};
use crate::life::{patient_number, resident_number, LifePerson};
use crate::region::{EmrExport, ProviderKind, PREFECTURE};
use crate::rng::SynthRng;
use crate::Context;

/// A record in the provider's native file format, ready to append.
#[derive(Debug, Clone)]
pub enum Native {
    /// A claims receipt of a facility's file for one month and one payer (1 支払基金, 2 国保連).
    Claims {
        /// First day of the 診療年月.
        month: NaiveDate,
        /// 審査支払機関.
        payer: u8,
        /// The receipt's lines (malformed on purpose by noise before they are encoded).
        receipt: tokumei_formats::uke::ReceiptLines,
        /// The receipt encoded, once its noise is applied.
        encoded: Option<tokumei_formats::uke::EncodedReceipt>,
    },
    /// A row of the municipality's death-record CSV (UTF-8 with CR LF).
    Death(Vec<u8>),
    /// A JP Core FHIR bundle: one line of the hospital's NDJSON export.
    Fhir(Vec<u8>),
    /// Entries of a ZIP archive under `sources/<provider>/`: an SS-MIX2 patient folder (one file per
    /// message) in the hospital's storage archive, a checkup XML document in a submission archive.
    Files {
        /// What the entries are (`ssmix2`, `kenshin`).
        sub: &'static str,
        /// Archive path relative to the provider's folder, e.g. `ssmix2.zip`.
        archive: String,
        /// Entry path (or folder) inside the archive that the truth links the record to.
        link: String,
        /// `(entry path, bytes)`.
        files: Vec<(String, Vec<u8>)>,
    },
}

/// Clinical events of one record. Event ids are left empty and encounter references hold the
/// encounter's index within the record until the writer assigns ids.
pub type Events = tokumei_model::events::EventSet;

/// One record a provider holds.
#[derive(Debug, Clone)]
pub struct EmittedRecord {
    /// Provider index.
    pub provider: usize,
    /// The record in its native format, where the provider's format has a writer.
    pub native: Option<Native>,
    /// Noise injected into this record (recorded in the truth).
    pub noise: Vec<crate::noise::Noise>,
    /// Identifying fields (record id and local id left empty).
    pub identity: IdentityRecord,
    /// Events.
    pub events: Events,
}

/// Everything generated for one person.
#[derive(Debug, Clone)]
pub struct PersonOut {
    /// Truth row (person id left empty).
    pub person: TruthPerson,
    /// Address history.
    pub addresses: Vec<TruthAddress>,
    /// Surname changes.
    pub name_changes: Vec<TruthNameChange>,
    /// Insurance history.
    pub coverages: Vec<TruthCoverage>,
    /// Conditions.
    pub conditions: Vec<TruthCondition>,
    /// Records, in a deterministic order.
    pub records: Vec<EmittedRecord>,
    /// Imaging studies at hospitals, encoded, in a deterministic order.
    pub images: Vec<crate::imaging::Study>,
}

struct Fields {
    kanji: bool,
    kana: bool,
    address: bool,
    insurance: bool,
}

fn identity(
    ctx: &Context,
    p: &LifePerson,
    provider: usize,
    kind: SourceKind,
    on: NaiveDate,
    f: Fields,
) -> IdentityRecord {
    let surname = p.surname_on(on);
    let addr = p.address_on(on);
    let muni = addr.municipality(&ctx.region);
    let town = addr.town(&ctx.region);
    let cov = if f.insurance { p.coverage_on(on) } else { None };
    IdentityRecord {
        record_id: String::new(),
        provider_id: ctx.region.providers[provider].id.clone(),
        source_kind: kind,
        local_patient_id: None,
        surname_kanji: f.kanji.then(|| surname.kanji.clone()),
        given_kanji: f.kanji.then(|| p.given.kanji.clone()),
        surname_kana: f.kana.then(|| surname.kana.clone()),
        given_kana: f.kana.then(|| p.given.kana.clone()),
        birth_date: Some(p.birth),
        sex: Some(p.sex),
        prefecture: f.address.then(|| PREFECTURE.to_string()),
        municipality_code: f.address.then(|| muni.code6.clone()),
        municipality: f.address.then(|| muni.name.clone()),
        town: f.address.then(|| town.name.clone()),
        chome: if f.address {
            addr.chome.map(|c| c.to_string())
        } else {
            None
        },
        banchi: f.address.then(|| addr.banchi.clone()),
        postal_code: f.address.then(|| town.postal.clone()),
        insurance_kind: cov.map(|c| c.kind),
        insurer_number: cov.map(|c| c.insurer.clone()),
        insured_symbol: cov.and_then(|c| c.symbol.clone()),
        insured_number: cov.map(|c| c.number.clone()),
        insured_branch: cov.and_then(|c| c.branch.clone()),
        recorded_on: on,
    }
}

fn encounter(ctx: &Context, v: &Visit) -> Encounter {
    Encounter {
        event_id: String::new(),
        record_id: String::new(),
        facility_code: ctx.region.providers[v.provider]
            .facility_code
            .clone()
            .unwrap_or_default(),
        setting: v.setting,
        department: Some(v.department.to_string()),
        start_date: v.start,
        end_date: v.end,
    }
}

/// First date each (provider, disease) was cared for, and how it ended.
struct DiseaseCourse {
    first: BTreeMap<(usize, usize), NaiveDate>,
    outcome: BTreeMap<(usize, usize), (DiagnosisOutcome, NaiveDate)>,
}

impl DiseaseCourse {
    fn new(visits: &[Visit]) -> Self {
        let mut first = BTreeMap::new();
        let mut outcome = BTreeMap::new();
        for v in visits {
            for &(d, cured) in &v.diseases {
                first.entry((v.provider, d)).or_insert(v.start);
                if cured {
                    outcome.insert((v.provider, d), (DiagnosisOutcome::Cured, v.end));
                } else if v.died {
                    outcome.insert((v.provider, d), (DiagnosisOutcome::Died, v.end));
                } else {
                    outcome.remove(&(v.provider, d));
                }
            }
        }
        DiseaseCourse { first, outcome }
    }
}

fn diagnosis(
    ctx: &Context,
    course: &DiseaseCourse,
    provider: usize,
    disease: usize,
    claims: bool,
    within: Option<(NaiveDate, NaiveDate)>,
) -> Diagnosis {
    let d = &ctx.clinical.diseases[disease];
    let first = course
        .first
        .get(&(provider, disease))
        .copied()
        .unwrap_or(ctx.period.start);
    let outcome = course
        .outcome
        .get(&(provider, disease))
        .filter(|(_, date)| within.is_none_or(|(from, to)| *date >= from && *date < to));
    let (code_system, code) = if claims {
        (CodeSystem::ReceiptDisease, d.receipt_code.clone())
    } else {
        (CodeSystem::Icd10, d.icd10.clone())
    };
    Diagnosis {
        event_id: String::new(),
        record_id: String::new(),
        encounter_id: None,
        date: first,
        code_system,
        code,
        icd10: Some(d.icd10.clone()),
        name: Some(d.name.clone()),
        suspected: false,
        outcome: outcome.map(|(o, _)| *o),
        outcome_date: outcome.map(|(_, d)| *d),
    }
}

/// A prescription of `drug`, coded for claims (医薬品コード) or for the EMR (薬価基準コード).
fn prescription(
    ctx: &Context,
    drug: usize,
    days: i32,
    date: NaiveDate,
    enc: &Option<String>,
    claims: bool,
) -> Prescription {
    let d = &ctx.clinical.drugs[drug];
    let (code_system, code) = if claims {
        (CodeSystem::ReceiptDrug, d.receipt_code.clone())
    } else {
        (CodeSystem::YakkaCode, d.yakka_code.clone())
    };
    Prescription {
        event_id: String::new(),
        record_id: String::new(),
        encounter_id: enc.clone(),
        date,
        code_system,
        code,
        name: Some(d.name.clone()),
        daily_quantity: Some(d.daily_dose),
        unit: Some(d.unit.clone()),
        days: Some(days),
    }
}

/// EMR events of a visit: prescriptions (薬価基準 codes) and lab results with values.
fn emr_events(ctx: &Context, v: &Visit, enc_index: usize, ev: &mut Events) {
    let enc = Some(enc_index.to_string());
    for &(drug, days) in &v.drugs {
        ev.prescriptions
            .push(prescription(ctx, drug, days, v.start, &enc, false));
    }
    for (item, value) in &v.labs {
        ev.lab_results.push(LabResult {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: enc.clone(),
            date: v.end.min(plus_days(v.start, 1)),
            code_system: CodeSystem::Jlac10,
            code: item.code.to_string(),
            name: Some(item.name.to_string()),
            value_num: Some(*value),
            value_text: None,
            unit: (!item.unit.is_empty()).then(|| item.unit.to_string()),
        });
    }
}

/// The part of a visit billed in one month: the visit and its first and last day in that month.
type ClaimPiece<'a> = (&'a Visit, NaiveDate, NaiveDate);

/// Claims lines of the part `from..=to` of a visit: the daily inpatient fee once per day, everything
/// else on the first day of the visit.
fn claim_events(
    ctx: &Context,
    v: &Visit,
    enc_index: usize,
    from: NaiveDate,
    to: NaiveDate,
    ev: &mut Events,
) {
    let enc = Some(enc_index.to_string());
    let first_piece = from == v.start;
    for &(pi, count) in &v.procedures {
        let pdef = &ctx.clinical.procedures[pi];
        let mut push = |date: NaiveDate, count: i32| {
            ev.procedures.push(Procedure {
                event_id: String::new(),
                record_id: String::new(),
                encounter_id: enc.clone(),
                date,
                code_system: CodeSystem::ReceiptProcedure,
                code: pdef.code.clone(),
                name: Some(pdef.name.clone()),
                points: Some(pdef.points),
                count,
            });
        };
        if pi == ctx.procs.inpatient {
            let mut d = from;
            while d <= to {
                push(d, 1);
                d = plus_days(d, 1);
            }
        } else if first_piece {
            push(v.start, count);
        }
    }
    if first_piece {
        for &(drug, days) in &v.drugs {
            ev.prescriptions
                .push(prescription(ctx, drug, days, v.start, &enc, true));
        }
    }
}

/// The record in its provider's native format, where a writer exists (claims, death records).
fn native(ctx: &Context, rec: &mut EmittedRecord) -> Option<Native> {
    let kind = rec.identity.source_kind;
    if kind == SourceKind::Emr {
        let sr = SourceRecord {
            identity: rec.identity.clone(),
            events: std::mem::take(&mut rec.events),
        };
        let out = tokumei_formats::ssmix2::write_patient(&sr)
            .ok()
            .map(|files| {
                // The patient folder: the first three parts of any file's path.
                let link = files
                    .first()
                    .map(|(p, _)| p.splitn(4, '/').take(3).collect::<Vec<_>>().join("/"))
                    .unwrap_or_default();
                Native::Files {
                    sub: "ssmix2",
                    archive: "ssmix2.zip".into(),
                    link,
                    files,
                }
            });
        rec.events = sr.events;
        return out;
    }
    if kind == SourceKind::Fhir {
        let sr = SourceRecord {
            identity: rec.identity.clone(),
            events: std::mem::take(&mut rec.events),
        };
        let out = tokumei_formats::fhir::write_bundle(&sr)
            .ok()
            .map(|mut line| {
                line.push(b'\n');
                Native::Fhir(line)
            });
        rec.events = sr.events;
        return out;
    }
    if kind == SourceKind::Checkup {
        let sr = SourceRecord {
            identity: rec.identity.clone(),
            events: std::mem::take(&mut rec.events),
        };
        let out = tokumei_formats::kenshin::write(&sr).ok().map(|doc| {
            // One submission archive per insurer and fiscal year (送付用ファイルアーカイブ), named
            // like its root folder; documents are numbered by the writer ({serial}).
            let on = sr.identity.recorded_on;
            let fy = if on.month() >= 4 {
                on.year()
            } else {
                on.year() - 1
            };
            let sender = sr
                .events
                .encounters
                .first()
                .map(|e| e.facility_code.clone())
                .unwrap_or_default();
            let insurer = format!(
                "{:0>8}",
                sr.identity.insurer_number.as_deref().unwrap_or("")
            );
            let root = format!("{sender}_{insurer}_{}03311_1", fy + 1);
            let name = tokumei_formats::kenshin::file_name(&sender, on, 1, 0);
            let name = format!("{}{{serial}}.xml", &name[..name.len() - "000000.xml".len()]);
            let entry = format!("{root}/DATA/{name}");
            Native::Files {
                sub: "kenshin",
                archive: format!("kenshin/{root}.zip"),
                link: entry.clone(),
                files: vec![(entry, doc)],
            }
        });
        rec.events = sr.events;
        return out;
    }
    if !matches!(kind, SourceKind::Claims | SourceKind::Death) {
        return None;
    }
    let sr = SourceRecord {
        identity: rec.identity.clone(),
        events: std::mem::take(&mut rec.events),
    };
    let out = match kind {
        SourceKind::Claims => {
            let month = month_of(sr.identity.recorded_on);
            let payer = match sr.identity.insurance_kind {
                Some(InsuranceKind::Kokuho) | Some(InsuranceKind::Koki) => 2,
                _ => 1,
            };
            tokumei_formats::uke::receipt_lines(month, &sr)
                .ok()
                .map(|receipt| Native::Claims {
                    month,
                    payer,
                    receipt,
                    encoded: None,
                })
        }
        _ => {
            // Legacy municipal systems write era-coded dates (and Shift_JIS, applied by the writer
            // to the whole file).
            let provider = &ctx.region.providers[rec.provider];
            let style = if legacy_municipality(Some(&provider.municipality_code)) {
                tokumei_formats::dates::DateStyle::Era
            } else {
                tokumei_formats::dates::DateStyle::Gregorian
            };
            tokumei_formats::death::row_line_with(&sr, style)
                .ok()
                .map(Native::Death)
        }
    };
    rec.events = sr.events;
    out
}

/// Whether a municipality still runs a legacy resident-record system: its death export is
/// Shift_JIS with era-coded dates (about one municipality in four, fixed by its code).
pub fn legacy_municipality(code6: Option<&str>) -> bool {
    code6
        .and_then(|c| c.get(2..5))
        .and_then(|c| c.parse::<u32>().ok())
        .is_some_and(|n| n % 4 == 1)
}

/// Builds every record and truth row of one person.
pub fn person_out(
    ctx: &Context,
    hh_index: u64,
    p: &LifePerson,
    visits: &[Visit],
    checkups: &[Checkup],
    rng: &mut SynthRng,
) -> PersonOut {
    let period = ctx.period;
    let end = p.death.unwrap_or(plus_days(period.end, -1));
    let course = DiseaseCourse::new(visits);
    let mut records = emr_records(ctx, p, visits, &course);
    claims_records(ctx, p, visits, &course, rng, &mut records);
    records.extend(checkups.iter().map(|c| checkup_record(ctx, p, c)));
    if let Some(death) = p.death {
        records.push(death_record(ctx, p, death, rng));
    }
    for rec in &mut records {
        finish_record(ctx, p, rec, rng);
    }
    let images = crate::imaging::studies(ctx, p, visits, &records);
    PersonOut {
        person: truth_person(ctx, hh_index, p, end),
        addresses: truth_addresses(ctx, p),
        name_changes: truth_name_changes(p),
        coverages: truth_coverages(p),
        conditions: truth_conditions(ctx, p),
        records,
        images,
    }
}

/// The diseases of some visits, each once, in order of first appearance.
fn diseases_of<'a>(visits: impl IntoIterator<Item = &'a Visit>) -> Vec<usize> {
    let mut diseases = Vec::new();
    for v in visits {
        for &(d, _) in &v.diseases {
            if !diseases.contains(&d) {
                diseases.push(d);
            }
        }
    }
    diseases
}

/// EMR: one record per hospital, identity as at the last visit.
fn emr_records(
    ctx: &Context,
    p: &LifePerson,
    visits: &[Visit],
    course: &DiseaseCourse,
) -> Vec<EmittedRecord> {
    let mut by_hospital: BTreeMap<usize, Vec<&Visit>> = BTreeMap::new();
    for v in visits {
        if ctx.region.providers[v.provider].kind == ProviderKind::Hospital {
            by_hospital.entry(v.provider).or_default().push(v);
        }
    }
    let mut records = Vec::new();
    for (&h, vs) in &by_hospital {
        let last = vs.iter().map(|v| v.start).max().unwrap_or(ctx.period.start);
        let mut ev = Events::default();
        for (i, v) in vs.iter().enumerate() {
            ev.encounters.push(encounter(ctx, v));
            emr_events(ctx, v, i, &mut ev);
            if v.died {
                ev.deaths.push(Death {
                    event_id: String::new(),
                    record_id: String::new(),
                    date: v.end,
                    recorded_on: Some(v.end),
                });
            }
        }
        for d in diseases_of(vs.iter().copied()) {
            ev.diagnoses.push(diagnosis(ctx, course, h, d, false, None));
        }
        let kind = if ctx.region.providers[h].emr_export == Some(EmrExport::JpCoreFhir) {
            SourceKind::Fhir
        } else {
            SourceKind::Emr
        };
        let fields = Fields {
            kanji: true,
            kana: true,
            address: true,
            insurance: true,
        };
        records.push(EmittedRecord {
            provider: h,
            native: None,
            noise: Vec::new(),
            identity: identity(ctx, p, h, kind, last, fields),
            events: ev,
        });
    }
    records
}

/// Claims: one record per facility and month; a stay across months is billed in each month. Draws
/// whether each receipt carries the kana name.
fn claims_records(
    ctx: &Context,
    p: &LifePerson,
    visits: &[Visit],
    course: &DiseaseCourse,
    rng: &mut SynthRng,
    records: &mut Vec<EmittedRecord>,
) {
    let period = ctx.period;
    let mut by_claim: BTreeMap<(usize, NaiveDate), Vec<ClaimPiece>> = BTreeMap::new();
    for v in visits {
        let mut m = month_of(v.start);
        while m <= v.end {
            let next = m
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(period.end);
            let from = v.start.max(m);
            let to = v.end.min(plus_days(next, -1));
            by_claim
                .entry((v.provider, m))
                .or_default()
                .push((v, from, to));
            m = next;
        }
    }
    for (&(prov, month), pieces) in &by_claim {
        let ev = claim_month_events(ctx, course, prov, month, pieces);
        let on = pieces
            .iter()
            .map(|(_, from, _)| *from)
            .min()
            .unwrap_or(month);
        let fields = Fields {
            kanji: true,
            kana: rng.random::<f64>() < 0.9,
            address: false,
            insurance: true,
        };
        records.push(EmittedRecord {
            provider: prov,
            native: None,
            noise: Vec::new(),
            identity: identity(ctx, p, prov, SourceKind::Claims, on, fields),
            events: ev,
        });
    }
}

/// The events of one facility's receipt for one month: the billed part of each visit, and the
/// diagnoses with the outcomes reached within the month.
fn claim_month_events(
    ctx: &Context,
    course: &DiseaseCourse,
    prov: usize,
    month: NaiveDate,
    pieces: &[ClaimPiece],
) -> Events {
    let mut ev = Events::default();
    for (i, (v, from, to)) in pieces.iter().enumerate() {
        let mut e = encounter(ctx, v);
        e.start_date = *from;
        e.end_date = *to;
        ev.encounters.push(e);
        claim_events(ctx, v, i, *from, *to, &mut ev);
    }
    let next = month
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(ctx.period.end);
    let window = Some((month, next));
    for d in diseases_of(pieces.iter().map(|(v, _, _)| *v)) {
        ev.diagnoses
            .push(diagnosis(ctx, course, prov, d, true, window));
    }
    ev
}

/// A specific health checkup: kana names only, insurance identifiers, address.
fn checkup_record(ctx: &Context, p: &LifePerson, c: &Checkup) -> EmittedRecord {
    let mut ev = Events::default();
    ev.encounters.push(Encounter {
        event_id: String::new(),
        record_id: String::new(),
        facility_code: ctx.region.providers[ctx.region.kenshin_center_provider]
            .facility_code
            .clone()
            .unwrap_or_default(),
        setting: tokumei_model::Setting::Checkup,
        department: None,
        start_date: c.date,
        end_date: c.date,
    });
    for (item, value) in &c.items {
        let (value_num, value_text) = match value {
            ItemValue::Num(x) => (Some(*x), None),
            ItemValue::Code(s) => (None, Some(s.to_string())),
        };
        ev.lab_results.push(LabResult {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: Some("0".into()),
            date: c.date,
            code_system: CodeSystem::Jlac10,
            code: item.code.to_string(),
            name: Some(item.name.to_string()),
            value_num,
            value_text,
            unit: (!item.unit.is_empty()).then(|| item.unit.to_string()),
        });
    }
    let fields = Fields {
        kanji: false,
        kana: true,
        address: true,
        insurance: true,
    };
    EmittedRecord {
        provider: c.provider,
        native: None,
        noise: Vec::new(),
        identity: identity(ctx, p, c.provider, SourceKind::Checkup, c.date, fields),
        events: ev,
    }
}

/// Death: the municipality's removed resident record (除票). Draws the days until it is notified.
fn death_record(
    ctx: &Context,
    p: &LifePerson,
    death: NaiveDate,
    rng: &mut SynthRng,
) -> EmittedRecord {
    let muni = p.address_on(death).muni as usize;
    let provider = ctx.region.municipality_provider[muni];
    let notified = plus_days(death, rng.random_range(1..=7));
    let kokuho = p
        .coverage_on(death)
        .is_some_and(|c| c.kind == InsuranceKind::Kokuho);
    let fields = Fields {
        kanji: true,
        kana: true,
        address: true,
        insurance: kokuho,
    };
    let mut id = identity(ctx, p, provider, SourceKind::Death, death, fields);
    id.recorded_on = notified;
    EmittedRecord {
        provider,
        native: None,
        noise: Vec::new(),
        identity: id,
        events: Events {
            deaths: vec![Death {
                event_id: String::new(),
                record_id: String::new(),
                date: death,
                recorded_on: Some(notified),
            }],
            ..Events::default()
        },
    }
}

/// The provider-local id of a record, its identity noise, and the record in its provider's native
/// format (possibly malformed on purpose).
fn finish_record(ctx: &Context, p: &LifePerson, rec: &mut EmittedRecord, rng: &mut SynthRng) {
    match rec.identity.source_kind {
        SourceKind::Emr | SourceKind::Fhir | SourceKind::Claims => {
            rec.identity.local_patient_id = Some(patient_number(p.key, rec.provider));
        }
        SourceKind::Death => rec.identity.local_patient_id = Some(resident_number(p.key)),
        _ => {}
    }
    rec.noise = crate::noise::identity_noise(ctx, p, rec, rng);
    rec.native = native(ctx, rec);
    if let Some(n) = rec
        .native
        .as_mut()
        .and_then(|n| crate::noise::malformed(ctx, n, rng))
    {
        rec.noise.push(n);
    }
}

/// The person's truth row, with names and address as at `end`.
fn truth_person(ctx: &Context, hh_index: u64, p: &LifePerson, end: NaiveDate) -> TruthPerson {
    let surname = p.surname_on(end);
    let addr = p.address_on(end);
    let town = addr.town(&ctx.region);
    TruthPerson {
        person_id: String::new(),
        household_id: format!("H{hh_index:08}"),
        sex: p.sex,
        birth_date: p.birth,
        surname_kanji: surname.kanji.clone(),
        given_kanji: p.given.kanji.clone(),
        surname_kana: surname.kana.clone(),
        given_kana: p.given.kana.clone(),
        initial_surname_kanji: p.surname_on(ctx.period.start).kanji.clone(),
        municipality_code: addr.municipality(&ctx.region).code6.clone(),
        town: town.name.clone(),
        chome: addr.chome.map(|c| c.to_string()),
        banchi: addr.banchi.clone(),
        postal_code: town.postal.clone(),
        death_date: p.death,
    }
}

fn truth_addresses(ctx: &Context, p: &LifePerson) -> Vec<TruthAddress> {
    p.addresses
        .iter()
        .enumerate()
        .map(|(i, (from, a))| {
            let t = a.town(&ctx.region);
            TruthAddress {
                person_id: String::new(),
                valid_from: (*from).max(ctx.period.start),
                valid_to: p.addresses.get(i + 1).map(|(d, _)| *d),
                municipality_code: a.municipality(&ctx.region).code6.clone(),
                town: t.name.clone(),
                chome: a.chome.map(|c| c.to_string()),
                banchi: a.banchi.clone(),
                postal_code: t.postal.clone(),
            }
        })
        .collect()
}

fn truth_name_changes(p: &LifePerson) -> Vec<TruthNameChange> {
    p.surnames
        .windows(2)
        .map(|w| TruthNameChange {
            person_id: String::new(),
            date: w[1].0,
            old_surname_kanji: w[0].1.kanji.clone(),
            old_surname_kana: w[0].1.kana.clone(),
            new_surname_kanji: w[1].1.kanji.clone(),
            new_surname_kana: w[1].1.kana.clone(),
        })
        .collect()
}

fn truth_coverages(p: &LifePerson) -> Vec<TruthCoverage> {
    p.coverages
        .iter()
        .enumerate()
        .map(|(i, c)| TruthCoverage {
            person_id: String::new(),
            valid_from: c.from,
            valid_to: p.coverages.get(i + 1).map(|n| n.from),
            insurance_kind: c.kind,
            insurer_number: c.insurer.clone(),
            insured_symbol: c.symbol.clone(),
            insured_number: c.number.clone(),
            insured_branch: c.branch.clone(),
            is_principal: c.principal,
        })
        .collect()
}

fn truth_conditions(ctx: &Context, p: &LifePerson) -> Vec<TruthCondition> {
    p.conditions
        .iter()
        .map(|c| TruthCondition {
            person_id: String::new(),
            condition: ctx.clinical.diseases[c.disease].key.clone(),
            icd10: ctx.clinical.diseases[c.disease].icd10.clone(),
            onset: c.onset,
        })
        .collect()
}
