//! 特定健診 (specific health checkup) result files: HL7 CDA R2 documents in the MHLW "hc08" layout,
//! one `ClinicalDocument` per person and checkup. Reader and writer.
//!
//! The parts read (namespace `urn:hl7-org:v3`; element names are matched without prefix):
//!
//! ```text
//! ClinicalDocument
//!   code @code = 報告区分 (10 特定健診)
//!   recordTarget/patientRole
//!     id @root=1.2.392.200119.6.101 → 保険者番号 (8 digits; 市町村国保 zero-padded from 6)
//!     id @root=1.2.392.200119.6.204 / .205 / .211 → 被保険者証 記号 / 番号 / 枝番
//!     addr: postalCode, then the address as text
//!     patient: name (kana only), administrativeGenderCode (1 男 / 2 女), birthTime (YYYYMMDD)
//!   author/assignedAuthor/representedOrganization/id @root=1.2.392.200119.6.102 → 健診機関番号 (10)
//!   documentationOf/serviceEvent: code (010 特定健診), effectiveTime = 受診日
//!   component/structuredBody/component/section (01010)
//!     entry/observation: code (17-character item code, JLAC10 layout), value PQ | CD | CO | ST;
//!     observations nested in entryRelationship are read too
//! ```
//!
//! One file is one record: identity (kana name, birth date, sex, postal code, address, insurance
//! identifiers), one checkup [`Encounter`] and one [`LabResult`] per observation. A file that is not
//! well-formed, lacks the patient, a valid birth date or sex, or the 受診日 is rejected; a bad
//! observation is reported and left out while the rest of the document is read. Positions are the
//! 1-based line of the element at fault (`field` is `None`).
//!
//! Files are UTF-8; the XML declaration is honoured, so a file declaring Shift_JIS is decoded as such.
//! Bytes that do not match the declared encoding are an error naming the encoding they look like,
//! never mojibake. Only the five predefined entities and character references are resolved: a DOCTYPE
//! is ignored and no entity is ever expanded.
//!
//! Uncertain points (no official specification at hand) are marked `[U]` (or `[L]`, likely) below;
//! the reader is lenient there and counts a warning.

use std::borrow::Cow;

use chrono::{Datelike, NaiveDate};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;
use tokumei_model::checkdigit::insurer_number_is_valid;
use tokumei_model::events::{Encounter, EventSet, LabResult, SourceRecord};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::{CodeSystem, Setting, Sex, SourceKind};

use crate::death::{format_address, parse_address};
use crate::encoding::{detect, Detected};
use crate::text::{join_name, split_name, to_half_width_ascii};
use crate::uke::insurance_kind;
use crate::{FormatError, ParsedRecord, ReadReport, Rejected, Severity};

/// OID of the insurer number (保険者番号) in `patientRole/id@root`.
pub const OID_INSURER: &str = "1.2.392.200119.6.101";
/// OID of the insurance card symbol (被保険者証等記号).
pub const OID_SYMBOL: &str = "1.2.392.200119.6.204";
/// OID of the insurance card number (被保険者証等番号).
pub const OID_NUMBER: &str = "1.2.392.200119.6.205";
/// OID of the branch number (枝番).
pub const OID_BRANCH: &str = "1.2.392.200119.6.211";
/// OID of the checkup facility number (健診機関番号, 10 digits).
pub const OID_FACILITY: &str = "1.2.392.200119.6.102";
/// Code system of the document code (報告区分).
pub const OID_REPORT_KIND: &str = "1.2.392.200119.6.1001";
/// Code system of the service event code (健診プログラムサービスコード).
pub const OID_PROGRAM: &str = "1.2.392.200119.6.1002";
/// Code system of the 17-character item codes (JLAC10 layout).
pub const OID_ITEM: &str = "1.2.392.200119.6.1005";
/// Code system of the section code.
pub const OID_SECTION: &str = "1.2.392.200119.6.1010";
/// Code system of the sex code (1 男, 2 女).
pub const OID_SEX: &str = "1.2.392.200119.6.1104";
/// Encounter id every result refers to: the one checkup encounter of the record (index 0).
pub const ENCOUNTER_ID: &str = "0";
/// Deepest element nesting read (a guard, not a format rule: hc08 documents nest about 12 deep).
pub const MAX_DEPTH: usize = 64;

const HL7_NS: &str = "urn:hl7-org:v3";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
const CD: &str = "ClinicalDocument";
/// XML white space (S production of XML 1.0).
const XML_WS: [char; 4] = [' ', '\t', '\n', '\r'];
/// Elements whose direct text content is used.
const TEXT_ELEMENTS: [&str; 6] = ["name", "family", "given", "postalCode", "addr", "value"];
/// Element kinds counted in [`ReadReport::line_counts`]; any other element counts as `(other)`.
const COUNTED: [&str; 22] = [
    "ClinicalDocument",
    "recordTarget",
    "patientRole",
    "id",
    "addr",
    "patient",
    "name",
    "administrativeGenderCode",
    "birthTime",
    "author",
    "representedOrganization",
    "custodian",
    "participant",
    "documentationOf",
    "serviceEvent",
    "effectiveTime",
    "section",
    "entry",
    "observation",
    "entryRelationship",
    "code",
    "value",
];

const PATIENT_ROLE: [&str; 3] = [CD, "recordTarget", "patientRole"];
const PATIENT: [&str; 4] = [CD, "recordTarget", "patientRole", "patient"];
const NAME: [&str; 5] = [CD, "recordTarget", "patientRole", "patient", "name"];
const ADDR: [&str; 4] = [CD, "recordTarget", "patientRole", "addr"];
const ORGANIZATION: [&str; 4] = [CD, "author", "assignedAuthor", "representedOrganization"];
const SERVICE_EVENT: [&str; 3] = [CD, "documentationOf", "serviceEvent"];
const SERVICE_TIME: [&str; 4] = [CD, "documentationOf", "serviceEvent", "effectiveTime"];

// ---------------------------------------------------------------------------------------------
// Shared value rules (the reader applies them to what it reads, `canonicalize` to what it writes)

/// Trims XML white space; `None` when nothing is left.
fn clean(s: &str) -> Option<String> {
    let t = s.trim_matches(XML_WS);
    (!t.is_empty()).then(|| t.to_string())
}

/// The kana name as read from the text of `patient/name`: trimmed, split at the first full-width or
/// half-width space.
fn kana_from_text(text: &str) -> (Option<String>, Option<String>) {
    split_name(text.trim_matches(|c| XML_WS.contains(&c) || c == '\u{3000}'))
}

