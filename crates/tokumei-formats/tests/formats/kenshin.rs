//! Reader and writer of 特定健診 result files (HL7 CDA R2, hc08).

use chrono::NaiveDate;
use proptest::prelude::*;
use tokumei_formats::encoding::Detected;
use tokumei_formats::kenshin::{canonicalize, file_name, read, write};
use tokumei_formats::{ReadReport, Severity};
use tokumei_model::checkdigit::with_insurer_check_digit;
use tokumei_model::events::{Diagnosis, Encounter, EventSet, LabResult, SourceRecord};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::{CodeSystem, InsuranceKind, Setting, Sex, SourceKind};

const SAMPLE: &[u8] = include_bytes!("../fixtures/h13123456702025060101000001.xml");

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

fn sample_text() -> String {
    String::from_utf8(SAMPLE.to_vec()).expect("the sample is UTF-8")
}

fn errors(r: &ReadReport) -> Vec<(usize, String)> {
    r.issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| (i.position.line, i.message.clone()))
        .collect()
}

/// Identifying values of the sample person: no message may contain them.
const IDENTIFYING: [&str; 8] = [
    "シケン",
    "ハナコ",
    "06139992",
    "１２３４",
    "５６７８",
    "19800412",
    "100-0001",
    "架空町",
];

fn assert_no_identifying_values(r: &ReadReport) {
    for i in &r.issues {
        for v in IDENTIFYING {
            assert!(
                !i.message.contains(v),
                "message {:?} contains a value",
                i.message
            );
        }
    }
    for j in &r.rejected {
        for v in IDENTIFYING {
            assert!(
                !j.reason.contains(v),
                "reason {:?} contains a value",
                j.reason
            );
        }
    }
}

#[test]
fn reads_the_sample_file() {
    let r = read(SAMPLE, "K1");
    assert_eq!(r.encoding, Some(Detected::Utf8));
    assert!(r.issues.is_empty(), "{:?}", r.issues);
    assert!(r.rejected.is_empty());
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].first_line, 3, "the ClinicalDocument start tag");
    assert_eq!(r.records[0].last_line, 70, "the ClinicalDocument end tag");
    let rec = &r.records[0].record;
    let id = &rec.identity;
    assert_eq!(id.record_id, "");
    assert_eq!(id.provider_id, "K1");
    assert_eq!(id.source_kind, SourceKind::Checkup);
    assert_eq!(id.local_patient_id, None);
    assert_eq!(id.surname_kanji, None);
    assert_eq!(id.given_kanji, None);
    assert_eq!(id.surname_kana.as_deref(), Some("シケン"));
    assert_eq!(id.given_kana.as_deref(), Some("ハナコ"));
    assert_eq!(id.birth_date, Some(date(1980, 4, 12)));
    assert_eq!(id.sex, Some(Sex::Female));
    assert_eq!(id.postal_code.as_deref(), Some("1000001"));
    assert_eq!(id.prefecture.as_deref(), Some("東京都"));
    assert_eq!(id.municipality.as_deref(), Some("千代田区"));
    assert_eq!(id.municipality_code, None);
    assert_eq!(id.town.as_deref(), Some("架空町"));
    assert_eq!(id.chome.as_deref(), Some("1"));
    assert_eq!(id.banchi.as_deref(), Some("2-3"));
    assert_eq!(id.insurer_number.as_deref(), Some("06139992"));
    assert_eq!(id.insurance_kind, Some(InsuranceKind::Kumiai));
    assert_eq!(id.insured_symbol.as_deref(), Some("１２３４"));
    assert_eq!(id.insured_number.as_deref(), Some("５６７８"));
    assert_eq!(id.insured_branch.as_deref(), Some("01"));
    assert_eq!(id.recorded_on, date(2025, 5, 12), "the 受診日");

    let ev = &rec.events;
    assert_eq!(
        ev.encounters,
        vec![Encounter {
            event_id: String::new(),
            record_id: String::new(),
            facility_code: "1312345670".into(),
            setting: Setting::Checkup,
            department: None,
            start_date: date(2025, 5, 12),
            end_date: date(2025, 5, 12),
        }]
    );
    assert!(ev.diagnoses.is_empty() && ev.prescriptions.is_empty());
    assert!(ev.procedures.is_empty() && ev.deaths.is_empty());
    let want: Vec<(&str, &str, f64, &str)> = vec![
        ("9N001000000000001", "身長", 158.2, "cm"),
        ("9N006000000000001", "体重", 52.4, "kg"),
        ("9N011000000000001", "ＢＭＩ", 20.9, "kg/m2"),
        ("9N016160100000001", "腹囲（実測）", 74.0, "cm"),
        ("9A751000000000001", "収縮期血圧（１回目）", 128.0, "mmHg"),
        ("9A761000000000001", "拡張期血圧（１回目）", 78.0, "mmHg"),
        ("3D010000001926101", "空腹時血糖（電位差法）", 94.0, "mg/dl"),
        ("3D046000001906202", "ＨｂＡ１ｃ（ＮＧＳＰ）", 5.6, "%"),
    ];
    assert_eq!(ev.lab_results.len(), want.len());
    for (got, (code, name, value, unit)) in ev.lab_results.iter().zip(&want) {
        assert_eq!(
            got,
            &LabResult {
                event_id: String::new(),
                record_id: String::new(),
                encounter_id: Some("0".into()),
                date: date(2025, 5, 12),
                code_system: CodeSystem::Jlac10,
                code: code.to_string(),
                name: Some(name.to_string()),
                value_num: Some(*value),
                value_text: None,
                unit: Some(unit.to_string()),
            }
        );
    }
    assert_eq!(r.line_counts.get("ClinicalDocument"), Some(&1));
    assert_eq!(r.line_counts.get("observation"), Some(&8));
    assert_eq!(r.line_counts.get("patientRole"), Some(&1));
}

