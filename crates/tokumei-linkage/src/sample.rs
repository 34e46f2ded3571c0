//! Small synthetic FEBRL-style tables (the columns of `settings/linkage/febrl.toml`) for examples,
//! tests and quick benchmarks: seeded, with duplicates that carry typos, swapped names, transposed
//! dates, missing values and exact copies. Common names make large blocks on purpose.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Dataset;

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

/// The columns, record id first.
pub const COLUMNS: [&str; 11] = [
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

/// One random original record of entity `i`.
pub fn original(rng: &mut ChaCha8Rng, i: usize) -> Vec<String> {
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

/// A duplicate of `rec` (entity `i`): names swapped, day and month transposed, a typo, a missing
/// id, a reversed name, or an exact copy.
pub fn duplicate(rng: &mut ChaCha8Rng, rec: &[String], i: usize) -> Vec<String> {
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

/// `n` originals followed by duplicates of the first `dups` (one table to deduplicate).
pub fn dedupe_rows(n: usize, dups: usize, seed: u64) -> Vec<Vec<String>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows: Vec<Vec<String>> = (0..n).map(|i| original(&mut rng, i)).collect();
    for i in 0..dups.min(n) {
        let copy = duplicate(&mut rng, &rows[i], i);
        rows.push(copy);
    }
    rows
}

/// `n` originals and `n` duplicates of them in another order (two tables to link).
pub fn link_rows(n: usize, seed: u64) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let left: Vec<Vec<String>> = (0..n).map(|i| original(&mut rng, i)).collect();
    let right = (0..n)
        .map(|i| duplicate(&mut rng, &left[(i * 7) % n.max(1)], i))
        .collect();
    (left, right)
}

/// The rows as a dataset (empty strings missing).
pub fn table(name: &str, rows: &[Vec<String>]) -> Dataset {
    let mut ds = Dataset::new(name, &COLUMNS);
    for r in rows {
        let v: Vec<Option<&str>> = r
            .iter()
            .map(|s| (!s.is_empty()).then_some(s.as_str()))
            .collect();
        // Every row has the columns' count, so it is accepted.
        let _ = ds.push_row(&v);
    }
    ds
}
