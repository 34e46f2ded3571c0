//! Reader and writer of JP Core FHIR R4 bundles.

use chrono::NaiveDate;
use proptest::prelude::*;
use serde_json::{json, Value};
use tokumei_formats::encoding::Detected;
use tokumei_formats::fhir::{canonicalize, read, write_bundle, write_ndjson};
use tokumei_formats::Severity;
use tokumei_model::events::{
    Death, Diagnosis, Encounter, EventSet, LabResult, Prescription, Procedure, SourceRecord,
};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::{CodeSystem, DiagnosisOutcome, InsuranceKind, Setting, Sex, SourceKind};

const SAMPLE: &[u8] = include_bytes!("../fixtures/jpcore_patient_coverage.json");

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn sample_value() -> Value {
    serde_json::from_slice(SAMPLE).expect("sample is JSON")
}

fn errors(r: &tokumei_formats::ReadReport) -> Vec<&tokumei_formats::Issue> {
    r.issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect()
}

fn push_entry(bundle: &mut Value, resource: Value) {
    if let Some(entries) = bundle["entry"].as_array_mut() {
        entries.push(json!({ "resource": resource }));
    }
}

#[test]
fn reads_the_sample() {
    let r = read(SAMPLE, "H1311234566");
    assert_eq!(r.errors(), 0, "{:?}", r.issues);
    assert_eq!(r.encoding, Some(Detected::Utf8));
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.line_counts.get("Patient"), Some(&1));
    assert_eq!(r.line_counts.get("Coverage"), Some(&1));
    let p = &r.records[0];
    assert_eq!((p.first_line, p.last_line), (1, 45));
    let id = &p.record.identity;
    assert_eq!(id.source_kind, SourceKind::Fhir);
    assert_eq!(id.provider_id, "H1311234566");
    assert_eq!(id.record_id, "");
    assert_eq!(id.local_patient_id.as_deref(), Some("0000123"));
    assert_eq!(id.surname_kanji.as_deref(), Some("試験"));
    assert_eq!(id.given_kanji.as_deref(), Some("花子"));
    assert_eq!(id.surname_kana.as_deref(), Some("シケン"));
    assert_eq!(id.given_kana.as_deref(), Some("ハナコ"));
    assert_eq!(id.sex, Some(Sex::Female));
    assert_eq!(id.birth_date, Some(date(1980, 4, 12)));
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
    // Nothing in the sample dates the record but the birth date: read, with a warning.
    assert_eq!(id.recorded_on, date(1980, 4, 12));
    assert!(r.issues.iter().any(|i| i.message.contains("recorded_on")));
    assert!(p.record.events.is_empty());
    assert!(
        !r.issues.iter().any(|i| i.message.contains("check digit")),
        "06139992 has a valid check digit"
    );

    // The facility code of the Patient identifier (1311234566) is the facility of an encounter that
    // names no service provider.
    let mut v = sample_value();
    push_entry(
        &mut v,
        json!({"resourceType": "Encounter", "status": "finished",
               "class": {"code": "AMB"}, "period": {"start": "2025-06-01"},
               "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}}),
    );
    let r = read(v.to_string().as_bytes(), "H");
    assert_eq!(r.errors(), 0, "{:?}", r.issues);
    let enc = &r.records[0].record.events.encounters;
    assert_eq!(enc.len(), 1);
    assert_eq!(enc[0].facility_code, "1311234566");
    assert_eq!(enc[0].setting, Setting::Outpatient);
    assert_eq!(enc[0].end_date, date(2025, 6, 1));
    assert_eq!(r.records[0].record.identity.recorded_on, date(2025, 6, 1));
}

#[test]
fn a_lone_patient_resource_and_a_bom_are_read() {
    let v = sample_value();
    let patient = v["entry"][0]["resource"].to_string();
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(patient.as_bytes());
    let r = read(&bytes, "H");
    assert_eq!(r.errors(), 0, "{:?}", r.issues);
    assert_eq!(r.records.len(), 1);
    let id = &r.records[0].record.identity;
    assert_eq!(id.local_patient_id.as_deref(), Some("0000123"));
    assert_eq!(id.insurer_number, None);
}

#[test]
fn unknown_resource_types_are_counted_and_warned_once() {
    let mut v = sample_value();
    for _ in 0..3 {
        push_entry(&mut v, json!({"resourceType": "AllergyIntolerance"}));
    }
    let r = read(v.to_string().as_bytes(), "H");
    assert_eq!(r.errors(), 0, "{:?}", r.issues);
    assert_eq!(r.line_counts.get("AllergyIntolerance"), Some(&3));
    let warned: Vec<_> = r
        .issues
        .iter()
        .filter(|i| i.message.contains("AllergyIntolerance"))
        .collect();
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0].position.field, Some(2));
}

