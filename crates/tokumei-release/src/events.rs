//! Persons with their events under (k, k^m)-anonymity (anonymized presets with `event_m` > 0).
//!
//! Every approved event table with a date is an event kind of the engine's [`SetValued`]: its code
//! (the `icd10` column when approved, else `code`, else the table's name) generalized along the
//! code's hierarchy (ICD-10: 3-character category → block → chapter; drug codes by their class;
//! other codes kept or suppressed), its date along the preset's (year-months: quarter → year; days
//! since the index date: 30-, 90-, 365-day bands; years: 5-, 10-year bands). The persons'
//! quasi-identifiers come with their hierarchies from [`crate::persons`]. The engine chooses one
//! level per column with the least loss such that any `m` events of a person, together with their
//! quasi-identifiers, are shared by at least `k` persons; it suppresses persons (within the
//! preset's limit) and removes only the events that must go.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use tokumei_anonymize::{self as anon, KmConfig, KmLoss, KmStats, SetValued};

use crate::build::Person;
use crate::checks::Table;
use crate::persons::{engine_err, risk, rows_at, Column, Protected};
use crate::preset::{Dates, Preset};
use crate::ReleaseError;

/// A missing code or date in the engine's data.
const MISSING: &str = "";

/// What protecting the events chose and cost, per event table and in total.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct EventProtection {
    /// k of the model.
    pub k: usize,
    /// m of the model: the events an intruder is assumed to know.
    pub m: usize,
    /// Per event table: the code column, the granularity of its codes and of its dates.
    pub tables: BTreeMap<String, EventLevels>,
    /// Event rows of the cohort before protection.
    pub rows_before: usize,
    /// Event rows released.
    pub rows_released: usize,
    /// The share of event rows the search was to release where a transformation could (0: none).
    pub min_rows_released: f64,
    /// Per event kind, the codes held by the most persons that gave up events last (0: none).
    pub protected_codes: usize,
    /// The largest relative error of their prevalence the search was to keep (1: no ceiling).
    pub max_protected_error: f64,
    /// The largest relative error of their prevalence as released (`None`: none protected).
    pub protected_error: Option<f64>,
    /// Event rows removed with a suppressed person.
    pub rows_of_suppressed_persons: usize,
    /// (person, item) pairs removed so that no set of m items is shared by fewer than k persons.
    pub items_removed: usize,
    /// The loss: quasi-identifiers (NCP, ARX's Loss per attribute averaged), events (NCP over
    /// rows, removed rows 1), the objective.
    pub loss: KmLoss,
    /// The search.
    pub search: KmStats,
}

/// The granularity chosen for one event table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct EventLevels {
    /// The column that carries the event's code (`-` when the table has none).
    pub code_column: String,
    /// The granularity of the codes.
    pub codes: String,
    /// The granularity of the dates.
    pub dates: String,
    /// Codes released with coarser dates than `dates` (rare ones, rather than removed).
    pub codes_with_coarser_dates: usize,
    /// Codes released coarser than `codes` (rare ones, rather than removed).
    pub codes_coarser: usize,
}

/// One event kind: which table and columns, and the hierarchies with their level names.
struct Kind {
    table: usize,
    code_col: Option<usize>,
    time_col: usize,
    /// Further date columns generalized like the time (`end_date`).
    other_times: Vec<usize>,
    code_h: anon::Hierarchy,
    code_levels: &'static [&'static str],
    time_h: anon::Hierarchy,
    time_levels: &'static [&'static str],
}

/// The code column of an event table: `icd10` when present, else `code`.
pub(crate) fn code_column(t: &Table) -> Option<usize> {
    t.col("icd10").or(t.col("code"))
}

/// The date column an event is placed by.
pub(crate) fn time_column(t: &Table) -> Option<usize> {
    t.col("date").or(t.col("start_date"))
}

