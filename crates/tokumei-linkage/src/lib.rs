//! Record linkage (名寄せ) of identity records.
//!
//! A [`Settings`] file declares the columns with their normalizers, deterministic rules, blocking rules and
//! the comparisons of a Fellegi–Sunter model. [`link`] normalizes the inputs, builds candidate pairs as the
//! union of the blocking rules, estimates u from random pairs and m and the prior by EM, scores every
//! candidate (with term-frequency adjustments), and clusters records into entities with a union-find that
//! refuses merges joining conflicting records. Same inputs and seed give the same output.
//!
//! ```no_run
//! use tokumei_linkage::{link, Dataset, Settings};
//! # fn main() -> Result<(), tokumei_linkage::LinkageError> {
//! let settings = Settings::load("settings/linkage/febrl.toml".as_ref())?;
//! let left = Dataset::read_csv("a.csv".as_ref(), "utf-8")?;
//! let right = Dataset::read_csv("b.csv".as_ref(), "utf-8")?;
//! let out = link(&settings, &left, Some(&right))?;
//! println!("{} pairs, {} clusters", out.pairs.len(), out.cluster_count);
//! # Ok(()) }
//! ```

mod blocking;
mod cluster;
mod compare;
pub mod dataset;
mod engine;
pub mod error;
pub mod eval;
mod model;
pub mod normalize;
mod pipeline;
mod prepare;
pub mod report;
pub mod sample;
pub mod score;
pub mod settings;
pub mod unionfind;

pub use blocking::RuleStats;
pub use cluster::ClusterStats;
pub use compare::{jaro_winkler, levenshtein_within};
pub use dataset::Dataset;
pub use engine::{engine_error, unpack_levels, KeySide, LevelFn, PairEngine, PairJob, PairSet};
pub use error::LinkageError;
pub use model::{probability, LevelParams, Model};
pub use score::{PairClass, Scoring, ScoringJob};
pub use settings::{LinkType, Settings};
pub use unionfind::UnionFind;

/// One scored pair written to the output.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// Row in the left table.
    pub left_row: u32,
    /// Row in the right table (the same table for dedupe).
    pub right_row: u32,
    /// Match weight (log2 odds); infinite for deterministic matches.
    pub weight: f64,
    /// Match probability.
    pub probability: f64,
    /// Whether a deterministic rule matched.
    pub deterministic: bool,
    /// Level index per comparison.
    pub levels: Vec<u8>,
}

/// Histogram of match weights of every candidate pair.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Lower edge of the first bin.
    pub start: f64,
    /// Bin width.
    pub width: f64,
    /// Counts per bin (the first and last bins also hold everything beyond them).
    pub counts: Vec<u64>,
}

/// Result of [`link`].
#[derive(Debug, Clone)]
pub struct LinkOutput {
    /// Link or dedupe.
    pub link_type: LinkType,
    /// Record ids of the left table.
    pub left_ids: Vec<String>,
    /// Record ids of the right table (empty for dedupe).
    pub right_ids: Vec<String>,
    /// Pairs at or above the lower review threshold, sorted by (left row, right row).
    pub pairs: Vec<Pair>,
    /// Cluster number (from 1) of every left row.
    pub left_clusters: Vec<u32>,
    /// Cluster number of every right row (empty for dedupe).
    pub right_clusters: Vec<u32>,
    /// Number of clusters.
    pub cluster_count: usize,
    /// Comparison names.
    pub comparison_names: Vec<String>,
    /// The model.
    pub model: Model,
    /// Per blocking rule (deterministic rules first).
    pub blocking: Vec<RuleStats>,
    /// Candidate pairs scored.
    pub candidates: u64,
    /// Nodes after merging identical records (dedupe), per side.
    pub nodes: Vec<usize>,
    /// Weight histogram of every candidate pair.
    pub histogram: Histogram,
    /// Clustering statistics.
    pub cluster_stats: ClusterStats,
    /// Pairs at or above the match threshold.
    pub matches: u64,
    /// Pairs in the review band.
    pub review: u64,
    /// The thresholds used.
    pub thresholds: settings::Thresholds,
}

