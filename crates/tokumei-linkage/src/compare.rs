//! Comparison levels and string similarity.

use crate::prepare::{FxMap, Prepared, Side, NULL};
use crate::settings::{ComparisonSpec, Transform};

/// What a level tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Null,
    Exact,
    JaroWinkler(f64),
    Levenshtein(usize),
    Swapped,
    DateTransposed,
    DateTypo,
    DateWithin(i64),
    Numeric(f64),
    Else,
}

/// A compiled level.
#[derive(Debug, Clone)]
pub(crate) struct Level {
    pub kind: Kind,
    pub feats: Vec<usize>,
    pub differ: Vec<usize>,
    pub label: String,
    pub fixed_m: Option<f64>,
    pub fixed_u: Option<f64>,
}

/// Term frequencies of the exact level's values.
pub(crate) struct Tf {
    pub level: usize,
    pub feat: usize,
    pub freq: FxMap<u32, f64>,
    pub min_u: f64,
}

/// A compiled comparison.
pub(crate) struct Comparison {
    pub name: String,
    pub levels: Vec<Level>,
    pub tf: Option<Tf>,
    /// Smallest Jaro-Winkler threshold of the levels (for the quick upper-bound test).
    pub jw_min: f64,
    /// Largest Levenshtein bound of the levels (the distance is computed once per pair).
    pub lev_max: usize,
}

fn default_label(kind: Kind) -> String {
    match kind {
        Kind::Null => "null".into(),
        Kind::Exact => "exact".into(),
        Kind::JaroWinkler(t) => format!("jw>={t}"),
        Kind::Levenshtein(d) => format!("lev<={d}"),
        Kind::Swapped => "swapped".into(),
        Kind::DateTransposed => "day_month_swapped".into(),
        Kind::DateTypo => "one_digit".into(),
        Kind::DateWithin(d) => format!("within_{d}_days"),
        Kind::Numeric(t) => format!("within_{t}"),
        Kind::Else => "else".into(),
    }
}

/// Compiles the levels of one comparison, `feature` giving the index of a column's plain value.
fn compile_levels(spec: &ComparisonSpec, feature: &impl Fn(&str) -> usize) -> Vec<Level> {
    let mut levels = Vec::new();
    for l in &spec.levels {
        let cols = l.columns.as_ref().unwrap_or(&spec.columns);
        let feats = cols.iter().map(|c| feature(c)).collect();
        let kind = match l.kind.as_str() {
            "null" => Kind::Null,
            "exact" => Kind::Exact,
            "jaro_winkler" => Kind::JaroWinkler(l.threshold.unwrap_or(1.0)),
            "levenshtein" => Kind::Levenshtein(l.max.unwrap_or(0.0).max(0.0) as usize),
            "swapped" => Kind::Swapped,
            "date_transposed" => Kind::DateTransposed,
            "date_typo" => Kind::DateTypo,
            "date_within_days" => Kind::DateWithin(l.max.unwrap_or(0.0) as i64),
            "numeric" => Kind::Numeric(l.max.unwrap_or(0.0)),
            _ => Kind::Else,
        };
        let differ = l.differ.iter().flatten().map(|c| feature(c)).collect();
        levels.push(Level {
            kind,
            feats,
            differ,
            label: l.label.clone().unwrap_or_else(|| default_label(kind)),
            fixed_m: l.m,
            fixed_u: l.u,
        });
    }
    if levels.last().map(|l| l.kind) != Some(Kind::Else) {
        levels.push(Level {
            kind: Kind::Else,
            feats: Vec::new(),
            differ: Vec::new(),
            label: "else".into(),
            fixed_m: None,
            fixed_u: None,
        });
    }
    levels
}

