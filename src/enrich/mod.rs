//! Enrich: turns a validated [`RawHit`] into an [`Event`] — user agent, bot verdict,
//! page, referrer, UTM, visitor id. Pure and total: the site, the day's salt and the
//! lookup tables come in as arguments; the result is `Keep(event)` or `Drop(reason)`.
//! The client IP is used for the visitor hash and then forgotten (unless `store_ip`).

pub mod bot;
pub mod email;
pub mod geo;
pub mod money;
pub mod networks;
pub mod page;
pub mod privacy;
pub mod referrer;
pub mod salts;
pub mod spam;
pub mod ua;
pub mod visitor;

use std::net::IpAddr;

use crate::model::{valid_ad_id, AdFields, DropReason, Event, RawHit, Short, Site};

pub use visitor::Salt;

/// Longest event name.
pub const MAX_EVENT_NAME: usize = 64;
/// Longest title.
pub const MAX_TITLE: usize = 512;
/// Custom props: at most this many keys, each key and value capped.
pub const MAX_PROPS: usize = 30;
pub const MAX_PROP_KEY: usize = 64;
pub const MAX_PROP_VALUE: usize = 512;
pub const MAX_ORDER_ID: usize = 128;

#[derive(Debug, PartialEq)]
pub enum Outcome {
    Keep(Box<Event>),
    Drop(DropReason),
}

/// Lookup tables and settings enrichment needs; built once, shared by all requests.
pub struct Enricher {
    ua: ua::UaParser,
    store_ip: bool,
    /// With `store_ip`: keep only the network (/24 for IPv4, /48 for IPv6).
    truncate_ip: bool,
    email: email::Thresholds,
    /// The landing-page parameter our ad links append (`ptclid`).
    click_param: String,
    /// Referrer spam domains (shipped and the operator's).
    pub spam: spam::SpamList,
    /// The operator's geolocation databases (`geo.mmdb`, `geo.asn_mmdb`), if any.
    pub geo: geo::Geo,
}

/// The event name of an ad impression.
pub const IMPRESSION: &str = "impression";
/// The event an ad link's click is stored as.
pub const AD_CLICK: &str = "ad_click";
/// The event name of a conversion.
pub const CONVERSION: &str = "conversion";

/// What collect knows about an email open or click besides the hit itself.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailContext {
    pub campaign_id: i64,
    pub recipient: String,
    /// `Some(destination)` for a click, `None` for an open.
    pub link: Option<String>,
    pub signals: email::Signals,
}

impl Enricher {
    pub fn new(ua_cache_size: usize, ua_parse_bytes: usize, store_ip: bool) -> Self {
        Enricher {
            ua: ua::UaParser::new(ua_cache_size, ua_parse_bytes),
            store_ip,
            truncate_ip: true,
            email: email::Thresholds::default(),
            click_param: "ptclid".into(),
            spam: spam::SpamList::default(),
            geo: geo::Geo::none(),
        }
    }

    /// The enricher a server runs with `cfg`: the IP policy, the click id parameter,
    /// the email verdicts' thresholds and the geolocation databases (read now: a missing
    /// or broken file is an error naming its setting). Imports use the same one, so an
    /// imported hit is enriched as a live one would have been.
    pub fn configured(cfg: &crate::config::Config) -> Result<Enricher, geo::GeoError> {
        Ok(Enricher::new(
            cfg.enrich.ua_cache_size,
            cfg.limits.ua_parse_bytes,
            cfg.store_ip,
        )
        .with_ip_truncation(cfg.store_ip_truncate)
        .with_click_param(&cfg.ads.click_param)
        .with_email_thresholds(email::Thresholds {
            min_human_seconds: i64::from(cfg.email.min_human_seconds),
            click_without_open_seconds: i64::from(cfg.email.click_without_open_seconds),
        })
        .with_geo(geo::Geo::open(&cfg.geo.mmdb, &cfg.geo.asn_mmdb)?))
    }

    pub fn with_geo(mut self, geo: geo::Geo) -> Self {
        self.geo = geo;
        self
    }

    pub fn with_click_param(mut self, name: &str) -> Self {
        self.click_param = name.to_owned();
        self
    }

    pub fn click_param(&self) -> &str {
        &self.click_param
    }

    pub fn with_ip_truncation(mut self, truncate: bool) -> Self {
        self.truncate_ip = truncate;
        self
    }