/// Distinct values of some columns of a table (missing as [`MISSING`]), each through `map`.
fn distinct(t: &Table, cols: &[usize], map: &dyn Fn(&str) -> String) -> Vec<String> {
    let mut seen: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for r in &t.rows {
        for &c in cols {
            seen.insert(r[c].as_deref().unwrap_or(MISSING));
        }
    }
    let mapped: std::collections::BTreeSet<String> = seen.into_iter().map(map).collect();
    mapped.into_iter().collect()
}

/// The identity, for values already at the preset's granularity.
fn same(v: &str) -> String {
    v.to_string()
}

/// Adds the missing value to a hierarchy when the data hold one.
fn with_missing(h: anon::Hierarchy, values: &[String]) -> anon::Result<anon::Hierarchy> {
    if values.iter().any(|v| v == MISSING) {
        h.with_missing(MISSING)
    } else {
        Ok(h)
    }
}

/// The hierarchy of a code column, with its level names.
fn code_hierarchy(
    table: &str,
    column: &str,
    values: &[String],
) -> anon::Result<(anon::Hierarchy, &'static [&'static str])> {
    let present: Vec<&String> = values.iter().filter(|v| *v != MISSING).collect();
    let flat: &'static [&'static str] = &["as recorded", "*"];
    if present.is_empty() {
        let h = anon::Hierarchy::from_rows("missing", vec![vec![MISSING.into(), "*".into()]])?;
        return Ok((h, flat));
    }
    let built = match (table, column) {
        (_, "icd10") => icd10_hierarchy(&present).map(|h| {
            let names: &'static [&'static str] = &[
                "as recorded",
                "3-character category",
                "block",
                "chapter",
                "*",
            ];
            (h, names)
        }),
        ("prescriptions", "code") => anon::Hierarchy::drug_codes(&present).map(|h| {
            let names: &'static [&'static str] = &[
                "as recorded",
                "ingredient (7 characters)",
                "薬効分類 (4 digits)",
                "3-digit class",
                "*",
            ];
            (h, names)
        }),
        _ => anon::Hierarchy::flat(&present).map(|h| (h, flat)),
    }?;
    Ok((with_missing(built.0, values)?, built.1))
}

/// ICD-10 codes: the engine's builder for valid codes; any other value stays itself up to `*`.
fn icd10_hierarchy(values: &[&String]) -> anon::Result<anon::Hierarchy> {
    let (valid, other): (Vec<&String>, Vec<&String>) = values
        .iter()
        .partition(|v| anon::Hierarchy::icd10(&[v.as_str()]).is_ok());
    let mut rows: Vec<Vec<String>> = if valid.is_empty() {
        Vec::new()
    } else {
        anon::Hierarchy::icd10(&valid)?.rows().to_vec()
    };
    for v in other {
        rows.push(
            vec![v.to_string(); 4]
                .into_iter()
                .chain(["*".to_string()])
                .collect(),
        );
    }
    anon::Hierarchy::from_rows("icd10", rows)
}

/// The hierarchy of the dates as the preset releases them, with its level names.
fn time_hierarchy(
    dates: Dates,
    values: &[String],
) -> anon::Result<(anon::Hierarchy, &'static [&'static str])> {
    let present: Vec<&String> = values.iter().filter(|v| *v != MISSING).collect();
    let (h, names): (anon::Hierarchy, &'static [&'static str]) = match dates {
        Dates::Month => (
            anon::Hierarchy::calendar_months(&present)?,
            &["year-month", "quarter", "year", "*"],
        ),
        Dates::Year => (
            anon::Hierarchy::years(&present)?,
            &["year", "5-year bands", "10-year bands", "*"],
        ),
        Dates::Relative => (
            anon::Hierarchy::day_offsets(&present)?,
            &["days", "30-day bands", "90-day bands", "365-day bands", "*"],
        ),
        Dates::Day | Dates::Shift => (
            anon::Hierarchy::dates(&present)?,
            &["day", "month", "year", "5-year bands", "*"],
        ),
    };
    Ok((with_missing(h, values)?, names))
}

