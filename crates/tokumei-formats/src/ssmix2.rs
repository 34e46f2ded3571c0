//! SS-MIX2 standardized storage (SS-MIX2 標準化ストレージ): HL7 v2.5 messages exported from electronic
//! medical records, one message per file, in a directory tree keyed by patient id.
//!
//! Layout: `<root>/<pid[0:3]>/<pid[3:6]>/<pid>/<診療日 YYYYMMDD | ->/<データ種別>/<file>` with
//! `file = <pid>_<診療日|->_<データ種別>_<オーダNo 15>_<発生日時 17>_<診療科|->_<コンディションフラグ>`.
//! Files are ISO-2022-JP (ASCII + JIS X 0208; no half-width kana), segments end in CR.
//!
//! Messages read and written:
//! - `ADT-00` (ADT^A08, 患者基本情報): PID (names kanji/kana, birth date, sex, address, death), IN1
//!   (insurer, 記号, 番号, 枝番);
//! - `ADT-12` (ADT^A04, 外来受付), `ADT-22` (ADT^A01, 入院実施), `ADT-52` (ADT^A03, 退院実施):
//!   encounters, paired by the visit number PV1-19;
//! - `PPR-01` (PPR^ZD1, 病名): one PRB per diagnosis (ICD-10 from PRB-10, else, for a 傷病名コード, the
//!   傷病名マスター's: [`tokumei_japan::byomei::icd10_of`]);
//! - `OMP-01` (RDE^O11, 処方オーダ): ORC/RXE/TQ1 per drug;
//! - `OML-11` (OUL^R22, 検体検査結果): SPM/OBR/OBX per result.
//!
//! Other data types (orders without results such as OML-01, allergies, radiology ...) are counted, not
//! mapped. [`read`] reads one message; [`read_patient`] merges the messages of one patient directory
//! into one record; [`write_patient`] writes a record as the files of one patient directory.
//!
//! Positions: `line` is the 1-based segment number, `field` the HL7 field number (PID-7 → 7).
//! Uncertain points of the layout (no JAHIS specification at hand) are marked `[U]`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::NaiveDate;
use tokumei_model::checkdigit::insurer_number_is_valid;
use tokumei_model::events::{
    Death, Diagnosis, Encounter, EventSet, LabResult, Prescription, SourceRecord,
};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::{CodeSystem, DiagnosisOutcome, Setting, Sex, SourceKind};

use crate::death::{format_address, parse_address};
use crate::encoding::{detect, Detected};
use crate::uke::{insurance_kind, substitute};
use crate::{FormatError, ParsedRecord, ReadReport, Rejected, Severity};

/// MSH-21: the SS-MIX2 message profile identifier written.
pub const PROFILE: &str = "SS-MIX2_1.20^SS-MIX2^1.2.392.200250.2.1.100.1.2.120^ISO";
/// Order number used for patient-level messages (ADT, PPR) in the guideline samples.
pub const NO_ORDER: &str = "999999999999999";
/// Most segments a message may have before the reader stops (a guard, not a format rule).
const MAX_SEGMENTS: usize = 100_000;

// ---------------------------------------------------------------------------------------------
// Encoding characters and escapes

#[derive(Debug, Clone, Copy)]
struct Delims {
    field: char,
    comp: char,
    rep: char,
    esc: char,
    sub: char,
}

impl Default for Delims {
    fn default() -> Self {
        Delims {
            field: '|',
            comp: '^',
            rep: '~',
            esc: '\\',
            sub: '&',
        }
    }
}

/// Undoes HL7 escapes (`\F\ \S\ \T\ \R\ \E\`); other escapes (`\Xhh\`, `\.br\` ...) are dropped.
fn unescape(s: &str, d: Delims) -> Cow<'_, str> {
    if !s.contains(d.esc) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(d.esc) {
        out.push_str(&rest[..i]);
        let after = &rest[i + d.esc.len_utf8()..];
        match after.find(d.esc) {
            Some(j) => {
                match &after[..j] {
                    "F" => out.push(d.field),
                    "S" => out.push(d.comp),
                    "T" => out.push(d.sub),
                    "R" => out.push(d.rep),
                    "E" => out.push(d.esc),
                    _ => {}
                }
                rest = &after[j + d.esc.len_utf8()..];
            }
            None => {
                // A lone escape character: kept as text.
                out.push(d.esc);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Escapes the delimiters in a value; CR and LF (which would end the segment) become spaces.
fn escape(s: &str) -> Cow<'_, str> {
    if !s
        .chars()
        .any(|c| matches!(c, '|' | '^' | '~' | '\\' | '&' | '\r' | '\n'))
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\F\\"),
            '^' => out.push_str("\\S\\"),
            '~' => out.push_str("\\R\\"),
            '\\' => out.push_str("\\E\\"),
            '&' => out.push_str("\\T\\"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

// ---------------------------------------------------------------------------------------------
// Segments

/// One segment: `fields[i]` is field `i` of the HL7 numbering (for MSH, `fields[1]` is the field
/// separator itself).
struct Segment<'a> {
    line: usize,
    fields: Vec<&'a str>,
}

impl<'a> Segment<'a> {
    fn name(&self) -> &'a str {
        self.fields.first().copied().unwrap_or("")
    }

    fn field(&self, i: usize) -> &'a str {
        self.fields.get(i).copied().unwrap_or("")
    }

    /// Component `c` (1-based) of the first repetition of field `i`, unescaped.
    fn comp(&self, i: usize, c: usize, d: Delims) -> Cow<'a, str> {
        let f = self.field(i);
        let first = f.split(d.rep).next().unwrap_or("");
        let v = first.split(d.comp).nth(c.saturating_sub(1)).unwrap_or("");
        unescape(v, d)
    }

    fn value(&self, i: usize, d: Delims) -> Cow<'a, str> {
        self.comp(i, 1, d)
    }
}

fn components(s: &str, d: Delims) -> Vec<Cow<'_, str>> {
    s.split(d.comp).map(|c| unescape(c, d)).collect()
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Parses the date part of an HL7 DTM (`YYYYMMDD[HHMM[SS[.S]]][+ZZZZ]`).
pub fn parse_dtm(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..8].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let rest = &b[8..];
    if !rest
        .iter()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'+' | b'-'))
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
    NaiveDate::from_ymd_opt(n(0..4)? as i32, n(4..6)?, n(6..8)?)
}

// ---------------------------------------------------------------------------------------------
// Reader: one message

/// A message read from one file: the record it carries and how its events refer to visits.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// MSH-9 message type, e.g. `ADT^A08`.
    pub message_type: String,
    /// MSH-4 sending facility.
    pub facility: String,
    /// MSH-7 date.
    pub sent_on: Option<NaiveDate>,
    /// The record: identity from PID/IN1, events from the body. Encounter ids of events are the visit
    /// numbers (PV1-19) as written; [`read_patient`] renumbers them.
    pub record: SourceRecord,
    /// The visit number (PV1-19) of the message, if any.
    pub visit: Option<String>,
    /// Admission (ADT^A01) or discharge (ADT^A03) date carried by PV1-44 / PV1-45.
    pub admit: Option<NaiveDate>,
    /// Discharge date (PV1-45).
    pub discharge: Option<NaiveDate>,
    /// Whether IN1 was present.
    pub has_insurance: bool,
}

/// Decodes a message file; warns when the file is not ISO-2022-JP (read anyway when the encoding is
/// certain), fails when it cannot be decoded.
fn decode<'a>(bytes: &'a [u8], report: &mut ReadReport) -> Option<Cow<'a, str>> {
    let det = detect(bytes);
    report.encoding = Some(det);
    match det {
        Detected::Ascii => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
        Detected::Iso2022Jp => {
            match encoding_rs::ISO_2022_JP
                .decode_without_bom_handling_and_without_replacement(bytes)
            {
                Some(t) => Some(t),
                None => {
                    report.issue(
                        Severity::Error,
                        1,
                        None,
                        "invalid ISO-2022-JP byte sequence; message not read",
                    );
                    None
                }
            }
        }
        Detected::Utf8 => {
            report.issue(
                Severity::Warning,
                1,
                None,
                "file is UTF-8, not ISO-2022-JP as SS-MIX2 requires; read as UTF-8",
            );
            std::str::from_utf8(bytes).ok().map(Cow::Borrowed)
        }
        Detected::ShiftJis => {
            report.issue(
                Severity::Warning,
                1,
                None,
                "file is Shift_JIS, not ISO-2022-JP as SS-MIX2 requires; read as Shift_JIS",
            );
            encoding_rs::SHIFT_JIS.decode_without_bom_handling_and_without_replacement(bytes)
        }
        Detected::Unknown => {
            report.issue(
                Severity::Error,
                1,
                None,
                "file is in no known encoding (expected ISO-2022-JP); message not read",
            );
            None
        }
    }
}

fn split_segments(text: &str) -> Vec<(usize, &str)> {
    // MLLP framing bytes (0x0B before, 0x1C after the message; the guideline samples end in 0x1C)
    // and an EOF byte 0x1A are not part of any segment.
    text.split(['\r', '\n'])
        .map(|s| s.trim_matches(['\u{0b}', '\u{1c}', '\u{1a}']))
        .filter(|s| !s.trim().is_empty())
        .take(MAX_SEGMENTS)
        .enumerate()
        .map(|(i, s)| (i + 1, s))
        .collect()
}