#[test]
fn the_sample_is_canonical_and_written_back() {
    let r = read(SAMPLE, "K1");
    let rec = &r.records[0].record;
    assert_eq!(
        &canonicalize(rec),
        rec,
        "a record read is already canonical"
    );
    let bytes = write(rec).expect("write");
    assert_eq!(write(rec).expect("write"), bytes, "deterministic output");
    let text = String::from_utf8(bytes.clone()).expect("UTF-8");
    for part in [
        "<typeId root=\"2.16.840.1.113883.1.3\" extension=\"POCD_HD000040\"/>",
        "<code code=\"10\" codeSystem=\"1.2.392.200119.6.1001\"/>",
        "<id root=\"1.2.392.200119.6.101\" extension=\"06139992\"/>",
        "<id root=\"1.2.392.200119.6.204\" extension=\"１２３４\"/>",
        "<id root=\"1.2.392.200119.6.211\" extension=\"01\"/>",
        "<addr><postalCode>100-0001</postalCode>東京都千代田区架空町１丁目２－３</addr>",
        "<name>シケン\u{3000}ハナコ</name>",
        "<administrativeGenderCode code=\"2\" codeSystem=\"1.2.392.200119.6.1104\"/>",
        "<birthTime value=\"19800412\"/>",
        "<id root=\"1.2.392.200119.6.102\" extension=\"1312345670\"/>",
        "<code code=\"010\" codeSystem=\"1.2.392.200119.6.1002\"/>",
        "<effectiveTime value=\"20250512\"/>",
        "<code code=\"01010\" codeSystem=\"1.2.392.200119.6.1010\"/>",
        "<value xsi:type=\"PQ\" value=\"5.6\" unit=\"%\"/>",
        "<value xsi:type=\"PQ\" value=\"74\" unit=\"cm\"/>",
    ] {
        assert!(text.contains(part), "missing {part}");
    }
    let back = read(&bytes, "K1");
    assert!(back.issues.is_empty(), "{:?}", back.issues);
    assert_eq!(&back.records[0].record, rec);
}

#[test]
fn six_digit_kokuho_insurer_numbers_are_zero_padded_and_read_back() {
    let mut rec = read(SAMPLE, "K1").records[0].record.clone();
    let kokuho = with_insurer_check_digit("13306").expect("check digit");
    rec.identity.insurer_number = Some(kokuho.clone());
    rec.identity.insured_branch = None;
    let bytes = write(&rec).expect("write");
    let text = String::from_utf8(bytes.clone()).expect("UTF-8");
    assert!(text.contains(&format!("extension=\"00{kokuho}\"")));
    assert!(!text.contains("1.2.392.200119.6.211"), "no 枝番 written");
    let back = read(&bytes, "K1");
    assert_eq!(back.errors(), 0);
    let id = &back.records[0].record.identity;
    assert_eq!(id.insurer_number.as_deref(), Some(kokuho.as_str()));
    assert_eq!(id.insurance_kind, Some(InsuranceKind::Kokuho));
    assert_eq!(id.insured_branch, None);
}

