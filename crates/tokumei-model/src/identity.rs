//! The identifying fields of one source record (identity zone only).

use chrono::NaiveDate;

use crate::codes::{InsuranceKind, Sex, SourceKind};

crate::table! {
    /// One source record's identifying fields, as the provider held them on `recorded_on`.
    ///
    /// Strings are stored as the source gives them after decoding; readers do not normalise (linkage
    /// does). Addresses are split into prefecture / municipality (with its 6-digit local government
    /// code) / 町名 / 丁目 / 番地. Insurance identifiers are 保険者番号, 記号, 番号 and 枝番.
    #[derive(Debug, Clone, PartialEq)]
    pub struct IdentityRecord : "identities" {
        /// Opaque id of this record; clinical events carry it. Never derived from identifying values.
        pub record_id: String,
        /// Provider that holds the record.
        pub provider_id: String,
        /// Kind of source the record came from.
        pub source_kind: SourceKind,
        /// Provider-local patient id (カルテ番号, 住民票コード is never ingested).
        pub local_patient_id: Option<String>,
        /// Surname in kanji (姓).
        pub surname_kanji: Option<String>,
        /// Given name in kanji (名).
        pub given_kanji: Option<String>,
        /// Surname reading in full-width katakana.
        pub surname_kana: Option<String>,
        /// Given-name reading in full-width katakana.
        pub given_kana: Option<String>,
        /// Date of birth.
        pub birth_date: Option<NaiveDate>,
        /// Sex.
        pub sex: Option<Sex>,
        /// Prefecture (都道府県), e.g. 青森県.
        pub prefecture: Option<String>,
        /// 6-digit local government code of the municipality (全国地方公共団体コード).
        pub municipality_code: Option<String>,
        /// Municipality name (市区町村).
        pub municipality: Option<String>,
        /// Town or district (町名・大字).
        pub town: Option<String>,
        /// 丁目 number as written (may be absent where the town has none).
        pub chome: Option<String>,
        /// 番地 and 号, e.g. `12-3`.
        pub banchi: Option<String>,
        /// 7-digit postal code without hyphen.
        pub postal_code: Option<String>,
        /// Insurance scheme.
        pub insurance_kind: Option<InsuranceKind>,
        /// 保険者番号: 6 digits (市町村国保) or 8 digits, with check digit.
        pub insurer_number: Option<String>,
        /// 被保険者証 記号.
        pub insured_symbol: Option<String>,
        /// 被保険者証 番号.
        pub insured_number: Option<String>,
        /// 枝番 (2 digits).
        pub insured_branch: Option<String>,
        /// Date the identifying fields hold for (claim month start, visit, checkup, removal date).
        pub recorded_on: NaiveDate,
    }
}

impl IdentityRecord {
    /// Column names of the identity table, in schema order.
    pub const COLUMNS: [&'static str; 23] = [
        "record_id",
        "provider_id",
        "source_kind",
        "local_patient_id",
        "surname_kanji",
        "given_kanji",
        "surname_kana",
        "given_kana",
        "birth_date",
        "sex",
        "prefecture",
        "municipality_code",
        "municipality",
        "town",
        "chome",
        "banchi",
        "postal_code",
        "insurance_kind",
        "insurer_number",
        "insured_symbol",
        "insured_number",
        "insured_branch",
        "recorded_on",
    ];

    /// Puts records in an order fixed by their content, then record id (vault record ids are random
    /// and packages arrive in any order): the order every link run reads them in, so that the same
    /// records link the same way on every run, machine and engine.
    pub fn order_by_content(records: &mut [IdentityRecord]) {
        records.sort_by_cached_key(|r| {
            let content: Vec<Option<String>> = IdentityRecord::COLUMNS
                .iter()
                .filter(|c| **c != "record_id")
                .map(|c| r.column_text(c))
                .collect();
            (content, r.record_id.clone())
        });
    }

    /// The value of a column as text (codes as their codes, dates as YYYY-MM-DD); `None` for an
    /// empty value or an unknown column.
    pub fn column_text(&self, column: &str) -> Option<String> {
        match column {
            "record_id" => Some(self.record_id.clone()),
            "provider_id" => Some(self.provider_id.clone()),
            "source_kind" => Some(self.source_kind.code().to_string()),
            "local_patient_id" => self.local_patient_id.clone(),
            "surname_kanji" => self.surname_kanji.clone(),
            "given_kanji" => self.given_kanji.clone(),
            "surname_kana" => self.surname_kana.clone(),
            "given_kana" => self.given_kana.clone(),
            "birth_date" => self.birth_date.map(|d| d.to_string()),
            "sex" => self.sex.map(|s| s.code().to_string()),
            "prefecture" => self.prefecture.clone(),
            "municipality_code" => self.municipality_code.clone(),
            "municipality" => self.municipality.clone(),
            "town" => self.town.clone(),
            "chome" => self.chome.clone(),
            "banchi" => self.banchi.clone(),
            "postal_code" => self.postal_code.clone(),
            "insurance_kind" => self.insurance_kind.map(|k| k.code().to_string()),
            "insurer_number" => self.insurer_number.clone(),
            "insured_symbol" => self.insured_symbol.clone(),
            "insured_number" => self.insured_number.clone(),
            "insured_branch" => self.insured_branch.clone(),
            "recorded_on" => Some(self.recorded_on.to_string()),
            _ => None,
        }
    }
}