/// The insurer number as stored: half-width, trimmed, and a zero-padded 6-digit 市町村国保 number
/// (`00xxxxxx`: 法別 00 does not exist) back to its 6 digits.
fn insurer_from_text(s: &str) -> Option<String> {
    let h = to_half_width_ascii(s);
    let t = h.trim();
    if t.is_empty() {
        return None;
    }
    if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) && t.starts_with("00") {
        return Some(t[2..].to_string());
    }
    Some(t.to_string())
}

/// A postal code as 7 digits: `NNN-NNNN` or `NNNNNNN`, full- or half-width, an optional `〒`.
fn postal_digits(s: &str) -> Option<String> {
    let h = to_half_width_ascii(s);
    let t = h.trim().trim_start_matches('〒').trim();
    let d = match t.split_once('-') {
        Some((a, b)) if a.len() == 3 && b.len() == 4 => format!("{a}{b}"),
        Some(_) => return None,
        None => t.to_string(),
    };
    (d.len() == 7 && d.bytes().all(|b| b.is_ascii_digit())).then_some(d)
}

/// Whether a code has the item-code shape: 17 ASCII letters or digits.
fn is_item_code(s: &str) -> bool {
    s.len() == 17 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A PQ value: a decimal number (optionally with exponent), finite.
fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim_matches(XML_WS);
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The date of an HL7 TS value: `YYYYMMDD` optionally followed by time and zone digits.
fn ts_date(s: &str) -> Option<NaiveDate> {
    let t = s.trim_matches(XML_WS);
    let b = t.as_bytes();
    if b.len() < 8 || !b[..8].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !b[8..]
        .iter()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'+' | b'-'))
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| t.get(r).and_then(|x| x.parse::<u32>().ok());
    NaiveDate::from_ymd_opt(n(0..4)? as i32, n(4..6)?, n(6..8)?)
}

/// A value written as a coded answer (CD) rather than text (ST).
fn is_coded(s: &str) -> bool {
    (1..=16).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

// ---------------------------------------------------------------------------------------------
// Encoding

enum Declared {
    Utf8,
    ShiftJis,
    Other,
}

/// The `encoding` of the XML declaration, lower-cased, if there is one.
fn declared_label(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(512)];
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let decl = &head[..memchr::memmem::find(head, b"?>")?];
    let at = memchr::memmem::find(decl, b"encoding")?;
    let rest = decl[at + "encoding".len()..].trim_ascii_start();
    let rest = rest.strip_prefix(b"=")?.trim_ascii_start();
    let quote = *rest.first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let value = &rest[1..];
    let value = &value[..memchr::memchr(quote, value)?];
    if value.len() > 40 || !value.iter().all(u8::is_ascii_graphic) {
        return Some(String::from("?"));
    }
    Some(String::from_utf8_lossy(value).to_ascii_lowercase())
}

fn declared(bytes: &[u8]) -> Declared {
    let Some(label) = declared_label(bytes) else {
        return Declared::Utf8;
    };
    match label.as_str() {
        "utf-8" | "utf8" | "us-ascii" | "ascii" => Declared::Utf8,
        "shift_jis" | "shift-jis" | "sjis" | "cp932" | "ms932" | "windows-31j" => {
            Declared::ShiftJis
        }
        other => match encoding_rs::Encoding::for_label(other.as_bytes()) {
            Some(e) if e == encoding_rs::UTF_8 => Declared::Utf8,
            Some(e) if e == encoding_rs::SHIFT_JIS => Declared::ShiftJis,
            _ => Declared::Other,
        },
    }
}

/// Number of lines of a file (at least 1).
fn line_total(bytes: &[u8]) -> usize {
    let n = memchr::memchr_iter(b'\n', bytes).count();
    let tail = usize::from(!bytes.is_empty() && !bytes.ends_with(b"\n"));
    (n + tail).max(1)
}

/// 1-based line of a byte offset.
fn line_of(bytes: &[u8], pos: usize) -> usize {
    1 + memchr::memchr_iter(b'\n', &bytes[..pos.min(bytes.len())]).count()
}

/// Rejects the whole file (one document = one record) with an error at `line`.
fn reject_file(report: &mut ReadReport, bytes: &[u8], line: usize, msg: &str) {
    report.issue(Severity::Error, line, None, msg);
    report.rejected.push(Rejected {
        first_line: 1,
        last_line: line_total(bytes),
        reason: msg.to_string(),
    });
}

