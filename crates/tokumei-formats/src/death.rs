//! Municipal records of residents who died (住民票の除票), exported as CSV.
//!
//! There is no national exchange format for this; Tokumei documents one (`docs/formats/death-csv.md`):
//! a header line naming the columns, then one row per removed resident. Columns are found by name, so
//! extra columns are ignored and column order is free. Files are UTF-8 (current standard systems) or
//! Shift_JIS (legacy systems); the encoding is detected. Dates are `YYYY-MM-DD`, `YYYY/MM/DD`,
//! `YYYYMMDD` or era-coded `GYYMMDD`.
//!
//! Columns: `municipality_code`, `record_kind` (除票), `name_kanji`, `name_kana`, `birth_date`, `sex`
//! (1/2), `last_address`, `postal_code`, `removal_reason` (死亡, 転出 ...), `removal_date`, `death_date`,
//! `notified_date`, `kokuho_insurer_no`, `kokuho_symbol`, `kokuho_number`, `kokuho_branch`, and
//! optionally `resident_number` (the municipality's own resident number; 住民票コード and 個人番号 must
//! never be exported).

use chrono::NaiveDate;
use tokumei_model::events::{Death, EventSet, SourceRecord};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::{InsuranceKind, Sex, SourceKind};

use crate::dates::DateStyle;
use crate::encoding::{detect, Detected};
use crate::text::{join_name, split_name, to_half_width_ascii};
use crate::uke::insurance_kind;
use crate::{FormatError, ParsedRecord, ReadReport, Rejected, Severity};

/// Columns written, in order.
pub const COLUMNS: [&str; 17] = [
    "municipality_code",
    "record_kind",
    "name_kanji",
    "name_kana",
    "birth_date",
    "sex",
    "last_address",
    "postal_code",
    "removal_reason",
    "removal_date",
    "death_date",
    "notified_date",
    "kokuho_insurer_no",
    "kokuho_symbol",
    "kokuho_number",
    "kokuho_branch",
    "resident_number",
];

/// Columns a file must have.
const REQUIRED: [&str; 6] = [
    "name_kanji",
    "birth_date",
    "sex",
    "removal_reason",
    "death_date",
    "last_address",
];

/// Parses a date in any of the accepted forms.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = to_half_width_ascii(s.trim());
    if s.len() == 10 {
        let sep = s.as_bytes()[4];
        if (sep == b'-' || sep == b'/') && s.as_bytes()[7] == sep {
            let compact: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
            return crate::uke::parse_date(&compact).filter(|_| compact.len() == 8);
        }
        return None;
    }
    crate::uke::parse_date(&s)
}

/// An address split into its parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressParts {
    /// 都道府県.
    pub prefecture: Option<String>,
    /// 市区町村 (without the county).
    pub municipality: Option<String>,
    /// 町名・大字.
    pub town: Option<String>,
    /// 丁目.
    pub chome: Option<String>,
    /// 番地-号.
    pub banchi: Option<String>,
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

/// Splits a Japanese address written as one string: prefecture, municipality (a county prefix such as
/// 東津軽郡 is dropped), town up to the first Arabic digit, then `N丁目M-K` or `N-M-K` (丁目-番地-号) or
/// `M-K`. Heuristic: a municipality whose name contains 市, 区, 町 or 村 before its end (四日市市) is cut
/// short; callers holding the municipality code should prefer it.
pub fn parse_address(s: &str) -> AddressParts {
    let mut rest: &str = s.trim();
    let mut out = AddressParts::default();
    let pref_end = if rest.starts_with("京都府") {
        Some("京都府".len())
    } else {
        rest.char_indices()
            .take(4)
            .find(|(_, c)| matches!(c, '都' | '道' | '府' | '県'))
            .map(|(i, c)| i + c.len_utf8())
    };
    if let Some(e) = pref_end {
        out.prefecture = Some(rest[..e].to_string());
        rest = &rest[e..];
    }
    // Drop a county (郡) that precedes a town or village.
    if let Some((i, _)) = rest.char_indices().take(6).find(|(_, c)| *c == '郡') {
        rest = &rest[i + '郡'.len_utf8()..];
    }
    if let Some((i, c)) = rest
        .char_indices()
        .find(|(_, c)| matches!(c, '市' | '区' | '町' | '村'))
    {
        let e = i + c.len_utf8();
        out.municipality = Some(rest[..e].to_string());
        rest = &rest[e..];
    }
    let town_end = rest
        .char_indices()
        .find(|(_, c)| is_digit(*c))
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    let town = rest[..town_end].trim();
    if !town.is_empty() {
        out.town = Some(town.to_string());
    }
    let tail = to_half_width_ascii(rest[town_end..].trim());
    if tail.is_empty() {
        return out;
    }
    if let Some((n, after)) = tail.split_once("丁目") {
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            out.chome = Some(n.to_string());
            let b = after.trim_start_matches('-').trim();
            out.banchi = (!b.is_empty()).then(|| b.to_string());
            return out;
        }
    }
    let parts: Vec<&str> = tail.split('-').collect();
    if parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        out.chome = Some(parts[0].to_string());
        out.banchi = Some(parts[1..].join("-"));
    } else {
        out.banchi = Some(tail);
    }
    out
}