/// A comparison from its levels, without term frequencies.
fn comparison(spec: &ComparisonSpec, levels: Vec<Level>) -> Comparison {
    let jw_min = levels
        .iter()
        .filter_map(|l| match l.kind {
            Kind::JaroWinkler(t) => Some(t),
            _ => None,
        })
        .fold(1.0f64, f64::min);
    let lev_max = levels
        .iter()
        .filter_map(|l| match l.kind {
            Kind::Levenshtein(d) => Some(d),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    Comparison {
        name: spec.name.clone(),
        levels,
        tf: None,
        jw_min,
        lev_max,
    }
}

/// Term frequencies of the exact level's values, counted over records (not profiles) of every side.
fn term_frequencies(spec: &ComparisonSpec, levels: &[Level], prep: &Prepared) -> Option<Tf> {
    if !spec.tf_adjust {
        return None;
    }
    let level = levels.iter().position(|l| l.kind == Kind::Exact)?;
    let feat = levels[level].feats[0];
    let mut counts: FxMap<u32, f64> = FxMap::default();
    let mut total: f64 = 0.0;
    for side in &prep.sides {
        for row_node in &side.node_of_row {
            let id = side.get(feat, *row_node as usize);
            if id != NULL {
                *counts.entry(id).or_insert(0.0) += 1.0;
                total += 1.0;
            }
        }
    }
    for v in counts.values_mut() {
        *v /= total.max(1.0);
    }
    Some(Tf {
        level,
        feat,
        freq: counts,
        min_u: spec.tf_minimum_u.unwrap_or(1e-9),
    })
}

/// Compiles the comparisons (settings were validated) and computes term frequencies.
pub(crate) fn compile(specs: &[ComparisonSpec], prep: &Prepared) -> Vec<Comparison> {
    let feature = |c: &str| prep.feature(c, Transform::Value);
    specs
        .iter()
        .map(|spec| {
            let levels = compile_levels(spec, &feature);
            let tf = term_frequencies(spec, &levels, prep);
            Comparison {
                tf,
                ..comparison(spec, levels)
            }
        })
        .collect()
}

/// Compiles the comparisons over values given column by column in `columns`' order (no term
/// frequencies: they only enter the weights).
pub(crate) fn compile_values(specs: &[ComparisonSpec], columns: &[String]) -> Vec<Comparison> {
    let feature = |c: &str| columns.iter().position(|x| x == c).unwrap_or(usize::MAX);
    specs
        .iter()
        .map(|spec| comparison(spec, compile_levels(spec, &feature)))
        .collect()
}

/// Similarities computed once per pair and comparison.
#[derive(Default)]
struct Cache<'l> {
    jw: Option<(&'l [usize], f64)>,
    lev: Option<(&'l [usize], usize)>,
}

/// The two records of a pair, feature by feature: interned ids ([`IdPair`]) or the values themselves
/// ([`ValuePair`]). Both give the same levels: ids are equal exactly when values are.
pub(crate) trait PairValues {
    /// The left record's value of feature `f`.
    fn left(&self, f: usize) -> Option<&str>;
    /// The right record's value of feature `f`.
    fn right(&self, f: usize) -> Option<&str>;
    /// Whether the left value of `lf` and the right value of `rf` are both present and equal.
    fn same(&self, lf: usize, rf: usize) -> bool;
    /// Whether the left record has feature `f`.
    fn left_present(&self, f: usize) -> bool {
        self.left(f).is_some()
    }
    /// Whether the right record has feature `f`.
    fn right_present(&self, f: usize) -> bool {
        self.right(f).is_some()
    }
}

/// The two records of a pair and where their values live.
pub(crate) struct PairCtx<'a> {
    pub prep: &'a Prepared,
    pub left: &'a Side,
    pub right: &'a Side,
}

/// A pair of nodes of a [`PairCtx`].
struct IdPair<'c, 'a> {
    ctx: &'c PairCtx<'a>,
    a: u32,
    b: u32,
}

impl PairValues for IdPair<'_, '_> {
    #[inline]
    fn left(&self, f: usize) -> Option<&str> {
        let id = self.ctx.left.get(f, self.a as usize);
        (id != NULL).then(|| self.ctx.prep.dict.get(id))
    }
    #[inline]
    fn right(&self, f: usize) -> Option<&str> {
        let id = self.ctx.right.get(f, self.b as usize);
        (id != NULL).then(|| self.ctx.prep.dict.get(id))
    }
    #[inline]
    fn same(&self, lf: usize, rf: usize) -> bool {
        let l = self.ctx.left.get(lf, self.a as usize);
        l != NULL && l == self.ctx.right.get(rf, self.b as usize)
    }
    #[inline]
    fn left_present(&self, f: usize) -> bool {
        self.ctx.left.get(f, self.a as usize) != NULL
    }
    #[inline]
    fn right_present(&self, f: usize) -> bool {
        self.ctx.right.get(f, self.b as usize) != NULL
    }
}

/// A pair given by its values, feature by feature.
pub(crate) struct ValuePair<'v> {
    pub left: &'v [Option<&'v str>],
    pub right: &'v [Option<&'v str>],
}

impl PairValues for ValuePair<'_> {
    #[inline]
    fn left(&self, f: usize) -> Option<&str> {
        self.left.get(f).copied().flatten()
    }
    #[inline]
    fn right(&self, f: usize) -> Option<&str> {
        self.right.get(f).copied().flatten()
    }
    #[inline]
    fn same(&self, lf: usize, rf: usize) -> bool {
        matches!((self.left(lf), self.right(rf)), (Some(x), Some(y)) if x == y)
    }
}

