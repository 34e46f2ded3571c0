//! A dictionary-encoded, column-major table of text values, read from and written to CSV, Parquet and Arrow.
//!
//! Every column is stored as a dictionary of distinct values and one `u32` code per row, so a table of a
//! million rows costs a few bytes per cell and grouping works on integers.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use crate::error::{AnonError, Result};

/// One column: distinct values and a code per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Distinct values in order of first appearance.
    pub values: Vec<String>,
    /// Index into `values` for every row.
    pub codes: Vec<u32>,
}

impl Column {
    /// Builds a column from row values.
    pub fn from_values<S: AsRef<str>>(rows: &[S]) -> Self {
        let mut b = ColumnBuilder::default();
        for r in rows {
            b.push(r.as_ref());
        }
        b.finish()
    }

    /// The value of a row.
    pub fn get(&self, row: usize) -> &str {
        self.codes
            .get(row)
            .and_then(|&c| self.values.get(c as usize))
            .map(String::as_str)
            .unwrap_or("")
    }
}

#[derive(Default)]
struct ColumnBuilder {
    index: HashMap<String, u32>,
    values: Vec<String>,
    codes: Vec<u32>,
}

impl ColumnBuilder {
    fn push(&mut self, v: &str) {
        let code = match self.index.get(v) {
            Some(&c) => c,
            None => {
                let c = self.values.len() as u32;
                self.values.push(v.to_string());
                self.index.insert(v.to_string(), c);
                c
            }
        };
        self.codes.push(code);
    }
    fn finish(self) -> Column {
        Column {
            values: self.values,
            codes: self.codes,
        }
    }
}

/// A table of named text columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    names: Vec<String>,
    columns: Vec<Column>,
    rows: usize,
}

/// File formats the engine reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Delimited text with a header row.
    Csv {
        /// Field delimiter.
        delimiter: u8,
    },
    /// Apache Parquet (every column is written as UTF-8 text).
    Parquet,
}

