//! `tokumei-scheduler`: Ballista's scheduler with Tokumei's functions registered.

use clap::Parser;
use tokumei_distributed::cluster::{run_scheduler, SchedulerOptions};

/// A Ballista scheduler for Tokumei's distributed engine.
#[derive(Parser)]
#[command(name = "tokumei-scheduler", version)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind_host: String,
    /// Host name executors and clients reach the scheduler by.
    #[arg(long, default_value = "localhost")]
    external_host: String,
    /// Port.
    #[arg(long, default_value_t = 50050)]
    port: u16,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let a = Args::parse();
    tokumei_distributed::cluster::init_logging();
    let opts = SchedulerOptions {
        bind_host: a.bind_host,
        external_host: a.external_host,
        port: a.port,
    };
    match run_scheduler(&opts).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokumei-scheduler: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
