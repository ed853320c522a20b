//! Campaigns from the dashboard: a site's list and a form to create one; a campaign's
//! management page to mark it sent (count, time), record its cost, tag an email (paste
//! the HTML, get the tagged HTML — `tag::Tagger`, as `pixeltrack email tag` and the
//! API tag), make ad links (`tag::ad_link`), and read each recipient's opens and clicks
//! with the verdict and the reason in words (`model::email_reason`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::{blocking, checked_name, site_for, site_nav, store_err};
use crate::clock::Millis;
use crate::enrich::money;
use crate::model::{email_reason, Campaign, Confidence, Site};
use crate::report::ads::Money;
use crate::store::{CampaignStore, EmailRow, EventStore, SiteStore, TokenStore};
use crate::tag::{Recipient, Tagger};
use crate::web::layout::{self, csrf_field};
use crate::web::{CsrfForm, CurrentUser, WebError, WebState};

/// Recipients listed on the page at most (the CLI and API have them all).
const MAX_RECIPIENTS: usize = 500;
/// Pasted email HTML is refused past this size.
const MAX_HTML_BYTES: usize = 2 << 20;

fn time(ms: Option<Millis>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".into())
}

/// `GET /sites/<key>/campaigns`.
pub async fn list(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(key): Path<String>,
) -> Result<Response, WebError> {
    let site = site_for(&state, &user, &key).await?;
    let store = state.store.clone();
    let id = site.id;
    let list = blocking(move || store.campaigns(Some(id)).map_err(WebError::internal)).await?;
    let body = html! {
        div.site-head { h1 { (site.name) } span.muted { (site.domain) } }
        (site_nav(&site, "Campaigns"))
        section.manage-campaigns {
            h2 { "Campaigns" }
            @if list.is_empty() { p { "No campaigns yet." } } @else {
                table.campaigns {
                    thead { tr { th { "campaign" } th { "sent" } th.num { "delivered" } th { "cost" } th {} } }
                    tbody {
                        @for c in &list {
                            tr {
                                td { a href={"/campaigns/" (c.id)} { (c.name) } }
                                td { (time(c.sent_ms)) }
                                td.num { (c.delivered.map(|d| d.to_string()).unwrap_or_else(|| "—".into())) }
                                td { (c.cost.as_ref().map(|(m, cur)| { let m = Money::new(*m, cur); format!("{} {}", m.amount, m.currency) }).unwrap_or_else(|| "—".into())) }
                                td { a href={"/campaigns/" (c.id) "/manage"} { "Manage" } }
                            }
                        }
                    }
                }
            }
            @if user.is_admin() {
                h3 { "Create a campaign" }
                form.add-campaign method="post" action={"/sites/" (site.key) "/campaigns"} {
                    (csrf_field(&user))
                    div.row {
                        label { "Name" input type="text" name="name" required maxlength="200"; }
                        button type="submit" { "Create campaign" }
                    }
                }
            }
        }
    };
    Ok(layout::render(layout::page(
        &format!("Campaigns · {}", site.name),
        Some(&user),
        body,
    )))
}

#[derive(Deserialize)]
pub struct NewCampaign {
    #[serde(default)]
    name: String,
}

/// `POST /sites/<key>/campaigns`: creates it and opens its management page.
pub async fn create(
    State(state): State<WebState>,
    Path(key): Path<String>,
    f: CsrfForm<NewCampaign>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let site = site_for(&state, &f.user, &key).await?;
    let name = checked_name("a campaign name", &f.form.name, 200)?;
    let (store, now) = (state.store.clone(), state.clock.now_ms());
    let c = blocking(move || store.add_campaign(site.id, &name, now).map_err(store_err)).await?;
    Ok(Redirect::to(&format!("/campaigns/{}/manage", c.id)).into_response())
}

