//! Data-entry noise, as real extracts have it, each instance recorded in the truth.
//!
//! Identity noise is applied to a record before it is written (canonical and native alike): kana width
//! and script variants, variant kanji, kana typos, missing kana, transposed day and month of birth, a
//! surname not updated after marriage, a stale address after a move, a missing or mistyped 枝番.
//! Malformed records (truncated lines, impossible dates, invalid codes) are injected into native files
//! only; readers must report them and still read every other record of the file.

use chrono::{Datelike, NaiveDate};
use rand::Rng;
use tokumei_model::SourceKind;

use crate::emit::{EmittedRecord, Native};
use crate::life::LifePerson;
use crate::rng::{chance, SynthRng};
use crate::Context;

/// One injected deviation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Noise {
    /// What kind (`kana-half-width`, `malformed-truncated`, ...).
    pub kind: &'static str,
    /// Which field.
    pub field: &'static str,
}

/// Base rates per record, multiplied by the configured scale.
const KANA_HALF_WIDTH: f64 = 0.02;
const KANA_HIRAGANA: f64 = 0.02;
const VARIANT_KANJI: f64 = 0.3;
const KANA_TYPO: f64 = 0.01;
const KANA_MISSING: f64 = 0.03;
const BIRTH_TRANSPOSED: f64 = 0.004;
const STALE_SURNAME: f64 = 0.25;
const STALE_ADDRESS: f64 = 0.3;
const BRANCH_MISSING: f64 = 0.04;
const BRANCH_MISTYPED: f64 = 0.01;
const MALFORMED: f64 = 0.0005;

/// Standard kanji and the variants data entry produces for them.
const VARIANTS: &[(char, char)] = &[
    ('高', '髙'),
    ('崎', '﨑'),
    ('辺', '邊'),
    ('斎', '齋'),
    ('沢', '澤'),
    ('浜', '濱'),
    ('吉', '𠮷'),
    ('徳', '德'),
];

fn half_width_kana(s: &str) -> String {
    // Full-width katakana to half-width (JIS X 0201), voiced marks split off.
    const BASE: &str = "ァアィイゥウェエォオカガキギクグケゲコゴサザシジスズセゼソゾタダチヂッツヅテデトドナニヌネノハバパヒビピフブプヘベペホボポマミムメモャヤュユョヨラリルレロヮワヰヱヲンヴ";
    const HALF: &[&str] = &[
        "ｧ", "ｱ", "ｨ", "ｲ", "ｩ", "ｳ", "ｪ", "ｴ", "ｫ", "ｵ", "ｶ", "ｶﾞ", "ｷ", "ｷﾞ", "ｸ", "ｸﾞ", "ｹ", "ｹﾞ",
        "ｺ", "ｺﾞ", "ｻ", "ｻﾞ", "ｼ", "ｼﾞ", "ｽ", "ｽﾞ", "ｾ", "ｾﾞ", "ｿ", "ｿﾞ", "ﾀ", "ﾀﾞ", "ﾁ", "ﾁﾞ", "ｯ", "ﾂ",
        "ﾂﾞ", "ﾃ", "ﾃﾞ", "ﾄ", "ﾄﾞ", "ﾅ", "ﾆ", "ﾇ", "ﾈ", "ﾉ", "ﾊ", "ﾊﾞ", "ﾊﾟ", "ﾋ", "ﾋﾞ", "ﾋﾟ", "ﾌ", "ﾌﾞ",
        "ﾌﾟ", "ﾍ", "ﾍﾞ", "ﾍﾟ", "ﾎ", "ﾎﾞ", "ﾎﾟ", "ﾏ", "ﾐ", "ﾑ", "ﾒ", "ﾓ", "ｬ", "ﾔ", "ｭ", "ﾕ", "ｮ", "ﾖ",
        "ﾗ", "ﾘ", "ﾙ", "ﾚ", "ﾛ", "ﾜ", "ﾜ", "ｲ", "ｴ", "ｦ", "ﾝ", "ｳﾞ",
    ];
    s.chars()
        .map(|c| match BASE.chars().position(|b| b == c) {
            Some(i) => HALF
                .get(i)
                .map(|h| h.to_string())
                .unwrap_or_else(|| c.to_string()),
            None if c == 'ー' => "ｰ".to_string(),
            None => c.to_string(),
        })
        .collect()
}