/// Links `left` to `right` (link mode) or deduplicates `left` (dedupe mode, `right` must be `None`), with
/// the seed of the settings.
pub fn link(
    settings: &Settings,
    left: &Dataset,
    right: Option<&Dataset>,
) -> Result<LinkOutput, LinkageError> {
    link_seeded(settings, left, right, None)
}

/// [`link`] with the seed of the random pair sample overridden when `seed` is given.
pub fn link_seeded(
    settings: &Settings,
    left: &Dataset,
    right: Option<&Dataset>,
    seed: Option<u64>,
) -> Result<LinkOutput, LinkageError> {
    link_constrained(settings, left, right, seed, &[])
}

/// [`link_seeded`] with pairs that must never end in one cluster (for example pairs a clerk rejected),
/// as (left row, right row) in link mode or (row, row) in dedupe mode. Clustering refuses every merge that
/// would join them, directly or through other records.
pub fn link_constrained(
    settings: &Settings,
    left: &Dataset,
    right: Option<&Dataset>,
    seed: Option<u64>,
    cannot_link: &[(u32, u32)],
) -> Result<LinkOutput, LinkageError> {
    link_with_engine(None, settings, left, right, seed, cannot_link)
}

/// [`link_constrained`] with the candidate pairs and their levels found by `engine` (the embedded
/// default when none). An engine that returns the pairs the embedded run finds gives the same output.
pub fn link_with_engine(
    engine: Option<&dyn PairEngine>,
    settings: &Settings,
    left: &Dataset,
    right: Option<&Dataset>,
    seed: Option<u64>,
    cannot_link: &[(u32, u32)],
) -> Result<LinkOutput, LinkageError> {
    let dedupe = settings.link_type == LinkType::Dedupe;
    let right = pipeline::right_table(settings, left, right)?;
    let seed = seed.unwrap_or(settings.seed);
    let t0 = std::time::Instant::now();
    let datasets: Vec<&Dataset> = std::iter::once(left).chain(right).collect();
    let mut ids = pipeline::record_ids(settings, &datasets)?;
    let collapse = dedupe && settings.clustering.collapse_duplicates;
    let features = pipeline::feature_keys(settings);
    let prep = prepare::prepare(&datasets, features, |c| settings.normalizer(c), collapse)?;
    let (lside, rside) = prep.pair_sides();
    tracing::info!(
        left = lside.len(),
        right = rside.len(),
        secs = t0.elapsed().as_secs_f64(),
        "prepared"
    );
    let mut rules = pipeline::rule_keys(settings, &prep);
    // The embedded run finds its pairs, an engine's job is planned; the rules stay fixed after.
    let (embedded, job) = match engine {
        None => (
            Some(pipeline::candidate_pairs(settings, &mut rules, dedupe)?),
            None,
        ),
        Some(_) => (None, Some(engine::plan_rules(settings, &mut rules, dedupe))),
    };
    let (job, planned) = match job {
        Some(plan) => {
            let job = pair_job(settings, &prep, &rules, plan.large, plan.produced, dedupe);
            (Some(job), plan.stats)
        }
        None => (None, Vec::new()),
    };
    let mut scoring_job = match (engine, &job) {
        (Some(e), Some(j)) => e.scoring(j)?,
        _ => None,
    };
    let (mut candidates, rule_stats) = match (engine, &job, embedded) {
        (_, _, Some((pairs, stats))) => {
            tracing::info!(
                pairs = pairs.len(),
                secs = t0.elapsed().as_secs_f64(),
                "candidate pairs"
            );
            (
                pipeline::Candidates::new(settings, dedupe, &prep, pairs),
                stats,
            )
        }
        (Some(e), Some(j), None) => match scoring_job.as_deref_mut() {
            Some(s) => class_candidates(s, j, planned)?,
            None => engine_candidates(e, j, planned)?,
        },
        _ => return Err(engine_error("no engine and no pairs")),
    };
    tracing::info!(secs = t0.elapsed().as_secs_f64(), "levels");
    let deterministic = pipeline::Deterministic::new(settings, &prep);
    let fitted = candidates.fit(&rules, seed, t0);
    let scoring = candidates.scoring(&fitted);
    let (weights, histogram) = match scoring_job.as_deref_mut() {
        None => {
            let weights = candidates.weights(&scoring, &deterministic);
            let histogram = pipeline::histogram(weights.iter().map(|w| (*w, 1)));
            (weights, histogram)
        }
        Some(s) => {
            let histogram = candidates.class_histogram(&scoring);
            (
                candidates.keep_scored(s, &scoring, &deterministic)?,
                histogram,
            )
        }
    };
    tracing::info!(
        secs = t0.elapsed().as_secs_f64(),
        prior = fitted.prior,
        iterations = fitted.em_iterations,
        "model"
    );
    let scored = scoring_job
        .is_some()
        .then_some((&rules[..], &scoring, &deterministic));
    let clusters = candidates.clusters(&weights, cannot_link, scored);
    drop(scoring_job);
    tracing::info!(secs = t0.elapsed().as_secs_f64(), "clusters");
    let (pairs, matches, review) = candidates.output_pairs(&weights, collapse);
    Ok(LinkOutput {
        link_type: settings.link_type,
        left_ids: ids.remove(0),
        right_ids: ids.pop().filter(|_| !dedupe).unwrap_or_default(),
        pairs,
        left_clusters: clusters.left,
        right_clusters: clusters.right,
        cluster_count: clusters.count,
        comparison_names: candidates.comparison_names(),
        model: fitted,
        blocking: rule_stats,
        candidates: candidates.len(),
        nodes: prep.sides.iter().map(|s| s.len()).collect(),
        histogram,
        cluster_stats: clusters.stats,
        matches,
        review,
        thresholds: settings.thresholds.clone(),
    })
}