/// Writes the address the way [`parse_address`] reads it back: full-width digits, `丁目` spelled out.
pub fn format_address(id: &IdentityRecord) -> String {
    let fw = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                '0'..='9' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
                '-' => '－',
                _ => c,
            })
            .collect()
    };
    let mut s = String::new();
    for p in [&id.prefecture, &id.municipality, &id.town]
        .into_iter()
        .flatten()
    {
        s.push_str(p);
    }
    if let Some(c) = &id.chome {
        s.push_str(&fw(c));
        s.push_str("丁目");
    }
    if let Some(b) = &id.banchi {
        s.push_str(&fw(b));
    }
    s
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Reads a death-record CSV. `provider_id` is stored on every identity record.
pub fn read(bytes: &[u8], provider_id: &str) -> ReadReport {
    let mut report = ReadReport::default();
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let detected = detect(bytes);
    report.encoding = Some(detected);
    let text: std::borrow::Cow<'_, str> = match detected {
        Detected::Ascii | Detected::Utf8 => match std::str::from_utf8(bytes) {
            Ok(t) => t.into(),
            Err(_) => {
                report.issue(Severity::Error, 1, None, "file is not valid UTF-8");
                return report;
            }
        },
        Detected::ShiftJis => encoding_rs::SHIFT_JIS.decode_without_bom_handling(bytes).0,
        Detected::Iso2022Jp | Detected::Unknown => {
            report.issue(
                Severity::Error,
                1,
                None,
                "file is neither UTF-8 nor Shift_JIS",
            );
            return report;
        }
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(_) => {
            report.issue(Severity::Error, 1, None, "cannot read the header line");
            return report;
        }
    };
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    for r in REQUIRED {
        if col(r).is_none() {
            report.issue(Severity::Error, 1, None, format!("missing column `{r}`"));
        }
    }
    if report.errors() > 0 {
        return report;
    }
    let c = |name: &str| col(name);
    let idx: Vec<Option<usize>> = COLUMNS.iter().map(|n| c(n)).collect();
    for (n, h) in headers.iter().enumerate() {
        if matches!(
            h.trim(),
            "個人番号" | "my_number" | "juminhyo_code" | "住民票コード"
        ) {
            report.issue(
                Severity::Error,
                1,
                Some(n),
                "a column holds 個人番号 or 住民票コード, which must not be exported",
            );
            return report;
        }
    }
    // Line numbers are counted here from byte offsets: the CSV reader's own count lags on CR LF files.
    let text_bytes = text.as_bytes();
    let mut counted_to = 0usize;
    let mut counted_lines = 1usize;
    // On CR LF files the reader reports a record as starting at the LF that ends the previous line,
    // so the byte at the reported offset is counted too.
    let mut line_at = |byte: u64| -> usize {
        let byte = (byte as usize + 1).min(text_bytes.len());
        if byte >= counted_to {
            counted_lines += memchr::memchr_iter(b'\n', &text_bytes[counted_to..byte]).count();
            counted_to = byte;
        }
        counted_lines
    };
    for result in rdr.records() {
        let rec = match result {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| line_at(p.byte())).unwrap_or(0);
                report.issue(Severity::Error, line, None, "malformed CSV row");
                report.rejected.push(Rejected {
                    first_line: line,
                    last_line: line,
                    reason: "malformed CSV row".into(),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| line_at(p.byte())).unwrap_or(0);
        *report.line_counts.entry("row".into()).or_default() += 1;
        let get = |name: &str| -> &str {
            COLUMNS
                .iter()
                .position(|c| *c == name)
                .and_then(|i| idx[i])
                .and_then(|i| rec.get(i))
                .unwrap_or("")
        };
        let field_of = |name: &str| COLUMNS.iter().position(|c| *c == name).and_then(|i| idx[i]);
        match build(&get, provider_id) {
            Ok((record, warnings)) => {
                for w in warnings {
                    report.issue(Severity::Warning, line, field_of(w.0), w.1);
                }
                report.records.push(ParsedRecord {
                    record,
                    first_line: line,
                    last_line: line,
                });
            }
            Err((column, msg)) => {
                report.issue(Severity::Error, line, field_of(column), msg.clone());
                report.rejected.push(Rejected {
                    first_line: line,
                    last_line: line,
                    reason: msg,
                });
            }
        }
    }
    report
}

