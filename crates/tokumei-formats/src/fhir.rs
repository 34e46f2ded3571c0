//! JP Core FHIR R4 (JSON): reader and writer of bundles.
//!
//! A file is one JSON Bundle (any `type`), NDJSON with one Bundle per line (how the platform's synthetic
//! hospitals export; blank lines allowed), or a single Patient resource. Each Patient yields one record
//! with the resources of its bundle that refer to it (`subject`, `patient` or `beneficiary` by `fullUrl`
//! or `Patient/<id>`; a bundle with one Patient may omit the references). Read resources: Patient,
//! Coverage, Encounter, Condition, MedicationRequest, Observation, Procedure. Other resource types are
//! counted in [`ReadReport::line_counts`] (as every resource is, by `resourceType`) and warned once per
//! type and file.
//!
//! Positions: [`crate::Position::line`] is the 1-based line of the bundle in NDJSON (1 for a single JSON
//! document, except JSON syntax errors, which carry serde_json's line), [`crate::Position::field`] the
//! 0-based entry index of the resource at fault (`None` for a lone Patient document and for whole-bundle
//! findings).
//!
//! Mapping decisions where JP Core gives no answer, or where FORMATS.md is uncertain ([U]):
//!
//! * Patient ids: `identifier.system = urn:oid:1.2.392.100495.20.3.51.1<医療機関コード 10 digits>` gives
//!   `local_patient_id` and the facility of encounters without a service provider. Without a facility
//!   code the writer uses [`LOCAL_PATIENT_ID_SYSTEM`], which the reader also accepts.
//! * Addresses: `state` and `city` are the prefecture and municipality; the rest (町名, 丁目, 番地) is read
//!   from `line` (joined), else from `text`, after dropping a leading prefecture and city, with the same
//!   rules as [`crate::death::parse_address`]. The writer puts the rest in one `line` element written
//!   like [`crate::death::format_address`] (full-width digits, `丁目` spelled out).
//! * Insurer numbers: an 8-digit number starting with `00` is read as a zero-padded 6-digit 市町村国保
//!   number (as 特定健診 pads them) with a warning [U: whether JP Core pads them].
//! * `recorded_on`: the date part of the Patient's `meta.lastUpdated` (the writer stores `recorded_on`
//!   there), else the Bundle's `timestamp` or `meta.lastUpdated`, else the latest encounter start, else
//!   the latest event date, else the birth date (warned); a Patient with none of these is rejected.
//! * Condition outcome (転帰): `clinicalStatus` active / recurrence / relapse or absent → none (so
//!   [`DiagnosisOutcome::Continuing`] is not carried); resolved / remission → cured, with
//!   `abatementDateTime` as the outcome date; inactive → died or stopped (中止・転医) as the extension
//!   [`CONDITION_OUTCOME_EXTENSION`] (`valueCode` `died`, `stopped` or `transferred`) says, else as a
//!   `note` mentioning 死亡 / died or 中止 / 転医 / stopped / transferred says, else stopped with a warning.
//!   Suspected (疑い) is `verificationStatus` provisional / unconfirmed / differential [U: JP Core may also
//!   carry 疑い as the masterZ modifier 8002, which is not read].
//! * Codes: the first coding of a system in the table below is the code; an ICD-10 coding is also kept
//!   as `icd10`; without one, a 傷病名コード takes the 傷病名マスター's ICD-10
//!   ([`tokumei_japan::byomei::icd10_of`]). Codings of systems without a canonical counterpart
//!   (HOT7/9/13, 一般名処方マスタ, MEDIS 病名交換用コード and 管理番号, dental procedures, unknown
//!   systems) are read as [`CodeSystem::Local`] with a warning, and only when no coding of a known
//!   system is present. YJ codes are read as
//!   [`CodeSystem::YakkaCode`] (YJ and 薬価基準収載医薬品コード agree for most products [U]).
//!   [`RECEIPT_DRUG_SYSTEM`] (claims drug master, 医薬品コード) is our choice following the JP Core pattern
//!   of `masterB-disease` and `masterS-medicalProcedure` [U: JP Core names no URI for it].
//! * MedicationRequest: `dosageInstruction[0].doseAndRate[0].doseQuantity` is read as the daily quantity
//!   [U: JP Core distinguishes 1回量 and 1日量]; `dispenseRequest.expectedSupplyDuration` as days.
//! * Procedure count: the extension [`PROCEDURE_COUNT_EXTENSION`] (`valueInteger`), default 1.
//! * Encounter class: `AMB` → outpatient, `IMP` → inpatient; other codes are read as outpatient with a
//!   warning. The writer writes checkups as `AMB`.
//!
//! Floats are written in their shortest round-trip spelling; serde_json is built with
//! `float_roundtrip`, so every finite value reads back exactly (NaN and infinities are not written).

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use serde_json::Value;
use tokumei_model::checkdigit::insurer_number_is_valid;
use tokumei_model::events::{
    Death, Diagnosis, Encounter, EventSet, LabResult, Prescription, Procedure, SourceRecord,
};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::{CodeSystem, DiagnosisOutcome, Setting, Sex, SourceKind};

use crate::death::{format_address, parse_address, AddressParts};
use crate::encoding::{detect, Detected};
use crate::text::{split_name, to_half_width_ascii};
use crate::uke::insurance_kind;
use crate::{FormatError, ParsedRecord, ReadReport, Rejected, Severity};

// ---------------------------------------------------------------------------------------------
// Systems, extensions and profiles

/// Patient identifier system prefix; the 10-digit 医療機関コード follows.
pub const PATIENT_ID_SYSTEM_PREFIX: &str = "urn:oid:1.2.392.100495.20.3.51.1";
/// Name representation extension (`IDE` 漢字, `SYL` カナ).
pub const EN_REPRESENTATION: &str =
    "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation";
/// 被保険者証 記号 extension of JP_Coverage.
pub const INSURED_SYMBOL_EXTENSION: &str =
    "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Coverage_InsuredPersonSymbol";
/// 被保険者証 番号 extension of JP_Coverage.
pub const INSURED_NUMBER_EXTENSION: &str =
    "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Coverage_InsuredPersonNumber";
/// 枝番 extension of JP_Coverage.
pub const INSURED_SUBNUMBER_EXTENSION: &str =
    "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Coverage_InsuredPersonSubNumber";
/// CLINS 被保険者個人識別子 `保険者番号:記号:番号:枝番`.
pub const INSURANCE_MEMBER_ID_SYSTEM: &str =
    "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID";
/// 保険者番号 identifier system.
pub const INSURER_NUMBER_SYSTEM: &str = "http://jpfhir.jp/fhir/core/mhlw/IdSystem/InsurerNumber";
const INSURER_NUMBER_OID: &str = "urn:oid:1.2.392.100495.20.3.61";
const PUBLIC_PAYER_SYSTEMS: [&str; 2] = [
    "http://jpfhir.jp/fhir/core/mhlw/IdSystem/PublicPayerNumber",
    "urn:oid:1.2.392.100495.20.3.71",
];
/// 10-digit 医療機関コード identifier system (Organization, Encounter.serviceProvider).
pub const MEDICAL_INSTITUTION_SYSTEM: &str =
    "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no";
const MEDICAL_INSTITUTION_SYSTEM_ALT: &str =
    "http://jpfhir.jp/fhir/Common/CodeSystem/insurance-medical-institution-no";

/// ICD-10 (2013, all digits).
pub const ICD10_SYSTEM: &str = "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full";
/// Claims disease master (傷病名コード).
pub const RECEIPT_DISEASE_SYSTEM: &str =
    "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterB-disease";
/// Claims drug master (医薬品コード): our choice, JP Core names none (see the module notes).
pub const RECEIPT_DRUG_SYSTEM: &str = "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterY-medicine";
/// YJ code.
pub const YJ_SYSTEM: &str = "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code";
/// Claims procedure master (診療行為コード, 医科).
pub const RECEIPT_PROCEDURE_SYSTEM: &str =
    "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/masterS-medicalProcedure";
/// JLAC10 (17 digits).
pub const JLAC10_SYSTEM: &str = "http://medis.or.jp/CodeSystem/master-JLAC10-17digits";

/// Tokumei's own identifier system for a local patient id without a facility code.
pub const LOCAL_PATIENT_ID_SYSTEM: &str =
    "https://example.invalid/tokumei/fhir/IdSystem/local-patient-id";
/// Tokumei's own code system for [`CodeSystem::Local`] codes.
pub const LOCAL_CODE_SYSTEM: &str = "https://example.invalid/tokumei/fhir/CodeSystem/local";
/// Tokumei's Procedure extension: number of performances (`valueInteger`, default 1).
pub const PROCEDURE_COUNT_EXTENSION: &str =
    "https://example.invalid/tokumei/fhir/StructureDefinition/procedure-count";
/// Tokumei's Condition extension: outcome of an inactive condition (`valueCode` died / stopped /
/// transferred).
pub const CONDITION_OUTCOME_EXTENSION: &str =
    "https://example.invalid/tokumei/fhir/StructureDefinition/condition-outcome";

const PROFILE_BASE: &str = "http://jpfhir.jp/fhir/core/StructureDefinition/";
const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const CLINICAL_STATUS_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const VERIFICATION_STATUS_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const OBSERVATION_CATEGORY_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category";
const UCUM: &str = "http://unitsofmeasure.org";

/// Resource types the reader reads.
const READ_TYPES: [&str; 7] = [
    "Patient",
    "Coverage",
    "Encounter",
    "Condition",
    "MedicationRequest",
    "Observation",
    "Procedure",
];

/// The canonical code system of a FHIR code system URI, where there is one.
pub fn code_system_of(uri: &str) -> Option<CodeSystem> {
    Some(match uri {
        ICD10_SYSTEM
        | "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-3digits"
        | "http://hl7.org/fhir/sid/icd-10"
        | "urn:oid:2.16.840.1.113883.6.3" => CodeSystem::Icd10,
        RECEIPT_DISEASE_SYSTEM => CodeSystem::ReceiptDisease,
        RECEIPT_DRUG_SYSTEM => CodeSystem::ReceiptDrug,
        YJ_SYSTEM | "urn:oid:1.2.392.100495.20.2.73" => CodeSystem::YakkaCode,
        RECEIPT_PROCEDURE_SYSTEM => CodeSystem::ReceiptProcedure,
        JLAC10_SYSTEM | "urn:oid:1.2.392.200119.4.504" => CodeSystem::Jlac10,
        LOCAL_CODE_SYSTEM => CodeSystem::Local,
        _ => return None,
    })
}

/// The FHIR code system URI the writer uses for a canonical code system.
pub fn system_uri(cs: CodeSystem) -> &'static str {
    match cs {
        CodeSystem::Icd10 => ICD10_SYSTEM,
        CodeSystem::ReceiptDisease => RECEIPT_DISEASE_SYSTEM,
        CodeSystem::ReceiptDrug => RECEIPT_DRUG_SYSTEM,
        CodeSystem::YakkaCode => YJ_SYSTEM,
        CodeSystem::ReceiptProcedure => RECEIPT_PROCEDURE_SYSTEM,
        CodeSystem::Jlac10 => JLAC10_SYSTEM,
        CodeSystem::Local => LOCAL_CODE_SYSTEM,
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn get_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn get_arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A non-empty string value.
fn nz(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

fn nz_owned(s: &Option<String>) -> Option<String> {
    nz(s.as_deref())
}

fn extension<'a>(v: &'a Value, url: &str) -> Option<&'a Value> {
    get_arr(v, "extension")
        .iter()
        .find(|e| get_str(e, "url") == Some(url))
}

