//! Research applications: what a recipient asks for, checked against the catalogue of releasable
//! items before it reaches the committee. The file format is documented in `docs/applications.md`;
//! [`TEMPLATE`] is a complete commented file.

use serde::{Deserialize, Serialize};

use crate::ReviewError;

mod file;

pub use file::{
    Problem, APPLICANT_KEYS, COHORT_KEYS, FEASIBILITY_KEYS, ITEMS_KEYS, KEYS, TEMPLATE,
};

/// The kind of release asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseKind {
    /// 匿名加工医療情報: to any recipient under contract.
    Anonymized,
    /// 仮名加工医療情報: to certified users (認定仮名加工医療情報利用事業者) only.
    Pseudonymized,
    /// Feasibility counts for a trial (the 治験モデル): no record leaves, named researchers ask
    /// counts under disclosure control and a privacy budget.
    Feasibility,
}

impl ReleaseKind {
    /// Code.
    pub fn code(&self) -> &'static str {
        match self {
            ReleaseKind::Anonymized => "anonymized",
            ReleaseKind::Pseudonymized => "pseudonymized",
            ReleaseKind::Feasibility => "feasibility",
        }
    }
}

/// The applicant's certification under the Act (RULES §1 item 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Certification {
    /// No certification (may receive anonymized data under contract).
    None,
    /// 認定仮名加工医療情報利用事業者 (Art 41): may receive pseudonymized data.
    PseudoUser,
    /// Another certified creator of the same kind.
    Creator,
}

/// Who applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applicant {
    /// Organisation (法人).
    pub organisation: String,
    /// Certification type.
    pub certification: Certification,
    /// Certification id, when certified.
    #[serde(default)]
    pub certification_id: Option<String>,
    /// Last day the certification is valid (YYYY-MM-DD), when certified.
    #[serde(default)]
    pub certification_valid_until: Option<String>,
    /// Responsible researcher (研究責任者).
    pub responsible_researcher: String,
    /// Contact (organisational, not a patient's).
    #[serde(default)]
    pub contact: Option<String>,
}

/// One requested table and its columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Items {
    /// Table of the release.
    pub table: String,
    /// Columns.
    pub columns: Vec<String>,
}

/// Which persons the cohort holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cohort {
    /// ICD-10 code prefixes, any of which a person must carry (empty: everybody).
    #[serde(default)]
    pub icd10: Vec<String>,
    /// Youngest age at the end of the period.
    #[serde(default)]
    pub age_min: Option<u32>,
    /// Oldest age at the end of the period.
    #[serde(default)]
    pub age_max: Option<u32>,
    /// `M` or `F`.
    #[serde(default)]
    pub sex: Option<String>,
    /// Municipality codes (6 digits) of residence (empty: the whole region).
    #[serde(default)]
    pub municipalities: Vec<String>,
}

/// Who may ask counts under a feasibility application, and its budget.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feasibility {
    /// Registered users (researchers) who may ask counts under it.
    #[serde(default)]
    pub users: Vec<String>,
    /// The privacy budget (ε) asked for; the disclosure policy's own limit caps it.
    #[serde(default)]
    pub epsilon: Option<f64>,
    /// Whether the application is also a recruitment protocol: each provider receives, sealed to
    /// its recruitment key, the list of its own patients who match.
    #[serde(default)]
    pub recruitment: bool,
}

impl Eq for Feasibility {}

/// Which images a release carries (with the `images` items approved): any of the modalities, any
/// of the body parts, studies in the period (each left out: all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRequest {
    /// DICOM Modality codes (`CT`, `MR`, `CR`, `US` ...).
    #[serde(default)]
    pub modalities: Vec<String>,
    /// Body Part Examined codes (`CHEST`, `HEAD` ...).
    #[serde(default)]
    pub body_parts: Vec<String>,
    /// First study date (YYYY-MM-DD); the application's period when left out.
    #[serde(default)]
    pub from: Option<String>,
    /// Last study date.
    #[serde(default)]
    pub to: Option<String>,
}