/// The event kinds of the approved event tables (tables without a date are not events); their
/// dates through `base` (to the preset's granularity when they are finer).
fn kinds(
    tables: &[Table],
    dates: Dates,
    base: &dyn Fn(&str) -> String,
) -> Result<Vec<Kind>, ReleaseError> {
    let mut out = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let Some(time_col) = time_column(t) else {
            continue;
        };
        let code_col = code_column(t);
        let other_times: Vec<usize> = t.col("end_date").into_iter().collect();
        let (code_h, code_levels) = match code_col {
            Some(c) => code_hierarchy(&t.name, &t.columns[c], &distinct(t, &[c], &same)),
            None => code_hierarchy(&t.name, "-", std::slice::from_ref(&t.name)),
        }
        .map_err(engine_err)?;
        let times: Vec<usize> = std::iter::once(time_col)
            .chain(other_times.iter().copied())
            .collect();
        let (time_h, time_levels) =
            time_hierarchy(dates, &distinct(t, &times, base)).map_err(engine_err)?;
        out.push(Kind {
            table: i,
            code_col,
            time_col,
            other_times,
            code_h,
            code_levels,
            time_h,
            time_levels,
        });
    }
    Ok(out)
}

fn level_name(names: &[&str], level: usize) -> String {
    names
        .get(level)
        .or(names.last())
        .copied()
        .unwrap_or("*")
        .to_string()
}

/// The data for the engine: the persons' quasi-identifiers and every event row of the kinds; with,
/// per engine event, its (table, row).
fn data(
    columns: &[Column],
    persons: usize,
    kinds: &[Kind],
    tables: &[Table],
    person_of: &HashMap<&str, usize>,
) -> Result<(SetValued, Vec<(usize, usize)>), ReleaseError> {
    let mut sv = SetValued::new(persons);
    for c in columns {
        sv.quasi_identifier(&c.name, &c.values, &c.hierarchy)
            .map_err(engine_err)?;
    }
    let mut at = Vec::new();
    for k in kinds {
        let t = &tables[k.table];
        let kind = sv.kind(&t.name, &k.code_h, &k.time_h).map_err(engine_err)?;
        for (ri, r) in t.rows.iter().enumerate() {
            let Some(&p) = r[0].as_deref().and_then(|ps| person_of.get(ps)) else {
                continue;
            };
            let code = match k.code_col {
                Some(c) => r[c].as_deref().unwrap_or(MISSING),
                None => t.name.as_str(),
            };
            let time = r[k.time_col].as_deref().unwrap_or(MISSING);
            sv.event(p, kind, code, time).map_err(engine_err)?;
            at.push((k.table, ri));
        }
    }
    Ok((sv, at))
}

/// A hierarchy's labels at one level, by value.
fn labels_at(h: &anon::Hierarchy, level: usize) -> HashMap<&str, &str> {
    h.rows()
        .iter()
        .filter_map(|r| Some((r[0].as_str(), r.get(level)?.as_str())))
        .collect()
}

/// Writes the outcome into the event tables: rows removed, codes and dates generalized; rows of
/// persons outside the cohort map (none) are kept as they are.
fn apply(
    out: &anon::KmOutcome,
    sv: &SetValued,
    kinds: &[Kind],
    tables: &mut [Table],
    at: &[(usize, usize)],
) {
    let mut drop: Vec<Vec<bool>> = tables.iter().map(|t| vec![false; t.rows.len()]).collect();
    for (e, &(ti, ri)) in at.iter().enumerate() {
        if !out.row_released[e] {
            drop[ti][ri] = true;
            continue;
        }
        let Some((code, time)) = sv.event_labels(e, out) else {
            continue;
        };
        let (code, time) = (code.to_string(), time.to_string());
        let Some(k) = kinds.iter().find(|k| k.table == ti) else {
            continue;
        };
        let row = &mut tables[ti].rows[ri];
        if let Some(c) = k.code_col {
            row[c] = (code != MISSING).then_some(code);
        }
        row[k.time_col] = (time != MISSING).then_some(time);
    }
    for (ki, k) in kinds.iter().enumerate() {
        let level = out.node.kinds[ki].1;
        let map = labels_at(&k.time_h, level);
        for r in tables[k.table].rows.iter_mut() {
            for &c in &k.other_times {
                if let Some(v) = r[c].as_deref().and_then(|v| map.get(v)) {
                    r[c] = Some(v.to_string());
                }
            }
        }
    }
    for (t, d) in tables.iter_mut().zip(drop) {
        let mut i = 0;
        t.rows.retain(|_| {
            i += 1;
            !d[i - 1]
        });
        t.rows.sort();
    }
}

