//! レセプト電算処理システム medical claims (`RECEIPTC.UKE`, 医科): reader and writer.
//!
//! One file holds one facility's claims for one billing month: `IR` (facility), then per receipt `RE`
//! (patient and month) with `HO` (insurer), `KO` (public funding), `SN` (eligibility check, 枝番), `SY`
//! (diagnoses), `SI`/`IY`/`TO`/`CO` (procedures, drugs, materials, comments), `SJ`; and `GO` (totals) last.
//! Lines are comma-separated without quoting, end in CR LF, and are Shift_JIS (read as Windows-31J);
//! the writer appends the EOF byte 0x1A, the reader accepts files with or without it.
//!
//! Dates are Gregorian (`YYYYMM`, `YYYYMMDD`) in current files and era-coded (`GYYMM`, `GYYMMDD`) in
//! older ones; both are read, by length. The only day-level dates are the 31 day columns of
//! `SI`/`IY`/`TO` (counts per day), `SY` 診療開始日 and `RE` 入院年月日.
//!
//! Uncertain points of the layout (no official specification at hand) are marked `[U]` below; the reader
//! is lenient there and counts a warning.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use tokumei_japan::byomei::icd10_of;
use tokumei_model::checkdigit::{insurer_check_digit, insurer_number_is_valid};
use tokumei_model::events::{
    Diagnosis, Encounter, EventSet, Prescription, Procedure, SourceRecord,
};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::{CodeSystem, DiagnosisOutcome, InsuranceKind, Setting, Sex, SourceKind};

use crate::dates::DateStyle;
use crate::encoding::{decode_sjis_line, quick, Detected};
use crate::text::{join_name, split_name, to_full_width, to_half_width_ascii};
use crate::{FormatError, ParsedRecord, ReadReport, Rejected, Severity};

/// Field counts of each record type (index 0 is the record id).
pub fn field_count(record: &str) -> Option<usize> {
    Some(match record {
        "IR" => 10,
        "RE" => 38,
        "HO" => 15,
        "KO" => 12,
        "SN" => 9,
        "SY" => 8,
        "SI" | "IY" => 44,
        "TO" => 48,
        "CO" => 5,
        "SJ" => 3,
        "GO" => 4,
        // [U] field layouts of JD (受診日等) and MF (窓口負担額) are not known here: accepted, not mapped.
        "JD" | "MF" => return None,
        // Pharmacy (調剤, RECEIPTY.CYO) header, read like IR [U: its field layout is presumed].
        "YK" => 10,
        _ => return None,
    })
}

/// Record types of the DPC (`RECEIPTD.UKE`), dental and pharmacy (`RECEIPTY.CYO`) variants whose
/// names are known but whose field layouts are not specified here [U]: accepted, counted and warned
/// once per file, not mapped.
pub const VARIANT_RECORDS: &[(&str, &str)] = &[
    ("BU", "DPC 診断群分類"),
    ("SB", "DPC 傷病"),
    ("KK", "DPC 患者基礎"),
    ("SK", "DPC 診療関連"),
    ("GA", "DPC 外泊"),
    ("HH", "DPC 包括評価"),
    ("GT", "DPC 合計調整"),
    ("GR", "DPC 包括評価対象外理由"),
    ("CD", "DPC コーディングデータ"),
    ("HS", "歯科 傷病名部位"),
    ("SS", "歯科 診療行為"),
    ("SH", "調剤 処方基本"),
    ("CZ", "調剤 調剤情報"),
    ("TK", "調剤 摘要"),
    ("KI", "調剤 基本料・薬学管理料"),
    ("ST", "調剤 分割技術料"),
];

/// The claims code of a disease name that is not in the master (未コード化傷病名).
pub const UNCODED: &str = "0000999";
/// 修飾語 code for "suspected" (の疑い).
pub const SUSPECTED: &str = "8002";
/// First day column of SI / IY (day 1).
const DAY1: usize = 13;
/// First day column of TO.
const TO_DAY1: usize = 17;

/// The facility a file comes from (the `IR` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facility {
    /// 審査支払機関: 1 支払基金, 2 国保連.
    pub payer: u8,
    /// 2-digit prefecture code.
    pub prefecture: String,
    /// 点数表: 1 医科.
    pub table: String,
    /// 7-digit 医療機関コード.
    pub code7: String,
    /// Name.
    pub name: String,
}

impl Facility {
    /// The 10-digit facility code (prefecture + 点数表 + 7 digits).
    pub fn code10(&self) -> String {
        format!("{}{}{}", self.prefecture, self.table, self.code7)
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a date: `YYYYMMDD` or era-coded `GYYMMDD` (a day outside its era is no date).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    if !digits(s) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
    match s.len() {
        8 => NaiveDate::from_ymd_opt(n(0..4)? as i32, n(4..6)?, n(6..8)?),
        7 => crate::dates::parse_era_ymd(s),
        _ => None,
    }
}

/// Parses a month: `YYYYMM` or era-coded `GYYMM`; returns its first day.
pub fn parse_month(s: &str) -> Option<NaiveDate> {
    if !digits(s) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
    match s.len() {
        6 => NaiveDate::from_ymd_opt(n(0..4)? as i32, n(4..6)?, 1),
        5 => crate::dates::parse_era_ym(s),
        _ => None,
    }
}

/// The insurance scheme implied by an insurer number (法別番号).
pub fn insurance_kind(insurer: &str) -> Option<InsuranceKind> {
    if !digits(insurer) {
        return None;
    }
    match insurer.len() {
        6 => Some(InsuranceKind::Kokuho),
        8 => match insurer.get(..2)? {
            "01" => Some(InsuranceKind::Kyokai),
            "06" => Some(InsuranceKind::Kumiai),
            "31" | "32" | "33" | "34" => Some(InsuranceKind::Kyosai),
            "39" => Some(InsuranceKind::Koki),
            _ => None,
        },
        _ => None,
    }
}

/// Whether a character can be written in a claims file: ASCII, half-width katakana, or a JIS X 0208
/// character (Shift_JIS lead bytes 0x81–0x84, 0x88–0x9F, 0xE0–0xEA). NEC and IBM extensions of
/// Windows-31J are excluded: claims may carry only JIS X 0201 and JIS X 0208.
pub fn representable(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_control();
    }
    let mut buf = [0u8; 4];
    let s = c.encode_utf8(&mut buf);
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(s);
    if unmappable {
        return false;
    }
    match bytes.as_ref() {
        [b] => (0xA1..=0xDF).contains(b),
        [lead, _] => matches!(lead, 0x81..=0x84 | 0x88..=0x9F | 0xE0..=0xEA),
        _ => false,
    }
}

