//! The batch work of Tokumei on an existing distributed engine: Apache DataFusion, in this process or
//! on an Apache Ballista cluster (scheduler and executors as the Apache project releases them, built
//! by cargo). The results are those of the embedded run, byte for byte.
//!
//! An engine is named by an address ([`Engine::parse`]): `embedded` (the default, no DataFusion),
//! `datafusion` (DataFusion in this process, partitioned as on a cluster), or `ballista://HOST:PORT`
//! (a cluster's scheduler). Without the cargo feature `ballista` only `embedded` is available and the
//! other addresses are refused with a message saying how to build them in.
//!
//! What runs distributed so far:
//! - `linkage` (feature `ballista`): the candidate pairs of every blocking rule as equi-joins on the
//!   rules' keys, large blocks spread over several tasks by salting, each pair kept for the first rule
//!   that produces it, and the comparison levels of every pair computed by the executors
//!   (`tk_levels`, the linkage's own level code over values sealed for the job, `seal`); by default
//!   the model trained and the pairs scored on the engine (`tk_keep`). Clustering runs in the driver
//!   on what comes back, as in the embedded run.
//! - `register` (feature `ballista`): the re-identification battery's register counts.
//! - `postings` (feature `ballista`): the feasibility code index's sets of persons per term
//!   (`tk_persons`, an aggregate building roaring bitmaps on the executors).
//!
//! The arrow version: DataFusion and Ballista bring their own `arrow` (59); the workspace's crates use
//! theirs (60). No arrow type crosses this crate's boundary: data goes to the engine as Parquet files
//! and comes back as plain Rust values, so the two majors never meet.

#[cfg(feature = "ballista")]
pub mod cluster;
#[cfg(feature = "ballista")]
pub mod job;
#[cfg(feature = "ballista")]
pub mod linkage;
#[cfg(feature = "ballista")]
pub mod postings;
#[cfg(feature = "ballista")]
pub mod register;
#[cfg(feature = "ballista")]
pub mod seal;
#[cfg(feature = "ballista")]
mod tables;
#[cfg(feature = "ballista")]
pub mod tls;
#[cfg(feature = "ballista")]
pub mod udf;

use std::fmt;
use std::path::PathBuf;

/// Where the batch work runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// In this process, without DataFusion (the default).
    Embedded,
    /// DataFusion in this process, with the plans a cluster runs (for tests and one large machine).
    DataFusion,
    /// A Ballista cluster: its scheduler's host and port.
    Ballista {
        /// Scheduler host.
        host: String,
        /// Scheduler port.
        port: u16,
    },
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Engine::Embedded => write!(f, "embedded"),
            Engine::DataFusion => write!(f, "datafusion"),
            Engine::Ballista { host, port } => write!(f, "ballista://{host}:{port}"),
        }
    }
}

