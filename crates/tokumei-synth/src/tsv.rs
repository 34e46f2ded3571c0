//! Reader for the embedded reference tables (tab-separated, with a header line).

use crate::SynthError;

/// Rows of an embedded TSV table, checked against the expected header.
pub fn rows<'a>(
    name: &'static str,
    text: &'a str,
    header: &[&str],
) -> Result<Vec<Vec<&'a str>>, SynthError> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let head: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    if head != header {
        return Err(SynthError::Data {
            table: name,
            line: 1,
            reason: format!("header {head:?}, expected {header:?}"),
        });
    }
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != header.len() {
            return Err(SynthError::Data {
                table: name,
                line: i + 2,
                reason: format!("{} fields, expected {}", fields.len(), header.len()),
            });
        }
        out.push(fields);
    }
    Ok(out)
}

/// Parses a numeric field of an embedded table.
pub fn num<T: std::str::FromStr>(
    table: &'static str,
    line: usize,
    field: &str,
) -> Result<T, SynthError> {
    field.parse().map_err(|_| SynthError::Data {
        table,
        line,
        reason: format!("`{field}` is not a number"),
    })
}
