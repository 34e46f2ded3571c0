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
//! The pairs come back to the driver, which sorts them; the linkage trains, scores and clusters them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Int64Type, UInt32Type, UInt64Type};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use tokumei_linkage::{engine_error, LinkageError, PairEngine, PairJob, PairSet};

use crate::tables::{self, Layout};
use crate::tls::ClusterTls;
use crate::{cluster, DistributedError, Engine};

/// A [`PairEngine`] on DataFusion or Ballista.
pub struct DistributedPairs {
    engine: Engine,
    work: PathBuf,
    partitions: usize,
    salts: u32,
    timeout: Duration,
    tls: Option<ClusterTls>,
}

impl DistributedPairs {
    /// Pairs found on `engine`, the job's tables written under `work` (a folder every executor reads at
    /// the same path: a local folder for one machine, a shared mount for a cluster) in `partitions`
    /// files per side; large blocks spread over `partitions` salts.
    pub fn new(engine: Engine, work: &Path, partitions: usize) -> Result<Self, DistributedError> {
        if engine == Engine::Embedded {
            return Err(DistributedError::Engine(
                "the embedded engine needs no distributed pairs".into(),
            ));
        }
        let partitions = partitions.clamp(1, 4096);
        Ok(DistributedPairs {
            engine,
            work: work.to_path_buf(),
            partitions,
            salts: partitions as u32,
            timeout: Duration::from_secs(24 * 3600),
            tls: None,
        })
    }

    /// The driver's TLS material, which a Ballista cluster requires.
    pub fn with_tls(mut self, tls: ClusterTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Fails a job that has not finished after `timeout` (default: a day), rather than wait for a
    /// cluster that stopped answering.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn run(&self, job: &PairJob<'_>) -> Result<PairSet, DistributedError> {
        // Connect first: no job file is written for a cluster that cannot be reached.
        let ctx = cluster::context(&self.engine, self.partitions, self.tls.as_ref()).await?;
        let dir = JobDir::create(&self.work)?;
        let key = cluster::random_key()?;
        let layout = tables::write(job, &dir.dir, self.partitions, self.salts, &key)?;
        register(&ctx, &layout).await?;
        let mut rows = Vec::new();
        for k in 0..job.rules() {
            for large in [false, true] {
                let sql = query(job, &layout, k, large, self.salts, &key);
                self.collect_whole(&ctx, &sql, &mut rows).await?;
            }
        }
        PairSet::from_rows(rows, job.rules(), job.level_fn().comparisons())
            .map_err(|e| DistributedError::Engine(e.to_string()))
    }
}

/// How many times one query of a job runs before the job fails.
const ATTEMPTS: usize = 3;

impl DistributedPairs {
    /// Runs one query until it gives a whole answer, at most [`ATTEMPTS`] times, and appends its
    /// pairs to `rows`; the pairs of a failed attempt are dropped. A query's pairs are each other's
    /// strangers by construction (one rule, one kind of block), so a pair twice is a broken answer:
    /// when an executor is lost mid-stage, Ballista 55 runs its tasks again on the others and has
    /// been seen to hand back some pairs twice. The job resumes at the query that failed, with the
    /// pairs of the queries before it kept.
    async fn collect_whole(
        &self,
        ctx: &SessionContext,
        sql: &str,
        rows: &mut Vec<(u32, u32, u32, u64)>,
    ) -> Result<(), DistributedError> {
        let mut failure = None;
        for attempt in 1..=ATTEMPTS {
            let mut answer = Vec::new();
            let outcome = self.collect(ctx, sql, &mut answer).await;
            match outcome.and_then(|()| each_pair_once(&answer)) {
                Ok(()) => {
                    rows.append(&mut answer);
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "a query of the job failed; running it again");
                    failure = Some(e);
                }
            }
        }
        Err(failure.unwrap_or_else(|| DistributedError::Engine("the query never ran".into())))
    }

    /// Runs one query and appends its pairs to `rows`.
    async fn collect(
        &self,
        ctx: &SessionContext,
        sql: &str,
        rows: &mut Vec<(u32, u32, u32, u64)>,
    ) -> Result<(), DistributedError> {
        let df = ctx.sql(sql).await.map_err(df_error)?;
        let batches = tokio::time::timeout(self.timeout, df.collect())
            .await
            .map_err(|_| DistributedError::Engine("the job did not finish in time".into()))?
            .map_err(df_error)?;
        for b in &batches {
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
        Ok(())
    }
}

impl PairEngine for DistributedPairs {
    fn name(&self) -> String {
        self.engine.to_string()
    }

    fn pairs(&self, job: &PairJob<'_>) -> Result<PairSet, LinkageError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| engine_error(format!("runtime: {e}")))?;
        rt.block_on(self.run(job))
            .map_err(|e| engine_error(e.to_string()))
    }
}