    pub fn with_email_thresholds(mut self, t: email::Thresholds) -> Self {
        self.email = t;
        self
    }

    /// An email open or click: the web enrichment, then the verdict. The bot verdict
    /// of the web path is folded into the email verdict (proxies are not bots here).
    pub fn enrich_email(
        &self,
        hit: &RawHit,
        site: &Site,
        salt: &Salt,
        cx: EmailContext,
    ) -> Outcome {
        let mut e = match self.build(hit, site, salt) {
            Ok(e) => e,
            Err(r) => return Outcome::Drop(r),
        };
        let ua = hit.user_agent.as_str();
        let (verdict, reason) = match &cx.link {
            Some(_) => email::classify_click(ua, &cx.signals, &self.email),
            None => email::classify_open(ua, &cx.signals, &self.email),
        };
        e.bot = None;
        e.source = Short::default();
        e.medium = "email".into();
        e.email = Some(crate::model::EmailFields {
            campaign_id: cx.campaign_id,
            recipient: cx.recipient,
            link: cx.link.unwrap_or_default(),
            verdict,
            reason,
            client: email::email_client(ua),
        });
        Outcome::Keep(Box::new(e))
    }

    /// A click on an ad link: the web enrichment (the page is the one that showed the
    /// ad, from `Referer`), plus the campaign fields and our click id — unless the hit
    /// may not carry identifiers (GPC, no consent), in which case the click is counted
    /// without one and cannot be attributed.
    pub fn enrich_ad_click(
        &self,
        hit: &RawHit,
        site: &Site,
        salt: &Salt,
        ad: AdFields,
        click_id: &str,
    ) -> Outcome {
        let mut e = match self.build(hit, site, salt) {
            Ok(e) => e,
            Err(r) => return Outcome::Drop(r),
        };
        e.name = AD_CLICK.into();
        e.click_id = if e.visitor_id != 0 {
            format!("{}{click_id}", page::OWN_CLICK_PREFIX)
        } else {
            String::new()
        };
        e.ad = Some(ad);
        Outcome::Keep(Box::new(e))
    }

    /// Builds every lookup table now, so the first request does not pay for it.
    pub fn warm_up(&self) {
        ua::warm_up();
        bot::warm_up();
        referrer::warm_up();
    }

    pub fn enrich(&self, hit: &RawHit, site: &Site, salt: &Salt) -> Outcome {
        match self.build(hit, site, salt) {
            Ok(e) => Outcome::Keep(Box::new(e)),
            Err(r) => Outcome::Drop(r),
        }
    }

    fn build(&self, hit: &RawHit, site: &Site, salt: &Salt) -> Result<Event, DropReason> {
        let identify = privacy::may_identify(hit, &site.privacy)?;
        let mut e = self.build_full(hit, site, salt)?;
        if !identify {
            privacy::reduce(&mut e);
        }
        if !site.privacy.allow_emails {
            privacy::redact_emails(&mut e);
        }
        Ok(e)
    }

