//! The utility report of a release (RULES §11, utility): what protection cost researchers, measured
//! on the tables as released against the same cohort before protection — persons and event rows
//! kept, the prevalence of the top conditions and drugs overall, per sex × age band and per sex ×
//! age band × year, and each released column's distribution before and after — with the goals the
//! report states and checks ([`UtilityTargets`]).
//!
//! A released code counts for a top item only when it is at least as specific as the item (it
//! starts with the item's key and is not a range): a diagnosis generalized to its block
//! (`E10-E14`), its chapter (`IV`) or `*` no longer counts for `E11`, a drug code cut to `2149` no
//! longer counts for `2149046`, and that loss shows as error. Nothing counted on fewer persons
//! than the smallest cell (before protection) is reported: top items and cells below it are left
//! out, and values held by fewer rows are folded into "other".
//!
//! Every table is read once per measure over borrowed values (hash maps keyed by `&str`, persons
//! and items as integers): millions of event rows are measured in seconds.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::checks::{Table, DATE_COLUMNS};

/// Numeric columns of the event tables (shown as quantiles).
const NUMERIC: &[&str] = &["days", "daily_quantity", "points", "count", "value_num"];
/// Date columns of the persons table (shown by year).
const PERSON_DATES: &[&str] = &["birth_year_month", "birth_year", "death_month"];
/// Most values shown of a categorical column (the rest is "other").
const CATEGORIES: usize = 15;
/// The label of values folded together.
pub const OTHER: &str = "other";
/// The label of empty values.
pub const NONE: &str = "(none)";
/// The label of dates without a year (days since an index date, or unreadable).
pub const NO_YEAR: &str = "(no year)";

/// A hash map under the Rust compiler's fast hash (the keys are the release's own values, so
/// there is no flooding to defend against).
type Map<K, V> = rustc_hash::FxHashMap<K, V>;

/// The goals the report states and checks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UtilityTargets {
    /// Smallest share of event rows kept (0.9).
    pub rows_kept: f64,
    /// Highest relative prevalence error of each top condition and drug (0.05).
    pub max_relative_error: f64,
    /// Smallest cell reported, in persons before protection (10).
    pub min_cell: usize,
    /// How many top conditions and top drugs (20).
    pub top: usize,
}

impl Default for UtilityTargets {
    fn default() -> Self {
        UtilityTargets {
            rows_kept: 0.9,
            max_relative_error: 0.05,
            min_cell: 10,
            top: 20,
        }
    }
}

/// What the utility of a release is measured on.
#[derive(Debug, Clone, Copy)]
pub struct UtilityInput<'a> {
    /// The cohort before protection: a `persons` table first (same columns as the released persons
    /// table, values at the preset's base granularity, every cohort person incl. those later
    /// suppressed), then the event tables of the approved items with codes as recorded and dates as
    /// days `YYYY-MM-DD` (or integers under relative dates), under the same pseudonyms as the
    /// release.
    pub unprocessed: &'a [Table],
    /// The released tables (persons first), as written.
    pub released: &'a [Table],
    /// Per cohort pseudonym: (sex, age band at the period end: "40-49", ..., "90+"), from
    /// unprocessed data.
    pub strata: &'a HashMap<String, (String, String)>,
    /// Goals the report states and checks.
    pub targets: UtilityTargets,
}

/// A count before protection and as released.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Kept {
    /// Before protection.
    pub before: usize,
    /// As released.
    pub after: usize,
    /// `after / before`; `None` when nothing was there before.
    pub share: Option<f64>,
}

/// The rows of one event table before protection and as released.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableRows {
    /// Table name.
    pub table: String,
    /// Rows before, released and the share kept.
    #[serde(flatten)]
    pub rows: Kept,
}

/// The prevalence of an item in a population before protection and as released.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prevalence {
    /// Persons with the item before protection.
    pub persons_before: usize,
    /// Persons of the population before protection (the cohort, or the cell's cohort persons).
    pub population_before: usize,
    /// `persons_before / population_before`.
    pub prevalence_before: f64,
    /// Released persons with the item (a released code counts only when at least as specific).
    pub persons_after: usize,
    /// Released persons of the population.
    pub population_after: usize,
    /// `persons_after / population_after` (0 when nobody of the population was released).
    pub prevalence_after: f64,
    /// `|after − before| / before`; `None` when the prevalence before is 0.
    pub relative_error: Option<f64>,
}

/// A top condition or drug.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// The key: an ICD-10 3-character category, the first 7 characters of a drug price code, or a
    /// code as recorded.
    pub key: String,
    /// Its prevalence in the cohort before and as released.
    #[serde(flatten)]
    pub prevalence: Prevalence,
}

/// An item's prevalence in one cell (sex × age band, or sex × age band × year).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// The item's key.
    pub key: String,
    /// Sex.
    pub sex: String,
    /// Age band at the period end.
    pub age_band: String,
    /// Year of the events (`None` for the cell of every year).
    pub year: Option<u16>,
    /// Persons with the item in the cell over the cell's persons, before and as released.
    #[serde(flatten)]
    pub prevalence: Prevalence,
}

/// How many cells were reported, how many are within the error goal and the largest error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CellSummary {
    /// Cells reported.
    pub cells: usize,
    /// Cells whose relative error is within the goal.
    pub within_goal: usize,
    /// Largest relative error of a cell (`None` without cells).
    pub largest_error: Option<f64>,
}

/// The cell summary of one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemCells {
    /// The item's key.
    pub key: String,
    /// Its cells.
    #[serde(flatten)]
    pub summary: CellSummary,
}

/// The cells of every top item of a group, with a summary per item and overall.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cells {
    /// Cells with at least the smallest cell's persons before protection, by item, stratum and year.
    pub cells: Vec<Cell>,
    /// Per top item.
    pub per_item: Vec<ItemCells>,
    /// Over every cell.
    pub overall: CellSummary,
}

/// The top conditions or the top drugs of the cohort.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TopItems {
    /// The event table (`diagnoses`, `prescriptions`).
    pub table: String,
    /// The column read (`icd10`, or `code` when the table has no `icd10`); `None` without the table.
    pub column: Option<String>,
    /// The top items by persons before protection, most frequent first.
    pub items: Vec<Item>,
    /// Largest relative error of a top item (`None` without items).
    pub largest_error: Option<f64>,
    /// Per sex × age band.
    pub strata: Cells,
    /// Per sex × age band × year.
    pub strata_years: Cells,
}

/// How a column's distribution is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Top values with shares.
    Categorical,
    /// Shares by year.
    Date,
    /// Quantiles (also dates as days since an index date).
    Numeric,
}

/// A value and its share of the column's rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    /// The value, a year, or one of [`OTHER`], [`NONE`], [`NO_YEAR`], `*`.
    pub value: String,
    /// Share of the rows.
    pub share: f64,
}

/// Quantiles of a numeric column (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    /// 1st percentile.
    pub p1: f64,
    /// 5th percentile.
    pub p5: f64,
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// One side's distribution of a column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    /// Rows of the table.
    pub rows: usize,
    /// Rows without a value of the column's kind (empty; for numeric columns also `*` or text).
    pub missing: usize,
    /// Categorical and date columns: the values or years with their shares, [`OTHER`] last.
    pub shares: Vec<Share>,
    /// Numeric columns with at least the smallest cell's values.
    pub quantiles: Option<Quantiles>,
}

/// A released column's distribution before protection and as released.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnDistribution {
    /// Table name.
    pub table: String,
    /// Column name.
    pub column: String,
    /// How it is shown.
    pub kind: ColumnKind,
    /// Before protection (`None` when the unprocessed tables lack the column).
    pub before: Option<Distribution>,
    /// As released.
    pub after: Distribution,
}

/// A goal of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GoalKind {
    /// Share of event rows kept, at least the target.
    RowsKept,
    /// Largest relative prevalence error of a top condition, at most the target.
    ConditionError,
    /// Largest relative prevalence error of a top drug, at most the target.
    DrugError,
    /// Smallest cell reported, in persons, at least the target.
    SmallestCell,
}

/// A goal with its figure and whether it holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Goal {
    /// Which goal.
    pub goal: GoalKind,
    /// The target.
    pub target: f64,
    /// The figure measured (`None` when there is nothing to measure).
    pub figure: Option<f64>,
    /// Whether the figure meets the target (`None` when there is nothing to measure).
    pub met: Option<bool>,
}

