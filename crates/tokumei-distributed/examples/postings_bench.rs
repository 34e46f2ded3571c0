//! The feasibility code index's postings built in this process and on DataFusion in this process:
//! `cargo run --release -p tokumei-distributed --features ballista --example postings_bench --
//! PERSONS EVENTS_PER_PERSON [PARTITIONS=8] [TERMS=2000]`. Rows are (person, term) with terms drawn
//! Zipf-like (seed 7), as a population's (code, year) terms are; both engines must give the same
//! bitmaps. Prints the rows, the time of each engine and their bitmaps' serialized size.
//! `TOKUMEI_ENGINE=ballista://HOST:PORT` and `TOKUMEI_ENGINE_TLS=DIR` (the driver's TLS folder) build
//! them on that cluster instead of DataFusion in this process (the job's files under the system's
//! temporary folder, which the executors must read).

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokumei_distributed::job::Target;
use tokumei_distributed::postings::DistributedPostings;
use tokumei_distributed::tls::ClusterTls;
use tokumei_distributed::Engine;
use tokumei_model::postings::{InProcess, PostingsEngine};

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn rows(persons: u64, per: u64, terms: u32) -> Vec<(u32, u32)> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut out = Vec::with_capacity((persons * per) as usize);
    for p in 0..persons as u32 {
        for _ in 0..per {
            // Zipf-like: the square of a uniform draw favours the first terms.
            let u: f64 = rng.random();
            out.push((p, ((u * u) * f64::from(terms)) as u32 % terms));
        }
    }
    out
}

fn main() {
    let (persons, per) = (arg(1, 1_000_000), arg(2, 40));
    let partitions = arg(3, 8) as usize;
    let terms = arg(4, 2000) as u32;
    let rows = rows(persons, per, terms);
    println!("{} rows, {persons} persons, {terms} terms", rows.len());
    let t = Instant::now();
    let here = InProcess
        .postings(terms, &mut rows.iter().copied())
        .unwrap_or_else(|e| panic!("{e}"));
    let bytes: usize = here.iter().map(|b| b.serialized_size()).sum();
    println!(
        "in process: {:.2} s, {:.1} MB of bitmaps",
        t.elapsed().as_secs_f64(),
        bytes as f64 / 1e6
    );
    let work = std::env::temp_dir().join("tokumei-postings-bench");
    let engine = std::env::var("TOKUMEI_ENGINE").unwrap_or_else(|_| "datafusion".into());
    let engine = Engine::parse(&engine).unwrap_or_else(|e| panic!("{e}"));
    let mut target =
        Target::new(engine.clone(), &work, partitions).unwrap_or_else(|e| panic!("{e}"));
    if let Ok(dir) = std::env::var("TOKUMEI_ENGINE_TLS") {
        let tls = ClusterTls::load(std::path::Path::new(&dir)).unwrap_or_else(|e| panic!("{e}"));
        target = target.with_tls(tls);
    }
    let t = Instant::now();
    let there = DistributedPostings::new(target)
        .postings(terms, &mut rows.iter().copied())
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{engine} ({partitions} partitions): {:.2} s, equal: {}",
        t.elapsed().as_secs_f64(),
        here == there
    );
    let _ = std::fs::remove_dir_all(&work);
}
