//! `tokumei-cluster-certs`: a cluster's certificate authority and one certificate per node, for the
//! mutual TLS between driver, scheduler and executors. The authority's key is not kept.

use std::path::PathBuf;

use clap::Parser;

/// Issues the mutual-TLS material of a Tokumei cluster.
#[derive(Parser)]
#[command(name = "tokumei-cluster-certs", version)]
struct Args {
    /// Folder to create (must not exist); one subfolder per node.
    #[arg(long)]
    out: PathBuf,
    /// Node names (a-z, 0-9, -), e.g. `scheduler executor-1 executor-2 driver`.
    #[arg(required = true)]
    nodes: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let a = Args::parse();
    match tokumei_distributed::tls::issue(&a.out, &a.nodes) {
        Ok(dirs) => {
            for d in dirs {
                println!("{}", d.display());
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tokumei-cluster-certs: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
