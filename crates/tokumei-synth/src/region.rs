//! The synthetic region: 青森県's real municipalities, towns and postal codes, its secondary medical
//! areas, named facilities and the insurers that cover its residents.

use rand::Rng;
use tokumei_model::checkdigit::{insurer_check_digit, with_insurer_check_digit};

use crate::rng::{chance, Weighted};
use crate::tsv;
use crate::SynthError;

/// Prefecture of the region.
pub const PREFECTURE: &str = "青森県";
/// Two-digit prefecture code of 青森県.
pub const PREFECTURE_CODE: &str = "02";

/// A town (町名・大字) with its postal code.
#[derive(Debug, Clone)]
pub struct Town {
    /// Name in kanji.
    pub name: String,
    /// 7-digit postal code.
    pub postal: String,
}

/// A municipality of the region.
#[derive(Debug, Clone)]
pub struct Municipality {
    /// 6-digit local government code.
    pub code6: String,
    /// Name.
    pub name: String,
    /// Reading.
    pub kana: String,
    /// city / town / village.
    pub kind: String,
    /// 2020 census population (relative weight).
    pub population: u32,
    /// Secondary medical area (二次医療圏).
    pub medical_area: String,
    /// Towns with postal codes.
    pub towns: Vec<Town>,
}

impl Municipality {
    /// The 3-digit municipality part of the code (used in insurer numbers).
    pub fn jis3(&self) -> &str {
        &self.code6[2..5]
    }
}

/// What a provider is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// A hospital: EMR (SS-MIX2) and claims.
    Hospital,
    /// A clinic: claims.
    Clinic,
    /// A municipality: 除票 (death records) and 国保 特定健診.
    Municipality,
    /// An insurer or checkup institution: 特定健診 of employees' insurance.
    Checkup,
}

/// Role of a hospital in the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HospitalRole {
    /// National hospital organisation.
    National,
    /// University hospital (tertiary, rare diseases).
    University,
    /// Public area hospital.
    Area,
}

/// A data provider of the region.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Provider {
    /// Provider id, also its directory name under `sources/`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ProviderKind,
    /// Municipality code where it sits.
    pub municipality_code: String,
    /// 10-digit medical institution code (prefecture + 点数表 + 7 digits), for facilities.
    pub facility_code: Option<String>,
    /// Hospital role, for hospitals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hospital_role: Option<HospitalRole>,
    /// Medical areas it serves as the area hospital.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub serves_areas: Vec<String>,
    /// For hospitals: how the electronic medical record is exported (SS-MIX2 storage, or JP Core FHIR
    /// bundles from newer systems).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emr_export: Option<EmrExport>,
}

/// How a hospital exports its electronic medical record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmrExport {
    /// SS-MIX2 standardized storage (HL7 v2.5), as one ZIP archive of the storage tree.
    Ssmix2,
    /// JP Core FHIR R4 bundles, one per patient, as NDJSON.
    JpCoreFhir,
}

/// Hospitals (by index in the list) whose newer systems export JP Core FHIR instead of SS-MIX2.
const FHIR_HOSPITALS: &[usize] = &[5, 6];

/// An insurer of employees' health insurance.
#[derive(Debug, Clone)]
pub struct EmployerInsurer {
    /// Scheme.
    pub kind: tokumei_model::InsuranceKind,
    /// 8-digit insurer number with check digit.
    pub number: String,
}

