//! The linkage trained and scored on the engine ([`ScoringJob`]): the job's tables are written once;
//! every query (rule, kind of block) first counts its pairs by class, which the linkage checks against
//! its plan and trains on, then returns only the pairs the fitted model keeps (`tk_keep`), as many as
//! its classes say. A query whose answer does not add up runs again (at most [`ATTEMPTS`] times).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Float64Type, Int64Type, UInt64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use tokumei_linkage::{
    engine_error, LinkageError, PairClass, PairJob, PairSet, Scoring, ScoringJob,
};

use super::{class_query, classed, each_pair_once, kept_query, pair_rows, register};
use crate::job::{JobDir, Target, ATTEMPTS};
use crate::tables::{self, Layout};
use crate::{cluster, DistributedError};

/// A linkage job on the engine, its tables written, its session open.
pub(crate) struct DistributedScoring<'s, 'j> {
    target: &'s Target,
    job: &'s PairJob<'j>,
    ctx: SessionContext,
    /// The tables; removed when the job is dropped.
    _dir: JobDir,
    layout: Layout,
    key: [u8; 16],
    salts: u32,
    /// Per query (rule `k`, large blocks or not, at `2k + large`): its classes.
    classes: Vec<Vec<PairClass>>,
    rt: tokio::runtime::Runtime,
}

fn linkage(e: DistributedError) -> LinkageError {
    engine_error(e.to_string())
}

impl<'s, 'j> DistributedScoring<'s, 'j> {
    /// Connects (first: nothing is written for an engine that cannot be reached), then writes and
    /// registers the job's tables.
    pub(crate) fn open(
        target: &'s Target,
        salts: u32,
        job: &'s PairJob<'j>,
    ) -> Result<Self, DistributedError> {
        if job.rules() > 63 {
            return Err(DistributedError::Engine(
                "more than 63 blocking rules cannot be scored on an engine".into(),
            ));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| DistributedError::Engine(format!("runtime: {e}")))?;
        let ctx = rt.block_on(target.context())?;
        let dir = JobDir::create(&target.work)?;
        let key = cluster::random_key()?;
        let layout = tables::write(job, &dir.dir, target.partitions, salts, &key)?;
        rt.block_on(register(&ctx, &layout))?;
        Ok(DistributedScoring {
            target,
            job,
            ctx,
            _dir: dir,
            layout,
            key,
            salts,
            classes: Vec::new(),
            rt,
        })
    }

    /// The job's queries: (rule, large blocks).
    fn queries(&self) -> Vec<(usize, bool)> {
        (0..self.job.rules())
            .flat_map(|k| [(k, false), (k, true)])
            .collect()
    }

    fn classed(&self, (k, large): (usize, bool)) -> String {
        classed(self.job, &self.layout, (k, large, self.salts), &self.key)
    }

    /// Every query's classes once.
    async fn count(&self) -> Result<Vec<Vec<PairClass>>, DistributedError> {
        let mut out = Vec::new();
        for q in self.queries() {
            let sql = class_query(self.job, &self.classed(q));
            let nc = self.job.level_fn().comparisons();
            let read = |b: &[RecordBatch]| each_class_once(class_rows(b, nc, q.0)?);
            // The plan checks a rule's count when it knows it; otherwise two answers must agree.
            let checked = self.job.counted_exactly(q.0);
            out.push(self.target.settled(&self.ctx, &sql, checked, read).await?);
        }
        Ok(out)
    }

    /// Every query's kept pairs, as many per query as its classes say.
    async fn keep(&self, scoring: &Scoring) -> Result<Vec<(u32, u32, u32, u64)>, DistributedError> {
        let mut rows = Vec::new();
        for (q, classes) in self.queries().into_iter().zip(&self.classes) {
            let expected: u64 = classes
                .iter()
                .filter(|c| scoring.keeps(scoring.class_weight(c)))
                .map(|c| c.pairs)
                .sum();
            let sql = kept_query(self.job, &self.classed(q), scoring);
            let read = |b: &[RecordBatch]| {
                let rows = pair_rows(b)?;
                each_pair_once(&rows)?;
                if rows.len() as u64 != expected {
                    return Err(DistributedError::Engine(format!(
                        "a query kept {} pairs where its classes hold {expected}",
                        rows.len()
                    )));
                }
                Ok(rows)
            };
            rows.append(&mut self.target.whole(&self.ctx, &sql, read).await?);
        }
        Ok(rows)
    }
}

