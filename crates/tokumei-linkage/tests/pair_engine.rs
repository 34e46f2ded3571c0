//! The engine seam: an engine written against the public [`PairJob`] alone (every pair of nodes
//! tested, levels from values) gives the embedded run's output byte for byte.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokumei_linkage::{
    link_with_engine, Dataset, KeySide, LinkOutput, LinkageError, PairEngine, PairJob, PairSet,
    Settings,
};

/// Tests every pair of nodes: slow, obviously right.
struct BruteForce;

fn produced_by(job: &PairJob<'_>, rule: usize, a: usize, b: usize) -> bool {
    let hit = |x: Option<u128>, y: Option<u128>| matches!((x, y), (Some(x), Some(y)) if x == y && !job.skipped(rule, x));
    hit(
        job.key(rule, KeySide::Left, a),
        job.key(rule, KeySide::Right, b),
    ) || (job.dedupe()
        && job.asymmetric(rule)
        && hit(
            job.key(rule, KeySide::Left, b),
            job.key(rule, KeySide::Right, a),
        ))
}

fn values<'j>(job: &'j PairJob<'_>, side: usize, node: usize) -> Vec<Option<&'j str>> {
    (0..job.level_fn().columns().len())
        .map(|c| job.value(side, node, c))
        .collect()
}

impl PairEngine for BruteForce {
    fn name(&self) -> String {
        "brute force".into()
    }

    fn pairs(&self, job: &PairJob<'_>) -> Result<PairSet, LinkageError> {
        let rows = brute_force_rows(job);
        PairSet::from_rows(rows, job.rules(), job.level_fn().comparisons())
    }
}

/// Every pair of nodes that a rule produces, with the first such rule and the packed levels.
fn brute_force_rows(job: &PairJob<'_>) -> Vec<(u32, u32, u32, u64)> {
    {
        let (ls, rs) = (0, job.sides() - 1);
        let mut rows = Vec::new();
        for a in 0..job.nodes(ls) {
            let start = if job.dedupe() { a + 1 } else { 0 };
            for b in start..job.nodes(rs) {
                let Some(rule) = (0..job.rules()).find(|r| produced_by(job, *r, a, b)) else {
                    continue;
                };
                let g = job
                    .level_fn()
                    .packed(&values(job, ls, a), &values(job, rs, b));
                rows.push((a as u32, b as u32, rule as u32, g));
            }
        }
        rows
    }
}

const GIVEN: &[&str] = &[
    "taro", "hanako", "ichiro", "yuki", "ken", "emi", "sora", "riku",
];
const SUR: &[&str] = &[
    "sato",
    "suzuki",
    "takahashi",
    "tanaka",
    "ito",
    "watanabe",
    "yamamoto",
];

/// One random FEBRL-style record of person `i`.
fn person(rng: &mut ChaCha8Rng, i: usize) -> Vec<String> {
    vec![
        format!("rec-{i}-org"),
        GIVEN[rng.random_range(0..GIVEN.len())].to_string(),
        SUR[rng.random_range(0..SUR.len())].to_string(),
        format!("{}", rng.random_range(1..60)),
        format!("{} street", rng.random_range(1..9)),
        String::new(),
        "aomori".into(),
        format!("{}", 3000 + rng.random_range(0..4)),
        "aom".into(),
        format!(
            "19{:02}{:02}{:02}",
            rng.random_range(40..99),
            rng.random_range(1..13),
            rng.random_range(1..29)
        ),
        format!("{}", 1_000_000 + i),
    ]
}

/// A copy with typos, swapped names, missing values; some copies are exact.
fn corrupt(rng: &mut ChaCha8Rng, rec: &[String], i: usize) -> Vec<String> {
    let mut r = rec.to_vec();
    r[0] = format!("rec-{i}-dup");
    match rng.random_range(0..6) {
        0 => r.swap(1, 2),
        1 => r[9] = format!("{}{}{}", &r[9][..4], &r[9][6..8], &r[9][4..6]),
        2 => r[2].push('h'),
        3 => r[10] = String::new(),
        4 => r[1] = r[1].chars().rev().collect(),
        _ => {}
    }
    r
}