/// Decodes the file by its declared encoding (UTF-8 by default), refusing bytes that do not match.
fn decode<'a>(bytes: &'a [u8], report: &mut ReadReport) -> Option<Cow<'a, str>> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        report.encoding = Some(Detected::Unknown);
        reject_file(report, bytes, 1, "file is UTF-16; 特定健診 files are UTF-8");
        return None;
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let detected = detect(bytes);
    report.encoding = Some(detected);
    match declared(bytes) {
        Declared::Utf8 => match std::str::from_utf8(bytes) {
            Ok(_) if detected == Detected::Iso2022Jp => {
                let line = line_of(bytes, memchr::memchr(0x1b, bytes).unwrap_or(0));
                reject_file(report, bytes, line, "not UTF-8: looks like ISO-2022-JP");
                None
            }
            Ok(text) => Some(Cow::Borrowed(text)),
            Err(e) => {
                let line = line_of(bytes, e.valid_up_to());
                let msg = match detected {
                    Detected::ShiftJis | Detected::Iso2022Jp => {
                        format!("not UTF-8: looks like {}", detected.name())
                    }
                    _ => "not UTF-8: bytes in no known encoding".to_string(),
                };
                reject_file(report, bytes, line, &msg);
                None
            }
        },
        Declared::ShiftJis => {
            if matches!(detected, Detected::Utf8 | Detected::Iso2022Jp) {
                let msg = format!("declares Shift_JIS but looks like {}", detected.name());
                reject_file(report, bytes, 1, &msg);
                return None;
            }
            match encoding_rs::SHIFT_JIS.decode_without_bom_handling_and_without_replacement(bytes)
            {
                Some(text) => {
                    // [L] 特定健診 files are UTF-8 in every sample seen; Shift_JIS is read leniently.
                    report.issue(
                        Severity::Warning,
                        1,
                        None,
                        "file declares Shift_JIS; 特定健診 files are normally UTF-8 [L]",
                    );
                    Some(text)
                }
                None => {
                    let line = bytes
                        .split(|&b| b == b'\n')
                        .position(|l| crate::encoding::decode_sjis_line(l).is_none())
                        .map_or(1, |i| i + 1);
                    reject_file(report, bytes, line, "bytes that are not Shift_JIS");
                    None
                }
            }
        }
        Declared::Other => {
            reject_file(
                report,
                bytes,
                1,
                "declared encoding is not supported (UTF-8 or Shift_JIS expected)",
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reader

/// Line numbers of increasing byte offsets, counted incrementally.
struct Lines<'a> {
    bytes: &'a [u8],
    at: usize,
    line: usize,
}

impl Lines<'_> {
    fn line(&mut self, pos: u64) -> usize {
        let pos = usize::try_from(pos)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        if pos < self.at {
            return line_of(self.bytes, pos);
        }
        self.line += memchr::memchr_iter(b'\n', &self.bytes[self.at..pos]).count();
        self.at = pos;
        self.line
    }
}

/// An open element.
struct Frame {
    /// Local name (prefix dropped).
    name: String,
    /// Attributes by local name (namespace declarations left out), unescaped.
    attrs: Vec<(String, String)>,
    /// Direct text content, for the elements in [`TEXT_ELEMENTS`].
    text: Option<String>,
}

impl Frame {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// An observation being read.
struct Obs {
    /// Its place among the results, in document order of the start tags.
    slot: usize,
    line: usize,
    bad: bool,
    code_seen: bool,
    value_seen: bool,
    code: Option<String>,
    name: Option<String>,
    value_num: Option<f64>,
    value_text: Option<String>,
    unit: Option<String>,
}

/// A result read, waiting for the 受診日.
struct ResultOut {
    code: String,
    name: Option<String>,
    value_num: Option<f64>,
    value_text: Option<String>,
    unit: Option<String>,
}

#[derive(Default)]
struct Ids {
    insurer: Option<String>,
    symbol: Option<String>,
    number: Option<String>,
    branch: Option<String>,
    /// Which of insurer, symbol, number, branch were seen.
    seen: [bool; 4],
}

struct Parser<'r> {
    report: &'r mut ReadReport,
    frames: Vec<Frame>,
    root_line: Option<usize>,
    root_end: Option<usize>,
    /// Reason the record is rejected (the first error that rejects it).
    fatal: Option<String>,
    /// Not well-formed: reading stops.
    broken: bool,
    patient_roles: usize,
    patient_role_line: usize,
    patient_line: Option<usize>,
    ids: Ids,
    addr_seen: bool,
    address: crate::death::AddressParts,
    postal: Option<String>,
    postal_seen: bool,
    name_seen: bool,
    surname_kana: Option<String>,
    given_kana: Option<String>,
    family: Option<String>,
    given: Option<String>,
    sex_seen: bool,
    sex: Option<Sex>,
    birth_seen: bool,
    birth: Option<NaiveDate>,
    facility: Option<String>,
    service_line: Option<usize>,
    service_seen: bool,
    service_date: Option<NaiveDate>,
    obs: Vec<Obs>,
    results: Vec<Option<ResultOut>>,
}

/// Reads one 特定健診 result file (one `ClinicalDocument`). `provider_id` is stored on the identity.
///
/// Gives one [`ParsedRecord`] (lines of the document element) or one [`Rejected`] entry; every
/// warning and error with its line; the encoding; element counts in `line_counts`.
pub fn read(bytes: &[u8], provider_id: &str) -> ReadReport {
    let mut report = ReadReport::default();
    let Some(text) = decode(bytes, &mut report) else {
        return report;
    };
    let mut p = Parser::new(&mut report);
    p.run(&text);
    p.finish(provider_id, line_total(text.as_bytes()));
    report
}

fn not_well_formed(e: &quick_xml::Error) -> &'static str {
    match e {
        quick_xml::Error::Syntax(_) => "XML is not well-formed: syntax error or truncated markup",
        quick_xml::Error::IllFormed(_) => "XML is not well-formed: mismatched or unexpected tags",
        quick_xml::Error::InvalidAttr(_) => "XML is not well-formed: malformed attribute",
        quick_xml::Error::Escape(_) => "XML is not well-formed: bad entity or character reference",
        _ => "XML is not well-formed",
    }
}

impl<'r> Parser<'r> {
    fn new(report: &'r mut ReadReport) -> Self {
        Parser {
            report,
            frames: Vec::new(),
            root_line: None,
            root_end: None,
            fatal: None,
            broken: false,
            patient_roles: 0,
            patient_role_line: 0,
            patient_line: None,
            ids: Ids::default(),
            addr_seen: false,
            address: crate::death::AddressParts::default(),
            postal: None,
            postal_seen: false,
            name_seen: false,
            surname_kana: None,
            given_kana: None,
            family: None,
            given: None,
            sex_seen: false,
            sex: None,
            birth_seen: false,
            birth: None,
            facility: None,
            service_line: None,
            service_seen: false,
            service_date: None,
            obs: Vec::new(),
            results: Vec::new(),
        }
    }

    fn warn(&mut self, line: usize, msg: &str) {
        self.report.issue(Severity::Warning, line, None, msg);
    }

    /// An error that rejects the record.
    fn error(&mut self, line: usize, msg: &str) {
        self.report.issue(Severity::Error, line, None, msg);
        if self.fatal.is_none() {
            self.fatal = Some(msg.to_string());
        }
    }

    /// Not well-formed (or beyond the guards): the record is rejected and reading stops.
    fn break_off(&mut self, line: usize, msg: &str) {
        self.error(line, msg);
        self.broken = true;
    }

    /// An error that leaves the current observation out.
    fn obs_error(&mut self, line: usize, msg: &str) {
        self.report.issue(Severity::Error, line, None, msg);
        if let Some(o) = self.obs.last_mut() {
            o.bad = true;
        }
    }

    /// Whether the open elements are exactly `path`.
    fn under(&self, path: &[&str]) -> bool {
        self.frames.len() == path.len() && self.frames.iter().zip(path).all(|(f, p)| f.name == *p)
    }

    fn parent_is(&self, name: &str) -> bool {
        self.frames.last().is_some_and(|f| f.name == name)
    }