struct Parse<'a> {
    d: Delims,
    segs: Vec<Segment<'a>>,
}

fn parse_segments(text: &str) -> Result<Parse<'_>, (usize, Option<usize>, String)> {
    let lines = split_segments(text);
    let Some(&(_, msh)) = lines.first() else {
        return Err((1, None, "empty message".into()));
    };
    if !msh.starts_with("MSH") {
        return Err((1, None, "message does not start with MSH".into()));
    }
    let mut chars = msh[3..].chars();
    let (Some(field), Some(comp), Some(rep), Some(esc), Some(sub)) = (
        chars.next(),
        chars.next(),
        chars.next(),
        chars.next(),
        chars.next(),
    ) else {
        return Err((1, Some(2), "MSH encoding characters missing".into()));
    };
    let d = Delims {
        field,
        comp,
        rep,
        esc,
        sub,
    };
    if field.is_alphanumeric() || [comp, rep, esc, sub].contains(&field) {
        return Err((1, Some(1), "invalid field separator".into()));
    }
    let mut segs = Vec::with_capacity(lines.len());
    for (no, line) in lines {
        let mut fields: Vec<&str> = line.split(field).collect();
        if fields.first() == Some(&"MSH") {
            fields.insert(1, "|");
        }
        let name = fields.first().copied().unwrap_or("");
        if name.len() != 3 || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err((no, None, "segment name is not 3 letters or digits".into()));
        }
        segs.push(Segment { line: no, fields });
    }
    Ok(Parse { d, segs })
}

/// Reads one SS-MIX2 message file. `provider_id` is stored on the identity record.
pub fn read(bytes: &[u8], provider_id: &str) -> ReadReport {
    let mut report = ReadReport::default();
    if let Some(m) = read_message(bytes, provider_id, &mut report) {
        let mut record = m.record;
        let last_line = report.line_counts.values().sum::<usize>().max(1);
        // Standalone: encounter ids become indexes of the message's own encounters.
        let visits: Vec<String> = m.visit.into_iter().collect();
        renumber(&mut record.events, &visits);
        report.records.push(ParsedRecord {
            record,
            first_line: 1,
            last_line,
        });
    }
    report
}

fn reject(report: &mut ReadReport, line: usize, field: Option<usize>, msg: String) {
    report.issue(Severity::Error, line, field, msg.clone());
    report.rejected.push(Rejected {
        first_line: 1,
        last_line: report.line_counts.values().sum::<usize>().max(line),
        reason: msg,
    });
}

/// Reads one message into a [`Message`], reporting into `report`; `None` if it cannot be read.
pub fn read_message(bytes: &[u8], provider_id: &str, report: &mut ReadReport) -> Option<Message> {
    let text = decode(bytes, report)?;
    let parse = match parse_segments(&text) {
        Ok(p) => p,
        Err((line, field, msg)) => {
            reject(report, line, field, msg);
            return None;
        }
    };
    for s in &parse.segs {
        *report.line_counts.entry(s.name().to_string()).or_default() += 1;
    }
    match build(&parse, provider_id, report) {
        Ok(m) => Some(m),
        Err((line, field, msg)) => {
            reject(report, line, field, msg);
            None
        }
    }
}

type Fail = (usize, Option<usize>, String);

fn sex_of(s: &str) -> Result<Option<Sex>, ()> {
    match s {
        "M" => Ok(Some(Sex::Male)),
        "F" => Ok(Some(Sex::Female)),
        "O" | "U" | "A" | "N" | "" => Ok(None),
        _ => Err(()),
    }
}

fn is_katakana(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(
            |c| matches!(c, '\u{30A0}'..='\u{30FF}' | '\u{FF65}'..='\u{FF9F}' | '\u{3000}' | ' '),
        )
}

fn read_pid(
    seg: &Segment<'_>,
    d: Delims,
    id: &mut IdentityRecord,
    report: &mut ReadReport,
) -> Result<Option<NaiveDate>, Fail> {
    id.local_patient_id = opt(&seg.comp(3, 1, d));
    for rep in seg.field(5).split(d.rep) {
        let c = components(rep, d);
        let get = |i: usize| c.get(i).map(|s| s.as_ref()).unwrap_or("");
        let (family, given) = (opt(get(0)), opt(get(1)));
        // XPN-1 may carry subcomponents (surname & prefix); the first is the surname.
        let family = family.map(|f| f.split(d.sub).next().unwrap_or("").to_string());
        let kana = match get(7) {
            "P" => true,
            "I" => false,
            "" => is_katakana(&format!("{}{}", get(0), get(1))),
            _ => {
                report.issue(
                    Severity::Warning,
                    seg.line,
                    Some(5),
                    "PID-5 name representation neither I (漢字) nor P (カナ); name skipped",
                );
                continue;
            }
        };
        if kana {
            if id.surname_kana.is_none() {
                id.surname_kana = family;
                id.given_kana = given;
            }
        } else if id.surname_kanji.is_none() {
            id.surname_kanji = family;
            id.given_kanji = given;
        }
    }
    let birth = seg.value(7, d);
    if !birth.is_empty() {
        match parse_dtm(&birth) {
            Some(b) => id.birth_date = Some(b),
            None => return Err((seg.line, Some(7), "PID-7 birth date is not a date".into())),
        }
    }
    match sex_of(&seg.value(8, d)) {
        Ok(s) => id.sex = s,
        Err(()) => return Err((seg.line, Some(8), "PID-8 sex is not M, F, O or U".into())),
    }
    // PID-11 XAD: component 5 postcode, 8 full address text (first home address).
    for rep in seg.field(11).split(d.rep) {
        let c = components(rep, d);
        let get = |i: usize| c.get(i).map(|s| s.as_ref()).unwrap_or("");
        if get(6) != "H" && !get(6).is_empty() {
            continue;
        }
        let postal: String = get(4).chars().filter(char::is_ascii_digit).collect();
        if postal.len() == 7 {
            id.postal_code = Some(postal);
        } else if !get(4).is_empty() {
            report.issue(
                Severity::Warning,
                seg.line,
                Some(11),
                "PID-11 postal code is not 7 digits",
            );
        }
        let text = get(7);
        if !text.is_empty() {
            let a = parse_address(text);
            id.prefecture = a.prefecture;
            id.municipality = a.municipality;
            id.town = a.town;
            id.chome = a.chome;
            id.banchi = a.banchi;
        }
        break;
    }
    // PID-33 last update → the date the identifying fields hold for.
    if let Some(on) = parse_dtm(&seg.value(33, d)) {
        id.recorded_on = on;
    }
    // PID-29 death date / PID-30 death indicator: standard HL7 v2.5 fields; whether SS-MIX2 writers
    // fill them is [U].
    let death = seg.value(29, d);
    if death.is_empty() {
        if seg.value(30, d) == "Y" {
            report.issue(
                Severity::Warning,
                seg.line,
                Some(30),
                "PID-30 says deceased but PID-29 has no date",
            );
        }
        return Ok(None);
    }
    match parse_dtm(&death) {
        Some(dd) => Ok(Some(dd)),
        None => Err((seg.line, Some(29), "PID-29 death date is not a date".into())),
    }
}

fn read_in1(seg: &Segment<'_>, d: Delims, id: &mut IdentityRecord, report: &mut ReadReport) {
    let insurer: String = seg.value(3, d).trim().to_string();
    if insurer.is_empty() {
        return;
    }
    if !(insurer.len() == 6 || insurer.len() == 8) || !insurer.bytes().all(|b| b.is_ascii_digit()) {
        report.issue(
            Severity::Warning,
            seg.line,
            Some(3),
            "IN1-3 insurer number is not 6 or 8 digits",
        );
    } else if !insurer_number_is_valid(&insurer) {
        report.issue(
            Severity::Warning,
            seg.line,
            Some(3),
            "IN1-3 insurer number fails its check digit",
        );
    }
    id.insurance_kind = insurance_kind(&insurer);
    id.insurer_number = Some(insurer);
    // IN1-10 記号, IN1-11 番号 (guideline ZI1 sample, ssmix2-to-fhir map). Where 枝番 goes is [U]:
    // Tokumei writes it in IN1-49 (Insured's ID Number); one generator writes 記号~番号~枝番 as
    // repetitions of IN1-10, which is read too, with a warning.
    let f10: Vec<Cow<'_, str>> = seg
        .field(10)
        .split(d.rep)
        .map(|r| unescape(r.split(d.comp).next().unwrap_or(""), d))
        .collect();
    if f10.len() >= 2 && seg.field(11).is_empty() {
        report.issue(
            Severity::Warning,
            seg.line,
            Some(10),
            "IN1-10 holds repetitions (記号~番号~枝番); read in that order",
        );
        id.insured_symbol = f10.first().and_then(|s| opt(s));
        id.insured_number = f10.get(1).and_then(|s| opt(s));
        id.insured_branch = f10.get(2).and_then(|s| opt(s));
        return;
    }
    id.insured_symbol = f10.first().and_then(|s| opt(s));
    id.insured_number = opt(&seg.value(11, d));
    let branch = seg.value(49, d);
    if !branch.is_empty() {
        if branch.len() != 2 || !branch.bytes().all(|b| b.is_ascii_digit()) {
            report.issue(
                Severity::Warning,
                seg.line,
                Some(49),
                "枝番 (IN1-49) is not 2 digits",
            );
        }
        id.insured_branch = opt(&branch);
    }
}

