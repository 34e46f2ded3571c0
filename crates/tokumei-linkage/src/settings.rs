//! Declarative linkage settings (TOML).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::LinkageError;
use crate::normalize::Normalizer;

/// Whether two tables are linked or one table is deduplicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkType {
    /// Link records of a left table to records of a right table.
    Link,
    /// Find records of one table that belong to the same entity.
    Dedupe,
}

/// The whole settings file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `link` or `dedupe`.
    pub link_type: LinkType,
    /// Column holding the record id.
    pub id_column: String,
    /// Encoding of CSV input: `utf-8` (default) or e.g. `shift_jis`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// Seed of every random choice (u sampling); the command line may override it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Every column used, with its normalizer (`none`, `text`, `name`, `kana`, `date`, `address`,
    /// `postal`, `digits`, `sex`).
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Rules that declare a match outright (probability 1) when all their columns agree and are present.
    #[serde(default)]
    pub deterministic: Vec<DeterministicRule>,
    /// Blocking rules; candidate pairs are the union of their pairs.
    #[serde(default)]
    pub blocking: Vec<BlockingRule>,
    /// Comparisons of the probabilistic model.
    pub comparisons: Vec<ComparisonSpec>,
    /// Match threshold and clerical-review band.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Estimation of the model.
    #[serde(default)]
    pub training: Training,
    /// Clustering into entities.
    #[serde(default)]
    pub clustering: Clustering,
    /// Guards against runaway blocking.
    #[serde(default)]
    pub limits: Limits,
}

fn default_seed() -> u64 {
    42
}

/// A deterministic rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeterministicRule {
    /// Name in reports.
    #[serde(default)]
    pub name: Option<String>,
    /// Columns that must all agree (after normalization) and be present.
    pub columns: Vec<String>,
}

/// A blocking rule: records whose keys are equal become candidate pairs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockingRule {
    /// Name in reports.
    #[serde(default)]
    pub name: Option<String>,
    /// Key parts: `column` (normalized value) or `transform(column)` with transform one of
    /// `firstN` / `lastN` (N characters), `soundex`, `year` (first 4 characters).
    pub on: Vec<String>,
    /// Key parts for the right record (default `on`), e.g. swapped given name and surname.
    #[serde(default)]
    pub on_right: Option<Vec<String>>,
}

/// One comparison of the model.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ComparisonSpec {
    /// Name (also the column name in pairs.csv).
    pub name: String,
    /// Columns compared (the default of every level).
    pub columns: Vec<String>,
    /// Term-frequency adjustment of the exact level (rare values weigh more).
    #[serde(default)]
    pub tf_adjust: bool,
    /// Smallest term frequency used by the adjustment.
    #[serde(default)]
    pub tf_minimum_u: Option<f64>,
    /// Levels, tried in order; the first that holds is the pair's level.
    pub levels: Vec<LevelSpec>,
}

/// One comparison level.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LevelSpec {
    /// `null` (no column present on both sides), `exact`, `jaro_winkler`, `levenshtein`, `swapped`,
    /// `date_transposed`, `date_typo`, `date_within_days`, `numeric`, `else`.
    pub kind: String,
    /// Similarity threshold (`jaro_winkler`).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Largest distance (`levenshtein`, `date_within_days`, `numeric`).
    #[serde(default)]
    pub max: Option<f64>,
    /// Columns of this level (default: the comparison's columns).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Columns that must also be present on both sides and differ for the level to hold (e.g. the
    /// same insurance card with another 枝番: a family member).
    #[serde(default)]
    pub differ: Option<Vec<String>>,
    /// Label in outputs (default derived from the kind).
    #[serde(default)]
    pub label: Option<String>,
    /// Fixed m probability (not estimated).
    #[serde(default)]
    pub m: Option<f64>,
    /// Fixed u probability (not estimated).
    #[serde(default)]
    pub u: Option<f64>,
}

/// Thresholds on the match probability.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Pairs at or above are matches (and linked in clusters).
    #[serde(rename = "match", default = "half")]
    pub match_probability: f64,
    /// Lower end of the clerical-review band; pairs below are not written.
    #[serde(default = "default_lower")]
    pub review_lower: f64,
    /// Upper end of the clerical-review band.
    #[serde(default = "default_upper")]
    pub review_upper: f64,
}

fn half() -> f64 {
    0.5
}
fn default_lower() -> f64 {
    0.1
}
fn default_upper() -> f64 {
    0.9
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            match_probability: half(),
            review_lower: default_lower(),
            review_upper: default_upper(),
        }
    }
}

