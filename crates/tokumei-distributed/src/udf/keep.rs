//! `tk_keep(scoring, levels, deterministic, tf_0, …, tf_{n-1})`: whether the linkage's model keeps a
//! candidate pair, by the linkage's own [`Scoring`] (the weight the driver computes, to the bit).
//! `scoring` is [`Scoring::spec`] (a literal of the query); `levels` the packed levels of `tk_levels`;
//! `tf_c` the term frequency comparison `c` reads at its term-frequency level (null otherwise).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder};
use datafusion::arrow::datatypes::{DataType, Float64Type, UInt64Type};
use datafusion::common::{exec_err, DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use tokumei_linkage::{unpack_levels, Scoring};

use super::{fault, text_arg};

/// Name of the function.
pub const KEEP: &str = "tk_keep";

/// `tk_keep`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Keep {
    signature: Signature,
}

impl Default for Keep {
    fn default() -> Self {
        Keep {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// A column of term frequencies: numbers, or a null literal.
fn frequencies(a: &ArrayRef) -> Result<Option<&datafusion::arrow::array::Float64Array>> {
    match a.data_type() {
        DataType::Float64 => Ok(Some(a.as_primitive::<Float64Type>())),
        DataType::Null => Ok(None),
        other => exec_err!("tk_keep: a term frequency is {other}"),
    }
}

impl ScalarUDFImpl for Keep {
    fn name(&self) -> &str {
        KEEP
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        fault("executor.keep");
        let n = args.number_rows;
        let mut it = args.args.into_iter();
        let scoring = Scoring::from_spec(&text_arg(it.next(), "scoring")?)
            .map_err(|e| DataFusionError::Execution(format!("tk_keep: {e}")))?;
        let arrays: Vec<ArrayRef> = it.map(|v| v.into_array(n)).collect::<Result<_>>()?;
        let nc = scoring.comparisons();
        if arrays.len() != 2 + nc || nc > 16 {
            return exec_err!(
                "tk_keep: {} arguments, the scoring needs {}",
                arrays.len() + 1,
                3 + nc
            );
        }
        let (Some(g), Some(det)) = (
            arrays[0].as_primitive_opt::<UInt64Type>(),
            arrays[1].as_boolean_opt(),
        ) else {
            return exec_err!("tk_keep: the levels or the deterministic flag are mistyped");
        };
        let tf: Vec<_> = arrays[2..].iter().map(frequencies).collect::<Result<_>>()?;
        let mut out = BooleanBuilder::with_capacity(n);
        let mut levels = [0u8; 16];
        for i in 0..n {
            if g.is_null(i) || det.is_null(i) {
                out.append_null();
                continue;
            }
            unpack_levels(g.value(i), nc, &mut levels[..nc]);
            let frequency = |c: usize| tf[c].and_then(|a| (!a.is_null(i)).then(|| a.value(i)));
            let w = scoring.weight(&levels[..nc], det.value(i), frequency);
            out.append_value(scoring.keeps(w));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