/// Sorts the cohort (with its pseudonyms, returned in the new order) by content — the person's
/// fields, then their event rows without the pseudonym — and every table's rows by person in that
/// order, then by content. Persons alike in all of it are interchangeable, so the order no longer
/// depends on ids or pseudonyms.
fn in_content_order(
    cohort: &mut Vec<&Person>,
    pseudonyms: &[String],
    tables: &mut [Table],
) -> Vec<String> {
    type Rows<'a> = Vec<(usize, &'a [Option<String>])>;
    let slot: HashMap<&str, usize> = pseudonyms
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let mut rows: Vec<Rows> = vec![Vec::new(); cohort.len()];
    for (ti, t) in tables.iter().enumerate() {
        for r in &t.rows {
            let at = r
                .first()
                .and_then(|p| p.as_deref())
                .and_then(|p| slot.get(p));
            if let (Some(&i), Some(rest)) = (at, r.get(1..)) {
                rows[i].push((ti, rest));
            }
        }
    }
    for r in rows.iter_mut() {
        r.sort_unstable();
    }
    let mut order: Vec<usize> = (0..cohort.len()).collect();
    order.sort_by(|&a, &b| {
        let (p, q) = (cohort[a], cohort[b]);
        (&p.sex, p.birth, &p.municipality, p.death, &rows[a]).cmp(&(
            &q.sex,
            q.birth,
            &q.municipality,
            q.death,
            &rows[b],
        ))
    });
    let rank: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(r, &i)| (pseudonyms[i].as_str(), r))
        .collect();
    for t in tables.iter_mut() {
        t.rows.sort_by(|a, b| {
            let key = |r: &[Option<String>]| {
                r.first()
                    .and_then(|p| p.as_deref())
                    .and_then(|p| rank.get(p).copied())
                    .unwrap_or(usize::MAX)
            };
            key(a)
                .cmp(&key(b))
                .then_with(|| a.get(1..).cmp(&b.get(1..)))
        });
    }
    let reordered: Vec<&Person> = order.iter().map(|&i| cohort[i]).collect();
    *cohort = reordered;
    order.into_iter().map(|i| pseudonyms[i].clone()).collect()
}

