//! Benchmark: search and whole-process time on Adult (k = 5, suppression 0 % and 5 %, Loss) and on synthetic
//! rows made by `bench/anonymize/make_synth.py` (k = 5, 5 %).
//!
//! ```text
//! cargo run --release -p tokumei-anonymize --example adult_bench [-- --synth PATH.csv] [--repeat N]
//! ```
//!
//! "search" is the lattice search alone (data already encoded); "process" is reading the CSV and the
//! hierarchies, encoding, searching, writing the output CSV and the report to a temporary directory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokumei_anonymize::{Anonymizer, Config, Hierarchy, Metric, PrivacyModel, Table};

const QIS: [&str; 9] = [
    "sex",
    "age",
    "race",
    "marital-status",
    "education",
    "native-country",
    "workclass",
    "occupation",
    "salary-class",
];

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/adult")
}

fn read_table(path: &Path) -> Table {
    if path.extension().is_some_and(|e| e == "gz") {
        let f = std::fs::File::open(path).expect("open");
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(f)
            .read_to_end(&mut text)
            .expect("gunzip");
        Table::read_csv_bytes(&text, b';', "adult.csv").expect("parse")
    } else {
        Table::read(path).expect("read").0
    }
}

fn config(limit: f64) -> Config {
    let mut c = Config::default();
    for a in QIS {
        let h = Hierarchy::read_arx_csv(&data_dir().join(format!("adult_hierarchy_{a}.csv")))
            .expect("hierarchy");
        c = c.qi(a, h);
    }
    c.model(PrivacyModel::KAnonymity { k: 5 })
        .suppression(limit)
        .metric(Metric::default())
}

fn run(label: &str, path: &Path, limit: f64, repeat: usize) {
    let mut search_ms = Vec::new();
    let mut process_ms = Vec::new();
    let mut line = String::new();
    for _ in 0..repeat {
        let t0 = Instant::now();
        let table = read_table(path);
        let cfg = config(limit);
        let a = Anonymizer::new(&table, &cfg).expect("config");
        let t1 = Instant::now();
        let (levels, score, stats) = a.search().expect("solution");
        search_ms.push(t1.elapsed().as_secs_f64() * 1e3);
        let out = a.apply(&levels).expect("apply");
        let dir = tempfile::tempdir().expect("tmp");
        out.output
            .write_csv(&dir.path().join("out.csv"), b';')
            .expect("write");
        std::fs::write(
            dir.path().join("report.json"),
            serde_json::to_vec_pretty(&out.report).expect("json"),
        )
        .expect("write report");
        process_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        line = format!(
            "rows {} tuples {} optimum {:?} loss {:.6} suppressed {} classes {} evaluated {}/{}",
            table.rows(),
            a.distinct_tuples(),
            levels,
            score.scalar(),
            out.report.suppressed_records,
            out.report.classes,
            stats.evaluated,
            stats.lattice_nodes
        );
    }
    let range = |v: &[f64]| {
        let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = v.iter().cloned().fold(0.0, f64::max);
        format!("{min:.1}–{max:.1} ms")
    };
    println!(
        "{label}: search {} | process {} | {line}",
        range(&search_ms),
        range(&process_ms)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut synth: Option<PathBuf> = None;
    let mut repeat = 5usize;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--synth" => {
                synth = args.get(i + 1).map(PathBuf::from);
                i += 1;
            }
            "--repeat" => {
                repeat = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(5);
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    let adult = data_dir().join("adult.csv.gz");
    run("adult k=5 0%", &adult, 0.0, repeat);
    run("adult k=5 5%", &adult, 0.05, repeat);
    if let Some(p) = synth {
        run("synthetic k=5 5%", &p, 0.05, repeat.min(3));
    }
}