#[test]
fn references_attach_resources_to_their_patient() {
    let mut v = sample_value();
    let mut second = v["entry"][0].clone();
    second["fullUrl"] = json!("urn:uuid:33333333-3333-4333-8333-333333333333");
    second["resource"]["identifier"][0]["value"] = json!("0000456");
    if let Some(e) = v["entry"].as_array_mut() {
        e.push(second);
    }
    push_entry(
        &mut v,
        json!({"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://medis.or.jp/CodeSystem/master-JLAC10-17digits",
                                    "code": "3D046000001906202"}], "text": "HbA1c"},
               "subject": {"reference": "urn:uuid:33333333-3333-4333-8333-333333333333"},
               "effectiveDateTime": "2025-05-12T09:30:00+09:00",
               "valueQuantity": {"value": 5.6, "unit": "%"}}),
    );
    push_entry(
        &mut v,
        json!({"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://medis.or.jp/CodeSystem/master-JLAC10-17digits",
                                    "code": "3D046000001906202"}]},
               "effectiveDateTime": "2025-05-12"}),
    );
    let r = read(v.to_string().as_bytes(), "H");
    assert_eq!(r.records.len(), 2);
    let first = &r.records[0].record;
    let second = &r.records[1].record;
    assert_eq!(second.identity.local_patient_id.as_deref(), Some("0000456"));
    assert!(first.events.lab_results.is_empty());
    assert_eq!(second.events.lab_results.len(), 1);
    let lab = &second.events.lab_results[0];
    assert_eq!(lab.code_system, CodeSystem::Jlac10);
    assert_eq!(lab.value_num, Some(5.6));
    assert_eq!(lab.unit.as_deref(), Some("%"));
    assert_eq!(lab.name.as_deref(), Some("HbA1c"));
    assert_eq!(lab.date, date(2025, 5, 12));
    // The Coverage names the first Patient only.
    assert_eq!(first.identity.insurer_number.as_deref(), Some("06139992"));
    assert_eq!(second.identity.insurer_number, None);
    // An Observation without a subject in a bundle of two Patients is not read, loudly.
    let e = errors(&r);
    assert_eq!(e.len(), 1, "{:?}", r.issues);
    assert_eq!(e[0].position.field, Some(4));
}

#[test]
fn codes_dates_and_outcomes_of_foreign_bundles() {
    let mut v = sample_value();
    let resources = [
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
               "serviceType": {"text": "内科"},
               "period": {"start": "2025-06-01T10:00:00+09:00", "end": "2025-06-10"},
               "serviceProvider": {"identifier": {"system": "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no", "value": "1319999990"}}}),
        json!({"resourceType": "Condition",
               "clinicalStatus": {"coding": [{"code": "inactive"}]},
               "verificationStatus": {"coding": [{"code": "provisional"}]},
               "note": [{"text": "転医"}],
               "code": {"coding": [{"system": "http://medis.or.jp/CodeSystem/master-disease-exCode", "code": "ABCD"},
                                   {"system": "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterB-disease", "code": "8833421"},
                                   {"system": "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full", "code": "E119"}],
                        "text": "２型糖尿病"},
               "encounter": {"reference": "Encounter/e1"},
               "onsetDateTime": "2025-06-01", "abatementDateTime": "2025-06-10"}),
        json!({"resourceType": "MedicationRequest", "status": "completed", "intent": "order",
               "medicationCodeableConcept": {"coding": [{"system": "http://medis.or.jp/CodeSystem/master-HOT9", "code": "105271807"},
                                                        {"system": "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code", "code": "3962002F1025"}]},
               "authoredOn": "2025-06-01",
               "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 2, "unit": "錠"}}]}],
               "dispenseRequest": {"expectedSupplyDuration": {"value": 14, "unit": "日", "code": "d"}}}),
        json!({"resourceType": "MedicationRequest", "status": "completed", "intent": "order",
               "medicationCodeableConcept": {"coding": [{"system": "http://medis.or.jp/CodeSystem/master-HOT9", "code": "105271807"}]},
               "authoredOn": "2025-06-01"}),
        json!({"resourceType": "Procedure", "status": "completed",
               "code": {"coding": [{"system": "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterS-medicalProcedure", "code": "160000310"}]},
               "performedDateTime": "2025-06-02"}),
        json!({"resourceType": "Procedure", "status": "completed",
               "code": {"coding": [{"system": "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterS-medicalProcedure", "code": "160000310"}]},
               "performedDateTime": "2025-13-02"}),
    ];
    for res in resources {
        push_entry(&mut v, res);
    }
    let r = read(v.to_string().as_bytes(), "H");
    let ev = &r.records[0].record.events;
    assert_eq!(ev.encounters.len(), 1);
    assert_eq!(ev.encounters[0].setting, Setting::Inpatient);
    assert_eq!(ev.encounters[0].facility_code, "1319999990");
    assert_eq!(ev.encounters[0].department.as_deref(), Some("内科"));
    assert_eq!(ev.encounters[0].start_date, date(2025, 6, 1));
    assert_eq!(ev.encounters[0].end_date, date(2025, 6, 10));
    let d = &ev.diagnoses[0];
    assert_eq!(
        (d.code_system, d.code.as_str()),
        (CodeSystem::ReceiptDisease, "8833421")
    );
    assert_eq!(d.icd10.as_deref(), Some("E119"));
    assert_eq!(d.name.as_deref(), Some("２型糖尿病"));
    assert!(d.suspected);
    assert_eq!(d.outcome, Some(DiagnosisOutcome::Stopped));
    assert_eq!(d.outcome_date, Some(date(2025, 6, 10)));
    assert_eq!(d.encounter_id.as_deref(), Some("0"));
    let p = &ev.prescriptions[0];
    assert_eq!(
        (p.code_system, p.code.as_str()),
        (CodeSystem::YakkaCode, "3962002F1025")
    );
    assert_eq!(p.daily_quantity, Some(2.0));
    assert_eq!(p.unit.as_deref(), Some("錠"));
    assert_eq!(p.days, Some(14));
    // HOT9 alone: no canonical code system, kept as a local code with a warning.
    assert_eq!(ev.prescriptions[1].code_system, CodeSystem::Local);
    assert!(r.issues.iter().any(|i| i.severity == Severity::Warning
        && i.position.field == Some(5)
        && i.message.contains("local code")));
    assert_eq!(ev.procedures.len(), 1);
    assert_eq!(ev.procedures[0].count, 1);
    assert_eq!(ev.procedures[0].points, None);
    let e = errors(&r);
    assert_eq!(e.len(), 1, "{:?}", r.issues);
    assert_eq!((e[0].position.line, e[0].position.field), (1, Some(7)));
}