/// (k, k^m)-anonymity over the persons' quasi-identifiers and their events: chooses the levels,
/// suppresses persons (removed from `cohort`) and events (removed from `tables`), generalizes the
/// rest in place. `pseudonyms[i]` is cohort person i's pseudonym in `tables`.
pub(crate) fn protect(
    person_cols: &[String],
    cohort: &mut Vec<&Person>,
    pseudonyms: &[String],
    tables: &mut [Table],
    end: NaiveDate,
    preset: &Preset,
) -> Result<(Protected, EventProtection), ReleaseError> {
    // The search's tie-breaks follow the order of persons and rows; person ids and pseudonyms are
    // random, so both are put in an order of content first: the same data give the same release.
    let pseudonyms = &in_content_order(cohort, pseudonyms, tables);
    let columns = person_cols
        .iter()
        .map(|c| Column::new(c, cohort, end, preset))
        .collect::<Result<Vec<_>, _>>()?;
    let everyone: Vec<usize> = (0..cohort.len()).collect();
    let before = risk(
        &rows_at(&columns, &vec![0; columns.len()], &everyone),
        preset,
    );
    let person_of: HashMap<&str, usize> = pseudonyms
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let kinds = kinds(tables, preset.dates, &same)?;
    let (sv, at) = data(&columns, cohort.len(), &kinds, tables, &person_of)?;
    let cfg = KmConfig {
        k: preset.k.max(1),
        m: preset.event_m,
        suppression_limit: preset.suppression_limit,
        qi_weight: preset.event_qi_weight,
        max_code_level: preset.event_max_code_level,
        min_rows_released: preset.event_min_rows_released,
        protect: preset.event_protect,
        protect_level: preset.event_protect_level,
        max_protected_error: preset.event_max_protected_error,
        ..KmConfig::default()
    };
    let out = sv.anonymize(&cfg).map_err(|e| match e {
        anon::AnonError::NoSolution(_) | anon::AnonError::Contradiction(_) => {
            ReleaseError::Check(format!(
                "(k = {}, k^m with m = {}) anonymity cannot be reached within the suppression \
                 limit of {:.0} % on {} persons",
                cfg.k,
                cfg.m,
                cfg.suppression_limit * 100.0,
                cohort.len()
            ))
        }
        e => engine_err(e),
    })?;
    let suppressed_rows = at
        .iter()
        .zip(&out.row_released)
        .filter(|((ti, ri), _)| {
            tables[*ti].rows[*ri][0]
                .as_deref()
                .and_then(|ps| person_of.get(ps))
                .is_some_and(|&p| out.person_suppressed[p])
        })
        .count();
    let summary = summary(&out, &kinds, tables, at.len(), suppressed_rows, &cfg);
    apply(&out, &sv, &kinds, tables, &at);
    let kept: Vec<usize> = everyone
        .into_iter()
        .filter(|&i| !out.person_suppressed[i])
        .collect();
    if kept.is_empty() {
        return Err(ReleaseError::Empty(
            "every person of the cohort was suppressed".into(),
        ));
    }
    let rows = rows_at(&columns, &out.node.qi, &kept);
    let after = risk(&rows, preset);
    let transformation = columns
        .iter()
        .zip(&out.node.qi)
        .map(|(c, &l)| (c.name.clone(), c.level_name(l)))
        .collect();
    let mut i = 0;
    cohort.retain(|_| {
        i += 1;
        !out.person_suppressed[i - 1]
    });
    let protected = Protected {
        rows,
        suppressed: out.persons_suppressed,
        before,
        after,
        transformation,
    };
    Ok((protected, summary))
}

fn summary(
    out: &anon::KmOutcome,
    kinds: &[Kind],
    tables: &[Table],
    rows_before: usize,
    rows_of_suppressed_persons: usize,
    cfg: &KmConfig,
) -> EventProtection {
    let lifted = out.cut.lifted();
    let tables_levels = kinds
        .iter()
        .zip(&out.node.kinds)
        .zip(lifted.into_iter().chain(std::iter::repeat((0, 0))))
        .map(|((k, &(cl, tl)), (dates_lifted, codes_lifted))| {
            let t = &tables[k.table];
            (
                t.name.clone(),
                EventLevels {
                    code_column: k.code_col.map_or("-".into(), |c| t.columns[c].clone()),
                    codes: level_name(k.code_levels, cl),
                    dates: level_name(k.time_levels, tl),
                    codes_with_coarser_dates: dates_lifted,
                    codes_coarser: codes_lifted,
                },
            )
        })
        .collect();
    EventProtection {
        k: cfg.k,
        m: cfg.m,
        tables: tables_levels,
        rows_before,
        rows_released: rows_before - out.rows_removed,
        min_rows_released: cfg.min_rows_released,
        protected_codes: cfg.protect,
        max_protected_error: cfg.max_protected_error,
        protected_error: out.protected_error,
        rows_of_suppressed_persons,
        items_removed: out.items_removed,
        loss: out.loss.clone(),
        search: out.stats.clone(),
    }
}