/// The campaign `id` and its site, if `user` may see them.
async fn campaign_for(
    state: &WebState,
    user: &CurrentUser,
    id: &str,
) -> Result<(Campaign, Site), WebError> {
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    let store = state.store.clone();
    let u = user.clone();
    blocking(move || {
        let c = store
            .campaign(id)
            .map_err(WebError::internal)?
            .ok_or(WebError::NotFound)?;
        let site = store
            .sites()
            .map_err(WebError::internal)?
            .into_iter()
            .find(|s| s.id.0 == c.site_id && u.can_view(s.id))
            .ok_or(WebError::NotFound)?;
        Ok((c, site))
    })
    .await
}

/// What a POST made that the page shows once: tagged HTML or an ad link.
enum Made {
    Tagged {
        html: String,
        links: usize,
        refused: Vec<String>,
    },
    AdLink {
        link: String,
        url: String,
    },
}

/// One recipient's events, oldest first.
fn by_recipient(rows: &[EmailRow]) -> BTreeMap<&str, Vec<&EmailRow>> {
    let mut m: BTreeMap<&str, Vec<&EmailRow>> = BTreeMap::new();
    for r in rows {
        m.entry(r.recipient.as_str()).or_default().push(r);
    }
    for v in m.values_mut() {
        v.sort_by_key(|r| r.ts_ms);
    }
    m
}

