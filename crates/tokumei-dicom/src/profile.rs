//! The Application Level Confidentiality Profile (PS3.15 Annex E): Table E.1-1 with the action of
//! the Basic Profile and of each option for every attribute it lists, and the action a profile
//! made of the Basic Profile and chosen options takes on a tag.
//!
//! Where several chosen options name an attribute, cleaning (C) wins over keeping (K): an option
//! never makes another one less protective. Retaining full dates (113106) and modified dates
//! (113107) exclude each other.

use std::collections::HashMap;
use std::sync::Arc;

use dicom_core::Tag;

/// Table E.1-1, as shipped (see its header for the source).
const TABLE: &str = include_str!("../profiles/annex-e-2024b.tsv");

/// What to do with an attribute (PS3.15 E.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// D: replace with a dummy value consistent with the VR.
    Dummy,
    /// Z: replace with a zero length value, or a dummy.
    Zero,
    /// X: remove.
    Remove,
    /// K: keep (sequences cleaned all the same).
    Keep,
    /// C: clean: keep the meaning, replace identifying text.
    Clean,
    /// U: replace the UID by one consistent within the release.
    Uid,
    /// X/Z: remove, or zero where the IOD requires the attribute (type 2).
    RemoveOrZero,
    /// X/D: remove, or dummy where the IOD requires it (type 1).
    RemoveOrDummy,
    /// Z/D: zero, or dummy where the IOD requires it (type 1).
    ZeroOrDummy,
    /// X/Z/D: remove, zero or dummy as the IOD's type wants.
    RemoveZeroOrDummy,
    /// X/Z/U*: remove, zero, or replace the UID (sequences of references).
    RemoveZeroOrUid,
}

impl Action {
    fn parse(code: &str) -> Option<Action> {
        Some(match code {
            "D" => Action::Dummy,
            "Z" => Action::Zero,
            "X" => Action::Remove,
            "K" => Action::Keep,
            "C" => Action::Clean,
            "U" => Action::Uid,
            "X/Z" => Action::RemoveOrZero,
            "X/D" => Action::RemoveOrDummy,
            "Z/D" => Action::ZeroOrDummy,
            "X/Z/D" => Action::RemoveZeroOrDummy,
            "X/Z/U*" => Action::RemoveZeroOrUid,
            _ => return None,
        })
    }
}

/// The Basic Profile and its options, by their DCM codes (PS3.16 CID 7050).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProfileOption {
    /// 113101 Clean Pixel Data.
    CleanPixelData,
    /// 113102 Clean Recognizable Visual Features.
    CleanVisualFeatures,
    /// 113103 Clean Graphics.
    CleanGraphics,
    /// 113104 Clean Structured Content.
    CleanStructuredContent,
    /// 113105 Clean Descriptors.
    CleanDescriptors,
    /// 113106 Retain Longitudinal Temporal Information with Full Dates.
    RetainFullDates,
    /// 113107 Retain Longitudinal Temporal Information with Modified Dates.
    RetainModifiedDates,
    /// 113108 Retain Patient Characteristics.
    RetainPatientCharacteristics,
    /// 113109 Retain Device Identity.
    RetainDeviceIdentity,
    /// 113110 Retain UIDs.
    RetainUids,
    /// 113111 Retain Safe Private.
    RetainSafePrivate,
    /// 113112 Retain Institution Identity.
    RetainInstitutionIdentity,
}

impl ProfileOption {
    /// Every option, in code order.
    pub const ALL: [ProfileOption; 12] = [
        ProfileOption::CleanPixelData,
        ProfileOption::CleanVisualFeatures,
        ProfileOption::CleanGraphics,
        ProfileOption::CleanStructuredContent,
        ProfileOption::CleanDescriptors,
        ProfileOption::RetainFullDates,
        ProfileOption::RetainModifiedDates,
        ProfileOption::RetainPatientCharacteristics,
        ProfileOption::RetainDeviceIdentity,
        ProfileOption::RetainUids,
        ProfileOption::RetainSafePrivate,
        ProfileOption::RetainInstitutionIdentity,
    ];