fn ext_string(v: &Value, url: &str) -> Option<String> {
    let e = extension(v, url)?;
    nz(get_str(e, "valueString")
        .or_else(|| e.get("valueIdentifier").and_then(|i| get_str(i, "value"))))
}

fn is_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

/// A resource type fit for a message and a count key (FHIR type names are ASCII letters).
fn safe_type(kind: &str) -> String {
    let ok = (1..=64).contains(&kind.len())
        && kind.bytes().all(|b| b.is_ascii_alphanumeric())
        && kind.bytes().next().is_some_and(|b| b.is_ascii_uppercase());
    if ok {
        kind.to_string()
    } else {
        "(invalid resourceType)".to_string()
    }
}

/// A FHIR date or dateTime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FhirDate {
    /// A full date (the date part of a dateTime).
    Full(NaiveDate),
    /// `YYYY` or `YYYY-MM`: valid FHIR, but no day.
    Partial,
    /// Not a date.
    Bad,
}

fn parse_fhir_date(s: &str) -> FhirDate {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|x| !x.is_empty() && x.iter().all(u8::is_ascii_digit))
    };
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
    let dash = |i: usize| b.get(i) == Some(&b'-');
    if !digits(0..4) || num(0..4).unwrap_or(0) == 0 {
        return FhirDate::Bad;
    }
    let month_ok = || digits(5..7) && num(5..7).is_some_and(|m| (1..=12).contains(&m));
    match b.len() {
        4 => FhirDate::Partial,
        7 if dash(4) && month_ok() => FhirDate::Partial,
        n if n >= 10
            && dash(4)
            && dash(7)
            && digits(5..7)
            && digits(8..10)
            && (n == 10 || (b.get(10) == Some(&b'T') && n > 11)) =>
        {
            match (num(0..4), num(5..7), num(8..10)) {
                (Some(y), Some(m), Some(d)) => NaiveDate::from_ymd_opt(y as i32, m, d)
                    .map(FhirDate::Full)
                    .unwrap_or(FhirDate::Bad),
                _ => FhirDate::Bad,
            }
        }
        _ => FhirDate::Bad,
    }
}

fn full_date(v: Option<&Value>) -> Option<NaiveDate> {
    match parse_fhir_date(v?.as_str()?) {
        FhirDate::Full(d) => Some(d),
        _ => None,
    }
}

/// Digits of a postal code (hyphen and width folded); `None` if there are none.
fn postal_digits(s: &str) -> Option<String> {
    let d: String = to_half_width_ascii(s)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    (!d.is_empty()).then_some(d)
}

/// An insurer number as read: trimmed, half-width, and a zero-padded 6-digit number unpadded. The flag
/// says whether it was unpadded.
fn normalise_insurer(s: &str) -> (String, bool) {
    let t = to_half_width_ascii(s.trim());
    if is_digits(&t, 8) && t.starts_with("00") {
        return (t[2..].to_string(), true);
    }
    (t, false)
}

fn is_member_id_system(system: &str) -> bool {
    system == INSURANCE_MEMBER_ID_SYSTEM
        || system
            .to_ascii_lowercase()
            .ends_with("/jp_insurance_memberid")
}

fn is_digit_char(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

/// Splits what follows the municipality: 町名 up to the first digit, then `N丁目M-K`, `N-M-K`
/// (丁目-番地-号) or `M-K`. The same rules as [`parse_address`].
fn split_town(rest: &str) -> (Option<String>, Option<String>, Option<String>) {
    let rest = rest.trim();
    let town_end = rest
        .char_indices()
        .find(|(_, c)| is_digit_char(*c))
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    let town = rest
        .get(..town_end)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let tail = to_half_width_ascii(rest.get(town_end..).unwrap_or("").trim());
    if tail.is_empty() {
        return (town, None, None);
    }
    if let Some((n, after)) = tail.split_once("丁目") {
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            let b = after.trim_start_matches('-').trim();
            return (
                town,
                Some(n.to_string()),
                (!b.is_empty()).then(|| b.to_string()),
            );
        }
    }
    let parts: Vec<&str> = tail.split('-').collect();
    if parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        let chome = parts.first().map(|p| p.to_string());
        let banchi = parts.get(1..).map(|p| p.join("-"));
        return (town, chome, banchi);
    }
    (town, None, Some(tail))
}

/// Address parts below the municipality, from `source` (`line` joined, or `text`), given the structured
/// prefecture and municipality.
fn town_parts(
    prefecture: Option<&str>,
    municipality: Option<&str>,
    source: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    let mut s = source.trim();
    if let Some(p) = prefecture {
        s = s.strip_prefix(p).unwrap_or(s);
    }
    if let Some(m) = municipality {
        if let Some(i) = s.find(m) {
            s = s.get(i + m.len()..).unwrap_or("");
        }
    }
    split_town(s)
}

/// What the writer puts in `address.line`: 町名, 丁目 and 番地 as [`format_address`] writes them.
fn address_tail(id: &IdentityRecord) -> Option<String> {
    let t = IdentityRecord {
        prefecture: None,
        municipality: None,
        town: nz_owned(&id.town),
        chome: nz_owned(&id.chome),
        banchi: nz_owned(&id.banchi),
        ..id.clone()
    };
    let s = format_address(&t);
    (!s.is_empty()).then_some(s)
}

// ---------------------------------------------------------------------------------------------
// Floats

fn reparse_f64(s: &str) -> Option<f64> {
    serde_json::from_str::<Value>(s).ok()?.as_f64()
}

/// The JSON spelling of `x`: Rust's shortest round-trip form, which serde_json (built with
/// `float_roundtrip`) reads back exactly. `None` for NaN and infinities.
fn json_f64(x: f64) -> Option<String> {
    x.is_finite().then(|| format!("{x:?}"))
}

/// What a float becomes through the writer and the reader.
fn canon_f64(x: Option<f64>) -> Option<f64> {
    json_f64(x?).and_then(|s| reparse_f64(&s))
}

// ---------------------------------------------------------------------------------------------
// Reader

/// Findings of one bundle, flushed to the report in entry order.
#[derive(Default)]
struct Log {
    items: Vec<(Severity, Option<usize>, String)>,
}

impl Log {
    fn warn(&mut self, field: Option<usize>, msg: impl Into<String>) {
        self.items.push((Severity::Warning, field, msg.into()));
    }

    fn error(&mut self, field: Option<usize>, msg: impl Into<String>) {
        self.items.push((Severity::Error, field, msg.into()));
    }
}

struct FileState<'p> {
    provider_id: &'p str,
    warned_types: BTreeSet<String>,
}

struct Entry<'a> {
    field: Option<usize>,
    full_url: Option<&'a str>,
    kind: &'a str,
    res: &'a Value,
}

/// The bundle's entries, with indexes of the resources other resources refer to.
struct Doc<'a> {
    entries: Vec<Entry<'a>>,
    organizations: RefIndex,
    medications: RefIndex,
}

impl Doc<'_> {
    /// The entry of `kind` that `reference` points at, through `index`.
    fn resolve(&self, index: &RefIndex, reference: &str) -> Option<&Entry<'_>> {
        index.find(reference).and_then(|i| self.entries.get(i))
    }
}

/// Resources of one type by the references that may point at them: `fullUrl`, `Type/id`, an absolute
/// `…/Type/id` and a versioned `…/_history/n` reference. The first resource holding a key keeps it.
struct RefIndex {
    kind: &'static str,
    map: HashMap<String, usize>,
}

fn strip_history(r: &str) -> &str {
    r.split_once("/_history/").map(|(a, _)| a).unwrap_or(r)
}

/// `Type/id` of an absolute reference `…/Type/id`.
fn relative_reference(r: &str, kind: &str) -> Option<String> {
    let i = r.rfind(&format!("/{kind}/"))?;
    r.get(i + 1..).map(str::to_string)
}

impl RefIndex {
    fn new(kind: &'static str) -> Self {
        RefIndex {
            kind,
            map: HashMap::new(),
        }
    }

    /// Indexes the entries of this index's type, each under its position in `entries`.
    fn of(kind: &'static str, entries: &[Entry<'_>]) -> Self {
        let mut idx = RefIndex::new(kind);
        for (i, e) in entries.iter().enumerate() {
            idx.add(e, i);
        }
        idx
    }

    fn add(&mut self, e: &Entry<'_>, value: usize) {
        if e.kind != self.kind {
            return;
        }
        if let Some(fu) = e.full_url.filter(|u| !u.is_empty()) {
            self.map.entry(fu.to_string()).or_insert(value);
            if let Some(rel) = relative_reference(strip_history(fu), self.kind) {
                self.map.entry(rel).or_insert(value);
            }
        }
        if let Some(id) = get_str(e.res, "id").filter(|id| !id.is_empty()) {
            self.map
                .entry(format!("{}/{id}", self.kind))
                .or_insert(value);
        }
    }

    fn find(&self, reference: &str) -> Option<usize> {
        if let Some(v) = self.map.get(reference) {
            return Some(*v);
        }
        let r = strip_history(reference);
        self.map
            .get(r)
            .or_else(|| relative_reference(r, self.kind).and_then(|rel| self.map.get(&rel)))
            .copied()
    }
}

fn subject_reference(res: &Value) -> Option<&str> {
    ["subject", "patient", "beneficiary"]
        .iter()
        .find_map(|k| res.get(*k).and_then(|r| get_str(r, "reference")))
}

fn count_lines(bytes: &[u8]) -> usize {
    let n = memchr::memchr_iter(b'\n', bytes).count();
    let n = if bytes.last() == Some(&b'\n') {
        n
    } else {
        n + 1
    };
    n.max(1)
}

fn encoding_message(d: Detected) -> String {
    match d {
        Detected::ShiftJis | Detected::Iso2022Jp => {
            format!("not UTF-8: looks like {}", d.name())
        }
        _ => "not UTF-8: encoding not recognised".to_string(),
    }
}

fn is_utf8(d: Detected) -> bool {
    matches!(d, Detected::Ascii | Detected::Utf8)
}

fn json_error_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let core = full.strip_suffix(&suffix).unwrap_or(&full);
    format!("invalid JSON at column {}: {core}", e.column())
}

/// Whether a file that is not one JSON document is NDJSON: at least two non-blank lines, and either the
/// first is a whole object or some line is a whole Bundle.
fn looks_like_ndjson(bytes: &[u8]) -> bool {
    let mut lines = bytes
        .split(|b| *b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty());
    let Some(first) = lines.next() else {
        return false;
    };
    if lines.next().is_none() {
        return false;
    }
    if first.starts_with(b"{") && first.ends_with(b"}") {
        return true;
    }
    bytes.split(|b| *b == b'\n').any(|l| {
        let l = l.trim_ascii();
        l.starts_with(b"{")
            && l.ends_with(b"}")
            && serde_json::from_slice::<Value>(l)
                .ok()
                .is_some_and(|v| get_str(&v, "resourceType") == Some("Bundle"))
    })
}

