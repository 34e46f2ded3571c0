//! The distributed linkage and the re-identification battery's register counts give the embedded
//! run's output exactly: on DataFusion in this process, and on a local Ballista cluster of a
//! scheduler and two executors (processes of this crate's binaries), on FEBRL-style tasks, on a
//! synthetic region's identity records under the shipped Japanese settings (what `tokumei link`
//! runs), on a synthetic register against coarse and fine releases, and on the feasibility code
//! index's (person, term) rows. An executor killed in the middle of a stage never yields a partial
//! result.
#![cfg(feature = "ballista")]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokumei_distributed::job::Target;
use tokumei_distributed::linkage::DistributedPairs;
use tokumei_distributed::postings::DistributedPostings;
use tokumei_distributed::register::DistributedRegister;
use tokumei_distributed::tls::ClusterTls;
use tokumei_distributed::Engine;
use tokumei_linkage::{link_with_engine, sample, Dataset, LinkOutput, PairEngine, Settings};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::postings::{self, PostingsEngine};
use tokumei_model::register::{
    self, ClassFinder, RegisterCounts, RegisterEngine, RegisterJob, RegisterPerson,
};

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
    let rest = format!(
        "{:?} {:?} {:?} {:?} {} {} {}",
        out.model,
        out.blocking,
        out.histogram,
        out.cluster_stats,
        out.candidates,
        out.matches,
        out.review
    );
    (p, c, rest)
}

/// Asserts that two linkage outputs are the same, saying which part differs (pairs, clusters or the
/// figures, printed whole) rather than dumping every byte.
fn assert_same_output(embedded: &LinkOutput, other: &LinkOutput, what: &str) {
    let (a, b) = (bytes(embedded), bytes(other));
    assert!(
        a.0 == b.0,
        "{what}: the pairs differ ({} and {} bytes)",
        a.0.len(),
        b.0.len()
    );
    assert!(a.1 == b.1, "{what}: the clusters differ");
    assert_eq!(a.2, b.2, "{what}: the figures differ");
}

/// Asserts that two sets of postings are the same, naming the first term that differs.
fn assert_same_sets(embedded: &[roaring::RoaringBitmap], other: &[roaring::RoaringBitmap]) {
    assert_eq!(embedded.len(), other.len(), "terms");
    if let Some(t) = (0..embedded.len()).find(|t| embedded[*t] != other[*t]) {
        panic!(
            "term {t}: {} persons embedded, {} on the engine, {} in common",
            embedded[t].len(),
            other[t].len(),
            (&embedded[t] & &other[t]).len()
        );
    }
}

/// Asserts that two register counts are the same, naming the first class or score that differs.
fn assert_same_counts_of(embedded: &RegisterCounts, other: &RegisterCounts) {
    let (a, b) = (&embedded.groups, &other.groups);
    assert_eq!(a.len(), b.len(), "classes");
    if let Some(i) = (0..a.len()).find(|i| a[*i] != b[*i]) {
        panic!(
            "class {i}: {} persons embedded, {} on the engine (totals {} and {})",
            a[i],
            b[i],
            a.iter().sum::<u64>(),
            b.iter().sum::<u64>()
        );
    }
    assert_eq!(embedded.scores, other.scores, "the scores differ");
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
        assert_same_output(&embedded, &other, &engine.name());
    }
}

#[test]
fn datafusion_in_process_gives_the_embedded_output() {
    let work = tempfile::tempdir().expect("work");
    // Trained and scored on the engine (the default), then every pair back to the driver.
    for (partitions, scored) in [(3, true), (1, false)] {
        let target = Target::new(Engine::DataFusion, work.path(), partitions).expect("target");
        let engine = DistributedPairs::new(target);
        assert_same(&if scored { engine } else { engine.pairs_only() });
    }
    // The job's files are gone.
    assert_eq!(std::fs::read_dir(work.path()).expect("dir").count(), 0);
}

/// A register of `n` persons (seeded), and the releases of every third of them: coarse (sex, age
/// band, prefecture) and fine (sex, birth month, municipality, some blanks).
struct Releases {
    register: Vec<RegisterPerson>,
    members: Vec<bool>,
    finders: Vec<(ClassFinder, Vec<u64>)>,
}