/// Substitutes characters a claims file cannot carry, as vendors do: the standard glyph of a common
/// variant kanji, else 〓 (geta). Returns the text and whether anything was substituted.
pub fn substitute(s: &str) -> (String, bool) {
    let mut changed = false;
    let out = s
        .chars()
        .map(|c| {
            if representable(c) {
                return c;
            }
            changed = true;
            match c {
                '髙' => '高',
                '﨑' => '崎',
                '𠮷' => '吉',
                '德' => '徳',
                '濵' => '浜',
                '邉' => '邊',
                '栁' => '柳',
                '塚' => '塚',
                '隆' => '隆',
                '神' => '神',
                _ => '〓',
            }
        })
        .collect();
    (out, changed)
}

// ---------------------------------------------------------------------------------------------
// Reader

struct Line<'a> {
    no: usize,
    /// The decoded line (borrowed from the input when it is ASCII).
    text: std::borrow::Cow<'a, str>,
    /// Where this line's field starts begin in the receipt's `starts` arena.
    at: usize,
    /// Number of fields.
    n: usize,
}

/// The fields of one line: `starts[i]` is where field `i` begins; field `i` ends one byte before
/// `starts[i + 1]` (the comma). A field beyond the last reads as empty.
struct Fields<'x> {
    text: &'x str,
    starts: &'x [u32],
}

impl<'x> Fields<'x> {
    fn at(&self, i: usize) -> &'x str {
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(&a), Some(&b)) => self.text.get(a as usize..b as usize - 1).unwrap_or(""),
            _ => "",
        }
    }
}

/// Longest line read (bytes): the longest records of the specification are a few hundred bytes.
pub const MAX_LINE: usize = 16 << 10;

/// Splits a line on commas (fields never contain a comma: no quoting).
fn split_fields(text: &str) -> Vec<&str> {
    text.split(',').collect()
}

/// Appends the field starts of `text` (0, then one past every comma, then `len + 1`) to `out`;
/// returns the number of fields.
fn field_starts(text: &[u8], out: &mut Vec<u32>) -> usize {
    let before = out.len();
    out.push(0);
    for (i, &b) in text.iter().enumerate() {
        if b == b',' {
            out.push(i as u32 + 1);
        }
    }
    out.push(text.len() as u32 + 1);
    out.len() - before - 1
}

fn fields<'x>(starts: &'x [u32], line: &'x Line<'_>) -> Fields<'x> {
    Fields {
        text: &line.text,
        starts: starts.get(line.at..line.at + line.n + 1).unwrap_or(&[]),
    }
}

struct Receipt<'a> {
    lines: Vec<Line<'a>>,
    /// Field starts of every line (see [`Fields`]).
    starts: Vec<u32>,
    error: Option<(usize, Option<usize>, String)>,
}

impl<'a> Receipt<'a> {
    /// Appends a line whose field starts are `starts` (called for every line: kept inline).
    #[inline]
    fn push(&mut self, mut line: Line<'a>, starts: &[u32]) {
        line.at = self.starts.len();
        self.starts.extend_from_slice(starts);
        self.lines.push(line);
    }
}

/// Reads a `RECEIPTC.UKE` file. `provider_id` is stored on every identity record.
pub fn read(bytes: &[u8], provider_id: &str) -> ReadReport {
    let mut records = Vec::new();
    let mut report = read_each(bytes, provider_id, &mut |r| records.push(r));
    report.records = records;
    report
}

/// Reads a `RECEIPTC.UKE` file, handing each record to `on_record` as soon as its receipt is read
/// (so that a large file is ingested in constant memory); the report returned has no records.
pub fn read_each(
    bytes: &[u8],
    provider_id: &str,
    on_record: &mut dyn FnMut(ParsedRecord),
) -> ReadReport {
    let mut report = ReadReport::default();
    let bytes = bytes.strip_suffix(&[0x1A]).unwrap_or(bytes);
    if !claims_encoding(bytes, &mut report) {
        return report;
    }
    let mut file = ClaimsFile::new(report, provider_id, on_record);
    // One pass over each line's bytes finds its end, its commas and whether it is ASCII; only
    // non-ASCII lines (names) are decoded and split again.
    let mut starts: Vec<u32> = Vec::with_capacity(64);
    let mut pos = 0usize;
    let mut no = 0usize;
    while pos < bytes.len() {
        no += 1;
        let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
        let raw = &bytes[pos..end];
        pos = end + 1;
        file.line(no, raw, &mut starts);
    }
    file.end()
}

/// Records the encoding of a claims file in `report`; `false`, with an error, when it is one that
/// claims files never are.
fn claims_encoding(bytes: &[u8], report: &mut ReadReport) -> bool {
    let detected = quick(bytes);
    report.encoding = Some(detected);
    let message = match detected {
        Detected::Utf8 => "file is UTF-8; claims files are Shift_JIS",
        Detected::Iso2022Jp => "file is ISO-2022-JP; claims files are Shift_JIS",
        _ => return true,
    };
    report.issue(Severity::Error, 1, None, message);
    false
}

/// One raw line, decoded.
enum Decoded<'a> {
    /// Nothing to read (an empty line).
    Skip,
    /// Bytes that are not Shift_JIS.
    NotShiftJis,
    /// The text (borrowed from the input when it is ASCII).
    Text(std::borrow::Cow<'a, str>),
}

/// Decodes one line (without its LF) and leaves its field starts in `starts` (see [`Fields`]).
fn decode_line<'a>(raw: &'a [u8], starts: &mut Vec<u32>) -> Decoded<'a> {
    // Field starts in a fixed array (registers, no capacity checks); a line with more fields
    // than it holds is split again into the vector.
    let mut local = [0u32; 64];
    let mut n = 1usize;
    for (i, &b) in raw.iter().enumerate() {
        if b == b',' {
            if n < local.len() {
                local[n] = i as u32 + 1;
            }
            n += 1;
        }
    }
    starts.clear();
    if n < local.len() {
        starts.extend_from_slice(&local[..n]);
    } else {
        field_starts(raw, starts);
        starts.pop();
    }
    let ascii = raw.is_ascii();
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.is_empty() {
        return Decoded::Skip;
    }
    let text: std::borrow::Cow<'_, str> = if ascii {
        match std::str::from_utf8(raw) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => return Decoded::Skip,
        }
    } else {
        let Some(t) = decode_sjis_line(raw) else {
            return Decoded::NotShiftJis;
        };
        starts.clear();
        field_starts(t.as_bytes(), starts);
        starts.pop();
        t
    };
    starts.push(text.len() as u32 + 1);
    Decoded::Text(text)
}

/// The record type of a line: its first field.
fn record_type<'t>(text: &'t str, starts: &[u32]) -> &'t str {
    starts
        .get(1)
        .and_then(|&s| text.get(..s as usize - 1))
        .unwrap_or("")
}

/// A claims file being read, line by line: the facility, the receipt being gathered, and what the
/// `GO` record is checked against.
struct ClaimsFile<'a, 's> {
    report: ReadReport,
    sink: Sink<'s>,
    provider_id: &'a str,
    facility: Option<Facility>,
    facility_code: String,
    variants_warned: std::collections::BTreeSet<String>,
    pharmacy: bool,
    current: Option<Receipt<'a>>,
    receipts_seen: usize,
    go_seen: bool,
}