#[test]
fn a_byomei_code_without_an_icd10_coding_takes_the_masters() {
    let mut v = sample_value();
    let condition = |code: &str, icd: Option<&str>| {
        let mut coding = vec![
            json!({"system": "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterB-disease", "code": code}),
        ];
        if let Some(icd) = icd {
            coding.push(json!({"system": "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full", "code": icd}));
        }
        json!({"resourceType": "Condition", "code": {"coding": coding}, "onsetDateTime": "2025-06-01"})
    };
    push_entry(&mut v, condition("8840107", None));
    push_entry(&mut v, condition("8833421", None));
    push_entry(&mut v, condition("8840107", Some("I159")));
    let r = read(v.to_string().as_bytes(), "H");
    assert_eq!(r.errors(), 0, "{:?}", r.issues);
    let got: Vec<(&str, Option<&str>)> = r.records[0]
        .record
        .events
        .diagnoses
        .iter()
        .map(|d| (d.code.as_str(), d.icd10.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("8840107", Some("I10")),
            ("8833421", None),
            ("8840107", Some("I159"))
        ],
        "the master's ICD-10 fills a gap, never replaces the source's"
    );
}

#[test]
fn many_patients_in_one_bundle_are_matched_by_id_and_absolute_references() {
    let n = 3000;
    let mut entries = Vec::new();
    for i in 0..n {
        entries.push(json!({"fullUrl": format!("http://example.invalid/fhir/Patient/p{i}"),
            "resource": {"resourceType": "Patient", "id": format!("p{i}"),
                "meta": {"lastUpdated": "2025-06-01T12:00:00Z"},
                "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51.11311234566", "value": format!("{i:07}")}],
                "gender": "male", "birthDate": "1950-01-01"}}));
    }
    for i in (0..n).rev() {
        // Half by `Patient/<id>`, half by an absolute versioned reference.
        let reference = if i % 2 == 0 {
            format!("Patient/p{i}")
        } else {
            format!("http://other.invalid/fhir/Patient/p{i}/_history/3")
        };
        entries.push(json!({"resource": {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://medis.or.jp/CodeSystem/master-JLAC10-17digits", "code": format!("{i:017}")}]},
            "subject": {"reference": reference}, "effectiveDateTime": "2025-05-12",
            "valueQuantity": {"value": i}}}));
    }
    let doc = json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    let started = std::time::Instant::now();
    let r = read(doc.to_string().as_bytes(), "H");
    assert!(
        started.elapsed().as_secs() < 20,
        "reference resolution is not quadratic"
    );
    assert_eq!(r.errors(), 0, "{:?}", &r.issues[..r.issues.len().min(3)]);
    assert_eq!(r.records.len(), n);
    for (i, rec) in r.records.iter().enumerate() {
        let id = &rec.record.identity;
        assert_eq!(id.local_patient_id, Some(format!("{i:07}")));
        assert_eq!(id.recorded_on, date(2025, 6, 1));
        let labs = &rec.record.events.lab_results;
        assert_eq!(labs.len(), 1);
        assert_eq!(labs[0].code, format!("{i:017}"));
        assert_eq!(labs[0].value_num, Some(i as f64));
    }
}

