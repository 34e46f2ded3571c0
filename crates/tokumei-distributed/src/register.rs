//! The re-identification battery's register counts on DataFusion or Ballista
//! ([`DistributedRegister`], a [`RegisterEngine`]).
//!
//! The register goes to the engine as Parquet files, a person in the file of a hash of their
//! position, their sex, birth date and municipality sealed under a key made for the job (`seal`);
//! the released classes go beside them as one sealed file. Two queries run:
//! 1. every register person's classes (`tk_register_classes`, the same [`ClassFinder`] as the
//!    embedded run, opened once per executor) unnested and counted per class; a sentinel class
//!    counted once per person checks that every person was read once;
//! 2. with members known, every person's score (`tk_register_score`: the highest release persons
//!    per look-alike over their classes) counted per (score, member); the counts add up to the
//!    register.
//!
//! Counts come back to the driver; the battery's figures are computed there, as in the embedded run.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, UInt32Type, UInt64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::ParquetReadOptions;
use tokumei_model::register::{
    ratios, score_counts, ClassFinder, RegisterCounts, RegisterEngine, RegisterError, RegisterJob,
    RegisterPerson,
};

use crate::job::{df_error, path_text, JobDir, Target};
use crate::seal::Sealer;
use crate::tables::{engine, io, part_of};
use crate::{cluster, DistributedError};

/// The class every person is counted in once, beside their own (a check that each was read once).
pub const SEEN: u32 = u32::MAX;

/// File of the released classes in a job's folder.
pub const CLASSES_FILE: &str = "classes.spec";

/// File of the classes' ratios in a job's folder.
pub const RATIOS_FILE: &str = "ratios.spec";

/// Rows per record batch written.
const BATCH: usize = 65_536;

/// A [`RegisterEngine`] on DataFusion or Ballista.
pub struct DistributedRegister {
    target: Target,
}

impl DistributedRegister {
    /// Counts on `target`'s engine, the register written under its work folder in its partitions'
    /// number of files.
    pub fn new(target: Target) -> Self {
        DistributedRegister { target }
    }

    async fn run(&self, job: &RegisterJob<'_>) -> Result<RegisterCounts, DistributedError> {
        let ctx = self.target.context().await?;
        let dir = JobDir::create(&self.target.work)?;
        let key = cluster::random_key()?;
        let sealer = Sealer::new(&key);
        let table = dir.dir.join("register");
        write_register(job, &sealer, &table, self.target.partitions)?;
        let classes = dir.dir.join(CLASSES_FILE);
        write_sealed(&classes, &sealer, &finder_text(job.finder))?;
        ctx.register_parquet(
            "register",
            path_text(&table)?,
            ParquetReadOptions::default(),
        )
        .await
        .map_err(df_error)?;
        let n = job.finder.classes().len();
        let people = job.register.len() as u64;
        let sql = groups_query(&classes, &key)?;
        let groups = self
            .target
            .whole(&ctx, &sql, |b| group_counts(b, n, people))
            .await?;
        let scores = match job.members {
            None => None,
            Some(_) => {
                let r = dir.dir.join(RATIOS_FILE);
                write_sealed(&r, &sealer, &ratios_text(&ratios(job.release, &groups)))?;
                let sql = scores_query(&classes, &r, &key)?;
                let read = |b: &[RecordBatch]| score_rows(b, people);
                Some(score_counts(self.target.whole(&ctx, &sql, read).await?))
            }
        };
        Ok(RegisterCounts { groups, scores })
    }
}

impl RegisterEngine for DistributedRegister {
    fn counts(&self, job: &RegisterJob<'_>) -> Result<RegisterCounts, RegisterError> {
        self.target
            .block_on(self.run(job))
            .map_err(|e| RegisterError(format!("{} engine: {e}", self.target.engine)))
    }
}

/// Writes `text` sealed to `path`.
fn write_sealed(path: &Path, sealer: &Sealer, text: &str) -> Result<(), DistributedError> {
    std::fs::write(path, sealer.seal(text)).map_err(io(path))
}

fn register_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("member", DataType::Boolean, false),
        Field::new("sex", DataType::Binary, true),
        Field::new("birth", DataType::Binary, true),
        Field::new("municipality", DataType::Binary, true),
    ]))
}

/// One batch of the register: the persons at `rows`.
fn register_batch(
    job: &RegisterJob<'_>,
    sealer: &Sealer,
    rows: &[usize],
) -> Result<RecordBatch, DistributedError> {
    let mut member = BooleanBuilder::with_capacity(rows.len());
    let (mut sex, mut birth, mut place) = (
        BinaryBuilder::new(),
        BinaryBuilder::new(),
        BinaryBuilder::new(),
    );
    for &i in rows {
        let p = &job.register[i];
        member.append_value(job.members.and_then(|m| m.get(i)).copied().unwrap_or(false));
        sex.append_option(p.sex.as_deref().map(|v| sealer.seal(v)));
        let day = p.birth.map(|d| d.format("%Y-%m-%d").to_string());
        birth.append_option(day.map(|v| sealer.seal(&v)));
        place.append_option(p.municipality.as_deref().map(|v| sealer.seal(v)));
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(member.finish()),
        Arc::new(sex.finish()),
        Arc::new(birth.finish()),
        Arc::new(place.finish()),
    ];
    RecordBatch::try_new(register_schema(), cols).map_err(engine)
}