    /// Its DCM code (`113101` …).
    pub fn code(self) -> &'static str {
        match self {
            ProfileOption::CleanPixelData => "113101",
            ProfileOption::CleanVisualFeatures => "113102",
            ProfileOption::CleanGraphics => "113103",
            ProfileOption::CleanStructuredContent => "113104",
            ProfileOption::CleanDescriptors => "113105",
            ProfileOption::RetainFullDates => "113106",
            ProfileOption::RetainModifiedDates => "113107",
            ProfileOption::RetainPatientCharacteristics => "113108",
            ProfileOption::RetainDeviceIdentity => "113109",
            ProfileOption::RetainUids => "113110",
            ProfileOption::RetainSafePrivate => "113111",
            ProfileOption::RetainInstitutionIdentity => "113112",
        }
    }

    /// The option of a DCM code.
    pub fn of_code(code: &str) -> Option<ProfileOption> {
        ProfileOption::ALL
            .into_iter()
            .find(|o| o.code() == code.trim())
    }

    /// Its meaning, as PS3.16 words it.
    pub fn meaning(self) -> &'static str {
        match self {
            ProfileOption::CleanPixelData => "Clean Pixel Data Option",
            ProfileOption::CleanVisualFeatures => "Clean Recognizable Visual Features Option",
            ProfileOption::CleanGraphics => "Clean Graphics Option",
            ProfileOption::CleanStructuredContent => "Clean Structured Content Option",
            ProfileOption::CleanDescriptors => "Clean Descriptors Option",
            ProfileOption::RetainFullDates => {
                "Retain Longitudinal Temporal Information Full Dates Option"
            }
            ProfileOption::RetainModifiedDates => {
                "Retain Longitudinal Temporal Information Modified Dates Option"
            }
            ProfileOption::RetainPatientCharacteristics => "Retain Patient Characteristics Option",
            ProfileOption::RetainDeviceIdentity => "Retain Device Identity Option",
            ProfileOption::RetainUids => "Retain UIDs Option",
            ProfileOption::RetainSafePrivate => "Retain Safe Private Option",
            ProfileOption::RetainInstitutionIdentity => "Retain Institution Identity Option",
        }
    }
}

/// Why a profile cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// A line of the table that does not parse (the shipped table is checked by a test).
    #[error("Table E.1-1, line {0}: {1}")]
    Table(usize, String),
    /// A profile file that does not parse or names an unknown option.
    #[error("profile: {0}")]
    File(String),
    /// Options that exclude each other.
    #[error("options {0} and {1} exclude each other")]
    Exclusive(&'static str, &'static str),
}

/// One row of Table E.1-1.
#[derive(Debug, Clone)]
pub struct Row {
    /// The tag, a pattern with `X` for any hex digit (`50XXXXXX`), or `PRIVATE` for the row of
    /// every private attribute (handled by [`crate::profile::Profile::private`]).
    pub pattern: String,
    /// The attribute's name.
    pub name: String,
    /// The Basic Profile's action.
    pub basic: Action,
    /// Each option's action where the table gives one.
    pub options: Vec<(ProfileOption, Action)>,
}

/// The table, parsed.
pub fn table() -> Result<Vec<Row>, ProfileError> {
    let mut lines = TABLE
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#'));
    let (_, header) = lines
        .next()
        .ok_or_else(|| ProfileError::Table(0, "no header".into()))?;
    let codes: Vec<&str> = header.split('\t').skip(3).collect();
    let mut rows = Vec::new();
    for (n, line) in lines {
        let bad = |why: &str| ProfileError::Table(n + 1, why.to_string());
        let cells: Vec<&str> = line.split('\t').collect();
        if cells.len() != codes.len() + 3 {
            return Err(bad("wrong number of columns"));
        }
        let basic = Action::parse(cells[2]).ok_or_else(|| bad("unknown basic action"))?;
        let mut options = Vec::new();
        for (code, cell) in codes.iter().zip(&cells[3..]) {
            if cell.is_empty() {
                continue;
            }
            let option = ProfileOption::of_code(code).ok_or_else(|| bad("unknown option code"))?;
            options.push((
                option,
                Action::parse(cell).ok_or_else(|| bad("unknown action"))?,
            ));
        }
        rows.push(Row {
            pattern: cells[0].to_string(),
            name: cells[1].to_string(),
            basic,
            options,
        });
    }
    Ok(rows)
}

