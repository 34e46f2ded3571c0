//! The feasibility code index's postings on DataFusion or Ballista ([`DistributedPostings`], a
//! [`PostingsEngine`]).
//!
//! The (person, term) rows go to the engine as Parquet files, a row in the file of a hash of its
//! person, beside the chunk of the person's position (2¹⁶ positions, one roaring container). Persons
//! are positions in the driver's population and terms are numbers the driver gave: no code, date or
//! identifier leaves the driver. One query builds each (term, chunk)'s set of persons
//! (`tk_persons`) and counts its rows; the driver takes the answer only when each (term, chunk) comes
//! once, every person lies in its chunk, no set holds more persons than its rows, and the rows add
//! up to those written, and runs the query again otherwise (an executor lost mid-stage).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt32Builder};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, UInt32Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::ParquetReadOptions;
use roaring::RoaringBitmap;
use tokumei_model::postings::{PostingsEngine, PostingsError};

use crate::job::{df_error, path_text, JobDir, Target};
use crate::tables::{engine, io, part_of};
use crate::udf::{Sealed, PERSONS};
use crate::DistributedError;

/// Bits of a position that a chunk spans: a chunk's set is one roaring container, at most 8 KiB.
pub const CHUNK_BITS: u32 = 16;

/// Rows per record batch written.
const BATCH: usize = 65_536;

/// A [`PostingsEngine`] on DataFusion or Ballista.
pub struct DistributedPostings {
    target: Target,
}

impl DistributedPostings {
    /// Postings built on `target`'s engine, the rows written under its work folder in its
    /// partitions' number of files.
    pub fn new(target: Target) -> Self {
        DistributedPostings { target }
    }

    fn run(
        &self,
        terms: u32,
        rows: &mut dyn Iterator<Item = (u32, u32)>,
    ) -> Result<Vec<RoaringBitmap>, DistributedError> {
        let dir = JobDir::create(&self.target.work)?;
        let table = dir.dir.join("postings");
        let written = write_rows(rows, terms, &table, self.target.partitions)?;
        self.target.block_on(async {
            let ctx = self.target.context().await?;
            ctx.register_parquet(
                "postings",
                path_text(&table)?,
                ParquetReadOptions::default(),
            )
            .await
            .map_err(df_error)?;
            let sql = format!(
                "SELECT term, chunk, {PERSONS}(person) AS persons, COUNT(*) AS n \
                 FROM postings GROUP BY term, chunk"
            );
            let read = |b: &[RecordBatch]| sets(b, terms, written);
            self.target.whole(&ctx, &sql, read).await
        })
    }
}

impl PostingsEngine for DistributedPostings {
    fn postings(
        &self,
        terms: u32,
        rows: &mut dyn Iterator<Item = (u32, u32)>,
    ) -> Result<Vec<RoaringBitmap>, PostingsError> {
        self.run(terms, rows)
            .map_err(|e| PostingsError(format!("{} engine: {e}", self.target.engine)))
    }
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("person", DataType::UInt32, false),
        Field::new("term", DataType::UInt32, false),
        Field::new("chunk", DataType::UInt32, false),
    ]))
}

/// One partition's file and the rows waiting for it.
struct Part {
    writer: ArrowWriter<File>,
    rows: Vec<(u32, u32)>,
}

impl Part {
    fn flush(&mut self) -> Result<(), DistributedError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let n = self.rows.len();
        let (mut p, mut t, mut c) = (
            UInt32Builder::with_capacity(n),
            UInt32Builder::with_capacity(n),
            UInt32Builder::with_capacity(n),
        );
        for (person, term) in self.rows.drain(..) {
            p.append_value(person);
            t.append_value(term);
            c.append_value(person >> CHUNK_BITS);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(p.finish()),
            Arc::new(t.finish()),
            Arc::new(c.finish()),
        ];
        let batch = RecordBatch::try_new(schema(), cols).map_err(engine)?;
        self.writer.write(&batch).map_err(engine)
    }
}

/// Writes the rows in `parts` files under `folder`; how many were written. A row naming a term at
/// or past `terms` is refused.
fn write_rows(
    rows: &mut dyn Iterator<Item = (u32, u32)>,
    terms: u32,
    folder: &Path,
    parts: usize,
) -> Result<u64, DistributedError> {
    std::fs::create_dir_all(folder).map_err(io(folder))?;
    let mut files = Vec::with_capacity(parts.max(1));
    for p in 0..parts.max(1) {
        let path = folder.join(format!("part-{p:04}.parquet"));
        let file = File::create(&path).map_err(io(&path))?;
        let writer = ArrowWriter::try_new(file, schema(), None).map_err(engine)?;
        files.push(Part {
            writer,
            rows: Vec::new(),
        });
    }
    let mut written = 0u64;
    for (person, term) in rows {
        if term >= terms {
            return Err(DistributedError::Engine(
                "a row names an unknown term".into(),
            ));
        }
        let part = &mut files[part_of(person, parts)];
        part.rows.push((person, term));
        if part.rows.len() >= BATCH {
            part.flush()?;
        }
        written += 1;
    }
    for mut part in files {
        part.flush()?;
        part.writer.close().map_err(engine)?;
    }
    Ok(written)
}

