//! De-identification under PS3.15 Annex E: every element of the data set, at any depth of
//! sequences, takes the action the profile gives its tag; private elements are removed unless the
//! Retain Safe Private option is chosen and they are listed safe; UIDs (the file meta's and every
//! reference among them) are replaced by ones derived from the release's key, so that studies and
//! series stay together within a release and are unrelated across releases, while well-known
//! UIDs (SOP classes, transfer syntaxes, coding schemes) are not in the table and stay; dates are
//! shifted by the person's offset (Modified Dates), kept (Full Dates) or removed; and the
//! conformance attributes are written: Patient Identity Removed (0012,0062) YES, De-identification
//! Method (0012,0063) and its Code Sequence (0012,0064), Longitudinal Temporal Information Modified
//! (0028,0303). An image flagged Burned In Annotation (0028,0301) YES is withheld; under Clean
//! Recognizable Visual Features (113102) an image that may show a face (flagged Recognizable Visual
//! Features YES, an external photograph, a CT, MR or PET of the head) is withheld: nothing here
//! defaces, so the option is met by not releasing what it would clean.

use chrono::{Duration, NaiveDate};
use dicom_core::{Tag, VR};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::{DataSet, DicomFile, Element, Value};
use crate::ocr::Ocr;
use crate::pixel::{clean, matching, Rule};
use crate::profile::{Action, Profile, ProfileOption};

/// What a release gives the de-identifier.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The profile: the Basic Profile with its options.
    pub profile: Profile,
    /// The release's key for UIDs (32 bytes): the same key maps a UID to the same new one.
    pub uid_key: [u8; 32],
    /// The person's pseudonym, written as Patient ID and Patient's Name.
    pub pseudonym: Option<String>,
    /// The person's date offset in days (Modified Dates: the same as the release's tables).
    pub date_offset_days: i64,
    /// The granularity of the shifted dates (Modified Dates: the release's tables' rule; times are
    /// emptied when coarser than a day).
    pub date_granularity: Granularity,
    /// Private elements kept under Retain Safe Private: (private creator, element byte).
    pub safe_private: Vec<(String, u8)>,
    /// Pixel cleaning rules by device signature (applied under Clean Pixel Data, 113101).
    pub pixel_rules: Vec<Rule>,
    /// The search for burned-in text, for the modalities it names.
    pub ocr: Option<Ocr>,
}

/// How finely modified dates are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub enum Granularity {
    /// The day (`YYYYMMDD`).
    #[default]
    Day,
    /// The month: the first of it (`YYYYMM01`).
    Month,
    /// The year: its first day (`YYYY0101`).
    Year,
}

/// What was done to one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// Elements removed.
    pub removed: usize,
    /// Elements emptied or given a dummy value.
    pub replaced: usize,
    /// UIDs replaced.
    pub uids: usize,
    /// Dates and times shifted.
    pub shifted: usize,
    /// Regions of pixel data blanked by a rule.
    pub cleaned_regions: usize,
    /// Characters of burned-in text found by OCR, when it ran.
    pub ocr_characters: Option<usize>,
    /// Why the file is withheld, if it is (burned-in annotation).
    pub withheld: Option<String>,
}

const PATIENT_ID: Tag = Tag(0x0010, 0x0020);
const PATIENT_NAME: Tag = Tag(0x0010, 0x0010);
const SOP_INSTANCE: Tag = Tag(0x0008, 0x0018);
const MEDIA_SOP_INSTANCE: Tag = Tag(0x0002, 0x0003);
const BURNED_IN: Tag = Tag(0x0028, 0x0301);

/// De-identifies a file in place.
pub fn deidentify(file: &mut DicomFile, s: &Settings) -> Outcome {
    let mut out = Outcome::default();
    pixels(file, s, &mut out);
    let mut w = Walker { s, out };
    w.data_set(&mut file.body, 0);
    let mut out = w.out;
    if let Some(uid) = file.body.bytes(SOP_INSTANCE).map(<[u8]>::to_vec) {
        file.meta.put(MEDIA_SOP_INSTANCE, VR::UI, uid);
    }
    if let Some(p) = &s.pseudonym {
        file.body.put(PATIENT_ID, VR::LO, p.as_bytes().to_vec());
        file.body.put(PATIENT_NAME, VR::PN, p.as_bytes().to_vec());
        out.replaced += 2;
    }
    conformance(&mut file.body, s);
    out
}

