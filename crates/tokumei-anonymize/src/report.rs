//! The report of an anonymization as an HTML page (Japanese and English) and the output folder of a
//! run (table, `report.json`, `report.html`), written whole or not at all.

use std::path::{Path, PathBuf};

use tokumei_report::{bars, facts, html, page, table, Markup};

use crate::{AnonError, Format, Outcome, Report, Result, RiskSummary};

/// Class sizes in buckets: (smallest, largest, label).
const BUCKETS: [(u64, u64, &str); 8] = [
    (1, 1, "1"),
    (2, 4, "2–4"),
    (5, 9, "5–9"),
    (10, 19, "10–19"),
    (20, 49, "20–49"),
    (50, 99, "50–99"),
    (100, 999, "100–999"),
    (1000, u64::MAX, "1000+"),
];

fn summary(r: &Report) -> Markup {
    let rows: [(&str, String); 7] = [
        ("行数 / Rows", r.rows.to_string()),
        (
            "削除した記録 / Suppressed records",
            format!(
                "{} (上限 / limit {:.1} %)",
                r.suppressed_records,
                r.suppression_limit * 100.0
            ),
        ),
        (
            "等価クラス / Classes",
            format!(
                "{} (最小 / smallest {}, 最大 / largest {})",
                r.classes, r.min_class_size, r.max_class_size
            ),
        ),
        (
            "情報損失 / Information loss",
            format!("{:.6} ({})", r.information_loss, r.metric),
        ),
        ("プライバシーモデル / Privacy models", r.models.join(" + ")),
        (
            "削除した列 / Removed identifiers",
            r.removed_columns.join(", "),
        ),
        (
            "要件を満たす / Valid",
            if r.valid {
                "はい / yes"
            } else {
                "いいえ / no"
            }
            .to_string(),
        ),
    ];
    facts(&rows)
}

fn levels(r: &Report) -> Markup {
    let rows: Vec<Vec<String>> = r
        .quasi_identifiers
        .iter()
        .zip(&r.transformation_vector)
        .zip(&r.heights)
        .map(|((q, l), h)| vec![q.clone(), l.to_string(), h.to_string()])
        .collect();
    table(
        &[
            "準識別子 / Quasi-identifier",
            "レベル / Level",
            "高さ / Height",
        ],
        &rows,
    )
}

fn class_sizes(r: &Report) -> Markup {
    let items: Vec<(String, f64)> = BUCKETS
        .iter()
        .map(|(lo, hi, label)| {
            let n: u64 = r
                .risk_after
                .class_sizes
                .iter()
                .filter(|(s, _)| s >= lo && s <= hi)
                .map(|(_, c)| *c)
                .sum();
            (label.to_string(), n as f64)
        })
        .collect();
    let max = items.iter().map(|x| x.1).fold(0.0, f64::max);
    bars(
        "クラス数 / Number of classes by size (after)",
        &items,
        max,
        &|v| format!("{v:.0}"),
    )
}

fn risk_bars(title: &str, x: &RiskSummary) -> Markup {
    let items = [
        (
            "最大再識別リスク / Highest risk".to_string(),
            x.prosecutor_max,
        ),
        (
            "平均再識別リスク / Average risk".to_string(),
            x.prosecutor_avg,
        ),
        ("一意な記録 / Sample uniques".to_string(), x.sample_uniques),
        (format!("閾値超 / Above {}", x.threshold), x.records_at_risk),
    ];
    bars(title, &items, 1.0, &|v| format!("{v:.4}"))
}

fn utility(r: &Report) -> Markup {
    let m = &r.metrics;
    let rows: [(&str, String); 5] = [
        ("Loss (ARX, gs 0.5)", format!("{:.10}", m.loss)),
        (
            "非一様エントロピー / Non-uniform entropy",
            format!(
                "{:.4} (non-monotonic {:.4})",
                m.entropy, m.entropy_non_monotonic
            ),
        ),
        (
            "Discernibility (DM / DM*)",
            format!("{:.0} / {:.0}", m.discernibility, m.discernibility_star),
        ),
        ("平均クラスサイズ / AECS", format!("{:.4}", m.aecs)),
        ("Precision", format!("{:.6}", m.precision)),
    ];
    facts(&rows)
}

/// The report as a self-contained HTML page.
pub fn html(r: &Report) -> String {
    let body = html! {
        (summary(r))
        h2 { "一般化レベル / Generalization levels" }
        (levels(r))
        h2 { "等価クラスの大きさの分布 / Class size distribution" }
        (class_sizes(r))
        h2 { "再識別リスク / Re-identification risk (prosecutor)" }
        (risk_bars("加工前 / Before", &r.risk_before))
        (risk_bars("加工後 / After", &r.risk_after))
        h2 { "有用性指標 / Utility metrics" }
        (utility(r))
        @if let Some(s) = &r.search {
            p {
                "探索 / Search: " (s.evaluated) " / " (s.lattice_nodes) " transformations evaluated, "
                (format!("{:.1}", s.millis)) " ms, "
                (if s.optimal { "最適 / optimal" } else { "ヒューリスティック / heuristic" })
            }
        }
    };
    page("匿名加工レポート / Anonymization report", body)
}

impl Outcome {
    /// Writes the output folder `out` whole or not at all: the table under `name` in `format`,
    /// `report.json` and `report.html`. An existing non-empty `out` is replaced only with
    /// `replace`. Returns the table's path.
    pub fn write_dir(
        &self,
        out: &Path,
        name: &str,
        format: Format,
        replace: bool,
    ) -> Result<PathBuf> {
        let fs_err = |e: tokumei_fs::IoError| AnonError::io(e.path.display().to_string(), e.source);
        let staged = tokumei_fs::StagedDir::new(out, replace).map_err(fs_err)?;
        self.output.write(&staged.path().join(name), format)?;
        let json = serde_json::to_vec_pretty(&self.report)
            .map_err(|e| AnonError::io("report.json", std::io::Error::other(e)))?;
        let files = [
            ("report.json", json),
            ("report.html", html(&self.report).into_bytes()),
        ];
        for (file, bytes) in files {
            let p = staged.path().join(file);
            std::fs::write(&p, bytes).map_err(|e| AnonError::io(p.display().to_string(), e))?;
        }
        staged.commit().map_err(fs_err)?;
        Ok(out.join(name))
    }
}
