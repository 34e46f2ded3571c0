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
pub mod error;
pub mod eval;
mod model;
pub mod normalize;
mod prepare;
pub mod report;
pub mod settings;
pub mod unionfind;

use rayon::prelude::*;

pub use blocking::RuleStats;
pub use cluster::ClusterStats;
pub use compare::{jaro_winkler, levenshtein_within};
pub use dataset::Dataset;
pub use error::LinkageError;
pub use model::{probability, LevelParams, Model};
pub use settings::{LinkType, Settings};
pub use unionfind::UnionFind;

use crate::blocking::{pack, unpack, RuleKeys};
use crate::compare::PairCtx;
use crate::prepare::FeatureKey;
use crate::settings::{parse_key, Transform};

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

fn rule_parts(keys: &[String], prep: &prepare::Prepared) -> Vec<usize> {
    keys.iter()
        .filter_map(|k| parse_key(k))
        .map(|(t, c)| prep.feature(&c, t))
        .collect()
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
    let dedupe = settings.link_type == LinkType::Dedupe;
    let right = match (dedupe, right) {
        (true, Some(r)) => return Err(LinkageError::Input {
            file: r.name.clone(),
            message:
                "dedupe settings take one table; drop the right table or use link_type = \"link\""
                    .into(),
        }),
        (false, None) => {
            return Err(LinkageError::Input {
                file: left.name.clone(),
                message: "link settings need a right table".into(),
            })
        }
        (_, r) => r,
    };
    let seed = seed.unwrap_or(settings.seed);
    let t0 = std::time::Instant::now();
    let datasets: Vec<&Dataset> = std::iter::once(left).chain(right).collect();
    // Ids.
    let mut ids: Vec<Vec<String>> = Vec::new();
    for ds in &datasets {
        let col = ds.require(&settings.id_column)?;
        ids.push(
            (0..ds.len())
                .map(|r| col.get(r).unwrap_or("").to_string())
                .collect(),
        );
    }
    // Features: every declared column as its value, plus blocking transforms.
    let mut features: Vec<FeatureKey> = settings
        .used_columns()
        .into_iter()
        .map(|column| FeatureKey {
            column,
            transform: Transform::Value,
        })
        .collect();
    for r in &settings.blocking {
        for k in r.on.iter().chain(r.on_right.iter().flatten()) {
            if let Some((transform, column)) = parse_key(k) {
                features.push(FeatureKey { column, transform });
            }
        }
    }
    features.sort();
    features.dedup();
    let collapse = dedupe && settings.clustering.collapse_duplicates;
    let prep = prepare::prepare(&datasets, features, |c| settings.normalizer(c), collapse)?;
    let (lside, rside) = prep.pair_sides();
    tracing::info!(
        left = lside.len(),
        right = rside.len(),
        secs = t0.elapsed().as_secs_f64(),
        "prepared"
    );

    // Blocking rules: deterministic rules first.
    let mut rules: Vec<RuleKeys> = Vec::new();
    for (i, d) in settings.deterministic.iter().enumerate() {
        let feats: Vec<usize> = d
            .columns
            .iter()
            .map(|c| prep.feature(c, Transform::Value))
            .collect();
        // Keys over more than 4 parts: chain them in groups (still exact per group).
        let name = format!(
            "deterministic: {}",
            d.name.clone().unwrap_or_else(|| format!("#{}", i + 1))
        );
        let kf: Vec<usize> = feats.iter().take(4).copied().collect();
        rules.push(RuleKeys {
            name,
            left: blocking::keys(lside, &kf),
            right: blocking::keys(rside, &kf),
            asymmetric: false,
            skipped: Default::default(),
        });
    }
    for (i, r) in settings.blocking.iter().enumerate() {
        let lp = rule_parts(&r.on, &prep);
        let rp = rule_parts(r.on_right.as_ref().unwrap_or(&r.on), &prep);
        rules.push(RuleKeys {
            name: r
                .name
                .clone()
                .unwrap_or_else(|| format!("#{}: {}", i + 1, r.on.join(" + "))),
            left: blocking::keys(lside, &lp),
            right: blocking::keys(rside, &rp),
            asymmetric: lp != rp,
            skipped: Default::default(),
        });
    }
    let mut candidates: Vec<u64> = Vec::new();
    let mut rule_stats = Vec::new();
    for k in 0..rules.len() {
        let (pairs, stats) =
            blocking::generate(&mut rules, k, dedupe, settings.limits.max_block_pairs);
        if stats.skipped_blocks > 0 {
            tracing::warn!(
                rule = %stats.name,
                blocks = stats.skipped_blocks,
                pairs = stats.skipped_pairs,
                largest = stats.largest_skipped_block,
                "blocks over max_block_pairs skipped"
            );
        }
        candidates.extend(pairs);
        rule_stats.push(stats);
        if candidates.len() as u64 > settings.limits.max_candidate_pairs {
            return Err(LinkageError::TooManyPairs {
                limit: settings.limits.max_candidate_pairs,
            });
        }
    }
    candidates.par_sort_unstable();
    tracing::info!(
        pairs = candidates.len(),
        secs = t0.elapsed().as_secs_f64(),
        "candidate pairs"
    );

    // Comparison levels.
    let comps = compare::compile(&settings.comparisons, &prep);
    let nc = comps.len();
    let ctx = PairCtx {
        prep: &prep,
        left: lside,
        right: rside,
    };
    let mut gamma = vec![0u8; candidates.len() * nc];
    gamma
        .par_chunks_mut(nc * 1024)
        .zip(candidates.par_chunks(1024))
        .for_each(|(g, pairs)| {
            for (i, p) in pairs.iter().enumerate() {
                let (a, b) = unpack(*p);
                ctx.levels(&comps, a, b, &mut g[i * nc..(i + 1) * nc]);
            }
        });
    tracing::info!(secs = t0.elapsed().as_secs_f64(), "levels");
    // Deterministic matches.
    let det_feats: Vec<Vec<usize>> = settings
        .deterministic
        .iter()
        .map(|d| {
            d.columns
                .iter()
                .map(|c| prep.feature(c, Transform::Value))
                .collect()
        })
        .collect();
    let is_det = |a: u32, b: u32| -> bool {
        det_feats.iter().any(|fs| {
            fs.iter().all(|f| {
                let x = lside.get(*f, a as usize);
                x != prepare::NULL && x == rside.get(*f, b as usize)
            })
        })
    };

    // Model.
    let sample = model::sample_levels(
        &ctx,
        &comps,
        (&lside.node_of_row, &rside.node_of_row),
        dedupe,
        settings.training.u_sample_pairs,
        seed,
    );
    tracing::info!(secs = t0.elapsed().as_secs_f64(), "u sample");
    let u = model::estimate_u(&comps, &sample);
    // m by EM sessions, one per rule: the pairs a rule blocks on agree on its columns by construction, so
    // comparisons of those columns sit the session out (their m comes from the other sessions).
    let rule_columns: Vec<Vec<String>> = settings
        .deterministic
        .iter()
        .map(|d| d.columns.clone())
        .chain(settings.blocking.iter().map(|r| {
            r.on.iter()
                .chain(r.on_right.iter().flatten())
                .filter_map(|k| parse_key(k).map(|(_, c)| c))
                .collect()
        }))
        .collect();
    let trainable: Vec<bool> = comps
        .iter()
        .map(|c| c.levels.iter().any(|l| l.fixed_m.is_none()))
        .collect();
    let mut m_sum: Vec<Vec<f64>> = comps.iter().map(|c| vec![0.0; c.levels.len()]).collect();
    let mut m_n = vec![0usize; nc];
    let mut em_iterations = 0;
    for (k, rule) in rules.iter().enumerate() {
        let active: Vec<bool> = settings
            .comparisons
            .iter()
            .map(|c| !c.columns.iter().any(|col| rule_columns[k].contains(col)))
            .collect();
        if !active.iter().any(|a| *a) {
            continue;
        }
        let pats = model::patterns(&gamma, nc, |i| {
            let (a, b) = unpack(candidates[i]);
            blocking::produced_by(rule, a, b, dedupe)
        });
        if pats.iter().map(|p| p.1).sum::<u64>() < 10 {
            continue;
        }
        let mut m = model::initial_m(&comps);
        let (lambda, it) = model::em(
            &comps,
            &u,
            &mut m,
            &pats,
            &active,
            &trainable,
            None,
            0.3,
            settings.training.em_max_iterations,
            settings.training.em_tolerance,
        );
        em_iterations += it;
        tracing::info!(rule = %rule.name, lambda, it, "EM session");
        for c in 0..nc {
            if active[c] {
                for (s, v) in m_sum[c].iter_mut().zip(&m[c]) {
                    *s += v;
                }
                m_n[c] += 1;
            }
        }
    }
    let pats = model::patterns(&gamma, nc, |_| true);
    let mut m = model::initial_m(&comps);
    let untrained: Vec<bool> = (0..nc).map(|c| m_n[c] == 0 && trainable[c]).collect();
    for c in 0..nc {
        if m_n[c] > 0 {
            m[c] = m_sum[c].iter().map(|v| v / m_n[c] as f64).collect();
        }
    }
    if untrained.iter().any(|t| *t) {
        // Comparisons blocked in every session: estimated over all candidates, the others held.
        let all = vec![true; nc];
        let (_, it) = model::em(
            &comps,
            &u,
            &mut m,
            &pats,
            &all,
            &untrained,
            None,
            0.3,
            settings.training.em_max_iterations,
            settings.training.em_tolerance,
        );
        em_iterations += it;
    }
    // The prior of a candidate pair, m and u held.
    let all = vec![true; nc];
    let none = vec![false; nc];
    let (candidate_prior, it) = model::em(
        &comps,
        &u,
        &mut m,
        &pats,
        &all,
        &none,
        None,
        0.3,
        settings.training.em_max_iterations,
        settings.training.em_tolerance,
    );
    em_iterations += it;
    let rows_left = lside.node_of_row.len() as f64;
    let all_pairs = if dedupe {
        rows_left * (rows_left - 1.0) / 2.0
    } else {
        rows_left * rside.node_of_row.len() as f64
    };
    let prior = match (settings.training.prior, settings.training.prior_scope) {
        (Some(p), _) => p,
        (None, settings::PriorScope::Candidates) => candidate_prior,
        (None, settings::PriorScope::AllPairs) => {
            (candidate_prior * candidates.len() as f64 / all_pairs.max(1.0)).clamp(1e-15, 0.5)
        }
    };
    let fitted = model::assemble(
        &comps,
        &m,
        &u,
        &sample,
        &pats,
        prior,
        candidate_prior,
        em_iterations,
        settings.training.u_sample_pairs,
    );
    let weights: Vec<f64> = candidates
        .par_iter()
        .enumerate()
        .with_min_len(4096)
        .map(|(i, p)| {
            let (a, b) = unpack(*p);
            if is_det(a, b) {
                f64::INFINITY
            } else {
                model::weight(&fitted, &comps, &ctx, a, &gamma[i * nc..(i + 1) * nc])
            }
        })
        .collect();
    tracing::info!(
        secs = t0.elapsed().as_secs_f64(),
        prior = fitted.prior,
        iterations = fitted.em_iterations,
        "model"
    );
    // Histogram of weights.
    let mut histogram = Histogram {
        start: -30.0,
        width: 1.0,
        counts: vec![0; 80],
    };
    for w in &weights {
        let bin = ((w - histogram.start) / histogram.width).floor();
        let bin = if bin.is_nan() {
            0.0
        } else {
            bin.clamp(0.0, 79.0)
        };
        histogram.counts[bin as usize] += 1;
    }

    // Clustering over graph nodes.
    let t = &settings.thresholds;
    let cl = &settings.clustering;
    let link_threshold = cl.threshold.unwrap_or(t.match_probability);
    let cannot = cl.cannot_link_below.unwrap_or(t.review_lower);
    let n_left = lside.len();
    let graph = |a: u32, b: u32| -> (u32, u32) {
        if dedupe {
            (a, b)
        } else {
            (a, b + n_left as u32)
        }
    };
    let mut edges = Vec::new();
    let mut negative = Vec::new();
    for (p, w) in candidates.iter().zip(&weights) {
        let (a, b) = unpack(*p);
        let (x, y) = graph(a, b);
        let prob = probability(*w);
        if prob >= link_threshold {
            edges.push((pack(x, y), *w));
        } else if prob < cannot {
            negative.push(pack(x.min(y), x.max(y)));
        }
    }
    // Rows to graph nodes (identical records share a node and cannot be kept apart).
    let right_nodes = if dedupe { &lside } else { &rside };
    for &(a, b) in cannot_link {
        let (Some(&na), Some(&nb)) = (
            lside.node_of_row.get(a as usize),
            right_nodes.node_of_row.get(b as usize),
        ) else {
            continue;
        };
        let (x, y) = graph(na, nb);
        if x != y {
            negative.push(pack(x.min(y), x.max(y)));
        }
    }
    negative.par_sort_unstable();
    negative.dedup();
    let feat = |c: &String| prep.feature(c, Transform::Value);
    let conflicts = cluster::Conflicts {
        all_differ: cl.conflict_if_all_differ.iter().map(feat).collect(),
        same_source: cl.same_source.as_ref().map(|[s, l]| (feat(s), feat(l))),
        one_to_one: cl.one_to_one,
        sides: (lside, rside),
        n_left,
        dedupe,
    };
    let n_graph = if dedupe { n_left } else { n_left + rside.len() };
    let (roots, cluster_stats) = cluster::cluster(n_graph, edges, &negative, &conflicts);
    drop(negative);
    // Number clusters in order of first appearance over left rows then right rows.
    let mut number = vec![0u32; n_graph];
    let mut next = 0u32;
    let mut assign = |node: usize| -> u32 {
        let r = roots[node] as usize;
        if number[r] == 0 {
            next += 1;
            number[r] = next;
        }
        number[r]
    };
    let left_clusters: Vec<u32> = lside
        .node_of_row
        .iter()
        .map(|n| assign(*n as usize))
        .collect();
    let right_clusters: Vec<u32> = if dedupe {
        Vec::new()
    } else {
        rside
            .node_of_row
            .iter()
            .map(|n| assign(n_left + *n as usize))
            .collect()
    };
    let cluster_count = next as usize;
    tracing::info!(secs = t0.elapsed().as_secs_f64(), "clusters");

    // Output pairs (rows), lower review threshold and up.
    let mut pairs: Vec<Pair> = Vec::new();
    let (mut matches, mut review) = (0u64, 0u64);
    for (i, (p, w)) in candidates.iter().zip(&weights).enumerate() {
        let prob = probability(*w);
        if prob < t.review_lower {
            continue;
        }
        if prob >= t.match_probability {
            matches += 1;
        }
        if prob >= t.review_lower && prob < t.review_upper {
            review += 1;
        }
        let (a, b) = unpack(*p);
        let (ra, rb) = (lside.rep_row[a as usize], rside.rep_row[b as usize]);
        pairs.push(Pair {
            left_row: ra.min(if dedupe { rb } else { ra }),
            right_row: if dedupe { ra.max(rb) } else { rb },
            weight: *w,
            probability: prob,
            deterministic: w.is_infinite(),
            levels: gamma[i * nc..(i + 1) * nc].to_vec(),
        });
    }
    // Dedupe: identical records merged into one node are certain pairs.
    if collapse && cl.write_duplicate_pairs {
        let mut by_node: Vec<Vec<u32>> = vec![Vec::new(); lside.len()];
        for (row, node) in lside.node_of_row.iter().enumerate() {
            by_node[*node as usize].push(row as u32);
        }
        let mut g = vec![0u8; nc];
        for (node, rows) in by_node.iter().enumerate() {
            if rows.len() < 2 {
                continue;
            }
            ctx.levels(&comps, node as u32, node as u32, &mut g);
            for x in 0..rows.len() {
                for y in x + 1..rows.len() {
                    pairs.push(Pair {
                        left_row: rows[x],
                        right_row: rows[y],
                        weight: f64::INFINITY,
                        probability: 1.0,
                        deterministic: true,
                        levels: g.clone(),
                    });
                    matches += 1;
                }
            }
        }
    }
    if dedupe {
        pairs.sort_by_key(|p| (p.left_row, p.right_row));
    }
    Ok(LinkOutput {
        link_type: settings.link_type,
        left_ids: ids.remove(0),
        right_ids: ids.pop().filter(|_| !dedupe).unwrap_or_default(),
        pairs,
        left_clusters,
        right_clusters,
        cluster_count,
        comparison_names: comps.iter().map(|c| c.name.clone()).collect(),
        model: fitted,
        blocking: rule_stats,
        candidates: candidates.len() as u64,
        nodes: prep.sides.iter().map(|s| s.len()).collect(),
        histogram,
        cluster_stats,
        matches,
        review,
        thresholds: settings.thresholds.clone(),
    })
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