    fn build_full(&self, hit: &RawHit, site: &Site, salt: &Salt) -> Result<Event, DropReason> {
        let p = &hit.params;
        let name = match p.event.as_deref() {
            None | Some("") => Short::from("pageview"),
            Some(n) if valid_event_name(n) => Short::from(n),
            Some(_) => return Err(DropReason::InvalidInput),
        };
        let page_url = p
            .url
            .as_deref()
            .or(hit.referer_header.as_deref())
            .unwrap_or("");
        let mut page = page::parse(page_url, &self.click_param);
        // Only the site's own pages may count as its pages (like the tracker's events):
        // a pixel copied onto another site, or a forged `u=`, is refused. Ad
        // impressions and clicks are exempt: they happen on publishers' pages by
        // design. A page we cannot see (no `u=`, no Referer) is taken as the site's.
        let on_publisher = name == IMPRESSION || name == AD_CLICK;
        if !on_publisher && !page.host.is_empty() && !site.owns_host(&page.host) {
            return Err(DropReason::HostNotAllowed);
        }
        let referrer = referrer::classify(
            p.referrer.as_deref().unwrap_or(""),
            &page.host,
            &site.domain,
        );
        if self.spam.is_spam(&referrer.host) {
            return Err(DropReason::ReferrerSpam);
        }
        let (value_minor, currency) = money::parse(p.value.as_deref(), p.currency.as_deref())
            .map_err(|_| DropReason::InvalidAmount)?;
        let order_id = page::clean_text(p.id.as_deref().unwrap_or(""), MAX_ORDER_ID);
        let ad = if name == IMPRESSION {
            Some(ad_fields(p)?)
        } else {
            None
        };
        // A click id named on the hit itself (`clid`) beats one in the page URL.
        if let Some(clid) = p.click.as_deref().filter(|c| !c.is_empty()) {
            if !valid_ad_id(clid) {
                return Err(DropReason::InvalidId);
            }
            page.click_id = format!("{}{clid}", page::OWN_CLICK_PREFIX);
        }

        let info = self.ua.parse(&hit.user_agent);
        let bot = info.bot;
        let visitor = visitor::visitor_id(salt, site.id.0, hit.ip, &hit.user_agent);
        let place = self.geo.locate(hit.ip, hit.cdn_country.as_deref());

        // Source: utm_source, then ?ref=, then the referrer's known name or host.
        let (source, medium) = if !page.utm.source.is_empty() || !page.ref_param.is_empty() {
            let source = if page.utm.source.is_empty() {
                Short::from(page.ref_param.as_str())
            } else {
                Short::from(page.utm.source.as_str())
            };
            let medium = match referrer::utm_medium(&page.utm.medium) {
                Some(m) => Short::const_new(m),
                None if referrer.medium == "direct" => Short::const_new("campaign"),
                None => referrer.medium,
            };
            (source, medium)
        } else {
            (referrer.source, referrer.medium)
        };

        Ok(Event {
            site_id: site.id.0,
            ts_ms: hit.received_ms,
            name,
            visitor_id: visitor.0,
            session_id: 0,
            host: page.host.into(),
            path: page.path,
            query: page.query,
            title: page::clean_text(p.title.as_deref().unwrap_or(""), MAX_TITLE),
            referrer: referrer.url,
            referrer_host: referrer.host,
            source,
            medium,
            utm: page.utm,
            click_id: page.click_id,
            browser: Short::from(info.browser.as_str()),
            browser_version: Short::from(info.browser_version.as_str()),
            os: Short::from(info.os.as_str()),
            os_version: Short::from(info.os_version.as_str()),
            device: info.device,
            bot,
            value_minor,
            currency: currency.into(),
            order_id,
            props: props_json(&p.props),
            ip: self.store_ip.then(|| ip_text(hit.ip, self.truncate_ip)),
            email: None,
            scroll_pct: p.scroll_pct.map(|s| s.clamp(0, 100)),
            engaged_ms: p.engaged_ms.map(|m| m.clamp(0, 86_400_000)),
            screen_width: p.screen_width.filter(|w| (1..=100_000).contains(w)),
            ad,
            country: place.country,
            region: place.region.into(),
            city: place.city.into(),
            asn: place.asn,
            as_org: place.as_org,
        })
    }
}

/// `cmp` (required: the campaign id), `ad` and `pl` of an impression.
fn ad_fields(p: &crate::model::HitParams) -> Result<AdFields, DropReason> {
    let id = |v: &Option<String>| -> Result<String, DropReason> {
        match v.as_deref().map(str::trim) {
            None | Some("") => Ok(String::new()),
            Some(s) if valid_ad_id(s) => Ok(s.to_owned()),
            Some(_) => Err(DropReason::InvalidId),
        }
    };
    let campaign_id = p
        .campaign
        .as_deref()
        .and_then(|c| c.trim().parse::<i64>().ok())
        .filter(|c| *c > 0)
        .ok_or(DropReason::InvalidId)?;
    Ok(AdFields {
        campaign_id,
        ad: id(&p.ad)?,
        placement: id(&p.placement)?,
        link: String::new(),
    })
}

fn ip_text(ip: IpAddr, truncate: bool) -> String {
    if !truncate {
        return ip.to_string();
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            std::net::Ipv4Addr::new(a, b, c, 0).to_string()
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string()
        }
    }
}

/// Event names: 1–64 characters, no control characters.
/// `s` in ASCII lower case, copied only when it has an upper-case letter: hosts
/// nearly always come in lower case already.
pub(crate) fn ascii_lower(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        s.to_ascii_lowercase().into()
    } else {
        s.into()
    }
}

pub fn valid_event_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= MAX_EVENT_NAME && !n.chars().any(char::is_control)
}