    fn run(&mut self, text: &str) {
        // quick-xml checks that end tags match and resolves nothing beyond the five predefined
        // entities; references are handed over as events and resolved here.
        let mut reader = Reader::from_str(text);
        let mut lines = Lines {
            bytes: text.as_bytes(),
            at: 0,
            line: 1,
        };
        loop {
            let before = reader.buffer_position();
            let event = match reader.read_event() {
                Ok(e) => e,
                Err(e) => {
                    let line = lines.line(reader.error_position());
                    self.break_off(line, not_well_formed(&e));
                    break;
                }
            };
            let line = lines.line(before);
            match event {
                Event::Start(e) => self.open(&e, line, &reader, false),
                Event::Empty(e) => self.open(&e, line, &reader, true),
                Event::End(_) => self.close(line),
                Event::Text(t) => match t.xml10_content() {
                    Ok(s) => self.text(&s, line),
                    Err(_) => self.break_off(line, "text that cannot be decoded"),
                },
                Event::CData(t) => match t.xml10_content() {
                    Ok(s) => self.text(&s, line),
                    Err(_) => self.break_off(line, "text that cannot be decoded"),
                },
                Event::GeneralRef(r) => self.reference(&r, line),
                Event::DocType(_) => {
                    self.warn(line, "DOCTYPE ignored: entities are not expanded");
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
            if self.broken {
                break;
            }
        }
        if !self.broken {
            let end = lines.line(text.len() as u64);
            if self.root_line.is_none() {
                self.error(1, "no ClinicalDocument element");
            } else if !self.frames.is_empty() {
                self.break_off(end, "document ends inside an element (truncated)");
            }
        }
    }

    fn open(&mut self, e: &BytesStart<'_>, line: usize, reader: &Reader<&[u8]>, empty: bool) {
        let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        let kind = if COUNTED.contains(&name.as_str()) {
            name.as_str()
        } else {
            "(other)"
        };
        match self.report.line_counts.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.report.line_counts.insert(kind.to_string(), 1);
            }
        }
        let root = self.frames.is_empty();
        if root {
            if self.root_line.is_some() {
                self.break_off(line, "XML is not well-formed: a second document element");
                return;
            }
            if name != CD {
                self.break_off(line, "the document element is not ClinicalDocument");
                return;
            }
            self.root_line = Some(line);
        }
        if self.frames.len() >= MAX_DEPTH {
            self.break_off(line, "elements nested deeper than the reader accepts");
            return;
        }
        let mut attrs = Vec::new();
        let mut hl7_ns = false;
        for a in e.attributes() {
            let Ok(a) = a else {
                self.break_off(line, "XML is not well-formed: malformed attribute");
                return;
            };
            let Ok(value) = a.decode_and_unescape_value(reader.decoder()) else {
                self.break_off(
                    line,
                    "attribute value with an entity that is not predefined or a bad character reference",
                );
                return;
            };
            let key = a.key;
            let is_ns =
                key.as_ref() == b"xmlns" || key.prefix().is_some_and(|p| p.as_ref() == b"xmlns");
            if is_ns {
                hl7_ns |= value == HL7_NS;
                continue;
            }
            let local = String::from_utf8_lossy(key.local_name().as_ref()).into_owned();
            attrs.push((local, value.into_owned()));
        }
        if root && !hl7_ns {
            self.warn(
                line,
                "ClinicalDocument is not in the urn:hl7-org:v3 namespace",
            );
        }
        let text = TEXT_ELEMENTS.contains(&name.as_str()).then(String::new);
        self.frames.push(Frame { name, attrs, text });
        self.on_open(line);
        if empty {
            self.close(line);
        }
    }

    fn on_open(&mut self, line: usize) {
        if self.under(&PATIENT_ROLE) {
            self.patient_roles += 1;
            if self.patient_roles == 1 {
                self.patient_role_line = line;
            } else {
                self.warn(line, "more than one patientRole: only the first is read");
            }
        } else if self.under(&PATIENT) && self.patient_roles == 1 && self.patient_line.is_none() {
            self.patient_line = Some(line);
        } else if self.under(&SERVICE_EVENT) && self.service_line.is_none() {
            self.service_line = Some(line);
        }
        if self.frames.last().is_some_and(|f| f.name == "observation") {
            self.obs.push(Obs {
                slot: self.results.len(),
                line,
                bad: false,
                code_seen: false,
                value_seen: false,
                code: None,
                name: None,
                value_num: None,
                value_text: None,
                unit: None,
            });
            self.results.push(None);
        }
    }

    fn close(&mut self, line: usize) {
        let Some(frame) = self.frames.pop() else {
            self.break_off(
                line,
                "XML is not well-formed: an end tag without a start tag",
            );
            return;
        };
        self.on_close(&frame, line);
        if self.frames.is_empty() {
            self.root_end = Some(line);
        }
    }

    fn text(&mut self, s: &str, line: usize) {
        match self.frames.last_mut() {
            None => {
                if !s.trim_matches(XML_WS).is_empty() {
                    self.break_off(
                        line,
                        "XML is not well-formed: text outside the document element",
                    );
                }
            }
            Some(f) => {
                if let Some(t) = f.text.as_mut() {
                    t.push_str(s);
                }
            }
        }
    }

    fn reference(&mut self, r: &BytesRef<'_>, line: usize) {
        let resolved: Option<String> = if r.is_char_ref() {
            match r.resolve_char_ref() {
                Ok(Some(c)) => Some(c.to_string()),
                _ => None,
            }
        } else {
            r.decode()
                .ok()
                .and_then(|n| quick_xml::escape::resolve_predefined_entity(&n))
                .map(str::to_string)
        };
        match resolved {
            Some(s) => self.text(&s, line),
            None => self.break_off(
                line,
                "entity reference that is not predefined or a bad character reference (entities are not expanded)",
            ),
        }
    }

