//! Charts drawn as SVG by our own code: a line chart of a time series and stacked bars.
//! No chart library and no script: the SVG is markup like the rest of the page, every
//! label goes through maud's escaping, and numbers are formatted by us.

use maud::{html, Markup};

const W: f64 = 800.0;
const H: f64 = 220.0;
const PAD_L: f64 = 48.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 12.0;
const PAD_B: f64 = 28.0;

/// A round axis maximum at or above `max` (1, 2 or 5 times a power of ten).
pub fn nice_max(max: i64) -> i64 {
    if max <= 0 {
        return 1;
    }
    let mut p = 1i64;
    while p.saturating_mul(10) <= max {
        p *= 10;
    }
    [1, 2, 5, 10]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= max)
        .unwrap_or(10 * p)
}

fn x_of(i: usize, n: usize) -> f64 {
    let span = W - PAD_L - PAD_R;
    if n <= 1 {
        PAD_L + span / 2.0
    } else {
        PAD_L + span * i as f64 / (n - 1) as f64
    }
}

fn y_of(v: i64, top: i64) -> f64 {
    let span = H - PAD_T - PAD_B;
    PAD_T + span * (1.0 - v as f64 / top as f64)
}

/// One line of a line chart.
pub struct Line<'a> {
    pub name: &'a str,
    /// A CSS class (`series-a`, `series-b`) the stylesheet colours.
    pub class: &'a str,
    pub values: Vec<i64>,
}

/// A line chart of `lines` over `labels` (one value per label).
pub fn lines(title: &str, labels: &[String], lines: &[Line<'_>]) -> Markup {
    let n = labels.len();
    let max = lines
        .iter()
        .flat_map(|l| l.values.iter())
        .copied()
        .max()
        .unwrap_or(0);
    let top = nice_max(max);
    let points = |l: &Line<'_>| {
        l.values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x_of(i, n), y_of(*v, top)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let ticks = [0, top / 2, top];
    let label_every = (n / 6).max(1);
    html! {
        svg.chart viewBox={"0 0 " (W) " " (H)} role="img" aria-label=(title) {
            title { (title) }
            @for t in ticks {
                line.grid x1=(PAD_L) x2={(W - PAD_R)} y1={(format!("{:.1}", y_of(t, top)))} y2={(format!("{:.1}", y_of(t, top)))} {}
                text.axis x={(PAD_L - 6.0)} y={(format!("{:.1}", y_of(t, top) + 4.0))} text-anchor="end" { (t) }
            }
            @for (i, l) in labels.iter().enumerate() {
                @if i % label_every == 0 || i + 1 == n {
                    @let anchor = if i == 0 && n > 1 { "start" } else if i + 1 == n && n > 1 { "end" } else { "middle" };
                    text.axis x={(format!("{:.1}", x_of(i, n)))} y={(H - 8.0)} text-anchor=(anchor) { (l) }
                }
            }
            @for l in lines {
                polyline class=(l.class) points=(points(l)) fill="none" {}
                @for (i, v) in l.values.iter().enumerate() {
                    circle class=(l.class) cx={(format!("{:.1}", x_of(i, n)))} cy={(format!("{:.1}", y_of(*v, top)))} r="2.5" {
                        title { (labels.get(i).map(String::as_str).unwrap_or("")) ": " (v) " " (l.name) }
                    }
                }
            }
        }
    }
}

/// Stacked bars: for each label, `(a, b)` drawn as two stacked segments.
pub fn stacked_bars(
    title: &str,
    labels: &[String],
    values: &[(i64, i64)],
    names: (&str, &str),
) -> Markup {
    let n = values.len().max(1);
    let top = nice_max(values.iter().map(|(a, b)| a + b).max().unwrap_or(0));
    let span = W - PAD_L - PAD_R;
    let bw = (span / n as f64) * 0.8;
    let label_every = (n / 8).max(1);
    html! {
        svg.chart viewBox={"0 0 " (W) " " (H)} role="img" aria-label=(title) {
            title { (title) }
            @for t in [0, top / 2, top] {
                line.grid x1=(PAD_L) x2={(W - PAD_R)} y1={(format!("{:.1}", y_of(t, top)))} y2={(format!("{:.1}", y_of(t, top)))} {}
                text.axis x={(PAD_L - 6.0)} y={(format!("{:.1}", y_of(t, top) + 4.0))} text-anchor="end" { (t) }
            }
            @for (i, (a, b)) in values.iter().enumerate() {
                @let x = PAD_L + span * i as f64 / n as f64 + (span / n as f64 - bw) / 2.0;
                @let label = labels.get(i).map(String::as_str).unwrap_or("");
                rect.series-a x=(format!("{x:.1}")) y=(format!("{:.1}", y_of(*a, top))) width=(format!("{bw:.1}")) height=(format!("{:.1}", y_of(0, top) - y_of(*a, top))) {
                    title { (label) ": " (a) " " (names.0) }
                }
                rect.series-b x=(format!("{x:.1}")) y=(format!("{:.1}", y_of(a + b, top))) width=(format!("{bw:.1}")) height=(format!("{:.1}", y_of(*a, top) - y_of(a + b, top))) {
                    title { (label) ": " (b) " " (names.1) }
                }
                @if i % label_every == 0 {
                    text.axis x=(format!("{:.1}", x + bw / 2.0)) y={(H - 8.0)} text-anchor="middle" { (label) }
                }
            }
        }
    }
}

/// A horizontal share bar for a table row (SVG, since the CSP forbids style attributes).
pub fn share(value: i64, max: i64) -> Markup {
    let pct = if max > 0 {
        (value as f64 / max as f64 * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    };
    html! {
        svg.share viewBox="0 0 100 6" preserveAspectRatio="none" aria-hidden="true" {
            rect x="0" y="0" width=(format!("{pct:.1}")) height="6" {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maxima_are_round() {
        for (max, top) in [
            (0, 1),
            (1, 1),
            (3, 5),
            (7, 10),
            (12, 20),
            (99, 100),
            (101, 200),
            (4_999, 5_000),
            (5_001, 10_000),
        ] {
            assert_eq!(nice_max(max), top, "{max}");
        }
    }

    #[test]
    fn labels_are_escaped_and_points_are_in_the_box() {
        let labels = vec!["<script>".to_string(), "b".into()];
        let svg = lines(
            "t",
            &labels,
            &[Line {
                name: "visitors",
                class: "series-a",
                values: vec![0, 10],
            }],
        )
        .into_string();
        assert!(
            !svg.contains("<script>") && svg.contains("&lt;script&gt;"),
            "{svg}"
        );
        assert!(svg.contains("points=\"48.0,192.0 788.0,12.0\""), "{svg}");
        let bars =
            stacked_bars("t", &labels, &[(1, 2), (0, 0)], ("human", "machine")).into_string();
        assert!(bars.contains("human") && !bars.contains("<script>"));
    }
}
