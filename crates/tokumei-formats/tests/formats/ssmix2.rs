//! Reader and writer of SS-MIX2 standardized storage (HL7 v2.5, ISO-2022-JP).

use std::path::Path;

use chrono::NaiveDate;
use proptest::prelude::*;
use tokumei_formats::ssmix2::{
    canonicalize, read, read_patient, read_storage, write_patient, FileName, PatientFile,
};
use tokumei_formats::Severity;
use tokumei_model::events::{
    Death, Diagnosis, Encounter, EventSet, LabResult, Prescription, SourceRecord,
};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::{CodeSystem, DiagnosisOutcome, InsuranceKind, Setting, Sex, SourceKind};

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ssmix2")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

#[test]
fn reads_the_guideline_messages() {
    let reports = read_storage(&fixtures().join("guideline"), "H").expect("walk");
    assert_eq!(reports.len(), 1);
    let p = &reports[0];
    assert_eq!(p.files.len(), 7);
    assert_eq!(p.errors(), 0, "{:?}", p.files);
    // The ADT-52 file carries flag 1 (the 08 is its department); all seven are current.
    assert_eq!(p.not_current, 0);
    let r = p.record.as_ref().expect("record");
    let id = &r.identity;
    assert_eq!(id.source_kind, SourceKind::Emr);
    assert_eq!(id.local_patient_id.as_deref(), Some("9999013"));
    assert_eq!(id.surname_kanji.as_deref(), Some("患者"));
    assert_eq!(id.given_kanji.as_deref(), Some("太郎"));
    assert_eq!(id.surname_kana.as_deref(), Some("カンジャ"));
    assert_eq!(id.given_kana.as_deref(), Some("タロウ"));
    assert_eq!(id.birth_date, Some(date(1948, 4, 5)));
    assert_eq!(id.sex, Some(Sex::Male));
    assert_eq!(id.postal_code.as_deref(), Some("4228033"));
    assert_eq!(id.prefecture.as_deref(), Some("静岡県"));
    assert_eq!(id.municipality.as_deref(), Some("静岡市"));
    assert_eq!(id.town.as_deref(), Some("登呂"));
    assert_eq!(id.insurer_number.as_deref(), Some("67999991"));
    assert_eq!(id.recorded_on, date(2011, 12, 19));
    // The admission (ADT-22) and discharge (ADT-52) have no shared visit number in the sample: two
    // inpatient encounters, the discharge one ending on PV1-45.
    let ev = &r.events;
    assert_eq!(ev.encounters.len(), 2);
    assert!(ev
        .encounters
        .iter()
        .all(|e| e.setting == Setting::Inpatient));
    assert!(ev
        .encounters
        .iter()
        .any(|e| e.start_date == date(2011, 11, 20)));
    // PPR-01: the disease is coded with a MEDIS 病名管理番号 (not mapped): warned, not read.
    assert!(ev.diagnoses.is_empty());
    // OMP-01: three drugs (HOT9), dated by TQ1-7.
    assert_eq!(ev.prescriptions.len(), 3);
    assert_eq!(ev.prescriptions[0].code, "108665201");
    assert_eq!(ev.prescriptions[0].code_system, CodeSystem::YakkaCode);
    assert_eq!(ev.prescriptions[0].days, Some(5));
    assert_eq!(ev.prescriptions[2].days, Some(14));
    assert_eq!(ev.prescriptions[0].date, date(2011, 7, 1));
    // OML-01 orders carry no results; OML-11 three results.
    assert_eq!(ev.lab_results.len(), 3);
    let tp = &ev.lab_results[1];
    assert_eq!(tp.code, "3A010000002327101");
    assert_eq!(tp.value_num, Some(7.2));
    assert_eq!(tp.unit.as_deref(), Some("g/dl"));
    assert_eq!(tp.date, date(2011, 12, 19));
    // The OML-11 PID-3 (0001000052) differs from the folder: reported.
    let warnings: Vec<String> = p
        .files
        .iter()
        .flat_map(|(_, r)| r.issues.iter().map(|i| i.message.clone()))
        .collect();
    assert!(warnings.iter().any(|w| w.contains("PID-3 differs")));
    assert!(warnings.iter().any(|w| w.contains("PRB-3 coding system")));
}

