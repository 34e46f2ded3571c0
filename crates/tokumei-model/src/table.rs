//! Mapping between flat Rust row structs and Arrow record batches.
//!
//! Every canonical table is a flat struct declared with [`crate::table!`]; each field type implements
//! [`Column`], which knows its Arrow data type, how to build an array from a column of values and how to
//! read one value back. This keeps the schema, the writer and the reader of a table in one declaration.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray,
};
use arrow_schema::{DataType, SchemaRef};
use chrono::NaiveDate;

use crate::ModelError;

/// Days between 0001-01-01 (CE day 1) and the Unix epoch, for Arrow `Date32`.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

/// Converts a date to Arrow's `Date32` (days since 1970-01-01).
pub fn date_to_days(d: NaiveDate) -> i32 {
    use chrono::Datelike;
    d.num_days_from_ce() - UNIX_EPOCH_CE_DAYS
}

/// Converts Arrow's `Date32` back to a date.
pub fn days_to_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_CE_DAYS)?)
}

/// A value type that can be stored as one Arrow column.
pub trait Column: Sized {
    /// Arrow type of the column.
    fn data_type() -> DataType;
    /// Whether the column admits nulls.
    const NULLABLE: bool;
    /// Builds the array for a column of values.
    fn build<'a, I>(values: I) -> ArrayRef
    where
        I: Iterator<Item = &'a Self>,
        Self: 'a;
    /// Reads the value at `row`; `column` names the column for errors.
    fn read(array: &dyn Array, row: usize, column: &str) -> Result<Self, ModelError>;
}

fn downcast<'a, T: 'static>(array: &'a dyn Array, column: &str) -> Result<&'a T, ModelError> {
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| ModelError::ColumnType {
            column: column.to_string(),
            found: array.data_type().to_string(),
        })
}

fn null_error(column: &str, row: usize) -> ModelError {
    ModelError::UnexpectedNull {
        column: column.to_string(),
        row,
    }
}

macro_rules! primitive_column {
    ($ty:ty, $dt:expr, $arr:ty, $to:expr, $from:expr) => {
        impl Column for $ty {
            fn data_type() -> DataType {
                $dt
            }
            const NULLABLE: bool = false;
            fn build<'a, I: Iterator<Item = &'a Self>>(values: I) -> ArrayRef {
                #[allow(clippy::redundant_closure_call)]
                Arc::new(values.map(|v| Some(($to)(v))).collect::<$arr>())
            }
            fn read(array: &dyn Array, row: usize, column: &str) -> Result<Self, ModelError> {
                let a = downcast::<$arr>(array, column)?;
                if a.is_null(row) {
                    return Err(null_error(column, row));
                }
                #[allow(clippy::redundant_closure_call)]
                ($from)(a.value(row), column)
            }
        }
        impl Column for Option<$ty> {
            fn data_type() -> DataType {
                $dt
            }
            const NULLABLE: bool = true;
            fn build<'a, I: Iterator<Item = &'a Self>>(values: I) -> ArrayRef {
                #[allow(clippy::redundant_closure_call)]
                Arc::new(
                    values
                        .map(|v| v.as_ref().map(|x| ($to)(x)))
                        .collect::<$arr>(),
                )
            }
            fn read(array: &dyn Array, row: usize, column: &str) -> Result<Self, ModelError> {
                let a = downcast::<$arr>(array, column)?;
                if a.is_null(row) {
                    return Ok(None);
                }
                #[allow(clippy::redundant_closure_call)]
                ($from)(a.value(row), column).map(Some)
            }
        }
    };
}

primitive_column!(
    String,
    DataType::Utf8,
    StringArray,
    |v: &String| v.clone(),
    |v: &str, _c: &str| Ok(v.to_string())
);
primitive_column!(
    i32,
    DataType::Int32,
    Int32Array,
    |v: &i32| *v,
    |v: i32, _c: &str| Ok(v)
);
primitive_column!(
    i64,
    DataType::Int64,
    Int64Array,
    |v: &i64| *v,
    |v: i64, _c: &str| Ok(v)
);
primitive_column!(
    f64,
    DataType::Float64,
    Float64Array,
    |v: &f64| *v,
    |v: f64, _c: &str| Ok(v)
);
primitive_column!(
    bool,
    DataType::Boolean,
    BooleanArray,
    |v: &bool| *v,
    |v: bool, _c: &str| Ok(v)
);
primitive_column!(
    NaiveDate,
    DataType::Date32,
    Date32Array,
    |v: &NaiveDate| date_to_days(*v),
    |v: i32, c: &str| days_to_date(v).ok_or_else(|| ModelError::InvalidValue {
        column: c.to_string(),
        value: v.to_string(),
    })
);