fn code_system_of(label: &str) -> Option<CodeSystem> {
    Some(match label {
        "I10" | "ICD10" => CodeSystem::Icd10,
        "JC10" => CodeSystem::Jlac10,
        "YJ" | "HOT9" | "HOT13" | "HOT7" => CodeSystem::YakkaCode,
        RECEIPT_DISEASE => CodeSystem::ReceiptDisease,
        RECEIPT_DRUG => CodeSystem::ReceiptDrug,
        RECEIPT_PROCEDURE => CodeSystem::ReceiptProcedure,
        LOCAL => CodeSystem::Local,
        _ => return None,
    })
}

/// Local coding-system labels for claims master codes (HL7 reserves `99…` for local tables).
const RECEIPT_DISEASE: &str = "99RDIS";
const RECEIPT_DRUG: &str = "99RDRG";
const RECEIPT_PROCEDURE: &str = "99RPRC";
const LOCAL: &str = "99LOCAL";

fn label_of(cs: CodeSystem) -> &'static str {
    match cs {
        CodeSystem::Icd10 => "I10",
        CodeSystem::Jlac10 => "JC10",
        CodeSystem::YakkaCode => "YJ",
        CodeSystem::ReceiptDisease => RECEIPT_DISEASE,
        CodeSystem::ReceiptDrug => RECEIPT_DRUG,
        CodeSystem::ReceiptProcedure => RECEIPT_PROCEDURE,
        CodeSystem::Local => LOCAL,
    }
}

fn outcome_of(code: &str) -> Option<DiagnosisOutcome> {
    // PRB-14 uses HL7 table 0241 in the guideline sample (N 回復せず); D 死亡, F 治癒; X is a local
    // code for 中止・転医 [U].
    Some(match code {
        "N" => DiagnosisOutcome::Continuing,
        "F" | "R" => DiagnosisOutcome::Cured,
        "D" => DiagnosisOutcome::Died,
        "X" => DiagnosisOutcome::Stopped,
        _ => return None,
    })
}

fn outcome_code(o: DiagnosisOutcome) -> &'static str {
    match o {
        DiagnosisOutcome::Continuing => "N^回復せず^HL70241",
        DiagnosisOutcome::Cured => "F^治癒^HL70241",
        DiagnosisOutcome::Died => "D^死亡^HL70241",
        DiagnosisOutcome::Stopped => "X^中止・転医^99TKM",
    }
}

fn build(p: &Parse<'_>, provider_id: &str, report: &mut ReadReport) -> Result<Message, Fail> {
    let msh = &p.segs[0];
    let mut msg = start_message(msh, p.d, provider_id, report);
    let mut m = MessageReader {
        d: p.d,
        report,
        msg: &mut msg,
        setting: None,
        department: None,
        has_pid: false,
        order_date: None,
        spm_date: None,
        rx: None,
    };
    for seg in &p.segs {
        m.segment(seg)?;
    }
    m.finish(msh)?;
    Ok(msg)
}

/// A message as its MSH segment starts it: type, facility, date and an empty record.
fn start_message(
    msh: &Segment<'_>,
    d: Delims,
    provider_id: &str,
    report: &mut ReadReport,
) -> Message {
    let message_type = format!("{}^{}", msh.comp(9, 1, d), msh.comp(9, 2, d));
    let facility = msh.value(4, d).into_owned();
    let sent_on = parse_dtm(&msh.value(7, d));
    let charset = msh.field(18);
    if !charset.replace(' ', "").contains("ISOIR87") {
        report.issue(
            Severity::Warning,
            1,
            Some(18),
            "MSH-18 does not declare ISO IR87 (JIS X 0208)",
        );
    }
    Message {
        message_type,
        facility,
        sent_on,
        record: SourceRecord {
            identity: emr_identity(provider_id, sent_on.unwrap_or_default()),
            events: EventSet::default(),
        },
        visit: None,
        admit: None,
        discharge: None,
        has_insurance: false,
    }
}

/// A message being read segment by segment into `msg`: besides what the message carries, the class
/// and department of PV1, and the order context (ORC, SPM) that RXE and OBX take their dates from.
struct MessageReader<'m> {
    d: Delims,
    report: &'m mut ReadReport,
    msg: &'m mut Message,
    setting: Option<Setting>,
    department: Option<String>,
    has_pid: bool,
    order_date: Option<NaiveDate>,
    spm_date: Option<NaiveDate>,
    /// The prescription of the last RXE, completed by TQ1 until the next order segment.
    rx: Option<Prescription>,
}

