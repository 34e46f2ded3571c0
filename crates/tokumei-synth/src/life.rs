//! Households and their life over the period: composition, moves, marriages, jobs, insurance,
//! deaths and the onset of disease.

use chrono::{Datelike, NaiveDate};
use rand::Rng;
use tokumei_model::{InsuranceKind, Sex};

use crate::clinical::{Category, Physiology};
use crate::dates::{age_on, age_years, birthday, plus_days, Period};
use crate::names::Name;
use crate::region::{Address, Region};
use crate::rng::{chance, normal, poisson, rng_for, Stream, SynthRng, Weighted};
use crate::Context;

/// Residents of 青森県 by 5-year age band (thousands, 2020 census shape; last band 100+).
const PYRAMID_5Y: [f64; 21] = [
    37.0, 43.0, 47.0, 50.0, 41.0, 41.0, 48.0, 57.0, 69.0, 78.0, 77.0, 83.0, 93.0, 108.0, 92.0,
    71.0, 64.0, 46.0, 22.0, 6.0, 1.0,
];

/// Oldest age generated.
pub const MAX_AGE: usize = 104;

/// Per-year cumulative age weights.
#[derive(Debug, Clone)]
pub struct AgePyramid {
    cumulative: Vec<f64>,
}

impl Default for AgePyramid {
    fn default() -> Self {
        let mut cumulative = Vec::with_capacity(MAX_AGE + 1);
        let mut total = 0.0;
        for age in 0..=MAX_AGE {
            total += PYRAMID_5Y[(age / 5).min(20)] / 5.0;
            cumulative.push(total);
        }
        AgePyramid { cumulative }
    }
}

impl AgePyramid {
    /// Draws an age in `[lo, hi]` following the pyramid.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R, lo: usize, hi: usize) -> usize {
        let hi = hi.min(MAX_AGE);
        let lo = lo.min(hi);
        let base = if lo == 0 {
            0.0
        } else {
            self.cumulative[lo - 1]
        };
        let x = base + rng.random::<f64>() * (self.cumulative[hi] - base);
        (lo + self.cumulative[lo..=hi].partition_point(|&c| c <= x)).min(hi)
    }
}

/// A person's role in the household at the start of the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Head of household.
    Head,
    /// Spouse of the head.
    Spouse,
    /// Child of the head.
    Child,
    /// Parent of the head.
    Parent,
}

/// An employment with employees' health insurance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Scheme.
    pub kind: InsuranceKind,
    /// Insurer number.
    pub insurer: String,
    /// 記号 (office).
    pub symbol: String,
    /// 番号.
    pub number: String,
}

/// Health insurance held from a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// From this date.
    pub from: NaiveDate,
    /// Scheme.
    pub kind: InsuranceKind,
    /// 保険者番号.
    pub insurer: String,
    /// 記号.
    pub symbol: Option<String>,
    /// 番号.
    pub number: String,
    /// 枝番.
    pub branch: Option<String>,
    /// Insured person (本人) rather than dependent.
    pub principal: bool,
}

impl Coverage {
    fn same_as(&self, other: &Coverage) -> bool {
        self.kind == other.kind
            && self.insurer == other.insurer
            && self.symbol == other.symbol
            && self.number == other.number
            && self.branch == other.branch
            && self.principal == other.principal
    }
}

/// A condition with its onset.
#[derive(Debug, Clone)]
pub struct Condition {
    /// Disease index.
    pub disease: usize,
    /// Onset date.
    pub onset: NaiveDate,
    /// Diagnosed and treated.
    pub treated: bool,
    /// Drugs prescribed for it.
    pub drugs: Vec<usize>,
}

/// An acute episode.
#[derive(Debug, Clone)]
pub struct Episode {
    /// Disease index.
    pub disease: usize,
    /// Date of the first visit.
    pub date: NaiveDate,
    /// Whether it ended in death.
    pub fatal: bool,
}

