//! CSV downloads: RFC 4180 quoting, a UTF-8 byte order mark (so that spreadsheet programs read
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

/// A cell quoted when it holds a comma, a quote or a line end.
fn quoted(value: &str) -> String {
    let v = inert(value);
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// The whole file: the header, then each row, CRLF line ends, after a byte order mark.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("\u{feff}");
    let line = |cells: Vec<String>| cells.join(",") + "\r\n";
    out.push_str(&line(header.iter().map(|h| quoted(h)).collect()));
    for row in rows {
        out.push_str(&line(row.iter().map(|c| quoted(c)).collect()));
    }
    out
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
