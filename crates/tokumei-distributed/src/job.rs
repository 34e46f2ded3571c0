//! What every job on an engine shares: where it runs ([`Target`]: the engine, the work folder, the
//! partitions, the time allowed and the cluster's TLS material), and its folder of files
//! ([`JobDir`]), held by a lock for the job's life.

use std::path::{Path, PathBuf};
use std::time::Duration;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;

use crate::tls::ClusterTls;
use crate::{cluster, DistributedError, Engine};

/// How many times one query of a job runs before the job fails.
pub const ATTEMPTS: usize = 3;

/// Where a job runs.
pub struct Target {
    /// The engine.
    pub engine: Engine,
    /// The folder of the job files, at the same path on every executor.
    pub work: PathBuf,
    /// Files per table and partitions per stage.
    pub partitions: usize,
    timeout: Duration,
    tls: Option<ClusterTls>,
}

impl Target {
    /// A job on `engine` (not the embedded one), its files under `work` in `partitions` files per
    /// table (1 to 4096).
    pub fn new(engine: Engine, work: &Path, partitions: usize) -> Result<Self, DistributedError> {
        if engine == Engine::Embedded {
            return Err(DistributedError::Engine(
                "the embedded engine runs no distributed job".into(),
            ));
        }
        Ok(Target {
            engine,
            work: work.to_path_buf(),
            partitions: partitions.clamp(1, 4096),
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

    /// A session on the engine.
    pub async fn context(&self) -> Result<SessionContext, DistributedError> {
        cluster::context(&self.engine, self.partitions, self.tls.as_ref()).await
    }

    /// The answer of one query, within the time allowed.
    pub async fn collect(
        &self,
        ctx: &SessionContext,
        sql: &str,
    ) -> Result<Vec<RecordBatch>, DistributedError> {
        let df = ctx.sql(sql).await.map_err(df_error)?;
        tokio::time::timeout(self.timeout, df.collect())
            .await
            .map_err(|_| DistributedError::Engine("the job did not finish in time".into()))?
            .map_err(df_error)
    }

    /// Runs one query until `read` takes its answer for whole, at most [`ATTEMPTS`] times. When an
    /// executor is lost mid-stage, Ballista 55 runs its tasks again on the others and has been seen
    /// to hand back some rows twice: `read` refuses what the query's shape makes impossible (a key
    /// twice, a count that does not add up), and the query runs again.
    pub async fn whole<T>(
        &self,
        ctx: &SessionContext,
        sql: &str,
        read: impl Fn(&[RecordBatch]) -> Result<T, DistributedError>,
    ) -> Result<T, DistributedError> {
        let mut failure = None;
        for attempt in 1..=ATTEMPTS {
            match self.collect(ctx, sql).await.and_then(|b| read(&b)) {
                Ok(t) => return Ok(t),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "a query of the job failed; running it again");
                    failure = Some(e);
                }
            }
        }
        Err(failure.unwrap_or_else(|| DistributedError::Engine("the query never ran".into())))
    }

    /// Runs one query as [`Self::whole`] when `read` checks its answer whole (`checked`), otherwise
    /// until two answers in a row, each taken by `read`, are the same (at most [`ATTEMPTS`] + 1
    /// runs): where nothing says beforehand how many rows an answer counts, an executor lost
    /// mid-stage has been seen to make Ballista 55 count some rows of an aggregate twice, without
    /// a key twice.
    pub async fn settled<T: PartialEq>(
        &self,
        ctx: &SessionContext,
        sql: &str,
        checked: bool,
        read: impl Fn(&[RecordBatch]) -> Result<T, DistributedError>,
    ) -> Result<T, DistributedError> {
        if checked {
            return self.whole(ctx, sql, read).await;
        }
        until_agreed(async || self.whole(ctx, sql, &read).await).await
    }

    /// Runs `job` on a runtime of its own.
    pub fn block_on<T>(
        &self,
        job: impl std::future::Future<Output = Result<T, DistributedError>>,
    ) -> Result<T, DistributedError> {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| DistributedError::Engine(format!("runtime: {e}")))?
            .block_on(job)
    }
}