impl Table {
    /// Builds a table from named columns of equal length.
    pub fn new(names: Vec<String>, columns: Vec<Column>) -> Result<Self> {
        if names.len() != columns.len() {
            return Err(AnonError::Config(format!(
                "{} column names for {} columns",
                names.len(),
                columns.len()
            )));
        }
        let rows = columns.first().map(|c| c.codes.len()).unwrap_or(0);
        for (n, c) in names.iter().zip(&columns) {
            if c.codes.len() != rows {
                return Err(AnonError::Config(format!(
                    "column `{n}` has {} rows, expected {rows}",
                    c.codes.len()
                )));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            if !seen.insert(n.as_str()) {
                return Err(AnonError::DuplicateColumn(n.clone()));
            }
        }
        Ok(Table {
            names,
            columns,
            rows,
        })
    }

    /// Builds a table from row-major string rows (handy in tests and for per-person QI tables).
    pub fn from_rows<S: AsRef<str>>(names: &[&str], rows: &[Vec<S>]) -> Result<Self> {
        let mut builders: Vec<ColumnBuilder> =
            names.iter().map(|_| ColumnBuilder::default()).collect();
        for (i, r) in rows.iter().enumerate() {
            if r.len() != names.len() {
                return Err(AnonError::Config(format!(
                    "row {} has {} fields, expected {}",
                    i + 1,
                    r.len(),
                    names.len()
                )));
            }
            for (b, v) in builders.iter_mut().zip(r) {
                b.push(v.as_ref());
            }
        }
        let columns = builders.into_iter().map(ColumnBuilder::finish).collect();
        Table::new(names.iter().map(|s| s.to_string()).collect(), columns)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Column names in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// All columns in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Index of a column by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.index_of(name).map(|i| &self.columns[i])
    }

    /// Guesses the format of a path from its extension (`.parquet`/`.pq` or delimited text).
    pub fn format_of(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
        {
            Some(e) if e == "parquet" || e == "pq" => Format::Parquet,
            Some(e) if e == "tsv" => Format::Csv { delimiter: b'\t' },
            _ => Format::Csv { delimiter: b',' },
        }
    }

    /// Reads a table, choosing the reader by extension. For CSV the delimiter is detected from the header
    /// (`;`, tab or `,`).
    pub fn read(path: &Path) -> Result<(Self, Format)> {
        match Table::format_of(path) {
            Format::Parquet => Ok((Table::read_parquet(path)?, Format::Parquet)),
            Format::Csv { .. } => {
                let file =
                    File::open(path).map_err(|e| AnonError::io(path.display().to_string(), e))?;
                let mut bytes = Vec::new();
                BufReader::new(file)
                    .read_to_end(&mut bytes)
                    .map_err(|e| AnonError::io(path.display().to_string(), e))?;
                let delimiter = detect_delimiter(&bytes);
                let t = Table::read_csv_bytes(&bytes, delimiter, &path.display().to_string())?;
                Ok((t, Format::Csv { delimiter }))
            }
        }
    }

    /// Parses delimited text with a header row.
    pub fn read_csv_bytes(bytes: &[u8], delimiter: u8, name: &str) -> Result<Self> {
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(false)
            .from_reader(bytes);
        let headers = rdr
            .headers()
            .map_err(|e| AnonError::Csv {
                path: name.to_string(),
                message: e.to_string(),
            })?
            .clone();
        let names: Vec<String> = headers
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_string())
            .collect();
        let mut builders: Vec<ColumnBuilder> =
            names.iter().map(|_| ColumnBuilder::default()).collect();
        let mut record = csv::ByteRecord::new();
        loop {
            match rdr.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    for (b, f) in builders.iter_mut().zip(record.iter()) {
                        let s = std::str::from_utf8(f).map_err(|_| AnonError::Csv {
                            path: name.to_string(),
                            message: format!(
                                "line {}: not UTF-8",
                                record.position().map(|p| p.line()).unwrap_or(0)
                            ),
                        })?;
                        b.push(s);
                    }
                }
                Err(e) => {
                    return Err(AnonError::Csv {
                        path: name.to_string(),
                        message: e.to_string(),
                    })
                }
            }
        }
        let columns = builders.into_iter().map(ColumnBuilder::finish).collect();
        Table::new(names, columns)
    }

    /// Reads every row group of a Parquet file; each column is converted to text.
    pub fn read_parquet(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| AnonError::io(name.clone(), e))?;
        let err = |m: String| AnonError::Arrow {
            path: name.clone(),
            message: m,
        };
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| err(e.to_string()))?
            .build()
            .map_err(|e| err(e.to_string()))?;
        let mut batches = Vec::new();
        for b in reader {
            batches.push(b.map_err(|e| err(e.to_string()))?);
        }
        Table::from_record_batches(&batches).map_err(|e| match e {
            AnonError::Arrow { message, .. } => err(message),
            other => other,
        })
    }

    /// Converts Arrow record batches (text, integer, float and boolean columns) into a table.
    pub fn from_record_batches(batches: &[RecordBatch]) -> Result<Self> {
        let Some(first) = batches.first() else {
            return Table::new(Vec::new(), Vec::new());
        };
        let schema = first.schema();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let mut builders: Vec<ColumnBuilder> =
            names.iter().map(|_| ColumnBuilder::default()).collect();
        for batch in batches {
            for (i, b) in builders.iter_mut().enumerate() {
                let col = batch.column(i);
                push_array(b, col.as_ref(), &names[i])?;
            }
        }
        let columns = builders.into_iter().map(ColumnBuilder::finish).collect();
        Table::new(names, columns)
    }

    /// The table as one Arrow record batch of UTF-8 columns.
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let fields: Vec<Field> = self
            .names
            .iter()
            .map(|n| Field::new(n, DataType::Utf8, false))
            .collect();
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|c| {
                let a: StringArray = c
                    .codes
                    .iter()
                    .map(|&k| Some(c.values[k as usize].as_str()))
                    .collect();
                Arc::new(a) as ArrayRef
            })
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| AnonError::Arrow {
            path: String::new(),
            message: e.to_string(),
        })
    }

    /// Writes the table in the given format.
    pub fn write(&self, path: &Path, format: Format) -> Result<()> {
        match format {
            Format::Csv { delimiter } => self.write_csv(path, delimiter),
            Format::Parquet => self.write_parquet(path),
        }
    }

    /// Writes delimited text with a header row.
    pub fn write_csv(&self, path: &Path, delimiter: u8) -> Result<()> {
        let name = path.display().to_string();
        let file = File::create(path).map_err(|e| AnonError::io(name.clone(), e))?;
        let mut w = BufWriter::new(file);
        self.write_csv_to(&mut w, delimiter)
            .map_err(|e| AnonError::io(name.clone(), e))?;
        w.flush().map_err(|e| AnonError::io(name, e))
    }

    /// Writes delimited text into any writer.
    pub fn write_csv_to<W: Write>(&self, w: W, delimiter: u8) -> std::io::Result<()> {
        let mut wr = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .from_writer(w);
        wr.write_record(&self.names)?;
        let mut rec: Vec<&str> = vec![""; self.columns.len()];
        for r in 0..self.rows {
            for (slot, c) in rec.iter_mut().zip(&self.columns) {
                *slot = c.values[c.codes[r] as usize].as_str();
            }
            wr.write_record(&rec)?;
        }
        wr.flush()
    }

    /// Writes a Parquet file of UTF-8 columns.
    pub fn write_parquet(&self, path: &Path) -> Result<()> {
        let name = path.display().to_string();
        let batch = self.to_record_batch()?;
        let file = File::create(path).map_err(|e| AnonError::io(name.clone(), e))?;
        let err = |m: String| AnonError::Arrow {
            path: name.clone(),
            message: m,
        };
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
            .map_err(|e| err(e.to_string()))?;
        w.write(&batch).map_err(|e| err(e.to_string()))?;
        w.close().map_err(|e| err(e.to_string()))?;
        Ok(())
    }
}