/// Pixel data: under Clean Pixel Data a rule matching the device's signature blanks its
/// regions (judged on the original values, before any is replaced); an image flagged with
/// burned-in annotation that no rule cleans is withheld.
fn pixels(file: &mut DicomFile, s: &Settings, out: &mut Outcome) {
    if s.profile.has(ProfileOption::CleanVisualFeatures) {
        if let Some(why) = recognizable(file) {
            out.withheld = Some(why);
            return;
        }
    }
    let burned = file
        .body
        .text_ascii(BURNED_IN)
        .is_some_and(|v| v.eq_ignore_ascii_case("YES"));
    let rule = if s.profile.has(ProfileOption::CleanPixelData) {
        matching(&s.pixel_rules, file).cloned()
    } else {
        None
    };
    match rule {
        Some(rule) => match clean(file, &rule.regions) {
            Ok(()) => {
                out.cleaned_regions = rule.regions.len();
                file.body.put(BURNED_IN, VR::CS, b"NO".to_vec());
            }
            Err(e) => out.withheld = Some(e.to_string()),
        },
        None if burned => {
            out.withheld =
                Some("Burned In Annotation is YES and no pixel rule matches its device".into())
        }
        None => {}
    }
    if let (None, Some(ocr)) = (&out.withheld, &s.ocr) {
        if ocr.applies(file) {
            read_pixels(file, ocr, out);
        }
    }
}

/// Body parts whose cross-sectional images show a face that a volume rendering recovers.
const HEAD_PARTS: [&str; 8] = [
    "HEAD", "BRAIN", "SKULL", "FACE", "HEADNECK", "ORBIT", "IAC", "SINUS",
];

/// Under Clean Recognizable Visual Features (113102), which this engine meets by withholding
/// rather than defacing: why an image may show a recognizable face, if it may (flagged
/// Recognizable Visual Features YES, an external photograph, or a CT, MR or PET of the head).
fn recognizable(file: &DicomFile) -> Option<String> {
    let text = |g: u16, e: u16| {
        file.body
            .text_ascii(Tag(g, e))
            .map(|v| v.trim().to_ascii_uppercase())
    };
    if text(0x0028, 0x0302).as_deref() == Some("YES") {
        return Some(
            "Recognizable Visual Features is YES: withheld under 113102 (no defacing)".into(),
        );
    }
    let modality = text(0x0008, 0x0060).unwrap_or_default();
    if modality == "XC" {
        return Some("an external photograph: withheld under 113102 (no defacing)".into());
    }
    let part = text(0x0018, 0x0015).unwrap_or_default();
    let head = HEAD_PARTS
        .iter()
        .any(|p| part.replace([' ', '_'], "") == *p);
    (head && ["CT", "MR", "PT"].contains(&modality.as_str()))
        .then(|| format!("a {modality} of the head: withheld under 113102 (no defacing)"))
}

/// Searches the (cleaned) pixels for text: any found withholds the image.
fn read_pixels(file: &DicomFile, ocr: &Ocr, out: &mut Outcome) {
    static SCRATCH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("tokumei-ocr-{}-{n}", std::process::id());
    match ocr.characters(file, &name) {
        Ok(0) => out.ocr_characters = Some(0),
        Ok(found) => {
            out.ocr_characters = Some(found);
            out.withheld = Some(format!(
                "{found} characters of text found in the pixels that no rule cleans"
            ));
        }
        Err(e) => out.withheld = Some(e.to_string()),
    }
}

/// A UID derived from the release's key: `2.25.` and 128 bits of HMAC-SHA256 (PS3.5 B.2).
pub fn map_uid(key: &[u8; 32], uid: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::from("2.25.0"),
    };
    mac.update(uid.trim_end_matches(['\0', ' ']).as_bytes());
    let d = mac.finalize().into_bytes();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    format!("2.25.{}", u128::from_be_bytes(b))
}