impl<'a, 's> ClaimsFile<'a, 's> {
    fn new(
        report: ReadReport,
        provider_id: &'a str,
        on_record: &'s mut dyn FnMut(ParsedRecord),
    ) -> Self {
        ClaimsFile {
            report,
            sink: Sink {
                on_record,
                points: 0,
            },
            provider_id,
            facility: None,
            facility_code: String::new(),
            variants_warned: std::collections::BTreeSet::new(),
            pharmacy: false,
            current: None,
            receipts_seen: 0,
            go_seen: false,
        }
    }

    /// Reads line `no` (its bytes without the LF); `starts` is scratch space for its field starts.
    fn line(&mut self, no: usize, raw: &'a [u8], starts: &mut Vec<u32>) {
        if raw.len() > MAX_LINE {
            // No record of the specification comes near this; its fields are never split (a line of
            // millions of commas must not cost memory).
            self.unreadable(no, &format!("a line longer than {MAX_LINE} bytes"));
            return;
        }
        let text = match decode_line(raw, starts) {
            Decoded::Skip => return,
            Decoded::NotShiftJis => {
                self.unreadable(no, "bytes that are not Shift_JIS");
                return;
            }
            Decoded::Text(t) => t,
        };
        let field_total = starts.len() - 1;
        let id = record_type(&text, starts);
        match self.report.line_counts.get_mut(id) {
            Some(n) => *n += 1,
            None => {
                self.report.line_counts.insert(id.to_string(), 1);
            }
        }
        if self.go_seen {
            self.report
                .issue(Severity::Warning, no, None, "line after GO");
        }
        let count_error = self.check_field_count(no, id, field_total);
        match id {
            "IR" | "YK" => self.facility_line(no, id, &text, count_error),
            "RE" => {
                let line = Line {
                    no,
                    text,
                    at: 0,
                    n: field_total,
                };
                self.receipt_line(line, starts, count_error);
            }
            "GO" => self.totals_line(no, &text, count_error),
            // Pharmacy receipts: only the patient and insurance lines are mapped.
            _ if self.pharmacy && !matches!(id, "HO" | "KO" | "SN") => {}
            _ => {
                let line = Line {
                    no,
                    text,
                    at: 0,
                    n: field_total,
                };
                self.detail_line(line, starts, count_error);
            }
        }
    }

    /// A line that cannot be read: it fails the receipt it is in, else is rejected alone (outside a
    /// receipt there is nothing to attach it to, but it must not vanish).
    fn unreadable(&mut self, no: usize, reason: &str) {
        self.report.issue(Severity::Error, no, None, reason);
        match self.current.as_mut() {
            Some(r) => fail(r, no, None, reason),
            None => self.report.rejected.push(Rejected {
                first_line: no,
                last_line: no,
                reason: reason.to_string(),
            }),
        }
    }

    /// Checks the field count of a record of type `id`: returns the error of a truncated record, warns
    /// about extra fields, records of variants not mapped here and unknown records.
    fn check_field_count(&mut self, no: usize, id: &str, field_total: usize) -> Option<String> {
        match field_count(id) {
            Some(n) if field_total < n => Some(format!(
                "{id} has {field_total} fields, expected {n} (truncated)"
            )),
            Some(n) if field_total > n => {
                self.report.issue(
                    Severity::Warning,
                    no,
                    None,
                    format!("{id} has {field_total} fields, expected {n}"),
                );
                None
            }
            None if VARIANT_RECORDS.iter().any(|(r, _)| *r == id) => {
                if self.variants_warned.insert(id.to_string()) {
                    let what = VARIANT_RECORDS
                        .iter()
                        .find(|(r, _)| *r == id)
                        .map(|(_, w)| *w)
                        .unwrap_or("");
                    self.report.issue(
                        Severity::Warning,
                        no,
                        Some(0),
                        format!(
                            "{id} ({what}) records: layout not specified here, counted but not mapped"
                        ),
                    );
                }
                None
            }
            None if !matches!(id, "JD" | "MF") => {
                self.report.issue(
                    Severity::Warning,
                    no,
                    Some(0),
                    format!("unknown record type `{}` ignored", safe(id)),
                );
                None
            }
            _ => None,
        }
    }

    /// The `IR` record (or the pharmacy header `YK`): the facility.
    fn facility_line(&mut self, no: usize, id: &str, text: &str, count_error: Option<String>) {
        if id == "YK" {
            self.pharmacy = true;
            self.report.issue(
                Severity::Warning,
                no,
                None,
                "pharmacy claims (調剤): patients and insurance are read; dispensing lines \
                 (layout not specified here) are not mapped",
            );
        }
        if let Some(e) = count_error {
            self.report.issue(Severity::Error, no, None, e);
            return;
        }
        if self.facility.is_some() {
            self.report
                .issue(Severity::Warning, no, None, "second IR record");
        }
        let fields: Vec<&str> = split_fields(text);
        let f = Facility {
            payer: fields[1].parse().unwrap_or(0),
            prefecture: fields[2].to_string(),
            table: fields[3].to_string(),
            code7: fields[4].to_string(),
            name: fields[6].to_string(),
        };
        if f.code7.len() != 7 || !digits(&f.code7) {
            self.report.issue(
                Severity::Error,
                no,
                Some(4),
                "医療機関コード is not 7 digits",
            );
        } else if insurer_check_digit(&f.code7[..6]).map(|c| c.to_string())
            != Some(f.code7[6..].to_string())
        {
            // [U] the check digit rule of the facility code is presumed to be the insurer one.
            self.report.issue(
                Severity::Warning,
                no,
                Some(4),
                "医療機関コード check digit does not match",
            );
        }
        self.facility_code = f.code10();
        self.facility = Some(f);
    }

    /// Hands the receipt being gathered, if any, to the sink.
    fn finish_receipt(&mut self) {
        if let Some(r) = self.current.take() {
            finish(
                &mut self.report,
                &mut self.sink,
                &self.facility_code,
                r,
                self.provider_id,
            );
        }
    }

    /// An `RE` record: the previous receipt is finished and a new one begins.
    fn receipt_line(&mut self, line: Line<'a>, starts: &[u32], count_error: Option<String>) {
        self.finish_receipt();
        self.receipts_seen += 1;
        let mut r = Receipt {
            lines: Vec::with_capacity(16),
            starts: Vec::with_capacity(16 * 48),
            error: None,
        };
        if let Some(e) = count_error {
            self.report.issue(Severity::Error, line.no, None, e.clone());
            fail(&mut r, line.no, None, &e);
        }
        r.push(line, starts);
        self.current = Some(r);
    }

