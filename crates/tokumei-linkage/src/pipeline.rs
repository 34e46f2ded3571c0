//! The steps of [`crate::link_constrained`], in order: check the tables, read the record ids, choose
//! the features, build the blocking keys and the candidate pairs, compute the comparison levels, fit
//! the model, score the candidates, cluster the graph nodes and list the pairs written.

use std::time::Instant;

use rayon::prelude::*;

use crate::blocking::{self, pack, unpack, RuleKeys, RuleStats};
use crate::cluster::{self, ClusterStats};
use crate::compare::{self, Comparison, PairCtx};
use crate::model::{self, probability, Model};
use crate::prepare::{self, FeatureKey, Prepared, Side};
use crate::score::{PairClass, Scoring, ScoringJob};
use crate::settings::{self, parse_key, LinkType, Settings, Transform};
use crate::{Dataset, Histogram, LinkageError, Pair};

/// The right table as the settings' link type wants it: none for dedupe, one for link.
pub(crate) fn right_table<'a>(
    settings: &Settings,
    left: &Dataset,
    right: Option<&'a Dataset>,
) -> Result<Option<&'a Dataset>, LinkageError> {
    match (settings.link_type == LinkType::Dedupe, right) {
        (true, Some(r)) => Err(LinkageError::Input {
            file: r.name.clone(),
            message:
                "dedupe settings take one table; drop the right table or use link_type = \"link\""
                    .into(),
        }),
        (false, None) => Err(LinkageError::Input {
            file: left.name.clone(),
            message: "link settings need a right table".into(),
        }),
        (_, r) => Ok(r),
    }
}

/// The record ids of every table, row by row.
pub(crate) fn record_ids(
    settings: &Settings,
    datasets: &[&Dataset],
) -> Result<Vec<Vec<String>>, LinkageError> {
    let mut ids: Vec<Vec<String>> = Vec::new();
    for ds in datasets {
        let col = ds.require(&settings.id_column)?;
        ids.push(
            (0..ds.len())
                .map(|r| col.get(r).unwrap_or("").to_string())
                .collect(),
        );
    }
    Ok(ids)
}

/// Features: every declared column as its value, plus the transforms the blocking rules key on.
pub(crate) fn feature_keys(settings: &Settings) -> Vec<FeatureKey> {
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
    features
}

fn rule_parts(keys: &[String], prep: &Prepared) -> Vec<usize> {
    keys.iter()
        .filter_map(|k| parse_key(k))
        .map(|(t, c)| prep.feature(&c, t))
        .collect()
}

/// The keys of every blocking rule on both sides, deterministic rules first.
pub(crate) fn rule_keys(settings: &Settings, prep: &Prepared) -> Vec<RuleKeys> {
    let (lside, rside) = prep.pair_sides();
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
        let lp = rule_parts(&r.on, prep);
        let rp = rule_parts(r.on_right.as_ref().unwrap_or(&r.on), prep);
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
    rules
}