struct Walker<'a> {
    s: &'a Settings,
    out: Outcome,
}

impl Walker<'_> {
    fn data_set(&mut self, set: &mut DataSet, depth: usize) {
        let creators = private_creators(set);
        let mut kept = Vec::with_capacity(set.elements.len());
        for mut e in std::mem::take(&mut set.elements) {
            let action = self.action(&e, &creators);
            if self.apply(&mut e, action, depth) {
                kept.push(e);
            } else {
                self.out.removed += 1;
            }
        }
        set.elements = kept;
    }

    /// The action on an element: group lengths removed; private ones removed unless safe;
    /// the table's; none (keep) for what it does not list.
    fn action(&self, e: &Element, creators: &[(u16, u8, String)]) -> Option<Action> {
        let (g, el) = (e.tag.group(), e.tag.element());
        if el == 0 {
            return Some(Action::Remove);
        }
        if g % 2 == 1 {
            return Some(self.private_action(g, el, creators));
        }
        self.s.profile.action(e.tag)
    }

    fn private_action(&self, group: u16, element: u16, creators: &[(u16, u8, String)]) -> Action {
        if self.s.profile.private() != Action::Clean {
            return Action::Remove;
        }
        if (0x0010..=0x00ff).contains(&element) {
            // A private creator is kept when any element it reserves is listed safe.
            let listed = creators
                .iter()
                .find(|(g, block, _)| *g == group && u16::from(*block) == element)
                .is_some_and(|(_, _, c)| self.s.safe_private.iter().any(|(sc, _)| sc == c));
            return if listed { Action::Keep } else { Action::Remove };
        }
        let block = (element >> 8) as u8;
        let creator = creators
            .iter()
            .find(|(g, b, _)| *g == group && *b == block)
            .map(|(_, _, c)| c.as_str());
        let safe = creator.is_some_and(|c| {
            self.s
                .safe_private
                .iter()
                .any(|(sc, se)| sc == c && *se == (element & 0xff) as u8)
        });
        if safe {
            Action::Keep
        } else {
            Action::Remove
        }
    }

    /// Applies an action; whether the element stays.
    fn apply(&mut self, e: &mut Element, action: Option<Action>, depth: usize) -> bool {
        let Some(action) = action else {
            self.recurse(e, depth);
            return true;
        };
        match settle(action) {
            Action::Remove => false,
            Action::Keep => {
                self.recurse(e, depth);
                true
            }
            Action::Zero => {
                e.value = empty(&e.value);
                self.out.replaced += 1;
                true
            }
            Action::Dummy => {
                self.dummy(e, depth);
                true
            }
            Action::Uid => {
                self.uid(e, depth);
                true
            }
            _ => {
                self.clean(e, depth);
                true
            }
        }
    }

    fn recurse(&mut self, e: &mut Element, depth: usize) {
        if let Value::Items { items, .. } = &mut e.value {
            for item in items {
                self.data_set(item, depth + 1);
            }
        }
    }

    fn dummy(&mut self, e: &mut Element, depth: usize) {
        if matches!(e.value, Value::Items { .. }) {
            self.recurse(e, depth);
            return;
        }
        if e.vr == VR::UI {
            self.uid(e, depth);
            return;
        }
        e.value = Value::Bytes(dummy_value(e.vr));
        self.out.replaced += 1;
    }

    fn uid(&mut self, e: &mut Element, depth: usize) {
        match &mut e.value {
            Value::Bytes(b) => {
                let old = String::from_utf8_lossy(b).into_owned();
                let new: Vec<String> = old
                    .split('\\')
                    .map(|u| {
                        let u = u.trim_end_matches(['\0', ' ']);
                        if u.is_empty() {
                            String::new()
                        } else {
                            map_uid(&self.s.uid_key, u)
                        }
                    })
                    .collect();
                let mut bytes = new.join("\\").into_bytes();
                if bytes.len() % 2 == 1 {
                    bytes.push(0);
                }
                *b = bytes;
                self.out.uids += 1;
            }
            Value::Items { .. } => self.recurse(e, depth),
            Value::Fragments(_) => {}
        }
    }

    /// Clean: dates and times shifted by the person's offset (Modified Dates); anything else
    /// emptied (text cannot be vouched for without the identifier check).
    fn clean(&mut self, e: &mut Element, depth: usize) {
        if matches!(e.value, Value::Items { .. }) {
            self.recurse(e, depth);
            return;
        }
        let shifting = self.s.profile.has(ProfileOption::RetainModifiedDates);
        if let (true, Value::Bytes(b)) = (shifting, &mut e.value) {
            let how = (self.s.date_offset_days, self.s.date_granularity);
            if let Some(shifted) = shift(e.vr, b, how) {
                *b = shifted;
                self.out.shifted += 1;
                return;
            }
        }
        e.value = empty(&e.value);
        self.out.replaced += 1;
    }
}

