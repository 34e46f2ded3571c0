//! The distributed linkage gives the embedded run's output byte for byte: on DataFusion in this
//! process, and on a local Ballista cluster of a scheduler and two executors (processes of this
//! crate's binaries), on FEBRL-style tasks and on a synthetic region's identity records under the
//! shipped Japanese settings (what `tokumei link` runs). An executor killed in the middle of a stage
//! never yields a partial result.
#![cfg(feature = "ballista")]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokumei_distributed::linkage::DistributedPairs;
use tokumei_distributed::tls::ClusterTls;
use tokumei_distributed::Engine;
use tokumei_linkage::{link_with_engine, sample, Dataset, LinkOutput, PairEngine, Settings};
use tokumei_model::identity::IdentityRecord;

fn settings(file: &str) -> Settings {
    let path = format!(
        "{}/../../settings/linkage/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    // Small limits, so that common names make skipped blocks and large blocks are salted.
    let text = std::fs::read_to_string(path).expect("settings")
        + "\n[limits]\nmax_block_pairs = 100\nsplit_block_pairs = 20\n";
    Settings::parse(&text, file).expect("parse")
}

fn bytes(out: &LinkOutput) -> (Vec<u8>, Vec<u8>, String) {
    let (mut p, mut c) = (Vec::new(), Vec::new());
    out.write_pairs(&mut p).expect("pairs");
    out.write_clusters(&mut c).expect("clusters");
    (p, c, format!("{:?} {:?}", out.model, out.blocking))
}

struct Task {
    settings: Settings,
    left: Dataset,
    right: Option<Dataset>,
}

fn tasks() -> Vec<Task> {
    let (l, r) = sample::link_rows(300, 9);
    vec![
        Task {
            settings: settings("febrl_dedupe.toml"),
            left: sample::table("dedupe", &sample::dedupe_rows(400, 200, 5)),
            right: None,
        },
        Task {
            settings: settings("febrl.toml"),
            left: sample::table("left", &l),
            right: Some(sample::table("right", &r)),
        },
    ]
}

fn run(
    engine: Option<&dyn PairEngine>,
    t: &Task,
) -> Result<LinkOutput, tokumei_linkage::LinkageError> {
    link_with_engine(engine, &t.settings, &t.left, t.right.as_ref(), None, &[])
}

fn assert_same(engine: &dyn PairEngine) {
    for t in tasks() {
        let embedded = run(None, &t).expect("embedded");
        assert!(embedded.blocking.iter().any(|r| r.skipped_blocks > 0) || t.right.is_some());
        let other = run(Some(engine), &t).expect("distributed");
        assert_eq!(bytes(&embedded), bytes(&other), "{}", engine.name());
    }
}

#[test]
fn datafusion_in_process_gives_the_embedded_output() {
    let work = tempfile::tempdir().expect("work");
    for partitions in [1, 3] {
        let engine =
            DistributedPairs::new(Engine::DataFusion, work.path(), partitions).expect("engine");
        assert_same(&engine);
    }
    // The job's files are gone.
    assert_eq!(std::fs::read_dir(work.path()).expect("dir").count(), 0);
}

/// A free port on loopback.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn wait_for(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scheduler and executors, killed when dropped.
struct Cluster {
    port: u16,
    children: Vec<Child>,
    _shm: tempfile::TempDir,
    /// The cluster's TLS material: a folder per node (`scheduler`, `executor-N`, `driver`).
    tls: tempfile::TempDir,
}

impl Cluster {
    /// Pairs found on this cluster, job files under `work`, four partitions, five minutes at most.
    fn engine(&self, work: &Path) -> DistributedPairs {
        let engine = Engine::Ballista {
            host: "localhost".into(),
            port: self.port,
        };
        DistributedPairs::new(engine, work, 4)
            .expect("engine")
            .with_timeout(Duration::from_secs(300))
            .with_tls(ClusterTls::load(&self.node("driver")).expect("driver's TLS"))
    }

    fn node(&self, name: &str) -> PathBuf {
        self.tls.path().join("tls").join(name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Memory for the executors' shuffle files (tmpfs where the machine has it).
fn shm() -> (tempfile::TempDir, bool) {
    match tempfile::tempdir_in("/dev/shm") {
        Ok(d) if tokumei_distributed::cluster::on_tmpfs(d.path()) => (d, false),
        _ => (tempfile::tempdir().expect("tmp"), true),
    }
}

/// The TLS material of a scheduler, `executors` executors and a driver, in `DIR/tls/<node>`.
fn issue_tls(executors: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tls");
    let mut nodes = vec!["scheduler".to_string(), "driver".to_string()];
    nodes.extend((0..executors).map(|n| format!("executor-{n}")));
    tokumei_distributed::tls::issue(&dir.path().join("tls"), &nodes).expect("issue");
    dir
}

fn executor(
    port: u16,
    shm: &Path,
    on_disk: bool,
    n: usize,
    fault: Option<&str>,
    tls: &Path,
) -> Child {
    let (flight, grpc) = (free_port(), free_port());
    let dir: PathBuf = shm.join(format!("executor{n}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokumei-executor"));
    cmd.args(["--scheduler-port", &port.to_string()])
        .args([
            "--port",
            &flight.to_string(),
            "--grpc-port",
            &grpc.to_string(),
        ])
        .args(["--concurrent-tasks", "2", "--work-dir"])
        .arg(&dir)
        .arg("--tls")
        .arg(tls)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if on_disk {
        cmd.arg("--work-dir-on-disk");
    }
    if let Some(point) = fault {
        cmd.env("TOKUMEI_FAULT_POINT", point);
    }
    let child = cmd.spawn().expect("executor");
    wait_for(flight);
    child
}

fn cluster(faults: &[Option<&str>]) -> Cluster {
    let port = free_port();
    let tls = issue_tls(faults.len());
    let node = |name: &str| tls.path().join("tls").join(name);
    let scheduler = Command::new(env!("CARGO_BIN_EXE_tokumei-scheduler"))
        .args(["--port", &port.to_string(), "--executor-timeout", "15"])
        .arg("--tls")
        .arg(node("scheduler"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("scheduler");
    wait_for(port);
    let (dir, on_disk) = shm();
    let mut children = vec![scheduler];
    for (n, fault) in faults.iter().enumerate() {
        let own = node(&format!("executor-{n}"));
        children.push(executor(port, dir.path(), on_disk, n, *fault, &own));
    }
    Cluster {
        port,
        children,
        _shm: dir,
        tls,
    }
}

#[test]
fn a_local_cluster_of_two_executors_gives_the_embedded_output() {
    let c = cluster(&[None, None]);
    let work = tempfile::tempdir().expect("work");
    let engine = c.engine(work.path());
    assert_same(&engine);
}

/// Every identity record of a synthetic region of `people` persons (each provider's canonical
/// identity table), in the order `tokumei link` reads the vault's.
fn region_identities(people: u64) -> Vec<IdentityRecord> {
    let dir = tempfile::tempdir().expect("region");
    let config = tokumei_synth::Config {
        people,
        seed: 11,
        out: dir.path().join("region"),
        ..Default::default()
    };
    tokumei_synth::generate(&config, &|_| {}).expect("synth");
    let mut providers: Vec<PathBuf> = std::fs::read_dir(config.out.join("sources"))
        .expect("sources")
        .map(|e| e.expect("entry").path())
        .collect();
    providers.sort();
    let mut records = Vec::new();
    for table in providers.iter().map(|p| p.join("identities.parquet")) {
        if table.exists() {
            records
                .extend(tokumei_synth::writer::read_table::<IdentityRecord>(&table).expect("read"));
        }
    }
    IdentityRecord::order_by_content(&mut records);
    records
}

/// The region's identities linked under the shipped Japanese settings, embedded and on a local
/// cluster of two executors: the same persons (clusters), pairs and model, byte for byte. The
/// region has `TOKUMEI_REGION_PEOPLE` persons (300 by default; BENCHMARKS.md has the same
/// comparison at 100,000 persons, through `tokumei linkage run`).
#[test]
fn a_region_links_the_same_on_a_cluster() {
    let people = std::env::var("TOKUMEI_REGION_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let identities = region_identities(people);
    let path = format!(
        "{}/../tokumei-link/settings/japanese.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).expect("settings");
    let settings = Settings::parse(&text, "japanese.toml").expect("parse");
    let data = Dataset::of_records("vault", &settings, &identities, IdentityRecord::column_text)
        .expect("dataset");
    let link = |engine: Option<&dyn PairEngine>| {
        let t0 = Instant::now();
        let out = link_with_engine(engine, &settings, &data, None, None, &[]).expect("link");
        let name = engine.map_or("embedded".into(), |e| e.name());
        eprintln!("{name}: {:.1} s", t0.elapsed().as_secs_f64());
        out
    };
    let embedded = link(None);
    // Persons have many records each, and some records are only probably theirs.
    assert!(embedded.cluster_count * 3 < identities.len());
    assert!(embedded.pairs.iter().any(|p| !p.deterministic));
    let c = cluster(&[None, None]);
    let work = tempfile::tempdir().expect("work");
    let engine = c
        .engine(work.path())
        .with_timeout(Duration::from_secs(4 * 3600));
    let distributed = link(Some(&engine));
    assert_eq!(bytes(&embedded), bytes(&distributed));
    eprintln!(
        "{people} persons, {} identity records, {} candidate pairs, {} persons found",
        identities.len(),
        embedded.candidates,
        embedded.cluster_count
    );
}

#[test]
fn the_cluster_admits_only_nodes_of_its_authority() {
    let c = cluster(&[None]);
    let engine = Engine::Ballista {
        host: "localhost".into(),
        port: c.port,
    };
    let t = &tasks()[0];
    // Without TLS material the driver does not even try.
    let work = tempfile::tempdir().expect("work");
    let bare = DistributedPairs::new(engine.clone(), work.path(), 4).expect("engine");
    let err = run(Some(&bare), t).expect_err("no TLS").to_string();
    assert!(err.contains("mutual TLS"), "{err}");
    // A driver whose certificate another authority signed is refused by the scheduler, and so is
    // one that presents none; nothing comes back and the job folder is gone.
    let foreign = issue_tls(0);
    let stranger = ClusterTls::load(&foreign.path().join("tls").join("driver")).expect("tls");
    let engine2 = DistributedPairs::new(engine, work.path(), 4)
        .expect("engine")
        .with_timeout(Duration::from_secs(120))
        .with_tls(stranger);
    assert!(run(Some(&engine2), t).is_err());
    assert_eq!(std::fs::read_dir(work.path()).expect("dir").count(), 0);
    // The cluster's own driver is served.
    assert!(run(Some(&c.engine(work.path())), t).is_ok());
}

/// The scheduler takes an executor that stopped polling for lost after 15 s (`--executor-timeout`)
/// and runs its tasks, and the stages whose shuffle output it held, again on the sound one; a query
/// whose answer comes back broken runs again. The job ends whole, the same as the embedded run.
#[test]
fn an_executor_killed_mid_stage_never_yields_a_partial_result() {
    // The first executor aborts as soon as it computes levels; the second is sound.
    let mut c = cluster(&[Some("executor.levels"), None]);
    let work = tempfile::tempdir().expect("work");
    let engine = c.engine(work.path());
    let t = &tasks()[0];
    let embedded = run(None, t).expect("embedded");
    let outcome = run(Some(&engine), t);
    let killed = c.children[1].try_wait().expect("status");
    assert!(killed.is_some(), "the faulty executor died");
    let out = outcome.expect("the lost executor's stage ran again on the sound one");
    assert_eq!(bytes(&embedded), bytes(&out));
}

/// Runs the tasks against the cluster at `TOKUMEI_TEST_CLUSTER` (a port on localhost), for looking at a
/// cluster's logs by hand.
#[test]
#[ignore]
fn against_a_running_cluster() {
    let port: u16 = std::env::var("TOKUMEI_TEST_CLUSTER")
        .expect("port")
        .parse()
        .expect("port");
    let tls = std::env::var("TOKUMEI_TEST_CLUSTER_TLS").expect("the driver's TLS folder");
    let work = tempfile::tempdir().expect("work");
    let engine = Engine::Ballista {
        host: "localhost".into(),
        port,
    };
    let engine = DistributedPairs::new(engine, work.path(), 4)
        .expect("engine")
        .with_tls(ClusterTls::load(Path::new(&tls)).expect("tls"));
    assert_same(&engine);
}