/// The candidate pairs (sorted) as the union of the rules, with each rule's statistics; an error once
/// they pass the limit.
pub(crate) fn candidate_pairs(
    settings: &Settings,
    rules: &mut [RuleKeys],
    dedupe: bool,
) -> Result<(Vec<u64>, Vec<RuleStats>), LinkageError> {
    let mut candidates: Vec<u64> = Vec::new();
    let mut rule_stats = Vec::new();
    for k in 0..rules.len() {
        let (pairs, stats) = blocking::generate(rules, k, dedupe, settings.limits.max_block_pairs);
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
    Ok((candidates, rule_stats))
}

/// The features of each deterministic rule: a pair agreeing on all of one rule's (none missing)
/// is a certain match.
pub(crate) struct Deterministic {
    feats: Vec<Vec<usize>>,
}

impl Deterministic {
    pub(crate) fn new(settings: &Settings, prep: &Prepared) -> Self {
        let feats = settings
            .deterministic
            .iter()
            .map(|d| {
                d.columns
                    .iter()
                    .map(|c| prep.feature(c, Transform::Value))
                    .collect()
            })
            .collect();
        Deterministic { feats }
    }

    /// Whether left node `a` and right node `b` match under a deterministic rule.
    #[inline]
    fn matches(&self, lside: &Side, rside: &Side, a: u32, b: u32) -> bool {
        self.feats.iter().any(|fs| {
            fs.iter().all(|f| {
                let x = lside.get(*f, a as usize);
                x != prepare::NULL && x == rside.get(*f, b as usize)
            })
        })
    }
}

/// Histogram of the match weights (each with its number of pairs): 80 bins of width 1 from -30, the
/// outer bins holding everything beyond them.
pub(crate) fn histogram(weights: impl Iterator<Item = (f64, u64)>) -> Histogram {
    let mut histogram = Histogram {
        start: -30.0,
        width: 1.0,
        counts: vec![0; 80],
    };
    for (w, n) in weights {
        let bin = ((w - histogram.start) / histogram.width).floor();
        let bin = if bin.is_nan() {
            0.0
        } else {
            bin.clamp(0.0, 79.0)
        };
        histogram.counts[bin as usize] += n;
    }
    histogram
}

/// The entities found: cluster numbers (from 1) of every left and right row.
pub(crate) struct Clusters {
    pub left: Vec<u32>,
    pub right: Vec<u32>,
    pub count: usize,
    pub stats: ClusterStats,
}

/// Graph nodes: left nodes, then (link mode) right nodes offset by the left count.
#[derive(Clone, Copy)]
struct Graph {
    dedupe: bool,
    n_left: usize,
}

impl Graph {
    #[inline]
    fn nodes(self, a: u32, b: u32) -> (u32, u32) {
        if self.dedupe {
            (a, b)
        } else {
            (a, b + self.n_left as u32)
        }
    }
}

/// The candidate pairs with their comparison levels (`gamma`: the levels of pair `i` at
/// `i * nc..(i + 1) * nc`), carried through training, scoring, clustering and output.
pub(crate) struct Candidates<'a> {
    settings: &'a Settings,
    dedupe: bool,
    comps: Vec<Comparison>,
    ctx: PairCtx<'a>,
    pairs: Vec<u64>,
    gamma: Vec<u8>,
    /// Number of candidate pairs (`pairs` holds them all, or only those kept when `classes` is set).
    total: u64,
    /// The classes of the candidate pairs, when an engine scores them where they are.
    classes: Option<Vec<PairClass>>,
}

impl<'a> Candidates<'a> {
    /// Candidates whose levels an engine computed.
    pub(crate) fn from_levels(
        settings: &'a Settings,
        dedupe: bool,
        prep: &'a Prepared,
        pairs: Vec<u64>,
        gamma: Vec<u8>,
    ) -> Self {
        let comps = compare::compile(&settings.comparisons, prep);
        let (lside, rside) = prep.pair_sides();
        let ctx = PairCtx {
            prep,
            left: lside,
            right: rside,
        };
        Candidates {
            settings,
            dedupe,
            comps,
            ctx,
            total: pairs.len() as u64,
            pairs,
            gamma,
            classes: None,
        }
    }

    /// Candidates an engine counted by class (it keeps the pairs until [`Candidates::keep_scored`]).
    pub(crate) fn from_classes(
        settings: &'a Settings,
        dedupe: bool,
        prep: &'a Prepared,
        classes: Vec<PairClass>,
    ) -> Self {
        let mut c = Candidates::from_levels(settings, dedupe, prep, Vec::new(), Vec::new());
        c.total = classes.iter().map(|k| k.pairs).sum();
        c.classes = Some(classes);
        c
    }

    /// Compiles the comparisons and computes the levels of every candidate pair (in parallel).
    pub(crate) fn new(
        settings: &'a Settings,
        dedupe: bool,
        prep: &'a Prepared,
        pairs: Vec<u64>,
    ) -> Self {
        let mut c = Candidates::from_levels(settings, dedupe, prep, pairs, Vec::new());
        let nc = c.comps.len();
        let mut gamma = vec![0u8; c.pairs.len() * nc];
        let (ctx, comps) = (&c.ctx, &c.comps);
        gamma
            .par_chunks_mut(nc * 1024)
            .zip(c.pairs.par_chunks(1024))
            .for_each(|(g, chunk)| {
                for (i, p) in chunk.iter().enumerate() {
                    let (a, b) = unpack(*p);
                    ctx.levels(comps, a, b, &mut g[i * nc..(i + 1) * nc]);
                }
            });
        c.gamma = gamma;
        c
    }

    /// Number of candidate pairs.
    pub(crate) fn len(&self) -> u64 {
        self.total
    }

