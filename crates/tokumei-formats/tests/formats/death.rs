//! Reader and writer of municipal death records (除票 CSV).

use chrono::NaiveDate;
use proptest::prelude::*;
use tokumei_formats::dates::DateStyle;
use tokumei_formats::death::{canonicalize, canonicalize_for, read, write_with, Encoding};
use tokumei_formats::encoding::Detected;
use tokumei_formats::Severity;
use tokumei_model::events::{Death, EventSet, SourceRecord};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::{InsuranceKind, Sex, SourceKind};

const SAMPLE: &[u8] = include_bytes!("../fixtures/death_export_proposed.csv");

#[test]
fn reads_the_sample() {
    let r = read(SAMPLE, "M131016");
    assert_eq!(r.errors(), 0, "{:?}", r.issues);
    assert_eq!(r.records.len(), 1);
    let rec = &r.records[0].record;
    let id = &rec.identity;
    assert_eq!(id.source_kind, SourceKind::Death);
    assert_eq!(id.surname_kanji.as_deref(), Some("試験"));
    assert_eq!(id.given_kana.as_deref(), Some("ハナコ"));
    assert_eq!(id.birth_date, NaiveDate::from_ymd_opt(1980, 4, 12));
    assert_eq!(id.prefecture.as_deref(), Some("東京都"));
    assert_eq!(id.municipality.as_deref(), Some("千代田区"));
    assert_eq!(id.town.as_deref(), Some("架空町"));
    assert_eq!(id.chome.as_deref(), Some("1"));
    assert_eq!(id.banchi.as_deref(), Some("2-3"));
    assert_eq!(id.postal_code.as_deref(), Some("1000001"));
    assert_eq!(
        rec.events.deaths[0].date,
        NaiveDate::from_ymd_opt(2030, 2, 3).unwrap_or_default()
    );
    assert_eq!(r.records[0].first_line, 2);
}

#[test]
fn bad_rows_are_reported_with_their_line_and_the_rest_is_read() {
    let text = String::from_utf8_lossy(SAMPLE).to_string();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let good = lines[1].clone();
    lines.push(good.replace("1980-04-12", "1980-13-12"));
    lines.push(good.replace(",2,東京都", ",9,東京都"));
    lines.push(good.clone());
    let r = read(lines.join("\n").as_bytes(), "M");
    assert_eq!(r.records.len(), 2);
    assert_eq!(r.rejected.len(), 2);
    let errors: Vec<_> = r
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    assert_eq!(errors[0].position.line, 3);
    assert_eq!(errors[0].position.field, Some(4));
    assert!(errors[0].message.contains("birth_date"));
    assert_eq!(errors[1].position.line, 4);
    assert!(errors[1].message.contains("sex"));
    assert!(
        !errors.iter().any(|e| e.message.contains("試験")),
        "no name in a message"
    );
}

#[test]
fn forbidden_identifier_columns_are_refused() {
    let text = String::from_utf8_lossy(SAMPLE).replace("kokuho_branch", "個人番号");
    let r = read(text.as_bytes(), "M");
    assert!(r.records.is_empty());
    assert!(r.issues[0].message.contains("個人番号"));
}

#[test]
fn shift_jis_files_are_detected_and_read() {
    let (sjis, _, _) =
        encoding_rs::SHIFT_JIS.encode(std::str::from_utf8(SAMPLE).unwrap_or_default());
    let r = read(&sjis, "M");
    assert_eq!(r.encoding, Some(Detected::ShiftJis));
    assert_eq!(r.records.len(), 1);
    assert_eq!(
        r.records[0].record.identity.surname_kanji.as_deref(),
        Some("試験")
    );
}

