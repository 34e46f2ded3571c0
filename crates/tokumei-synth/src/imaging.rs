//! Imaging studies of hospital encounters, as DICOM files the hospital's PACS holds.
//!
//! At the SS-MIX2 hospitals (whose records carry the hospital's patient number) a share of
//! encounters get one study, drawn from the person's own stream ([`Stream::Imaging`]): a modality
//! (CR most often, then CT, US and MR), a body part that fits it, one or two images. The headers
//! are written the way a Japanese PACS writes them: `\ISO 2022 IR 87` (with IR 159 where a name
//! needs JIS X 0212, UTF-8 where neither holds it), the name in three component groups (romaji
//! made from the reading with `wana_kana`, kanji, kana), the hospital's patient number, the
//! patient's birth date, sex, age and for some the address, the referring physician, the device,
//! UIDs `2.25.<decimal>` drawn from the seed, the accession number and patient number again inside
//! sequences, and the name again in a private block. Some CR and US images carry the patient
//! number and romaji name drawn into the pixels; of those some say so in Burned In Annotation and
//! some leave it out. The files are encoded here, in the parallel producers; the writer only
//! numbers and writes them.

use chrono::{NaiveDate, NaiveTime, Timelike};
use dicom_core::{Tag, VR};
use rand::Rng;
use tokumei_dicom::charset::{CharsetError, Repertoire};
use tokumei_dicom::{DataSet, DicomFile, Element, Value};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::{Setting, Sex, SourceKind};
use wana_kana::ConvertJapanese;

use crate::care::Visit;
use crate::dates::age_on;
use crate::emit::EmittedRecord;
use crate::life::LifePerson;
use crate::names::Name;
use crate::region::{EmrExport, PREFECTURE};
use crate::rng::{chance, rng_for, Stream, SynthRng, Weighted};
use crate::Context;

/// Share of outpatient visits at an SS-MIX2 hospital with an imaging study.
const OUTPATIENT_SHARE: f64 = 0.005;
/// Share of inpatient stays with an imaging study.
const INPATIENT_SHARE: f64 = 0.08;
/// Share of CR and US images with the patient number and name drawn into the pixels.
const BURNED_CR: f64 = 0.15;
const BURNED_US: f64 = 0.5;
/// Share of images with drawn text whose header says so (the others leave the attribute out).
const BURNED_FLAGGED: f64 = 0.6;
/// Share of studies whose header carries the patient's address, and other patient ids.
const WITH_ADDRESS: f64 = 0.4;
const WITH_OTHER_IDS: f64 = 0.3;
/// Referring physicians per hospital.
const DOCTORS: u64 = 24;

/// The implementation class UID of the files' meta group (a fixed `2.25` UID).
pub const IMPLEMENTATION_UID: &str = "2.25.207128813339431474455185416290474409729";
/// The implementation version name.
pub const IMPLEMENTATION_VERSION: &str = "TOKUMEI_SYNTH";
/// Creator of the private block (group 0029) that holds the patient's name again.
pub const PRIVATE_CREATOR: &str = "TOKUMEI SYNTH";

/// One imaging study: its images encoded.
#[derive(Debug, Clone)]
pub struct Study {
    /// Provider (hospital) index.
    pub provider: usize,
    /// Study date.
    pub date: NaiveDate,
    /// Modality.
    pub modality: &'static str,
    /// Body Part Examined.
    pub body_part: &'static str,
    /// The images, in instance order.
    pub instances: Vec<Instance>,
}

/// One image of a study.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The PS3.10 file.
    pub bytes: Vec<u8>,
    /// Whether text is drawn into the pixels.
    pub burned_in: bool,
    /// What Burned In Annotation says (`YES`, `NO`), none when left out.
    pub flag: Option<&'static str>,
}

/// A modality: its SOP class, weight, body parts (defined term, weight, name in Japanese) and
/// image geometry.
struct Modality {
    code: &'static str,
    sop_class: &'static str,
    weight: f64,
    parts: &'static [(&'static str, f64, &'static str)],
    /// What the study is called after the body part (`胸部` + `単純X線`).
    kind: &'static str,
    rows: usize,
    cols: usize,
    bits: u16,
    /// Chance of a second image.
    second: f64,
    /// Devices: (manufacturer, model); a hospital has the one at its index.
    devices: &'static [(&'static str, &'static str)],
}