    /// The level patterns of the candidate pairs rule `rule` produces (all of them when none), with
    /// their counts, sorted.
    fn patterns(&self, rule: Option<(usize, &RuleKeys)>) -> Vec<(Vec<u8>, u64)> {
        let nc = self.nc();
        match (&self.classes, rule) {
            (Some(classes), _) => model::class_patterns(
                classes
                    .iter()
                    .filter(|c| rule.is_none_or(|(k, _)| c.produced >> k & 1 == 1))
                    .map(|c| (c.levels, c.pairs)),
                nc,
            ),
            (None, None) => model::patterns(&self.gamma, nc, |_| true),
            (None, Some((_, rule))) => model::patterns(&self.gamma, nc, |i| {
                let (a, b) = unpack(self.pairs[i]);
                blocking::produced_by(rule, a, b, self.dedupe)
            }),
        }
    }

    /// Comparison names.
    pub(crate) fn comparison_names(&self) -> Vec<String> {
        self.comps.iter().map(|c| c.name.clone()).collect()
    }

    fn nc(&self) -> usize {
        self.comps.len()
    }

    /// The levels of candidate pair `i`.
    #[inline]
    fn levels(&self, i: usize) -> &[u8] {
        let nc = self.comps.len();
        &self.gamma[i * nc..(i + 1) * nc]
    }

    /// One EM run with the settings' iteration limit and tolerance, from a prior of 0.3.
    fn em(
        &self,
        u: &[Vec<f64>],
        m: &mut [Vec<f64>],
        pats: &[(Vec<u8>, u64)],
        active: &[bool],
        train: &[bool],
    ) -> (f64, usize) {
        model::em(
            &self.comps,
            u,
            m,
            pats,
            active,
            train,
            None,
            0.3,
            self.settings.training.em_max_iterations,
            self.settings.training.em_tolerance,
        )
    }

    /// Fits the model: u from random pairs, m by EM sessions per rule, the prior over the candidates.
    pub(crate) fn fit(&self, rules: &[RuleKeys], seed: u64, t0: Instant) -> Model {
        let training = &self.settings.training;
        let sample = model::sample_levels(
            &self.ctx,
            &self.comps,
            (&self.ctx.left.node_of_row, &self.ctx.right.node_of_row),
            self.dedupe,
            training.u_sample_pairs,
            seed,
        );
        tracing::info!(secs = t0.elapsed().as_secs_f64(), "u sample");
        let u = model::estimate_u(&self.comps, &sample);
        let (mut m, m_n, mut em_iterations) = self.trained_m(rules, &u);
        let pats = self.patterns(None);
        em_iterations += self.train_untrained(&u, &mut m, &m_n, &pats);
        // The prior of a candidate pair, m and u held.
        let all = vec![true; self.nc()];
        let none = vec![false; self.nc()];
        let (candidate_prior, it) = self.em(&u, &mut m, &pats, &all, &none);
        em_iterations += it;
        model::assemble(
            &self.comps,
            &m,
            &u,
            &sample,
            &pats,
            self.prior(candidate_prior),
            candidate_prior,
            em_iterations,
            training.u_sample_pairs,
        )
    }

    /// Whether each comparison has a level whose m is estimated (not fixed by the settings).
    fn trainable(&self) -> Vec<bool> {
        self.comps
            .iter()
            .map(|c| c.levels.iter().any(|l| l.fixed_m.is_none()))
            .collect()
    }

    /// The columns each rule blocks on (deterministic rules first, as in the rule list).
    fn rule_columns(&self) -> Vec<Vec<String>> {
        let settings = self.settings;
        settings
            .deterministic
            .iter()
            .map(|d| d.columns.clone())
            .chain(settings.blocking.iter().map(|r| {
                r.on.iter()
                    .chain(r.on_right.iter().flatten())
                    .filter_map(|k| parse_key(k).map(|(_, c)| c))
                    .collect()
            }))
            .collect()
    }

