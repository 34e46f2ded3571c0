//! Cohort definitions: what a sponsor's protocol asks, as a TOML or JSON file (schema:
//! `schema/cohort.schema.json`, generated from these types).
//!
//! Modelled on OHDSI Circe's cohort expressions, restricted to what a count needs: named concept
//! sets over the codes the vault holds (ICD-10 with its descendants, レセ電 and YJ drug codes by
//! prefix, 診療行為 codes, JLAC10 laboratory items with a value range), an index event (the first
//! occurrence of a concept set within a period), demographics at the index date, a required
//! observation around it, and inclusion rules: nested `all` / `any` / `not` over events in a window
//! of days relative to the index ("within 90 days after": `from = 0, to = 90`; "none in the 365
//! days before": `not` of `from = -365, to = -1`), with occurrence bounds, age, sex and death.
//! An unknown field is refused by the parser with its line; an unknown concept set, a malformed
//! code or an impossible range is refused naming the value and its path (`rules[1].all[0]...`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::FeasibilityError;

/// A cohort definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// A short name.
    pub name: String,
    /// What the cohort is, in words.
    #[serde(default)]
    pub description: String,
    /// Named sets of codes, referred to by the index and the rules.
    pub concept_sets: BTreeMap<String, ConceptSet>,
    /// The index event.
    pub index: Index,
    /// Demographics at the index date.
    #[serde(default)]
    pub demographics: Demographics,
    /// Records required around the index date.
    #[serde(default)]
    pub observation: Observation,
    /// Inclusion rules, applied in order (the attrition reports each).
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A set of codes; an event matches when its code matches any entry of its kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConceptSet {
    /// ICD-10 codes (`E11`, `E11.9`, `E119`); with `descendants` every code below them.
    #[serde(default)]
    pub icd10: Vec<String>,
    /// Whether ICD-10 codes include their descendants (default true).
    #[serde(default = "yes")]
    pub descendants: bool,
    /// Drug code prefixes: レセ電 医薬品コード (digits, up to 9) or 薬価基準 (YJ) codes (up to 12).
    /// A prefix of a 薬価基準 code (`3962002`: an ingredient; `396`: a class) also matches the レセ電
    /// codes whose 薬価基準収載医薬品コード it begins (`tokumei_japan::drug`), so one prefix finds a drug
    /// in claims and hospital records alike.
    #[serde(default)]
    pub drugs: Vec<String>,
    /// 診療行為コード prefixes (digits, up to 9).
    #[serde(default)]
    pub procedures: Vec<String>,
    /// JLAC10 prefixes (up to 17 characters).
    #[serde(default)]
    pub labs: Vec<String>,
    /// For laboratory items: the numeric result's range (bounds included).
    #[serde(default)]
    pub value: Option<Range>,
}

fn yes() -> bool {
    true
}

/// A numeric range, bounds included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Lowest value.
    pub min: Option<f64>,
    /// Highest value.
    pub max: Option<f64>,
}

/// The index event: a person's first event of `concept` within the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// The concept set.
    pub concept: String,
    /// First day of the period (included).
    pub from: Option<NaiveDate>,
    /// Last day of the period (included).
    pub to: Option<NaiveDate>,
}

/// Demographics at the index date.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Demographics {
    /// Sex (`M` or `F`).
    pub sex: Option<Sex>,
    /// Age at the index date.
    pub age: Option<AgeRange>,
    /// Municipality codes (6 digits, JIS X 0402 with check digit) of the person's latest address.
    #[serde(default)]
    pub municipalities: Vec<String>,
    /// 二次医療圏 (secondary medical areas, by name as the shipped table spells them: `青森地域`) of
    /// the person's latest address.
    #[serde(default)]
    pub areas: Vec<String>,
    /// Providers (ids as registered) the person has records with.
    #[serde(default)]
    pub providers: Vec<String>,
}

/// Sex as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Sex {
    /// Male.
    M,
    /// Female.
    F,
}

impl Sex {
    /// The code the vault records.
    pub fn code(self) -> &'static str {
        match self {
            Sex::M => "M",
            Sex::F => "F",
        }
    }
}

/// An age range in whole years, bounds included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgeRange {
    /// Youngest.
    pub min: Option<u32>,
    /// Oldest.
    pub max: Option<u32>,
}