/// The job an engine receives.
fn pair_job<'a>(
    settings: &'a Settings,
    prep: &'a prepare::Prepared,
    rules: &'a [blocking::RuleKeys],
    large: Vec<std::collections::HashSet<u128>>,
    produced: Vec<Option<u64>>,
    dedupe: bool,
) -> PairJob<'a> {
    let (values, columns) = engine::value_features(prep);
    PairJob {
        settings,
        prep,
        rules,
        large,
        dedupe,
        values,
        deterministic: engine::deterministic_columns(settings, &columns),
        comps: compare::compile(&settings.comparisons, prep),
        produced,
        level_fn: LevelFn::new(&settings.comparisons, columns),
    }
}

/// The candidates as `engine` finds them, with the rules' statistics.
fn engine_candidates<'a>(
    engine: &dyn PairEngine,
    job: &PairJob<'a>,
    mut stats: Vec<RuleStats>,
) -> Result<(pipeline::Candidates<'a>, Vec<RuleStats>), LinkageError> {
    let settings = job.settings;
    let set = engine.pairs(job)?;
    if set.len() as u64 > settings.limits.max_candidate_pairs {
        return Err(LinkageError::TooManyPairs {
            limit: settings.limits.max_candidate_pairs,
        });
    }
    if set.new_pairs.len() != stats.len()
        || set.levels.len() != set.len() * settings.comparisons.len()
    {
        return Err(engine_error("the engine's pairs do not match the job"));
    }
    for (s, n) in stats.iter_mut().zip(&set.new_pairs) {
        s.new_pairs = *n;
    }
    tracing::info!(engine = %engine.name(), pairs = set.len(), "candidate pairs");
    let candidates =
        pipeline::Candidates::from_levels(settings, job.dedupe, job.prep, set.pairs, set.levels);
    Ok((candidates, stats))
}

/// The candidates as a scoring engine counts them by class, checked against the plan, with the
/// rules' statistics.
fn class_candidates<'a>(
    scoring_job: &mut dyn ScoringJob,
    job: &PairJob<'a>,
    mut stats: Vec<RuleStats>,
) -> Result<(pipeline::Candidates<'a>, Vec<RuleStats>), LinkageError> {
    let settings = job.settings;
    let classes = scoring_job.classes()?;
    job.check_classes(&classes)?;
    let nc = settings.comparisons.len();
    for class in &classes {
        let mut g = vec![0u8; nc];
        unpack_levels(class.levels, nc, &mut g);
        let known = g
            .iter()
            .zip(&job.comps)
            .all(|(l, c)| (*l as usize) < c.levels.len());
        if !known || class.tf.len() != nc {
            return Err(engine_error(
                "a class of pairs has levels the job does not have",
            ));
        }
        stats[class.first as usize].new_pairs += class.pairs;
    }
    let total: u64 = classes.iter().map(|c| c.pairs).sum();
    if total > settings.limits.max_candidate_pairs {
        return Err(LinkageError::TooManyPairs {
            limit: settings.limits.max_candidate_pairs,
        });
    }
    tracing::info!(
        classes = classes.len(),
        pairs = total,
        "candidate pairs by class"
    );
    let candidates = pipeline::Candidates::from_classes(settings, job.dedupe, job.prep, classes);
    Ok((candidates, stats))
}

