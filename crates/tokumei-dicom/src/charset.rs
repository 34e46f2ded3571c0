//! DICOM character repertoires (PS3.5 §6.1, Annex H and J): the value of Specific Character Set
//! (0008,0005), text decoded by it, and text encoded by it.
//!
//! Japanese files declare ISO 2022 code extensions: `\ISO 2022 IR 87` (JIS X 0208 kanji after
//! ASCII), `ISO 2022 IR 13\ISO 2022 IR 87` (half-width katakana and romaji, then kanji), and
//! `\ISO 2022 IR 87\ISO 2022 IR 159` (JIS X 0212 supplementary kanji, as in 鷗). Each value is
//! decoded from its initial state, which returns after CR, LF, FF, TAB and, in person names, `^`
//! and `=`. A term this module does not know, an escape to a set the file did not declare, or a
//! byte outside the set in use is an error naming it: text is never guessed into mojibake.

use std::collections::HashMap;
use std::sync::OnceLock;

use encoding_rs::{Encoding, EUC_JP};

/// Why text could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CharsetError {
    /// A Specific Character Set term this reader does not know.
    #[error("unknown character set term {0:?}")]
    Unknown(String),
    /// An escape sequence to a set the file did not declare, or no known set.
    #[error("escape sequence to an undeclared or unknown set at byte {0}")]
    Escape(usize),
    /// A byte that is not valid in the set in use.
    #[error("byte {byte:#04x} at {at} is outside the character set in use")]
    Byte {
        /// The byte.
        byte: u8,
        /// Its position in the value.
        at: usize,
    },
    /// A character the declared repertoire cannot encode.
    #[error("character U+{0:04X} cannot be written in the declared character set")]
    Unencodable(u32),
}

/// What kind of text a value holds: it decides which bytes are delimiters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// Values separated by `\` (SH, LO, UC).
    Values,
    /// Person names (PN): values separated by `\`, component groups by `=`, components by `^`.
    PersonNames,
    /// One free text (ST, LT, UT): `\` is a character.
    Free,
}

/// A graphic set a value may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    /// ISO-IR 6 (ASCII), in G0.
    Ascii,
    /// JIS X 0201 romaji (ISO-IR 14), in G0: ASCII with ¥ and ‾.
    Romaji,
    /// JIS X 0201 katakana (ISO-IR 13), in G1.
    Katakana,
    /// JIS X 0208 (ISO-IR 87), two bytes in G0.
    Jis0208,
    /// JIS X 0212 (ISO-IR 159), two bytes in G0.
    Jis0212,
    /// ISO 8859-1 right half (ISO-IR 100), in G1.
    Latin1,
}

/// The escape sequences of the sets above (PS3.3 C.12.1.1.2, Table C.12-3 and C.12-4).
const ESCAPES: &[(&[u8], Set)] = &[
    (b"\x1b(B", Set::Ascii),
    (b"\x1b(J", Set::Romaji),
    (b"\x1b)I", Set::Katakana),
    (b"\x1b$B", Set::Jis0208),
    (b"\x1b$(D", Set::Jis0212),
    (b"\x1b-A", Set::Latin1),
];

/// How a file's text is coded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Coding {
    /// One encoding for the whole value (UTF-8, ISO 8859-x, GB18030 ...), no code extensions.
    Single(&'static Encoding),
    /// ISO 2022 with an initial G0 and G1 and the sets declared.
    Iso2022 {
        g0: Set,
        g1: Option<Set>,
        declared: Vec<Set>,
    },
}

/// The repertoire of one data set, from its Specific Character Set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repertoire {
    coding: Coding,
}

impl Default for Repertoire {
    /// The default repertoire (no Specific Character Set): ISO-IR 6.
    fn default() -> Self {
        Repertoire {
            coding: Coding::Iso2022 {
                g0: Set::Ascii,
                g1: None,
                declared: vec![Set::Ascii],
            },
        }
    }
}

/// The sets one ISO 2022 term declares (G0 first).
fn iso2022_sets(term: &str) -> Option<&'static [Set]> {
    Some(match term {
        "ISO 2022 IR 6" | "" => &[Set::Ascii],
        "ISO 2022 IR 13" => &[Set::Romaji, Set::Katakana],
        "ISO 2022 IR 87" => &[Set::Jis0208],
        "ISO 2022 IR 159" => &[Set::Jis0212],
        "ISO 2022 IR 100" => &[Set::Ascii, Set::Latin1],
        _ => return None,
    })
}