    /// Handles an element whose end was reached; `self.frames` holds its ancestors.
    fn on_close(&mut self, f: &Frame, line: usize) {
        let first_role = self.patient_roles == 1;
        match f.name.as_str() {
            "code" if self.under(&[CD]) => {
                // [L] 報告区分 10 = 特定健診; other values are 保健指導 reports.
                if f.attr("code").map(str::trim) != Some("10") {
                    self.warn(line, "document code (報告区分) is not 10 (特定健診) [L]");
                }
                if f.attr("codeSystem").map(str::trim) != Some(OID_REPORT_KIND) {
                    self.warn(line, "document code system is not 報告区分");
                }
            }
            "id" if first_role && self.under(&PATIENT_ROLE) => self.patient_id(f, line),
            "addr" if first_role && !self.addr_seen && self.under(&PATIENT_ROLE) => {
                self.addr_seen = true;
                let text = f.text.as_deref().unwrap_or("");
                self.address = parse_address(text.trim_matches(XML_WS));
            }
            "postalCode" if first_role && self.under(&ADDR) => self.postal_code(f, line),
            "name" if first_role && self.under(&PATIENT) => self.name(f, line),
            "family" if first_role && self.family.is_none() && self.under(&NAME) => {
                self.family = f.text.as_deref().and_then(clean);
            }
            "given" if first_role && self.given.is_none() && self.under(&NAME) => {
                self.given = f.text.as_deref().and_then(clean);
            }
            "administrativeGenderCode" if first_role && !self.sex_seen && self.under(&PATIENT) => {
                self.sex_seen = true;
                match f.attr("code").map(|c| c.trim_matches(XML_WS)) {
                    Some("1") => self.sex = Some(Sex::Male),
                    Some("2") => self.sex = Some(Sex::Female),
                    _ => self.error(line, "administrativeGenderCode is neither 1 nor 2"),
                }
                if self.sex.is_some()
                    && f.attr("codeSystem").map(|c| c.trim_matches(XML_WS)) != Some(OID_SEX)
                {
                    self.warn(line, "administrativeGenderCode has another code system");
                }
            }
            "birthTime" if first_role && !self.birth_seen && self.under(&PATIENT) => {
                self.birth_seen = true;
                match f.attr("value").and_then(ts_date) {
                    Some(d) => self.birth = Some(d),
                    None => self.error(line, "birthTime is not a valid date"),
                }
            }
            "id" if self.under(&ORGANIZATION) => self.facility_id(f, line),
            // [L] 健診プログラムサービスコード 010 = 特定健診.
            "code"
                if self.under(&SERVICE_EVENT)
                    && f.attr("code").map(|c| c.trim_matches(XML_WS)) != Some("010") =>
            {
                self.warn(line, "service event code is not 010 (特定健診) [L]");
            }
            "effectiveTime" | "low"
                if (f.name == "effectiveTime" && self.under(&SERVICE_EVENT))
                    || (f.name == "low" && self.under(&SERVICE_TIME)) =>
            {
                if let Some(v) = f.attr("value") {
                    self.service_time(v, line);
                }
            }
            "code" if self.parent_is("observation") => self.obs_code(f, line),
            "value" if self.parent_is("observation") => self.obs_value(f, line),
            "observation" => self.obs_end(),
            _ => {}
        }
    }

    fn patient_id(&mut self, f: &Frame, line: usize) {
        let slot = match f.attr("root").map(|r| r.trim_matches(XML_WS)) {
            Some(OID_INSURER) => 0,
            Some(OID_SYMBOL) => 1,
            Some(OID_NUMBER) => 2,
            Some(OID_BRANCH) => 3,
            _ => {
                self.warn(line, "patientRole id with an unknown root ignored");
                return;
            }
        };
        if self.ids.seen[slot] {
            self.warn(line, "repeated patientRole id: the first is read");
            return;
        }
        self.ids.seen[slot] = true;
        let ext = f.attr("extension").and_then(clean);
        match slot {
            0 => {
                let Some(raw) = ext else {
                    self.warn(line, "insurer number id without extension");
                    return;
                };
                let Some(n) = insurer_from_text(&raw) else {
                    return;
                };
                let digits = n.bytes().all(|b| b.is_ascii_digit());
                if !digits || !(n.len() == 6 || n.len() == 8) {
                    self.warn(line, "insurer number is not 6 or 8 digits");
                } else if !insurer_number_is_valid(&n) {
                    self.warn(line, "insurer number check digit does not match");
                }
                if n.len() == 6 && digits && to_half_width_ascii(&raw).trim().len() == 6 {
                    self.warn(line, "6-digit insurer number not zero-padded to 8 digits");
                }
                self.ids.insurer = Some(n);
            }
            1 => self.ids.symbol = ext,
            2 => self.ids.number = ext,
            _ => self.ids.branch = ext,
        }
    }

    fn postal_code(&mut self, f: &Frame, line: usize) {
        if self.postal_seen {
            return;
        }
        self.postal_seen = true;
        let Some(raw) = f.text.as_deref().and_then(clean) else {
            return;
        };
        match postal_digits(&raw) {
            Some(p) => {
                // [U] whether postalCode carries the hyphen: both are read.
                if !to_half_width_ascii(&raw).contains('-') {
                    self.warn(line, "postal code without hyphen [U]");
                }
                self.postal = Some(p);
            }
            None => self.warn(line, "postal code is not 7 digits: not read"),
        }
    }

    fn name(&mut self, f: &Frame, line: usize) {
        if self.name_seen {
            return;
        }
        self.name_seen = true;
        let text = f.text.as_deref().unwrap_or("");
        let t = text.trim_matches(|c| XML_WS.contains(&c) || c == '\u{3000}');
        if t.is_empty() {
            // CDA name parts, if any.
            let family = self.family.take();
            let given = self.given.take();
            if family.is_some() {
                self.surname_kana = family;
                self.given_kana = given;
            } else {
                self.warn(line, "patient name is empty");
            }
            return;
        }
        // [U] whether the kana name separates surname and given name with a full-width space: a
        // half-width space or none is read too.
        if !t.contains('\u{3000}') {
            if t.contains(' ') {
                self.warn(line, "kana name separated by a half-width space [U]");
            } else {
                self.warn(line, "kana name without a space: read as surname only [U]");
            }
        }
        let (s, g) = kana_from_text(text);
        self.surname_kana = s;
        self.given_kana = g;
    }

    fn facility_id(&mut self, f: &Frame, line: usize) {
        match f.attr("root").map(|r| r.trim_matches(XML_WS)) {
            Some(OID_FACILITY) => {
                if self.facility.is_some() {
                    return;
                }
                match f.attr("extension").and_then(clean) {
                    Some(code) => {
                        if !(code.len() == 10 && code.bytes().all(|b| b.is_ascii_digit())) {
                            self.warn(line, "健診機関番号 is not 10 digits");
                        }
                        self.facility = Some(code);
                    }
                    None => self.warn(line, "健診機関番号 id without extension"),
                }
            }
            None if f.attr("nullFlavor").is_some() => {}
            _ => self.warn(line, "organization id with an unknown root ignored"),
        }
    }

    fn service_time(&mut self, v: &str, line: usize) {
        if self.service_seen {
            return;
        }
        self.service_seen = true;
        match ts_date(v) {
            Some(d) => self.service_date = Some(d),
            None => self.error(
                line,
                "受診日 (serviceEvent effectiveTime) is not a valid date",
            ),
        }
    }

    fn obs_code(&mut self, f: &Frame, line: usize) {
        let Some(o) = self.obs.last_mut() else {
            return;
        };
        if o.code_seen {
            self.warn(
                line,
                "observation with more than one code: the first is read",
            );
            return;
        }
        o.code_seen = true;
        let code = f.attr("code").and_then(clean);
        match code {
            Some(c) if is_item_code(&c) => {
                o.code = Some(c);
                o.name = f.attr("displayName").and_then(clean);
                if f.attr("codeSystem").map(|c| c.trim_matches(XML_WS)) != Some(OID_ITEM) {
                    self.warn(
                        line,
                        "observation code system is not the 特定健診 item code system",
                    );
                }
            }
            Some(_) => self.obs_error(line, "item code is not 17 letters or digits"),
            None => self.obs_error(line, "observation code without a code"),
        }
    }