#[test]
fn organizations_and_medications_named_by_reference_are_followed() {
    let mut v = sample_value();
    v["entry"][1]["resource"]["payor"] = json!([{"reference": "Organization/ins"}]);
    if let Some(e) = v["entry"][1]["resource"]["extension"].as_array_mut() {
        e.clear();
    }
    let resources = [
        json!({"resourceType": "Organization", "id": "ins",
               "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.61", "value": "00133066"}]}),
        json!({"resourceType": "Organization", "id": "hosp",
               "identifier": [{"system": "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no", "value": "1319999990"}]}),
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "AMB"},
               "period": {"start": "2025-06-01"}, "serviceProvider": {"reference": "Organization/hosp"}}),
        json!({"resourceType": "Medication", "id": "m1",
               "code": {"coding": [{"system": "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code", "code": "3962002F1025"}]}}),
        json!({"resourceType": "MedicationRequest", "status": "completed", "intent": "order",
               "medicationReference": {"reference": "Medication/m1"}, "authoredOn": "2025-06-01",
               "encounter": {"reference": "Encounter/e1"}}),
    ];
    for res in resources {
        push_entry(&mut v, res);
    }
    let r = read(v.to_string().as_bytes(), "H");
    assert_eq!(r.errors(), 0, "{:?}", r.issues);
    let rec = &r.records[0].record;
    assert_eq!(rec.events.encounters[0].facility_code, "1319999990");
    assert_eq!(rec.events.prescriptions[0].code, "3962002F1025");
    assert_eq!(
        rec.events.prescriptions[0].encounter_id.as_deref(),
        Some("0")
    );
    // The payor's number is zero-padded 市町村国保 (warned); 記号 and 番号 come from the member id.
    let id = &rec.identity;
    assert_eq!(id.insurer_number.as_deref(), Some("133066"));
    assert_eq!(id.insurance_kind, Some(InsuranceKind::Kokuho));
    assert_eq!(id.insured_symbol.as_deref(), Some("１２３４"));
    assert_eq!(id.insured_branch.as_deref(), Some("01"));
    assert!(r.issues.iter().any(|i| i.message.contains("6-digit")));
    assert!(r.issues.iter().any(|i| i.message.contains("disagree")));
    assert_eq!(r.line_counts.get("Organization"), Some(&2));
}

// ---------------------------------------------------------------------------------------------
// Malformed input

#[test]
fn a_broken_ndjson_line_is_reported_and_the_other_bundles_are_read() {
    let records: Vec<SourceRecord> = (0..3).map(|i| simple_record(&format!("{i:07}"))).collect();
    let bytes = write_ndjson(&records).expect("write");
    let text = String::from_utf8(bytes).expect("UTF-8");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let cut = lines[1].len() / 2;
    lines[1].truncate(cut);
    let joined = format!("{}\n\n{}\n{}\n", lines[0], lines[1], lines[2]);
    let r = read(joined.as_bytes(), "M");
    assert_eq!(r.records.len(), 2);
    assert_eq!(r.records[0].first_line, 1);
    assert_eq!(r.records[1].first_line, 4);
    let e = errors(&r);
    assert_eq!(e.len(), 1, "{:?}", r.issues);
    assert_eq!(e[0].position.line, 3);
    assert!(e[0].message.contains("invalid JSON"));
    assert_eq!(r.rejected.len(), 1);
    assert_eq!((r.rejected[0].first_line, r.rejected[0].last_line), (3, 3));
}

#[test]
fn a_json_syntax_error_in_a_single_document_carries_its_line() {
    let text = String::from_utf8_lossy(SAMPLE).replacen(
        "\"gender\": \"female\",",
        "\"gender\" \"female\",",
        1,
    );
    let r = read(text.as_bytes(), "H");
    assert!(r.records.is_empty());
    let e = errors(&r);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].position.line, 19);
    assert_eq!(r.rejected.len(), 1);
}

#[test]
fn a_bad_birth_date_rejects_the_record_with_line_and_entry() {
    let records: Vec<SourceRecord> = (0..3).map(|i| simple_record(&format!("{i:07}"))).collect();
    let text = String::from_utf8(write_ndjson(&records).expect("write")).expect("UTF-8");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert!(lines[1].contains("\"birthDate\":\"1980-04-12\""));
    lines[1] = lines[1].replace(
        "\"birthDate\":\"1980-04-12\"",
        "\"birthDate\":\"1980-13-45\"",
    );
    lines[2] = lines[2].replace("\"gender\":\"female\"", "\"gender\":\"F\"");
    let r = read(lines.join("\n").as_bytes(), "M");
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].first_line, 1);
    assert_eq!(r.rejected.len(), 2);
    assert_eq!((r.rejected[0].first_line, r.rejected[0].last_line), (2, 2));
    let e = errors(&r);
    assert_eq!(e.len(), 2, "{:?}", r.issues);
    assert_eq!((e[0].position.line, e[0].position.field), (2, Some(0)));
    assert!(e[0].message.contains("birthDate"));
    assert_eq!((e[1].position.line, e[1].position.field), (3, Some(0)));
    assert!(e[1].message.contains("gender"));
    for i in &r.issues {
        assert!(
            !i.message.contains("試験")
                && !i.message.contains("000000")
                && !i.message.contains("1980"),
            "identifying value in {i:?}"
        );
    }
}

