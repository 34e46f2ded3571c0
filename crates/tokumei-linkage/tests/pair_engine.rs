//! The engine seam: an engine written against the public [`PairJob`] alone (every pair of nodes
//! tested, levels from values) gives the embedded run's output byte for byte.

use tokumei_linkage::{
    link_with_engine, sample, unpack_levels, KeySide, LinkOutput, LinkageError, PairClass,
    PairEngine, PairJob, PairSet, Scoring, ScoringJob, Settings,
};

/// Tests every pair of nodes: slow, obviously right.
struct BruteForce;

/// The same, with values sealed (reversed bytes behind a marker) and levels from the sealed values.
struct BruteForceSealed;

fn seal(v: &str) -> Vec<u8> {
    let mut b = b"sealed:".to_vec();
    b.extend(v.bytes().rev());
    b
}

fn open(b: &[u8]) -> Option<String> {
    let mut v: Vec<u8> = b.strip_prefix(b"sealed:")?.to_vec();
    v.reverse();
    String::from_utf8(v).ok()
}

impl PairEngine for BruteForceSealed {
    fn name(&self) -> String {
        "brute force, sealed".into()
    }

    fn pairs(&self, job: &PairJob<'_>) -> Result<PairSet, LinkageError> {
        let sealed = |side: usize, node: usize| -> Vec<Option<Vec<u8>>> {
            values(job, side, node)
                .iter()
                .map(|v| v.map(seal))
                .collect()
        };
        let rows = brute_force_rows(job)
            .into_iter()
            .map(|(a, b, rule, _)| {
                let (l, r) = (sealed(0, a as usize), sealed(job.sides() - 1, b as usize));
                let l: Vec<Option<&[u8]>> = l.iter().map(|v| v.as_deref()).collect();
                let r: Vec<Option<&[u8]>> = r.iter().map(|v| v.as_deref()).collect();
                (a, b, rule, job.level_fn().packed_sealed(&l, &r, &open))
            })
            .collect();
        PairSet::from_rows(rows, job.rules(), job.level_fn().comparisons())
    }
}

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