/// The action an IOD-dependent choice settles to without the IOD at hand: the one that keeps a
/// required attribute present (zero for X/Z, a dummy for X/D, Z/D and X/Z/D, the UID's
/// replacement for X/Z/U*).
fn settle(a: Action) -> Action {
    match a {
        Action::RemoveOrZero => Action::Zero,
        Action::RemoveOrDummy | Action::ZeroOrDummy | Action::RemoveZeroOrDummy => Action::Dummy,
        Action::RemoveZeroOrUid => Action::Uid,
        other => other,
    }
}

fn empty(v: &Value) -> Value {
    match v {
        Value::Items { defined, .. } => Value::Items {
            items: Vec::new(),
            defined: *defined,
        },
        _ => Value::Bytes(Vec::new()),
    }
}

/// A dummy value of a VR (ASCII, valid in every repertoire).
fn dummy_value(vr: VR) -> Vec<u8> {
    let s: &[u8] = match vr {
        VR::PN | VR::LO | VR::SH | VR::LT | VR::ST | VR::UT | VR::UC | VR::CS | VR::AE => {
            b"ANONYMIZED"
        }
        VR::DA => b"19000101",
        VR::TM => b"000000",
        VR::DT => b"19000101000000",
        VR::AS => b"000Y",
        VR::IS | VR::DS => b"0 ",
        VR::US | VR::SS => &[0, 0],
        VR::UL | VR::SL | VR::FL => &[0, 0, 0, 0],
        VR::FD => &[0; 8],
        _ => b"",
    };
    s.to_vec()
}

