//! The tables of a linkage job as Parquet files that every executor reads: one folder per side,
//! `parts` files each, a node in the file of a hash of its number. The normalized identity values are
//! sealed (`seal`) under a key made for the job and never written, so they are clear only in an
//! executor's memory; node numbers and rule keys (numbers of values interned in the driver) say
//! nothing without the driver's memory. The left nodes also carry the term frequency of each value a
//! weight reads (a share of the records, not a value).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, UInt32Builder,
    UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use tokumei_linkage::{KeySide, PairJob};

use crate::seal::Sealer;
use crate::DistributedError;

/// Rows per record batch written.
const BATCH: usize = 65_536;

/// Which key columns a side's table carries for a rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleColumns {
    /// Left key, its skipped flag and its large flag (`l{j}h`, `l{j}l`, `ls{j}`, `lx{j}`).
    pub left: bool,
    /// Right key and its large flag (`r{j}h`, `r{j}l`, `rx{j}`).
    pub right: bool,
}

/// The layout of the job's tables.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Folder of each side's files.
    pub sides: Vec<PathBuf>,
    /// Folder of the salts table.
    pub salts: PathBuf,
    /// Number of value columns (`v0`…).
    pub values: usize,
    /// Per side, per rule.
    pub columns: Vec<Vec<RuleColumns>>,
    /// Whether the right key of rule `j` is its own column (link, or a dedupe rule with `on_right`).
    pub right_key: Vec<bool>,
    /// Whether comparison `c` reads a term frequency: the first side then carries each node's as
    /// `t{c}`.
    pub tf: Vec<bool>,
}

/// The hash of a node that chooses its file (splitmix64).
pub(crate) fn part_of(node: u32, parts: usize) -> usize {
    let mut z = (node as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) % parts.max(1) as u64) as usize
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DistributedError + '_ {
    move |source| DistributedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn engine(e: impl std::fmt::Display) -> DistributedError {
    DistributedError::Engine(e.to_string())
}

/// The layout of `job`'s tables under `dir`.
pub(crate) fn layout(job: &PairJob<'_>, dir: &Path) -> Layout {
    let last = job.sides() - 1;
    let right_key: Vec<bool> = (0..job.rules())
        .map(|j| !job.dedupe() || job.asymmetric(j))
        .collect();
    let columns = (0..job.sides())
        .map(|s| {
            (0..job.rules())
                .map(|j| RuleColumns {
                    left: s == 0,
                    right: s == last && right_key[j],
                })
                .collect()
        })
        .collect();
    Layout {
        sides: (0..job.sides())
            .map(|s| dir.join(format!("side{s}")))
            .collect(),
        salts: dir.join("salts"),
        values: job.level_fn().columns().len(),
        columns,
        right_key,
        tf: (0..job.level_fn().comparisons())
            .map(|c| job.tf_level(c).is_some())
            .collect(),
    }
}

/// The comparisons whose term frequencies side `side` carries (the first side's nodes are the left
/// nodes whose values a weight reads).
fn tf_columns(layout: &Layout, side: usize) -> Vec<usize> {
    let carried = |c: &usize| side == 0 && layout.tf[*c];
    (0..layout.tf.len()).filter(carried).collect()
}

fn schema(layout: &Layout, side: usize) -> SchemaRef {
    let mut fields = vec![Field::new("node", DataType::UInt32, false)];
    for c in 0..layout.values {
        fields.push(Field::new(format!("v{c}"), DataType::Binary, true));
    }
    for c in tf_columns(layout, side) {
        fields.push(Field::new(format!("t{c}"), DataType::Float64, true));
    }
    for (j, rc) in layout.columns[side].iter().enumerate() {
        if rc.left {
            fields.push(Field::new(format!("l{j}h"), DataType::UInt64, true));
            fields.push(Field::new(format!("l{j}l"), DataType::UInt64, true));
            fields.push(Field::new(format!("ls{j}"), DataType::Boolean, false));
            fields.push(Field::new(format!("lx{j}"), DataType::Boolean, false));
        }
        if rc.right {
            fields.push(Field::new(format!("r{j}h"), DataType::UInt64, true));
            fields.push(Field::new(format!("r{j}l"), DataType::UInt64, true));
            fields.push(Field::new(format!("rx{j}"), DataType::Boolean, false));
        }
    }
    Arc::new(Schema::new(fields))
}