impl MessageReader<'_> {
    /// Reads one segment; only PID can fail the message.
    fn segment(&mut self, seg: &Segment<'_>) -> Result<(), Fail> {
        let d = self.d;
        match seg.name() {
            "PID" if !self.has_pid => {
                self.has_pid = true;
                if let Some(dd) = read_pid(seg, d, &mut self.msg.record.identity, self.report)? {
                    self.msg.record.events.deaths.push(Death {
                        event_id: String::new(),
                        record_id: String::new(),
                        date: dd,
                        recorded_on: None,
                    });
                }
            }
            "IN1" if !self.msg.has_insurance => {
                self.msg.has_insurance = true;
                read_in1(seg, d, &mut self.msg.record.identity, self.report);
            }
            "PV1" => self.pv1(seg),
            "ORC" => {
                self.flush_rx();
                self.order_date = parse_dtm(&seg.value(9, d)).or(self.order_date);
            }
            "RXE" => {
                self.flush_rx();
                self.rx = self.rxe(seg);
            }
            "TQ1" => self.tq1(seg),
            "SPM" => {
                self.spm_date = parse_dtm(&seg.value(17, d));
            }
            "OBX" => {
                self.flush_rx();
                if let Some(l) = self.obx(seg) {
                    self.msg.record.events.lab_results.push(l);
                }
            }
            "PRB" => {
                self.flush_rx();
                if let Some(dg) = self.prb(seg) {
                    self.msg.record.events.diagnoses.push(dg);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends the prescription of the last RXE.
    fn flush_rx(&mut self) {
        if let Some(r) = self.rx.take() {
            self.msg.record.events.prescriptions.push(r);
        }
    }

    /// PV1: the visit (class, number, department, admission and discharge dates).
    fn pv1(&mut self, seg: &Segment<'_>) {
        let d = self.d;
        self.setting = match seg.value(2, d).as_ref() {
            "I" => Some(Setting::Inpatient),
            "O" | "E" => Some(Setting::Outpatient),
            "" => None,
            _ => {
                self.report.issue(
                    Severity::Warning,
                    seg.line,
                    Some(2),
                    "PV1-2 patient class neither I nor O",
                );
                None
            }
        };
        self.msg.visit = opt(&seg.value(19, d));
        self.department = opt(&seg.value(10, d));
        self.msg.admit = parse_dtm(&seg.value(44, d));
        self.msg.discharge = parse_dtm(&seg.value(45, d));
    }

    /// RXE: a drug of the current order; `None` (reported) when it cannot be read.
    fn rxe(&mut self, seg: &Segment<'_>) -> Option<Prescription> {
        let d = self.d;
        let code = seg.comp(2, 1, d);
        let label = seg.comp(2, 3, d);
        if code.is_empty() {
            self.report.issue(
                Severity::Error,
                seg.line,
                Some(2),
                "RXE-2 has no drug code; drug left out",
            );
            return None;
        }
        let Some(cs) = code_system_of(&label) else {
            self.report.issue(
                Severity::Warning,
                seg.line,
                Some(2),
                "RXE-2 coding system not known; drug left out",
            );
            return None;
        };
        let qty = seg.value(3, d);
        let daily_quantity = match qty.parse::<f64>() {
            Ok(q) if q.is_finite() => Some(q),
            _ if qty.is_empty() => None,
            _ => {
                self.report.issue(
                    Severity::Warning,
                    seg.line,
                    Some(3),
                    "RXE-3 amount is not a number",
                );
                None
            }
        };
        let Some(date) = self.order_date.or(self.msg.sent_on) else {
            self.report.issue(
                Severity::Error,
                seg.line,
                None,
                "prescription has no date (ORC-9 or MSH-7); drug left out",
            );
            return None;
        };
        Some(Prescription {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: self.msg.visit.clone(),
            date,
            code_system: cs,
            code: code.into_owned(),
            name: opt(&seg.comp(2, 2, d)),
            daily_quantity,
            unit: opt(&seg.comp(5, 2, d)),
            days: None,
        })
    }

    /// TQ1: the days supplied and the start date of the last RXE's drug.
    fn tq1(&mut self, seg: &Segment<'_>) {
        let d = self.d;
        let Some(r) = self.rx.as_mut() else {
            return;
        };
        let days = seg.comp(6, 1, d);
        let unit = seg.comp(6, 2, d);
        if !days.is_empty() {
            match days.parse::<i32>() {
                Ok(n) if n >= 0 && (unit == "d" || unit.is_empty()) => r.days = Some(n),
                _ => self.report.issue(
                    Severity::Warning,
                    seg.line,
                    Some(6),
                    "TQ1-6 duration is not a number of days",
                ),
            }
        }
        if let Some(start) = parse_dtm(&seg.value(7, d)) {
            r.date = start;
        }
    }

    /// OBX: a result; `None` for orders, patient profile observations and results that cannot be
    /// read (reported).
    fn obx(&mut self, seg: &Segment<'_>) -> Option<LabResult> {
        let d = self.d;
        // Results only: orders (OML-01) carry OBX-11 `O` without a value.
        let status = seg.value(11, d);
        let value = seg.field(5);
        if status == "O" || (value.is_empty() && status.is_empty()) {
            return None;
        }
        if self.msg.message_type.starts_with("ADT") {
            // Height, weight, blood type of the patient profile: not results of a visit.
            return None;
        }
        let code = seg.comp(3, 1, d);
        let label = seg.comp(3, 3, d);
        if label == "JC10" && !(code.len() == 17 && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            self.report.issue(
                Severity::Error,
                seg.line,
                Some(3),
                "OBX-3 JLAC10 code is not 17 characters; result left out",
            );
            return None;
        }
        if code.is_empty() {
            self.report.issue(
                Severity::Error,
                seg.line,
                Some(3),
                "OBX-3 has no item code; result left out",
            );
            return None;
        }
        let cs = code_system_of(&label).unwrap_or(CodeSystem::Jlac10);
        let (value_num, value_text) = self.obx_value(seg)?;
        let Some(date) = parse_dtm(&seg.value(14, d))
            .or(self.spm_date)
            .or(self.msg.sent_on)
        else {
            self.report.issue(
                Severity::Error,
                seg.line,
                Some(14),
                "result has no date (OBX-14, SPM-17 or MSH-7); left out",
            );
            return None;
        };
        Some(LabResult {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: self.msg.visit.clone(),
            date,
            code_system: cs,
            code: code.into_owned(),
            name: opt(&seg.comp(3, 2, d)),
            value_num,
            value_text,
            unit: opt(&seg.comp(6, 1, d)),
        })
    }

    /// OBX-5 as a number or a text, by its value type OBX-2; `None` (reported) when a numeric value
    /// is not a number.
    fn obx_value(&mut self, seg: &Segment<'_>) -> Option<(Option<f64>, Option<String>)> {
        let d = self.d;
        let vt = seg.value(2, d);
        Some(match vt.as_ref() {
            "NM" => match seg.value(5, d).trim().parse::<f64>() {
                Ok(x) if x.is_finite() => (Some(x), None),
                _ => {
                    self.report.issue(
                        Severity::Error,
                        seg.line,
                        Some(5),
                        "OBX-5 numeric value is not a number; result left out",
                    );
                    return None;
                }
            },
            "CWE" | "CE" | "CNE" => (None, opt(&seg.comp(5, 1, d))),
            _ => (None, opt(&seg.value(5, d))),
        })
    }

    /// PRB: a diagnosis; `None` (reported) when it cannot be read.
    fn prb(&mut self, seg: &Segment<'_>) -> Option<Diagnosis> {
        let d = self.d;
        let code = seg.comp(3, 1, d);
        let Some(cs) = code_system_of(&seg.comp(3, 3, d)) else {
            self.report.issue(
                Severity::Warning,
                seg.line,
                Some(3),
                "PRB-3 coding system not known (e.g. MEDIS 病名管理番号); diagnosis left out",
            );
            return None;
        };
        if code.is_empty() {
            self.report.issue(
                Severity::Error,
                seg.line,
                Some(3),
                "PRB-3 has no disease code; diagnosis left out",
            );
            return None;
        }
        let date = parse_dtm(&seg.value(7, d))
            .or_else(|| parse_dtm(&seg.value(16, d)))
            .or_else(|| parse_dtm(&seg.value(2, d)));
        let Some(date) = date else {
            self.report.issue(
                Severity::Error,
                seg.line,
                Some(7),
                "PRB-7 established date is not a date; diagnosis left out",
            );
            return None;
        };
        let icd10 = (seg.comp(10, 3, d) == "I10")
            .then(|| opt(&seg.comp(10, 1, d)))
            .flatten();
        let icd10 = crate::diagnosis_icd10(cs, &code, icd10);
        let outcome_raw = seg.comp(14, 1, d);
        let outcome = outcome_of(&outcome_raw);
        if outcome.is_none() && !outcome_raw.is_empty() {
            self.report.issue(
                Severity::Warning,
                seg.line,
                Some(14),
                "PRB-14 outcome code not known",
            );
        }
        Some(Diagnosis {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: None,
            date,
            code_system: cs,
            code: code.into_owned(),
            icd10,
            name: opt(&seg.comp(3, 2, d)),
            suspected: seg.value(13, d) == "P",
            outcome,
            outcome_date: parse_dtm(&seg.value(9, d)),
        })
    }

    /// Ends the message: it needs a PID; visit messages carry their encounter.
    fn finish(&mut self, msh: &Segment<'_>) -> Result<(), Fail> {
        self.flush_rx();
        if !self.has_pid {
            return Err((1, None, "message has no PID segment".into()));
        }
        if self.msg.record.identity.local_patient_id.is_none() {
            self.report
                .issue(Severity::Warning, 1, Some(3), "PID-3 patient id is empty");
        }
        // Encounters: outpatient reception (A04) and admission (A01) open one; discharge (A03) closes
        // the admission with the same visit number (see read_patient).
        let event = msh.comp(9, 2, self.d);
        if matches!(event.as_ref(), "A04" | "A01" | "A03") {
            self.visit_encounter(event == "A04");
        }
        Ok(())
    }

    /// The encounter of a visit message: outpatient reception (`reception`) or an admission, from
    /// PV1-44 (else MSH-7) to the discharge date.
    fn visit_encounter(&mut self, reception: bool) {
        let Some(start) = self.msg.admit.or(self.msg.sent_on) else {
            self.report.issue(
                Severity::Error,
                1,
                Some(44),
                "visit message without a date (PV1-44 or MSH-7)",
            );
            return;
        };
        let setting = if reception {
            self.setting.unwrap_or(Setting::Outpatient)
        } else {
            Setting::Inpatient
        };
        let end = if setting == Setting::Inpatient {
            self.msg.discharge.unwrap_or(start)
        } else {
            start
        };
        self.msg.record.events.encounters.push(Encounter {
            event_id: String::new(),
            record_id: String::new(),
            facility_code: self.msg.facility.clone(),
            setting,
            department: self.department.take(),
            start_date: start,
            end_date: end.max(start),
        });
    }
}

/// An empty identity of an SS-MIX2 message, to be filled from PID and IN1.
fn emr_identity(provider_id: &str, recorded_on: NaiveDate) -> IdentityRecord {
    IdentityRecord {
        record_id: String::new(),
        provider_id: provider_id.to_string(),
        source_kind: SourceKind::Emr,
        local_patient_id: None,
        surname_kanji: None,
        given_kanji: None,
        surname_kana: None,
        given_kana: None,
        birth_date: None,
        sex: None,
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
        recorded_on,
    }
}

/// Replaces visit numbers in `encounter_id` by the index of the visit in `visits` (as a string);
/// unknown visits become `None`.
fn renumber(ev: &mut EventSet, visits: &[String]) {
    let map = |e: &mut Option<String>| {
        *e = e
            .as_ref()
            .and_then(|v| visits.iter().position(|x| x == v))
            .map(|i| i.to_string());
    };
    ev.prescriptions
        .iter_mut()
        .for_each(|p| map(&mut p.encounter_id));
    ev.lab_results
        .iter_mut()
        .for_each(|p| map(&mut p.encounter_id));
    ev.diagnoses
        .iter_mut()
        .for_each(|p| map(&mut p.encounter_id));
    ev.procedures
        .iter_mut()
        .for_each(|p| map(&mut p.encounter_id));
}

// ---------------------------------------------------------------------------------------------
// Reader: one patient directory

/// Parts of an SS-MIX2 file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    /// Patient id.
    pub patient_id: String,
    /// 診療日 (`None` for `-`).
    pub date: Option<NaiveDate>,
    /// データ種別, e.g. `ADT-00`.
    pub data_type: String,
    /// オーダNo.
    pub order: String,
    /// 発生日時 (17 digits).
    pub occurred: String,
    /// 診療科コード (`-` when none).
    pub department: String,
    /// コンディションフラグ: `1` valid, `0` cancelled or superseded, `2` past history.
    pub condition: String,
}

impl FileName {
    /// Parses a file name; `None` if it does not have the seven parts.
    pub fn parse(name: &str) -> Option<FileName> {
        let parts: Vec<&str> = name.split('_').collect();
        if parts.len() != 7 || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let date = match parts[1] {
            "-" => None,
            s => Some(parse_dtm(s).filter(|_| s.len() == 8)?),
        };
        Some(FileName {
            patient_id: parts[0].to_string(),
            date,
            data_type: parts[2].to_string(),
            order: parts[3].to_string(),
            occurred: parts[4].to_string(),
            department: parts[5].to_string(),
            condition: parts[6].to_string(),
        })
    }

    /// The file name.
    pub fn render(&self) -> String {
        format!(
            "{}_{}_{}_{}_{}_{}_{}",
            self.patient_id,
            self.date
                .map(|d| d.format("%Y%m%d").to_string())
                .unwrap_or_else(|| "-".into()),
            self.data_type,
            self.order,
            self.occurred,
            self.department,
            self.condition
        )
    }

    /// The path of the file relative to the storage root.
    pub fn relative_path(&self) -> String {
        let pid = &self.patient_id;
        // The hash folders are the first three and next three characters of the id; ids shorter than
        // six characters are padded with `0` for the folders only [U].
        let padded = format!("{pid:0>6}");
        let date = self
            .date
            .map(|d| d.format("%Y%m%d").to_string())
            .unwrap_or_else(|| "-".into());
        format!(
            "{}/{}/{}/{}/{}/{}",
            padded.get(0..3).unwrap_or("000"),
            padded.get(3..6).unwrap_or("000"),
            pid,
            date,
            self.data_type,
            self.render()
        )
    }
}

/// One message file of a patient directory.
#[derive(Debug, Clone)]
pub struct PatientFile {
    /// Path relative to the storage root (for reports).
    pub path: String,
    /// Bytes.
    pub bytes: Vec<u8>,
}

/// What [`read_patient`] made of one patient directory.
#[derive(Debug, Clone, Default)]
pub struct PatientReport {
    /// The merged record, if at least one message could be read.
    pub record: Option<SourceRecord>,
    /// Per file: its path and what the message reader reported.
    pub files: Vec<(String, ReadReport)>,
    /// Files not ingested because their condition flag is `0` or `2` (kept for audit).
    pub not_current: usize,
}

impl PatientReport {
    /// Warnings over all files.
    pub fn warnings(&self) -> usize {
        self.files.iter().map(|(_, r)| r.warnings()).sum()
    }

    /// Errors over all files.
    pub fn errors(&self) -> usize {
        self.files.iter().map(|(_, r)| r.errors()).sum()
    }
}

/// Reads the message files of one patient directory and merges them into one record: identity from
/// the newest `ADT-00` (else the newest message with a PID), encounters from ADT-12/22/52 paired by
/// visit number, events from every message, in file order. Files are sorted by path first; file names
/// are an index only (PID-3 is read from the message and checked against them).
pub fn read_patient(files: &[PatientFile], provider_id: &str) -> PatientReport {
    let mut out = PatientReport::default();
    let mut sorted: Vec<&PatientFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut merged = PatientMerge::default();
    for f in sorted {
        let mut report = ReadReport::default();
        let file_name = f.path.rsplit('/').next().unwrap_or(&f.path);
        let name = FileName::parse(file_name);
        if name.is_none() {
            report.issue(
                Severity::Warning,
                1,
                None,
                "file name does not follow the SS-MIX2 naming rule",
            );
        }
        if let Some(n) = &name {
            if n.condition != "1" {
                out.not_current += 1;
                report.issue(
                    Severity::Warning,
                    1,
                    None,
                    format!(
                        "condition flag {}: not current, kept for audit, not ingested",
                        if n.condition == "0" { "0" } else { "2" }
                    ),
                );
                out.files.push((f.path.clone(), report));
                continue;
            }
        }
        if let Some(mut m) = read_message(&f.bytes, provider_id, &mut report) {
            merged.add(&mut m, name.as_ref(), &mut report);
        }
        out.files.push((f.path.clone(), report));
    }
    out.record = merged.finish();
    out
}

/// The messages of one patient directory merged so far.
#[derive(Default)]
struct PatientMerge {
    /// The newest identity of a message other than ADT-00, with its 発生日時.
    identity: Option<(String, IdentityRecord)>,
    /// The newest ADT-00 identity, with its 発生日時 and whether it had IN1.
    adt00: Option<(String, IdentityRecord, bool)>,
    events: EventSet,
    /// The visit number of each encounter of `events`.
    visits: Vec<String>,
    /// Admissions by visit number: the index of their encounter.
    stays: BTreeMap<String, usize>,
}

impl PatientMerge {
    /// Merges a message read from a file named `name` (its events are taken out of it).
    fn add(&mut self, m: &mut Message, name: Option<&FileName>, report: &mut ReadReport) {
        if let (Some(n), Some(pid)) = (name, &m.record.identity.local_patient_id) {
            if &n.patient_id != pid {
                report.issue(
                    Severity::Warning,
                    1,
                    Some(3),
                    "PID-3 differs from the patient id of the file name",
                );
            }
        }
        let dtype = name.map(|n| n.data_type.as_str()).unwrap_or("");
        let key = name.map(|n| n.occurred.clone()).unwrap_or_default();
        if dtype == "ADT-00" || (dtype.is_empty() && m.message_type == "ADT^A08") {
            let newer = self.adt00.as_ref().is_none_or(|(k, _, _)| key >= *k);
            if newer {
                self.adt00 = Some((key.clone(), m.record.identity.clone(), m.has_insurance));
            }
            self.events.deaths = m.record.events.deaths.clone();
        } else if self.identity.as_ref().is_none_or(|(k, _)| key >= *k) {
            self.identity = Some((key, m.record.identity.clone()));
        }
        let mut ev = std::mem::take(&mut m.record.events);
        if let Some(enc) = ev.encounters.pop() {
            self.add_encounter(m, enc);
        }
        self.events.diagnoses.append(&mut ev.diagnoses);
        self.events.prescriptions.append(&mut ev.prescriptions);
        self.events.procedures.append(&mut ev.procedures);
        self.events.lab_results.append(&mut ev.lab_results);
    }

    /// The encounter of a visit message: an admission and its discharge share the visit number.
    fn add_encounter(&mut self, m: &Message, enc: Encounter) {
        let event = m.message_type.rsplit('^').next().unwrap_or("");
        let v = m.visit.clone().unwrap_or_default();
        match (event, self.stays.get(&v)) {
            ("A03", Some(&i)) if !v.is_empty() => {
                if let Some(e) = self.events.encounters.get_mut(i) {
                    e.end_date = m.discharge.unwrap_or(enc.end_date).max(e.start_date);
                }
            }
            _ => {
                if event == "A01" && !v.is_empty() {
                    self.stays.insert(v.clone(), self.events.encounters.len());
                }
                self.visits.push(v);
                self.events.encounters.push(enc);
            }
        }
    }

    /// The merged record, if some message had a PID: encounters in visit order, events referring to
    /// them by index, identity from the newest ADT-00 (with the insurance of other messages when it
    /// has no IN1).
    fn finish(mut self) -> Option<SourceRecord> {
        // Visit order: the writer numbers visits; encounters are listed by visit number where numeric.
        let visits = &self.visits;
        let mut order: Vec<usize> = (0..visits.len()).collect();
        order.sort_by_key(|&i| (visits[i].parse::<u64>().unwrap_or(u64::MAX), i));
        let encounters = std::mem::take(&mut self.events.encounters);
        let mut slots: Vec<Option<Encounter>> = encounters.into_iter().map(Some).collect();
        self.events.encounters = order
            .iter()
            .filter_map(|&i| slots.get_mut(i).and_then(Option::take))
            .collect();
        let visits: Vec<String> = order.iter().map(|&i| visits[i].clone()).collect();
        renumber(&mut self.events, &visits);
        let id = match (self.adt00, self.identity) {
            (Some((_, mut a, has_in1)), other) => {
                // Insurance only in visit messages: take it from there.
                if !has_in1 {
                    if let Some((_, o)) = other {
                        a.insurance_kind = o.insurance_kind;
                        a.insurer_number = o.insurer_number;
                        a.insured_symbol = o.insured_symbol;
                        a.insured_number = o.insured_number;
                        a.insured_branch = o.insured_branch;
                    }
                }
                Some(a)
            }
            (None, Some((_, o))) => Some(o),
            (None, None) => None,
        };
        let events = self.events;
        id.map(|identity| SourceRecord { identity, events })
    }
}

/// The patient folder of a path relative to the storage root: its first three parts.
pub fn patient_folder(path: &str) -> &str {
    match path.match_indices('/').nth(2) {
        Some((i, _)) => &path[..i],
        None => path,
    }
}

/// Reads files of a storage tree given as `(path relative to the root, bytes)` in any order: grouped
/// by patient folder, each group read with [`read_patient`], in folder order.
pub fn read_tree(files: Vec<PatientFile>, provider_id: &str) -> Vec<PatientReport> {
    let mut groups: BTreeMap<String, Vec<PatientFile>> = BTreeMap::new();
    for f in files {
        groups
            .entry(patient_folder(&f.path).to_string())
            .or_default()
            .push(f);
    }
    groups
        .into_values()
        .map(|g| read_patient(&g, provider_id))
        .collect()
}

/// Reads a storage tree packed in a ZIP archive (the archive root is the storage root).
pub fn read_zip<R: std::io::Read + std::io::Seek>(
    reader: R,
    provider_id: &str,
) -> Result<Vec<PatientReport>, crate::archive::ArchiveError> {
    let mut files = Vec::new();
    crate::archive::for_each_entry(reader, |name, bytes| {
        files.push(PatientFile {
            path: name.trim_start_matches('/').to_string(),
            bytes,
        })
    })?;
    Ok(read_tree(files, provider_id))
}

/// Reads a whole storage tree: every patient directory (three levels below `root`) with
/// [`read_patient`]. Directories and files are visited in sorted order.
pub fn read_storage(
    root: &std::path::Path,
    provider_id: &str,
) -> std::io::Result<Vec<PatientReport>> {
    let mut out = Vec::new();
    for a in sorted_dirs(root)? {
        for b in sorted_dirs(&a)? {
            for patient in sorted_dirs(&b)? {
                let mut files = Vec::new();
                collect_files(root, &patient, &mut files, 0)?;
                out.push(read_patient(&files, provider_id));
            }
        }
    }
    Ok(out)
}

fn sorted_dirs(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut v: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    Ok(v)
}

fn collect_files(
    root: &std::path::Path,
    dir: &std::path::Path,
    out: &mut Vec<PatientFile>,
    depth: usize,
) -> std::io::Result<()> {
    if depth > 4 {
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_files(root, &p, out, depth + 1)?;
        } else if p.is_file() {
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            out.push(PatientFile {
                path: rel,
                bytes: std::fs::read(&p)?,
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writer

/// Converts half-width katakana to full-width (joining ﾞ and ﾟ with the preceding kana), as
/// ISO-2022-JP cannot carry half-width kana.
pub fn kana_to_full_width(s: &str) -> String {
    const TABLE: &str = "。「」、・ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン゛゜";
    let table: Vec<char> = TABLE.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{FF9E}' | '\u{FF9F}' => {
                let voiced = c == '\u{FF9E}';
                let prev = out.last().copied();
                let joined = prev.and_then(|p| {
                    let n = p as u32;
                    // カ…チ are odd code points (ガ = カ + 1), ツ テ ト even after ッ.
                    let ka_to = ((0x30AB..=0x30C1).contains(&n) && n % 2 == 1)
                        || matches!(n, 0x30C4 | 0x30C6 | 0x30C8);
                    let ha = (0x30CF..=0x30DB).contains(&n) && (n - 0x30CF).is_multiple_of(3);
                    if voiced && (ka_to || ha) {
                        char::from_u32(n + 1)
                    } else if voiced && p == 'ウ' {
                        Some('ヴ')
                    } else if !voiced && ha {
                        char::from_u32(n + 2)
                    } else {
                        None
                    }
                });
                match joined {
                    Some(j) => {
                        out.pop();
                        out.push(j);
                    }
                    None => out.push(if voiced { '゛' } else { '゜' }),
                }
            }
            '\u{FF61}'..='\u{FF9D}' => {
                out.push(table[(c as u32 - 0xFF61) as usize]);
            }
            c => out.push(c),
        }
    }
    out.into_iter().collect()
}

/// Whether a character can be carried by ISO-2022-JP as SS-MIX2 uses it (ASCII and JIS X 0208).
pub fn representable(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_control();
    }
    if ('\u{FF61}'..='\u{FF9F}').contains(&c) {
        return false;
    }
    let mut buf = [0u8; 4];
    let (bytes, _, unmappable) = encoding_rs::ISO_2022_JP.encode(c.encode_utf8(&mut buf));
    // JIS X 0208 only: ESC $ B + 2 bytes + ESC ( B, in rows 1-8 and 16-84 (the WHATWG table also
    // maps the NEC row 13 and the IBM extensions, which JIS X 0208 does not have).
    !unmappable
        && bytes.len() == 8
        && bytes.starts_with(b"\x1b$B")
        && matches!(bytes[3], 0x21..=0x28 | 0x30..=0x74)
}

/// The text as SS-MIX2 carries it: half-width kana made full-width, characters outside JIS X 0208
/// substituted as claims vendors do (髙 → 高, else 〓), and the full-width hyphen-minus (U+FF0D),
/// which strict ISO-2022-JP cannot carry, replaced by the minus sign (U+2212).
pub fn jis_text(s: &str) -> String {
    let s = kana_to_full_width(s);
    let s: String = s
        .chars()
        .map(|c| if c == '\u{FF0D}' { '\u{2212}' } else { c })
        .collect();
    if s.chars().all(representable) {
        return s;
    }
    let (sub, _) = substitute(&s);
    sub.chars()
        .map(|c| if representable(c) { c } else { '〓' })
        .collect()
}

fn jis_opt(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| jis_text(v))
        .filter(|v| !v.trim().is_empty())
}

fn dtm(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// A message being written: segments joined with CR, then encoded.
#[derive(Default)]
struct Out {
    text: String,
}

impl Out {
    fn seg(&mut self, fields: &[Cow<'_, str>]) {
        // Trailing empty fields are not written.
        let n = fields
            .iter()
            .rposition(|f| !f.is_empty())
            .map(|i| i + 1)
            .unwrap_or(1);
        for (i, f) in fields[..n].iter().enumerate() {
            if i > 0 {
                self.text.push('|');
            }
            self.text.push_str(f);
        }
        self.text.push('\r');
    }

    fn bytes(self) -> Result<Vec<u8>, FormatError> {
        let (b, _, unmappable) = encoding_rs::ISO_2022_JP.encode(&self.text);
        if unmappable {
            return Err(FormatError::Unrepresentable {
                what: "SS-MIX2 message",
                reason: "a character outside ISO-2022-JP".into(),
            });
        }
        Ok(b.into_owned())
    }
}

/// Builds a segment from `(field number, value)` pairs; values must already be escaped.
fn seg_of(name: &str, fields: Vec<(usize, String)>) -> Vec<Cow<'static, str>> {
    let n = fields.iter().map(|(i, _)| *i).max().unwrap_or(0);
    let mut v: Vec<Cow<'static, str>> = vec![Cow::Borrowed(""); n + 1];
    v[0] = Cow::Owned(name.to_string());
    for (i, f) in fields {
        v[i] = Cow::Owned(f);
    }
    v
}

fn e(s: &str) -> String {
    escape(s).into_owned()
}

fn e_opt(s: &Option<String>) -> String {
    s.as_deref().map(e).unwrap_or_default()
}

struct Writer<'a> {
    pid: String,
    facility: String,
    id: &'a IdentityRecord,
    files: Vec<(String, Vec<u8>)>,
    control: u64,
}

impl Writer<'_> {
    fn msh(&mut self, out: &mut Out, on: NaiveDate, msg_type: &str) {
        self.control += 1;
        out.text.push_str(&format!(
            "MSH|^~\\&|TOKUMEI|{}|GW|RCV|{}000000||{}|{:014}|P|2.5||||||~ISO IR87||ISO 2022-1994|{}\r",
            e(&self.facility),
            dtm(on),
            msg_type,
            self.control,
            PROFILE
        ));
    }

    fn pid(&self, out: &mut Out, full: bool, death: Option<NaiveDate>) {
        let id = self.id;
        let mut names = Vec::new();
        if let Some(s) = &id.surname_kanji {
            names.push(format!(
                "{}^{}^^^^^L^I",
                e(&jis_text(s)),
                e(&jis_opt(&id.given_kanji).unwrap_or_default())
            ));
        }
        if let Some(s) = &id.surname_kana {
            names.push(format!(
                "{}^{}^^^^^L^P",
                e(&jis_text(s)),
                e(&jis_opt(&id.given_kana).unwrap_or_default())
            ));
        }
        let mut f = vec![
            (1, "0001".to_string()),
            (3, format!("{}^^^^PI", e(&self.pid))),
            (5, names.join("~")),
            (7, id.birth_date.map(dtm).unwrap_or_default()),
            (8, id.sex.map(|s| s.code().to_string()).unwrap_or_default()),
        ];
        if full {
            let postal = id
                .postal_code
                .as_ref()
                .filter(|p| p.len() == 7 && p.is_ascii())
                .map(|p| format!("{}-{}", &p[..3], &p[3..]))
                .unwrap_or_default();
            let text = jis_text(&format_address(id));
            if !postal.is_empty() || !text.is_empty() {
                f.push((11, format!("^^^^{}^JPN^H^{}", postal, e(&text))));
            }
            if let Some(dd) = death {
                f.push((29, dtm(dd)));
                f.push((30, "Y".into()));
            }
            f.push((33, format!("{}000000", dtm(id.recorded_on))));
        }
        out.seg(&seg_of("PID", f));
    }

    fn pv1(&self, out: &mut Out, enc: Option<(usize, &Encounter)>, discharge: bool) {
        let mut f = vec![(1, "0001".to_string())];
        match enc {
            Some((i, en)) => {
                let class = if en.setting == Setting::Inpatient {
                    "I"
                } else {
                    "O"
                };
                f.push((2, class.into()));
                f.push((10, e_opt(&jis_opt(&en.department))));
                f.push((19, i.to_string()));
                f.push((44, format!("{}0900", dtm(en.start_date))));
                if discharge {
                    f.push((45, format!("{}1000", dtm(en.end_date))));
                }
            }
            None => f.push((2, "O".into())),
        }
        out.seg(&seg_of("PV1", f));
    }

    fn push_file(
        &mut self,
        date: Option<NaiveDate>,
        data_type: &str,
        order: String,
        occurred: NaiveDate,
        out: Out,
    ) -> Result<(), FormatError> {
        let name = FileName {
            patient_id: self.pid.clone(),
            date,
            data_type: data_type.into(),
            order,
            occurred: format!("{}{:09}", dtm(occurred), self.control % 1_000_000_000),
            department: "-".into(),
            condition: "1".into(),
        };
        self.files.push((name.relative_path(), out.bytes()?));
        Ok(())
    }
}