/// The utility report of a release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UtilityReport {
    /// The goals measured against.
    pub targets: UtilityTargets,
    /// Persons of the cohort and persons released.
    pub persons: Kept,
    /// Rows per event table.
    pub tables: Vec<TableRows>,
    /// Rows of every event table together.
    pub rows: Kept,
    /// The top conditions (ICD-10 3-character categories of `diagnoses`).
    pub conditions: TopItems,
    /// The top drugs (`prescriptions` codes).
    pub drugs: TopItems,
    /// Every released column before and after.
    pub distributions: Vec<ColumnDistribution>,
    /// Each goal with its figure and whether it holds.
    pub goals_met: Vec<Goal>,
}

impl UtilityReport {
    /// Whether every goal that could be measured holds.
    pub fn all_goals_met(&self) -> bool {
        self.goals_met.iter().all(|g| g.met != Some(false))
    }
}

fn table<'a>(tables: &'a [Table], name: &str) -> Option<&'a Table> {
    tables.iter().find(|t| t.name == name)
}

fn cell(row: &[Option<String>], i: usize) -> Option<&str> {
    row.get(i).and_then(|c| c.as_deref())
}

/// A value that carries something (not empty, not `*`).
fn value(row: &[Option<String>], i: usize) -> Option<&str> {
    cell(row, i).filter(|v| !v.is_empty() && *v != "*")
}

fn kept(before: usize, after: usize) -> Kept {
    Kept {
        before,
        after,
        share: (before > 0).then(|| after as f64 / before as f64),
    }
}

/// The year of a date (`2022-03-15`, `2022-03`, `2022-Q1`, `2022`): its first 4 characters when
/// they are digits and the date has no more or goes on with `-`.
pub fn year_of(date: &str) -> Option<u16> {
    let b = date.as_bytes();
    let digits = b.len() >= 4 && b[..4].iter().all(u8::is_ascii_digit);
    if !digits || (b.len() > 4 && b[4] != b'-') {
        return None;
    }
    date[..4].parse().ok().filter(|y| *y > 0)
}

/// Whether a date column holds days since an index date: decided by its first value that is not a
/// bare 4-digit number (which could be a year or a day count), an integer for relative days.
fn relative_column(t: &Table, i: usize) -> bool {
    t.rows
        .iter()
        .filter_map(|r| value(r, i))
        .find(|v| !is_year_label(v))
        .is_some_and(|v| {
            let digits = v.strip_prefix('-').unwrap_or(v);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Orders strata by sex, then age band by its first number.
fn stratum_order<'s>(s: &(&'s str, &'s str)) -> (&'s str, u32, &'s str) {
    let digits: String = s.1.chars().take_while(char::is_ascii_digit).collect();
    (s.0, digits.parse().unwrap_or(u32::MAX), s.1)
}

/// The persons of both sides as integers, with their strata.
struct People<'a> {
    index: Map<&'a str, u32>,
    stratum: Vec<Option<u32>>,
    strata: Vec<(&'a str, &'a str)>,
    cohort: usize,
    released: usize,
    cohort_in: Vec<usize>,
    released_in: Vec<usize>,
}

impl<'a> People<'a> {
    fn new(input: &UtilityInput<'a>) -> People<'a> {
        let mut strata: Vec<(&'a str, &'a str)> = input
            .strata
            .values()
            .map(|(s, a)| (s.as_str(), a.as_str()))
            .collect();
        strata.sort_by(|a, b| stratum_order(a).cmp(&stratum_order(b)));
        strata.dedup();
        let slot: HashMap<(&str, &str), u32> = strata
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, i as u32))
            .collect();
        let mut people = People {
            index: Map::default(),
            stratum: Vec::new(),
            cohort_in: vec![0; strata.len()],
            released_in: vec![0; strata.len()],
            strata,
            cohort: 0,
            released: 0,
        };
        for (tables, released) in [(input.unprocessed, false), (input.released, true)] {
            let Some(t) = table(tables, "persons") else {
                continue;
            };
            let mut seen = vec![false; people.stratum.len()];
            for p in t.rows.iter().filter_map(|r| cell(r, 0)) {
                let i = match people.index.get(p) {
                    Some(&i) => i as usize,
                    None => {
                        let s = input.strata.get(p).and_then(|(s, a)| slot.get(&(s, a)));
                        people.index.insert(p, people.stratum.len() as u32);
                        people.stratum.push(s.copied());
                        people.stratum.len() - 1
                    }
                };
                seen.resize(people.stratum.len(), false);
                if !std::mem::replace(&mut seen[i], true) {
                    people.count(i, released);
                }
            }
        }
        people
    }

    fn count(&mut self, i: usize, released: bool) {
        let (all, per) = if released {
            (&mut self.released, &mut self.released_in)
        } else {
            (&mut self.cohort, &mut self.cohort_in)
        };
        *all += 1;
        if let Some(s) = self.stratum[i] {
            per[s as usize] += 1;
        }
    }

    /// A lookup of rows' persons that remembers the last (rows come sorted by pseudonym).
    fn lookup(&self) -> Lookup<'_, 'a> {
        Lookup {
            people: self,
            last: None,
        }
    }
}

struct Lookup<'p, 'a> {
    people: &'p People<'a>,
    last: Option<(&'p str, Option<u32>)>,
}

impl<'p> Lookup<'p, '_> {
    fn of(&mut self, row: &'p [Option<String>]) -> Option<u32> {
        let p = cell(row, 0)?;
        match self.last {
            Some((last, i)) if last == p => i,
            _ => {
                let i = self.people.index.get(p).copied();
                self.last = Some((p, i));
                i
            }
        }
    }
}

/// The top conditions or the top drugs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Conditions,
    Drugs,
}

impl Group {
    fn table(self) -> &'static str {
        match self {
            Group::Conditions => "diagnoses",
            Group::Drugs => "prescriptions",
        }
    }

    fn column(self, t: &Table) -> Option<(usize, &'static str)> {
        match self {
            Group::Conditions => t
                .col("icd10")
                .map(|i| (i, "icd10"))
                .or_else(|| t.col("code").map(|i| (i, "code"))),
            Group::Drugs => t.col("code").map(|i| (i, "code")),
        }
    }

    /// The item key of a value; `None` for a range (`E10-E14`), which is no item.
    fn key(self, v: &str) -> Option<Cow<'_, str>> {
        let k = match self {
            Group::Conditions => condition_key(v),
            Group::Drugs => Cow::Borrowed(drug_key(v)),
        };
        (!matches!(k, Cow::Borrowed(b) if ranged(v, b.len()))).then_some(k)
    }
}

/// The ICD-10 3-character category of a code (`E119`, `E11.9`, `e119`, full-width forms: `E11`);
/// any other code as it is.
fn condition_key(v: &str) -> Cow<'_, str> {
    let b = v.as_bytes();
    if b.len() >= 3 && b[0].is_ascii_uppercase() && b[1].is_ascii_digit() && b[2].is_ascii_digit() {
        return Cow::Borrowed(&v[..3]);
    }
    // Only an unusual spelling (lower case, spaces, full width) costs an allocation.
    let plain = v.is_ascii()
        && !b
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || *c == b' ');
    match tokumei_japan::icd10::category(v).filter(|_| !plain) {
        Some(k) => Cow::Owned(k),
        None => Cow::Borrowed(v),
    }
}

/// The ingredient and route of a drug: the first 7 characters of a 12-character drug price code
/// whose first 4 are digits, a レセ電 医薬品コード read as its price code ([`price_code`]); any other
/// code as it is.
fn drug_key(v: &str) -> &str {
    let v = price_code(v);
    let b = v.as_bytes();
    if b.len() == 12 && b[..4].iter().all(u8::is_ascii_digit) {
        v.get(..7).unwrap_or(v)
    } else {
        v
    }
}

/// A drug code as the release's drug hierarchy lifts it: a レセ電 医薬品コード through its
/// 薬価基準収載医薬品コード (`tokumei_japan::drug`), any other code as it is.
fn price_code(v: &str) -> &str {
    tokumei_japan::drug::yj_of(v).unwrap_or(v)
}

/// Whether `v` goes on after its first `len` bytes as a range (`E10-E14` is not `E10`).
fn ranged(v: &str, len: usize) -> bool {
    v.get(len..).is_some_and(|rest| rest.starts_with('-'))
}

/// Finds the top items a value counts for: the items whose key it starts with, unless it goes on
/// as a range.
struct Matcher<'k> {
    group: Group,
    keys: Map<&'k str, u32>,
    lengths: Vec<usize>,
}