impl ScoringJob for DistributedScoring<'_, '_> {
    fn classes(&mut self) -> Result<Vec<PairClass>, LinkageError> {
        let mut failure = None;
        for attempt in 1..=ATTEMPTS {
            let per_query = self.rt.block_on(self.count()).map_err(linkage)?;
            let all: Vec<PairClass> = per_query.iter().flatten().cloned().collect();
            match self.job.check_classes(&all) {
                Ok(()) => {
                    self.classes = per_query;
                    return Ok(all);
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "the job's classes do not add up; counting again");
                    failure = Some(e);
                }
            }
        }
        Err(failure.unwrap_or_else(|| engine_error("the classes were never counted")))
    }

    fn kept(&mut self, scoring: &Scoring, expected: u64) -> Result<PairSet, LinkageError> {
        let rows = self.rt.block_on(self.keep(scoring)).map_err(linkage)?;
        if rows.len() as u64 != expected {
            return Err(engine_error(
                "the queries kept other pairs than the job's classes",
            ));
        }
        PairSet::from_rows(rows, self.job.rules(), self.job.level_fn().comparisons())
    }
}

/// The classes of one query's answer (rule `k`'s).
fn class_rows(
    batches: &[RecordBatch],
    nc: usize,
    k: usize,
) -> Result<Vec<PairClass>, DistributedError> {
    let bad = |m: &str| DistributedError::Engine(format!("a class came back {m}"));
    let mut out = Vec::new();
    for b in batches {
        if b.num_columns() != nc + 5 {
            return Err(bad("with other columns"));
        }
        let rule = b.column(0).as_primitive_opt::<Int64Type>();
        let mask = b.column(1).as_primitive_opt::<Int64Type>();
        let g = b.column(2).as_primitive_opt::<UInt64Type>();
        let det = b.column(3).as_boolean_opt();
        let n = b.column(nc + 4).as_primitive_opt::<Int64Type>();
        let (Some(rule), Some(mask), Some(g), Some(det), Some(n)) = (rule, mask, g, det, n) else {
            return Err(bad("mistyped"));
        };
        let tf: Vec<_> = (0..nc)
            .map(|c| b.column(4 + c).as_primitive_opt::<Float64Type>())
            .collect();
        if rule.null_count()
            + mask.null_count()
            + g.null_count()
            + det.null_count()
            + n.null_count()
            > 0
        {
            return Err(bad("incomplete"));
        }
        for i in 0..b.num_rows() {
            if rule.value(i) != k as i64 || mask.value(i) < 0 || n.value(i) < 1 {
                return Err(bad("for another rule, or empty"));
            }
            let tf = tf
                .iter()
                .map(|t| t.and_then(|t| (!t.is_null(i)).then(|| t.value(i))))
                .collect();
            out.push(PairClass {
                first: k as u32,
                produced: mask.value(i) as u64,
                levels: g.value(i),
                deterministic: det.value(i),
                tf,
                pairs: n.value(i) as u64,
            });
        }
    }
    Ok(out)
}

/// One query's classes in the order of their keys; fails when a class appears twice (a group
/// counted once by construction).
fn each_class_once(mut classes: Vec<PairClass>) -> Result<Vec<PairClass>, DistributedError> {
    type Key = (u64, u64, bool, Vec<Option<u64>>);
    let key = |c: &PairClass| -> Key {
        let tf = c.tf.iter().map(|t| t.map(f64::to_bits)).collect();
        (c.produced, c.levels, c.deterministic, tf)
    };
    classes.sort_by_cached_key(key);
    if classes.windows(2).any(|w| key(&w[0]) == key(&w[1])) {
        return Err(DistributedError::Engine(
            "a class of pairs came back twice".into(),
        ));
    }
    Ok(classes)
}
