//! The application file (TOML): read field by field so that every missing, unknown or invalid
//! field is reported at once, and a complete commented template.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    Applicant, Application, Certification, Cohort, Feasibility, ImageRequest, Items, ReleaseKind,
};
use crate::ReviewError;

/// A complete commented application file: every field, required or optional, with its meaning.
/// It is not accepted as it stands (its recipient key is a placeholder).
pub const TEMPLATE: &str = include_str!("template.toml");

/// Top-level keys of an application file.
pub const KEYS: &[&str] = &[
    "title",
    "kind",
    "purpose",
    "period_from",
    "period_to",
    "contract_expiry",
    "recipient_key",
    "security_plan",
    "aggregate_dimensions",
    "revises",
    "applicant",
    "cohort",
    "items",
    "feasibility",
    "images",
];

/// Keys of the `[images]` table.
pub const IMAGES_KEYS: &[&str] = &["modalities", "body_parts", "from", "to"];

/// Keys of the `[feasibility]` table (applications of kind `feasibility` only).
pub const FEASIBILITY_KEYS: &[&str] = &["users", "epsilon", "recruitment"];

/// Keys of the `[applicant]` table.
pub const APPLICANT_KEYS: &[&str] = &[
    "organisation",
    "certification",
    "certification_id",
    "certification_valid_until",
    "responsible_researcher",
    "contact",
];

/// Keys of the `[cohort]` table.
pub const COHORT_KEYS: &[&str] = &["icd10", "age_min", "age_max", "sex", "municipalities"];

/// Keys of each `[[items]]` table.
pub const ITEMS_KEYS: &[&str] = &["table", "columns"];

/// One problem of an application file: the field (`applicant.organisation`, `items[1].columns`)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The field, as a path into the file.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem of `field`.
    pub fn new(field: &str, message: impl Into<String>) -> Problem {
        Problem {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The fields of one TOML table, read one by one; each problem is recorded, never returned early.
struct Fields<'a> {
    table: &'a toml::Table,
    prefix: String,
    problems: &'a mut Vec<Problem>,
}

impl Fields<'_> {
    fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn push(&mut self, key: &str, message: impl Into<String>) {
        let field = self.path(key);
        self.problems.push(Problem::new(&field, message));
    }

    fn convert<T: DeserializeOwned + Default>(&mut self, key: &str, v: &toml::Value) -> T {
        match v.clone().try_into() {
            Ok(t) => t,
            Err(e) => {
                let message = toml::de::Error::message(&e).to_string();
                self.push(key, message);
                T::default()
            }
        }
    }

    /// A required field (its default when missing or invalid, with the problem recorded).
    fn required<T: DeserializeOwned + Default>(&mut self, key: &str) -> T {
        match self.table.get(key) {
            Some(v) => self.convert(key, v),
            None => {
                self.push(key, "missing");
                T::default()
            }
        }
    }

    /// An optional field (its default when absent).
    fn optional<T: DeserializeOwned + Default>(&mut self, key: &str) -> T {
        match self.table.get(key) {
            Some(v) => self.convert(key, v),
            None => T::default(),
        }
    }

    /// Records every key not in `known`.
    fn unknown(&mut self, known: &[&str]) {
        let unknown: Vec<String> = self
            .table
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            self.push(&k, format!("unknown field (known: {})", known.join(", ")));
        }
    }

    /// A sub-table (empty when absent, or not a table: then the problem is recorded).
    fn table(&mut self, key: &str) -> toml::Table {
        match self.table.get(key) {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t.clone(),
            Some(_) => {
                self.push(key, "not a table");
                toml::Table::new()
            }
        }
    }
}

/// Parses and checks an application file.
pub(super) fn parse(text: &str) -> Result<Application, ReviewError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| {
            text.get(..s.start).map_or(0, |t| t.matches('\n').count()) + 1
        });
        let message = format!("not TOML (line {line}): {}", e.message());
        ReviewError::Application(vec![Problem::new("file", message)])
    })?;
    let mut problems = Vec::new();
    let application = read(&table, &mut problems);
    let found = problems.clone();
    problems.extend(
        application
            .problems()
            .into_iter()
            .filter(|p| !found.iter().any(|f| covers(&f.field, &p.field))),
    );
    if problems.is_empty() {
        Ok(application)
    } else {
        Err(ReviewError::Application(problems))
    }
}

