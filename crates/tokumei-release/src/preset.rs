//! Policy presets as data: each preset is a TOML file (`presets/*.toml`, RULES §11) that the release
//! build reads; nothing of a preset is a code path of its own.

use serde::{Deserialize, Serialize};

use crate::ReleaseError;

/// Granularity of released event dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dates {
    /// YYYY-MM-DD.
    Day,
    /// YYYY-MM.
    Month,
    /// YYYY.
    Year,
    /// YYYY-MM-DD shifted by a consistent random offset per person (±182 days).
    Shift,
    /// Days since the person's index date (their first event in the release period), an integer.
    Relative,
}

/// Granularity of the released birth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Birth {
    /// YYYY-MM.
    YearMonth,
    /// YYYY.
    Year,
}

/// The finest geography released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Geography {
    /// Municipality code (6 digits).
    Municipality,
    /// Prefecture code (2 digits).
    Prefecture,
}

/// A policy preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Name.
    pub name: String,
    /// `anonymized` or `pseudonymized`.
    pub kind: String,
    /// Event dates.
    pub dates: Dates,
    /// Birth.
    pub birth: Birth,
    /// Ages at or above are released as `N+` with the birth removed; 0 for none.
    pub top_code_age: u32,
    /// Finest geography.
    pub geography: Geography,
    /// `remove` (the only policy: free text never leaves).
    pub free_text: String,
    /// Smallest equivalence class over the person quasi-identifiers; 0 for none.
    pub k: usize,
    /// Largest share of the cohort suppressed to reach k.
    pub suppression_limit: f64,
    /// Smallest number of persons holding a released code; 0 for none.
    pub rare_code_persons: usize,
    /// Numeric values clipped to [Pn, P(100-n)]; 0 for none.
    pub clip_percentile: u32,
    /// Highest prosecutor risk of the re-identification test.
    pub max_prosecutor_risk: f64,
    /// Highest linkage-attack success of the re-identification test.
    pub max_linkage_success: f64,
    /// Highest membership-inference advantage of the re-identification test (1 for none).
    #[serde(default = "one")]
    pub max_membership_advantage: f64,
    /// Highest share of persons with a unique event trajectory (month, code) in any coded event table;
    /// the build coarsens codes, truncates and finally drops the events of unique persons until it holds
    /// (1 for none).
    #[serde(default = "one")]
    pub max_trajectory_unique: f64,
    /// Highest share of the release's persons that an attacker joining it to any earlier release of
    /// the same kind, on every value but the pseudonym, links to exactly one person (rule 72.7; 1 for
    /// none).
    #[serde(default = "one")]
    pub max_cross_release_linkable: f64,
    /// (k, k^m)-anonymity over persons with their events: any `event_m` events an intruder knows,
    /// with the person's quasi-identifiers, are shared by at least `k` persons (the engine's
    /// `SetValued`); 0 for none (then the persons alone are k-anonymous).
    #[serde(default)]
    pub event_m: usize,
    /// The highest level the search may give event codes (1: ICD-10 at least at its 3-character
    /// category, drugs at least at their ingredient; codes without a class are then only
    /// suppressed); none: up to `*`.
    #[serde(default)]
    pub event_max_code_level: Option<usize>,
    /// Weight of the quasi-identifiers' loss against the events' loss in that search.
    #[serde(default = "half")]
    pub event_qi_weight: f64,
    /// The share of event rows that search should release: transformations that keep it rank
    /// before those that do not (0: no floor).
    #[serde(default)]
    pub event_min_rows_released: f64,
    /// Per event kind, the codes held by the most persons that the search keeps whole as far as it
    /// can (the engine's `KmConfig::protect`; 0: none): the utility report's top conditions and
    /// drugs.
    #[serde(default)]
    pub event_protect: usize,
    /// The code level those codes are counted at (1: ICD-10 3-character categories, drug
    /// ingredients).
    #[serde(default = "first_level")]
    pub event_protect_level: usize,
    /// The largest relative error of a protected code's prevalence the search should keep:
    /// transformations within it rank before those beyond (1: no ceiling).
    #[serde(default = "one")]
    pub event_max_protected_error: f64,
    /// Highest share of the release's persons singled out correctly by an intruder who knows their
    /// quasi-identifiers and `event_m` of their events (1 for none).
    #[serde(default = "one")]
    pub max_event_attack: f64,
    /// The PS3.15 Annex E options (DCM codes) applied to released images with the Basic Profile;
    /// none: the release kind's (113101 Clean Pixel Data and 113105 Clean Descriptors, with 113108
    /// and 113109 for a pseudonymized release). The dates option (113106 or 113107) follows `dates`
    /// and is never listed; 113110 (retain UIDs) is refused: a release maps every UID under its own
    /// key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_options: Option<Vec<String>>,
}

