//! The check after de-identification: every text and number element of the output (in
//! sequences and private elements too; pixel data is left to the burned-in text check) is
//! decoded and searched for each identifying value the caller holds for the person, and every
//! Table E.1-1 attribute whose action changes it is compared with the original. A finding names
//! the element's path and what kind of value it matched, never the value.

use dicom_core::{Tag, VR};

use crate::charset::Repertoire;
use crate::model::{text_kind, DataSet, DicomFile, Value};
use crate::profile::{Action, Profile};

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Where: the tags from the top, `(0008,1110)[0](0010,0010)`.
    pub path: String,
    /// What: `identifier: <kind>`, `unchanged`, or `undecodable`.
    pub what: String,
}

/// An identifying value and what kind it is (`name`, `id`, `birth date`, `address` ...).
#[derive(Debug, Clone)]
pub struct Identifier {
    /// The kind, reported in findings.
    pub kind: String,
    /// The value (compared case-insensitively, spaces and `^`/`=` ignored).
    pub value: String,
}

fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '^' | '=' | '\u{3000}'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn path_of(prefix: &str, tag: Tag) -> String {
    format!("{prefix}({:04X},{:04X})", tag.group(), tag.element())
}

/// Findings in an output file: identifying values anywhere it holds text or numbers.
pub fn identifiers(file: &DicomFile, ids: &[Identifier]) -> Vec<Finding> {
    let folded: Vec<(String, &str)> = ids
        .iter()
        .map(|i| (fold(&i.value), i.kind.as_str()))
        .filter(|(v, _)| v.chars().count() >= 2)
        .collect();
    let mut found = Vec::new();
    let rep = file
        .body
        .repertoire(&Repertoire::default())
        .unwrap_or_default();
    scan(&file.body, &rep, "", &folded, &mut found);
    found
}

fn scan(
    set: &DataSet,
    inherited: &Repertoire,
    prefix: &str,
    ids: &[(String, &str)],
    found: &mut Vec<Finding>,
) {
    let rep = match set.repertoire(inherited) {
        Ok(r) => r,
        Err(_) => {
            found.push(Finding {
                path: prefix.to_string(),
                what: "undecodable".into(),
            });
            inherited.clone()
        }
    };
    for e in &set.elements {
        let path = path_of(prefix, e.tag);
        match &e.value {
            Value::Items { items, .. } => {
                for (n, item) in items.iter().enumerate() {
                    scan(item, &rep, &format!("{path}[{n}]"), ids, found);
                }
            }
            Value::Bytes(b)
                if !matches!(e.vr, VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV) =>
            {
                let text = match text_kind(e.vr) {
                    Some(kind) => rep.decode(b, kind),
                    None => Ok(String::from_utf8_lossy(b).into_owned()),
                };
                let Ok(text) = text else {
                    found.push(Finding {
                        path,
                        what: "undecodable".into(),
                    });
                    continue;
                };
                let text = fold(&text);
                for (v, kind) in ids {
                    if text.contains(v.as_str()) {
                        found.push(Finding {
                            path: path.clone(),
                            what: format!("identifier: {kind}"),
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

/// Table E.1-1 attributes present in the original that the profile changes but the output
/// holds unchanged (not empty), at any depth (items compared by position).
pub fn unchanged(original: &DicomFile, output: &DicomFile, profile: &Profile) -> Vec<Finding> {
    let mut found = Vec::new();
    compare(&original.body, &output.body, profile, "", &mut found);
    found
}

/// Table E.1-1 attributes (any action) present in a data set, at any depth.
pub fn listed(set: &DataSet, profile: &Profile) -> usize {
    set.elements
        .iter()
        .map(|e| {
            let own = usize::from(profile.action(e.tag).is_some());
            let inner = match &e.value {
                Value::Items { items, .. } => items.iter().map(|i| listed(i, profile)).sum(),
                _ => 0,
            };
            own + inner
        })
        .sum()
}

/// Table E.1-1 attributes present (non-empty) whose action changes them, at any depth: what
/// [`unchanged`] can find.
pub fn changed_listed(set: &DataSet, profile: &Profile) -> usize {
    set.elements
        .iter()
        .map(|e| match &e.value {
            Value::Items { items, .. } => items.iter().map(|i| changed_listed(i, profile)).sum(),
            Value::Bytes(b) if !b.is_empty() && changes(profile, e.tag, e.vr) => 1,
            _ => 0,
        })
        .sum()
}

/// Whether the profile surely changes a tag's value: a cleaned date or time under Modified Dates
/// may come out as it went in (a day shift keeps a time; an offset of zero days, or a date already
/// the first of its month or year at a coarser granularity, keeps a date).
fn changes(profile: &Profile, tag: Tag, vr: VR) -> bool {
    let modified = profile.has(crate::profile::ProfileOption::RetainModifiedDates);
    let by_rule = |act: Action| {
        act == Action::Clean && (vr == VR::TM || (modified && matches!(vr, VR::DA | VR::DT)))
    };
    profile
        .action(tag)
        .is_some_and(|act| act != Action::Keep && !by_rule(act))
}

fn compare(a: &DataSet, b: &DataSet, profile: &Profile, prefix: &str, found: &mut Vec<Finding>) {
    for ea in &a.elements {
        let Some(eb) = b.get(ea.tag) else { continue };
        let path = path_of(prefix, ea.tag);
        let changes = changes(profile, ea.tag, ea.vr);
        match (&ea.value, &eb.value) {
            (Value::Items { items: ia, .. }, Value::Items { items: ib, .. }) => {
                for (n, (x, y)) in ia.iter().zip(ib).enumerate() {
                    compare(x, y, profile, &format!("{path}[{n}]"), found);
                }
            }
            (Value::Bytes(x), Value::Bytes(y)) if changes && !x.is_empty() && x == y => {
                found.push(Finding {
                    path,
                    what: "unchanged".into(),
                });
            }
            _ => {}
        }
    }
}