/// A pair given by sealed values (deterministic sealing, so equal values have equal bytes): equality is
/// tested on the sealed bytes, and a value is opened only when a similarity level needs its text.
pub(crate) struct SealedPair<'v> {
    pub left: &'v [Option<&'v [u8]>],
    pub right: &'v [Option<&'v [u8]>],
    pub open: &'v dyn Fn(&[u8]) -> Option<String>,
    pub opened_left: Vec<std::cell::OnceCell<Option<String>>>,
    pub opened_right: Vec<std::cell::OnceCell<Option<String>>>,
}

impl SealedPair<'_> {
    fn opened<'s>(
        &'s self,
        sealed: &[Option<&[u8]>],
        cells: &'s [std::cell::OnceCell<Option<String>>],
        f: usize,
    ) -> Option<&'s str> {
        let bytes = sealed.get(f).copied().flatten()?;
        cells.get(f)?.get_or_init(|| (self.open)(bytes)).as_deref()
    }
}

impl PairValues for SealedPair<'_> {
    fn left(&self, f: usize) -> Option<&str> {
        self.opened(self.left, &self.opened_left, f)
    }
    fn right(&self, f: usize) -> Option<&str> {
        self.opened(self.right, &self.opened_right, f)
    }
    #[inline]
    fn same(&self, lf: usize, rf: usize) -> bool {
        matches!(
            (self.left.get(lf).copied().flatten(), self.right.get(rf).copied().flatten()),
            (Some(x), Some(y)) if x == y
        )
    }
    #[inline]
    fn left_present(&self, f: usize) -> bool {
        self.left.get(f).copied().flatten().is_some()
    }
    #[inline]
    fn right_present(&self, f: usize) -> bool {
        self.right.get(f).copied().flatten().is_some()
    }
}

/// The non-missing values of `feats` joined by a space (none when all are missing).
fn text<'s>(feats: &[usize], value: impl Fn(usize) -> Option<&'s str>) -> Option<String> {
    let mut out = String::new();
    for v in feats.iter().filter_map(|f| value(*f)) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(v);
    }
    (!out.is_empty()).then_some(out)
}

/// Whether a similarity level holds for the two strings.
fn similar<'l>(
    comp: &Comparison,
    level: &'l Level,
    sa: &str,
    sb: &str,
    cache: &mut Cache<'l>,
) -> bool {
    let f = &level.feats;
    match level.kind {
        Kind::JaroWinkler(t) => {
            let v = match cache.jw {
                Some((feats, v)) if feats == f.as_slice() => v,
                _ => {
                    let ub = jaro_winkler_upper_bound(sa, sb);
                    let v = if ub < comp.jw_min {
                        ub
                    } else {
                        jaro_winkler(sa, sb)
                    };
                    cache.jw = Some((f.as_slice(), v));
                    v
                }
            };
            v >= t
        }
        Kind::Levenshtein(d) => {
            let dist = match cache.lev {
                Some((feats, v)) if feats == f.as_slice() => v,
                _ => {
                    let v = levenshtein_bounded(sa, sb, comp.lev_max);
                    cache.lev = Some((f.as_slice(), v));
                    v
                }
            };
            dist <= d
        }
        Kind::DateTransposed => day_month_swapped(sa, sb),
        Kind::DateTypo => one_digit_apart(sa, sb),
        Kind::DateWithin(d) => match (day_number(sa), day_number(sb)) {
            (Some(x), Some(y)) => (x - y).abs() <= d,
            _ => false,
        },
        Kind::Numeric(t) => match (sa.trim().parse::<f64>(), sb.trim().parse::<f64>()) {
            (Ok(x), Ok(y)) => (x - y).abs() <= t,
            _ => false,
        },
        _ => false,
    }
}

/// Whether `level` holds for the pair.
fn holds<'l>(
    comp: &Comparison,
    level: &'l Level,
    pair: &impl PairValues,
    cache: &mut Cache<'l>,
) -> bool {
    let f = &level.feats;
    match level.kind {
        Kind::Else => true,
        Kind::Null => f
            .iter()
            .all(|x| !pair.left_present(*x) || !pair.right_present(*x)),
        Kind::Exact => f.iter().all(|x| pair.same(*x, *x)),
        Kind::Swapped => pair.same(f[0], f[1]) && pair.same(f[1], f[0]),
        _ => {
            if f.len() == 1 {
                if pair.same(f[0], f[0]) {
                    return !matches!(level.kind, Kind::DateTransposed | Kind::DateTypo);
                }
                let (Some(sa), Some(sb)) = (pair.left(f[0]), pair.right(f[0])) else {
                    return false;
                };
                similar(comp, level, sa, sb, cache)
            } else {
                let sa = text(f, |x| pair.left(x));
                let sb = text(f, |x| pair.right(x));
                match (sa, sb) {
                    (Some(x), Some(y)) => similar(comp, level, &x, &y, cache),
                    _ => false,
                }
            }
        }
    }
}