/// Sort key of a prescription or result group: date, then visit index.
fn group_key(date: NaiveDate, enc: &Option<String>) -> (NaiveDate, u64) {
    (
        date,
        enc.as_deref()
            .and_then(|e| e.parse::<u64>().ok())
            .unwrap_or(u64::MAX),
    )
}

/// Runs of consecutive items with the same key (items are in key order after canonicalization).
fn groups<T, K: PartialEq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<(K, Vec<&T>)> {
    let mut out: Vec<(K, Vec<&T>)> = Vec::new();
    for it in items {
        let k = key(it);
        match out.last_mut() {
            Some((gk, v)) if *gk == k => v.push(it),
            _ => out.push((k, vec![it])),
        }
    }
    out
}

/// The encounter an event refers to (by its index), with that index.
fn visit<'e>(encounters: &'e [Encounter], id: &Option<String>) -> Option<(usize, &'e Encounter)> {
    id.as_deref()
        .and_then(|e| e.parse::<usize>().ok())
        .and_then(|i| encounters.get(i).map(|en| (i, en)))
}

/// Writes a record as the message files of one patient directory: `(path relative to the storage
/// root, bytes)`. The record must have a local patient id (PID-3); it is canonicalized first.
pub fn write_patient(r: &SourceRecord) -> Result<Vec<(String, Vec<u8>)>, FormatError> {
    let c = canonicalize(r);
    let id = &c.identity;
    let Some(pid) = id
        .local_patient_id
        .clone()
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    else {
        return Err(FormatError::Unrepresentable {
            what: "PID-3",
            reason: "an SS-MIX2 patient needs an alphanumeric local patient id".into(),
        });
    };
    let ev = &c.events;
    let facility = ev
        .encounters
        .first()
        .map(|e| e.facility_code.clone())
        .unwrap_or_else(|| id.provider_id.clone());
    let mut w = Writer {
        pid,
        facility,
        id,
        files: Vec::new(),
        control: 0,
    };
    w.adt00(ev.deaths.first().map(|d| d.date))?;
    w.ppr01(&ev.diagnoses)?;
    w.visits(&ev.encounters)?;
    let mut order_no = 0u64;
    w.omp01(ev, &mut order_no)?;
    w.oml11(ev, &mut order_no)?;
    Ok(w.files)
}

