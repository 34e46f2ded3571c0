//! A columnar in-memory table of text values, read from CSV or built in memory.

use std::io::Read;
use std::path::Path;

use crate::error::LinkageError;

/// One text column: values packed into one buffer, `None` for missing.
#[derive(Debug, Clone, Default)]
pub struct TextColumn {
    buf: String,
    /// End offset of every value in `buf`; `u32::MAX`-free (values are delimited by the previous end).
    ends: Vec<usize>,
    present: Vec<bool>,
}

impl TextColumn {
    /// Appends a value; empty and whitespace-only strings count as missing.
    pub fn push(&mut self, value: Option<&str>) {
        match value {
            Some(v) if !v.trim().is_empty() => {
                self.buf.push_str(v);
                self.present.push(true);
            }
            _ => self.present.push(false),
        }
        self.ends.push(self.buf.len());
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The value at `row`, `None` when missing or out of range.
    pub fn get(&self, row: usize) -> Option<&str> {
        if !*self.present.get(row)? {
            return None;
        }
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        self.buf.get(start..self.ends[row])
    }
}

/// A table of text columns addressed by name, e.g. one CSV file.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Name used in messages (the file path for CSV input).
    pub name: String,
    names: Vec<String>,
    columns: Vec<TextColumn>,
    rows: usize,
}

impl Dataset {
    /// An empty table with these columns.
    pub fn new(name: impl Into<String>, columns: &[&str]) -> Self {
        Dataset {
            name: name.into(),
            names: columns.iter().map(|c| c.to_string()).collect(),
            columns: vec![TextColumn::default(); columns.len()],
            rows: 0,
        }
    }

    /// Builds a table from named columns of equal length.
    pub fn from_columns(
        name: impl Into<String>,
        columns: Vec<(String, Vec<Option<String>>)>,
    ) -> Result<Self, LinkageError> {
        let name = name.into();
        let rows = columns.first().map(|c| c.1.len()).unwrap_or(0);
        let mut ds = Dataset {
            name: name.clone(),
            ..Default::default()
        };
        for (col, values) in columns {
            if values.len() != rows {
                return Err(LinkageError::Input {
                    file: name,
                    message: format!(
                        "column `{col}` has {} values, expected {rows}",
                        values.len()
                    ),
                });
            }
            if ds.names.contains(&col) {
                return Err(LinkageError::Input {
                    file: name,
                    message: format!("duplicate column `{col}`"),
                });
            }
            let mut tc = TextColumn::default();
            for v in &values {
                tc.push(v.as_deref());
            }
            ds.names.push(col);
            ds.columns.push(tc);
        }
        ds.rows = rows;
        Ok(ds)
    }

    /// The table of the columns `settings` use, its id column first, one row per record: `text`
    /// gives a record's value of a column (`None` when empty). How a caller's own records (the
    /// vault's identity records, for one) become the linkage's input.
    pub fn of_records<R>(
        name: impl Into<String>,
        settings: &crate::Settings,
        records: &[R],
        text: impl Fn(&R, &str) -> Option<String>,
    ) -> Result<Self, LinkageError> {
        let columns = settings.used_columns();
        let mut names: Vec<&str> = vec![settings.id_column.as_str()];
        names.extend(
            columns
                .iter()
                .map(String::as_str)
                .filter(|c| *c != settings.id_column),
        );
        let mut data = Dataset::new(name, &names);
        for r in records {
            let row: Vec<Option<String>> = names.iter().map(|c| text(r, c)).collect();
            let refs: Vec<Option<&str>> = row.iter().map(|v| v.as_deref()).collect();
            data.push_row(&refs)?;
        }
        Ok(data)
    }