impl ImageRequest {
    /// Whether an image of this modality, body part and date is asked for (`period` bounds the
    /// dates when the request names none).
    pub fn wants(
        &self,
        modality: Option<&str>,
        body_part: Option<&str>,
        date: Option<chrono::NaiveDate>,
        period: (chrono::NaiveDate, chrono::NaiveDate),
    ) -> bool {
        let day = |s: &Option<String>| {
            s.as_deref()
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        };
        let from = day(&self.from).unwrap_or(period.0).max(period.0);
        let to = day(&self.to).unwrap_or(period.1).min(period.1);
        let listed = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_some_and(|v| list.iter().any(|l| l.eq_ignore_ascii_case(v)))
        };
        listed(&self.modalities, modality)
            && listed(&self.body_parts, body_part)
            && date.is_some_and(|d| d >= from && d <= to)
    }
}

/// An application as submitted (the TOML file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// Title.
    pub title: String,
    /// Anonymized or pseudonymized.
    pub kind: ReleaseKind,
    /// Purpose of use (medical R&D).
    pub purpose: String,
    /// First day of the period asked for (YYYY-MM-DD).
    pub period_from: String,
    /// Last day.
    pub period_to: String,
    /// The contract's expiry (YYYY-MM-DD): no release after it.
    pub contract_expiry: String,
    /// The recipient's age public key (releases are encrypted to it).
    pub recipient_key: String,
    /// The recipient's security plan (usage mode and measures the contract fixes).
    pub security_plan: String,
    /// Dimensions of aggregate tables asked for (0 for record-level data).
    #[serde(default)]
    pub aggregate_dimensions: u32,
    /// An earlier application this one revises.
    #[serde(default)]
    pub revises: Option<String>,
    /// Who applies.
    pub applicant: Applicant,
    /// Which persons.
    #[serde(default)]
    pub cohort: Cohort,
    /// Which tables and columns (none for a feasibility application).
    #[serde(default)]
    pub items: Vec<Items>,
    /// For a feasibility application: who asks, and the budget.
    #[serde(default)]
    pub feasibility: Option<Feasibility>,
    /// Which images, when the `images` items are asked for.
    #[serde(default)]
    pub images: Option<ImageRequest>,
}

/// Releasable tables and their columns. Direct identifiers (names, readings, addresses below the
/// municipality, insurance numbers, patient ids) are not releasable at all and are not listed.
pub const CATALOGUE: &[(&str, &[&str])] = &[
    (
        "persons",
        &[
            "sex",
            "birth_year",
            "birth_year_month",
            "age",
            "municipality",
            "prefecture",
            "death_month",
        ],
    ),
    (
        "encounters",
        &["setting", "department", "start_date", "end_date"],
    ),
    ("diagnoses", &["icd10", "code", "date", "outcome"]),
    (
        "prescriptions",
        &["code", "name", "daily_quantity", "unit", "days", "date"],
    ),
    ("procedures", &["code", "points", "count", "date"]),
    (
        "lab_results",
        &["code", "value_num", "value_text", "unit", "date"],
    ),
    ("deaths", &["date"]),
    // One row per released image; `file` is the DICOM file itself, de-identified under PS3.15
    // Annex E with the release's pseudonym as Patient ID.
    ("images", &["modality", "body_part", "study_date", "file"]),
];

/// The problems of an `[images]` table: codes as DICOM writes them (A–Z, 0–9, `_`, space; at most
/// 16 characters), dates, and a period in order.
fn image_problems(images: &ImageRequest, p: &mut Vec<Problem>) {
    let code = |c: &String| {
        !c.is_empty()
            && c.len() <= 16
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b' ')
    };
    for (field, list) in [
        ("images.modalities", &images.modalities),
        ("images.body_parts", &images.body_parts),
    ] {
        if !list.iter().all(code) {
            p.push(Problem::new(
                field,
                "codes as DICOM writes them: letters, digits, `_`, at most 16",
            ));
        }
    }
    let from = images.from.as_deref().map(|d| date(p, "images.from", d));
    let to = images.to.as_deref().map(|d| date(p, "images.to", d));
    if let (Some(Some(from)), Some(Some(to))) = (from, to) {
        if to < from {
            p.push(Problem::new("images.to", "before images.from"));
        }
    }
}

