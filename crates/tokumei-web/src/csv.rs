//! CSV downloads (the `csv` crate): RFC 4180 quoting, a UTF-8 byte order mark (so that spreadsheet programs read
//! Japanese text), and every cell that a spreadsheet would take for a formula (`=`, `+`, `-`, `@`,
//! a tab or a carriage return first) made inert by a leading apostrophe (OWASP's CSV injection
//! advice).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// A cell as written: made inert if a spreadsheet would evaluate it.
pub fn inert(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_string(),
    }
}

/// The whole file: the header, then each row (the `csv` crate's RFC 4180 quoting, CRLF line
/// ends), after a byte order mark; every cell made inert first.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(b"\xef\xbb\xbf".to_vec());
    let written = std::iter::once(header.iter().map(|h| inert(h)).collect::<Vec<_>>())
        .chain(rows.iter().map(|r| r.iter().map(|c| inert(c)).collect()))
        .try_for_each(|record| w.write_record(&record));
    // Writing into memory fails only on a bug; the file then ends where it failed.
    if let Err(e) = written {
        tracing::error!(error = %e, "a CSV download could not be written whole");
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A download of `body` as `name` (a name the server chose).
pub fn download(name: &'static str, body: String) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_inert_and_cells_quoted() {
        for v in ["=1+1", "+81-3", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(inert(v).starts_with('\''), "{v}");
        }
        assert_eq!(inert("架空病院"), "架空病院");
        assert_eq!(inert(""), "");
        let t = table(
            &["a", "b"],
            &[vec!["=HYPERLINK(\"x\")".into(), "1,2".into()]],
        );
        assert_eq!(t, "\u{feff}a,b\r\n\"'=HYPERLINK(\"\"x\"\")\",\"1,2\"\r\n");
    }
}