/// The Basic Profile with chosen options: the action on each tag the table lists.
///
/// Cloning is cheap (each file of a batch takes one): the resolved table is shared.
#[derive(Debug, Clone)]
pub struct Profile {
    options: Vec<ProfileOption>,
    exact: Arc<HashMap<u32, Action>>,
    patterns: Arc<[(u32, u32, Action)]>,
    private: Action,
}

impl Profile {
    /// The profile of these options.
    pub fn new(options: &[ProfileOption]) -> Result<Profile, ProfileError> {
        let mut chosen = options.to_vec();
        chosen.sort_unstable();
        chosen.dedup();
        if chosen.contains(&ProfileOption::RetainFullDates)
            && chosen.contains(&ProfileOption::RetainModifiedDates)
        {
            return Err(ProfileError::Exclusive("113106", "113107"));
        }
        let mut exact = HashMap::new();
        let mut patterns = Vec::new();
        let mut private = Action::Remove;
        for row in table()? {
            let action = resolve(&row, &chosen);
            if row.pattern == "PRIVATE" {
                private = action;
                continue;
            }
            let (value, mask) = pattern(&row.pattern);
            if mask == u32::MAX {
                exact.insert(value, action);
            } else {
                patterns.push((value, mask, action));
            }
        }
        Ok(Profile {
            options: chosen,
            exact: Arc::new(exact),
            patterns: patterns.into(),
            private,
        })
    }

    /// The action on private attributes: remove, or clean (keep those listed safe) under 113111.
    pub fn private(&self) -> Action {
        self.private
    }

    /// The options chosen, in code order.
    pub fn options(&self) -> &[ProfileOption] {
        &self.options
    }

    /// Whether an option was chosen.
    pub fn has(&self, option: ProfileOption) -> bool {
        self.options.contains(&option)
    }

    /// The action on a tag the table lists; `None` for a tag it does not list.
    pub fn action(&self, tag: Tag) -> Option<Action> {
        let t = (u32::from(tag.group()) << 16) | u32::from(tag.element());
        self.exact.get(&t).copied().or_else(|| {
            self.patterns
                .iter()
                .find(|(v, m, _)| t & m == *v)
                .map(|(_, _, a)| *a)
        })
    }
}

/// The action of a row under chosen options: an option's C before its K, else the basic one.
fn resolve(row: &Row, chosen: &[ProfileOption]) -> Action {
    let of_chosen: Vec<Action> = row
        .options
        .iter()
        .filter(|(o, _)| chosen.contains(o))
        .map(|(_, a)| *a)
        .collect();
    if of_chosen.contains(&Action::Clean) {
        Action::Clean
    } else if let Some(a) = of_chosen.first() {
        *a
    } else {
        row.basic
    }
}