const MODALITIES: &[Modality] = &[
    Modality {
        code: "CR",
        sop_class: "1.2.840.10008.5.1.4.1.1.1",
        weight: 0.55,
        parts: &[
            ("CHEST", 0.65, "胸部"),
            ("ABDOMEN", 0.1, "腹部"),
            ("LSPINE", 0.1, "腰椎"),
            ("KNEE", 0.1, "膝関節"),
            ("HAND", 0.05, "手"),
        ],
        kind: "単純X線",
        rows: 96,
        cols: 256,
        bits: 8,
        second: 0.4,
        devices: &[
            ("FUJIFILM Corporation", "FCR PROFECT CS"),
            ("KONICA MINOLTA", "AeroDR fine"),
            ("CANON INC.", "CXDI-710C Wireless"),
            ("FUJIFILM Corporation", "CALNEO Smart"),
        ],
    },
    Modality {
        code: "CT",
        sop_class: "1.2.840.10008.5.1.4.1.1.2",
        weight: 0.22,
        parts: &[
            ("CHEST", 0.4, "胸部"),
            ("ABDOMEN", 0.35, "腹部"),
            ("HEAD", 0.25, "頭部"),
        ],
        kind: "CT",
        rows: 64,
        cols: 64,
        bits: 16,
        second: 0.5,
        devices: &[
            ("CANON MEDICAL SYSTEMS", "Aquilion ONE"),
            ("FUJIFILM Healthcare", "SCENARIA View"),
            ("SIEMENS", "SOMATOM go.Top"),
            ("GE MEDICAL SYSTEMS", "Revolution Maxima"),
        ],
    },
    Modality {
        code: "US",
        sop_class: "1.2.840.10008.5.1.4.1.1.6.1",
        weight: 0.15,
        parts: &[
            ("ABDOMEN", 0.55, "腹部"),
            ("HEART", 0.25, "心臓"),
            ("THYROID", 0.1, "甲状腺"),
            ("BREAST", 0.1, "乳腺"),
        ],
        kind: "超音波",
        rows: 96,
        cols: 256,
        bits: 8,
        second: 0.5,
        devices: &[
            ("CANON MEDICAL SYSTEMS", "Aplio i800"),
            ("FUJIFILM Healthcare", "ARIETTA 850"),
            ("GE Healthcare", "LOGIQ E10"),
            ("KONICA MINOLTA", "SONIMAGE HS2"),
        ],
    },
    Modality {
        code: "MR",
        sop_class: "1.2.840.10008.5.1.4.1.1.4",
        weight: 0.08,
        parts: &[
            ("HEAD", 0.55, "頭部"),
            ("LSPINE", 0.25, "腰椎"),
            ("KNEE", 0.2, "膝関節"),
        ],
        kind: "MRI",
        rows: 64,
        cols: 64,
        bits: 16,
        second: 0.5,
        devices: &[
            ("CANON MEDICAL SYSTEMS", "Vantage Orian"),
            ("SIEMENS", "MAGNETOM Sola"),
            ("Philips", "Ingenia Elition"),
            ("FUJIFILM Healthcare", "ECHELON Smart"),
        ],
    },
];

/// The character sets a header is tried in, in order: JIS X 0208, then JIS X 0212 added, then
/// UTF-8.
const CHARSETS: &[&str] = &[
    "\\ISO 2022 IR 87",
    "\\ISO 2022 IR 87\\ISO 2022 IR 159",
    "ISO_IR 192",
];

/// Name of the regional health information network that issues Other Patient IDs.
const NETWORK: &str = "あおもり医療情報ネットワーク";

/// The character sets to try for a header holding these texts: from the first of [`CHARSETS`]
/// whose encoder holds every text (IR 87 when JIS X 0208 holds every character; IR 87 with IR 159
/// when JIS X 0212 holds the rest; UTF-8 for vendor kanji such as 髙 and 﨑, or what no JIS set
/// holds).
fn charsets_for(texts: &[&str]) -> &'static [&'static str] {
    let holds = |cs: &str| {
        Repertoire::parse(cs).is_ok_and(|rep| {
            texts
                .iter()
                .all(|t| rep.encode(t, tokumei_dicom::charset::Text::Free).is_ok())
        })
    };
    let first = CHARSETS
        .iter()
        .position(|cs| holds(cs))
        .unwrap_or(CHARSETS.len() - 1);
    &CHARSETS[first..]
}