/// Writes the register in `parts` files under `folder`.
fn write_register(
    job: &RegisterJob<'_>,
    sealer: &Sealer,
    folder: &Path,
    parts: usize,
) -> Result<(), DistributedError> {
    std::fs::create_dir_all(folder).map_err(io(folder))?;
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); parts.max(1)];
    for i in 0..job.register.len() {
        buckets[part_of(i as u32, parts)].push(i);
    }
    for (p, rows) in buckets.iter().enumerate() {
        let path = folder.join(format!("part-{p:04}.parquet"));
        let file = File::create(&path).map_err(io(&path))?;
        let mut w = ArrowWriter::try_new(file, register_schema(), None).map_err(engine)?;
        for chunk in rows.chunks(BATCH) {
            w.write(&register_batch(job, sealer, chunk)?)
                .map_err(engine)?;
        }
        w.close().map_err(engine)?;
    }
    Ok(())
}

/// A register person from the values an executor opened (no id: the counts need none).
pub(crate) fn person(
    sex: Option<String>,
    birth: Option<String>,
    municipality: Option<String>,
) -> RegisterPerson {
    RegisterPerson {
        id: String::new(),
        sex,
        birth: birth.and_then(|b| chrono::NaiveDate::parse_from_str(&b, "%Y-%m-%d").ok()),
        municipality,
    }
}

/// The text of a finder: a first line, the day ages are taken on, the columns, then one class per
/// line; a column in hex, a value as `=` and its hex, a blank as `-`, separated by `,`.
pub(crate) fn finder_text(f: &ClassFinder) -> String {
    let value = |v: &Option<String>| {
        v.as_deref()
            .map_or_else(|| "-".to_string(), |v| format!("={}", hex::encode(v)))
    };
    let mut out = format!(
        "tokumei register classes 1\n{}\n",
        f.end().format("%Y-%m-%d")
    );
    out.push_str(
        &f.columns()
            .iter()
            .map(hex::encode)
            .collect::<Vec<_>>()
            .join(","),
    );
    for class in f.classes() {
        out.push('\n');
        out.push_str(&class.iter().map(value).collect::<Vec<_>>().join(","));
    }
    out
}

/// The finder of [`finder_text`]'s text.
pub(crate) fn finder_of_text(text: &str) -> Option<ClassFinder> {
    let mut lines = text.split('\n');
    if lines.next()? != "tokumei register classes 1" {
        return None;
    }
    let end = chrono::NaiveDate::parse_from_str(lines.next()?, "%Y-%m-%d").ok()?;
    let unhex = |v: &str| String::from_utf8(hex::decode(v).ok()?).ok();
    let columns: Vec<String> = match lines.next()? {
        "" => Vec::new(),
        l => l.split(',').map(unhex).collect::<Option<_>>()?,
    };
    let mut classes = Vec::new();
    for line in lines {
        let class: Vec<Option<String>> = match line {
            "" => Vec::new(),
            l => l
                .split(',')
                .map(|v| match v.strip_prefix('=') {
                    Some(x) => unhex(x).map(Some),
                    None => (v == "-").then_some(None),
                })
                .collect::<Option<_>>()?,
        };
        if class.len() != columns.len() {
            return None;
        }
        classes.push(class);
    }
    Some(ClassFinder::new(&columns, classes, end))
}