/// Reads a JP Core FHIR file (a Bundle, NDJSON of Bundles, or a Patient). `provider_id` is stored on
/// every identity record.
pub fn read(bytes: &[u8], provider_id: &str) -> ReadReport {
    let mut report = ReadReport::default();
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let detected = detect(bytes);
    report.encoding = Some(detected);
    let mut st = FileState {
        provider_id,
        warned_types: BTreeSet::new(),
    };
    if bytes.trim_ascii().is_empty() {
        report.issue(Severity::Warning, 1, None, "file holds no JSON");
        return report;
    }
    let total = count_lines(bytes);
    if is_utf8(detected) {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => {
                read_document(&v, 1, total, &mut report, &mut st);
                return report;
            }
            Err(e) if !looks_like_ndjson(bytes) => {
                let msg = json_error_message(&e);
                report.issue(Severity::Error, e.line().max(1), None, msg.clone());
                report.rejected.push(Rejected {
                    first_line: 1,
                    last_line: total,
                    reason: msg,
                });
                return report;
            }
            Err(_) => {}
        }
    } else if !looks_like_ndjson(bytes) {
        let line = bytes
            .split(|b| *b == b'\n')
            .position(|l| !is_utf8(detect(l)))
            .map(|i| i + 1)
            .unwrap_or(1);
        let msg = encoding_message(detected);
        report.issue(Severity::Error, line, None, msg.clone());
        report.rejected.push(Rejected {
            first_line: 1,
            last_line: total,
            reason: msg,
        });
        return report;
    }
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let no = i + 1;
        let l = raw.trim_ascii();
        if l.is_empty() {
            continue;
        }
        let d = detect(l);
        let parsed = if is_utf8(d) {
            serde_json::from_slice::<Value>(l).map_err(|e| json_error_message(&e))
        } else {
            Err(encoding_message(d))
        };
        match parsed {
            Ok(v) => read_document(&v, no, no, &mut report, &mut st),
            Err(msg) => {
                report.issue(Severity::Error, no, None, msg.clone());
                report.rejected.push(Rejected {
                    first_line: no,
                    last_line: no,
                    reason: msg,
                });
            }
        }
    }
    report
}

/// Reads one JSON document (a Bundle or a Patient) found on lines `line..=last`.
fn read_document(
    v: &Value,
    line: usize,
    last: usize,
    report: &mut ReadReport,
    st: &mut FileState<'_>,
) {
    let mut log = Log::default();
    let entries = match document_entries(v, &mut log) {
        Ok(entries) => entries,
        Err(msg) => {
            report.issue(Severity::Error, line, None, msg);
            report.rejected.push(Rejected {
                first_line: line,
                last_line: last,
                reason: msg.to_string(),
            });
            return;
        }
    };
    count_types(&entries, report, st, &mut log);
    let doc = Doc {
        organizations: RefIndex::of("Organization", &entries),
        medications: RefIndex::of("Medication", &entries),
        entries,
    };
    let entries = &doc.entries;
    let patients: Vec<usize> = (0..entries.len())
        .filter(|&i| entries.get(i).is_some_and(|e| e.kind == "Patient"))
        .collect();
    let (owned, clinical) = owners(entries, &patients, &mut log);
    if patients.is_empty() {
        if clinical > 0 {
            let msg = "bundle holds no Patient: its resources are not read";
            log.error(None, msg);
            report.rejected.push(Rejected {
                first_line: line,
                last_line: last,
                reason: msg.to_string(),
            });
        } else {
            log.warn(None, "bundle holds no Patient");
        }
    }
    for (k, &p) in patients.iter().enumerate() {
        let own = owned.get(k).map(Vec::as_slice).unwrap_or(&[]);
        match build_record(v, &doc, p, own, st.provider_id, &mut log) {
            Ok(record) => report.records.push(ParsedRecord {
                record,
                first_line: line,
                last_line: last,
            }),
            Err(reason) => report.rejected.push(Rejected {
                first_line: line,
                last_line: last,
                reason,
            }),
        }
    }
    log.items.sort_by_key(|(_, f, _)| *f);
    for (sev, field, msg) in log.items {
        report.issue(sev, line, field, msg);
    }
}

/// The resources of a document: the entries of a Bundle (entries without a resource are skipped
/// with a warning) or the Patient itself; `Err` with the reason when the document is neither.
fn document_entries<'a>(v: &'a Value, log: &mut Log) -> Result<Vec<Entry<'a>>, &'static str> {
    let mut entries: Vec<Entry<'_>> = Vec::new();
    match get_str(v, "resourceType") {
        Some("Bundle") => {
            let list: &[Value] = match v.get("entry") {
                None | Some(Value::Null) => &[],
                Some(Value::Array(a)) => a,
                Some(_) => return Err("Bundle.entry is not an array"),
            };
            for (i, e) in list.iter().enumerate() {
                let res = e.get("resource").filter(|r| r.is_object());
                match res.and_then(|r| get_str(r, "resourceType").map(|k| (r, k))) {
                    Some((res, kind)) => entries.push(Entry {
                        field: Some(i),
                        full_url: get_str(e, "fullUrl"),
                        kind,
                        res,
                    }),
                    None => log.warn(Some(i), "entry without a resource: skipped"),
                }
            }
        }
        Some("Patient") => entries.push(Entry {
            field: None,
            full_url: None,
            kind: "Patient",
            res: v,
        }),
        _ => return Err("document is neither a Bundle nor a Patient resource"),
    }
    Ok(entries)
}