#[test]
fn an_observation_without_code_is_an_error_at_its_entry_and_the_rest_is_read() {
    let mut v = sample_value();
    push_entry(
        &mut v,
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"},
               "effectiveDateTime": "2025-05-12", "valueQuantity": {"value": 5.6, "unit": "%"}}),
    );
    push_entry(
        &mut v,
        json!({"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://medis.or.jp/CodeSystem/master-JLAC10-17digits",
                                    "code": "3F015000002327101"}]},
               "effectiveDateTime": "2025-05-12", "valueString": "陰性"}),
    );
    let r = read(v.to_string().as_bytes(), "H");
    let e = errors(&r);
    assert_eq!(e.len(), 1, "{:?}", r.issues);
    assert_eq!((e[0].position.line, e[0].position.field), (1, Some(2)));
    assert!(e[0].message.contains("no code"));
    assert!(r.rejected.is_empty());
    assert_eq!(r.records.len(), 1);
    let labs = &r.records[0].record.events.lab_results;
    assert_eq!(labs.len(), 1);
    assert_eq!(labs[0].value_text.as_deref(), Some("陰性"));
    assert_eq!(
        r.records[0].record.identity.insurer_number.as_deref(),
        Some("06139992")
    );
}

#[test]
fn shift_jis_is_an_encoding_error_without_mojibake() {
    let text = std::str::from_utf8(SAMPLE).expect("UTF-8");
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(text);
    let r = read(&sjis, "H");
    assert_eq!(r.encoding, Some(Detected::ShiftJis));
    assert!(r.records.is_empty());
    let e = errors(&r);
    assert_eq!(e.len(), 1);
    assert!(e[0].message.contains("not UTF-8"));
    assert!(e[0].message.contains("Shift_JIS"));
    assert_eq!(e[0].position.line, 15, "first line with kanji");

    // In NDJSON, only the Shift_JIS line is lost.
    let records: Vec<SourceRecord> = (0..3).map(|i| simple_record(&format!("{i:07}"))).collect();
    let text = String::from_utf8(write_ndjson(&records).expect("write")).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    let mut bytes = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i == 1 {
            bytes.extend(encoding_rs::SHIFT_JIS.encode(l).0.iter());
        } else {
            bytes.extend(l.as_bytes());
        }
        bytes.push(b'\n');
    }
    let r = read(&bytes, "M");
    assert_eq!(r.records.len(), 2);
    for rec in &r.records {
        assert_eq!(rec.record.identity.surname_kanji.as_deref(), Some("試験"));
    }
    let e = errors(&r);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].position.line, 2);
    assert!(e[0].message.contains("Shift_JIS"), "{}", e[0].message);
}

#[test]
fn deeply_nested_json_does_not_panic() {
    let deep = "[".repeat(200_000);
    let r = read(deep.as_bytes(), "H");
    assert!(r.records.is_empty());
    assert_eq!(r.errors(), 1);

    let nested = format!(
        "{{\"resourceType\":\"Bundle\",\"entry\":[{{\"resource\":{{\"resourceType\":\"Patient\",\"extension\":{}1{}}}}}]}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let r = read(nested.as_bytes(), "H");
    assert!(r.records.is_empty());
    assert!(r.issues[0].message.contains("recursion"), "{:?}", r.issues);

    let lines = format!(
        "{}\n{}\n",
        "{".repeat(100_000),
        String::from_utf8_lossy(SAMPLE).replace('\n', " ")
    );
    let r = read(lines.as_bytes(), "H");
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].first_line, 2);
}

#[test]
fn odd_documents_are_rejected_not_misread() {
    for doc in [
        "[]",
        "42",
        "{\"resourceType\":\"Observation\"}",
        "{\"resourceType\":\"Bundle\",\"entry\":{}}",
    ] {
        let r = read(doc.as_bytes(), "H");
        assert!(r.records.is_empty(), "{doc}");
        assert_eq!(r.errors(), 1, "{doc}: {:?}", r.issues);
        assert_eq!(r.rejected.len(), 1, "{doc}");
    }
    let r = read(b"  \n", "H");
    assert!(r.records.is_empty() && r.errors() == 0 && r.warnings() == 1);
}

// ---------------------------------------------------------------------------------------------
// Round trip

