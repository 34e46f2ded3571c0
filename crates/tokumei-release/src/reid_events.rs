//! The m-event intruder of the re-identification battery: an intruder who knows a person's
//! quasi-identifiers and any m of their events (code and time) looks for them in the release.
//!
//! For each target (a released person the intruder's register describes; a seeded sample when
//! there are more than asked for) and each m, m distinct known events are drawn (seeded by the seed
//! and the target's pseudonym; all of them when the person has fewer) from the target's events, as
//! recorded, in the tables the release also holds. The candidates are the release persons whose
//! every released quasi-identifier agrees with the target's register entry and who, for each known
//! event, have a released row in the same table whose code and time can be the known ones (the
//! caller's `covers`, which knows the hierarchies). The target is singled out when exactly one
//! candidate remains, correctly when it is the target. The draws for the m of one target are the
//! prefixes of one seeded order of the target's events, so a larger m adds events to a smaller
//! one's and never leaves more candidates.
//!
//! The code of an event is its `icd10` value when the table has that column and the row holds a
//! value, else its `code` value; the time is `date`, else `start_date`. A table without a code
//! column has the table's name as every event's code (its events differ by time alone). A blank
//! released code or time can be any value and excludes no one, as a blank quasi-identifier does in
//! the linkage attack; a blank known code or time constrains nothing.
//!
//! The search starts from the persons agreeing on the quasi-identifiers (released persons grouped
//! by their quasi-identifier tuple, the tuples being few) and keeps, event by event, those with a
//! covering row. Each released table is indexed both ways, per person its distinct (code label,
//! time label) pairs and per pair its persons, and each event is checked through the shorter of
//! the two; `covers` is asked once per (table, known code) and (table, known time).

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokumei_report::{html, table};

use crate::checks::Table;
use crate::reid::{agrees, RegisterPerson};

/// The intruder's knowledge of one target and the attack's outcome per m.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventAttack {
    /// Events the intruder knows of each target (fewer for a person with fewer events).
    pub m: usize,
    /// Targets attacked.
    pub targets: usize,
    /// Targets left with exactly one candidate.
    pub singled_out: usize,
    /// Targets whose one candidate is the target.
    pub correct: usize,
    /// `correct / targets` (0 without targets).
    pub share_correct: f64,
    /// The 95 % Wilson score interval of `share_correct`.
    pub interval: (f64, f64),
    /// Whether the targets are a seeded sample of the release persons.
    pub sampled: bool,
}

/// The standard normal quantile of 97.5 %.
const Z95: f64 = 1.959_963_984_540_054;

