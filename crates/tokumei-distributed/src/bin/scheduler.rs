//! `tokumei-scheduler`: Ballista's scheduler with Tokumei's functions registered.

use clap::Parser;
use tokumei_distributed::cluster::{run_scheduler, SchedulerOptions};

/// A Ballista scheduler for Tokumei's distributed engine.
#[derive(Parser)]
#[command(name = "tokumei-scheduler", version)]
struct Args {
    /// This node's mutual-TLS folder (`ca.crt`, `node.crt`, `node.key`, as `tokumei-cluster-certs`
    /// writes them).
    #[arg(long)]
    tls: std::path::PathBuf,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind_host: String,
    /// Host name executors and clients reach the scheduler by.
    #[arg(long, default_value = "localhost")]
    external_host: String,
    /// Port.
    #[arg(long, default_value_t = 50050)]
    port: u16,
    /// Seconds without word from an executor before its tasks run again on the others (a busy
    /// executor still polls every 5 seconds).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(10..=3600))]
    executor_timeout: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let a = Args::parse();
    tokumei_distributed::cluster::init_logging();
    let tls = match tokumei_distributed::tls::ClusterTls::load(&a.tls) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tokumei-scheduler: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let opts = SchedulerOptions {
        bind_host: a.bind_host,
        external_host: a.external_host,
        port: a.port,
        tls,
        executor_timeout: a.executor_timeout,
    };
    match run_scheduler(&opts).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokumei-scheduler: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
