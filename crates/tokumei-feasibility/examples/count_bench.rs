//! Feasibility counts on a synthetic population held in memory: the full scan against the code
//! index (`tokumei_feasibility::index`), the same count from both.
//!
//! `cargo run --release -p tokumei-feasibility --example count_bench -- --persons 1000000
//! --events 40 --queries 30 --seed 7 [--parquet DIR]`
//!
//! With `--parquet DIR` the population is also written as `DIR/persons.parquet` (person, sex,
//! birth) and `DIR/events.parquet` (person, kind, code, date, value), for the same cohort in SQL
//! (`bench/feasibility/duckdb_count.py`).
//!
//! Persons get `--events` events each on average over three years: diagnoses from 200 ICD-10
//! codes, drugs from 300 codes and one laboratory item, drawn with Zipf-like weights; type 2
//! diabetes (E11) in about 8 % of persons, with metformin and HbA1c for most of them. The query has
//! three criteria and one time window: E11 as the index in 2022, aged 40–74, metformin within 90
//! days after the index, and no insulin in the year before.

use std::time::Instant;

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokumei_feasibility::evaluate::{count, Event, Facts, Kind, Population};
use tokumei_feasibility::index::Index;
use tokumei_feasibility::Definition;

const QUERY: &str = r#"
name = "bench"
[concept_sets]
t2dm = { icd10 = ["E11"] }
metformin = { drugs = ["3962002"] }
insulin = { drugs = ["2492"] }
[index]
concept = "t2dm"
from = "2022-01-01"
to = "2022-12-31"
[demographics]
age = { min = 40, max = 74 }
[[rules]]
name = "metformin within 90 days"
event = { concept = "metformin", window = { from = 0, to = 90 } }
[[rules]]
name = "no insulin in the year before"
not = { event = { concept = "insulin", window = { from = -365, to = -1 } } }
"#;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A Zipf-like pick among `n` (rank r with weight 1 / (r + 1)).
fn zipf(rng: &mut ChaCha8Rng, n: usize) -> usize {
    let u: f64 = rng.random();
    (((n as f64 + 1.0).powf(u) - 1.0) as usize).min(n - 1)
}

fn person(rng: &mut ChaCha8Rng, events: u64, start: NaiveDate) -> Facts {
    let icd: Vec<String> = (0..200)
        .map(|i| format!("{}{:02}", ["I", "J", "K", "M", "N"][i % 5], i / 5 + 10))
        .collect();
    let day = |rng: &mut ChaCha8Rng| start + chrono::Days::new(rng.random_range(0..1095));
    let n = rng.random_range(0..=2 * events);
    let mut out: Vec<Event> = (0..n)
        .map(|_| {
            if rng.random_bool(0.5) {
                let code = icd[zipf(rng, icd.len())].clone();
                Event {
                    kind: Kind::Diagnosis,
                    code,
                    date: day(rng),
                    value: None,
                }
            } else {
                let code = format!("{:07}F1020", 1_000_000 + zipf(rng, 300) * 7919);
                Event {
                    kind: Kind::Drug,
                    code,
                    date: day(rng),
                    value: None,
                }
            }
        })
        .collect();
    if rng.random_bool(0.08) {
        let at = day(rng);
        out.push(Event {
            kind: Kind::Diagnosis,
            code: "E119".into(),
            date: at,
            value: None,
        });
        if rng.random_bool(0.7) {
            let later = at + chrono::Days::new(rng.random_range(0..120));
            out.push(Event {
                kind: Kind::Drug,
                code: "3962002F1020".into(),
                date: later,
                value: None,
            });
        }
        if rng.random_bool(0.15) {
            out.push(Event {
                kind: Kind::Drug,
                code: "2492413G1020".into(),
                date: day(rng),
                value: None,
            });
        }
        let v = rng.random_range(55..110) as f64 / 10.0;
        out.push(Event {
            kind: Kind::Lab,
            code: "3D046000001906202".into(),
            date: at,
            value: Some(v),
        });
    }
    out.sort_by_key(|a| a.date);
    let observed = out.first().zip(out.last()).map(|(a, b)| (a.date, b.date));
    Facts {
        sex: Some(if rng.random_bool(0.5) { "F" } else { "M" }.into()),
        birth: NaiveDate::from_ymd_opt(rng.random_range(1930..2015), 6, 1),
        municipality: Some("022012".into()),
        death: None,
        providers: vec!["H01".into()],
        main_provider: Some("H01".into()),
        observed,
        events: out,
    }
}