/// Estimation settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    /// Random pairs drawn to estimate u.
    #[serde(default = "default_u_pairs")]
    pub u_sample_pairs: usize,
    /// Largest number of EM iterations.
    #[serde(default = "default_em_iter")]
    pub em_max_iterations: usize,
    /// EM stops when no parameter moves more than this.
    #[serde(default = "default_em_tol")]
    pub em_tolerance: f64,
    /// Fixed prior probability of a match used for scoring, in the scope of `prior_scope` (otherwise
    /// estimated by EM).
    #[serde(default)]
    pub prior: Option<f64>,
    /// `all_pairs` (default): the prior is the chance that two records drawn at random match (matches
    /// expected among the candidates over all possible pairs), so probabilities are comparable across
    /// blocking rules; `candidates`: the chance that a candidate pair matches.
    #[serde(default)]
    pub prior_scope: PriorScope,
}

/// What the prior probability of a match refers to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorScope {
    /// Any pair of records.
    #[default]
    AllPairs,
    /// Candidate pairs (after blocking).
    Candidates,
}

fn default_u_pairs() -> usize {
    1_000_000
}
fn default_em_iter() -> usize {
    100
}
fn default_em_tol() -> f64 {
    1e-7
}

impl Default for Training {
    fn default() -> Self {
        Training {
            u_sample_pairs: default_u_pairs(),
            em_max_iterations: default_em_iter(),
            em_tolerance: default_em_tol(),
            prior: None,
            prior_scope: PriorScope::AllPairs,
        }
    }
}

/// Clustering settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clustering {
    /// Links at or above this probability join clusters (default: the match threshold).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Scored pairs below this probability must not end in one cluster (default: review_lower).
    #[serde(default)]
    pub cannot_link_below: Option<f64>,
    /// Two records conflict when every one of these columns is present on both and differs
    /// (e.g. birth date and sex).
    #[serde(default)]
    pub conflict_if_all_differ: Vec<String>,
    /// `[source, local_id]`: two records of the same source with different local ids conflict.
    #[serde(default)]
    pub same_source: Option<[String; 2]>,
    /// Link mode: a cluster holds at most one record of each side.
    #[serde(default)]
    pub one_to_one: bool,
    /// Dedupe: records identical on every column used, none missing, are processed once (always one
    /// cluster); records with a missing value are scored like any other.
    #[serde(default = "yes")]
    pub collapse_duplicates: bool,
    /// Dedupe with collapsed duplicates: also write the pairs of identical records (probability 1).
    #[serde(default = "yes")]
    pub write_duplicate_pairs: bool,
}

fn yes() -> bool {
    true
}

impl Default for Clustering {
    fn default() -> Self {
        Clustering {
            threshold: None,
            cannot_link_below: None,
            conflict_if_all_differ: Vec::new(),
            same_source: None,
            one_to_one: false,
            collapse_duplicates: true,
            write_duplicate_pairs: true,
        }
    }
}

/// Guards against runaway blocking.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Blocks with more pairs are skipped (and reported).
    #[serde(default = "default_block_pairs")]
    pub max_block_pairs: u64,
    /// Linking fails when the candidate pairs exceed this.
    #[serde(default = "default_pairs")]
    pub max_candidate_pairs: u64,
    /// A distributed engine spreads the pairs of a block with more pairs than this over several
    /// tasks, so that one large block does not hold up one worker; the pairs are the same.
    #[serde(default = "default_split_pairs")]
    pub split_block_pairs: u64,
}

fn default_block_pairs() -> u64 {
    250_000
}
fn default_pairs() -> u64 {
    400_000_000
}
fn default_split_pairs() -> u64 {
    20_000
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_block_pairs: default_block_pairs(),
            max_candidate_pairs: default_pairs(),
            split_block_pairs: default_split_pairs(),
        }
    }
}

/// A key transform of a blocking rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transform {
    /// The normalized value.
    Value,
    /// First N characters.
    First(usize),
    /// Last N characters.
    Last(usize),
    /// Soundex code.
    Soundex,
}

/// Parses `column`, `first3(column)`, `soundex(column)`, `year(column)`.
pub fn parse_key(expr: &str) -> Option<(Transform, String)> {
    let expr = expr.trim();
    let Some(open) = expr.find('(') else {
        return Some((Transform::Value, expr.to_string()));
    };
    let col = expr[open + 1..].strip_suffix(')')?.trim().to_string();
    let f = &expr[..open];
    let t = if f == "soundex" {
        Transform::Soundex
    } else if f == "year" {
        Transform::First(4)
    } else if let Some(n) = f.strip_prefix("first") {
        Transform::First(n.parse().ok().filter(|n| *n > 0)?)
    } else if let Some(n) = f.strip_prefix("last") {
        Transform::Last(n.parse().ok().filter(|n| *n > 0)?)
    } else {
        return None;
    };
    Some((t, col))
}

impl Settings {
    /// Reads and validates a settings file.
    pub fn load(path: &Path) -> Result<Settings, LinkageError> {
        let text = std::fs::read_to_string(path).map_err(|source| LinkageError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Settings::parse(&text, &path.display().to_string())
    }

    /// Parses and validates settings text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Settings, LinkageError> {
        let s: Settings = toml::from_str(text).map_err(|e| LinkageError::Settings {
            file: file.to_string(),
            message: e.message().to_string(),
        })?;
        s.validate(file)?;
        Ok(s)
    }