/// Records required around the index date: the person's observation (first to last record in the
/// vault, any source, as OMOP derives an observation period without enrolment data) covers
/// `before` days before the index and `after` days after it (death ends the need).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// Days before the index.
    #[serde(default)]
    pub before: u32,
    /// Days after the index.
    #[serde(default)]
    pub after: u32,
}

/// An inclusion rule: its name and one criterion (`all`, `any`, `not`, `event`, `death`, `age`
/// or `sex`) beside it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Its name in the attrition.
    pub name: String,
    /// What a person must meet.
    #[serde(flatten)]
    pub criterion: Criterion,
}

const OPERATORS: &[&str] = &["name", "all", "any", "not", "event", "death", "age", "sex"];

impl<'de> Deserialize<'de> for Rule {
    /// By hand, so that an unknown operator is named with its position (a flattened enum would
    /// only say that none was found).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rule, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Rule;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a rule: `name` and one criterion")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Rule, A::Error> {
                use serde::de::Error;
                let (mut name, mut criterion) = (None, None);
                while let Some(key) = m.next_key::<String>()? {
                    let c = match key.as_str() {
                        "name" => {
                            name = Some(m.next_value::<String>()?);
                            continue;
                        }
                        "all" => Criterion::All(m.next_value()?),
                        "any" => Criterion::Any(m.next_value()?),
                        "not" => Criterion::Not(m.next_value()?),
                        "event" => Criterion::Event(m.next_value()?),
                        "death" => Criterion::Death(m.next_value()?),
                        "age" => Criterion::Age(m.next_value()?),
                        "sex" => Criterion::Sex(m.next_value()?),
                        other => return Err(A::Error::unknown_field(other, OPERATORS)),
                    };
                    if criterion.replace(c).is_some() {
                        return Err(A::Error::custom(format!(
                            "a rule holds one criterion (`{key}` is a second; join them with `all`)"
                        )));
                    }
                }
                Ok(Rule {
                    name: name.ok_or_else(|| A::Error::missing_field("name"))?,
                    criterion: criterion.ok_or_else(|| {
                        A::Error::custom(
                            "a rule needs a criterion: all, any, not, event, death, age or sex",
                        )
                    })?,
                })
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A criterion on a person relative to their index date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// Every criterion holds.
    All(Vec<Criterion>),
    /// At least one criterion holds.
    Any(Vec<Criterion>),
    /// The criterion does not hold.
    Not(Box<Criterion>),
    /// Events of a concept set in a window.
    Event(EventCriterion),
    /// Death in a window (without one: death at any time after the index).
    Death(Window),
    /// Age at the index date.
    Age(AgeRange),
    /// Sex.
    Sex(Sex),
}

/// Occurrences of a concept set's events in a window of days relative to the index date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventCriterion {
    /// The concept set.
    pub concept: String,
    /// The window (without one: any time).
    #[serde(default)]
    pub window: Window,
    /// At least this many events on distinct days (default 1).
    #[serde(default = "one")]
    pub at_least: u32,
    /// At most this many events on distinct days.
    pub at_most: Option<u32>,
}

fn one() -> u32 {
    1
}

/// Days relative to the index date (negative: before), bounds included; open when absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// First day.
    pub from: Option<i32>,
    /// Last day.
    pub to: Option<i32>,
}

impl Window {
    /// Whether `days` after the index lies in the window.
    pub fn contains(&self, days: i64) -> bool {
        self.from.is_none_or(|f| days >= i64::from(f))
            && self.to.is_none_or(|t| days <= i64::from(t))
    }
}

/// Largest definition file read.
pub const MAX_DEFINITION_BYTES: usize = 1 << 20;
/// Deepest nesting of criteria.
pub const MAX_DEPTH: usize = 16;

impl Definition {
    /// Reads a definition from TOML (or JSON when `json`), then validates it.
    pub fn parse(text: &str, json: bool) -> Result<Definition, FeasibilityError> {
        if text.len() > MAX_DEFINITION_BYTES {
            return Err(FeasibilityError::Definition(format!(
                "the definition is larger than {MAX_DEFINITION_BYTES} bytes"
            )));
        }
        let def: Definition = if json {
            serde_json::from_str(text).map_err(|e| FeasibilityError::Definition(e.to_string()))?
        } else {
            toml::from_str(text).map_err(|e| FeasibilityError::Definition(e.to_string()))?
        };
        def.validate()?;
        Ok(def)
    }

