//! Names: kanji with katakana readings, frequency-skewed like reality.
//!
//! Surnames: the commonest names of 青森県 each carry 1–2 % of people, a list of 500 common Japanese
//! surnames follows with Zipf-like weights, and a long tail of rarer surnames is composed from
//! common surname elements. Given names mix the popular names of each birth cohort with a large
//! list of given names.

use rand::Rng;

use crate::rng::{chance, Weighted};
use crate::tsv;
use crate::SynthError;
use tokumei_model::Sex;

const SURNAMES: &str = include_str!("../data/names/surnames.tsv");
const GIVEN: &str = include_str!("../data/names/given_names.tsv");

/// A name with its reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// Kanji (or kana) as written.
    pub kanji: String,
    /// Reading in full-width katakana.
    pub kana: String,
}

/// Aomori's commonest surnames with their share of residents in percent.
const AOMORI_TOP: &[(&str, &str, f64)] = &[
    ("工藤", "クドウ", 1.9),
    ("佐藤", "サトウ", 1.8),
    ("佐々木", "ササキ", 1.6),
    ("木村", "キムラ", 1.5),
    ("成田", "ナリタ", 1.3),
    ("三上", "ミカミ", 1.2),
    ("斎藤", "サイトウ", 1.1),
    ("中村", "ナカムラ", 1.0),
    ("田中", "タナカ", 0.9),
    ("鈴木", "スズキ", 0.9),
    ("高橋", "タカハシ", 0.85),
    ("小山内", "オサナイ", 0.8),
    ("山田", "ヤマダ", 0.75),
    ("相馬", "ソウマ", 0.7),
    ("伊藤", "イトウ", 0.7),
    ("葛西", "カサイ", 0.65),
    ("小笠原", "オガサワラ", 0.6),
    ("福士", "フクシ", 0.55),
    ("鳴海", "ナルミ", 0.5),
    ("対馬", "ツシマ", 0.5),
    ("秋元", "アキモト", 0.45),
    ("蝦名", "エビナ", 0.4),
    ("一戸", "イチノヘ", 0.4),
    ("今", "コン", 0.35),
    ("須藤", "スドウ", 0.35),
    ("三浦", "ミウラ", 0.35),
    ("渡辺", "ワタナベ", 0.35),
    ("山本", "ヤマモト", 0.3),
    ("竹内", "タケウチ", 0.3),
    ("斉藤", "サイトウ", 0.3),
];

/// Share of people (percent) carried by the 500-name list and by the composed tail.
const LIST_SHARE: f64 = 60.0;
const TAIL_SHARE: f64 = 16.0;