impl LinkOutput {
    /// Writes `pairs.csv`: `left_id`, `right_id`, `probability`, then one column per comparison holding
    /// the label of its level.
    pub fn write_pairs<W: std::io::Write>(&self, w: W) -> std::io::Result<()> {
        let mut out = csv::Writer::from_writer(w);
        let mut header = vec![
            "left_id".to_string(),
            "right_id".into(),
            "probability".into(),
        ];
        header.extend(self.comparison_names.iter().cloned());
        out.write_record(&header)?;
        let right_ids = if self.link_type == LinkType::Dedupe {
            &self.left_ids
        } else {
            &self.right_ids
        };
        let mut rec: Vec<String> = Vec::with_capacity(header.len());
        for p in &self.pairs {
            rec.clear();
            rec.push(self.left_ids[p.left_row as usize].clone());
            rec.push(right_ids[p.right_row as usize].clone());
            rec.push(format!("{:.10}", p.probability));
            for (c, l) in p.levels.iter().enumerate() {
                rec.push(self.model.comparisons[c].1[*l as usize].label.clone());
            }
            out.write_record(&rec)?;
        }
        out.flush()
    }

    /// Writes `clusters.csv`: `cluster_id`, `record_id` (and `side` in link mode), ordered by cluster.
    pub fn write_clusters<W: std::io::Write>(&self, w: W) -> std::io::Result<()> {
        let mut out = csv::Writer::from_writer(w);
        let link = self.link_type == LinkType::Link;
        let mut rows: Vec<(u32, u8, u32)> = self
            .left_clusters
            .iter()
            .enumerate()
            .map(|(r, c)| (*c, 0u8, r as u32))
            .chain(
                self.right_clusters
                    .iter()
                    .enumerate()
                    .map(|(r, c)| (*c, 1u8, r as u32)),
            )
            .collect();
        rows.sort_unstable();
        if link {
            out.write_record(["cluster_id", "record_id", "side"])?;
        } else {
            out.write_record(["cluster_id", "record_id"])?;
        }
        for (c, side, r) in rows {
            let c = c.to_string();
            if side == 0 {
                let id = self.left_ids[r as usize].as_str();
                if link {
                    out.write_record([c.as_str(), id, "left"])?;
                } else {
                    out.write_record([c.as_str(), id])?;
                }
            } else {
                out.write_record([c.as_str(), self.right_ids[r as usize].as_str(), "right"])?;
            }
        }
        out.flush()
    }

    /// The written pairs as (left id, right id, probability), for evaluation.
    pub fn scored_ids(&self) -> Vec<(String, String, f64)> {
        let right_ids = if self.link_type == LinkType::Dedupe {
            &self.left_ids
        } else {
            &self.right_ids
        };
        self.pairs
            .iter()
            .map(|p| {
                (
                    self.left_ids[p.left_row as usize].clone(),
                    right_ids[p.right_row as usize].clone(),
                    p.probability,
                )
            })
            .collect()
    }

    /// Clusters as (cluster id, record key) with keys `L:`/`R:`-prefixed in link mode.
    pub fn cluster_keys(&self) -> Vec<(String, String)> {
        let link = self.link_type == LinkType::Link;
        let mut v: Vec<(String, String)> = self
            .left_clusters
            .iter()
            .zip(&self.left_ids)
            .map(|(c, id)| {
                (
                    c.to_string(),
                    if link { format!("L:{id}") } else { id.clone() },
                )
            })
            .collect();
        v.extend(
            self.right_clusters
                .iter()
                .zip(&self.right_ids)
                .map(|(c, id)| (c.to_string(), format!("R:{id}"))),
        );
        v
    }
}
