//! Names as the formats write them; width conversions are `tokumei_japan::fold`.

pub use tokumei_japan::fold::{to_full_width, to_half_width_ascii};

fn trimmed(s: &str) -> Option<String> {
    let t = s.trim_matches(|c| c == ' ' || c == '\u{3000}');
    (!t.is_empty()).then(|| t.to_string())
}

/// Splits a name written as 姓, a full-width or half-width space, then 名. Without a space the whole
/// name is taken as the surname.
pub fn split_name(s: &str) -> (Option<String>, Option<String>) {
    let s = s.trim_matches(|c| c == ' ' || c == '\u{3000}');
    if s.is_empty() {
        return (None, None);
    }
    match s.split_once(['\u{3000}', ' ']) {
        Some((a, b)) => (trimmed(a), trimmed(b)),
        None => (Some(s.to_string()), None),
    }
}

/// Joins 姓 and 名 with a full-width space, as [`split_name`] reads them; a lone 名 is not written.
pub fn join_name(surname: &Option<String>, given: &Option<String>) -> String {
    match (surname, given) {
        (Some(a), Some(b)) => format!("{a}\u{3000}{b}"),
        (Some(a), None) => a.clone(),
        _ => String::new(),
    }
}
