//! Health care use: visits, stays and checkups derived from a person's conditions and life.

use chrono::{Datelike, NaiveDate};
use rand::Rng;
use tokumei_model::{InsuranceKind, Setting};

use crate::clinical::{lab_items as L, Category, LabItem};
use crate::dates::{age_on, plus_days};
use crate::life::LifePerson;
use crate::rng::{chance, normal, SynthRng};
use crate::Context;

/// A visit or stay at a facility.
#[derive(Debug, Clone)]
pub struct Visit {
    /// Provider index.
    pub provider: usize,
    /// Setting.
    pub setting: Setting,
    /// First day.
    pub start: NaiveDate,
    /// Last day.
    pub end: NaiveDate,
    /// Department.
    pub department: &'static str,
    /// Diseases addressed, with whether the visit ends that episode as cured.
    pub diseases: Vec<(usize, bool)>,
    /// Drugs prescribed with days supplied.
    pub drugs: Vec<(usize, i32)>,
    /// Procedures (index into the procedure table) with counts.
    pub procedures: Vec<(usize, i32)>,
    /// Lab results with values.
    pub labs: Vec<(LabItem, f64)>,
    /// The patient died at the end of this stay.
    pub died: bool,
}

/// A value of a checkup item.
#[derive(Debug, Clone)]
pub enum ItemValue {
    /// Numeric.
    Num(f64),
    /// Coded.
    Code(&'static str),
}

/// An annual specific health checkup (特定健診).
#[derive(Debug, Clone)]
pub struct Checkup {
    /// Provider index.
    pub provider: usize,
    /// Date.
    pub date: NaiveDate,
    /// Items.
    pub items: Vec<(LabItem, ItemValue)>,
}

/// Procedure indices used by the care model.
#[derive(Debug, Clone)]
pub struct Procs {
    shoshin: usize,
    saishin: usize,
    gairai_kanri: usize,
    tokutei: usize,
    shohousen: usize,
    blood_draw: usize,
    biochem: usize,
    judge_biochem: usize,
    hba1c: usize,
    cbc: usize,
    judge_haem: usize,
    xray_diag: usize,
    xray_digital: usize,
    ct: usize,
    ct_diag: usize,
    ecg: usize,
    /// The daily inpatient fee (billed once per day of a stay).
    pub inpatient: usize,
}

impl Procs {
    /// Looks the procedures up in the clinical tables.
    pub fn new(t: &crate::clinical::ClinicalTables) -> Result<Self, crate::SynthError> {
        let f = |key: &str| {
            t.procedures
                .iter()
                .position(|p| p.key == key)
                .ok_or_else(|| crate::SynthError::Data {
                    table: "procedures",
                    line: 0,
                    reason: format!("missing procedure `{key}`"),
                })
        };
        Ok(Procs {
            shoshin: f("shoshin")?,
            saishin: f("saishin")?,
            gairai_kanri: f("gairai_kanri")?,
            tokutei: f("tokutei_shikkan_kanri")?,
            shohousen: f("shohousen")?,
            blood_draw: f("blood_draw_venous")?,
            biochem: f("biochem1_10plus")?,
            judge_biochem: f("judge_biochem1")?,
            hba1c: f("hba1c")?,
            cbc: f("cbc")?,
            judge_haem: f("judge_haematology")?,
            xray_diag: f("xray_simple_diag")?,
            xray_digital: f("xray_digital")?,
            ct: f("ct_16_64")?,
            ct_diag: f("ct_diag")?,
            ecg: f("ecg12")?,
            inpatient: f("inpatient_acute1")?,
        })
    }
}

struct Planner<'a> {
    ctx: &'a Context,
    p: &'a LifePerson,
    last: NaiveDate,
    visits: Vec<Visit>,
}