    /// m by EM sessions, one per rule: the pairs a rule blocks on agree on its columns by
    /// construction, so comparisons of those columns sit the session out (their m comes from the
    /// other sessions). Returns m averaged over the sessions each comparison took part in (the
    /// initial m where it took part in none), the number of sessions per comparison and the
    /// iterations run.
    fn trained_m(&self, rules: &[RuleKeys], u: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<usize>, usize) {
        let nc = self.nc();
        let rule_columns = self.rule_columns();
        let trainable = self.trainable();
        let mut m_sum: Vec<Vec<f64>> = self
            .comps
            .iter()
            .map(|c| vec![0.0; c.levels.len()])
            .collect();
        let mut m_n = vec![0usize; nc];
        let mut em_iterations = 0;
        for (k, rule) in rules.iter().enumerate() {
            let active: Vec<bool> = self
                .settings
                .comparisons
                .iter()
                .map(|c| !c.columns.iter().any(|col| rule_columns[k].contains(col)))
                .collect();
            if !active.iter().any(|a| *a) {
                continue;
            }
            let pats = self.patterns(Some((k, rule)));
            if pats.iter().map(|p| p.1).sum::<u64>() < 10 {
                continue;
            }
            let mut m = model::initial_m(&self.comps);
            let (lambda, it) = self.em(u, &mut m, &pats, &active, &trainable);
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
        let mut m = model::initial_m(&self.comps);
        for c in 0..nc {
            if m_n[c] > 0 {
                m[c] = m_sum[c].iter().map(|v| v / m_n[c] as f64).collect();
            }
        }
        (m, m_n, em_iterations)
    }

    /// Comparisons blocked in every session: estimated over all candidates, the others held. Returns
    /// the iterations run.
    fn train_untrained(
        &self,
        u: &[Vec<f64>],
        m: &mut [Vec<f64>],
        m_n: &[usize],
        pats: &[(Vec<u8>, u64)],
    ) -> usize {
        let trainable = self.trainable();
        let untrained: Vec<bool> = (0..self.nc())
            .map(|c| m_n[c] == 0 && trainable[c])
            .collect();
        if !untrained.iter().any(|t| *t) {
            return 0;
        }
        let all = vec![true; self.nc()];
        self.em(u, m, pats, &all, &untrained).1
    }

    /// The prior of the model: the settings' own, else the candidates' prior, scaled to all pairs
    /// when the settings say so.
    fn prior(&self, candidate_prior: f64) -> f64 {
        let (lside, rside) = (self.ctx.left, self.ctx.right);
        let rows_left = lside.node_of_row.len() as f64;
        let all_pairs = if self.dedupe {
            rows_left * (rows_left - 1.0) / 2.0
        } else {
            rows_left * rside.node_of_row.len() as f64
        };
        match (
            self.settings.training.prior,
            self.settings.training.prior_scope,
        ) {
            (Some(p), _) => p,
            (None, settings::PriorScope::Candidates) => candidate_prior,
            (None, settings::PriorScope::AllPairs) => {
                (candidate_prior * self.total as f64 / all_pairs.max(1.0)).clamp(1e-15, 0.5)
            }
        }
    }

    /// The fitted model's weight; an engine that scores keeps the pairs written or linked.
    pub(crate) fn scoring(&self, fitted: &Model) -> Scoring {
        let (link, _) = self.link_thresholds();
        Scoring::new(
            fitted,
            &self.comps,
            link.min(self.settings.thresholds.review_lower),
        )
    }

    /// The weight of the pair of left node `a` and right node `b` at `levels`.
    fn weight(&self, scoring: &Scoring, det: &Deterministic, a: u32, b: u32, g: &[u8]) -> f64 {
        let (lside, rside) = (self.ctx.left, self.ctx.right);
        let deterministic = det.matches(lside, rside, a, b);
        scoring.weight(g, deterministic, |c| {
            self.comps[c].tf.as_ref().and_then(|tf| self.ctx.tf(tf, a))
        })
    }

    /// The match weight of every candidate pair held (infinite for deterministic matches), in
    /// parallel.
    pub(crate) fn weights(&self, scoring: &Scoring, det: &Deterministic) -> Vec<f64> {
        self.pairs
            .par_iter()
            .enumerate()
            .with_min_len(4096)
            .map(|(i, p)| {
                let (a, b) = unpack(*p);
                self.weight(scoring, det, a, b, self.levels(i))
            })
            .collect()
    }

    /// The histogram of the weights of every candidate pair, from the classes.
    pub(crate) fn class_histogram(&self, scoring: &Scoring) -> Histogram {
        let classes = self.classes.as_deref().unwrap_or_default();
        histogram(classes.iter().map(|c| (scoring.class_weight(c), c.pairs)))
    }

    /// Takes from the engine the pairs `scoring` keeps, checked against the classes: as many as the
    /// classes count, each kept by the driver's own weight.
    pub(crate) fn keep_scored(
        &mut self,
        job: &mut dyn ScoringJob,
        scoring: &Scoring,
        det: &Deterministic,
    ) -> Result<Vec<f64>, LinkageError> {
        let classes = self.classes.as_deref().unwrap_or_default();
        let expected = classes
            .iter()
            .filter(|c| scoring.keeps(scoring.class_weight(c)))
            .map(|c| c.pairs)
            .sum::<u64>();
        let set = job.kept(scoring, expected)?;
        if set.len() as u64 != expected || set.levels.len() != set.len() * self.nc() {
            return Err(crate::engine_error(format!(
                "the engine kept {} pairs where its classes hold {expected}",
                set.len()
            )));
        }
        self.pairs = set.pairs;
        self.gamma = set.levels;
        let weights = self.weights(scoring, det);
        if weights.iter().any(|w| !scoring.keeps(*w)) {
            return Err(crate::engine_error(
                "the engine kept a pair the model does not keep",
            ));
        }
        Ok(weights)
    }

    /// Clusters the graph nodes: links at or above the clustering threshold, refused between nodes
    /// scored below the cannot-link threshold, given as `cannot_link` rows, or in conflict. With
    /// `scored` (the pairs held are only those an engine kept), whether two nodes form a candidate
    /// pair scored below the threshold is decided when the clustering asks, from the rules and the
    /// model, as the embedded run's list of such pairs would answer.
    pub(crate) fn clusters(
        &self,
        weights: &[f64],
        cannot_link: &[(u32, u32)],
        scored: Option<(&[RuleKeys], &Scoring, &Deterministic)>,
    ) -> Clusters {
        let cl = &self.settings.clustering;
        let (lside, rside) = (self.ctx.left, self.ctx.right);
        let n_left = lside.len();
        let graph = Graph {
            dedupe: self.dedupe,
            n_left,
        };
        let (edges, negative) = self.graph_edges(graph, weights, cannot_link);
        let prep = self.ctx.prep;
        let feat = |c: &String| prep.feature(c, Transform::Value);
        let conflicts = cluster::Conflicts {
            all_differ: cl.conflict_if_all_differ.iter().map(feat).collect(),
            same_source: cl.same_source.as_ref().map(|[s, l]| (feat(s), feat(l))),
            one_to_one: cl.one_to_one,
            sides: (lside, rside),
            n_left,
            dedupe: self.dedupe,
        };
        let n_graph = if self.dedupe {
            n_left
        } else {
            n_left + rside.len()
        };
        let listed = |x: u32, y: u32| negative.binary_search(&pack(x.min(y), x.max(y))).is_ok();
        let (roots, stats) = match scored {
            None => cluster::cluster(n_graph, edges, listed, &conflicts),
            Some((rules, scoring, det)) => {
                let below = |x, y| self.scored_below(graph, rules, scoring, det, x, y);
                cluster::cluster(
                    n_graph,
                    edges,
                    |x, y| listed(x, y) || below(x, y),
                    &conflicts,
                )
            }
        };
        drop(negative);
        self.number_clusters(&roots, n_graph, stats)
    }

    /// Whether graph nodes `x` and `y` form a candidate pair (some rule produces it) scored below
    /// the cannot-link threshold.
    fn scored_below(
        &self,
        graph: Graph,
        rules: &[RuleKeys],
        scoring: &Scoring,
        det: &Deterministic,
        x: u32,
        y: u32,
    ) -> bool {
        let n_left = graph.n_left as u32;
        let (a, b) = if self.dedupe {
            (x.min(y), x.max(y))
        } else if (x < n_left) != (y < n_left) {
            (x.min(y), x.max(y) - n_left)
        } else {
            return false;
        };
        if a == b && self.dedupe
            || !rules
                .iter()
                .any(|r| blocking::produced_by(r, a, b, self.dedupe))
        {
            return false;
        }
        let mut g = vec![0u8; self.nc()];
        self.ctx.levels(&self.comps, a, b, &mut g);
        let p = probability(self.weight(scoring, det, a, b, &g));
        let (link, cannot) = self.link_thresholds();
        p < link && p < cannot
    }

    /// Pairs at or above the first probability are linked; pairs below the second (and not linked)
    /// are never joined.
    fn link_thresholds(&self) -> (f64, f64) {
        let (t, cl) = (&self.settings.thresholds, &self.settings.clustering);
        (
            cl.threshold.unwrap_or(t.match_probability),
            cl.cannot_link_below.unwrap_or(t.review_lower),
        )
    }

    /// The links (packed graph pair, weight) and the sorted packed pairs that must not be joined.
    fn graph_edges(
        &self,
        graph: Graph,
        weights: &[f64],
        cannot_link: &[(u32, u32)],
    ) -> (Vec<(u64, f64)>, Vec<u64>) {
        let (link_threshold, cannot) = self.link_thresholds();
        let mut edges = Vec::new();
        let mut negative = Vec::new();
        for (p, w) in self.pairs.iter().zip(weights) {
            let (a, b) = unpack(*p);
            let (x, y) = graph.nodes(a, b);
            let prob = probability(*w);
            if prob >= link_threshold {
                edges.push((pack(x, y), *w));
            } else if prob < cannot {
                negative.push(pack(x.min(y), x.max(y)));
            }
        }
        // Rows to graph nodes (identical records share a node and cannot be kept apart).
        let lside = self.ctx.left;
        let right_nodes = if self.dedupe { lside } else { self.ctx.right };
        for &(a, b) in cannot_link {
            let (Some(&na), Some(&nb)) = (
                lside.node_of_row.get(a as usize),
                right_nodes.node_of_row.get(b as usize),
            ) else {
                continue;
            };
            let (x, y) = graph.nodes(na, nb);
            if x != y {
                negative.push(pack(x.min(y), x.max(y)));
            }
        }
        negative.par_sort_unstable();
        negative.dedup();
        (edges, negative)
    }

    /// Numbers the clusters in order of first appearance over left rows then right rows.
    fn number_clusters(&self, roots: &[u32], n_graph: usize, stats: ClusterStats) -> Clusters {
        let (lside, rside) = (self.ctx.left, self.ctx.right);
        let n_left = lside.len();
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
        let left: Vec<u32> = lside
            .node_of_row
            .iter()
            .map(|n| assign(*n as usize))
            .collect();
        let right: Vec<u32> = if self.dedupe {
            Vec::new()
        } else {
            rside
                .node_of_row
                .iter()
                .map(|n| assign(n_left + *n as usize))
                .collect()
        };
        Clusters {
            left,
            right,
            count: next as usize,
            stats,
        }
    }

    /// The pairs written (rows, lower review threshold and up; in dedupe with `collapse`, also the
    /// pairs of identical records when the settings ask for them), with the counts of matches and
    /// of pairs in the review band.
    pub(crate) fn output_pairs(&self, weights: &[f64], collapse: bool) -> (Vec<Pair>, u64, u64) {
        let t = &self.settings.thresholds;
        let (lside, rside) = (self.ctx.left, self.ctx.right);
        let dedupe = self.dedupe;
        let mut pairs: Vec<Pair> = Vec::new();
        let (mut matches, mut review) = (0u64, 0u64);
        for (i, (p, w)) in self.pairs.iter().zip(weights).enumerate() {
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
                levels: self.levels(i).to_vec(),
            });
        }
        if collapse && self.settings.clustering.write_duplicate_pairs {
            matches += self.duplicate_pairs(&mut pairs);
        }
        if dedupe {
            pairs.sort_by_key(|p| (p.left_row, p.right_row));
        }
        (pairs, matches, review)
    }

    /// Dedupe: identical records merged into one node are certain pairs. Appends them and returns
    /// how many there are.
    fn duplicate_pairs(&self, pairs: &mut Vec<Pair>) -> u64 {
        let lside = self.ctx.left;
        let mut by_node: Vec<Vec<u32>> = vec![Vec::new(); lside.len()];
        for (row, node) in lside.node_of_row.iter().enumerate() {
            by_node[*node as usize].push(row as u32);
        }
        let mut matches = 0;
        let mut g = vec![0u8; self.nc()];
        for (node, rows) in by_node.iter().enumerate() {
            if rows.len() < 2 {
                continue;
            }
            self.ctx
                .levels(&self.comps, node as u32, node as u32, &mut g);
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
        matches
    }
}