/// Surname elements for the composed tail: (kanji, reading).
const HEADS: &[(&str, &str)] = &[
    ("大", "オオ"),
    ("小", "コ"),
    ("上", "カミ"),
    ("下", "シモ"),
    ("中", "ナカ"),
    ("北", "キタ"),
    ("南", "ミナミ"),
    ("東", "ヒガシ"),
    ("西", "ニシ"),
    ("石", "イシ"),
    ("岩", "イワ"),
    ("金", "カネ"),
    ("白", "シラ"),
    ("黒", "クロ"),
    ("赤", "アカ"),
    ("青", "アオ"),
    ("浅", "アサ"),
    ("深", "フカ"),
    ("福", "フク"),
    ("吉", "ヨシ"),
    ("平", "ヒラ"),
    ("松", "マツ"),
    ("竹", "タケ"),
    ("梅", "ウメ"),
    ("杉", "スギ"),
    ("柳", "ヤナギ"),
    ("桜", "サクラ"),
    ("藤", "フジ"),
    ("菊", "キク"),
    ("前", "マエ"),
    ("奥", "オク"),
    ("横", "ヨコ"),
    ("宮", "ミヤ"),
    ("野", "ノ"),
    ("長", "ナガ"),
    ("高", "タカ"),
    ("早", "ハヤ"),
    ("新", "ニイ"),
    ("古", "フル"),
    ("今", "イマ"),
    ("堀", "ホリ"),
    ("沼", "ヌマ"),
    ("磯", "イソ"),
    ("鶴", "ツル"),
    ("亀", "カメ"),
    ("鷹", "タカ"),
    ("熊", "クマ"),
    ("鹿", "シカ"),
    ("馬", "ウマ"),
    ("桑", "クワ"),
    ("栗", "クリ"),
    ("柴", "シバ"),
    ("萩", "ハギ"),
    ("蓬", "ヨモギ"),
];
const TAILS: &[(&str, &str, &str)] = &[
    ("田", "タ", "ダ"),
    ("野", "ノ", "ノ"),
    ("川", "カワ", "ガワ"),
    ("山", "ヤマ", "ヤマ"),
    ("沢", "サワ", "ザワ"),
    ("谷", "タニ", "ヤ"),
    ("木", "キ", "ギ"),
    ("本", "モト", "モト"),
    ("井", "イ", "イ"),
    ("島", "シマ", "ジマ"),
    ("原", "ハラ", "ワラ"),
    ("崎", "サキ", "ザキ"),
    ("口", "グチ", "グチ"),
    ("内", "ウチ", "ウチ"),
    ("村", "ムラ", "ムラ"),
    ("林", "バヤシ", "バヤシ"),
    ("橋", "ハシ", "バシ"),
    ("岡", "オカ", "オカ"),
    ("部", "ベ", "ベ"),
    ("坂", "サカ", "ザカ"),
    ("森", "モリ", "モリ"),
    ("瀬", "セ", "ゼ"),
    ("尾", "オ", "オ"),
    ("浦", "ウラ", "ウラ"),
    ("江", "エ", "エ"),
    ("池", "イケ", "イケ"),
    ("塚", "ツカ", "ヅカ"),
    ("畑", "ハタ", "バタ"),
    ("館", "ダテ", "ダテ"),
    ("舘", "ダテ", "ダテ"),
    ("戸", "ト", "ド"),
    ("森田", "モリタ", "モリタ"),
];

/// Popular given names by birth cohort: (first birth year, sex, [(kanji, reading)]).
/// (kanji, reading) pairs.
type NameList = &'static [(&'static str, &'static str)];