impl Writer<'_> {
    /// ADT-00: the patient profile with insurance.
    fn adt00(&mut self, death: Option<NaiveDate>) -> Result<(), FormatError> {
        let id = self.id;
        let mut out = Out::default();
        self.msh(&mut out, id.recorded_on, "ADT^A08^ADT_A01");
        out.seg(&seg_of(
            "EVN",
            vec![(2, format!("{}000000", dtm(id.recorded_on)))],
        ));
        self.pid(&mut out, true, death);
        self.pv1(&mut out, None, false);
        if let Some(ins) = &id.insurer_number {
            out.seg(&seg_of(
                "IN1",
                vec![
                    (1, "1".into()),
                    (3, e(ins)),
                    (10, e_opt(&jis_opt(&id.insured_symbol))),
                    (11, e_opt(&jis_opt(&id.insured_number))),
                    (49, e_opt(&id.insured_branch)),
                ],
            ));
        }
        self.push_file(None, "ADT-00", NO_ORDER.into(), id.recorded_on, out)
    }

    /// PPR-01: the diagnoses, one PRB each (no file without diagnoses).
    fn ppr01(&mut self, diagnoses: &[Diagnosis]) -> Result<(), FormatError> {
        if diagnoses.is_empty() {
            return Ok(());
        }
        let on = diagnoses
            .iter()
            .map(|d| d.date)
            .max()
            .unwrap_or(self.id.recorded_on);
        let mut out = Out::default();
        self.msh(&mut out, on, "PPR^ZD1^PPR_ZD1");
        self.pid(&mut out, false, None);
        for (i, dg) in diagnoses.iter().enumerate() {
            out.seg(&prb_segment(i, dg));
        }
        self.push_file(None, "PPR-01", NO_ORDER.into(), on, out)
    }

    /// Encounters: ADT-12 (outpatient), ADT-22 + ADT-52 (inpatient).
    fn visits(&mut self, encounters: &[Encounter]) -> Result<(), FormatError> {
        for (i, en) in encounters.iter().enumerate() {
            let kinds: &[(&str, &str, bool)] = if en.setting == Setting::Inpatient {
                &[
                    ("ADT-22", "ADT^A01^ADT_A01", false),
                    ("ADT-52", "ADT^A03^ADT_A03", true),
                ]
            } else {
                &[("ADT-12", "ADT^A04^ADT_A01", false)]
            };
            for &(dtype, mtype, discharge) in kinds {
                let on = if discharge {
                    en.end_date
                } else {
                    en.start_date
                };
                let mut out = Out::default();
                self.msh(&mut out, on, mtype);
                self.pid(&mut out, false, None);
                self.pv1(&mut out, Some((i, en)), discharge);
                self.push_file(Some(on), dtype, NO_ORDER.into(), on, out)?;
            }
        }
        Ok(())
    }

    /// OMP-01: one prescription order per (date, visit), numbered from `order_no`.
    fn omp01(&mut self, ev: &EventSet, order_no: &mut u64) -> Result<(), FormatError> {
        for ((date, _), ps) in groups(&ev.prescriptions, |p| group_key(p.date, &p.encounter_id)) {
            *order_no += 1;
            let order = format!("{order_no:015}");
            let mut out = Out::default();
            self.msh(&mut out, date, "RDE^O11^RDE_O11");
            self.pid(&mut out, false, None);
            self.pv1(&mut out, visit(&ev.encounters, &ps[0].encounter_id), false);
            for p in ps {
                prescription_segments(&mut out, &order, p);
            }
            self.push_file(Some(date), "OMP-01", order, date, out)?;
        }
        Ok(())
    }

    /// OML-11: one result report per (date, visit), numbered on from `order_no`.
    fn oml11(&mut self, ev: &EventSet, order_no: &mut u64) -> Result<(), FormatError> {
        for ((date, _), ls) in groups(&ev.lab_results, |l| group_key(l.date, &l.encounter_id)) {
            *order_no += 1;
            let order = format!("{order_no:015}");
            let mut out = Out::default();
            self.msh(&mut out, date, "OUL^R22^OUL_R22");
            self.pid(&mut out, false, None);
            self.pv1(&mut out, visit(&ev.encounters, &ls[0].encounter_id), false);
            out.seg(&seg_of(
                "SPM",
                vec![(1, "1".into()), (17, format!("{}0900", dtm(date)))],
            ));
            out.seg(&seg_of(
                "OBR",
                vec![(1, "1".into()), (2, order.clone()), (7, dtm(date))],
            ));
            for (i, l) in ls.iter().enumerate() {
                out.seg(&obx_segment(i, l));
            }
            self.push_file(Some(date), "OML-11", order, date, out)?;
        }
        Ok(())
    }
}