/// The 95 % Wilson score interval of `successes` out of `n` trials; `(0, 1)` without trials.
pub fn wilson(successes: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let p = (successes as f64 / n).clamp(0.0, 1.0);
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// A small seeded generator (SplitMix64): enough for drawing samples, the same on every platform.
struct SplitMix(u64);

impl SplitMix {
    /// The generator of a seed and a domain (`None`: the target sample; a pseudonym: its events).
    fn new(seed: u64, target: Option<&str>) -> Self {
        let mut h = Sha256::new();
        h.update(seed.to_le_bytes());
        match target {
            // 0xFF never occurs in UTF-8: the sample's stream is apart from every target's.
            None => h.update([0xFF]),
            Some(p) => {
                h.update([0x00]);
                h.update(p.as_bytes());
            }
        }
        let d = h.finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        Self(u64::from_le_bytes(b))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    /// Moves a uniform draw of `k` items (in random order) to the front of `items`.
    fn choose_front<T>(&mut self, items: &mut [T], k: usize) {
        for i in 0..k.min(items.len()) {
            let j = i + self.below(items.len() - i);
            items.swap(i, j);
        }
    }
}

/// A row's value in a column (`None` when empty or out of range).
fn value(row: &[Option<String>], i: usize) -> Option<&str> {
    row.get(i).and_then(|v| v.as_deref())
}

/// A map under the Rust compiler's fast hash: the keys are the release's own labels, hashed
/// millions of times, and no outsider chooses them.
type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// Interns values as consecutive ids.
struct Interner<K> {
    ids: FastMap<K, u32>,
    values: Vec<K>,
}

impl<K: Copy + Eq + std::hash::Hash> Interner<K> {
    fn new() -> Self {
        Self {
            ids: FastMap::default(),
            values: Vec::new(),
        }
    }

    fn id(&mut self, k: K) -> u32 {
        *self.ids.entry(k).or_insert_with(|| {
            self.values.push(k);
            (self.values.len() - 1) as u32
        })
    }
}

/// Pseudonyms looked up row by row, the last one remembered (rows of a person usually follow
/// each other).
struct Lookup<'m, 'a, V: Copy> {
    map: &'m FastMap<&'a str, V>,
    last: Option<(&'a str, Option<V>)>,
}

impl<'m, 'a, V: Copy> Lookup<'m, 'a, V> {
    fn new(map: &'m FastMap<&'a str, V>) -> Self {
        Self { map, last: None }
    }

    fn get(&mut self, p: &'a str) -> Option<V> {
        match self.last {
            Some((q, v)) if q == p => v,
            _ => {
                let v = self.map.get(p).copied();
                self.last = Some((p, v));
                v
            }
        }
    }
}

/// A column with at most this many distinct values is tested once per value and indexed.
const FEW_VALUES: usize = 512;

/// The release persons: ids (row order), grouped by their quasi-identifier tuple.
struct Persons<'a> {
    /// Pseudonym → person id.
    ids: FastMap<&'a str, u32>,
    /// Pseudonyms by id.
    pseudonyms: Vec<&'a str>,
    /// Quasi-identifier column names.
    columns: Vec<&'a str>,
    /// Per column, its distinct released values.
    values: Vec<Vec<Option<&'a str>>>,
    /// Per column, the value id of each distinct tuple.
    tuples: Vec<Vec<u32>>,
    /// Per distinct tuple, its persons (ascending ids).
    members: Vec<Vec<u32>>,
    /// Per column with few values, per value, the tuples holding it.
    postings: Vec<Option<Vec<Vec<u32>>>>,
    /// Columns with few values first.
    order: Vec<usize>,
}

impl<'a> Persons<'a> {
    fn new(t: &'a Table) -> Self {
        let columns: Vec<&str> = t.columns.iter().skip(1).map(String::as_str).collect();
        let mut values: Vec<Interner<Option<&str>>> =
            columns.iter().map(|_| Interner::new()).collect();
        let mut tuple_of: FastMap<Vec<u32>, usize> = FastMap::default();
        let (mut ids, mut pseudonyms) = (FastMap::default(), Vec::new());
        let mut tuples: Vec<Vec<u32>> = vec![Vec::new(); columns.len()];
        let mut members: Vec<Vec<u32>> = Vec::new();
        for row in &t.rows {
            let Some(p) = value(row, 0) else { continue };
            if ids.contains_key(p) {
                continue;
            }
            let id = pseudonyms.len() as u32;
            ids.insert(p, id);
            pseudonyms.push(p);
            let key: Vec<u32> = values
                .iter_mut()
                .enumerate()
                .map(|(c, v)| v.id(value(row, c + 1)))
                .collect();
            let next = members.len();
            let at = *tuple_of.entry(key.clone()).or_insert(next);
            if at == next {
                for (column, v) in tuples.iter_mut().zip(key) {
                    column.push(v);
                }
                members.push(Vec::new());
            }
            members[at].push(id);
        }
        let values: Vec<Vec<Option<&str>>> = values.into_iter().map(|v| v.values).collect();
        let postings: Vec<Option<Vec<Vec<u32>>>> = (0..columns.len())
            .map(|c| {
                (values[c].len() <= FEW_VALUES).then(|| {
                    let mut p = vec![Vec::new(); values[c].len()];
                    for (t, &v) in tuples[c].iter().enumerate() {
                        p[v as usize].push(t as u32);
                    }
                    p
                })
            })
            .collect();
        let mut order: Vec<usize> = (0..columns.len()).collect();
        order.sort_by_key(|&c| postings[c].is_none());
        Self {
            ids,
            pseudonyms,
            columns,
            values,
            tuples,
            members,
            postings,
            order,
        }
    }

    /// The persons (ascending ids) whose every released quasi-identifier agrees with `p` (a blank
    /// one agrees with anyone). A column with few values is tested once per value, and the search
    /// starts from the tuples of the column leaving the fewest; other columns are tested on the
    /// tuples that remain.
    fn candidates(&self, p: &RegisterPerson, end: NaiveDate) -> Vec<u32> {
        let ok = |c: usize, v: Option<&str>| v.is_none_or(|v| agrees(self.columns[c], v, p, end));
        let agree: Vec<Option<Vec<bool>>> = (0..self.columns.len())
            .map(|c| {
                self.postings[c]
                    .as_ref()
                    .map(|_| self.values[c].iter().map(|v| ok(c, *v)).collect())
            })
            .collect();
        let agreeing = |c: usize| {
            let (post, yes) = (self.postings[c].as_deref()?, agree[c].as_deref()?);
            Some(post.iter().zip(yes).filter(|(_, y)| **y).map(|(t, _)| t))
        };
        let start = (0..self.columns.len())
            .filter_map(|c| Some((agreeing(c)?.map(Vec::len).sum::<usize>(), c)))
            .min();
        let mut remaining: Vec<u32> = match start.and_then(|(_, c)| agreeing(c)) {
            Some(tuples) => tuples.flatten().copied().collect(),
            None => (0..self.members.len() as u32).collect(),
        };
        remaining.retain(|&t| {
            self.order.iter().all(|&c| {
                let v = self.tuples[c][t as usize] as usize;
                match &agree[c] {
                    Some(yes) => yes[v],
                    None => ok(c, self.values[c][v]),
                }
            })
        });
        let mut out: Vec<u32> = remaining
            .iter()
            .flat_map(|&t| self.members[t as usize].iter().copied())
            .collect();
        out.sort_unstable();
        out
    }
}

/// An event's code: (column, value), `None` when blank or the table has no code column.
type Code<'a> = Option<(CodeColumn, &'a str)>;

/// The column an event's code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum CodeColumn {
    Icd10,
    Code,
}

impl CodeColumn {
    fn name(self) -> &'static str {
        match self {
            Self::Icd10 => "icd10",
            Self::Code => "code",
        }
    }
}

/// Where an event table keeps its code and time.
#[derive(Clone, Copy)]
struct Layout {
    icd10: Option<usize>,
    code: Option<usize>,
    time: Option<usize>,
}

impl Layout {
    fn of(t: &Table) -> Self {
        Self {
            icd10: t.col("icd10"),
            code: t.col("code"),
            time: t.col("date").or_else(|| t.col("start_date")),
        }
    }

