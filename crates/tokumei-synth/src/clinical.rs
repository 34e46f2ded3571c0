//! Clinical reference tables (real codes) and the epidemiology that drives the timelines.

use rand::Rng;

use crate::rng::{normal, Weighted};
use crate::tsv;
use crate::SynthError;
use tokumei_model::Sex;

const DISEASES: &str = include_str!("../data/diseases.tsv");
const DRUGS: &str = include_str!("../data/drugs.tsv");
const PROCEDURES: &str = include_str!("../data/procedures.tsv");

/// The claims disease code of a name not in the master (未コード化傷病名).
pub const UNCODED_DISEASE: &str = "0000999";

/// How a disease is cared for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Long-term condition managed in outpatient care.
    Chronic,
    /// Malignant neoplasm.
    Cancer,
    /// Designated intractable disease (指定難病).
    Rare,
    /// Acute episode.
    Acute,
}

/// A disease of the reference table.
#[derive(Debug, Clone)]
pub struct Disease {
    /// Key.
    pub key: String,
    /// Name as in the claims master.
    pub name: String,
    /// ICD-10.
    pub icd10: String,
    /// 傷病名コード, or [`UNCODED_DISEASE`].
    pub receipt_code: String,
    /// Category.
    pub category: Category,
    /// 指定難病 number.
    pub nanbyo_no: Option<u16>,
    /// Drugs for it (indices into the drug table).
    pub drugs: Vec<usize>,
    /// Age/sex prevalence model for chronic, cancer and rare conditions.
    pub prevalence: Prevalence,
    /// Extra monthly death hazard while the disease is present.
    pub monthly_death_hazard: f64,
    /// Relative frequency among acute episodes (acute only).
    pub acute_weight: f64,
    /// Whether an acute episode needs a hospital stay.
    pub needs_admission: bool,
}

/// Logistic prevalence by age: `max / (1 + exp(-(age - mid) / scale))`, times a sex factor.
#[derive(Debug, Clone, Copy)]
pub struct Prevalence {
    /// Plateau prevalence.
    pub max: f64,
    /// Age at half the plateau.
    pub mid: f64,
    /// Spread in years.
    pub scale: f64,
    /// Factor for men.
    pub male: f64,
    /// Factor for women.
    pub female: f64,
}

impl Prevalence {
    /// Prevalence at an age.
    pub fn at(&self, age: f64, sex: Sex) -> f64 {
        let f = match sex {
            Sex::Male => self.male,
            Sex::Female => self.female,
        };
        (f * self.max / (1.0 + (-(age - self.mid) / self.scale).exp())).clamp(0.0, 0.95)
    }

    /// Annual incidence among those without the disease, from the slope of prevalence.
    pub fn annual_incidence(&self, age: f64, sex: Sex) -> f64 {
        let p0 = self.at(age, sex);
        let p1 = self.at(age + 1.0, sex);
        ((p1 - p0).max(0.0) / (1.0 - p0).max(0.05)).min(0.5)
    }
}

fn p(max: f64, mid: f64, scale: f64, male: f64, female: f64) -> Prevalence {
    Prevalence {
        max,
        mid,
        scale,
        male,
        female,
    }
}