#[test]
fn reads_the_synthetic_messages() {
    let reports = read_storage(&fixtures().join("synthetic"), "H").expect("walk");
    let r = reports[0].record.as_ref().expect("record");
    assert_eq!(reports[0].errors(), 0);
    let id = &r.identity;
    assert_eq!(id.surname_kanji.as_deref(), Some("試験"));
    assert_eq!(id.given_kana.as_deref(), Some("ハナコ"));
    assert_eq!(id.sex, Some(Sex::Female));
    assert_eq!(id.insurer_number.as_deref(), Some("06139992"));
    assert_eq!(id.insurance_kind, Some(InsuranceKind::Kumiai));
    assert_eq!(id.insured_symbol.as_deref(), Some("１２３４"));
    assert_eq!(id.insured_number.as_deref(), Some("５６７８"));
    assert_eq!(id.chome.as_deref(), Some("1"));
    assert_eq!(id.banchi.as_deref(), Some("2-3"));
    let hba1c = &r.events.lab_results[0];
    assert_eq!(hba1c.code, "3D046000001906202");
    assert_eq!(hba1c.value_num, Some(6.1));
    assert_eq!(hba1c.date, date(2025, 5, 26));
}

#[test]
fn file_names_parse_and_render() {
    let n = "9999013_20110701_OMP-01_000000011000185_20110701224603984_01_1";
    let f = FileName::parse(n).expect("name");
    assert_eq!(f.date, Some(date(2011, 7, 1)));
    assert_eq!(f.data_type, "OMP-01");
    assert_eq!(f.render(), n);
    assert_eq!(
        f.relative_path(),
        format!("999/901/9999013/20110701/OMP-01/{n}")
    );
    assert!(FileName::parse("9999013_2011_OMP-01_1_2_3_1").is_none());
    assert!(FileName::parse("a_b").is_none());
}

fn sample_message() -> Vec<u8> {
    std::fs::read(fixtures().join(
        "synthetic/000/012/0000123/20250526/OML-11/0000123_20250526_OML-11_000000000000777_20250526101500000_01_1",
    ))
    .expect("fixture")
}

#[test]
fn a_bad_result_is_reported_at_its_segment_and_the_rest_is_read() {
    let text = encoding_rs::ISO_2022_JP
        .decode_without_bom_handling(&sample_message())
        .0
        .into_owned();
    let obx = text
        .split('\r')
        .find(|s| s.starts_with("OBX"))
        .unwrap_or_default()
        .to_string();
    let bad_code = obx.replace("3D046000001906202", "3D0460");
    let bad_value = obx.replace("|6.1|", "|6,1|");
    let text = text.replacen(
        &format!("{obx}\r"),
        &format!("{obx}\r{bad_code}\r{bad_value}\r{obx}\r"),
        1,
    );
    let bytes = encoding_rs::ISO_2022_JP.encode(&text).0.into_owned();
    let r = read(&bytes, "H");
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].record.events.lab_results.len(), 2);
    let errors: Vec<_> = r
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        (errors[0].position.line, errors[0].position.field),
        (8, Some(3))
    );
    assert_eq!(
        (errors[1].position.line, errors[1].position.field),
        (9, Some(5))
    );
}

#[test]
fn bad_patient_fields_reject_the_message_with_their_position() {
    let text = encoding_rs::ISO_2022_JP
        .decode_without_bom_handling(&sample_message())
        .0
        .into_owned();
    let bad = text.replace("|19800412|F", "|19801312|F");
    let r = read(&encoding_rs::ISO_2022_JP.encode(&bad).0, "H");
    assert!(r.records.is_empty());
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.issues[0].position.line, 2);
    assert_eq!(r.issues[0].position.field, Some(7));
    assert!(!r.issues[0].message.contains("19801312"));
    let bad = text.replace("|19800412|F", "|19800412|Q");
    let r = read(&encoding_rs::ISO_2022_JP.encode(&bad).0, "H");
    assert_eq!(r.issues[0].position.field, Some(8));
    // Truncated inside a segment, and not an HL7 message at all.
    let bytes = sample_message();
    for cut in [0, 3, 20, 200, bytes.len() - 30] {
        let r = read(&bytes[..cut], "H");
        assert!(r.records.len() + r.rejected.len() <= 1);
    }
    let r = read(b"PID|1||x", "H");
    assert_eq!(r.rejected.len(), 1);
}

#[test]
fn a_file_in_another_encoding_is_detected_not_garbled() {
    let text = encoding_rs::ISO_2022_JP
        .decode_without_bom_handling(&sample_message())
        .0
        .into_owned();
    for enc in [encoding_rs::SHIFT_JIS, encoding_rs::UTF_8] {
        let bytes = enc.encode(&text).0.into_owned();
        let r = read(&bytes, "H");
        assert_eq!(r.records.len(), 1);
        let id = &r.records[0].record.identity;
        assert_eq!(id.surname_kanji.as_deref(), Some("試験"), "{}", enc.name());
        assert!(r
            .issues
            .iter()
            .any(|i| i.severity == Severity::Warning && i.message.contains("not ISO-2022-JP")));
    }
    // Bytes that are no Japanese encoding at all: an error, no record.
    let mut bytes = sample_message();
    bytes.extend_from_slice(&[0xff, 0xfe, 0x80, 0x81, 0xff]);
    let r = read(&bytes, "H");
    assert!(r.records.is_empty());
    assert_eq!(r.errors(), 1);
}