/// The whole region.
#[derive(Debug, Clone)]
pub struct Region {
    /// Municipalities in code order.
    pub municipalities: Vec<Municipality>,
    /// Population weights over municipalities.
    pub muni_weights: Weighted,
    /// Providers; index is the provider number used throughout the generator.
    pub providers: Vec<Provider>,
    /// Clinic provider indices per municipality.
    pub clinics_by_muni: Vec<Vec<usize>>,
    /// Area hospital provider index per municipality.
    pub area_hospital_by_muni: Vec<usize>,
    /// Provider index of the university hospital.
    pub university_hospital: usize,
    /// Provider index of each municipality.
    pub municipality_provider: Vec<usize>,
    /// Provider index of 協会けんぽ (its checkups).
    pub kyokai_provider: usize,
    /// Provider index of the checkup centre serving 健保組合 and 共済.
    pub kenshin_center_provider: usize,
    /// 協会けんぽ 青森支部 insurer number.
    pub kyokai: EmployerInsurer,
    /// 健保組合.
    pub kumiai: Vec<EmployerInsurer>,
    /// 共済組合.
    pub kyosai: Vec<EmployerInsurer>,
}

const MUNICIPALITIES: &str = include_str!("../data/aomori_municipalities.tsv");
const TOWNS: &str = include_str!("../data/aomori_towns.tsv");

/// The hospitals of the region: real institutions (facility codes are synthetic).
const HOSPITALS: &[(&str, &str, HospitalRole, &[&str])] = &[
    (
        "国立病院機構弘前総合医療センター",
        "022021",
        HospitalRole::National,
        &["津軽地域"],
    ),
    (
        "弘前大学医学部附属病院",
        "022021",
        HospitalRole::University,
        &[],
    ),
    (
        "青森県立中央病院",
        "022012",
        HospitalRole::Area,
        &["青森地域"],
    ),
    (
        "八戸市立市民病院",
        "022039",
        HospitalRole::Area,
        &["八戸地域"],
    ),
    (
        "つがる総合病院",
        "022055",
        HospitalRole::Area,
        &["西北五地域"],
    ),
    (
        "十和田市立中央病院",
        "022063",
        HospitalRole::Area,
        &["上十三地域"],
    ),
    ("むつ総合病院", "022080", HospitalRole::Area, &["下北地域"]),
];

/// Clinic name patterns (fictional clinics).
const CLINIC_PATTERNS: &[&str] = &[
    "{}内科クリニック",
    "{}ファミリークリニック",
    "{}診療所",
    "{}内科医院",
    "{}こころとからだのクリニック",
    "{}循環器内科",
    "{}胃腸科内科",
    "{}ホームクリニック",
];

/// Residents per clinic, to size the clinic list.
const RESIDENTS_PER_CLINIC: u32 = 20_000;

fn facility_code(seq: usize) -> Option<String> {
    // 郡市区 (2) + 番号 (4) + check (1), prefixed by prefecture and 点数表 1 (医科).
    let body = format!("{:02}{:04}", 1 + seq / 9000 % 99, 1 + seq % 9000);
    let check = insurer_check_digit(&body)?;
    Some(format!("{PREFECTURE_CODE}1{body}{check}"))
}

fn insurer(
    kind: tokumei_model::InsuranceKind,
    body: String,
) -> Result<EmployerInsurer, SynthError> {
    let number = with_insurer_check_digit(&body).ok_or(SynthError::Data {
        table: "insurers",
        line: 0,
        reason: format!("bad insurer body {body}"),
    })?;
    Ok(EmployerInsurer { kind, number })
}

/// The municipalities of the embedded table, with their towns.
fn municipalities() -> Result<Vec<Municipality>, SynthError> {
    let mut municipalities = Vec::new();
    for (i, r) in tsv::rows(
        "aomori_municipalities",
        MUNICIPALITIES,
        &["code6", "name", "kana", "kind", "county", "population"],
    )?
    .into_iter()
    .enumerate()
    {
        municipalities.push(Municipality {
            code6: r[0].to_string(),
            name: r[1].to_string(),
            kana: r[2].to_string(),
            kind: r[3].to_string(),
            population: tsv::num("aomori_municipalities", i + 2, r[5])?,
            medical_area: tokumei_japan::place::medical_area_of_code(r[0])
                .ok_or_else(|| SynthError::Data {
                    table: "aomori_municipalities",
                    line: i + 2,
                    reason: format!("no 二次医療圏 for municipality {}", r[0]),
                })?
                .to_string(),
            towns: Vec::new(),
        });
    }
    add_towns(&mut municipalities)?;
    Ok(municipalities)
}