/// Counts the resources by type; types not read are warned about once per file.
fn count_types(
    entries: &[Entry<'_>],
    report: &mut ReadReport,
    st: &mut FileState<'_>,
    log: &mut Log,
) {
    for e in entries {
        let key = safe_type(e.kind);
        *report.line_counts.entry(key.clone()).or_default() += 1;
        if !READ_TYPES.contains(&e.kind) && st.warned_types.insert(key.clone()) {
            log.warn(
                e.field,
                format!("resources of type {key} are counted but not read"),
            );
        }
    }
}

/// The clinical resources each Patient (by its position in `patients`) owns through its subject
/// reference, and the number of clinical resources; resources that refer to no Patient of the
/// bundle are not read (logged).
fn owners(entries: &[Entry<'_>], patients: &[usize], log: &mut Log) -> (Vec<Vec<usize>>, usize) {
    let mut patient_index = RefIndex::new("Patient");
    for (k, &p) in patients.iter().enumerate() {
        if let Some(e) = entries.get(p) {
            patient_index.add(e, k);
        }
    }
    let mut owned: Vec<Vec<usize>> = vec![Vec::new(); patients.len()];
    let mut clinical = 0usize;
    for (i, e) in entries.iter().enumerate() {
        if e.kind == "Patient" || !READ_TYPES.contains(&e.kind) {
            continue;
        }
        clinical += 1;
        if patients.is_empty() {
            continue;
        }
        let owner = match subject_reference(e.res) {
            Some(r) => {
                let found = patient_index.find(r);
                if found.is_none() {
                    log.error(
                        e.field,
                        "reference to a Patient that is not in the bundle: resource not read",
                    );
                }
                found
            }
            None if patients.len() == 1 => Some(0),
            None => {
                log.error(
                    e.field,
                    "no Patient reference in a bundle with several Patients: resource not read",
                );
                None
            }
        };
        if let Some(o) = owner.and_then(|o| owned.get_mut(o)) {
            o.push(i);
        }
    }
    (owned, clinical)
}

/// What the Patient resource gives.
struct PatientData {
    identity: IdentityRecord,
    facility: Option<String>,
    member_id: Option<String>,
    death: Option<NaiveDate>,
    last_updated: Option<NaiveDate>,
}

fn is_katakana_name(s: &str) -> bool {
    let mut any = false;
    for c in s.chars() {
        match c {
            ' ' | '\u{3000}' => {}
            '\u{30A1}'..='\u{30FA}' | '\u{30FC}'..='\u{30FE}' | '\u{FF66}'..='\u{FF9F}' => {
                any = true
            }
            _ => return false,
        }
    }
    any
}

fn read_patient(
    res: &Value,
    f: Option<usize>,
    provider_id: &str,
    log: &mut Log,
) -> Result<PatientData, String> {
    let sex = patient_sex(res, f, log)?;
    let birth_date = patient_birth_date(res, f, log)?;
    let ids = patient_identifiers(res);
    let names = patient_names(res, f, log);
    let (address, postal_code) = patient_address(res, f, log);
    let death = patient_death(res, f, log);
    let last_updated = res
        .get("meta")
        .and_then(|m| m.get("lastUpdated"))
        .and_then(|d| match parse_fhir_date(d.as_str().unwrap_or("")) {
            FhirDate::Full(d) => Some(d),
            _ => {
                log.warn(f, "meta.lastUpdated is not a valid instant: ignored");
                None
            }
        });
    let identity = IdentityRecord {
        record_id: String::new(),
        provider_id: provider_id.to_string(),
        source_kind: SourceKind::Fhir,
        local_patient_id: ids.local_patient_id,
        surname_kanji: names.kanji.0,
        given_kanji: names.kanji.1,
        surname_kana: names.kana.0,
        given_kana: names.kana.1,
        birth_date,
        sex,
        prefecture: address.prefecture,
        municipality_code: None,
        municipality: address.municipality,
        town: address.town,
        chome: address.chome,
        banchi: address.banchi,
        postal_code,
        insurance_kind: None,
        insurer_number: None,
        insured_symbol: None,
        insured_number: None,
        insured_branch: None,
        recorded_on: NaiveDate::default(),
    };
    Ok(PatientData {
        identity,
        facility: ids.facility,
        member_id: ids.member_id,
        death,
        last_updated,
    })
}

/// Logs an error of the Patient resource and returns its message (the reason it is rejected).
fn patient_error(log: &mut Log, f: Option<usize>, msg: &str) -> String {
    log.error(f, msg);
    msg.to_string()
}

/// `Patient.gender`: other and unknown read as no sex (warned); anything else is an error.
fn patient_sex(res: &Value, f: Option<usize>, log: &mut Log) -> Result<Option<Sex>, String> {
    Ok(match res.get("gender") {
        None | Some(Value::Null) => None,
        Some(Value::String(g)) if g == "male" => Some(Sex::Male),
        Some(Value::String(g)) if g == "female" => Some(Sex::Female),
        Some(Value::String(g)) if g == "other" || g == "unknown" => {
            log.warn(f, "gender is other or unknown: read without sex");
            None
        }
        Some(_) => {
            return Err(patient_error(
                log,
                f,
                "gender is not male, female, other or unknown",
            ))
        }
    })
}

/// `Patient.birthDate`: a partial date reads as none (warned); an invalid one is an error.
fn patient_birth_date(
    res: &Value,
    f: Option<usize>,
    log: &mut Log,
) -> Result<Option<NaiveDate>, String> {
    Ok(match res.get("birthDate") {
        None | Some(Value::Null) => None,
        Some(Value::String(b)) => match parse_fhir_date(b) {
            FhirDate::Full(d) => Some(d),
            FhirDate::Partial => {
                log.warn(
                    f,
                    "birthDate is partial (year or month only): read without it",
                );
                None
            }
            FhirDate::Bad => return Err(patient_error(log, f, "birthDate is not a valid date")),
        },
        Some(_) => return Err(patient_error(log, f, "birthDate is not a valid date")),
    })
}

/// What the identifiers of a Patient give.
struct PatientIds {
    local_patient_id: Option<String>,
    facility: Option<String>,
    member_id: Option<String>,
}

/// `Patient.identifier`: the facility-scoped patient id first, else Tokumei's generic one; the
/// insurance member id.
fn patient_identifiers(res: &Value) -> PatientIds {
    let mut local = None;
    let mut facility = None;
    let mut generic = None;
    let mut member_id = None;
    for id in get_arr(res, "identifier") {
        let system = get_str(id, "system").unwrap_or("");
        let value = nz(get_str(id, "value"));
        if let Some(code) = system.strip_prefix(PATIENT_ID_SYSTEM_PREFIX) {
            if is_digits(code, 10) && local.is_none() && value.is_some() {
                local = value;
                facility = Some(code.to_string());
            }
        } else if system == LOCAL_PATIENT_ID_SYSTEM {
            generic = generic.or(value);
        } else if is_member_id_system(system) {
            member_id = member_id.or(value);
        }
    }
    PatientIds {
        local_patient_id: local.or(generic),
        facility,
        member_id,
    }
}

/// Surname and given name.
type NameParts = (Option<String>, Option<String>);

/// The kanji and kana names of a Patient.
struct PatientNames {
    kanji: NameParts,
    kana: NameParts,
}

/// `Patient.name`: IDE → kanji, SYL → kana (by the characters when unmarked); former names (use old
/// / maiden) only if nothing else.
fn patient_names(res: &Value, f: Option<usize>, log: &mut Log) -> PatientNames {
    let mut kanji: Option<NameParts> = None;
    let mut kana: Option<NameParts> = None;
    let names = get_arr(res, "name");
    let former = |n: &Value| matches!(get_str(n, "use"), Some("old") | Some("maiden"));
    for n in names
        .iter()
        .filter(|n| !former(n))
        .chain(names.iter().filter(|n| former(n)))
    {
        let family = nz(get_str(n, "family"));
        let given = nz(get_arr(n, "given").first().and_then(Value::as_str));
        let parts = if family.is_some() || given.is_some() {
            (family, given)
        } else if let Some(t) = get_str(n, "text") {
            split_name(t)
        } else {
            continue;
        };
        if parts.0.is_none() && parts.1.is_none() {
            continue;
        }
        let rep = extension(n, EN_REPRESENTATION).and_then(|e| get_str(e, "valueCode"));
        let slot = match rep {
            Some("IDE") => &mut kanji,
            Some("SYL") => &mut kana,
            Some("ABC") => continue,
            Some(_) => {
                log.warn(f, "name with an unknown representation: skipped");
                continue;
            }
            None => {
                let all = format!(
                    "{}{}",
                    parts.0.as_deref().unwrap_or(""),
                    parts.1.as_deref().unwrap_or("")
                );
                if is_katakana_name(&all) {
                    &mut kana
                } else {
                    &mut kanji
                }
            }
        };
        if slot.is_none() {
            *slot = Some(parts);
        }
    }
    PatientNames {
        kanji: kanji.unwrap_or((None, None)),
        kana: kana.unwrap_or((None, None)),
    }
}

/// `Patient.address`, the first one: its parts and its postal code.
fn patient_address(res: &Value, f: Option<usize>, log: &mut Log) -> (AddressParts, Option<String>) {
    let mut out = AddressParts::default();
    let mut postal_code = None;
    let Some(a) = get_arr(res, "address").first() else {
        return (out, postal_code);
    };
    out.prefecture = nz(get_str(a, "state"));
    out.municipality = nz(get_str(a, "city"));
    let line: Vec<&str> = get_arr(a, "line")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let line = line.concat();
    let text = get_str(a, "text").unwrap_or("");
    if !line.trim().is_empty() {
        (out.town, out.chome, out.banchi) = town_parts(
            out.prefecture.as_deref(),
            out.municipality.as_deref(),
            &line,
        );
    } else if !text.trim().is_empty() {
        if out.prefecture.is_some() || out.municipality.is_some() {
            (out.town, out.chome, out.banchi) =
                town_parts(out.prefecture.as_deref(), out.municipality.as_deref(), text);
        } else {
            out = parse_address(text);
        }
    }
    if let Some(p) = get_str(a, "postalCode") {
        postal_code = postal_digits(p);
        if postal_code.as_ref().is_some_and(|p| p.len() != 7) {
            log.warn(f, "postalCode is not 7 digits");
        }
    }
    (out, postal_code)
}

/// `Patient.deceasedDateTime`: the death date; a partial or invalid date, or a death without date,
/// gives no death event (reported).
fn patient_death(res: &Value, f: Option<usize>, log: &mut Log) -> Option<NaiveDate> {
    match res.get("deceasedDateTime").and_then(Value::as_str) {
        Some(s) => match parse_fhir_date(s) {
            FhirDate::Full(d) => Some(d),
            FhirDate::Partial => {
                log.warn(f, "deceasedDateTime is partial: no death event");
                None
            }
            FhirDate::Bad => {
                log.error(f, "deceasedDateTime is not a valid date: no death event");
                None
            }
        },
        None => {
            if res.get("deceasedBoolean").and_then(Value::as_bool) == Some(true) {
                log.warn(f, "deceased without a date: no death event");
            }
            None
        }
    }
}

/// 保険者番号, 記号, 番号, 枝番.
#[derive(Default)]
struct Insurance {
    insurer: Option<String>,
    symbol: Option<String>,
    number: Option<String>,
    branch: Option<String>,
}

/// Splits `保険者番号:記号:番号:枝番`; empty parts are absent.
fn member_id_parts(value: &str, f: Option<usize>, log: &mut Log) -> Insurance {
    let parts: Vec<&str> = value.split(':').collect();
    let part = |i: usize| nz(parts.get(i).copied());
    if parts.len() != 4 {
        log.warn(
            f,
            "JP_Insurance_memberID does not have 4 parts: only the insurer number is read",
        );
        return Insurance {
            insurer: part(0).filter(|p| p.bytes().all(|b| b.is_ascii_digit())),
            ..Insurance::default()
        };
    }
    Insurance {
        insurer: part(0),
        symbol: part(1),
        number: part(2),
        branch: part(3),
    }
}

fn org_insurer(doc: &Doc<'_>, payor: &Value) -> Option<String> {
    let from_identifier = |i: &Value| {
        let system = get_str(i, "system").unwrap_or("");
        if system == INSURER_NUMBER_SYSTEM || system == INSURER_NUMBER_OID {
            nz(get_str(i, "value"))
        } else {
            None
        }
    };
    if let Some(v) = payor.get("identifier").and_then(from_identifier) {
        return Some(v);
    }
    let r = get_str(payor, "reference")?;
    let org = doc.resolve(&doc.organizations, r)?;
    get_arr(org.res, "identifier")
        .iter()
        .find_map(from_identifier)
}

fn is_public_payer(payor: &Value) -> bool {
    payor
        .get("identifier")
        .and_then(|i| get_str(i, "system"))
        .is_some_and(|s| PUBLIC_PAYER_SYSTEMS.contains(&s))
}

fn read_coverage(res: &Value, f: Option<usize>, doc: &Doc<'_>, log: &mut Log) -> Insurance {
    let mut member = Insurance::default();
    for id in get_arr(res, "identifier") {
        if is_member_id_system(get_str(id, "system").unwrap_or("")) {
            if let Some(v) = get_str(id, "value") {
                member = member_id_parts(v, f, log);
                break;
            }
        }
    }
    let payor = get_arr(res, "payor")
        .iter()
        .find_map(|p| org_insurer(doc, p));
    let subscriber: Vec<&str> = get_str(res, "subscriberId")
        .map(|s| s.split(':').collect())
        .unwrap_or_default();
    let sub = |i: usize| {
        if subscriber.len() == 2 {
            nz(subscriber.get(i).copied())
        } else {
            None
        }
    };
    let ext_symbol = ext_string(res, INSURED_SYMBOL_EXTENSION);
    let ext_number = ext_string(res, INSURED_NUMBER_EXTENSION);
    let ext_branch = ext_string(res, INSURED_SUBNUMBER_EXTENSION);
    let disagree = |a: &Option<String>, b: &Option<String>| a.is_some() && b.is_some() && a != b;
    if disagree(&ext_symbol, &member.symbol)
        || disagree(&ext_number, &member.number)
        || disagree(&ext_branch, &member.branch)
        || disagree(&payor, &member.insurer)
    {
        log.warn(
            f,
            "Coverage extensions, payor and JP_Insurance_memberID disagree: the extensions and payor are read",
        );
    }
    Insurance {
        insurer: payor.or(member.insurer),
        symbol: ext_symbol.or(member.symbol).or_else(|| sub(0)),
        number: ext_number.or(member.number).or_else(|| sub(1)),
        branch: ext_branch
            .or(member.branch)
            .or_else(|| nz(get_str(res, "dependent"))),
    }
}

/// Picks the Coverage in force: one without `period.end` (the latest start among them), else the one
/// that ended last. Entered-in-error Coverages and 公費 (public payer) Coverages are not considered.
fn pick_coverage(entries: &[Entry<'_>], own: &[usize]) -> Option<usize> {
    // (no end, end, start): the greatest key wins, the first entry on a tie.
    type Key = (bool, Option<NaiveDate>, Option<NaiveDate>);
    let mut best: Option<(usize, Key)> = None;
    for &i in own {
        let Some(e) = entries.get(i) else { continue };
        if e.kind != "Coverage" || get_str(e.res, "status") == Some("entered-in-error") {
            continue;
        }
        if get_arr(e.res, "payor").iter().any(is_public_payer) {
            continue;
        }
        let period = e.res.get("period");
        let end = period.and_then(|p| full_date(p.get("end")));
        let start = period.and_then(|p| full_date(p.get("start")));
        let key = (end.is_none(), end, start);
        if best.as_ref().is_none_or(|(_, k)| key > *k) {
            best = Some((i, key));
        }
    }
    best.map(|(i, _)| i)
}

fn class_code(res: &Value) -> Option<&str> {
    let c = res.get("class")?;
    let c = match c {
        Value::Array(a) => a.first()?,
        other => other,
    };
    get_str(c, "code").or_else(|| {
        get_arr(c, "coding")
            .first()
            .and_then(|k| get_str(k, "code"))
    })
}

/// The 医療機関コード of an Encounter's service provider (its identifier, or the identifier of the
/// Organization it refers to).
fn service_provider(res: &Value, doc: &Doc<'_>) -> Option<String> {
    let sp = res.get("serviceProvider")?;
    let pick = |i: &Value| {
        let system = get_str(i, "system").unwrap_or("");
        let value = nz(get_str(i, "value"))?;
        (system == MEDICAL_INSTITUTION_SYSTEM
            || system == MEDICAL_INSTITUTION_SYSTEM_ALT
            || is_digits(&value, 10))
        .then_some(value)
    };
    if let Some(v) = sp.get("identifier").and_then(pick) {
        return Some(v);
    }
    let r = get_str(sp, "reference")?;
    let org = doc.resolve(&doc.organizations, r)?;
    get_arr(org.res, "identifier").iter().find_map(pick)
}

fn read_encounter(
    res: &Value,
    f: Option<usize>,
    doc: &Doc<'_>,
    patient_facility: Option<&str>,
    log: &mut Log,
) -> Option<Encounter> {
    let period = res.get("period");
    let Some(start) = period.and_then(|p| full_date(p.get("start"))) else {
        log.error(
            f,
            "Encounter period.start is missing or not a full date: not read",
        );
        return None;
    };
    let end = match period.and_then(|p| p.get("end")) {
        None | Some(Value::Null) => start,
        Some(v) => match parse_fhir_date(v.as_str().unwrap_or("")) {
            FhirDate::Full(d) => d,
            _ => {
                log.error(f, "Encounter period.end is not a full date: not read");
                return None;
            }
        },
    };
    if end < start {
        log.warn(f, "Encounter ends before it starts");
    }
    let setting = match class_code(res) {
        Some("AMB") => Setting::Outpatient,
        Some("IMP") => Setting::Inpatient,
        _ => {
            log.warn(
                f,
                "Encounter class is neither AMB nor IMP: read as outpatient",
            );
            Setting::Outpatient
        }
    };
    let facility_code = match service_provider(res, doc) {
        Some(code) => {
            if !is_digits(&code, 10) {
                log.warn(f, "Encounter service provider code is not 10 digits");
            }
            code
        }
        None => match patient_facility {
            Some(p) => p.to_string(),
            None => {
                log.warn(f, "Encounter has no facility code");
                String::new()
            }
        },
    };
    let department = res.get("serviceType").and_then(|st| {
        nz(get_str(st, "text")).or_else(|| {
            nz(get_arr(st, "coding")
                .first()
                .and_then(|c| get_str(c, "display")))
        })
    });
    Some(Encounter {
        event_id: String::new(),
        record_id: String::new(),
        facility_code,
        setting,
        department,
        start_date: start,
        end_date: end,
    })
}

/// A code picked from a CodeableConcept: system, code, and the display of that coding.
struct Picked {
    system: CodeSystem,
    code: String,
    display: Option<String>,
    name: Option<String>,
    icd10: Option<String>,
}

/// Picks the code of a CodeableConcept (see the module notes). `None` (after an error) if no coding has
/// a code.
fn pick_code(cc: Option<&Value>, f: Option<usize>, what: &str, log: &mut Log) -> Option<Picked> {
    let codings: Vec<(&str, String, Option<String>)> = cc
        .map(|c| get_arr(c, "coding"))
        .unwrap_or(&[])
        .iter()
        .filter_map(|c| {
            let code = nz(get_str(c, "code"))?;
            Some((
                get_str(c, "system").unwrap_or(""),
                code,
                nz(get_str(c, "display")),
            ))
        })
        .collect();
    let icd10 = codings
        .iter()
        .find(|(s, _, _)| code_system_of(s) == Some(CodeSystem::Icd10))
        .map(|(_, c, _)| c.clone());
    let name = cc.and_then(|c| nz(get_str(c, "text")));
    let known = codings
        .iter()
        .find_map(|(s, c, d)| code_system_of(s).map(|cs| (cs, c, d)));
    let (system, code, display) = match known {
        Some((cs, c, d)) => (cs, c.clone(), d.clone()),
        None => match codings.first() {
            Some((_, c, d)) => {
                log.warn(
                    f,
                    format!(
                        "{what} code system has no canonical counterpart: kept as a local code"
                    ),
                );
                (CodeSystem::Local, c.clone(), d.clone())
            }
            None => {
                log.error(f, format!("{what} has no code: not read"));
                return None;
            }
        },
    };
    Some(Picked {
        system,
        code,
        display,
        name,
        icd10,
    })
}

/// The date of a clinical resource: the first of `keys` present (a `…Period` key gives its start).
fn event_date(
    res: &Value,
    keys: &[&str],
    f: Option<usize>,
    what: &str,
    log: &mut Log,
) -> Option<NaiveDate> {
    for k in keys {
        let v = match res.get(*k) {
            None | Some(Value::Null) => continue,
            Some(v) if k.ends_with("Period") => match v.get("start") {
                Some(s) => s,
                None => continue,
            },
            Some(v) => v,
        };
        return match parse_fhir_date(v.as_str().unwrap_or("")) {
            FhirDate::Full(d) => Some(d),
            FhirDate::Partial => {
                log.error(f, format!("{what} date is partial: not read"));
                None
            }
            FhirDate::Bad => {
                log.error(f, format!("{what} date is not a valid date: not read"));
                None
            }
        };
    }
    log.error(f, format!("{what} has no date: not read"));
    None
}

/// Index (as a string) of the Encounter an event refers to, among the record's Encounters.
fn encounter_id(
    res: &Value,
    f: Option<usize>,
    encounters: &RefIndex,
    log: &mut Log,
) -> Option<String> {
    let r = res.get("encounter").and_then(|e| get_str(e, "reference"))?;
    let found = encounters.find(r);
    if found.is_none() {
        log.warn(
            f,
            "encounter reference does not resolve to an Encounter of this patient: read without it",
        );
    }
    found.map(|i| i.to_string())
}

fn first_code(cc: Option<&Value>) -> Option<&str> {
    cc.and_then(|c| get_arr(c, "coding").first())
        .and_then(|c| get_str(c, "code"))
}

fn read_condition(
    res: &Value,
    f: Option<usize>,
    encounters: &RefIndex,
    log: &mut Log,
) -> Option<Diagnosis> {
    let verification = first_code(res.get("verificationStatus"));
    if matches!(verification, Some("entered-in-error") | Some("refuted")) {
        log.warn(f, "Condition is refuted or entered in error: not read");
        return None;
    }
    let picked = pick_code(res.get("code"), f, "Condition", log)?;
    let date = event_date(
        res,
        &["onsetDateTime", "onsetPeriod", "recordedDate"],
        f,
        "Condition",
        log,
    )?;
    let suspected = matches!(
        verification,
        Some("provisional") | Some("unconfirmed") | Some("differential")
    );
    let outcome = match first_code(res.get("clinicalStatus")) {
        None | Some("active") | Some("recurrence") | Some("relapse") => None,
        Some("resolved") | Some("remission") => Some(DiagnosisOutcome::Cured),
        Some("inactive") => Some(inactive_outcome(res, f, log)),
        Some(_) => {
            log.warn(
                f,
                "Condition clinicalStatus not recognised: read without outcome",
            );
            None
        }
    };
    let outcome_date = match (outcome, res.get("abatementDateTime")) {
        (_, None) => None,
        (None, Some(_)) => {
            log.warn(
                f,
                "abatementDateTime on a Condition without an ended status: ignored",
            );
            None
        }
        (Some(_), Some(v)) => match parse_fhir_date(v.as_str().unwrap_or("")) {
            FhirDate::Full(d) => Some(d),
            _ => {
                log.warn(f, "abatementDateTime is not a full date: ignored");
                None
            }
        },
    };
    Some(Diagnosis {
        event_id: String::new(),
        record_id: String::new(),
        encounter_id: encounter_id(res, f, encounters, log),
        date,
        code_system: picked.system,
        icd10: crate::diagnosis_icd10(picked.system, &picked.code, picked.icd10),
        code: picked.code,
        name: picked.name.or(picked.display),
        suspected,
        outcome,
        outcome_date,
    })
}

/// Died or stopped for an inactive Condition: Tokumei's extension, else a note, else stopped (warned).
fn inactive_outcome(res: &Value, f: Option<usize>, log: &mut Log) -> DiagnosisOutcome {
    match extension(res, CONDITION_OUTCOME_EXTENSION).and_then(|e| get_str(e, "valueCode")) {
        Some("died") => return DiagnosisOutcome::Died,
        Some("stopped") | Some("transferred") => return DiagnosisOutcome::Stopped,
        Some(_) => log.warn(f, "Condition outcome extension has an unknown code"),
        None => {}
    }
    let notes: String = get_arr(res, "note")
        .iter()
        .filter_map(|n| get_str(n, "text"))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    if notes.contains("死亡") || notes.contains("died") {
        return DiagnosisOutcome::Died;
    }
    if ["中止", "転医", "stopped", "transferred"]
        .iter()
        .any(|k| notes.contains(k))
    {
        return DiagnosisOutcome::Stopped;
    }
    log.warn(
        f,
        "inactive Condition without outcome detail: read as stopped",
    );
    DiagnosisOutcome::Stopped
}

/// A number of a Quantity: `Some(None)` if absent, `None` (after a warning) if not a number.
fn quantity_value(q: &Value, f: Option<usize>, log: &mut Log) -> Option<f64> {
    match q.get("value") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let x = v.as_f64();
            if x.is_none() {
                log.warn(f, "Quantity value is not a number: ignored");
            }
            x
        }
    }
}

fn quantity_unit(q: &Value) -> Option<String> {
    nz(get_str(q, "unit")).or_else(|| nz(get_str(q, "code")))
}

fn medication_concept<'a>(res: &'a Value, doc: &'a Doc<'_>) -> Option<&'a Value> {
    if let Some(cc) = res.get("medicationCodeableConcept") {
        return Some(cc);
    }
    let r = res
        .get("medicationReference")
        .and_then(|m| get_str(m, "reference"))?;
    doc.resolve(&doc.medications, r)
        .and_then(|e| e.res.get("code"))
}

