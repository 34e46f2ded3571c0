//! Normalized, interned feature values per record (or per profile of identical records).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::error::LinkageError;
use crate::normalize::{soundex, Normalizer};
use crate::settings::Transform;

/// Missing value.
pub(crate) const NULL: u32 = u32::MAX;

/// A small, fast, deterministic hasher (FxHash).
#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64)
    }
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64)
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i)
    }
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64)
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64)
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// One dictionary of every normalized value, so ids compare across columns. Values are packed into one
/// buffer (one cache line less per lookup than a vector of boxed strings).
#[derive(Default)]
pub(crate) struct Dict {
    map: FxMap<Box<str>, u32>,
    buf: String,
    /// Start of every value in `buf`, plus the end of the last.
    starts: Vec<usize>,
}

impl Dict {
    fn intern(&mut self, v: &str) -> u32 {
        if let Some(id) = self.map.get(v) {
            return *id;
        }
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        let id = (self.starts.len() - 1) as u32;
        self.map.insert(v.into(), id);
        self.buf.push_str(v);
        self.starts.push(self.buf.len());
        id
    }

    /// The value of an id.
    #[inline]
    pub fn get(&self, id: u32) -> &str {
        let i = id as usize;
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(a), Some(b)) => self.buf.get(*a..*b).unwrap_or(""),
            _ => "",
        }
    }
}

/// A feature: a column under its normalizer and a key transform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FeatureKey {
    pub column: String,
    pub transform: Transform,
}

/// The records of one side, as nodes (records, or profiles of identical records).
pub(crate) struct Side {
    /// Number of features.
    nf: usize,
    /// Feature ids, node by node (all features of a node side by side: one or two cache lines per node
    /// when a pair is compared).
    data: Vec<u32>,
    /// First row of every node.
    pub rep_row: Vec<u32>,
    /// Node of every row.
    pub node_of_row: Vec<u32>,
}

impl Side {
    fn new(cols: &[Vec<u32>], rows: &[u32], rep_row: Vec<u32>, node_of_row: Vec<u32>) -> Side {
        let nf = cols.len();
        let mut data = Vec::with_capacity(rows.len() * nf);
        for r in rows {
            data.extend(cols.iter().map(|c| c[*r as usize]));
        }
        Side {
            nf,
            data,
            rep_row,
            node_of_row,
        }
    }

    pub fn len(&self) -> usize {
        self.rep_row.len()
    }

    /// The id of feature `f` of `node` ([`NULL`] when missing).
    #[inline]
    pub fn get(&self, f: usize, node: usize) -> u32 {
        self.data.get(node * self.nf + f).copied().unwrap_or(NULL)
    }
}

/// Everything derived from the inputs.
pub(crate) struct Prepared {
    pub dict: Dict,
    pub features: Vec<FeatureKey>,
    pub sides: Vec<Side>,
}

impl Prepared {
    /// Index of a feature.
    pub fn feature(&self, column: &str, transform: Transform) -> usize {
        self.features
            .iter()
            .position(|f| f.column == column && f.transform == transform)
            .unwrap_or(usize::MAX)
    }

    /// The left side and the right side (the same side twice for dedupe).
    pub fn pair_sides(&self) -> (&Side, &Side) {
        (&self.sides[0], self.sides.last().unwrap_or(&self.sides[0]))
    }
}

fn transform(v: String, t: Transform) -> Option<String> {
    let out = match t {
        Transform::Value => v,
        Transform::First(n) => v.chars().take(n).collect(),
        Transform::Last(n) => {
            let c: Vec<char> = v.chars().collect();
            c[c.len().saturating_sub(n)..].iter().collect()
        }
        Transform::Soundex => soundex(&v),
    };
    (!out.is_empty()).then_some(out)
}

/// Normalizes and interns every feature of every dataset. `collapse` merges rows identical on every
/// plain-value feature, none of them missing, into one node (dedupe only).
pub(crate) fn prepare(
    datasets: &[&Dataset],
    features: Vec<FeatureKey>,
    normalizer: impl Fn(&str) -> Normalizer + Sync,
    collapse: bool,
) -> Result<Prepared, LinkageError> {
    // Validate columns first so the error names the file and the column.
    for ds in datasets {
        for f in &features {
            ds.require(&f.column)?;
        }
    }
    // Per (dataset, feature), in parallel: distinct raw values (each normalized once) and the raw id of
    // every row. Then, in a fixed order, the normalized values are interned into the one dictionary.
    let jobs: Vec<(usize, usize)> = (0..datasets.len())
        .flat_map(|s| (0..features.len()).map(move |f| (s, f)))
        .collect();
    let staged: Vec<(Vec<u32>, Vec<Option<String>>)> = jobs
        .par_iter()
        .map(|(s, f)| {
            let ds = datasets[*s];
            let feature = &features[*f];
            let norm = normalizer(&feature.column);
            let mut raw: FxMap<&str, u32> = FxMap::default();
            let mut distinct: Vec<&str> = Vec::new();
            let mut raw_ids = Vec::with_capacity(ds.len());
            if let Some(col) = ds.column(&feature.column) {
                for row in 0..ds.len() {
                    raw_ids.push(match col.get(row) {
                        None => NULL,
                        Some(v) => *raw.entry(v).or_insert_with(|| {
                            distinct.push(v);
                            (distinct.len() - 1) as u32
                        }),
                    });
                }
            }
            let normalized: Vec<Option<String>> = distinct
                .iter()
                .map(|v| norm.apply(v).and_then(|n| transform(n, feature.transform)))
                .collect();
            (raw_ids, normalized)
        })
        .collect();
    let mut dict = Dict::default();
    let mut row_cols: Vec<Vec<Vec<u32>>> = vec![Vec::new(); datasets.len()];
    for ((s, _), (raw_ids, normalized)) in jobs.iter().zip(staged) {
        let ids: Vec<u32> = normalized
            .iter()
            .map(|n| n.as_deref().map(|v| dict.intern(v)).unwrap_or(NULL))
            .collect();
        row_cols[*s].push(
            raw_ids
                .iter()
                .map(|r| if *r == NULL { NULL } else { ids[*r as usize] })
                .collect(),
        );
    }
    let mut sides = Vec::with_capacity(datasets.len());
    for (s, cols) in row_cols.into_iter().enumerate() {
        let n = datasets[s].len();
        if !collapse {
            let all: Vec<u32> = (0..n as u32).collect();
            sides.push(Side::new(&cols, &all, all.clone(), all.clone()));
            continue;
        }
        let plain: Vec<usize> = (0..features.len())
            .filter(|i| features[*i].transform == Transform::Value)
            .collect();
        let mut seen: FxMap<Vec<u32>, u32> = FxMap::default();
        let mut rep_row = Vec::new();
        let mut node_of_row = Vec::with_capacity(n);
        let mut key = Vec::with_capacity(plain.len());
        #[allow(clippy::needless_range_loop)] // `row` indexes every feature column
        for row in 0..n {
            key.clear();
            key.extend(plain.iter().map(|f| cols[*f][row]));
            let next = rep_row.len() as u32;
            // Only complete rows collapse: rows that agree on the few values they carry (a birth
            // date and a sex, names missing) may be different people, so the model decides.
            let node = if key.contains(&NULL) {
                next
            } else {
                *seen.entry(key.clone()).or_insert(next)
            };
            if node == next {
                rep_row.push(row as u32);
            }
            node_of_row.push(node);
        }
        let reps = rep_row.clone();
        sides.push(Side::new(&cols, &reps, rep_row, node_of_row));
    }
    Ok(Prepared {
        dict,
        features,
        sides,
    })
}
