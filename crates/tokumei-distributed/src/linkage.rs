//! Candidate pairs and their comparison levels as DataFusion plans, in this process or on a Ballista
//! cluster ([`DistributedPairs`], a [`PairEngine`] of the linkage).
//!
//! The job's nodes are written as Parquet with their values sealed (`tables`, `seal`), then one query
//! runs:
//! 1. for every blocking rule, an equi-join of the left nodes' keys with the right nodes' keys (skipped
//!    blocks left out, dedupe pairs in one orientation as the embedded run keeps them); the blocks the
//!    linkage marked large are joined on (key, salt) instead, the left node salted by its number and
//!    the right node repeated once per salt, so one large block is spread over as many tasks as there
//!    are salts;
//! 2. each pair joined with both nodes' keys and values, kept only for the first rule that produces it
//!    (so every pair appears once, under the rule the embedded run counts it for), and its levels
//!    computed by `tk_levels`.
//!
//! By default the linkage is trained and scored on the engine (`scored`): each query counts its pairs
//! by class, and once the driver has fitted the model on the counts, returns only the pairs the model
//! keeps. With [`DistributedPairs::pairs_only`], every pair comes back to the driver, which sorts
//! them; the linkage then trains, scores and clusters them.

use std::fmt::Write as _;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Int64Type, UInt32Type, UInt64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use tokumei_linkage::{
    engine_error, LinkageError, PairEngine, PairJob, PairSet, Scoring, ScoringJob,
};

use crate::job::{df_error, path_text, JobDir, Target};
use crate::tables::{self, Layout};
use crate::{cluster, DistributedError};

mod scored;

/// A [`PairEngine`] on DataFusion or Ballista.
pub struct DistributedPairs {
    target: Target,
    salts: u32,
    scores: bool,
}

impl DistributedPairs {
    /// Pairs found on `target`'s engine, the job's tables written under its work folder (a folder
    /// every executor reads at the same path: a local folder for one machine, a shared mount for a
    /// cluster) in its partitions' number of files per side; large blocks spread over as many salts.
    pub fn new(target: Target) -> Self {
        let salts = target.partitions as u32;
        DistributedPairs {
            target,
            salts,
            scores: true,
        }
    }

    /// Every candidate pair comes back to the driver with its levels, which trains, scores and
    /// clusters them (instead of the engine counting the pairs by class and returning only those
    /// the model keeps).
    pub fn pairs_only(mut self) -> Self {
        self.scores = false;
        self
    }

    async fn run(&self, job: &PairJob<'_>) -> Result<PairSet, DistributedError> {
        // Connect first: no job file is written for a cluster that cannot be reached.
        let ctx = self.target.context().await?;
        let dir = JobDir::create(&self.target.work)?;
        let key = cluster::random_key()?;
        let layout = tables::write(job, &dir.dir, self.target.partitions, self.salts, &key)?;
        register(&ctx, &layout).await?;
        let mut rows = Vec::new();
        for k in 0..job.rules() {
            for large in [false, true] {
                let sql = query(job, &layout, k, large, self.salts, &key);
                // A query's pairs are each other's strangers by construction (one rule, one kind
                // of block), so a pair twice is a broken answer; the job resumes at the query
                // that failed, with the pairs of the queries before it kept.
                // A rule whose count the plan does not know must give the same pairs twice (in
                // order, to be compared).
                let checked = job.counted_exactly(k);
                let read = |b: &[RecordBatch]| {
                    let mut rows = pair_rows(b)?;
                    each_pair_once(&rows)?;
                    if !checked {
                        rows.sort_unstable();
                    }
                    Ok(rows)
                };
                rows.append(&mut self.target.settled(&ctx, &sql, checked, read).await?);
            }
        }
        PairSet::from_rows(rows, job.rules(), job.level_fn().comparisons())
            .map_err(|e| DistributedError::Engine(e.to_string()))
    }
}

/// The pairs of one query's answer.
pub(crate) fn pair_rows(
    batches: &[RecordBatch],
) -> Result<Vec<(u32, u32, u32, u64)>, DistributedError> {
    let mut rows = Vec::new();
    for b in batches {
        let a = b.column(0).as_primitive::<UInt32Type>();
        let bb = b.column(1).as_primitive::<UInt32Type>();
        let rule = b.column(2).as_primitive::<Int64Type>();
        let g = b.column(3).as_primitive::<UInt64Type>();
        if a.null_count() + bb.null_count() + rule.null_count() + g.null_count() > 0 {
            return Err(DistributedError::Engine(
                "a pair came back incomplete".into(),
            ));
        }
        for i in 0..b.num_rows() {
            let r = u32::try_from(rule.value(i))
                .map_err(|_| DistributedError::Engine("a pair names no rule".into()))?;
            rows.push((a.value(i), bb.value(i), r, g.value(i)));
        }
    }
    Ok(rows)
}