fn kana_typo(s: &str, rng: &mut SynthRng) -> Option<String> {
    const SWAPS: &[(char, char)] = &[
        ('ウ', 'ー'),
        ('オ', 'ウ'),
        ('ツ', 'ッ'),
        ('ヨ', 'ョ'),
        ('シ', 'ジ'),
        ('ハ', 'バ'),
        ('キ', 'ギ'),
        ('ユ', 'ュ'),
    ];
    let chars: Vec<char> = s.chars().collect();
    let candidates: Vec<usize> = (0..chars.len())
        .filter(|&i| SWAPS.iter().any(|(a, b)| *a == chars[i] || *b == chars[i]))
        .collect();
    let &i = candidates.get(rng.random_range(0..candidates.len().max(1)))?;
    let mut out = chars.clone();
    out[i] = SWAPS.iter().find_map(|(a, b)| {
        if *a == chars[i] {
            Some(*b)
        } else if *b == chars[i] {
            Some(*a)
        } else {
            None
        }
    })?;
    Some(out.into_iter().collect())
}

/// Applies identity noise to a record (before ids and native encoding).
pub fn identity_noise(
    ctx: &Context,
    p: &LifePerson,
    rec: &mut EmittedRecord,
    rng: &mut SynthRng,
) -> Vec<Noise> {
    let scale = ctx.noise;
    let mut out = Vec::new();
    if scale <= 0.0 {
        return out;
    }
    let hit = |rng: &mut SynthRng, rate: f64| chance(rng, (rate * scale).min(1.0));
    let id = &mut rec.identity;
    let kind = id.source_kind;
    // A surname not updated after marriage (hospitals, clinics and checkups lag; death records do not).
    if kind != SourceKind::Death && p.surnames.len() > 1 {
        let now = p.surname_on(id.recorded_on);
        let first = &p.surnames[0].1;
        if now != first && id.surname_kanji.is_some() && hit(rng, STALE_SURNAME) {
            id.surname_kanji = Some(first.kanji.clone());
            if id.surname_kana.is_some() {
                id.surname_kana = Some(first.kana.clone());
            }
            out.push(Noise {
                kind: "stale-surname",
                field: "surname",
            });
        }
    }
    // A stale address after a move (EMR and checkups keep the registration address).
    if matches!(kind, SourceKind::Emr | SourceKind::Checkup)
        && p.addresses.len() > 1
        && id.town.is_some()
    {
        let first = &p.addresses[0].1;
        if p.address_on(id.recorded_on) != first && hit(rng, STALE_ADDRESS) {
            let m = first.municipality(&ctx.region);
            let t = first.town(&ctx.region);
            id.municipality_code = Some(m.code6.clone());
            id.municipality = Some(m.name.clone());
            id.town = Some(t.name.clone());
            id.chome = first.chome.map(|c| c.to_string());
            id.banchi = Some(first.banchi.clone());
            id.postal_code = Some(t.postal.clone());
            out.push(Noise {
                kind: "stale-address",
                field: "address",
            });
        }
    }
    if let Some(s) = id.surname_kanji.clone() {
        if s.chars().any(|c| VARIANTS.iter().any(|(a, _)| *a == c)) && hit(rng, VARIANT_KANJI) {
            id.surname_kanji = Some(
                s.chars()
                    .map(|c| {
                        VARIANTS
                            .iter()
                            .find(|(a, _)| *a == c)
                            .map(|v| v.1)
                            .unwrap_or(c)
                    })
                    .collect(),
            );
            out.push(Noise {
                kind: "variant-kanji",
                field: "surname_kanji",
            });
        }
    }
    if id.surname_kana.is_some() {
        if hit(rng, KANA_MISSING) {
            id.surname_kana = None;
            id.given_kana = None;
            out.push(Noise {
                kind: "kana-missing",
                field: "kana",
            });
        } else if hit(rng, KANA_TYPO) {
            if let Some(t) = id.given_kana.as_deref().and_then(|g| kana_typo(g, rng)) {
                id.given_kana = Some(t);
                out.push(Noise {
                    kind: "kana-typo",
                    field: "given_kana",
                });
            }
        } else if hit(rng, KANA_HALF_WIDTH) {
            id.surname_kana = id.surname_kana.as_deref().map(half_width_kana);
            id.given_kana = id.given_kana.as_deref().map(half_width_kana);
            out.push(Noise {
                kind: "kana-half-width",
                field: "kana",
            });
        } else if kind != SourceKind::Claims && hit(rng, KANA_HIRAGANA) {
            id.surname_kana = id
                .surname_kana
                .as_deref()
                .map(tokumei_japan::fold::hiragana);
            id.given_kana = id.given_kana.as_deref().map(tokumei_japan::fold::hiragana);
            out.push(Noise {
                kind: "kana-hiragana",
                field: "kana",
            });
        }
    }
    if let Some(b) = id.birth_date {
        if b.day() <= 12 && b.day() != b.month() && hit(rng, BIRTH_TRANSPOSED) {
            if let Some(t) = NaiveDate::from_ymd_opt(b.year(), b.day(), b.month()) {
                id.birth_date = Some(t);
                out.push(Noise {
                    kind: "birth-day-month-transposed",
                    field: "birth_date",
                });
            }
        }
    }
    if id.insured_branch.is_some() {
        if hit(rng, BRANCH_MISSING) {
            id.insured_branch = None;
            out.push(Noise {
                kind: "branch-missing",
                field: "insured_branch",
            });
        } else if hit(rng, BRANCH_MISTYPED) {
            id.insured_branch = Some(if id.insured_branch.as_deref() == Some("00") {
                "01".into()
            } else {
                "00".into()
            });
            out.push(Noise {
                kind: "branch-mistyped",
                field: "insured_branch",
            });
        }
    }
    out
}