    fn code<'a>(&self, row: &'a [Option<String>]) -> Code<'a> {
        let at = |c: Option<usize>, column| c.and_then(|c| value(row, c)).map(|v| (column, v));
        at(self.icd10, CodeColumn::Icd10).or_else(|| at(self.code, CodeColumn::Code))
    }

    fn time<'a>(&self, row: &'a [Option<String>]) -> Option<&'a str> {
        self.time.and_then(|c| value(row, c))
    }
}

/// Compressed rows: the items of group `g` are `items[offsets[g]..offsets[g + 1]]`.
struct Csr<T> {
    offsets: Vec<usize>,
    items: Vec<T>,
}

impl<T> Csr<T> {
    fn get(&self, g: usize) -> &[T] {
        match (self.offsets.get(g), self.offsets.get(g + 1)) {
            (Some(&lo), Some(&hi)) => &self.items[lo..hi],
            _ => &[],
        }
    }
}

/// One released event table, indexed both ways: per person its distinct (code label, time label)
/// pairs, and per code label its time labels, each with the persons holding the pair.
struct Released<'a> {
    name: &'a str,
    time_column: &'a str,
    codes: Vec<Code<'a>>,
    times: Vec<Option<&'a str>>,
    /// Per person id, its distinct (code label, time label) pairs.
    by_person: Csr<(u32, u32)>,
    /// Per code label, its pairs as (time label, pair id), by time label.
    by_code: Csr<(u32, u32)>,
    /// Per pair id, its persons (ascending).
    postings: Csr<u32>,
}

impl<'a> Released<'a> {
    fn new(t: &'a Table, persons: &Persons<'a>) -> Self {
        let layout = Layout::of(t);
        let (mut codes, mut times) = (Interner::new(), Interner::new());
        let mut pairs = Interner::new();
        let mut lookup = Lookup::new(&persons.ids);
        let mut rows: Vec<(u32, u32)> = Vec::with_capacity(t.rows.len());
        for row in &t.rows {
            let Some(id) = value(row, 0).and_then(|p| lookup.get(p)) else {
                continue;
            };
            let (code, time) = (layout.code(row), layout.time(row));
            let pair = pairs.id((codes.id(code), times.id(time)));
            rows.push((pair, id));
        }
        let postings = group(&rows, pairs.values.len(), true);
        drop(rows);
        let mut order: Vec<u32> = (0..pairs.values.len() as u32).collect();
        order.sort_unstable_by_key(|&p| pairs.values[p as usize]);
        let by_code: Vec<(u32, (u32, u32))> = order
            .iter()
            .map(|&p| {
                let (c, t) = pairs.values[p as usize];
                (c, (t, p))
            })
            .collect();
        let mut by_person: Vec<(u32, (u32, u32))> = Vec::with_capacity(postings.items.len());
        for (p, &pair) in pairs.values.iter().enumerate() {
            by_person.extend(postings.get(p).iter().map(|&q| (q, pair)));
        }
        Self {
            name: &t.name,
            time_column: layout
                .time
                .and_then(|c| t.columns.get(c))
                .map_or("date", String::as_str),
            times: times.values,
            by_person: group(&by_person, persons.pseudonyms.len(), false),
            by_code: group(&by_code, codes.values.len(), false),
            postings,
            codes: codes.values,
        }
    }

    /// Whether `person` has a pair whose code label is in `codes` and time label in `times`
    /// (`None`: any).
    fn has(&self, person: u32, codes: Option<&[bool]>, times: Option<&[bool]>) -> bool {
        self.by_person.get(person as usize).iter().any(|&(c, t)| {
            codes.is_none_or(|v| v[c as usize]) && times.is_none_or(|v| v[t as usize])
        })
    }

    /// The pairs of the code labels `codes` whose time label is in `times` (`None`: any).
    fn pairs<'s>(
        &'s self,
        codes: &'s [u32],
        times: Option<&'s [bool]>,
    ) -> impl Iterator<Item = &'s [u32]> + 's {
        codes.iter().flat_map(move |&c| {
            self.by_code
                .get(c as usize)
                .iter()
                .filter(move |(t, _)| times.is_none_or(|v| v[*t as usize]))
                .map(|&(_, pair)| self.postings.get(pair as usize))
        })
    }
}

/// `(group, item)` rows gathered per group (a counting sort, keeping the rows' order within a
/// group); with `distinct`, each group's items sorted and deduplicated.
fn group<T: Copy + Ord>(rows: &[(u32, T)], groups: usize, distinct: bool) -> Csr<T> {
    let mut offsets = vec![0usize; groups + 1];
    for &(g, _) in rows {
        offsets[g as usize + 1] += 1;
    }
    for i in 1..offsets.len() {
        offsets[i] += offsets[i - 1];
    }
    let Some(&(_, fill)) = rows.first() else {
        return Csr {
            offsets,
            items: Vec::new(),
        };
    };
    let mut at = offsets.clone();
    let mut items = vec![fill; rows.len()];
    for &(g, x) in rows {
        items[at[g as usize]] = x;
        at[g as usize] += 1;
    }
    if !distinct {
        return Csr { offsets, items };
    }
    let mut kept = vec![0usize];
    let mut end = 0;
    for g in 0..groups {
        let (lo, hi) = (offsets[g], offsets[g + 1]);
        let part = &mut items[lo..hi];
        if !part.is_sorted() {
            part.sort_unstable();
        }
        let start = end;
        for i in lo..hi {
            if end == start || items[end - 1] != items[i] {
                items[end] = items[i];
                end += 1;
            }
        }
        kept.push(end);
    }
    items.truncate(end);
    Csr {
        offsets: kept,
        items,
    }
}