impl PairEngine for DistributedPairs {
    fn name(&self) -> String {
        self.target.engine.to_string()
    }

    fn pairs(&self, job: &PairJob<'_>) -> Result<PairSet, LinkageError> {
        self.target
            .block_on(self.run(job))
            .map_err(|e| engine_error(e.to_string()))
    }

    fn scoring<'s>(
        &'s self,
        job: &'s PairJob<'_>,
    ) -> Result<Option<Box<dyn ScoringJob + 's>>, LinkageError> {
        if !self.scores {
            return Ok(None);
        }
        let scoring = scored::DistributedScoring::open(&self.target, self.salts, job)
            .map_err(|e| engine_error(e.to_string()))?;
        Ok(Some(Box::new(scoring)))
    }
}

/// Fails when a pair appears twice in one query's answer.
pub(crate) fn each_pair_once(rows: &[(u32, u32, u32, u64)]) -> Result<(), DistributedError> {
    let mut keys: Vec<u64> = rows
        .iter()
        .map(|r| (u64::from(r.0) << 32) | u64::from(r.1))
        .collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(DistributedError::Engine(
            "a candidate pair came back twice".into(),
        ));
    }
    Ok(())
}

/// Registers the sides and the salts.
pub(crate) async fn register(
    ctx: &SessionContext,
    layout: &Layout,
) -> Result<(), DistributedError> {
    for (s, folder) in layout.sides.iter().enumerate() {
        let options = ParquetReadOptions::default();
        ctx.register_parquet(format!("side{s}"), path_text(folder)?, options)
            .await
            .map_err(df_error)?;
    }
    ctx.register_parquet(
        "salts",
        path_text(&layout.salts)?,
        ParquetReadOptions::default(),
    )
    .await
    .map_err(df_error)?;
    Ok(())
}

/// `a.{ak}` equals `b.{bk}` (both halves).
fn key_eq(a: &str, ak: &str, b: &str, bk: &str) -> String {
    format!("{a}.{ak}h = {b}.{bk}h AND {a}.{ak}l = {b}.{bk}l")
}

/// The right key's column stem and large flag of rule `j`.
fn right_key(layout: &Layout, j: usize) -> (String, String) {
    if layout.right_key[j] {
        (format!("r{j}"), format!("rx{j}"))
    } else {
        (format!("l{j}"), format!("lx{j}"))
    }
}

/// The table of right nodes.
fn right_table(job: &PairJob<'_>) -> String {
    format!("side{}", job.sides() - 1)
}

/// The pairs rule `k` emits from its large blocks (`large`) or its other blocks.
fn emit(job: &PairJob<'_>, layout: &Layout, k: usize, large: bool, salts: u32) -> String {
    let (rk, rx) = right_key(layout, k);
    let r_table = right_table(job);
    let (l_src, r_src, salt) = if large {
        (
            format!("(SELECT *, CAST(node AS BIGINT) % {salts} AS salt FROM side0 WHERE lx{k})"),
            format!("(SELECT t.*, s.salt FROM {r_table} t CROSS JOIN salts s WHERE t.{rx})"),
            " AND l.salt = r.salt",
        )
    } else {
        (
            format!("(SELECT * FROM side0 WHERE NOT lx{k})"),
            format!("(SELECT * FROM {r_table} WHERE NOT {rx})"),
            "",
        )
    };
    let on = key_eq("l", &format!("l{k}"), "r", &rk);
    let (select, cond) = if !job.dedupe() {
        ("l.node AS a, r.node AS b".to_string(), String::new())
    } else if !job.asymmetric(k) {
        (
            "l.node AS a, r.node AS b".to_string(),
            " AND l.node < r.node".to_string(),
        )
    } else {
        (
            "least(l.node, r.node) AS a, greatest(l.node, r.node) AS b".to_string(),
            format!(
                " AND l.node <> r.node AND ((l.node < r.node) OR (r.l{k}h IS DISTINCT FROM l.r{k}h) \
                 OR (r.l{k}l IS DISTINCT FROM l.r{k}l))"
            ),
        )
    };
    format!(
        "SELECT {select}, CAST({k} AS BIGINT) AS rule FROM {l_src} l JOIN {r_src} r ON {on}{salt} \
         WHERE NOT l.ls{k}{cond}"
    )
}

/// Whether rule `j` produces the pair of left node `A` and right node `B` (the embedded
/// `produced_by`).
fn produced(job: &PairJob<'_>, layout: &Layout, j: usize) -> String {
    let (rk, _) = right_key(layout, j);
    let mut s = format!(
        "coalesce({} AND NOT A.ls{j}, false)",
        key_eq("A", &format!("l{j}"), "B", &rk)
    );
    if job.dedupe() && job.asymmetric(j) {
        let _ = write!(
            s,
            " OR coalesce({} AND NOT B.ls{j}, false)",
            key_eq("B", &format!("l{j}"), "A", &format!("r{j}"))
        );
    }
    format!("({s})")
}

