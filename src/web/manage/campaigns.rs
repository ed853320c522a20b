//! Campaigns from the dashboard: a site's list and a form to create one; a campaign's
//! management page to mark it sent (count, time), record its cost, tag an email (paste
//! the HTML, get the tagged HTML — `tag::Tagger`, as `pixeltrack email tag` and the
//! API tag — or, for a list of recipients uploaded as CSV or pasted, a zip of what
//! `email tag --recipients` writes: `Tagger::tag_batch`), make ad links
//! (`tag::ad_link`), and read each recipient's opens and clicks with the verdict and
//! the reason in words (`model::email_reason`).
//!
//! The batch form is the dashboard's one `multipart/form-data` upload, bounded three
//! ways, each answered with a 413 that names the bound: the request body
//! ([`MAX_BATCH_UPLOAD`]), the recipients ([`MAX_BATCH_RECIPIENTS`], and 1 MiB of
//! list), and the tagged email in all ([`MAX_BATCH_EMAIL_BYTES`], recipients × the
//! email's size: the zip is built in memory).

use std::collections::BTreeMap;

use std::io::Write;

use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
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
use crate::web::{check_csrf, CsrfForm, CurrentUser, WebError, WebState};

/// Recipients listed on the page at most (the CLI and API have them all).
const MAX_RECIPIENTS: usize = 500;
/// Pasted email HTML is refused past this size.
const MAX_HTML_BYTES: usize = 2 << 20;
/// Recipients in one batch from the dashboard at most (the CLI has no bound).
pub const MAX_BATCH_RECIPIENTS: usize = 1_000;
/// The recipients of a batch (the CSV file and the pasted list together) at most.
const MAX_RECIPIENT_BYTES: usize = 1 << 20;
/// Recipients × the email's size at most: the zip is built in memory.
pub const MAX_BATCH_EMAIL_BYTES: usize = 64 << 20;
/// The batch form's request body at most: the HTML, the recipients, the form's parts.
pub const MAX_BATCH_UPLOAD: usize = MAX_HTML_BYTES + MAX_RECIPIENT_BYTES + (64 << 10);

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
                h3 { "For a list of recipients, as a zip" }
                p.muted.small {
                    "One tagged HTML file per recipient and " code { "index.csv" } ", as " code { "pixeltrack email tag --recipients" } " writes them. "
                    "A CSV file (its " code { "recipient" } ", " code { "id" } " or " code { "email" } " column, or the first) and/or one id per line: at most "
                    (MAX_BATCH_RECIPIENTS) " recipients and 1 MiB of list, an email of at most 2 MiB, and at most 64 MiB of tagged email in all (recipients × the email's size)."
                }
                form.tag-batch method="post" action=(action("tag-batch")) enctype="multipart/form-data" {
                    (csrf_field(user))
                    div.row {
                        label { "Recipients (CSV file)" input type="file" name="recipients_file" accept=".csv,text/csv,text/plain"; }
                        label { "and/or one recipient id per line" textarea name="recipients" rows="4" {} }
                    }
                    label.wide { "Email HTML" textarea name="html" rows="8" required {} }
                    button type="submit" { "Download the zip" }
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

/// The batch form's fields, as sent.
#[derive(Default)]
struct BatchUpload {
    csrf: String,
    html: Vec<u8>,
    file: Vec<u8>,
    pasted: Vec<u8>,
}

fn upload_err(e: MultipartError) -> WebError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        WebError::TooLarge(format!(
            "the upload is larger than {} MiB: the email HTML may be 2 MiB, the recipients 1 MiB",
            MAX_BATCH_UPLOAD >> 20
        ))
    } else {
        WebError::BadRequest(format!("the upload could not be read: {}", e.body_text()))
    }
}

/// Reads every field (the body is bounded by [`MAX_BATCH_UPLOAD`]); unknown ones are
/// skipped.
async fn read_upload(
    upload: Result<Multipart, MultipartRejection>,
) -> Result<BatchUpload, WebError> {
    let mut m = upload.map_err(|_| {
        WebError::BadRequest(
            "send the batch form as multipart/form-data, as the campaign page does".into(),
        )
    })?;
    let mut u = BatchUpload::default();
    while let Some(field) = m.next_field().await.map_err(upload_err)? {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(upload_err)?;
        match name.as_str() {
            "csrf" => u.csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "html" => u.html = bytes.to_vec(),
            "recipients_file" => u.file = bytes.to_vec(),
            "recipients" => u.pasted = bytes.to_vec(),
            _ => {}
        }
    }
    Ok(u)
}

/// The recipients of a batch: the CSV file's (`tag::read_recipients`, the CLI's
/// rules), then the pasted ones, one per line.
fn batch_recipients(file: &[u8], pasted: &[u8]) -> Result<Vec<String>, WebError> {
    if file.len() + pasted.len() > MAX_RECIPIENT_BYTES {
        return Err(WebError::TooLarge(
            "the recipients are more than 1 MiB: split the list, or use pixeltrack email tag --recipients".into(),
        ));
    }
    let mut list = crate::tag::read_recipients(file).map_err(|e| {
        WebError::BadRequest(format!(
            "the recipients file is not a CSV of UTF-8 text ({e}): save it as CSV (UTF-8)"
        ))
    })?;
    let pasted = std::str::from_utf8(pasted)
        .map_err(|_| WebError::BadRequest("the pasted recipients are not UTF-8 text".into()))?;
    list.extend(
        pasted
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned),
    );
    if list.is_empty() {
        return Err(WebError::BadRequest(
            "no recipients: choose a CSV file (a recipient, id or email column, or the first column) or paste one id per line".into(),
        ));
    }
    if list.len() > MAX_BATCH_RECIPIENTS {
        return Err(WebError::TooLarge(format!(
            "{} recipients: at most {MAX_BATCH_RECIPIENTS} in one batch from the dashboard; split the list, or use pixeltrack email tag --recipients FILE --out-dir DIR",
            list.len()
        )));
    }
    Ok(list)
}

