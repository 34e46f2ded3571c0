//! Feasibility counts on a synthetic population held in memory: the full scan against the code
//! index (`tokumei_feasibility::index`), the same count from both.
//!
//! `cargo run --release -p tokumei-feasibility --example count_bench -- --persons 1000000
//! --events 40 --queries 30 --seed 7 [--parquet DIR]`, or `-- --region DIR --queries 30 [--parquet
//! DIR2]` for the canonical tables of a region that `tokumei synth` wrote, linked by its truth, or
//! `-- --from-parquet DIR2` for the population a `--region` run wrote (its sex, birth and events).
//!
//! With `--parquet DIR` the population is also written as `DIR/persons.parquet` (person, sex,
//! birth) and `DIR/events.parquet` (person, kind, code, date, value), for the same cohort in SQL
//! (`bench/feasibility/duckdb_count.py`).
//!
//! Persons get `--events` events each on average over three years: diagnoses from 200 ICD-10
//! codes, drugs from 300 codes and one laboratory item, drawn with Zipf-like weights; type 2
//! diabetes (E11) in about 8 % of persons, with metformin and HbA1c for most of them. The query has
//! three criteria and one time window: E11 as the index in 2022, aged 40–74, metformin within 90
//! days after the index, and no insulin in the year before. On a region: E11 as the index from
//! 2021-04 to 2023-12 (a diagnosis's date there is the start of care), aged 40–74, metformin (レセ電
//! or YJ code) within 90 days after, and no CKD (N18) in the year before.

use std::time::Instant;

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokumei_feasibility::evaluate::{count, Event, Facts, Kind, Population};
use tokumei_feasibility::index::Index;
use tokumei_feasibility::Definition;

#[path = "../tests/common/region.rs"]
mod region;

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

const REGION_QUERY: &str = include_str!("../tests/common/t2dm_region.toml");