/// The single encoding a term without code extensions names.
fn single(term: &str) -> Option<&'static Encoding> {
    Some(match term {
        "ISO_IR 192" => encoding_rs::UTF_8,
        "ISO_IR 100" => encoding_rs::WINDOWS_1252,
        "ISO_IR 101" => encoding_rs::ISO_8859_2,
        "ISO_IR 109" => encoding_rs::ISO_8859_3,
        "ISO_IR 110" => encoding_rs::ISO_8859_4,
        "ISO_IR 144" => encoding_rs::ISO_8859_5,
        "ISO_IR 127" => encoding_rs::ISO_8859_6,
        "ISO_IR 126" => encoding_rs::ISO_8859_7,
        "ISO_IR 138" => encoding_rs::ISO_8859_8,
        "ISO_IR 148" => encoding_rs::WINDOWS_1254,
        "ISO_IR 166" => encoding_rs::WINDOWS_874,
        "GB18030" => encoding_rs::GB18030,
        "GBK" => encoding_rs::GBK,
        _ => return None,
    })
}

impl Repertoire {
    /// The repertoire a Specific Character Set value names (its values separated by `\`).
    pub fn parse(value: &str) -> Result<Repertoire, CharsetError> {
        let terms: Vec<&str> = value.split('\\').map(str::trim).collect();
        let first = terms.first().copied().unwrap_or("");
        if terms.len() == 1 {
            if first == "ISO_IR 13" {
                return Ok(Repertoire {
                    coding: Coding::Iso2022 {
                        g0: Set::Romaji,
                        g1: Some(Set::Katakana),
                        declared: vec![Set::Romaji, Set::Katakana],
                    },
                });
            }
            if first.is_empty() || first == "ISO_IR 6" {
                return Ok(Repertoire::default());
            }
            if let Some(e) = single(first) {
                return Ok(Repertoire {
                    coding: Coding::Single(e),
                });
            }
        }
        let mut declared = Vec::new();
        for t in &terms {
            let sets = iso2022_sets(t).ok_or_else(|| CharsetError::Unknown(t.to_string()))?;
            declared.extend_from_slice(sets);
        }
        // ASCII is always reachable with ESC ( B, whatever the first value (PS3.5 6.1.2.5.3).
        if !declared.contains(&Set::Ascii) {
            declared.push(Set::Ascii);
        }
        let initial = iso2022_sets(first).ok_or_else(|| CharsetError::Unknown(first.into()))?;
        let g0 = initial[0];
        let g1 = initial.get(1).copied();
        Ok(Repertoire {
            coding: Coding::Iso2022 { g0, g1, declared },
        })
    }

    /// Decodes one element's value.
    pub fn decode(&self, bytes: &[u8], kind: Text) -> Result<String, CharsetError> {
        match &self.coding {
            Coding::Single(e) => e
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|s| s.into_owned())
                .ok_or_else(|| first_invalid(e, bytes)),
            Coding::Iso2022 { g0, g1, declared } => Decoder {
                bytes,
                at: 0,
                initial: (*g0, *g1),
                g0: *g0,
                g1: *g1,
                declared,
                kind,
                out: String::with_capacity(bytes.len()),
            }
            .run(),
        }
    }

    /// Encodes text in this repertoire (for values written by the de-identifier). Each value
    /// ends back in its initial state.
    pub fn encode(&self, text: &str, kind: Text) -> Result<Vec<u8>, CharsetError> {
        match &self.coding {
            Coding::Single(e) => {
                let (bytes, _, bad) = e.encode(text);
                if bad {
                    let c = text.chars().find(|c| !c.is_ascii()).unwrap_or('?');
                    return Err(CharsetError::Unencodable(c as u32));
                }
                Ok(bytes.into_owned())
            }
            Coding::Iso2022 { g0, g1, declared } => {
                encode_iso2022(text, (*g0, *g1), declared, kind)
            }
        }
    }
}