#[test]
fn the_file_name_follows_the_archive_rule() {
    assert_eq!(
        file_name("1312345670", date(2025, 6, 1), 0, 1),
        "h13123456702025060101000001.xml"
    );
    assert_eq!(
        file_name("2620700027", date(2012, 10, 2), 3, 123_456),
        "h26207000272012100231123456.xml"
    );
}

#[test]
fn a_record_without_birth_date_or_sex_cannot_be_written() {
    let mut rec = read(SAMPLE, "K1").records[0].record.clone();
    rec.identity.birth_date = None;
    assert!(write(&rec).is_err());
    let mut rec = read(SAMPLE, "K1").records[0].record.clone();
    rec.identity.sex = None;
    assert!(write(&rec).is_err());
    let mut rec = read(SAMPLE, "K1").records[0].record.clone();
    rec.identity.surname_kana = Some("シ\u{1}ケン".into());
    assert!(
        write(&rec).is_err(),
        "a control character XML does not allow"
    );
}

#[test]
fn a_bad_observation_code_is_an_error_at_its_line_and_the_rest_is_read() {
    let text = sample_text().replace("code=\"9N006000000000001\"", "code=\"9N0060000-0000001\"");
    let r = read(text.as_bytes(), "K1");
    assert_eq!(
        errors(&r),
        vec![(49, "item code is not 17 letters or digits".to_string())]
    );
    assert_eq!(r.records.len(), 1, "the record is still read");
    assert!(r.rejected.is_empty());
    let codes: Vec<&str> = r.records[0]
        .record
        .events
        .lab_results
        .iter()
        .map(|l| l.code.as_str())
        .collect();
    assert_eq!(codes.len(), 7);
    assert!(!codes.contains(&"9N006000000000001"));
    assert_eq!(codes[0], "9N001000000000001");
    assert_eq!(codes[1], "9N011000000000001");
    assert_no_identifying_values(&r);
}

#[test]
fn a_pq_value_that_is_not_a_number_is_an_error_at_its_line() {
    let text = sample_text().replace("value=\"52.4\"", "value=\"52,4\"");
    let r = read(text.as_bytes(), "K1");
    assert_eq!(
        errors(&r),
        vec![(50, "PQ value is not a number".to_string())]
    );
    assert_eq!(r.records[0].record.events.lab_results.len(), 7);
}

#[test]
fn a_broken_birth_time_rejects_the_record_with_its_line() {
    let text = sample_text().replace(
        "<birthTime value=\"19800412\"/>",
        "<birthTime value=\"19801312\"/>",
    );
    let r = read(text.as_bytes(), "K1");
    assert!(r.records.is_empty());
    assert_eq!(r.rejected.len(), 1);
    assert_eq!((r.rejected[0].first_line, r.rejected[0].last_line), (3, 70));
    assert_eq!(
        errors(&r),
        vec![(20, "birthTime is not a valid date".to_string())]
    );
    assert_no_identifying_values(&r);

    let text = sample_text();
    let without: String = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 19)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let r = read(without.as_bytes(), "K1");
    assert!(r.records.is_empty());
    assert_eq!(errors(&r), vec![(17, "no birthTime".to_string())]);
}

#[test]
fn missing_gender_patient_role_or_checkup_date_reject_the_record() {
    let text = sample_text();
    let cases = [
        (
            text.replace(
                "<administrativeGenderCode code=\"2\"",
                "<administrativeGenderCode code=\"9\"",
            ),
            19,
        ),
        (
            text.replace("<recordTarget>", "<recordTarget><!--")
                .replace("</recordTarget>", "--></recordTarget>")
                .replace("<!-- 保険者番号 (8 digits, zero-padded) -->", "")
                .replace("<!-- 被保険者証等記号 -->", "")
                .replace("<!-- 被保険者証等番号 -->", "")
                .replace("<!-- 枝番 -->", "")
                .replace("<!-- kana only -->", "")
                .replace("<!-- 1 男 / 2 女 -->", ""),
            3,
        ),
        (text.replace("<effectiveTime value=\"20250512\"/>", ""), 36),
    ];
    for (doc, line) in cases {
        let r = read(doc.as_bytes(), "K1");
        assert!(r.records.is_empty(), "{:?}", r.issues);
        assert_eq!(r.rejected.len(), 1);
        let e = errors(&r);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, line, "{e:?}");
        assert_no_identifying_values(&r);
    }
}