impl<'k> Matcher<'k> {
    fn new(group: Group, keys: &'k [Cow<'_, str>]) -> Matcher<'k> {
        let mut lengths: Vec<usize> = keys.iter().map(|k| k.len()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        Matcher {
            group,
            keys: keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.as_ref(), i as u32))
                .collect(),
            lengths,
        }
    }

    fn each(&self, v: &str, mut f: impl FnMut(u32)) {
        match self.group {
            Group::Conditions => {
                if let Some(&i) = Group::Conditions
                    .key(v)
                    .and_then(|k| self.keys.get(k.as_ref()))
                {
                    f(i);
                }
            }
            Group::Drugs => {
                let v = price_code(v);
                for &len in &self.lengths {
                    let Some(prefix) = v.get(..len) else { continue };
                    if let Some(&i) = self.keys.get(prefix).filter(|_| !ranged(v, len)) {
                        f(i);
                    }
                }
            }
        }
    }
}

/// A coded table read once: its distinct values, and (value, person, year) per row with a person
/// of the cohort and a value (year 0 when the date has none or counts days since an index date).
struct Coded<'a> {
    values: Vec<&'a str>,
    rows: Vec<(u32, u32, u16)>,
}

fn read_coded<'a>(t: &'a Table, col: usize, people: &People) -> Coded<'a> {
    let date = t.col("date").filter(|d| !relative_column(t, *d));
    let mut ids: Map<&'a str, u32> = Map::default();
    let mut out = Coded {
        values: Vec::new(),
        rows: Vec::with_capacity(t.rows.len()),
    };
    let mut person = people.lookup();
    for r in &t.rows {
        let (Some(p), Some(v)) = (person.of(r), value(r, col)) else {
            continue;
        };
        let id = *ids.entry(v).or_insert_with(|| {
            out.values.push(v);
            out.values.len() as u32 - 1
        });
        let year = date
            .and_then(|d| value(r, d))
            .and_then(year_of)
            .unwrap_or(0);
        out.rows.push((id, p, year));
    }
    out
}

/// The `top` keys held by the most persons (at least `floor`) in a table, most frequent first
/// (ties by key).
fn top_keys<'a>(coded: &Coded<'a>, group: Group, top: usize, floor: usize) -> Vec<Cow<'a, str>> {
    let mut ids: Map<Cow<'a, str>, u32> = Map::default();
    let mut keys: Vec<Cow<'a, str>> = Vec::new();
    let key_of: Vec<Option<u32>> = coded
        .values
        .iter()
        .map(|v| {
            let k = group.key(v)?;
            Some(*ids.entry(k).or_insert_with_key(|k| {
                keys.push(k.clone());
                keys.len() as u32 - 1
            }))
        })
        .collect();
    let mut pairs: Vec<(u32, u32)> = coded
        .rows
        .iter()
        .filter_map(|&(v, p, _)| key_of[v as usize].map(|k| (k, p)))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut persons = vec![0usize; keys.len()];
    for (k, _) in pairs {
        persons[k as usize] += 1;
    }
    let mut order: Vec<usize> = (0..keys.len()).filter(|&k| persons[k] >= floor).collect();
    order.sort_by(|&a, &b| {
        persons[b]
            .cmp(&persons[a])
            .then_with(|| keys[a].cmp(&keys[b]))
    });
    order.truncate(top);
    order.into_iter().map(|k| keys[k].clone()).collect()
}

/// Persons per top item, and per (item, stratum, year) with year 0 for the cell of every year.
struct Tally {
    persons: Vec<usize>,
    cells: Map<(u32, u32, u16), usize>,
}

impl Tally {
    fn empty(items: usize) -> Tally {
        Tally {
            persons: vec![0; items],
            cells: Map::default(),
        }
    }
}

/// Counts the persons of each top item a coded table's values count for.
fn tally(coded: &Coded, matcher: &Matcher, people: &People, items: usize) -> Tally {
    let hits: Vec<Vec<u32>> = coded
        .values
        .iter()
        .map(|v| {
            let mut h = Vec::new();
            matcher.each(v, |i| h.push(i));
            h
        })
        .collect();
    let mut seen: Vec<(u32, u32, u16)> = Vec::new();
    for &(v, p, year) in &coded.rows {
        seen.extend(hits[v as usize].iter().map(|&i| (i, p, year)));
    }
    seen.sort_unstable();
    seen.dedup();
    let mut out = Tally::empty(items);
    let mut last = None;
    for (i, p, year) in seen {
        let stratum = people.stratum[p as usize];
        if last != Some((i, p)) {
            last = Some((i, p));
            out.persons[i as usize] += 1;
            if let Some(s) = stratum {
                *out.cells.entry((i, s, 0)).or_default() += 1;
            }
        }
        if let Some(s) = stratum.filter(|_| year != 0) {
            *out.cells.entry((i, s, year)).or_default() += 1;
        }
    }
    out
}

fn prevalence(
    before: usize,
    population_before: usize,
    after: usize,
    population_after: usize,
) -> Prevalence {
    let rate = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let (b, a) = (
        rate(before, population_before),
        rate(after, population_after),
    );
    Prevalence {
        persons_before: before,
        population_before,
        prevalence_before: b,
        persons_after: after,
        population_after,
        prevalence_after: a,
        relative_error: (b > 0.0).then(|| (a - b).abs() / b),
    }
}

fn within(p: &Prevalence, goal: f64) -> bool {
    p.relative_error.is_some_and(|e| e <= goal)
}

/// The largest of the errors measured.
fn largest(errors: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    errors
        .flatten()
        .fold(None, |m: Option<f64>, e| Some(m.map_or(e, |m| m.max(e))))
}

fn summary<'c>(cells: impl Iterator<Item = &'c Cell>, goal: f64) -> CellSummary {
    let mut s = CellSummary::default();
    for c in cells {
        s.cells += 1;
        s.within_goal += usize::from(within(&c.prevalence, goal));
        s.largest_error = largest([s.largest_error, c.prevalence.relative_error].into_iter());
    }
    s
}

/// The cells of the top items (`years`: per year, else every year together) with at least the
/// smallest cell's persons before protection, in the population and with the item.
fn cells(
    keys: &[Cow<str>],
    before: &Tally,
    after: &Tally,
    people: &People,
    targets: &UtilityTargets,
    years: bool,
) -> Cells {
    let floor = targets.min_cell.max(1);
    let mut found: Vec<(u32, u32, u16, usize)> = before
        .cells
        .iter()
        .filter(|((_, s, y), n)| {
            (*y != 0) == years && **n >= floor && people.cohort_in[*s as usize] >= floor
        })
        .map(|((i, s, y), n)| (*i, *s, *y, *n))
        .collect();
    found.sort_unstable();
    let cells: Vec<Cell> = found
        .into_iter()
        .map(|(i, s, y, n)| {
            let (sex, band) = people.strata[s as usize];
            let after_n = after.cells.get(&(i, s, y)).copied().unwrap_or(0);
            Cell {
                key: keys[i as usize].to_string(),
                sex: sex.to_string(),
                age_band: band.to_string(),
                year: (y != 0).then_some(y),
                prevalence: prevalence(
                    n,
                    people.cohort_in[s as usize],
                    after_n,
                    people.released_in[s as usize],
                ),
            }
        })
        .collect();
    let goal = targets.max_relative_error;
    let per_item = keys
        .iter()
        .map(|k| ItemCells {
            key: k.to_string(),
            summary: summary(cells.iter().filter(|c| c.key == k.as_ref()), goal),
        })
        .collect();
    Cells {
        overall: summary(cells.iter(), goal),
        per_item,
        cells,
    }
}

/// The top items of a group, overall and per cell.
fn top_items(input: &UtilityInput, people: &People, group: Group) -> TopItems {
    let empty = TopItems {
        table: group.table().to_string(),
        ..TopItems::default()
    };
    let Some(before) = table(input.unprocessed, group.table()) else {
        return empty;
    };
    let Some((col, column)) = group.column(before) else {
        return empty;
    };
    let targets = &input.targets;
    let floor = targets.min_cell.max(1);
    let coded = read_coded(before, col, people);
    let keys = top_keys(&coded, group, targets.top, floor);
    let matcher = Matcher::new(group, &keys);
    let tb = tally(&coded, &matcher, people, keys.len());
    drop(coded);
    let ta = table(input.released, group.table())
        .and_then(|t| group.column(t).map(|(c, _)| (t, c)))
        .map_or_else(
            || Tally::empty(keys.len()),
            |(t, c)| tally(&read_coded(t, c, people), &matcher, people, keys.len()),
        );
    let items: Vec<Item> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Item {
            key: k.to_string(),
            prevalence: prevalence(tb.persons[i], people.cohort, ta.persons[i], people.released),
        })
        .collect();
    TopItems {
        table: group.table().to_string(),
        column: Some(column.to_string()),
        largest_error: largest(items.iter().map(|i| i.prevalence.relative_error)),
        strata: cells(&keys, &tb, &ta, people, targets, false),
        strata_years: cells(&keys, &tb, &ta, people, targets, true),
        items,
    }
}