fn first_invalid(e: &'static Encoding, bytes: &[u8]) -> CharsetError {
    let mut decoder = e.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(bytes.len() * 3 + 16);
    let (_, read) = decoder.decode_to_string_without_replacement(bytes, &mut out, true);
    let at = read.min(bytes.len().saturating_sub(1));
    CharsetError::Byte {
        byte: bytes.get(at).copied().unwrap_or(0),
        at,
    }
}

/// Whether a byte ends the current set's reach (PS3.5 6.1.2.5.3).
fn resets(b: u8, kind: Text) -> bool {
    match b {
        b'\r' | b'\n' | 0x0c | b'\t' => true,
        b'\\' => kind != Text::Free,
        b'^' | b'=' => kind == Text::PersonNames,
        _ => false,
    }
}

struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
    initial: (Set, Option<Set>),
    g0: Set,
    g1: Option<Set>,
    declared: &'a [Set],
    kind: Text,
    out: String,
}

impl Decoder<'_> {
    fn run(mut self) -> Result<String, CharsetError> {
        while self.at < self.bytes.len() {
            let b = self.bytes[self.at];
            if b == 0x1b {
                self.escape()?;
            } else if b >= 0x80 {
                self.right(b)?;
            } else if matches!(self.g0, Set::Jis0208 | Set::Jis0212) {
                self.pair()?;
            } else {
                let delimiter = resets(b, self.kind);
                if delimiter {
                    (self.g0, self.g1) = self.initial;
                }
                self.left(b, delimiter)?;
            }
        }
        Ok(self.out)
    }

    fn escape(&mut self) -> Result<(), CharsetError> {
        let rest = &self.bytes[self.at..];
        let (seq, set) = ESCAPES
            .iter()
            .find(|(seq, _)| rest.starts_with(seq))
            .ok_or(CharsetError::Escape(self.at))?;
        if !self.declared.contains(set) {
            return Err(CharsetError::Escape(self.at));
        }
        match set {
            Set::Katakana | Set::Latin1 => self.g1 = Some(*set),
            _ => self.g0 = *set,
        }
        self.at += seq.len();
        Ok(())
    }

    fn left(&mut self, b: u8, delimiter: bool) -> Result<(), CharsetError> {
        let c = match (self.g0, b) {
            (Set::Romaji, 0x5c) if !delimiter => '¥',
            (Set::Romaji, 0x7e) => '‾',
            (_, 0x00..=0x08 | 0x0e..=0x1f | 0x7f) => {
                return Err(CharsetError::Byte {
                    byte: b,
                    at: self.at,
                })
            }
            _ => b as char,
        };
        self.out.push(c);
        self.at += 1;
        Ok(())
    }

    fn right(&mut self, b: u8) -> Result<(), CharsetError> {
        let c = match (self.g1, b) {
            (Some(Set::Katakana), 0xa1..=0xdf) => char::from_u32(0xff61 + u32::from(b - 0xa1)),
            (Some(Set::Latin1), 0xa0..=0xff) => Some(b as char),
            _ => None,
        };
        let c = c.ok_or(CharsetError::Byte {
            byte: b,
            at: self.at,
        })?;
        self.out.push(c);
        self.at += 1;
        Ok(())
    }

    fn pair(&mut self) -> Result<(), CharsetError> {
        let (b1, b2) = (self.bytes[self.at], self.bytes.get(self.at + 1).copied());
        let bad = |byte: u8, at: usize| CharsetError::Byte { byte, at };
        let Some(b2) = b2 else {
            return Err(bad(b1, self.at));
        };
        if !(0x21..=0x7e).contains(&b1) || !(0x21..=0x7e).contains(&b2) {
            let (byte, at) = if (0x21..=0x7e).contains(&b1) {
                (b2, self.at + 1)
            } else {
                (b1, self.at)
            };
            return Err(bad(byte, at));
        }
        let euc: &[u8] = &[0x8f, b1 | 0x80, b2 | 0x80];
        let euc = if self.g0 == Set::Jis0212 {
            euc
        } else {
            &euc[1..]
        };
        let s = EUC_JP
            .decode_without_bom_handling_and_without_replacement(euc)
            .filter(|s| s.chars().count() == 1)
            .ok_or(bad(b1, self.at))?;
        self.out.push_str(&s);
        self.at += 2;
        Ok(())
    }
}

