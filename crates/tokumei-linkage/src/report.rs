//! Self-contained HTML report with inline SVG charts (Japanese and English labels), rendered
//! through `tokumei-report` (every value escaped by the template engine).

use tokumei_report::{facts, html, page, table, Markup};

use crate::eval::{ClusterMetrics, PairEvaluation, PairMetrics};
use crate::LinkOutput;

fn weight_of(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    (p / (1.0 - p)).log2()
}

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

fn histogram_svg(out: &LinkOutput) -> Markup {
    let h = &out.histogram;
    let (w, ht, pad) = (760.0, 260.0, 40.0);
    let max = h.counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let lmax = (max + 1.0).log10();
    let n = h.counts.len() as f64;
    let bw = (w - 2.0 * pad) / n;
    let x_of = |weight: f64| pad + ((weight - h.start) / h.width).clamp(0.0, n) * bw;
    let t = &out.thresholds;
    let (lo, hi) = (
        x_of(weight_of(t.review_lower)),
        x_of(weight_of(t.review_upper)),
    );
    let mx = x_of(weight_of(t.match_probability));
    let bars: Vec<(usize, u64, f64)> = h
        .counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, c)| (i, *c, ((*c as f64 + 1.0).log10() / lmax) * (ht - 2.0 * pad)))
        .collect();
    let ticks: Vec<f64> = (0..)
        .map(|k| h.start + 10.0 * k as f64)
        .take_while(|tick| *tick <= h.start + n * h.width)
        .collect();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(w) height=(ht) role="img" aria-label="score histogram" {
            rect x=(f1(lo)) y=(pad) width=(f1((hi - lo).max(1.0))) height=(f1(ht - 2.0 * pad)) fill="#fff3c4" {}
            @for (i, c, bh) in &bars {
                rect x=(f1(pad + *i as f64 * bw)) y=(f1(ht - pad - bh)) width=(f1((bw - 1.0).max(0.5))) height=(f1(*bh)) fill="#4a78b5" {
                    title { (format!("{:.0}..{:.0}: {c}", h.start + *i as f64 * h.width, h.start + (*i + 1) as f64 * h.width)) }
                }
            }
            line x1=(f1(mx)) x2=(f1(mx)) y1=(pad) y2=(f1(ht - pad)) stroke="#c0392b" stroke-width="2" {}
            line x1=(pad) x2=(f1(w - pad)) y1=(f1(ht - pad)) y2=(f1(ht - pad)) stroke="#333" {}
            @for tick in &ticks {
                text x=(f1(x_of(*tick))) y=(f1(ht - pad + 14.0)) font-size="10" text-anchor="middle" { (format!("{tick:.0}")) }
            }
            text x=(f1(w / 2.0)) y=(f1(ht - 6.0)) font-size="11" text-anchor="middle" {
                "一致重み / match weight (log2 odds); 件数は対数目盛 / counts on a log scale; 黄色 = 目視確認帯 / yellow = review band; 赤 = 閾値 / red = threshold"
            }
        }
    }
}

fn weights_svg(out: &LinkOutput) -> Markup {
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
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(w) height=(ht) role="img" aria-label="match weights" {
            @for (i, (label, wt)) in rows.iter().enumerate() {
                @let y = 10.0 + i as f64 * row_h;
                @let len = wt.abs() / max * half;
                @let x = if *wt >= 0.0 { zero } else { zero - len };
                text x=(f1(label_w - 6.0)) y=(f1(y + 12.0)) font-size="11" text-anchor="end" { (label) }
                rect x=(f1(x)) y=(f1(y)) width=(f1(len)) height=(f1(row_h - 4.0)) fill=(if *wt >= 0.0 { "#2e8b57" } else { "#c0392b" }) {
                    title { (format!("{wt:.2}")) }
                }
            }
            line x1=(f1(zero)) x2=(f1(zero)) y1="5" y2=(f1(ht - 25.0)) stroke="#333" {}
            text x=(f1(zero)) y=(f1(ht - 8.0)) font-size="11" text-anchor="middle" { "一致重み log2(m/u) / match weight" }
        }
    }
}

type Metric = fn(&PairMetrics) -> f64;

