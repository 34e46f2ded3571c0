//! Character-width conversions needed by the formats (not the linkage normalisation).

/// Converts ASCII letters, digits, space and hyphen to their full-width forms (as claims and cards
/// write 記号・番号); other characters are kept.
pub fn to_full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ' ' => '\u{3000}',
            '-' => '\u{2212}',
            '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// Converts full-width ASCII forms (and the full-width space and the minus and hyphen variants) back
/// to ASCII; other characters are kept.
pub fn to_half_width_ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{2212}' | '\u{2010}' | '\u{2011}' | '\u{2013}' | '\u{2014}' | '\u{30FC}' => '-',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_round_trip() {
        assert_eq!(to_full_width("1234-AB"), "１２３４−ＡＢ");
        assert_eq!(to_half_width_ascii("１２３４−ＡＢ"), "1234-AB");
        assert_eq!(to_half_width_ascii("１０−２３"), "10-23");
    }
}