    /// Appends a row (one value per column, in column order).
    pub fn push_row(&mut self, values: &[Option<&str>]) -> Result<(), LinkageError> {
        if values.len() != self.columns.len() {
            return Err(LinkageError::Input {
                file: self.name.clone(),
                message: format!(
                    "row {} has {} values, expected {}",
                    self.rows + 1,
                    values.len(),
                    self.columns.len()
                ),
            });
        }
        for (c, v) in self.columns.iter_mut().zip(values) {
            c.push(*v);
        }
        self.rows += 1;
        Ok(())
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Column names in order.
    pub fn column_names(&self) -> &[String] {
        &self.names
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&TextColumn> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.columns[i])
    }

    /// A column by name, or the error naming this table and the column.
    pub fn require(&self, name: &str) -> Result<&TextColumn, LinkageError> {
        self.column(name)
            .ok_or_else(|| LinkageError::MissingColumn {
                file: self.name.clone(),
                column: name.to_string(),
            })
    }

    /// Reads a CSV file with a header line. `encoding` is `utf-8` (default) or any label known to the
    /// WHATWG Encoding Standard such as `shift_jis`; a UTF-8 byte-order mark is skipped.
    pub fn read_csv(path: &Path, encoding: &str) -> Result<Self, LinkageError> {
        let file = path.display().to_string();
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|source| LinkageError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let label = encoding.trim().to_ascii_lowercase();
        let utf8 = matches!(label.as_str(), "" | "utf-8" | "utf8");
        if !utf8 {
            let enc = encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
                LinkageError::Settings {
                    file: "<settings>".into(),
                    message: format!("unknown encoding `{encoding}`"),
                }
            })?;
            let (text, _, had_errors) = enc.decode(&bytes);
            if had_errors {
                // Find the first line that does not decode, for the message.
                let line = bytes
                    .split(|b| *b == b'\n')
                    .position(|l| enc.decode_without_bom_handling(l).1)
                    .map(|p| p as u64 + 1)
                    .unwrap_or(1);
                return Err(LinkageError::Encoding {
                    file,
                    line,
                    column: "?".into(),
                    encoding: encoding.to_string(),
                });
            }
            return Self::parse_csv(&file, text.as_bytes(), encoding);
        }
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        Self::parse_csv(&file, body, "UTF-8")
    }

    /// Parses CSV bytes (already UTF-8 unless a cell is invalid, which is reported).
    pub fn parse_csv(file: &str, bytes: &[u8], encoding: &str) -> Result<Self, LinkageError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(bytes);
        let header = reader
            .byte_headers()
            .map_err(|e| csv_error(file, &e))?
            .clone();
        let mut names = Vec::with_capacity(header.len());
        for (i, h) in header.iter().enumerate() {
            let h = std::str::from_utf8(h).map_err(|_| LinkageError::Encoding {
                file: file.to_string(),
                line: 1,
                column: format!("#{}", i + 1),
                encoding: encoding.to_string(),
            })?;
            names.push(h.trim().to_string());
        }
        if names.is_empty() || names.iter().all(|n| n.is_empty()) {
            return Err(LinkageError::Input {
                file: file.to_string(),
                message: "no header line".into(),
            });
        }
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(LinkageError::Input {
                    file: file.to_string(),
                    message: format!("duplicate column `{n}`"),
                });
            }
        }
        let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let mut ds = Dataset::new(file, &refs);
        let mut record = csv::ByteRecord::new();
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(csv_error(file, &e)),
            }
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            for (i, field) in record.iter().enumerate() {
                let v = std::str::from_utf8(field).map_err(|_| LinkageError::Encoding {
                    file: file.to_string(),
                    line,
                    column: names[i].clone(),
                    encoding: encoding.to_string(),
                })?;
                ds.columns[i].push(Some(v));
            }
            ds.rows += 1;
        }
        Ok(ds)
    }
}

fn csv_error(file: &str, e: &csv::Error) -> LinkageError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields, expected {expected_len}"),
        csv::ErrorKind::Io(err) => err.to_string(),
        _ => "malformed CSV".to_string(),
    };
    LinkageError::Csv {
        file: file.to_string(),
        line,
        message,
    }
}