/// Rows per event table (the unprocessed tables' order, then tables only released) and in total.
fn rows_kept(input: &UtilityInput) -> (Vec<TableRows>, Kept) {
    let mut names: Vec<&str> = Vec::new();
    for t in input.unprocessed.iter().chain(input.released) {
        if t.name != "persons" && !names.contains(&t.name.as_str()) {
            names.push(&t.name);
        }
    }
    let rows = |tables: &[Table], name: &str| table(tables, name).map_or(0, |t| t.rows.len());
    let tables: Vec<TableRows> = names
        .into_iter()
        .map(|name| TableRows {
            table: name.to_string(),
            rows: kept(rows(input.unprocessed, name), rows(input.released, name)),
        })
        .collect();
    let total = kept(
        tables.iter().map(|t| t.rows.before).sum(),
        tables.iter().map(|t| t.rows.after).sum(),
    );
    (tables, total)
}

fn kind_of(column: &str, after: (&Table, usize), before: Option<(&Table, usize)>) -> ColumnKind {
    if NUMERIC.contains(&column) {
        return ColumnKind::Numeric;
    }
    if DATE_COLUMNS.contains(&column) || PERSON_DATES.contains(&column) {
        let relative =
            relative_column(after.0, after.1) || before.is_some_and(|(t, i)| relative_column(t, i));
        return if relative {
            ColumnKind::Numeric
        } else {
            ColumnKind::Date
        };
    }
    ColumnKind::Categorical
}

fn is_year_label(v: &str) -> bool {
    v.len() == 4 && v.bytes().all(|b| b.is_ascii_digit())
}

/// Shares of the most frequent values held by at least `floor` rows (at most [`CATEGORIES`]; by
/// year when `by_label`), the rest as [`OTHER`].
fn shares<S: AsRef<str>>(
    mut counts: Vec<(S, usize)>,
    rows: usize,
    floor: usize,
    by_label: bool,
) -> Vec<Share> {
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_ref().cmp(b.0.as_ref())));
    let cut = counts
        .iter()
        .take(CATEGORIES)
        .take_while(|(_, n)| *n >= floor)
        .count();
    let other: usize = counts[cut..].iter().map(|c| c.1).sum();
    counts.truncate(cut);
    if by_label {
        counts.sort_by(|a, b| {
            let (a, b) = (a.0.as_ref(), b.0.as_ref());
            (!is_year_label(a), a).cmp(&(!is_year_label(b), b))
        });
    }
    let share = |n: usize| {
        if rows == 0 {
            0.0
        } else {
            n as f64 / rows as f64
        }
    };
    let mut out: Vec<Share> = counts
        .into_iter()
        .map(|(v, n)| Share {
            value: v.as_ref().to_string(),
            share: share(n),
        })
        .collect();
    if other > 0 {
        out.push(Share {
            value: OTHER.into(),
            share: share(other),
        });
    }
    out
}

fn categories(t: &Table, i: usize, floor: usize) -> Distribution {
    let mut counts: Map<&str, usize> = Map::default();
    for r in &t.rows {
        let v = cell(r, i).filter(|v| !v.is_empty()).unwrap_or(NONE);
        *counts.entry(v).or_default() += 1;
    }
    Distribution {
        rows: t.rows.len(),
        missing: counts.get(NONE).copied().unwrap_or(0),
        shares: shares(counts.into_iter().collect(), t.rows.len(), floor, false),
        quantiles: None,
    }
}

fn years(t: &Table, i: usize, floor: usize) -> Distribution {
    let mut by_year: Map<u16, usize> = Map::default();
    let (mut star, mut none, mut no_year) = (0, 0, 0);
    for r in &t.rows {
        match cell(r, i) {
            None | Some("") => none += 1,
            Some("*") => star += 1,
            Some(v) => match year_of(v) {
                Some(y) => *by_year.entry(y).or_default() += 1,
                None => no_year += 1,
            },
        }
    }
    let mut counts: Vec<(String, usize)> = by_year
        .into_iter()
        .map(|(y, n)| (format!("{y:04}"), n))
        .collect();
    for (label, n) in [("*", star), (NO_YEAR, no_year), (NONE, none)] {
        if n > 0 {
            counts.push((label.to_string(), n));
        }
    }
    Distribution {
        rows: t.rows.len(),
        missing: none,
        shares: shares(counts, t.rows.len(), floor, true),
        quantiles: None,
    }
}

fn numbers(t: &Table, i: usize, floor: usize) -> Distribution {
    let mut v: Vec<f64> = t
        .rows
        .iter()
        .filter_map(|r| value(r, i).and_then(|x| x.parse::<f64>().ok()))
        .filter(|x| x.is_finite())
        .collect();
    v.sort_unstable_by(f64::total_cmp);
    let at = |p: f64| v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    let quantiles = (!v.is_empty() && v.len() >= floor).then(|| Quantiles {
        p1: at(0.01),
        p5: at(0.05),
        p25: at(0.25),
        p50: at(0.5),
        p75: at(0.75),
        p95: at(0.95),
        p99: at(0.99),
    });
    Distribution {
        rows: t.rows.len(),
        missing: t.rows.len() - v.len(),
        shares: Vec::new(),
        quantiles,
    }
}

fn distribution(t: &Table, i: usize, kind: ColumnKind, floor: usize) -> Distribution {
    match kind {
        ColumnKind::Categorical => categories(t, i, floor),
        ColumnKind::Date => years(t, i, floor),
        ColumnKind::Numeric => numbers(t, i, floor),
    }
}

/// Every released column but the pseudonym, before and after.
fn distributions(input: &UtilityInput) -> Vec<ColumnDistribution> {
    let floor = input.targets.min_cell.max(1);
    let mut out = Vec::new();
    for t in input.released {
        let before_table = table(input.unprocessed, &t.name);
        for (i, column) in t.columns.iter().enumerate().skip(1) {
            let before = before_table.and_then(|b| b.col(column).map(|j| (b, j)));
            let kind = kind_of(column, (t, i), before);
            out.push(ColumnDistribution {
                table: t.name.clone(),
                column: column.clone(),
                kind,
                before: before.map(|(b, j)| distribution(b, j, kind, floor)),
                after: distribution(t, i, kind, floor),
            });
        }
    }
    out
}

fn goal(goal: GoalKind, target: f64, figure: Option<f64>, at_least: bool) -> Goal {
    Goal {
        goal,
        target,
        figure,
        met: figure.map(|f| if at_least { f >= target } else { f <= target }),
    }
}

/// The goals: event rows kept, the largest errors of the top conditions and drugs, the smallest
/// cell reported (persons before protection of a top item or cell).
fn goals(r: &UtilityReport) -> Vec<Goal> {
    let t = &r.targets;
    let smallest = [&r.conditions, &r.drugs]
        .into_iter()
        .flat_map(|g| {
            let items = g.items.iter().map(|i| &i.prevalence);
            let cells = g.strata.cells.iter().chain(&g.strata_years.cells);
            items.chain(cells.map(|c| &c.prevalence))
        })
        .map(|p| p.persons_before)
        .min();
    vec![
        goal(GoalKind::RowsKept, t.rows_kept, r.rows.share, true),
        goal(
            GoalKind::ConditionError,
            t.max_relative_error,
            r.conditions.largest_error,
            false,
        ),
        goal(
            GoalKind::DrugError,
            t.max_relative_error,
            r.drugs.largest_error,
            false,
        ),
        goal(
            GoalKind::SmallestCell,
            t.min_cell as f64,
            smallest.map(|n| n as f64),
            true,
        ),
    ]
}

/// Measures the utility of a release against the cohort before protection.
pub fn measure(input: &UtilityInput) -> UtilityReport {
    let people = People::new(input);
    let (tables, rows) = rows_kept(input);
    let mut report = UtilityReport {
        targets: input.targets,
        persons: kept(people.cohort, people.released),
        tables,
        rows,
        conditions: top_items(input, &people, Group::Conditions),
        drugs: top_items(input, &people, Group::Drugs),
        distributions: distributions(input),
        goals_met: Vec::new(),
    };
    report.goals_met = goals(&report);
    report
}

// ---- The page ----

/// The rendering of the report (every value escaped by the template engine).
mod page {
    use std::collections::HashMap;

    use tokumei_report::{bars, html, paired_bars, Markup};

    use super::*;

    /// A comparison: its label and report.
    pub(super) type Comparison<'c> = Option<(&'c str, &'c UtilityReport)>;

