//! Re-identification risk of a table over its quasi-identifiers: prosecutor, journalist and marketer risk,
//! sample uniques, records above a threshold and a population-uniqueness estimate (Zayatz).

use serde::Serialize;

/// Risk figures of one table (suppressed records excluded).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RiskSummary {
    /// Records assessed (suppressed records are excluded).
    pub records: u64,
    /// Equivalence classes.
    pub classes: u64,
    /// Share of records that are alone in their class.
    pub sample_uniques: f64,
    /// Highest prosecutor risk: 1 / smallest class.
    pub prosecutor_max: f64,
    /// Average prosecutor risk: classes / records.
    pub prosecutor_avg: f64,
    /// Share of records whose prosecutor risk exceeds `threshold`.
    pub records_at_risk: f64,
    /// The threshold used for `records_at_risk`.
    pub threshold: f64,
    /// Highest journalist risk (1 / smallest matching population class); equals the prosecutor risk when no
    /// population is known.
    pub journalist_max: f64,
    /// Average journalist risk.
    pub journalist_avg: f64,
    /// Marketer risk: expected share of records re-identified when all are matched (classes / records
    /// without a population; Σ f_j / F_j / n with one).
    pub marketer: f64,
    /// Zayatz estimate of the share of records that are unique in the population, when a population size
    /// is known.
    pub population_uniqueness_zayatz: Option<f64>,
    /// Class size histogram: (size, number of classes), ascending.
    pub class_sizes: Vec<(u64, u64)>,
}

/// Computes the risk figures from class sizes (and optional matching population class sizes).
pub fn summarize(
    class_sizes: &[u64],
    population: Option<&[u64]>,
    population_size: Option<u64>,
    threshold: f64,
) -> RiskSummary {
    let records: u64 = class_sizes.iter().sum();
    let classes = class_sizes.iter().filter(|&&c| c > 0).count() as u64;
    let rf = records.max(1) as f64;
    let min = class_sizes
        .iter()
        .copied()
        .filter(|&c| c > 0)
        .min()
        .unwrap_or(0);
    let uniques = class_sizes.iter().filter(|&&c| c == 1).count() as f64;
    let at_risk: u64 = class_sizes
        .iter()
        .filter(|&&c| c > 0 && 1.0 / c as f64 > threshold)
        .sum();
    let (jmax, javg, marketer) = match population {
        Some(pop) => {
            let mut jmax: f64 = 0.0;
            let mut jsum = 0.0;
            let mut m = 0.0;
            for (&f, &big_f) in class_sizes.iter().zip(pop) {
                if f == 0 {
                    continue;
                }
                let big = big_f.max(f) as f64;
                jmax = jmax.max(1.0 / big);
                jsum += f as f64 / big;
                m += f as f64 / big;
            }
            (jmax, jsum / rf, m / rf)
        }
        None => (
            if min > 0 { 1.0 / min as f64 } else { 0.0 },
            if records > 0 {
                classes as f64 / rf
            } else {
                0.0
            },
            if records > 0 {
                classes as f64 / rf
            } else {
                0.0
            },
        ),
    };
    let mut hist: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    for &c in class_sizes.iter().filter(|&&c| c > 0) {
        *hist.entry(c).or_insert(0) += 1;
    }
    RiskSummary {
        records,
        classes,
        sample_uniques: if records > 0 { uniques / rf } else { 0.0 },
        prosecutor_max: if min > 0 { 1.0 / min as f64 } else { 0.0 },
        prosecutor_avg: if records > 0 {
            classes as f64 / rf
        } else {
            0.0
        },
        records_at_risk: if records > 0 {
            at_risk as f64 / rf
        } else {
            0.0
        },
        threshold,
        journalist_max: jmax,
        journalist_avg: javg,
        marketer,
        population_uniqueness_zayatz: population_size
            .and_then(|big_n| zayatz(&hist, records, big_n)),
        class_sizes: hist.into_iter().collect(),
    }
}

/// Zayatz (1991): the probability that a sample unique is a population unique, estimated by assuming the
/// population's class-size distribution equals the sample's, with the hypergeometric probability that a
/// population class of size `i` yields exactly one sampled record approximated by the binomial
/// `i π (1 − π)^(i−1)` (π = n / N). Returns the estimated population uniques as a share of the records.
pub fn zayatz(
    hist: &std::collections::BTreeMap<u64, u64>,
    records: u64,
    population: u64,
) -> Option<f64> {
    if records == 0 || population < records {
        return None;
    }
    let pi = records as f64 / population as f64;
    let classes: u64 = hist.values().sum();
    let uniques = *hist.get(&1).unwrap_or(&0) as f64;
    if uniques == 0.0 {
        return Some(0.0);
    }
    let mut denom = 0.0;
    for (&i, &fi) in hist {
        let share = fi as f64 / classes as f64;
        denom += share * i as f64 * pi * (1.0 - pi).powf(i as f64 - 1.0);
    }
    let first = *hist.get(&1).unwrap_or(&0) as f64 / classes as f64 * pi;
    if denom <= 0.0 {
        return None;
    }
    Some(uniques * (first / denom) / records as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prosecutor_figures() {
        let r = summarize(&[1, 1, 2, 6], None, None, 0.2);
        assert_eq!(r.records, 10);
        assert_eq!(r.classes, 4);
        assert!((r.sample_uniques - 0.2).abs() < 1e-12);
        assert!((r.prosecutor_max - 1.0).abs() < 1e-12);
        assert!((r.prosecutor_avg - 0.4).abs() < 1e-12);
        // Classes of 1 and 2 have risk above 0.2: 4 records.
        assert!((r.records_at_risk - 0.4).abs() < 1e-12);
        assert_eq!(r.class_sizes, vec![(1, 2), (2, 1), (6, 1)]);
        // In a population equal to the sample, every sample unique is a population unique.
        let z = r.population_uniqueness_zayatz;
        assert!(z.is_none());
        let r2 = summarize(&[1, 1, 2, 6], None, Some(10), 0.2);
        assert!((r2.population_uniqueness_zayatz.unwrap_or(0.0) - 0.2).abs() < 1e-12);
    }
}