fn simple_record(local_id: &str) -> SourceRecord {
    SourceRecord {
        identity: IdentityRecord {
            record_id: String::new(),
            provider_id: "M".into(),
            source_kind: SourceKind::Fhir,
            local_patient_id: Some(local_id.into()),
            surname_kanji: Some("試験".into()),
            given_kanji: Some("花子".into()),
            surname_kana: Some("シケン".into()),
            given_kana: Some("ハナコ".into()),
            birth_date: Some(date(1980, 4, 12)),
            sex: Some(Sex::Female),
            prefecture: Some("東京都".into()),
            municipality_code: None,
            municipality: Some("千代田区".into()),
            town: Some("架空町".into()),
            chome: Some("1".into()),
            banchi: Some("2-3".into()),
            postal_code: Some("1000001".into()),
            insurance_kind: Some(InsuranceKind::Kumiai),
            insurer_number: Some("06139992".into()),
            insured_symbol: Some("１２３４".into()),
            insured_number: Some("５６７８".into()),
            insured_branch: Some("01".into()),
            recorded_on: date(2025, 6, 1),
        },
        events: EventSet::default(),
    }
}

#[test]
fn the_written_sample_person_reads_back_and_awkward_floats_are_exact() {
    let mut r = simple_record("0000123");
    let lab = |v: f64| LabResult {
        event_id: String::new(),
        record_id: String::new(),
        encounter_id: None,
        date: date(2025, 5, 12),
        code_system: CodeSystem::Jlac10,
        code: "3D046000001906202".into(),
        name: None,
        value_num: Some(v),
        value_text: None,
        unit: Some("%".into()),
    };
    let awkward = [
        0.1 + 0.2,
        1.0 / 3.0,
        5.6,
        1e-7,
        123456.789,
        2.0 / 3.0 * 100.0,
        6.02214076e23,
        // Spellings other than the shortest are needed for these two: serde_json without its
        // `float_roundtrip` feature reads `1.4000000000000001` back as 1.4.
        1.4000000000000001,
        0.0014666666666666667,
    ];
    r.events.lab_results = awkward.iter().map(|v| lab(*v)).collect();
    let bytes = write_bundle(&r).expect("write");
    assert!(!bytes.contains(&b'\n'), "one line");
    let got = read(&bytes, "M");
    assert_eq!(got.errors(), 0, "{:?}", got.issues);
    assert_eq!(got.warnings(), 0, "{:?}", got.issues);
    let rec = &got.records[0].record;
    assert_eq!(rec, &canonicalize(&r));
    let values: Vec<Option<f64>> = rec.events.lab_results.iter().map(|l| l.value_num).collect();
    let want: Vec<Option<f64>> = awkward.iter().map(|v| Some(*v)).collect();
    assert_eq!(values, want);
    assert_eq!(rec.identity.insured_symbol.as_deref(), Some("１２３４"));
    assert_eq!(rec.identity.banchi.as_deref(), Some("2-3"));
}

fn maybe_enc(n_enc: usize, pick: Option<usize>) -> Option<String> {
    match pick {
        // An index past the encounters is not a reference the writer can make.
        Some(i) if n_enc == 0 => Some(i.to_string()),
        Some(i) => Some((i % (n_enc + 1)).to_string()),
        None => None,
    }
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![
            0.1 + 0.2,
            1.0 / 3.0,
            5.6,
            120.0,
            -0.0,
            1e-7,
            0.30000000000000004,
            123456.789,
            f64::NAN,
            f64::INFINITY,
        ]),
        any::<f64>(),
        (0u32..1_000_000, 0u32..4).prop_map(|(m, e)| f64::from(m) / 10f64.powi(e as i32)),
    ]
}

prop_compose! {
    fn encounter()(
        start in 0i64..2000,
        len in 0i64..30,
        inpatient in 0u8..3,
        facility in prop::sample::select(vec!["1311234566", "1319999990", "", "0512"]),
        dept in proptest::option::of(prop::sample::select(vec!["内科", "外科", ""])),
    ) -> Encounter {
        let start = date(2020, 1, 1) + chrono::Duration::days(start);
        Encounter {
            event_id: String::new(),
            record_id: String::new(),
            facility_code: facility.into(),
            setting: match inpatient { 0 => Setting::Outpatient, 1 => Setting::Inpatient, _ => Setting::Checkup },
            department: dept.map(str::to_string),
            start_date: start,
            end_date: start + chrono::Duration::days(len),
        }
    }
}