fn releases(n: u64) -> Releases {
    let mut state = 0x5eed_u64;
    let mut next = move |m: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % m
    };
    let first = chrono::NaiveDate::from_ymd_opt(1930, 1, 1).expect("date");
    let register: Vec<RegisterPerson> = (0..n)
        .map(|i| RegisterPerson {
            id: format!("p{i}"),
            sex: (next(50) > 0).then(|| if next(2) == 0 { "M" } else { "F" }.to_string()),
            birth: first.checked_add_days(chrono::Days::new(next(365 * 90))),
            municipality: Some(format!("{:02}{:04}", 1 + next(3), 10 * next(12))),
        })
        .collect();
    let members: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
    let end = chrono::NaiveDate::from_ymd_opt(2024, 3, 31).expect("date");
    let coarse = move |p: &RegisterPerson| {
        let age = p.birth.map(|b| tokumei_model::age_on(b, end) / 10 * 10);
        vec![
            p.sex.clone(),
            age.map(|a| format!("{a}-{}", a + 9)),
            p.municipality.as_ref().map(|m| m[..2].to_string()),
        ]
    };
    let fine = |p: &RegisterPerson| {
        vec![
            p.sex.clone(),
            p.birth.map(|b| b.format("%Y-%m").to_string()),
            p.municipality.clone().filter(|m| !m.ends_with("0110")),
        ]
    };
    let mut finders = Vec::new();
    type Released<'a> = dyn Fn(&RegisterPerson) -> Vec<Option<String>> + 'a;
    let kinds: [(&[&str], &Released); 2] = [
        (&["sex", "age", "prefecture"], &coarse),
        (&["sex", "birth_year_month", "municipality"], &fine),
    ];
    for (columns, release) in kinds {
        let mut classes: std::collections::BTreeMap<Vec<Option<String>>, u64> = Default::default();
        for (p, _) in register.iter().zip(&members).filter(|(_, m)| **m) {
            *classes.entry(release(p)).or_default() += 1;
        }
        let (classes, sizes): (Vec<_>, Vec<_>) = classes.into_iter().unzip();
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        finders.push((ClassFinder::new(&columns, classes, end), sizes));
    }
    Releases {
        register,
        members,
        finders,
    }
}

/// Every release's register counts on `engine` are the embedded ones, with and without members.
fn assert_same_counts(engine: &dyn RegisterEngine) {
    let r = releases(3000);
    for (finder, release) in &r.finders {
        for members in [Some(&r.members[..]), None] {
            let job = RegisterJob {
                finder,
                release,
                register: &r.register,
                members,
            };
            let embedded = register::counts(&job);
            assert!(embedded.groups.iter().any(|g| *g > 1));
            assert_same_counts_of(&embedded, &engine.counts(&job).expect("counts"));
        }
    }
}

#[test]
fn register_counts_on_datafusion_in_process_are_the_embedded_ones() {
    let work = tempfile::tempdir().expect("work");
    let target = Target::new(Engine::DataFusion, work.path(), 3).expect("target");
    assert_same_counts(&DistributedRegister::new(target));
    assert_eq!(std::fs::read_dir(work.path()).expect("dir").count(), 0);
}

/// (person, term) rows as a population's events give them (seeded): persons over several chunks of
/// positions, terms of skewed frequency, a person holding a term more than once, and the last terms
/// held by nobody.
fn posting_rows() -> (u32, Vec<(u32, u32)>) {
    let mut state = 0x1dea_u64;
    let mut next = move |m: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % m) as u32
    };
    let rows = (0..150_000)
        .map(|_| {
            let term = next(8).min(next(64));
            (next(300_000), term)
        })
        .collect();
    (70, rows)
}

/// The postings built on `engine` are the embedded ones, and an input without rows gives none.
fn assert_same_postings(engine: &dyn PostingsEngine) {
    let (terms, rows) = posting_rows();
    let embedded = postings::postings(terms, &mut rows.iter().copied()).expect("embedded");
    let chunk = |p: Option<u32>| p.map(|p| p >> 16);
    assert!(chunk(embedded[0].max()) > chunk(embedded[0].min()));
    let distinct: u64 = embedded.iter().map(roaring::RoaringBitmap::len).sum();
    assert!(embedded[69].is_empty() && distinct < rows.len() as u64);
    let got = engine
        .postings(terms, &mut rows.iter().copied())
        .expect("postings");
    assert_same_sets(&embedded, &got);
    let none = engine.postings(3, &mut std::iter::empty()).expect("empty");
    assert_eq!(none, vec![roaring::RoaringBitmap::new(); 3]);
    assert!(engine.postings(3, &mut [(1, 3)].into_iter()).is_err());
}