/// Epidemiology of a disease key: prevalence, extra death hazard, acute weight, admission.
fn epidemiology(key: &str, category: Category) -> (Prevalence, f64, f64, bool) {
    let none = p(0.0, 50.0, 10.0, 1.0, 1.0);
    match key {
        "hypertension" => (p(0.72, 60.0, 9.0, 1.1, 0.9), 0.0, 0.0, false),
        "t2dm" => (p(0.22, 63.0, 9.0, 1.4, 0.65), 0.0003, 0.0, false),
        "dyslipidaemia" => (p(0.42, 56.0, 8.0, 0.9, 1.1), 0.0, 0.0, false),
        "ckd" => (p(0.30, 76.0, 8.0, 1.1, 0.9), 0.0004, 0.0, false),
        "copd" => (p(0.10, 72.0, 8.0, 1.7, 0.35), 0.001, 0.0, false),
        "dementia" => (p(0.50, 88.0, 5.0, 0.8, 1.15), 0.002, 0.0, false),
        "heart_failure" => (p(0.20, 86.0, 6.0, 1.0, 1.0), 0.002, 0.0, false),
        "af" => (p(0.10, 80.0, 7.0, 1.4, 0.7), 0.0005, 0.0, false),
        "angina" => (p(0.08, 75.0, 8.0, 1.3, 0.7), 0.0005, 0.0, false),
        "osteoporosis" => (p(0.35, 75.0, 7.0, 0.2, 1.6), 0.0, 0.0, false),
        "cataract" => (p(0.40, 75.0, 7.0, 1.0, 1.0), 0.0, 0.0, false),
        "insomnia" => (p(0.12, 60.0, 12.0, 0.9, 1.1), 0.0, 0.0, false),
        "constipation" => (p(0.12, 75.0, 10.0, 0.7, 1.3), 0.0, 0.0, false),
        "gerd" => (p(0.10, 55.0, 12.0, 1.0, 1.0), 0.0, 0.0, false),
        "cancer_stomach" => (p(0.030, 72.0, 7.0, 1.5, 0.5), 0.008, 0.0, false),
        "cancer_colon" => (p(0.030, 72.0, 7.0, 1.2, 0.8), 0.007, 0.0, false),
        "cancer_lung" => (p(0.020, 74.0, 7.0, 1.5, 0.5), 0.025, 0.0, false),
        "cancer_breast" => (p(0.030, 55.0, 8.0, 0.0, 1.0), 0.003, 0.0, false),
        "cancer_prostate" => (p(0.050, 75.0, 6.0, 1.0, 0.0), 0.002, 0.0, false),
        "cancer_liver" => (p(0.008, 72.0, 7.0, 1.5, 0.5), 0.02, 0.0, false),
        "cancer_pancreas" => (p(0.005, 74.0, 7.0, 1.0, 1.0), 0.05, 0.0, false),
        "urti" => (none, 0.0, 40.0, false),
        "bronchitis" => (none, 0.0, 10.0, false),
        "influenza" => (none, 0.0, 8.0, false),
        "gastroenteritis" => (none, 0.0, 10.0, false),
        "lumbago" => (none, 0.0, 12.0, false),
        "zoster" => (none, 0.0, 3.0, false),
        "gastric_ulcer" => (none, 0.0, 3.0, false),
        "pneumonia" => (none, 0.02, 3.0, true),
        "hip_fracture" => (none, 0.01, 1.0, true),
        "stroke" => (none, 0.03, 1.0, true),
        "ami" => (none, 0.05, 0.5, true),
        _ => match category {
            // Designated intractable diseases: 5-30 per 100,000, adult onset.
            Category::Rare => {
                let h = key
                    .bytes()
                    .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
                let per_100k = 5.0 + (h % 26) as f64;
                (
                    p(per_100k / 100_000.0 * 2.0, 45.0, 12.0, 1.0, 1.0),
                    0.0005,
                    0.0,
                    false,
                )
            }
            Category::Acute => (none, 0.0, 1.0, false),
            _ => (p(0.05, 70.0, 8.0, 1.0, 1.0), 0.0, 0.0, false),
        },
    }
}

/// A drug of the reference table.
#[derive(Debug, Clone)]
pub struct Drug {
    /// Key.
    pub key: String,
    /// Name.
    pub name: String,
    /// 9-digit claims drug code.
    pub receipt_code: String,
    /// 12-character 薬価基準 code.
    pub yakka_code: String,
    /// Unit.
    pub unit: String,
    /// Units per day.
    pub daily_dose: f64,
}

/// A billable procedure of the reference table.
#[derive(Debug, Clone)]
pub struct ProcedureDef {
    /// Key.
    pub key: String,
    /// Name.
    pub name: String,
    /// 9-digit procedure code.
    pub code: String,
    /// Points.
    pub points: i32,
}

/// A JLAC10-coded checkup or laboratory item (from the 特定健診 item code table).
#[derive(Debug, Clone, Copy)]
pub struct LabItem {
    /// 17-character code.
    pub code: &'static str,
    /// Name.
    pub name: &'static str,
    /// Unit (empty for coded items).
    pub unit: &'static str,
}