/// The PRB segment of the `i`-th diagnosis.
fn prb_segment(i: usize, dg: &Diagnosis) -> Vec<Cow<'static, str>> {
    let mut f = vec![
        (1, "AD".to_string()),
        (2, dtm(dg.date)),
        (
            3,
            format!(
                "{}^{}^{}",
                e(&dg.code),
                e_opt(&dg.name),
                label_of(dg.code_system)
            ),
        ),
        (4, format!("{:015}", i + 1)),
        (7, dtm(dg.date)),
        (13, if dg.suspected { "P" } else { "C" }.into()),
    ];
    if let Some(od) = dg.outcome_date {
        f.push((9, dtm(od)));
    }
    if let Some(icd) = &dg.icd10 {
        f.push((10, format!("{}^^I10", e(icd))));
    }
    if let Some(o) = dg.outcome {
        f.push((14, outcome_code(o).into()));
    }
    seg_of("PRB", f)
}

/// The ORC, RXE and TQ1 segments of one drug of order `order`.
fn prescription_segments(out: &mut Out, order: &str, p: &Prescription) {
    out.seg(&seg_of(
        "ORC",
        vec![
            (1, "NW".into()),
            (2, order.to_string()),
            (9, format!("{}090000", dtm(p.date))),
        ],
    ));
    out.seg(&seg_of(
        "RXE",
        vec![
            (
                2,
                format!(
                    "{}^{}^{}",
                    e(&p.code),
                    e_opt(&p.name),
                    label_of(p.code_system)
                ),
            ),
            (
                3,
                p.daily_quantity.map(|q| q.to_string()).unwrap_or_default(),
            ),
            (5, format!("^{}", e_opt(&p.unit))),
        ],
    ));
    // RXE-3 carries the daily amount (1日量) and TQ1-6 the days supplied [U: JAHIS 処方
    // describes per-dose amounts with TQ1 用法 codes].
    out.seg(&seg_of(
        "TQ1",
        vec![
            (1, "1".into()),
            (6, p.days.map(|n| format!("{n}^d")).unwrap_or_default()),
            (7, dtm(p.date)),
        ],
    ));
}