#[test]
fn superseded_files_are_kept_out() {
    let bytes = sample_message();
    let files = vec![
        PatientFile {
            path: "000/012/0000123/20250526/OML-11/0000123_20250526_OML-11_000000000000777_20250526101500000_01_1".into(),
            bytes: bytes.clone(),
        },
        PatientFile {
            path: "000/012/0000123/20250526/OML-11/0000123_20250526_OML-11_000000000000778_20250526101500000_01_0".into(),
            bytes,
        },
    ];
    let p = read_patient(&files, "H");
    assert_eq!(p.not_current, 1);
    assert_eq!(p.record.expect("record").events.lab_results.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Round trip

fn identity(
    surname: &str,
    given: Option<&str>,
    kana: Option<(&str, &str)>,
    insurer: Option<&str>,
) -> IdentityRecord {
    IdentityRecord {
        record_id: "r1".into(),
        provider_id: "H01".into(),
        source_kind: SourceKind::Emr,
        local_patient_id: Some("12345678".into()),
        surname_kanji: Some(surname.into()),
        given_kanji: given.map(str::to_string),
        surname_kana: kana.map(|k| k.0.to_string()),
        given_kana: kana.map(|k| k.1.to_string()),
        birth_date: Some(date(1950, 2, 28)),
        sex: Some(Sex::Female),
        prefecture: Some("青森県".into()),
        municipality_code: Some("022012".into()),
        municipality: Some("青森市".into()),
        town: Some("新町".into()),
        chome: Some("1".into()),
        banchi: Some("12-3".into()),
        postal_code: Some("0300801".into()),
        insurance_kind: insurer.map(|_| InsuranceKind::Kokuho),
        insured_symbol: insurer.map(|_| "青森".into()),
        insured_number: insurer.map(|_| "１２３４５".into()),
        insured_branch: insurer.map(|_| "01".into()),
        insurer_number: insurer.map(str::to_string),
        recorded_on: date(2024, 3, 1),
    }
}

prop_compose! {
    fn record()(
        surname in prop::sample::select(vec!["髙橋", "𠮷田", "山﨑", "工藤", "佐々木", "齋藤", "a|b^c"]),
        given in proptest::option::of(prop::sample::select(vec!["花子", "太郎", "ﾊﾅｺ", "&~"])),
        kana in proptest::option::of(prop::sample::select(vec![("ﾀｶﾊｼ", "ﾊﾅｺ"), ("ヨシダ", "タロウ"), ("ｻﾞｯﾊﾟ", "ｳﾞｨ")])),
        insurer in proptest::option::of(prop::sample::select(vec!["022012", "06139992", "39022011"])),
        visits in prop::collection::vec((0i64..700, any::<bool>(), 0i64..20), 0..5),
        rx in prop::collection::vec((0usize..6, 0i64..700, 0.1f64..10.0, 1i32..90), 0..6),
        labs in prop::collection::vec((0usize..6, 0i64..700, prop::option::of(-1000.0f64..1000.0)), 0..8),
        dx in prop::collection::vec((any::<bool>(), 0usize..5, any::<bool>(), any::<bool>()), 0..4),
        died in any::<bool>(),
    ) -> SourceRecord {
        let mut id = identity(surname, given, kana, insurer);
        if id.insurer_number.as_deref() == Some("06139992") {
            id.insurance_kind = Some(InsuranceKind::Kumiai);
        }
        let base = date(2023, 1, 1);
        let mut ev = EventSet::default();
        for (start, inpatient, len) in &visits {
            let s = base + chrono::Duration::days(*start);
            ev.encounters.push(Encounter {
                event_id: String::new(),
                record_id: String::new(),
                facility_code: "0211234567".into(),
                setting: if *inpatient { Setting::Inpatient } else { Setting::Outpatient },
                department: Some("内科".into()),
                start_date: s,
                end_date: if *inpatient { s + chrono::Duration::days(*len) } else { s },
            });
        }
        let enc = |i: usize| (i < visits.len()).then(|| i.to_string());
        for (e, day, q, days) in rx {
            ev.prescriptions.push(Prescription {
                event_id: String::new(),
                record_id: String::new(),
                encounter_id: enc(e),
                date: base + chrono::Duration::days(day),
                code_system: CodeSystem::YakkaCode,
                code: "2149039F1020".into(),
                name: Some("アムロジピン錠５ｍｇ「ﾄｰﾜ」".into()),
                daily_quantity: Some(q),
                unit: Some("錠".into()),
                days: Some(days),
            });
        }
        for (e, day, v) in labs {
            ev.lab_results.push(LabResult {
                event_id: String::new(),
                record_id: String::new(),
                encounter_id: enc(e),
                date: base + chrono::Duration::days(day),
                code_system: CodeSystem::Jlac10,
                code: "3D046000001906202".into(),
                name: Some("HbA1c(NGSP)".into()),
                value_num: v,
                value_text: if v.is_none() { Some("(+)".into()) } else { None },
                unit: v.map(|_| "%".into()),
            });
        }
        // A 傷病名コード without ICD-10 (`bare`) reads back with the master's when the table has it.
        for (icd, outcome, suspected, bare) in dx {
            let o = [None, Some(DiagnosisOutcome::Continuing), Some(DiagnosisOutcome::Cured),
                     Some(DiagnosisOutcome::Died), Some(DiagnosisOutcome::Stopped)][outcome];
            ev.diagnoses.push(Diagnosis {
                event_id: String::new(),
                record_id: String::new(),
                encounter_id: None,
                date: date(2022, 5, 3),
                code_system: if icd { CodeSystem::Icd10 } else { CodeSystem::ReceiptDisease },
                code: match (icd, bare) {
                    (true, _) => "E119".into(),
                    (false, false) => "2500013".into(),
                    (false, true) => "8840107".into(),
                },
                icd10: (icd || !bare).then(|| "E119".into()),
                name: Some("２型糖尿病".into()),
                suspected,
                outcome: o,
                outcome_date: o.map(|_| date(2024, 1, 9)),
            });
        }
        if died {
            ev.deaths.push(Death {
                event_id: String::new(),
                record_id: String::new(),
                date: date(2024, 12, 30),
                recorded_on: Some(date(2024, 12, 30)),
            });
        }
        SourceRecord { identity: id, events: ev }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn write_then_read_gives_back_the_canonical_record(r in record()) {
        let files = write_patient(&r).expect("write");
        let files: Vec<PatientFile> = files
            .into_iter()
            .map(|(path, bytes)| PatientFile { path, bytes })
            .collect();
        for f in &files {
            // ISO-2022-JP: 7-bit, CR-terminated segments.
            prop_assert!(f.bytes.is_ascii());
            prop_assert!(f.bytes.ends_with(b"\r"));
            prop_assert!(f.path.starts_with("123/456/12345678/"));
        }
        let p = read_patient(&files, "H01");
        prop_assert_eq!(p.errors(), 0, "{:?}", p.files);
        let got = p.record.expect("record");
        let mut want = canonicalize(&r);
        want.identity.provider_id = "H01".into();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn the_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1500)) {
        let _ = read(&bytes, "H");
    }

    #[test]
    fn mutated_messages_never_panic(pos in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
        let mut bytes = sample_message();
        let n = bytes.len();
        bytes[pos % n] = byte;
        bytes.truncate(n - cut.min(n));
        let r = read(&bytes, "H");
        prop_assert!(r.records.len() + r.rejected.len() <= 1);
    }
}

#[test]
fn a_byomei_code_without_prb10_takes_the_masters_icd10() {
    let mut r = SourceRecord {
        identity: identity("工藤", Some("花子"), None, None),
        events: EventSet::default(),
    };
    for (code, icd10) in [
        ("8840107", None),
        ("8833421", None),
        ("8840107", Some("I159")),
    ] {
        r.events.diagnoses.push(Diagnosis {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: None,
            date: date(2024, 5, 1),
            code_system: CodeSystem::ReceiptDisease,
            code: code.into(),
            icd10: icd10.map(str::to_string),
            name: Some("高血圧症".into()),
            suspected: false,
            outcome: None,
            outcome_date: None,
        });
    }
    let files: Vec<PatientFile> = write_patient(&r)
        .expect("write")
        .into_iter()
        .map(|(path, bytes)| PatientFile { path, bytes })
        .collect();
    let p = read_patient(&files, "H01");
    assert_eq!(p.errors(), 0, "{:?}", p.files);
    let got: Vec<(String, Option<String>)> = p
        .record
        .map(|r| {
            r.events
                .diagnoses
                .into_iter()
                .map(|d| (d.code, d.icd10))
                .collect()
        })
        .unwrap_or_default();
    let want = [
        ("8840107", Some("I10")),
        ("8833421", None),
        ("8840107", Some("I159")),
    ];
    let want: Vec<(String, Option<String>)> = want
        .iter()
        .map(|(c, i)| (c.to_string(), i.map(str::to_string)))
        .collect();
    assert_eq!(
        got, want,
        "PRB-10 when written, else the master's, else none"
    );
}