/// The files of a batch as one zip (deflated), each dated `now`.
struct Zip {
    w: zip::ZipWriter<std::io::Cursor<Vec<u8>>>,
    options: zip::write::SimpleFileOptions,
}

impl Zip {
    fn new(now: Millis) -> Zip {
        use chrono::{Datelike, Timelike};
        let t = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
        let modified = zip::DateTime::from_date_and_time(
            u16::try_from(t.year()).unwrap_or(1980),
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
        )
        .unwrap_or_default();
        Zip {
            w: zip::ZipWriter::new(std::io::Cursor::new(Vec::new())),
            options: zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .last_modified_time(modified),
        }
    }

    fn add(&mut self, name: &str, body: &[u8]) -> std::io::Result<()> {
        self.w.start_file(name, self.options)?;
        self.w.write_all(body)
    }

    fn finish(self) -> std::io::Result<Vec<u8>> {
        Ok(self.w.finish()?.into_inner())
    }
}

/// `POST /campaigns/<id>/tag-batch` (multipart): a zip of the email tagged for each
/// recipient, plus `index.csv` — what `pixeltrack email tag --recipients FILE --out-dir
/// DIR` writes. As on the single-email form, a local `public_url` is warned about on
/// the page, not refused.
pub async fn tag_batch(
    State(state): State<WebState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    upload: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    let u = read_upload(upload).await?;
    check_csrf(&state, &user, &u.csrf, &headers)?;
    user.require_admin()?;
    let (c, _) = campaign_for(&state, &user, &id).await?;
    let html = String::from_utf8(u.html)
        .map_err(|_| WebError::BadRequest("the email HTML is not UTF-8 text".into()))?;
    if html.trim().is_empty() {
        return Err(WebError::BadRequest("paste the email's HTML to tag".into()));
    }
    if html.len() > MAX_HTML_BYTES {
        return Err(WebError::TooLarge(
            "the email HTML is larger than 2 MiB".into(),
        ));
    }
    let list = batch_recipients(&u.file, &u.pasted)?;
    if list.len().saturating_mul(html.len()) > MAX_BATCH_EMAIL_BYTES {
        return Err(WebError::TooLarge(format!(
            "{} recipients × {} KiB of email is more than 64 MiB: split the list, or use pixeltrack email tag --recipients FILE --out-dir DIR",
            list.len(),
            html.len().div_ceil(1024)
        )));
    }
    let now = state.clock.now_ms();
    let zip = with_keyring(&state, move |ring, base| {
        let tagger = Tagger {
            keyring: ring,
            base,
            site_id: c.site_id,
            campaign_id: c.id,
        };
        let mut zip = Zip::new(now);
        tagger
            .tag_batch(&html, &list, |name, body| zip.add(name, body))
            .map_err(|e| match e {
                crate::tag::BatchError::Write(e) => WebError::internal(e),
                e => WebError::BadRequest(e.to_string()),
            })?;
        zip.finish().map_err(WebError::internal)
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"campaign-{}-emails.zip\"", c.id),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        zip,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_batch_zip_reads_back_file_by_file_deflated_and_dated() {
        // 2026-11-29 10:30:12 UTC.
        let mut z = Zip::new(1_795_948_212_000);
        let big = "<p>same line</p>\n".repeat(10_000);
        let files = [
            ("00001-a.html", big.as_str()),
            ("00002-b.html", ""),
            ("index.csv", "recipient,file\n"),
        ];
        for (name, body) in files {
            z.add(name, body.as_bytes()).unwrap();
        }
        let bytes = z.finish().unwrap();
        assert!(
            bytes.len() < big.len() / 20,
            "deflated: {} bytes",
            bytes.len()
        );
        let mut back = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(back.len(), 3);
        for (i, (name, body)) in files.into_iter().enumerate() {
            let mut f = back.by_index(i).unwrap();
            assert_eq!(f.name(), name);
            assert_eq!(f.compression(), zip::CompressionMethod::Deflated);
            let t = f.last_modified().unwrap();
            assert_eq!(
                (t.year(), t.month(), t.day(), t.hour(), t.minute()),
                (2026, 11, 29, 10, 30)
            );
            let mut s = String::new();
            f.read_to_string(&mut s).unwrap();
            assert_eq!(s, body, "{name}");
        }
    }

    #[test]
    fn recipients_are_the_files_then_the_pasted_lines_within_bounds() {
        let list = batch_recipients(b"email\na@x\n", b"b@x\r\n\n  c@x \n").unwrap();
        assert_eq!(list, ["a@x", "b@x", "c@x"]);
        for (file, pasted, status) in [
            (&b""[..], &b"\n \n"[..], 400),
            (&b"id\n\xff\n"[..], &b""[..], 400),
            (&b""[..], &b"\xff"[..], 400),
        ] {
            let e = batch_recipients(file, pasted).unwrap_err();
            assert_eq!(e.into_response().status().as_u16(), status);
        }
        let many = "r\n".repeat(MAX_BATCH_RECIPIENTS + 1);
        let e = batch_recipients(b"", many.as_bytes()).unwrap_err();
        assert!(matches!(e, WebError::TooLarge(_)), "{e}");
        assert!(batch_recipients(b"", "r\n".repeat(MAX_BATCH_RECIPIENTS).as_bytes()).is_ok());
    }
}
