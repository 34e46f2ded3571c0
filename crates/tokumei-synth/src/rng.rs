//! Seeded randomness: every random choice of the generator derives from the user's seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator's random number generator.
pub type SynthRng = ChaCha8Rng;

/// SplitMix64 finaliser: a bijective 64-bit mixer.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Named random streams, so that adding draws to one part of the generator does not shift another.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Stream {
    /// Household composition and life over the period.
    Household = 1,
    /// Record ids of the writer.
    RecordIds = 2,
    /// Region-level choices (clinics, employers).
    Region = 3,
    /// Care planning of one person.
    Care = 4,
    /// Imaging studies of one person's hospital encounters.
    Imaging = 5,
    /// Hospital staff (referring physicians).
    Staff = 6,
}

/// A generator for item `index` of `stream` under `seed`; independent of every other index.
pub fn rng_for(seed: u64, stream: Stream, index: u64) -> SynthRng {
    let s =
        splitmix64(splitmix64(seed ^ (stream as u64).wrapping_mul(0xa076_1d64_78bd_642f)) ^ index);
    SynthRng::seed_from_u64(s)
}

/// Draws an index from cumulative weights.
#[derive(Debug, Clone)]
pub struct Weighted {
    cumulative: Vec<f64>,
}

impl Weighted {
    /// Builds a sampler; weights must be non-negative with a positive sum.
    pub fn new<I: IntoIterator<Item = f64>>(weights: I) -> Option<Self> {
        let mut total = 0.0;
        let mut cumulative = Vec::new();
        for w in weights {
            if !(w >= 0.0 && w.is_finite()) {
                return None;
            }
            total += w;
            cumulative.push(total);
        }
        (total > 0.0).then_some(Weighted { cumulative })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.cumulative.len()
    }

    /// Whether there are no items (never true for a built sampler).
    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// Draws one index.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.random::<f64>() * total;
        let i = self.cumulative.partition_point(|&c| c <= x);
        i.min(self.cumulative.len().saturating_sub(1))
    }

    /// The probability of item `i`.
    pub fn probability(&self, i: usize) -> f64 {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let prev = if i == 0 { 0.0 } else { self.cumulative[i - 1] };
        (self.cumulative.get(i).copied().unwrap_or(prev) - prev) / total
    }
}

/// A standard normal draw (Box-Muller), enough for synthetic physiology.
pub fn normal<R: Rng + ?Sized>(rng: &mut R, mean: f64, sd: f64) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Poisson draw for small means (Knuth).
pub fn poisson<R: Rng + ?Sized>(rng: &mut R, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    let l = (-mean).exp();
    let mut k = 0u32;
    let mut p = 1.0;
    loop {
        p *= rng.random::<f64>();
        if p <= l || k > 1000 {
            return k;
        }
        k += 1;
    }
}

/// Bernoulli draw.
pub fn chance<R: Rng + ?Sized>(rng: &mut R, p: f64) -> bool {
    rng.random::<f64>() < p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = rng_for(7, Stream::Household, 3).random();
        let b: u64 = rng_for(7, Stream::Household, 3).random();
        let c: u64 = rng_for(7, Stream::Household, 4).random();
        let d: u64 = rng_for(8, Stream::Household, 3).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn weighted_follows_weights() {
        let w = Weighted::new([1.0, 0.0, 3.0]).unwrap();
        let mut rng = rng_for(1, Stream::Region, 0);
        let mut counts = [0usize; 3];
        for _ in 0..40_000 {
            counts[w.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = counts[2] as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.02, "{share}");
        assert!(Weighted::new([0.0, 0.0]).is_none());
        assert!(Weighted::new([1.0, f64::NAN]).is_none());
    }
}