/// Whether a problem already found in `found` (a field or a part of it) makes a check of `field`
/// redundant.
fn covers(found: &str, field: &str) -> bool {
    found == field
        || found
            .strip_prefix(field)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

fn read(table: &toml::Table, problems: &mut Vec<Problem>) -> Application {
    let mut f = Fields {
        table,
        prefix: String::new(),
        problems,
    };
    f.unknown(KEYS);
    let applicant = f.table("applicant");
    let cohort = f.table("cohort");
    let feasibility = f.table("feasibility");
    let images = f.table("images");
    let kind = f
        .required::<Option<ReleaseKind>>("kind")
        .unwrap_or(ReleaseKind::Anonymized);
    // A feasibility application receives counts only: no key to encrypt to, no items.
    let counts_only = kind == ReleaseKind::Feasibility;
    let mut a = Application {
        title: f.required("title"),
        kind,
        purpose: f.required("purpose"),
        period_from: f.required("period_from"),
        period_to: f.required("period_to"),
        contract_expiry: f.required("contract_expiry"),
        recipient_key: if counts_only {
            f.optional("recipient_key")
        } else {
            f.required("recipient_key")
        },
        security_plan: if counts_only {
            f.optional("security_plan")
        } else {
            f.required("security_plan")
        },
        aggregate_dimensions: f.optional("aggregate_dimensions"),
        revises: f.optional("revises"),
        applicant: read_applicant(&applicant, f.problems),
        cohort: read_cohort(&cohort, f.problems),
        items: Vec::new(),
        feasibility: f
            .table
            .contains_key("feasibility")
            .then(|| read_feasibility(&feasibility, f.problems)),
        images: f
            .table
            .contains_key("images")
            .then(|| read_images(&images, f.problems)),
    };
    let items = if counts_only {
        f.optional::<Vec<toml::Value>>("items")
    } else {
        f.required::<Vec<toml::Value>>("items")
    };
    a.items = read_items(&items, f.problems);
    a
}

fn read_feasibility(table: &toml::Table, problems: &mut Vec<Problem>) -> Feasibility {
    let mut f = Fields {
        table,
        prefix: "feasibility.".into(),
        problems,
    };
    f.unknown(FEASIBILITY_KEYS);
    Feasibility {
        users: f.required("users"),
        epsilon: f.optional("epsilon"),
        recruitment: f.optional("recruitment"),
    }
}

fn read_images(table: &toml::Table, problems: &mut Vec<Problem>) -> ImageRequest {
    let mut f = Fields {
        table,
        prefix: "images.".into(),
        problems,
    };
    f.unknown(IMAGES_KEYS);
    ImageRequest {
        modalities: f.optional("modalities"),
        body_parts: f.optional("body_parts"),
        from: f.optional("from"),
        to: f.optional("to"),
    }
}

fn read_applicant(table: &toml::Table, problems: &mut Vec<Problem>) -> Applicant {
    let mut f = Fields {
        table,
        prefix: "applicant.".into(),
        problems,
    };
    f.unknown(APPLICANT_KEYS);
    Applicant {
        organisation: f.required("organisation"),
        certification: f
            .required::<Option<Certification>>("certification")
            .unwrap_or(Certification::None),
        certification_id: f.optional("certification_id"),
        certification_valid_until: f.optional("certification_valid_until"),
        responsible_researcher: f.required("responsible_researcher"),
        contact: f.optional("contact"),
    }
}

fn read_cohort(table: &toml::Table, problems: &mut Vec<Problem>) -> Cohort {
    let mut f = Fields {
        table,
        prefix: "cohort.".into(),
        problems,
    };
    f.unknown(COHORT_KEYS);
    Cohort {
        icd10: f.optional("icd10"),
        age_min: f.optional("age_min"),
        age_max: f.optional("age_max"),
        sex: f.optional("sex"),
        municipalities: f.optional("municipalities"),
    }
}

fn read_items(values: &[toml::Value], problems: &mut Vec<Problem>) -> Vec<Items> {
    let mut items = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let Some(table) = v.as_table() else {
            problems.push(Problem::new(&format!("items[{i}]"), "not a table"));
            continue;
        };
        let mut f = Fields {
            table,
            prefix: format!("items[{i}]."),
            problems,
        };
        f.unknown(ITEMS_KEYS);
        items.push(Items {
            table: f.required("table"),
            columns: f.required("columns"),
        });
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    fn problems(text: &str) -> Vec<Problem> {
        match Application::from_toml(text) {
            Err(ReviewError::Application(p)) => p,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn fields(p: &[Problem]) -> Vec<&str> {
        p.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn a_file_that_is_not_toml_names_its_line() {
        let p = problems("title = \"t\"\nkind = anonymized\n");
        assert_eq!(fields(&p), vec!["file"], "{p:?}");
        assert!(p[0].message.starts_with("not TOML (line 2)"), "{p:?}");
    }

    #[test]
    fn every_missing_field_is_reported_at_once() {
        let p = problems("title = \"t\"\n[applicant]\norganisation = \"o\"\n");
        assert_eq!(
            fields(&p),
            vec![
                "kind",
                "purpose",
                "period_from",
                "period_to",
                "contract_expiry",
                "recipient_key",
                "security_plan",
                "applicant.certification",
                "applicant.responsible_researcher",
                "items",
            ],
            "{p:?}"
        );
        assert!(p.iter().all(|p| p.message == "missing"), "{p:?}");
    }

    #[test]
    fn unknown_invalid_and_semantic_problems_come_together() {
        let text = super::super::tests::SAMPLE
            .replace("kind = \"anonymized\"", "kind = \"open\"\ncolour = \"red\"")
            .replace("2021-04-01", "2021/04/01")
            .replace("age_min = 40", "age_min = \"forty\"")
            .replace("\"code\", \"date\"", "\"code\", \"surname_kanji\"");
        let p = problems(&text);
        let f = fields(&p);
        for want in ["colour", "kind", "cohort.age_min", "period_from", "items"] {
            assert!(f.contains(&want), "{want} not in {p:?}");
        }
        let items = p.iter().find(|p| p.field == "items").expect("items");
        assert!(
            items.message.contains("prescriptions.surname_kanji"),
            "{p:?}"
        );
        // A field reported missing is not reported again as empty.
        let p = problems(&super::super::tests::SAMPLE.replace("title = ", "# title = "));
        assert_eq!(fields(&p), vec!["title"], "{p:?}");
    }

    #[test]
    fn the_template_names_every_field_and_parses_once_filled_in() {
        for key in KEYS
            .iter()
            .chain(APPLICANT_KEYS)
            .chain(COHORT_KEYS)
            .chain(ITEMS_KEYS)
            .chain(FEASIBILITY_KEYS)
        {
            let named = |l: &str| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{key} ="))
                    || l == format!("[{key}]")
                    || l == format!("[[{key}]]")
            };
            assert!(
                TEMPLATE.lines().any(named),
                "the template has no line for {key}"
            );
        }
        let p = problems(TEMPLATE);
        assert_eq!(fields(&p), vec!["recipient_key"], "{p:?}");
        let filled = TEMPLATE.replace("age1REPLACE-WITH-THE-RECIPIENT-KEY", KEY);
        Application::from_toml(&filled).expect("the template, filled in, is accepted");
    }

    #[test]
    fn the_documentation_describes_every_field() {
        let doc = include_str!("../../../../docs/applications.md");
        for key in KEYS
            .iter()
            .chain(APPLICANT_KEYS)
            .chain(COHORT_KEYS)
            .chain(ITEMS_KEYS)
            .chain(FEASIBILITY_KEYS)
        {
            assert!(
                doc.contains(&format!("`{key}`")),
                "docs/applications.md lacks {key}"
            );
        }
        for (table, columns) in super::super::CATALOGUE {
            assert!(doc.contains(&format!("`{table}`")), "{table}");
            for c in *columns {
                assert!(doc.contains(&format!("`{c}`")), "{table}.{c}");
            }
        }
    }
}