/// What can go wrong choosing or running an engine.
#[derive(Debug, thiserror::Error)]
pub enum DistributedError {
    /// The engine address is not one this build understands.
    #[error("engine `{given}`: {reason}")]
    Address {
        /// The address as given.
        given: String,
        /// Why it is refused.
        reason: String,
    },
    /// The engine is not built in.
    #[error("engine `{0}` needs a build with the cargo feature `distributed` (cargo build --release --features distributed)")]
    NotBuilt(String),
    /// TLS material missing, unreadable or refused.
    #[error("cluster TLS: {0}")]
    Tls(String),
    /// The engine failed.
    #[error("engine: {0}")]
    Engine(String),
    /// A file of the work folder could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

#[cfg(feature = "ballista")]
impl DistributedError {
    /// A Ballista engine named without the driver's TLS material.
    pub(crate) fn tls_required() -> Self {
        DistributedError::Tls(
            "a Ballista cluster is reached only over mutual TLS: name the driver's certificate \
             folder (--engine-tls)"
                .into(),
        )
    }
}

impl Engine {
    /// Parses an engine address: `embedded`, `datafusion`, or `ballista://HOST:PORT` (a host name or
    /// address of letters, digits, `.`, `-` and `:` for IPv6 in brackets; a port from 1).
    pub fn parse(given: &str) -> Result<Engine, DistributedError> {
        let bad = |reason: &str| DistributedError::Address {
            given: given.chars().take(80).collect(),
            reason: reason.into(),
        };
        match given {
            "embedded" => return Ok(Engine::Embedded),
            "datafusion" => return Ok(Engine::DataFusion),
            _ => {}
        }
        let rest = given
            .strip_prefix("ballista://")
            .ok_or_else(|| bad("expected `embedded`, `datafusion` or `ballista://HOST:PORT`"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("the scheduler's port is missing"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?;
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !host_ok {
            return Err(bad("the host is not a host name or an address"));
        }
        Ok(Engine::Ballista {
            host: host.to_string(),
            port,
        })
    }

    /// Whether this build can run the engine.
    pub fn available(&self) -> bool {
        matches!(self, Engine::Embedded) || cfg!(feature = "ballista")
    }

    /// Fails when this build cannot run the engine.
    pub fn check_available(&self) -> Result<(), DistributedError> {
        if self.available() {
            Ok(())
        } else {
            Err(DistributedError::NotBuilt(self.to_string()))
        }
    }
}

/// The linkage's pair engine for `engine`: none for the embedded default; the job's encrypted files
/// go under `work` (the same path on every executor) in `partitions` files per side. A Ballista
/// cluster needs the driver's TLS folder `tls` (see [`tls`]).
pub fn pair_engine(
    engine: &Engine,
    tls: Option<&std::path::Path>,
    work: &std::path::Path,
    partitions: usize,
) -> Result<Option<Box<dyn tokumei_linkage::PairEngine>>, DistributedError> {
    engine.check_available()?;
    if *engine == Engine::Embedded {
        return Ok(None);
    }
    #[cfg(feature = "ballista")]
    {
        let target = target(engine, tls, work, partitions)?;
        Ok(Some(Box::new(linkage::DistributedPairs::new(target))))
    }
    #[cfg(not(feature = "ballista"))]
    {
        let _ = (tls, work, partitions);
        Err(DistributedError::NotBuilt(engine.to_string()))
    }
}

/// Where a job on `engine` (not the embedded one) runs: TLS material required for a cluster.
#[cfg(feature = "ballista")]
fn target(
    engine: &Engine,
    tls: Option<&std::path::Path>,
    work: &std::path::Path,
    partitions: usize,
) -> Result<job::Target, DistributedError> {
    let target = job::Target::new(engine.clone(), work, partitions)?;
    match (engine, tls) {
        (Engine::Ballista { .. }, None) => Err(DistributedError::tls_required()),
        (_, Some(dir)) => Ok(target.with_tls(tls::ClusterTls::load(dir)?)),
        _ => Ok(target),
    }
}

/// The re-identification battery's register counts on `engine`: none for the embedded default;
/// otherwise as [`pair_engine`].
pub fn register_engine(
    engine: &Engine,
    tls: Option<&std::path::Path>,
    work: &std::path::Path,
    partitions: usize,
) -> Result<Option<tokumei_model::register::SharedEngine>, DistributedError> {
    engine.check_available()?;
    if *engine == Engine::Embedded {
        return Ok(None);
    }
    #[cfg(feature = "ballista")]
    {
        let target = target(engine, tls, work, partitions)?;
        let counts = register::DistributedRegister::new(target);
        Ok(Some(tokumei_model::register::SharedEngine(
            std::sync::Arc::new(counts),
        )))
    }
    #[cfg(not(feature = "ballista"))]
    {
        let _ = (tls, work, partitions);
        Err(DistributedError::NotBuilt(engine.to_string()))
    }
}

/// The feasibility code index's postings on `engine`: none for the embedded default; otherwise as
/// [`pair_engine`].
pub fn postings_engine(
    engine: &Engine,
    tls: Option<&std::path::Path>,
    work: &std::path::Path,
    partitions: usize,
) -> Result<Option<tokumei_model::postings::SharedPostings>, DistributedError> {
    engine.check_available()?;
    if *engine == Engine::Embedded {
        return Ok(None);
    }
    #[cfg(feature = "ballista")]
    {
        let target = target(engine, tls, work, partitions)?;
        let postings = postings::DistributedPostings::new(target);
        Ok(Some(tokumei_model::postings::SharedPostings(
            std::sync::Arc::new(postings),
        )))
    }
    #[cfg(not(feature = "ballista"))]
    {
        let _ = (tls, work, partitions);
        Err(DistributedError::NotBuilt(engine.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_or_are_refused() {
        assert_eq!(Engine::parse("embedded").unwrap(), Engine::Embedded);
        assert_eq!(Engine::parse("datafusion").unwrap(), Engine::DataFusion);
        assert_eq!(
            Engine::parse("ballista://sched.local:50050").unwrap(),
            Engine::Ballista {
                host: "sched.local".into(),
                port: 50050
            }
        );
        for bad in [
            "",
            "spark://x:1",
            "ballista://x",
            "ballista://:50050",
            "ballista://x:0",
            "ballista://x:99999",
            "ballista://a/b:1",
            "ballista://a b:1",
        ] {
            assert!(Engine::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Engine::parse("ballista://h:7").unwrap().to_string(),
            "ballista://h:7"
        );
    }

    #[test]
    fn availability_follows_the_feature() {
        assert!(Engine::Embedded.available());
        assert_eq!(Engine::DataFusion.available(), cfg!(feature = "ballista"));
        let err = Engine::DataFusion.check_available();
        assert_eq!(err.is_err(), !cfg!(feature = "ballista"));
    }
}
