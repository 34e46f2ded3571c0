//! `tk_persons(person)`: an aggregate, the set of a group's persons (`UInt32` positions) as a
//! serialized roaring bitmap (the portable format, which `roaring` reads back checked). Partial
//! sets travel between stages in the same form and are merged by union.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt32Type};
use datafusion::common::{exec_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};
use roaring::RoaringBitmap;

use super::{fault, Sealed};

/// Name of the function.
pub const PERSONS: &str = "tk_persons";

/// `tk_persons`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Persons {
    signature: Signature,
}

impl Default for Persons {
    fn default() -> Self {
        Persons {
            signature: Signature::exact(vec![DataType::UInt32], Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for Persons {
    fn name(&self) -> &str {
        PERSONS
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::<Set>::default())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[persons]", args.name),
            DataType::Binary,
            true,
        ))])
    }
}

/// The persons of one group so far.
#[derive(Debug, Default)]
struct Set(RoaringBitmap);

impl Set {
    fn bytes(&self) -> Result<ScalarValue> {
        let mut out = Vec::with_capacity(self.0.serialized_size());
        self.0
            .serialize_into(&mut out)
            .map_err(|e| DataFusionError::Execution(format!("tk_persons: {e}")))?;
        Ok(ScalarValue::Binary(Some(out)))
    }
}

impl Accumulator for Set {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        fault("executor.persons");
        let Some(v) = values.first() else {
            return exec_err!("tk_persons: no argument");
        };
        if v.data_type() != &DataType::UInt32 {
            return exec_err!("tk_persons: a person is {}, not UInt32", v.data_type());
        }
        let v = v.as_primitive::<UInt32Type>();
        for i in 0..v.len() {
            if v.is_valid(i) {
                self.0.insert(v.value(i));
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(s) = states.first() else {
            return exec_err!("tk_persons: no state");
        };
        let s = Sealed::new(s)?;
        for i in 0..s.len() {
            if let Some(b) = s.get(i) {
                self.0 |= RoaringBitmap::deserialize_from(b).map_err(|e| {
                    DataFusionError::Execution(format!("tk_persons: a partial set: {e}"))
                })?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.bytes()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.bytes()
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.0.serialized_size()
    }
}