#[test]
fn a_truncated_document_is_rejected_without_panic() {
    let end = sample_text().find("</ClinicalDocument>").expect("end tag");
    let half = SAMPLE.len() / 2;
    let r = read(&SAMPLE[..half], "K1");
    assert!(r.records.is_empty());
    assert_eq!(r.rejected.len(), 1);
    assert!(r.errors() >= 1);
    for cut in (0..end).step_by(7) {
        let r = read(&SAMPLE[..cut], "K1");
        assert!(r.records.is_empty(), "cut at {cut}");
        assert_eq!(r.rejected.len(), 1, "cut at {cut}");
        assert!(r.errors() >= 1, "cut at {cut}");
        assert_no_identifying_values(&r);
    }
}

#[test]
fn shift_jis_bytes_declared_as_utf8_are_an_encoding_error() {
    let text = sample_text();
    let (sjis, _, unmappable) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!unmappable);
    let r = read(&sjis, "K1");
    assert!(r.records.is_empty());
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.encoding, Some(Detected::ShiftJis));
    let e = errors(&r);
    assert_eq!(e.len(), 1);
    assert!(e[0].1.contains("Shift_JIS"), "{e:?}");
    assert_eq!(
        e[0].0, 2,
        "the first non-UTF-8 byte is in the comment on line 2"
    );
}

#[test]
fn a_document_declaring_shift_jis_is_decoded_and_read() {
    let text = sample_text().replace("encoding=\"UTF-8\"", "encoding=\"Shift_JIS\"");
    let (sjis, _, unmappable) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!unmappable);
    let r = read(&sjis, "K1");
    assert_eq!(r.encoding, Some(Detected::ShiftJis));
    assert_eq!(r.errors(), 0, "{:?}", r.issues);
    assert_eq!(r.records.len(), 1);
    let utf8 = read(SAMPLE, "K1");
    assert_eq!(r.records, utf8.records);
}

#[test]
fn nested_observations_and_unknown_things_are_read_with_warnings() {
    let text = sample_text()
        .replace(
            "<value xsi:type=\"PQ\" value=\"158.2\" unit=\"cm\"/></observation></entry>",
            "<value xsi:type=\"PQ\" value=\"158.2\" unit=\"cm\"/>\n<entryRelationship typeCode=\"COMP\"><observation classCode=\"OBS\" moodCode=\"EVN\">\n<code code=\"1A020000000191111\" codeSystem=\"1.2.392.200119.6.1005\"/><value xsi:type=\"CD\" code=\"1\" codeSystem=\"1.2.392.200119.6.2100\"/></observation></entryRelationship>\n<entryRelationship typeCode=\"COMP\"><observation classCode=\"OBS\" moodCode=\"EVN\">\n<code code=\"9N516000000000049\" codeSystem=\"1.2.392.200119.6.1005\"/><value xsi:type=\"ST\">医師 &lt;A&amp;B&gt;</value></observation></entryRelationship></observation></entry>",
        )
        .replace(
            "<id root=\"1.2.392.200119.6.211\" extension=\"01\"/>",
            "<id root=\"1.2.392.200119.6.211\" extension=\"01\"/><id root=\"9.9.9\" extension=\"x\"/>",
        )
        .replace("<postalCode>100-0001</postalCode>", "<postalCode>1000001</postalCode>");
    let r = read(text.as_bytes(), "K1");
    assert_eq!(r.errors(), 0, "{:?}", r.issues);
    assert_eq!(r.warnings(), 2, "{:?}", r.issues);
    assert!(r
        .issues
        .iter()
        .all(|i| i.position.line == 15 || i.position.line == 16));
    let rec = &r.records[0].record;
    assert_eq!(rec.identity.postal_code.as_deref(), Some("1000001"));
    let labs = &rec.events.lab_results;
    assert_eq!(labs.len(), 10);
    assert_eq!(labs[0].code, "9N001000000000001");
    assert_eq!(labs[1].code, "1A020000000191111");
    assert_eq!(labs[1].value_text.as_deref(), Some("1"));
    assert_eq!(labs[1].unit, None);
    assert_eq!(labs[2].value_text.as_deref(), Some("医師 <A&B>"));
    assert_eq!(labs[3].code, "9N006000000000001");
}