macro_rules! lab {
    ($($id:ident = $code:literal, $name:literal, $unit:literal;)*) => {
        /// JLAC10 / 特定健診 items used by the generator.
        pub mod lab_items {
            use super::LabItem;
            $( #[allow(missing_docs)] pub const $id: LabItem = LabItem { code: $code, name: $name, unit: $unit }; )*
        }
    };
}

lab! {
    HEIGHT = "9N001000000000001", "身長", "cm";
    WEIGHT = "9N006000000000001", "体重", "kg";
    BMI = "9N011000000000001", "BMI", "kg/m2";
    WAIST = "9N016160100000001", "腹囲（実測）", "cm";
    SBP = "9A751000000000001", "収縮期血圧（1回目）", "mmHg";
    DBP = "9A761000000000001", "拡張期血圧（1回目）", "mmHg";
    GLUCOSE = "3D010000001926101", "空腹時血糖（電位差法）", "mg/dl";
    HBA1C = "3D046000001906202", "HbA1c（NGSP）（免疫学的方法）", "%";
    TG = "3F015000002327101", "中性脂肪（可視吸光光度法）", "mg/dl";
    HDL = "3F070000002327101", "HDLコレステロール（可視吸光光度法）", "mg/dl";
    LDL = "3F077000002327101", "LDLコレステロール（可視吸光光度法）", "mg/dl";
    AST = "3B035000002327201", "GOT（AST）（紫外吸光光度法）", "U/l";
    ALT = "3B045000002327201", "GPT（ALT）（紫外吸光光度法）", "U/l";
    GGT = "3B090000002327101", "γ-GT（可視吸光光度法）", "U/l";
    URINE_GLUCOSE = "1A020000000191111", "尿糖（試験紙法（機械読み取り））", "";
    URINE_PROTEIN = "1A010000000191111", "尿蛋白（試験紙法（機械読み取り））", "";
    EGFR = "8A065000002391901", "eGFR", "ml/min/1.73m2";
    MED_BP = "9N701000000000011", "服薬1（血圧）", "";
    MED_GLUCOSE = "9N706000000000011", "服薬2（血糖）", "";
    MED_LIPID = "9N711000000000011", "服薬3（脂質）", "";
    SMOKING = "9N736000000000011", "喫煙", "";
}

/// All clinical reference data.
#[derive(Debug, Clone)]
pub struct ClinicalTables {
    /// Diseases.
    pub diseases: Vec<Disease>,
    /// Drugs.
    pub drugs: Vec<Drug>,
    /// Procedures.
    pub procedures: Vec<ProcedureDef>,
    /// Acute diseases with their weights.
    pub acute: Vec<usize>,
    /// Sampler over `acute`.
    pub acute_weights: Weighted,
}

impl ClinicalTables {
    /// Loads the embedded tables.
    pub fn load() -> Result<Self, SynthError> {
        let mut diseases = Vec::new();
        for (i, r) in tsv::rows(
            "diseases",
            DISEASES,
            &[
                "key",
                "name_ja",
                "icd10",
                "byomei_code",
                "category",
                "nanbyo_no",
            ],
        )?
        .into_iter()
        .enumerate()
        {
            let category = match r[4] {
                "chronic" => Category::Chronic,
                "cancer" => Category::Cancer,
                "rare" => Category::Rare,
                "acute" => Category::Acute,
                other => {
                    return Err(SynthError::Data {
                        table: "diseases",
                        line: i + 2,
                        reason: format!("category `{other}`"),
                    })
                }
            };
            let (prevalence, hazard, acute_weight, needs_admission) = epidemiology(r[0], category);
            diseases.push(Disease {
                key: r[0].to_string(),
                name: r[1].to_string(),
                icd10: r[2].to_string(),
                receipt_code: if r[3].is_empty() {
                    UNCODED_DISEASE.to_string()
                } else {
                    r[3].to_string()
                },
                category,
                nanbyo_no: if r[5].is_empty() {
                    None
                } else {
                    Some(tsv::num("diseases", i + 2, r[5])?)
                },
                drugs: Vec::new(),
                prevalence,
                monthly_death_hazard: hazard,
                acute_weight,
                needs_admission,
            });
        }
        let mut drugs = Vec::new();
        for (i, r) in tsv::rows(
            "drugs",
            DRUGS,
            &[
                "key",
                "name_ja",
                "receipt_code",
                "yakka_code",
                "for_disease",
                "unit",
                "daily_dose",
            ],
        )?
        .into_iter()
        .enumerate()
        {
            let d = diseases
                .iter_mut()
                .find(|d| d.key == r[4])
                .ok_or(SynthError::Data {
                    table: "drugs",
                    line: i + 2,
                    reason: format!("unknown disease `{}`", r[4]),
                })?;
            d.drugs.push(drugs.len());
            drugs.push(Drug {
                key: r[0].to_string(),
                name: r[1].to_string(),
                receipt_code: r[2].to_string(),
                yakka_code: r[3].to_string(),
                unit: r[5].to_string(),
                daily_dose: tsv::num("drugs", i + 2, r[6])?,
            });
        }
        let mut procedures = Vec::new();
        for (i, r) in tsv::rows(
            "procedures",
            PROCEDURES,
            &["key", "name_ja", "receipt_code", "points", "kind"],
        )?
        .into_iter()
        .enumerate()
        {
            procedures.push(ProcedureDef {
                key: r[0].to_string(),
                name: r[1].to_string(),
                code: r[2].to_string(),
                points: tsv::num("procedures", i + 2, r[3])?,
            });
        }
        let acute: Vec<usize> = (0..diseases.len())
            .filter(|&i| diseases[i].category == Category::Acute)
            .collect();
        let acute_weights = Weighted::new(acute.iter().map(|&i| diseases[i].acute_weight)).ok_or(
            SynthError::Data {
                table: "diseases",
                line: 0,
                reason: "no acute disease".into(),
            },
        )?;
        Ok(ClinicalTables {
            diseases,
            drugs,
            procedures,
            acute,
            acute_weights,
        })
    }

    /// Index of a disease by key.
    pub fn disease(&self, key: &str) -> Option<usize> {
        self.diseases.iter().position(|d| d.key == key)
    }

    /// A procedure by key.
    pub fn procedure(&self, key: &str) -> Option<&ProcedureDef> {
        self.procedures.iter().find(|p| p.key == key)
    }
}

/// A person's latent physiology, from which checkup and lab values are drawn.
#[derive(Debug, Clone, Copy)]
pub struct Physiology {
    /// Height in cm.
    pub height: f64,
    /// Body-mass index.
    pub bmi: f64,
    /// Systolic pressure without treatment.
    pub sbp: f64,
    /// HbA1c (NGSP %).
    pub hba1c: f64,
    /// LDL cholesterol.
    pub ldl: f64,
    /// eGFR.
    pub egfr: f64,
    /// Smoker.
    pub smoker: bool,
}

impl Physiology {
    /// Draws a physiology for a person of an age and sex, given their conditions.
    pub fn draw<R: Rng + ?Sized>(
        rng: &mut R,
        age: f64,
        sex: Sex,
        diabetic: bool,
        hypertensive: bool,
        dyslipidaemic: bool,
        ckd: bool,
    ) -> Self {
        let (h_mean, smoke_p) = match sex {
            Sex::Male => (171.0 - 0.12 * (age - 30.0).max(0.0), 0.28),
            Sex::Female => (158.0 - 0.12 * (age - 30.0).max(0.0), 0.08),
        };
        let bmi = normal(rng, 22.5 + if diabetic { 2.5 } else { 0.0 }, 3.2).clamp(15.0, 45.0);
        let sbp = if hypertensive {
            normal(rng, 150.0, 14.0)
        } else {
            normal(rng, 108.0 + 0.4 * (age - 20.0).max(0.0), 11.0).min(139.0)
        };
        let hba1c = if diabetic {
            normal(rng, 7.4, 1.0).max(6.5)
        } else {
            normal(rng, 5.3 + 0.006 * age, 0.3).min(6.4)
        };
        let ldl = if dyslipidaemic {
            normal(rng, 160.0, 28.0).max(140.0)
        } else {
            normal(rng, 112.0, 22.0).min(139.0)
        };
        let egfr = if ckd {
            normal(rng, 45.0, 10.0).clamp(8.0, 59.0)
        } else {
            normal(rng, 105.0 - 0.75 * (age - 20.0).max(0.0), 12.0).clamp(60.0, 140.0)
        };
        Physiology {
            height: normal(rng, h_mean, 6.0),
            bmi,
            sbp,
            hba1c,
            ldl,
            egfr,
            smoker: crate::rng::chance(rng, smoke_p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_tables_load_and_codes_look_right() {
        let t = ClinicalTables::load().unwrap();
        assert!(
            t.diseases
                .iter()
                .filter(|d| d.category == Category::Rare)
                .count()
                >= 20
        );
        for d in &t.diseases {
            assert_eq!(d.receipt_code.len(), 7, "{}", d.key);
        }
        for d in &t.drugs {
            assert!(
                d.receipt_code.len() == 9 && d.receipt_code.starts_with('6'),
                "{}",
                d.key
            );
            assert_eq!(d.yakka_code.len(), 12, "{}", d.key);
        }
        for p in &t.procedures {
            assert!(p.code.len() == 9 && p.code.starts_with('1'), "{}", p.key);
        }
        for key in [
            "shoshin",
            "saishin",
            "gairai_kanri",
            "shohousen",
            "hba1c",
            "inpatient_acute1",
        ] {
            assert!(t.procedure(key).is_some(), "{key}");
        }
        assert_eq!(lab_items::HBA1C.code.len(), 17);
    }

    #[test]
    fn hypertension_rises_with_age() {
        let t = ClinicalTables::load().unwrap();
        let h = &t.diseases[t.disease("hypertension").unwrap()].prevalence;
        assert!(h.at(30.0, Sex::Male) < 0.1);
        assert!(h.at(75.0, Sex::Male) > 0.5);
        assert!(h.annual_incidence(60.0, Sex::Female) > 0.0);
    }
}