/// One simulated person.
#[derive(Debug, Clone)]
pub struct LifePerson {
    /// Slot within the household (0 = head).
    pub slot: u8,
    /// Global key: household index * 16 + slot.
    pub key: u64,
    /// Role at the start.
    pub role: Role,
    /// Sex.
    pub sex: Sex,
    /// Birth date.
    pub birth: NaiveDate,
    /// Given name.
    pub given: Name,
    /// Surnames with the date from which each holds (the first from before the period).
    pub surnames: Vec<(NaiveDate, Name)>,
    /// Addresses with the date from which each holds.
    pub addresses: Vec<(NaiveDate, Address)>,
    /// Insurance history.
    pub coverages: Vec<Coverage>,
    /// Date of death.
    pub death: Option<NaiveDate>,
    /// Chronic, cancer and rare conditions.
    pub conditions: Vec<Condition>,
    /// Acute episodes.
    pub episodes: Vec<Episode>,
    /// Latent physiology.
    pub physiology: Physiology,
    /// Home clinic (provider index).
    pub home_clinic: usize,
    /// Whether chronic care happens at the area hospital instead of the clinic.
    pub hospital_managed: bool,
    /// Month of the year (1-12) of the annual checkup.
    pub checkup_month: u32,
    /// Participates in checkups.
    pub checkup_participant: bool,
    job: Option<Job>,
    job_seq: u64,
    external_cover: Option<Job>,
    left: bool,
    married: bool,
    kokuho_key: u64,
}

impl LifePerson {
    /// Surname in force on `d`.
    pub fn surname_on(&self, d: NaiveDate) -> &Name {
        at(&self.surnames, d)
    }

    /// Address in force on `d`.
    pub fn address_on(&self, d: NaiveDate) -> &Address {
        at(&self.addresses, d)
    }

    /// Insurance in force on `d`, if any.
    pub fn coverage_on(&self, d: NaiveDate) -> Option<&Coverage> {
        self.coverages
            .iter()
            .rev()
            .find(|c| c.from <= d)
            .or(self.coverages.first())
    }

    /// Whether the person is alive on `d`.
    pub fn alive_on(&self, d: NaiveDate) -> bool {
        self.death.is_none_or(|x| d <= x)
    }
}

fn at<T>(history: &[(NaiveDate, T)], d: NaiveDate) -> &T {
    let i = history.partition_point(|(from, _)| *from <= d);
    &history[i.saturating_sub(1)].1
}

/// A household with its members.
#[derive(Debug, Clone)]
pub struct Household {
    /// Global household index.
    pub index: u64,
    /// Members.
    pub members: Vec<LifePerson>,
}

fn perm7(x: u64) -> u64 {
    (x.wrapping_mul(7_654_321).wrapping_add(1_234_567)) % 10_000_000
}

fn perm8(x: u64) -> u64 {
    (x.wrapping_mul(76_543_211).wrapping_add(12_345_678)) % 100_000_000
}

/// A facility's patient number (カルテ番号) for a person: 8 digits, distinct for distinct persons of one
/// facility (a bijection of the person key shifted by the facility), not sequential.
pub fn patient_number(person_key: u64, provider: usize) -> String {
    format!(
        "{:08}",
        perm8(person_key.wrapping_add(provider as u64 * 7919) % 100_000_000)
    )
}

/// A municipality's resident number for a person: 10 digits, distinct for distinct persons.
pub fn resident_number(person_key: u64) -> String {
    format!(
        "{:010}",
        (person_key
            .wrapping_mul(7_654_321_019)
            .wrapping_add(1_234_567_891))
            % 10_000_000_000
    )
}

/// Annual probability of death by age and sex (Gompertz fit to Japanese life tables).
fn annual_mortality(age: f64, sex: Sex) -> f64 {
    let base = (-12.3 + 0.107 * age).exp().max(0.0003);
    let f = match sex {
        Sex::Male => 1.35,
        Sex::Female => 0.7,
    };
    (base * f).min(0.6)
}

