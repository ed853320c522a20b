//! `pixeltrack demo`: a demo site with a month of realistic traffic and the month before,
//! a little quieter, to compare with (`--no-previous` leaves it out), generated as raw hits and pushed through
//! the real enrichment, sessions and writer — so the demo shows exactly what real
//! traffic would, and every feature has something to show: the JS tracker's scroll
//! depth, engagement time, screen sizes, outbound links, downloads and event props;
//! visitors who come back the same day; an ad campaign with impressions, clicks and
//! cost; an email campaign with opens of every kind (people, Apple's prefetch, Gmail's
//! and Yahoo's proxies, security scanners) and clicks (people, scanner bursts, link
//! checkers, clicks without an open); conversions, most of them credited to a click.
//! Salts are random per day and never stored.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use anyhow::Context;

use super::args::Ctx;
use crate::clock::{day_of, Clock, Millis, DAY_MS};
use crate::config::Runtime;
use crate::enrich::email::{Burst, Signals};
use crate::enrich::{EmailContext, Enricher, Outcome, Salt};
use crate::ingest::EventWriter;
use crate::metrics::Metrics;
use crate::model::{AdFields, HitParams, RawHit, Site, SiteKey};
use crate::store::{CampaignStore, SiteStore, SqliteStore};

/// What a generated hit is: a page's hit, an ad click (its ad and minted click id), or
/// an email open or click (its context, as the collector would gather it).
enum Kind {
    Web,
    Ad(AdFields, String),
    Email(EmailContext),
}

/// The screen width a browser of this user agent reports (CSS pixels).
fn screen_width(ua: &str, rng: &mut Rng) -> i64 {
    if ua.contains("iPhone") {
        [390, 393, 430][rng.below(3) as usize]
    } else if ua.contains("Android") {
        [412, 360, 384][rng.below(3) as usize]
    } else if ua.contains("iPad") {
        [820, 768, 1024][rng.below(3) as usize]
    } else if ua.contains("Macintosh") {
        [1440, 1512, 1728][rng.below(3) as usize]
    } else {
        [1920, 1366, 1536, 2560][rng.below(4) as usize]
    }
}

/// The mail apps and proxies that fetch an email's images, and the machines that do.
const APPLE_MPP: &str = "Mozilla/5.0";
const APPLE_MAIL: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";
const GMAIL_PROXY: &str =
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
const YAHOO_PROXY: &str =
    "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html";
const OUTLOOK: &str = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)";
const SCANNER: &str = "Barracuda Sentinel (EE)";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const MOBILE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1";

pub const DEMO_DOMAIN: &str = "demo.pixeltrack.example";

/// `pixeltrack demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Days of traffic, ending today.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Average visitors per day.
    #[arg(long, default_value_t = 400)]
    visitors_per_day: u32,
    /// Leave out the period of the same length before `--days` (filled by default, a
    /// fifth quieter, so the dashboard's comparisons and the chart's dashed line have
    /// something to show).
    #[arg(long, overrides_with = "previous")]
    no_previous: bool,
    /// The default: kept so scripts written when the period before was opt-in still run.
    #[arg(long, hide = true, overrides_with = "no_previous")]
    previous: bool,
}

impl DemoArgs {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let (rt, store) = ctx.open()?;
        let (site, events) = run(
            &store,
            &rt,
            self.days,
            self.visitors_per_day,
            !self.no_previous,
            &ctx.clock,
        )?;
        if ctx.json {
            println!(
                "{}",
                serde_json::json!({"site": site.domain, "key": site.key.as_str(), "events": events})
            );
        } else {
            println!(
                "Demo site {} (key {}) has {events} events.",
                site.domain, site.key
            );
            println!("See it with: pixeltrack report --site {}", site.key);
        }
        Ok(())
    }
}

/// splitmix64: a small, good-enough generator for fake traffic (not for secrets).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a, T>(&mut self, weighted: &'a [(T, u32)]) -> &'a T {
        let total: u64 = weighted.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut r = self.below(total);
        for (item, w) in weighted {
            if r < u64::from(*w) {
                return item;
            }
            r -= u64::from(*w);
        }
        &weighted[0].0
    }
}

const UAS: &[(&str, u32)] = &[
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 34),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15", 14),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", 18),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36", 14),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", 7),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80", 8),
    ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", 5),
];