type Warnings = Vec<(&'static str, String)>;

fn build<'a>(
    get: &dyn Fn(&str) -> &'a str,
    provider_id: &str,
) -> Result<(SourceRecord, Warnings), (&'static str, String)> {
    let mut warnings = Vec::new();
    let birth = parse_date(get("birth_date"))
        .ok_or(("birth_date", "birth_date is not a valid date".to_string()))?;
    let sex = match to_half_width_ascii(get("sex").trim()).as_str() {
        "1" | "M" | "男" => Sex::Male,
        "2" | "F" | "女" => Sex::Female,
        _ => return Err(("sex", "sex is neither 1 nor 2".into())),
    };
    let reason = get("removal_reason").trim();
    let death = if reason == "死亡" {
        Some(
            parse_date(get("death_date"))
                .ok_or(("death_date", "death_date is not a valid date".to_string()))?,
        )
    } else {
        warnings.push((
            "removal_reason",
            "removal is not a death: read without a death event".to_string(),
        ));
        None
    };
    let notified = match get("notified_date").trim() {
        "" => None,
        s => Some(parse_date(s).ok_or((
            "notified_date",
            "notified_date is not a valid date".to_string(),
        ))?),
    };
    let removal = match get("removal_date").trim() {
        "" => None,
        s => Some(parse_date(s).ok_or((
            "removal_date",
            "removal_date is not a valid date".to_string(),
        ))?),
    };
    if let (Some(d), Some(n)) = (death, notified) {
        if n < d {
            warnings.push(("notified_date", "notified before death".to_string()));
        }
    }
    if death.is_some_and(|d| d < birth) {
        return Err(("death_date", "death_date is before birth_date".into()));
    }
    let (surname_kanji, given_kanji) = split_name(get("name_kanji"));
    let (surname_kana, given_kana) = split_name(get("name_kana"));
    if surname_kanji.is_none() {
        return Err(("name_kanji", "name_kanji is empty".into()));
    }
    let addr = parse_address(get("last_address"));
    let postal: String = to_half_width_ascii(get("postal_code"))
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    if !postal.is_empty() && postal.len() != 7 {
        warnings.push(("postal_code", "postal_code is not 7 digits".to_string()));
    }
    let insurer = opt(&to_half_width_ascii(get("kokuho_insurer_no")));
    if let Some(i) = &insurer {
        if !tokumei_model::checkdigit::insurer_number_is_valid(i) {
            warnings.push((
                "kokuho_insurer_no",
                "insurer number check digit does not match".to_string(),
            ));
        }
    }
    let recorded_on = notified.or(removal).or(death).unwrap_or(birth);
    let identity = IdentityRecord {
        record_id: String::new(),
        provider_id: provider_id.to_string(),
        source_kind: SourceKind::Death,
        local_patient_id: opt(get("resident_number")),
        surname_kanji,
        given_kanji,
        surname_kana,
        given_kana,
        birth_date: Some(birth),
        sex: Some(sex),
        prefecture: addr.prefecture,
        municipality_code: opt(get("municipality_code")),
        municipality: addr.municipality,
        town: addr.town,
        chome: addr.chome,
        banchi: addr.banchi,
        postal_code: (!postal.is_empty()).then_some(postal),
        insurance_kind: insurer.as_deref().and_then(insurance_kind),
        insured_symbol: insurer
            .as_ref()
            .and_then(|_| opt(&to_half_width_ascii(get("kokuho_symbol")))),
        insured_number: insurer
            .as_ref()
            .and_then(|_| opt(&to_half_width_ascii(get("kokuho_number")))),
        insured_branch: insurer
            .as_ref()
            .and_then(|_| opt(&to_half_width_ascii(get("kokuho_branch")))),
        insurer_number: insurer,
        recorded_on,
    };
    let mut events = EventSet::default();
    if let Some(date) = death {
        events.deaths.push(Death {
            event_id: String::new(),
            record_id: String::new(),
            date,
            recorded_on: notified,
        });
    }
    Ok((SourceRecord { identity, events }, warnings))
}

