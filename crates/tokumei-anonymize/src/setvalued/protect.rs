//! The codes a study counts most ([`KmConfig::protect`]): which they are, and how far the
//! suppression moves their prevalence.

use std::collections::HashMap;

use super::{KmConfig, KmCut, KmNode, Row, SetValued};

/// Per event kind, the level the protected codes are counted at and, per protected code label
/// at that level, the persons holding it before protection.
pub(super) struct Protection {
    level: Vec<usize>,
    top: Vec<HashMap<u32, usize>>,
}

impl Protection {
    /// The `cfg.protect` code labels per kind held by the most persons (ties by label id: the order
    /// the data introduced them; a missing code and `*` are none); none when `cfg.protect` is 0.
    pub(super) fn new(data: &SetValued, cfg: &KmConfig) -> Protection {
        let level: Vec<usize> = data
            .kinds
            .iter()
            .map(|k| cfg.protect_level.min(k.code.height()))
            .collect();
        let mut top = vec![HashMap::new(); data.kinds.len()];
        if cfg.protect == 0 {
            return Protection { level, top };
        }
        let held = holders(data.rows.iter().map(|r| (r, label(data, &level, r))));
        for (kind, counts) in held.into_iter().enumerate() {
            let text = &data.kinds[kind].code.labels[level[kind]];
            let mut v: Vec<(u32, usize)> = counts
                .into_iter()
                .filter(|&(l, _)| text.get(l as usize).is_some_and(|t| is_code(t)))
                .collect();
            v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(cfg.protect);
            top[kind] = v.into_iter().collect();
        }
        Protection { level, top }
    }

    /// Whether an event row stands for a protected code.
    pub(super) fn holds(&self, data: &SetValued, r: &Row) -> bool {
        let kind = usize::from(r.kind);
        !self.top[kind].is_empty() && self.top[kind].contains_key(&label(data, &self.level, r))
    }

    /// The largest relative error of a protected code's prevalence: persons still holding it at
    /// its level (a row released with its code no coarser) over persons released, against
    /// persons holding it over all persons; `None` without protected codes.
    pub(super) fn error(
        &self,
        data: &SetValued,
        node: &KmNode,
        cut: &KmCut,
        suppressed: &[bool],
        released: &[bool],
    ) -> Option<f64> {
        if self.top.iter().all(HashMap::is_empty) {
            return None;
        }
        let kept = data.rows.iter().zip(released).filter(|(r, &ok)| {
            ok && !suppressed[r.person as usize]
                && self.holds(data, r)
                && data.levels_of(r, node, cut).0 <= self.level[usize::from(r.kind)]
        });
        let after = holders(kept.map(|(r, _)| (r, label(data, &self.level, r))));
        let persons = data.persons.max(1) as f64;
        let left = suppressed.iter().filter(|&&s| !s).count().max(1) as f64;
        let mut worst: f64 = 0.0;
        for (kind, top) in self.top.iter().enumerate() {
            for (l, &before) in top {
                let b = before as f64 / persons;
                let a = after.get(kind).and_then(|m| m.get(l)).copied().unwrap_or(0) as f64 / left;
                worst = worst.max((a - b).abs() / b);
            }
        }
        Some(worst)
    }
}

/// Whether a label names a code: a missing code (empty) and `*` are none.
fn is_code(label: &str) -> bool {
    !label.is_empty() && label != "*"
}

/// A row's code label at its kind's protection level.
fn label(data: &SetValued, level: &[usize], r: &Row) -> u32 {
    let kind = usize::from(r.kind);
    data.kinds[kind].code.map[level[kind]][r.code as usize]
}

/// Per kind, the distinct persons per code label among the rows given.
fn holders<'a>(rows: impl Iterator<Item = (&'a Row, u32)>) -> Vec<HashMap<u32, usize>> {
    let mut held: Vec<(u16, u32, u32)> = rows.map(|(r, l)| (r.kind, l, r.person)).collect();
    held.sort_unstable();
    held.dedup();
    let kinds = held.last().map_or(0, |h| usize::from(h.0) + 1);
    let mut out = vec![HashMap::new(); kinds];
    for (kind, l, _) in held {
        *out[usize::from(kind)].entry(l).or_default() += 1;
    }
    out
}
