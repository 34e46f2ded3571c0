//! `tokumei-executor`: Ballista's executor with Tokumei's functions registered.

use std::path::PathBuf;

use clap::Parser;
use tokumei_distributed::cluster::{run_executor, ExecutorOptions};

/// A Ballista executor for Tokumei's distributed engine.
#[derive(Parser)]
#[command(name = "tokumei-executor", version)]
struct Args {
    /// This node's mutual-TLS folder (`ca.crt`, `node.crt`, `node.key`, as `tokumei-cluster-certs`
    /// writes them).
    #[arg(long)]
    tls: std::path::PathBuf,
    /// Scheduler host.
    #[arg(long, default_value = "localhost")]
    scheduler_host: String,
    /// Scheduler port.
    #[arg(long, default_value_t = 50050)]
    scheduler_port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind_host: String,
    /// Host name other executors and clients reach this one by (default: the bound address).
    #[arg(long)]
    external_host: Option<String>,
    /// Flight (shuffle) port.
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// gRPC port.
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// Folder of shuffle files: tmpfs (or an encrypted volume with --work-dir-on-disk).
    #[arg(long)]
    work_dir: PathBuf,
    /// Accept a work folder that is not tmpfs (an encrypted volume).
    #[arg(long)]
    work_dir_on_disk: bool,
    /// Tasks run at once.
    #[arg(long, default_value_t = 2)]
    concurrent_tasks: usize,
    /// Memory pool of the executor's queries, in bytes.
    #[arg(long)]
    memory_pool_size: Option<u64>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let a = Args::parse();
    tokumei_distributed::cluster::init_logging();
    let tls = match tokumei_distributed::tls::ClusterTls::load(&a.tls) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tokumei-executor: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let opts = ExecutorOptions {
        scheduler_host: a.scheduler_host,
        scheduler_port: a.scheduler_port,
        bind_host: a.bind_host,
        external_host: a.external_host,
        port: a.port,
        grpc_port: a.grpc_port,
        work_dir: a.work_dir,
        work_dir_on_disk: a.work_dir_on_disk,
        concurrent_tasks: a.concurrent_tasks,
        memory_pool_size: a.memory_pool_size,
        tls,
    };
    match run_executor(&opts).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokumei-executor: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