fn write_parquet(
    dir: &std::path::Path,
    population: &Population,
) -> Result<(), Box<dyn std::error::Error>> {
    use arrow_array::{
        ArrayRef, Date32Array, Float64Array, RecordBatch, StringArray, UInt32Array, UInt8Array,
    };
    use std::sync::Arc;
    std::fs::create_dir_all(dir)?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let days = |d: NaiveDate| (d - epoch).num_days() as i32;
    let write =
        |name: &str, columns: Vec<(&str, ArrayRef)>| -> Result<(), Box<dyn std::error::Error>> {
            let batch = RecordBatch::try_from_iter(columns)?;
            let file = std::fs::File::create(dir.join(name))?;
            let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)?;
            w.write(&batch)?;
            w.close()?;
            Ok(())
        };
    let p = &population.persons;
    write(
        "persons.parquet",
        vec![
            (
                "person",
                Arc::new(UInt32Array::from_iter_values(0..p.len() as u32)) as ArrayRef,
            ),
            (
                "sex",
                Arc::new(StringArray::from_iter(p.iter().map(|f| f.sex.clone()))),
            ),
            (
                "birth",
                Arc::new(Date32Array::from_iter(p.iter().map(|f| f.birth.map(days)))),
            ),
        ],
    )?;
    let rows = p
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.events.iter().map(move |e| (i as u32, e)));
    let (mut person, mut kind, mut code, mut date, mut value) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, e) in rows {
        person.push(i);
        kind.push(e.kind as u8);
        code.push(e.code.clone());
        date.push(days(e.date));
        value.push(e.value);
    }
    write(
        "events.parquet",
        vec![
            ("person", Arc::new(UInt32Array::from(person)) as ArrayRef),
            ("kind", Arc::new(UInt8Array::from(kind))),
            ("code", Arc::new(StringArray::from(code))),
            ("date", Arc::new(Date32Array::from(date))),
            ("value", Arc::new(Float64Array::from(value))),
        ],
    )?;
    Ok(())
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let persons = arg("--persons", 100_000);
    let events = arg("--events", 40);
    let queries = arg("--queries", 30).max(1) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(arg("--seed", 7));
    let start = NaiveDate::from_ymd_opt(2021, 4, 1).unwrap_or_default();
    let t = Instant::now();
    let population = Population {
        persons: (0..persons)
            .map(|_| person(&mut rng, events, start))
            .collect(),
    };
    let n_events: usize = population.persons.iter().map(|p| p.events.len()).sum();
    println!(
        "population: {persons} persons, {n_events} events, generated in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let args: Vec<String> = std::env::args().collect();
    if let Some(dir) = args
        .iter()
        .position(|a| a == "--parquet")
        .and_then(|i| args.get(i + 1))
    {
        let t = Instant::now();
        write_parquet(std::path::Path::new(dir), &population)
            .unwrap_or_else(|e| panic!("parquet: {e}"));
        println!(
            "parquet written to {dir} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let def = Definition::parse(QUERY, false).unwrap_or_else(|e| panic!("query: {e}"));
    let mut scan_ms = Vec::new();
    let mut expected = None;
    for _ in 0..queries.min(5) {
        let t = Instant::now();
        let c = count(&def, &population);
        scan_ms.push(t.elapsed().as_secs_f64() * 1e3);
        expected = Some(c);
    }
    let t = Instant::now();
    let index = Index::build(population);
    let (bitmaps, bytes) = index.size();
    println!(
        "index: built in {:.1} s, {bitmaps} code bitmaps, {:.1} MB serialized",
        t.elapsed().as_secs_f64(),
        bytes as f64 / 1e6
    );
    let mut index_ms = Vec::new();
    for _ in 0..queries {
        let t = Instant::now();
        let c = index.count(&def);
        index_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(
            Some(&c),
            expected.as_ref(),
            "the index and the scan disagree"
        );
    }
    let total = expected.map(|c| c.total()).unwrap_or(0);
    println!(
        "count: {total} persons; scan p50 {:.1} ms p95 {:.1} ms ({} runs); index p50 {:.1} ms p95 {:.1} ms ({queries} runs)",
        percentile(&mut scan_ms.clone(), 0.5),
        percentile(&mut scan_ms, 0.95),
        queries.min(5),
        percentile(&mut index_ms.clone(), 0.5),
        percentile(&mut index_ms, 0.95),
    );
}
