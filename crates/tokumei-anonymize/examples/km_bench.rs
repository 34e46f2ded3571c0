//! Benchmark: the (k, k^m) search's cost against the number of persons and of events per person.
//!
//! ```text
//! cargo run --release -p tokumei-anonymize --example km_bench [-- --persons 1000,5000,20000] [--events 50,200]
//! ```
//!
//! Synthetic persons (seeded, deterministic): sex, a birth year in 1930–1985 and one of 40
//! municipalities as quasi-identifiers; events of two kinds drawn from Zipf-like code
//! frequencies (diagnoses: 60 ICD-10 codes; prescriptions: 30 drug codes of 12 characters) in the
//! 36 months from 2021-04, each person holding a few chronic codes repeated monthly and some
//! acute ones. k = 10, m = 2, suppression 5 %, codes bounded at level 1 (as the jp-anonymized
//! preset). Prints persons, events, the lattice, nodes evaluated, seconds, rows released.

use std::time::Instant;

use tokumei_anonymize::{Hierarchy, KmConfig, SetValued};

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Zipf-like: index i with weight 1 / (i + 1).
    fn zipf(&mut self, n: usize) -> usize {
        let total: f64 = (1..=n).map(|i| 1.0 / i as f64).sum();
        let mut x = (self.next() as f64 / u64::MAX as f64) * total;
        for i in 0..n {
            x -= 1.0 / (i + 1) as f64;
            if x <= 0.0 {
                return i;
            }
        }
        n - 1
    }
}

fn arg(name: &str, default: &str) -> Vec<usize> {
    let args: Vec<String> = std::env::args().collect();
    let v = args
        .iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default.to_string(), Clone::clone);
    v.split(',').filter_map(|x| x.parse().ok()).collect()
}

fn main() {
    let icd: Vec<String> = [
        "E11", "I10", "E78", "J06", "J20", "N18", "K21", "I48", "G30", "M81",
    ]
    .iter()
    .flat_map(|c| (0..6).map(move |d| format!("{c}{d}")))
    .collect();
    let drugs: Vec<String> = (0..30)
        .map(|i| format!("21{:02}{:03}F{}0{:02}", i % 7, i, i % 3, i))
        .collect();
    let months: Vec<String> = (0..36)
        .map(|i| format!("{}-{:02}", 2021 + (i + 3) / 12, (i + 3) % 12 + 1))
        .collect();
    let (icd_h, drug_h) = (
        Hierarchy::icd10(&icd).expect("icd"),
        Hierarchy::drug_codes(&drugs).expect("drugs"),
    );
    let month_h = Hierarchy::calendar_months(&months).expect("months");
    let years: Vec<String> = (1930..1986).map(|y| y.to_string()).collect();
    let munis: Vec<String> = (0..40).map(|i| format!("02{:03}1", 200 + i)).collect();
    println!("persons\tevents/person\tevents\tlattice\tevaluated\tseconds\treleased");
    for &n in &arg("--persons", "1000,5000,20000") {
        for &e in &arg("--events", "50,200") {
            let mut rng = Rng(7);
            let mut d = SetValued::new(n);
            let sex: Vec<&str> = (0..n).map(|_| ["F", "M"][rng.below(2)]).collect();
            let birth: Vec<&str> = (0..n)
                .map(|_| years[rng.below(years.len())].as_str())
                .collect();
            let muni: Vec<&str> = (0..n)
                .map(|_| munis[rng.zipf(munis.len())].as_str())
                .collect();
            d.quasi_identifier("sex", &sex, &Hierarchy::flat(&["F", "M"]).expect("sex"))
                .expect("qi");
            d.quasi_identifier(
                "birth_year",
                &birth,
                &Hierarchy::years(&years).expect("years"),
            )
            .expect("qi");
            d.quasi_identifier(
                "municipality",
                &muni,
                &Hierarchy::municipality_codes(&munis).expect("m"),
            )
            .expect("qi");
            let dx = d.kind("diagnoses", &icd_h, &month_h).expect("kind");
            let rx = d.kind("prescriptions", &drug_h, &month_h).expect("kind");
            for p in 0..n {
                // Chronic codes repeated monthly, the rest acute.
                let chronic = [rng.zipf(icd.len()), rng.zipf(drugs.len())];
                for j in 0..e {
                    let month = &months[if j < e / 2 { j % 36 } else { rng.below(36) }];
                    let (kind, code) = match (j % 2, j < e / 2) {
                        (0, true) => (dx, &icd[chronic[0]]),
                        (1, true) => (rx, &drugs[chronic[1]]),
                        (0, false) => (dx, &icd[rng.zipf(icd.len())]),
                        _ => (rx, &drugs[rng.zipf(drugs.len())]),
                    };
                    d.event(p, kind, code, month).expect("event");
                }
            }
            let cfg = KmConfig {
                max_code_level: Some(1),
                ..KmConfig::default()
            };
            let t = Instant::now();
            let out = d.anonymize(&cfg).expect("anonymize");
            let secs = t.elapsed().as_secs_f64();
            println!(
                "{n}\t{e}\t{}\t{}\t{}\t{secs:.2}\t{:.1} %",
                d.events(),
                out.stats.lattice,
                out.stats.evaluated,
                100.0 * (d.events() - out.rows_removed) as f64 / d.events() as f64
            );
        }
    }
}