fn read_medication(
    res: &Value,
    f: Option<usize>,
    doc: &Doc<'_>,
    encounters: &RefIndex,
    log: &mut Log,
) -> Option<Prescription> {
    let picked = pick_code(medication_concept(res, doc), f, "MedicationRequest", log)?;
    let date = event_date(res, &["authoredOn"], f, "MedicationRequest", log)?;
    let dose = get_arr(res, "dosageInstruction")
        .first()
        .and_then(|d| get_arr(d, "doseAndRate").first())
        .and_then(|d| d.get("doseQuantity"));
    let daily_quantity = dose.and_then(|q| quantity_value(q, f, log));
    let unit = dose.and_then(quantity_unit);
    let supply = res
        .get("dispenseRequest")
        .and_then(|d| d.get("expectedSupplyDuration"));
    let days = supply.and_then(|s| {
        let unit_ok = get_str(s, "code") == Some("d")
            || matches!(get_str(s, "unit"), Some("d" | "day" | "days" | "日"));
        if !unit_ok {
            log.warn(f, "expectedSupplyDuration is not in days: read as days");
        }
        let v = s.get("value")?;
        let n = v
            .as_i64()
            .or_else(|| v.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64))
            .and_then(|n| i32::try_from(n).ok());
        if n.is_none() {
            log.warn(
                f,
                "expectedSupplyDuration value is not a whole number: ignored",
            );
        }
        n
    });
    Some(Prescription {
        event_id: String::new(),
        record_id: String::new(),
        encounter_id: encounter_id(res, f, encounters, log),
        date,
        code_system: picked.system,
        code: picked.code,
        name: picked.name.or(picked.display),
        daily_quantity,
        unit,
        days,
    })
}

fn read_observation(
    res: &Value,
    f: Option<usize>,
    encounters: &RefIndex,
    log: &mut Log,
) -> Option<LabResult> {
    let picked = pick_code(res.get("code"), f, "Observation", log)?;
    let date = event_date(
        res,
        &[
            "effectiveDateTime",
            "effectivePeriod",
            "effectiveInstant",
            "issued",
        ],
        f,
        "Observation",
        log,
    )?;
    let (mut value_num, mut value_text, mut unit) = (None, None, None);
    if let Some(q) = res.get("valueQuantity") {
        value_num = quantity_value(q, f, log);
        unit = quantity_unit(q);
    } else if let Some(s) = res.get("valueString") {
        value_text = nz(s.as_str());
    } else if let Some(cc) = res.get("valueCodeableConcept") {
        value_text = nz(first_code(Some(cc))).or_else(|| nz(get_str(cc, "text")));
    } else if let Some(n) = res.get("valueInteger") {
        value_num = n.as_f64();
    } else if let Some(b) = res.get("valueBoolean").and_then(Value::as_bool) {
        value_text = Some(b.to_string());
    }
    Some(LabResult {
        event_id: String::new(),
        record_id: String::new(),
        encounter_id: encounter_id(res, f, encounters, log),
        date,
        code_system: picked.system,
        code: picked.code,
        name: picked.name.or(picked.display),
        value_num,
        value_text,
        unit,
    })
}

