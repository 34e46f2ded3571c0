//! The seam between the linkage and an engine that finds the candidate pairs and computes their
//! comparison levels somewhere else (a distributed engine).
//!
//! The linkage normalizes and interns the records, computes every blocking rule's keys and decides
//! which blocks are skipped as too large, exactly as the embedded run does; a [`PairEngine`] then
//! receives a [`PairJob`] and returns every candidate pair with its levels as a [`PairSet`]. Training,
//! scoring and clustering continue here from that set, so an engine that returns the same set gives
//! the same output byte for byte.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::blocking::{self, pack, RuleKeys, RuleStats, KEY_NULL};
use crate::compare::{self, Comparison, ValuePair};
use crate::prepare::{Prepared, NULL};
use crate::score::{PairClass, ScoringJob};
use crate::settings::{ComparisonSpec, Settings, Transform};
use crate::LinkageError;

/// Comparison levels computed from the values of two records, column by column: what an engine's
/// workers run on each candidate pair. It gives the same levels as the embedded run.
pub struct LevelFn {
    columns: Vec<String>,
    comps: Vec<Comparison>,
}

/// What a [`LevelFn`] is made of, as text that travels with a query plan.
#[derive(Serialize, Deserialize)]
struct LevelSpecText {
    columns: Vec<String>,
    comparisons: Vec<ComparisonSpec>,
}

impl LevelFn {
    /// The levels of `comparisons` over values given in `columns`' order.
    pub fn new(comparisons: &[ComparisonSpec], columns: Vec<String>) -> Self {
        let comps = compare::compile_values(comparisons, &columns);
        LevelFn { columns, comps }
    }

    /// The function a [`LevelFn::spec`] describes.
    pub fn from_spec(spec: &str) -> Result<Self, LinkageError> {
        let text: LevelSpecText = toml::from_str(spec).map_err(|e| LinkageError::Settings {
            file: "<level function>".into(),
            message: e.message().to_string(),
        })?;
        Ok(LevelFn::new(&text.comparisons, text.columns))
    }

    /// The columns and comparisons as TOML.
    pub fn spec(&self, comparisons: &[ComparisonSpec]) -> String {
        let text = LevelSpecText {
            columns: self.columns.clone(),
            comparisons: comparisons.to_vec(),
        };
        toml::to_string(&text).unwrap_or_default()
    }

    /// The columns whose values the function takes, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Number of comparisons.
    pub fn comparisons(&self) -> usize {
        self.comps.len()
    }

    /// The level of every comparison for the pair (`left` and `right` hold one value per column).
    pub fn levels(&self, left: &[Option<&str>], right: &[Option<&str>], out: &mut [u8]) {
        compare::levels_of(&self.comps, &ValuePair { left, right }, out);
    }

    /// The levels packed four bits each, the first comparison highest.
    pub fn packed(&self, left: &[Option<&str>], right: &[Option<&str>]) -> u64 {
        let mut g = [0u8; 16];
        let n = self.comps.len().min(16);
        self.levels(left, right, &mut g[..n]);
        pack_levels(&g[..n])
    }

    /// The levels of a pair given by sealed values, packed: the sealing must be deterministic (equal
    /// values, equal bytes), since equality is tested on the sealed bytes; `open` gives a value's text,
    /// called only when a similarity level needs it (at most once per value and pair).
    pub fn packed_sealed(
        &self,
        left: &[Option<&[u8]>],
        right: &[Option<&[u8]>],
        open: &dyn Fn(&[u8]) -> Option<String>,
    ) -> u64 {
        let cells = || {
            (0..self.columns.len())
                .map(|_| Default::default())
                .collect()
        };
        let pair = compare::SealedPair {
            left,
            right,
            open,
            opened_left: cells(),
            opened_right: cells(),
        };
        let mut g = [0u8; 16];
        let n = self.comps.len().min(16);
        compare::levels_of(&self.comps, &pair, &mut g[..n]);
        pack_levels(&g[..n])
    }
}

fn pack_levels(g: &[u8]) -> u64 {
    g.iter().fold(0u64, |acc, l| (acc << 4) | *l as u64)
}

/// Unpacks levels packed by [`LevelFn::packed`].
pub fn unpack_levels(packed: u64, comparisons: usize, out: &mut [u8]) {
    for (c, o) in out.iter_mut().enumerate().take(comparisons) {
        *o = ((packed >> (4 * (comparisons - 1 - c))) & 0xF) as u8;
    }
}

/// Which of a rule's two keys: the one of the pair's left record or of its right record (they differ
/// when the rule swaps columns, `on_right`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySide {
    /// The key built from `on`.
    Left,
    /// The key built from `on_right` (or `on`).
    Right,
}