#[test]
fn kana_names_are_split_at_either_space_and_trimmed() {
    let cases = [
        ("\n          シケン　ハナコ\n        ", Some("ハナコ"), 0),
        ("ｼｹﾝ ﾊﾅｺ", Some("ﾊﾅｺ"), 1),
        ("シケンハナコ", None, 1),
    ];
    for (name, given, warnings) in cases {
        let text = sample_text().replace("シケン　ハナコ", name);
        let r = read(text.as_bytes(), "K1");
        assert_eq!(r.errors(), 0);
        assert_eq!(r.warnings(), warnings, "{:?}", r.issues);
        assert!(r
            .issues
            .iter()
            .all(|i| i.position.line == 18 && i.message.contains("[U]")));
        let id = &r.records[0].record.identity;
        let surname = name.trim().split([' ', '\u{3000}']).next();
        assert_eq!(id.surname_kana.as_deref(), surname);
        assert_eq!(id.given_kana.as_deref(), given);
    }
}

#[test]
fn deep_nesting_is_refused() {
    let deep = format!("{}{}", "<x>".repeat(100_000), "</x>".repeat(100_000));
    let text = sample_text().replace("<text/>", &deep);
    let r = read(text.as_bytes(), "K1");
    assert!(r.records.is_empty());
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(
        errors(&r),
        vec![(
            44,
            "elements nested deeper than the reader accepts".to_string()
        )]
    );
}

#[test]
fn entities_are_never_expanded() {
    let xxe = sample_text().replace(
        "<ClinicalDocument ",
        "<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM \"file:///etc/passwd\"> <!ENTITY a \"aaaaaaaaaa\"> <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>\n<ClinicalDocument ",
    );
    for entity in ["&xxe;", "&b;"] {
        let doc = xxe.replace("シケン　ハナコ", entity);
        let r = read(doc.as_bytes(), "K1");
        assert!(r.records.is_empty());
        assert_eq!(r.rejected.len(), 1);
        assert!(r
            .issues
            .iter()
            .any(|i| i.severity == Severity::Warning && i.message.contains("DOCTYPE")));
        assert_eq!(errors(&r)[0].0, 19, "{:?}", r.issues);
    }
}

// ---------------------------------------------------------------------------------------------
// Round trip

#[derive(Debug, Clone)]
enum Value {
    Num(f64),
    Coded(&'static str),
    Text(&'static str),
    Nothing,
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            0.1 + 0.2,
            5.6,
            158.2,
            -0.0,
            1e-7,
            1e21,
            123_456_789.123,
            f64::MIN_POSITIVE,
            f64::MAX,
            1.0 / 3.0,
        ])
        .prop_map(Value::Num),
        any::<f64>().prop_map(Value::Num),
        prop::sample::select(vec!["1", "2", "3", "A1"]).prop_map(Value::Coded),
        prop::sample::select(vec![
            "異常なし",
            "要精密検査 <&\">",
            " 前後に空白 ",
            "a&b",
            "1行目\n2行目\r\n3行目\t終",
            "]]>",
        ])
        .prop_map(Value::Text),
        Just(Value::Nothing),
    ]
}

prop_compose! {
    fn lab()(
        code in prop_oneof![
            4 => prop::sample::select(vec![
                "9N001000000000001",
                "9N011000000000001",
                "3D046000001906202",
                "1A020000000191111",
                "9N516000000000049",
            ]).prop_map(str::to_string),
            2 => "[0-9A-Z]{17}",
            1 => prop::sample::select(vec!["ABC", "9N00100000000000-", " 9N001000000000001 "]).prop_map(str::to_string),
        ],
        name in proptest::option::of(prop::sample::select(vec!["身長", "ＢＭＩ", "a<b&c\"d", "  "])),
        value in value(),
        unit in proptest::option::of(prop::sample::select(vec!["cm", "kg/m2", "%", "<&>"])),
        day in 0i64..400,
        system in prop::sample::select(vec![CodeSystem::Jlac10, CodeSystem::Local]),
    ) -> LabResult {
        let (value_num, value_text) = match value {
            Value::Num(v) => (Some(v), Some("ignored".to_string())),
            Value::Coded(c) => (None, Some(c.to_string())),
            Value::Text(t) => (None, Some(t.to_string())),
            Value::Nothing => (None, None),
        };
        LabResult {
            event_id: "e".into(),
            record_id: "r".into(),
            encounter_id: Some("3".into()),
            date: date(2024, 1, 1) + chrono::Duration::days(day),
            code_system: system,
            code,
            name: name.map(str::to_string),
            value_num,
            value_text,
            unit: unit.map(str::to_string),
        }
    }
}