/// Adds the towns of the embedded table to their municipalities; every municipality needs one.
fn add_towns(municipalities: &mut [Municipality]) -> Result<(), SynthError> {
    for (i, r) in tsv::rows(
        "aomori_towns",
        TOWNS,
        &["code6", "postal", "town", "town_kana"],
    )?
    .into_iter()
    .enumerate()
    {
        let m = municipalities
            .iter_mut()
            .find(|m| m.code6 == r[0])
            .ok_or(SynthError::Data {
                table: "aomori_towns",
                line: i + 2,
                reason: format!("unknown municipality {}", r[0]),
            })?;
        m.towns.push(Town {
            name: r[2].to_string(),
            postal: r[1].to_string(),
        });
    }
    if let Some(m) = municipalities.iter().find(|m| m.towns.is_empty()) {
        return Err(SynthError::Data {
            table: "aomori_towns",
            line: 0,
            reason: format!("municipality {} has no town", m.code6),
        });
    }
    Ok(())
}

/// Facility codes handed out in order (hospitals, clinics, then the checkup centre).
struct FacilityCodes(usize);

impl FacilityCodes {
    fn next(&mut self) -> Option<String> {
        self.0 += 1;
        facility_code(self.0 * 37)
    }
}

/// The providers of the region with the indexes the generator looks them up by.
struct Providers {
    list: Vec<Provider>,
    codes: FacilityCodes,
    university_hospital: usize,
    area_hospital_by_muni: Vec<usize>,
    clinics_by_muni: Vec<Vec<usize>>,
    municipality_provider: Vec<usize>,
    kyokai_provider: usize,
    kenshin_center_provider: usize,
}

impl Providers {
    /// Every provider, in their fixed order: hospitals, clinics, municipalities, checkup providers.
    fn build(municipalities: &[Municipality]) -> Self {
        let mut p = Providers {
            list: Vec::new(),
            codes: FacilityCodes(0),
            university_hospital: 0,
            area_hospital_by_muni: Vec::new(),
            clinics_by_muni: Vec::new(),
            municipality_provider: Vec::new(),
            kyokai_provider: 0,
            kenshin_center_provider: 0,
        };
        p.hospitals(municipalities);
        p.clinics(municipalities);
        p.municipalities(municipalities);
        p.checkup_providers();
        p
    }

    fn hospitals(&mut self, municipalities: &[Municipality]) {
        for (i, (name, muni, role, areas)) in HOSPITALS.iter().enumerate() {
            let facility_code = self.codes.next();
            self.list.push(Provider {
                id: format!("H{:02}", i + 1),
                name: name.to_string(),
                kind: ProviderKind::Hospital,
                municipality_code: muni.to_string(),
                facility_code,
                hospital_role: Some(*role),
                serves_areas: areas.iter().map(|a| a.to_string()).collect(),
                emr_export: Some(if FHIR_HOSPITALS.contains(&i) {
                    EmrExport::JpCoreFhir
                } else {
                    EmrExport::Ssmix2
                }),
            });
        }
        self.university_hospital = self
            .list
            .iter()
            .position(|p| p.hospital_role == Some(HospitalRole::University))
            .unwrap_or(0);
        for m in municipalities {
            let h = self
                .list
                .iter()
                .position(|p| p.serves_areas.contains(&m.medical_area))
                .unwrap_or(self.university_hospital);
            self.area_hospital_by_muni.push(h);
        }
    }

