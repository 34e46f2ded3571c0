//! Reader and writer of レセ電 medical claims.

use chrono::NaiveDate;
use proptest::prelude::*;
use tokumei_formats::dates::DateStyle;
use tokumei_formats::encoding::Detected;
use tokumei_formats::uke::{canonicalize, read, write_with, Facility};
use tokumei_formats::Severity;
use tokumei_model::checkdigit::with_insurer_check_digit;
use tokumei_model::events::{
    Diagnosis, Encounter, EventSet, Prescription, Procedure, SourceRecord,
};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::{CodeSystem, DiagnosisOutcome, InsuranceKind, Setting, Sex, SourceKind};

const SAMPLE: &[u8] = include_bytes!("../fixtures/RECEIPTC.UKE");
const SAMPLE_UTF8: &[u8] = include_bytes!("../fixtures/RECEIPTC.UKE.utf8.txt");

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

#[test]
fn reads_the_sample_file() {
    let r = read(SAMPLE, "P1");
    assert_eq!(r.encoding, Some(Detected::ShiftJis));
    assert_eq!(r.errors(), 0, "{:?}", r.issues);
    assert_eq!(r.records.len(), 1);
    let rec = &r.records[0].record;
    let id = &rec.identity;
    assert_eq!(id.surname_kanji.as_deref(), Some("試験"));
    assert_eq!(id.given_kanji.as_deref(), Some("花子"));
    assert_eq!(
        id.surname_kana.as_deref(),
        Some("シケンハナコ"),
        "the sample has no space in the kana name"
    );
    assert_eq!(id.birth_date, Some(date(1980, 4, 12)));
    assert_eq!(id.sex, Some(Sex::Female));
    assert_eq!(id.insurer_number.as_deref(), Some("06139992"));
    assert_eq!(id.insurance_kind, Some(InsuranceKind::Kumiai));
    assert_eq!(id.insured_symbol.as_deref(), Some("1234"));
    assert_eq!(id.insured_number.as_deref(), Some("5678"));
    assert_eq!(id.insured_branch.as_deref(), Some("01"));
    assert_eq!(id.local_patient_id.as_deref(), Some("0000123"));
    assert_eq!(id.provider_id, "P1");
    let ev = &rec.events;
    assert_eq!(ev.diagnoses.len(), 2);
    assert!(!ev.diagnoses[0].suspected);
    assert!(
        ev.diagnoses[1].suspected,
        "修飾語 8002 marks a suspected diagnosis"
    );
    assert_eq!(ev.diagnoses[1].date, date(2025, 5, 26));
    let days: Vec<NaiveDate> = ev.encounters.iter().map(|e| e.start_date).collect();
    assert_eq!(days, vec![date(2025, 5, 12), date(2025, 5, 26)]);
    assert!(ev
        .encounters
        .iter()
        .all(|e| e.facility_code == "1311234566"));
    let points: i64 = ev
        .procedures
        .iter()
        .map(|p| i64::from(p.points.unwrap_or(0)) * i64::from(p.count))
        .sum();
    assert_eq!(points, 587, "totals add up to the GO record");
    assert_eq!(r.line_counts.get("SI"), Some(&5));
}

#[test]
fn diagnoses_take_the_icd10_of_the_byomei_master() {
    // The sample's first SY (8833421, not in the master table) replaced by three diagnoses.
    let lines: Vec<Vec<u8>> = sample_lines()
        .into_iter()
        .flat_map(|l| {
            if l.starts_with(b"SY,8833421,") {
                vec![
                    b"SY,8840107,20250512,1,,,01,\r".to_vec(),
                    b"SY,8833421,20250512,1,,,,\r".to_vec(),
                    b"SY,0000999,20250512,1,,\x95\x73\x96\xbe,,\r".to_vec(),
                ]
            } else {
                vec![l]
            }
        })
        .collect();
    let r = read(&lines.join(&b'\n'), "P1");
    assert_eq!(r.errors(), 0, "{:?}", r.issues);
    let ev = &r.records[0].record.events;
    let got: Vec<(&str, CodeSystem, Option<&str>)> = ev
        .diagnoses
        .iter()
        .map(|d| (d.code.as_str(), d.code_system, d.icd10.as_deref()))
        .collect();
    let rd = CodeSystem::ReceiptDisease;
    assert_eq!(
        got,
        vec![
            ("8840107", rd, Some("I10")),
            ("8833421", rd, None),
            ("0000999", rd, None),
            ("8844446", rd, Some("E785")),
        ],
        "the code and its system are kept; ICD-10 only where the master table has the code"
    );
    assert_eq!(ev.diagnoses[2].name.as_deref(), Some("不明"));
}

