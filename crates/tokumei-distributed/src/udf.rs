//! The functions Tokumei adds to DataFusion, registered in the client, the scheduler and every
//! executor ([`registry`]).
//!
//! `tk_levels(spec, key, left values…, right values…)` is the comparison levels of a candidate pair,
//! packed four bits per comparison (the linkage's own [`LevelFn`], so they are the levels of the
//! embedded run). The values are sealed (`seal`): equality is tested on the sealed bytes and a value is
//! opened under `key` (hex, the job's key) only when a similarity needs its text. `spec` is the level
//! function as text; both are literals of the query, and the function is compiled once per process.
//!
//! `tk_keep` (`keep`) is whether the linkage's model keeps a pair; `tk_register_classes` and
//! `tk_register_score` (`register`) the battery's register counts; the aggregate `tk_persons`
//! (`persons`) a group's persons as a roaring bitmap, for the feasibility code index.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt64Builder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    AggregateUDF, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use tokumei_linkage::LevelFn;

use crate::seal::Sealer;

mod keep;
mod persons;
mod register;

pub use persons::PERSONS;

/// Name of the level function.
pub const LEVELS: &str = "tk_levels";

/// At most this many level functions are kept compiled in one process.
const KEEP: usize = 16;

/// `tk_levels`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Levels {
    signature: Signature,
}

impl Default for Levels {
    fn default() -> Self {
        Levels {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// The compiled level function of a spec, compiled once per process.
fn level_fn(spec: &str) -> Result<Arc<LevelFn>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<LevelFn>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache
        .lock()
        .map_err(|_| DataFusionError::Execution("tk_levels: cache poisoned".into()))?;
    if let Some(f) = map.get(spec) {
        return Ok(f.clone());
    }
    let f = Arc::new(
        LevelFn::from_spec(spec)
            .map_err(|e| DataFusionError::Execution(format!("tk_levels: {e}")))?,
    );
    if map.len() >= KEEP {
        map.clear();
    }
    map.insert(spec.to_string(), f.clone());
    Ok(f)
}

/// Aborts the process when `TOKUMEI_FAULT_POINT` names `point` (tests of a worker killed mid-stage).
pub(crate) fn fault(point: &str) {
    if std::env::var_os("TOKUMEI_FAULT_POINT").is_some_and(|v| v == point) {
        std::process::abort();
    }
}

/// One column of bytes (sealed values, serialized sets), whatever its arrow binary type.
pub(crate) enum Sealed<'a> {
    Binary(&'a datafusion::arrow::array::BinaryArray),
    Large(&'a datafusion::arrow::array::LargeBinaryArray),
    View(&'a datafusion::arrow::array::BinaryViewArray),
}

impl<'a> Sealed<'a> {
    pub(crate) fn new(a: &'a ArrayRef) -> Result<Self> {
        Ok(match a.data_type() {
            DataType::Binary => Sealed::Binary(a.as_binary::<i32>()),
            DataType::LargeBinary => Sealed::Large(a.as_binary::<i64>()),
            DataType::BinaryView => Sealed::View(a.as_binary_view()),
            other => return exec_err!("a value column is {other}, not sealed bytes"),
        })
    }

    /// Rows of the column.
    pub(crate) fn len(&self) -> usize {
        match self {
            Sealed::Binary(a) => a.len(),
            Sealed::Large(a) => a.len(),
            Sealed::View(a) => a.len(),
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&'a [u8]> {
        match self {
            Sealed::Binary(a) => (!a.is_null(i)).then(|| a.value(i)),
            Sealed::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
            Sealed::View(a) => (!a.is_null(i)).then(|| a.value(i)),
        }
    }
}

/// A text literal argument.
pub(crate) fn text_arg(v: Option<ColumnarValue>, what: &str) -> Result<String> {
    match v {
        Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(s))))
        | Some(ColumnarValue::Scalar(ScalarValue::Utf8View(Some(s))))
        | Some(ColumnarValue::Scalar(ScalarValue::LargeUtf8(Some(s)))) => Ok(s),
        _ => exec_err!("the {what} must be a text literal"),
    }
}

/// The job key from its hex text (at most 64 bytes).
pub(crate) fn job_key(text: &str) -> Result<Vec<u8>> {
    hex::decode(text)
        .ok()
        .filter(|k| k.len() <= 64)
        .ok_or_else(|| DataFusionError::Execution("the job key is not hex".into()))
}

impl ScalarUDFImpl for Levels {
    fn name(&self) -> &str {
        LEVELS
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        fault("executor.levels");
        let n = args.number_rows;
        let mut it = args.args.into_iter();
        let f = level_fn(&text_arg(it.next(), "level spec")?)?;
        let sealer = Sealer::new(&job_key(&text_arg(it.next(), "key")?)?);
        let open = |b: &[u8]| sealer.open(b);
        let arrays: Vec<ArrayRef> = it.map(|v| v.into_array(n)).collect::<Result<_>>()?;
        let c = f.columns().len();
        if arrays.len() != 2 * c {
            return exec_err!(
                "tk_levels: {} value columns, the spec needs {}",
                arrays.len(),
                2 * c
            );
        }
        let cols: Vec<Sealed> = arrays.iter().map(Sealed::new).collect::<Result<_>>()?;
        let mut out = UInt64Builder::with_capacity(n);
        let (mut left, mut right) = (vec![None; c], vec![None; c]);
        for i in 0..n {
            for k in 0..c {
                left[k] = cols[k].get(i);
                right[k] = cols[c + k].get(i);
            }
            out.append_value(f.packed_sealed(&left, &right, &open));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// Every function Tokumei adds.
pub fn functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(Levels::default())),
        Arc::new(ScalarUDF::from(register::Classes::default())),
        Arc::new(ScalarUDF::from(register::Score::default())),
        Arc::new(ScalarUDF::from(keep::Keep::default())),
    ]
}

/// Every aggregate Tokumei adds.
pub fn aggregates() -> Vec<Arc<AggregateUDF>> {
    vec![Arc::new(AggregateUDF::from(persons::Persons::default()))]
}