fn read_procedure(
    res: &Value,
    f: Option<usize>,
    encounters: &RefIndex,
    log: &mut Log,
) -> Option<Procedure> {
    let picked = pick_code(res.get("code"), f, "Procedure", log)?;
    let date = event_date(
        res,
        &["performedDateTime", "performedPeriod"],
        f,
        "Procedure",
        log,
    )?;
    let count = match extension(res, PROCEDURE_COUNT_EXTENSION) {
        None => 1,
        Some(e) => match e
            .get("valueInteger")
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
        {
            Some(n) => n,
            None => {
                log.warn(f, "procedure count extension is not an integer: count 1");
                1
            }
        },
    };
    Some(Procedure {
        event_id: String::new(),
        record_id: String::new(),
        encounter_id: encounter_id(res, f, encounters, log),
        date,
        code_system: picked.system,
        code: picked.code,
        name: picked.name.or(picked.display),
        points: None,
        count,
    })
}

fn is_entered_in_error(res: &Value) -> bool {
    get_str(res, "status") == Some("entered-in-error")
}

/// Builds the record of the Patient at entry `p` with the entries it owns. `Err` (after an error in
/// `log`) rejects the record.
fn build_record(
    document: &Value,
    doc: &Doc<'_>,
    p: usize,
    own: &[usize],
    provider_id: &str,
    log: &mut Log,
) -> Result<SourceRecord, String> {
    let entries = &doc.entries;
    let pe = entries
        .get(p)
        .ok_or_else(|| "internal: patient entry missing".to_string())?;
    let f = pe.field;
    let pd = read_patient(pe.res, f, provider_id, log)?;
    let mut identity = pd.identity;
    // Insurance: the Coverage in force, else a JP_Insurance_memberID in Patient.identifier.
    let ins = match pick_coverage(entries, own).and_then(|i| entries.get(i)) {
        Some(c) => read_coverage(c.res, c.field, doc, log),
        None => match &pd.member_id {
            Some(m) => member_id_parts(m, f, log),
            None => Insurance::default(),
        },
    };
    set_insurance(&mut identity, ins, f, log);
    let mut events = owned_events(doc, own, pd.facility.as_deref(), log);
    if let Some(date) = pd.death {
        events.deaths.push(Death {
            event_id: String::new(),
            record_id: String::new(),
            date,
            recorded_on: None,
        });
    }
    let recorded_on = pd
        .last_updated
        .or_else(|| bundle_date(document))
        .or_else(|| events.encounters.iter().map(|e| e.start_date).max())
        .or_else(|| latest_event(&events));
    identity.recorded_on = match (recorded_on, identity.birth_date) {
        (Some(d), _) => d,
        (None, Some(b)) => {
            log.warn(
                f,
                "no meta.lastUpdated, Bundle.timestamp or event date: recorded_on set to the birth date",
            );
            b
        }
        (None, None) => {
            let msg = "no date to anchor the record (meta.lastUpdated, Bundle.timestamp, events, birthDate)";
            log.error(f, msg);
            return Err(msg.to_string());
        }
    };
    Ok(SourceRecord { identity, events })
}

/// Puts the insurance read for a Patient on its identity, when it has an insurer number.
fn set_insurance(identity: &mut IdentityRecord, ins: Insurance, f: Option<usize>, log: &mut Log) {
    let Some(raw) = ins.insurer.as_deref() else {
        return;
    };
    let (insurer, unpadded) = normalise_insurer(raw);
    if unpadded {
        log.warn(
            f,
            "8-digit insurer number starting with 00 read as a 6-digit number",
        );
    }
    if !insurer.is_empty() {
        if !insurer_number_is_valid(&insurer) {
            log.warn(f, "insurer number check digit does not match");
        }
        identity.insurance_kind = insurance_kind(&insurer);
        identity.insurer_number = Some(insurer);
        identity.insured_symbol = ins.symbol;
        identity.insured_number = ins.number;
        identity.insured_branch = ins.branch;
    }
}

/// The events of the entries a Patient owns: Encounters first (events refer to them), then
/// Conditions, MedicationRequests, Observations and Procedures; entries in error are not read.
fn owned_events(doc: &Doc<'_>, own: &[usize], facility: Option<&str>, log: &mut Log) -> EventSet {
    let entries = &doc.entries;
    let mut events = EventSet::default();
    let of_kind = |kind: &'static str| {
        own.iter()
            .copied()
            .filter(move |&i| entries.get(i).is_some_and(|e| e.kind == kind))
    };
    let mut encs = RefIndex::new("Encounter");
    for i in of_kind("Encounter") {
        let Some(e) = entries.get(i) else { continue };
        if is_entered_in_error(e.res) {
            log.warn(e.field, "Encounter entered in error: not read");
            continue;
        }
        if let Some(enc) = read_encounter(e.res, e.field, doc, facility, log) {
            encs.add(e, events.encounters.len());
            events.encounters.push(enc);
        }
    }
    for (kind, what) in [
        ("Condition", 0u8),
        ("MedicationRequest", 1),
        ("Observation", 2),
        ("Procedure", 3),
    ] {
        for i in of_kind(kind) {
            let Some(e) = entries.get(i) else { continue };
            if is_entered_in_error(e.res) {
                log.warn(e.field, format!("{kind} entered in error: not read"));
                continue;
            }
            match what {
                0 => events
                    .diagnoses
                    .extend(read_condition(e.res, e.field, &encs, log)),
                1 => events
                    .prescriptions
                    .extend(read_medication(e.res, e.field, doc, &encs, log)),
                2 => events
                    .lab_results
                    .extend(read_observation(e.res, e.field, &encs, log)),
                _ => events
                    .procedures
                    .extend(read_procedure(e.res, e.field, &encs, log)),
            }
        }
    }
    events
}

/// The date of a Bundle document: `timestamp`, else `meta.lastUpdated`.
fn bundle_date(document: &Value) -> Option<NaiveDate> {
    if get_str(document, "resourceType") == Some("Bundle") {
        full_date(document.get("timestamp"))
            .or_else(|| full_date(document.get("meta").and_then(|m| m.get("lastUpdated"))))
    } else {
        None
    }
}

/// The latest date of the events other than encounters.
fn latest_event(events: &EventSet) -> Option<NaiveDate> {
    events
        .diagnoses
        .iter()
        .map(|d| d.date)
        .chain(events.prescriptions.iter().map(|x| x.date))
        .chain(events.lab_results.iter().map(|x| x.date))
        .chain(events.procedures.iter().map(|x| x.date))
        .chain(events.deaths.iter().map(|x| x.date))
        .max()
}

// ---------------------------------------------------------------------------------------------
// Canonical form

/// Index of the Encounter an event's `encounter_id` names: an Encounter's `event_id`, else an index.
fn encounter_index(encounters: &[Encounter], id: &Option<String>) -> Option<usize> {
    let id = id.as_deref().filter(|s| !s.is_empty())?;
    if let Some(i) = encounters.iter().position(|e| e.event_id == id) {
        return Some(i);
    }
    id.parse::<usize>().ok().filter(|&i| i < encounters.len())
}

/// The facility the writer puts in the Patient identifier: the first encounter's, if 10 digits.
fn patient_facility(r: &SourceRecord) -> Option<String> {
    r.events
        .encounters
        .first()
        .map(|e| e.facility_code.clone())
        .filter(|c| is_digits(c, 10))
}

/// The canonical record as a JP Core bundle carries it: what `read(write_bundle(r))` gives back.
///
/// Ids are empty and `source_kind` is Fhir; `provider_id` is kept (the reader stores the one it is
/// given). Empty strings become absent. `municipality_code` is dropped; 町名 / 丁目 / 番地 are what the
/// reader makes of the written address line; the postal code keeps its digits. Insurance fields are
/// dropped without an insurer number; the insurer number is trimmed, half-width and unpadded (`00` +
/// 6 digits), and the insurance kind follows from it. `recorded_on` is kept (written in
/// `meta.lastUpdated`). Encounters: checkups become outpatient, an empty facility code becomes the
/// Patient identifier's facility (see [`write_bundle`]). Events: `encounter_id` becomes the index of the
/// encounter it names (by `event_id` or index) or is dropped; a diagnosis coded in ICD-10 has its code as
/// `icd10`, one coded with a 傷病名コード and no ICD-10 the 傷病名マスター's; the Continuing outcome is
/// dropped, and the outcome date without an outcome; procedure points are dropped; floats go through
/// their JSON spelling (NaN and infinities dropped); a lab value carries either a number (with its
/// unit) or a text (without unit). Only the first death is kept, without its `recorded_on`.
pub fn canonicalize(r: &SourceRecord) -> SourceRecord {
    let id = canonical_identity(&r.identity);
    let ev = &r.events;
    let facility = id
        .local_patient_id
        .as_ref()
        .and_then(|_| patient_facility(r))
        .unwrap_or_default();
    let enc_id = |e: &Option<String>| encounter_index(&ev.encounters, e).map(|i| i.to_string());
    let mut out = EventSet::default();
    for e in &ev.encounters {
        out.encounters.push(canonical_encounter(e, &facility));
    }
    for d in &ev.diagnoses {
        out.diagnoses
            .push(canonical_diagnosis(d, enc_id(&d.encounter_id)));
    }
    for p in &ev.prescriptions {
        out.prescriptions.push(Prescription {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: enc_id(&p.encounter_id),
            date: p.date,
            code_system: p.code_system,
            code: p.code.clone(),
            name: nz_owned(&p.name),
            daily_quantity: canon_f64(p.daily_quantity),
            unit: nz_owned(&p.unit),
            days: p.days,
        });
    }
    for l in &ev.lab_results {
        out.lab_results
            .push(canonical_lab_result(l, enc_id(&l.encounter_id)));
    }
    for p in &ev.procedures {
        out.procedures.push(Procedure {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: enc_id(&p.encounter_id),
            date: p.date,
            code_system: p.code_system,
            code: p.code.clone(),
            name: nz_owned(&p.name),
            points: None,
            count: p.count,
        });
    }
    if let Some(d) = ev.deaths.first() {
        out.deaths.push(Death {
            event_id: String::new(),
            record_id: String::new(),
            date: d.date,
            recorded_on: None,
        });
    }
    SourceRecord {
        identity: id,
        events: out,
    }
}

/// The identity as a JP Core bundle carries it (see [`canonicalize`]).
fn canonical_identity(identity: &IdentityRecord) -> IdentityRecord {
    let mut id = identity.clone();
    id.record_id = String::new();
    id.source_kind = SourceKind::Fhir;
    for s in [
        &mut id.local_patient_id,
        &mut id.surname_kanji,
        &mut id.given_kanji,
        &mut id.surname_kana,
        &mut id.given_kana,
        &mut id.prefecture,
        &mut id.municipality,
        &mut id.town,
        &mut id.chome,
        &mut id.banchi,
        &mut id.insurer_number,
        &mut id.insured_symbol,
        &mut id.insured_number,
        &mut id.insured_branch,
    ] {
        *s = nz_owned(s);
    }
    id.municipality_code = None;
    (id.town, id.chome, id.banchi) = match address_tail(&id) {
        Some(tail) => town_parts(id.prefecture.as_deref(), id.municipality.as_deref(), &tail),
        None => (None, None, None),
    };
    id.postal_code = id.postal_code.as_deref().and_then(postal_digits);
    let insurer = id
        .insurer_number
        .as_deref()
        .map(|i| normalise_insurer(i).0)
        .filter(|i| !i.is_empty());
    match insurer {
        Some(i) => {
            id.insurance_kind = insurance_kind(&i);
            id.insurer_number = Some(i);
        }
        None => {
            id.insurance_kind = None;
            id.insurer_number = None;
            id.insured_symbol = None;
            id.insured_number = None;
            id.insured_branch = None;
        }
    }
    id
}