/// The options named by DCM codes: each known, listed once, none of the dates' or UIDs'.
fn image_options(codes: &[String]) -> Result<Vec<tokumei_dicom::profile::ProfileOption>, String> {
    use tokumei_dicom::profile::ProfileOption;
    let mut out: Vec<ProfileOption> = Vec::new();
    for code in codes {
        let o = ProfileOption::ALL
            .into_iter()
            .find(|o| o.code() == code.trim())
            .ok_or_else(|| {
                format!("{code} is not a DCM code of an Annex E option (113101–113112)")
            })?;
        match o {
            ProfileOption::RetainFullDates | ProfileOption::RetainModifiedDates => {
                return Err(format!("{code}: image dates follow the preset's `dates`"))
            }
            ProfileOption::RetainUids => {
                return Err(format!(
                    "{code}: a release maps every UID under its own key"
                ))
            }
            _ if out.contains(&o) => return Err(format!("{code} is listed twice")),
            _ => out.push(o),
        }
    }
    Ok(out)
}

fn first_level() -> usize {
    1
}

fn one() -> f64 {
    1.0
}

fn half() -> f64 {
    0.5
}

/// The presets shipped.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "jp-anonymized",
        include_str!("../presets/jp-anonymized.toml"),
    ),
    (
        "jp-pseudonymized",
        include_str!("../presets/jp-pseudonymized.toml"),
    ),
    (
        "hipaa-safe-harbor",
        include_str!("../presets/hipaa-safe-harbor.toml"),
    ),
    ("ema-0070", include_str!("../presets/ema-0070.toml")),
];

impl Preset {
    /// Parses a preset file and checks it.
    pub fn parse(text: &str, file: &str) -> Result<Preset, ReleaseError> {
        let p: Preset = toml::from_str(text)
            .map_err(|e| ReleaseError::Output(format!("{file}: {}", e.message())))?;
        let bad = |what: &str| Err(ReleaseError::Output(format!("{file}: {what}")));
        if p.kind != "anonymized" && p.kind != "pseudonymized" {
            return bad("kind is anonymized or pseudonymized");
        }
        if p.free_text != "remove" {
            return bad("free_text is remove (free text never leaves)");
        }
        if !(0.0..=1.0).contains(&p.suppression_limit) {
            return bad("suppression_limit is between 0 and 1");
        }
        if p.clip_percentile >= 50 {
            return bad("clip_percentile is below 50");
        }
        if !(0.0..=1.0).contains(&p.max_prosecutor_risk)
            || !(0.0..=1.0).contains(&p.max_linkage_success)
            || !(0.0..=1.0).contains(&p.max_membership_advantage)
            || !(0.0..=1.0).contains(&p.max_trajectory_unique)
            || !(0.0..=1.0).contains(&p.max_cross_release_linkable)
            || !(0.0..=1.0).contains(&p.max_event_attack)
            || !(0.0..=1.0).contains(&p.event_qi_weight)
            || !(0.0..=1.0).contains(&p.event_min_rows_released)
            || !(0.0..=1.0).contains(&p.event_max_protected_error)
        {
            return bad("risk thresholds are between 0 and 1");
        }
        if let Some(codes) = &p.image_options {
            if let Err(why) = image_options(codes) {
                return bad(&format!("image_options: {why}"));
            }
        }
        Ok(p)
    }