fn broken(what: &str) -> DistributedError {
    DistributedError::Engine(format!("the postings came back broken: {what}"))
}

/// The sets of the query's answer, checked whole.
fn sets(
    batches: &[RecordBatch],
    terms: u32,
    written: u64,
) -> Result<Vec<RoaringBitmap>, DistributedError> {
    let mut out = vec![RoaringBitmap::new(); terms as usize];
    let mut given = std::collections::HashSet::new();
    let mut total = 0u64;
    for b in batches {
        if b.num_columns() != 4 {
            return Err(broken("another shape"));
        }
        let (Some(term), Some(chunk), Some(n)) = (
            b.column(0).as_primitive_opt::<UInt32Type>(),
            b.column(1).as_primitive_opt::<UInt32Type>(),
            b.column(3).as_primitive_opt::<Int64Type>(),
        ) else {
            return Err(broken("a column of another type"));
        };
        if term.null_count() + chunk.null_count() + n.null_count() > 0 {
            return Err(broken("a value is missing"));
        }
        let persons = Sealed::new(b.column(2)).map_err(df_error)?;
        for i in 0..b.num_rows() {
            let (t, c) = (term.value(i), chunk.value(i));
            let count = u64::try_from(n.value(i)).map_err(|_| broken("a negative count"))?;
            let set = persons
                .get(i)
                .and_then(|bytes| RoaringBitmap::deserialize_from(bytes).ok())
                .ok_or_else(|| broken("a set is missing or unreadable"))?;
            if t >= terms || !given.insert((t, c)) {
                return Err(broken("a (term, chunk) twice or out of range"));
            }
            let first = u64::from(c) << CHUNK_BITS;
            let inside = set.min().is_some_and(|m| u64::from(m) >= first)
                && set
                    .max()
                    .is_some_and(|m| u64::from(m) < first + (1 << CHUNK_BITS));
            if !inside || set.len() > count {
                return Err(broken("a set does not match its chunk or its rows"));
            }
            total += count;
            out[t as usize] |= set;
        }
    }
    if total != written {
        return Err(broken("the rows do not add up to those written"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BinaryArray, Int64Array, UInt32Array};

    fn set(persons: &[u32]) -> Vec<u8> {
        let b: RoaringBitmap = persons.iter().copied().collect();
        let mut out = Vec::new();
        b.serialize_into(&mut out).expect("serialized");
        out
    }

    /// A row of an answer: term, chunk, persons, rows.
    type Row = (u32, u32, Vec<u8>, i64);

    fn answer(rows: &[Row]) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(BinaryArray::from_iter_values(rows.iter().map(|r| &r.2))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3))),
        ];
        RecordBatch::try_from_iter(["term", "chunk", "persons", "n"].into_iter().zip(cols))
            .expect("batch")
    }

    #[test]
    fn only_a_whole_answer_is_taken() {
        let far = 3 << CHUNK_BITS;
        let good = vec![
            (0, 0, set(&[1, 5]), 3),
            (0, 3, set(&[far + 2]), 1),
            (1, 0, set(&[5]), 1),
        ];
        let got = sets(&[answer(&good)], 3, 5).expect("whole");
        assert_eq!(
            got[0],
            [1, 5, far + 2].into_iter().collect::<RoaringBitmap>()
        );
        assert_eq!(got[1].len(), 1);
        assert!(got[2].is_empty());
        let broken: Vec<(Vec<Row>, u64)> = vec![
            // A (term, chunk) twice, as after a stage ran again.
            ([good.clone(), vec![(1, 0, set(&[5]), 1)]].concat(), 6),
            // A person outside its chunk.
            (vec![(0, 1, set(&[1]), 1)], 1),
            // More persons than rows.
            (vec![(0, 0, set(&[1, 2]), 1)], 1),
            // Rows lost.
            (good.clone(), 6),
            // A term past those asked for, an empty or unreadable set.
            (vec![(3, 0, set(&[1]), 1)], 1),
            (vec![(0, 0, set(&[]), 1)], 1),
            (vec![(0, 0, b"not a set".to_vec(), 1)], 1),
            (vec![(0, 0, set(&[1]), -1)], 1),
        ];
        for (rows, written) in broken {
            assert!(sets(&[answer(&rows)], 3, written).is_err(), "{rows:?}");
        }
    }
}