const BOTS: &[(&str, u32)] = &[
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        5,
    ),
    (
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        2,
    ),
    ("curl/8.5.0", 1),
];

/// (referrer, landing query)
const SOURCES: &[((&str, &str), u32)] = &[
    (("", ""), 30),
    (("https://www.google.com/", ""), 28),
    (("https://www.bing.com/", ""), 4),
    (("https://duckduckgo.com/", ""), 4),
    (("https://news.ycombinator.com/item?id=42", ""), 6),
    (("https://www.reddit.com/r/selfhosted/", ""), 5),
    (("https://t.co/x1", ""), 3),
    (("https://www.linkedin.com/feed/", ""), 3),
    (("https://blog.example.org/best-analytics", ""), 4),
    (
        (
            "",
            "?utm_source=newsletter&utm_medium=email&utm_campaign=november",
        ),
        8,
    ),
    (
        (
            "https://www.facebook.com/",
            "?utm_source=facebook&utm_medium=cpc&utm_campaign=launch",
        ),
        5,
    ),
];

const PAGES: &[(&str, u32)] = &[
    ("/", 30),
    ("/pricing", 14),
    ("/features", 12),
    ("/docs", 10),
    ("/docs/getting-started", 8),
    ("/blog", 7),
    ("/blog/cookieless-analytics", 6),
    ("/about", 4),
    ("/contact", 3),
    ("/signup", 6),
];

/// Relative traffic per UTC hour: quiet nights, busy afternoons.
const HOURLY: [u32; 24] = [
    2, 1, 1, 1, 1, 2, 3, 5, 7, 9, 10, 10, 10, 11, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2,
];

/// A weekend day's visitors against a weekday's.
const WEEKEND: f64 = 0.65;

fn is_weekend(day: i64) -> bool {
    // Day 0 (1970-01-01) was a Thursday.
    matches!((day + 4).rem_euclid(7), 0 | 6)
}

/// The visitors the demo sends on a shown day from its start to `until_ms`, relative to
/// a whole weekday (1.0), before the day's random spread of ±20 %: for tests that compare
/// a partial day with the day before.
pub fn expected_traffic(day: i64, until_ms: Millis) -> f64 {
    let total: u32 = HOURLY.iter().sum();
    let into = (until_ms - day * DAY_MS).clamp(0, DAY_MS) as f64 / 3_600_000.0;
    let share: f64 = HOURLY
        .iter()
        .enumerate()
        .map(|(h, w)| f64::from(*w) * (into - h as f64).clamp(0.0, 1.0))
        .sum::<f64>()
        / f64::from(total);
    share * if is_weekend(day) { WEEKEND } else { 1.0 }
}