/// The level index of every comparison for the pair.
pub(crate) fn levels_of(comps: &[Comparison], pair: &impl PairValues, out: &mut [u8]) {
    for (c, o) in comps.iter().zip(out.iter_mut()) {
        let mut g = c.levels.len() - 1;
        let mut cache = Cache::default();
        for (i, l) in c.levels.iter().enumerate() {
            if holds(c, l, pair, &mut cache)
                && l.differ
                    .iter()
                    .all(|f| pair.left_present(*f) && pair.right_present(*f) && !pair.same(*f, *f))
            {
                g = i;
                break;
            }
        }
        *o = g as u8;
    }
}

impl PairCtx<'_> {
    /// The level index of every comparison for the pair (a on the left, b on the right).
    pub fn levels(&self, comps: &[Comparison], a: u32, b: u32, out: &mut [u8]) {
        levels_of(comps, &IdPair { ctx: self, a, b }, out);
    }

    /// Term frequency of the left value of a comparison's tf feature.
    pub fn tf(&self, tf: &Tf, a: u32) -> Option<f64> {
        let id = self.left.get(tf.feat, a as usize);
        tf.freq.get(&id).copied()
    }
}

/// Both 8-digit `YYYYMMDD` with the same year and day and month exchanged.
fn day_month_swapped(a: &str, b: &str) -> bool {
    a.len() == 8
        && b.len() == 8
        && a != b
        && a[..4] == b[..4]
        && a[4..6] == b[6..8]
        && a[6..8] == b[4..6]
}

/// Same length, differing in one character or by one exchange of neighbours.
fn one_digit_apart(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() || a == b {
        return false;
    }
    let diff: Vec<usize> = (0..a.len()).filter(|i| a[*i] != b[*i]).collect();
    match diff.len() {
        1 => true,
        2 => diff[1] == diff[0] + 1 && a[diff[0]] == b[diff[1]] && a[diff[1]] == b[diff[0]],
        _ => false,
    }
}

/// Days since 0000-03-01 of a `YYYYMMDD` string.
fn day_number(s: &str) -> Option<i64> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = s[..4].parse().ok()?;
    let m: i64 = s[4..6].parse().ok()?;
    let d: i64 = s[6..8].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    Some(365 * y + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5 + d - 1)
}

fn jaro<T: PartialEq>(a: &[T], b: &[T]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut a_m = [false; 64];
    let mut b_m = [false; 64];
    if a.len() > 64 || b.len() > 64 {
        return if a == b { 1.0 } else { 0.0 };
    }
    let mut matches = 0usize;
    for i in 0..a.len() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        for j in lo..hi {
            if !b_m[j] && a[i] == b[j] {
                a_m[i] = true;
                b_m[j] = true;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut t = 0usize;
    let mut k = 0usize;
    for i in 0..a.len() {
        if a_m[i] {
            while !b_m[k] {
                k += 1;
            }
            if a[i] != b[k] {
                t += 1;
            }
            k += 1;
        }
    }
    let m = matches as f64;
    (m / a.len() as f64 + m / b.len() as f64 + (m - (t / 2) as f64) / m) / 3.0
}

fn jw_slices<T: PartialEq>(a: &[T], b: &[T]) -> f64 {
    let j = jaro(a, b);
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count();
    j + prefix as f64 * 0.1 * (1.0 - j)
}

/// Jaro-Winkler similarity (prefix scale 0.1, prefix up to 4), by character.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    if a.is_ascii() && b.is_ascii() {
        jw_slices(a.as_bytes(), b.as_bytes())
    } else {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        jw_slices(&a, &b)
    }
}

/// Levenshtein distance, or `max + 1` when it exceeds `max`.
fn lev_slices<T: PartialEq>(a: &[T], b: &[T], max: usize) -> usize {
    if a.len().abs_diff(b.len()) > max {
        return max + 1;
    }
    if b.len() >= 64 {
        return if a == b { 0 } else { max + 1 };
    }
    let mut prev = [0usize; 65];
    let mut cur = [0usize; 65];
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j;
    }
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            row_min = row_min.min(cur[j]);
        }
        if row_min > max {
            return max + 1;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()].min(max + 1)
}