/// An encounter as a bundle carries it: checkups become outpatient, an empty facility code becomes
/// `facility`.
fn canonical_encounter(e: &Encounter, facility: &str) -> Encounter {
    Encounter {
        event_id: String::new(),
        record_id: String::new(),
        facility_code: if e.facility_code.is_empty() {
            facility.to_string()
        } else {
            e.facility_code.clone()
        },
        setting: match e.setting {
            Setting::Inpatient => Setting::Inpatient,
            Setting::Outpatient | Setting::Checkup => Setting::Outpatient,
        },
        department: nz_owned(&e.department),
        start_date: e.start_date,
        end_date: e.end_date,
    }
}

/// A diagnosis as a Condition carries it, referring to the canonical encounter `encounter_id`.
fn canonical_diagnosis(d: &Diagnosis, encounter_id: Option<String>) -> Diagnosis {
    let outcome = d.outcome.filter(|o| *o != DiagnosisOutcome::Continuing);
    Diagnosis {
        event_id: String::new(),
        record_id: String::new(),
        encounter_id,
        date: d.date,
        code_system: d.code_system,
        code: d.code.clone(),
        icd10: if d.code_system == CodeSystem::Icd10 {
            Some(d.code.clone())
        } else {
            crate::diagnosis_icd10(d.code_system, &d.code, nz_owned(&d.icd10))
        },
        name: nz_owned(&d.name),
        suspected: d.suspected,
        outcome,
        outcome_date: outcome.and(d.outcome_date),
    }
}

/// A lab result as an Observation carries it (a number with its unit, or a text without), referring
/// to the canonical encounter `encounter_id`.
fn canonical_lab_result(l: &LabResult, encounter_id: Option<String>) -> LabResult {
    let value_num = canon_f64(l.value_num);
    let text = nz_owned(&l.value_text);
    let (value_text, unit) = if value_num.is_some() {
        (None, nz_owned(&l.unit))
    } else if text.is_some() {
        (text, None)
    } else {
        (None, nz_owned(&l.unit))
    };
    LabResult {
        event_id: String::new(),
        record_id: String::new(),
        encounter_id,
        date: l.date,
        code_system: l.code_system,
        code: l.code.clone(),
        name: nz_owned(&l.name),
        value_num,
        value_text,
        unit,
    }
}

// ---------------------------------------------------------------------------------------------
// Writer

/// A JSON value with keys in writing order and numbers already spelled.
enum J {
    S(String),
    N(String),
    A(Vec<J>),
    O(Vec<(&'static str, J)>),
}

fn js(s: impl Into<String>) -> J {
    J::S(s.into())
}

fn escape(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn emit(j: &J, out: &mut String) {
    match j {
        J::S(s) => escape(s, out),
        J::N(n) => out.push_str(n),
        J::A(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                emit(x, out);
            }
            out.push(']');
        }
        J::O(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                escape(k, out);
                out.push(':');
                emit(v, out);
            }
            out.push('}');
        }
    }
}

fn date_str(d: NaiveDate, what: &'static str) -> Result<String, FormatError> {
    use chrono::Datelike;
    if !(1..=9999).contains(&d.year()) {
        return Err(FormatError::Unrepresentable {
            what,
            reason: "year outside 0001-9999".into(),
        });
    }
    Ok(d.format("%Y-%m-%d").to_string())
}

fn non_empty_code(code: &str, what: &'static str) -> Result<(), FormatError> {
    if code.is_empty() {
        return Err(FormatError::Unrepresentable {
            what,
            reason: "code is empty".into(),
        });
    }
    Ok(())
}

fn profile(name: &str) -> J {
    J::O(vec![(
        "profile",
        J::A(vec![js(format!("{PROFILE_BASE}{name}"))]),
    )])
}

fn reference(url: &str) -> J {
    J::O(vec![("reference", js(url))])
}

fn coding(system: &str, code: &str) -> J {
    J::O(vec![("system", js(system)), ("code", js(code))])
}

fn concept(codings: Vec<J>, text: &Option<String>) -> J {
    let mut o = vec![("coding", J::A(codings))];
    if let Some(t) = text {
        o.push(("text", js(t.clone())));
    }
    J::O(o)
}

fn ext(url: &str, key: &'static str, value: J) -> J {
    J::O(vec![("url", js(url)), (key, value)])
}

fn name_entry(rep: &str, surname: &Option<String>, given: &Option<String>) -> Option<J> {
    if surname.is_none() && given.is_none() {
        return None;
    }
    let mut o = vec![
        (
            "extension",
            J::A(vec![ext(EN_REPRESENTATION, "valueCode", js(rep))]),
        ),
        ("use", js("official")),
    ];
    if let Some(s) = surname {
        let text = match given {
            Some(g) => format!("{s} {g}"),
            None => s.clone(),
        };
        o.push(("text", js(text)));
        o.push(("family", js(s.clone())));
    }
    if let Some(g) = given {
        o.push(("given", J::A(vec![js(g.clone())])));
    }
    Some(J::O(o))
}

fn patient_json(c: &SourceRecord, original: &SourceRecord) -> Result<J, FormatError> {
    let id = &c.identity;
    let last_updated = format!(
        "{}T00:00:00+09:00",
        date_str(id.recorded_on, "recorded_on")?
    );
    let mut meta = vec![("lastUpdated", js(last_updated))];
    if let J::O(p) = profile("JP_Patient") {
        meta.extend(p);
    }
    let mut o = vec![("resourceType", js("Patient")), ("meta", J::O(meta))];
    if let Some(local) = &id.local_patient_id {
        let system = match patient_facility(original) {
            Some(f) => format!("{PATIENT_ID_SYSTEM_PREFIX}{f}"),
            None => LOCAL_PATIENT_ID_SYSTEM.to_string(),
        };
        o.push((
            "identifier",
            J::A(vec![J::O(vec![
                ("system", js(system)),
                ("value", js(local.clone())),
            ])]),
        ));
    }
    let names: Vec<J> = [
        name_entry("IDE", &id.surname_kanji, &id.given_kanji),
        name_entry("SYL", &id.surname_kana, &id.given_kana),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !names.is_empty() {
        o.push(("name", J::A(names)));
    }
    if let Some(s) = id.sex {
        o.push((
            "gender",
            js(match s {
                Sex::Male => "male",
                Sex::Female => "female",
            }),
        ));
    }
    if let Some(b) = id.birth_date {
        o.push(("birthDate", js(date_str(b, "birth_date")?)));
    }
    if let Some(d) = c.events.deaths.first() {
        o.push(("deceasedDateTime", js(date_str(d.date, "death date")?)));
    }
    // The address line is written from the original parts: the canonical ones are what it reads as.
    let mut orig = original.identity.clone();
    orig.town = nz_owned(&orig.town);
    orig.chome = nz_owned(&orig.chome);
    orig.banchi = nz_owned(&orig.banchi);
    let tail = address_tail(&orig);
    let mut a = Vec::new();
    if let Some(t) = &tail {
        let full = format!(
            "{}{}{t}",
            id.prefecture.as_deref().unwrap_or(""),
            id.municipality.as_deref().unwrap_or("")
        );
        a.push(("text", js(full)));
        a.push(("line", J::A(vec![js(t.clone())])));
    }
    if let Some(m) = &id.municipality {
        a.push(("city", js(m.clone())));
    }
    if let Some(p) = &id.prefecture {
        a.push(("state", js(p.clone())));
    }
    if let Some(p) = &id.postal_code {
        let written = match (p.get(..3), p.get(3..)) {
            (Some(x), Some(y)) if p.len() == 7 => format!("{x}-{y}"),
            _ => p.clone(),
        };
        a.push(("postalCode", js(written)));
    }
    if !a.is_empty() {
        a.push(("country", js("JP")));
        o.push(("address", J::A(vec![J::O(a)])));
    }
    Ok(J::O(o))
}

fn coverage_json(id: &IdentityRecord, insurer: &str, patient_url: &str) -> J {
    let mut exts = Vec::new();
    for (url, v) in [
        (INSURED_SYMBOL_EXTENSION, &id.insured_symbol),
        (INSURED_NUMBER_EXTENSION, &id.insured_number),
        (INSURED_SUBNUMBER_EXTENSION, &id.insured_branch),
    ] {
        if let Some(v) = v {
            exts.push(ext(url, "valueString", js(v.clone())));
        }
    }
    let part = |v: &Option<String>| v.clone().unwrap_or_default();
    let member = format!(
        "{insurer}:{}:{}:{}",
        part(&id.insured_symbol),
        part(&id.insured_number),
        part(&id.insured_branch)
    );
    let mut o = vec![
        ("resourceType", js("Coverage")),
        ("meta", profile("JP_Coverage")),
    ];
    if !exts.is_empty() {
        o.push(("extension", J::A(exts)));
    }
    o.push((
        "identifier",
        J::A(vec![J::O(vec![
            ("system", js(INSURANCE_MEMBER_ID_SYSTEM)),
            ("value", js(member)),
        ])]),
    ));
    o.push(("status", js("active")));
    if id.insured_symbol.is_some() || id.insured_number.is_some() {
        o.push((
            "subscriberId",
            js(format!(
                "{}:{}",
                part(&id.insured_symbol),
                part(&id.insured_number)
            )),
        ));
    }
    if let Some(b) = &id.insured_branch {
        o.push(("dependent", js(b.clone())));
    }
    o.push(("beneficiary", reference(patient_url)));
    o.push((
        "payor",
        J::A(vec![J::O(vec![(
            "identifier",
            J::O(vec![
                ("system", js(INSURER_NUMBER_SYSTEM)),
                ("value", js(insurer)),
            ]),
        )])]),
    ));
    J::O(o)
}

/// Writes one record as a compact single-line JSON Bundle (type collection): Patient (JP_Patient
/// profile, `meta.lastUpdated` = `recorded_on`), Coverage (when there is an insurer number), then one
/// Encounter per encounter, Conditions, MedicationRequests, Observations and Procedures, each referring
/// to the Patient by its `fullUrl`. `fullUrl`s are `urn:uuid:` UUIDs made from a counter. The Patient
/// identifier system carries the first encounter's facility code when it has 10 digits, else
/// [`LOCAL_PATIENT_ID_SYSTEM`]. The record is written as [`canonicalize`] describes it.
pub fn write_bundle(r: &SourceRecord) -> Result<Vec<u8>, FormatError> {
    let c = canonicalize(r);
    let mut b = BundleEntries::default();
    let patient_url = b.next_url();
    b.entries.push(entry(&patient_url, patient_json(&c, r)?));
    let id = &c.identity;
    if let Some(insurer) = &id.insurer_number {
        b.push(coverage_json(id, insurer, &patient_url));
    }
    let ev = &c.events;
    let enc_urls: Vec<String> = ev.encounters.iter().map(|_| b.next_url()).collect();
    let refs = Refs {
        patient: &patient_url,
        encounters: &enc_urls,
    };
    for (e, url) in ev.encounters.iter().zip(&enc_urls) {
        b.entries.push(entry(url, encounter_json(e, &patient_url)?));
    }
    for d in &ev.diagnoses {
        b.push(condition_json(d, &refs)?);
    }
    for (p, orig) in ev.prescriptions.iter().zip(&r.events.prescriptions) {
        b.push(medication_request_json(p, orig, &refs)?);
    }
    for (l, orig) in ev.lab_results.iter().zip(&r.events.lab_results) {
        b.push(observation_json(l, orig, &refs)?);
    }
    for p in &ev.procedures {
        b.push(procedure_json(p, &refs)?);
    }
    let bundle = J::O(vec![
        ("resourceType", js("Bundle")),
        ("type", js("collection")),
        ("entry", J::A(b.entries)),
    ]);
    let mut out = String::new();
    emit(&bundle, &mut out);
    Ok(out.into_bytes())
}

/// The entries of a bundle being written, with the counter their `fullUrl`s are made from.
#[derive(Default)]
struct BundleEntries {
    counter: u64,
    entries: Vec<J>,
}

impl BundleEntries {
    /// The next `urn:uuid:` URL.
    fn next_url(&mut self) -> String {
        self.counter += 1;
        format!("urn:uuid:00000000-0000-4000-8000-{:012x}", self.counter)
    }

    /// Appends a resource under the next URL.
    fn push(&mut self, res: J) {
        let url = self.next_url();
        self.entries.push(entry(&url, res));
    }
}

/// A bundle entry: `fullUrl` and resource.
fn entry(url: &str, res: J) -> J {
    J::O(vec![("fullUrl", js(url)), ("resource", res)])
}

/// The URLs events refer to: the Patient's and the Encounters' (by index).
struct Refs<'a> {
    patient: &'a str,
    encounters: &'a [String],
}

impl Refs<'_> {
    /// The reference to the encounter a canonical `encounter_id` names, if any.
    fn encounter(&self, e: &Option<String>) -> Option<J> {
        e.as_deref()
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| self.encounters.get(i))
            .map(|u| reference(u))
    }
}