/// The canonical record as this CSV carries it: what `read(write(r))` gives back.
pub fn canonicalize(r: &SourceRecord) -> SourceRecord {
    let mut id = r.identity.clone();
    id.record_id = String::new();
    if id.surname_kana.is_none() {
        id.given_kana = None;
    }
    let kokuho = id.insurance_kind == Some(InsuranceKind::Kokuho) && id.insurer_number.is_some();
    if !kokuho {
        id.insurance_kind = None;
        id.insurer_number = None;
        id.insured_symbol = None;
        id.insured_number = None;
        id.insured_branch = None;
    }
    let death = r.events.deaths.first();
    let mut events = EventSet::default();
    if let Some(d) = death {
        events.deaths.push(Death {
            event_id: String::new(),
            record_id: String::new(),
            date: d.date,
            recorded_on: d.recorded_on,
        });
        id.recorded_on = d.recorded_on.unwrap_or(d.date);
    }
    SourceRecord {
        identity: id,
        events,
    }
}

/// The canonical record as a CSV in `encoding` carries it: as [`canonicalize`], and for Shift_JIS
/// with every text field substituted as [`encode`] does.
pub fn canonicalize_for(r: &SourceRecord, encoding: Encoding) -> SourceRecord {
    let mut c = canonicalize(r);
    if encoding == Encoding::ShiftJis {
        let id = &mut c.identity;
        for v in [
            &mut id.surname_kanji,
            &mut id.given_kanji,
            &mut id.surname_kana,
            &mut id.given_kana,
            &mut id.prefecture,
            &mut id.municipality,
            &mut id.town,
            &mut id.insured_symbol,
            &mut id.insured_number,
        ]
        .into_iter()
        .flatten()
        {
            *v = crate::uke::substitute(v).0;
        }
    }
    c
}

/// Text encoding of a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 (current standard systems).
    Utf8,
    /// Shift_JIS (legacy systems); characters outside Shift_JIS are substituted.
    ShiftJis,
}

fn csv_line(fields: &[String]) -> Result<Vec<u8>, FormatError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(fields)
        .map_err(|e| FormatError::Unrepresentable {
            what: "CSV row",
            reason: e.to_string(),
        })?;
    w.into_inner().map_err(|e| FormatError::Unrepresentable {
        what: "CSV row",
        reason: e.to_string(),
    })
}

/// The header line (UTF-8, CR LF).
pub fn header_line() -> Result<Vec<u8>, FormatError> {
    csv_line(&COLUMNS.map(str::to_string))
}

/// One record as a CSV line (UTF-8, CR LF).
pub fn row_line(r: &SourceRecord) -> Result<Vec<u8>, FormatError> {
    row_line_with(r, DateStyle::Gregorian)
}

