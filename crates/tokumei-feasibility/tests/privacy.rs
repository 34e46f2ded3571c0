//! Differential privacy of the answers: the noise has the distribution it claims, the 95 %
//! intervals cover, and an attacker who tells two neighbouring cohorts apart (a differencing pair,
//! or a query repeated under different wording and averaged) does no better than the ε spent
//! allows. OpenDP's randomness is not seeded, so these tests check distributions over many draws,
//! with margins of several standard errors.

use tokumei_feasibility::disclosure::{apply, Policy, Shown};
use tokumei_feasibility::evaluate::{Counts, Step};
use tokumei_feasibility::noise::{half_width, perturb, Domains, SENSITIVITY};

const DRAWS: usize = 4000;

fn counts(n: u64) -> Counts {
    let steps = ["index event in the period", "demographics", "observation"]
        .into_iter()
        .zip([n + 40, n + 20, n])
        .map(|(name, persons)| Step {
            name: name.into(),
            persons,
        })
        .collect();
    Counts {
        steps,
        sex: [("F".to_string(), n / 2), ("M".to_string(), n - n / 2)].into(),
        age_band: [("60-69".to_string(), n)].into(),
        area: [("A".to_string(), n)].into(),
        provider: [("P1".to_string(), n)].into(),
    }
}

fn domains() -> Domains {
    Domains {
        areas: vec!["A".into(), "B".into()],
        providers: vec!["P1".into(), "P2".into()],
    }
}

/// The noisy cohort size (before the policy) of `draws` answers.
fn noisy_totals(n: u64, epsilon: f64, draws: usize) -> Vec<i64> {
    (0..draws)
        .map(|_| {
            let (noisy, _) = perturb(&counts(n), &domains(), epsilon).expect("noise");
            noisy.total() as i64
        })
        .collect()
}

#[test]
fn the_noise_is_discrete_laplace_of_the_stated_scale_and_its_interval_covers() {
    let epsilon = 1.0;
    let scale = SENSITIVITY as f64 / epsilon;
    let n = 500;
    let noise: Vec<f64> = noisy_totals(n, epsilon, DRAWS)
        .into_iter()
        .map(|x| x as f64 - n as f64)
        .collect();
    let alpha = (-1.0 / scale).exp();
    let var = 2.0 * alpha / (1.0 - alpha).powi(2);
    let mean = noise.iter().sum::<f64>() / DRAWS as f64;
    let got_var = noise.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / DRAWS as f64;
    let se = (var / DRAWS as f64).sqrt();
    assert!(mean.abs() < 5.0 * se, "mean {mean}, standard error {se}");
    assert!(
        (got_var / var - 1.0).abs() < 0.15,
        "variance {got_var}, expected {var}"
    );
    let t = half_width(scale, 1) as f64;
    let covered = noise.iter().filter(|x| x.abs() <= t).count() as f64 / DRAWS as f64;
    assert!(covered >= 0.93, "95 % interval covered {covered}");
    // The figure is not exact: noise is really there.
    assert!(noise.iter().any(|x| *x != 0.0));
}

#[test]
fn every_shown_interval_holds_the_true_count_about_95_percent_of_the_time() {
    let p = Policy::ndb();
    let n = 137;
    let mut held = 0;
    for _ in 0..DRAWS {
        let (noisy, widths) = perturb(&counts(n), &domains(), p.epsilon_per_count).expect("noise");
        let a = apply(&p, &noisy, &widths);
        match a.total {
            Shown::Count { range, .. } if range[0] <= n && n <= range[1] => held += 1,
            _ => {}
        }
    }
    let share = held as f64 / DRAWS as f64;
    assert!(share >= 0.95, "shown intervals held the truth {share}");
}

/// The best accuracy of a threshold test telling `a` (world 0) from `b` (world 1).
fn best_accuracy(a: &[i64], b: &[i64]) -> f64 {
    let mut cut: Vec<i64> = a.iter().chain(b).copied().collect();
    cut.sort_unstable();
    cut.dedup();
    cut.iter()
        .map(|&c| {
            let fpr = a.iter().filter(|&&x| x >= c).count() as f64 / a.len() as f64;
            let tpr = b.iter().filter(|&&x| x >= c).count() as f64 / b.len() as f64;
            (tpr + 1.0 - fpr) / 2.0
        })
        .fold(0.5, f64::max)
}

fn allowed(epsilon: f64) -> f64 {
    epsilon.exp() / (1.0 + epsilon.exp())
}

#[test]
fn a_differencing_pair_tells_the_extra_person_no_better_than_epsilon_allows() {
    // Two cohorts that differ by one person; the attacker sees one answer of either and guesses.
    let epsilon = 1.0;
    let without = noisy_totals(200, epsilon, DRAWS);
    let with = noisy_totals(201, epsilon, DRAWS);
    let acc = best_accuracy(&without, &with);
    // Slack: the best of many thresholds on 2 × 4000 draws.
    assert!(
        acc <= allowed(epsilon) + 0.03,
        "accuracy {acc}, ε {epsilon} allows {}",
        allowed(epsilon)
    );
    // The answer is useful: different enough cohorts are told apart.
    let far = noisy_totals(260, epsilon, DRAWS);
    assert!(best_accuracy(&without, &far) > 0.95);
}

#[test]
fn averaging_repeated_answers_gains_no_more_than_their_summed_epsilon() {
    // The same cohort asked k times under different wording (the cache does not recognise it),
    // each answer spending ε: the average tells the extra person no better than k·ε allows.
    let (epsilon, k) = (0.5, 8);
    let mean_of = |n: u64| -> Vec<i64> {
        (0..DRAWS / 4)
            .map(|_| {
                let s: i64 = noisy_totals(n, epsilon, k).iter().sum();
                // The sum of k answers carries the same information as their average.
                s
            })
            .collect()
    };
    let acc = best_accuracy(&mean_of(300), &mean_of(301));
    let bound = allowed(epsilon * k as f64);
    assert!(acc <= bound + 0.04, "accuracy {acc}, k·ε allows {bound}");
    assert!(acc > 0.5 - 0.04);
}

#[test]
fn empty_cells_of_the_fixed_domains_get_noise_too() {
    // A cell nobody is in is still part of the answer (so a cell's presence says nothing).
    let (noisy, _) = perturb(&counts(50), &domains(), 1.0).expect("noise");
    for key in ["B", "unknown"] {
        assert!(noisy.area.contains_key(key), "area {key}");
    }
    assert!(noisy.provider.contains_key("P2"));
    assert!(noisy.age_band.contains_key("90+") && noisy.age_band.contains_key("0-9"));
    assert!(noisy.sex.contains_key("unknown"));
}

#[test]
fn a_policy_without_noise_is_refused() {
    let text = include_str!("../policies/ndb.toml")
        .replace("epsilon_per_count = 1.0", "epsilon_per_count = 0.0");
    let e = Policy::parse(&text).expect_err("refused");
    assert!(e.to_string().contains("above 0"), "{e}");
    assert!(perturb(&counts(10), &domains(), 0.0).is_err());
}
