//! Throughput of the claims reader and writer on a large generated file.
//!
//! `cargo run --release -p tokumei-formats --example uke_throughput [RECEIPTS]` (default 100,000 receipts,
//! about 100 MB). Prints MB/s of the reader (single thread) and of the writer.

use std::time::Instant;

// The allocator the `tokumei` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chrono::NaiveDate;
use tokumei_formats::uke::{read, write, Facility};
use tokumei_model::checkdigit::with_insurer_check_digit;
use tokumei_model::events::{
    Diagnosis, Encounter, EventSet, Prescription, Procedure, SourceRecord,
};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::{CodeSystem, Setting, Sex, SourceKind};

const SURNAMES: &[(&str, &str)] = &[
    ("工藤", "クドウ"),
    ("佐藤", "サトウ"),
    ("佐々木", "ササキ"),
    ("成田", "ナリタ"),
    ("三上", "ミカミ"),
];
const GIVEN: &[(&str, &str)] = &[
    ("花子", "ハナコ"),
    ("太郎", "タロウ"),
    ("和子", "カズコ"),
    ("清", "キヨシ"),
];

fn record(i: usize, month: NaiveDate) -> Option<SourceRecord> {
    let (s, sk) = SURNAMES[i % SURNAMES.len()];
    let (g, gk) = GIVEN[i / 7 % GIVEN.len()];
    let day = |d: usize| month.with_day_opt((d % 28 + 1) as u32);
    let insurer = with_insurer_check_digit(&format!("06{:05}", i % 90_000))?;
    let identity = IdentityRecord {
        record_id: String::new(),
        provider_id: "B".into(),
        source_kind: SourceKind::Claims,
        local_patient_id: Some(format!("{:08}", i)),
        surname_kanji: Some(s.into()),
        given_kanji: Some(g.into()),
        surname_kana: Some(sk.into()),
        given_kana: Some(gk.into()),
        birth_date: NaiveDate::from_ymd_opt(
            1930 + (i % 90) as i32,
            (i % 12 + 1) as u32,
            (i % 28 + 1) as u32,
        ),
        sex: Some(if i.is_multiple_of(2) {
            Sex::Male
        } else {
            Sex::Female
        }),
        prefecture: None,
        municipality_code: None,
        municipality: None,
        town: None,
        chome: None,
        banchi: None,
        postal_code: None,
        insurance_kind: tokumei_formats::uke::insurance_kind(&insurer),
        insurer_number: Some(insurer),
        insured_symbol: Some(format!("{}", i % 400)),
        insured_number: Some(format!("{}", i)),
        insured_branch: Some("01".into()),
        recorded_on: month,
    };
    let mut ev = EventSet::default();
    for v in 0..(1 + i % 3) {
        let d = day(i + v * 9)?;
        ev.encounters.push(Encounter {
            event_id: String::new(),
            record_id: String::new(),
            facility_code: "0212345670".into(),
            setting: Setting::Outpatient,
            department: None,
            start_date: d,
            end_date: d,
        });
        for (code, points) in [
            ("112007410", 75),
            ("112011010", 52),
            ("113001810", 225),
            ("120002910", 60),
        ] {
            ev.procedures.push(Procedure {
                event_id: String::new(),
                record_id: String::new(),
                encounter_id: None,
                date: d,
                code_system: CodeSystem::ReceiptProcedure,
                code: code.into(),
                name: None,
                points: Some(points),
                count: 1,
            });
        }
        ev.prescriptions.push(Prescription {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: None,
            date: d,
            code_system: CodeSystem::ReceiptDrug,
            code: "622239501".into(),
            name: None,
            daily_quantity: Some(1.0),
            unit: None,
            days: Some(28),
        });
    }
    for code in ["8840107", "2500015"] {
        ev.diagnoses.push(Diagnosis {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: None,
            date: day(i)?,
            code_system: CodeSystem::ReceiptDisease,
            code: code.into(),
            icd10: None,
            name: None,
            suspected: false,
            outcome: None,
            outcome_date: None,
        });
    }
    Some(SourceRecord {
        identity,
        events: ev,
    })
}

trait DayOpt {
    fn with_day_opt(&self, d: u32) -> Option<NaiveDate>;
}

impl DayOpt for NaiveDate {
    fn with_day_opt(&self, d: u32) -> Option<NaiveDate> {
        chrono::Datelike::with_day(self, d)
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let month = NaiveDate::from_ymd_opt(2023, 5, 1).unwrap_or_default();
    let records: Vec<SourceRecord> = (0..n).filter_map(|i| record(i, month)).collect();
    let facility = Facility {
        payer: 1,
        prefecture: "02".into(),
        table: "1".into(),
        code7: "2345670".into(),
        name: "架空病院".into(),
    };
    let t = Instant::now();
    let bytes = match write(&facility, month, &records) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("write failed: {e}");
            return;
        }
    };
    let write_s = t.elapsed().as_secs_f64();
    let mb = bytes.len() as f64 / 1e6;
    let mut best = f64::MAX;
    let mut read_n = 0;
    let reps: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    for _ in 0..reps {
        let t = Instant::now();
        let report = read(&bytes, "B");
        best = best.min(t.elapsed().as_secs_f64());
        read_n = report.records.len();
        assert_eq!(report.errors(), 0);
    }
    // Streaming: each record handed on and dropped, as ingestion does.
    let mut best_stream = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        let mut n_read = 0usize;
        let report = tokumei_formats::uke::read_each(&bytes, "B", &mut |r| {
            n_read += r.record.events.len();
        });
        best_stream = best_stream.min(t.elapsed().as_secs_f64());
        assert_eq!(report.errors(), 0);
        std::hint::black_box(n_read);
    }
    println!("receipts {n}, file {mb:.1} MB");
    println!(
        "read (streaming): {best_stream:.2} s (best of {reps}), {:.0} MB/s",
        mb / best_stream
    );
    println!("write: {write_s:.2} s, {:.0} MB/s", mb / write_s);
    println!(
        "read (collected):  {best:.2} s (best of {reps}), {:.0} MB/s, {:.0} receipts/s, {read_n} read",
        mb / best,
        read_n as f64 / best
    );
}