pub(crate) fn props_json(props: &[(String, String)]) -> Short {
    if props.is_empty() {
        return Short::from("{}");
    }
    let mut map = serde_json::Map::new();
    for (k, v) in props.iter().take(MAX_PROPS) {
        let k = page::clean_text(k, MAX_PROP_KEY);
        if k.is_empty() {
            continue;
        }
        map.insert(
            k,
            serde_json::Value::String(page::clean_text(v, MAX_PROP_VALUE)),
        );
    }
    serde_json::Value::Object(map).to_string().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BotReason, Device, HitParams, SiteId, SiteKey};

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

    /// A hit with sensible defaults; tests change only what they test.
    fn hit(params: HitParams) -> RawHit {
        RawHit {
            received_ms: 1_700_000_000_000,
            ip: "203.0.113.77".parse().unwrap(),
            user_agent: CHROME.into(),
            referer_header: None,
            gpc: false,
            dnt: false,
            cdn_country: None,
            params,
        }
    }

    fn site() -> Site {
        Site {
            id: SiteId(1),
            key: SiteKey::parse("k1").unwrap(),
            domain: "example.com".into(),
            name: "Example".into(),
            created_ms: 0,
            privacy: Default::default(),
            hosts: Vec::new(),
            matomo_id: None,
        }
    }

    fn keep(h: &RawHit) -> Event {
        let e = Enricher::new(100, 512, false);
        match e.enrich(h, &site(), &Salt::random(1)) {
            Outcome::Keep(ev) => *ev,
            Outcome::Drop(r) => panic!("dropped: {r:?}"),
        }
    }

    #[test]
    fn a_pageview_gets_every_field() {
        let ev = keep(&hit(HitParams {
            site: Some("k1".into()),
            url: Some(
                "https://example.com/pricing?utm_source=news&utm_campaign=launch&secret=1".into(),
            ),
            referrer: Some("https://www.google.com/search?q=x".into()),
            title: Some("Pricing\n".into()),
            props: vec![("plan".into(), "pro".into())],
            ..HitParams::default()
        }));
        assert_eq!(ev.name, "pageview");
        assert_eq!(
            (ev.host.as_str(), ev.path.as_str()),
            ("example.com", "/pricing")
        );
        assert_eq!(ev.query, "utm_source=news&utm_campaign=launch");
        assert_eq!(ev.source, "news");
        assert_eq!(ev.medium, "search");
        assert_eq!(ev.referrer_host, "google.com");
        assert_eq!(ev.utm.campaign, "launch");
        assert_eq!(ev.title, "Pricing");
        assert_eq!(
            (ev.browser.as_str(), ev.os.as_str(), ev.device),
            ("Chrome", "Windows", Device::Desktop)
        );
        assert_eq!(ev.bot, None);
        assert_eq!(ev.props, r#"{"plan":"pro"}"#);
        assert_eq!(ev.ip, None);
    }

    #[test]
    fn page_url_falls_back_to_the_referer_header() {
        let mut h = hit(HitParams::default());
        h.referer_header = Some("https://example.com/blog/post".into());
        let ev = keep(&h);
        assert_eq!(ev.path, "/blog/post");
        assert_eq!(ev.medium, "direct");
    }

    fn outcome(h: &RawHit) -> Result<Event, DropReason> {
        match Enricher::new(100, 512, false).enrich(h, &site(), &Salt::random(1)) {
            Outcome::Keep(e) => Ok(*e),
            Outcome::Drop(r) => Err(r),
        }
    }

    /// A page of another host (a copied pixel, a forged `u=`, a foreign Referer) is
    /// refused like the tracker's; ad impressions and clicks happen on publishers'
    /// pages; subdomains and a page we cannot see are the site's.
    #[test]
    fn only_the_sites_own_pages_count() {
        let with_url = |u: &str, event: Option<&str>| {
            hit(HitParams {
                url: Some(u.into()),
                event: event.map(str::to_owned),
                campaign: event.map(|_| "1".to_owned()),
                ad: event.map(|_| "banner".to_owned()),
                ..HitParams::default()
            })
        };
        let forged = with_url("https://evil.example/", None);
        assert_eq!(outcome(&forged).err(), Some(DropReason::HostNotAllowed));
        let mut foreign = hit(HitParams::default());
        foreign.referer_header = Some("https://copycat.example/page".into());
        assert_eq!(outcome(&foreign).err(), Some(DropReason::HostNotAllowed));
        assert!(outcome(&with_url("https://blog.example.com/post", None)).is_ok());
        assert!(
            outcome(&hit(HitParams::default())).is_ok(),
            "no page at all"
        );
        let on_publisher = with_url("https://news.example/", Some(IMPRESSION));
        assert!(outcome(&on_publisher).is_ok());
    }

    #[test]
    fn referrer_spam_is_not_stored() {
        let h = |r: &str| {
            hit(HitParams {
                url: Some("https://example.com/".into()),
                referrer: Some(r.into()),
                ..HitParams::default()
            })
        };
        assert_eq!(
            outcome(&h("https://www.0-0.fr/offer")).err(),
            Some(DropReason::ReferrerSpam)
        );
        assert!(outcome(&h("https://news.example/story")).is_ok());
    }

    #[test]
    fn bots_are_kept_and_flagged() {
        let mut h = hit(HitParams::default());
        h.user_agent = "curl/8.5.0".into();
        assert_eq!(keep(&h).bot, Some(BotReason::Crawler));
        h.user_agent = String::new();
        assert_eq!(keep(&h).bot, Some(BotReason::EmptyUa));
    }

    #[test]
    fn bad_event_names_are_dropped() {
        let e = Enricher::new(10, 512, false);
        for name in ["a\u{0}b", &"x".repeat(65)] {
            let h = hit(HitParams {
                event: Some(name.to_string()),
                ..HitParams::default()
            });
            assert_eq!(
                e.enrich(&h, &site(), &Salt::random(1)),
                Outcome::Drop(DropReason::InvalidInput)
            );
        }
    }

    #[test]
    fn store_ip_is_opt_in_and_truncated_unless_told() {
        let ip_of = |e: Enricher, ip: &str| {
            let mut h = hit(HitParams::default());
            h.ip = ip.parse().unwrap();
            match e.enrich(&h, &site(), &Salt::random(1)) {
                Outcome::Keep(ev) => ev.ip,
                Outcome::Drop(r) => panic!("{r:?}"),
            }
        };
        assert_eq!(ip_of(Enricher::new(10, 512, false), "203.0.113.77"), None);
        assert_eq!(
            ip_of(Enricher::new(10, 512, true), "203.0.113.77").as_deref(),
            Some("203.0.113.0")
        );
        assert_eq!(
            ip_of(Enricher::new(10, 512, true), "2001:db8:1:2:3::4").as_deref(),
            Some("2001:db8:1::")
        );
        let full = Enricher::new(10, 512, true).with_ip_truncation(false);
        assert_eq!(ip_of(full, "203.0.113.77").as_deref(), Some("203.0.113.77"));
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use crate::model::{HitParams, SiteId, SiteKey};
    use proptest::prelude::*;

    proptest! {
        /// Enrichment is total: arbitrary strings in every field give an event or a
        /// drop reason, and a kept event's text fields hold no control characters.
        #[test]
        fn enrich_is_total(
            ua in "\\PC{0,200}",
            url in "\\PC{0,200}",
            referrer in "\\PC{0,100}",
            title in "\\PC{0,100}",
            event in proptest::option::of("\\PC{0,80}"),
            value in proptest::option::of("[-0-9.e]{0,20}"),
        ) {
            let hit = RawHit {
                received_ms: 1_700_000_000_000,
                ip: "203.0.113.77".parse().unwrap(),
                user_agent: ua,
                referer_header: None,
                gpc: false,
                dnt: false,
                cdn_country: None,
                params: HitParams {
                    url: Some(url),
                    referrer: Some(referrer),
                    title: Some(title),
                    event,
                    value,
                    ..HitParams::default()
                },
            };
            let site = Site {
                id: SiteId(1),
                key: SiteKey::parse("k").unwrap(),
                domain: "example.com".into(),
                name: String::new(),
                created_ms: 0,
                privacy: Default::default(),
            hosts: Vec::new(),
            matomo_id: None,
            };
            let e = Enricher::new(16, 512, false);
            if let Outcome::Keep(ev) = e.enrich(&hit, &site, &Salt::random(1)) {
                for f in [ev.title.as_str(), &ev.path, &ev.host, &ev.referrer, &ev.source, &ev.name] {
                    prop_assert!(!f.chars().any(char::is_control), "{:?}", f);
                }
                prop_assert!(ev.title.len() <= MAX_TITLE);
            }
        }
    }
}
