//! Places: the 47 prefectures (都道府県) with their JIS X 0401 codes and the eight regions (地方),
//! address prefixes, and the secondary medical areas (二次医療圏) of the municipalities shipped.
//!
//! The medical areas are data, not code: the table shipped covers 青森県 (`data/medical_areas.tsv`,
//! the six areas of the prefecture's health-care plan); other prefectures are added by the operator
//! (see `tokumei_anonymize::AreaTable::from_csv`).

/// One prefecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefecture {
    /// JIS X 0401 code, `01` (北海道) to `47` (沖縄県); the first two digits of a municipality code.
    pub code: &'static str,
    /// The name with its suffix (`青森県`, `東京都`).
    pub name: &'static str,
    /// The region (`東北地方`).
    pub region: &'static str,
}

const fn p(code: &'static str, name: &'static str, region: &'static str) -> Prefecture {
    Prefecture { code, name, region }
}

const HOKKAIDO: &str = "北海道地方";
const TOHOKU: &str = "東北地方";
const KANTO: &str = "関東地方";
const CHUBU: &str = "中部地方";
const KINKI: &str = "近畿地方";
const CHUGOKU: &str = "中国地方";
const SHIKOKU: &str = "四国地方";
const KYUSHU: &str = "九州地方";

/// The prefectures in code order.
pub const PREFECTURES: [Prefecture; 47] = [
    p("01", "北海道", HOKKAIDO),
    p("02", "青森県", TOHOKU),
    p("03", "岩手県", TOHOKU),
    p("04", "宮城県", TOHOKU),
    p("05", "秋田県", TOHOKU),
    p("06", "山形県", TOHOKU),
    p("07", "福島県", TOHOKU),
    p("08", "茨城県", KANTO),
    p("09", "栃木県", KANTO),
    p("10", "群馬県", KANTO),
    p("11", "埼玉県", KANTO),
    p("12", "千葉県", KANTO),
    p("13", "東京都", KANTO),
    p("14", "神奈川県", KANTO),
    p("15", "新潟県", CHUBU),
    p("16", "富山県", CHUBU),
    p("17", "石川県", CHUBU),
    p("18", "福井県", CHUBU),
    p("19", "山梨県", CHUBU),
    p("20", "長野県", CHUBU),
    p("21", "岐阜県", CHUBU),
    p("22", "静岡県", CHUBU),
    p("23", "愛知県", CHUBU),
    p("24", "三重県", KINKI),
    p("25", "滋賀県", KINKI),
    p("26", "京都府", KINKI),
    p("27", "大阪府", KINKI),
    p("28", "兵庫県", KINKI),
    p("29", "奈良県", KINKI),
    p("30", "和歌山県", KINKI),
    p("31", "鳥取県", CHUGOKU),
    p("32", "島根県", CHUGOKU),
    p("33", "岡山県", CHUGOKU),
    p("34", "広島県", CHUGOKU),
    p("35", "山口県", CHUGOKU),
    p("36", "徳島県", SHIKOKU),
    p("37", "香川県", SHIKOKU),
    p("38", "愛媛県", SHIKOKU),
    p("39", "高知県", SHIKOKU),
    p("40", "福岡県", KYUSHU),
    p("41", "佐賀県", KYUSHU),
    p("42", "長崎県", KYUSHU),
    p("43", "熊本県", KYUSHU),
    p("44", "大分県", KYUSHU),
    p("45", "宮崎県", KYUSHU),
    p("46", "鹿児島県", KYUSHU),
    p("47", "沖縄県", KYUSHU),
];

/// The eight regions, north to south.
pub const REGIONS: [&str; 8] = [
    HOKKAIDO, TOHOKU, KANTO, CHUBU, KINKI, CHUGOKU, SHIKOKU, KYUSHU,
];

/// The prefecture of a name (`青森県`).
pub fn prefecture(name: &str) -> Option<&'static Prefecture> {
    PREFECTURES.iter().find(|p| p.name == name)
}