    /// The `GO` record: the receipt count and the total points are checked.
    fn totals_line(&mut self, no: usize, text: &str, count_error: Option<String>) {
        self.finish_receipt();
        self.go_seen = true;
        if let Some(e) = count_error {
            self.report.issue(Severity::Error, no, None, e);
            return;
        }
        let fields: Vec<&str> = split_fields(text);
        if fields[1].parse::<usize>().ok() != Some(self.receipts_seen) {
            self.report.issue(
                Severity::Warning,
                no,
                Some(1),
                format!(
                    "GO counts {} receipts, the file has {}",
                    safe(fields[1]),
                    self.receipts_seen
                ),
            );
        }
        let points = self.sink.points;
        if self.report.rejected.is_empty() && fields[2].parse::<i64>().ok() != Some(points) {
            self.report.issue(
                Severity::Warning,
                no,
                Some(2),
                "GO 総合計点数 does not match the receipts",
            );
        }
    }

    /// Any other record: a line of the receipt being gathered, or an error outside a receipt.
    fn detail_line(&mut self, line: Line<'a>, starts: &[u32], count_error: Option<String>) {
        let Some(r) = self.current.as_mut() else {
            let id = record_type(&line.text, starts);
            self.report.issue(
                Severity::Error,
                line.no,
                None,
                format!("{} record outside a receipt", safe(id)),
            );
            self.report.rejected.push(Rejected {
                first_line: line.no,
                last_line: line.no,
                reason: "record outside a receipt".into(),
            });
            return;
        };
        if let Some(e) = count_error {
            self.report.issue(Severity::Error, line.no, None, e.clone());
            fail(r, line.no, None, &e);
        }
        r.push(line, starts);
    }

    /// Finishes the last receipt and checks that the file had its `IR` and `GO` records.
    fn end(mut self) -> ReadReport {
        self.finish_receipt();
        if self.facility.is_none() {
            self.report.issue(Severity::Error, 1, None, "no IR record");
        }
        if !self.go_seen {
            self.report
                .issue(Severity::Warning, 0, None, "no GO record");
        }
        self.report
    }
}

/// Shortens a code-like value for a message; never used on names or other identifying fields.
fn safe(s: &str) -> String {
    s.chars()
        .take(12)
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

fn fail(r: &mut Receipt, line: usize, field: Option<usize>, msg: &str) {
    if r.error.is_none() {
        r.error = Some((line, field, msg.to_string()));
    }
}

/// Where read records go, and the running total of their points (checked against GO).
struct Sink<'s> {
    on_record: &'s mut dyn FnMut(ParsedRecord),
    points: i64,
}

/// Finishes a receipt: its record is handed to the sink, or its lines are rejected.
fn finish(
    report: &mut ReadReport,
    sink: &mut Sink<'_>,
    facility_code: &str,
    mut r: Receipt,
    provider_id: &str,
) {
    let first = r.lines.first().map(|l| l.no).unwrap_or(0);
    let last = r.lines.last().map(|l| l.no).unwrap_or(first);
    if r.error.is_none() {
        match build(report, sink, facility_code, &r, provider_id) {
            Ok(()) => return,
            Err((line, field, msg)) => {
                report.issue(Severity::Error, line, field, msg.clone());
                fail(&mut r, line, field, &msg);
            }
        }
    }
    let reason = r.error.map(|(_, _, m)| m).unwrap_or_default();
    report.rejected.push(Rejected {
        first_line: first,
        last_line: last,
        reason,
    });
}

type BuildError = (usize, Option<usize>, String);

fn opt(s: &str) -> Option<String> {
    let t = s.trim_matches(|c| c == ' ' || c == '\u{3000}');
    (!t.is_empty()).then(|| t.to_string())
}

/// Calls `push(date, count)` for every day column with a positive count.
///
/// Kept out of line (measured): inlined into each of the three line readers that call it, it makes
/// the receipt reader larger and slower.
#[inline(never)]
fn day_columns(
    line: &Line,
    fields: &Fields<'_>,
    first: usize,
    month: NaiveDate,
    mut push: impl FnMut(NaiveDate, i32),
) -> Result<(), BuildError> {
    for d in 0..31 {
        // Most day columns are empty: decided from the field starts alone.
        match (
            fields.starts.get(first + d),
            fields.starts.get(first + d + 1),
        ) {
            (Some(a), Some(b)) if b - a > 1 => {}
            _ => continue,
        }
        let f = fields.at(first + d);
        let n: i32 = f.parse().map_err(|_| {
            (
                line.no,
                Some(first + d),
                "day count is not a number".to_string(),
            )
        })?;
        if n <= 0 {
            continue;
        }
        let date = month.with_day(d as u32 + 1).ok_or((
            line.no,
            Some(first + d),
            "day column beyond the end of the month".to_string(),
        ))?;
        push(date, n);
    }
    Ok(())
}

/// Reads a receipt without errors so far and hands its record to the sink.
fn build(
    report: &mut ReadReport,
    sink: &mut Sink<'_>,
    facility_code: &str,
    r: &Receipt,
    provider_id: &str,
) -> Result<(), BuildError> {
    let (Some(re), Some(last)) = (r.lines.first(), r.lines.last()) else {
        return Err((0, None, "empty receipt".into()));
    };
    let f = fields(&r.starts, re);
    let head = receipt_head(re, &f)?;
    let month = head.month;
    let mut id = claims_identity(&f, &head, provider_id);
    let mut ev = EventSet::default();
    let mut service_days: Vec<NaiveDate> = Vec::new();
    for line in &r.lines[1..] {
        let f = fields(&r.starts, line);
        match f.at(0) {
            "HO" => read_ho(line, &f, &mut id, report)?,
            "SN" => {
                id.insured_branch = opt(&to_half_width_ascii(f.at(6)));
            }
            "SY" => read_sy(line, &f, &mut ev.diagnoses)?,
            "SI" => read_si(line, &f, month, &mut ev, &mut service_days)?,
            "IY" => read_iy(line, &f, month, &mut ev, &mut service_days)?,
            "TO" => {
                day_columns(line, &f, TO_DAY1, month, |date, _| service_days.push(date))?;
            }
            _ => {}
        }
    }
    service_days.sort();
    service_days.dedup();
    if head.inpatient {
        let start = head
            .admitted
            .map(|a| a.max(month))
            .or(service_days.first().copied())
            .unwrap_or(month);
        let end = service_days.last().copied().unwrap_or(start).max(start);
        ev.encounters
            .push(encounter(facility_code, Setting::Inpatient, start, end));
    } else {
        for d in &service_days {
            ev.encounters
                .push(encounter(facility_code, Setting::Outpatient, *d, *d));
        }
    }
    id.recorded_on = ev.encounters.first().map(|e| e.start_date).unwrap_or(month);
    sink.points += ev
        .procedures
        .iter()
        .map(|p| i64::from(p.points.unwrap_or(0)) * i64::from(p.count))
        .sum::<i64>();
    (sink.on_record)(ParsedRecord {
        record: SourceRecord {
            identity: id,
            events: ev,
        },
        first_line: re.no,
        last_line: last.no,
    });
    Ok(())
}