/// The first answer that the one before it equals, asking at most [`ATTEMPTS`] + 1 times.
async fn until_agreed<T: PartialEq>(
    mut answer: impl AsyncFnMut() -> Result<T, DistributedError>,
) -> Result<T, DistributedError> {
    let mut last = None;
    for attempt in 1..=ATTEMPTS + 1 {
        let now = answer().await?;
        if last.as_ref() == Some(&now) {
            return Ok(now);
        }
        if last.is_some() {
            tracing::warn!(attempt, "two answers of a query differ; running it again");
        }
        last = Some(now);
    }
    Err(DistributedError::Engine(
        "no two answers of a query were the same".into(),
    ))
}

/// A DataFusion error as the crate's.
pub(crate) fn df_error(e: datafusion::error::DataFusionError) -> DistributedError {
    DistributedError::Engine(e.to_string())
}

/// A folder's path as a table location (with a final `/`).
pub(crate) fn path_text(p: &Path) -> Result<String, DistributedError> {
    p.to_str()
        .map(|s| format!("{s}/"))
        .ok_or_else(|| DistributedError::Engine("the work folder's path is not UTF-8".into()))
}

/// A job's folder under the work folder, `job-<16 hex>`, removed when the job ends. Beside it,
/// `linkage-<16 hex>.lock` is held (`flock`) for the job's life: the operating system lets it go when
/// the driver dies however it dies, so the next job removes the folders of dead drivers (their values
/// are sealed under a key that died with them, but the space is not) and never those of a job still
/// running beside it.
pub(crate) struct JobDir {
    /// The job's folder.
    pub dir: PathBuf,
    lock: PathBuf,
    _held: std::fs::File,
}

const JOB_PREFIX: &str = "job-";

impl JobDir {
    /// Creates a job's folder under `work`, first removing those of dead drivers.
    pub fn create(work: &Path) -> Result<Self, DistributedError> {
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

/// The job name of a work folder's entry (`job-` and 16 hex digits), if it is one.
pub(crate) fn job_name(entry: &str) -> Option<&str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer `until_agreed` settles on when the answers given are `given` in turn (an error
    /// past them).
    fn settled(given: &[u32]) -> Option<u32> {
        let mut next = given.iter().copied();
        let answer = async || {
            next.next()
                .ok_or_else(|| DistributedError::Engine("none".into()))
        };
        let rt = tokio::runtime::Builder::new_current_thread().build().ok()?;
        rt.block_on(until_agreed(answer)).ok()
    }

    #[test]
    fn an_answer_is_taken_when_two_in_a_row_agree() {
        assert_eq!(settled(&[7, 7]), Some(7));
        // A first answer counted twice in part, then two sound ones.
        assert_eq!(settled(&[9, 7, 7]), Some(7));
        assert_eq!(settled(&[9, 7, 8, 8]), Some(8));
        // Never two alike within the attempts, or an error first.
        assert_eq!(settled(&[1, 2, 3, 4, 4]), None);
        assert_eq!(settled(&[7]), None);
    }

    #[test]
    fn a_new_job_removes_only_the_folders_of_dead_drivers() {
        let work = tempfile::tempdir().expect("work");
        let w = work.path();
        // A driver killed mid-job: its folder and an unheld lock.
        let dead = "job-0123456789abcdef";
        std::fs::create_dir(w.join(dead)).expect("dead job");
        std::fs::write(w.join(dead).join("side0.parquet"), b"sealed").expect("file");
        std::fs::write(w.join(format!("{dead}.lock")), b"").expect("lock");
        // A folder without a lock file, and entries that are not jobs.
        std::fs::create_dir(w.join("job-fedcba9876543210")).expect("unlocked");
        std::fs::create_dir(w.join("job-short")).expect("other");
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
        assert!(!after_first.contains(&"job-fedcba9876543210".to_string()));
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
        assert_eq!(entries(), ["job-short", "keep"]);
    }

    #[test]
    fn job_names_are_recognized_exactly() {
        assert_eq!(
            job_name("job-0123456789abcdef"),
            Some("job-0123456789abcdef")
        );
        assert_eq!(
            job_name("job-0123456789abcdef.lock"),
            Some("job-0123456789abcdef")
        );
        for other in [
            "job-0123456789abcdef.new",
            "job-0123456789abcdeg",
            "job-0123",
            "x-0123456789abcdef",
            "job-0123456789abcdef/..",
        ] {
            assert_eq!(job_name(other), None, "{other}");
        }
    }
}
