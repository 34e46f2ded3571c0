//! Clinical events, keyed by the opaque `record_id` of the source record they came with.
//!
//! No table here carries an identifying field: these belong to the clinical zone.

use chrono::NaiveDate;

use crate::codes::{CodeSystem, DiagnosisOutcome, Setting};

crate::table! {
    /// A visit, stay or checkup at a facility.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Encounter : "encounters" {
        /// Event id, unique within a source.
        pub event_id: String,
        /// Record id of the source record.
        pub record_id: String,
        /// Facility (医療機関コード, 10 digits: prefecture + 点数表 + 7-digit code).
        pub facility_code: String,
        /// Care setting.
        pub setting: Setting,
        /// Department (診療科), free text of the source.
        pub department: Option<String>,
        /// First day.
        pub start_date: NaiveDate,
        /// Last day (discharge for stays; same as start for visits).
        pub end_date: NaiveDate,
    }
}

crate::table! {
    /// A diagnosis (傷病名) as the source records it.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Diagnosis : "diagnoses" {
        /// Event id.
        pub event_id: String,
        /// Record id of the source record.
        pub record_id: String,
        /// Encounter the diagnosis was recorded at, if the source links it.
        pub encounter_id: Option<String>,
        /// Start date of care for this diagnosis (診療開始日).
        pub date: NaiveDate,
        /// Code system of `code`.
        pub code_system: CodeSystem,
        /// Disease code.
        pub code: String,
        /// ICD-10 code where known.
        pub icd10: Option<String>,
        /// Name as written by the source.
        pub name: Option<String>,
        /// Suspected diagnosis (疑い).
        pub suspected: bool,
        /// Outcome (転帰), if ended.
        pub outcome: Option<DiagnosisOutcome>,
        /// Date of the outcome.
        pub outcome_date: Option<NaiveDate>,
    }
}

crate::table! {
    /// A prescription or administration of a drug.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Prescription : "prescriptions" {
        /// Event id.
        pub event_id: String,
        /// Record id of the source record.
        pub record_id: String,
        /// Encounter of the prescription.
        pub encounter_id: Option<String>,
        /// Date prescribed.
        pub date: NaiveDate,
        /// Code system of `code`.
        pub code_system: CodeSystem,
        /// Drug code.
        pub code: String,
        /// Drug name.
        pub name: Option<String>,
        /// Quantity per day in `unit`.
        pub daily_quantity: Option<f64>,
        /// Unit of the quantity (錠, カプセル, 吸入, g ...).
        pub unit: Option<String>,
        /// Days supplied.
        pub days: Option<i32>,
    }
}

crate::table! {
    /// A procedure, fee item or examination billed or recorded.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Procedure : "procedures" {
        /// Event id.
        pub event_id: String,
        /// Record id of the source record.
        pub record_id: String,
        /// Encounter of the procedure.
        pub encounter_id: Option<String>,
        /// Date performed.
        pub date: NaiveDate,
        /// Code system of `code`.
        pub code_system: CodeSystem,
        /// Procedure code.
        pub code: String,
        /// Procedure name.
        pub name: Option<String>,
        /// Points (点数) per performance, where billed.
        pub points: Option<i32>,
        /// Number of performances.
        pub count: i32,
    }
}

crate::table! {
    /// A laboratory or checkup result.
    #[derive(Debug, Clone, PartialEq)]
    pub struct LabResult : "lab_results" {
        /// Event id.
        pub event_id: String,
        /// Record id of the source record.
        pub record_id: String,
        /// Encounter of the test.
        pub encounter_id: Option<String>,
        /// Date of specimen or measurement.
        pub date: NaiveDate,
        /// Code system of `code` (JLAC10 for standard items).
        pub code_system: CodeSystem,
        /// Item code.
        pub code: String,
        /// Item name.
        pub name: Option<String>,
        /// Numeric value.
        pub value_num: Option<f64>,
        /// Coded or text value.
        pub value_text: Option<String>,
        /// Unit.
        pub unit: Option<String>,
    }
}

crate::table! {
    /// A death as a source records it.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Death : "deaths" {
        /// Event id.
        pub event_id: String,
        /// Record id of the source record.
        pub record_id: String,
        /// Date of death.
        pub date: NaiveDate,
        /// Date the source recorded it (e.g. notification date), if known.
        pub recorded_on: Option<NaiveDate>,
    }
}

crate::table! {
    /// A medical image (one DICOM file) as received: what the clinical zone may know of it. The file
    /// itself, whose header names the patient, is kept encrypted in the identified zone under `blob`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Image : "images" {
        /// Event id.
        pub event_id: String,
        /// Record id of the source record of the image's patient.
        pub record_id: String,
        /// Opaque study id: the package's id and the study's number within it (never its UID).
        pub study_id: String,
        /// Study date, if the header states one.
        pub study_date: Option<NaiveDate>,
        /// Modality (CT, MR, CR, US, ...).
        pub modality: Option<String>,
        /// Body Part Examined.
        pub body_part: Option<String>,
        /// SOP Class UID (what kind of object it is; a well-known UID, never an instance's).
        pub sop_class: Option<String>,
        /// Name of the sealed file in the package's image folder of the identified zone.
        pub blob: String,
        /// Size of the file in bytes.
        pub bytes: i64,
    }
}

/// The clinical events that came with one source record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventSet {
    /// Encounters.
    pub encounters: Vec<Encounter>,
    /// Diagnoses.
    pub diagnoses: Vec<Diagnosis>,
    /// Prescriptions.
    pub prescriptions: Vec<Prescription>,
    /// Procedures.
    pub procedures: Vec<Procedure>,
    /// Lab and checkup results.
    pub lab_results: Vec<LabResult>,
    /// Deaths.
    pub deaths: Vec<Death>,
}

impl EventSet {
    /// Total number of events.
    pub fn len(&self) -> usize {
        self.encounters.len()
            + self.diagnoses.len()
            + self.prescriptions.len()
            + self.procedures.len()
            + self.lab_results.len()
            + self.deaths.len()
    }

    /// Whether there is no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One source record: its identifying fields and its clinical events. Readers produce these and
/// writers consume them; the vault splits them into the identity and clinical zones.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// Identifying fields.
    pub identity: crate::identity::IdentityRecord,
    /// Clinical events.
    pub events: EventSet,
}