prop_compose! {
    fn death_record()(
        surname in prop::sample::select(vec!["髙橋", "𠮷田", "山﨑", "工藤", "ｻﾄｳ", "齋藤"]),
        given in proptest::option::of(prop::sample::select(vec!["花子", "太郎", "ﾊﾅｺ"])),
        kana in proptest::option::of(prop::sample::select(vec!["タカハシ", "ヨシダ", "ｻﾄｳ"])),
        birth in (1900i32..2020, 1u32..13, 1u32..29),
        death_after in 0i64..40000,
        notified_after in proptest::option::of(0i64..30),
        male in any::<bool>(),
        town in prop::sample::select(vec!["新町", "本町", "小湊", "三本木", "大字野木"]),
        chome in proptest::option::of(1u8..10),
        banchi in prop::sample::select(vec!["12-3", "5", "100-2"]),
        kokuho in any::<bool>(),
        resident in proptest::option::of("[0-9]{10}"),
    ) -> SourceRecord {
        let birth = NaiveDate::from_ymd_opt(birth.0, birth.1, birth.2).unwrap_or_default();
        let death = birth + chrono::Duration::days(death_after);
        let insurer = kokuho.then(|| "022012".to_string());
        SourceRecord {
            identity: IdentityRecord {
                record_id: String::new(),
                provider_id: "M".into(),
                source_kind: SourceKind::Death,
                local_patient_id: resident,
                surname_kanji: Some(surname.into()),
                given_kanji: given.map(str::to_string),
                surname_kana: kana.map(str::to_string),
                given_kana: None,
                birth_date: Some(birth),
                sex: Some(if male { Sex::Male } else { Sex::Female }),
                prefecture: Some("青森県".into()),
                municipality_code: Some("022012".into()),
                municipality: Some("青森市".into()),
                town: Some(town.into()),
                chome: chome.map(|c| c.to_string()),
                banchi: Some(banchi.into()),
                postal_code: Some("0300801".into()),
                insurance_kind: insurer.as_ref().map(|_| InsuranceKind::Kokuho),
                insured_symbol: insurer.as_ref().map(|_| "05".into()),
                insured_number: insurer.as_ref().map(|_| "1234567".into()),
                insured_branch: insurer.as_ref().map(|_| "01".into()),
                insurer_number: insurer,
                recorded_on: death,
            },
            events: EventSet {
                deaths: vec![Death {
                    event_id: String::new(),
                    record_id: String::new(),
                    date: death,
                    recorded_on: notified_after.map(|d| death + chrono::Duration::days(d)),
                }],
                ..EventSet::default()
            },
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn write_then_read_gives_back_the_canonical_records(records in prop::collection::vec(death_record(), 1..6), era in any::<bool>()) {
        let style = if era { DateStyle::Era } else { DateStyle::Gregorian };
        let bytes = write_with(&records, Encoding::Utf8, style).expect("write");
        // The same file as a legacy system writes it: Shift_JIS, substituted.
        let sjis = write_with(&records, Encoding::ShiftJis, style).expect("write");
        let r = read(&sjis, "M");
        prop_assert_eq!(r.errors(), 0, "{:?}", r.issues);
        prop_assert_eq!(r.records.len(), records.len());
        for (got, want) in r.records.iter().zip(&records) {
            prop_assert_eq!(&got.record, &canonicalize_for(want, Encoding::ShiftJis));
        }
        let r = read(&bytes, "M");
        prop_assert_eq!(r.errors(), 0, "{:?}", r.issues);
        prop_assert_eq!(r.records.len(), records.len());
        for (got, want) in r.records.iter().zip(&records) {
            prop_assert_eq!(&got.record, &canonicalize(want));
        }
    }

    #[test]
    fn the_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = read(&bytes, "M");
    }
}

/// Regression: a fuzzer-found file whose insurer column holds non-ASCII text made the reader slice
/// inside a character.
#[test]
fn fuzz_regression_non_ascii_insurer_number() {
    let bytes = include_bytes!("../fixtures/fuzz/death-insurer-non-ascii.csv");
    let r = read(bytes, "M");
    assert!(r
        .records
        .iter()
        .all(|rec| rec.record.identity.insurance_kind.is_none()));
    assert_eq!(tokumei_formats::uke::insurance_kind("k騒梔e01"), None);
}
