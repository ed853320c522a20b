//! Plain types shared by the stages: ids, the raw hit, the enriched event and the
//! reasons a hit can be dropped or flagged. Raw strings are validated once, here.
//!
//! About 600 lines: the types every stage shares, kept together so they read as one
//! vocabulary.

use std::fmt;
use std::net::IpAddr;

use crate::clock::Millis;

/// Internal numeric id of a site (the `sites.id` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteId(pub i64);

/// The public key a pixel names its site by (`s=`). Not a secret: it is in every page.
/// Kept in place up to 24 bytes ([`Short`]): a generated key is 12, and every hit parses one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SiteKey(Short);

impl SiteKey {
    pub const MAX_LEN: usize = 64;

    /// Accepts 1..=64 characters of `[A-Za-z0-9_-]`.
    pub fn parse(s: &str) -> Option<SiteKey> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| SiteKey(s.into()))
    }

    /// A new random key: 12 characters of lowercase base32 (60 bits).
    pub fn generate() -> SiteKey {
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
        SiteKey(crate::secret::random_chars(ALPHABET, 12).into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Normalizes a site's domain: lowercase host, no scheme, path or port. `None` when
/// it is not a host name.
pub fn parse_domain(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let url = url::Url::parse(&with_scheme).ok()?;
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty() && host.len() <= 253).then_some(host)
}

/// Whether `host` is `domain` or a subdomain of it, in any ASCII case. Compares in
/// place: it runs for every hit (`Site::owns_host`, the referrer's same-site check).
pub fn within_domain(host: &str, domain: &str) -> bool {
    let (h, d) = (host.as_bytes(), domain.as_bytes());
    h.eq_ignore_ascii_case(d)
        || (h.len() > d.len()
            && h[h.len() - d.len() - 1] == b'.'
            && h[h.len() - d.len()..].eq_ignore_ascii_case(d))
}

/// The English name of an ISO 3166-1 alpha-2 code (`"DE"` → `"Germany"`), or the code.
pub fn country_name(code: &str) -> &str {
    code.parse::<iso_country::Country>()
        .ok()
        .map(|c| c.name())
        .filter(|n| !n.is_empty())
        .unwrap_or(code)
}

/// A region as shown: an ISO 3166-2 code with its country's name (`"DE-BY"` →
/// `"DE-BY (Germany)"`); a region stored by name (no code in the database) as it is.
pub fn region_label(region: &str) -> String {
    match region.split_once('-') {
        Some((cc, sub))
            if cc.len() == 2
                && (1..=3).contains(&sub.len())
                && sub.bytes().all(|b| b.is_ascii_alphanumeric())
                && country_name(cc) != cc =>
        {
            format!("{region} ({})", country_name(cc))
        }
        _ => region.to_owned(),
    }
}

/// A new site's domain (normalised) and display name (the domain when none is given),
/// validated as every way of adding a site (CLI, API, dashboard) must.
pub fn new_site(domain: &str, name: Option<&str>) -> Result<(String, String), &'static str> {
    let domain = parse_domain(domain).ok_or("not a domain such as example.com")?;
    let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) if valid_name(n) => n.to_owned(),
        Some(_) => return Err("a name is 1 to 200 characters without control characters"),
        None => domain.clone(),
    };
    Ok((domain, name))
}

/// Campaign and site names: 1–200 characters, no control characters.
pub fn valid_name(name: &str) -> bool {
    let n = name.trim();
    !n.is_empty() && n.len() <= 200 && !n.chars().any(char::is_control)
}

/// A cookieless visitor id: keyed hash of (daily salt, site, IP, UA). Changes every day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VisitorId(pub i64);

/// A session: one visitor's events with no gap longer than the session timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionId(pub i64);

/// A site as the collector and the reports see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub id: SiteId,
    pub key: SiteKey,
    pub domain: String,
    pub name: String,
    pub created_ms: Millis,
    pub privacy: Privacy,
    /// More hostnames (besides the domain and its subdomains) whose pages may send events.
    pub hosts: Vec<String>,
    /// The `idsite` a Matomo tracker names this site by (`/matomo.php`), if mapped.
    pub matomo_id: Option<i64>,
}

