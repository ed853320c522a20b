//! The country map of the site page: an SVG drawn on the server from
//! `data/world-map.tsv` (Natural Earth's 1:110m countries, public domain; see
//! `data/README.md` and `scripts/world-map.py`). Each country is shaded by one of six
//! classes (`b0`…`b5`, colours in the stylesheet: the CSP allows no style attribute),
//! and a country with visitors is a filter link with a title. No script.

use std::collections::HashMap;
use std::sync::LazyLock;

use maud::{html, Markup};

use crate::report::Row;

const MAP: &str = include_str!("../../data/world-map.tsv");

/// The map's view box and each country's path, by ISO 3166-1 alpha-2 code.
struct World {
    view_box: String,
    countries: Vec<(&'static str, &'static str)>,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let mut view_box = "0 0 1000 450".to_owned();
    let mut countries = Vec::new();
    for line in MAP.lines() {
        if let Some(v) = line.strip_prefix("# viewBox ") {
            view_box = v.trim().to_owned();
        } else if let Some((code, d)) = line.split_once('\t') {
            countries.push((code, d));
        }
    }
    World {
        view_box,
        countries,
    }
});

/// The shading class of `visitors` against the busiest country: `b0` for none, then
/// five steps on a square-root scale (so a few large countries do not wash out the rest).
pub fn bucket(visitors: i64, max: i64) -> &'static str {
    if visitors <= 0 || max <= 0 {
        return "b0";
    }
    let share = (visitors as f64 / max as f64).sqrt();
    match (share * 5.0).ceil() as i64 {
        ..=1 => "b1",
        2 => "b2",
        3 => "b3",
        4 => "b4",
        _ => "b5",
    }
}

/// The map for the country rows of a report; `link` makes a country's filter link.
pub fn render(rows: &[Row], link: impl Fn(&str) -> String) -> Markup {
    let visitors: HashMap<&str, i64> = rows
        .iter()
        .map(|r| (r.value.as_str(), r.visitors))
        .collect();
    let max = visitors.values().copied().max().unwrap_or(0);
    let world = &*WORLD;
    html! {
        svg.map viewBox=(world.view_box) role="img" aria-label="Visitors by country" {
            title { "Visitors by country" }
            @for (code, d) in &world.countries {
                @let n = visitors.get(code).copied().unwrap_or(0);
                @let name = crate::model::country_name(code);
                @if n > 0 {
                    a href=(link(code)) {
                        path class=(bucket(n, max)) d=(d) data-country=(code) {
                            title { (name) ": " (n) " visitors" }
                        }
                    }
                } @else {
                    path class="b0" d=(d) data-country=(code) { title { (name) } }
                }
            }
        }
        p.map-legend {
            span { "fewer" }
            @for b in ["b1", "b2", "b3", "b4", "b5"] { span class={"sw " (b)} {} }
            span { "more visitors" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(value: &str, visitors: i64) -> Row {
        Row {
            value: value.into(),
            visitors,
            visits: visitors,
            pageviews: visitors,
            events: 0,
            scroll_depth: None,
            engagement_time: None,
        }
    }

    #[test]
    fn the_map_has_the_countries_and_shades_them_by_class_only() {
        assert!(WORLD.countries.len() > 150, "{}", WORLD.countries.len());
        for code in ["DE", "US", "BR", "JP", "ZA", "AU", "FR", "GB"] {
            assert!(WORLD.countries.iter().any(|(c, _)| *c == code), "{code}");
        }
        let svg = render(&[row("DE", 100), row("FR", 4), row("<x>", 9)], |c| {
            format!("?f=country%3D%3D{c}")
        })
        .into_string();
        assert!(svg.contains(r#"<a href="?f=country%3D%3DDE"><path class="b5""#));
        assert!(svg.contains(r#"<a href="?f=country%3D%3DFR"><path class="b1""#));
        assert!(
            !svg.contains("style") && !svg.contains("<script"),
            "CSP-safe"
        );
        assert!(
            !svg.contains("<x>"),
            "an unknown value never reaches the map"
        );
    }

    #[test]
    fn buckets_grow_with_visitors() {
        assert_eq!(bucket(0, 10), "b0");
        assert_eq!(bucket(1, 1_000), "b1");
        assert_eq!(bucket(250, 1_000), "b3");
        assert_eq!(bucket(1_000, 1_000), "b5");
    }
}