fn insurer() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        "[0-9]{5}".prop_map(|b| with_insurer_check_digit(&b).unwrap_or_default()),
        (
            prop::sample::select(vec!["01", "06", "31", "39", "67"]),
            "[0-9]{5}"
        )
            .prop_map(|(h, b)| with_insurer_check_digit(&format!("{h}{b}")).unwrap_or_default()),
        "[0-9]{8}",
        "00[0-9]{6}",
        Just("１２３４５６".to_string()),
    ])
}

prop_compose! {
    fn record()(
        surname in proptest::option::of(prop::sample::select(vec!["シケン", "タカハシ", "ｻﾄｳ", "ﾀｶﾊｼ ｼﾞﾛｳ", "ヨシダ", "𠮷田", "ヴァン"])),
        given in proptest::option::of(prop::sample::select(vec!["ハナコ", "ﾊﾅｺ", "タロウ", "ｼﾞﾛｳ"])),
        kanji in proptest::option::of(prop::sample::select(vec!["髙橋", "𠮷田"])),
        birth in (1900i32..2020, 1u32..13, 1u32..29),
        male in any::<bool>(),
        pref in proptest::option::of(prop::sample::select(vec!["東京都", "青森県", "京都府", "北海道"])),
        muni in proptest::option::of(prop::sample::select(vec!["千代田区", "青森市", "京都市北区", "平内町", "四日市市"])),
        town in proptest::option::of(prop::sample::select(vec!["架空町", "𠮷野町", "髙田", "大字野木", "新町", "小湊"])),
        chome in proptest::option::of(1u8..10),
        banchi in proptest::option::of(prop::sample::select(vec!["12-3", "5", "100-2", "1-2-3"])),
        postal in proptest::option::of(prop_oneof!["[0-9]{7}", "[0-9]{3}-[0-9]{4}", Just("12345".to_string())]),
        insurer in insurer(),
        symbol in proptest::option::of(prop::sample::select(vec!["１２３４", "ＡＢ−１", "19D0001", "<&\">", " "])),
        number in proptest::option::of(prop::sample::select(vec!["５６７８", "1234567"])),
        branch in proptest::option::of(prop::sample::select(vec!["00", "01", "02"])),
        encounters in prop::collection::vec(("[0-9]{10}", 0i64..400), 0..3),
        recorded in 0i64..400,
        labs in prop::collection::vec(lab(), 0..8),
        diagnoses in 0usize..3,
    ) -> SourceRecord {
        let base = date(2024, 1, 1);
        SourceRecord {
            identity: IdentityRecord {
                record_id: "R1".into(),
                provider_id: "K1".into(),
                source_kind: SourceKind::Claims,
                local_patient_id: Some("0000123".into()),
                surname_kanji: kanji.map(str::to_string),
                given_kanji: kanji.map(|_| "花子".to_string()),
                surname_kana: surname.map(str::to_string),
                given_kana: given.map(str::to_string),
                birth_date: NaiveDate::from_ymd_opt(birth.0, birth.1, birth.2),
                sex: Some(if male { Sex::Male } else { Sex::Female }),
                prefecture: pref.map(str::to_string),
                municipality_code: Some("131016".into()),
                municipality: muni.map(str::to_string),
                town: town.map(str::to_string),
                chome: chome.map(|c| c.to_string()),
                banchi: banchi.map(str::to_string),
                postal_code: postal,
                insurance_kind: Some(InsuranceKind::Kyokai),
                insurer_number: insurer,
                insured_symbol: symbol.map(str::to_string),
                insured_number: number.map(str::to_string),
                insured_branch: branch.map(str::to_string),
                recorded_on: base + chrono::Duration::days(recorded),
            },
            events: EventSet {
                encounters: encounters
                    .into_iter()
                    .map(|(facility, d)| Encounter {
                        event_id: "e".into(),
                        record_id: "R1".into(),
                        facility_code: facility,
                        setting: Setting::Outpatient,
                        department: Some("内科".into()),
                        start_date: base + chrono::Duration::days(d),
                        end_date: base + chrono::Duration::days(d + 1),
                    })
                    .collect(),
                diagnoses: (0..diagnoses)
                    .map(|_| Diagnosis {
                        event_id: String::new(),
                        record_id: String::new(),
                        encounter_id: None,
                        date: base,
                        code_system: CodeSystem::Icd10,
                        code: "E119".into(),
                        icd10: Some("E11.9".into()),
                        name: None,
                        suspected: false,
                        outcome: None,
                        outcome_date: None,
                    })
                    .collect(),
                lab_results: labs,
                ..EventSet::default()
            },
        }
    }
}