/// The checked values of the `RE` line of a receipt: the month, the patient's birth date and sex, and
/// whether (since when) the patient is in hospital.
struct ReceiptHead {
    month: NaiveDate,
    birth: NaiveDate,
    sex: Sex,
    inpatient: bool,
    admitted: Option<NaiveDate>,
}

/// Checks the `RE` line `re` (fields `f`).
fn receipt_head(re: &Line, f: &Fields<'_>) -> Result<ReceiptHead, BuildError> {
    let month = parse_month(f.at(3)).ok_or((
        re.no,
        Some(3),
        "診療年月 is not a valid month".to_string(),
    ))?;
    let birth =
        parse_date(f.at(6)).ok_or((re.no, Some(6), "生年月日 is not a valid date".to_string()))?;
    let sex = match f.at(5) {
        "1" => Sex::Male,
        "2" => Sex::Female,
        _ => return Err((re.no, Some(5), "男女区分 is neither 1 nor 2".into())),
    };
    let kind_code = f.at(2).as_bytes();
    if kind_code.len() != 4 || !digits(f.at(2)) {
        return Err((re.no, Some(2), "レセプト種別 is not 4 digits".into()));
    }
    let inpatient = (kind_code[3] - b'0') % 2 == 1;
    let admitted = if f.at(8).is_empty() {
        None
    } else {
        Some(parse_date(f.at(8)).ok_or((
            re.no,
            Some(8),
            "入院年月日 is not a valid date".to_string(),
        ))?)
    };
    Ok(ReceiptHead {
        month,
        birth,
        sex,
        inpatient,
        admitted,
    })
}

/// The patient of a receipt as the `RE` line (fields `f`) gives it; insurance comes from `HO`/`SN`.
fn claims_identity(f: &Fields<'_>, head: &ReceiptHead, provider_id: &str) -> IdentityRecord {
    let (surname_kanji, given_kanji) = split_name(f.at(4));
    let (surname_kana, given_kana) = split_name(f.at(36));
    IdentityRecord {
        record_id: String::new(),
        provider_id: provider_id.to_string(),
        source_kind: SourceKind::Claims,
        local_patient_id: opt(f.at(13)),
        surname_kanji,
        given_kanji,
        surname_kana,
        given_kana,
        birth_date: Some(head.birth),
        sex: Some(head.sex),
        prefecture: None,
        municipality_code: None,
        municipality: None,
        town: None,
        chome: None,
        banchi: None,
        postal_code: None,
        insurance_kind: None,
        insurer_number: None,
        insured_symbol: None,
        insured_number: None,
        insured_branch: None,
        recorded_on: head.month,
    }
}

/// An `HO` line: the insurer and the insured's 記号 and 番号.
fn read_ho(
    line: &Line,
    f: &Fields<'_>,
    id: &mut IdentityRecord,
    report: &mut ReadReport,
) -> Result<(), BuildError> {
    let insurer = f.at(1).trim().to_string();
    if !(insurer.len() == 6 || insurer.len() == 8) || !digits(&insurer) {
        return Err((line.no, Some(1), "保険者番号 is not 6 or 8 digits".into()));
    }
    if !insurer_number_is_valid(&insurer) {
        report.issue(
            Severity::Warning,
            line.no,
            Some(1),
            "保険者番号 check digit does not match",
        );
    }
    id.insurance_kind = insurance_kind(&insurer);
    id.insurer_number = Some(insurer);
    id.insured_symbol = opt(&to_half_width_ascii(f.at(2)));
    id.insured_number = opt(&to_half_width_ascii(f.at(3)));
    Ok(())
}

/// An `SY` line: one diagnosis, with the ICD-10 of its 傷病名コード when the master table has it.
fn read_sy(line: &Line, f: &Fields<'_>, out: &mut Vec<Diagnosis>) -> Result<(), BuildError> {
    let code = f.at(1).to_string();
    if code.len() != 7 || !digits(&code) {
        return Err((line.no, Some(1), "傷病名コード is not 7 digits".into()));
    }
    let date = parse_date(f.at(2)).ok_or((
        line.no,
        Some(2),
        "診療開始日 is not a valid date".to_string(),
    ))?;
    let outcome = match f.at(3) {
        "" | "1" => Some(DiagnosisOutcome::Continuing),
        "2" => Some(DiagnosisOutcome::Cured),
        "3" => Some(DiagnosisOutcome::Died),
        "4" => Some(DiagnosisOutcome::Stopped),
        _ => return Err((line.no, Some(3), "転帰区分 is not 1–4".into())),
    };
    let suspected = f
        .at(4)
        .as_bytes()
        .chunks(4)
        .any(|c| c == SUSPECTED.as_bytes());
    out.push(Diagnosis {
        event_id: String::new(),
        record_id: String::new(),
        encounter_id: None,
        date,
        code_system: CodeSystem::ReceiptDisease,
        name: (code == UNCODED)
            .then(|| f.at(5).to_string())
            .filter(|n| !n.is_empty()),
        icd10: icd10_of(&code).map(str::to_string),
        code,
        suspected,
        outcome,
        outcome_date: None,
    });
    Ok(())
}

/// Field 3 as a master code: 9 digits starting with `first` (1 for procedures, 6 for drugs).
fn master_code(line: &Line, f: &Fields<'_>, first: char, what: &str) -> Result<String, BuildError> {
    let code = f.at(3);
    if code.len() != 9 || !code.starts_with(first) || !digits(code) {
        return Err((
            line.no,
            Some(3),
            format!("{what} is not 9 digits starting with {first}"),
        ));
    }
    Ok(code.to_string())
}

/// An `SI` line: one procedure per day column with a count.
fn read_si(
    line: &Line,
    f: &Fields<'_>,
    month: NaiveDate,
    ev: &mut EventSet,
    service_days: &mut Vec<NaiveDate>,
) -> Result<(), BuildError> {
    let code = master_code(line, f, '1', "診療行為コード")?;
    let points = if f.at(5).is_empty() {
        None
    } else {
        Some(
            f.at(5)
                .parse::<i32>()
                .map_err(|_| (line.no, Some(5), "点数 is not a number".to_string()))?,
        )
    };
    day_columns(line, f, DAY1, month, |date, n| {
        service_days.push(date);
        ev.procedures.push(Procedure {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: None,
            date,
            code_system: CodeSystem::ReceiptProcedure,
            code: code.clone(),
            name: None,
            points,
            count: n,
        });
    })
}

