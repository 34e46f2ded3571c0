//! Self-contained HTML report with inline SVG charts (Japanese and English labels).

use std::fmt::Write as _;

use crate::eval::{ClusterMetrics, PairEvaluation};
use crate::LinkOutput;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn weight_of(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    (p / (1.0 - p)).log2()
}

fn histogram_svg(out: &LinkOutput) -> String {
    let h = &out.histogram;
    let (w, ht, pad) = (760.0, 260.0, 40.0);
    let max = h.counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let lmax = (max + 1.0).log10();
    let n = h.counts.len() as f64;
    let bw = (w - 2.0 * pad) / n;
    let x_of = |weight: f64| pad + ((weight - h.start) / h.width).clamp(0.0, n) * bw;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{ht}" role="img" aria-label="score histogram">"#
    );
    let t = &out.thresholds;
    let (lo, hi) = (
        x_of(weight_of(t.review_lower)),
        x_of(weight_of(t.review_upper)),
    );
    let _ = write!(
        s,
        r##"<rect x="{lo:.1}" y="{pad}" width="{:.1}" height="{:.1}" fill="#fff3c4"/>"##,
        (hi - lo).max(1.0),
        ht - 2.0 * pad
    );
    for (i, c) in h.counts.iter().enumerate() {
        if *c == 0 {
            continue;
        }
        let bh = ((*c as f64 + 1.0).log10() / lmax) * (ht - 2.0 * pad);
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#4a78b5"><title>{:.0}..{:.0}: {c}</title></rect>"##,
            pad + i as f64 * bw,
            ht - pad - bh,
            (bw - 1.0).max(0.5),
            h.start + i as f64 * h.width,
            h.start + (i + 1) as f64 * h.width
        );
    }
    let mx = x_of(weight_of(t.match_probability));
    let _ = write!(
        s,
        r##"<line x1="{mx:.1}" x2="{mx:.1}" y1="{pad}" y2="{:.1}" stroke="#c0392b" stroke-width="2"/>"##,
        ht - pad
    );
    let _ = write!(
        s,
        r##"<line x1="{pad}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#333"/>"##,
        w - pad,
        ht - pad,
        ht - pad
    );
    let mut tick = h.start;
    while tick <= h.start + n * h.width {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{tick:.0}</text>"##,
            x_of(tick),
            ht - pad + 14.0
        );
        tick += 10.0;
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">一致重み / match weight (log2 odds); 件数は対数目盛 / counts on a log scale; 黄色 = 目視確認帯 / yellow = review band; 赤 = 閾値 / red = threshold</text></svg>"##,
        w / 2.0,
        ht - 6.0
    );
    s
}

fn weights_svg(out: &LinkOutput) -> String {
    let rows: Vec<(String, f64)> = out
        .model
        .comparisons
        .iter()
        .flat_map(|(name, levels)| {
            levels
                .iter()
                .filter(|l| !l.neutral)
                .map(move |l| (format!("{name}: {}", l.label), l.weight))
        })
        .collect();
    let row_h = 18.0;
    let (w, label_w) = (760.0, 260.0);
    let ht = rows.len() as f64 * row_h + 40.0;
    let max = rows.iter().map(|r| r.1.abs()).fold(1.0f64, f64::max);
    let half = (w - label_w - 20.0) / 2.0;
    let zero = label_w + half;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{ht}" role="img" aria-label="match weights">"#
    );
    for (i, (label, wt)) in rows.iter().enumerate() {
        let y = 10.0 + i as f64 * row_h;
        let len = wt.abs() / max * half;
        let x = if *wt >= 0.0 { zero } else { zero - len };
        let color = if *wt >= 0.0 { "#2e8b57" } else { "#c0392b" };
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text><rect x="{x:.1}" y="{y:.1}" width="{len:.1}" height="{:.1}" fill="{color}"><title>{wt:.2}</title></rect>"##,
            label_w - 6.0,
            y + 12.0,
            esc(label),
            row_h - 4.0
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{zero:.1}" x2="{zero:.1}" y1="5" y2="{:.1}" stroke="#333"/><text x="{zero:.1}" y="{:.1}" font-size="11" text-anchor="middle">一致重み log2(m/u) / match weight</text></svg>"##,
        ht - 25.0,
        ht - 8.0
    );
    s
}

