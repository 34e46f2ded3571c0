//! Japanese domain knowledge, in one place: every other crate takes it from here and none lists it
//! again.
//!
//! - [`era`]: the eras (元号) 明治 to 令和 with their exact first days, both directions, and the era
//!   codes (`GYYMMDD`, `GYYMM`) of claims and legacy systems;
//! - [`fold`]: width folding (NFKC, full-width ASCII), kana folding (hiragana, half-width, small kana,
//!   long vowels, ヴ/ヂ/ヅ), variant kanji (異体字), kanji numerals;
//! - [`normalize`]: identity values in one comparable form (names, readings, dates, addresses, postal
//!   codes), every function idempotent;
//! - [`place`]: the 47 prefectures with their JIS X 0401 codes and regions (地方), address prefixes,
//!   and secondary medical areas (二次医療圏) of the municipalities shipped;
//! - [`icd10`]: the WHO ICD-10 (2019) chapters and blocks;
//! - [`byomei`]: 傷病名コード (claims disease codes) to ICD-10, from the rows of the 傷病名マスター
//!   shipped in `data/byomei_icd10.tsv`;
//! - [`drug`]: レセ電 医薬品コード (claims drug codes) to their 薬価基準収載医薬品コード (the drug's
//!   class), from the rows of the 医薬品マスター shipped in `data/drug_yj.tsv`.

pub mod byomei;
pub mod drug;
pub mod era;
pub mod fold;
pub mod icd10;
pub mod normalize;
pub mod place;

/// The data lines of a shipped table: comment lines (`#`) and the header line left out.
fn data_lines(table: &'static str) -> impl Iterator<Item = &'static str> {
    table.lines().filter(|l| !l.starts_with('#')).skip(1)
}

/// The three tab-separated fields of a shipped table's line, or `None` for another count.
fn three_fields(line: &'static str) -> Option<[&'static str; 3]> {
    let mut f = line.split('\t');
    let fields = [f.next()?, f.next()?, f.next()?];
    f.next().is_none().then_some(fields)
}