/// Corrupts a native record now and then: a truncated line, an impossible date or an invalid code.
pub fn malformed(ctx: &Context, native: &mut Native, rng: &mut SynthRng) -> Option<Noise> {
    // A record spread over many messages or documents has as many chances to go wrong.
    let scale = match native {
        Native::Files { files, .. } => files.len().clamp(1, 20) as f64,
        _ => 1.0,
    };
    if !chance(rng, (MALFORMED * scale * ctx.noise).min(1.0)) {
        return None;
    }
    match native {
        Native::Claims { receipt, .. } => match rng.random_range(0..3) {
            0 => {
                let line = receipt
                    .rest
                    .iter_mut()
                    .find(|l| l.starts_with("SY,") || l.starts_with("SI,"))?;
                let cut: Vec<&str> = line.split(',').take(4).collect();
                *line = cut.join(",");
                Some(Noise {
                    kind: "malformed-truncated",
                    field: "line",
                })
            }
            1 => {
                // The birth date is the 6th field of the RE line; its tail starts after the receipt number.
                let mut f: Vec<String> = receipt.re_tail.split(',').map(str::to_string).collect();
                let birth = f.get_mut(5)?;
                if birth.len() != 8 {
                    return None;
                }
                birth.replace_range(4..6, "13");
                receipt.re_tail = f.join(",");
                Some(Noise {
                    kind: "malformed-date",
                    field: "birth_date",
                })
            }
            _ => {
                let line = receipt.rest.iter_mut().find(|l| l.starts_with("SY,"))?;
                let mut f: Vec<String> = line.split(',').map(str::to_string).collect();
                f[1] = "88X3421".into();
                *line = f.join(",");
                Some(Noise {
                    kind: "malformed-code",
                    field: "disease_code",
                })
            }
        },
        Native::Files { sub, files, .. } if *sub == "ssmix2" => ssmix2_malformed(files, rng),
        Native::Files { files, .. } => kenshin_malformed(files.first_mut()?, rng),
        Native::Fhir(line) => fhir_malformed(line, rng),
        Native::Death(row) => {
            let text = String::from_utf8(row.clone()).ok()?;
            let mut f: Vec<String> = text.trim_end().split(',').map(str::to_string).collect();
            let birth = f.get_mut(4)?;
            if birth.len() != 10 {
                return None;
            }
            birth.replace_range(5..7, "13");
            *row = format!("{}\r\n", f.join(",")).into_bytes();
            Some(Noise {
                kind: "malformed-date",
                field: "birth_date",
            })
        }
    }
}

/// Corrupts one message of an SS-MIX2 patient folder: the profile (ADT-00) cut inside its PID
/// segment, an impossible birth date in PID-7, a lab code cut short in OBX-3, or the profile written
/// in Shift_JIS instead of ISO-2022-JP.
fn ssmix2_malformed(files: &mut [(String, Vec<u8>)], rng: &mut SynthRng) -> Option<Noise> {
    let iso = encoding_rs::ISO_2022_JP;
    let decode = |b: &[u8]| iso.decode_without_bom_handling(b).0.into_owned();
    let kind = rng.random_range(0..4);
    let (needle, kind_name, field) = match kind {
        0 => ("/ADT-00/", "malformed-truncated", "message"),
        1 => ("/ADT-00/", "malformed-date", "birth_date"),
        2 => ("/OML-11/", "malformed-code", "lab_code"),
        _ => ("/ADT-00/", "malformed-encoding", "file"),
    };
    let (_, bytes) = files.iter_mut().find(|(p, _)| p.contains(needle))?;
    let text = decode(bytes);
    let new = match kind {
        0 => {
            let at = text.find("\rPID|")?;
            text[..at + 3].to_string()
        }
        1 => {
            let mut segs: Vec<String> = text.split('\r').map(str::to_string).collect();
            let pid = segs.iter_mut().find(|s| s.starts_with("PID|"))?;
            let mut f: Vec<String> = pid.split('|').map(str::to_string).collect();
            let birth = f.get_mut(7)?;
            if birth.len() != 8 {
                return None;
            }
            birth.replace_range(4..6, "13");
            *pid = f.join("|");
            segs.join("\r")
        }
        2 => {
            let mut segs: Vec<String> = text.split('\r').map(str::to_string).collect();
            let obx = segs.iter_mut().find(|s| s.starts_with("OBX|"))?;
            let mut f: Vec<String> = obx.split('|').map(str::to_string).collect();
            let code = f.get_mut(3)?;
            let cut = code.find('^').unwrap_or(code.len());
            if cut < 17 {
                return None;
            }
            code.replace_range(6..cut, "");
            *obx = f.join("|");
            segs.join("\r")
        }
        _ => {
            *bytes = encoding_rs::SHIFT_JIS.encode(&text).0.into_owned();
            return Some(Noise {
                kind: kind_name,
                field,
            });
        }
    };
    *bytes = iso.encode(&new).0.into_owned();
    Some(Noise {
        kind: kind_name,
        field,
    })
}