    /// Reads a definition file (`.json` as JSON, anything else as TOML).
    pub fn read(path: &std::path::Path) -> Result<Definition, FeasibilityError> {
        let meta = std::fs::metadata(path).map_err(|e| FeasibilityError::Io(path.into(), e))?;
        if meta.len() > MAX_DEFINITION_BYTES as u64 {
            return Err(FeasibilityError::Definition(format!(
                "{} is larger than {MAX_DEFINITION_BYTES} bytes",
                path.display()
            )));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| FeasibilityError::Io(path.into(), e))?;
        let json = path.extension().is_some_and(|e| e == "json");
        Definition::parse(&text, json)
    }

    /// The definition in one canonical form (JSON, keys sorted): equal for equal definitions,
    /// whatever the file's layout; what the audit log hashes.
    pub fn normalized(&self) -> String {
        serde_json::to_value(self)
            .map(|v| v.to_string())
            .unwrap_or_default()
    }

    /// SHA-256 of [`Definition::normalized`], hex.
    pub fn hash(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.normalized().as_bytes()))
    }

    /// Checks every reference, code and range, naming the first fault and its path.
    pub fn validate(&self) -> Result<(), FeasibilityError> {
        let bad =
            |path: &str, what: String| FeasibilityError::Definition(format!("{path}: {what}"));
        if self.concept_sets.is_empty() {
            return Err(bad(
                "concept_sets",
                "at least one concept set is needed".into(),
            ));
        }
        for (name, set) in &self.concept_sets {
            set.validate(&format!("concept_sets.{name}"))?;
        }
        self.concept("index.concept", &self.index.concept)?;
        if let (Some(f), Some(t)) = (self.index.from, self.index.to) {
            if f > t {
                return Err(bad(
                    "index",
                    format!("the period ends ({t}) before it begins ({f})"),
                ));
            }
        }
        if let Some(a) = self.demographics.age {
            age_range("demographics.age", a)?;
        }
        for m in &self.demographics.municipalities {
            digits("demographics.municipalities", m, 6, 6)?;
        }
        for a in &self.demographics.areas {
            if !tokumei_japan::place::medical_areas().any(|m| m.area == a.as_str()) {
                return Err(bad(
                    "demographics.areas",
                    format!("`{a}` is not a 二次医療圏 of the shipped table"),
                ));
            }
        }
        for p in &self.demographics.providers {
            if !tokumei_model::ids::is_valid(p) {
                return Err(bad(
                    "demographics.providers",
                    "an entry is not a provider id".into(),
                ));
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            self.criterion(&format!("rules[{i}]"), &r.criterion, 0)?;
        }
        Ok(())
    }

    fn concept(&self, path: &str, name: &str) -> Result<(), FeasibilityError> {
        if self.concept_sets.contains_key(name) {
            Ok(())
        } else {
            Err(FeasibilityError::Definition(format!(
                "{path}: unknown concept set `{name}`"
            )))
        }
    }

    fn criterion(&self, path: &str, c: &Criterion, depth: usize) -> Result<(), FeasibilityError> {
        let bad = |what: String| FeasibilityError::Definition(format!("{path}: {what}"));
        if depth > MAX_DEPTH {
            return Err(bad(format!("criteria nested deeper than {MAX_DEPTH}")));
        }
        match c {
            Criterion::All(list) | Criterion::Any(list) => {
                let op = if matches!(c, Criterion::All(_)) {
                    "all"
                } else {
                    "any"
                };
                if list.is_empty() {
                    return Err(bad(format!("`{op}` needs at least one criterion")));
                }
                for (i, x) in list.iter().enumerate() {
                    self.criterion(&format!("{path}.{op}[{i}]"), x, depth + 1)?;
                }
                Ok(())
            }
            Criterion::Not(x) => self.criterion(&format!("{path}.not"), x, depth + 1),
            Criterion::Event(e) => {
                self.concept(&format!("{path}.event.concept"), &e.concept)?;
                window(&format!("{path}.event.window"), e.window)?;
                if e.at_most.is_some_and(|m| m < e.at_least) {
                    return Err(bad("`at_most` is below `at_least`".into()));
                }
                Ok(())
            }
            Criterion::Death(w) => window(&format!("{path}.death"), *w),
            Criterion::Age(a) => age_range(&format!("{path}.age"), *a),
            Criterion::Sex(_) => Ok(()),
        }
    }
}

