//! Sessions on an engine, and the scheduler and executor processes of a Tokumei cluster: Ballista's
//! own scheduler and executor, as released, with Tokumei's functions registered (`udf`) so that
//! plans using them decode on every process.

use std::path::Path;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::error::BallistaError;
use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
use ballista_core::utils::{create_grpc_server, default_session_builder, GrpcServerConfig};
use ballista_core::ConfigProducer;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_executor::flight_service::BallistaFlightService;
use ballista_executor::shutdown::Shutdown;
use ballista_executor::ArrowFlightServerProvider;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::create_scheduler;
use datafusion::execution::registry::FunctionRegistry;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};

use crate::tls::ClusterTls;
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
    for f in udf::aggregates() {
        state.register_udaf(f)?;
    }
    Ok(state)
}

/// A session on `engine` with `partitions` partitions per query stage. A Ballista cluster is reached
/// only over mutual TLS, with this driver's material (`tls`).
pub async fn context(
    engine: &Engine,
    partitions: usize,
    tls: Option<&ClusterTls>,
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
            let tls = tls.ok_or_else(DistributedError::tls_required)?;
            let mut config = SessionConfig::new_with_ballista()
                .with_target_partitions(partitions)
                .with_ballista_use_tls(true)
                // The static planner: Ballista 55's adaptive planner (its default) loses track of a
                // job when an executor is lost mid-stage ("Can't find active stage to update stage
                // outputs") and the job never ends; the static one runs the lost tasks again.
                .with_ballista_adaptive_query_planner(false)
                .with_ballista_override_create_grpc_client_endpoint(tls.endpoint_override());
            // Dynamic filters add metrics on some tasks of a stage and not others, which Ballista 55's
            // scheduler refuses (a task's metrics must match its stage's), leaving the job waiting.
            config
                .options_mut()
                .optimizer
                .enable_dynamic_filter_pushdown = false;
            let state = SessionStateBuilder::new()
                .with_default_features()
                .with_config(config)
                .build()
                .upgrade_for_ballista(format!("https://{host}:{port}"))
                .map_err(err)?;
            let ctx = SessionContext::new_with_state(state);
            // Ballista replaces the session's functions with its own list; add ours again.
            for f in udf::functions() {
                ctx.register_udf(f.as_ref().clone());
            }
            for f in udf::aggregates() {
                ctx.register_udaf(f.as_ref().clone());
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
    for f in udf::aggregates() {
        r.aggregate_functions.insert(f.name().to_string(), f);
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
    /// The scheduler's TLS material: only clients and executors of the same authority connect.
    pub tls: ClusterTls,
    /// Seconds without a poll after which an executor is taken for lost and its tasks, and the
    /// stages whose output it held, run again on the others (a busy executor polls every 5 s).
    pub executor_timeout: u64,
}

/// Largest gRPC message between the nodes.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Runs a scheduler until the process ends: Ballista's scheduler service alone (no REST or Flight
/// proxy), behind mutual TLS, with executors pulling their tasks.
pub async fn run_scheduler(opts: &SchedulerOptions) -> Result<(), DistributedError> {
    let err = |e: BallistaError| DistributedError::Engine(e.to_string());
    let addr = format!("{}:{}", opts.bind_host, opts.port)
        .parse()
        .map_err(|e| DistributedError::Engine(format!("scheduler address: {e}")))?;
    let config = SchedulerConfig {
        bind_host: opts.bind_host.clone(),
        external_host: opts.external_host.clone(),
        bind_port: opts.port,
        scheduling_policy: TaskSchedulingPolicy::PullStaged,
        use_tls: true,
        override_create_grpc_client_endpoint: Some(opts.tls.endpoint_override()),
        // A finished job's shuffle files (identity values among them) are removed soon.
        finished_job_data_clean_up_interval_seconds: 10,
        executor_timeout_seconds: opts.executor_timeout,
        expire_dead_executor_interval_seconds: (opts.executor_timeout / 5).max(1),
        no_executors_grace_period_seconds: opts.executor_timeout,
        ..Default::default()
    }
    .with_override_session_builder(Arc::new(|config| {
        with_functions(default_session_builder(config)?)
    }));
    config.validate().map_err(err)?;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(err)?;
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
            .await
            .map_err(err)?;
    let service = SchedulerGrpcServer::new(scheduler)
        .max_encoding_message_size(MAX_MESSAGE)
        .max_decoding_message_size(MAX_MESSAGE);
    create_grpc_server(&GrpcServerConfig::default())
        .tls_config(opts.tls.server())
        .map_err(|e| DistributedError::Tls(e.to_string()))?
        .add_service(service)
        .serve(addr)
        .await
        .map_err(|e| DistributedError::Engine(e.to_string()))
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
    /// The executor's TLS material: for its Flight server, its connection to the scheduler and its
    /// shuffle reads from other executors.
    pub tls: ClusterTls,
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
    // Behind TLS the scheduler cannot see the executor's address (Ballista 55 then panics in its
    // poll handler), so the executor always says how it is reached.
    let external_host = match (&opts.external_host, opts.bind_host.as_str()) {
        (Some(h), _) => h.clone(),
        (None, "0.0.0.0" | "::" | "[::]") => {
            return Err(DistributedError::Engine(
                "an executor bound to every address needs --external-host".into(),
            ))
        }
        (None, bind) => bind.to_string(),
    };
    let config = ExecutorProcessConfig {
        bind_host: opts.bind_host.clone(),
        external_host: Some(external_host),
        port: opts.port,
        grpc_port: opts.grpc_port,
        scheduler_host: opts.scheduler_host.clone(),
        scheduler_port: opts.scheduler_port,
        vcores: opts.concurrent_tasks.max(1),
        work_dir: Some(work_dir),
        job_data_ttl_seconds: 3600,
        job_data_clean_up_interval_seconds: 60,
        memory_pool_size: opts.memory_pool_size,
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        override_function_registry: Some(Arc::new(registry())),
        override_create_grpc_client_endpoint: Some(opts.tls.endpoint_override()),
        override_config_producer: Some(tls_config_producer(&opts.tls)),
        override_arrow_flight_service: Some(tls_flight_server(&opts.tls)),
        ..Default::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| DistributedError::Engine(e.to_string()))
}

/// The session configuration of an executor's tasks: shuffle reads over mutual TLS.
fn tls_config_producer(tls: &ClusterTls) -> ConfigProducer {
    let endpoint = tls.endpoint_override();
    Arc::new(move || {
        SessionConfig::new_with_ballista()
            .with_ballista_use_tls(true)
            .with_ballista_override_create_grpc_client_endpoint(endpoint.clone())
    })
}

/// The executor's Flight server (shuffle files and results) behind mutual TLS.
fn tls_flight_server(tls: &ClusterTls) -> Arc<ArrowFlightServerProvider> {
    let server = tls.server();
    Arc::new(
        move |work_dir: String,
              addr: std::net::SocketAddr,
              mut shutdown: Shutdown,
              grpc: GrpcServerConfig| {
            let server = server.clone();
            tokio::spawn(async move {
                let service = FlightServiceServer::new(BallistaFlightService::new(work_dir))
                    .max_encoding_message_size(MAX_MESSAGE)
                    .max_decoding_message_size(MAX_MESSAGE);
                create_grpc_server(&grpc)
                    .tls_config(server)
                    .map_err(BallistaError::TonicError)?
                    .add_service(service)
                    .serve_with_shutdown(addr, shutdown.recv())
                    .await
                    .map_err(BallistaError::TonicError)
            })
        },
    )
}