/// The value of option `name`, if given.
fn text(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

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
                    code: code.into(),
                    date: day(rng),
                    value: None,
                }
            } else {
                let code = format!("{:07}F1020", 1_000_000 + zipf(rng, 300) * 7919);
                Event {
                    kind: Kind::Drug,
                    code: code.into(),
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
    let first = out.iter().map(|e| e.date).min();
    let observed = first.zip(out.iter().map(|e| e.date).max());
    let mut f = Facts {
        sex: Some(if rng.random_bool(0.5) { "F" } else { "M" }.into()),
        birth: NaiveDate::from_ymd_opt(rng.random_range(1930..2015), 6, 1),
        municipality: Some("022012".into()),
        death: None,
        providers: vec!["H01".into()],
        main_provider: Some("H01".into()),
        observed,
        events: out,
    };
    f.order_events();
    f
}

type Failure = Box<dyn std::error::Error>;

/// Writes one record batch of `columns` to `w`, opening the file at the first batch.
fn write_batch(
    w: &mut Option<parquet::arrow::ArrowWriter<std::fs::File>>,
    path: &std::path::Path,
    columns: Vec<(&str, arrow_array::ArrayRef)>,
) -> Result<(), Failure> {
    let batch = arrow_array::RecordBatch::try_from_iter(columns)?;
    if w.is_none() {
        let file = std::fs::File::create(path)?;
        *w = Some(parquet::arrow::ArrowWriter::try_new(
            file,
            batch.schema(),
            None,
        )?);
    }
    if let Some(w) = w.as_mut() {
        w.write(&batch)?;
    }
    Ok(())
}

fn days(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (d - epoch).num_days() as i32
}

/// The population as `DIR/persons.parquet` and `DIR/events.parquet`, events in batches of a
/// million rows.
fn write_parquet(dir: &std::path::Path, population: &Population) -> Result<(), Failure> {
    use arrow_array::{ArrayRef, Date32Array, Float64Array, StringArray, UInt32Array, UInt8Array};
    use std::sync::Arc;
    std::fs::create_dir_all(dir)?;
    let p = &population.persons;
    let mut w = None;
    write_batch(
        &mut w,
        &dir.join("persons.parquet"),
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
    w.map(|w| w.close()).transpose()?;
    let rows: Vec<(u32, &Event)> = p
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.events.iter().map(move |e| (i as u32, e)))
        .collect();
    let mut w = None;
    for chunk in rows.chunks(1 << 20) {
        write_batch(
            &mut w,
            &dir.join("events.parquet"),
            vec![
                (
                    "person",
                    Arc::new(UInt32Array::from_iter_values(chunk.iter().map(|r| r.0))) as ArrayRef,
                ),
                (
                    "kind",
                    Arc::new(UInt8Array::from_iter_values(
                        chunk.iter().map(|r| r.1.kind as u8),
                    )),
                ),
                (
                    "code",
                    Arc::new(StringArray::from_iter_values(
                        chunk.iter().map(|r| &*r.1.code),
                    )),
                ),
                (
                    "date",
                    Arc::new(Date32Array::from_iter_values(
                        chunk.iter().map(|r| days(r.1.date)),
                    )),
                ),
                (
                    "value",
                    Arc::new(Float64Array::from_iter(chunk.iter().map(|r| r.1.value))),
                ),
            ],
        )?;
    }
    w.map(|w| w.close()).transpose()?;
    Ok(())
}

/// The population `write_parquet` wrote (sex, birth and events only), read back: a large region
/// read once, then measured again in seconds.
fn read_parquet(dir: &std::path::Path) -> Result<Population, Failure> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Float64Type, UInt32Type, UInt8Type};
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let date = |d: i32| epoch + chrono::Duration::days(i64::from(d));
    let open = |name: &str| -> Result<ParquetRecordBatchReader, Failure> {
        Ok(ParquetRecordBatchReader::try_new(
            std::fs::File::open(dir.join(name))?,
            1 << 16,
        )?)
    };
    let mut persons = Vec::new();
    for batch in open("persons.parquet")? {
        let batch = batch?;
        let (sex, birth) = (
            batch.column(1).as_string::<i32>(),
            batch.column(2).as_primitive::<Date32Type>(),
        );
        for i in 0..batch.num_rows() {
            persons.push(Facts {
                sex: sex.is_valid(i).then(|| sex.value(i).to_string()),
                birth: birth.is_valid(i).then(|| date(birth.value(i))),
                ..Facts::default()
            });
        }
    }
    let mut codes: std::collections::HashMap<String, std::sync::Arc<str>> = Default::default();
    let kinds = [Kind::Diagnosis, Kind::Drug, Kind::Procedure, Kind::Lab];
    for batch in open("events.parquet")? {
        let batch = batch?;
        let person = batch.column(0).as_primitive::<UInt32Type>();
        let kind = batch.column(1).as_primitive::<UInt8Type>();
        let code = batch.column(2).as_string::<i32>();
        let day = batch.column(3).as_primitive::<Date32Type>();
        let value = batch.column(4).as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            let c = codes
                .entry(code.value(i).to_string())
                .or_insert_with(|| code.value(i).into());
            persons[person.value(i) as usize].events.push(Event {
                kind: kinds[usize::from(kind.value(i))],
                code: c.clone(),
                date: date(day.value(i)),
                value: value.is_valid(i).then(|| value.value(i)),
            });
        }
    }
    persons.iter_mut().for_each(Facts::order_events);
    Ok(Population { persons })
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The population: a region's canonical tables, or persons generated here.
fn population(rng: &mut ChaCha8Rng) -> Population {
    if let Some(dir) = text("--from-parquet") {
        return read_parquet(std::path::Path::new(&dir)).unwrap_or_else(|e| panic!("parquet: {e}"));
    }
    if let Some(dir) = text("--region") {
        let none = std::collections::HashSet::new();
        let (p, _) = region::population(std::path::Path::new(&dir), &none)
            .unwrap_or_else(|e| panic!("region: {e}"));
        return p;
    }
    let start = NaiveDate::from_ymd_opt(2021, 4, 1).unwrap_or_default();
    let events = arg("--events", 40);
    Population {
        persons: (0..arg("--persons", 100_000))
            .map(|_| person(rng, events, start))
            .collect(),
    }
}

fn main() {
    let queries = arg("--queries", 30).max(1) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(arg("--seed", 7));
    let t = Instant::now();
    let population = population(&mut rng);
    let n_events: usize = population.persons.iter().map(|p| p.events.len()).sum();
    println!(
        "population: {} persons, {n_events} events, read or generated in {:.1} s",
        population.persons.len(),
        t.elapsed().as_secs_f64()
    );
    if let Some(dir) = text("--parquet") {
        let t = Instant::now();
        write_parquet(std::path::Path::new(&dir), &population)
            .unwrap_or_else(|e| panic!("parquet: {e}"));
        println!(
            "parquet written to {dir} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let query = if text("--region").is_some() || text("--from-parquet").is_some() {
        REGION_QUERY
    } else {
        QUERY
    };
    let def = Definition::parse(query, false).unwrap_or_else(|e| panic!("query: {e}"));
    let mut scan_ms = Vec::new();
    let mut expected = None;
    for _ in 0..queries.min(5) {
        let t = Instant::now();
        let c = count(&def, &population);
        scan_ms.push(t.elapsed().as_secs_f64() * 1e3);
        expected = Some(c);
    }
    let t = Instant::now();
    let index = Index::build(population).unwrap_or_else(|e| panic!("index: {e}"));
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