/// Implements [`Column`] for a field-less enum stored as its string code.
#[macro_export]
macro_rules! code_column {
    ($ty:ty) => {
        impl $crate::table::Column for $ty {
            fn data_type() -> ::arrow_schema::DataType {
                ::arrow_schema::DataType::Utf8
            }
            const NULLABLE: bool = false;
            fn build<'a, I: Iterator<Item = &'a Self>>(values: I) -> ::arrow_array::ArrayRef {
                ::std::sync::Arc::new(
                    values
                        .map(|v| Some(v.code()))
                        .collect::<::arrow_array::StringArray>(),
                )
            }
            fn read(
                array: &dyn ::arrow_array::Array,
                row: usize,
                column: &str,
            ) -> Result<Self, $crate::ModelError> {
                let s = <String as $crate::table::Column>::read(array, row, column)?;
                <$ty>::from_code(&s).ok_or_else(|| $crate::ModelError::InvalidValue {
                    column: column.to_string(),
                    value: s,
                })
            }
        }
        impl $crate::table::Column for Option<$ty> {
            fn data_type() -> ::arrow_schema::DataType {
                ::arrow_schema::DataType::Utf8
            }
            const NULLABLE: bool = true;
            fn build<'a, I: Iterator<Item = &'a Self>>(values: I) -> ::arrow_array::ArrayRef {
                ::std::sync::Arc::new(
                    values
                        .map(|v| v.as_ref().map(|x| x.code()))
                        .collect::<::arrow_array::StringArray>(),
                )
            }
            fn read(
                array: &dyn ::arrow_array::Array,
                row: usize,
                column: &str,
            ) -> Result<Self, $crate::ModelError> {
                let s = <Option<String> as $crate::table::Column>::read(array, row, column)?;
                match s {
                    None => Ok(None),
                    Some(s) => <$ty>::from_code(&s).map(Some).ok_or_else(|| {
                        $crate::ModelError::InvalidValue {
                            column: column.to_string(),
                            value: s,
                        }
                    }),
                }
            }
        }
    };
}

/// A canonical table: a flat row struct with an Arrow schema.
pub trait Table: Sized {
    /// Table name, used as the Parquet file stem.
    const NAME: &'static str;
    /// The Arrow schema of the table.
    fn schema() -> SchemaRef;
    /// Converts rows to one record batch.
    fn to_batch(rows: &[Self]) -> Result<arrow_array::RecordBatch, ModelError>;
    /// Reads rows back from a record batch (columns matched by name).
    fn from_batch(batch: &arrow_array::RecordBatch) -> Result<Vec<Self>, ModelError>;
}

/// Declares a flat row struct and implements [`Table`] for it.
#[macro_export]
macro_rules! table {
    (
        $(#[$meta:meta])*
        pub struct $name:ident : $table_name:literal {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty ),*
        }

        impl $crate::table::Table for $name {
            const NAME: &'static str = $table_name;

            fn schema() -> ::arrow_schema::SchemaRef {
                ::std::sync::Arc::new(::arrow_schema::Schema::new(vec![
                    $( ::arrow_schema::Field::new(
                        stringify!($field),
                        <$ty as $crate::table::Column>::data_type(),
                        <$ty as $crate::table::Column>::NULLABLE,
                    ) ),*
                ]))
            }

            fn to_batch(rows: &[Self]) -> Result<::arrow_array::RecordBatch, $crate::ModelError> {
                let columns: Vec<::arrow_array::ArrayRef> = vec![
                    $( <$ty as $crate::table::Column>::build(rows.iter().map(|r| &r.$field)) ),*
                ];
                Ok(::arrow_array::RecordBatch::try_new(Self::schema(), columns)?)
            }

            fn from_batch(batch: &::arrow_array::RecordBatch) -> Result<Vec<Self>, $crate::ModelError> {
                $(
                    let $field = batch.column_by_name(stringify!($field)).ok_or_else(|| {
                        $crate::ModelError::MissingColumn(stringify!($field).to_string())
                    })?;
                )*
                let mut out = Vec::with_capacity(batch.num_rows());
                for row in 0..batch.num_rows() {
                    out.push($name {
                        $( $field: <$ty as $crate::table::Column>::read(
                            $field.as_ref(), row, stringify!($field))? ),*
                    });
                }
                Ok(out)
            }
        }
    };
}

/// The file of part `n` (from 1) of a table written in parts: part 1 is `first` itself, part `n` is
/// `<stem>-NNNN.<ext>` next to it (`encounters.parquet`, `encounters-0002.parquet`, ...).
pub fn part_path(first: &std::path::Path, n: u32) -> std::path::PathBuf {
    if n <= 1 {
        return first.to_path_buf();
    }
    let stem = first.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let name = match first.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!("{stem}-{n:04}.{ext}"),
        None => format!("{stem}-{n:04}"),
    };
    first.with_file_name(name)
}

/// Every file of a table written in parts, in order: `first`, then the parts that follow it while
/// they exist (at most 9,999 parts).
pub fn part_paths(first: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![first.to_path_buf()];
    for n in 2..=9_999 {
        let p = part_path(first, n);
        if !p.is_file() {
            break;
        }
        out.push(p);
    }
    out
}