    fn clinics(&mut self, municipalities: &[Municipality]) {
        self.clinics_by_muni = vec![Vec::new(); municipalities.len()];
        let mut clinic_seq = 0usize;
        for (mi, m) in municipalities.iter().enumerate() {
            let n = (m.population / RESIDENTS_PER_CLINIC).clamp(1, 12) as usize;
            for k in 0..n {
                clinic_seq += 1;
                let town = &m.towns[(k * 7) % m.towns.len()].name;
                let pattern = CLINIC_PATTERNS[clinic_seq % CLINIC_PATTERNS.len()];
                self.clinics_by_muni[mi].push(self.list.len());
                let facility_code = self.codes.next();
                self.list.push(Provider {
                    id: format!("C{clinic_seq:03}"),
                    name: pattern.replace("{}", town),
                    kind: ProviderKind::Clinic,
                    municipality_code: m.code6.clone(),
                    facility_code,
                    hospital_role: None,
                    serves_areas: Vec::new(),
                    emr_export: None,
                });
            }
        }
    }

    fn municipalities(&mut self, municipalities: &[Municipality]) {
        for m in municipalities {
            self.municipality_provider.push(self.list.len());
            self.list.push(Provider {
                id: format!("M{}", m.code6),
                name: m.name.clone(),
                kind: ProviderKind::Municipality,
                municipality_code: m.code6.clone(),
                facility_code: None,
                hospital_role: None,
                serves_areas: Vec::new(),
                emr_export: None,
            });
        }
    }

    fn checkup_providers(&mut self) {
        self.kyokai_provider = self.list.len();
        self.list.push(Provider {
            id: "K01".into(),
            name: "全国健康保険協会青森支部".into(),
            kind: ProviderKind::Checkup,
            municipality_code: "022012".into(),
            facility_code: None,
            hospital_role: None,
            serves_areas: Vec::new(),
            emr_export: None,
        });
        self.kenshin_center_provider = self.list.len();
        let facility_code = self.codes.next();
        self.list.push(Provider {
            id: "K02".into(),
            name: "青森県総合健診センター".into(),
            kind: ProviderKind::Checkup,
            municipality_code: "022012".into(),
            facility_code,
            hospital_role: None,
            serves_areas: Vec::new(),
            emr_export: None,
        });
    }
}

/// The employers' insurers: 協会けんぽ 青森支部, the 健保組合 and the 共済組合.
struct EmployerInsurers {
    kyokai: EmployerInsurer,
    kumiai: Vec<EmployerInsurer>,
    kyosai: Vec<EmployerInsurer>,
}

fn employer_insurers() -> Result<EmployerInsurers, SynthError> {
    use tokumei_model::InsuranceKind::*;
    let kyokai = insurer(Kyokai, format!("01{PREFECTURE_CODE}001"))?;
    let mut kumiai = Vec::new();
    for i in 0..14u32 {
        // Unions of local employers (prefecture 02) and of national firms based in Tokyo (13).
        let pref = if i < 5 { "02" } else { "13" };
        kumiai.push(insurer(
            Kumiai,
            format!("06{pref}{:03}", 11 + i * 67 % 900),
        )?);
    }
    let kyosai = vec![
        insurer(Kyosai, "3113011".into())?, // 国家公務員共済 (a ministry's union)
        insurer(Kyosai, "3202001".into())?, // 地方職員共済 (prefectural staff)
        insurer(Kyosai, "3202101".into())?, // 市町村職員共済
        insurer(Kyosai, "3302001".into())?, // 警察共済
        insurer(Kyosai, "3413001".into())?, // 私学共済
    ];
    Ok(EmployerInsurers {
        kyokai,
        kumiai,
        kyosai,
    })
}

impl Region {
    /// Loads the embedded region tables and builds the providers.
    pub fn load() -> Result<Self, SynthError> {
        let municipalities = municipalities()?;
        let muni_weights = Weighted::new(municipalities.iter().map(|m| m.population as f64))
            .ok_or(SynthError::Data {
                table: "aomori_municipalities",
                line: 0,
                reason: "no population".into(),
            })?;
        let providers = Providers::build(&municipalities);
        let insurers = employer_insurers()?;
        Ok(Region {
            municipalities,
            muni_weights,
            providers: providers.list,
            clinics_by_muni: providers.clinics_by_muni,
            area_hospital_by_muni: providers.area_hospital_by_muni,
            university_hospital: providers.university_hospital,
            municipality_provider: providers.municipality_provider,
            kyokai_provider: providers.kyokai_provider,
            kenshin_center_provider: providers.kenshin_center_provider,
            kyokai: insurers.kyokai,
            kumiai: insurers.kumiai,
            kyosai: insurers.kyosai,
        })
    }

