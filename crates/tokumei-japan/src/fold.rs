//! Folding of Japanese text: width (NFKC; full-width ASCII of cards and claims), kana (hiragana,
//! half-width, small kana, long vowels, ヴ/ヂ/ヅ), variant kanji (異体字) and kanji numerals.
//!
//! The folds of identity values ([`text`], [`name`], [`kana`]) are idempotent.

use unicode_normalization::UnicodeNormalization;

/// Applies `f` until the value stops changing (at most nine rounds): removing characters can bring a
/// combining mark next to a letter it composes with, which a second round folds. Values stable after one
/// round (nearly all) cost one extra comparison of strings.
pub(crate) fn fixpoint(f: fn(&str) -> String, value: &str) -> String {
    let mut cur = f(value);
    for _ in 0..8 {
        let next = f(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

/// White space, the full-width space included.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{3000}'
}

/// NFKC with a fast path for plain ASCII.
pub fn nfkc(value: &str) -> String {
    if value.is_ascii() {
        value.to_string()
    } else {
        value.nfkc().collect()
    }
}

/// NFKC, lower case, single spaces, trimmed.
pub fn text(value: &str) -> String {
    fixpoint(text_once, value)
}

fn text_once(value: &str) -> String {
    let folded = nfkc(&nfkc(value).to_lowercase());
    let mut out = String::with_capacity(folded.len());
    let mut pending_space = false;
    for c in folded.chars() {
        if is_space(c) {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// Variant and old kanji (異体字・旧字体) folded to the common form, kept conservative: the pairs are the
/// 旧字体 listed next to their 常用漢字 in the 常用漢字表 (Cabinet notice, 2010) plus the widely used
/// 異体字 髙, 﨑, 嵜, 邉, 濵 and 𠮷 (JIS X 0213 / Moji Jōhō Kiban 文字情報基盤 variant relations).
/// Pairs that are distinct names in practice are deliberately absent (龍/竜, 嶋/島, 斎/斉, 桒/桑).
pub const ITAIJI: &[(char, char)] = &[
    ('髙', '高'),
    ('﨑', '崎'),
    ('嵜', '崎'),
    ('邊', '辺'),
    ('邉', '辺'),
    ('齋', '斎'),
    ('齊', '斉'),
    ('澤', '沢'),
    ('濱', '浜'),
    ('濵', '浜'),
    ('𠮷', '吉'),
    ('德', '徳'),
    ('國', '国'),
    ('廣', '広'),
    ('櫻', '桜'),
    ('瀧', '滝'),
    ('藏', '蔵'),
    ('惠', '恵'),
    ('榮', '栄'),
    ('壽', '寿'),
    ('實', '実'),
    ('眞', '真'),
    ('淺', '浅'),
    ('萬', '万'),
    ('與', '与'),
    ('將', '将'),
    ('條', '条'),
    ('淸', '清'),
    ('靑', '青'),
    ('團', '団'),
    ('彌', '弥'),
    ('禮', '礼'),
    ('圓', '円'),
    ('會', '会'),
    ('學', '学'),
    ('傳', '伝'),
    ('佛', '仏'),
    ('兒', '児'),
    ('亞', '亜'),
    ('曾', '曽'),
    ('驛', '駅'),
    ('縣', '県'),
    ('邨', '村'),
];

/// The common form of a variant kanji ([`ITAIJI`]); other characters unchanged.
pub fn itaiji(c: char) -> char {
    ITAIJI
        .iter()
        .find(|(from, _)| *from == c)
        .map(|(_, to)| *to)
        .unwrap_or(c)
}

/// Personal names: [`text`], 異体字 folded, spaces and middle dots removed.
pub fn name(value: &str) -> String {
    fixpoint(name_once, value)
}

fn name_once(value: &str) -> String {
    text(value)
        .chars()
        .filter(|c| !is_space(*c) && !matches!(c, '・' | '･' | '.' | '·'))
        .map(itaiji)
        .collect()
}

/// Vowel row (a, i, u, e, o) of a katakana, if it has one.
fn kana_vowel(c: char) -> Option<char> {
    const A: &str = "アカガサザタダナハバパマヤラワ";
    const I: &str = "イキギシジチヂニヒビピミリ";
    const U: &str = "ウクグスズツヅヌフブプムユルヴ";
    const E: &str = "エケゲセゼテデネヘベペメレ";
    const O: &str = "オコゴソゾトドノホボポモヨロ";
    for (row, v) in [(A, 'a'), (I, 'i'), (U, 'u'), (E, 'e'), (O, 'o')] {
        if row.contains(c) {
            return Some(v);
        }
    }
    None
}

/// Katakana in hiragana (ァ–ヶ to ぁ–ゖ), other characters unchanged: the phonetic group of a
/// DICOM person name, as some systems write it.
pub fn hiragana(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            'ァ'..='ヶ' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// Kana readings in one katakana form.
///
/// Steps: NFKC (half-width katakana), hiragana to katakana, stray combining sound marks dropped, spaces
/// and middle dots removed, ヴァ/ヴィ/ヴ/ヴェ/ヴォ to バ/ビ/ブ/ベ/ボ, ヂ/ヅ to ジ/ズ, ヰ/ヱ/ヲ to イ/エ/オ,
/// small kana to large (ァ→ア, ッ→ツ, ャ→ヤ…), and long vowels in one form: ー after a kana becomes its
/// vowel, with the o- and e-rows written as オウ and エイ (so オオ, オウ and オー agree).
pub fn kana(value: &str) -> String {
    fixpoint(kana_once, value)
}

fn kana_once(value: &str) -> String {
    let folded = nfkc(value);
    let mut chars: Vec<char> = Vec::with_capacity(folded.len());
    for c in folded.chars() {
        let c = match c {
            '\u{3041}'..='\u{3096}' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            '\u{309D}' => 'ヽ',
            '\u{309E}' => 'ヾ',
            _ => c,
        };
        if matches!(c, '\u{3099}' | '\u{309A}' | '\u{309B}' | '\u{309C}') {
            continue;
        }
        if is_space(c) || matches!(c, '・' | '･') {
            continue;
        }
        chars.push(c);
    }
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == 'ヴ' {
            let mapped = match next {
                Some('ァ') => Some('バ'),
                Some('ィ') => Some('ビ'),
                Some('ェ') => Some('ベ'),
                Some('ォ') => Some('ボ'),
                _ => None,
            };
            if let Some(m) = mapped {
                out.push(m);
                i += 2;
                continue;
            }
        }
        let c = match c {
            'ヴ' => 'ブ',
            'ヂ' => 'ジ',
            'ヅ' => 'ズ',
            'ヰ' => 'イ',
            'ヱ' => 'エ',
            'ヲ' => 'オ',
            'ァ' => 'ア',
            'ィ' => 'イ',
            'ゥ' => 'ウ',
            'ェ' => 'エ',
            'ォ' => 'オ',
            'ッ' => 'ツ',
            'ャ' => 'ヤ',
            'ュ' => 'ユ',
            'ョ' => 'ヨ',
            'ヮ' => 'ワ',
            'ヵ' => 'カ',
            'ヶ' => 'ケ',
            '-' | '‐' | '−' | '–' | '—' | '―' | '～' | '~'
                if out.last().and_then(|p| kana_vowel(*p)).is_some() =>
            {
                'ー'
            }
            other => other,
        };
        let prev_vowel = out.last().and_then(|p| kana_vowel(*p));
        match (c, prev_vowel) {
            ('ー', Some(v)) => out.push(match v {
                'a' => 'ア',
                'i' | 'e' => 'イ',
                _ => 'ウ',
            }),
            ('ー', None) => {}
            ('オ', Some('o')) => out.push('ウ'),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    out.into_iter().collect()
}

/// The value of one kanji digit (〇 一 … 九, 零).
pub fn kanji_digit(c: char) -> Option<u64> {
    Some(match c {
        '〇' | '零' => 0,
        '一' => 1,
        '二' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

/// A kanji digit or one of 十 百 千.
pub fn is_kanji_numeral(c: char) -> bool {
    kanji_digit(c).is_some() || matches!(c, '十' | '百' | '千')
}

/// Value of a run of kanji numerals (positional 一二三 or with 十百千).
/// Value of a run of kanji numerals (positional 一二三 or with 十百千).
pub fn kanji_number(run: &[char]) -> u64 {
    if run.iter().all(|c| kanji_digit(*c).is_some()) {
        return run
            .iter()
            .fold(0, |acc, c| acc * 10 + kanji_digit(*c).unwrap_or(0));
    }
    let mut total = 0;
    let mut cur = 0;
    for c in run {
        match c {
            '十' | '百' | '千' => {
                let unit = match c {
                    '十' => 10,
                    '百' => 100,
                    _ => 1000,
                };
                total += if cur == 0 { 1 } else { cur } * unit;
                cur = 0;
            }
            c => cur = cur * 10 + kanji_digit(*c).unwrap_or(0),
        }
    }
    total + cur
}

/// Hyphens, dashes, minus signs and the long-vowel marks written in their place.
pub fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '‐' | '‑' | '−' | '–' | '—' | '―' | 'ー' | 'ｰ' | '─' | '━'
    )
}

/// Addresses in one form: `青森県青森市大字新城字平岡１２３番地の４` and `青森市新城平岡123-4` agree.
///
/// Steps: NFKC; spaces removed; a leading prefecture dropped; 大字 dropped, and 字 where it opens a
/// subdivision (at the start or after 町/村/市/区/郡); kanji numerals before 丁目/番地/番/号/丁/a hyphen
/// (or ending the value after a number) to digits; 丁目, 丁, 番地, 番, 号 and every hyphen or dash between
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn katakana_reads_back_from_hiragana() {
        assert_eq!(hiragana("ヤマダ タロウ"), "やまだ たろう");
        assert_eq!(hiragana("ヴァ・ヶ月 Ab"), "ゔぁ・ゖ月 Ab");
        assert_eq!(kana(&hiragana("キョウコ")), kana("キョウコ"));
    }

    #[test]
    fn kana_variants_agree() {
        assert_eq!(kana("さとう　たろう"), kana("サトウタロウ"));
        assert_eq!(kana("ｻﾄｳ ﾀﾛｳ"), kana("サトウ タロウ"));
        assert_eq!(kana("サトー"), kana("サトウ"));
        assert_eq!(kana("オオノ"), kana("オーノ"));
        assert_eq!(kana("オオノ"), "オウノ");
        assert_ne!(kana("オオノ"), kana("オノ"));
        assert_eq!(kana("ヴァイオリン"), kana("バイオリン"));
        assert_eq!(kana("ヴィ"), "ビ");
        assert_eq!(kana("ヴ"), "ブ");
        assert_eq!(kana("ミカヅキ"), kana("ミカズキ"));
        assert_eq!(kana("チヂミ"), "チジミ");
        assert_eq!(kana("キャッツ"), "キヤツツ");
        assert_eq!(kana("ユーコ"), kana("ユウコ"));
        assert_eq!(kana("ケーコ"), kana("ケイコ"));
    }

    #[test]
    fn names_fold_variant_kanji_and_spaces() {
        assert_eq!(name("髙橋　太郎"), "高橋太郎");
        assert_eq!(name("山﨑 花子"), "山崎花子");
        assert_eq!(name("渡邊"), name("渡辺"));
        assert_eq!(name("渡邉"), name("渡辺"));
        assert_eq!(name("齋藤"), "斎藤");
        assert_eq!(name("齊藤"), "斉藤");
        assert_ne!(name("齋藤"), name("齊藤"));
        assert_eq!(name("𠮷田"), "吉田");
        assert_eq!(name("龍"), "龍");
        assert_eq!(name("John  Smith"), "johnsmith");
        for (from, to) in ITAIJI {
            assert!(
                ITAIJI.iter().all(|(f, _)| f != to),
                "{from}→{to} target is itself folded"
            );
        }
    }

    #[test]
    fn width_round_trip() {
        assert_eq!(to_full_width("1234-AB"), "１２３４−ＡＢ");
        assert_eq!(to_half_width_ascii("１２３４−ＡＢ"), "1234-AB");
        assert_eq!(to_half_width_ascii("１０−２３"), "10-23");
    }

    #[test]
    fn kanji_numerals() {
        let n = |s: &str| kanji_number(&s.chars().collect::<Vec<_>>());
        assert_eq!(n("百二十三"), 123);
        assert_eq!(n("一二三"), 123);
        assert_eq!(n("十"), 10);
        assert_eq!(n("二千〇五"), 2005);
    }
}