/// A DA, DT or TM value shifted by `days` and kept at a granularity (times are kept by a day's
/// granularity, since a day shift keeps them, and emptied by a coarser one); `None` for another VR
/// or a value that is not a date.
fn shift(vr: VR, bytes: &[u8], (days, grain): (i64, Granularity)) -> Option<Vec<u8>> {
    if vr == VR::TM {
        return Some(match grain {
            Granularity::Day => bytes.to_vec(),
            _ => Vec::new(),
        });
    }
    if !matches!(vr, VR::DA | VR::DT) {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let mut values = Vec::new();
    for v in text.split('\\') {
        let v = v.trim_end_matches(['\0', ' ']);
        if v.is_empty() {
            values.push(String::new());
            continue;
        }
        // A date range (`from-to`) has each end shifted (a DT's `-` starts its UTC offset).
        if vr == VR::DA {
            let ends: Option<Vec<String>> = v
                .split('-')
                .map(|end| shift_one(end, days, grain))
                .collect();
            values.push(ends?.join("-"));
        } else {
            values.push(shift_one(v, days, grain)?);
        }
    }
    let mut out = values.join("\\").into_bytes();
    if out.len() % 2 == 1 {
        out.push(b' ');
    }
    Some(out)
}

/// One date or date-time (`YYYYMMDD…`, or empty) moved by `days`; at a day's granularity its
/// time and offset are kept, at a coarser one the date is the first day of its month or year and
/// the time is dropped.
fn shift_one(v: &str, days: i64, grain: Granularity) -> Option<String> {
    if v.is_empty() {
        return Some(String::new());
    }
    let date = NaiveDate::parse_from_str(v.get(..8)?, "%Y%m%d").ok()?;
    let moved = date.checked_add_signed(Duration::days(days))?;
    Some(match grain {
        Granularity::Day => format!("{}{}", moved.format("%Y%m%d"), v.get(8..)?),
        Granularity::Month => format!("{}01", moved.format("%Y%m")),
        Granularity::Year => format!("{}0101", moved.format("%Y")),
    })
}

/// The private creators of a data set: (group, block, creator).
fn private_creators(set: &DataSet) -> Vec<(u16, u8, String)> {
    set.elements
        .iter()
        .filter(|e| e.tag.group() % 2 == 1 && (0x10..=0xff).contains(&e.tag.element()))
        .filter_map(|e| match &e.value {
            Value::Bytes(b) => Some((
                e.tag.group(),
                e.tag.element() as u8,
                String::from_utf8_lossy(b)
                    .trim_end_matches(['\0', ' '])
                    .trim()
                    .to_string(),
            )),
            _ => None,
        })
        .collect()
}

fn code_item(value: &str, meaning: &str) -> DataSet {
    let mut item = DataSet::default();
    item.put(Tag(0x0008, 0x0100), VR::SH, value.as_bytes().to_vec());
    item.put(Tag(0x0008, 0x0102), VR::SH, b"DCM".to_vec());
    item.put(Tag(0x0008, 0x0104), VR::LO, meaning.as_bytes().to_vec());
    item
}

/// The attributes that say how the data set was de-identified (PS3.15 E.1.1 and E.3).
fn conformance(body: &mut DataSet, s: &Settings) {
    body.put(Tag(0x0012, 0x0062), VR::CS, b"YES".to_vec());
    // LO values are at most 64 characters: the method is one value per part.
    let mut method = vec![
        format!("Tokumei {}", env!("CARGO_PKG_VERSION")),
        "PS3.15 Annex E DCM 113100".to_string(),
    ];
    method.extend(
        s.profile
            .options()
            .iter()
            .map(|o| format!("DCM {}", o.code())),
    );
    body.put(Tag(0x0012, 0x0063), VR::LO, method.join("\\").into_bytes());
    let mut items = vec![code_item(
        "113100",
        "Basic Application Confidentiality Profile",
    )];
    items.extend(
        s.profile
            .options()
            .iter()
            .map(|o| code_item(o.code(), o.meaning())),
    );
    body.remove(Tag(0x0012, 0x0064));
    let at = body
        .elements
        .binary_search_by_key(&Tag(0x0012, 0x0064), |e| e.tag)
        .unwrap_or_else(|i| i);
    body.elements.insert(
        at,
        Element {
            tag: Tag(0x0012, 0x0064),
            vr: VR::SQ,
            value: Value::Items {
                items,
                defined: false,
            },
        },
    );
    let temporal: &[u8] = if s.profile.has(ProfileOption::RetainFullDates) {
        b"UNMODIFIED"
    } else if s.profile.has(ProfileOption::RetainModifiedDates) {
        b"MODIFIED"
    } else {
        b"REMOVED "
    };
    body.put(Tag(0x0028, 0x0303), VR::CS, temporal.to_vec());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_dates_follow_the_release_granularity() {
        let day = (-3, Granularity::Day);
        assert_eq!(
            shift(VR::DA, b"20250301", day).as_deref(),
            Some(&b"20250226"[..])
        );
        assert_eq!(
            shift(VR::TM, b"101500", day).as_deref(),
            Some(&b"101500"[..])
        );
        assert_eq!(
            shift(VR::DT, b"20250301101500+0900", day).as_deref(),
            Some(&b"20250226101500+0900 "[..])
        );
        let month = (-3, Granularity::Month);
        assert_eq!(
            shift(VR::DA, b"20250301", month).as_deref(),
            Some(&b"20250201"[..])
        );
        assert_eq!(shift(VR::TM, b"101500", month).as_deref(), Some(&b""[..]));
        assert_eq!(
            shift(VR::DT, b"20250301101500", month).as_deref(),
            Some(&b"20250201"[..])
        );
        let year = (0, Granularity::Year);
        assert_eq!(
            shift(VR::DA, b"20250301-20250402", year).as_deref(),
            Some(&b"20250101-20250101 "[..])
        );
        assert_eq!(shift(VR::LO, b"20250301", year), None);
    }
}
