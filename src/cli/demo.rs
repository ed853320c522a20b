//! `pixeltrack demo`: a demo site with a month of realistic traffic, generated as raw
//! hits and pushed through the real enrichment, sessions and writer — so the demo
//! shows exactly what real traffic would. Salts are random per day and never stored.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use anyhow::Context;

use super::args::Ctx;
use crate::clock::{day_of, Clock, Millis, DAY_MS};
use crate::config::Runtime;
use crate::enrich::{Enricher, Outcome, Salt};
use crate::ingest::EventWriter;
use crate::metrics::Metrics;
use crate::model::{AdFields, HitParams, RawHit, Site, SiteKey};
use crate::store::{CampaignStore, SiteStore, SqliteStore};

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
}

impl DemoArgs {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let (rt, store) = ctx.open()?;
        let (site, events) = run(&store, &rt, self.days, self.visitors_per_day, &ctx.clock)?;
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

/// Takes the SQLite store itself: the demo writes its events through the real writer
/// (its `writer()`) and checkpoints once a day of data.
pub fn run(
    store: &SqliteStore,
    rt: &Runtime,
    days: u32,
    visitors_per_day: u32,
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
    let first = today - i64::from(days.max(1)) + 1;
    let bar = indicatif::ProgressBar::new(u64::from(days.max(1)));
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
    for day in first..=today {
        let weekend = matches!((day + 4).rem_euclid(7), 0 | 6);
        let base = f64::from(visitors_per_day) * if weekend { 0.65 } else { 1.0 };
        let visitors = (base * (0.8 + rng.below(40) as f64 / 100.0)) as u64;
        // Each hit, and for an ad click its ad and minted click id.
        let mut hits: Vec<(RawHit, Option<(AdFields, String)>)> = Vec::new();
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
                    hits.push((h, None));
                }
            }
            if !bot && rng.chance(0.02) {
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
                hits.push((click, Some((ad_of(ad, &link), clid.clone()))));
                landing =
                    format!("?utm_source=news&utm_medium=cpc&utm_campaign=spring&ptclid={clid}");
                query = &landing;
            }
            let mut pages = 1;
            while pages < 8 && rng.chance(0.45) {
                pages += 1;
            }
            let mut page = *rng.pick(PAGES);
            for i in 0..pages {
                if t > now {
                    break;
                }
                let q = if i == 0 { query } else { "" };
                hits.push((
                    hit(
                        t,
                        ip,
                        ua,
                        &site,
                        page,
                        q,
                        if i == 0 { referrer } else { "" },
                        None,
                    ),
                    None,
                ));
                if page == "/signup" && rng.chance(0.3) {
                    hits.push((
                        hit(t + 20_000, ip, ua, &site, page, "", "", Some("signup")),
                        None,
                    ));
                    if rng.chance(0.5) {
                        let mut h =
                            hit(t + 25_000, ip, ua, &site, page, "", "", Some("conversion"));
                        h.params.value =
                            Some(["49.00", "99.00", "19.90"][rng.below(3) as usize].into());
                        h.params.currency = Some("EUR".into());
                        h.params.id = Some(format!("DEMO-{}", rng.next() % 1_000_000_000));
                        hits.push((h, None));
                    }
                }
                t += 5_000 + rng.below(240_000) as i64;
                page = *rng.pick(PAGES);
            }
        }
        hits.sort_by_key(|h| h.0.received_ms);
        let mut events = Vec::with_capacity(hits.len());
        for (h, ad) in hits {
            let Some(salt) = salts.get(&day_of(h.received_ms)) else {
                continue;
            };
            let outcome = match ad {
                Some((fields, clid)) => enricher.enrich_ad_click(&h, &site, salt, fields, &clid),
                None => enricher.enrich(&h, &site, salt),
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