    /// The image options this preset chooses, or none for the release kind's.
    pub fn image_profile_options(
        &self,
    ) -> Result<Option<Vec<tokumei_dicom::profile::ProfileOption>>, ReleaseError> {
        match &self.image_options {
            None => Ok(None),
            Some(codes) => image_options(codes)
                .map(Some)
                .map_err(|why| ReleaseError::Output(format!("image_options: {why}"))),
        }
    }

    /// A shipped preset by name.
    pub fn named(name: &str) -> Result<Preset, ReleaseError> {
        let (_, text) = PRESETS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            ReleaseError::Output(format!(
                "no preset {name} (presets: {})",
                PRESETS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        Preset::parse(text, name)
    }

    /// The default preset of a release kind.
    pub fn for_kind(kind: tokumei_review::ReleaseKind) -> Result<Preset, ReleaseError> {
        Preset::named(match kind {
            tokumei_review::ReleaseKind::Anonymized => "jp-anonymized",
            tokumei_review::ReleaseKind::Pseudonymized => "jp-pseudonymized",
            tokumei_review::ReleaseKind::Feasibility => {
                return Err(ReleaseError::Input(
                    "a feasibility application is answered with counts, never a release".into(),
                ))
            }
        })
    }

    /// The preset a build uses: `spec` is a TOML file (when such a file exists) or a shipped
    /// preset's name; without it, the kind's own. Then the overrides given replace its figures.
    /// A file that cannot be read, or a share outside 0–1, is [`ReleaseError::Input`].
    pub fn resolve(
        spec: Option<&str>,
        kind: tokumei_review::ReleaseKind,
        overrides: &Overrides,
    ) -> Result<Preset, ReleaseError> {
        let mut p = match spec {
            Some(file) if std::path::Path::new(file).is_file() => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| ReleaseError::Input(format!("{file}: {e}")))?;
                Preset::parse(&text, file)?
            }
            Some(name) => Preset::named(name)?,
            None => Preset::for_kind(kind)?,
        };
        overrides.apply(&mut p)?;
        Ok(p)
    }
}

/// Figures that replace a preset's for one build (`None` keeps the preset's).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// k over the person quasi-identifiers.
    pub k: Option<usize>,
    /// Share of persons that may be suppressed.
    pub suppression_limit: Option<f64>,
    /// Highest prosecutor risk.
    pub max_prosecutor_risk: Option<f64>,
    /// Highest linkage-attack success.
    pub max_linkage_success: Option<f64>,
    /// Highest membership-inference advantage.
    pub max_membership_advantage: Option<f64>,
    /// Highest share of unique trajectories.
    pub max_trajectory_unique: Option<f64>,
    /// Highest share of persons linked one-to-one to an earlier release.
    pub max_cross_release_linkable: Option<f64>,
    /// m of (k, k^m)-anonymity over persons with their events (0: off).
    pub event_m: Option<usize>,
    /// Highest share singled out by the m-event intruder.
    pub max_event_attack: Option<f64>,
    /// The share of event rows the (k, k^m) search should release.
    pub event_min_rows_released: Option<f64>,
    /// The largest relative error of a protected code's prevalence that search should keep.
    pub event_max_protected_error: Option<f64>,
}

