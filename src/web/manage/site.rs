//! A site's silent failures made visible: the hits refused in the last hour (by reason
//! and page host, with a form that allows a refused host) and today's machine traffic,
//! shown above the site page; and the site's downloads (raw events as CSV or NDJSON,
//! written by `report::export::write`, the CLI's and the API's writer).

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::{blocking, site_for, store_err};
use crate::clock::day_of;
use crate::model::{parse_domain, Site};
use crate::report::{self, DateRange};
use crate::store::{Dim, SiteStore};
use crate::web::layout::csrf_field;
use crate::web::{CsrfForm, CurrentUser, WebError, WebState};

/// A dashboard download larger than this is cut off with a note: bigger exports are
/// streamed by `pixeltrack export` and `GET /api/v1/export`.
pub const MAX_DOWNLOAD_BYTES: usize = 64 << 20;

/// The hits of `site` refused in the last hour and today's machine hits, as a notice
/// for the top of the site page (empty when there are none), with the links to the
/// site's management pages and its downloads.
pub async fn notice(state: &WebState, user: &CurrentUser, site: &Site, query: &str) -> Markup {
    let now = state.clock.now_ms();
    let refused = state.refusals.last_hour(site.id.0, now);
    let (store, s2) = (state.store.clone(), site.clone());
    let today = day_of(now);
    let bots = tokio::task::spawn_blocking(move || {
        let q = report::Query::new(DateRange {
            from_day: today,
            to_day: today,
        });
        report::breakdown(store.as_ref(), &s2, &q, Dim::Bot, 5)
    })
    .await
    .ok()
    .and_then(Result::ok)
    .map(|b| b.rows)
    .unwrap_or_default();
    let machine: i64 = bots.iter().map(|r| r.pageviews.max(r.events)).sum();
    let total: u64 = refused.iter().map(|r| r.hits).sum();
    let base = format!("/sites/{}", site.key);
    let keep = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    html! {
        (super::site_nav(site, "Dashboard"))
        @if total > 0 {
            section.notice.refused {
                h2 { (total) " hits refused in the last hour" }
                ul {
                    @for r in &refused {
                        li {
                            strong { (r.hits) } " "
                            @if r.reason == "host_not_allowed" && !r.host.is_empty() {
                                "from pages on " code { (r.host) } ": host " (r.host) " not allowed"
                                @if user.is_admin() && parse_domain(&r.host).is_some() {
                                    " — "
                                    form.inline method="post" action={(base) "/allow-host"} {
                                        (csrf_field(user))
                                        input type="hidden" name="host" value=(r.host);
                                        button type="submit" { "allow it" }
                                    }
                                }
                            } @else {
                                (r.reason.replace('_', " ")) ": " span.muted { (r.explanation) }
                            }
                        }
                    }
                }
                p.muted.small { "Refused hits are not stored. Counted since this server started; " code { "/metrics" } " has every refusal by reason." }
            }
        }
        @if machine > 0 {
            section.notice.machine {
                p {
                    strong { (machine) } " hits today came from machines and are not in the numbers below: "
                    (bots.iter().map(|r| format!("{} {}", r.pageviews.max(r.events), r.value)).collect::<Vec<_>>().join(", "))
                    ". Headless browsers (the ones tests drive) are classified as crawlers: test in a normal browser window."
                }
            }
        }
        p.downloads.small {
            "Download this range: raw events as "
            a href={(base) "/export" (keep) (if keep.is_empty() { "?" } else { "&" }) "format=csv"} { "CSV" }
            " or "
            a href={(base) "/export" (keep) (if keep.is_empty() { "?" } else { "&" }) "format=ndjson"} { "NDJSON" }
            " · this view's numbers as "
            a href={(base) "/export" (keep) (if keep.is_empty() { "?" } else { "&" }) "format=csv&what=view"} { "CSV" }
            " or "
            a href={(base) "/export" (keep) (if keep.is_empty() { "?" } else { "&" }) "format=ndjson&what=view"} { "NDJSON" }
        }
    }
}

#[derive(Deserialize)]
pub struct AllowHost {
    host: String,
}

/// `POST /sites/<key>/allow-host`: adds a refused page host to the site's hosts; the
/// collector takes it at the next hit (`SiteCache::refresh_now`).
pub async fn allow_host(
    State(state): State<WebState>,
    Path(key): Path<String>,
    f: CsrfForm<AllowHost>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let site = site_for(&state, &f.user, &key).await?;
    let host = parse_domain(f.form.host.trim()).ok_or_else(|| {
        WebError::BadRequest(format!(
            "{:?} is not a host name such as localhost or www.example.com",
            f.form.host.chars().take(80).collect::<String>()
        ))
    })?;
    let store = state.store.clone();
    let h2 = host.clone();
    blocking(move || {
        let mut hosts = site.hosts.clone();
        if !site.owns_host(&h2) && !hosts.contains(&h2) {
            hosts.push(h2);
        }
        store.set_hosts(site.id, &hosts).map_err(store_err)
    })
    .await?;
    let site = site_for(&state, &f.user, &key).await?;
    state.refusals.forget_host(site.id.0, &host);
    Ok(Redirect::to(&format!("/sites/{key}")).into_response())
}