/// The JIS X 0212 code of each character it holds (and JIS X 0208 lacks), made once from the
/// EUC-JP decoder.
fn jis0212() -> &'static HashMap<char, [u8; 2]> {
    static TABLE: OnceLock<HashMap<char, [u8; 2]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = HashMap::new();
        for b1 in 0x21u8..=0x7e {
            for b2 in 0x21u8..=0x7e {
                let euc = [0x8f, b1 | 0x80, b2 | 0x80];
                if let Some(s) = EUC_JP.decode_without_bom_handling_and_without_replacement(&euc) {
                    let mut cs = s.chars();
                    if let (Some(c), None) = (cs.next(), cs.next()) {
                        t.entry(c).or_insert([b1, b2]);
                    }
                }
            }
        }
        t
    })
}

/// The set and bytes of one character: in the initial G0 when it has the character, then ASCII,
/// JIS X 0201, ISO 8859-1, JIS X 0208, JIS X 0212.
fn code_of(c: char, declared: &[Set], initial: Set) -> Option<(Set, Vec<u8>)> {
    let has = |s: Set| declared.contains(&s);
    let romaji = c.is_ascii() && c != '\\' && c != '~';
    if romaji && initial == Set::Romaji {
        return Some((Set::Romaji, vec![c as u8]));
    }
    if c.is_ascii() && has(Set::Ascii) {
        return Some((Set::Ascii, vec![c as u8]));
    }
    match c {
        '¥' if has(Set::Romaji) => return Some((Set::Romaji, vec![0x5c])),
        '‾' if has(Set::Romaji) => return Some((Set::Romaji, vec![0x7e])),
        _ => {}
    }
    let u = c as u32;
    if (0xff61..=0xff9f).contains(&u) && has(Set::Katakana) {
        return Some((Set::Katakana, vec![(u - 0xff61) as u8 + 0xa1]));
    }
    if (0xa0..=0xff).contains(&u) && has(Set::Latin1) {
        return Some((Set::Latin1, vec![u as u8]));
    }
    if has(Set::Jis0208) {
        let mut buf = [0u8; 4];
        let (euc, _, bad) = EUC_JP.encode(c.encode_utf8(&mut buf));
        // Rows 1–8 and 16–84 are JIS X 0208; the index also holds NEC's row 13 and the IBM
        // extensions of rows 89–92 (髙, 﨑, ①), which are not, and which strict readers refuse.
        let row = euc.first().map(|b| b.wrapping_sub(0xa0));
        let standard = row.is_some_and(|r| (1..=8).contains(&r) || (16..=84).contains(&r));
        if !bad && euc.len() == 2 && standard {
            return Some((Set::Jis0208, vec![euc[0] & 0x7f, euc[1] & 0x7f]));
        }
    }
    if has(Set::Jis0212) {
        if let Some(p) = jis0212().get(&c) {
            return Some((Set::Jis0212, p.to_vec()));
        }
    }
    None
}

fn escape_of(set: Set) -> &'static [u8] {
    ESCAPES
        .iter()
        .find(|(_, s)| *s == set)
        .map(|(e, _)| *e)
        .unwrap_or(b"")
}