const COHORT_NAMES: &[(i32, Sex, NameList)] = &[
    (
        1900,
        Sex::Male,
        &[
            ("清", "キヨシ"),
            ("勇", "イサム"),
            ("博", "ヒロシ"),
            ("実", "ミノル"),
            ("茂", "シゲル"),
            ("進", "ススム"),
            ("正", "タダシ"),
            ("弘", "ヒロシ"),
            ("隆", "タカシ"),
            ("稔", "ミノル"),
            ("武", "タケシ"),
            ("昭", "アキラ"),
            ("豊", "ユタカ"),
            ("修", "オサム"),
            ("三郎", "サブロウ"),
            ("正雄", "マサオ"),
            ("一郎", "イチロウ"),
            ("勝", "マサル"),
        ],
    ),
    (
        1900,
        Sex::Female,
        &[
            ("和子", "カズコ"),
            ("幸子", "サチコ"),
            ("節子", "セツコ"),
            ("洋子", "ヨウコ"),
            ("弘子", "ヒロコ"),
            ("京子", "キョウコ"),
            ("久子", "ヒサコ"),
            ("美代子", "ミヨコ"),
            ("恵子", "ケイコ"),
            ("悦子", "エツコ"),
            ("文子", "フミコ"),
            ("信子", "ノブコ"),
            ("美智子", "ミチコ"),
            ("トシ", "トシ"),
            ("キヨ", "キヨ"),
            ("ハナ", "ハナ"),
            ("照子", "テルコ"),
            ("静子", "シズコ"),
        ],
    ),
    (
        1955,
        Sex::Male,
        &[
            ("誠", "マコト"),
            ("浩", "ヒロシ"),
            ("修", "オサム"),
            ("博", "ヒロシ"),
            ("隆", "タカシ"),
            ("聡", "サトシ"),
            ("健一", "ケンイチ"),
            ("哲也", "テツヤ"),
            ("秀樹", "ヒデキ"),
            ("浩二", "コウジ"),
            ("和彦", "カズヒコ"),
            ("直樹", "ナオキ"),
            ("剛", "ツヨシ"),
            ("学", "マナブ"),
            ("健", "ケン"),
        ],
    ),
    (
        1955,
        Sex::Female,
        &[
            ("恵子", "ケイコ"),
            ("由美子", "ユミコ"),
            ("久美子", "クミコ"),
            ("陽子", "ヨウコ"),
            ("真由美", "マユミ"),
            ("智子", "トモコ"),
            ("裕子", "ユウコ"),
            ("直美", "ナオミ"),
            ("明美", "アケミ"),
            ("純子", "ジュンコ"),
            ("典子", "ノリコ"),
            ("幸子", "サチコ"),
            ("美香", "ミカ"),
            ("由美", "ユミ"),
        ],
    ),
    (
        1978,
        Sex::Male,
        &[
            ("大輔", "ダイスケ"),
            ("拓也", "タクヤ"),
            ("健太", "ケンタ"),
            ("翔太", "ショウタ"),
            ("達也", "タツヤ"),
            ("和也", "カズヤ"),
            ("直樹", "ナオキ"),
            ("大樹", "ダイキ"),
            ("翔", "ショウ"),
            ("拓海", "タクミ"),
            ("誠", "マコト"),
            ("亮", "リョウ"),
        ],
    ),
    (
        1978,
        Sex::Female,
        &[
            ("愛", "アイ"),
            ("美穂", "ミホ"),
            ("彩", "アヤ"),
            ("麻衣", "マイ"),
            ("沙織", "サオリ"),
            ("舞", "マイ"),
            ("恵", "メグミ"),
            ("優子", "ユウコ"),
            ("美咲", "ミサキ"),
            ("さくら", "サクラ"),
            ("智美", "トモミ"),
            ("遥", "ハルカ"),
        ],
    ),
    (
        2003,
        Sex::Male,
        &[
            ("蓮", "レン"),
            ("大翔", "ヒロト"),
            ("悠真", "ユウマ"),
            ("陽翔", "ハルト"),
            ("湊", "ミナト"),
            ("颯太", "ソウタ"),
            ("樹", "イツキ"),
            ("悠人", "ユウト"),
            ("大和", "ヤマト"),
            ("蒼", "アオイ"),
            ("陸", "リク"),
            ("翔太", "ショウタ"),
        ],
    ),
    (
        2003,
        Sex::Female,
        &[
            ("陽葵", "ヒマリ"),
            ("結菜", "ユイナ"),
            ("芽依", "メイ"),
            ("葵", "アオイ"),
            ("さくら", "サクラ"),
            ("凛", "リン"),
            ("結衣", "ユイ"),
            ("美咲", "ミサキ"),
            ("陽菜", "ヒナ"),
            ("莉子", "リコ"),
            ("花", "ハナ"),
            ("心春", "コハル"),
        ],
    ),
];

/// Share of people given one of their cohort's popular names.
const COHORT_SHARE: f64 = 0.45;

/// Name tables of the generator.
#[derive(Debug, Clone)]
pub struct NameTables {
    surnames: Vec<Name>,
    surname_weights: Weighted,
    given_male: Vec<Name>,
    given_female: Vec<Name>,
    given_male_w: Weighted,
    given_female_w: Weighted,
    cohorts: Vec<(i32, Sex, Vec<Name>, Weighted)>,
}

fn zipf(n: usize, s: f64, offset: f64) -> Vec<f64> {
    (0..n).map(|r| 1.0 / (r as f64 + offset).powf(s)).collect()
}

fn scaled(weights: Vec<f64>, share: f64) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    weights.into_iter().map(|w| w / total * share).collect()
}

fn name(kanji: &str, kana: &str) -> Name {
    Name {
        kanji: kanji.to_string(),
        kana: kana.to_string(),
    }
}

fn no_weights(table: &'static str) -> SynthError {
    SynthError::Data {
        table,
        line: 0,
        reason: "empty table".into(),
    }
}