impl Site {
    /// The site `wanted` names: the one whose key is exactly `wanted`, else the one whose
    /// domain is `wanted` in any letter case. The one rule for "a site by key or domain"
    /// in the CLI, the API and the dashboard; each edge words "not found" its own way.
    pub fn find<'a>(sites: &'a [Site], wanted: &str) -> Option<&'a Site> {
        sites
            .iter()
            .find(|s| s.key.as_str() == wanted)
            .or_else(|| sites.iter().find(|s| s.domain.eq_ignore_ascii_case(wanted)))
    }

    /// The tracker snippet for the site's pages (script plus `<noscript>` pixel).
    pub fn tracker_snippet(&self, base_url: &str) -> String {
        format!(
            "<script defer src=\"{base}/t.js\" data-site=\"{key}\"></script>\n<noscript><img src=\"{base}/p.gif?s={key}\" alt=\"\" width=\"1\" height=\"1\" referrerpolicy=\"no-referrer-when-downgrade\"></noscript>",
            base = base_url,
            key = self.key
        )
    }

    /// Whether a page on `host` belongs to this site: the domain, a subdomain of it, or
    /// one of the extra hosts, in any case. Asked for every hit: compares in place.
    pub fn owns_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        within_domain(host, &self.domain) || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// A site's privacy settings (see docs/privacy.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Privacy {
    pub mode: PrivacyMode,
    /// `Sec-GPC: 1` means no identifiers for this hit.
    pub honour_gpc: bool,
    /// `DNT: 1` likewise (off by default: DNT is deprecated and often set by default).
    pub honour_dnt: bool,
    /// What happens to a hit that may not carry identifiers.
    pub without_consent: WithoutConsent,
    /// Raw events older than this are deleted (rollups are kept).
    pub retention_days: Option<u32>,
    /// Keep values that look like email addresses in URLs, titles and props.
    pub allow_emails: bool,
    /// Email tracking: only the day of each recipient's last open, no events.
    pub deliverability_only: bool,
}