    pub(super) fn pct(v: Option<f64>, digits: usize) -> String {
        v.map_or_else(|| "—".into(), |x| format!("{:.*} %", digits, x * 100.0))
    }

    /// A number with at most 3 decimals, trailing zeros dropped.
    fn number(v: f64) -> String {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".into()
        } else {
            s.to_string()
        }
    }

    /// The background of an error: green within the goal, amber within twice, red beyond.
    fn colour(error: Option<f64>, goal: f64) -> String {
        let c = match error {
            Some(e) if e <= goal => "#d4edda",
            Some(e) if e <= 2.0 * goal => "#fff3cd",
            _ => "#f8d7da",
        };
        format!("background:{c}")
    }

    fn error_cell(p: &Prevalence, goal: f64) -> Markup {
        let title = format!(
            "{} / {} → {} / {}",
            p.persons_before, p.population_before, p.persons_after, p.population_after
        );
        html! { td.num style=(colour(p.relative_error, goal)) title=(title) { (pct(p.relative_error, 1)) } }
    }

    fn goal_label(g: GoalKind) -> &'static str {
        match g {
            GoalKind::RowsKept => "イベント行の保持率 / Share of event rows kept",
            GoalKind::ConditionError => {
                "上位傷病の有病率の最大相対誤差 / Highest relative prevalence error, top conditions"
            }
            GoalKind::DrugError => {
                "上位薬剤の有病率の最大相対誤差 / Highest relative prevalence error, top drugs"
            }
            GoalKind::SmallestCell => "報告する最小セル (人) / Smallest cell reported (persons)",
        }
    }

    fn goal_value(g: GoalKind, v: Option<f64>) -> String {
        match g {
            GoalKind::SmallestCell => v.map_or_else(|| "—".into(), |n| format!("{n:.0}")),
            _ => pct(v, 1),
        }
    }

    fn met(m: Option<bool>) -> Markup {
        html! {
            @match m {
                Some(true) => "達成 / met",
                Some(false) => span.warn { "未達 / not met" },
                None => "測定対象なし / nothing to measure",
            }
        }
    }

    pub(super) fn goals(r: &UtilityReport, cmp: Comparison) -> Markup {
        html! {
            h2 { "1. 目標 / Goals" }
            table {
                tr {
                    th { "目標 / Goal" } th { "目標値 / Target" } th { "結果 / Figure" } th { "判定 / Met" }
                    @if let Some((label, _)) = cmp { th { "比較 / Comparison: " (label) } }
                }
                @for g in &r.goals_met {
                    @let sign = match g.goal { GoalKind::RowsKept | GoalKind::SmallestCell => "≥", _ => "≤" };
                    tr {
                        th { (goal_label(g.goal)) }
                        td.num { (sign) " " (goal_value(g.goal, Some(g.target))) }
                        td.num { (goal_value(g.goal, g.figure)) }
                        td { (met(g.met)) }
                        @if let Some((_, c)) = cmp {
                            @let other = c.goals_met.iter().find(|o| o.goal == g.goal);
                            td.num { (goal_value(g.goal, other.and_then(|o| o.figure))) " (" (met(other.and_then(|o| o.met))) ")" }
                        }
                    }
                }
            }
        }
    }

    pub(super) fn rows(r: &UtilityReport, cmp: Comparison) -> Markup {
        let other = |name: &str| {
            cmp.and_then(|(_, c)| c.tables.iter().find(|t| t.table == name))
                .and_then(|t| t.rows.share)
        };
        let mut lines: Vec<(String, &Kept, Option<f64>)> = vec![(
            "人 / persons".into(),
            &r.persons,
            cmp.and_then(|(_, c)| c.persons.share),
        )];
        for t in &r.tables {
            lines.push((t.table.clone(), &t.rows, other(&t.table)));
        }
        lines.push((
            "全イベント行 / all event rows".into(),
            &r.rows,
            cmp.and_then(|(_, c)| c.rows.share),
        ));
        let chart: Vec<(String, f64)> = lines
            .iter()
            .map(|(name, k, _)| (name.clone(), k.share.unwrap_or(0.0)))
            .collect();
        html! {
            h2 { "2. 保持された人と行 / Persons and rows kept" }
            table {
                tr {
                    th { "表 / Table" } th { "加工前 / Before" } th { "提供 / Released" } th { "保持率 / Share kept" }
                    @if let Some((label, _)) = cmp { th { "比較 / Comparison: " (label) } }
                }
                @for (name, k, o) in &lines {
                    tr {
                        th { (name) } td.num { (k.before) } td.num { (k.after) } td.num { (pct(k.share, 1)) }
                        @if cmp.is_some() { td.num { (pct(*o, 1)) } }
                    }
                }
            }
            (bars("保持率 / Share kept", &chart, 1.0, &|v| pct(Some(v), 1)))
        }
    }

    pub(super) fn items(
        title: &str,
        g: &TopItems,
        goal: f64,
        cmp: Option<(&str, &TopItems)>,
    ) -> Markup {
        let chart: Vec<(String, f64, f64)> = g
            .items
            .iter()
            .map(|i| {
                (
                    i.key.clone(),
                    i.prevalence.prevalence_before,
                    i.prevalence.prevalence_after,
                )
            })
            .collect();
        let max = chart.iter().map(|c| c.1.max(c.2)).fold(0.0, f64::max);
        let other: HashMap<&str, &Item> = cmp
            .map(|(_, c)| c.items.iter().map(|i| (i.key.as_str(), i)).collect())
            .unwrap_or_default();
        html! {
            h2 { (title) }
            @if g.items.is_empty() {
                p { "対象なし (表がないか、最小セルに達する項目なし) / Nothing to show (no table, or no item reaches the smallest cell)." }
            } @else {
                @let source = format!("{}.{}", g.table, g.column.as_deref().unwrap_or("—"));
                p { "読み取り元 " (source) "。有病率 = 項目をもつ人 ÷ コホートの人 (加工前) または提供された人 (提供時)。" }
                p { "Read from " (source) "; prevalence = persons with the item / persons of the cohort (before) or released (after)." }
                (paired_bars("有病率 / Prevalence", ["加工前 / before", "提供 / released"], &chart, max, &|v| pct(Some(v), 2)))
                table {
                    tr {
                        th { "項目 / Item" } th { "人 (前) / Persons before" } th { "有病率 (前) / Before" }
                        th { "人 (後) / Persons after" } th { "有病率 (後) / After" } th { "相対誤差 / Relative error" }
                        @if let Some((label, _)) = cmp { th { "比較 / Comparison: " (label) } }
                    }
                    @for i in &g.items {
                        @let p = &i.prevalence;
                        tr {
                            th { (i.key) } td.num { (p.persons_before) } td.num { (pct(Some(p.prevalence_before), 2)) }
                            td.num { (p.persons_after) } td.num { (pct(Some(p.prevalence_after), 2)) } (error_cell(p, goal))
                            @if cmp.is_some() {
                                @match other.get(i.key.as_str()) {
                                    Some(o) => (error_cell(&o.prevalence, goal)),
                                    None => td { "—" },
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn summaries(c: &Cells, goal: f64) -> Markup {
        html! {
            table {
                tr { th { "項目 / Item" } th { "セル / Cells" } th { "目標内 / Within the goal" } th { "最大誤差 / Largest error" } }
                @for i in c.per_item.iter().filter(|i| i.summary.cells > 0) {
                    tr { th { (i.key) } td.num { (i.summary.cells) } td.num { (i.summary.within_goal) } td.num style=(colour(i.summary.largest_error, goal)) { (pct(i.summary.largest_error, 1)) } }
                }
                tr { th { "全体 / Overall" } td.num { (c.overall.cells) } td.num { (c.overall.within_goal) } td.num style=(colour(c.overall.largest_error, goal)) { (pct(c.overall.largest_error, 1)) } }
            }
        }
    }

    /// The errors of a group's cells as a coloured table: a row per item (and year), a column per
    /// sex × age band.
    fn matrix(items: &[Item], c: &Cells, goal: f64, years: bool) -> Markup {
        let mut strata: Vec<(&str, &str)> = c
            .cells
            .iter()
            .map(|c| (c.sex.as_str(), c.age_band.as_str()))
            .collect();
        strata.sort_by(|a, b| stratum_order(a).cmp(&stratum_order(b)));
        strata.dedup();
        let rank: HashMap<&str, usize> = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.key.as_str(), i))
            .collect();
        let mut rows: Vec<(usize, &str, Option<u16>)> = c
            .cells
            .iter()
            .map(|c| {
                (
                    rank.get(c.key.as_str()).copied().unwrap_or(usize::MAX),
                    c.key.as_str(),
                    c.year,
                )
            })
            .collect();
        rows.sort_unstable();
        rows.dedup();
        let at: HashMap<(&str, Option<u16>, &str, &str), &Cell> = c
            .cells
            .iter()
            .map(|c| {
                (
                    (c.key.as_str(), c.year, c.sex.as_str(), c.age_band.as_str()),
                    c,
                )
            })
            .collect();
        html! {
            div style="overflow-x:auto" {
                table {
                    tr {
                        th { "項目 / Item" } @if years { th { "年 / Year" } }
                        @for (sex, band) in &strata { th { (sex) " " (band) } }
                    }
                    @for (_, key, year) in &rows {
                        tr {
                            th { (key) }
                            @if years { td { (year.map_or_else(String::new, |y| y.to_string())) } }
                            @for (sex, band) in &strata {
                                @match at.get(&(*key, *year, *sex, *band)) {
                                    Some(cell) => (error_cell(&cell.prevalence, goal)),
                                    None => td {},
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    pub(super) fn cells(title: &str, g: &TopItems, targets: &UtilityTargets) -> Markup {
        let goal = targets.max_relative_error;
        html! {
            h2 { (title) }
            p {
                "セルごとの有病率の相対誤差 (加工前にセルの人と項目をもつ人がともに " (targets.min_cell)
                " 人以上のセルのみ)。緑は目標 " (pct(Some(goal), 1)) " 以内、黄は目標の2倍以内、赤はそれを超えるもの。空欄は報告しないセル。"
            }
            p {
                "Relative prevalence error per cell, for cells with at least " (targets.min_cell)
                " persons before protection (in the cell and with the item); green within the goal of "
                (pct(Some(goal), 1)) ", amber within twice, red beyond. Blank: not reported."
            }
            @for (sub, c, years) in [("性別 × 年齢階級 / Sex × age band", &g.strata, false), ("性別 × 年齢階級 × 年 / Sex × age band × year", &g.strata_years, true)] {
                h3 { (sub) }
                @if c.cells.is_empty() {
                    p { "最小セルに達するセルなし / No cell reaches the smallest cell." }
                } @else {
                    (summaries(c, goal))
                    (matrix(&g.items, c, goal, years))
                }
            }
        }
    }

    /// The labels of both sides, the before side's order first, [`OTHER`] last.
    fn labels<'d>(before: Option<&'d Distribution>, after: &'d Distribution) -> Vec<&'d str> {
        let mut out: Vec<&str> = Vec::new();
        for s in before.iter().flat_map(|b| &b.shares).chain(&after.shares) {
            if s.value != OTHER && !out.contains(&s.value.as_str()) {
                out.push(&s.value);
            }
        }
        let other = before.iter().flat_map(|b| &b.shares).chain(&after.shares);
        if other.clone().any(|s| s.value == OTHER) {
            out.push(OTHER);
        }
        out
    }

    fn share_of(d: Option<&Distribution>, label: &str) -> String {
        match d {
            None => "—".into(),
            Some(d) => pct(
                Some(
                    d.shares
                        .iter()
                        .find(|s| s.value == label)
                        .map_or(0.0, |s| s.share),
                ),
                1,
            ),
        }
    }

    fn column(d: &ColumnDistribution) -> Markup {
        let before = d.before.as_ref();
        let missing = |x: &Distribution| {
            pct(
                Some(if x.rows == 0 {
                    0.0
                } else {
                    x.missing as f64 / x.rows as f64
                }),
                1,
            )
        };
        html! {
            h3 { (d.table) "." (d.column) }
            table {
                tr { th { "値 / Value" } th { "加工前 / Before" } th { "提供 / Released" } }
                @if d.kind == ColumnKind::Numeric {
                    @let q = |x: Option<&Distribution>| x.and_then(|x| x.quantiles);
                    @for (name, pick) in QUANTILES {
                        tr {
                            th { (name) }
                            td.num { (q(before).map_or_else(|| "—".into(), |q| number(pick(&q)))) }
                            td.num { (q(Some(&d.after)).map_or_else(|| "—".into(), |q| number(pick(&q)))) }
                        }
                    }
                    tr { th { "欠損 / missing" } td.num { (before.map_or_else(|| "—".into(), missing)) } td.num { (missing(&d.after)) } }
                } @else {
                    @for label in labels(before, &d.after) {
                        tr { th { (label) } td.num { (share_of(before, label)) } td.num { (share_of(Some(&d.after), label)) } }
                    }
                }
            }
        }
    }

    type Pick = fn(&Quantiles) -> f64;

    const QUANTILES: [(&str, Pick); 7] = [
        ("p1", |q| q.p1),
        ("p5", |q| q.p5),
        ("p25", |q| q.p25),
        ("p50", |q| q.p50),
        ("p75", |q| q.p75),
        ("p95", |q| q.p95),
        ("p99", |q| q.p99),
    ];

    pub(super) fn distributions(r: &UtilityReport) -> Markup {
        html! {
            h2 { "6. 列の分布 / Distributions of the released columns" }
            p {
                "カテゴリ列は上位の値 (最大15、各 " (r.targets.min_cell) " 行以上。残りは “other”)、日付は年別、数値は分位点 (最近順位法)。"
            }
            p {
                "Categorical columns: their most frequent values (at most 15, each held by at least "
                (r.targets.min_cell) " rows; the rest as “other”); dates by year; numbers as quantiles (nearest rank)."
            }
            @for d in &r.distributions { (column(d)) }
        }
    }
}

/// The utility report as a self-contained page in Japanese and English; with `comparison` (a label
/// and its report, such as another rule's release of the same application), its figures beside.
pub fn html(report: &UtilityReport, comparison: Option<(&str, &UtilityReport)>) -> String {
    let goal = report.targets.max_relative_error;
    let conditions = comparison.map(|(l, c)| (l, &c.conditions));
    let drugs = comparison.map(|(l, c)| (l, &c.drugs));
    let body = tokumei_report::html! {
        p {
            "加工による有用性の損失: 保持された人とイベント行、上位の傷病 (ICD-10 3桁分類) と薬剤 (薬価基準コード先頭7桁) の加工前と提供時の有病率 (全体とセル別)、提供された各列の分布。提供されたコードは項目と同等以上に詳細な場合に限り数える (ブロック・章・`*` に一般化された傷病は数えない) ため、その損失は誤差に表れる。"
        }
        p {
            "What protection cost: persons and event rows kept, the prevalence of the top conditions (ICD-10 3-character categories) and drugs (the first 7 characters of a drug price code) before protection and as released, overall and per cell, and each released column's distribution. A released code counts for an item only when it is at least as specific: a diagnosis generalized to its block, its chapter or `*` no longer counts, and that loss shows as error."
        }
        @if let Some((label, _)) = comparison {
            p { "比較 / Comparison: " (label) }
        }
        (page::goals(report, comparison))
        (page::rows(report, comparison))
        (page::items("3. 上位の傷病 / Top conditions", &report.conditions, goal, conditions))
        (page::items("4. 上位の薬剤 / Top drugs", &report.drugs, goal, drugs))
        (page::cells("5a. 傷病のセル別誤差 / Errors per cell, conditions", &report.conditions, &report.targets))
        (page::cells("5b. 薬剤のセル別誤差 / Errors per cell, drugs", &report.drugs, &report.targets))
        (page::distributions(report))
    };
    tokumei_report::page("有用性レポート / Utility report", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table from string rows (`""` for an empty cell).
    fn t(name: &str, columns: &[&str], rows: Vec<Vec<String>>) -> Table {
        Table {
            name: name.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|v| (!v.is_empty()).then_some(v))
                        .collect()
                })
                .collect(),
        }
    }

    fn row(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    fn persons(ids: impl Iterator<Item = usize>) -> Table {
        t(
            "persons",
            &["pseudonym", "sex"],
            ids.map(|i| row(&[&format!("p{i:02}"), "M"])).collect(),
        )
    }

    fn strata(
        n: usize,
        stratum: impl Fn(usize) -> (&'static str, &'static str),
    ) -> HashMap<String, (String, String)> {
        (0..n)
            .map(|i| {
                let (s, a) = stratum(i);
                (format!("p{i:02}"), (s.to_string(), a.to_string()))
            })
            .collect()
    }

    fn targets(min_cell: usize) -> UtilityTargets {
        UtilityTargets {
            min_cell,
            ..UtilityTargets::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Unprocessed tables, released tables and strata.
    type Example = (Vec<Table>, Vec<Table>, HashMap<String, (String, String)>);

    /// 20 persons, p00–p09 M 40-49, p10–p19 F 50-59; E119 for p00–p09 (2022-03-01), I10 for p00–p04
    /// (2021-06-01) and p10–p14 (2022-01-10). Released: p19 suppressed; E11 for p00–p07, p08 to
    /// the chapter `IV`, p09 to the block `E10-E14`, dates to quarters; I10 kept, the years of
    /// p00–p04 kept (`2021`), those of p10–p14 suppressed (`*`).
    fn example() -> Example {
        let cols = ["pseudonym", "icd10", "date"];
        let mut before = Vec::new();
        let mut after = Vec::new();
        for i in 0..10 {
            let p = format!("p{i:02}");
            before.push(row(&[&p, "E119", "2022-03-01"]));
            let code = match i {
                8 => "IV",
                9 => "E10-E14",
                _ => "E11",
            };
            after.push(row(&[&p, code, "2022-Q1"]));
        }
        for i in (0..5).chain(10..15) {
            let p = format!("p{i:02}");
            let (day, year) = if i < 5 {
                ("2021-06-01", "2021")
            } else {
                ("2022-01-10", "*")
            };
            before.push(row(&[&p, "I10", day]));
            after.push(row(&[&p, "I10", year]));
        }
        let unprocessed = vec![persons(0..20), t("diagnoses", &cols, before)];
        let released = vec![persons(0..19), t("diagnoses", &cols, after)];
        let strata = strata(20, |i| {
            if i < 10 {
                ("M", "40-49")
            } else {
                ("F", "50-59")
            }
        });
        (unprocessed, released, strata)
    }

    fn measure_example(min_cell: usize) -> UtilityReport {
        let (unprocessed, released, strata) = example();
        measure(&UtilityInput {
            unprocessed: &unprocessed,
            released: &released,
            strata: &strata,
            targets: targets(min_cell),
        })
    }

    #[test]
    fn the_year_of_a_date_is_its_first_four_digits() {
        assert_eq!(year_of("2022-Q1"), Some(2022));
        assert_eq!(year_of("2022-03"), Some(2022));
        assert_eq!(year_of("2022-03-15"), Some(2022));
        assert_eq!(year_of("2022"), Some(2022));
        assert_eq!(year_of("*"), None);
        assert_eq!(year_of("35"), None);
        assert_eq!(year_of("-120"), None);
        assert_eq!(year_of("20221"), None, "an integer, not a year");
    }

    #[test]
    fn persons_and_rows_kept_are_shares_of_before() {
        let e = |n: usize| {
            (0..n)
                .map(|i| row(&[&format!("p{:02}", i % 4), "x"]))
                .collect()
        };
        let unprocessed = vec![
            persons(0..4),
            t("diagnoses", &["pseudonym", "outcome"], e(10)),
            t("prescriptions", &["pseudonym", "unit"], e(4)),
            t("deaths", &["pseudonym", "date"], Vec::new()),
        ];
        let released = vec![
            persons(0..3),
            t("diagnoses", &["pseudonym", "outcome"], e(9)),
            t("prescriptions", &["pseudonym", "unit"], e(2)),
            t("deaths", &["pseudonym", "date"], Vec::new()),
        ];
        let strata = strata(4, |_| ("M", "40-49"));
        let r = measure(&UtilityInput {
            unprocessed: &unprocessed,
            released: &released,
            strata: &strata,
            targets: targets(1),
        });
        assert_eq!((r.persons.before, r.persons.after), (4, 3));
        assert_eq!(r.persons.share, Some(0.75));
        let shares: Vec<(&str, usize, usize, Option<f64>)> = r
            .tables
            .iter()
            .map(|t| (t.table.as_str(), t.rows.before, t.rows.after, t.rows.share))
            .collect();
        assert_eq!(
            shares,
            vec![
                ("diagnoses", 10, 9, Some(0.9)),
                ("prescriptions", 4, 2, Some(0.5)),
                ("deaths", 0, 0, None),
            ]
        );
        assert_eq!((r.rows.before, r.rows.after), (14, 11));
        assert!(close(r.rows.share.unwrap_or(0.0), 11.0 / 14.0));
        let kept = &r.goals_met[0];
        assert_eq!((kept.goal, kept.met), (GoalKind::RowsKept, Some(false)));
        assert_eq!(
            r.goals_met[1].met, None,
            "no ICD-10 column: nothing to measure"
        );
    }

    #[test]
    fn relative_errors_of_the_top_items_are_measured_on_released_persons() {
        let r = measure_example(5);
        let keys: Vec<&str> = r.conditions.items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["E11", "I10"], "10 persons each, ties by key");
        let e11 = &r.conditions.items[0].prevalence;
        assert_eq!((e11.persons_before, e11.population_before), (10, 20));
        assert_eq!((e11.persons_after, e11.population_after), (8, 19));
        assert!(close(e11.prevalence_before, 0.5));
        assert!(close(e11.prevalence_after, 8.0 / 19.0));
        assert!(close(e11.relative_error.unwrap_or(0.0), 3.0 / 19.0));
        let i10 = &r.conditions.items[1].prevalence;
        assert_eq!((i10.persons_before, i10.persons_after), (10, 10));
        assert!(close(i10.relative_error.unwrap_or(0.0), 1.0 / 19.0));
        assert!(close(r.conditions.largest_error.unwrap_or(0.0), 3.0 / 19.0));
        assert_eq!(r.conditions.column.as_deref(), Some("icd10"));
        let goal = r
            .goals_met
            .iter()
            .find(|g| g.goal == GoalKind::ConditionError);
        assert_eq!(goal.and_then(|g| g.met), Some(false));
        assert!(!r.all_goals_met());
    }

    #[test]
    fn a_generalized_row_stops_counting_for_its_category() {
        let r = measure_example(5);
        let e11 = &r.conditions.items[0].prevalence;
        assert_eq!(
            e11.persons_after, 8,
            "E10-E14 and IV no longer count for E11"
        );
        let m = Matcher::new(
            Group::Conditions,
            &[Cow::Borrowed("E11"), Cow::Borrowed("E10")],
        );
        let hits = |v: &str| {
            let mut out = Vec::new();
            m.each(v, |i| out.push(i));
            out
        };
        assert_eq!(hits("E119"), vec![0]);
        assert_eq!(hits("E11"), vec![0]);
        assert_eq!(hits("E10"), vec![1]);
        assert!(hits("E10-E14").is_empty(), "a block is not E10");
        assert!(hits("IV").is_empty() && hits("*").is_empty() && hits("E1").is_empty());
        let keys = [Cow::Borrowed("2149046"), Cow::Borrowed("620000001")];
        let d = Matcher::new(Group::Drugs, &keys);
        let drug = |v: &str| {
            let mut out = Vec::new();
            d.each(v, |i| out.push(i));
            out
        };
        assert_eq!(drug_key("2149046F3026"), "2149046");
        assert_eq!(drug_key("620000001"), "620000001");
        // A claims code counts for its ingredient, as the release lifts it.
        assert_eq!(drug_key("622242501"), "3962002");
        assert_eq!(drug("2149046F3026"), vec![0]);
        assert_eq!(drug("2149046"), vec![0]);
        assert!(drug("2149").is_empty() && drug("214").is_empty() && drug("*").is_empty());
        assert_eq!(drug("620000001"), vec![1]);
        assert_eq!(
            drug("622242401"),
            vec![0],
            "アバプロ's claims code counts for its ingredient"
        );
    }

    #[test]
    fn cells_per_stratum_and_year_carry_their_own_errors() {
        let r = measure_example(5);
        let find = |cells: &[Cell], key: &str, sex: &str, year: Option<u16>| {
            cells
                .iter()
                .find(|c| c.key == key && c.sex == sex && c.year == year)
                .map(|c| c.prevalence)
        };
        let s = &r.conditions.strata.cells;
        let e11 = find(s, "E11", "M", None).expect("E11 M 40-49");
        assert_eq!((e11.persons_before, e11.population_before), (10, 10));
        assert_eq!((e11.persons_after, e11.population_after), (8, 10));
        assert!(close(e11.relative_error.unwrap_or(0.0), 0.2));
        assert!(find(s, "E11", "F", None).is_none(), "nobody before");
        let i10 = find(s, "I10", "F", None).expect("I10 F 50-59");
        assert_eq!((i10.persons_after, i10.population_after), (5, 9));
        assert!(close(i10.relative_error.unwrap_or(0.0), 1.0 / 9.0));
        let y = &r.conditions.strata_years.cells;
        let kept = find(y, "I10", "M", Some(2021)).expect("I10 M 2021");
        assert_eq!(kept.relative_error, Some(0.0));
        let lost = find(y, "I10", "F", Some(2022)).expect("I10 F 2022");
        assert_eq!((lost.persons_before, lost.persons_after), (5, 0));
        assert_eq!(
            lost.relative_error,
            Some(1.0),
            "years suppressed to `*` count for no year"
        );
        assert!(find(y, "E11", "M", Some(2022)).is_some_and(|p| p.persons_after == 8));
        let sum = &r.conditions.strata.overall;
        assert_eq!((sum.cells, sum.within_goal), (3, 1));
        assert!(close(sum.largest_error.unwrap_or(0.0), 0.2));
        let per: Vec<(&str, usize)> = r
            .conditions
            .strata
            .per_item
            .iter()
            .map(|i| (i.key.as_str(), i.summary.cells))
            .collect();
        assert_eq!(per, [("E11", 1), ("I10", 2)]);
    }

    #[test]
    fn cells_below_the_smallest_cell_are_not_reported() {
        let r = measure_example(6);
        assert_eq!(r.conditions.items.len(), 2, "10 persons each: reported");
        let cells = r
            .conditions
            .strata
            .cells
            .iter()
            .chain(&r.conditions.strata_years.cells);
        let shown: Vec<(&str, &str, Option<u16>)> = cells
            .map(|c| (c.key.as_str(), c.sex.as_str(), c.year))
            .collect();
        assert_eq!(
            shown,
            [("E11", "M", None), ("E11", "M", Some(2022))],
            "I10 has 5 per stratum"
        );
        let smallest = r
            .goals_met
            .iter()
            .find(|g| g.goal == GoalKind::SmallestCell);
        assert_eq!(smallest.and_then(|g| g.figure), Some(10.0));
        let r = measure_example(11);
        assert!(
            r.conditions.items.is_empty(),
            "10 persons < 11: not reported"
        );
        assert!(r.conditions.strata.cells.is_empty());
        assert_eq!(
            r.goals_met
                .iter()
                .find(|g| g.goal == GoalKind::SmallestCell)
                .and_then(|g| g.met),
            None
        );
        // The 10 persons with E11 split over two strata of 5: neither cell reaches 6 persons.
        let (unprocessed, released, mut strata) = example();
        for i in 5..10 {
            strata.insert(format!("p{i:02}"), ("M".into(), "60-69".into()));
        }
        let r = measure(&UtilityInput {
            unprocessed: &unprocessed,
            released: &released,
            strata: &strata,
            targets: targets(6),
        });
        assert_eq!(r.conditions.items.len(), 2);
        assert!(
            r.conditions
                .strata
                .cells
                .iter()
                .all(|c| !(c.key == "E11" && c.sex == "M")),
            "5 + 5 of E11 in two strata"
        );
    }

    #[test]
    fn relative_dates_have_no_year() {
        let cols = ["pseudonym", "code", "date"];
        let rows = |dates: &[&str]| {
            (0..10)
                .map(|i| row(&[&format!("p{i:02}"), "2149046F3026", dates[i % dates.len()]]))
                .collect()
        };
        let unprocessed = vec![
            persons(0..10),
            t("prescriptions", &cols, rows(&["0", "35", "2022"])),
        ];
        let released = vec![
            persons(0..10),
            t("prescriptions", &cols, rows(&["0", "35", "2022"])),
        ];
        let strata = strata(10, |_| ("F", "70-79"));
        let r = measure(&UtilityInput {
            unprocessed: &unprocessed,
            released: &released,
            strata: &strata,
            targets: targets(1),
        });
        assert_eq!(r.drugs.items[0].key, "2149046");
        assert_eq!(r.drugs.items[0].prevalence.relative_error, Some(0.0));
        assert!(
            r.drugs.strata_years.cells.is_empty(),
            "days since an index date: no year"
        );
        let date = r
            .distributions
            .iter()
            .find(|d| d.column == "date")
            .map(|d| d.kind);
        assert_eq!(date, Some(ColumnKind::Numeric));
    }

    #[test]
    fn distributions_fold_rare_values_and_give_quantiles() {
        let cols = ["pseudonym", "code", "date", "days"];
        let before: Vec<Vec<String>> = (0..100)
            .map(|i| {
                let code = if i < 90 {
                    "2149046F3026".to_string()
                } else {
                    format!("99{i}")
                };
                row(&[
                    &format!("p{:02}", i % 10),
                    &code,
                    if i < 50 { "2021-05-02" } else { "2022-01-01" },
                    &(i + 1).to_string(),
                ])
            })
            .collect();
        let after: Vec<Vec<String>> = (0..100)
            .map(|i| {
                row(&[
                    &format!("p{:02}", i % 10),
                    if i < 90 { "2149046" } else { "*" },
                    if i < 50 { "2021" } else { "*" },
                    if i < 95 { "7" } else { "*" },
                ])
            })
            .collect();
        let unprocessed = vec![persons(0..10), t("prescriptions", &cols, before)];
        let released = vec![persons(0..10), t("prescriptions", &cols, after)];
        let strata = strata(10, |_| ("F", "70-79"));
        let r = measure(&UtilityInput {
            unprocessed: &unprocessed,
            released: &released,
            strata: &strata,
            targets: targets(5),
        });
        let d = |c: &str| {
            r.distributions
                .iter()
                .find(|d| d.table == "prescriptions" && d.column == c)
                .expect("column")
        };
        let code = d("code");
        assert_eq!(code.kind, ColumnKind::Categorical);
        let before = code.before.as_ref().expect("before");
        let shares: Vec<(&str, f64)> = before
            .shares
            .iter()
            .map(|s| (s.value.as_str(), s.share))
            .collect();
        assert_eq!(
            shares,
            [("2149046F3026", 0.9), (OTHER, 0.1)],
            "ten codes of one row each fold"
        );
        let after: Vec<(&str, f64)> = code
            .after
            .shares
            .iter()
            .map(|s| (s.value.as_str(), s.share))
            .collect();
        assert_eq!(after, [("2149046", 0.9), ("*", 0.1)]);
        let date = d("date");
        assert_eq!(date.kind, ColumnKind::Date);
        let years: Vec<&str> = date
            .before
            .as_ref()
            .expect("before")
            .shares
            .iter()
            .map(|s| s.value.as_str())
            .collect();
        assert_eq!(years, ["2021", "2022"]);
        let years: Vec<(&str, f64)> = date
            .after
            .shares
            .iter()
            .map(|s| (s.value.as_str(), s.share))
            .collect();
        assert_eq!(years, [("2021", 0.5), ("*", 0.5)]);
        let days = d("days");
        assert_eq!(days.kind, ColumnKind::Numeric);
        let q = days
            .before
            .as_ref()
            .and_then(|b| b.quantiles)
            .expect("quantiles");
        assert_eq!(
            (q.p1, q.p5, q.p50, q.p99),
            (2.0, 6.0, 51.0, 99.0),
            "nearest rank over 1..=100"
        );
        assert_eq!(days.after.missing, 5);
        assert_eq!(days.after.quantiles.map(|q| q.p99), Some(7.0));
        assert!(
            r.drugs.items[0].key == "2149046"
                && r.drugs.items[0].prevalence.relative_error == Some(0.0)
        );
    }

    #[test]
    fn the_page_escapes_values_and_draws_charts() {
        let (mut unprocessed, mut released, strata) = example();
        for tables in [&mut unprocessed, &mut released] {
            let d = &mut tables[1];
            d.columns.push("outcome".into());
            for r in &mut d.rows {
                r.push(Some("<b>cured</b>".into()));
            }
        }
        let input = UtilityInput {
            unprocessed: &unprocessed,
            released: &released,
            strata: &strata,
            targets: targets(5),
        };
        let r = measure(&input);
        let mut previous = r.clone();
        previous.conditions.items[0].prevalence.relative_error = Some(0.5);
        let page = html(&r, Some(("<i>the 1 % rule</i>", &previous)));
        assert!(
            !page.contains("<b>cured") && !page.contains("<i>the"),
            "unescaped value"
        );
        assert!(
            page.contains("&lt;b&gt;cured&lt;/b&gt;") && page.contains("&lt;i&gt;the 1 % rule")
        );
        assert!(page.contains("<svg"), "inline charts");
        assert!(page.contains("50.0 %"), "the comparison's error beside");
        assert!(page.contains("有用性レポート / Utility report"));
        assert!(
            page.contains(">E11<") && page.contains(">I10<"),
            "the top items"
        );
        let alone = html(&r, None);
        assert!(!alone.contains("比較 / Comparison"));
        let json = serde_json::to_value(&r).expect("serializable");
        assert_eq!(json["conditions"]["items"][0]["key"], "E11");
        assert_eq!(json["goals_met"][0]["goal"], "rows_kept");
    }
}