    fn obs_value(&mut self, f: &Frame, line: usize) {
        let Some(o) = self.obs.last_mut() else {
            return;
        };
        if o.value_seen {
            self.warn(
                line,
                "observation with more than one value: the first is read",
            );
            return;
        }
        o.value_seen = true;
        let ty = f
            .attr("type")
            .map(|t| t.trim_matches(XML_WS))
            .map(|t| t.rsplit(':').next().unwrap_or(t));
        match ty {
            Some("PQ") => match f.attr("value") {
                Some(v) => match parse_number(v) {
                    Some(x) => {
                        o.value_num = Some(x);
                        o.unit = f.attr("unit").and_then(clean);
                    }
                    None => self.obs_error(line, "PQ value is not a number"),
                },
                None if f.attr("nullFlavor").is_some() => {
                    self.warn(line, "value with nullFlavor: no value read");
                }
                None => self.obs_error(line, "PQ value is not a number"),
            },
            Some("CD") | Some("CO") => match f.attr("code").and_then(clean) {
                Some(c) => o.value_text = Some(c),
                None => self.warn(line, "coded value without a code: no value read"),
            },
            Some("ST") => o.value_text = f.text.as_deref().and_then(clean),
            Some(_) => self.warn(line, "value type is not PQ, CD, CO or ST: value not read"),
            None => self.warn(line, "value without xsi:type: value not read"),
        }
    }

    fn obs_end(&mut self) {
        let Some(o) = self.obs.pop() else {
            return;
        };
        if o.bad {
            return;
        }
        let Some(code) = o.code else {
            if !o.code_seen {
                self.report
                    .issue(Severity::Error, o.line, None, "observation without a code");
            }
            return;
        };
        if let Some(slot) = self.results.get_mut(o.slot) {
            *slot = Some(ResultOut {
                code,
                name: o.name,
                value_num: o.value_num,
                value_text: o.value_text,
                unit: o.unit,
            });
        }
    }

    /// Reports what is missing, then gives the record or the rejection.
    fn finish(mut self, provider_id: &str, end_line: usize) {
        let first_line = self.root_line.unwrap_or(1);
        let last_line = self.root_end.unwrap_or(end_line).max(first_line);
        if !self.broken && self.root_line.is_some() {
            if self.patient_roles == 0 {
                self.error(first_line, "no recordTarget/patientRole");
            } else {
                let at = self.patient_line.unwrap_or(self.patient_role_line);
                if !self.birth_seen {
                    self.error(at, "no birthTime");
                }
                if !self.sex_seen {
                    self.error(at, "no administrativeGenderCode");
                }
                if self.surname_kana.is_none() && !self.name_seen {
                    self.warn(at, "no patient name");
                }
            }
            if !self.service_seen {
                let at = self.service_line.unwrap_or(first_line);
                self.error(at, "no 受診日 (serviceEvent effectiveTime)");
            }
            if self.facility.is_none() {
                self.warn(first_line, "no 健診機関番号 (author organization id)");
            }
        }
        if let Some(reason) = self.fatal.take() {
            self.report.rejected.push(Rejected {
                first_line,
                last_line,
                reason,
            });
            return;
        }
        let (Some(date), Some(birth), Some(sex)) = (self.service_date, self.birth, self.sex) else {
            // Unreachable: each missing value was reported as an error above.
            self.report.rejected.push(Rejected {
                first_line,
                last_line,
                reason: "incomplete document".into(),
            });
            return;
        };
        let ids = std::mem::take(&mut self.ids);
        let a = std::mem::take(&mut self.address);
        let identity = IdentityRecord {
            record_id: String::new(),
            provider_id: provider_id.to_string(),
            source_kind: SourceKind::Checkup,
            local_patient_id: None,
            surname_kanji: None,
            given_kanji: None,
            surname_kana: self.surname_kana.take(),
            given_kana: self.given_kana.take(),
            birth_date: Some(birth),
            sex: Some(sex),
            prefecture: a.prefecture,
            municipality_code: None,
            municipality: a.municipality,
            town: a.town,
            chome: a.chome,
            banchi: a.banchi,
            postal_code: self.postal.take(),
            insurance_kind: ids.insurer.as_deref().and_then(insurance_kind),
            insurer_number: ids.insurer,
            insured_symbol: ids.symbol,
            insured_number: ids.number,
            insured_branch: ids.branch,
            recorded_on: date,
        };
        let mut events = EventSet::default();
        events
            .encounters
            .push(checkup(self.facility.take().unwrap_or_default(), date));
        events.lab_results = std::mem::take(&mut self.results)
            .into_iter()
            .flatten()
            .map(|r| result(r, date))
            .collect();
        self.report.records.push(ParsedRecord {
            record: SourceRecord { identity, events },
            first_line,
            last_line,
        });
    }
}

fn checkup(facility_code: String, date: NaiveDate) -> Encounter {
    Encounter {
        event_id: String::new(),
        record_id: String::new(),
        facility_code,
        setting: Setting::Checkup,
        department: None,
        start_date: date,
        end_date: date,
    }
}