impl Default for Privacy {
    fn default() -> Self {
        Privacy {
            mode: PrivacyMode::Anonymous,
            honour_gpc: true,
            honour_dnt: false,
            without_consent: WithoutConsent::Aggregate,
            retention_days: None,
            allow_emails: false,
            deliverability_only: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrivacyMode {
    /// Cookieless daily visitor hash, no per-person data (the default for web).
    Anonymous,
    /// Identifiers only for hits that carry consent (`consent=1`).
    Consented,
    /// Record nothing.
    Off,
}

impl PrivacyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PrivacyMode::Anonymous => "anonymous",
            PrivacyMode::Consented => "consented",
            PrivacyMode::Off => "off",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Anonymous, Self::Consented, Self::Off]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithoutConsent {
    /// Count the hit with no visitor, session or other identifier.
    Aggregate,
    /// Do not store it (counted as a `no_consent` drop).
    Drop,
}

impl WithoutConsent {
    pub fn as_str(self) -> &'static str {
        match self {
            WithoutConsent::Aggregate => "aggregate",
            WithoutConsent::Drop => "drop",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Aggregate, Self::Drop]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// An email campaign: what opens and clicks are counted against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    pub id: i64,
    pub site_id: i64,
    pub name: String,
    pub created_ms: Millis,
    /// When it was sent (rates over time and scanner timing start here).
    pub sent_ms: Option<Millis>,
    /// How many emails were delivered: the denominator of open and click rates.
    pub delivered: Option<i64>,
    /// What the campaign cost (minor units of `cost_currency`), for cost per acquisition.
    pub cost: Option<(i64, String)>,
}

/// What arrived on the wire, before anything is trusted. The IP lives only here,
/// in memory; enrichment turns it into a visitor hash and drops it.
#[derive(Clone, Debug)]
pub struct RawHit {
    pub received_ms: Millis,
    pub ip: IpAddr,
    pub user_agent: String,
    /// The `Referer` header: the page that embeds the pixel.
    pub referer_header: Option<String>,
    /// `Sec-GPC: 1` (Global Privacy Control).
    pub gpc: bool,
    /// `DNT: 1`.
    pub dnt: bool,
    /// A CDN's country header (`CF-IPCountry`, `CloudFront-Viewer-Country`), only when a
    /// trusted proxy sent it and it names a country.
    pub cdn_country: Option<String>,
    pub params: HitParams,
}

/// The decoded query parameters of a pixel hit (DESIGN §4).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HitParams {
    pub site: Option<String>,
    /// Impressions: campaign id (`cmp`), ad (`ad`) and placement (`pl`).
    pub campaign: Option<String>,
    pub ad: Option<String>,
    pub placement: Option<String>,
    /// A pixeltrack click id (`clid`), so a conversion can name the click it follows.
    pub click: Option<String>,
    pub event: Option<String>,
    pub url: Option<String>,
    pub referrer: Option<String>,
    pub title: Option<String>,
    pub value: Option<String>,
    pub currency: Option<String>,
    pub id: Option<String>,
    /// `consent=1` / `consent=0` from the page's consent banner.
    pub consent: Option<String>,
    /// Tracker engagement: deepest scroll (0–100) and visible milliseconds.
    pub scroll_pct: Option<i64>,
    pub engaged_ms: Option<i64>,
    /// Screen width in CSS pixels (tracker page views).
    pub screen_width: Option<i64>,
    pub props: Vec<(String, String)>,
}

/// A string that is nearly always short (an event's name, a browser, a country): up to 24
/// bytes are kept in the value itself, longer ones on the heap. An event's short fields
/// were a fifth of a hit's allocations, each a cache miss where the indexer frees it on
/// the other core (docs/benchmarks.md, 2026-12-06, noon).
pub type Short = compact_str::CompactString;

/// An enriched event, ready to be stored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Event {
    pub site_id: i64,
    pub ts_ms: Millis,
    pub name: Short,
    pub visitor_id: i64,
    /// Assigned by ingest (sessions need every event of the visitor in order).
    pub session_id: i64,
    pub host: Short,
    pub path: String,
    /// The page's query string, reduced to the allowlist.
    pub query: String,
    pub title: String,
    pub referrer: String,
    pub referrer_host: Short,
    pub source: Short,
    pub medium: Short,
    pub utm: Utm,
    pub click_id: String,
    pub browser: Short,
    pub browser_version: Short,
    pub os: Short,
    pub os_version: Short,
    pub device: Device,
    pub bot: Option<BotReason>,
    /// Value in minor units (cents); never a float.
    pub value_minor: Option<i64>,
    pub currency: Short,
    pub order_id: String,
    /// Custom props as a JSON object string (`{}` when none).
    pub props: Short,
    /// Only set when the operator turned `store_ip` on.
    pub ip: Option<String>,
    /// Email opens and clicks: campaign, recipient, verdict.
    pub email: Option<EmailFields>,
    /// From the JS tracker's `engagement` event: deepest scroll (percent) and visible time.
    pub scroll_pct: Option<i64>,
    pub engaged_ms: Option<i64>,
    /// The screen's CSS width in pixels, from the JS tracker's page views.
    pub screen_width: Option<i64>,
    /// Ad impressions and ad clicks: campaign, ad and placement.
    pub ad: Option<AdFields>,
    /// ISO 3166-1 alpha-2 country of the client IP (`""` when unknown or private).
    pub country: Short,
    /// The client's region: ISO 3166-2 (`DE-BY`), or its English name when the
    /// geolocation database has no code; `""` without a database or when unknown.
    pub region: Short,
    /// The client's city (English name), `""` when unknown.
    pub city: Short,
    /// The client network's autonomous system number (0 when unknown) and organisation.
    pub asn: u32,
    pub as_org: String,
}

/// What an ad impression or ad click carries. Ad traffic is reported per campaign,
/// never as web visits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdFields {
    pub campaign_id: i64,
    pub ad: String,
    pub placement: String,
    /// Clicks: the landing page the link redirects to.
    pub link: String,
}

/// Ad, placement and similar ids from the wire: 1–64 characters of
/// `[A-Za-z0-9._~:-]` (what ad servers' macros produce), nothing that could execute.
pub fn valid_ad_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b':' | b'-'))
}

/// What an email open or click carries besides the web fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailFields {
    pub campaign_id: i64,
    /// The sender's own recipient id, as given when the email was tagged.
    pub recipient: String,
    /// Clicks: the destination URL.
    pub link: String,
    pub verdict: Verdict,
    /// Short code of the signal that decided the verdict (`ua_google_image_proxy`, `burst`…).
    pub reason: &'static str,
    /// Gmail, Apple Mail, Outlook, Yahoo, Thunderbird or other.
    pub client: &'static str,
}

/// Who opened or clicked. Machine verdicts are stored, never deleted, and reported
/// beside the human numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Human,
    /// Apple Mail Privacy Protection prefetch: happens on delivery, opened or not.
    AppleMpp,
    /// Gmail's image proxy: loads when the user opens the mail — a human-triggered open.
    GmailProxy,
    /// Yahoo's caching proxy: also loads on open.
    YahooProxy,
    /// Another mail provider's image proxy.
    OtherProxy,
    /// A security scanner (Safe Links, Mimecast, Proofpoint, Barracuda…).
    Scanner,
    Bot,
}