#[test]
fn utf8_file_is_reported_not_turned_into_mojibake() {
    let r = read(SAMPLE_UTF8, "P1");
    assert_eq!(r.encoding, Some(Detected::Utf8));
    assert!(r.records.is_empty());
    assert!(r
        .issues
        .iter()
        .any(|i| i.severity == Severity::Error && i.message.contains("UTF-8")));
}

fn sample_lines() -> Vec<Vec<u8>> {
    let body = SAMPLE.strip_suffix(&[0x1A]).unwrap_or(SAMPLE);
    body.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect()
}

/// The sample with a second, broken receipt inserted before GO.
fn with_broken_receipt(broken: &[&[u8]]) -> Vec<u8> {
    let lines = sample_lines();
    let mut out = Vec::new();
    for l in &lines[..lines.len() - 1] {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    for l in broken {
        out.extend_from_slice(l);
        out.extend_from_slice(b"\r\n");
    }
    // A good receipt after the broken one.
    for l in &lines[1..lines.len() - 1] {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out.extend_from_slice(b"GO,3,1174,99\r\n");
    out
}

#[test]
fn malformed_receipts_are_reported_with_their_line_and_good_ones_still_read() {
    let re_ok = b"RE,2,1112,202505,\x8e\x8e\x8c\xb1\x81\x40\x89\xd4\x8e\x71,2,19800412,,,,,,,0000124,,,,,,,,,,,,,,,,,,,,,,,,".to_vec();
    let cases: Vec<(Vec<Vec<u8>>, usize, &str)> = vec![
        (vec![b"RE,2,1112,202505,X,2,1980".to_vec()], 0, "truncated"),
        (vec![impossible_birth_date(re_ok.clone())], 0, "生年月日"),
        (
            vec![re_ok.clone(), b"SY,88334,20250512,1,,,01,".to_vec()],
            1,
            "傷病名コード",
        ),
        (
            vec![
                re_ok.clone(),
                b"HO,06139992,\x82\x50,\x82\x51,1,75,,,,,,,,,".to_vec(),
                b"SY,8833421,20251340,1,,,01,".to_vec(),
            ],
            2,
            "診療開始日",
        ),
        (
            vec![re_ok.clone(), vec![0x53, 0x59, 0x2c, 0xff, 0xfe]],
            1,
            "Shift_JIS",
        ),
        // A line of 20 million commas is refused whole, not split into fields.
        (
            vec![
                re_ok.clone(),
                [b"SY,".to_vec(), vec![b','; 20 << 20]].concat(),
            ],
            1,
            "longer than",
        ),
    ];
    for (broken, offset, what) in cases {
        let refs: Vec<&[u8]> = broken.iter().map(|v| v.as_slice()).collect();
        let bytes = with_broken_receipt(&refs);
        let r = read(&bytes, "P1");
        assert_eq!(
            r.records.len(),
            2,
            "{what}: both good receipts are read ({:?})",
            r.issues
        );
        assert_eq!(r.rejected.len(), 1, "{what}: one receipt rejected");
        let bad_line = sample_lines().len() + offset;
        let err = r
            .issues
            .iter()
            .find(|i| i.severity == Severity::Error)
            .expect("an error");
        assert_eq!(err.position.line, bad_line, "{what}: {err:?}");
        assert!(err.message.contains(what), "{what}: {}", err.message);
        assert_eq!(r.rejected[0].first_line, sample_lines().len());
    }
}

/// Turns the birth date 19800412 of an RE line into the impossible 19801312.
fn impossible_birth_date(mut line: Vec<u8>) -> Vec<u8> {
    let pos = line
        .windows(8)
        .position(|w| w == b"19800412")
        .expect("birth date");
    line[pos + 4] = b'1';
    line[pos + 5] = b'3';
    line
}

#[test]
fn check_digit_and_totals_are_warnings_not_errors() {
    let mut bytes = SAMPLE.to_vec();
    let pos = bytes
        .windows(8)
        .position(|w| w == b"06139992")
        .expect("insurer");
    bytes[pos + 7] = b'3';
    let r = read(&bytes, "P1");
    assert_eq!(r.records.len(), 1);
    assert!(r
        .issues
        .iter()
        .any(|i| i.severity == Severity::Warning && i.message.contains("check digit")));
}

// ------------------------------------------------------------------ round trip

fn insurer() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{5}".prop_map(|b| with_insurer_check_digit(&b).expect("digits")),
        prop_oneof![Just("01"), Just("06"), Just("31"), Just("39"), Just("67")]
            .prop_flat_map(|h| "[0-9]{5}"
                .prop_map(move |b| with_insurer_check_digit(&format!("{h}{b}")).expect("digits"))),
    ]
}