impl Planner<'_> {
    fn clinic_on(&self, d: NaiveDate) -> usize {
        let muni = self.p.address_on(d).muni as usize;
        let region = &self.ctx.region;
        if region.providers[self.p.home_clinic].municipality_code
            == region.municipalities[muni].code6
        {
            self.p.home_clinic
        } else {
            let list = &region.clinics_by_muni[muni];
            list[(self.p.key % list.len() as u64) as usize]
        }
    }

    fn area_hospital_on(&self, d: NaiveDate) -> usize {
        self.ctx.region.area_hospital_by_muni[self.p.address_on(d).muni as usize]
    }

    fn is_hospital(&self, provider: usize) -> bool {
        self.ctx.region.providers[provider].hospital_role.is_some()
    }

    fn outpatient(&self, provider: usize, d: NaiveDate, department: &'static str) -> Visit {
        Visit {
            provider,
            setting: Setting::Outpatient,
            start: d,
            end: d,
            department,
            diseases: Vec::new(),
            drugs: Vec::new(),
            procedures: Vec::new(),
            labs: Vec::new(),
            died: false,
        }
    }

    fn push(&mut self, v: Visit) {
        if v.start >= self.ctx.period.start && v.start <= self.last {
            let mut v = v;
            v.end = v.end.min(self.last);
            self.visits.push(v);
        }
    }

    fn labs(&self, rng: &mut SynthRng, v: &mut Visit, diabetic: bool, renal: bool, lipid: bool) {
        let pr = &self.ctx.procs;
        v.procedures.push((pr.blood_draw, 1));
        v.procedures.push((pr.biochem, 1));
        v.procedures.push((pr.judge_biochem, 1));
        v.procedures.push((pr.cbc, 1));
        v.procedures.push((pr.judge_haem, 1));
        let ph = &self.p.physiology;
        if diabetic {
            v.procedures.push((pr.hba1c, 1));
            v.labs
                .push((L::HBA1C, round1(normal(rng, ph.hba1c - 0.4, 0.3))));
        }
        if renal || diabetic {
            v.labs
                .push((L::EGFR, round1(normal(rng, ph.egfr, 4.0).max(3.0))));
        }
        if lipid {
            v.labs
                .push((L::LDL, normal(rng, ph.ldl * 0.75, 10.0).round().max(30.0)));
        }
        v.labs
            .push((L::AST, normal(rng, 24.0, 6.0).round().max(8.0)));
        v.labs
            .push((L::ALT, normal(rng, 22.0, 9.0).round().max(5.0)));
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Plans every visit and stay of a person over the period.
pub fn plan_visits(ctx: &Context, p: &LifePerson, rng: &mut SynthRng) -> Vec<Visit> {
    let period = ctx.period;
    let last = p
        .death
        .unwrap_or(plus_days(period.end, -1))
        .min(plus_days(period.end, -1));
    let mut pl = Planner {
        ctx,
        p,
        last,
        visits: Vec::new(),
    };
    let t = &ctx.clinical;
    // 1. Chronic conditions, managed at the home clinic or the area hospital.
    pl.chronic(rng);
    // 2. Cancers at a hospital: work-up, a stay for surgery, then follow-up.
    for c in p
        .conditions
        .iter()
        .filter(|c| t.diseases[c.disease].category == Category::Cancer)
    {
        pl.cancer(c, rng);
    }
    // 3. Designated intractable diseases, mostly at the university hospital.
    for c in p
        .conditions
        .iter()
        .filter(|c| t.diseases[c.disease].category == Category::Rare)
    {
        pl.rare(c, rng);
    }
    // 4. Acute episodes.
    let mut died_in_hospital = false;
    for e in &p.episodes {
        died_in_hospital |= pl.acute(e, rng);
    }
    // 5. A terminal stay for many deaths that did not follow an acute episode.
    if !died_in_hospital {
        pl.terminal_stay(rng);
    }
    pl.visits.sort_by_key(|v| (v.start, v.provider));
    pl.visits
}

type Cond = crate::life::Condition;

/// Whether any of the conditions is one of `keys`.
fn any_of(t: &crate::clinical::ClinicalTables, conditions: &[&Cond], keys: &[&str]) -> bool {
    conditions
        .iter()
        .any(|c| keys.contains(&t.diseases[c.disease].key.as_str()))
}

impl Planner<'_> {
    /// Regular visits for the treated chronic conditions, from the first onset to the end: the
    /// interval is drawn once, each visit covers the conditions begun by then.
    fn chronic(&mut self, rng: &mut SynthRng) {
        let (ctx, p) = (self.ctx, self.p);
        let t = &ctx.clinical;
        let period = ctx.period;
        let chronic: Vec<&Cond> = p
            .conditions
            .iter()
            .filter(|c| c.treated && t.diseases[c.disease].category == Category::Chronic)
            .collect();
        let Some(first_onset) = chronic.iter().map(|c| c.onset).min() else {
            return;
        };
        let serious = any_of(t, &chronic, &["ckd", "heart_failure"]);
        let at_hospital = p.hospital_managed || (serious && chance(rng, 0.4));
        let interval: i64 = match rng.random_range(0..10) {
            0 => 14,
            1..=6 => 28,
            _ => 56,
        };
        let mut d = first_onset.max(plus_days(period.start, rng.random_range(0..interval)));
        let mut n = 0u32;
        let mut seen_new = std::collections::BTreeSet::new();
        while d <= self.last {
            let active: Vec<&Cond> = chronic.iter().copied().filter(|c| c.onset <= d).collect();
            if !active.is_empty() {
                let provider = if at_hospital {
                    self.area_hospital_on(d)
                } else {
                    self.clinic_on(d)
                };
                let new_onset = active
                    .iter()
                    .any(|c| c.onset >= period.start && seen_new.insert(c.disease));
                let v = self.chronic_visit(provider, d, &active, new_onset, interval, n, rng);
                self.push(v);
                n += 1;
            }
            d = plus_days(d, interval + rng.random_range(-3..=3));
        }
    }

    /// The `n`th chronic-care visit on day `d` for the active conditions: drugs for the interval,
    /// labs every third visit when a condition calls for them, management fees, an ECG yearly.
    #[allow(clippy::too_many_arguments)]
    fn chronic_visit(
        &self,
        provider: usize,
        d: NaiveDate,
        active: &[&Cond],
        new_onset: bool,
        interval: i64,
        n: u32,
        rng: &mut SynthRng,
    ) -> Visit {
        let t = &self.ctx.clinical;
        let pr = &self.ctx.procs;
        let hospital = self.is_hospital(provider);
        let mut v = self.outpatient(provider, d, "内科");
        v.procedures
            .push((if new_onset { pr.shoshin } else { pr.saishin }, 1));
        for c in active {
            v.diseases.push((c.disease, false));
            for &drug in &c.drugs {
                v.drugs.push((drug, interval as i32));
            }
        }
        let diabetic = any_of(t, active, &["t2dm"]);
        let renal = any_of(t, active, &["ckd"]);
        let lipid = any_of(t, active, &["dyslipidaemia"]);
        if n.is_multiple_of(3) && (diabetic || renal || lipid) {
            self.labs(rng, &mut v, diabetic, renal, lipid);
        } else if !hospital {
            v.procedures.push((pr.gairai_kanri, 1));
        }
        const MANAGED: &[&str] = &[
            "hypertension",
            "t2dm",
            "dyslipidaemia",
            "heart_failure",
            "angina",
            "gerd",
        ];
        if !hospital && any_of(t, active, MANAGED) {
            v.procedures.push((pr.tokutei, 1));
        }
        if !v.drugs.is_empty() {
            v.procedures.push((pr.shohousen, 1));
        }
        if n % 12 == 5
            && any_of(
                t,
                active,
                &["hypertension", "af", "angina", "heart_failure"],
            )
        {
            v.procedures.push((pr.ecg, 1));
        }
        v
    }

    /// A cancer: at the university hospital or the area hospital; work-up and a stay for surgery
    /// when it begins within the period, then follow-up visits.
    fn cancer(&mut self, c: &Cond, rng: &mut SynthRng) {
        let ctx = self.ctx;
        let period = ctx.period;
        let pr = &ctx.procs;
        let hospital = if chance(rng, 0.3) {
            ctx.region.university_hospital
        } else {
            self.area_hospital_on(c.onset.max(period.start))
        };
        let follow_from = if c.onset >= period.start {
            self.cancer_surgery(hospital, c, rng)
        } else {
            plus_days(period.start, rng.random_range(0..84))
        };
        let mut d = follow_from;
        while d <= self.last {
            let mut v = self.outpatient(hospital, d, "外科");
            v.diseases.push((c.disease, false));
            v.procedures.push((pr.saishin, 1));
            let interval = rng.random_range(28..=84i64);
            for &drug in &c.drugs {
                v.drugs.push((drug, interval as i32));
            }
            if !v.drugs.is_empty() {
                v.procedures.push((pr.shohousen, 1));
            }
            if chance(rng, 0.3) {
                v.procedures.extend([(pr.ct, 1), (pr.ct_diag, 1)]);
            }
            self.labs(rng, &mut v, false, false, false);
            self.push(v);
            d = plus_days(d, interval);
        }
    }

    /// The work-up visit and the stay for surgery of a cancer begun within the period; returns the
    /// day follow-up starts.
    fn cancer_surgery(&mut self, hospital: usize, c: &Cond, rng: &mut SynthRng) -> NaiveDate {
        let pr = &self.ctx.procs;
        let mut v = self.outpatient(hospital, c.onset, "外科");
        v.diseases.push((c.disease, false));
        v.procedures.extend([
            (pr.shoshin, 1),
            (pr.ct, 1),
            (pr.ct_diag, 1),
            (pr.xray_digital, 1),
            (pr.xray_diag, 1),
        ]);
        self.labs(rng, &mut v, false, false, false);
        self.push(v);
        let admit = plus_days(c.onset, rng.random_range(14..=30));
        let days = rng.random_range(7..=21);
        let mut stay = self.outpatient(hospital, admit, "外科");
        stay.setting = Setting::Inpatient;
        stay.end = plus_days(admit, days);
        stay.diseases.push((c.disease, false));
        stay.procedures.push((pr.inpatient, days as i32 + 1));
        stay.procedures.push((pr.ct, 1));
        self.push(stay);
        plus_days(admit, days + rng.random_range(14..=35))
    }

    /// A designated intractable disease: regular visits, mostly at the university hospital.
    fn rare(&mut self, c: &Cond, rng: &mut SynthRng) {
        let ctx = self.ctx;
        let period = ctx.period;
        let pr = &ctx.procs;
        let hospital = if chance(rng, 0.6) {
            ctx.region.university_hospital
        } else {
            self.area_hospital_on(c.onset.max(period.start))
        };
        let interval = rng.random_range(28..=56i64);
        let mut d = c
            .onset
            .max(plus_days(period.start, rng.random_range(0..interval)));
        let mut first = c.onset >= period.start;
        while d <= self.last {
            let mut v = self.outpatient(hospital, d, "内科");
            v.diseases.push((c.disease, false));
            v.procedures
                .push((if first { pr.shoshin } else { pr.saishin }, 1));
            first = false;
            for &drug in &c.drugs {
                v.drugs.push((drug, interval as i32));
            }
            if !v.drugs.is_empty() {
                v.procedures.push((pr.shohousen, 1));
            }
            if chance(rng, 0.5) {
                self.labs(rng, &mut v, false, false, false);
            }
            self.push(v);
            d = plus_days(d, interval + rng.random_range(-3..=3));
        }
    }

    /// An acute episode: a stay at the area hospital when the disease needs admission, else a clinic
    /// visit (with a follow-up now and then). Returns whether the person died in that stay.
    fn acute(&mut self, e: &crate::life::Episode, rng: &mut SynthRng) -> bool {
        let d = &self.ctx.clinical.diseases[e.disease];
        if d.needs_admission {
            return self.acute_stay(e, rng);
        }
        let pr = &self.ctx.procs;
        let clinic = self.clinic_on(e.date);
        let mut v = self.outpatient(clinic, e.date, "内科");
        let follow = chance(rng, 0.35);
        v.diseases.push((e.disease, !follow));
        v.procedures.push((pr.shoshin, 1));
        let days = rng.random_range(3..=7);
        for &drug in &d.drugs {
            v.drugs.push((drug, days));
        }
        if !v.drugs.is_empty() {
            v.procedures.push((pr.shohousen, 1));
        }
        if matches!(d.key.as_str(), "bronchitis" | "lumbago") && chance(rng, 0.3) {
            v.procedures
                .extend([(pr.xray_digital, 1), (pr.xray_diag, 1)]);
        }
        self.push(v);
        if follow {
            let mut v2 =
                self.outpatient(clinic, plus_days(e.date, rng.random_range(4..=10)), "内科");
            v2.diseases.push((e.disease, true));
            v2.procedures
                .extend([(pr.saishin, 1), (pr.gairai_kanri, 1)]);
            self.push(v2);
        }
        false
    }

    /// The stay of an acute episode that needs admission; returns whether the person died in it.
    fn acute_stay(&mut self, e: &crate::life::Episode, rng: &mut SynthRng) -> bool {
        let d = &self.ctx.clinical.diseases[e.disease];
        let pr = &self.ctx.procs;
        let hospital = self.area_hospital_on(e.date);
        let days = rng.random_range(7..=30);
        let department = if d.key == "stroke" {
            "脳神経内科"
        } else {
            "内科"
        };
        let mut stay = self.outpatient(hospital, e.date, department);
        stay.setting = Setting::Inpatient;
        stay.end = plus_days(e.date, days);
        if e.fatal {
            if let Some(death) = self.p.death {
                stay.end = death;
                stay.died = death <= self.last;
            }
        }
        let died = stay.died;
        stay.diseases.push((e.disease, !e.fatal));
        stay.procedures
            .push((pr.inpatient, (stay.end - stay.start).num_days() as i32 + 1));
        stay.procedures.extend([(pr.ct, 1), (pr.ct_diag, 1)]);
        let mut lab_v = stay.clone();
        self.labs(rng, &mut lab_v, false, false, false);
        stay.labs = lab_v.labs;
        stay.procedures = lab_v.procedures;
        self.push(stay);
        died
    }

    /// A terminal stay for many deaths within the period that did not follow an acute episode (more
    /// often with a cancer).
    fn terminal_stay(&mut self, rng: &mut SynthRng) {
        let Some(death) = self.p.death.filter(|d| *d <= self.last) else {
            return;
        };
        let t = &self.ctx.clinical;
        let cancer = self
            .p
            .conditions
            .iter()
            .find(|c| t.diseases[c.disease].category == Category::Cancer);
        let (go, disease) = match cancer {
            Some(c) => (chance(rng, 0.8), Some(c.disease)),
            None => (chance(rng, 0.45), t.disease("pneumonia")),
        };
        if let (true, Some(disease)) = (go, disease) {
            let hospital = self.area_hospital_on(death);
            let start = plus_days(death, -rng.random_range(3..=30)).max(self.ctx.period.start);
            let mut stay = self.outpatient(hospital, start, "内科");
            stay.setting = Setting::Inpatient;
            stay.end = death;
            stay.died = true;
            stay.diseases.push((disease, false));
            stay.procedures.push((
                self.ctx.procs.inpatient,
                (death - start).num_days() as i32 + 1,
            ));
            self.push(stay);
        }
    }
}

