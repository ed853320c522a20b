//! `/sites/<key>/goals`: a site's goals (an event name or a page path, `*` wildcards),
//! each with its numbers over the last 30 days, and its saved funnels, each with its
//! drop-off per step (`report::ads::funnel`, as `pixeltrack funnel` counts it). Admins
//! add and remove them; viewers of the site read them.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::{blocking, checked_name, post_button, site_for, site_nav, store_err};
use crate::clock::day_of;
use crate::report::ads::{self, Within};
use crate::report::DateRange;
use crate::store::{Pattern, PatternKind, SiteStore};
use crate::web::layout::{self, csrf_field};
use crate::web::{CsrfForm, CurrentUser, NoFields, WebError, WebState};

fn pct(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "—".into())
}

/// `GET /sites/<key>/goals`.
pub async fn show(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(key): Path<String>,
) -> Result<Response, WebError> {
    let site = site_for(&state, &user, &key).await?;
    let today = day_of(state.clock.now_ms());
    let range = DateRange {
        from_day: today - 29,
        to_day: today,
    };
    let (store, s2) = (state.store.clone(), site.clone());
    let (goals, stored, funnels) = blocking(move || {
        let goals = ads::goals(store.as_ref(), &s2, range).map_err(WebError::internal)?;
        let stored = store.goals(s2.id).map_err(WebError::internal)?;
        let mut funnels = Vec::new();
        for f in store.funnels(s2.id).map_err(WebError::internal)? {
            let within = Within::parse(&f.within).unwrap_or(Within::Visit);
            let steps = ads::funnel(store.as_ref(), &s2, range, &f.steps, within)
                .map_err(WebError::internal)?;
            funnels.push((f, steps));
        }
        Ok((goals, stored, funnels))
    })
    .await?;
    let base = format!("/sites/{}", site.key);
    let admin = user.is_admin();
    let body = html! {
        div.site-head { h1 { (site.name) } span.muted { (site.domain) } }
        (site_nav(&site, "Goals and funnels"))
        section.manage-goals {
            h2 { "Goals" }
            p.muted { "Last 30 days. A goal counts past events too." }
            @if goals.is_empty() {
                p { "No goals yet." }
            } @else {
                table.goals {
                    thead { tr { th { "goal" } th { "matches" } th.num { "completions" } th.num { "visitors" } th.num { "conversion rate" } @if admin { th {} } } }
                    tbody {
                        @for g in &goals {
                            tr {
                                td { (g.name) }
                                td { code { (g.pattern) } }
                                td.num { (g.completions) }
                                td.num { (g.visitors) }
                                td.num { (pct(g.conversion_rate)) }
                                @if admin {
                                    td {
                                        @if let Some(s) = stored.iter().find(|s| s.name == g.name) {
                                            (post_button(&user, &format!("{base}/goals/{}/remove", s.id), "Remove"))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if admin {
                form.add-goal method="post" action={(base) "/goals"} {
                    (csrf_field(&user))
                    div.row {
                        label { "Kind"
                            select name="kind" {
                                option value="page" { "page path" }
                                option value="event" { "custom event" }
                            }
                        }
                        label { span { "Path or event name (" code { "*" } " matches anything)" } input type="text" name="pattern" placeholder="/thank-you*  or  signup" required maxlength="256"; }
                        label { "Name (optional)" input type="text" name="name" maxlength="200"; }
                        button type="submit" { "Add goal" }
                    }
                }
            }
        }
        section.manage-funnels {
            h2 { "Funnels" }
            p.muted { "Last 30 days: how many visits (or visitors, within days) reach each step, in order." }
            @for (f, steps) in &funnels {
                div.funnel {
                    h3 { (f.name) " " span.muted.small { "within " (f.within) } }
                    table.funnel {
                        thead { tr { th { "step" } th.num { "reached" } th.num { "dropped" } th.num { "from previous" } th.num { "from start" } } }
                        tbody {
                            @for s in steps {
                                tr {
                                    td { code { (s.step) } }
                                    td.num { (s.reached) }
                                    td.num { (s.dropped) }
                                    td.num { (pct(s.from_previous)) }
                                    td.num { (pct(s.from_start)) }
                                }
                            }
                        }
                    }
                    @if admin {
                        (post_button(&user, &format!("{base}/funnels/{}/remove", f.id), "Delete funnel"))
                    }
                }
            }
            @if funnels.is_empty() { p { "No funnels yet." } }
            @if admin {
                h3 { "Define a funnel" }
                form.add-funnel method="post" action={(base) "/funnels"} {
                    (csrf_field(&user))
                    div.row {
                        label { "Name" input type="text" name="name" required maxlength="200"; }
                        label { "Within"
                            select name="within" {
                                option value="visit" { "one visit" }
                                option value="1d" { "1 day" }
                                option value="7d" { "7 days" }
                                option value="30d" { "30 days" }
                            }
                        }
                    }
                    label.wide { "Steps, one per line, in order: a path (" code { "/pricing" } "), " code { "page:/blog/*" } " or " code { "event:signup" }
                        textarea name="steps" rows="4" required {}
                    }
                    button type="submit" { "Save funnel" }
                }
            }
        }
    };
    Ok(layout::render(layout::page(
        &format!("Goals · {}", site.name),
        Some(&user),
        body,
    )))
}

#[derive(Deserialize)]
pub struct NewGoal {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    pattern: String,
    #[serde(default)]
    name: String,
}

/// `POST /sites/<key>/goals`.
pub async fn add_goal(
    State(state): State<WebState>,
    Path(key): Path<String>,
    f: CsrfForm<NewGoal>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let site = site_for(&state, &f.user, &key).await?;
    let kind = PatternKind::parse(&f.form.kind)
        .ok_or_else(|| WebError::BadRequest("a goal is a page path or a custom event".into()))?;
    let pattern = Pattern::new(kind, &f.form.pattern).ok_or_else(|| {
        WebError::BadRequest(
            "a goal pattern is 1 to 256 characters without control characters; a page path starts with / (or *)".into(),
        )
    })?;
    let name = if f.form.name.trim().is_empty() {
        pattern.glob.clone()
    } else {
        checked_name("a goal name", &f.form.name, 200)?
    };
    let (store, now) = (state.store.clone(), state.clock.now_ms());
    blocking(move || {
        if store
            .goals(site.id)
            .map_err(WebError::internal)?
            .iter()
            .any(|g| g.name == name)
        {
            return Err(WebError::BadRequest(format!(
                "this site already has a goal named {name:?}"
            )));
        }
        store
            .add_goal(site.id, &name, &pattern, now)
            .map_err(store_err)
    })
    .await?;
    Ok(Redirect::to(&format!("/sites/{key}/goals")).into_response())
}

/// `POST /sites/<key>/goals/<id>/remove`.
pub async fn remove_goal(
    State(state): State<WebState>,
    Path((key, id)): Path<(String, String)>,
    f: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    remove_by_id(&state, &f.user, &key, &id, |store, site_id, id| {
        let Some(g) = store
            .goals(site_id)
            .map_err(WebError::internal)?
            .into_iter()
            .find(|g| g.id == id)
        else {
            return Ok(false);
        };
        store.remove_goal(site_id, &g.name).map_err(store_err)
    })
    .await
}

/// A goal or funnel of the site `key` removed by its id, by an admin; an id that is
/// not the site's is "not found". Back to the goals page.
async fn remove_by_id(
    state: &WebState,
    user: &CurrentUser,
    key: &str,
    id: &str,
    remove: impl FnOnce(&crate::store::SqliteStore, crate::model::SiteId, i64) -> Result<bool, WebError>
        + Send
        + 'static,
) -> Result<Response, WebError> {
    user.require_admin()?;
    let site = site_for(state, user, key).await?;
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    let store = state.store.clone();
    if !blocking(move || remove(&store, site.id, id)).await? {
        return Err(WebError::NotFound);
    }
    Ok(Redirect::to(&format!("/sites/{key}/goals")).into_response())
}

#[derive(Deserialize)]
pub struct NewFunnel {
    #[serde(default)]
    name: String,
    #[serde(default)]
    within: String,
    #[serde(default)]
    steps: String,
}

/// `POST /sites/<key>/funnels`.
pub async fn add_funnel(
    State(state): State<WebState>,
    Path(key): Path<String>,
    f: CsrfForm<NewFunnel>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let site = site_for(&state, &f.user, &key).await?;
    let name = checked_name("a funnel name", &f.form.name, 200)?;
    let within = f.form.within.trim().to_owned();
    Within::parse(&within).ok_or_else(|| {
        WebError::BadRequest("within is 'visit' or a number of days such as 7d (1-365)".into())
    })?;
    let steps = f
        .form
        .steps
        .lines()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Pattern::parse(s).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "step {:?}: use a path such as /pricing, page:/blog/*, or event:signup",
                    s.chars().take(80).collect::<String>()
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !(2..=32).contains(&steps.len()) {
        return Err(WebError::BadRequest(
            "a funnel has 2 to 32 steps, one per line".into(),
        ));
    }
    let (store, now) = (state.store.clone(), state.clock.now_ms());
    blocking(move || {
        store
            .add_funnel(site.id, &name, &steps, &within, now)
            .map_err(store_err)
    })
    .await?;
    Ok(Redirect::to(&format!("/sites/{key}/goals")).into_response())
}

/// `POST /sites/<key>/funnels/<id>/remove`.
pub async fn remove_funnel(
    State(state): State<WebState>,
    Path((key, id)): Path<(String, String)>,
    f: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    remove_by_id(&state, &f.user, &key, &id, |store, site_id, id| {
        store.remove_funnel(site_id, id).map_err(store_err)
    })
    .await
}