fn recipients_table(rows: &[EmailRow]) -> Markup {
    let m = by_recipient(rows);
    let shown = m.len().min(MAX_RECIPIENTS);
    html! {
        @if m.is_empty() {
            p { "No opens or clicks yet." }
        } @else {
            @if m.len() > MAX_RECIPIENTS {
                p.muted { "The first " (MAX_RECIPIENTS) " of " (m.len()) " recipients; all of them: " code { "pixeltrack campaign report --recipients" } "." }
            }
            table.recipients {
                thead { tr { th { "recipient" } th { "what" } th { "when" } th { "verdict" } th { "why" } } }
                tbody {
                    @for (recipient, events) in m.iter().take(shown) {
                        @for (i, e) in events.iter().enumerate() {
                            @let (confidence, why) = email_reason(&e.reason);
                            tr {
                                td { @if i == 0 { span.value { (recipient) } } }
                                td {
                                    @if e.name == "email_click" {
                                        "click " span.value.small { (e.link) }
                                    } @else { "open" }
                                }
                                td { (time(Some(e.ts_ms))) }
                                td {
                                    (e.verdict.replace('_', " "))
                                    @if confidence == Confidence::Probable { " " span.muted.small { "(probable)" } }
                                }
                                td { span.small { (why) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn page(
    state: &WebState,
    user: &CurrentUser,
    id: &str,
    made: Option<Made>,
) -> Result<Response, WebError> {
    let (c, site) = campaign_for(state, user, id).await?;
    let store = state.store.clone();
    let cid = c.id;
    let rows = blocking(move || store.campaign_events(cid).map_err(WebError::internal)).await?;
    let local = crate::tag::local_base(&state.public_url);
    let admin = user.is_admin();
    let action = |what: &str| format!("/campaigns/{}/{what}", c.id);
    let body = html! {
        div.site-head {
            h1 { (c.name) }
            span.muted { "campaign " (c.id) " · " a href={"/sites/" (site.key) "/campaigns"} { (site.name) } " · " a href={"/campaigns/" (c.id)} { "report" } }
        }
        (site_nav(&site, ""))
        @if let Some(m) = &made {
            div.secret {
                @match m {
                    Made::Tagged { html, links, refused } => {
                        p { "Tagged: the open pixel and " (links) " signed click links. Copy it into your sending tool:" }
                        textarea.tagged readonly rows="12" { (html) }
                        @for r in refused {
                            p.error { "Left untracked (not safe to redirect to): " span.value { (r) } }
                        }
                    }
                    Made::AdLink { link, url } => {
                        p { "Ad link to " span.value { (url) } ":" }
                        pre { code.ad-link { (link) } }
                    }
                }
            }
        }
        section.stats {
            p { "Sent: " strong { (time(c.sent_ms)) } " · delivered: " strong { (c.delivered.map(|d| d.to_string()).unwrap_or_else(|| "—".into())) }
                " · cost: " strong { (c.cost.as_ref().map(|(m, cur)| { let m = Money::new(*m, cur); format!("{} {}", m.amount, m.currency) }).unwrap_or_else(|| "—".into())) } }
        }
        @if admin {
            section.manage-campaign {
                h2 { "Mark sent" }
                form.sent method="post" action=(action("sent")) {
                    (csrf_field(user))
                    div.row {
                        label { "Delivered (emails)" input type="number" name="count" min="0" value=[c.delivered]; }
                        label { "Sent at (UTC, empty: now)" input type="datetime-local" name="at"; }
                        button type="submit" { "Mark sent" }
                    }
                }
                h2 { "Cost" }
                form.cost method="post" action=(action("cost")) {
                    (csrf_field(user))
                    div.row {
                        label { "Amount (empty: clear)" input type="text" name="amount" inputmode="decimal" placeholder="250.00"; }
                        label { "Currency" input type="text" name="currency" maxlength="3" placeholder="EUR"; }
                        button type="submit" { "Record cost" }
                    }
                }
                h2 { "Tag an email" }
                @if let Some(why) = &local {
                    p.error { "Warning: " (why) ". Set " code { "public_url" } " (e.g. " code { "https://t.example.com" } ") in pixeltrack.toml or " code { "PIXELTRACK_PUBLIC_URL" } " and restart; tagged here, the email tracks nothing once sent." }
                }
                form.tag method="post" action=(action("tag")) {
                    (csrf_field(user))
                    div.row {
                        label { "Recipient id (from your sending tool; never visible in the links)" input type="text" name="recipient" maxlength="256"; }
                        label { "or a merge tag for all recipients" input type="text" name="merge_tag" placeholder="{{subscriber_id}}" maxlength="256"; }
                    }
                    label.wide { "Email HTML" textarea name="html" rows="8" required {} }
                    button type="submit" { "Tag email" }
                }
                h2 { "Ad link" }
                form.ad method="post" action=(action("links")) {
                    (csrf_field(user))
                    div.row {
                        label { "Landing page URL" input type="url" name="url" required placeholder="https://shop.example/landing"; }
                        label { "Ad (optional)" input type="text" name="ad" maxlength="64"; }
                        label { "Placement (optional)" input type="text" name="placement" maxlength="64"; }
                        button type="submit" { "Create ad link" }
                    }
                }
            }
        }
        section.recipients {
            h2 { "Recipients: each open and click, its verdict and why" }
            (recipients_table(&rows))
        }
    };
    Ok(layout::render(layout::page(
        &format!("Manage · {}", c.name),
        Some(user),
        body,
    )))
}

/// `GET /campaigns/<id>/manage`.
pub async fn show(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    page(&state, &user, &id, None).await
}

fn back(id: i64) -> Response {
    Redirect::to(&format!("/campaigns/{id}/manage")).into_response()
}

#[derive(Deserialize)]
pub struct Sent {
    #[serde(default)]
    count: String,
    #[serde(default)]
    at: String,
}

/// `POST /campaigns/<id>/sent`.
pub async fn sent(
    State(state): State<WebState>,
    Path(id): Path<String>,
    f: CsrfForm<Sent>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let (c, _) = campaign_for(&state, &f.user, &id).await?;
    let count = match f.form.count.trim() {
        "" => None,
        n => Some(n.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            WebError::BadRequest("delivered is a whole number, 0 or more".into())
        })?),
    };
    let at = match f.form.at.trim() {
        "" => state.clock.now_ms(),
        t => chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M")
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S"))
            .map(|t| t.and_utc().timestamp_millis())
            .map_err(|_| {
                WebError::BadRequest(
                    "sent at is a date and time such as 2026-11-29T10:00, or empty for now".into(),
                )
            })?,
    };
    let store = state.store.clone();
    blocking(move || {
        store
            .set_campaign_sent(c.id, count, Some(at))
            .map_err(store_err)
    })
    .await?;
    Ok(back(c.id))
}

#[derive(Deserialize)]
pub struct Cost {
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
}

/// `POST /campaigns/<id>/cost`.
pub async fn cost(
    State(state): State<WebState>,
    Path(id): Path<String>,
    f: CsrfForm<Cost>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let (c, _) = campaign_for(&state, &f.user, &id).await?;
    let (amount, currency) = (f.form.amount.trim(), f.form.currency.trim());
    let cost = match (amount.is_empty(), currency.is_empty()) {
        (true, true) => None,
        (false, false) => {
            let (code, exp) = money::currency(currency).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "{:?} is not an ISO 4217 currency such as EUR or USD",
                    currency.chars().take(20).collect::<String>()
                ))
            })?;
            let minor = money::parse_amount(amount, exp).map_err(|e| {
                WebError::BadRequest(format!(
                    "amount {:?}: {e}",
                    amount.chars().take(40).collect::<String>()
                ))
            })?;
            Some((minor, code))
        }
        _ => {
            return Err(WebError::BadRequest(
                "give both an amount and a currency (or neither, to clear the cost)".into(),
            ))
        }
    };
    let store = state.store.clone();
    blocking(move || store.set_campaign_cost(c.id, cost).map_err(store_err)).await?;
    Ok(back(c.id))
}

#[derive(Deserialize)]
pub struct TagForm {
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    merge_tag: String,
    #[serde(default)]
    html: String,
}

/// Runs `f` off the async threads with the signing keys in force now and the public
/// URL links point at: what tagging an email and making an ad link share.
async fn with_keyring<T: Send + 'static>(
    state: &WebState,
    f: impl FnOnce(&crate::token::Keyring, &str) -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    let (store, now, base) = (
        state.store.clone(),
        state.clock.now_ms(),
        state.public_url.clone(),
    );
    blocking(move || {
        let ring =
            crate::token::Keyring::from_masters(store.token_keys(now).map_err(WebError::internal)?);
        f(&ring, &base)
    })
    .await
}

/// `POST /campaigns/<id>/tag`: the page again, with the tagged HTML to copy.
pub async fn tag(
    State(state): State<WebState>,
    Path(id): Path<String>,
    f: CsrfForm<TagForm>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let (c, _) = campaign_for(&state, &f.user, &id).await?;
    let t = f.form;
    if t.html.trim().is_empty() {
        return Err(WebError::BadRequest("paste the email's HTML to tag".into()));
    }
    if t.html.len() > MAX_HTML_BYTES {
        return Err(WebError::BadRequest(
            "the email HTML is larger than 2 MiB".into(),
        ));
    }
    let made = with_keyring(&state, move |ring, base| {
        let tagger = Tagger {
            keyring: ring,
            base,
            site_id: c.site_id,
            campaign_id: c.id,
        };
        let recipient = match (t.recipient.trim(), t.merge_tag.trim()) {
            (r, "") if !r.is_empty() => Recipient::Id(r),
            ("", m) if !m.is_empty() => Recipient::MergeTag(m),
            _ => {
                return Err(WebError::BadRequest(
                    "give a recipient id or a merge tag (one of them)".into(),
                ))
            }
        };
        let out = tagger
            .tag(&t.html, recipient)
            .map_err(|e| WebError::BadRequest(e.to_string()))?;
        Ok(Made::Tagged {
            html: out.html,
            links: out.links,
            refused: out.refused,
        })
    })
    .await?;
    page(&state, &f.user, &id, Some(made)).await
}

#[derive(Deserialize)]
pub struct AdLinkForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    ad: String,
    #[serde(default)]
    placement: String,
}

/// `POST /campaigns/<id>/links`: the page again, with the signed ad link.
pub async fn ad_link(
    State(state): State<WebState>,
    Path(id): Path<String>,
    f: CsrfForm<AdLinkForm>,
) -> Result<Response, WebError> {
    f.user.require_admin()?;
    let (c, _) = campaign_for(&state, &f.user, &id).await?;
    let a = f.form;
    let made = with_keyring(&state, move |ring, base| {
        let (link, url) = crate::tag::ad_link(
            ring,
            base,
            c.site_id,
            c.id,
            Some(&a.ad),
            Some(&a.placement),
            a.url.trim(),
        )
        .map_err(|e| WebError::BadRequest(e.to_string()))?;
        Ok(Made::AdLink { link, url })
    })
    .await?;
    page(&state, &f.user, &id, Some(made)).await
}