/// Fails when a pair appears twice in one query's answer.
fn each_pair_once(rows: &[(u32, u32, u32, u64)]) -> Result<(), DistributedError> {
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

/// A job's folder under the work folder, `linkage-<16 hex>`, removed when the job ends. Beside it,
/// `linkage-<16 hex>.lock` is held (`flock`) for the job's life: the operating system lets it go when
/// the driver dies however it dies, so the next job removes the folders of dead drivers (their values
/// are sealed under a key that died with them, but the space is not) and never those of a job still
/// running beside it.
struct JobDir {
    dir: PathBuf,
    lock: PathBuf,
    _held: std::fs::File,
}

const JOB_PREFIX: &str = "linkage-";

impl JobDir {
    fn create(work: &Path) -> Result<Self, DistributedError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DistributedError::Io { path, source }
        };
        std::fs::create_dir_all(work).map_err(io(work))?;
        sweep(work);
        let name = format!("{JOB_PREFIX}{}", hex::encode(&cluster::random_key()?[..8]));
        let (dir, lock) = (work.join(&name), work.join(format!("{name}.lock")));
        // Locked under a name no sweep reads, then put in place: a sweep never sees it unheld.
        let fresh = work.join(format!("{name}.new"));
        let held = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&fresh)
            .map_err(io(&fresh))?;
        held.try_lock()
            .map_err(|e| DistributedError::Engine(format!("job lock: {e}")))?;
        std::fs::rename(&fresh, &lock).map_err(io(&lock))?;
        let job = JobDir {
            dir,
            lock,
            _held: held,
        };
        std::fs::create_dir(&job.dir).map_err(io(&job.dir))?;
        Ok(job)
    }
}

impl Drop for JobDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// The job name of a work folder's entry (`linkage-` and 16 hex digits), if it is one.
fn job_name(entry: &str) -> Option<&str> {
    let stem = entry.strip_suffix(".lock").unwrap_or(entry);
    let hex = stem.strip_prefix(JOB_PREFIX)?;
    (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(stem)
}

/// Removes the folders of jobs whose driver is gone: those whose lock no process holds, and those
/// without a lock file. Best effort: what cannot be removed stays for the next job.
fn sweep(work: &Path) {
    let Ok(entries) = std::fs::read_dir(work) else {
        return;
    };
    let names: std::collections::BTreeSet<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| job_name(&n).map(str::to_string))
        .collect();
    for name in names {
        let lock = work.join(format!("{name}.lock"));
        let held = match std::fs::OpenOptions::new().write(true).open(&lock) {
            Ok(file) => match file.try_lock() {
                Ok(()) => Some(file),
                Err(_) => continue,
            },
            // A lock file is made before its folder and removed after it: a folder without one is
            // not a running job's.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) => continue,
        };
        let dir = work.join(&name);
        if std::fs::remove_dir_all(&dir).is_ok() || !dir.exists() {
            tracing::info!(job = %name, "removed the files of a job whose driver is gone");
            if held.is_some() {
                let _ = std::fs::remove_file(&lock);
            }
        }
    }
}

fn df_error(e: datafusion::error::DataFusionError) -> DistributedError {
    DistributedError::Engine(e.to_string())
}

/// Registers the sides and the salts.
async fn register(ctx: &SessionContext, layout: &Layout) -> Result<(), DistributedError> {
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

fn path_text(p: &Path) -> Result<String, DistributedError> {
    p.to_str()
        .map(|s| format!("{s}/"))
        .ok_or_else(|| DistributedError::Engine("the work folder's path is not UTF-8".into()))
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
        "SELECT p.a, p.b, p.rule, tk_levels({spec}, '{key}', {values}) AS g FROM ({pairs}) p \
         JOIN side0 A ON p.a = A.node JOIN {right} B ON p.b = B.node \
         WHERE (CASE {first} ELSE -1 END) = p.rule",
        spec = literal(&job.level_spec()),
        key = hex::encode(key),
        values = values.join(", "),
        right = right_table(job),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_job_removes_only_the_folders_of_dead_drivers() {
        let work = tempfile::tempdir().expect("work");
        let w = work.path();
        // A driver killed mid-job: its folder and an unheld lock.
        let dead = "linkage-0123456789abcdef";
        std::fs::create_dir(w.join(dead)).expect("dead job");
        std::fs::write(w.join(dead).join("side0.parquet"), b"sealed").expect("file");
        std::fs::write(w.join(format!("{dead}.lock")), b"").expect("lock");
        // A folder without a lock file, and entries that are not jobs.
        std::fs::create_dir(w.join("linkage-fedcba9876543210")).expect("unlocked");
        std::fs::create_dir(w.join("linkage-short")).expect("other");
        std::fs::create_dir(w.join("keep")).expect("other");
        // A job running beside the new one.
        let running = JobDir::create(w).expect("running");
        let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(String::from);
        let entries = || -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(w)
                .expect("dir")
                .filter_map(|e| name(&e.expect("entry").path()))
                .collect();
            v.sort();
            v
        };
        let after_first = entries();
        assert!(!after_first.iter().any(|e| e.starts_with(dead)));
        assert!(!after_first.contains(&"linkage-fedcba9876543210".to_string()));
        let second = JobDir::create(w).expect("second");
        let both = entries();
        assert!(
            both.contains(&name(&running.dir).expect("name")),
            "{both:?}"
        );
        assert!(both.contains(&name(&running.lock).expect("name")));
        assert!(both.contains(&name(&second.dir).expect("name")));
        drop(running);
        drop(second);
        assert_eq!(entries(), ["keep", "linkage-short"]);
    }

    #[test]
    fn job_names_are_recognized_exactly() {
        assert_eq!(
            job_name("linkage-0123456789abcdef"),
            Some("linkage-0123456789abcdef")
        );
        assert_eq!(
            job_name("linkage-0123456789abcdef.lock"),
            Some("linkage-0123456789abcdef")
        );
        for other in [
            "linkage-0123456789abcdef.new",
            "linkage-0123456789abcdeg",
            "linkage-0123",
            "x-0123456789abcdef",
            "linkage-0123456789abcdef/..",
        ] {
            assert_eq!(job_name(other), None, "{other}");
        }
    }
}