#[derive(Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: String,
    #[serde(default)]
    what: String,
}

/// A writer that refuses past [`MAX_DOWNLOAD_BYTES`].
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_DOWNLOAD_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "download too large",
            ));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /sites/<key>/export?format=csv|ndjson[&what=view]` plus the page's range and
/// filters: the raw events of the range, or the numbers of the view (every breakdown
/// row with its dimension), as a download.
pub async fn export(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(key): Path<String>,
    Query(q): Query<ExportQuery>,
    uri: axum::http::Uri,
) -> Result<Response, WebError> {
    let site = site_for(&state, &user, &key).await?;
    let format = match q.format.as_str() {
        "csv" => report::export::Format::Csv,
        "ndjson" | "" => report::export::Format::Ndjson,
        _ => return Err(WebError::BadRequest("format is csv or ndjson".into())),
    };
    // The page's own parameters (range, filters), without ours.
    let page_query: String = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k != "format" && k != "what")
        .fold(
            url::form_urlencoded::Serializer::new(String::new()),
            |mut s, (k, v)| {
                s.append_pair(&k, &v);
                s
            },
        )
        .finish();
    let now = state.clock.now_ms();
    let view = crate::web::dashboard::View::parse(&page_query, day_of(now))?;
    let (store, model) = (state.store.clone(), state.ads);
    let what = q.what.clone();
    let s2 = site.clone();
    let body = blocking(move || {
        let mut out = Capped(Vec::new());
        if what == "view" {
            let data = crate::web::dashboard::load_site(store.as_ref(), &s2, &view, model, now)
                .map_err(WebError::internal)?;
            write_view(&data.report, format, &mut out).map_err(WebError::internal)?;
        } else if !what.is_empty() && what != "events" {
            return Err(WebError::BadRequest("what is events or view".into()));
        } else {
            let (a, b) = view.range.millis();
            if let Err(e) = report::export::write(store.as_ref(), &s2, a, b, format, &mut out) {
                if e.kind() != std::io::ErrorKind::FileTooLarge {
                    return Err(WebError::internal(e));
                }
                // Cut at a row boundary is not guaranteed: say so in the file.
                out.0.extend_from_slice(b"\n# cut at 64 MiB: use 'pixeltrack export' or GET /api/v1/export for the rest\n");
            }
        }
        Ok(out.0)
    })
    .await?;
    let (ext, ctype) = match format {
        report::export::Format::Csv => ("csv", "text/csv; charset=utf-8"),
        report::export::Format::Ndjson => ("ndjson", "application/x-ndjson"),
    };
    let kind = if q.what == "view" { "report" } else { "events" };
    let file = format!(
        "attachment; filename=\"{}-{kind}-{}-{}.{ext}\"",
        site.key,
        DateRange::date(view_range(&page_query, now)?.from_day),
        DateRange::date(view_range(&page_query, now)?.to_day)
    );
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (header::CONTENT_DISPOSITION, file),
        ],
        body,
    )
        .into_response())
}

fn view_range(query: &str, now: i64) -> Result<DateRange, WebError> {
    Ok(crate::web::dashboard::View::parse(query, day_of(now))?.range)
}

/// The view's numbers: one row per breakdown row (dimension, value, counts), CSV cells
/// neutralised by the export writer's `csv_line`.
fn write_view(
    r: &report::SiteReport,
    format: report::export::Format,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let header = [
        "dimension",
        "value",
        "visitors",
        "visits",
        "pageviews",
        "events",
    ];
    if format == report::export::Format::Csv {
        out.write_all(report::export::csv_line(&header.map(String::from)).as_bytes())?;
    }
    for b in &r.breakdowns {
        for row in &b.rows {
            match format {
                report::export::Format::Csv => out.write_all(
                    report::export::csv_line(&[
                        b.dimension.to_owned(),
                        row.value.clone(),
                        row.visitors.to_string(),
                        row.visits.to_string(),
                        row.pageviews.to_string(),
                        row.events.to_string(),
                    ])
                    .as_bytes(),
                )?,
                report::export::Format::Ndjson => {
                    let line = serde_json::json!({
                        "dimension": b.dimension, "value": row.value, "visitors": row.visitors,
                        "visits": row.visits, "pageviews": row.pageviews, "events": row.events,
                    });
                    serde_json::to_writer(&mut *out, &line)?;
                    out.write_all(b"\n")?;
                }
            }
        }
    }
    Ok(())
}