/// Everything an engine needs to find the candidate pairs: the nodes of each side (records, or
/// profiles of identical records) with their values, and the keys of every blocking rule.
pub struct PairJob<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) prep: &'a Prepared,
    pub(crate) rules: &'a [RuleKeys],
    pub(crate) large: Vec<HashSet<u128>>,
    pub(crate) dedupe: bool,
    pub(crate) values: Vec<usize>,
    pub(crate) level_fn: LevelFn,
    /// The comparisons compiled over the prepared records (their term frequencies).
    pub(crate) comps: Vec<Comparison>,
    /// Per deterministic rule: its columns, as indices into the level function's columns.
    pub(crate) deterministic: Vec<Vec<usize>>,
    /// Per rule: its candidate pairs as planned, where the plan counts them exactly.
    pub(crate) produced: Vec<Option<u64>>,
}

impl PairJob<'_> {
    /// Whether one table is deduplicated (one side) rather than two linked.
    pub fn dedupe(&self) -> bool {
        self.dedupe
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        self.settings
    }

    /// Number of sides (1 for dedupe, 2 for link).
    pub fn sides(&self) -> usize {
        self.prep.sides.len()
    }

    /// Number of nodes of a side.
    pub fn nodes(&self, side: usize) -> usize {
        self.prep.sides.get(side).map_or(0, |s| s.len())
    }

    /// The level function; its columns are the value columns of [`PairJob::value`].
    pub fn level_fn(&self) -> &LevelFn {
        &self.level_fn
    }

    /// The level function as text (for [`LevelFn::from_spec`] on a worker).
    pub fn level_spec(&self) -> String {
        self.level_fn.spec(&self.settings.comparisons)
    }

    /// The normalized value of column `column` (an index into the level function's columns) of a
    /// node.
    pub fn value(&self, side: usize, node: usize, column: usize) -> Option<&str> {
        let s = self.prep.sides.get(side)?;
        let id = s.get(*self.values.get(column)?, node);
        (id != NULL).then(|| self.prep.dict.get(id))
    }

    /// Number of blocking rules (deterministic rules first).
    pub fn rules(&self) -> usize {
        self.rules.len()
    }

    /// Whether rule `rule` builds the right record's key from other columns than the left's.
    pub fn asymmetric(&self, rule: usize) -> bool {
        self.rules.get(rule).is_some_and(|r| r.asymmetric)
    }

    /// The side whose nodes carry keys of `which`: left keys on the first side, right keys on the
    /// last (the same side for dedupe).
    pub fn key_side(&self, which: KeySide) -> usize {
        match which {
            KeySide::Left => 0,
            KeySide::Right => self.sides() - 1,
        }
    }

    /// A node's key under rule `rule` (none when a part is missing). Keys are only compared for
    /// equality within one job.
    pub fn key(&self, rule: usize, which: KeySide, node: usize) -> Option<u128> {
        let r = self.rules.get(rule)?;
        let keys = match which {
            KeySide::Left => &r.left,
            KeySide::Right => &r.right,
        };
        keys.get(node).copied().filter(|k| *k != KEY_NULL)
    }

    /// Whether the block of `key` under rule `rule` is skipped as too large (`max_block_pairs`).
    pub fn skipped(&self, rule: usize, key: u128) -> bool {
        self.rules
            .get(rule)
            .is_some_and(|r| r.skipped.contains(&key))
    }

    /// The columns of each deterministic rule, as indices into the level function's columns: a pair
    /// whose values agree on all of one rule's columns (none missing) is a certain match.
    pub fn deterministic(&self) -> &[Vec<usize>] {
        &self.deterministic
    }

    /// The level at which comparison `c` reads a term frequency.
    pub fn tf_level(&self, c: usize) -> Option<u8> {
        self.comps.get(c)?.tf.as_ref().map(|t| t.level as u8)
    }

    /// The term frequency comparison `c` reads for left node `node` at its term-frequency level.
    pub fn tf(&self, c: usize, node: usize) -> Option<f64> {
        let tf = self.comps.get(c)?.tf.as_ref()?;
        let left = self.prep.pair_sides().0;
        (node < left.len())
            .then(|| tf.freq.get(&left.get(tf.feat, node)).copied())
            .flatten()
    }

    /// Whether the plan counts rule `rule`'s candidate pairs exactly, so that
    /// [`Self::check_classes`] checks them. A dedupe rule whose sides differ (`on_right`) is not
    /// counted: a pair can come from both sides' keys, and only the pairs themselves say how many
    /// there are.
    pub fn counted_exactly(&self, rule: usize) -> bool {
        self.produced.get(rule).is_some_and(Option::is_some)
    }

    /// Checks an engine's classes against the plan: every rule whose pairs the plan counts exactly
    /// produces that many, and every class names a rule that produces it. A pair lost or counted
    /// twice by the engine fails here (unless all its rules swap columns in a dedupe).
    pub fn check_classes(&self, classes: &[PairClass]) -> Result<(), LinkageError> {
        let rules = self.rules();
        if rules > 64 {
            return Err(engine_error(
                "more than 64 blocking rules cannot be counted by class",
            ));
        }
        let mut produced = vec![0u64; rules];
        for class in classes {
            let first = class.first as usize;
            if first >= rules || class.produced >> first & 1 == 0 || class.produced >> rules > 0 {
                return Err(engine_error(
                    "a class of pairs names rules that do not produce it",
                ));
            }
            for (j, n) in produced.iter_mut().enumerate() {
                if class.produced >> j & 1 == 1 {
                    *n += class.pairs;
                }
            }
        }
        for (j, n) in produced.iter().enumerate() {
            if self.produced[j].is_some_and(|planned| planned != *n) {
                return Err(engine_error(format!(
                    "rule {} produced {n} candidate pairs where its blocks hold {}",
                    j + 1,
                    self.produced[j].unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    /// Whether the block of `key` under rule `rule` is large enough to be spread over several tasks
    /// (`split_block_pairs`); the pairs it yields are the same.
    pub fn large(&self, rule: usize, key: u128) -> bool {
        self.large.get(rule).is_some_and(|s| s.contains(&key))
    }
}

/// The candidate pairs an engine found, with their levels.
#[derive(Debug, Default)]
pub struct PairSet {
    /// Pairs of nodes packed as `left << 32 | right` (dedupe: smaller node first), sorted.
    pub(crate) pairs: Vec<u64>,
    /// Levels of pair `i` at `i * comparisons..(i + 1) * comparisons`.
    pub(crate) levels: Vec<u8>,
    /// New pairs of each rule.
    pub(crate) new_pairs: Vec<u64>,
}

impl PairSet {
    /// A set from unordered rows of (left node, right node, rule that produced the pair first,
    /// packed levels). Fails when a rule index is out of range or a pair appears twice.
    pub fn from_rows(
        mut rows: Vec<(u32, u32, u32, u64)>,
        rules: usize,
        comparisons: usize,
    ) -> Result<Self, LinkageError> {
        rows.sort_unstable_by_key(|r| pack(r.0, r.1));
        let mut set = PairSet {
            pairs: Vec::with_capacity(rows.len()),
            levels: vec![0; rows.len() * comparisons],
            new_pairs: vec![0; rules],
        };
        for (i, (a, b, rule, g)) in rows.iter().enumerate() {
            let p = pack(*a, *b);
            if set.pairs.last() == Some(&p) {
                return Err(engine_error("a candidate pair came back twice"));
            }
            set.pairs.push(p);
            match set.new_pairs.get_mut(*rule as usize) {
                Some(n) => *n += 1,
                None => return Err(engine_error("a pair names an unknown rule")),
            }
            unpack_levels(*g, comparisons, &mut set.levels[i * comparisons..]);
        }
        Ok(set)
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// An engine's failure as a linkage error.
pub fn engine_error(message: impl Into<String>) -> LinkageError {
    LinkageError::Engine {
        message: message.into(),
    }
}

/// Where the candidate pairs and their levels are computed.
pub trait PairEngine: Sync {
    /// Name in logs and reports (`embedded`, `ballista://host:port`).
    fn name(&self) -> String;
    /// Every candidate pair of the job with its levels.
    fn pairs(&self, job: &PairJob<'_>) -> Result<PairSet, LinkageError>;
    /// The job trained and scored where its pairs are, when the engine does that (only the classes'
    /// counts and the pairs kept come back); none when it only finds pairs.
    fn scoring<'s>(
        &'s self,
        job: &'s PairJob<'_>,
    ) -> Result<Option<Box<dyn ScoringJob + 's>>, LinkageError> {
        let _ = job;
        Ok(None)
    }
}

/// The rules as planned: their statistics (no pairs counted yet), the keys of each rule's large
/// blocks and each rule's candidate pairs where the plan counts them exactly.
pub(crate) struct RulePlan {
    pub stats: Vec<RuleStats>,
    pub large: Vec<HashSet<u128>>,
    pub produced: Vec<Option<u64>>,
}

/// Plans every rule's blocks as the embedded run does (skipped blocks recorded in the rules).
pub(crate) fn plan_rules(settings: &Settings, rules: &mut [RuleKeys], dedupe: bool) -> RulePlan {
    let mut out = RulePlan {
        stats: Vec::with_capacity(rules.len()),
        large: Vec::with_capacity(rules.len()),
        produced: Vec::with_capacity(rules.len()),
    };
    for rule in rules.iter_mut() {
        let (plan, s) = blocking::plan(rule, dedupe, settings.limits.max_block_pairs);
        out.large
            .push(plan.large_blocks(settings.limits.split_block_pairs));
        out.produced.push(plan.kept_pairs());
        out.stats.push(s);
    }
    out
}

/// The columns of each deterministic rule as indices into `columns` (the level function's).
pub(crate) fn deterministic_columns(settings: &Settings, columns: &[String]) -> Vec<Vec<usize>> {
    settings
        .deterministic
        .iter()
        .map(|d| {
            d.columns
                .iter()
                .filter_map(|c| columns.iter().position(|x| x == c))
                .collect()
        })
        .collect()
}

/// The plain-value features of the prepared records, with their columns.
pub(crate) fn value_features(prep: &Prepared) -> (Vec<usize>, Vec<String>) {
    prep.features
        .iter()
        .enumerate()
        .filter(|(_, f)| f.transform == Transform::Value)
        .map(|(i, f)| (i, f.column.clone()))
        .unzip()
}