fn kanji_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "髙橋",
        "𠮷田",
        "山﨑",
        "佐藤",
        "渡邉",
        "工藤",
        "今",
        "ｻﾄｳ",
        "花子",
        "太郎",
        "德子",
        "ﾊﾅｺ",
    ])
    .prop_map(str::to_string)
}

fn kana_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "タカハシ",
        "ヨシダ",
        "ヤマザキ",
        "ｻﾄｳ",
        "ヴァイオレット",
        "ハナコ",
        "コン",
    ])
    .prop_map(str::to_string)
}

prop_compose! {
    fn claims_record()(
        surname in proptest::option::of(kanji_name()),
        given in proptest::option::of(kanji_name()),
        surname_kana in proptest::option::of(kana_name()),
        given_kana in proptest::option::of(kana_name()),
        birth in (1920i32..2024, 1u32..13, 1u32..29),
        male in any::<bool>(),
        insurer in proptest::option::of(insurer()),
        symbol in proptest::option::of("[0-9A-Z]{1,6}(-[0-9]{1,3})?"),
        number in "[0-9]{1,8}",
        branch in proptest::option::of("[0-9]{2}"),
        local in proptest::option::of("[0-9]{1,10}"),
        month in (2019i32..2026, 1u32..13),
        inpatient in any::<bool>(),
        procs in prop::collection::vec((prop::sample::select(vec!["111000110", "112007410", "160010010", "190117710", "170000410"]), 0i32..2000, 1u32..29, 1i32..4), 1..8),
        drugs in prop::collection::vec((prop::sample::select(vec!["622239501", "620000001"]), prop::sample::select(vec![1.0f64, 2.0, 0.5, 3.0]), 1u32..29, 1i32..60), 0..4),
        diags in prop::collection::vec((prop::sample::select(vec!["8840107", "2500015", "0000999"]), 1u32..29, any::<bool>(), 0usize..5), 0..4),
    ) -> SourceRecord {
        let month = NaiveDate::from_ymd_opt(month.0, month.1, 1).expect("month");
        let day = |d: u32| NaiveDate::from_ymd_opt(chrono::Datelike::year(&month), chrono::Datelike::month(&month), d).expect("day");
        let kind = insurer.as_deref().and_then(tokumei_formats::uke::insurance_kind);
        let identity = IdentityRecord {
            record_id: String::new(),
            provider_id: "P".into(),
            source_kind: SourceKind::Claims,
            local_patient_id: local,
            surname_kanji: surname,
            given_kanji: given,
            surname_kana,
            given_kana,
            birth_date: NaiveDate::from_ymd_opt(birth.0, birth.1, birth.2),
            sex: Some(if male { Sex::Male } else { Sex::Female }),
            prefecture: Some("青森県".into()),
            municipality_code: Some("022012".into()),
            municipality: None, town: None, chome: None, banchi: None, postal_code: None,
            insurance_kind: kind,
            insured_symbol: insurer.as_ref().and(symbol),
            insured_number: insurer.as_ref().map(|_| number),
            insured_branch: insurer.as_ref().and(branch),
            insurer_number: insurer,
            recorded_on: month,
        };
        let mut events = EventSet::default();
        for (code, points, d, count) in procs {
            events.procedures.push(Procedure { event_id: String::new(), record_id: String::new(), encounter_id: None, date: day(d), code_system: CodeSystem::ReceiptProcedure, code: code.into(), name: Some("名".into()), points: Some(points), count });
        }
        for (code, qty, d, days) in drugs {
            events.prescriptions.push(Prescription { event_id: String::new(), record_id: String::new(), encounter_id: None, date: day(d), code_system: CodeSystem::ReceiptDrug, code: code.into(), name: None, daily_quantity: Some(qty), unit: Some("錠".into()), days: Some(days) });
        }
        for (code, d, suspected, outcome) in diags {
            let outcome = [None, Some(DiagnosisOutcome::Continuing), Some(DiagnosisOutcome::Cured), Some(DiagnosisOutcome::Died), Some(DiagnosisOutcome::Stopped)][outcome];
            events.diagnoses.push(Diagnosis { event_id: String::new(), record_id: String::new(), encounter_id: None, date: day(d), code_system: CodeSystem::ReceiptDisease, code: code.into(), icd10: Some("I10".into()), name: Some("未コード化の𠮷病".into()), suspected, outcome, outcome_date: None });
        }
        let first = events.procedures.iter().map(|p| p.date).min().unwrap_or(month);
        events.encounters.push(Encounter { event_id: String::new(), record_id: String::new(), facility_code: "0212345670".into(), setting: if inpatient { Setting::Inpatient } else { Setting::Outpatient }, department: None, start_date: first, end_date: first });
        SourceRecord { identity, events }
    }
}