/// Takes the SQLite store itself: the demo writes its events through the real writer
/// (its `writer()`) and checkpoints once a day of data.
pub fn run(
    store: &SqliteStore,
    rt: &Runtime,
    days: u32,
    visitors_per_day: u32,
    previous: bool,
    clock: &Clock,
) -> anyhow::Result<(Site, u64)> {
    let now = clock.now_ms();
    let site = match store.sites()?.into_iter().find(|s| s.domain == DEMO_DOMAIN) {
        Some(_) => anyhow::bail!(
            "the demo site {DEMO_DOMAIN} exists already: remove it first with 'pixeltrack site remove {DEMO_DOMAIN}'"
        ),
        None => store.add_site(&SiteKey::generate(), DEMO_DOMAIN, "Demo site", now)?,
    };
    let cfg = &rt.config;
    // With a geolocation database configured, the demo's visitors get regions and
    // cities as real ones would.
    let enricher =
        Enricher::new(cfg.enrich.ua_cache_size, cfg.limits.ua_parse_bytes, false).with_geo(
            crate::enrich::geo::Geo::open(&cfg.geo.mmdb, &cfg.geo.asn_mmdb)?,
        );
    let timeout = i64::from(cfg.enrich.session_timeout_minutes) * 60_000;
    let mut writer = EventWriter::new(
        store.writer(cfg.ingest.synchronous)?.beside_server(),
        timeout,
        Arc::new(Metrics::default()),
    );
    // An ad campaign with a cost, two goals: so the dashboard's ads, conversions and goals
    // panels have something to show.
    let campaign = store.add_campaign(
        site.id,
        "Spring sale (demo ads)",
        now - i64::from(days.max(1)) * DAY_MS,
    )?;
    store.set_campaign_cost(campaign.id, Some((30_000, "EUR")))?;
    for (name, pattern) in [("Signups", "event:signup"), ("Read the docs", "/docs*")] {
        let pattern = crate::store::Pattern::parse(pattern).context("demo goal")?;
        store.add_goal(site.id, name, &pattern, now)?;
    }
    let ad_of = |ad: &str, link: &str| AdFields {
        campaign_id: campaign.id,
        ad: ad.to_owned(),
        placement: "news-sidebar".to_owned(),
        link: link.to_owned(),
    };
    let mut seed = [0u8; 8];
    crate::secret::fill_random(&mut seed);
    let mut rng = Rng(u64::from_le_bytes(seed));

    let today = day_of(now);
    let shown = i64::from(days.max(1));
    // The period before the one asked for, a fifth quieter, so comparisons show growth.
    let first_shown = today - shown + 1;
    let first = if previous {
        first_shown - shown
    } else {
        first_shown
    };
    let bar = indicatif::ProgressBar::new((today - first + 1) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} days")
            .context("progress bar template")?,
    );
    bar.set_message("generating traffic");
    let mut total = 0u64;
    // One random salt per day, as the server keeps them (a visit that runs past midnight
    // meets the next day's salt, like real traffic); none is stored.
    let salts: std::collections::HashMap<i64, Salt> =
        (first..=today + 1).map(|d| (d, Salt::random(d))).collect();
    // The email campaign: sent a few days ago (at most the range back), its opens and
    // clicks and the visits and conversions its clicks bring, by day.
    let email = store.add_campaign(
        site.id,
        "November newsletter (demo email)",
        now - shown * DAY_MS,
    )?;
    let sent_ms = (today - (shown - 1).min(4)) * DAY_MS + 8 * 3_600_000;
    let recipients = visitors_per_day.clamp(20, 600);
    store.set_campaign_sent(email.id, Some(i64::from(recipients)), Some(sent_ms))?;
    let mut by_day: std::collections::HashMap<i64, Vec<(RawHit, Kind)>> =
        std::collections::HashMap::new();
    for (h, k) in email_traffic(&site, email.id, sent_ms, recipients, &mut rng) {
        if h.received_ms <= now {
            by_day
                .entry(day_of(h.received_ms))
                .or_default()
                .push((h, k));
        }
    }
    for day in first..=today {
        let quieter = if day < first_shown { 0.8 } else { 1.0 };
        let weekend = if is_weekend(day) { WEEKEND } else { 1.0 };
        let base = f64::from(visitors_per_day) * weekend * quieter;
        let visitors = (base * (0.8 + rng.below(40) as f64 / 100.0)) as u64;
        let mut hits: Vec<(RawHit, Kind)> = by_day.remove(&day).unwrap_or_default();
        for _ in 0..visitors {
            let hour = *rng.pick(
                &HOURLY
                    .iter()
                    .enumerate()
                    .map(|(h, w)| (h as i64, *w))
                    .collect::<Vec<_>>(),
            );
            let mut t: Millis = day * DAY_MS + hour * 3_600_000 + rng.below(3_600_000) as i64;
            let ip = IpAddr::V4(Ipv4Addr::from(rng.next() as u32));
            let bot = rng.chance(0.06);
            let ua = if bot { *rng.pick(BOTS) } else { *rng.pick(UAS) };
            let (referrer, mut query) = *rng.pick(SOURCES);
            // Some visitors come through the campaign's ads: impressions elsewhere, then
            // an ad click whose click id the landing page carries.
            let ad = ["banner", "video"][rng.below(2) as usize];
            let landing: String;
            if rng.chance(0.1) {
                for _ in 0..(5 + rng.below(10)) {
                    let publisher = IpAddr::V4(Ipv4Addr::from(rng.next() as u32));
                    let reader = rng.pick::<&str>(UAS);
                    let mut h = hit(
                        t - 60_000,
                        publisher,
                        reader,
                        &site,
                        "/",
                        "",
                        "",
                        Some("impression"),
                    );
                    h.params.campaign = Some(campaign.id.to_string());
                    h.params.ad = Some(ad.to_owned());
                    h.params.placement = Some("news-sidebar".into());
                    h.params.url = Some("https://news.example/article".into());
                    hits.push((h, Kind::Web));
                }
            }
            let from_ad = !bot && rng.chance(0.05);
            if from_ad {
                let clid = crate::token::new_click_id();
                let link = format!("https://{}/pricing", site.domain);
                let click = hit(
                    t - 2_000,
                    ip,
                    ua,
                    &site,
                    "/pricing",
                    "",
                    "https://news.example/article",
                    Some(crate::enrich::AD_CLICK),
                );
                hits.push((click, Kind::Ad(ad_of(ad, &link), clid.clone())));
                landing =
                    format!("?utm_source=news&utm_medium=cpc&utm_campaign=spring&ptclid={clid}");
                query = &landing;
            }
            // Most visitors run the JS tracker (screen width, scroll, engagement,
            // outbound links, downloads); the rest are counted by the pixel alone.
            let js = !bot && rng.chance(0.85);
            let width = screen_width(ua, &mut rng);
            // Some come back later the same day: one visitor, two visits.
            let visits = if !bot && rng.chance(0.12) { 2 } else { 1 };
            for visit in 0..visits {
                if visit == 1 {
                    t += 3_600_000 + rng.below(4 * 3_600_000) as i64;
                    if day_of(t) != day {
                        break;
                    }
                }
                let mut pages = 1;
                while pages < 8 && rng.chance(0.45) {
                    pages += 1;
                }
                let mut page = if from_ad && visit == 0 {
                    "/pricing"
                } else {
                    *rng.pick(PAGES)
                };
                let wants = from_ad && visit == 0 && rng.chance(0.35);
                for i in 0..pages {
                    if t > now {
                        break;
                    }
                    let first_page = i == 0 && visit == 0;
                    let q = if first_page { query } else { "" };
                    let mut pv = hit(
                        t,
                        ip,
                        ua,
                        &site,
                        page,
                        q,
                        if first_page { referrer } else { "" },
                        None,
                    );
                    let dwell = 5_000 + rng.below(240_000) as i64;
                    if js {
                        pv.params.screen_width = Some(width);
                        hits.push((pv, Kind::Web));
                        engagement(&mut hits, &mut rng, (t, ip, ua), &site, page, dwell);
                        if page.starts_with("/docs") && rng.chance(0.12) {
                            let mut o =
                                hit(t + dwell / 2, ip, ua, &site, page, "", "", Some("outbound"));
                            o.params.props = vec![(
                                "url".into(),
                                [
                                    "https://github.com/example/pixeltrack",
                                    "https://docs.rs/pixeltrack",
                                ][rng.below(2) as usize]
                                    .into(),
                            )];
                            hits.push((o, Kind::Web));
                        }
                        if page == "/docs/getting-started" && rng.chance(0.3) {
                            let mut d =
                                hit(t + dwell / 3, ip, ua, &site, page, "", "", Some("download"));
                            d.params.props = vec![(
                                "url".into(),
                                format!(
                                    "https://{}/downloads/pixeltrack-{}.tar.gz",
                                    site.domain,
                                    ["linux-x86_64", "linux-aarch64", "macos"]
                                        [rng.below(3) as usize]
                                ),
                            )];
                            hits.push((d, Kind::Web));
                        }
                    } else {
                        hits.push((pv, Kind::Web));
                    }
                    if page == "/signup" && rng.chance(0.3) {
                        let pays = rng.chance(0.3);
                        signup(&mut hits, &mut rng, (t, ip, ua), &site, pays);
                    }
                    t += dwell;
                    page = if wants && i + 2 == pages.max(2) {
                        "/signup"
                    } else {
                        *rng.pick(PAGES)
                    };
                }
                if wants && t <= now {
                    // Persuaded by the ad: signs up and pays (credited to the ad click).
                    signup(&mut hits, &mut rng, (t, ip, ua), &site, true);
                }
            }
        }
        hits.sort_by_key(|h| h.0.received_ms);
        let mut events = Vec::with_capacity(hits.len());
        for (h, ad) in hits {
            let Some(salt) = salts.get(&day_of(h.received_ms)) else {
                continue;
            };
            let outcome = match ad {
                Kind::Ad(fields, clid) => enricher.enrich_ad_click(&h, &site, salt, fields, &clid),
                Kind::Email(cx) => enricher.enrich_email(&h, &site, salt, cx),
                Kind::Web => enricher.enrich(&h, &site, salt),
            };
            if let Outcome::Keep(e) = outcome {
                events.push(*e);
            }
        }
        total += events.len() as u64;
        for chunk in events.chunks(5_000) {
            if !writer.write(chunk.to_vec(), Vec::new()) {
                anyhow::bail!("writing demo events failed (see the log above)");
            }
        }
        // The writer leaves checkpoints to the server's job; here, one a day of data.
        store.checkpoint()?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((site, total))
}

