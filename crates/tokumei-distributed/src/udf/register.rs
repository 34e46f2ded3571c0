//! `tk_register_classes(classes, key, sex, birth, municipality)`: the classes a register person
//! agrees with (the battery's own [`ClassFinder`]) and [`SEEN`], as a list;
//! `tk_register_score(classes, ratios, key, sex, birth, municipality)`: the membership attacker's
//! score of a register person, as the bits of the number.
//!
//! `classes` and `ratios` name sealed files of the job's folder; each is read, checked and opened
//! once per process. The person's values are sealed under `key` and opened in memory only.

use std::collections::HashMap;
use std::path::{Component, Path};
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::arrow::array::{ArrayRef, ListBuilder, UInt32Builder, UInt64Builder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_err, DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use tokumei_model::register::{score, ClassFinder, RegisterPerson};

use super::{fault, job_key, text_arg, Sealed};
use crate::job::job_name;
use crate::register::{finder_of_text, person, ratios_of_text, CLASSES_FILE, RATIOS_FILE, SEEN};
use crate::seal::Sealer;

/// Name of the classes function.
pub const CLASSES: &str = "tk_register_classes";

/// Name of the score function.
pub const SCORE: &str = "tk_register_score";

/// The largest job file read (a class per line).
const LARGEST: u64 = 1 << 30;

/// At most this many job files are kept opened in one process.
const KEEP: usize = 4;

/// What a job file holds, opened.
#[derive(Clone)]
enum Opened {
    Classes(Arc<ClassFinder>),
    Ratios(Arc<Vec<f64>>),
}

/// A job file's path, when it is one: absolute, plain, named `file` in a job's folder.
fn job_file<'p>(path: &'p str, file: &str) -> Result<&'p Path> {
    let p = Path::new(path);
    let plain = p.is_absolute()
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let folder = p
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str());
    let ok = plain
        && p.file_name().is_some_and(|n| n == file)
        && folder.is_some_and(|f| job_name(f) == Some(f));
    if ok {
        Ok(p)
    } else {
        exec_err!("a register function was given a path that is not a job's {file}")
    }
}

/// The job file at `path` (named `file`), opened under `key`, read once per process.
fn opened(path: &str, file: &str, key: &[u8]) -> Result<Opened> {
    /// Opened files by (path, key).
    type Files = HashMap<(String, Vec<u8>), Opened>;
    static CACHE: OnceLock<Mutex<Files>> = OnceLock::new();
    let p = job_file(path, file)?;
    let cache = CACHE.get_or_init(Default::default);
    let id = (path.to_string(), key.to_vec());
    if let Some(o) = cache.lock().ok().and_then(|m| m.get(&id).cloned()) {
        return Ok(o);
    }
    let broken = || DataFusionError::Execution(format!("the job's {file} does not open"));
    let size = std::fs::metadata(p).map_err(|_| broken())?.len();
    if size > LARGEST {
        return Err(broken());
    }
    let sealed = std::fs::read(p).map_err(|_| broken())?;
    let text = Sealer::new(key).open(&sealed).ok_or_else(broken)?;
    let o = if file == CLASSES_FILE {
        Opened::Classes(Arc::new(finder_of_text(&text).ok_or_else(broken)?))
    } else {
        Opened::Ratios(Arc::new(ratios_of_text(&text).ok_or_else(broken)?))
    };
    if let Ok(mut m) = cache.lock() {
        if m.len() >= KEEP {
            m.clear();
        }
        m.insert(id, o.clone());
    }
    Ok(o)
}

fn finder(path: &str, key: &[u8]) -> Result<Arc<ClassFinder>> {
    match opened(path, CLASSES_FILE, key)? {
        Opened::Classes(f) => Ok(f),
        Opened::Ratios(_) => exec_err!("the job's classes are not classes"),
    }
}

fn ratios(path: &str, key: &[u8]) -> Result<Arc<Vec<f64>>> {
    match opened(path, RATIOS_FILE, key)? {
        Opened::Ratios(r) => Ok(r),
        Opened::Classes(_) => exec_err!("the job's ratios are not ratios"),
    }
}

/// The register persons of the three sealed value columns, one by one.
fn persons(
    n: usize,
    values: Vec<ColumnarValue>,
    sealer: &Sealer,
    mut each: impl FnMut(&RegisterPerson),
) -> Result<()> {
    let arrays: Vec<ArrayRef> = values
        .into_iter()
        .map(|v| v.into_array(n))
        .collect::<Result<_>>()?;
    if arrays.len() != 3 {
        return exec_err!("a register function takes sex, birth and municipality");
    }
    let cols: Vec<Sealed> = arrays.iter().map(Sealed::new).collect::<Result<_>>()?;
    let open = |c: usize, i: usize| cols[c].get(i).and_then(|b| sealer.open(b));
    for i in 0..n {
        each(&person(open(0, i), open(1, i), open(2, i)));
    }
    Ok(())
}

/// `tk_register_classes`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Classes {
    signature: Signature,
}

impl Default for Classes {
    fn default() -> Self {
        Classes {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

fn class_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::UInt32, true)))
}

impl ScalarUDFImpl for Classes {
    fn name(&self) -> &str {
        CLASSES
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(class_list())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        fault("executor.register");
        let n = args.number_rows;
        let mut it = args.args.into_iter();
        let path = text_arg(it.next(), "classes file")?;
        let key = job_key(&text_arg(it.next(), "key")?)?;
        let f = finder(&path, &key)?;
        let mut out = ListBuilder::with_capacity(UInt32Builder::new(), n)
            .with_field(Arc::new(Field::new("item", DataType::UInt32, true)));
        let mut found = Vec::new();
        persons(n, it.collect(), &Sealer::new(&key), |p| {
            f.classes_of(p, &mut found);
            out.values().append_slice(&found);
            out.values().append_value(SEEN);
            out.append(true);
        })?;
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `tk_register_score`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Score {
    signature: Signature,
}

impl Default for Score {
    fn default() -> Self {
        Score {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Score {
    fn name(&self) -> &str {
        SCORE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let mut it = args.args.into_iter();
        let classes = text_arg(it.next(), "classes file")?;
        let ratio_file = text_arg(it.next(), "ratios file")?;
        let key = job_key(&text_arg(it.next(), "key")?)?;
        let (f, r) = (finder(&classes, &key)?, ratios(&ratio_file, &key)?);
        if r.len() != f.classes().len() {
            return exec_err!("the job's ratios are not one per class");
        }
        let mut out = UInt64Builder::with_capacity(n);
        let mut found = Vec::new();
        persons(n, it.collect(), &Sealer::new(&key), |p| {
            f.classes_of(p, &mut found);
            out.append_value(score(&found, &r).to_bits());
        })?;
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_job_s_own_files_are_read() {
        let ok = "/work/engine/job-0123456789abcdef/classes.spec";
        assert!(job_file(ok, CLASSES_FILE).is_ok());
        for bad in [
            "work/engine/job-0123456789abcdef/classes.spec",
            "/work/engine/job-0123456789abcdef/../job-0123456789abcdef/classes.spec",
            "/work/engine/job-0123/classes.spec",
            "/etc/passwd",
            "/work/engine/job-0123456789abcdef/ratios.spec",
            "/classes.spec",
        ] {
            assert!(job_file(bad, CLASSES_FILE).is_err(), "{bad}");
        }
    }
}
