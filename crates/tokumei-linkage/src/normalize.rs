//! Normalization of identity values before they are compared or used as blocking keys.
//!
//! Every normalizer is idempotent (`norm(norm(x)) == norm(x)`), returns `None` for values that are empty
//! after cleaning, and never fails: a value it cannot interpret is kept in its cleaned form so that two
//! identical spellings still agree.

use std::fmt;

use tokumei_japan::fold::is_space;
pub use tokumei_japan::fold::ITAIJI;
pub use tokumei_japan::normalize::{address, date, digits, kana, name, postal, text};

/// A named normalizer, chosen per column in the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Normalizer {
    /// Trimmed, otherwise as written.
    None,
    /// NFKC width folding, lower case, runs of spaces collapsed to one.
    Text,
    /// Personal names in Latin script or kanji: [`Normalizer::Text`], variant kanji (異体字) folded, all
    /// spaces and middle dots removed.
    Name,
    /// Kana readings: hiragana to katakana, small kana to large, ヴ/ヂ/ヅ variants, long vowels.
    Kana,
    /// Dates (Western or Japanese era) to `YYYYMMDD`.
    Date,
    /// Addresses: kanji numerals, 丁目/番地/番/号, hyphens, 大字/字, prefecture prefix.
    Address,
    /// Postal codes (〒, hyphens, full width) to their digits.
    Postal,
    /// Digits only (identifiers such as insurer numbers).
    Digits,
    /// Sex codes: 1 (male: M, 男, 1) and 2 (female: F, 女, 2).
    Sex,
}

impl Normalizer {
    /// Every normalizer with its settings name.
    pub const ALL: [(&'static str, Normalizer); 9] = [
        ("none", Normalizer::None),
        ("text", Normalizer::Text),
        ("name", Normalizer::Name),
        ("kana", Normalizer::Kana),
        ("date", Normalizer::Date),
        ("address", Normalizer::Address),
        ("postal", Normalizer::Postal),
        ("digits", Normalizer::Digits),
        ("sex", Normalizer::Sex),
    ];

    /// The normalizer of a settings name.
    pub fn parse(name: &str) -> Option<Normalizer> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// Applies the normalizer; `None` when nothing is left.
    pub fn apply(self, value: &str) -> Option<String> {
        let out = match self {
            Normalizer::None => value.trim().to_string(),
            Normalizer::Text => text(value),
            Normalizer::Name => name(value),
            Normalizer::Kana => kana(value),
            Normalizer::Date => date(value),
            Normalizer::Address => address(value),
            Normalizer::Postal => postal(value),
            Normalizer::Digits => digits(value),
            Normalizer::Sex => sex(value),
        };
        if out.is_empty() {
            None
        } else {
            Some(out)
        }
    }
}

impl fmt::Display for Normalizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::ALL
            .iter()
            .find(|(_, v)| v == self)
            .map(|(n, _)| *n)
            .unwrap_or("?");
        f.write_str(name)
    }
}

/// Sex codes to `1` (male) and `2` (female); anything else cleaned as [`text`].
pub fn sex(value: &str) -> String {
    let t = text(value);
    match t.as_str() {
        "1" | "m" | "male" | "男" | "男性" => "1".to_string(),
        "2" | "f" | "female" | "女" | "女性" => "2".to_string(),
        _ => t,
    }
}

/// American Soundex of the Latin letters of a value; other scripts keep their first four characters.
pub fn soundex(value: &str) -> String {
    let letters: Vec<char> = value
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.is_empty() {
        return value.chars().filter(|c| !is_space(*c)).take(4).collect();
    }
    let code = |c: char| match c {
        'B' | 'F' | 'P' | 'V' => '1',
        'C' | 'G' | 'J' | 'K' | 'Q' | 'S' | 'X' | 'Z' => '2',
        'D' | 'T' => '3',
        'L' => '4',
        'M' | 'N' => '5',
        'R' => '6',
        'H' | 'W' => 'h',
        _ => '0',
    };
    let mut out = String::new();
    out.push(letters[0]);
    let mut last = code(letters[0]);
    for c in &letters[1..] {
        let k = code(*c);
        if k == 'h' {
            continue;
        }
        if k != '0' && k != last {
            out.push(k);
            if out.len() == 4 {
                break;
            }
        }
        last = k;
    }
    while out.len() < 4 {
        out.push('0');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sex_and_soundex() {
        assert_eq!(sex("男"), "1");
        assert_eq!(sex("F"), "2");
        assert_eq!(soundex("Robert"), "R163");
        assert_eq!(soundex("Rupert"), "R163");
        assert_eq!(soundex("Tymczak"), "T522");
        assert_eq!(soundex("Ashcraft"), "A261");
    }

    #[test]
    fn every_settings_name_parses_back() {
        for (label, n) in Normalizer::ALL {
            assert_eq!(Normalizer::parse(label), Some(n));
            assert_eq!(n.to_string(), label);
        }
    }

    const ALPHABET: &str = "[ぁ-ゖァ-ヺー ｦ-ﾟ゛゜\u{3099}\u{309a}　a-zA-Z0-9０-９一二三四五六七八九十百千〇丁目番地号の大字町村市区郡県青森東京都北海道髙﨑邊邉齋澤𠮷德國龍・\\-－‐−ー/.年月日元令和平成昭和大正明治RHSTM〒男女]{0,16}";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn every_normalizer_is_idempotent(s in ALPHABET) {
            for (label, n) in Normalizer::ALL {
                if let Some(once) = n.apply(&s) {
                    let twice = n.apply(&once);
                    prop_assert_eq!(twice.as_deref(), Some(once.as_str()), "{} not idempotent", label);
                }
            }
        }
    }
}