/// An `IY` line: one prescription per day column with a count.
fn read_iy(
    line: &Line,
    f: &Fields<'_>,
    month: NaiveDate,
    ev: &mut EventSet,
    service_days: &mut Vec<NaiveDate>,
) -> Result<(), BuildError> {
    let code = master_code(line, f, '6', "医薬品コード")?;
    let qty = if f.at(4).is_empty() {
        None
    } else {
        Some(
            f.at(4)
                .parse::<f64>()
                .map_err(|_| (line.no, Some(4), "使用量 is not a number".to_string()))?,
        )
    };
    day_columns(line, f, DAY1, month, |date, n| {
        service_days.push(date);
        ev.prescriptions.push(Prescription {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: None,
            date,
            code_system: CodeSystem::ReceiptDrug,
            code: code.clone(),
            name: None,
            daily_quantity: qty,
            unit: None,
            days: Some(n),
        });
    })
}

fn encounter(facility_code: &str, setting: Setting, start: NaiveDate, end: NaiveDate) -> Encounter {
    Encounter {
        event_id: String::new(),
        record_id: String::new(),
        facility_code: facility_code.to_string(),
        setting,
        department: None,
        start_date: start,
        end_date: end,
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical form

/// The canonical record as a claims file can carry it: what `read(write(r))` gives back.
///
/// Names lose characters outside JIS X 0208 (substituted); addresses, names of codes and units are not
/// in claims; a diagnosis's ICD-10 is the 傷病名マスター's for its 傷病名コード
/// ([`tokumei_japan::byomei::icd10_of`]), none for a code not in that table; procedures and prescriptions are per day (same code and day summed); outpatient
/// encounters are one per service day; `recorded_on` is the first service day; ids are empty.
pub fn canonicalize(r: &SourceRecord) -> SourceRecord {
    let mut id = canonical_identity(&r.identity);
    let ev = &r.events;
    let facility = ev
        .encounters
        .first()
        .map(|e| e.facility_code.clone())
        .unwrap_or_default();
    let mut out = EventSet::default();
    let mut days: Vec<NaiveDate> = Vec::new();
    canonical_procedures(&ev.procedures, &mut out.procedures, &mut days);
    canonical_prescriptions(&ev.prescriptions, &mut out.prescriptions, &mut days);
    days.sort();
    days.dedup();
    let inpatient = ev
        .encounters
        .iter()
        .any(|e| e.setting == Setting::Inpatient);
    if inpatient {
        let start = ev
            .encounters
            .iter()
            .filter(|e| e.setting == Setting::Inpatient)
            .map(|e| e.start_date)
            .min();
        if let Some(start) = start.or(days.first().copied()) {
            let end = days.last().copied().unwrap_or(start).max(start);
            out.encounters
                .push(encounter(&facility, Setting::Inpatient, start, end));
        }
    } else {
        for d in &days {
            out.encounters
                .push(encounter(&facility, Setting::Outpatient, *d, *d));
        }
    }
    for d in &ev.diagnoses {
        out.diagnoses.push(canonical_diagnosis(d));
    }
    if let Some(first) = out.encounters.first() {
        id.recorded_on = first.start_date;
    }
    SourceRecord {
        identity: id,
        events: out,
    }
}

/// The identity as a claims file carries it (see [`canonicalize`]).
fn canonical_identity(identity: &IdentityRecord) -> IdentityRecord {
    let mut id = identity.clone();
    id.record_id = String::new();
    for s in [
        &mut id.surname_kanji,
        &mut id.given_kanji,
        &mut id.surname_kana,
        &mut id.given_kana,
    ] {
        if let Some(v) = s.as_mut() {
            *v = substitute(v).0;
        }
    }
    if id.surname_kanji.is_none() {
        id.given_kanji = None;
    }
    if id.surname_kana.is_none() {
        id.given_kana = None;
    }
    id.prefecture = None;
    id.municipality_code = None;
    id.municipality = None;
    id.town = None;
    id.chome = None;
    id.banchi = None;
    id.postal_code = None;
    id.insurance_kind = id.insurer_number.as_deref().and_then(insurance_kind);
    id
}

/// Procedures per day (same code, points and day summed), in written order (by code, then by day),
/// into `out`; their days are added to `days`.
fn canonical_procedures(
    procedures: &[Procedure],
    out: &mut Vec<Procedure>,
    days: &mut Vec<NaiveDate>,
) {
    let mut procs: BTreeMap<(NaiveDate, String, Option<i32>), i32> = BTreeMap::new();
    for p in procedures {
        *procs.entry((p.date, p.code.clone(), p.points)).or_default() += p.count;
    }
    // Written order is by code, then by day.
    let mut procs: Vec<_> = procs.into_iter().collect();
    procs.sort_by(|a, b| (&a.0 .1, a.0 .2, a.0 .0).cmp(&(&b.0 .1, b.0 .2, b.0 .0)));
    for ((date, code, points), count) in procs {
        days.push(date);
        out.push(Procedure {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: None,
            date,
            code_system: CodeSystem::ReceiptProcedure,
            code,
            name: None,
            points,
            count,
        });
    }
}

/// Prescriptions per day (same code, daily quantity and day summed), in written order, into `out`;
/// their days are added to `days`.
fn canonical_prescriptions(
    prescriptions: &[Prescription],
    out: &mut Vec<Prescription>,
    days: &mut Vec<NaiveDate>,
) {
    let mut drugs: BTreeMap<(String, u64, NaiveDate), i32> = BTreeMap::new();
    let mut qty_of: BTreeMap<u64, Option<f64>> = BTreeMap::new();
    for p in prescriptions {
        let q = p.daily_quantity.map(f64::to_bits).unwrap_or(u64::MAX);
        qty_of.insert(q, p.daily_quantity);
        *drugs.entry((p.code.clone(), q, p.date)).or_default() += p.days.unwrap_or(1);
    }
    for ((code, q, date), n) in drugs {
        days.push(date);
        out.push(Prescription {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: None,
            date,
            code_system: CodeSystem::ReceiptDrug,
            code,
            name: None,
            daily_quantity: qty_of.get(&q).copied().flatten(),
            unit: None,
            days: Some(n),
        });
    }
}

/// A diagnosis as a claims file carries it: the name only of an uncoded disease (substituted), the
/// ICD-10 of its 傷病名コード in the master table, the outcome Continuing when none.
fn canonical_diagnosis(d: &Diagnosis) -> Diagnosis {
    Diagnosis {
        event_id: String::new(),
        record_id: String::new(),
        encounter_id: None,
        date: d.date,
        code_system: CodeSystem::ReceiptDisease,
        code: d.code.clone(),
        icd10: icd10_of(&d.code).map(str::to_string),
        name: if d.code == UNCODED {
            d.name
                .as_ref()
                .map(|n| substitute(n).0)
                .filter(|n| !n.is_empty())
        } else {
            None
        },
        suspected: d.suspected,
        outcome: Some(d.outcome.unwrap_or(DiagnosisOutcome::Continuing)),
        outcome_date: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Writer

fn sjis(s: &str) -> Vec<u8> {
    encoding_rs::SHIFT_JIS.encode(s).0.into_owned()
}

/// Encodes a line as Shift_JIS (characters outside it must have been substituted).
pub fn to_sjis(s: &str) -> Vec<u8> {
    sjis(s)
}

fn ymd(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// 診療識別 of a procedure code (by its leading digits).
fn shinryo_shikibetsu(code: &str) -> &'static str {
    match code.get(0..3) {
        Some("111") => "11",
        Some("112") => "12",
        Some("113") => "13",
        Some("114") => "14",
        Some("120") => "80",
        Some("190") => "90",
        _ => match code.get(0..2) {
            Some("13") => "33",
            Some("14") => "40",
            Some("15") => "50",
            Some("16") => "60",
            Some("17") => "70",
            Some("19") => "90",
            _ => "80",
        },
    }
}

/// Counts by day of the month (1–31).
type DayCounts = BTreeMap<u32, i32>;

fn day_fields(counts: &DayCounts) -> Vec<String> {
    (1..=31)
        .map(|d| counts.get(&d).map(|n| n.to_string()).unwrap_or_default())
        .collect()
}

/// A date as `style` spells it (era dates fall back to Gregorian before 明治).
fn date_in(d: NaiveDate, style: DateStyle) -> String {
    match style {
        DateStyle::Era => crate::dates::era_ymd(d).unwrap_or_else(|| ymd(d)),
        DateStyle::Gregorian => ymd(d),
    }
}

/// A month as `style` spells it.
fn month_in(d: NaiveDate, style: DateStyle) -> String {
    match style {
        DateStyle::Era => crate::dates::era_ym(d).unwrap_or_else(|| d.format("%Y%m").to_string()),
        DateStyle::Gregorian => d.format("%Y%m").to_string(),
    }
}

/// The `IR` line of a file: `month` is any day of the 診療年月 (the 請求年月 written is the next month).
pub fn header_line(facility: &Facility, month: NaiveDate) -> String {
    header_line_with(facility, month, DateStyle::Gregorian)
}

/// [`header_line`] with dates in `style`.
pub fn header_line_with(facility: &Facility, month: NaiveDate, style: DateStyle) -> String {
    let month = month.with_day(1).unwrap_or(month);
    let billing = month
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(month);
    format!(
        "IR,{},{},{},{},,{},{},00,",
        facility.payer,
        facility.prefecture,
        facility.table,
        facility.code7,
        substitute(&facility.name).0,
        month_in(billing, style)
    )
}

/// The `GO` line closing a file.
pub fn trailer_line(receipts: usize, points: i64) -> String {
    format!("GO,{receipts},{points},99")
}

/// One receipt, ready to be numbered: the `RE` line without its leading `RE,<number>`, the other
/// lines, and the receipt's points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptLines {
    /// The RE line after `RE,<number>` (it starts with a comma).
    pub re_tail: String,
    /// The HO, SN, SY, SI and IY lines.
    pub rest: Vec<String>,
    /// Points (HO 合計点数).
    pub points: i64,
}

impl ReceiptLines {
    /// The receipt's lines with its number in the file.
    pub fn numbered(&self, seq: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(self.rest.len() + 1);
        out.push(format!("RE,{seq}{}", self.re_tail));
        out.extend(self.rest.iter().cloned());
        out
    }

    /// The receipt as Shift_JIS bytes with CR LF line ends.
    pub fn to_bytes(&self, seq: usize) -> Vec<u8> {
        self.encode().numbered(seq)
    }

    /// Encodes the receipt to Shift_JIS once, leaving only its number to be written.
    pub fn encode(&self) -> EncodedReceipt {
        let mut rest = Vec::new();
        for l in &self.rest {
            rest.extend(sjis(l));
            rest.extend_from_slice(b"\r\n");
        }
        let mut re_tail = sjis(&self.re_tail);
        re_tail.extend_from_slice(b"\r\n");
        EncodedReceipt {
            re_tail,
            rest,
            lines: 1 + self.rest.len(),
            points: self.points,
        }
    }
}

/// A receipt already encoded as Shift_JIS, waiting for its number in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedReceipt {
    /// The RE line after `RE,<number>`, with its CR LF.
    pub re_tail: Vec<u8>,
    /// The other lines, each with its CR LF.
    pub rest: Vec<u8>,
    /// Number of lines.
    pub lines: usize,
    /// Points.
    pub points: i64,
}

impl EncodedReceipt {
    /// Appends the numbered receipt to `out`.
    pub fn write_numbered(&self, seq: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(b"RE,");
        out.extend_from_slice(seq.to_string().as_bytes());
        out.extend_from_slice(&self.re_tail);
        out.extend_from_slice(&self.rest);
    }

    /// The numbered receipt.
    pub fn numbered(&self, seq: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.re_tail.len() + self.rest.len() + 12);
        self.write_numbered(seq, &mut out);
        out
    }
}

/// Builds the lines of one receipt of `month` from a canonical record.
pub fn receipt_lines(month: NaiveDate, rec: &SourceRecord) -> Result<ReceiptLines, FormatError> {
    receipt_lines_with(month, rec, DateStyle::Gregorian)
}

/// [`receipt_lines`] with dates in `style` (era-coded as in files before the 2020 revision).
pub fn receipt_lines_with(
    month: NaiveDate,
    rec: &SourceRecord,
    style: DateStyle,
) -> Result<ReceiptLines, FormatError> {
    let month = month.with_day(1).unwrap_or(month);
    let mut lines: Vec<String> = Vec::new();
    let c = canonicalize(rec);
    let id = &c.identity;
    let ev = &c.events;
    let re_tail = re_tail(month, id, ev, style)?;
    let points: i64 = ev
        .procedures
        .iter()
        .map(|p| i64::from(p.points.unwrap_or(0)) * i64::from(p.count))
        .sum();
    insurance_lines(id, ev, points, &mut lines);
    diagnosis_lines(ev, style, &mut lines);
    procedure_lines(ev, &mut lines);
    drug_lines(ev, &mut lines);
    Ok(ReceiptLines {
        re_tail,
        rest: lines,
        points,
    })
}

/// The `RE` line of a canonical record after `RE,<number>`.
fn re_tail(
    month: NaiveDate,
    id: &IdentityRecord,
    ev: &EventSet,
    style: DateStyle,
) -> Result<String, FormatError> {
    let birth = id.birth_date.ok_or(FormatError::Unrepresentable {
        what: "生年月日",
        reason: "missing".into(),
    })?;
    let sex = id.sex.ok_or(FormatError::Unrepresentable {
        what: "男女区分",
        reason: "missing".into(),
    })?;
    let inpatient = ev
        .encounters
        .iter()
        .any(|e| e.setting == Setting::Inpatient);
    let mut re = vec![String::new(); 38];
    re[0] = "RE".into();
    re[2] = receipt_kind(month, birth, id, inpatient);
    re[3] = month_in(month, style);
    re[4] = join_name(&id.surname_kanji, &id.given_kanji);
    re[5] = sex.jp_code().to_string();
    re[6] = date_in(birth, style);
    if inpatient {
        if let Some(e) = ev.encounters.first() {
            re[8] = date_in(e.start_date, style);
        }
    }
    re[13] = id.local_patient_id.clone().unwrap_or_default();
    // [U] samples write the kana name without a space; a full-width space keeps 姓 and 名 apart.
    re[36] = join_name(&id.surname_kana, &id.given_kana);
    for (i, v) in re.iter().enumerate() {
        if v.contains(',') || v.contains('\n') || v.contains('\r') {
            return Err(FormatError::Unrepresentable {
                what: "RE field",
                reason: format!("field {i} contains a separator"),
            });
        }
    }
    let re_line = re.join(",");
    Ok(re_line["RE,".len()..].to_string())
}

/// レセプト種別 (RE field 2) of a patient born on `birth` in `month`.
fn receipt_kind(
    month: NaiveDate,
    birth: NaiveDate,
    id: &IdentityRecord,
    inpatient: bool,
) -> String {
    let age = month.year() - birth.year();
    let principal = matches!(
        id.insurance_kind,
        Some(InsuranceKind::Kokuho) | Some(InsuranceKind::Koki)
    ) || id.insured_branch.as_deref() == Some("00");
    let d2 = if id.insurance_kind == Some(InsuranceKind::Koki) {
        '3'
    } else {
        '1'
    };
    // [U] the 4th digit: 本人 1/2, 未就学 3/4, 家族 5/6, 高齢 7/8; odd for inpatient.
    let d4 = match () {
        _ if age >= 70 => 7,
        _ if age < 6 => 3,
        _ if principal => 1,
        _ => 5,
    } + u8::from(!inpatient);
    format!("1{d2}1{d4}")
}

/// The `HO` and `SN` lines, when the record has an insurer.
fn insurance_lines(id: &IdentityRecord, ev: &EventSet, points: i64, lines: &mut Vec<String>) {
    let real_days = ev
        .procedures
        .iter()
        .map(|p| p.date)
        .chain(ev.prescriptions.iter().map(|p| p.date))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if let Some(ins) = &id.insurer_number {
        let ins = if ins.len() == 6 {
            format!("  {ins}")
        } else {
            ins.clone()
        };
        lines.push(format!(
            "HO,{ins},{},{},{real_days},{points},,,,,,,,,",
            to_full_width(id.insured_symbol.as_deref().unwrap_or("")),
            to_full_width(id.insured_number.as_deref().unwrap_or(""))
        ));
        lines.push(format!(
            "SN,1,01,,,,{},,",
            id.insured_branch.as_deref().unwrap_or("")
        ));
    }
}

/// One `SY` line per diagnosis, the first marked 主傷病.
fn diagnosis_lines(ev: &EventSet, style: DateStyle, lines: &mut Vec<String>) {
    for (i, d) in ev.diagnoses.iter().enumerate() {
        let outcome = match d.outcome {
            Some(DiagnosisOutcome::Cured) => "2",
            Some(DiagnosisOutcome::Died) => "3",
            Some(DiagnosisOutcome::Stopped) => "4",
            _ => "1",
        };
        let name = if d.code == UNCODED {
            d.name.clone().unwrap_or_default()
        } else {
            String::new()
        };
        lines.push(format!(
            "SY,{},{},{outcome},{},{name},{},",
            d.code,
            date_in(d.date, style),
            if d.suspected { SUSPECTED } else { "" },
            if i == 0 { "01" } else { "" }
        ));
    }
}

/// Procedures: one `SI` line per (code, points), day columns with counts.
fn procedure_lines(ev: &EventSet, lines: &mut Vec<String>) {
    let mut si: BTreeMap<(String, Option<i32>), BTreeMap<u32, i32>> = BTreeMap::new();
    for p in &ev.procedures {
        *si.entry((p.code.clone(), p.points))
            .or_default()
            .entry(p.date.day())
            .or_default() += p.count;
    }
    let mut last_kind = "";
    for ((code, points), days) in &si {
        let kind = shinryo_shikibetsu(code);
        let shown = if kind == last_kind { "" } else { kind };
        last_kind = kind;
        let total: i32 = days.values().sum();
        lines.push(format!(
            "SI,{shown},1,{code},,{},{total},,,,,,,{}",
            points.map(|p| p.to_string()).unwrap_or_default(),
            day_fields(days).join(",")
        ));
    }
}

/// Prescriptions: one `IY` line per (code, daily quantity), day columns with days supplied.
fn drug_lines(ev: &EventSet, lines: &mut Vec<String>) {
    let mut iy: BTreeMap<(String, u64), (Option<f64>, DayCounts)> = BTreeMap::new();
    for p in &ev.prescriptions {
        let q = p.daily_quantity.map(f64::to_bits).unwrap_or(u64::MAX);
        let e = iy
            .entry((p.code.clone(), q))
            .or_insert((p.daily_quantity, BTreeMap::new()));
        *e.1.entry(p.date.day()).or_default() += p.days.unwrap_or(1);
    }
    let mut first_iy = true;
    for ((code, _), (qty, days)) in &iy {
        let total: i32 = days.values().sum();
        lines.push(format!(
            "IY,{},1,{code},{},,{total},,,,,,,{}",
            if first_iy { "21" } else { "" },
            qty.map(fmt_qty).unwrap_or_default(),
            day_fields(days).join(",")
        ));
        first_iy = false;
    }
}

/// Writes one facility's claims of one month (`month` is any day of the 診療年月) as `RECEIPTC.UKE`.
///
/// Records are written in order; each becomes one receipt. Names are substituted where a character is
/// outside JIS X 0208 (see [`substitute`]).
pub fn write(
    facility: &Facility,
    month: NaiveDate,
    records: &[SourceRecord],
) -> Result<Vec<u8>, FormatError> {
    write_with(facility, month, records, DateStyle::Gregorian)
}

/// [`write`] with dates in `style`.
pub fn write_with(
    facility: &Facility,
    month: NaiveDate,
    records: &[SourceRecord],
    style: DateStyle,
) -> Result<Vec<u8>, FormatError> {
    let mut out = sjis(&header_line_with(facility, month, style));
    out.extend_from_slice(b"\r\n");
    let mut total_points: i64 = 0;
    for (seq, rec) in records.iter().enumerate() {
        let r = receipt_lines_with(month, rec, style)?;
        total_points += r.points;
        out.extend(r.to_bytes(seq + 1));
    }
    out.extend(sjis(&trailer_line(records.len(), total_points)));
    out.extend_from_slice(b"\r\n\x1A");
    Ok(out)
}

fn fmt_qty(q: f64) -> String {
    if q.fract() == 0.0 && q.abs() < 1e15 {
        format!("{}", q as i64)
    } else {
        format!("{q}")
    }
}