fn encode_iso2022(
    text: &str,
    initial: (Set, Option<Set>),
    declared: &[Set],
    kind: Text,
) -> Result<Vec<u8>, CharsetError> {
    let mut out = Vec::with_capacity(text.len() * 2);
    let (mut g0, mut g1) = initial;
    for c in text.chars() {
        let delimiter = c.is_ascii() && resets(c as u8, kind);
        if delimiter {
            if g0 != initial.0 {
                out.extend_from_slice(escape_of(initial.0));
            }
            out.push(c as u8);
            (g0, g1) = initial;
            continue;
        }
        let (set, bytes) =
            code_of(c, declared, initial.0).ok_or(CharsetError::Unencodable(c as u32))?;
        match set {
            Set::Katakana | Set::Latin1 if g1 != Some(set) => {
                out.extend_from_slice(escape_of(set));
                g1 = Some(set);
            }
            Set::Ascii | Set::Romaji | Set::Jis0208 | Set::Jis0212 if g0 != set => {
                out.extend_from_slice(escape_of(set));
                g0 = set;
            }
            _ => {}
        }
        out.extend_from_slice(&bytes);
    }
    if g0 != initial.0 {
        out.extend_from_slice(escape_of(initial.0));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps3_5_annex_h_vectors_decode() {
        // H.3.1: ISO 2022 IR 87, Yamada^Tarou=山田^太郎=やまだ^たろう
        let r = Repertoire::parse("\\ISO 2022 IR 87").expect("parse");
        let bytes =
            b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B";
        assert_eq!(
            r.decode(bytes, Text::PersonNames).expect("decode"),
            "Yamada^Tarou=山田^太郎=やまだ^たろう"
        );
        assert_eq!(
            r.encode("Yamada^Tarou=山田^太郎=やまだ^たろう", Text::PersonNames)
                .expect("encode"),
            bytes
        );
        // H.3.2: ISO 2022 IR 13 with IR 87: ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう
        let r = Repertoire::parse("ISO 2022 IR 13\\ISO 2022 IR 87").expect("parse");
        let bytes = b"\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b(J";
        assert_eq!(
            r.decode(bytes, Text::PersonNames).expect("decode"),
            "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"
        );
        assert_eq!(
            r.encode("ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう", Text::PersonNames)
                .expect("encode"),
            bytes
        );
    }

    #[test]
    fn jis_x_0212_names_decode_and_encode() {
        let r = Repertoire::parse("\\ISO 2022 IR 87\\ISO 2022 IR 159").expect("parse");
        let name = "Mori^Ogai=森^鷗外=もり^おうがい";
        let bytes = r.encode(name, Text::PersonNames).expect("encode");
        // 鷗 is in JIS X 0212 only: its escape is there.
        assert!(bytes.windows(4).any(|w| w == b"\x1b$(D"));
        assert_eq!(r.decode(&bytes, Text::PersonNames).expect("decode"), name);
        // Without IR 159 declared, the same bytes are refused, not guessed.
        let r87 = Repertoire::parse("\\ISO 2022 IR 87").expect("parse");
        assert!(matches!(
            r87.decode(&bytes, Text::PersonNames),
            Err(CharsetError::Escape(_))
        ));
        assert!(matches!(
            r87.encode(name, Text::PersonNames),
            Err(CharsetError::Unencodable(_))
        ));
    }

    #[test]
    fn unknown_terms_and_stray_bytes_are_errors() {
        assert!(matches!(
            Repertoire::parse("ISO 2022 IR 999"),
            Err(CharsetError::Unknown(_))
        ));
        let ascii = Repertoire::default();
        assert!(matches!(
            ascii.decode(b"caf\xe9", Text::Values),
            Err(CharsetError::Byte { byte: 0xe9, at: 3 })
        ));
        let utf8 = Repertoire::parse("ISO_IR 192").expect("parse");
        assert_eq!(
            utf8.decode("森鷗外".as_bytes(), Text::Values)
                .expect("utf-8"),
            "森鷗外"
        );
        assert!(utf8.decode(b"\xff", Text::Values).is_err());
        let latin = Repertoire::parse("ISO_IR 100").expect("parse");
        assert_eq!(
            latin
                .decode(b"Buc^J\xe9r\xf4me", Text::PersonNames)
                .expect("latin"),
            "Buc^Jérôme"
        );
        // A half pair of JIS X 0208 at the end.
        let r = Repertoire::parse("\\ISO 2022 IR 87").expect("parse");
        assert!(r.decode(b"\x1b$B;", Text::Values).is_err());
    }

    #[test]
    fn vendor_kanji_are_not_written_as_jis_x_0208() {
        let r87 = Repertoire::parse("\\ISO 2022 IR 87").expect("parse");
        assert!(r87.encode("高橋", Text::PersonNames).is_ok());
        for vendor in ["髙橋", "山﨑", "①"] {
            assert!(
                r87.encode(vendor, Text::PersonNames).is_err(),
                "{vendor} is not in JIS X 0208"
            );
        }
        let utf8 = Repertoire::parse("ISO_IR 192").expect("parse");
        let bytes = utf8
            .encode("髙橋", Text::PersonNames)
            .expect("UTF-8 holds it");
        assert_eq!(
            utf8.decode(&bytes, Text::PersonNames).expect("decode"),
            "髙橋"
        );
    }
}