#[test]
fn postings_on_datafusion_in_process_are_the_embedded_ones() {
    let work = tempfile::tempdir().expect("work");
    let target = Target::new(Engine::DataFusion, work.path(), 3).expect("target");
    assert_same_postings(&DistributedPostings::new(target));
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
    /// Jobs on this cluster, job files under `work`, four partitions, `limit` at most.
    fn target(&self, work: &Path, limit: Duration) -> Target {
        let engine = Engine::Ballista {
            host: "localhost".into(),
            port: self.port,
        };
        Target::new(engine, work, 4)
            .expect("target")
            .with_timeout(limit)
            .with_tls(ClusterTls::load(&self.node("driver")).expect("driver's TLS"))
    }

    /// Pairs found on this cluster, job files under `work`, four partitions, five minutes at most.
    fn engine(&self, work: &Path) -> DistributedPairs {
        DistributedPairs::new(self.target(work, Duration::from_secs(300)))
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
    let counts = DistributedRegister::new(c.target(work.path(), Duration::from_secs(300)));
    assert_same_counts(&counts);
    let postings = DistributedPostings::new(c.target(work.path(), Duration::from_secs(300)));
    assert_same_postings(&postings);
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
    let engine = DistributedPairs::new(c.target(work.path(), Duration::from_secs(4 * 3600)));
    let distributed = link(Some(&engine));
    assert_same_output(&embedded, &distributed, "region");
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
    let bare = DistributedPairs::new(Target::new(engine.clone(), work.path(), 4).expect("target"));
    let err = run(Some(&bare), t).expect_err("no TLS").to_string();
    assert!(err.contains("mutual TLS"), "{err}");
    // A driver whose certificate another authority signed is refused by the scheduler, and so is
    // one that presents none; nothing comes back and the job folder is gone.
    let foreign = issue_tls(0);
    let stranger = ClusterTls::load(&foreign.path().join("tls").join("driver")).expect("tls");
    let engine2 = DistributedPairs::new(
        Target::new(engine, work.path(), 4)
            .expect("target")
            .with_timeout(Duration::from_secs(120))
            .with_tls(stranger),
    );
    assert!(run(Some(&engine2), t).is_err());
    assert_eq!(std::fs::read_dir(work.path()).expect("dir").count(), 0);
    // The cluster's own driver is served.
    assert!(run(Some(&c.engine(work.path())), t).is_ok());
}

/// The scheduler takes an executor that stopped polling for lost after 15 s (`--executor-timeout`)
/// and runs its tasks, and the stages whose shuffle output it held, again on the sound ones; a query
/// whose answer comes back broken runs again. Each job ends whole, the same as the embedded run: a
/// linkage that loses an executor computing levels (as it counts the pairs by class) and another
/// choosing the pairs the model keeps, register counts that lose a third, and the code index's
/// postings a fourth.
#[test]
fn an_executor_killed_mid_stage_never_yields_a_partial_result() {
    let faults = [
        Some("executor.levels"),
        Some("executor.keep"),
        Some("executor.register"),
        Some("executor.persons"),
        None,
    ];
    let mut c = cluster(&faults);
    let work = tempfile::tempdir().expect("work");
    let engine = c.engine(work.path());
    let t = &tasks()[0];
    let embedded = run(None, t).expect("embedded");
    let outcome = run(Some(&engine), t);
    for (n, what) in [(1, "counting"), (2, "keeping")] {
        let killed = c.children[n].try_wait().expect("status");
        assert!(killed.is_some(), "the executor faulty in {what} died");
    }
    let out = outcome.expect("the lost executors' stages ran again on sound ones");
    assert_same_output(&embedded, &out, "killed");
    let r = releases(3000);
    let (finder, release) = &r.finders[0];
    let job = RegisterJob {
        finder,
        release,
        register: &r.register,
        members: Some(&r.members),
    };
    let counts = DistributedRegister::new(c.target(work.path(), Duration::from_secs(300)));
    let embedded = register::counts(&job);
    until_killed(&mut c, 3, "the register counts", || {
        let outcome = counts.counts(&job).expect("counted again");
        assert_same_counts_of(&embedded, &outcome);
    });
    let (terms, rows) = posting_rows();
    let engine = DistributedPostings::new(c.target(work.path(), Duration::from_secs(300)));
    let embedded = postings::postings(terms, &mut rows.iter().copied()).expect("embedded");
    until_killed(&mut c, 4, "the postings", || {
        let outcome = engine.postings(terms, &mut rows.iter().copied());
        assert_same_sets(&embedded, &outcome.expect("built again"));
    });
}

/// Runs `job` (which checks its outcome) until the executor at `children[n]`, faulty in `what`, has
/// died, at most four times: which executors take a stage's tasks is the scheduler's choice (they
/// pull them), so a small job may run whole on the others.
fn until_killed(c: &mut Cluster, n: usize, what: &str, mut job: impl FnMut()) {
    for _ in 0..4 {
        job();
        if c.children[n].try_wait().expect("status").is_some() {
            return;
        }
    }
    panic!("the executor faulty in {what} never took one of its tasks");
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
    let engine = DistributedPairs::new(
        Target::new(engine, work.path(), 4)
            .expect("target")
            .with_tls(ClusterTls::load(Path::new(&tls)).expect("tls")),
    );
    assert_same(&engine);
}