    /// The normalizer of a declared column.
    pub fn normalizer(&self, column: &str) -> Normalizer {
        self.columns
            .get(column)
            .and_then(|n| Normalizer::parse(n))
            .unwrap_or(Normalizer::Text)
    }

    /// Every column the settings use, sorted, id column excluded.
    pub fn used_columns(&self) -> Vec<String> {
        let mut v: Vec<String> = self.columns.keys().cloned().collect();
        v.retain(|c| c != &self.id_column);
        v
    }

    fn validate(&self, file: &str) -> Result<(), LinkageError> {
        let bad = |message: String| LinkageError::Settings {
            file: file.to_string(),
            message,
        };
        for (col, norm) in &self.columns {
            if Normalizer::parse(norm).is_none() {
                return Err(bad(format!("column `{col}`: unknown normalizer `{norm}`")));
            }
        }
        let check = |place: String, col: &str| -> Result<(), LinkageError> {
            if self.columns.contains_key(col) {
                Ok(())
            } else {
                Err(LinkageError::UnknownColumn {
                    file: file.to_string(),
                    place,
                    column: col.to_string(),
                })
            }
        };
        if self.id_column.trim().is_empty() {
            return Err(bad("id_column is empty".into()));
        }
        for (i, r) in self.deterministic.iter().enumerate() {
            if r.columns.is_empty() {
                return Err(bad(format!("deterministic[{i}] has no columns")));
            }
            for c in &r.columns {
                check(format!("deterministic[{i}]"), c)?;
            }
        }
        for (i, r) in self.blocking.iter().enumerate() {
            let right = r.on_right.as_ref().unwrap_or(&r.on);
            if r.on.is_empty() || right.len() != r.on.len() {
                return Err(bad(format!(
                    "blocking[{i}]: `on` must be non-empty and `on_right` of the same length"
                )));
            }
            if r.on.len() > 4 {
                return Err(bad(format!("blocking[{i}]: at most 4 key parts")));
            }
            for k in r.on.iter().chain(right) {
                let (_, col) = parse_key(k)
                    .ok_or_else(|| bad(format!("blocking[{i}]: cannot read key `{k}`")))?;
                check(format!("blocking[{i}]"), &col)?;
            }
        }
        if self.comparisons.is_empty() || self.comparisons.len() > 16 {
            return Err(bad("between 1 and 16 comparisons".into()));
        }
        for (i, c) in self.comparisons.iter().enumerate() {
            let place = format!("comparisons[{i}] ({})", c.name);
            if c.columns.is_empty() {
                return Err(bad(format!("{place}: no columns")));
            }
            for col in &c.columns {
                check(place.clone(), col)?;
            }
            if c.levels.is_empty() || c.levels.len() > 15 {
                return Err(bad(format!("{place}: between 1 and 15 levels")));
            }
            for (j, l) in c.levels.iter().enumerate() {
                for col in l.columns.iter().flatten().chain(l.differ.iter().flatten()) {
                    check(format!("{place} level {j}"), col)?;
                }
                let needs = match l.kind.as_str() {
                    "null" | "exact" | "swapped" | "date_transposed" | "date_typo" | "else" => None,
                    "jaro_winkler" => Some(("threshold", l.threshold.is_some())),
                    "levenshtein" | "date_within_days" | "numeric" => {
                        Some(("max", l.max.is_some()))
                    }
                    other => return Err(bad(format!("{place} level {j}: unknown kind `{other}`"))),
                };
                if let Some((what, false)) = needs {
                    return Err(bad(format!(
                        "{place} level {j}: `{}` needs `{what}`",
                        l.kind
                    )));
                }
                if l.kind == "swapped" && l.columns.as_ref().unwrap_or(&c.columns).len() != 2 {
                    return Err(bad(format!(
                        "{place} level {j}: `swapped` needs two columns"
                    )));
                }
                for p in [l.m, l.u].into_iter().flatten() {
                    if !(p > 0.0 && p <= 1.0) {
                        return Err(bad(format!("{place} level {j}: m and u lie in (0, 1]")));
                    }
                }
            }
        }
        for c in &self.clustering.conflict_if_all_differ {
            check("clustering.conflict_if_all_differ".into(), c)?;
        }
        if let Some([a, b]) = &self.clustering.same_source {
            check("clustering.same_source".into(), a)?;
            check("clustering.same_source".into(), b)?;
        }
        let t = &self.thresholds;
        if !(0.0..=1.0).contains(&t.review_lower)
            || !(0.0..=1.0).contains(&t.review_upper)
            || !(0.0..=1.0).contains(&t.match_probability)
            || t.review_lower > t.review_upper
        {
            return Err(bad(
                "thresholds lie in [0, 1] with review_lower <= review_upper".into(),
            ));
        }
        if let Some(p) = self.training.prior {
            if !(p > 0.0 && p < 1.0) {
                return Err(bad("training.prior lies in (0, 1)".into()));
            }
        }
        Ok(())
    }
}
