//! Check digits of Japanese public identifiers.

/// Check digit of an insurer number (保険者番号) body: the first 5 (市町村国保) or 7 digits.
///
/// From the rightmost digit multiply alternately by 2, 1, 2, 1, ..., add the digits of each product
/// (12 counts as 1 + 2), and take `(10 - sum mod 10) mod 10`. The same rule serves 公費負担者番号 and,
/// presumably, the 7-digit medical institution code. Returns `None` if `body` holds a non-digit.
pub fn insurer_check_digit(body: &str) -> Option<u8> {
    let mut sum = 0u32;
    for (i, c) in body.chars().rev().enumerate() {
        let d = c.to_digit(10)?;
        let p = if i % 2 == 0 { d * 2 } else { d };
        sum += p / 10 + p % 10;
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// Whether a full insurer number (6 or 8 digits) carries a valid check digit.
pub fn insurer_number_is_valid(number: &str) -> bool {
    if !(number.len() == 6 || number.len() == 8) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (body, check) = number.split_at(number.len() - 1);
    match (insurer_check_digit(body), check.parse::<u8>()) {
        (Some(c), Ok(d)) => c == d,
        _ => false,
    }
}

/// Appends the check digit to an insurer number body (5 or 7 digits).
pub fn with_insurer_check_digit(body: &str) -> Option<String> {
    insurer_check_digit(body).map(|c| format!("{body}{c}"))
}

/// Check digit of a 5-digit local government code (全国地方公共団体コード).
///
/// Weights 6, 5, 4, 3, 2 on the five digits; `r = sum mod 11`; the check is the last digit of `11 - r`.
pub fn local_government_check_digit(code5: &str) -> Option<u8> {
    if code5.len() != 5 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in code5.chars().zip([6u32, 5, 4, 3, 2]) {
        sum += c.to_digit(10)? * w;
    }
    Some(((11 - sum % 11) % 10) as u8)
}

/// Whether a 6-digit local government code carries a valid check digit.
pub fn local_government_code_is_valid(code6: &str) -> bool {
    if code6.len() != 6 || !code6.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (body, check) = code6.split_at(5);
    matches!((local_government_check_digit(body), check.parse::<u8>()), (Some(c), Ok(d)) if c == d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn insurer_examples_from_the_spec() {
        // 0113001 -> 2 (worked example), 06139992 is the sample 組合健保 number.
        assert_eq!(insurer_check_digit("0113001"), Some(2));
        assert!(insurer_number_is_valid("01130012"));
        assert!(insurer_number_is_valid("06139992"));
        assert!(!insurer_number_is_valid("06139993"));
        assert!(!insurer_number_is_valid("0613999"));
        assert!(!insurer_number_is_valid("0613999x"));
    }

    #[test]
    fn local_government_examples() {
        for code in [
            "022012", "022039", "022080", "022098", "022101", "023043", "131016",
        ] {
            assert!(local_government_code_is_valid(code), "{code}");
        }
        assert!(!local_government_code_is_valid("022013"));
    }

    proptest! {
        #[test]
        fn appended_check_digit_validates(body in "[0-9]{7}") {
            let full = with_insurer_check_digit(&body).unwrap();
            prop_assert!(insurer_number_is_valid(&full));
        }

        #[test]
        fn any_single_digit_change_is_caught(body in "[0-9]{7}", pos in 0usize..7, delta in 1u32..10) {
            // The 2-1 scheme catches every single-digit substitution.
            let full = with_insurer_check_digit(&body).unwrap();
            let mut chars: Vec<char> = full.chars().collect();
            let d = chars[pos].to_digit(10).unwrap();
            chars[pos] = char::from_digit((d + delta) % 10, 10).unwrap();
            let changed: String = chars.into_iter().collect();
            prop_assert!(!insurer_number_is_valid(&changed));
        }
    }
}