fn pr_svg(ev: &PairEvaluation) -> String {
    let (w, ht, pad) = (760.0, 280.0, 45.0);
    // Probabilities crowd against 1: the axis is the match weight (log2 odds) of the threshold.
    let wt = |p: f64| weight_of(p).clamp(-40.0, 40.0);
    let lo = ev
        .curve
        .iter()
        .map(|m| wt(m.threshold))
        .fold(f64::INFINITY, f64::min)
        .min(0.0)
        .floor();
    let hi = ev
        .curve
        .iter()
        .map(|m| wt(m.threshold))
        .fold(f64::NEG_INFINITY, f64::max)
        .max(lo + 1.0)
        .ceil();
    let x_of = |p: f64| pad + (wt(p) - lo) / (hi - lo) * (w - 2.0 * pad);
    let y_of = |v: f64| ht - pad - v.clamp(0.0, 1.0) * (ht - 2.0 * pad);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{ht}" role="img" aria-label="precision and recall by threshold">"#
    );
    let line = |f: &dyn Fn(&crate::eval::PairMetrics) -> f64| -> String {
        ev.curve
            .iter()
            .map(|m| format!("{:.1},{:.1}", x_of(m.threshold), y_of(f(m))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (f, color, name) in [
        (
            &(|m: &crate::eval::PairMetrics| m.precision)
                as &dyn Fn(&crate::eval::PairMetrics) -> f64,
            "#2e8b57",
            "適合率 / precision",
        ),
        (
            &|m: &crate::eval::PairMetrics| m.recall,
            "#4a78b5",
            "再現率 / recall",
        ),
        (&|m: &crate::eval::PairMetrics| m.f1, "#c0392b", "F1"),
    ] {
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"><title>{name}</title></polyline>"#,
            line(f)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{pad}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#333"/><line x1="{pad}" x2="{pad}" y1="{pad}" y2="{:.1}" stroke="#333"/>"##,
        w - pad,
        ht - pad,
        ht - pad,
        ht - pad
    );
    for k in 0..=10 {
        let v = k as f64 / 10.0;
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{v:.1}</text>"##,
            pad - 4.0,
            y_of(v) + 3.0
        );
    }
    let step = ((hi - lo) / 8.0).ceil().max(1.0);
    let mut tick = lo;
    while tick <= hi {
        let p = tick.exp2() / (1.0 + tick.exp2());
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{tick:.0}</text>"##,
            x_of(p),
            ht - pad + 14.0
        );
        tick += step;
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">閾値の一致重み (log2 オッズ) / threshold as match weight (log2 odds; 0 = probability 0.5) — 緑 適合率 precision, 青 再現率 recall, 赤 F1</text></svg>"##,
        w / 2.0,
        ht - 8.0
    );
    s
}