fn result(r: ResultOut, date: NaiveDate) -> LabResult {
    LabResult {
        event_id: String::new(),
        record_id: String::new(),
        encounter_id: Some(ENCOUNTER_ID.to_string()),
        date,
        code_system: CodeSystem::Jlac10,
        code: r.code,
        name: r.name,
        value_num: r.value_num,
        value_text: r.value_text,
        unit: r.unit,
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical form

/// The address parts as they come back from their text form: [`format_address`] then
/// [`parse_address`], repeated until nothing changes (a few rounds at most).
fn canonical_address(id: &IdentityRecord) -> crate::death::AddressParts {
    let mut cur = id.clone();
    let mut parts = parse_address(&format_address(&cur));
    for _ in 0..16 {
        cur.prefecture = parts.prefecture.clone();
        cur.municipality = parts.municipality.clone();
        cur.town = parts.town.clone();
        cur.chome = parts.chome.clone();
        cur.banchi = parts.banchi.clone();
        let next = parse_address(&format_address(&cur));
        if next == parts {
            break;
        }
        parts = next;
    }
    parts
}

/// The canonical record as a 特定健診 file carries it: what `read(write(r))` gives back.
///
/// - Identity: kanji names, the local patient id and the municipality code are dropped (not in the
///   file); the kana name is joined with a full-width space and split again (a lone given name
///   without surname is dropped); the address goes through its text form and back; the postal code
///   is kept only as 7 digits; the insurer number is kept as is except that a zero-padded 6-digit
///   number (`00xxxxxx`) becomes its 6 digits; the insurance kind is re-derived from it; 記号・番号・
///   枝番 are trimmed; `recorded_on` is the 受診日; the source kind is `Checkup`; ids are empty.
/// - Events: one checkup encounter with the facility and start date of the first encounter (or, with
///   none, no facility and `recorded_on`); lab results whose code is not 17 letters or digits or whose
///   numeric value is not finite are dropped, the others are dated the 受診日, refer to encounter
///   `"0"`, are JLAC10, keep their name, and carry either a number with its unit or a text without
///   unit; diagnoses, prescriptions, procedures and deaths are dropped.
pub fn canonicalize(r: &SourceRecord) -> SourceRecord {
    let src = &r.identity;
    let first = r.events.encounters.first();
    let date = first.map_or(src.recorded_on, |e| e.start_date);
    let facility = first
        .and_then(|e| clean(&e.facility_code))
        .unwrap_or_default();
    let (surname_kana, given_kana) = kana_from_text(&join_name(&src.surname_kana, &src.given_kana));
    let a = canonical_address(src);
    let insurer = src.insurer_number.as_deref().and_then(insurer_from_text);
    let identity = IdentityRecord {
        record_id: String::new(),
        provider_id: src.provider_id.clone(),
        source_kind: SourceKind::Checkup,
        local_patient_id: None,
        surname_kanji: None,
        given_kanji: None,
        surname_kana,
        given_kana,
        birth_date: src.birth_date,
        sex: src.sex,
        prefecture: a.prefecture,
        municipality_code: None,
        municipality: a.municipality,
        town: a.town,
        chome: a.chome,
        banchi: a.banchi,
        postal_code: src.postal_code.as_deref().and_then(postal_digits),
        insurance_kind: insurer.as_deref().and_then(insurance_kind),
        insurer_number: insurer,
        insured_symbol: src.insured_symbol.as_deref().and_then(clean),
        insured_number: src.insured_number.as_deref().and_then(clean),
        insured_branch: src.insured_branch.as_deref().and_then(clean),
        recorded_on: date,
    };
    let mut events = EventSet::default();
    events.encounters.push(checkup(facility, date));
    for l in &r.events.lab_results {
        let Some(code) = clean(&l.code).filter(|c| is_item_code(c)) else {
            continue;
        };
        let (value_num, value_text, unit) = match l.value_num {
            Some(v) if v.is_finite() => (Some(v), None, l.unit.as_deref().and_then(clean)),
            Some(_) => continue,
            None => (None, l.value_text.as_deref().and_then(clean), None),
        };
        events.lab_results.push(result(
            ResultOut {
                code,
                name: l.name.as_deref().and_then(clean),
                value_num,
                value_text,
                unit,
            },
            date,
        ));
    }
    SourceRecord { identity, events }
}

// ---------------------------------------------------------------------------------------------
// Writer

fn unrepresentable(what: &'static str, reason: &str) -> FormatError {
    FormatError::Unrepresentable {
        what,
        reason: reason.to_string(),
    }
}

/// Whether XML 1.0 allows the character at all.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes text or an attribute value; tab, LF and CR become character references so that they
/// survive end-of-line and attribute-value normalisation.
fn esc(s: &str, what: &'static str) -> Result<String, FormatError> {
    if !s.chars().all(xml_char) {
        return Err(unrepresentable(what, "a character XML does not allow"));
    }
    let e = quick_xml::escape::escape(s);
    if !e.contains(['\t', '\n', '\r']) {
        return Ok(e.into_owned());
    }
    Ok(e.replace('\t', "&#9;")
        .replace('\n', "&#10;")
        .replace('\r', "&#13;"))
}

/// `YYYYMMDD` (years 0000–9999).
fn ymd(d: NaiveDate, what: &'static str) -> Result<String, FormatError> {
    if !(0..=9999).contains(&d.year()) {
        return Err(unrepresentable(what, "year outside 0000-9999"));
    }
    Ok(format!("{:04}{:02}{:02}", d.year(), d.month(), d.day()))
}

/// Writes a record as one 特定健診 result document (hc08 layout, UTF-8, LF line ends).
///
/// The record is canonicalized first ([`canonicalize`]). The document date (`effectiveTime`) and the
/// author time are the 受診日 so that the output depends on the record only: the same record always
/// gives the same bytes. Numeric results are written as PQ with Rust's shortest round-trip
/// formatting, short ASCII codes as CD, other text as ST. Fails when the record has no birth date or
/// sex (the reader would reject the file), a date outside years 0000–9999, or a character XML does
/// not allow.
pub fn write(r: &SourceRecord) -> Result<Vec<u8>, FormatError> {
    let c = canonicalize(r);
    let id = &c.identity;
    let birth = id
        .birth_date
        .ok_or_else(|| unrepresentable("birthTime", "a checkup file needs a birth date"))?;
    let sex = id.sex.ok_or_else(|| {
        unrepresentable("administrativeGenderCode", "a checkup file needs the sex")
    })?;
    let (facility, date) = c
        .events
        .encounters
        .first()
        .map_or((String::new(), id.recorded_on), |e| {
            (e.facility_code.clone(), e.start_date)
        });
    let date = ymd(date, "受診日")?;
    let mut s = String::with_capacity(2048 + 256 * c.events.lab_results.len());
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<ClinicalDocument xmlns=\"{HL7_NS}\" xmlns:xsi=\"{XSI_NS}\" xsi:schemaLocation=\"{HL7_NS} ../XSD/hc08_V08.xsd\">\n"
    ));
    s.push_str("  <typeId root=\"2.16.840.1.113883.1.3\" extension=\"POCD_HD000040\"/>\n");
    s.push_str("  <id nullFlavor=\"NI\"/>\n");
    s.push_str(&format!(
        "  <code code=\"10\" codeSystem=\"{OID_REPORT_KIND}\"/>\n"
    ));
    s.push_str(&format!("  <effectiveTime value=\"{date}\"/>\n"));
    s.push_str("  <confidentialityCode code=\"N\" codeSystem=\"2.16.840.1.113883.5.25\"/>\n");
    s.push_str("  <recordTarget>\n    <patientRole>\n");
    if let Some(n) = &id.insurer_number {
        let padded = if n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()) {
            format!("00{n}")
        } else {
            n.clone()
        };
        s.push_str(&format!(
            "      <id root=\"{OID_INSURER}\" extension=\"{}\"/>\n",
            esc(&padded, "insurer number")?
        ));
    }
    for (oid, v, what) in [
        (OID_SYMBOL, &id.insured_symbol, "被保険者証 記号"),
        (OID_NUMBER, &id.insured_number, "被保険者証 番号"),
        (OID_BRANCH, &id.insured_branch, "枝番"),
    ] {
        if let Some(v) = v {
            s.push_str(&format!(
                "      <id root=\"{oid}\" extension=\"{}\"/>\n",
                esc(v, what)?
            ));
        }
    }
    let address = format_address(id);
    if id.postal_code.is_some() || !address.is_empty() {
        s.push_str("      <addr>");
        if let Some(p) = &id.postal_code {
            // Canonical postal codes are 7 ASCII digits.
            let (a, b) = (p.get(..3).unwrap_or(""), p.get(3..).unwrap_or(""));
            s.push_str(&format!(
                "<postalCode>{}-{}</postalCode>",
                esc(a, "postal code")?,
                esc(b, "postal code")?
            ));
        }
        s.push_str(&esc(&address, "address")?);
        s.push_str("</addr>\n");
    }
    s.push_str("      <patient>\n");
    let name = join_name(&id.surname_kana, &id.given_kana);
    if !name.is_empty() {
        s.push_str(&format!(
            "        <name>{}</name>\n",
            esc(&name, "kana name")?
        ));
    }
    s.push_str(&format!(
        "        <administrativeGenderCode code=\"{}\" codeSystem=\"{OID_SEX}\"/>\n",
        sex.jp_code()
    ));
    s.push_str(&format!(
        "        <birthTime value=\"{}\"/>\n",
        ymd(birth, "birthTime")?
    ));
    s.push_str("      </patient>\n    </patientRole>\n  </recordTarget>\n");
    s.push_str(&format!(
        "  <author>\n    <time value=\"{date}\"/>\n    <assignedAuthor>\n      <id nullFlavor=\"NI\"/>\n      <representedOrganization>\n"
    ));
    if facility.is_empty() {
        s.push_str("        <id nullFlavor=\"NI\"/>\n");
    } else {
        s.push_str(&format!(
            "        <id root=\"{OID_FACILITY}\" extension=\"{}\"/>\n",
            esc(&facility, "健診機関番号")?
        ));
    }
    s.push_str("      </representedOrganization>\n    </assignedAuthor>\n  </author>\n");
    s.push_str("  <custodian><assignedCustodian><representedCustodianOrganization><id nullFlavor=\"NI\"/></representedCustodianOrganization></assignedCustodian></custodian>\n");
    s.push_str(&format!(
        "  <documentationOf>\n    <serviceEvent>\n      <code code=\"010\" codeSystem=\"{OID_PROGRAM}\"/>\n      <effectiveTime value=\"{date}\"/>\n    </serviceEvent>\n  </documentationOf>\n"
    ));
    s.push_str("  <component><structuredBody><component><section>\n");
    s.push_str(&format!(
        "    <code code=\"01010\" codeSystem=\"{OID_SECTION}\"/>\n"
    ));
    s.push_str("    <title>検査・問診結果セクション</title>\n    <text/>\n");
    for l in &c.events.lab_results {
        s.push_str("    <entry><observation classCode=\"OBS\" moodCode=\"EVN\">\n");
        s.push_str(&format!(
            "      <code code=\"{}\" codeSystem=\"{OID_ITEM}\"",
            esc(&l.code, "item code")?
        ));
        if let Some(n) = &l.name {
            s.push_str(&format!(" displayName=\"{}\"", esc(n, "item name")?));
        }
        s.push_str("/>");
        match (&l.value_num, &l.value_text) {
            (Some(v), _) => {
                s.push_str(&format!("\n      <value xsi:type=\"PQ\" value=\"{v}\""));
                if let Some(u) = &l.unit {
                    s.push_str(&format!(" unit=\"{}\"", esc(u, "unit")?));
                }
                s.push_str("/>");
            }
            (None, Some(t)) if is_coded(t) => {
                s.push_str(&format!("\n      <value xsi:type=\"CD\" code=\"{t}\"/>"));
            }
            (None, Some(t)) => {
                s.push_str(&format!(
                    "\n      <value xsi:type=\"ST\">{}</value>",
                    esc(t, "text value")?
                ));
            }
            (None, None) => {}
        }
        s.push_str("</observation></entry>\n");
    }
    s.push_str("  </section></component></structuredBody></component>\n");
    s.push_str("</ClinicalDocument>\n");
    Ok(s.into_bytes())
}

