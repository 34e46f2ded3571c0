//! Identity values in one comparable form, for linkage, requests to stop and every other match on
//! names, readings, dates and addresses.
//!
//! Every function is idempotent (`f(f(x)) == f(x)`) and never fails: a value it cannot interpret is
//! kept in its cleaned form so that two identical spellings still agree.

use chrono::NaiveDate;

use crate::era::{self, Era};
use crate::fold::{fixpoint, is_dash, is_kanji_numeral, is_space, kanji_number, nfkc};
use crate::place;

pub use crate::fold::{kana, name, text};

fn ymd(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// A Western calendar day of years 1000–2999.
fn western(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d).filter(|_| (1000..=2999).contains(&y))
}

/// Splits into runs of digits, ignoring separators; `元` counts as the number 1.
fn numbers(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            cur.push(c);
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if c == '元' {
                out.push("1".to_string());
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Three numbers, the first with `first_len` digits when given.
fn three(s: &str, first_len: Option<usize>) -> Option<(u32, u32, u32)> {
    match &numbers(s)[..] {
        [y, m, d] if first_len.is_none_or(|n| y.len() == n) => {
            Some((y.parse().ok()?, m.parse().ok()?, d.parse().ok()?))
        }
        _ => None,
    }
}

/// Splits an era prefix (kanji name, or initial followed by a digit or 元) from the rest.
fn strip_era(s: &str) -> Option<(Era, &str)> {
    if let Some(found) = Era::strip_kanji(s) {
        return Some(found);
    }
    let mut chars = s.chars();
    let era = Era::from_letter(chars.next()?)?;
    let rest = chars.as_str();
    rest.starts_with(|c: char| c.is_ascii_digit() || c == '元')
        .then_some((era, rest))
}

/// Dates to `YYYYMMDD`: `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYY.MM.DD`, `YYYY年M月D日`, `YYYYMMDD`, era forms
/// (`令和3年4月5日`, `R3.4.5`, `H元年…`) and 7-digit era codes `GYYMMDD` (1 明治 … 5 令和). An era date
/// is read only when the day lies within the era ([`crate::era`]: 平成元年1月7日 does not exist). Eight
/// digits are kept as written even when not a valid calendar date (a typo still agrees with itself);
/// anything else that cannot be read is kept in its cleaned form.
pub fn date(value: &str) -> String {
    fixpoint(date_once, value)
}

fn date_once(value: &str) -> String {
    let cleaned: String = nfkc(value)
        .chars()
        .filter(|c| !is_space(*c))
        .collect::<String>()
        .to_uppercase();
    read_date(&cleaned).map_or(cleaned, ymd)
}

fn read_date(s: &str) -> Option<NaiveDate> {
    if s.is_empty() {
        return None;
    }
    if let Some((e, rest)) = strip_era(s) {
        let (y, m, d) = three(rest, None)?;
        return era::from_era(e, y, m, d);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.len() {
            7 => era::parse_era_ymd(s),
            _ => None,
        };
    }
    let (y, m, d) = three(s, Some(4))?;
    western(i32::try_from(y).ok()?, m, d)
}

/// Addresses in one form: `青森県青森市大字新城字平岡１２３番地の４` and `青森市新城平岡123-4` agree.
///
/// Steps: NFKC; spaces removed; a leading prefecture dropped; 大字 dropped, and 字 where it opens a
/// subdivision (at the start or after 町/村/市/区/郡); kanji numerals before 丁目/番地/番/号/丁/a hyphen
/// (or ending the value after a number) to digits; 丁目, 丁, 番地, 番, 号 and every hyphen or dash between
/// numbers to `-`; の between numbers to `-`; repeated and trailing hyphens removed. Each step only
/// removes or rewrites towards the final form; repeating until nothing changes makes the rare inputs
/// whose rewrite opens a new numeric context (e.g. `〇十-`) idempotent too.
pub fn address(value: &str) -> String {
    fixpoint(address_once, value)
}

fn address_once(value: &str) -> String {
    let folded: Vec<char> = nfkc(value).chars().filter(|c| !is_space(*c)).collect();
    let mut s: String = folded.iter().collect();
    if let Some((_, rest)) = place::strip_prefecture(&s) {
        s = rest.to_string();
    }
    // 字 opening a subdivision: after 大字, at the start or after a municipality or town suffix.
    let had_oaza = s.contains("大字");
    let s = s.replace("大字", "");
    let chars: Vec<char> = s.chars().collect();
    let mut kept: Vec<char> = Vec::with_capacity(chars.len());
    for (i, c) in chars.iter().enumerate() {
        if *c == '字'
            && (had_oaza || i == 0 || matches!(chars[i - 1], '町' | '村' | '市' | '区' | '郡'))
        {
            continue;
        }
        kept.push(*c);
    }
    let chars = kept;
    // Kanji numerals in numeric context.
    let mut conv: Vec<char> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if is_kanji_numeral(chars[i]) {
            let mut j = i;
            while j < chars.len() && is_kanji_numeral(chars[j]) {
                j += 1;
            }
            let after = chars.get(j).copied();
            let after2 = chars.get(j + 1).copied();
            let before_numeric = conv
                .last()
                .is_some_and(|p| p.is_ascii_digit() || is_dash(*p));
            let numeric_context = match after {
                Some('丁') | Some('号') => true,
                Some('番') => after2 != Some('町'),
                Some(c) if is_dash(c) => {
                    after2.is_some_and(|n| n.is_ascii_digit() || is_kanji_numeral(n))
                }
                None => before_numeric,
                _ => false,
            };
            if numeric_context {
                conv.extend(kanji_number(&chars[i..j]).to_string().chars());
            } else {
                conv.extend_from_slice(&chars[i..j]);
            }
            i = j;
        } else {
            conv.push(chars[i]);
            i += 1;
        }
    }
    // Units and dashes after numbers to hyphens.
    let mut out: Vec<char> = Vec::with_capacity(conv.len());
    let mut i = 0;
    while i < conv.len() {
        let c = conv[i];
        let prev_num = out.last().is_some_and(|p: &char| p.is_ascii_digit());
        let prev_num_or_dash = out
            .last()
            .is_some_and(|p: &char| p.is_ascii_digit() || *p == '-');
        let next = conv.get(i + 1).copied();
        if prev_num {
            if c == '丁' && next == Some('目') {
                out.push('-');
                i += 2;
                continue;
            }
            if c == '番' && next == Some('地') {
                out.push('-');
                i += 2;
                continue;
            }
            if (c == '番' && next != Some('町')) || c == '号' || c == '丁' {
                out.push('-');
                i += 1;
                continue;
            }
        }
        if is_dash(c)
            && prev_num_or_dash
            && next.is_some_and(|n| n.is_ascii_digit() || n == 'の' || is_dash(n))
        {
            out.push('-');
            i += 1;
            continue;
        }
        if is_dash(c) && prev_num && next.is_none() {
            out.push('-');
            i += 1;
            continue;
        }
        if c == 'の' && prev_num_or_dash && next.is_some_and(|n| n.is_ascii_digit()) {
            out.push('-');
            i += 1;
            continue;
        }
        out.push(c);
        i += 1;
    }
    // Collapse hyphen runs; drop hyphens ending the value or preceding a non-number.
    let mut fin: Vec<char> = Vec::with_capacity(out.len());
    for (i, c) in out.iter().enumerate() {
        if *c == '-' {
            let prev_num = fin.last().is_some_and(|p| p.is_ascii_digit());
            let next_num = out[i + 1..]
                .iter()
                .find(|n| **n != '-')
                .is_some_and(|n| n.is_ascii_digit());
            if fin.last() == Some(&'-') || !prev_num || !next_num {
                continue;
            }
        }
        fin.push(*c);
    }
    fin.into_iter().collect()
}

/// Postal codes: digits only (`〒030-0801` → `0300801`).
pub fn postal(value: &str) -> String {
    digits(value)
}

/// Digits only, after width folding.
pub fn digits(value: &str) -> String {
    nfkc(value).chars().filter(|c| c.is_ascii_digit()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dates() {
        for v in [
            "1975-01-02",
            "1975/1/2",
            "19750102",
            "昭和50年1月2日",
            "S50.1.2",
            "s50/01/02",
            "3500102",
            "１９７５年１月２日",
            " 1975.01.02 ",
        ] {
            assert_eq!(date(v), "19750102", "{v}");
        }
        assert_eq!(date("平成元年1月8日"), "19890108");
        assert_eq!(date("H1.1.8"), "19890108");
        assert_eq!(date("令和元年5月1日"), "20190501");
        assert_eq!(date("R2.2.29"), "20200229");
        assert_eq!(date("5020229"), "20200229");
        assert_eq!(date("大正15年12月24日"), "19261224");
        assert_eq!(date("M45.7.29"), "19120729");
        assert_eq!(date("19561331"), "19561331");
        assert_eq!(date("unknown"), "UNKNOWN");
    }

    /// The week of 1989-01-07/08 on both sides: a table of first years alone would read
    /// 平成元年1月7日 as 1989-01-07, a day of 昭和.
    #[test]
    fn era_dates_outside_their_era_are_not_read() {
        assert_eq!(date("昭和64年1月7日"), "19890107");
        assert_eq!(date("平成元年1月8日"), "19890108");
        assert_ne!(date("平成元年1月7日"), "19890107");
        assert_ne!(date("昭和64年1月8日"), "19890108");
        assert_ne!(date("S65.1.1"), "19900101");
        assert_ne!(date("4010107"), "19890107");
        assert_ne!(date("令和元年4月30日"), "20190430");
        assert_ne!(date("大正15年12月25日"), "19261225");
        assert_ne!(date("明治45年7月30日"), "19120730");
    }

    #[test]
    fn addresses() {
        let a = address("青森県青森市大字新城字平岡１２３番地の４");
        assert_eq!(a, "青森市新城平岡123-4");
        assert_eq!(address("青森市新城平岡123-4"), a);
        assert_eq!(address("青森市新城平岡百二十三番地四号"), a);
        assert_eq!(address("青森市 新城 平岡 123ー4"), a);
        assert_eq!(address("本町三丁目12番5号"), "本町3-12-5");
        assert_eq!(address("本町3-12-5"), "本町3-12-5");
        assert_eq!(address("本町３丁目１２－５"), "本町3-12-5");
        assert_eq!(address("三沢市"), "三沢市");
        assert_eq!(address("八幡町"), "八幡町");
        assert_eq!(address("三丁目"), "3");
        assert_eq!(address("12番地3"), "12-3");
        assert_eq!(address("一番町"), "一番町");
    }

    #[test]
    fn postal_codes() {
        assert_eq!(postal("〒030-0801"), "0300801");
        assert_eq!(postal("０３０－０８０１"), "0300801");
    }

    const ALPHABET: &str = "[ぁ-ゖァ-ヺー ｦ-ﾟ゛゜\u{3099}\u{309a}　a-zA-Z0-9０-９一二三四五六七八九十百千〇丁目番地号の大字町村市区郡県青森東京都北海道髙﨑邊邉齋澤𠮷德國龍・\\-－‐−ー/.年月日元令和平成昭和大正明治RHSTM〒]{0,16}";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]
        #[test]
        fn every_normalizer_is_idempotent(s in ALPHABET) {
            type Fold = fn(&str) -> String;
            let all: [(&str, Fold); 7] = [
                ("text", text), ("name", name), ("kana", kana), ("date", date),
                ("address", address), ("postal", postal), ("digits", digits),
            ];
            for (label, f) in all {
                let once = f(&s);
                prop_assert_eq!(f(&once), once.clone(), "{} not idempotent", label);
            }
        }
    }
}