impl ConceptSet {
    /// The drug prefixes to match: those given, and the レセ電 codes whose 薬価基準収載医薬品コード
    /// begins with one of them.
    pub fn drug_prefixes(&self) -> Vec<String> {
        let mut out = self.drugs.clone();
        for d in tokumei_japan::drug::rows() {
            if self.drugs.iter().any(|p| d.yj.starts_with(p.as_str())) {
                out.push(d.code.to_string());
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn validate(&self, path: &str) -> Result<(), FeasibilityError> {
        let bad = |what: String| FeasibilityError::Definition(format!("{path}: {what}"));
        if self.icd10.is_empty()
            && self.drugs.is_empty()
            && self.procedures.is_empty()
            && self.labs.is_empty()
        {
            return Err(bad("the concept set holds no code".into()));
        }
        for c in &self.icd10 {
            if !icd10_code(c) {
                return Err(bad(format!("`{c}` is not an ICD-10 code")));
            }
        }
        for c in &self.drugs {
            let receipt = c.len() <= 9 && c.bytes().all(|b| b.is_ascii_digit());
            let yj = (4..=12).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric());
            if c.is_empty() || !(receipt || yj) {
                return Err(bad(format!("`{c}` is not a drug code prefix")));
            }
        }
        for c in &self.procedures {
            digits(&format!("{path}.procedures"), c, 1, 9)?;
        }
        for c in &self.labs {
            if c.is_empty() || c.len() > 17 || !c.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(bad(format!("`{c}` is not a JLAC10 prefix")));
            }
        }
        if let Some(r) = self.value {
            if self.labs.is_empty() {
                return Err(bad("`value` needs laboratory codes (`labs`)".into()));
            }
            let finite = [r.min, r.max].iter().flatten().all(|v| v.is_finite());
            if !finite || matches!((r.min, r.max), (Some(a), Some(b)) if a > b) {
                return Err(bad("`value` is not a range".into()));
            }
        }
        Ok(())
    }
}

/// An ICD-10 code: a letter, two digits, then up to two more characters (`E11`, `E119`, `E11.9`).
fn icd10_code(c: &str) -> bool {
    let c = c.replace('.', "");
    let b = c.as_bytes();
    (3..=5).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_digit()
        && b[2].is_ascii_alphanumeric()
        && b[3..].iter().all(|x| x.is_ascii_alphanumeric())
}

fn digits(path: &str, v: &str, min: usize, max: usize) -> Result<(), FeasibilityError> {
    if (min..=max).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(FeasibilityError::Definition(format!(
            "{path}: `{v}` is not a code of {min}–{max} digits"
        )))
    }
}

fn age_range(path: &str, a: AgeRange) -> Result<(), FeasibilityError> {
    match (a.min, a.max) {
        (Some(lo), Some(hi)) if lo > hi => Err(FeasibilityError::Definition(format!(
            "{path}: the youngest age ({lo}) is above the oldest ({hi})"
        ))),
        (_, Some(hi)) if hi > 150 => Err(FeasibilityError::Definition(format!(
            "{path}: {hi} is not an age"
        ))),
        _ => Ok(()),
    }
}

fn window(path: &str, w: Window) -> Result<(), FeasibilityError> {
    match (w.from, w.to) {
        (Some(f), Some(t)) if f > t => Err(FeasibilityError::Definition(format!(
            "{path}: the window ends (day {t}) before it begins (day {f})"
        ))),
        _ => Ok(()),
    }
}

/// The JSON Schema of definitions (what `schema/cohort.schema.json` holds).
pub fn schema() -> String {
    let s = schemars::schema_for!(Definition);
    serde_json::to_string_pretty(&s).unwrap_or_default() + "\n"
}