/// The name of a person's result file inside the archive's `DATA/` folder (FORMATS.md 3.2):
/// `h` (健診) + 機関番号 (10 digits) + date `YYYYMMDD` + sequence (1 digit) + 実施区分 (`1`) + serial
/// (6 digits, zero-padded) + `.xml`, e.g. `h13123456702025060101000001.xml`.
///
/// Only the last digit of `seq` and the last six digits of `serial` are used; `facility10` is written
/// as given.
pub fn file_name(facility10: &str, date: NaiveDate, seq: u32, serial: u32) -> String {
    format!(
        "h{facility10}{:04}{:02}{:02}{}1{:06}.xml",
        date.year(),
        date.month(),
        date.day(),
        seq % 10,
        serial % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_rules() {
        assert_eq!(insurer_from_text("00133066").as_deref(), Some("133066"));
        assert_eq!(insurer_from_text("06139992").as_deref(), Some("06139992"));
        assert_eq!(
            insurer_from_text("０６１３９９９２").as_deref(),
            Some("06139992")
        );
        assert_eq!(postal_digits("100-0001").as_deref(), Some("1000001"));
        assert_eq!(postal_digits("１０００００１").as_deref(), Some("1000001"));
        assert_eq!(postal_digits("10-00001"), None);
        assert_eq!(ts_date("19800412"), NaiveDate::from_ymd_opt(1980, 4, 12));
        assert_eq!(
            ts_date("198004120930+0900"),
            NaiveDate::from_ymd_opt(1980, 4, 12)
        );
        assert_eq!(ts_date("1980041"), None);
        assert_eq!(ts_date("19800432"), None);
        assert_eq!(parse_number("5.6"), Some(5.6));
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("1e999"), None);
        assert_eq!(
            declared_label(b"<?xml version=\"1.0\" encoding='Shift_JIS'?><a/>").as_deref(),
            Some("shift_jis")
        );
        assert_eq!(declared_label(b"<a/>"), None);
    }
}