/// Plans the annual specific health checkups (特定健診) of insured people aged 40–74.
pub fn plan_checkups(ctx: &Context, p: &LifePerson, rng: &mut SynthRng) -> Vec<Checkup> {
    let period = ctx.period;
    let region = &ctx.region;
    let mut out = Vec::new();
    let first_fy = if period.start.month() >= 4 {
        period.start.year()
    } else {
        period.start.year() - 1
    };
    let mut fy = first_fy;
    while NaiveDate::from_ymd_opt(fy, 4, 1).is_some_and(|d| d < period.end) {
        let year = if p.checkup_month >= 4 { fy } else { fy + 1 };
        fy += 1;
        let Some(date) = NaiveDate::from_ymd_opt(year, p.checkup_month, rng.random_range(1..=28))
        else {
            continue;
        };
        if !period.contains(date) || !p.alive_on(date) || p.death.is_some_and(|d| d < date) {
            continue;
        }
        let age = age_on(p.birth, date);
        if !(40..=74).contains(&age) {
            continue;
        }
        let Some(cov) = p.coverage_on(date) else {
            continue;
        };
        let participation = match cov.kind {
            InsuranceKind::Koki => continue,
            InsuranceKind::Kokuho => 0.62,
            InsuranceKind::Kyokai => 0.85,
            _ => 1.0,
        };
        if !p.checkup_participant || !chance(rng, participation) {
            continue;
        }
        let provider = match cov.kind {
            InsuranceKind::Kokuho => region.municipality_provider[p.address_on(date).muni as usize],
            InsuranceKind::Kyokai => region.kyokai_provider,
            _ => region.kenshin_center_provider,
        };
        out.push(Checkup {
            provider,
            date,
            items: checkup_items(ctx, p, date, rng),
        });
    }
    out
}