/// The tracker's engagement event for a page view: how far down it was read and for
/// how long it was visible.
fn engagement(
    hits: &mut Vec<(RawHit, Kind)>,
    rng: &mut Rng,
    (t, ip, ua): (Millis, IpAddr, &str),
    site: &Site,
    page: &str,
    dwell: Millis,
) {
    let mut e = hit(
        t + dwell - 1_000,
        ip,
        ua,
        site,
        page,
        "",
        "",
        Some("engagement"),
    );
    // Long pages are read less far; the docs and the blog are read longest.
    let deep = page.starts_with("/docs") || page.starts_with("/blog");
    let depth = if deep {
        55 + rng.below(46)
    } else {
        25 + rng.below(76)
    };
    e.params.scroll_pct = Some(depth as i64);
    e.params.engaged_ms = Some((dwell - 1_000).max(1_000) * (60 + rng.below(40) as i64) / 100);
    hits.push((e, Kind::Web));
}

/// A signup with its props, and (when `pays`) a conversion with a value and an order id.
fn signup(
    hits: &mut Vec<(RawHit, Kind)>,
    rng: &mut Rng,
    (t, ip, ua): (Millis, IpAddr, &str),
    site: &Site,
    pays: bool,
) {
    let mut s = hit(t + 20_000, ip, ua, site, "/signup", "", "", Some("signup"));
    let plan = if pays {
        ["pro", "team"][rng.below(2) as usize]
    } else {
        "free"
    };
    s.params.props = vec![
        ("plan".into(), plan.into()),
        ("seats".into(), (1 + rng.below(9)).to_string()),
    ];
    hits.push((s, Kind::Web));
    if pays {
        let mut h = hit(
            t + 25_000,
            ip,
            ua,
            site,
            "/signup",
            "",
            "",
            Some("conversion"),
        );
        h.params.value = Some(["49.00", "99.00", "19.90"][rng.below(3) as usize].into());
        h.params.currency = Some("EUR".into());
        h.params.id = Some(format!("DEMO-{}", rng.next() % 1_000_000_000));
        hits.push((h, Kind::Web));
    }
}