/// A `YYYY-MM-DD` date, or a problem recorded for `field`.
fn date(p: &mut Vec<Problem>, field: &str, s: &str) -> Option<chrono::NaiveDate> {
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
    if d.is_none() {
        p.push(Problem::new(field, "not a YYYY-MM-DD date"));
    }
    d
}

impl Certification {
    /// Code, as written in an application file.
    pub fn code(&self) -> &'static str {
        match self {
            Certification::None => "none",
            Certification::PseudoUser => "pseudo-user",
            Certification::Creator => "creator",
        }
    }
}

impl Application {
    /// Parses and checks an application file, reporting every missing, unknown or invalid field at
    /// once ([`ReviewError::Application`]).
    pub fn from_toml(text: &str) -> Result<Application, ReviewError> {
        file::parse(text)
    }

    /// Every requested item as `table.column`.
    pub fn item_names(&self) -> Vec<String> {
        self.items
            .iter()
            .flat_map(|i| i.columns.iter().map(move |c| format!("{}.{c}", i.table)))
            .collect()
    }

    /// Checks the application: required fields, dates, the catalogue, the recipient key, and that a
    /// pseudonymized release goes to a certified user (RULES §1 item 5). Every problem is reported.
    pub fn check(&self) -> Result<(), ReviewError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ReviewError::Application(problems))
        }
    }

    /// Every problem of the application's values (empty when it is acceptable).
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        self.text_problems(&mut p);
        self.date_problems(&mut p);
        if self.kind == ReleaseKind::Feasibility {
            self.feasibility_problems(&mut p);
            return p;
        }
        if self.feasibility.is_some() {
            p.push(Problem::new(
                "feasibility",
                "only an application of kind feasibility has this table",
            ));
        }
        if self.security_plan.trim().is_empty() {
            p.push(Problem::new("security_plan", "required"));
        }
        if self
            .recipient_key
            .trim()
            .parse::<age::x25519::Recipient>()
            .is_err()
        {
            p.push(Problem::new(
                "recipient_key",
                "not an age public key (age1…)",
            ));
        }
        self.item_problems(&mut p);
        if self.aggregate_dimensions > 3 {
            p.push(Problem::new(
                "aggregate_dimensions",
                "aggregate tables are limited to 3 dimensions (RULES §6 item 47); the committee \
                 grants exceptions in its conditions, not the application",
            ));
        }
        self.cohort_problems(&mut p);
        self.certification_problems(&mut p);
        p
    }

    fn text_problems(&self, p: &mut Vec<Problem>) {
        for (field, value) in [
            ("title", &self.title),
            ("purpose", &self.purpose),
            ("applicant.organisation", &self.applicant.organisation),
            (
                "applicant.responsible_researcher",
                &self.applicant.responsible_researcher,
            ),
        ] {
            if value.trim().is_empty() {
                p.push(Problem::new(field, "required"));
            }
        }
    }

    fn date_problems(&self, p: &mut Vec<Problem>) {
        let from = date(p, "period_from", &self.period_from);
        let to = date(p, "period_to", &self.period_to);
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                p.push(Problem::new("period_to", "before period_from"));
            }
        }
        date(p, "contract_expiry", &self.contract_expiry);
        if let Some(images) = &self.images {
            image_problems(images, p);
        }
    }

    fn item_problems(&self, p: &mut Vec<Problem>) {
        if self.items.is_empty() {
            p.push(Problem::new("items", "no items are requested"));
        }
        for i in &self.items {
            let Some((_, columns)) = CATALOGUE.iter().find(|(t, _)| *t == i.table) else {
                let tables: Vec<&str> = CATALOGUE.iter().map(|(t, _)| *t).collect();
                p.push(Problem::new(
                    "items",
                    format!(
                        "table {} is not releasable (releasable: {})",
                        i.table,
                        tables.join(", ")
                    ),
                ));
                continue;
            };
            if i.columns.is_empty() {
                p.push(Problem::new(
                    "items",
                    format!("table {} names no columns", i.table),
                ));
            }
            for c in i.columns.iter().filter(|c| !columns.contains(&c.as_str())) {
                p.push(Problem::new(
                    "items",
                    format!(
                        "{}.{c} is not a releasable item (releasable in {}: {})",
                        i.table,
                        i.table,
                        columns.join(", ")
                    ),
                ));
            }
        }
    }

    /// A feasibility application names who asks and receives no items.
    fn feasibility_problems(&self, p: &mut Vec<Problem>) {
        if !self.items.is_empty() {
            p.push(Problem::new(
                "items",
                "a feasibility application is answered with counts; it names no items",
            ));
        }
        let Some(f) = &self.feasibility else {
            p.push(Problem::new(
                "feasibility",
                "missing: a feasibility application names its users",
            ));
            return;
        };
        if f.users.is_empty() {
            p.push(Problem::new("feasibility.users", "names no user"));
        }
        for u in f
            .users
            .iter()
            .filter(|u| !tokumei_vault::access::valid_name(u))
        {
            p.push(Problem::new(
                "feasibility.users",
                format!("{u:?} is not a user name"),
            ));
        }
        if f.epsilon.is_some_and(|e| !(e.is_finite() && e > 0.0)) {
            p.push(Problem::new("feasibility.epsilon", "above 0"));
        }
    }

    /// Whether `user` is named to ask counts under this (feasibility) application.
    pub fn names_user(&self, user: &str) -> bool {
        self.feasibility
            .as_ref()
            .is_some_and(|f| f.users.iter().any(|u| u == user))
    }

    fn cohort_problems(&self, p: &mut Vec<Problem>) {
        if let Some(s) = &self.cohort.sex {
            if s != "M" && s != "F" {
                p.push(Problem::new("cohort.sex", "M or F"));
            }
        }
        if let (Some(a), Some(b)) = (self.cohort.age_min, self.cohort.age_max) {
            if a > b {
                p.push(Problem::new("cohort.age_min", "above cohort.age_max"));
            }
        }
    }

    fn certification_problems(&self, p: &mut Vec<Problem>) {
        if self.kind != ReleaseKind::Pseudonymized {
            return;
        }
        if self.applicant.certification != Certification::PseudoUser {
            p.push(Problem::new(
                "applicant.certification",
                "a pseudonymized release goes only to a certified user (認定仮名加工医療情報利用事業者): \
                 applicant.certification must be pseudo-user",
            ));
        }
        let id = self.applicant.certification_id.as_deref().unwrap_or("");
        if id.trim().is_empty() {
            p.push(Problem::new(
                "applicant.certification_id",
                "required for a pseudonymized release",
            ));
        }
        let until = self.applicant.certification_valid_until.as_deref();
        date(
            p,
            "applicant.certification_valid_until",
            until.unwrap_or(""),
        );
    }

    /// Whether the applicant may receive this kind of release on `day` (certification valid).
    pub fn recipient_eligible_on(&self, day: chrono::NaiveDate) -> bool {
        match self.kind {
            ReleaseKind::Anonymized | ReleaseKind::Feasibility => true,
            ReleaseKind::Pseudonymized => {
                self.applicant.certification == Certification::PseudoUser
                    && self
                        .applicant
                        .certification_valid_until
                        .as_deref()
                        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                        .is_some_and(|until| day <= until)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"
title = "2型糖尿病の処方実態 / Prescribing in type 2 diabetes"
kind = "anonymized"
purpose = "Describe first-line prescribing for type 2 diabetes"
period_from = "2021-04-01"
period_to = "2024-03-31"
contract_expiry = "2030-03-31"
recipient_key = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
security_plan = "Analysis on an isolated workstation; no copies; destruction at contract end"

[applicant]
organisation = "架空大学 医学部"
certification = "none"
responsible_researcher = "研究 責任者"

[cohort]
icd10 = ["E11"]
age_min = 40

[[items]]
table = "persons"
columns = ["sex", "birth_year_month", "municipality"]

[[items]]
table = "prescriptions"
columns = ["code", "date"]
"#;

    #[test]
    fn a_valid_application_parses() {
        let a = Application::from_toml(SAMPLE).expect("valid");
        assert_eq!(a.kind, ReleaseKind::Anonymized);
        assert_eq!(
            a.item_names(),
            vec![
                "persons.sex",
                "persons.birth_year_month",
                "persons.municipality",
                "prescriptions.code",
                "prescriptions.date"
            ]
        );
    }

    #[test]
    fn identifiers_and_unknown_items_are_refused() {
        let bad = SAMPLE.replace("\"sex\", \"birth_year_month\"", "\"surname_kanji\"");
        let e = Application::from_toml(&bad).expect_err("refused");
        assert!(e.to_string().contains("persons.surname_kanji"), "{e}");
        let bad = SAMPLE.replace("table = \"prescriptions\"", "table = \"identities\"");
        assert!(Application::from_toml(&bad)
            .expect_err("refused")
            .to_string()
            .contains("not releasable"));
    }

    #[test]
    fn pseudonymized_needs_a_certified_user() {
        let bad = SAMPLE.replace("kind = \"anonymized\"", "kind = \"pseudonymized\"");
        let e = Application::from_toml(&bad).expect_err("refused");
        assert!(e.to_string().contains("certified user"), "{e}");
        let ok = bad.replace(
            "certification = \"none\"",
            "certification = \"pseudo-user\"\ncertification_id = \"PU-0001\"\ncertification_valid_until = \"2029-03-31\"",
        );
        let a = Application::from_toml(&ok).expect("valid");
        let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        assert!(a.recipient_eligible_on(day("2029-03-31")));
        assert!(!a.recipient_eligible_on(day("2029-04-01")));
    }

    const FEASIBILITY: &str = r#"
title = "Feasibility of a trial"
kind = "feasibility"
purpose = "How many patients a trial could recruit"
period_from = "2022-04-01"
period_to = "2024-03-31"
contract_expiry = "2030-03-31"

[applicant]
organisation = "架空製薬"
certification = "none"
responsible_researcher = "治験 担当者"

[feasibility]
users = ["res-1"]
epsilon = 5.0
"#;

    #[test]
    fn a_feasibility_application_names_users_and_no_items() {
        let a = Application::from_toml(FEASIBILITY).expect("valid");
        assert_eq!(a.kind, ReleaseKind::Feasibility);
        assert!(a.names_user("res-1") && !a.names_user("res-2"));
        assert!(a.items.is_empty() && a.recipient_key.is_empty());
        let with_items =
            format!("{FEASIBILITY}\n[[items]]\ntable = \"persons\"\ncolumns = [\"sex\"]\n");
        let e = Application::from_toml(&with_items).expect_err("refused");
        assert!(e.to_string().contains("names no items"), "{e}");
        let nobody = FEASIBILITY.replace("users = [\"res-1\"]", "users = []");
        let e = Application::from_toml(&nobody).expect_err("refused");
        assert!(e.to_string().contains("feasibility.users"), "{e}");
        let bad = FEASIBILITY.replace("epsilon = 5.0", "epsilon = -1.0\ncolour = 1");
        let e = Application::from_toml(&bad).expect_err("refused");
        assert!(e.to_string().contains("feasibility.epsilon"), "{e}");
        assert!(e.to_string().contains("feasibility.colour"), "{e}");
        // A release application has no [feasibility] table.
        let e = Application::from_toml(&format!("{SAMPLE}\n[feasibility]\nusers = [\"res-1\"]\n"))
            .expect_err("refused");
        assert!(
            e.to_string()
                .contains("only an application of kind feasibility"),
            "{e}"
        );
    }

    #[test]
    fn bad_dates_and_keys_name_the_field() {
        let bad = SAMPLE.replace("2021-04-01", "2021/04/01");
        assert!(Application::from_toml(&bad)
            .expect_err("refused")
            .to_string()
            .contains("period_from"));
        let bad = SAMPLE.replace("age1ql3", "xyz");
        assert!(Application::from_toml(&bad)
            .expect_err("refused")
            .to_string()
            .contains("recipient_key"));
    }
}