    /// 市町村国保 insurer number of a municipality (6 digits).
    pub fn kokuho_insurer(&self, muni: usize) -> String {
        let body = format!("{PREFECTURE_CODE}{}", self.municipalities[muni].jis3());
        with_insurer_check_digit(&body).unwrap_or(body)
    }

    /// 後期高齢者医療 insurer number of a municipality (8 digits, 法別 39).
    pub fn koki_insurer(&self, muni: usize) -> String {
        let body = format!("39{PREFECTURE_CODE}{}", self.municipalities[muni].jis3());
        with_insurer_check_digit(&body).unwrap_or(body)
    }

    /// Draws a residence: municipality index, town index, 丁目 and 番地.
    pub fn draw_address<R: Rng + ?Sized>(&self, rng: &mut R, muni: Option<usize>) -> Address {
        let muni = muni.unwrap_or_else(|| self.muni_weights.sample(rng));
        let m = &self.municipalities[muni];
        let town = rng.random_range(0..m.towns.len());
        let chome = (m.kind == "city" && chance(rng, 0.55)).then(|| rng.random_range(1..=5u8));
        let banchi = if chance(rng, 0.7) {
            format!("{}-{}", rng.random_range(1..=60), rng.random_range(1..=30))
        } else {
            format!("{}", rng.random_range(1..=999))
        };
        Address {
            muni: muni as u16,
            town: town as u16,
            chome,
            banchi,
        }
    }
}

/// A residence in the region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Municipality index.
    pub muni: u16,
    /// Town index within the municipality.
    pub town: u16,
    /// 丁目.
    pub chome: Option<u8>,
    /// 番地-号.
    pub banchi: String,
}

impl Address {
    /// The municipality.
    pub fn municipality<'r>(&self, region: &'r Region) -> &'r Municipality {
        &region.municipalities[self.muni as usize]
    }

    /// The town.
    pub fn town<'r>(&self, region: &'r Region) -> &'r Town {
        &self.municipality(region).towns[self.town as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokumei_model::checkdigit::{insurer_number_is_valid, local_government_code_is_valid};

    #[test]
    fn region_tables_are_consistent() {
        let r = Region::load().unwrap();
        assert_eq!(r.municipalities.len(), 40);
        for (i, m) in r.municipalities.iter().enumerate() {
            assert!(local_government_code_is_valid(&m.code6), "{}", m.code6);
            assert!(m.code6.starts_with("02"));
            assert!(m.towns.iter().all(|t| t.postal.len() == 7));
            assert!(insurer_number_is_valid(&r.kokuho_insurer(i)));
            assert!(insurer_number_is_valid(&r.koki_insurer(i)));
            assert!(!r.clinics_by_muni[i].is_empty());
        }
        let total: u32 = r.municipalities.iter().map(|m| m.population).sum();
        assert!((1_200_000..1_300_000).contains(&total), "{total}");
        for ins in r.kumiai.iter().chain(&r.kyosai).chain([&r.kyokai]) {
            assert!(insurer_number_is_valid(&ins.number), "{}", ins.number);
        }
        let ids: std::collections::BTreeSet<_> = r.providers.iter().map(|p| &p.id).collect();
        assert_eq!(ids.len(), r.providers.len());
        let codes: std::collections::BTreeSet<_> = r
            .providers
            .iter()
            .filter_map(|p| p.facility_code.as_ref())
            .collect();
        assert!(codes.iter().all(|c| c.len() == 10));
    }
}
