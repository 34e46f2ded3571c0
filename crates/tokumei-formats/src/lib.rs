//! Readers and writers of the source formats a certified operator receives.
//!
//! Every reader turns bytes into canonical [`SourceRecord`]s (identity + clinical events) and keeps the
//! position (file, line, field) of everything it reports. Bad input never disappears silently: a record
//! that cannot be read is reported as an error with its position and left out (to be quarantined by the
//! caller) while every good record of the same file is still read; doubtful input is read and counted as
//! a warning. Readers never panic and never trust a length field.
//!
//! Formats: レセプト電算 medical claims ([`uke`]), municipal death records ([`death`]), SS-MIX2
//! standardized storage ([`ssmix2`]), 特定健診 CDA XML ([`kenshin`]) and JP Core FHIR ([`fhir`]).
//! [`inspect`] summarises files as `tokumei inspect` reports them.

pub mod any;
pub mod archive;
pub mod dates;
pub mod death;
pub mod encoding;
pub mod fhir;
pub mod inspect;
pub mod kenshin;
pub mod ssmix2;
pub mod text;
pub mod uke;

use tokumei_model::events::SourceRecord;

/// A supported source format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// レセプト電算処理システム medical claims (`RECEIPTC.UKE`), Shift_JIS.
    UkeMedical,
    /// Municipal death records (住民票の除票) as CSV.
    DeathCsv,
    /// One SS-MIX2 message (HL7 v2.5, ISO-2022-JP).
    Ssmix2,
    /// 特定健診 result document (HL7 CDA R2, hc08).
    Kenshin,
    /// JP Core FHIR R4 JSON: a Bundle, NDJSON of Bundles, or a Patient.
    Fhir,
}

impl Format {
    /// Human-readable name.
    pub fn name(&self) -> &'static str {
        match self {
            Format::UkeMedical => "レセ電 medical claims (RECEIPTC.UKE)",
            Format::DeathCsv => "municipal death records (除票 CSV)",
            Format::Ssmix2 => "SS-MIX2 message (HL7 v2.5)",
            Format::Kenshin => "特定健診 result (HL7 CDA R2)",
            Format::Fhir => "JP Core FHIR R4 (JSON)",
        }
    }
}

/// Recognises the format of a file from its name and first bytes.
pub fn sniff(file_name: &str, head: &[u8]) -> Option<Format> {
    let upper = file_name.to_ascii_uppercase();
    if upper.ends_with(".UKE")
        || upper.ends_with(".CYO")
        || head.starts_with(b"IR,")
        || head.starts_with(b"YK,")
    {
        return Some(Format::UkeMedical);
    }
    if head.starts_with(b"MSH") && head.len() > 3 && !head[3].is_ascii_alphanumeric() {
        return Some(Format::Ssmix2);
    }
    let head_text = String::from_utf8_lossy(head);
    // The only XML format read: a CDA document (the reader says so when it is not one).
    if upper.ends_with(".XML") || head_text.contains("<ClinicalDocument") {
        return Some(Format::Kenshin);
    }
    if (upper.ends_with(".JSON") || upper.ends_with(".NDJSON"))
        || (head_text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('{')
            && head_text.contains("resourceType"))
    {
        return Some(Format::Fhir);
    }
    if upper.ends_with(".CSV") && head_text.contains("name_kanji") {
        return Some(Format::DeathCsv);
    }
    None
}

/// Reads a file of a known format.
pub fn read(format: Format, bytes: &[u8], provider_id: &str) -> ReadReport {
    match format {
        Format::UkeMedical => uke::read(bytes, provider_id),
        Format::DeathCsv => death::read(bytes, provider_id),
        Format::Ssmix2 => ssmix2::read(bytes, provider_id),
        Format::Kenshin => kenshin::read(bytes, provider_id),
        Format::Fhir => fhir::read(bytes, provider_id),
    }
}

/// The ICD-10 of a diagnosis: the one its source gives, else, for a 傷病名コード, the 傷病名マスター's
/// ([`tokumei_japan::byomei::icd10_of`]); none for other codes.
pub(crate) fn diagnosis_icd10(
    system: tokumei_model::CodeSystem,
    code: &str,
    given: Option<String>,
) -> Option<String> {
    given.or_else(|| {
        (system == tokumei_model::CodeSystem::ReceiptDisease)
            .then(|| tokumei_japan::byomei::icd10_of(code))
            .flatten()
            .map(str::to_string)
    })
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Read, but doubtful (a failed check digit, totals that do not add up).
    Warning,
    /// Not read: the record it belongs to is left out.
    Error,
}

/// Where something is in a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// 1-based line (or segment) number.
    pub line: usize,
    /// 0-based field index within the line, where one field is at fault.
    pub field: Option<usize>,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.field {
            Some(i) => write!(f, "line {}, field {}", self.line, i),
            None => write!(f, "line {}", self.line),
        }
    }
}

/// A warning or error found while reading. Messages never contain identifying values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Severity.
    pub severity: Severity,
    /// Position.
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

/// A record read from a file, with the lines it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRecord {
    /// The canonical record (ids empty: the vault assigns opaque ids).
    pub record: SourceRecord,
    /// First line.
    pub first_line: usize,
    /// Last line.
    pub last_line: usize,
}

/// A record that could not be read: its lines go to quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// First line.
    pub first_line: usize,
    /// Last line.
    pub last_line: usize,
    /// Why (the first error found).
    pub reason: String,
}

/// What a reader made of one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadReport {
    /// Records read.
    pub records: Vec<ParsedRecord>,
    /// Records rejected.
    pub rejected: Vec<Rejected>,
    /// Every warning and error, in file order.
    pub issues: Vec<Issue>,
    /// Encoding detected.
    pub encoding: Option<encoding::Detected>,
    /// Count of lines by record type.
    pub line_counts: std::collections::BTreeMap<String, usize>,
}

impl ReadReport {
    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
            .count()
    }

    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .count()
    }

    fn issue(
        &mut self,
        severity: Severity,
        line: usize,
        field: Option<usize>,
        message: impl Into<String>,
    ) {
        self.issues.push(Issue {
            severity,
            position: Position { line, field },
            message: message.into(),
        });
    }
}

/// Errors of writers.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A value cannot be represented in the target format.
    #[error("cannot write {what}: {reason}")]
    Unrepresentable {
        /// The field.
        what: &'static str,
        /// Why.
        reason: String,
    },
}