fn new_job(ctx: &Context, rng: &mut SynthRng, person_key: u64, seq: u64) -> Job {
    let region = &ctx.region;
    let x = rng.random::<f64>();
    let number = perm7(person_key * 4 + seq % 4).to_string();
    if x < 0.55 {
        Job {
            kind: InsuranceKind::Kyokai,
            insurer: region.kyokai.number.clone(),
            symbol: format!("{:08}", perm8(rng.random_range(0..6000u64) + 1000)),
            number,
        }
    } else if x < 0.83 {
        let ins = &region.kumiai[rng.random_range(0..region.kumiai.len())];
        Job {
            kind: ins.kind,
            insurer: ins.number.clone(),
            symbol: rng.random_range(1..=400u32).to_string(),
            number,
        }
    } else {
        let ins = &region.kyosai[rng.random_range(0..region.kyosai.len())];
        Job {
            kind: ins.kind,
            insurer: ins.number.clone(),
            symbol: format!("{}", rng.random_range(100..=9999u32)),
            number,
        }
    }
}

fn employment_probability(age: i32, sex: Sex, role: Role) -> f64 {
    let (m, f) = match age {
        ..=17 => (0.0, 0.0),
        18..=22 => (0.35, 0.35),
        23..=59 => (0.9, if role == Role::Spouse { 0.55 } else { 0.72 }),
        60..=64 => (0.7, 0.45),
        65..=74 => (0.35, 0.2),
        _ => (0.0, 0.0),
    };
    match sex {
        Sex::Male => m,
        Sex::Female => f,
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    SingleYoung,
    SingleMid,
    SingleElder,
    CoupleElder,
    CoupleMid,
    CoupleYoung,
    Nuclear,
    SingleParent,
    ThreeGen,
}

const KINDS: [(Kind, f64); 9] = [
    (Kind::SingleYoung, 0.10),
    (Kind::SingleMid, 0.08),
    (Kind::SingleElder, 0.20),
    (Kind::CoupleElder, 0.20),
    (Kind::CoupleMid, 0.08),
    (Kind::CoupleYoung, 0.03),
    (Kind::Nuclear, 0.17),
    (Kind::SingleParent, 0.06),
    (Kind::ThreeGen, 0.12),
];

/// Household-kind sampler.
pub fn kind_weights() -> Option<Weighted> {
    Weighted::new(KINDS.iter().map(|(_, w)| *w))
}

struct Draft {
    role: Role,
    sex: Sex,
    age: usize,
}

fn other(sex: Sex) -> Sex {
    match sex {
        Sex::Male => Sex::Female,
        Sex::Female => Sex::Male,
    }
}

fn compose(ctx: &Context, rng: &mut SynthRng) -> Vec<Draft> {
    let pyr = &ctx.pyramid;
    let kind = KINDS[ctx.household_kinds.sample(rng)].0;
    let mut v = Vec::new();
    let couple = |rng: &mut SynthRng, v: &mut Vec<Draft>, lo: usize, hi: usize| {
        let head_sex = if chance(rng, 0.85) {
            Sex::Male
        } else {
            Sex::Female
        };
        let age = pyr.draw(rng, lo, hi);
        let d = normal(rng, if head_sex == Sex::Male { -2.0 } else { 2.0 }, 3.0).round() as i64;
        let spouse_age = (age as i64 + d).clamp(18, MAX_AGE as i64) as usize;
        v.push(Draft {
            role: Role::Head,
            sex: head_sex,
            age,
        });
        v.push(Draft {
            role: Role::Spouse,
            sex: other(head_sex),
            age: spouse_age,
        });
        age.min(spouse_age)
    };
    let children =
        |rng: &mut SynthRng, v: &mut Vec<Draft>, parent_age: usize, n: usize, max: usize| {
            for _ in 0..n {
                let gap = rng.random_range(22..=40usize);
                if parent_age < gap {
                    continue;
                }
                let age = (parent_age - gap).min(max);
                let sex = if chance(rng, 0.51) {
                    Sex::Male
                } else {
                    Sex::Female
                };
                v.push(Draft {
                    role: Role::Child,
                    sex,
                    age,
                });
            }
        };
    match kind {
        Kind::SingleYoung => {
            let sex = if chance(rng, 0.6) {
                Sex::Male
            } else {
                Sex::Female
            };
            v.push(Draft {
                role: Role::Head,
                sex,
                age: pyr.draw(rng, 19, 39),
            });
        }
        Kind::SingleMid => {
            let sex = if chance(rng, 0.55) {
                Sex::Male
            } else {
                Sex::Female
            };
            v.push(Draft {
                role: Role::Head,
                sex,
                age: pyr.draw(rng, 40, 64),
            });
        }
        Kind::SingleElder => {
            let sex = if chance(rng, 0.35) {
                Sex::Male
            } else {
                Sex::Female
            };
            v.push(Draft {
                role: Role::Head,
                sex,
                age: pyr.draw(rng, 65, MAX_AGE),
            });
        }
        Kind::CoupleElder => {
            couple(rng, &mut v, 65, 95);
        }
        Kind::CoupleMid => {
            couple(rng, &mut v, 40, 64);
        }
        Kind::CoupleYoung => {
            couple(rng, &mut v, 22, 39);
        }
        Kind::Nuclear => {
            let youngest_parent = couple(rng, &mut v, 27, 62);
            let n = 1 + (rng.random::<f64>() * 2.4) as usize;
            children(rng, &mut v, youngest_parent, n, 29);
        }
        Kind::SingleParent => {
            let sex = if chance(rng, 0.85) {
                Sex::Female
            } else {
                Sex::Male
            };
            let age = pyr.draw(rng, 25, 60);
            v.push(Draft {
                role: Role::Head,
                sex,
                age,
            });
            let n = 1 + usize::from(chance(rng, 0.45));
            children(rng, &mut v, age, n, 29);
        }
        Kind::ThreeGen => {
            let youngest = couple(rng, &mut v, 35, 62);
            let head_age = v[0].age;
            let n = rng.random_range(0..=2usize);
            children(rng, &mut v, youngest, n, 30);
            let parents = if chance(rng, 0.6) { 1 } else { 2 };
            for i in 0..parents {
                let age = (head_age + rng.random_range(24..=36usize)).min(MAX_AGE);
                let sex = if parents == 1 {
                    if chance(rng, 0.75) {
                        Sex::Female
                    } else {
                        Sex::Male
                    }
                } else if i == 0 {
                    Sex::Male
                } else {
                    Sex::Female
                };
                v.push(Draft {
                    role: Role::Parent,
                    sex,
                    age,
                });
            }
        }
    }
    v
}

/// Generates household `index` and simulates it over the period.
pub fn simulate_household(ctx: &Context, index: u64) -> Household {
    let mut rng = rng_for(ctx.seed, Stream::Household, index);
    let period = ctx.period;
    let region = &ctx.region;
    let drafts = compose(ctx, &mut rng);
    let surname = ctx.names.surname(&mut rng);
    let address = region.draw_address(&mut rng, None);
    let muni = address.muni as usize;
    let clinics = &region.clinics_by_muni[muni];
    let household_clinic = clinics[rng.random_range(0..clinics.len())];
    let has_spouse = drafts.iter().any(|d| d.role == Role::Spouse);
    let mut members = Vec::with_capacity(drafts.len());
    for (slot, d) in drafts.into_iter().enumerate() {
        let key = index * 16 + slot as u64;
        let birth = plus_days(
            period.start,
            -(d.age as i64 * 36525 / 100) - rng.random_range(1..=365),
        );
        let given = ctx.names.given(&mut rng, d.sex, birth.year());
        // A parent of a female head, or a head's spouse who kept the name, may carry another surname.
        let own_surname = if (d.role == Role::Parent && chance(&mut rng, 0.15))
            || (d.role == Role::Spouse && chance(&mut rng, 0.03))
        {
            ctx.names.surname(&mut rng)
        } else {
            surname.clone()
        };
        let age = age_on(birth, period.start);
        let job = if chance(&mut rng, employment_probability(age, d.sex, d.role)) {
            Some(new_job(ctx, &mut rng, key, 0))
        } else {
            None
        };
        let physiology = Physiology::draw(&mut rng, age as f64, d.sex, false, false, false, false);
        let home_clinic = if chance(&mut rng, 0.8) {
            household_clinic
        } else {
            let near = &region.clinics_by_muni[muni];
            near[rng.random_range(0..near.len())]
        };
        members.push(LifePerson {
            slot: slot as u8,
            key,
            role: d.role,
            sex: d.sex,
            birth,
            given,
            surnames: vec![(birth, own_surname)],
            addresses: vec![(birth.min(period.start), address.clone())],
            coverages: Vec::new(),
            death: None,
            conditions: Vec::new(),
            episodes: Vec::new(),
            physiology,
            home_clinic,
            hospital_managed: chance(&mut rng, 0.15),
            checkup_month: rng.random_range(5..=11),
            checkup_participant: chance(&mut rng, 0.6),
            job,
            job_seq: 0,
            external_cover: None,
            left: false,
            married: d.role != Role::Child && (d.role != Role::Head || has_spouse),
            kokuho_key: index * 64,
        });
    }
    let mut hh = Household { index, members };
    prevalent_conditions(ctx, &mut hh, &mut rng);
    run_period(ctx, &mut hh, &mut rng);
    hh
}

fn prevalent_conditions(ctx: &Context, hh: &mut Household, rng: &mut SynthRng) {
    let start = ctx.period.start;
    for p in &mut hh.members {
        let age = age_years(p.birth, start);
        for (di, d) in ctx.clinical.diseases.iter().enumerate() {
            if d.category == Category::Acute {
                continue;
            }
            if chance(rng, d.prevalence.at(age, p.sex)) {
                let span: f64 = match d.category {
                    Category::Cancer => 5.0,
                    Category::Rare => 15.0,
                    _ => 10.0,
                };
                let max_back = span.min((age - 18.0).max(0.5));
                let back = (rng.random::<f64>() * max_back * 365.0) as i64 + 1;
                add_condition(ctx, p, di, plus_days(start, -back), rng);
            }
        }
        redraw_physiology(ctx, p, rng);
    }
}

fn has(ctx: &Context, p: &LifePerson, key: &str) -> bool {
    ctx.clinical
        .disease(key)
        .is_some_and(|d| p.conditions.iter().any(|c| c.disease == d))
}

fn redraw_physiology(ctx: &Context, p: &mut LifePerson, rng: &mut SynthRng) {
    let age = age_years(p.birth, ctx.period.start);
    p.physiology = Physiology::draw(
        rng,
        age,
        p.sex,
        has(ctx, p, "t2dm"),
        has(ctx, p, "hypertension"),
        has(ctx, p, "dyslipidaemia"),
        has(ctx, p, "ckd"),
    );
}

fn add_condition(
    ctx: &Context,
    p: &mut LifePerson,
    disease: usize,
    onset: NaiveDate,
    rng: &mut SynthRng,
) {
    let d = &ctx.clinical.diseases[disease];
    let treated = match d.category {
        Category::Chronic => chance(rng, 0.85),
        _ => true,
    };
    let mut drugs = Vec::new();
    if !d.drugs.is_empty() {
        drugs.push(d.drugs[rng.random_range(0..d.drugs.len())]);
        if d.key == "hypertension" && d.drugs.len() > 1 && chance(rng, 0.4) {
            let second = d.drugs[rng.random_range(0..d.drugs.len())];
            if second != drugs[0] {
                drugs.push(second);
            }
        }
    }
    p.conditions.push(Condition {
        disease,
        onset,
        treated,
        drugs,
    });
}

/// One month of the period: its first day, the first day of the next, and the day drawn for its
/// events.
#[derive(Clone, Copy)]
struct Month {
    start: NaiveDate,
    next: NaiveDate,
    t: NaiveDate,
}

fn run_period(ctx: &Context, hh: &mut Household, rng: &mut SynthRng) {
    let period: Period = ctx.period;
    // Initial insurance.
    for i in 0..hh.members.len() {
        update_coverage(ctx, hh, i, period.start);
    }
    for m in 0..period.months {
        let month_start = period.month_start(m);
        let month = Month {
            start: month_start,
            next: period.month_start(m + 1),
            t: plus_days(month_start, rng.random_range(0..28)),
        };
        // Yearly: disease onsets and acute episodes for the coming twelve months.
        if m % 12 == 0 {
            for p in hh.members.iter_mut() {
                if !p.alive_on(month_start) {
                    continue;
                }
                yearly_health(ctx, p, m, rng);
            }
        }
        for p in hh.members.iter_mut() {
            monthly_death(ctx, p, month, rng);
        }
        household_move(&ctx.region, hh, month.t, rng);
        // Individual events: marriage, jobs, retirement.
        for i in 0..hh.members.len() {
            let index = hh.index;
            individual_events(ctx, index, &mut hh.members[i], month, rng);
        }
        month_coverage(ctx, hh, month);
    }
    drop_after_death(hh);
}

/// Death in the month: from the mortality of age and sex plus the hazards of the conditions begun,
/// or after a fatal acute episode of the month.
fn monthly_death(ctx: &Context, p: &mut LifePerson, month: Month, rng: &mut SynthRng) {
    if p.death.is_some() {
        return;
    }
    let t = month.t;
    let age = age_years(p.birth, t);
    let mut hazard = annual_mortality(age, p.sex) / 12.0;
    for c in &p.conditions {
        if c.onset <= t {
            let d = &ctx.clinical.diseases[c.disease];
            if d.category != Category::Acute {
                hazard += d.monthly_death_hazard;
            }
        }
    }
    if chance(rng, hazard) {
        p.death = Some(t);
    }
    if let Some(e) = p
        .episodes
        .iter()
        .find(|e| e.fatal && e.date >= month.start && e.date < month.next)
    {
        let d = plus_days(e.date, rng.random_range(3..=30)).min(plus_days(ctx.period.end, -1));
        if p.death.is_none_or(|x| d < x) {
            p.death = Some(d);
        }
    }
}

/// A move of the whole household on `t` (more likely with a young head), within the municipality
/// about half the time; a new municipality brings a new 国保 and home clinic.
fn household_move(region: &Region, hh: &mut Household, t: NaiveDate, rng: &mut SynthRng) {
    let head_age = hh
        .members
        .iter()
        .find(|p| !p.left)
        .map(|p| age_on(p.birth, t))
        .unwrap_or(80);
    let move_p = match head_age {
        ..=34 => 0.10,
        35..=64 => 0.035,
        _ => 0.015,
    } / 12.0;
    if !chance(rng, move_p) {
        return;
    }
    let cur = hh
        .members
        .iter()
        .find(|p| !p.left)
        .map(|p| p.address_on(t).muni as usize);
    let same = chance(rng, 0.55);
    let addr = region.draw_address(rng, if same { cur } else { None });
    let changed_muni = cur != Some(addr.muni as usize);
    let clinics = &region.clinics_by_muni[addr.muni as usize];
    let clinic = clinics[rng.random_range(0..clinics.len())];
    for p in hh.members.iter_mut().filter(|p| !p.left && p.alive_on(t)) {
        p.addresses.push((t, addr.clone()));
        if changed_muni {
            p.kokuho_key += 1;
            p.home_clinic = clinic;
        }
    }
}

/// A member's events of the month: marriage, a new job, retirement at 60 or 65, a first job.
fn individual_events(
    ctx: &Context,
    hh_index: u64,
    p: &mut LifePerson,
    month: Month,
    rng: &mut SynthRng,
) {
    let t = month.t;
    if !p.alive_on(t) {
        return;
    }
    let age = age_on(p.birth, t);
    if !p.married && (22..=42).contains(&age) && p.role != Role::Parent {
        let rate = if p.role == Role::Child { 0.07 } else { 0.05 };
        if chance(rng, rate / 12.0) {
            marry(ctx, hh_index, p, t, rng);
        }
    }
    if p.job.is_some() && age < 60 && chance(rng, 0.05 / 12.0) {
        p.job_seq += 1;
        p.job = Some(new_job(ctx, rng, p.key, p.job_seq));
    }
    let b60 = birthday(p.birth, 60);
    let b65 = birthday(p.birth, 65);
    if p.job.is_some()
        && ((b60 >= month.start && b60 < month.next && chance(rng, 0.35))
            || (b65 >= month.start && b65 < month.next && chance(rng, 0.75)))
    {
        p.job = None;
    }
    if p.job.is_none()
        && p.role == Role::Child
        && (18..=29).contains(&age)
        && chance(rng, 0.25 / 12.0)
    {
        p.job_seq += 1;
        p.job = Some(new_job(ctx, rng, p.key, p.job_seq));
        p.external_cover = None;
    }
}

/// A marriage on `t`: a new surname for most women and a few men; a child of the household leaves
/// it for an address of their own (with cover through a spouse's job most of the time).
fn marry(ctx: &Context, hh_index: u64, p: &mut LifePerson, t: NaiveDate, rng: &mut SynthRng) {
    p.married = true;
    let takes_name = match p.sex {
        Sex::Female => chance(rng, 0.95),
        Sex::Male => chance(rng, 0.04),
    };
    if takes_name {
        let new = ctx.names.surname(rng);
        if new != p.surname_on(t).clone() {
            p.surnames.push((t, new));
        }
    }
    if p.role == Role::Child {
        p.left = true;
        p.kokuho_key = hh_index * 64 + 32 + p.slot as u64;
        let cur = p.address_on(t).muni as usize;
        let same = chance(rng, 0.5);
        let addr = ctx.region.draw_address(rng, same.then_some(cur));
        p.addresses.push((t, addr));
        if p.job.is_none() && chance(rng, 0.7) {
            p.external_cover = Some(new_job(ctx, rng, p.key, 3));
        }
    }
}

/// Insurance: the 75th birthday first, then the month's state.
fn month_coverage(ctx: &Context, hh: &mut Household, month: Month) {
    let Month { start, next, t } = month;
    for i in 0..hh.members.len() {
        let b75 = birthday(hh.members[i].birth, 75);
        if b75 >= start && b75 < next && b75 <= t {
            update_coverage(ctx, hh, i, b75);
        }
    }
    for i in 0..hh.members.len() {
        update_coverage(ctx, hh, i, t);
    }
    for i in 0..hh.members.len() {
        let b75 = birthday(hh.members[i].birth, 75);
        if b75 > t && b75 < next {
            update_coverage(ctx, hh, i, b75);
        }
    }
}

/// Drops what happened after death.
fn drop_after_death(hh: &mut Household) {
    for p in &mut hh.members {
        if let Some(d) = p.death {
            p.conditions.retain(|c| c.onset <= d);
            p.episodes.retain(|e| e.date <= d);
            p.surnames.retain(|(from, _)| *from <= d);
            p.addresses.retain(|(from, _)| *from <= d);
            let first = p.coverages.first().cloned();
            p.coverages.retain(|c| c.from <= d);
            if p.coverages.is_empty() {
                p.coverages.extend(first);
            }
        }
    }
}

fn yearly_health(ctx: &Context, p: &mut LifePerson, m: u32, rng: &mut SynthRng) {
    let period = ctx.period;
    let from = period.month_start(m);
    let age = age_years(p.birth, from);
    let days_left = (period.end - from).num_days().clamp(1, 365);
    for (di, d) in ctx.clinical.diseases.iter().enumerate() {
        if d.category == Category::Acute || p.conditions.iter().any(|c| c.disease == di) {
            continue;
        }
        if chance(rng, d.prevalence.annual_incidence(age, p.sex)) {
            let onset = plus_days(from, rng.random_range(0..days_left));
            add_condition(ctx, p, di, onset, rng);
        }
    }
    let rate = match age as u32 {
        0..=5 => 3.0,
        6..=14 => 1.6,
        15..=64 => 0.8,
        _ => 1.2,
    };
    let n = poisson(rng, rate * days_left as f64 / 365.0);
    for _ in 0..n {
        let mut di = ctx.clinical.acute[ctx.clinical.acute_weights.sample(rng)];
        let mut d = &ctx.clinical.diseases[di];
        if d.needs_admission && age < 60.0 && chance(rng, 0.9) {
            di = ctx.clinical.acute[0];
            d = &ctx.clinical.diseases[di];
        }
        let date = plus_days(from, rng.random_range(0..days_left));
        // Influenza is seasonal: move it to winter.
        let date = if d.key == "influenza" && !matches!(date.month(), 12 | 1 | 2 | 3) {
            NaiveDate::from_ymd_opt(date.year(), 1, rng.random_range(10..=28)).unwrap_or(date)
        } else {
            date
        };
        if !period.contains(date) {
            continue;
        }
        let fatal = d.needs_admission
            && chance(rng, (d.monthly_death_hazard * 3.0 * (age / 70.0)).min(0.5));
        p.episodes.push(Episode {
            disease: di,
            date,
            fatal,
        });
    }
    p.episodes.sort_by_key(|e| e.date);
}

/// Recomputes the insurance of member `i` on `date` and records it if it changed.
fn update_coverage(ctx: &Context, hh: &mut Household, i: usize, date: NaiveDate) {
    let region = &ctx.region;
    let p = &hh.members[i];
    if !p.alive_on(date) {
        return;
    }
    let muni = p.address_on(date).muni as usize;
    let age = age_on(p.birth, date);
    let cov = if age >= 75 {
        Coverage {
            from: date,
            kind: InsuranceKind::Koki,
            insurer: region.koki_insurer(muni),
            symbol: None,
            number: format!("{:08}", perm8(p.key)),
            branch: None,
            principal: true,
        }
    } else if let Some(job) = &p.job {
        employer_cover(date, job, "00".into(), true)
    } else if let Some(job) = &p.external_cover {
        employer_cover(date, job, "01".into(), false)
    } else if let Some(principal) = dependency_principal(hh, i, date) {
        let branch = format!("{:02}", p.slot + 1);
        match &hh.members[principal].job {
            Some(job) => employer_cover(date, job, branch, false),
            None => kokuho_cover(region, p, muni, date),
        }
    } else {
        kokuho_cover(region, p, muni, date)
    };
    let p = &mut hh.members[i];
    if p.coverages.last().is_none_or(|c| !c.same_as(&cov)) {
        p.coverages.push(cov);
    }
}

fn employer_cover(date: NaiveDate, job: &Job, branch: String, principal: bool) -> Coverage {
    Coverage {
        from: date,
        kind: job.kind,
        insurer: job.insurer.clone(),
        symbol: Some(job.symbol.clone()),
        number: job.number.clone(),
        branch: Some(branch),
        principal,
    }
}

fn kokuho_cover(region: &Region, p: &LifePerson, muni: usize, date: NaiveDate) -> Coverage {
    let town = p.address_on(date).town;
    Coverage {
        from: date,
        kind: InsuranceKind::Kokuho,
        insurer: region.kokuho_insurer(muni),
        symbol: Some(format!("{:02}", town % 30 + 1)),
        number: format!("{:07}", perm7(p.kokuho_key)),
        branch: Some(format!("{:02}", p.slot + 1)),
        principal: true,
    }
}

/// The household member whose employees' insurance covers member `i` as a dependent, if any.
fn dependency_principal(hh: &Household, i: usize, date: NaiveDate) -> Option<usize> {
    let p = &hh.members[i];
    if p.left {
        return None;
    }
    let age = age_on(p.birth, date);
    let eligible = match p.role {
        Role::Spouse | Role::Head => true,
        Role::Child => age < 23,
        Role::Parent => age < 75,
    };
    if !eligible {
        return None;
    }
    hh.members.iter().position(|q| {
        q.slot != p.slot
            && !q.left
            && q.alive_on(date)
            && q.job.is_some()
            && matches!(q.role, Role::Head | Role::Spouse)
            && age_on(q.birth, date) < 75
    })
}