/// Text XML can carry, with the characters the reader trims or splits at.
const TEXT: &str = "[ -~\u{3000}\u{30A1}-\u{30F6}\u{FF66}-\u{FF9F}\u{4E00}-\u{4E0F}\u{20BB7}\u{9AD9}\u{FF10}-\u{FF19}\u{FF0D}\u{2212}\u{30FC}丁目都道府県郡市区町村\t\n\r\u{85}\u{2028}]{0,12}";

prop_compose! {
    fn arbitrary_text_record()(
        base in record(),
        surname in proptest::option::of(TEXT),
        given in proptest::option::of(TEXT),
        parts in prop::collection::vec(proptest::option::of(TEXT), 5),
        ids in prop::collection::vec(proptest::option::of(TEXT), 5),
        lab_text in prop::collection::vec((TEXT, proptest::option::of(TEXT), proptest::option::of(TEXT)), 0..4),
    ) -> SourceRecord {
        let mut r = base;
        let id = &mut r.identity;
        id.surname_kana = surname;
        id.given_kana = given;
        id.prefecture = parts[0].clone();
        id.municipality = parts[1].clone();
        id.town = parts[2].clone();
        id.chome = parts[3].clone();
        id.banchi = parts[4].clone();
        id.insurer_number = ids[0].clone();
        id.insured_symbol = ids[1].clone();
        id.insured_number = ids[2].clone();
        id.insured_branch = ids[3].clone();
        id.postal_code = ids[4].clone();
        for (i, (text, name, unit)) in lab_text.into_iter().enumerate() {
            r.events.lab_results.push(LabResult {
                event_id: String::new(),
                record_id: String::new(),
                encounter_id: None,
                date: date(2024, 1, 1),
                code_system: CodeSystem::Jlac10,
                code: format!("9N{i:015}"),
                name,
                value_num: None,
                value_text: Some(text),
                unit,
            });
        }
        if let Some(e) = r.events.encounters.first_mut() {
            e.facility_code = format!(" {}\t", e.facility_code);
        }
        r
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn write_then_read_gives_back_the_canonical_record(rec in record()) {
        let bytes = write(&rec).expect("write");
        let r = read(&bytes, "K1");
        prop_assert_eq!(r.errors(), 0, "{:?}", r.issues);
        prop_assert_eq!(r.records.len(), 1);
        let want = canonicalize(&rec);
        prop_assert_eq!(&r.records[0].record, &want);
        prop_assert_eq!(&canonicalize(&want), &want, "canonicalize is idempotent");
        prop_assert_eq!(write(&rec).expect("write"), bytes, "deterministic");
    }

    #[test]
    fn write_then_read_holds_for_arbitrary_text(rec in arbitrary_text_record()) {
        let bytes = write(&rec).expect("write");
        let r = read(&bytes, "K1");
        prop_assert_eq!(r.errors(), 0, "{:?}", r.issues);
        prop_assert_eq!(r.records.len(), 1);
        prop_assert_eq!(&r.records[0].record, &canonicalize(&rec));
    }

    #[test]
    fn the_reader_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let r = read(&bytes, "K1");
        prop_assert!(r.records.len() + r.rejected.len() <= 1);
    }

    #[test]
    fn the_reader_never_panics_on_mutations_of_the_sample(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..8),
    ) {
        let mut bytes = SAMPLE.to_vec();
        for (at, op, b) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = b,
                1 => bytes.insert(i, b),
                _ if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ => {}
            }
        }
        let r = read(&bytes, "K1");
        prop_assert_eq!(r.records.len() + r.rejected.len(), 1);
        // Whatever was read is written and read back as its canonical form.
        if let Some(p) = r.records.first() {
            if let Ok(out) = write(&p.record) {
                let back = read(&out, "K1");
                prop_assert_eq!(back.errors(), 0, "{:?}", back.issues);
                prop_assert_eq!(&back.records[0].record, &canonicalize(&p.record));
            }
        }
    }
}