/// The prefecture of a JIS X 0401 code (`02`) or of a municipality code (`022012`, `02201`).
pub fn prefecture_of_code(code: &str) -> Option<&'static Prefecture> {
    let two = code.get(..2)?;
    PREFECTURES.iter().find(|p| p.code == two)
}

/// Splits a leading prefecture name from an address.
pub fn strip_prefecture(address: &str) -> Option<(&'static Prefecture, &str)> {
    PREFECTURES
        .iter()
        .find_map(|p| address.strip_prefix(p.name).map(|rest| (p, rest)))
}

/// One municipality of the medical-area table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MedicalArea {
    /// Municipality code (JIS X 0402 with its check digit, 6 digits).
    pub code6: &'static str,
    /// Municipality name (`青森市`, `平内町`).
    pub municipality: &'static str,
    /// The secondary medical area (二次医療圏).
    pub area: &'static str,
}

const MEDICAL_AREAS: &str = include_str!("../data/medical_areas.tsv");

/// The shipped medical-area table, in file order (rows that are not three fields are skipped; the
/// crate's tests check that there are none).
pub fn medical_areas() -> impl Iterator<Item = MedicalArea> {
    crate::data_lines(MEDICAL_AREAS).filter_map(|line| {
        let [code6, municipality, area] = crate::three_fields(line)?;
        Some(MedicalArea {
            code6,
            municipality,
            area,
        })
    })
}

/// The secondary medical area of a municipality code (6 digits, or the 5 without the check digit).
pub fn medical_area_of_code(code: &str) -> Option<&'static str> {
    static BY_CODE: std::sync::OnceLock<std::collections::HashMap<&'static str, &'static str>> =
        std::sync::OnceLock::new();
    let five = code.get(..5)?;
    BY_CODE
        .get_or_init(|| {
            let mut map = std::collections::HashMap::new();
            for m in medical_areas() {
                if let Some(k) = m.code6.get(..5) {
                    map.entry(k).or_insert(m.area);
                }
            }
            map
        })
        .get(five)
        .copied()
}

/// The secondary medical area of a municipality by prefecture and name.
pub fn medical_area(prefecture: &str, municipality: &str) -> Option<&'static str> {
    let pref = self::prefecture(prefecture)?;
    medical_areas()
        .find(|m| m.municipality == municipality && m.code6.starts_with(pref.code))
        .map(|m| m.area)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefectures_are_numbered_in_order_and_regions_cover_them() {
        for (i, p) in PREFECTURES.iter().enumerate() {
            assert_eq!(p.code, format!("{:02}", i + 1));
            assert!(REGIONS.contains(&p.region));
            assert_eq!(prefecture(p.name), Some(p));
            assert_eq!(prefecture_of_code(&format!("{}2012", p.code)), Some(p));
        }
        assert_eq!(prefecture_of_code("4"), None);
        assert_eq!(prefecture_of_code("48"), None);
    }

    #[test]
    fn address_prefixes() {
        let (p, rest) = strip_prefecture("神奈川県横浜市").unwrap_or((&PREFECTURES[0], ""));
        assert_eq!((p.code, rest), ("14", "横浜市"));
        assert_eq!(strip_prefecture("京都市").map(|(p, _)| p.code), None);
        assert_eq!(
            strip_prefecture("京都府京都市").map(|(p, _)| p.code),
            Some("26")
        );
    }

    #[test]
    fn the_shipped_medical_area_table_is_whole() {
        let lines = MEDICAL_AREAS
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        let rows: Vec<MedicalArea> = medical_areas().collect();
        assert_eq!(rows.len(), lines - 1, "every row has three fields");
        assert_eq!(rows.len(), 40);
        let mut areas: Vec<&str> = rows.iter().map(|m| m.area).collect();
        areas.sort();
        areas.dedup();
        assert_eq!(areas.len(), 6);
        assert_eq!(medical_area("青森県", "弘前市"), Some("津軽地域"));
        assert_eq!(medical_area_of_code("02203"), Some("八戸地域"));
        assert_eq!(medical_area("岩手県", "弘前市"), None);
    }
}