prop_compose! {
    fn diagnosis()(
        day in 0i64..2000,
        code in prop::sample::select(vec![
            (CodeSystem::Icd10, "E119"),
            (CodeSystem::ReceiptDisease, "8833421"),
            (CodeSystem::ReceiptDisease, "8840107"),
            (CodeSystem::ReceiptDisease, "0000999"),
            (CodeSystem::Local, "L-1"),
        ]),
        icd10 in proptest::option::of(prop::sample::select(vec!["E119", "I10", ""])),
        name in proptest::option::of(prop::sample::select(vec!["２型糖尿病", "高血圧症", "\"quoted\" \\ name"])),
        suspected in any::<bool>(),
        outcome in proptest::option::of(prop::sample::select(vec![
            DiagnosisOutcome::Continuing, DiagnosisOutcome::Cured, DiagnosisOutcome::Died, DiagnosisOutcome::Stopped,
        ])),
        outcome_after in proptest::option::of(0i64..100),
        enc in proptest::option::of(0usize..5),
    ) -> (Diagnosis, Option<usize>) {
        let date = date(2020, 1, 1) + chrono::Duration::days(day);
        (Diagnosis {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: None,
            date,
            code_system: code.0,
            code: code.1.into(),
            icd10: icd10.map(str::to_string),
            name: name.map(str::to_string),
            suspected,
            outcome,
            outcome_date: outcome_after.map(|d| date + chrono::Duration::days(d)),
        }, enc)
    }
}

prop_compose! {
    fn prescription()(
        day in 0i64..2000,
        code in prop::sample::select(vec![
            (CodeSystem::ReceiptDrug, "620000007"),
            (CodeSystem::YakkaCode, "3962002F1025"),
            (CodeSystem::Local, "D-9"),
        ]),
        name in proptest::option::of(prop::sample::select(vec!["メトホルミン錠", "ｱﾑﾛｼﾞﾝ"])),
        qty in proptest::option::of(float()),
        unit in proptest::option::of(prop::sample::select(vec!["錠", "g", "mL"])),
        days in proptest::option::of(-5i32..400),
        enc in proptest::option::of(0usize..5),
    ) -> (Prescription, Option<usize>) {
        (Prescription {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: None,
            date: date(2020, 1, 1) + chrono::Duration::days(day),
            code_system: code.0,
            code: code.1.into(),
            name: name.map(str::to_string),
            daily_quantity: qty,
            unit: unit.map(str::to_string),
            days,
        }, enc)
    }
}

prop_compose! {
    fn lab()(
        day in 0i64..2000,
        code in prop::sample::select(vec![
            (CodeSystem::Jlac10, "3D046000001906202"),
            (CodeSystem::Jlac10, "1A020000000191111"),
            (CodeSystem::Local, "LAB-1"),
        ]),
        name in proptest::option::of(prop::sample::select(vec!["HbA1c", "尿糖"])),
        num in proptest::option::of(float()),
        text in proptest::option::of(prop::sample::select(vec!["陰性", "(+)", "1+\n2+"])),
        unit in proptest::option::of(prop::sample::select(vec!["%", "mg/dL", "U/l"])),
        enc in proptest::option::of(0usize..5),
    ) -> (LabResult, Option<usize>) {
        (LabResult {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: None,
            date: date(2020, 1, 1) + chrono::Duration::days(day),
            code_system: code.0,
            code: code.1.into(),
            name: name.map(str::to_string),
            value_num: num,
            value_text: text.map(str::to_string),
            unit: unit.map(str::to_string),
        }, enc)
    }
}

prop_compose! {
    fn procedure()(
        day in 0i64..2000,
        code in prop::sample::select(vec![
            (CodeSystem::ReceiptProcedure, "160000310"),
            (CodeSystem::ReceiptProcedure, "111000110"),
            (CodeSystem::Local, "P-3"),
        ]),
        name in proptest::option::of(prop::sample::select(vec!["尿検査", "初診料"])),
        points in proptest::option::of(0i32..10000),
        count in 0i32..5,
        enc in proptest::option::of(0usize..5),
    ) -> (Procedure, Option<usize>) {
        (Procedure {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: None,
            date: date(2020, 1, 1) + chrono::Duration::days(day),
            code_system: code.0,
            code: code.1.into(),
            name: name.map(str::to_string),
            points,
            count,
        }, enc)
    }
}