fn pr_svg(ev: &PairEvaluation) -> Markup {
    let (w, ht, pad) = (760.0, 280.0, 45.0);
    // Probabilities crowd against 1: the axis is the match weight (log2 odds) of the threshold.
    let wt = |p: f64| weight_of(p).clamp(-40.0, 40.0);
    let weights = ev.curve.iter().map(|m| wt(m.threshold));
    let lo = weights
        .clone()
        .fold(f64::INFINITY, f64::min)
        .min(0.0)
        .floor();
    let hi = weights
        .fold(f64::NEG_INFINITY, f64::max)
        .max(lo + 1.0)
        .ceil();
    let x_of = |p: f64| pad + (wt(p) - lo) / (hi - lo) * (w - 2.0 * pad);
    let y_of = |v: f64| ht - pad - v.clamp(0.0, 1.0) * (ht - 2.0 * pad);
    let points = |f: Metric| -> String {
        ev.curve
            .iter()
            .map(|m| format!("{:.1},{:.1}", x_of(m.threshold), y_of(f(m))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let lines: [(Metric, &str, &str); 3] = [
        (|m| m.precision, "#2e8b57", "適合率 / precision"),
        (|m| m.recall, "#4a78b5", "再現率 / recall"),
        (|m| m.f1, "#c0392b", "F1"),
    ];
    let step = ((hi - lo) / 8.0).ceil().max(1.0);
    let ticks: Vec<f64> = (0..)
        .map(|k| lo + step * k as f64)
        .take_while(|t| *t <= hi)
        .collect();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(w) height=(ht) role="img" aria-label="precision and recall by threshold" {
            @for (f, color, name) in &lines {
                polyline fill="none" stroke=(color) stroke-width="2" points=(points(*f)) { title { (name) } }
            }
            line x1=(pad) x2=(f1(w - pad)) y1=(f1(ht - pad)) y2=(f1(ht - pad)) stroke="#333" {}
            line x1=(pad) x2=(pad) y1=(pad) y2=(f1(ht - pad)) stroke="#333" {}
            @for k in 0..=10 {
                @let v = k as f64 / 10.0;
                text x=(f1(pad - 4.0)) y=(f1(y_of(v) + 3.0)) font-size="10" text-anchor="end" { (format!("{v:.1}")) }
            }
            @for tick in &ticks {
                @let p = tick.exp2() / (1.0 + tick.exp2());
                text x=(f1(x_of(p))) y=(f1(ht - pad + 14.0)) font-size="10" text-anchor="middle" { (format!("{tick:.0}")) }
            }
            text x=(f1(w / 2.0)) y=(f1(ht - 8.0)) font-size="11" text-anchor="middle" {
                "閾値の一致重み (log2 オッズ) / threshold as match weight (log2 odds; 0 = probability 0.5) — 緑 適合率 precision, 青 再現率 recall, 赤 F1"
            }
        }
    }
}

fn summary(out: &LinkOutput) -> Markup {
    let kind = match out.link_type {
        crate::LinkType::Link => "link (2 tables)",
        crate::LinkType::Dedupe => "dedupe (1 table)",
    };
    let t = &out.thresholds;
    let m = &out.model;
    let c = &out.cluster_stats;
    let rows: Vec<(String, String)> = vec![
        ("種別 / link type".into(), kind.into()),
        (
            "左の件数 / left records".into(),
            out.left_ids.len().to_string(),
        ),
        (
            "右の件数 / right records".into(),
            out.right_ids.len().to_string(),
        ),
        (
            "処理単位 (同一レコード統合後) / nodes after merging identical records".into(),
            out.nodes
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" / "),
        ),
        (
            "候補ペア / candidate pairs".into(),
            out.candidates.to_string(),
        ),
        (
            format!("一致 (≥ {}) / matches", t.match_probability),
            out.matches.to_string(),
        ),
        (
            format!(
                "目視確認帯 [{}, {}) / review band",
                t.review_lower, t.review_upper
            ),
            out.review.to_string(),
        ),
        (
            "クラスタ数 / clusters".into(),
            out.cluster_count.to_string(),
        ),
        (
            "事前確率 (採点用) / prior used for scoring".into(),
            format!("{:.3e}", m.prior),
        ),
        (
            "候補ペアの事前確率 λ (EM) / prior of a candidate pair λ (EM)".into(),
            format!("{:.6}", m.candidate_prior),
        ),
        (
            "EM 反復 / EM iterations".into(),
            m.em_iterations.to_string(),
        ),
        (
            "u 推定の無作為ペア / random pairs for u".into(),
            m.u_sample_pairs.to_string(),
        ),
        (
            "クラスタ結合 (実施/拒否) / merges (done / refused by constraints / refused by size)"
                .into(),
            format!("{} / {} / {}", c.merges, c.refused, c.refused_size),
        ),
    ];
    facts(&rows)
}

fn blocking(out: &LinkOutput) -> Markup {
    html! {
        table {
            tr { th { "規則 / rule" } th { "新規ペア / new pairs" } th { "除外ブロック / skipped blocks" } th { "除外ペア / skipped pairs" } th { "最大除外ブロック / largest skipped block" } }
            @for r in &out.blocking {
                @let warn = if r.skipped_blocks > 0 { Some("warn") } else { None };
                tr {
                    td { (r.name) } td class="num" { (r.new_pairs) }
                    td class=[warn] { (r.skipped_blocks) } td class=[warn] { (r.skipped_pairs) }
                    td class="num" { (r.largest_skipped_block) }
                }
            }
        }
    }
}

fn weights(out: &LinkOutput) -> Markup {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (name, levels) in &out.model.comparisons {
        for l in levels {
            let (m, u, w) = if l.neutral {
                ("—".into(), "—".into(), "0 (欠損 / missing)".into())
            } else {
                (
                    format!("{:.5}", l.m),
                    format!("{:.3e}", l.u),
                    format!("{:.2}", l.weight),
                )
            };
            rows.push(vec![
                name.clone(),
                l.label.clone(),
                m,
                u,
                w,
                l.candidates.to_string(),
            ]);
        }
    }
    table(
        &[
            "比較 / comparison",
            "レベル / level",
            "m",
            "u",
            "重み / weight",
            "候補ペア / candidates",
        ],
        &rows,
    )
}

fn against_truth(ev: &PairEvaluation) -> Markup {
    let row = |m: &PairMetrics, label: String| {
        vec![
            label,
            format!("{:.4}", m.precision),
            format!("{:.4}", m.recall),
            format!("{:.4}", m.f1),
            m.tp.to_string(),
            m.fp.to_string(),
            m.fn_.to_string(),
        ]
    };
    let rows = vec![
        row(
            &ev.at_threshold,
            format!("{:.4}", ev.at_threshold.threshold),
        ),
        row(&ev.best, format!("{:.4} (最良 / best)", ev.best.threshold)),
    ];
    html! {
        h2 { "正解との比較 / Against ground truth" }
        (table(&["閾値 / threshold", "適合率 / precision", "再現率 / recall", "F1", "TP", "FP", "FN"], &rows))
        (pr_svg(ev))
    }
}

fn cluster_metrics(c: &ClusterMetrics) -> Markup {
    let rows: Vec<(&str, String)> = vec![
        ("クラスタ数 / clusters", c.clusters.to_string()),
        (
            "2 人以上を結合したクラスタ / clusters joining two or more true entities",
            format!(
                "{} ({:.4} %)",
                c.joining,
                100.0 * c.joining as f64 / c.clusters.max(1) as f64
            ),
        ),
        (
            "分割された実体 / true entities split",
            format!(
                "{} of {} ({:.4} %)",
                c.split,
                c.true_entities_multi,
                100.0 * c.split as f64 / c.true_entities_multi.max(1) as f64
            ),
        ),
        (
            "クラスタ由来ペアの適合率・再現率・F1 / pairwise P, R, F1 of cluster pairs",
            format!("{:.4} / {:.4} / {:.4}", c.precision, c.recall, c.f1),
        ),
    ];
    html! { h3 { "クラスタ / Clusters" } (facts(&rows)) }
}

/// Renders the report. `evaluation` and `clusters` are shown when ground truth was given.
pub fn html(
    out: &LinkOutput,
    title: &str,
    evaluation: Option<&PairEvaluation>,
    clusters: Option<&ClusterMetrics>,
) -> String {
    let body = html! {
        p { (title) }
        h2 { "概要 / Summary" }
        (summary(out))
        h2 { "ブロッキング / Blocking" }
        (blocking(out))
        h2 { "比較レベルの重み / Weights per comparison level" }
        (weights(out))
        (weights_svg(out))
        h2 { "スコア分布 / Score histogram" }
        (histogram_svg(out))
        @if let Some(ev) = evaluation { (against_truth(ev)) }
        @if let Some(c) = clusters { (cluster_metrics(c)) }
    };
    page("名寄せレポート / Record linkage report", body)
}