/// One batch of a side's table: the nodes `nodes`.
fn batch(
    job: &PairJob<'_>,
    sealer: &Sealer,
    layout: &Layout,
    side: usize,
    schema: &SchemaRef,
    nodes: &[u32],
) -> Result<RecordBatch, DistributedError> {
    let mut cols: Vec<ArrayRef> = Vec::new();
    let mut node = UInt32Builder::with_capacity(nodes.len());
    node.append_slice(nodes);
    cols.push(Arc::new(node.finish()));
    for c in 0..layout.values {
        let mut b = BinaryBuilder::new();
        for n in nodes {
            b.append_option(job.value(side, *n as usize, c).map(|v| sealer.seal(v)));
        }
        cols.push(Arc::new(b.finish()));
    }
    for c in tf_columns(layout, side) {
        let mut b = Float64Builder::with_capacity(nodes.len());
        for n in nodes {
            b.append_option(job.tf(c, *n as usize));
        }
        cols.push(Arc::new(b.finish()));
    }
    for (j, rc) in layout.columns[side].iter().enumerate() {
        for (present, which) in [(rc.left, KeySide::Left), (rc.right, KeySide::Right)] {
            if present {
                key_columns(job, j, which, nodes, &mut cols);
            }
        }
    }
    RecordBatch::try_new(schema.clone(), cols).map_err(engine)
}

/// The key of rule `j` (high and low halves) and its flags: skipped (left keys only) and large.
fn key_columns(
    job: &PairJob<'_>,
    j: usize,
    which: KeySide,
    nodes: &[u32],
    cols: &mut Vec<ArrayRef>,
) {
    let (mut hi, mut lo) = (UInt64Builder::new(), UInt64Builder::new());
    let (mut skipped, mut large) = (BooleanBuilder::new(), BooleanBuilder::new());
    for n in nodes {
        let key = job.key(j, which, *n as usize);
        hi.append_option(key.map(|k| (k >> 64) as u64));
        lo.append_option(key.map(|k| k as u64));
        skipped.append_value(key.is_some_and(|k| job.skipped(j, k)));
        large.append_value(key.is_some_and(|k| job.large(j, k)));
    }
    cols.push(Arc::new(hi.finish()));
    cols.push(Arc::new(lo.finish()));
    if which == KeySide::Left {
        cols.push(Arc::new(skipped.finish()));
    }
    cols.push(Arc::new(large.finish()));
}

/// Writes every side's files and the salts table; returns the layout.
pub(crate) fn write(
    job: &PairJob<'_>,
    dir: &Path,
    parts: usize,
    salts: u32,
    key: &[u8; 16],
) -> Result<Layout, DistributedError> {
    let layout = layout(job, dir);
    let sealer = Sealer::new(key);
    for (side, folder) in layout.sides.iter().enumerate() {
        std::fs::create_dir_all(folder).map_err(io(folder))?;
        let schema = schema(&layout, side);
        let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); parts];
        for n in 0..job.nodes(side) as u32 {
            buckets[part_of(n, parts)].push(n);
        }
        for (p, nodes) in buckets.iter().enumerate() {
            let path = folder.join(format!("part-{p:04}.parquet"));
            let file = File::create(&path).map_err(io(&path))?;
            let mut w = ArrowWriter::try_new(file, schema.clone(), None).map_err(engine)?;
            for chunk in nodes.chunks(BATCH) {
                w.write(&batch(job, &sealer, &layout, side, &schema, chunk)?)
                    .map_err(engine)?;
            }
            w.close().map_err(engine)?;
        }
    }
    write_salts(&layout.salts, salts)?;
    Ok(layout)
}

/// The salts table: `salt` from 0 to `n - 1`.
fn write_salts(folder: &Path, n: u32) -> Result<(), DistributedError> {
    std::fs::create_dir_all(folder).map_err(io(folder))?;
    let schema = Arc::new(Schema::new(vec![Field::new(
        "salt",
        DataType::Int64,
        false,
    )]));
    let mut b = Int64Builder::new();
    b.append_slice(&(0..n.max(1) as i64).collect::<Vec<i64>>());
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(b.finish())]).map_err(engine)?;
    let path = folder.join("part-0000.parquet");
    let file = File::create(&path).map_err(io(&path))?;
    let mut w = ArrowWriter::try_new(file, schema, None).map_err(engine)?;
    w.write(&batch).map_err(engine)?;
    w.close().map_err(engine)?;
    Ok(())
}