fn table(name: &str, rows: &[Vec<String>]) -> Dataset {
    let header = [
        "rec_id",
        "given_name",
        "surname",
        "street_number",
        "address_1",
        "address_2",
        "suburb",
        "postcode",
        "state",
        "date_of_birth",
        "soc_sec_id",
    ];
    let mut ds = Dataset::new(name, &header);
    for r in rows {
        let v: Vec<Option<&str>> = r
            .iter()
            .map(|s| (!s.is_empty()).then_some(s.as_str()))
            .collect();
        ds.push_row(&v).expect("row");
    }
    ds
}

fn settings(file: &str, limits: &str) -> Settings {
    let path = format!(
        "{}/../../settings/linkage/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).expect("settings") + limits;
    Settings::parse(&text, file).expect("parse")
}

fn bytes(out: &LinkOutput) -> (Vec<u8>, Vec<u8>, String) {
    let (mut p, mut c) = (Vec::new(), Vec::new());
    out.write_pairs(&mut p).expect("pairs");
    out.write_clusters(&mut c).expect("clusters");
    (p, c, format!("{:?} {:?}", out.model, out.blocking))
}

/// Small blocks under `max_block_pairs` so that common names make skipped blocks.
const TIGHT: &str = "\n[limits]\nmax_block_pairs = 100\nsplit_block_pairs = 20\n";

#[test]
fn dedupe_through_the_seam_equals_the_embedded_run() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut rows: Vec<Vec<String>> = (0..300).map(|i| person(&mut rng, i)).collect();
    for i in 0..150 {
        let copy = corrupt(&mut rng, &rows[i], i);
        rows.push(copy);
    }
    let ds = table("dedupe", &rows);
    let s = settings("febrl_dedupe.toml", TIGHT);
    let embedded = link_with_engine(None, &s, &ds, None, None, &[]).expect("embedded");
    let seam = link_with_engine(Some(&BruteForce), &s, &ds, None, None, &[]).expect("seam");
    assert!(
        embedded.blocking.iter().any(|r| r.skipped_blocks > 0),
        "a block is skipped"
    );
    assert!(embedded.pairs.len() > 100);
    assert_eq!(bytes(&embedded), bytes(&seam));
}

#[test]
fn link_through_the_seam_equals_the_embedded_run() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let left: Vec<Vec<String>> = (0..250).map(|i| person(&mut rng, i)).collect();
    let right: Vec<Vec<String>> = (0..250)
        .map(|i| corrupt(&mut rng, &left[(i * 7) % 250], i))
        .collect();
    let (l, r) = (table("left", &left), table("right", &right));
    let s = settings("febrl.toml", TIGHT);
    let embedded = link_with_engine(None, &s, &l, Some(&r), None, &[]).expect("embedded");
    let seam = link_with_engine(Some(&BruteForce), &s, &l, Some(&r), None, &[]).expect("seam");
    assert!(embedded.pairs.len() > 100);
    assert_eq!(bytes(&embedded), bytes(&seam));
}

/// An engine that loses one pair is caught by the comparison (the tests above can fail).
struct Lossy;

impl PairEngine for Lossy {
    fn name(&self) -> String {
        "lossy".into()
    }
    fn pairs(&self, job: &PairJob<'_>) -> Result<PairSet, LinkageError> {
        let mut rows = brute_force_rows(job);
        rows.remove(rows.len() / 2);
        PairSet::from_rows(rows, job.rules(), job.level_fn().comparisons())
    }
}

#[test]
fn a_lost_pair_changes_the_output() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut rows: Vec<Vec<String>> = (0..120).map(|i| person(&mut rng, i)).collect();
    for i in 0..60 {
        let copy = corrupt(&mut rng, &rows[i], i);
        rows.push(copy);
    }
    let ds = table("dedupe", &rows);
    let s = settings("febrl_dedupe.toml", TIGHT);
    let embedded = link_with_engine(None, &s, &ds, None, None, &[]).expect("embedded");
    let lossy = link_with_engine(Some(&Lossy), &s, &ds, None, None, &[]).expect("lossy");
    assert_ne!(bytes(&embedded), bytes(&lossy));
}

#[test]
fn duplicate_rows_from_an_engine_are_refused() {
    let rows = vec![(0, 1, 0, 0), (0, 1, 0, 0)];
    assert!(PairSet::from_rows(rows, 1, 1).is_err());
    assert!(PairSet::from_rows(vec![(0, 1, 3, 0)], 1, 1).is_err());
}