/// The released labels covering a known value: a flag per label and the labels flagged.
struct Cover {
    flags: Vec<bool>,
    labels: Vec<u32>,
}

impl Cover {
    fn new(flags: Vec<bool>) -> Self {
        let labels = (0..flags.len() as u32)
            .filter(|&i| flags[i as usize])
            .collect();
        Self { flags, labels }
    }
}

/// The known values of the targets in one released table, and which released labels cover them
/// (asked of `covers` once each, when first drawn; `Some(None)` for a blank known value, which
/// constrains nothing).
struct Known<'a> {
    codes: Interner<Code<'a>>,
    times: Interner<Option<&'a str>>,
    code_cover: Vec<Option<Option<Cover>>>,
    time_cover: Vec<Option<Option<Cover>>>,
}

/// A known event: (released table, known code id, known time id).
type Event = (u32, u32, u32);

/// The caller's test of a released label against a known value.
type Covers<'c> = dyn Fn(&str, &str, &str, &str) -> bool + 'c;

impl<'a> Known<'a> {
    fn new() -> Self {
        Self {
            codes: Interner::new(),
            times: Interner::new(),
            code_cover: Vec::new(),
            time_cover: Vec::new(),
        }
    }

    /// Computes the covers of a drawn event's code and time if not yet known. A released label
    /// from another code column than the known value's cannot be told apart from it.
    fn prepare(&mut self, rel: &Released, code: u32, time: u32, covers: &Covers) {
        self.code_cover
            .resize_with(self.codes.values.len(), || None);
        self.time_cover
            .resize_with(self.times.values.len(), || None);
        let c = &mut self.code_cover[code as usize];
        if c.is_none() {
            *c = Some(self.codes.values[code as usize].map(|(column, known)| {
                Cover::new(
                    rel.codes
                        .iter()
                        .map(|label| {
                            label.is_none_or(|(col, v)| {
                                col != column || covers(rel.name, col.name(), v, known)
                            })
                        })
                        .collect(),
                )
            }));
        }
        let t = &mut self.time_cover[time as usize];
        if t.is_none() {
            *t = Some(self.times.values[time as usize].map(|known| {
                Cover::new(
                    rel.times
                        .iter()
                        .map(|label| {
                            label.is_none_or(|v| covers(rel.name, rel.time_column, v, known))
                        })
                        .collect(),
                )
            }));
        }
    }

    /// The covers of an event prepared before (`None`: any label).
    fn cover(&self, code: u32, time: u32) -> (Option<&Cover>, Option<&Cover>) {
        (
            prepared(&self.code_cover, code),
            prepared(&self.time_cover, time),
        )
    }
}

/// A prepared cover (`None` when the value constrains nothing or was not prepared).
fn prepared(v: &[Option<Option<Cover>>], i: u32) -> Option<&Cover> {
    v.get(i as usize)?.as_ref()?.as_ref()
}

/// The targets: release persons with a register entry, in the order of their register ids (then
/// pseudonyms), so that neither the sample nor the draws depend on the release's pseudonym key;
/// sampled (seeded) down to `max` when more; returns (person ids, sampled).
fn targets(
    persons: &Persons,
    register: &HashMap<String, RegisterPerson>,
    max: usize,
    seed: u64,
) -> (Vec<u32>, bool) {
    let mut ids: Vec<u32> = (0..persons.pseudonyms.len() as u32)
        .filter(|&i| register.contains_key(persons.pseudonyms[i as usize]))
        .collect();
    let key = |i: &u32| {
        let p = persons.pseudonyms[*i as usize];
        (register.get(p).map(|r| r.id.as_str()), p)
    };
    ids.sort_by_key(key);
    if ids.len() <= max {
        return (ids, false);
    }
    SplitMix::new(seed, None).choose_front(&mut ids, max);
    ids.truncate(max);
    ids.sort_by_key(key);
    (ids, true)
}

/// The distinct known events of each target (indexed as `targets`) in the tables the release holds,
/// in a fixed order (table, code, time).
fn events_of_targets<'a>(
    known_tables: &'a [Table],
    table_of: &FastMap<&str, usize>,
    persons: &Persons,
    targets: &[u32],
    known: &mut [Known<'a>],
) -> Vec<Vec<Event>> {
    let slot: FastMap<&str, usize> = targets
        .iter()
        .enumerate()
        .map(|(i, &p)| (persons.pseudonyms[p as usize], i))
        .collect();
    let mut events: Vec<Vec<Event>> = vec![Vec::new(); targets.len()];
    for t in known_tables {
        let Some(&ti) = table_of.get(t.name.as_str()) else {
            continue;
        };
        let layout = Layout::of(t);
        let k = &mut known[ti];
        let mut lookup = Lookup::new(&slot);
        for row in &t.rows {
            let Some(s) = value(row, 0).and_then(|p| lookup.get(p)) else {
                continue;
            };
            events[s].push((
                ti as u32,
                k.codes.id(layout.code(row)),
                k.times.id(layout.time(row)),
            ));
        }
    }
    // Each table's known codes and times ranked by value: events sorted by rank are in the order
    // of their values, whatever the order of the rows.
    let ranks: Vec<(Vec<u32>, Vec<u32>)> = known
        .iter()
        .map(|k| (rank(&k.codes.values), rank(&k.times.values)))
        .collect();
    for e in &mut events {
        e.sort_unstable_by_key(|&(t, c, d)| {
            let (codes, times) = &ranks[t as usize];
            (t, codes[c as usize], times[d as usize])
        });
        e.dedup();
    }
    events
}