prop_compose! {
    fn identity()(
        local in proptest::option::of("[0-9]{7}"),
        surname in proptest::option::of(prop::sample::select(vec!["髙橋", "𠮷田", "山﨑", "試験", "ｻﾄｳ", "齋藤"])),
        given in proptest::option::of(prop::sample::select(vec!["花子", "太郎", "ﾊﾅｺ", ""])),
        kana_s in proptest::option::of(prop::sample::select(vec!["タカハシ", "ヨシダ", "ｻﾄｳ"])),
        kana_g in proptest::option::of(prop::sample::select(vec!["ハナコ", "ﾀﾛｳ"])),
        birth in proptest::option::of((1900i32..2020, 1u32..13, 1u32..29)),
        sex in proptest::option::of(any::<bool>()),
        pref in proptest::option::of(prop::sample::select(vec!["東京都", "青森県", "京都府"])),
        muni in proptest::option::of(prop::sample::select(vec!["千代田区", "青森市", "四日市市"])),
        muni_code in proptest::option::of("[0-9]{6}"),
        town in proptest::option::of(prop::sample::select(vec!["架空町", "新町", "大字野木", "小湊"])),
        chome in proptest::option::of(1u8..10),
        banchi in proptest::option::of(prop::sample::select(vec!["12-3", "5", "100-2", "1-2-3"])),
        postal in proptest::option::of(prop::sample::select(vec!["1000001", "030-0801", "12345"])),
        insurer in proptest::option::of(prop::sample::select(vec![
            "06139992", "133066", "01130012", "39131234", "00133066", "31131239", " ０６１３９９９２ ",
        ])),
        symbol in proptest::option::of(prop::sample::select(vec!["１２３４", "05", "あい:う", ""])),
        number in proptest::option::of(prop::sample::select(vec!["５６７８", "1234567"])),
        branch in proptest::option::of(prop::sample::select(vec!["01", "00"])),
        recorded in 0i64..3000,
    ) -> IdentityRecord {
        let insurer = insurer.map(str::to_string);
        IdentityRecord {
            record_id: "R-1".into(),
            provider_id: "M".into(),
            source_kind: SourceKind::Claims,
            local_patient_id: local,
            surname_kanji: surname.map(str::to_string),
            given_kanji: given.map(str::to_string),
            surname_kana: kana_s.map(str::to_string),
            given_kana: kana_g.map(str::to_string),
            birth_date: birth.and_then(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d)),
            sex: sex.map(|m| if m { Sex::Male } else { Sex::Female }),
            prefecture: pref.map(str::to_string),
            municipality_code: muni_code,
            municipality: muni.map(str::to_string),
            town: town.map(str::to_string),
            chome: chome.map(|c| c.to_string()),
            banchi: banchi.map(str::to_string),
            postal_code: postal.map(str::to_string),
            insurance_kind: insurer.as_deref().and_then(tokumei_formats::uke::insurance_kind),
            insurer_number: insurer,
            insured_symbol: symbol.map(str::to_string),
            insured_number: number.map(str::to_string),
            insured_branch: branch.map(str::to_string),
            recorded_on: date(2018, 1, 1) + chrono::Duration::days(recorded),
        }
    }
}

prop_compose! {
    fn record()(
        identity in identity(),
        encounters in prop::collection::vec(encounter(), 0..4),
        diagnoses in prop::collection::vec(diagnosis(), 0..4),
        prescriptions in prop::collection::vec(prescription(), 0..4),
        labs in prop::collection::vec(lab(), 0..5),
        procedures in prop::collection::vec(procedure(), 0..4),
        deaths in prop::collection::vec((0i64..3000, proptest::option::of(0i64..30)), 0..3),
    ) -> SourceRecord {
        let n = encounters.len();
        let death_list = deaths.into_iter().map(|(d, n)| {
            let date = date(2020, 1, 1) + chrono::Duration::days(d);
            Death {
                event_id: String::new(),
                record_id: "R-1".into(),
                date,
                recorded_on: n.map(|k| date + chrono::Duration::days(k)),
            }
        }).collect();
        SourceRecord {
            identity,
            events: EventSet {
                encounters,
                diagnoses: diagnoses.into_iter().map(|(mut d, e)| { d.encounter_id = maybe_enc(n, e); d }).collect(),
                prescriptions: prescriptions.into_iter().map(|(mut p, e)| { p.encounter_id = maybe_enc(n, e); p }).collect(),
                lab_results: labs.into_iter().map(|(mut l, e)| { l.encounter_id = maybe_enc(n, e); l }).collect(),
                procedures: procedures.into_iter().map(|(mut p, e)| { p.encounter_id = maybe_enc(n, e); p }).collect(),
                deaths: death_list,
            },
        }
    }
}

fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut b = base.to_vec();
    for &(pos, op, byte) in edits {
        if b.is_empty() {
            b.push(byte);
            continue;
        }
        let i = pos % b.len();
        match op % 3 {
            0 => b[i] = byte,
            1 => b.insert(i, byte),
            _ => {
                b.remove(i);
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn write_then_read_gives_back_the_canonical_records(records in prop::collection::vec(record(), 1..5)) {
        let bytes = write_ndjson(&records).expect("write");
        prop_assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), records.len());
        let r = read(&bytes, "M");
        prop_assert_eq!(r.errors(), 0, "{:?}", r.issues);
        prop_assert_eq!(r.records.len(), records.len());
        for (i, (got, want)) in r.records.iter().zip(&records).enumerate() {
            prop_assert_eq!(got.first_line, i + 1);
            prop_assert_eq!(&got.record, &canonicalize(want));
        }
    }

    #[test]
    fn the_reader_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let r = read(&bytes, "M");
        prop_assert!(r.records.len() + r.rejected.len() <= bytes.len() + 1);
    }

    #[test]
    fn the_reader_never_panics_on_mutated_samples(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..12),
        ndjson in any::<bool>(),
    ) {
        let base = if ndjson {
            write_ndjson(&[simple_record("0000123"), simple_record("0000456")]).expect("write")
        } else {
            SAMPLE.to_vec()
        };
        let _ = read(&mutate(&base, &edits), "M");
    }
}