/// Levenshtein distance by character, or `max + 1` when it exceeds `max`.
pub fn levenshtein_bounded(a: &str, b: &str, max: usize) -> usize {
    if a.is_ascii() && b.is_ascii() {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len().abs_diff(b.len()) > max {
            return max + 1;
        }
        if !a.is_empty() && a.len() <= 64 {
            return myers(a, b).min(max + 1);
        }
        lev_slices(a, b, max)
    } else {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        lev_slices(&a, &b, max)
    }
}

/// Levenshtein distance by Myers' bit-vector algorithm (`a` non-empty, at most 64 bytes).
fn myers(a: &[u8], b: &[u8]) -> usize {
    let m = a.len();
    let mut peq = [0u64; 128];
    for (i, c) in a.iter().enumerate() {
        peq[(*c & 0x7F) as usize] |= 1u64 << i;
    }
    let mask = if m == 64 { u64::MAX } else { (1u64 << m) - 1 };
    let top = 1u64 << (m - 1);
    let (mut pv, mut mv, mut score) = (mask, 0u64, m);
    for c in b {
        let eq = peq[(*c & 0x7F) as usize];
        let xv = eq | mv;
        let xh = (((eq & pv).wrapping_add(pv)) ^ pv) | eq;
        let mut ph = mv | !(xh | pv);
        let mut mh = pv & xh;
        if ph & top != 0 {
            score += 1;
        } else if mh & top != 0 {
            score -= 1;
        }
        ph = (ph << 1) | 1;
        mh <<= 1;
        pv = (mh | !(xv | ph)) & mask;
        mv = ph & xv & mask;
    }
    score
}

/// Whether the Levenshtein distance (by character) is at most `max`.
pub fn levenshtein_within(a: &str, b: &str, max: usize) -> bool {
    levenshtein_bounded(a, b, max) <= max
}

/// An upper bound of the Jaro-Winkler similarity from the characters the values share (ASCII only; 1
/// otherwise), cheap enough to skip most comparisons of unrelated values.
fn jaro_winkler_upper_bound(a: &str, b: &str) -> f64 {
    if !a.is_ascii() || !b.is_ascii() || a.is_empty() || b.is_empty() {
        return 1.0;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut counts = [0u16; 128];
    for c in a {
        counts[*c as usize] += 1;
    }
    let mut common = 0usize;
    for c in b {
        let k = &mut counts[*c as usize];
        if *k > 0 {
            *k -= 1;
            common += 1;
        }
    }
    if common == 0 {
        return 0.0;
    }
    let m = common as f64;
    let jaro = (m / a.len() as f64 + m / b.len() as f64 + 1.0) / 3.0;
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count();
    jaro + prefix as f64 * 0.1 * (1.0 - jaro)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity() {
        assert!((jaro_winkler("martha", "marhta") - 0.9611).abs() < 1e-3);
        assert!((jaro_winkler("dixon", "dicksonx") - 0.8133).abs() < 1e-3);
        assert_eq!(jaro_winkler("abc", "abc"), 1.0);
        assert!(jaro_winkler("サトウ", "サイトウ") > 0.85);
        assert!(levenshtein_within("kitten", "sitting", 3));
        assert!(!levenshtein_within("kitten", "sitting", 2));
        assert!(levenshtein_within("髙橋", "高橋", 1));
    }

    #[test]
    fn myers_agrees_with_dynamic_programming() {
        let words = [
            "",
            "a",
            "ab",
            "ba",
            "abc",
            "kitten",
            "sitting",
            "19800305",
            "19803005",
            "1683994",
            "6683994",
            "smith",
            "smyth",
            "jonathan",
            "johnathan",
            "x",
            "aaaa",
            "aaab",
        ];
        for a in words {
            for b in words {
                let dp = lev_slices(a.as_bytes(), b.as_bytes(), 100);
                assert_eq!(levenshtein_bounded(a, b, 100), dp, "{a} {b}");
            }
        }
    }

    #[test]
    fn dates() {
        assert!(day_month_swapped("19800305", "19800503"));
        assert!(!day_month_swapped("19800305", "19800305"));
        assert!(one_digit_apart("19800305", "19800306"));
        assert!(one_digit_apart("19800305", "19803005"));
        assert!(!one_digit_apart("19800305", "19810306"));
        assert_eq!(
            day_number("20000301").unwrap() - day_number("20000228").unwrap(),
            2
        );
    }
}