/// The rank of each value among `values` (distinct) in their order.
fn rank<T: Ord>(values: &[T]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..values.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| values[a as usize].cmp(&values[b as usize]));
    let mut rank = vec![0u32; values.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    rank
}

/// Everything the attack looks up, built once.
struct Attack<'a, 'c> {
    persons: Persons<'a>,
    released: Vec<Released<'a>>,
    known: Vec<Known<'a>>,
    covers: &'c Covers<'c>,
    /// A zeroed bit per person, for intersecting with postings.
    scratch: Vec<u64>,
}

impl Attack<'_, '_> {
    /// The candidates after the QIs and after each of the first `events` (one set per prefix, the
    /// QIs' alone first).
    fn candidates(
        &mut self,
        p: &RegisterPerson,
        end: NaiveDate,
        events: &[Event],
    ) -> Vec<Vec<u32>> {
        let mut sets = vec![self.persons.candidates(p, end)];
        for &(t, code, time) in events {
            let k = &mut self.known[t as usize];
            let rel = &self.released[t as usize];
            k.prepare(rel, code, time, self.covers);
            let last = sets.last().map_or(&[][..], Vec::as_slice);
            let next = filter(rel, k.cover(code, time), last, &mut self.scratch);
            sets.push(next);
        }
        sets
    }
}

/// The candidates of `last` with a released pair covering the event: each candidate's pairs
/// scanned, or, when the covering pairs' postings are shorter, those marked in `scratch` (left
/// zeroed) and the candidates kept that are marked.
fn filter(
    rel: &Released,
    (codes, times): (Option<&Cover>, Option<&Cover>),
    last: &[u32],
    scratch: &mut [u64],
) -> Vec<u32> {
    let (code_flags, time_flags) = (codes.map(|c| &c.flags[..]), times.map(|c| &c.flags[..]));
    let per_person = rel.by_person.items.len() / rel.by_person.offsets.len().max(1);
    let scan = last.len().saturating_mul(per_person.max(1));
    let posted = codes.map(|c| {
        rel.pairs(&c.labels, time_flags)
            .map(<[u32]>::len)
            .sum::<usize>()
    });
    match (codes, posted) {
        (Some(c), Some(n)) if n < scan => {
            let mark = |scratch: &mut [u64], on: bool| {
                for &q in rel.pairs(&c.labels, time_flags).flatten() {
                    let (w, b) = (q as usize / 64, 1u64 << (q % 64));
                    if on {
                        scratch[w] |= b;
                    } else {
                        scratch[w] &= !b;
                    }
                }
            };
            mark(scratch, true);
            let next = last
                .iter()
                .copied()
                .filter(|&q| scratch[q as usize / 64] & (1 << (q % 64)) != 0)
                .collect();
            mark(scratch, false);
            next
        }
        _ => last
            .iter()
            .copied()
            .filter(|&q| rel.has(q, code_flags, time_flags))
            .collect(),
    }
}

/// The m-event attack on a release (see the module documentation): per m of `ms`, the targets
/// singled out and singled out correctly. `known_events` are the event tables before protection
/// (codes as recorded, dates at the preset's base granularity) with the release's pseudonyms;
/// `register` maps a pseudonym to the target's unprocessed quasi-identifiers (release persons
/// without an entry are not attacked); `covers(table, column, released label, known value)` tells
/// whether a released value can be the known one; `end` is the period end the ages refer to; `ms`
/// are the m to report (e.g. `[1, 2, 3]`), in their order; at most `max_targets` targets are
/// attacked, a sample drawn with `seed` (which also draws each target's events).
#[allow(clippy::too_many_arguments)]
pub fn m_event_attack(
    release_persons: &Table,
    release_events: &[Table],
    known_events: &[Table],
    register: &HashMap<String, RegisterPerson>,
    end: NaiveDate,
    covers: &dyn Fn(&str, &str, &str, &str) -> bool,
    ms: &[usize],
    max_targets: usize,
    seed: u64,
) -> Vec<EventAttack> {
    let persons = Persons::new(release_persons);
    let n_persons = persons.pseudonyms.len();
    let mut table_of: FastMap<&str, usize> = FastMap::default();
    let mut released = Vec::new();
    for t in release_events {
        if !table_of.contains_key(t.name.as_str()) {
            table_of.insert(&t.name, released.len());
            released.push(Released::new(t, &persons));
        }
    }
    let (chosen, sampled) = targets(&persons, register, max_targets, seed);
    let mut known: Vec<Known> = released.iter().map(|_| Known::new()).collect();
    let events = events_of_targets(known_events, &table_of, &persons, &chosen, &mut known);
    let mut attack = Attack {
        persons,
        released,
        known,
        covers,
        scratch: vec![0u64; n_persons.div_ceil(64)],
    };
    let max_m = ms.iter().copied().max().unwrap_or(0);
    let (mut singled, mut correct) = (vec![0usize; ms.len()], vec![0usize; ms.len()]);
    for (&target, mut own) in chosen.iter().zip(events) {
        let pseudonym = attack.persons.pseudonyms[target as usize];
        let Some(p) = register.get(pseudonym) else {
            continue;
        };
        let k = max_m.min(own.len());
        // Drawn by the register id (the pseudonym when it has none): the same draws whatever the
        // release's pseudonyms.
        let domain = if p.id.is_empty() { pseudonym } else { &p.id };
        SplitMix::new(seed, Some(domain)).choose_front(&mut own, k);
        let sets = attack.candidates(p, end, &own[..k]);
        for (j, &m) in ms.iter().enumerate() {
            if let [only] = sets[m.min(k)].as_slice() {
                singled[j] += 1;
                correct[j] += usize::from(*only == target);
            }
        }
    }
    let n = chosen.len();
    ms.iter()
        .enumerate()
        .map(|(j, &m)| EventAttack {
            m,
            targets: n,
            singled_out: singled[j],
            correct: correct[j],
            share_correct: if n == 0 {
                0.0
            } else {
                correct[j] as f64 / n as f64
            },
            interval: wilson(correct[j], n),
            sampled,
        })
        .collect()
}