/// Renders the report. `evaluation` and `clusters` are shown when ground truth was given.
pub fn html(
    out: &LinkOutput,
    title: &str,
    evaluation: Option<&PairEvaluation>,
    clusters: Option<&ClusterMetrics>,
) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>{t}</title><style>
body{{font-family:system-ui,"Hiragino Sans","Noto Sans JP",sans-serif;margin:2em;max-width:64em;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}
th{{background:#f2f2f2}}td:first-child,th:first-child{{text-align:left}}.warn{{color:#b03a2e;font-weight:bold}}
</style></head><body><h1>名寄せレポート / Record linkage report</h1><p>{t}</p>"#,
        t = esc(title)
    );
    let kind = match out.link_type {
        crate::LinkType::Link => "link (2 tables)",
        crate::LinkType::Dedupe => "dedupe (1 table)",
    };
    let _ = write!(
        s,
        "<h2>概要 / Summary</h2><table><tr><th>項目 / item</th><th>値 / value</th></tr>\
<tr><td>種別 / link type</td><td>{kind}</td></tr>\
<tr><td>左の件数 / left records</td><td>{}</td></tr>\
<tr><td>右の件数 / right records</td><td>{}</td></tr>\
<tr><td>処理単位 (同一レコード統合後) / nodes after merging identical records</td><td>{}</td></tr>\
<tr><td>候補ペア / candidate pairs</td><td>{}</td></tr>\
<tr><td>一致 (≥ {}) / matches</td><td>{}</td></tr>\
<tr><td>目視確認帯 [{}, {}) / review band</td><td>{}</td></tr>\
<tr><td>クラスタ数 / clusters</td><td>{}</td></tr>\
<tr><td>事前確率 (採点用) / prior used for scoring</td><td>{:.3e}</td></tr>\
<tr><td>候補ペアの事前確率 λ (EM) / prior of a candidate pair λ (EM)</td><td>{:.6}</td></tr>\
<tr><td>EM 反復 / EM iterations</td><td>{}</td></tr>\
<tr><td>u 推定の無作為ペア / random pairs for u</td><td>{}</td></tr>\
<tr><td>クラスタ結合 (実施/拒否) / merges (done / refused by constraints / refused by size)</td><td>{} / {} / {}</td></tr></table>",
        out.left_ids.len(),
        out.right_ids.len(),
        out.nodes.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" / "),
        out.candidates,
        out.thresholds.match_probability,
        out.matches,
        out.thresholds.review_lower,
        out.thresholds.review_upper,
        out.review,
        out.cluster_count,
        out.model.prior,
        out.model.candidate_prior,
        out.model.em_iterations,
        out.model.u_sample_pairs,
        out.cluster_stats.merges,
        out.cluster_stats.refused,
        out.cluster_stats.refused_size,
    );
    s.push_str("<h2>ブロッキング / Blocking</h2><table><tr><th>規則 / rule</th><th>新規ペア / new pairs</th><th>除外ブロック / skipped blocks</th><th>除外ペア / skipped pairs</th><th>最大除外ブロック / largest skipped block</th></tr>");
    for r in &out.blocking {
        let cls = if r.skipped_blocks > 0 {
            " class=\"warn\""
        } else {
            ""
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td{cls}>{}</td><td{cls}>{}</td><td>{}</td></tr>",
            esc(&r.name),
            r.new_pairs,
            r.skipped_blocks,
            r.skipped_pairs,
            r.largest_skipped_block
        );
    }
    s.push_str("</table>");
    s.push_str("<h2>比較レベルの重み / Weights per comparison level</h2><table><tr><th>比較 / comparison</th><th>レベル / level</th><th>m</th><th>u</th><th>重み / weight</th><th>候補ペア / candidates</th></tr>");
    for (name, levels) in &out.model.comparisons {
        for l in levels {
            let (m, u, w) = if l.neutral {
                (
                    "—".to_string(),
                    "—".to_string(),
                    "0 (欠損 / missing)".to_string(),
                )
            } else {
                (
                    format!("{:.5}", l.m),
                    format!("{:.3e}", l.u),
                    format!("{:.2}", l.weight),
                )
            };
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{m}</td><td>{u}</td><td>{w}</td><td>{}</td></tr>",
                esc(name),
                esc(&l.label),
                l.candidates
            );
        }
    }
    s.push_str("</table>");
    s.push_str(&weights_svg(out));
    s.push_str("<h2>スコア分布 / Score histogram</h2>");
    s.push_str(&histogram_svg(out));
    if let Some(ev) = evaluation {
        let a = &ev.at_threshold;
        let b = &ev.best;
        let _ = write!(
            s,
            "<h2>正解との比較 / Against ground truth</h2><table><tr><th>閾値 / threshold</th><th>適合率 / precision</th><th>再現率 / recall</th><th>F1</th><th>TP</th><th>FP</th><th>FN</th></tr>\
<tr><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td><td>{}</td><td>{}</td></tr>\
<tr><td>{:.4} (最良 / best)</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
            a.threshold, a.precision, a.recall, a.f1, a.tp, a.fp, a.fn_,
            b.threshold, b.precision, b.recall, b.f1, b.tp, b.fp, b.fn_
        );
        s.push_str(&pr_svg(ev));
    }
    if let Some(c) = clusters {
        let _ = write!(
            s,
            "<h3>クラスタ / Clusters</h3><table><tr><th>指標 / metric</th><th>値 / value</th></tr>\
<tr><td>クラスタ数 / clusters</td><td>{}</td></tr>\
<tr><td>2 人以上を結合したクラスタ / clusters joining two or more true entities</td><td>{} ({:.4} %)</td></tr>\
<tr><td>分割された実体 / true entities split</td><td>{} of {} ({:.4} %)</td></tr>\
<tr><td>クラスタ由来ペアの適合率・再現率・F1 / pairwise P, R, F1 of cluster pairs</td><td>{:.4} / {:.4} / {:.4}</td></tr></table>",
            c.clusters,
            c.joining,
            100.0 * c.joining as f64 / c.clusters.max(1) as f64,
            c.split,
            c.true_entities_multi,
            100.0 * c.split as f64 / c.true_entities_multi.max(1) as f64,
            c.precision,
            c.recall,
            c.f1
        );
    }
    s.push_str("</body></html>\n");
    s
}