/// A tag pattern as value and mask (`X` matches any hex digit).
fn pattern(p: &str) -> (u32, u32) {
    let mut value = 0u32;
    let mut mask = 0u32;
    for c in p.chars() {
        value <<= 4;
        mask <<= 4;
        if let Some(d) = c.to_digit(16) {
            value |= d;
            mask |= 0xf;
        }
    }
    (value, mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_whole() {
        let rows = table().expect("table");
        assert_eq!(rows.len(), 621);
        assert!(rows
            .iter()
            .all(|r| r.pattern.len() == 8 || r.pattern == "PRIVATE"));
        assert_eq!(Profile::new(&[]).expect("basic").private(), Action::Remove);
        let safe = Profile::new(&[ProfileOption::RetainSafePrivate]).expect("safe");
        assert_eq!(safe.private(), Action::Clean);
    }

    #[test]
    fn options_change_the_basic_action_as_the_table_says() {
        let basic = Profile::new(&[]).expect("basic");
        let name = Tag(0x0010, 0x0010);
        let study_date = Tag(0x0008, 0x0020);
        let sop_uid = Tag(0x0008, 0x0018);
        let serial = Tag(0x0018, 0x1000);
        assert_eq!(basic.action(name), Some(Action::Zero));
        assert_eq!(basic.action(sop_uid), Some(Action::Uid));
        assert_eq!(basic.action(Tag(0x6002, 0x3000)), Some(Action::Remove));
        assert_eq!(basic.action(Tag(0x0008, 0x0060)), None);
        let full = Profile::new(&[ProfileOption::RetainFullDates]).expect("full");
        assert_eq!(full.action(study_date), Some(Action::Keep));
        let modified = Profile::new(&[ProfileOption::RetainModifiedDates]).expect("modified");
        assert_eq!(modified.action(study_date), Some(Action::Clean));
        let uids = Profile::new(&[ProfileOption::RetainUids]).expect("uids");
        assert_eq!(uids.action(sop_uid), Some(Action::Keep));
        let device = Profile::new(&[ProfileOption::RetainDeviceIdentity]).expect("device");
        assert_eq!(device.action(serial), Some(Action::Keep));
        assert!(matches!(
            Profile::new(&[
                ProfileOption::RetainFullDates,
                ProfileOption::RetainModifiedDates
            ]),
            Err(ProfileError::Exclusive(..))
        ));
        let graphics = Profile::new(&[ProfileOption::CleanGraphics]).expect("graphics");
        assert_eq!(graphics.action(Tag(0x6000, 0x3000)), Some(Action::Clean));
    }
}

/// A profile file: the options by DCM code, and the private elements safe to keep under
/// 113111 (`[[safe_private]]` with `creator` and `element`, the element's low byte).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Options by DCM code (`"113107"`).
    #[serde(default)]
    pub options: Vec<String>,
    /// Private elements listed safe.
    #[serde(default)]
    pub safe_private: Vec<SafePrivate>,
}

/// A private element listed safe: its private creator and element byte.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafePrivate {
    /// The private creator's value.
    pub creator: String,
    /// The element's low byte (`0x01` for `(gggg,xx01)`).
    pub element: u8,
}

/// The presets shipped: `basic` (the Basic Profile alone) and `research` (modified dates,
/// patient characteristics and device identity retained, descriptors cleaned).
pub const PRESETS: &[(&str, &str)] = &[
    ("basic", "options = []\n"),
    (
        "research",
        "options = [\"113105\", \"113107\", \"113108\", \"113109\"]\n",
    ),
];

impl ProfileFile {
    /// Parses a profile file's text.
    pub fn parse(text: &str) -> Result<ProfileFile, ProfileError> {
        toml::from_str(text).map_err(|e| ProfileError::File(e.message().to_string()))
    }

    /// A preset by name.
    pub fn preset(name: &str) -> Option<ProfileFile> {
        PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, t)| ProfileFile::parse(t).ok())
    }

    /// The profile and the safe private list it names.
    pub fn resolve(&self) -> Result<(Profile, Vec<(String, u8)>), ProfileError> {
        let mut options = Vec::new();
        for code in &self.options {
            options.push(
                ProfileOption::of_code(code)
                    .ok_or_else(|| ProfileError::File(format!("unknown option {code}")))?,
            );
        }
        let safe = self
            .safe_private
            .iter()
            .map(|s| (s.creator.trim().to_string(), s.element))
            .collect();
        Ok((Profile::new(&options)?, safe))
    }
}