/// A share with its interval, as a percentage (`—` when absent).
fn share(a: Option<&EventAttack>) -> String {
    a.map_or_else(
        || "—".into(),
        |a| {
            format!(
                "{:.2} % ({:.2}–{:.2} %)",
                a.share_correct * 100.0,
                a.interval.0 * 100.0,
                a.interval.1 * 100.0
            )
        },
    )
}

/// The report's section on the m-event attack (Japanese and English): per m, the share of targets
/// singled out correctly on the unprocessed data (`initial`) and on the release.
pub fn html_section(release: &[EventAttack], initial: &[EventAttack]) -> String {
    let mut ms: Vec<usize> = release.iter().chain(initial).map(|a| a.m).collect();
    ms.sort_unstable();
    ms.dedup();
    let rows: Vec<Vec<String>> = ms
        .iter()
        .map(|&m| {
            vec![
                m.to_string(),
                share(initial.iter().find(|a| a.m == m)),
                share(release.iter().find(|a| a.m == m)),
            ]
        })
        .collect();
    let count = |v: &[EventAttack]| {
        v.first().map_or_else(
            || "—".to_string(),
            |a| {
                let note = if a.sampled {
                    " (seeded sample / 抽出)"
                } else {
                    ""
                };
                format!("{}{note}", a.targets)
            },
        )
    };
    html! {
        h3 { "m 事象攻撃 / m-event attack" }
        p {
            "対象者の間接識別子と任意の m 件の事象（コードと時期）を知る攻撃者が提供データを照合し、候補を対象者本人の一人に絞り込めた割合（95 % Wilson 区間）。対象者数: 加工前 "
            (count(initial)) "、加工後 " (count(release)) "。"
        }
        p {
            "An intruder who knows a target's quasi-identifiers and any m of their events (code and time) looks for them in the release: the share of targets singled out correctly (one candidate left, the target), with its 95 % Wilson interval. Targets: "
            (count(initial)) " unprocessed, " (count(release)) " released."
        }
        (table(&["m", "initial / 加工前", "release / 加工後"], &rows))
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn table(name: &str, columns: &[&str], rows: &[&[&str]]) -> Table {
        Table {
            name: name.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|v| Some(v.to_string())).collect())
                .collect(),
        }
    }

    fn person(sex: &str, birth: &str) -> RegisterPerson {
        RegisterPerson {
            id: String::new(),
            sex: Some(sex.into()),
            birth: Some(d(birth)),
            municipality: Some("022012".into()),
        }
    }

    fn register(entries: &[(&str, &str, &str)]) -> HashMap<String, RegisterPerson> {
        entries
            .iter()
            .map(|(p, sex, birth)| (p.to_string(), person(sex, birth)))
            .collect()
    }

    fn equal(_: &str, _: &str, released: &str, known: &str) -> bool {
        released == known
    }

    /// (m, singled out, correct) per result.
    fn outcome(r: &[EventAttack]) -> Vec<(usize, usize, usize)> {
        r.iter().map(|a| (a.m, a.singled_out, a.correct)).collect()
    }

    const END: &str = "2024-03-31";

    #[test]
    fn a_unique_pair_of_events_singles_out_at_two_but_not_at_one() {
        let persons = table(
            "persons",
            &["pseudonym", "sex"],
            &[&["a", "M"], &["b", "M"], &["c", "M"]],
        );
        // Every event is held by two persons; every pair of a person's events by that person only.
        let diagnoses = table(
            "diagnoses",
            &["pseudonym", "icd10", "date"],
            &[
                &["a", "E119", "2022-01"],
                &["a", "I10", "2022-02"],
                &["b", "E119", "2022-01"],
                &["b", "J45", "2022-03"],
                &["c", "I10", "2022-02"],
                &["c", "J45", "2022-03"],
            ],
        );
        let reg = register(&[
            ("a", "M", "1950-01-01"),
            ("b", "M", "1960-01-01"),
            ("c", "M", "1970-01-01"),
        ]);
        let r = m_event_attack(
            &persons,
            std::slice::from_ref(&diagnoses),
            std::slice::from_ref(&diagnoses),
            &reg,
            d(END),
            &equal,
            &[0, 1, 2],
            100,
            7,
        );
        assert_eq!(outcome(&r), vec![(0, 0, 0), (1, 0, 0), (2, 3, 3)]);
        assert_eq!(r[2].targets, 3);
        assert!(!r[2].sampled);
        assert!((r[2].share_correct - 1.0).abs() < 1e-12);
        assert_eq!(r[1].share_correct, 0.0);
        // The same person known by another code at that time is no longer found.
        let mut other = diagnoses.clone();
        other.rows[0][1] = Some("E110".into());
        let r = m_event_attack(
            &persons,
            std::slice::from_ref(&diagnoses),
            &[other],
            &reg,
            d(END),
            &equal,
            &[2],
            100,
            7,
        );
        // a knows {E110, I10}: nobody has E110; b and c still single out themselves.
        assert_eq!(outcome(&r), vec![(2, 2, 2)]);
    }

    /// ICD-10 by prefix (`*` holds all), months within their quarter or year.
    fn hierarchies(_: &str, column: &str, released: &str, known: &str) -> bool {
        if released == "*" || released == known {
            return true;
        }
        match column {
            "icd10" | "code" => known.starts_with(released),
            "date" | "start_date" => {
                let quarter = |m: &str| {
                    let (y, m) = m.split_once('-')?;
                    let m: u32 = m.parse().ok()?;
                    Some(format!("{y}-Q{}", m.div_ceil(3)))
                };
                known.starts_with(released) || quarter(known).as_deref() == Some(released)
            }
            _ => false,
        }
    }

    #[test]
    fn generalized_labels_still_match_through_covers() {
        let persons = table(
            "persons",
            &["pseudonym", "sex", "age", "prefecture"],
            &[
                &["a", "M", "60-69", "02"],
                &["b", "M", "60-69", "02"],
                &["c", "M", "60-69", "02"],
                &["d", "M", "70-79", "02"],
                &["e", "M", "60-69", "02"],
            ],
        );
        let released = table(
            "diagnoses",
            &["pseudonym", "icd10", "date"],
            &[
                &["a", "E11", "2022-Q1"],
                &["b", "I10", "2022-Q1"],
                &["c", "E11", "2022-Q2"],
                &["d", "E11", "2022-Q1"],
                &["e", "*", "2022-Q1"],
            ],
        );
        let known = table(
            "diagnoses",
            &["pseudonym", "icd10", "date"],
            &[
                &["a", "E119", "2022-03"],
                &["b", "I109", "2022-02"],
                &["c", "E119", "2022-04"],
                &["d", "E119", "2022-03"],
                &["e", "J459", "2022-01"],
            ],
        );
        let reg = register(&[
            ("a", "M", "1960-01-01"),
            ("b", "M", "1961-01-01"),
            ("c", "M", "1962-01-01"),
            ("d", "M", "1950-01-01"),
            ("e", "M", "1963-01-01"),
        ]);
        let run = |covers: &dyn Fn(&str, &str, &str, &str) -> bool| {
            m_event_attack(
                &persons,
                std::slice::from_ref(&released),
                std::slice::from_ref(&known),
                &reg,
                d(END),
                covers,
                &[1],
                100,
                1,
            )
        };
        // a and b hide behind e's suppressed code; c (another quarter), d (another age band)
        // and e (the only one to cover J459) are singled out.
        assert_eq!(outcome(&run(&hierarchies)), vec![(1, 3, 3)]);
        // Read verbatim, no released label is a known value: nobody is even a candidate.
        assert_eq!(outcome(&run(&equal)), vec![(1, 0, 0)]);
    }

    #[test]
    fn a_person_with_fewer_events_than_m_is_attacked_with_all_of_them() {
        let persons = table(
            "persons",
            &["pseudonym", "sex"],
            &[
                &["a", "M"],
                &["b", "M"],
                &["c", "M"],
                &["d", "F"],
                &["e", "M"],
            ],
        );
        let diagnoses = table(
            "diagnoses",
            &["pseudonym", "icd10", "date"],
            &[&["a", "E11", "2022-01"], &["b", "I10", "2022-01"]],
        );
        // A table the release does not hold is not known to the intruder.
        let prescriptions = table(
            "prescriptions",
            &["pseudonym", "code", "date"],
            &[&["a", "2149046F3026", "2022-01"]],
        );
        // e is released but not in the register: not a target.
        let reg = register(&[
            ("a", "M", "1950-01-01"),
            ("b", "M", "1951-01-01"),
            ("c", "M", "1952-01-01"),
            ("d", "F", "1953-01-01"),
            ("z", "F", "1953-01-01"),
        ]);
        let r = m_event_attack(
            &persons,
            std::slice::from_ref(&diagnoses),
            &[diagnoses.clone(), prescriptions],
            &reg,
            d(END),
            &equal,
            &[1, 3],
            100,
            3,
        );
        // a and b by their one event, d by sex alone; c (no event) is among a, b, c and e.
        assert_eq!(outcome(&r), vec![(1, 3, 3), (3, 3, 3)]);
        assert_eq!(r[1].targets, 4);
    }

    /// 300 persons of one sex with 3 to 7 events each over a few codes and months.
    fn crowd() -> (Table, Table, HashMap<String, RegisterPerson>) {
        let mut state = 12345u64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let (mut persons, mut events, mut reg) = (Vec::new(), Vec::new(), HashMap::new());
        for i in 0..300 {
            let p = format!("p{i:03}");
            persons.push(vec![Some(p.clone()), Some("M".to_string())]);
            reg.insert(p.clone(), person("M", "1950-01-01"));
            for _ in 0..3 + next(5) {
                events.push(vec![
                    Some(p.clone()),
                    Some(format!("E1{}", next(6))),
                    Some(format!("2022-0{}", 1 + next(6))),
                ]);
            }
        }
        let persons = Table {
            name: "persons".into(),
            columns: vec!["pseudonym".into(), "sex".into()],
            rows: persons,
        };
        let events = Table {
            name: "diagnoses".into(),
            columns: vec!["pseudonym".into(), "icd10".into(), "date".into()],
            rows: events,
        };
        (persons, events, reg)
    }

    #[test]
    fn the_sample_and_the_draws_are_deterministic_for_a_seed() {
        let (persons, events, reg) = crowd();
        let run = |seed: u64, max: usize| {
            m_event_attack(
                &persons,
                std::slice::from_ref(&events),
                std::slice::from_ref(&events),
                &reg,
                d(END),
                &equal,
                &[1, 2, 3],
                max,
                seed,
            )
        };
        let a = run(11, 40);
        assert_eq!(a, run(11, 40));
        assert!(a.iter().all(|x| x.sampled && x.targets == 40), "{a:?}");
        // In a crowd of 300 over 36 (code, month) pairs, one or two events single out no one;
        // three single out most.
        assert_eq!((a[0].singled_out, a[1].singled_out), (0, 0), "{a:?}");
        assert!(
            a[2].correct > 20 && a[2].correct == a[2].singled_out,
            "{a:?}"
        );
        // Another seed draws other targets and events.
        let p = Persons::new(&persons);
        let (t11, sampled) = targets(&p, &reg, 40, 11);
        assert!(sampled);
        assert_eq!(t11, targets(&p, &reg, 40, 11).0);
        assert_ne!(t11, targets(&p, &reg, 40, 12).0);
        assert!(t11
            .windows(2)
            .all(|w| p.pseudonyms[w[0] as usize] < p.pseudonyms[w[1] as usize]));
        // Asked for every person, there is no sample.
        let all = run(11, 1000);
        assert!(
            all.iter().all(|x| !x.sampled && x.targets == 300),
            "{all:?}"
        );
        // Each target's order of events depends on the seed and the target alone.
        let mut x: Vec<u32> = (0..10).collect();
        let mut y = x.clone();
        SplitMix::new(5, Some("p001")).choose_front(&mut x, 3);
        SplitMix::new(5, Some("p001")).choose_front(&mut y, 3);
        assert_eq!(x, y);
        let mut z: Vec<u32> = (0..10).collect();
        SplitMix::new(5, Some("p002")).choose_front(&mut z, 10);
        assert_ne!(x, z);
        let mut sorted = z.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<u32>>());
    }

    #[test]
    fn postings_and_scans_keep_the_same_candidates() {
        let (persons, events, _) = crowd();
        let p = Persons::new(&persons);
        let rel = Released::new(&events, &p);
        let mut scratch = vec![0u64; p.pseudonyms.len().div_ceil(64)];
        let everyone: Vec<u32> = (0..p.pseudonyms.len() as u32).collect();
        for code in 0..rel.codes.len() {
            for time in 0..rel.times.len() {
                let codes = Cover::new((0..rel.codes.len()).map(|c| c == code).collect());
                let times = Cover::new((0..rel.times.len()).map(|t| t <= time).collect());
                let flags = (Some(&codes.flags[..]), Some(&times.flags[..]));
                let scanned: Vec<u32> = everyone
                    .iter()
                    .copied()
                    .filter(|&q| rel.has(q, flags.0, flags.1))
                    .collect();
                // Everyone: the postings are shorter; one person: the scan is.
                let all = filter(&rel, (Some(&codes), Some(&times)), &everyone, &mut scratch);
                assert_eq!(all, scanned);
                assert!(!all.is_empty() && all.len() < everyone.len());
                for &q in &everyone[..5] {
                    let one = filter(&rel, (Some(&codes), Some(&times)), &[q], &mut scratch);
                    assert_eq!(one.is_empty(), !scanned.contains(&q));
                }
                assert!(scratch.iter().all(|w| *w == 0));
            }
        }
    }

    #[test]
    fn the_wilson_interval_matches_known_values() {
        let close =
            |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 1e-4 && (a.1 - b.1).abs() < 1e-4;
        assert!(
            close(wilson(5, 10), (0.2366, 0.7634)),
            "{:?}",
            wilson(5, 10)
        );
        assert!(close(wilson(0, 10), (0.0, 0.2775)), "{:?}", wilson(0, 10));
        assert!(close(wilson(10, 10), (0.7225, 1.0)), "{:?}", wilson(10, 10));
        assert!(
            close(wilson(81, 263), (0.2553, 0.3662)),
            "{:?}",
            wilson(81, 263)
        );
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }

    #[test]
    fn the_section_shows_each_m_before_and_after() {
        let a = |m: usize, correct: usize, sampled: bool| EventAttack {
            m,
            targets: 10,
            singled_out: correct,
            correct,
            share_correct: correct as f64 / 10.0,
            interval: wilson(correct, 10),
            sampled,
        };
        let s = html_section(
            &[a(1, 0, true), a(2, 5, true)],
            &[a(1, 5, false), a(3, 10, false)],
        );
        assert!(s.contains("m 事象攻撃 / m-event attack"), "{s}");
        assert!(
            s.contains("<td>1</td><td>50.00 % (23.66–76.34 %)</td><td>0.00 % (0.00–27.75 %)</td>"),
            "{s}"
        );
        assert!(s.contains("<td>2</td><td>—</td><td>50.00 %"), "{s}");
        assert!(
            s.contains("<td>3</td><td>100.00 % (72.25–100.00 %)</td><td>—</td>"),
            "{s}"
        );
        assert!(
            s.contains("10 unprocessed, 10 (seeded sample / 抽出) released"),
            "{s}"
        );
    }
}