fn settings_text(file: &str, limits: &str) -> String {
    let path = format!(
        "{}/../../settings/linkage/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).expect("settings") + limits
}

fn settings(file: &str, limits: &str) -> Settings {
    Settings::parse(&settings_text(file, limits), file).expect("parse")
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

/// Small blocks under `max_block_pairs` so that common names make skipped blocks.
const TIGHT: &str = "\n[limits]\nmax_block_pairs = 100\nsplit_block_pairs = 20\n";

#[test]
fn dedupe_through_the_seam_equals_the_embedded_run() {
    let ds = sample::table("dedupe", &sample::dedupe_rows(300, 150, 5));
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
    let (left, right) = sample::link_rows(250, 9);
    let (l, r) = (sample::table("left", &left), sample::table("right", &right));
    let s = settings("febrl.toml", TIGHT);
    let embedded = link_with_engine(None, &s, &l, Some(&r), None, &[]).expect("embedded");
    let seam = link_with_engine(Some(&BruteForce), &s, &l, Some(&r), None, &[]).expect("seam");
    assert!(embedded.pairs.len() > 100);
    assert_eq!(bytes(&embedded), bytes(&seam));
    let sealed =
        link_with_engine(Some(&BruteForceSealed), &s, &l, Some(&r), None, &[]).expect("sealed");
    assert_eq!(bytes(&embedded), bytes(&sealed));
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
    let ds = sample::table("dedupe", &sample::dedupe_rows(120, 60, 5));
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

/// Scores where the pairs are, brute force: counts every pair by class, then returns the pairs the
/// model keeps. `lose` drops one pair from the classes or from the pairs kept.
struct ScoredBruteForce {
    lose: Option<Phase>,
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Classes,
    Kept,
}

impl PairEngine for ScoredBruteForce {
    fn name(&self) -> String {
        "brute force, scored".into()
    }

    fn pairs(&self, job: &PairJob<'_>) -> Result<PairSet, LinkageError> {
        BruteForce.pairs(job)
    }

    fn scoring<'s>(
        &'s self,
        job: &'s PairJob<'_>,
    ) -> Result<Option<Box<dyn ScoringJob + 's>>, LinkageError> {
        Ok(Some(Box::new(BruteScoring {
            job,
            lose: self.lose,
        })))
    }
}

struct BruteScoring<'s, 'j> {
    job: &'s PairJob<'j>,
    lose: Option<Phase>,
}

impl BruteScoring<'_, '_> {
    /// Every candidate pair with its class (one pair each).
    fn classed(&self) -> Vec<((u32, u32, u32, u64), PairClass)> {
        let job = self.job;
        let nc = job.level_fn().comparisons();
        brute_force_rows(job)
            .into_iter()
            .map(|row @ (a, b, first, g)| {
                let (a, b) = (a as usize, b as usize);
                let (l, r) = (values(job, 0, a), values(job, job.sides() - 1, b));
                let deterministic = job
                    .deterministic()
                    .iter()
                    .any(|cols| cols.iter().all(|c| l[*c].is_some() && l[*c] == r[*c]));
                let mut levels = vec![0u8; nc];
                unpack_levels(g, nc, &mut levels);
                let tf = (0..nc)
                    .map(|c| {
                        (job.tf_level(c) == Some(levels[c]))
                            .then(|| job.tf(c, a))
                            .flatten()
                    })
                    .collect();
                let produced = (0..job.rules())
                    .filter(|j| produced_by(job, *j, a, b))
                    .fold(0u64, |m, j| m | 1 << j);
                let class = PairClass {
                    first,
                    produced,
                    levels: g,
                    deterministic,
                    tf,
                    pairs: 1,
                };
                (row, class)
            })
            .collect()
    }
}

impl ScoringJob for BruteScoring<'_, '_> {
    fn classes(&mut self) -> Result<Vec<PairClass>, LinkageError> {
        let mut classes: Vec<PairClass> = self.classed().into_iter().map(|(_, c)| c).collect();
        if self.lose == Some(Phase::Classes) {
            classes.pop();
        }
        Ok(classes)
    }

    fn kept(&mut self, scoring: &Scoring, expected: u64) -> Result<PairSet, LinkageError> {
        let mut rows: Vec<_> = self
            .classed()
            .into_iter()
            .filter(|(_, c)| scoring.keeps(scoring.class_weight(c)))
            .map(|(row, _)| row)
            .collect();
        assert_eq!(rows.len() as u64, expected);
        if self.lose == Some(Phase::Kept) {
            rows.pop();
        }
        PairSet::from_rows(rows, self.job.rules(), self.job.level_fn().comparisons())
    }
}

#[test]
fn scored_where_the_pairs_are_equals_the_embedded_run() {
    let ds = sample::table("dedupe", &sample::dedupe_rows(300, 150, 5));
    // Weak links chain records of different persons, and every pair below them refuses merges: the
    // pairs the engine does not return decide the clusters (the test fails when they are ignored).
    let text = settings_text("febrl_dedupe.toml", TIGHT).replace(
        "[clustering]\n",
        "[clustering]\nthreshold = 1e-40\ncannot_link_below = 1e-35\n",
    );
    let s = Settings::parse(&text, "weak links").expect("parse");
    let embedded =
        link_with_engine(None, &s, &ds, None, None, &[(0, 1), (2, 3)]).expect("embedded");
    let scored = ScoredBruteForce { lose: None };
    let seam =
        link_with_engine(Some(&scored), &s, &ds, None, None, &[(0, 1), (2, 3)]).expect("seam");
    assert!(
        embedded.cluster_stats.refused > 0,
        "{:?} {:?}",
        embedded.cluster_stats,
        embedded.histogram
    );
    assert!(embedded.pairs.len() > 100);
    assert!((embedded.pairs.len() as u64) < embedded.candidates);
    assert_eq!(bytes(&embedded), bytes(&seam));

    let (left, right) = sample::link_rows(250, 9);
    let (l, r) = (sample::table("left", &left), sample::table("right", &right));
    let s = settings("febrl.toml", TIGHT);
    let embedded = link_with_engine(None, &s, &l, Some(&r), None, &[]).expect("embedded");
    let seam = link_with_engine(Some(&scored), &s, &l, Some(&r), None, &[]).expect("seam");
    assert_eq!(bytes(&embedded), bytes(&seam));
}

#[test]
fn a_pair_lost_by_a_scoring_engine_is_refused() {
    let (left, right) = sample::link_rows(120, 9);
    let (l, r) = (sample::table("left", &left), sample::table("right", &right));
    let s = settings("febrl.toml", TIGHT);
    for phase in [Phase::Classes, Phase::Kept] {
        let lossy = ScoredBruteForce { lose: Some(phase) };
        let e = link_with_engine(Some(&lossy), &s, &l, Some(&r), None, &[]).expect_err("refused");
        assert!(matches!(e, LinkageError::Engine { .. }), "{e}");
    }
}