fn detect_delimiter(bytes: &[u8]) -> u8 {
    let header = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let count = |d: u8| header.iter().filter(|&&b| b == d).count();
    let (semi, tab, comma) = (count(b';'), count(b'\t'), count(b','));
    if semi >= comma && semi >= tab && semi > 0 {
        b';'
    } else if tab > comma {
        b'\t'
    } else {
        b','
    }
}

fn push_array(b: &mut ColumnBuilder, col: &dyn Array, name: &str) -> Result<()> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    macro_rules! prim {
        ($t:ty) => {{
            let a = col.as_primitive::<$t>();
            for i in 0..a.len() {
                if a.is_null(i) {
                    b.push("");
                } else {
                    b.push(&a.value(i).to_string());
                }
            }
        }};
    }
    match col.data_type() {
        DataType::Utf8 => {
            let a = col.as_string::<i32>();
            for i in 0..a.len() {
                b.push(if a.is_null(i) { "" } else { a.value(i) });
            }
        }
        DataType::LargeUtf8 => {
            let a = col.as_string::<i64>();
            for i in 0..a.len() {
                b.push(if a.is_null(i) { "" } else { a.value(i) });
            }
        }
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Float32 => prim!(Float32Type),
        DataType::Float64 => prim!(Float64Type),
        DataType::Boolean => {
            let a = col.as_boolean();
            for i in 0..a.len() {
                b.push(if a.is_null(i) {
                    ""
                } else if a.value(i) {
                    "true"
                } else {
                    "false"
                });
            }
        }
        other => {
            return Err(AnonError::Arrow {
                path: String::new(),
                message: format!("column `{name}` has unsupported type {other}"),
            })
        }
    }
    Ok(())
}