/// The imaging studies of one person: for each SS-MIX2 hospital record, some of its encounters.
pub fn studies(
    ctx: &Context,
    p: &LifePerson,
    visits: &[Visit],
    records: &[EmittedRecord],
) -> Vec<Study> {
    let mut rng = rng_for(ctx.seed, Stream::Imaging, p.key);
    let mut out = Vec::new();
    for rec in records {
        let provider = &ctx.region.providers[rec.provider];
        if rec.identity.source_kind != SourceKind::Emr
            || provider.emr_export != Some(EmrExport::Ssmix2)
        {
            continue;
        }
        for v in visits.iter().filter(|v| v.provider == rec.provider) {
            let share = if v.setting == Setting::Inpatient {
                INPATIENT_SHARE
            } else {
                OUTPATIENT_SHARE
            };
            if !chance(&mut rng, share) {
                continue;
            }
            let plan = Plan::draw(ctx, rec.provider, v.start, &mut rng);
            // A study that cannot be encoded is left out whole (never a half study).
            if let Some(study) = study(ctx, p, &rec.identity, &plan) {
                out.push(study);
            }
        }
    }
    out
}

/// Everything drawn for one study.
struct Plan {
    provider: usize,
    date: NaiveDate,
    time: NaiveTime,
    modality: &'static Modality,
    part: (&'static str, &'static str),
    accession: String,
    study_id: u32,
    study_uid: String,
    series_uid: String,
    frame_uid: String,
    doctor: (Name, Name),
    address: bool,
    other_id: Option<String>,
    phase: u32,
    /// Per image: SOP Instance UID, drawn text, what the header says.
    images: Vec<(String, bool, Option<&'static str>)>,
}

impl Plan {
    fn draw(ctx: &Context, provider: usize, date: NaiveDate, rng: &mut SynthRng) -> Plan {
        let m = Weighted::new(MODALITIES.iter().map(|m| m.weight))
            .map(|w| &MODALITIES[w.sample(rng)])
            .unwrap_or(&MODALITIES[0]);
        let part = Weighted::new(m.parts.iter().map(|p| p.1))
            .map(|w| m.parts[w.sample(rng)])
            .map(|(code, _, ja)| (code, ja))
            .unwrap_or(("CHEST", "胸部"));
        let minutes = rng.random_range(8 * 60 + 30..17 * 60);
        let time = NaiveTime::from_hms_opt(minutes / 60, minutes % 60, rng.random_range(0..60))
            .unwrap_or_default();
        let count = 1 + usize::from(chance(rng, m.second));
        let burn = match m.code {
            "CR" => BURNED_CR,
            "US" => BURNED_US,
            _ => 0.0,
        };
        let mut images = Vec::with_capacity(count);
        for _ in 0..count {
            let burned = chance(rng, burn);
            let flag = if !burned {
                Some("NO")
            } else if chance(rng, BURNED_FLAGGED) {
                Some("YES")
            } else {
                None
            };
            images.push((uid(rng), burned, flag));
        }
        Plan {
            provider,
            date,
            time,
            modality: m,
            part,
            accession: format!(
                "{}{:05}",
                date.format("%Y%m%d"),
                rng.random_range(0..100_000)
            ),
            study_id: rng.random_range(1..100_000),
            study_uid: uid(rng),
            series_uid: uid(rng),
            frame_uid: uid(rng),
            doctor: doctor(ctx, provider, rng.random_range(0..DOCTORS)),
            address: chance(rng, WITH_ADDRESS),
            other_id: chance(rng, WITH_OTHER_IDS)
                .then(|| format!("AOM{:09}", rng.random_range(0..1_000_000_000u32))),
            phase: rng.random_range(0..1 << 16),
            images,
        }
    }
}

/// A UID `2.25.<decimal>` of a random 128-bit value shaped as a version 4 UUID.
fn uid(rng: &mut SynthRng) -> String {
    let x: u128 = rng.random();
    let x = (x & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    format!("2.25.{x}")
}

/// Referring physician `k` of a hospital: a name drawn from its own stream.
fn doctor(ctx: &Context, provider: usize, k: u64) -> (Name, Name) {
    let mut rng = rng_for(ctx.seed, Stream::Staff, provider as u64 * DOCTORS + k);
    let sex = if chance(&mut rng, 0.7) {
        Sex::Male
    } else {
        Sex::Female
    };
    let year = rng.random_range(1960..1995);
    let surname = ctx.names.surname(&mut rng);
    (surname, ctx.names.given(&mut rng, sex, year))
}

/// Romaji of a katakana reading (modified Hepburn as `wana_kana` writes it, long vowels spelled
/// out: タロウ → Tarou), capitalised; characters it cannot convert are left out.
pub fn romaji(kana: &str) -> String {
    let lower: String = kana
        .to_romaji()
        .chars()
        .filter(|c| c.is_ascii_alphabetic() || *c == '\'' || *c == '-')
        .collect();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// A person name in three component groups: `Romaji^Romaji=漢字^漢字=かな^かな`; the phonetic
/// group in hiragana at some hospitals and katakana at others.
pub fn person_name(surname: &Name, given: &Name, hiragana_style: bool) -> String {
    let kana = |s: &str| {
        if hiragana_style {
            tokumei_japan::fold::hiragana(s)
        } else {
            s.to_string()
        }
    };
    format!(
        "{}^{}={}^{}={}^{}",
        romaji(&surname.kana),
        romaji(&given.kana),
        surname.kanji,
        given.kanji,
        kana(&surname.kana),
        kana(&given.kana)
    )
}

/// The person's surname on the study date, spelled as the hospital's record spells it when that is
/// the same name (a variant kanji in the record is kept).
fn surname_as_recorded(p: &LifePerson, id: &IdentityRecord, date: NaiveDate) -> Name {
    let mut name = p.surname_on(date).clone();
    if let Some(recorded) = &id.surname_kanji {
        if tokumei_japan::fold::name(recorded) == tokumei_japan::fold::name(&name.kanji) {
            name.kanji = recorded.clone();
        }
    }
    name
}

/// The study's files, or none if a header cannot be encoded.
fn study(ctx: &Context, p: &LifePerson, id: &IdentityRecord, plan: &Plan) -> Option<Study> {
    let surname = surname_as_recorded(p, id, plan.date);
    let texts = Texts::new(ctx, p, id, plan, &surname);
    let charsets = charsets_for(&[
        &texts.patient_name,
        &texts.doctor,
        &texts.institution,
        &texts.institution_address,
        &texts.description,
        texts.address.as_deref().unwrap_or(""),
        texts.manufacturer,
        texts.model,
        NETWORK,
    ]);
    let mut instances = Vec::with_capacity(plan.images.len());
    for (i, (sop_uid, burned, flag)) in plan.images.iter().enumerate() {
        let body = charsets.iter().find_map(|cs| {
            let rep = Repertoire::parse(cs).ok()?;
            header(plan, &texts, cs, &rep, i, sop_uid, *flag).ok()
        })?;
        let mut file = DicomFile::explicit_little(body, IMPLEMENTATION_UID, IMPLEMENTATION_VERSION);
        if *burned {
            let lines = [
                format!("ID {}", texts.patient_id),
                romaji(&surname.kana).to_ascii_uppercase(),
                romaji(&p.given.kana).to_ascii_uppercase(),
            ];
            for (n, line) in lines.iter().enumerate() {
                tokumei_dicom::ocr::draw_text(&mut file, 8, 8 + 22 * n, 2, line).ok()?;
            }
        }
        instances.push(Instance {
            bytes: tokumei_dicom::write::to_bytes(&file).ok()?,
            burned_in: *burned,
            flag: *flag,
        });
    }
    Some(Study {
        provider: plan.provider,
        date: plan.date,
        modality: plan.modality.code,
        body_part: plan.part.0,
        instances,
    })
}

/// The text values of a study's headers.
struct Texts {
    patient_name: String,
    patient_id: String,
    birth: String,
    sex: &'static str,
    age: String,
    address: Option<String>,
    institution: String,
    institution_address: String,
    doctor: String,
    manufacturer: &'static str,
    model: &'static str,
    description: String,
}

impl Texts {
    fn new(
        ctx: &Context,
        p: &LifePerson,
        id: &IdentityRecord,
        plan: &Plan,
        surname: &Name,
    ) -> Texts {
        let hospital = &ctx.region.providers[plan.provider];
        let hiragana_style = plan.provider % 2 == 1;
        let addr = p.address_on(plan.date);
        let chome = addr.chome.map(|c| format!("{c}丁目")).unwrap_or_default();
        let muni_of = |code: &str| {
            ctx.region
                .municipalities
                .iter()
                .find(|m| m.code6 == code)
                .map(|m| m.name.clone())
                .unwrap_or_default()
        };
        let (manufacturer, model) =
            plan.modality.devices[plan.provider % plan.modality.devices.len()];
        let birth = id.birth_date.unwrap_or(p.birth);
        Texts {
            patient_name: person_name(surname, &p.given, hiragana_style),
            patient_id: id.local_patient_id.clone().unwrap_or_default(),
            // The PACS takes the patient's details from the hospital's registration: its birth
            // date, typing errors included.
            birth: birth.format("%Y%m%d").to_string(),
            sex: p.sex.code(),
            age: format!("{:03}Y", age_on(birth, plan.date).clamp(0, 999)),
            address: plan.address.then(|| {
                format!(
                    "{PREFECTURE}{}{}{chome}{}",
                    addr.municipality(&ctx.region).name,
                    addr.town(&ctx.region).name,
                    addr.banchi
                )
            }),
            institution: hospital.name.clone(),
            institution_address: format!("{PREFECTURE}{}", muni_of(&hospital.municipality_code)),
            doctor: person_name(&plan.doctor.0, &plan.doctor.1, hiragana_style),
            manufacturer,
            model,
            description: format!("{}{}", plan.part.1, plan.modality.kind),
        }
    }
}

fn tm(t: NaiveTime) -> String {
    format!("{:02}{:02}{:02}", t.hour(), t.minute(), t.second())
}

/// The data set of image `i` (0-based) in the repertoire `rep` named by `charset`.
fn header(
    plan: &Plan,
    t: &Texts,
    charset: &str,
    rep: &Repertoire,
    i: usize,
    sop_uid: &str,
    flag: Option<&str>,
) -> Result<DataSet, CharsetError> {
    let m = plan.modality;
    let mut d = DataSet::default();
    let date = plan.date.format("%Y%m%d").to_string();
    let study_time = tm(plan.time);
    let content_time = tm(plan.time + chrono::Duration::seconds(40 * (i as i64 + 1)));
    let s = |d: &mut DataSet, g: u16, e: u16, vr: VR, v: &str| d.put_str(Tag(g, e), vr, v);
    s(&mut d, 0x0008, 0x0005, VR::CS, charset);
    let image_type = if m.code == "CT" {
        "ORIGINAL\\PRIMARY\\AXIAL"
    } else {
        "ORIGINAL\\PRIMARY"
    };
    s(&mut d, 0x0008, 0x0008, VR::CS, image_type);
    s(&mut d, 0x0008, 0x0012, VR::DA, &date);
    s(&mut d, 0x0008, 0x0013, VR::TM, &content_time);
    s(&mut d, 0x0008, 0x0016, VR::UI, m.sop_class);
    s(&mut d, 0x0008, 0x0018, VR::UI, sop_uid);
    for e in [0x0020, 0x0021, 0x0022, 0x0023] {
        s(&mut d, 0x0008, e, VR::DA, &date);
    }
    s(&mut d, 0x0008, 0x0030, VR::TM, &study_time);
    s(&mut d, 0x0008, 0x0031, VR::TM, &study_time);
    s(&mut d, 0x0008, 0x0032, VR::TM, &content_time);
    s(&mut d, 0x0008, 0x0033, VR::TM, &content_time);
    s(&mut d, 0x0008, 0x0050, VR::SH, &plan.accession);
    s(&mut d, 0x0008, 0x0060, VR::CS, m.code);
    d.put_text(Tag(0x0008, 0x0070), VR::LO, t.manufacturer, rep)?;
    d.put_text(Tag(0x0008, 0x0080), VR::LO, &t.institution, rep)?;
    d.put_text(Tag(0x0008, 0x0081), VR::ST, &t.institution_address, rep)?;
    d.put_text(Tag(0x0008, 0x0090), VR::PN, &t.doctor, rep)?;
    s(&mut d, 0x0008, 0x1010, VR::SH, &format!("{}01", m.code));
    d.put_text(Tag(0x0008, 0x1030), VR::LO, &t.description, rep)?;
    d.put_text(Tag(0x0008, 0x103e), VR::LO, &t.description, rep)?;
    d.put_text(Tag(0x0008, 0x1090), VR::LO, t.model, rep)?;
    d.put_text(Tag(0x0010, 0x0010), VR::PN, &t.patient_name, rep)?;
    s(&mut d, 0x0010, 0x0020, VR::LO, &t.patient_id);
    s(&mut d, 0x0010, 0x0030, VR::DA, &t.birth);
    s(&mut d, 0x0010, 0x0040, VR::CS, t.sex);
    if let Some(other) = &plan.other_id {
        s(&mut d, 0x0010, 0x1000, VR::LO, other);
    }
    d.put_items(Tag(0x0010, 0x1002), other_ids(plan, t, rep)?);
    s(&mut d, 0x0010, 0x1010, VR::AS, &t.age);
    if let Some(address) = &t.address {
        d.put_text(Tag(0x0010, 0x1040), VR::LO, address, rep)?;
    }
    s(&mut d, 0x0018, 0x0015, VR::CS, plan.part.0);
    if m.code == "CT" {
        s(&mut d, 0x0018, 0x0050, VR::DS, "5");
        s(&mut d, 0x0018, 0x0060, VR::DS, "120");
    }
    s(&mut d, 0x0018, 0x1020, VR::LO, "V1.00");
    s(&mut d, 0x0020, 0x000d, VR::UI, &plan.study_uid);
    s(&mut d, 0x0020, 0x000e, VR::UI, &plan.series_uid);
    s(&mut d, 0x0020, 0x0010, VR::SH, &plan.study_id.to_string());
    s(&mut d, 0x0020, 0x0011, VR::IS, "1");
    s(&mut d, 0x0020, 0x0013, VR::IS, &(i + 1).to_string());
    if matches!(m.code, "CT" | "MR") {
        s(&mut d, 0x0020, 0x0052, VR::UI, &plan.frame_uid);
    }
    pixel_module(&mut d, plan, flag);
    d.put_text(Tag(0x0029, 0x0010), VR::LO, PRIVATE_CREATOR, rep)?;
    d.put_text(Tag(0x0029, 0x1001), VR::PN, &t.patient_name, rep)?;
    s(&mut d, 0x0029, 0x1002, VR::LO, &t.patient_id);
    d.put_text(Tag(0x0032, 0x1032), VR::PN, &t.doctor, rep)?;
    d.put_items(Tag(0x0040, 0x0275), vec![request(plan, t, rep)?]);
    d.insert(Element {
        tag: Tag(0x7fe0, 0x0010),
        vr: if m.bits == 16 { VR::OW } else { VR::OB },
        value: Value::Bytes(pixels(plan, i)),
    });
    Ok(d)
}

/// Image Pixel module, windowing and rescale, Burned In Annotation.
fn pixel_module(d: &mut DataSet, plan: &Plan, flag: Option<&str>) {
    let m = plan.modality;
    d.put_u16(Tag(0x0028, 0x0002), &[1]);
    d.put_str(Tag(0x0028, 0x0004), VR::CS, "MONOCHROME2");
    d.put_u16(Tag(0x0028, 0x0010), &[m.rows as u16]);
    d.put_u16(Tag(0x0028, 0x0011), &[m.cols as u16]);
    let stored = if m.bits == 16 { 12 } else { 8 };
    d.put_u16(Tag(0x0028, 0x0100), &[m.bits]);
    d.put_u16(Tag(0x0028, 0x0101), &[stored]);
    d.put_u16(Tag(0x0028, 0x0102), &[stored - 1]);
    d.put_u16(Tag(0x0028, 0x0103), &[0]);
    if let Some(f) = flag {
        d.put_str(Tag(0x0028, 0x0301), VR::CS, f);
    }
    let (center, width, intercept) = match m.code {
        "CT" => ("40", "400", "-1024"),
        "MR" => ("300", "600", "0"),
        _ => ("128", "256", "0"),
    };
    d.put_str(Tag(0x0028, 0x1050), VR::DS, center);
    d.put_str(Tag(0x0028, 0x1051), VR::DS, width);
    if m.code == "CT" {
        d.put_str(Tag(0x0028, 0x1052), VR::DS, intercept);
        d.put_str(Tag(0x0028, 0x1053), VR::DS, "1");
    }
}

/// Other Patient IDs Sequence: the hospital's patient number with its issuer, and the regional
/// network's id when there is one.
fn other_ids(plan: &Plan, t: &Texts, rep: &Repertoire) -> Result<Vec<DataSet>, CharsetError> {
    let mut items = Vec::new();
    let mut own = DataSet::default();
    own.put_str(Tag(0x0010, 0x0020), VR::LO, &t.patient_id);
    own.put_text(Tag(0x0010, 0x0021), VR::LO, &t.institution, rep)?;
    own.put_str(Tag(0x0010, 0x0022), VR::CS, "TEXT");
    items.push(own);
    if let Some(other) = &plan.other_id {
        let mut item = DataSet::default();
        item.put_str(Tag(0x0010, 0x0020), VR::LO, other);
        item.put_text(Tag(0x0010, 0x0021), VR::LO, NETWORK, rep)?;
        item.put_str(Tag(0x0010, 0x0022), VR::CS, "TEXT");
        items.push(item);
    }
    Ok(items)
}

/// Request Attributes Sequence item: the order as the RIS sent it (accession number, procedure
/// ids, the patient's number in the order's description).
fn request(plan: &Plan, t: &Texts, rep: &Repertoire) -> Result<DataSet, CharsetError> {
    let mut item = DataSet::default();
    item.put_str(Tag(0x0008, 0x0050), VR::SH, &plan.accession);
    item.put_text(Tag(0x0032, 0x1060), VR::LO, &t.description, rep)?;
    item.put_text(Tag(0x0040, 0x0007), VR::LO, &t.description, rep)?;
    item.put_str(Tag(0x0040, 0x0009), VR::SH, &plan.accession);
    item.put_str(Tag(0x0040, 0x1001), VR::SH, &plan.accession);
    item.put_text(
        Tag(0x0040, 0x1400),
        VR::LT,
        &format!("患者番号 {} {}", t.patient_id, t.description),
        rep,
    )?;
    Ok(item)
}

/// A small deterministic hash of a pixel's position and the study's phase (texture, speckle).
fn speckle(x: usize, y: usize, phase: u32) -> u32 {
    let h = (x as u32)
        .wrapping_mul(0x9e37_79b1)
        .wrapping_add((y as u32).wrapping_mul(0x85eb_ca6b))
        .wrapping_add(phase.wrapping_mul(0xc2b2_ae35));
    (h ^ (h >> 15)).wrapping_mul(0x2c1b_3c6d) >> 24
}

/// Native pixel data of image `i`: a phantom fitting the modality and body part, drawn from the
/// study's phase (16-bit little endian for CT and MR, 8-bit for CR and US).
fn pixels(plan: &Plan, i: usize) -> Vec<u8> {
    let m = plan.modality;
    let phase = plan.phase.wrapping_add(i as u32 * 7919);
    let (rows, cols) = (m.rows, m.cols);
    let mut out = Vec::with_capacity(rows * cols * usize::from(m.bits / 8));
    for y in 0..rows {
        for x in 0..cols {
            let v = match m.code {
                "CT" | "MR" => cross_section(plan, x, y, phase),
                "US" => sector(x, y, rows, cols, phase),
                _ => radiograph(plan, x, y, rows, cols, phase),
            };
            if m.bits == 16 {
                out.extend_from_slice(&v.to_le_bytes());
            } else {
                out.push(v.min(255) as u8);
            }
        }
    }
    out
}

/// CT (stored values, rescale intercept −1024) and MR: a body outline with texture, lungs in the
/// chest, a skull in the head.
fn cross_section(plan: &Plan, x: usize, y: usize, phase: u32) -> u16 {
    let ct = plan.modality.code == "CT";
    let head = plan.part.0 == "HEAD";
    let (cx, cy) = (31.5, 31.5);
    let ry = if head { 26.0 } else { 21.0 };
    let dx = (x as f64 - cx) / 28.0;
    let dy = (y as f64 - cy) / ry;
    let r = dx * dx + dy * dy;
    let tex = (speckle(x, y, phase) % 24) as u16;
    let lung = |lx: f64| ((x as f64 - lx) / 9.0).powi(2) + ((y as f64 - 30.0) / 12.0).powi(2) < 1.0;
    let (air, soft, bone, low) = if ct {
        (24, 1064, 2024, 224)
    } else {
        (0, 400, 80, 30)
    };
    if r > 1.0 {
        air
    } else if head && r > 0.8 {
        bone
    } else if plan.part.0 == "CHEST" && (lung(20.0) || lung(43.0)) {
        low + tex
    } else {
        soft + tex * if ct { 1 } else { 8 }
    }
}

/// CR: a dark band on the left for annotations, the body part bright on the right.
fn radiograph(plan: &Plan, x: usize, y: usize, rows: usize, cols: usize, phase: u32) -> u16 {
    let dx = (x as f64 - (cols as f64 - 40.0)) / 36.0;
    let dy = (y as f64 - rows as f64 / 2.0) / (rows as f64 / 2.0 - 4.0);
    let r = dx * dx + dy * dy;
    let tex = (speckle(x, y, phase) % 12) as u16;
    if r > 1.0 {
        12 + tex / 2
    } else if plan.part.0 == "CHEST" && dx.abs() > 0.15 && dx.abs() < 0.8 && dy.abs() < 0.7 {
        70 + tex
    } else {
        160 + tex + (y as u16 % 16)
    }
}

/// US: a fan of speckle from an apex at the top right, black elsewhere.
fn sector(x: usize, y: usize, rows: usize, cols: usize, phase: u32) -> u16 {
    let ax = cols as f64 - 40.0;
    let dx = x as f64 - ax;
    let dy = y as f64 - 2.0;
    let radius = (dx * dx + dy * dy).sqrt();
    if dy <= 0.0 || radius > rows as f64 - 6.0 || dx.abs() > dy * 0.6 {
        return 0;
    }
    30 + (speckle(x, y, phase) % 90) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn romaji_is_made_from_the_reading() {
        assert_eq!(romaji("タロウ"), "Tarou");
        assert_eq!(romaji("シンイチ"), "Shin'ichi");
        assert_eq!(romaji("キョウコ"), "Kyouko");
        assert_eq!(romaji(""), "");
    }

    #[test]
    fn names_have_three_component_groups() {
        let n = |kanji: &str, kana: &str| Name {
            kanji: kanji.into(),
            kana: kana.into(),
        };
        assert_eq!(
            person_name(&n("山田", "ヤマダ"), &n("太郎", "タロウ"), true),
            "Yamada^Tarou=山田^太郎=やまだ^たろう"
        );
        assert_eq!(
            person_name(&n("山田", "ヤマダ"), &n("太郎", "タロウ"), false),
            "Yamada^Tarou=山田^太郎=ヤマダ^タロウ"
        );
    }

    #[test]
    fn the_character_set_fits_the_names() {
        assert_eq!(charsets_for(&["Yamada^Tarou=山田^太郎"])[0], CHARSETS[0]);
        assert_eq!(charsets_for(&["Mori^Ogai=森^鷗外"])[0], CHARSETS[1]);
        // Vendor kanji (NEC and IBM rows) never go under IR 87: UTF-8.
        assert_eq!(charsets_for(&["髙橋^一郎"])[0], CHARSETS[2]);
        // 𠮷 is in no JIS set: UTF-8 holds it.
        assert_eq!(charsets_for(&["𠮷田^花子"])[0], CHARSETS[2]);
        let rep = Repertoire::parse(CHARSETS[1]).expect("charset");
        assert!(rep
            .encode("𠮷田", tokumei_dicom::charset::Text::PersonNames)
            .is_err());
    }
}