impl NameTables {
    /// Loads and weights the embedded name tables.
    pub fn load() -> Result<Self, SynthError> {
        let mut surnames: Vec<Name> = Vec::new();
        let mut weights: Vec<f64> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (k, r, share) in AOMORI_TOP {
            surnames.push(name(k, r));
            weights.push(*share);
            seen.insert(k.to_string());
        }
        let list: Vec<Name> = tsv::rows("surnames", SURNAMES, &["kanji", "kana"])?
            .into_iter()
            .filter(|r| !seen.contains(r[0]))
            .map(|r| name(r[0], r[1]))
            .collect();
        let list_w = scaled(zipf(list.len(), 1.0, 8.0), LIST_SHARE);
        for n in list {
            seen.insert(n.kanji.clone());
            surnames.push(n);
        }
        weights.extend(list_w);

        let mut tail = Vec::new();
        for (hi, (hk, hr)) in HEADS.iter().enumerate() {
            for (ti, (tk, plain, voiced)) in TAILS.iter().enumerate() {
                let kanji = format!("{hk}{tk}");
                if hk == tk || seen.contains(&kanji) {
                    continue;
                }
                let reading = if (hi * 7 + ti * 3) % 5 < 2 {
                    voiced
                } else {
                    plain
                };
                seen.insert(kanji.clone());
                tail.push(Name {
                    kanji,
                    kana: format!("{hr}{reading}"),
                });
            }
        }
        let tail_w = scaled(
            (0..tail.len()).map(|i| 1.0 + (i * 13 % 7) as f64).collect(),
            TAIL_SHARE,
        );
        surnames.extend(tail);
        weights.extend(tail_w);
        let surname_weights = Weighted::new(weights).ok_or_else(|| no_weights("surnames"))?;

        let mut given_male = Vec::new();
        let mut given_female = Vec::new();
        for r in tsv::rows("given_names", GIVEN, &["sex", "kanji", "kana"])? {
            match r[0] {
                "M" => given_male.push(name(r[1], r[2])),
                _ => given_female.push(name(r[1], r[2])),
            }
        }
        let given_male_w = Weighted::new(zipf(given_male.len(), 0.6, 20.0))
            .ok_or_else(|| no_weights("given_names"))?;
        let given_female_w = Weighted::new(zipf(given_female.len(), 0.6, 20.0))
            .ok_or_else(|| no_weights("given_names"))?;
        let mut cohorts = Vec::new();
        for (from, sex, names) in COHORT_NAMES {
            let list: Vec<Name> = names.iter().map(|(k, r)| name(k, r)).collect();
            let w =
                Weighted::new(zipf(list.len(), 1.0, 1.0)).ok_or_else(|| no_weights("cohorts"))?;
            cohorts.push((*from, *sex, list, w));
        }
        Ok(NameTables {
            surnames,
            surname_weights,
            given_male,
            given_female,
            given_male_w,
            given_female_w,
            cohorts,
        })
    }

    /// Number of distinct surnames the generator can draw.
    pub fn surname_count(&self) -> usize {
        self.surnames.len()
    }

    /// The expected share of the commonest surname.
    pub fn top_surname_share(&self) -> f64 {
        self.surname_weights.probability(0)
    }

    /// Draws a surname.
    pub fn surname<R: Rng + ?Sized>(&self, rng: &mut R) -> Name {
        self.surnames[self.surname_weights.sample(rng)].clone()
    }

    /// Draws a given name for a person of `sex` born in `birth_year`.
    pub fn given<R: Rng + ?Sized>(&self, rng: &mut R, sex: Sex, birth_year: i32) -> Name {
        if chance(rng, COHORT_SHARE) {
            let cohort = self
                .cohorts
                .iter()
                .rfind(|(from, s, _, _)| *s == sex && *from <= birth_year);
            if let Some((_, _, names, w)) = cohort {
                return names[w.sample(rng)].clone();
            }
        }
        match sex {
            Sex::Male => self.given_male[self.given_male_w.sample(rng)].clone(),
            Sex::Female => self.given_female[self.given_female_w.sample(rng)].clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_load_with_a_long_tail() {
        let t = NameTables::load().unwrap();
        assert!(t.surname_count() > 1500, "{}", t.surname_count());
        let top = t.top_surname_share();
        assert!((0.01..0.03).contains(&top), "{top}");
        assert!(t
            .surnames
            .iter()
            .all(|n| !n.kanji.is_empty() && !n.kana.is_empty()));
        // Readings are katakana only.
        assert!(t.surnames.iter().all(|n| n
            .kana
            .chars()
            .all(|c| ('\u{30A1}'..='\u{30FC}').contains(&c))));
    }
}
