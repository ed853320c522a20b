//! "Details": one breakdown of the site page beyond its top 10 — every value of the
//! range (up to [`DETAILS_ROWS`]), under the page's filters, each row a filter link
//! back to the site page. Same report functions, same escaping as the site page.

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use maud::{html, Markup};

use super::dashboard::{self, Count, View, DETAILS_ROWS};
use super::layout;
use super::{CurrentUser, WebError, WebState};
use crate::clock::day_of;
use crate::model::Site;
use crate::report::{self, DateRange};
use crate::store::{Dim, Filter};

/// `GET /sites/<key>/details/<dimension>`.
pub async fn show(
    State(state): State<WebState>,
    user: CurrentUser,
    Path((key, dim)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, WebError> {
    let site = dashboard::find_site(&state, &user, &key).await?;
    let base = format!("/sites/{}", site.key);
    let (title, body) = page(&state, &site, &base, &dim, &uri).await?;
    Ok(layout::render(layout::page(&title, Some(&user), body)))
}

/// The details of `dim` for `site`, whose page is at `base` (the dashboard's or a
/// share link's): the page title and body.
pub async fn page(
    state: &WebState,
    site: &Site,
    base: &str,
    dim: &str,
    uri: &Uri,
) -> Result<(String, Markup), WebError> {
    // Only the dimensions the site page shows (not the total, not bot pages).
    let dim = Dim::parse(dim)
        .filter(|d| report::REPORT_DIMS.contains(d))
        .ok_or(WebError::NotFound)?;
    let now = state.clock.now_ms();
    let view = View::parse(uri.query().unwrap_or(""), day_of(now))?;
    // Filtered reads come from raw events, which cannot answer every dimension.
    let answerable = view.filters.is_empty() || Filter::DIMS.contains(&dim);
    let (store, s2, q) = (state.store.clone(), site.clone(), view.query());
    let rows = if answerable {
        tokio::task::spawn_blocking(move || {
            report::breakdown(store.as_ref(), &s2, &q, dim, DETAILS_ROWS)
        })
        .await
        .map_err(WebError::internal)?
        .map_err(WebError::internal)?
        .rows
    } else {
        Vec::new()
    };
    let count = Count::of_dim(dim);
    let max = rows.iter().map(|r| count.of(r)).max().unwrap_or(0);
    let engagement = dashboard::shows_engagement(dim, &rows);
    let back = format!("{base}?{}", view.query_string());
    let title = format!("{} · {}", dim.title(), site.name);
    let body = html! {
        div.site-head {
            h1 { (dim.title()) }
            span.muted { a href=(back) { "← " (site.name) } " · " (DateRange::date(view.range.from_day)) " to " (DateRange::date(view.range.to_day)) }
        }
        @if !view.filters.is_empty() {
            div.filters {
                "Only traffic where "
                @for f in &view.filters {
                    span.chip { code { (f.to_param()) } }
                }
            }
        }
        section.panel.wide data-dimension=(dim.name()) {
            @if !answerable {
                p.muted { "Not available under filters: this breakdown is counted only without them." }
            } @else if rows.is_empty() {
                p.muted { "Nothing in this period." }
            } @else {
                p.muted.small { (rows.len()) " values" @if rows.len() == DETAILS_ROWS { " (the first " (DETAILS_ROWS) ")" } ", largest first." }
                table {
                    thead { tr {
                        th { (dim.name().replace('_', " ")) }
                        @if count != Count::Visitors { th.num { "visitors" } }
                        th.num { (count.label()) }
                        @if engagement { th.num.eng { "scroll" } th.num.eng { "time" } }
                    } }
                    tbody {
                        @for r in &rows {
                            tr {
                                (dashboard::value_cell(base, &view, dim, r, super::chart::share(count.of(r), max)))
                                @if count != Count::Visitors { td.num { (r.visitors) } }
                                td.num { (count.of(r)) }
                                @if engagement {
                                    td.num.eng { (r.scroll_depth.map(|d| format!("{d:.0}%")).unwrap_or_else(|| "—".into())) }
                                    td.num.eng { (r.engagement_time.map(report::fmt_duration).unwrap_or_else(|| "—".into())) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok((title, body))
}