/// The OBX segment of the `i`-th result of a report.
fn obx_segment(i: usize, l: &LabResult) -> Vec<Cow<'static, str>> {
    let (vt, value) = match (&l.value_num, &l.value_text) {
        (Some(x), _) => ("NM", x.to_string()),
        (None, Some(t)) => ("ST", e(t)),
        (None, None) => ("ST", String::new()),
    };
    seg_of(
        "OBX",
        vec![
            (1, (i + 1).to_string()),
            (2, vt.into()),
            (
                3,
                format!(
                    "{}^{}^{}",
                    e(&l.code),
                    e_opt(&l.name),
                    label_of(l.code_system)
                ),
            ),
            (5, value),
            (6, e_opt(&l.unit)),
            (11, "F".into()),
            (14, dtm(l.date)),
        ],
    )
}

/// The canonical record as SS-MIX2 carries it: what `read_patient(write_patient(r))` gives back.
///
/// Text is restricted to JIS X 0208 ([`jis_text`]); the municipality code is not carried; the
/// insurance kind is derived from the insurer number; encounters keep their order, take the facility
/// of the first, and checkups become outpatient visits; diagnoses are not linked to visits, and one
/// coded with a 傷病名コード and no ICD-10 takes the master's;
/// prescriptions and results are ordered by (date, visit) as the files are; procedures are not
/// written (no OMG messages yet); one death without its recording date; values of lab results are
/// either numeric or text; ids are empty.
pub fn canonicalize(r: &SourceRecord) -> SourceRecord {
    let ev = &r.events;
    let facility = ev
        .encounters
        .first()
        .map(|e| e.facility_code.clone())
        .unwrap_or_default();
    let mut out = EventSet::default();
    for en in &ev.encounters {
        out.encounters.push(canonical_encounter(en, &facility));
    }
    let n_enc = out.encounters.len();
    let enc_ref = |e: &Option<String>| {
        e.as_deref()
            .and_then(|x| x.parse::<usize>().ok())
            .filter(|&i| i < n_enc)
            .map(|i| i.to_string())
    };
    for d in &ev.diagnoses {
        let code = jis_text(&d.code);
        out.diagnoses.push(Diagnosis {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: None,
            date: d.date,
            code_system: d.code_system,
            icd10: crate::diagnosis_icd10(d.code_system, &code, jis_opt(&d.icd10)),
            code,
            name: jis_opt(&d.name),
            suspected: d.suspected,
            outcome: d.outcome,
            outcome_date: d.outcome_date,
        });
    }
    out.diagnoses.retain(|d| !d.code.trim().is_empty());
    out.prescriptions = canonical_prescriptions(&ev.prescriptions, enc_ref);
    out.lab_results = canonical_lab_results(&ev.lab_results, enc_ref);
    if let Some(dd) = ev.deaths.first() {
        out.deaths.push(Death {
            event_id: String::new(),
            record_id: String::new(),
            date: dd.date,
            recorded_on: None,
        });
    }
    SourceRecord {
        identity: canonical_identity(&r.identity),
        events: out,
    }
}

/// The identity as SS-MIX2 carries it (see [`canonicalize`]).
fn canonical_identity(identity: &IdentityRecord) -> IdentityRecord {
    let mut id = identity.clone();
    id.record_id = String::new();
    id.source_kind = SourceKind::Emr;
    for s in [
        &mut id.surname_kanji,
        &mut id.given_kanji,
        &mut id.surname_kana,
        &mut id.given_kana,
        &mut id.insured_symbol,
        &mut id.insured_number,
    ] {
        *s = jis_opt(s);
    }
    if id.surname_kanji.is_none() {
        id.given_kanji = None;
    }
    if id.surname_kana.is_none() {
        id.given_kana = None;
    }
    id.local_patient_id = id.local_patient_id.filter(|p| !p.is_empty());
    // The address goes through its text form and back.
    let text = jis_text(&format_address(&id));
    let a = parse_address(&text);
    id.prefecture = a.prefecture;
    id.municipality = a.municipality;
    id.town = a.town;
    id.chome = a.chome;
    id.banchi = a.banchi;
    id.municipality_code = None;
    id.postal_code = id
        .postal_code
        .filter(|p| p.len() == 7 && p.bytes().all(|b| b.is_ascii_digit()));
    if id.insurer_number.is_none() {
        id.insured_symbol = None;
        id.insured_number = None;
        id.insured_branch = None;
    }
    id.insurance_kind = id.insurer_number.as_deref().and_then(insurance_kind);
    id.insured_branch = id.insured_branch.filter(|b| !b.trim().is_empty());
    id
}

/// An encounter as SS-MIX2 carries it, at `facility` (checkups become outpatient visits).
fn canonical_encounter(en: &Encounter, facility: &str) -> Encounter {
    let setting = if en.setting == Setting::Inpatient {
        Setting::Inpatient
    } else {
        Setting::Outpatient
    };
    Encounter {
        event_id: String::new(),
        record_id: String::new(),
        facility_code: facility.to_string(),
        setting,
        department: jis_opt(&en.department),
        start_date: en.start_date,
        end_date: if setting == Setting::Inpatient {
            en.end_date.max(en.start_date)
        } else {
            en.start_date
        },
    }
}

/// Prescriptions as SS-MIX2 carries them, in the order they are written (by date and visit);
/// `enc_ref` maps a visit reference to the canonical one.
fn canonical_prescriptions(
    prescriptions: &[Prescription],
    enc_ref: impl Fn(&Option<String>) -> Option<String>,
) -> Vec<Prescription> {
    let mut rx: Vec<(usize, Prescription)> = prescriptions
        .iter()
        .filter(|p| !p.code.trim().is_empty())
        .map(|p| Prescription {
            event_id: String::new(),
            record_id: String::new(),
            encounter_id: enc_ref(&p.encounter_id),
            date: p.date,
            code_system: p.code_system,
            code: jis_text(&p.code),
            name: jis_opt(&p.name),
            daily_quantity: p.daily_quantity.filter(|q| q.is_finite()),
            unit: jis_opt(&p.unit),
            days: p.days.filter(|d| *d >= 0),
        })
        .enumerate()
        .collect();
    rx.sort_by_key(|(i, p)| (group_key(p.date, &p.encounter_id), *i));
    rx.into_iter().map(|(_, p)| p).collect()
}

/// Lab results as SS-MIX2 carries them, in the order they are written (by date and visit);
/// `enc_ref` maps a visit reference to the canonical one.
fn canonical_lab_results(
    lab_results: &[LabResult],
    enc_ref: impl Fn(&Option<String>) -> Option<String>,
) -> Vec<LabResult> {
    let mut labs: Vec<(usize, LabResult)> = lab_results
        .iter()
        .filter(|l| !l.code.trim().is_empty())
        .filter(|l| l.value_num.is_none_or(f64::is_finite))
        .map(|l| {
            let value_text = if l.value_num.is_some() {
                None
            } else {
                jis_opt(&l.value_text)
            };
            LabResult {
                event_id: String::new(),
                record_id: String::new(),
                encounter_id: enc_ref(&l.encounter_id),
                date: l.date,
                code_system: l.code_system,
                code: jis_text(&l.code),
                name: jis_opt(&l.name),
                value_num: l.value_num,
                value_text,
                unit: jis_opt(&l.unit),
            }
        })
        .enumerate()
        .collect();
    labs.sort_by_key(|(i, l)| (group_key(l.date, &l.encounter_id), *i));
    labs.into_iter().map(|(_, l)| l).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        let d = Delims::default();
        let s = "a|b^c~d\\e&f";
        assert_eq!(unescape(&escape(s), d), s);
    }

    #[test]
    fn half_width_kana_become_full_width() {
        assert_eq!(
            kana_to_full_width("ｻﾄｳ ｶﾞｯｺｳ ﾊﾟﾝ ｳﾞ ﾂﾞﾄﾞ"),
            "サトウ ガッコウ パン ヴ ヅド"
        );
        assert_eq!(kana_to_full_width("ｦｧｰﾝ"), "ヲァーン");
    }

    #[test]
    fn jis_text_keeps_what_iso_2022_jp_carries() {
        assert_eq!(jis_text("髙橋"), "高橋");
        assert_eq!(jis_text("𠮷田"), "吉田");
        assert_eq!(jis_text("１−２"), "１−２");
        assert_eq!(jis_text("１－２"), "１−２");
        assert!(representable('〓'));
        assert!(!representable('ｱ'));
    }
}