/// Whether a released value can stand for a known one: the released label is the known value's
/// generalization at some level of its column's hierarchy (for the m-event attack). Columns outside
/// the event kinds compare equal.
pub(crate) struct Covers {
    /// (table, column) → value → its labels at every level.
    up: HashMap<(String, String), HashMap<String, Vec<String>>>,
}

impl Covers {
    /// The hierarchies of the event tables as [`protect`] builds them, their dates brought to the
    /// preset's granularity by `base`.
    pub(crate) fn of(
        tables: &[Table],
        dates: Dates,
        base: &dyn Fn(&str) -> String,
    ) -> Result<Covers, ReleaseError> {
        let mut up = HashMap::new();
        for k in kinds(tables, dates, base)? {
            let t = &tables[k.table];
            let mut add = |col: &str, h: &anon::Hierarchy| {
                let m: HashMap<String, Vec<String>> =
                    h.rows().iter().map(|r| (r[0].clone(), r.clone())).collect();
                up.insert((t.name.clone(), col.to_string()), m);
            };
            if let Some(c) = k.code_col {
                add(&t.columns[c], &k.code_h);
            }
            add(&t.columns[k.time_col], &k.time_h);
        }
        Ok(Covers { up })
    }

    /// Whether `released` in `table.column` can be the value `known`.
    pub(crate) fn covers(&self, table: &str, column: &str, released: &str, known: &str) -> bool {
        if released == known || released == "*" {
            return true;
        }
        self.up
            .get(&(table.to_string(), column.to_string()))
            .and_then(|m| m.get(known))
            .is_some_and(|labels| labels.iter().any(|l| l == released))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, sex: &str, year: i32) -> Person {
        Person {
            id: id.into(),
            sex: Some(sex.into()),
            birth: NaiveDate::from_ymd_opt(year, 1, 1),
            municipality: Some("022012".into()),
            death: None,
        }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    /// The same persons and events under other ids, pseudonyms and orders come out in the same
    /// order of content, each row still with its person.
    #[test]
    fn the_order_depends_on_content_not_on_ids_or_pseudonyms() {
        let people = [
            person("a", "F", 1950),
            person("b", "M", 1950),
            person("c", "F", 1950),
        ];
        // c and a share sex and birth; their events tell them apart.
        let events = [("E11", "2022-01"), ("I10", "2022-02"), ("E11", "2022-03")];
        let run = |order: [usize; 3], names: [&str; 3]| {
            let mut cohort: Vec<&Person> = order.iter().map(|&i| &people[i]).collect();
            let ps: Vec<String> = order.iter().map(|&i| names[i].to_string()).collect();
            let mut rows: Vec<Vec<Option<String>>> = order
                .iter()
                .map(|&i| vec![s(names[i]), s(events[i].0), s(events[i].1)])
                .collect();
            rows.reverse();
            let mut tables = vec![Table {
                name: "diagnoses".into(),
                columns: vec!["pseudonym".into(), "icd10".into(), "date".into()],
                rows,
            }];
            let ps = in_content_order(&mut cohort, &ps, &mut tables);
            let ids: Vec<&str> = cohort.iter().map(|p| p.id.as_str()).collect();
            // Each row still belongs to its person.
            for (p, r) in ps.iter().zip(&tables[0].rows) {
                assert_eq!(r[0].as_deref(), Some(p.as_str()));
            }
            let content: Vec<Vec<Option<String>>> =
                tables[0].rows.iter().map(|r| r[1..].to_vec()).collect();
            (ids, content)
        };
        let one = run([0, 1, 2], ["P9", "P1", "P5"]);
        let two = run([2, 0, 1], ["Q1", "Q7", "Q3"]);
        assert_eq!(one, two);
        assert_eq!(one.0, vec!["a", "c", "b"]);
    }
}
