//! HTML reports: every report of the workspace (anonymization, linkage, release) is rendered
//! through this crate, with the `maud` template engine escaping every value; no report builds
//! HTML from strings by hand.
//!
//! A report is one self-contained page ([`page`]: no script, no outside resource) in Japanese and
//! English, made of headed sections, key-value tables ([`facts`]), tables ([`table`]) and inline
//! SVG bar charts ([`bars`], and [`paired_bars`] for two series such as before and after).

// Callers that write `html!` themselves depend on `maud` directly (the macro names its crate).
pub use maud::{html, Markup, PreEscaped, Render};

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:60em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:3px 8px;\
text-align:left}th{background:#eef}.num{text-align:right}.warn{color:#b03a2e;font-weight:bold}";

/// A whole page: `title` (Japanese / English) as the title and first heading, then `body`.
pub fn page(title: &str, body: Markup) -> String {
    html! {
        (maud::DOCTYPE)
        html lang="ja" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (title) }
                (body)
            }
        }
    }
    .into_string()
        + "\n"
}

/// A two-column table of labelled facts.
pub fn facts<L: Render, V: Render>(rows: &[(L, V)]) -> Markup {
    html! {
        table {
            @for (label, value) in rows {
                tr { th { (label) } td { (value) } }
            }
        }
    }
}

/// A table with a header row.
pub fn table<H: Render, C: Render>(header: &[H], rows: &[Vec<C>]) -> Markup {
    html! {
        table {
            tr { @for h in header { th { (h) } } }
            @for row in rows {
                tr { @for c in row { td { (c) } } }
            }
        }
    }
}

/// Width of a bar chart, and of its label column.
const WIDTH: f64 = 640.0;
const LEFT: f64 = 190.0;

/// A bar's length for `v` against `max` (clamped to [0, max]; 0 when `max` is not positive).
fn bar_width(v: f64, max: f64) -> f64 {
    if max > 0.0 {
        (v / max).clamp(0.0, 1.0) * (WIDTH - LEFT - 90.0)
    } else {
        0.0
    }
}

/// A horizontal bar chart as inline SVG: (label, value) pairs drawn against `max` (values are
/// clamped to [0, max]), each bar labelled with `format(value)`.
pub fn bars(
    title: &str,
    items: &[(String, f64)],
    max: f64,
    format: &dyn Fn(f64) -> String,
) -> Markup {
    const ROW: f64 = 22.0;
    let height = 30.0 + ROW * items.len() as f64;
    let width_of = |v: f64| bar_width(v, max);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(height) role="img" aria-label=(title) {
            text x="0" y="16" font-size="14" font-weight="bold" { (title) }
            @for (i, (label, v)) in items.iter().enumerate() {
                @let y = 26.0 + ROW * i as f64;
                @let w = width_of(*v);
                text x=(LEFT - 6.0) y=(y + 12.0) font-size="12" text-anchor="end" { (label) }
                rect x=(LEFT) y=(y) width=(format!("{w:.1}")) height="16" fill="#3b6ea5" {}
                text x=(format!("{:.1}", LEFT + w + 4.0)) y=(y + 12.0) font-size="12" { (format(*v)) }
            }
        }
    }
}

/// A horizontal bar chart of two series as inline SVG (such as before and after): each label with
/// one bar per series, the two series named in a legend, values clamped to [0, max] and each bar
/// labelled with `format(value)`.
pub fn paired_bars(
    title: &str,
    series: [&str; 2],
    items: &[(String, f64, f64)],
    max: f64,
    format: &dyn Fn(f64) -> String,
) -> Markup {
    const BAR: f64 = 12.0;
    const ROW: f64 = 2.0 * BAR + 8.0;
    const TOP: f64 = 44.0;
    const FILL: [&str; 2] = ["#9bb7d4", "#3b6ea5"];
    let height = TOP + 4.0 + ROW * items.len() as f64;
    let width_of = |v: f64| bar_width(v, max);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(height) role="img" aria-label=(title) {
            text x="0" y="16" font-size="14" font-weight="bold" { (title) }
            @for (s, (name, fill)) in series.iter().zip(FILL).enumerate() {
                @let x = LEFT + 160.0 * s as f64;
                rect x=(x) y="24" width="12" height="12" fill=(fill) {}
                text x=(x + 16.0) y="34" font-size="12" { (name) }
            }
            @for (i, (label, a, b)) in items.iter().enumerate() {
                @let y = TOP + ROW * i as f64;
                text x=(LEFT - 6.0) y=(y + BAR + 4.0) font-size="12" text-anchor="end" { (label) }
                @for (s, v) in [*a, *b].into_iter().enumerate() {
                    @let w = width_of(v);
                    @let top = y + BAR * s as f64;
                    rect x=(LEFT) y=(top) width=(format!("{w:.1}")) height=(BAR - 1.0) fill=(FILL[s]) {}
                    text x=(format!("{:.1}", LEFT + w + 4.0)) y=(top + BAR - 2.0) font-size="11" { (format(v)) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_everywhere() {
        let evil = "<script>alert(1)</script>&\"";
        let body = html! {
            (facts(&[(evil, evil)]))
            (table(&[evil], &[vec![evil]]))
            (bars(evil, &[(evil.to_string(), 1.0)], 1.0, &|_| evil.to_string()))
            (paired_bars(evil, [evil, evil], &[(evil.to_string(), 1.0, 0.5)], 1.0, &|_| evil.to_string()))
        };
        let page = page(evil, body);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.starts_with("<!DOCTYPE html><html lang=\"ja\">"));
    }

    #[test]
    fn bars_scale_to_the_maximum_and_clamp() {
        let svg = bars("t", &[("a".into(), 2.0), ("b".into(), 9.0)], 4.0, &|v| {
            format!("{v}")
        })
        .into_string();
        assert!(svg.contains("width=\"180.0\""), "half of 360: {svg}");
        assert!(
            svg.contains("width=\"360.0\""),
            "clamped to the maximum: {svg}"
        );
        let none = bars("t", &[("a".into(), 2.0)], 0.0, &|v| format!("{v}")).into_string();
        assert!(none.contains("width=\"0.0\""));
    }

    #[test]
    fn paired_bars_draw_both_series_to_scale_with_a_legend() {
        let svg = paired_bars(
            "t",
            ["before", "after"],
            &[("E11".into(), 2.0, 1.0), ("I10".into(), 9.0, -1.0)],
            4.0,
            &|v| format!("{v}"),
        )
        .into_string();
        assert!(svg.contains(">before<") && svg.contains(">after<"), "{svg}");
        assert!(svg.contains(">E11<") && svg.contains(">I10<"), "{svg}");
        assert_eq!(svg.matches("width=\"180.0\"").count(), 1, "2 of 4: {svg}");
        assert_eq!(svg.matches("width=\"90.0\"").count(), 1, "1 of 4: {svg}");
        assert_eq!(svg.matches("width=\"360.0\"").count(), 1, "clamped: {svg}");
        assert_eq!(
            svg.matches("width=\"0.0\"").count(),
            1,
            "clamped at 0: {svg}"
        );
        assert_eq!(
            svg.matches("#3b6ea5").count(),
            3,
            "legend and two bars: {svg}"
        );
    }
}