/// [`row_line`] with dates in `style` (`YYYY-MM-DD` or era-coded `GYYMMDD` as legacy systems write).
pub fn row_line_with(r: &SourceRecord, style: DateStyle) -> Result<Vec<u8>, FormatError> {
    let c = canonicalize(r);
    let id = &c.identity;
    let death = c.events.deaths.first();
    let date = |d: Option<NaiveDate>| {
        d.map(|d| match style {
            DateStyle::Era => {
                crate::dates::era_ymd(d).unwrap_or_else(|| d.format("%Y-%m-%d").to_string())
            }
            DateStyle::Gregorian => d.format("%Y-%m-%d").to_string(),
        })
        .unwrap_or_default()
    };
    let postal = id
        .postal_code
        .as_ref()
        .map(|p| match (p.get(..3), p.get(3..)) {
            (Some(a), Some(b)) if p.len() == 7 => format!("{a}-{b}"),
            _ => p.clone(),
        })
        .unwrap_or_default();
    csv_line(&[
        id.municipality_code.clone().unwrap_or_default(),
        "除票".into(),
        join_name(&id.surname_kanji, &id.given_kanji),
        join_name(&id.surname_kana, &id.given_kana),
        date(id.birth_date),
        id.sex.map(|s| s.jp_code().to_string()).unwrap_or_default(),
        format_address(id),
        postal,
        if death.is_some() {
            "死亡".into()
        } else {
            "転出".into()
        },
        date(death.map(|d| d.date)),
        date(death.map(|d| d.date)),
        date(death.and_then(|d| d.recorded_on)),
        id.insurer_number.clone().unwrap_or_default(),
        id.insured_symbol.clone().unwrap_or_default(),
        id.insured_number.clone().unwrap_or_default(),
        id.insured_branch.clone().unwrap_or_default(),
        id.local_patient_id.clone().unwrap_or_default(),
    ])
}

/// Writes death records as CSV. Records without a death event are written with reason 転出.
pub fn write(records: &[SourceRecord], encoding: Encoding) -> Result<Vec<u8>, FormatError> {
    write_with(records, encoding, DateStyle::Gregorian)
}

/// [`write`] with dates in `style`.
pub fn write_with(
    records: &[SourceRecord],
    encoding: Encoding,
    style: DateStyle,
) -> Result<Vec<u8>, FormatError> {
    let mut bytes = header_line()?;
    for r in records {
        bytes.extend(row_line_with(r, style)?);
    }
    Ok(encode(bytes, encoding))
}

/// Re-encodes UTF-8 CSV bytes in `encoding`; characters Shift_JIS cannot carry are substituted
/// (see [`crate::uke::substitute`]) instead of letting the encoder write `&#NNNN;`.
pub fn encode(bytes: Vec<u8>, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Utf8 => bytes,
        Encoding::ShiftJis => {
            // Line ends are kept; only the text between them is substituted.
            let text = String::from_utf8_lossy(&bytes);
            let text: Vec<String> = text
                .split("\r\n")
                .map(|line| crate::uke::substitute(line).0)
                .collect();
            encoding_rs::SHIFT_JIS
                .encode(&text.join("\r\n"))
                .0
                .into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_hold_for_lf_and_crlf() {
        let sample = "name_kanji,birth_date,sex,removal_reason,death_date,last_address\n試験,1980-04-12,2,死亡,2030-02-03,東京都千代田区架空町１\n試験,1980-04-1x,2,死亡,2030-02-03,東京都千代田区架空町１\n";
        for text in [sample.to_string(), sample.replace('\n', "\r\n")] {
            let r = read(text.as_bytes(), "M");
            assert_eq!(r.records[0].first_line, 2);
            assert_eq!(r.rejected[0].first_line, 3);
        }
    }

    #[test]
    fn addresses_split_into_parts() {
        let a = parse_address("東京都千代田区架空町１－２－３");
        assert_eq!(a.prefecture.as_deref(), Some("東京都"));
        assert_eq!(a.municipality.as_deref(), Some("千代田区"));
        assert_eq!(a.town.as_deref(), Some("架空町"));
        assert_eq!(a.chome.as_deref(), Some("1"));
        assert_eq!(a.banchi.as_deref(), Some("2-3"));
        let b = parse_address("青森県東津軽郡平内町小湊１２－３");
        assert_eq!(b.municipality.as_deref(), Some("平内町"));
        assert_eq!(b.town.as_deref(), Some("小湊"));
        assert_eq!(b.chome, None);
        assert_eq!(b.banchi.as_deref(), Some("12-3"));
        let c = parse_address("京都府京都市北区新町３丁目５");
        assert_eq!(c.prefecture.as_deref(), Some("京都府"));
        assert_eq!(c.chome.as_deref(), Some("3"));
        assert_eq!(c.banchi.as_deref(), Some("5"));
        assert_eq!(
            parse_date("2030-02-03"),
            NaiveDate::from_ymd_opt(2030, 2, 3)
        );
        assert_eq!(parse_date("3550412"), NaiveDate::from_ymd_opt(1980, 4, 12));
        assert_eq!(parse_date("2030-2-03"), None);
    }
}