/// An Encounter resource.
fn encounter_json(e: &Encounter, patient_url: &str) -> Result<J, FormatError> {
    let mut o = vec![
        ("resourceType", js("Encounter")),
        ("meta", profile("JP_Encounter")),
        ("status", js("finished")),
        (
            "class",
            coding(
                ACT_CODE_SYSTEM,
                if e.setting == Setting::Inpatient {
                    "IMP"
                } else {
                    "AMB"
                },
            ),
        ),
    ];
    if let Some(d) = &e.department {
        o.push(("serviceType", J::O(vec![("text", js(d.clone()))])));
    }
    o.push(("subject", reference(patient_url)));
    o.push((
        "period",
        J::O(vec![
            ("start", js(date_str(e.start_date, "encounter start")?)),
            ("end", js(date_str(e.end_date, "encounter end")?)),
        ]),
    ));
    if !e.facility_code.is_empty() {
        o.push((
            "serviceProvider",
            J::O(vec![(
                "identifier",
                J::O(vec![
                    ("system", js(MEDICAL_INSTITUTION_SYSTEM)),
                    ("value", js(e.facility_code.clone())),
                ]),
            )]),
        ));
    }
    Ok(J::O(o))
}

/// A Condition resource.
fn condition_json(d: &Diagnosis, refs: &Refs<'_>) -> Result<J, FormatError> {
    non_empty_code(&d.code, "diagnosis")?;
    let mut o = vec![("resourceType", js("Condition"))];
    o.push(("meta", profile("JP_Condition")));
    let status = match d.outcome {
        None | Some(DiagnosisOutcome::Continuing) => "active",
        Some(DiagnosisOutcome::Cured) => "resolved",
        Some(DiagnosisOutcome::Died) | Some(DiagnosisOutcome::Stopped) => "inactive",
    };
    let outcome = match d.outcome {
        Some(DiagnosisOutcome::Died) => Some("died"),
        Some(DiagnosisOutcome::Stopped) => Some("stopped"),
        _ => None,
    };
    if let Some(code) = outcome {
        o.push((
            "extension",
            J::A(vec![ext(
                CONDITION_OUTCOME_EXTENSION,
                "valueCode",
                js(code),
            )]),
        ));
    }
    o.push((
        "clinicalStatus",
        J::O(vec![(
            "coding",
            J::A(vec![coding(CLINICAL_STATUS_SYSTEM, status)]),
        )]),
    ));
    let verification = if d.suspected {
        "provisional"
    } else {
        "confirmed"
    };
    o.push((
        "verificationStatus",
        J::O(vec![(
            "coding",
            J::A(vec![coding(VERIFICATION_STATUS_SYSTEM, verification)]),
        )]),
    ));
    let mut codings = vec![coding(system_uri(d.code_system), &d.code)];
    if let Some(icd) = &d.icd10 {
        if d.code_system != CodeSystem::Icd10 {
            codings.push(coding(ICD10_SYSTEM, icd));
        }
    }
    o.push(("code", concept(codings, &d.name)));
    o.push(("subject", reference(refs.patient)));
    if let Some(e) = refs.encounter(&d.encounter_id) {
        o.push(("encounter", e));
    }
    o.push(("onsetDateTime", js(date_str(d.date, "diagnosis date")?)));
    if let Some(od) = d.outcome_date {
        o.push(("abatementDateTime", js(date_str(od, "outcome date")?)));
    }
    Ok(J::O(o))
}

/// A MedicationRequest resource; the amount is written only when the original has one.
fn medication_request_json(
    p: &Prescription,
    orig: &Prescription,
    refs: &Refs<'_>,
) -> Result<J, FormatError> {
    non_empty_code(&p.code, "prescription")?;
    let mut o = vec![
        ("resourceType", js("MedicationRequest")),
        ("meta", profile("JP_MedicationRequest")),
        ("status", js("completed")),
        ("intent", js("order")),
        (
            "medicationCodeableConcept",
            concept(vec![coding(system_uri(p.code_system), &p.code)], &p.name),
        ),
        ("subject", reference(refs.patient)),
    ];
    if let Some(e) = refs.encounter(&p.encounter_id) {
        o.push(("encounter", e));
    }
    o.push(("authoredOn", js(date_str(p.date, "prescription date")?)));
    let mut q = Vec::new();
    if let Some(n) = p.daily_quantity.and(orig.daily_quantity).and_then(json_f64) {
        q.push(("value", J::N(n)));
    }
    if let Some(u) = &p.unit {
        q.push(("unit", js(u.clone())));
    }
    if !q.is_empty() {
        o.push((
            "dosageInstruction",
            J::A(vec![J::O(vec![(
                "doseAndRate",
                J::A(vec![J::O(vec![("doseQuantity", J::O(q))])]),
            )])]),
        ));
    }
    if let Some(days) = p.days {
        o.push((
            "dispenseRequest",
            J::O(vec![(
                "expectedSupplyDuration",
                J::O(vec![
                    ("value", J::N(days.to_string())),
                    ("unit", js("日")),
                    ("system", js(UCUM)),
                    ("code", js("d")),
                ]),
            )]),
        ));
    }
    Ok(J::O(o))
}

/// An Observation resource (laboratory); the number is written only when the original has one.
fn observation_json(l: &LabResult, orig: &LabResult, refs: &Refs<'_>) -> Result<J, FormatError> {
    non_empty_code(&l.code, "lab result")?;
    let mut o = vec![
        ("resourceType", js("Observation")),
        ("meta", profile("JP_Observation_LabResult")),
        ("status", js("final")),
        (
            "category",
            J::A(vec![J::O(vec![(
                "coding",
                J::A(vec![coding(OBSERVATION_CATEGORY_SYSTEM, "laboratory")]),
            )])]),
        ),
        (
            "code",
            concept(vec![coding(system_uri(l.code_system), &l.code)], &l.name),
        ),
        ("subject", reference(refs.patient)),
    ];
    if let Some(e) = refs.encounter(&l.encounter_id) {
        o.push(("encounter", e));
    }
    o.push(("effectiveDateTime", js(date_str(l.date, "lab date")?)));
    let num = l.value_num.and(orig.value_num).and_then(json_f64);
    if num.is_some() || (l.value_text.is_none() && l.unit.is_some()) {
        let mut q = Vec::new();
        if let Some(n) = num {
            q.push(("value", J::N(n)));
        }
        if let Some(u) = &l.unit {
            q.push(("unit", js(u.clone())));
        }
        o.push(("valueQuantity", J::O(q)));
    } else if let Some(t) = &l.value_text {
        o.push(("valueString", js(t.clone())));
    }
    Ok(J::O(o))
}

/// A Procedure resource; a count other than one goes in an extension.
fn procedure_json(p: &Procedure, refs: &Refs<'_>) -> Result<J, FormatError> {
    non_empty_code(&p.code, "procedure")?;
    let mut o = vec![
        ("resourceType", js("Procedure")),
        ("meta", profile("JP_Procedure")),
    ];
    if p.count != 1 {
        o.push((
            "extension",
            J::A(vec![ext(
                PROCEDURE_COUNT_EXTENSION,
                "valueInteger",
                J::N(p.count.to_string()),
            )]),
        ));
    }
    o.push(("status", js("completed")));
    o.push((
        "code",
        concept(vec![coding(system_uri(p.code_system), &p.code)], &p.name),
    ));
    o.push(("subject", reference(refs.patient)));
    if let Some(e) = refs.encounter(&p.encounter_id) {
        o.push(("encounter", e));
    }
    o.push(("performedDateTime", js(date_str(p.date, "procedure date")?)));
    Ok(J::O(o))
}

/// Writes records as NDJSON: one bundle ([`write_bundle`]) per line, `\n` endings.
pub fn write_ndjson(records: &[SourceRecord]) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    for r in records {
        out.extend(write_bundle(r)?);
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_full_partial_and_bad() {
        let d = NaiveDate::from_ymd_opt(1980, 4, 12).unwrap_or_default();
        assert_eq!(parse_fhir_date("1980-04-12"), FhirDate::Full(d));
        assert_eq!(
            parse_fhir_date("1980-04-12T10:00:00+09:00"),
            FhirDate::Full(d)
        );
        assert_eq!(parse_fhir_date("1980"), FhirDate::Partial);
        assert_eq!(parse_fhir_date("1980-04"), FhirDate::Partial);
        for bad in [
            "1980-13",
            "1980-02-30",
            "80-04-12",
            "1980/04/12",
            "",
            "0000-01-01",
            "1980-04-12T",
        ] {
            assert_eq!(parse_fhir_date(bad), FhirDate::Bad, "{bad}");
        }
    }

    #[test]
    fn town_parts_follow_the_death_address_rules() {
        let (t, c, b) = town_parts(
            Some("東京都"),
            Some("千代田区"),
            "東京都千代田区架空町１－２－３",
        );
        assert_eq!(
            (t.as_deref(), c.as_deref(), b.as_deref()),
            (Some("架空町"), Some("1"), Some("2-3"))
        );
        let (t, c, b) = split_town("新町３丁目５");
        assert_eq!(
            (t.as_deref(), c.as_deref(), b.as_deref()),
            (Some("新町"), Some("3"), Some("5"))
        );
    }

    fn reads_back(s: &str, x: f64) -> bool {
        reparse_f64(s).map(f64::to_bits) == Some(x.to_bits())
    }

    #[test]
    fn floats_are_spelled_so_that_they_read_back() {
        for x in [0.1 + 0.2, 1.0 / 3.0, 5.6, 1e-7, 123456.789, -0.0, 2.5e300] {
            let s = json_f64(x).unwrap_or_default();
            assert!(reads_back(&s, x), "{x:?} spelled {s}");
        }
        assert_eq!(json_f64(f64::NAN), None);
    }
}