/// Corrupts a checkup document: cut in half, an impossible birth date, an item code cut short, or
/// the document re-encoded as Shift_JIS while it still declares UTF-8.
fn kenshin_malformed(file: &mut (String, Vec<u8>), rng: &mut SynthRng) -> Option<Noise> {
    let text = String::from_utf8(file.1.clone()).ok()?;
    let (kind, field, new) = match rng.random_range(0..4) {
        0 => {
            let mut cut = text.len() / 2;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            ("malformed-truncated", "document", text[..cut].to_string())
        }
        1 => {
            let at = text.find("<birthTime value=\"")? + "<birthTime value=\"".len();
            let mut t = text.clone();
            t.replace_range(at + 4..at + 6, "13");
            ("malformed-date", "birth_date", t)
        }
        2 => {
            let key = "codeSystem=\"1.2.392.200119.6.1005\"";
            let end = text.find(key)?;
            let start = text[..end].rfind("code=\"")? + "code=\"".len();
            let mut t = text.clone();
            t.replace_range(start..start + 17, "9N00");
            ("malformed-code", "lab_code", t)
        }
        _ => {
            file.1 = encoding_rs::SHIFT_JIS.encode(&text).0.into_owned();
            return Some(Noise {
                kind: "malformed-encoding",
                field: "file",
            });
        }
    };
    file.1 = new.into_bytes();
    Some(Noise { kind, field })
}

/// Corrupts a FHIR bundle line: cut short, an impossible birth date, an Observation without its
/// code, or the line in Shift_JIS.
fn fhir_malformed(line: &mut Vec<u8>, rng: &mut SynthRng) -> Option<Noise> {
    let text = String::from_utf8(line.clone()).ok()?;
    let body = text.trim_end();
    let (kind, field, new) = match rng.random_range(0..4) {
        0 => {
            let mut cut = body.len() * 2 / 3;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            ("malformed-truncated", "line", body[..cut].to_string())
        }
        1 | 2 => {
            let mut v: serde_json::Value = serde_json::from_str(body).ok()?;
            let entries = v.get_mut("entry")?.as_array_mut()?;
            let date = rng.random_range(0..2) == 0;
            let target = if date { "Patient" } else { "Observation" };
            let res = entries
                .iter_mut()
                .filter_map(|e| e.get_mut("resource"))
                .find(|r| r.get("resourceType").and_then(|t| t.as_str()) == Some(target))?;
            let obj = res.as_object_mut()?;
            if date {
                let b = obj.get("birthDate")?.as_str()?.to_string();
                if b.len() != 10 {
                    return None;
                }
                obj.insert(
                    "birthDate".into(),
                    serde_json::Value::String(format!("{}13{}", &b[..5], &b[7..])),
                );
                (
                    "malformed-date",
                    "birth_date",
                    serde_json::to_string(&v).ok()?,
                )
            } else {
                obj.remove("code")?;
                (
                    "malformed-code",
                    "lab_code",
                    serde_json::to_string(&v).ok()?,
                )
            }
        }
        _ => {
            let mut b = encoding_rs::SHIFT_JIS.encode(body).0.into_owned();
            if b.is_ascii() {
                return None;
            }
            b.push(b'\n');
            *line = b;
            return Some(Noise {
                kind: "malformed-encoding",
                field: "line",
            });
        }
    };
    *line = format!("{new}\n").into_bytes();
    Some(Noise { kind, field })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kana_variants() {
        assert_eq!(half_width_kana("ガッコウ"), "ｶﾞｯｺｳ");
        assert_eq!(half_width_kana("サトウ"), "ｻﾄｳ");
        assert_eq!(tokumei_japan::fold::hiragana("サトウ"), "さとう");
    }
}
