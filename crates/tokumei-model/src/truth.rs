//! The answer key of a synthetic region (`DIR/truth/`), a documented public interface.
//!
//! Linkage, opt-out and re-identification tests compare what Tokumei infers with these tables.
//! They exist only for synthetic data; no real identified data has a truth table.

use chrono::NaiveDate;

use crate::codes::{InsuranceKind, Sex, SourceKind};

crate::table! {
    /// One true person: names and address as at the end of the period (or at death).
    #[derive(Debug, Clone, PartialEq)]
    pub struct TruthPerson : "persons" {
        /// Person id (`P` + 9 digits), stable for a given seed.
        pub person_id: String,
        /// Household id at the start of the period.
        pub household_id: String,
        /// Sex.
        pub sex: Sex,
        /// Date of birth.
        pub birth_date: NaiveDate,
        /// Surname in kanji at the end of the period.
        pub surname_kanji: String,
        /// Given name in kanji.
        pub given_kanji: String,
        /// Surname reading (full-width katakana) at the end of the period.
        pub surname_kana: String,
        /// Given-name reading.
        pub given_kana: String,
        /// Surname at the start of the period (differs after a marriage).
        pub initial_surname_kanji: String,
        /// Municipality code at the end of the period.
        pub municipality_code: String,
        /// Town (町名) at the end of the period.
        pub town: String,
        /// 丁目, if any.
        pub chome: Option<String>,
        /// 番地-号.
        pub banchi: String,
        /// Postal code.
        pub postal_code: String,
        /// Date of death within the period.
        pub death_date: Option<NaiveDate>,
    }
}

crate::table! {
    /// Maps every record the generator emits to its true person.
    #[derive(Debug, Clone, PartialEq)]
    pub struct RecordLink : "record_links" {
        /// Provider holding the record.
        pub provider_id: String,
        /// Kind of source.
        pub source_kind: SourceKind,
        /// Record id (as in the provider's identity table).
        pub record_id: String,
        /// True person.
        pub person_id: String,
    }
}

crate::table! {
    /// An address a person lived at, with its validity interval (moves).
    #[derive(Debug, Clone, PartialEq)]
    pub struct TruthAddress : "addresses" {
        /// Person id.
        pub person_id: String,
        /// From this date (period start for the initial address).
        pub valid_from: NaiveDate,
        /// Until the day before this date; none if current.
        pub valid_to: Option<NaiveDate>,
        /// Municipality code.
        pub municipality_code: String,
        /// Town.
        pub town: String,
        /// 丁目.
        pub chome: Option<String>,
        /// 番地-号.
        pub banchi: String,
        /// Postal code.
        pub postal_code: String,
    }
}

crate::table! {
    /// A surname change (marriage).
    #[derive(Debug, Clone, PartialEq)]
    pub struct TruthNameChange : "name_changes" {
        /// Person id.
        pub person_id: String,
        /// Date of the change.
        pub date: NaiveDate,
        /// Surname before.
        pub old_surname_kanji: String,
        /// Reading before.
        pub old_surname_kana: String,
        /// Surname after.
        pub new_surname_kanji: String,
        /// Reading after.
        pub new_surname_kana: String,
    }
}

crate::table! {
    /// A period of health-insurance coverage.
    #[derive(Debug, Clone, PartialEq)]
    pub struct TruthCoverage : "coverages" {
        /// Person id.
        pub person_id: String,
        /// From this date.
        pub valid_from: NaiveDate,
        /// Until the day before this date; none if current.
        pub valid_to: Option<NaiveDate>,
        /// Scheme.
        pub insurance_kind: InsuranceKind,
        /// 保険者番号.
        pub insurer_number: String,
        /// 記号 (none for 後期高齢者医療).
        pub insured_symbol: Option<String>,
        /// 番号.
        pub insured_number: String,
        /// 枝番.
        pub insured_branch: Option<String>,
        /// Whether the person is the insured (本人) rather than a dependent (家族).
        pub is_principal: bool,
    }
}

crate::table! {
    /// A true condition of a person, with its onset (before the period for prevalent ones).
    #[derive(Debug, Clone, PartialEq)]
    pub struct TruthCondition : "conditions" {
        /// Person id.
        pub person_id: String,
        /// Condition key of the generator's disease table.
        pub condition: String,
        /// ICD-10 code.
        pub icd10: String,
        /// Onset date.
        pub onset: NaiveDate,
    }
}

crate::table! {
    /// Where a record stands in its provider's native file (claims receipts, death-record rows).
    #[derive(Debug, Clone, PartialEq)]
    pub struct NativeLink : "native_links" {
        /// Provider holding the file.
        pub provider_id: String,
        /// Kind of source.
        pub source_kind: SourceKind,
        /// File path relative to the region folder.
        pub path: String,
        /// First line of the record in the file (1-based).
        pub first_line: i64,
        /// Last line of the record.
        pub last_line: i64,
        /// Record id of the canonical record it was written from.
        pub record_id: String,
    }
}

crate::table! {
    /// A deviation injected into a record (data-entry noise or a malformed native record).
    #[derive(Debug, Clone, PartialEq)]
    pub struct TruthNoise : "noise" {
        /// Record id.
        pub record_id: String,
        /// Provider holding the record.
        pub provider_id: String,
        /// Kind of source.
        pub source_kind: SourceKind,
        /// Kind of noise (`stale-surname`, `kana-half-width`, `malformed-date` ...).
        pub kind: String,
        /// Field affected.
        pub field: String,
    }
}

crate::table! {
    /// One DICOM image (instance) of an imaging study a hospital's PACS holds, and what burned-in
    /// text its pixels carry.
    #[derive(Debug, Clone, PartialEq)]
    pub struct TruthImage : "images" {
        /// True person.
        pub person_id: String,
        /// Provider (hospital) holding the image.
        pub provider_id: String,
        /// File path relative to the provider's folder (`dicom/<study6>/<instance>.dcm`).
        pub path: String,
        /// Study date (the encounter's first day).
        pub study_date: NaiveDate,
        /// Modality (`CT`, `MR`, `CR`, `US`).
        pub modality: String,
        /// Body Part Examined (`CHEST`, `ABDOMEN`, `HEAD` ...).
        pub body_part: String,
        /// Whether the patient id and name are drawn into the pixels.
        pub burned_in: bool,
        /// What the header's Burned In Annotation (0028,0301) says (`YES`, `NO`), none if absent.
        pub burned_in_flag: Option<String>,
    }
}