/// A SQL text literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The query of rule `k`'s large blocks (`large`) or its other blocks: `a`, `b`, `rule`, `g` (packed
/// levels) of every candidate pair the rule produces first; the values are opened under `key` by
/// `tk_levels`. (One query per rule and kind of block: Ballista 55's scheduler refuses the task
/// metrics of a stage whose tasks ran different branches of a union, and the job then never ends.)
pub(crate) fn query(
    job: &PairJob<'_>,
    layout: &Layout,
    k: usize,
    large: bool,
    salts: u32,
    key: &[u8; 16],
) -> String {
    query_with(job, layout, (k, large, salts), key, "")
}

/// [`query`] with `extra` select expressions over the pair's nodes `A` and `B`.
fn query_with(
    job: &PairJob<'_>,
    layout: &Layout,
    (k, large, salts): (usize, bool, u32),
    key: &[u8; 16],
    extra: &str,
) -> String {
    let pairs = emit(job, layout, k, large, salts);
    let first = (0..job.rules())
        .map(|j| format!("WHEN {} THEN {j}", produced(job, layout, j)))
        .collect::<Vec<_>>()
        .join(" ");
    let values: Vec<String> = ["A", "B"]
        .iter()
        .flat_map(|t| (0..layout.values).map(move |c| format!("{t}.v{c}")))
        .collect();
    format!(
        "SELECT p.a, p.b, p.rule, tk_levels({spec}, '{key}', {values}) AS g{extra} FROM ({pairs}) p \
         JOIN side0 A ON p.a = A.node JOIN {right} B ON p.b = B.node \
         WHERE (CASE {first} ELSE -1 END) = p.rule",
        spec = literal(&job.level_spec()),
        key = hex::encode(key),
        values = values.join(", "),
        right = right_table(job),
    )
}

/// The pairs of [`query`] with what their class needs: `mask` (bit `j` when rule `j` produces the
/// pair), `det` (a deterministic rule matches) and `t{c}` (the term frequency comparison `c` reads,
/// when the pair sits at its term-frequency level).
pub(crate) fn classed(
    job: &PairJob<'_>,
    layout: &Layout,
    query: (usize, bool, u32),
    key: &[u8; 16],
) -> String {
    let mask = (0..job.rules())
        .map(|j| {
            format!(
                "CASE WHEN {} THEN {} ELSE 0 END",
                produced(job, layout, j),
                1u64 << j
            )
        })
        .collect::<Vec<_>>()
        .join(" + ");
    let det = job
        .deterministic()
        .iter()
        .map(|cols| {
            let eq: Vec<String> = cols.iter().map(|c| format!("A.v{c} = B.v{c}")).collect();
            format!("({})", eq.join(" AND "))
        })
        .collect::<Vec<_>>();
    let det = if det.is_empty() {
        "false".to_string()
    } else {
        format!("coalesce({}, false)", det.join(" OR "))
    };
    let nc = job.level_fn().comparisons();
    let mut extra = format!(", CAST({mask} AS BIGINT) AS mask, {det} AS det");
    let mut tf = Vec::new();
    for c in 0..nc {
        match job.tf_level(c).filter(|_| layout.tf[c]) {
            Some(level) => {
                let _ = write!(extra, ", A.t{c} AS ta{c}");
                let shift = 4 * (nc - 1 - c);
                tf.push(format!(
                    "CASE WHEN ((g >> CAST({shift} AS BIGINT UNSIGNED)) & CAST(15 AS BIGINT UNSIGNED)) \
                     = {level} THEN ta{c} END AS t{c}"
                ));
            }
            None => tf.push(format!("CAST(NULL AS DOUBLE) AS t{c}")),
        }
    }
    let inner = query_with(job, layout, query, key, &extra);
    format!(
        "SELECT a, b, rule, g, mask, det, {} FROM ({inner}) q",
        tf.join(", ")
    )
}

/// The classes of one query's pairs, counted.
pub(crate) fn class_query(job: &PairJob<'_>, classed: &str) -> String {
    let t: String = (0..job.level_fn().comparisons())
        .map(|c| format!(", t{c}"))
        .collect();
    format!(
        "SELECT rule, mask, g, det{t}, count(*) AS n FROM ({classed}) c GROUP BY rule, mask, g, det{t}"
    )
}

/// The pairs of one query that `scoring` keeps.
pub(crate) fn kept_query(job: &PairJob<'_>, classed: &str, scoring: &Scoring) -> String {
    let t: String = (0..job.level_fn().comparisons())
        .map(|c| format!(", t{c}"))
        .collect();
    format!(
        "SELECT a, b, rule, g FROM ({classed}) c WHERE tk_keep({}, g, det{t})",
        literal(&scoring.spec())
    )
}