/// An email campaign's traffic as the collector would see it: for each recipient the
/// requests of their mail app or its proxy, of security scanners, and of the person —
/// opens, clicks, the landing visit a click brings and sometimes a purchase.
fn email_traffic(
    site: &Site,
    campaign: i64,
    sent_ms: Millis,
    recipients: u32,
    rng: &mut Rng,
) -> Vec<(RawHit, Kind)> {
    let mut out = Vec::new();
    let links = [
        format!("https://{}/pricing", site.domain),
        format!("https://{}/blog/cookieless-analytics", site.domain),
        format!("https://{}/docs/getting-started", site.domain),
    ];
    let landing = "?utm_source=newsletter&utm_medium=email&utm_campaign=november";
    let email =
        |t: Millis, ip: IpAddr, ua: &str, who: &str, link: Option<&str>, signals: Signals| {
            let mut h = hit(
                t,
                ip,
                ua,
                site,
                "/",
                "",
                "",
                Some(if link.is_some() {
                    "email_click"
                } else {
                    "email_open"
                }),
            );
            h.params.url = link.map(str::to_owned);
            h.referer_header = None;
            let cx = EmailContext {
                campaign_id: campaign,
                recipient: who.to_owned(),
                link: link.map(str::to_owned),
                signals: Signals {
                    secs_since_send: Some((t - sent_ms) / 1000),
                    ..signals
                },
            };
            (h, Kind::Email(cx))
        };
    let gateway = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 25));
    for i in 0..recipients {
        let who = format!("subscriber-{i:04}");
        let home = IpAddr::V4(Ipv4Addr::from(rng.next() as u32));
        let read_after = 600_000 + rng.below(30 * 3_600_000) as i64;
        // (the app or proxy that shows the images, whether it is the person reading)
        let (ua, person) = match rng.below(100) {
            0..=29 => {
                // Apple Mail Privacy Protection fetches on delivery; some then read it.
                out.push(email(
                    sent_ms + rng.below(900_000) as i64,
                    IpAddr::V4(Ipv4Addr::from(rng.next() as u32)),
                    APPLE_MPP,
                    &who,
                    None,
                    Signals::default(),
                ));
                (APPLE_MAIL, rng.chance(0.45))
            }
            30..=49 => (GMAIL_PROXY, true),
            50..=54 => (YAHOO_PROXY, true),
            55..=69 => (OUTLOOK, true),
            70..=77 => {
                // A security gateway scans on arrival: opens and clicks every link at once.
                let t = sent_ms + 2_000 + rng.below(20_000) as i64;
                out.push(email(t, gateway, SCANNER, &who, None, Signals::default()));
                for (k, l) in links.iter().enumerate() {
                    let burst = Burst {
                        machine_timing: true,
                        secs_after_first_request: 1,
                    };
                    out.push(email(
                        t + 300 + k as i64 * 40,
                        gateway,
                        DESKTOP,
                        &who,
                        Some(l),
                        Signals {
                            burst: Some(burst),
                            ..Signals::default()
                        },
                    ));
                }
                (OUTLOOK, rng.chance(0.5))
            }
            // More Outlook readers (Safe Links probes some of their clicks with a HEAD).
            78..=82 => (OUTLOOK, true),
            _ => ("", false),
        };
        if !person || ua.is_empty() {
            if ua.is_empty() && rng.chance(0.15) {
                // Read on arrival with images off: a click without an open, soon after
                // sending (uncertain until the landing page view confirms a person).
                let t = sent_ms + 15_000 + rng.below(40_000) as i64;
                let l = &links[rng.below(3) as usize];
                out.push(email(
                    t,
                    home,
                    MOBILE,
                    &who,
                    Some(l),
                    Signals {
                        secs_since_first_request: None,
                        ..Signals::default()
                    },
                ));
                out.push((
                    hit(t + 1_500, home, MOBILE, site, "/pricing", landing, "", None),
                    Kind::Web,
                ));
            }
            continue;
        }
        let open_at = sent_ms + read_after;
        out.push(email(
            open_at,
            home,
            ua,
            &who,
            None,
            Signals {
                secs_since_first_request: Some(read_after / 1000),
                ..Signals::default()
            },
        ));
        if rng.chance(0.3) {
            let browser = if ua == OUTLOOK { DESKTOP } else { MOBILE };
            let t = open_at + 20_000 + rng.below(600_000) as i64;
            let k = rng.below(3) as usize;
            let head_probe = ua == OUTLOOK && rng.chance(0.25);
            if head_probe {
                out.push(email(
                    t - 800,
                    IpAddr::V4(Ipv4Addr::new(40, 94, 0, 1 + (i % 200) as u8)),
                    DESKTOP,
                    &who,
                    Some(&links[k]),
                    Signals {
                        head_probe: true,
                        prior_open: true,
                        ..Signals::default()
                    },
                ));
            }
            out.push(email(
                t,
                home,
                browser,
                &who,
                Some(&links[k]),
                Signals {
                    prior_open: true,
                    secs_since_first_request: Some((t - sent_ms) / 1000),
                    ..Signals::default()
                },
            ));
            let path = links[k]
                .trim_start_matches(&format!("https://{}", site.domain))
                .to_owned();
            let mut v = hit(t + 1_500, home, browser, site, &path, landing, "", None);
            v.params.screen_width = Some(if browser == MOBILE { 390 } else { 1920 });
            out.push((v, Kind::Web));
            if rng.chance(0.35) {
                out.push((
                    hit(t + 60_000, home, browser, site, "/signup", "", "", None),
                    Kind::Web,
                ));
                signup(&mut out, rng, (t + 60_000, home, browser), site, true);
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn hit(
    t: Millis,
    ip: IpAddr,
    ua: &str,
    site: &Site,
    page: &str,
    query: &str,
    referrer: &str,
    event: Option<&str>,
) -> RawHit {
    RawHit {
        received_ms: t,
        ip,
        user_agent: ua.to_owned(),
        referer_header: None,
        gpc: false,
        dnt: false,
        cdn_country: None,
        params: HitParams {
            site: Some(site.key.to_string()),
            event: event.map(str::to_owned),
            url: Some(format!("https://{}{}{}", site.domain, page, query)),
            referrer: (!referrer.is_empty()).then(|| referrer.to_owned()),
            title: Some(format!("Demo {page}")),
            ..HitParams::default()
        },
    }
}