impl Overrides {
    fn apply(&self, p: &mut Preset) -> Result<(), ReleaseError> {
        if let Some(k) = self.k {
            p.k = k;
        }
        if let Some(m) = self.event_m {
            p.event_m = m;
        }
        for (v, field) in [
            (self.suppression_limit, &mut p.suppression_limit),
            (self.max_prosecutor_risk, &mut p.max_prosecutor_risk),
            (self.max_linkage_success, &mut p.max_linkage_success),
            (
                self.max_membership_advantage,
                &mut p.max_membership_advantage,
            ),
            (self.max_trajectory_unique, &mut p.max_trajectory_unique),
            (
                self.max_cross_release_linkable,
                &mut p.max_cross_release_linkable,
            ),
            (self.max_event_attack, &mut p.max_event_attack),
            (self.event_min_rows_released, &mut p.event_min_rows_released),
            (
                self.event_max_protected_error,
                &mut p.event_max_protected_error,
            ),
        ] {
            if let Some(v) = v {
                if !(0.0..=1.0).contains(&v) {
                    return Err(ReleaseError::Input(
                        "limits and risk thresholds are between 0 and 1".into(),
                    ));
                }
                *field = v;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preset_is_resolved_from_a_name_or_the_kind_then_overridden() {
        use tokumei_review::ReleaseKind;
        let o = Overrides {
            k: Some(3),
            suppression_limit: Some(0.2),
            ..Default::default()
        };
        let p = Preset::resolve(None, ReleaseKind::Anonymized, &o).expect("preset");
        assert_eq!(
            (p.name.as_str(), p.k, p.suppression_limit),
            ("jp-anonymized", 3, 0.2)
        );
        let q = Preset::resolve(
            Some("jp-pseudonymized"),
            ReleaseKind::Anonymized,
            &Overrides::default(),
        )
        .expect("named");
        assert_eq!(q.name, "jp-pseudonymized");
        let bad = Overrides {
            max_prosecutor_risk: Some(1.5),
            ..Default::default()
        };
        assert!(matches!(
            Preset::resolve(None, ReleaseKind::Anonymized, &bad),
            Err(ReleaseError::Input(_))
        ));
    }

    #[test]
    fn every_shipped_preset_parses() {
        for (name, _) in PRESETS {
            let p = Preset::named(name).expect(name);
            assert_eq!(&p.name, name);
        }
        let jp = Preset::named("jp-anonymized").expect("jp");
        assert_eq!((jp.k, jp.rare_code_persons, jp.top_code_age), (10, 10, 90));
        assert_eq!(jp.dates, Dates::Month);
        assert_eq!(
            (jp.max_trajectory_unique, jp.max_cross_release_linkable),
            (1.0, 0.05)
        );
        assert_eq!((jp.event_m, jp.max_event_attack), (2, 0.05));
        // A threshold a preset leaves out is unchecked (1).
        let hipaa = Preset::named("hipaa-safe-harbor").expect("hipaa");
        assert_eq!(hipaa.max_cross_release_linkable, 1.0);
    }

    #[test]
    fn bad_presets_name_the_problem() {
        let text = include_str!("../presets/jp-anonymized.toml");
        let e = Preset::parse(&text.replace("k = 10", "k = 10\nextra = 1"), "x.toml")
            .expect_err("unknown key");
        assert!(e.to_string().contains("x.toml"), "{e}");
        let e = Preset::parse(
            &text.replace("suppression_limit = 0.05", "suppression_limit = 2"),
            "x",
        )
        .expect_err("range");
        assert!(e.to_string().contains("suppression_limit"), "{e}");
        let e = Preset::parse(
            &text.replace(
                "max_cross_release_linkable = 0.05",
                "max_cross_release_linkable = -0.5",
            ),
            "x",
        )
        .expect_err("range");
        assert!(e.to_string().contains("between 0 and 1"), "{e}");
        for (codes, why) in [
            ("[\"113101\", \"113107\"]", "dates"),
            ("[\"113110\"]", "UID"),
            ("[\"113105\", \"113105\"]", "twice"),
            ("[\"999999\"]", "not a DCM code"),
        ] {
            let e = Preset::parse(&format!("{text}\nimage_options = {codes}\n"), "x")
                .expect_err("image options");
            assert!(e.to_string().contains(why), "{e}");
        }
        let p = Preset::parse(
            &format!("{text}\nimage_options = [\"113101\", \"113102\", \"113105\"]\n"),
            "x",
        )
        .expect("options");
        let codes: Vec<&str> = p
            .image_profile_options()
            .expect("options")
            .expect("chosen")
            .iter()
            .map(|o| o.code())
            .collect();
        assert_eq!(codes, ["113101", "113102", "113105"]);
    }
}
