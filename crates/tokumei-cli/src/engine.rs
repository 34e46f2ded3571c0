//! `--engine`: where the batch work runs (the embedded default, DataFusion in this process, or a
//! Ballista cluster), for the commands that can run it elsewhere.

use std::path::{Path, PathBuf};

use clap::Args;
use tokumei_distributed::Engine;
use tokumei_linkage::PairEngine;
use tokumei_model::postings::SharedPostings;
use tokumei_model::register::SharedEngine;

/// The engine arguments.
#[derive(Args, Clone)]
pub struct EngineArgs {
    /// Where the batch work runs: `embedded` (default), `datafusion` (DataFusion in this process) or
    /// `ballista://HOST:PORT` (a cluster's scheduler; `scripts/local-cluster.sh` starts one). The last
    /// two need a build with `--features distributed`; results are the same.
    #[arg(long, default_value = "embedded")]
    engine: String,
    /// Folder of the engine's job files (values sealed), at the same path on every executor.
    #[arg(long)]
    engine_work: Option<PathBuf>,
    /// The driver's mutual-TLS folder for a Ballista cluster (`ca.crt`, `node.crt`, `node.key`, as
    /// `tokumei-cluster-certs` writes them).
    #[arg(long, env = "TOKUMEI_ENGINE_TLS")]
    engine_tls: Option<PathBuf>,
    /// Files per table and partitions per stage of the engine's jobs.
    #[arg(long, default_value_t = 8)]
    engine_partitions: usize,
}

impl EngineArgs {
    /// The linkage's pair engine (none for the embedded default); job files under `default_work`
    /// unless `--engine-work` names another folder.
    pub fn pair_engine(&self, default_work: &Path) -> Result<Option<Box<dyn PairEngine>>, String> {
        let (engine, work) = self.place(default_work)?;
        tokumei_distributed::pair_engine(&engine, self.tls(), work, self.engine_partitions)
            .map_err(|e| e.to_string())
    }

    /// The re-identification battery's register engine (none for the embedded default); job files
    /// under `default_work` unless `--engine-work` names another folder.
    pub fn register_engine(&self, default_work: &Path) -> Result<Option<SharedEngine>, String> {
        let (engine, work) = self.place(default_work)?;
        tokumei_distributed::register_engine(&engine, self.tls(), work, self.engine_partitions)
            .map_err(|e| e.to_string())
    }

    /// The feasibility code index's postings engine (none for the embedded default); job files
    /// under `default_work` unless `--engine-work` names another folder.
    pub fn postings_engine(&self, default_work: &Path) -> Result<Option<SharedPostings>, String> {
        let (engine, work) = self.place(default_work)?;
        tokumei_distributed::postings_engine(&engine, self.tls(), work, self.engine_partitions)
            .map_err(|e| e.to_string())
    }

    /// The engine named and the folder of its job files.
    fn place<'a>(&'a self, default_work: &'a Path) -> Result<(Engine, &'a Path), String> {
        let engine = Engine::parse(&self.engine).map_err(|e| e.to_string())?;
        Ok((engine, self.engine_work.as_deref().unwrap_or(default_work)))
    }

    fn tls(&self) -> Option<&Path> {
        self.engine_tls.as_deref()
    }
}