impl Verdict {
    pub const ALL: [Verdict; 7] = [
        Verdict::Human,
        Verdict::AppleMpp,
        Verdict::GmailProxy,
        Verdict::YahooProxy,
        Verdict::OtherProxy,
        Verdict::Scanner,
        Verdict::Bot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Human => "human",
            Verdict::AppleMpp => "apple_mpp",
            Verdict::GmailProxy => "gmail_proxy",
            Verdict::YahooProxy => "yahoo_proxy",
            Verdict::OtherProxy => "other_proxy",
            Verdict::Scanner => "scanner",
            Verdict::Bot => "bot",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Opens a person caused: direct loads and the proxies that fetch on open.
    pub fn is_human_triggered(self) -> bool {
        matches!(
            self,
            Verdict::Human | Verdict::GmailProxy | Verdict::YahooProxy | Verdict::OtherProxy
        )
    }
}

/// How sure a verdict is. Stored as part of the reason: each rule's reason code has
/// one confidence ([`email_reason`]), so old events keep theirs when rules change and
/// no column is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Confidence {
    Certain,
    /// "Probably": reports show these apart instead of forcing them into a side.
    Probable,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Certain => "certain",
            Confidence::Probable => "probable",
        }
    }
}

/// Every email verdict reason: its code (stored with the event), its confidence and a
/// sentence a marketer can read. Codes of older releases stay here so their events
/// keep a readable reason.
pub const EMAIL_REASONS: &[(&str, Confidence, &str)] = &[
    ("ok", Confidence::Certain, "a person: a real browser or mail app, nothing machine-like"),
    ("mail_client", Confidence::Certain, "a person: the image was loaded by a mail app (Outlook, Apple Mail, Thunderbird)"),
    ("landing_page_view", Confidence::Certain, "a person: the landing page was viewed in the same browser right after the click"),
    ("followed_by_click", Confidence::Certain, "a person: another link was clicked later from the same browser"),
    ("ua_google_image_proxy", Confidence::Certain, "opened in Gmail: Google's image proxy loads images when the person opens the mail"),
    ("ua_yahoo_mail_proxy", Confidence::Certain, "opened in Yahoo Mail: Yahoo's image proxy loads images when the person opens the mail"),
    ("ua_seznam_email_proxy", Confidence::Certain, "opened in Seznam: its image proxy loads images when the person opens the mail"),
    ("ua_bare_mozilla", Confidence::Certain, "Apple Mail Privacy Protection: images are fetched on delivery, whether or not the mail is read"),
    ("ua_security_scanner", Confidence::Certain, "a security scanner that names itself in its user agent (Barracuda, Proofpoint, Mimecast, Cisco, Trend Micro…)"),
    ("scanner_network", Confidence::Certain, "a security scanner: the request came from a mail-security service's published network (Microsoft, Mimecast, Proofpoint, Barracuda, Cisco…)"),
    ("office_link_check", Confidence::Certain, "a link check by Microsoft Office or Safe Links before the person's browser opens the link"),
    ("head_before_get", Confidence::Certain, "a link checker: it probed the link with HEAD first, which browsers never do"),
    ("burst", Confidence::Certain, "a security scanner: several links of the email fetched within a second or two, at machine speed or with no real open first"),
    ("synthetic_monitor", Confidence::Certain, "a synthetic-monitoring robot (Datadog, Pingdom, UptimeRobot…)"),
    ("empty_ua", Confidence::Certain, "a program that sends no user agent"),
    ("crawler_list", Confidence::Certain, "a crawler, link preview or tool on the maintained bot list"),
    ("one_ip_many_recipients", Confidence::Probable, "probably a scanner: one address clicked for several recipients within a minute, none of whom had opened the mail"),
    ("cloud_network", Confidence::Probable, "probably a scanner: the request came from a public cloud (sandboxes and re-crawlers run there; few people browse from there)"),
    ("too_soon_after_delivery", Confidence::Probable, "probably a scanner: the link was fetched within seconds of the email's first arrival, with no open by a person"),
    ("too_soon_after_send", Confidence::Probable, "probably a scanner: the image was fetched by a browser, not a mail app, within seconds of the send"),
    ("click_without_open", Confidence::Probable, "probably a person: a click soon after sending with images blocked, by a real browser"),
    ("tabs_after_open", Confidence::Probable, "probably a person: several links opened into tabs at human speed after a real open"),
    ("click_without_open_soon_after_send", Confidence::Certain, "a scanner (older rule): a click soon after sending with no open"),
];