/// The ratios as text: each one's bits in hex, one per line.
pub(crate) fn ratios_text(r: &[f64]) -> String {
    r.iter()
        .map(|x| format!("{:016x}", x.to_bits()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The ratios of [`ratios_text`]'s text.
pub(crate) fn ratios_of_text(text: &str) -> Option<Vec<f64>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split('\n')
        .map(|l| u64::from_str_radix(l, 16).ok().map(f64::from_bits))
        .collect()
}

/// A file's path as a SQL text literal.
fn path_literal(p: &Path) -> Result<String, DistributedError> {
    let s = p
        .to_str()
        .ok_or_else(|| DistributedError::Engine("the work folder's path is not UTF-8".into()))?;
    Ok(format!("'{}'", s.replace('\'', "''")))
}

/// Register persons per class (and [`SEEN`] per person).
fn groups_query(classes: &Path, key: &[u8; 16]) -> Result<String, DistributedError> {
    Ok(format!(
        "SELECT c, COUNT(*) AS n FROM (SELECT unnest(tk_register_classes({classes}, '{key}', \
         sex, birth, municipality)) AS c FROM register) t GROUP BY c",
        classes = path_literal(classes)?,
        key = hex::encode(key),
    ))
}

/// Register persons per (score bits, member).
fn scores_query(classes: &Path, ratios: &Path, key: &[u8; 16]) -> Result<String, DistributedError> {
    Ok(format!(
        "SELECT s, member, COUNT(*) AS n FROM (SELECT tk_register_score({classes}, {ratios}, \
         '{key}', sex, birth, municipality) AS s, member FROM register) t GROUP BY s, member",
        classes = path_literal(classes)?,
        ratios = path_literal(ratios)?,
        key = hex::encode(key),
    ))
}

fn broken(what: &str) -> DistributedError {
    DistributedError::Engine(format!("the register counts came back broken: {what}"))
}

/// The groups of the first query's answer: each class once, every person seen once.
fn group_counts(
    batches: &[RecordBatch],
    n: usize,
    people: u64,
) -> Result<Vec<u64>, DistributedError> {
    let mut groups = vec![0u64; n];
    let mut given = vec![false; n];
    let mut seen = None;
    for b in batches {
        let c = b.column(0).as_primitive::<UInt32Type>();
        let k = b.column(1).as_primitive::<Int64Type>();
        if c.null_count() + k.null_count() > 0 {
            return Err(broken("a count is missing"));
        }
        for i in 0..b.num_rows() {
            let count = u64::try_from(k.value(i)).map_err(|_| broken("a negative count"))?;
            match c.value(i) {
                SEEN if seen.is_none() => seen = Some(count),
                SEEN => return Err(broken("the persons were counted twice")),
                x => {
                    let x = x as usize;
                    if x >= n || std::mem::replace(&mut given[x], true) {
                        return Err(broken("a class twice or out of range"));
                    }
                    groups[x] = count;
                }
            }
        }
    }
    if seen.unwrap_or(0) != people {
        return Err(broken("not every person was read once"));
    }
    Ok(groups)
}

/// The (score bits, members, others) of the second query's answer: each once, adding up to the
/// register.
fn score_rows(
    batches: &[RecordBatch],
    people: u64,
) -> Result<Vec<(u64, u64, u64)>, DistributedError> {
    let mut by: std::collections::BTreeMap<u64, (Option<u64>, Option<u64>)> = Default::default();
    let mut total = 0u64;
    for b in batches {
        let s = b.column(0).as_primitive::<UInt64Type>();
        let m = b.column(1).as_boolean();
        let k = b.column(2).as_primitive::<Int64Type>();
        if s.null_count() + m.null_count() + k.null_count() > 0 {
            return Err(broken("a score is missing"));
        }
        for i in 0..b.num_rows() {
            let count = u64::try_from(k.value(i)).map_err(|_| broken("a negative count"))?;
            let e = by.entry(s.value(i)).or_default();
            let slot = if m.value(i) { &mut e.0 } else { &mut e.1 };
            if slot.replace(count).is_some() {
                return Err(broken("a score twice"));
            }
            total += count;
        }
    }
    if total != people {
        return Err(broken("the scores do not add up to the register"));
    }
    Ok(by
        .into_iter()
        .map(|(s, (m, o))| (s, m.unwrap_or(0), o.unwrap_or(0)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn finders_and_ratios_survive_their_text() {
        let end = NaiveDate::from_ymd_opt(2024, 3, 31).expect("date");
        let columns = ["sex", "age", "prefecture"].map(String::from);
        let none = ClassFinder::new(&[], vec![Vec::new()], end);
        let back = finder_of_text(&finder_text(&none)).expect("no columns");
        assert_eq!(back.classes().len(), 1);
        let classes = vec![
            vec![Some("M".into()), Some("40-49".into()), None],
            vec![Some("F".into()), Some("a,b\n-".into()), Some(String::new())],
        ];
        let f = ClassFinder::new(&columns, classes.clone(), end);
        let back = finder_of_text(&finder_text(&f)).expect("parsed");
        assert_eq!(back.columns(), &columns);
        assert_eq!(back.classes(), &classes[..]);
        assert_eq!(back.end(), end);
        let r = [0.5, 1.0 / 3.0, 0.0];
        assert_eq!(ratios_of_text(&ratios_text(&r)), Some(r.to_vec()));
        assert_eq!(ratios_of_text(""), Some(Vec::new()));
        for bad in ["", "other\n2024-03-31\n", "tokumei register classes 1\nx\n"] {
            assert!(finder_of_text(bad).is_none(), "{bad:?}");
        }
        let short = "tokumei register classes 1\n2024-03-31\n6161,6262\n=4d";
        assert!(finder_of_text(short).is_none());
        assert!(ratios_of_text("zz").is_none());
    }
}
