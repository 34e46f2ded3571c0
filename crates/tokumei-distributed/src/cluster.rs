//! Sessions on an engine, and the scheduler and executor processes of a Tokumei cluster: Ballista's
//! own scheduler and executor, as released, with Tokumei's functions registered (`udf`) so that
//! plans using them decode on every process.

use std::path::Path;
use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::registry::FunctionRegistry;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::{udf, DistributedError, Engine};

/// Log lines of the scheduler and executors (Ballista logs through `log`) on standard error, at the
/// level `TOKUMEI_LOG` names (`error`, `warn` (default), `info`, `debug`).
pub fn init_logging() {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, m: &log::Metadata) -> bool {
            m.level() <= log::max_level()
        }
        fn log(&self, r: &log::Record) {
            if self.enabled(r.metadata()) {
                eprintln!("{} {}: {}", r.level(), r.target(), r.args());
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    let level = std::env::var("TOKUMEI_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(log::LevelFilter::Warn);
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// Linux's magic number of tmpfs (`statfs`).
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// A random key of 16 bytes from the operating system.
pub(crate) fn random_key() -> Result<[u8; 16], DistributedError> {
    let mut k = [0u8; 16];
    getrandom::fill(&mut k).map_err(|e| DistributedError::Engine(format!("random: {e}")))?;
    Ok(k)
}

fn with_functions(mut state: SessionState) -> datafusion::error::Result<SessionState> {
    for f in udf::functions() {
        state.register_udf(f)?;
    }
    Ok(state)
}

/// A session on `engine` with `partitions` partitions per query stage.
pub async fn context(
    engine: &Engine,
    partitions: usize,
) -> Result<SessionContext, DistributedError> {
    let err = |e: datafusion::error::DataFusionError| DistributedError::Engine(e.to_string());
    match engine {
        Engine::Embedded => Err(DistributedError::Engine(
            "the embedded engine has no DataFusion session".into(),
        )),
        Engine::DataFusion => {
            let config = SessionConfig::new().with_target_partitions(partitions);
            let state = SessionStateBuilder::new()
                .with_default_features()
                .with_config(config)
                .build();
            Ok(SessionContext::new_with_state(
                with_functions(state).map_err(err)?,
            ))
        }
        Engine::Ballista { host, port } => {
            let mut config = SessionConfig::new_with_ballista().with_target_partitions(partitions);
            // Dynamic filters add metrics on some tasks of a stage and not others, which Ballista 55's
            // scheduler refuses (a task's metrics must match its stage's), leaving the job waiting.
            config
                .options_mut()
                .optimizer
                .enable_dynamic_filter_pushdown = false;
            let state = SessionStateBuilder::new()
                .with_default_features()
                .with_config(config)
                .build();
            let ctx = SessionContext::remote_with_state(&format!("df://{host}:{port}"), state)
                .await
                .map_err(err)?;
            // Ballista replaces the session's functions with its own list; add ours again.
            for f in udf::functions() {
                ctx.register_udf(f.as_ref().clone());
            }
            Ok(ctx)
        }
    }
}

/// Ballista's function registry with Tokumei's functions.
pub fn registry() -> BallistaFunctionRegistry {
    let mut r = BallistaFunctionRegistry::default();
    for f in udf::functions() {
        r.scalar_functions.insert(f.name().to_string(), f);
    }
    r
}

/// Where a scheduler listens.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to bind.
    pub bind_host: String,
    /// Host name executors and clients reach it by.
    pub external_host: String,
    /// Port.
    pub port: u16,
}

/// Runs a scheduler until the process ends.
pub async fn run_scheduler(opts: &SchedulerOptions) -> Result<(), DistributedError> {
    let err = |e: ballista_core::error::BallistaError| DistributedError::Engine(e.to_string());
    let addr = format!("{}:{}", opts.bind_host, opts.port)
        .parse()
        .map_err(|e| DistributedError::Engine(format!("scheduler address: {e}")))?;
    let config = SchedulerConfig {
        bind_host: opts.bind_host.clone(),
        external_host: opts.external_host.clone(),
        bind_port: opts.port,
        // A finished job's shuffle files (identity values among them) are removed soon.
        finished_job_data_clean_up_interval_seconds: 10,
        ..Default::default()
    }
    .with_override_session_builder(Arc::new(|config| {
        with_functions(default_session_builder(config)?)
    }));
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(err)?;
    start_server(cluster, addr, Arc::new(config))
        .await
        .map_err(err)
}

/// How an executor runs.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// Scheduler host.
    pub scheduler_host: String,
    /// Scheduler port.
    pub scheduler_port: u16,
    /// Address to bind.
    pub bind_host: String,
    /// Host name other executors and clients reach it by.
    pub external_host: Option<String>,
    /// Flight (shuffle) port.
    pub port: u16,
    /// gRPC port.
    pub grpc_port: u16,
    /// Folder of shuffle files (node numbers, rule keys, sealed values): kept in memory (tmpfs) unless
    /// `work_dir_on_disk` vouches for an encrypted volume.
    pub work_dir: std::path::PathBuf,
    /// Accept a work folder that is not tmpfs.
    pub work_dir_on_disk: bool,
    /// Tasks run at once.
    pub concurrent_tasks: usize,
    /// Memory pool of the executor's queries, in bytes (none: DataFusion's default).
    pub memory_pool_size: Option<u64>,
}

/// Whether `path` is on tmpfs.
#[allow(clippy::unnecessary_cast)] // `f_type`'s integer type differs between architectures
pub fn on_tmpfs(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type as i64 == TMPFS_MAGIC)
}

/// Runs an executor until the process ends.
pub async fn run_executor(opts: &ExecutorOptions) -> Result<(), DistributedError> {
    if !opts.work_dir_on_disk && !on_tmpfs(&opts.work_dir) {
        return Err(DistributedError::Engine(format!(
            "{}: the executor's work folder must be tmpfs (e.g. under /dev/shm), or an encrypted \
             volume named with --work-dir-on-disk",
            opts.work_dir.display()
        )));
    }
    let work_dir = opts
        .work_dir
        .to_str()
        .ok_or_else(|| DistributedError::Engine("the work folder's path is not UTF-8".into()))?
        .to_string();
    let config = ExecutorProcessConfig {
        bind_host: opts.bind_host.clone(),
        external_host: opts.external_host.clone(),
        port: opts.port,
        grpc_port: opts.grpc_port,
        scheduler_host: opts.scheduler_host.clone(),
        scheduler_port: opts.scheduler_port,
        vcores: opts.concurrent_tasks.max(1),
        work_dir: Some(work_dir),
        job_data_ttl_seconds: 3600,
        job_data_clean_up_interval_seconds: 60,
        memory_pool_size: opts.memory_pool_size,
        override_function_registry: Some(Arc::new(registry())),
        ..Default::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| DistributedError::Engine(e.to_string()))
}