/// The confidence and the readable sentence of a verdict reason code (an unknown code:
/// certain, and the code itself).
pub fn email_reason(code: &str) -> (Confidence, &str) {
    EMAIL_REASONS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|&(_, conf, text)| (conf, text))
        .unwrap_or((Confidence::Certain, code))
}

/// The tracker's per-page-view report of scroll depth and visible time.
pub const ENGAGEMENT: &str = "engagement";

impl Event {
    pub fn is_pageview(&self) -> bool {
        self.name == "pageview"
    }

    /// Email opens/clicks and ad impressions/clicks: reported per campaign, not as web
    /// traffic (they would otherwise inflate visits and bounces).
    pub fn is_campaign_traffic(&self) -> bool {
        self.email.is_some() || self.ad.is_some()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Utm {
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub term: String,
    pub content: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Device {
    Desktop,
    Mobile,
    Tablet,
    #[default]
    Unknown,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Device {
        match s {
            "desktop" => Device::Desktop,
            "mobile" => Device::Mobile,
            "tablet" => Device::Tablet,
            _ => Device::Unknown,
        }
    }
}

/// Why an event was flagged as automated. Bots are stored with this, never mixed
/// into human numbers, never silently deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BotReason {
    /// No `User-Agent` header at all.
    EmptyUa,
    /// An HTTP library or command-line tool (curl, wget, python-requests, Go…).
    Tool,
    /// Matched the maintained crawler list (`isbot`).
    Crawler,
    /// uap-core classifies the device as a `Spider`.
    Spider,
}

impl BotReason {
    pub const ALL: [BotReason; 4] = [
        BotReason::EmptyUa,
        BotReason::Tool,
        BotReason::Crawler,
        BotReason::Spider,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BotReason::EmptyUa => "empty_ua",
            BotReason::Tool => "tool",
            BotReason::Crawler => "crawler",
            BotReason::Spider => "spider",
        }
    }

    pub fn parse(s: &str) -> Option<BotReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Why a hit was not stored. Every one is counted in `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    MissingSite,
    UnknownSite,
    /// An open or click token that does not verify (forged, tampered, retired key).
    BadToken,
    /// A valid token whose campaign is gone.
    UnknownCampaign,
    /// The site's privacy mode is `off`.
    TrackingOff,
    /// No consent (GPC, DNT, consented mode without `consent=1`) and the site drops such hits.
    NoConsent,
    /// The email recipient withdrew consent.
    ConsentWithdrawn,
    /// A tracker event from a page on a host the site does not own.
    HostNotAllowed,
    InvalidInput,
    /// A value or currency that is not an exact ISO 4217 amount.
    InvalidAmount,
    /// An ad, campaign or placement id outside the allowed length and characters.
    InvalidId,
    /// A conversion whose order id was already counted within the dedupe window.
    Duplicate,
    Oversized,
    Overload,
    /// The writer did not take the hit within `ingest.commit_timeout_ms`; it is never written.
    Timeout,
    ShuttingDown,
    StoreError,
    /// Forwarding to ClickHouse is `store.spool_max_events` behind: not stored.
    SpoolFull,
    /// Past `limits.per_ip_per_minute` or `limits.per_site_per_second`.
    RateLimited,
    /// A referrer on the referrer-spam list (shipped, or `DATA/referrer-spam.txt`).
    ReferrerSpam,
}

impl DropReason {
    pub const ALL: [DropReason; 20] = [
        DropReason::MissingSite,
        DropReason::UnknownSite,
        DropReason::BadToken,
        DropReason::UnknownCampaign,
        DropReason::TrackingOff,
        DropReason::NoConsent,
        DropReason::ConsentWithdrawn,
        DropReason::HostNotAllowed,
        DropReason::InvalidInput,
        DropReason::InvalidAmount,
        DropReason::InvalidId,
        DropReason::Duplicate,
        DropReason::Oversized,
        DropReason::Overload,
        DropReason::Timeout,
        DropReason::ShuttingDown,
        DropReason::StoreError,
        DropReason::SpoolFull,
        DropReason::RateLimited,
        DropReason::ReferrerSpam,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::MissingSite => "missing_site",
            DropReason::UnknownSite => "unknown_site",
            DropReason::BadToken => "bad_token",
            DropReason::UnknownCampaign => "unknown_campaign",
            DropReason::TrackingOff => "tracking_off",
            DropReason::NoConsent => "no_consent",
            DropReason::ConsentWithdrawn => "consent_withdrawn",
            DropReason::HostNotAllowed => "host_not_allowed",
            DropReason::InvalidInput => "invalid_input",
            DropReason::InvalidAmount => "invalid_amount",
            DropReason::InvalidId => "invalid_id",
            DropReason::Duplicate => "duplicate",
            DropReason::Oversized => "oversized",
            DropReason::Overload => "overload",
            DropReason::Timeout => "timeout",
            DropReason::ShuttingDown => "shutting_down",
            DropReason::StoreError => "store_error",
            DropReason::SpoolFull => "spool_full",
            DropReason::RateLimited => "rate_limited",
            DropReason::ReferrerSpam => "referrer_spam",
        }
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// What a script or API client is told about a refused event.
    pub fn explain(self) -> &'static str {
        match self {
            DropReason::InvalidAmount => "v must be a non-negative decimal with at most the currency's minor digits (19.99 EUR, 1500 JPY), and cur an ISO 4217 code",
            DropReason::InvalidId => "ad, cmp, pl and clid must be 1-64 characters of A-Z a-z 0-9 . _ ~ : - (cmp: a campaign id from 'pixeltrack campaign list')",
            DropReason::UnknownCampaign => "no such campaign for this site (see 'pixeltrack campaign list')",
            DropReason::InvalidInput => "invalid event: check the event name and fields",
            r => r.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(id: i64, key: &str, domain: &str) -> Site {
        Site {
            id: SiteId(id),
            key: SiteKey::parse(key).unwrap(),
            domain: domain.into(),
            name: domain.into(),
            created_ms: 0,
            privacy: Privacy::default(),
            hosts: Vec::new(),
            matomo_id: None,
        }
    }

    #[test]
    fn regions_show_with_their_country_when_stored_as_codes() {
        assert_eq!(region_label("DE-BY"), "DE-BY (Germany)");
        assert_eq!(region_label("FR-IDF"), "FR-IDF (France)");
        // Stored by name (no code in the database), or not a code: as it is.
        assert_eq!(region_label("Bavaria"), "Bavaria");
        assert_eq!(region_label("Baden-Württemberg"), "Baden-Württemberg");
        assert_eq!(region_label("ZZ-AB"), "ZZ-AB");
        assert_eq!(region_label("<b>-x"), "<b>-x");
    }

    #[test]
    fn a_site_owns_its_domain_its_subdomains_and_its_hosts_in_any_case() {
        let mut s = site(1, "k1", "example.com");
        s.hosts = vec!["example-cdn.net".into()];
        for h in [
            "example.com",
            "Example.COM.",
            "www.example.com",
            "a.b.EXAMPLE.com",
            "example-cdn.net",
            "EXAMPLE-cdn.net.",
        ] {
            assert!(s.owns_host(h), "{h}");
        }
        for h in [
            "notexample.com",
            "example.com.evil.test",
            "com",
            "",
            ".example.com.x",
            "cdn.example-cdn.net",
            "ëxample.com",
        ] {
            assert!(!s.owns_host(h), "{h}");
        }
    }

    #[test]
    fn a_site_is_found_by_exact_key_first_then_by_domain_in_any_case() {
        let sites = [site(1, "k1", "example.com"), site(2, "k2", "b.example")];
        let found = |w: &str| Site::find(&sites, w).map(|s| s.id.0);
        assert_eq!(found("k1"), Some(1));
        assert_eq!(found("example.com"), Some(1));
        assert_eq!(found("Example.COM"), Some(1));
        assert_eq!(found("B.example"), Some(2));
        assert_eq!(found("k2"), Some(2));
        assert_eq!(found("K1"), None, "keys are exact");
        assert_eq!(found("example"), None);
        assert_eq!(found(""), None);
        // A key that is also another site's domain names the site with that key,
        // whatever the order.
        let clash = [
            site(1, "k1", "localhost"),
            site(2, "localhost", "c.example"),
        ];
        assert_eq!(Site::find(&clash, "localhost").map(|s| s.id.0), Some(2));
    }
}