fn facility() -> Facility {
    Facility {
        payer: 1,
        prefecture: "02".into(),
        table: "1".into(),
        code7: "2345670".into(),
        name: "架空病院".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn write_then_read_gives_back_the_canonical_records(records in prop::collection::vec(claims_record(), 1..5), era in any::<bool>()) {
        // One file holds one month: move every record to the month of the first.
        let month = records[0].identity.recorded_on;
        let records: Vec<SourceRecord> = records.into_iter().map(|mut r| {
            let shift = |d: NaiveDate| NaiveDate::from_ymd_opt(chrono::Datelike::year(&month), chrono::Datelike::month(&month), chrono::Datelike::day(&d)).expect("day");
            for p in &mut r.events.procedures { p.date = shift(p.date); }
            for p in &mut r.events.prescriptions { p.date = shift(p.date); }
            for d in &mut r.events.diagnoses { d.date = shift(d.date); }
            for e in &mut r.events.encounters { e.start_date = shift(e.start_date); e.end_date = shift(e.end_date); }
            r
        }).collect();
        let style = if era { DateStyle::Era } else { DateStyle::Gregorian };
        let bytes = write_with(&facility(), month, &records, style).expect("write");
        if era {
            // Era-coded: 診療年月 is 5 digits, 生年月日 7.
            let text = String::from_utf8_lossy(&bytes);
            let re = text.lines().find(|l| l.starts_with("RE,")).unwrap_or_default();
            let f: Vec<&str> = re.split(',').collect();
            prop_assert_eq!(f[3].len(), 5);
            prop_assert_eq!(f[6].len(), 7);
        }
        let report = read(&bytes, "P");
        prop_assert_eq!(report.errors(), 0, "{:?}", report.issues);
        prop_assert_eq!(report.records.len(), records.len());
        prop_assert!(report.records.iter().all(|r| !r.record.events.procedures.is_empty()));
        for (got, want) in report.records.iter().zip(&records) {
            let want = canonicalize(want);
            prop_assert_eq!(&got.record.identity, &want.identity);
            prop_assert_eq!(&got.record.events, &want.events);
        }
    }

    #[test]
    fn the_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = read(&bytes, "P");
    }

    #[test]
    fn the_reader_never_panics_on_mutated_claims(pos in 0usize..600, byte in any::<u8>(), cut in 0usize..700) {
        let mut bytes = SAMPLE.to_vec();
        let p = pos % bytes.len();
        bytes[p] = byte;
        bytes.truncate(cut.max(1));
        let _ = read(&bytes, "P");
    }
}

/// DPC and pharmacy variants: record types whose layouts are not specified here are counted and
/// warned once, patients and insurance still read, nothing rejected.
#[test]
fn dpc_and_pharmacy_variants_are_read_leniently_and_loudly() {
    let text = std::str::from_utf8(SAMPLE_UTF8).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    // DPC: BU and SB lines after the RE line.
    let mut dpc: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let re = dpc.iter().position(|l| l.starts_with("RE,")).expect("RE");
    dpc.insert(re + 1, "BU,040081xx99x0xx,20250501,20250510".into());
    dpc.insert(re + 2, "SB,J189,4809004,01".into());
    dpc.insert(re + 3, "SB,E119,2500013,02".into());
    let bytes = tokumei_formats::uke::to_sjis(&dpc.join("\r\n"));
    let r = read(&bytes, "P");
    assert_eq!(r.errors(), 0, "{:?}", r.issues);
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.line_counts.get("SB"), Some(&2));
    let variant_warnings: Vec<_> = r
        .issues
        .iter()
        .filter(|i| i.message.contains("layout not specified"))
        .collect();
    assert_eq!(
        variant_warnings.len(),
        2,
        "one per record type: {variant_warnings:?}"
    );
    assert!(!r.records[0].record.events.procedures.is_empty());
    // Pharmacy: YK header; identity and insurance read, dispensing lines not mapped.
    let mut cyo: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    cyo[0] = cyo[0].replacen("IR,", "YK,", 1);
    let bytes = tokumei_formats::uke::to_sjis(&cyo.join("\r\n"));
    let r = read(&bytes, "Y");
    assert_eq!(r.errors(), 0, "{:?}", r.issues);
    let rec = &r.records[0].record;
    assert!(rec.identity.insurer_number.is_some());
    assert!(rec.identity.birth_date.is_some());
    assert!(rec.events.procedures.is_empty());
    assert!(r.issues.iter().any(|i| i.message.contains("pharmacy")));
}