fn checkup_items(
    ctx: &Context,
    p: &LifePerson,
    date: NaiveDate,
    rng: &mut SynthRng,
) -> Vec<(LabItem, ItemValue)> {
    use ItemValue::{Code, Num};
    let t = &ctx.clinical;
    let active = |key: &str| {
        t.disease(key).is_some_and(|d| {
            p.conditions
                .iter()
                .any(|c| c.disease == d && c.onset <= date)
        })
    };
    let treated = |key: &str| {
        t.disease(key).is_some_and(|d| {
            p.conditions
                .iter()
                .any(|c| c.disease == d && c.onset <= date && c.treated)
        })
    };
    let ph = &p.physiology;
    let male = p.sex == tokumei_model::Sex::Male;
    let height = round1(normal(rng, ph.height, 0.3));
    let bmi = round1(normal(rng, ph.bmi, 0.4).max(14.0));
    let weight = round1(bmi * (height / 100.0).powi(2));
    let waist = round1(normal(
        rng,
        2.6 * bmi + 24.0 + if male { 2.0 } else { -2.0 },
        3.0,
    ));
    let sbp_base = if treated("hypertension") {
        normal(rng, 134.0, 11.0)
    } else {
        ph.sbp
    };
    let sbp = normal(rng, sbp_base, 5.0).round().clamp(80.0, 230.0);
    let dbp = normal(rng, sbp * 0.6, 6.0).round().clamp(40.0, 130.0);
    let hba1c = round1(
        normal(
            rng,
            if treated("t2dm") {
                ph.hba1c - 0.5
            } else {
                ph.hba1c
            },
            0.15,
        )
        .max(4.0),
    );
    let glucose = normal(rng, 28.7 * hba1c - 46.7, 8.0).round().max(60.0);
    let tg = normal(rng, (110.0f64).ln(), 0.45).exp().round();
    let hdl = normal(rng, if male { 55.0 } else { 65.0 }, 13.0)
        .round()
        .max(20.0);
    let ldl = normal(
        rng,
        if treated("dyslipidaemia") {
            ph.ldl * 0.75
        } else {
            ph.ldl
        },
        8.0,
    )
    .round()
    .max(30.0);
    let gamma = normal(rng, (if male { 40.0f64 } else { 22.0 }).ln(), 0.55)
        .exp()
        .round();
    let yes_no = |b: bool| if b { "1" } else { "2" };
    let mut items = vec![
        (L::HEIGHT, Num(height)),
        (L::WEIGHT, Num(weight)),
        (L::BMI, Num(bmi)),
        (L::WAIST, Num(waist)),
        (L::SBP, Num(sbp)),
        (L::DBP, Num(dbp)),
        (L::HBA1C, Num(hba1c)),
        (L::TG, Num(tg)),
        (L::HDL, Num(hdl)),
        (L::LDL, Num(ldl)),
        (L::AST, Num(normal(rng, 23.0, 6.0).round().max(8.0))),
        (L::ALT, Num(normal(rng, 21.0, 9.0).round().max(5.0))),
        (L::GGT, Num(gamma)),
        (
            L::URINE_GLUCOSE,
            Code(if hba1c >= 8.5 {
                "3"
            } else if hba1c >= 7.5 {
                "2"
            } else {
                "1"
            }),
        ),
        (
            L::URINE_PROTEIN,
            Code(if active("ckd") && chance(rng, 0.4) {
                "2"
            } else {
                "1"
            }),
        ),
        (L::MED_BP, Code(yes_no(treated("hypertension")))),
        (L::MED_GLUCOSE, Code(yes_no(treated("t2dm")))),
        (L::MED_LIPID, Code(yes_no(treated("dyslipidaemia")))),
        (L::SMOKING, Code(yes_no(ph.smoker))),
    ];
    if chance(rng, 0.5) {
        items.push((L::GLUCOSE, Num(glucose)));
    }
    if chance(rng, 0.5) {
        items.push((L::EGFR, Num(round1(normal(rng, ph.egfr, 4.0).max(3.0)))));
    }
    items
}
