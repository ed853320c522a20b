//! Email opens and clicks: who caused them. Pure: the user agent, the request's
//! signals (computed by collect from what it saw of this email and this address, the
//! campaign's send time and the network lists) and the thresholds come in; a verdict
//! and the reason that decided it come out. Each reason has one confidence
//! (`model::email_reason`): "probably a scanner" is a verdict a report shows apart.
//!
//! Sources for every rule: `docs/email-verdicts.md` (the rule table, its evidence and
//! known failures) and `shared/research/security.md`, Part B; the corpus
//! `tests/fixtures/email-verdicts.toml` checks them. The proxy, scanner and monitor
//! user agents are matched as fixed tokens (no regex): no maintained library
//! classifies email proxies, and the list is short and documented here.

use crate::model::Verdict;

pub use super::networks::NetworkClass;

/// Several distinct links of one email clicked within `email.burst_seconds`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Burst {
    /// Some clicks of the burst came less than [`MACHINE_GAP_MS`] apart: parallel
    /// fetches, not a hand moving between links.
    pub machine_timing: bool,
    /// Seconds from the first request of any kind for this email to the burst's first
    /// click (how long the "reader" had the mail before clicking).
    pub secs_after_first_request: i64,
}

/// Clicks closer than this are fetched in parallel: a person needs ~0.3-0.7 s to move
/// the pointer to the next link and ctrl-click it (Fitts's law; the corpus's tabs).
pub const MACHINE_GAP_MS: i64 = 250;

/// What collect knows about a request beyond its user agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signals {
    /// Seconds since the campaign was sent, if its send time is known.
    pub secs_since_send: Option<i64>,
    /// Seconds since the first request of any kind for this email (this recipient):
    /// the best known delivery time, since delivery is spread over minutes or hours
    /// (throttling, greylisting). `None` for the first request.
    pub secs_since_first_request: Option<i64>,
    /// A `HEAD` for the same token came shortly before (link checkers, Safe Links).
    pub head_probe: bool,
    /// The client IP's class on the network lists, if listed.
    pub network: Option<NetworkClass>,
    /// Clicks: a burst of distinct links of this email.
    pub burst: Option<Burst>,
    /// Clicks: one IP clicked for `email.shared_ip_recipients` recipients of this
    /// campaign within `email.shared_ip_seconds`.
    pub shared_ip: bool,
    /// The recipient has an open a person caused (a mail app, a browser, a mail
    /// provider's proxy) before this request; MPP prefetches and scanners' loads are
    /// not such opens.
    pub prior_open: bool,
}

/// Thresholds, from `[email]` in the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// Activity this soon after delivery is machine activity (scanners act on arrival).
    pub min_human_seconds: i64,
    /// A click with no open this soon after sending is uncertain (shown apart).
    pub click_without_open_seconds: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_human_seconds: 10,
            click_without_open_seconds: 60,
        }
    }
}

/// Security gateways that announce themselves in the user agent.
const SCANNER_TOKENS: &[&str] = &[
    "barracuda",
    "proofpoint",
    "mimecast",
    "ciscosecureemail",
    "tmes",
    "safelinks",
    "forcepoint",
];

/// Microsoft Office's own requests for a link before it hands it to the browser
/// ("Microsoft Office Existence Discovery", `ms-office`), and Outlook's renderer: on
/// a click they are a check, not the person's visit.
const OFFICE_TOKENS: &[&str] = &[
    "ms-office",
    "msoffice",
    "microsoft office existence discovery",
    "microsoft office/",
];

fn has_token(ua: &str, tokens: &[&str]) -> bool {
    let lower = ua.to_ascii_lowercase();
    tokens.iter().any(|t| lower.contains(t))
}

/// Mail providers' image proxies: they load the image when the user opens the mail.
fn proxy(ua: &str) -> Option<(Verdict, &'static str)> {
    if ua.contains("GoogleImageProxy") {
        Some((Verdict::GmailProxy, "ua_google_image_proxy"))
    } else if ua.contains("YahooMailProxy") {
        Some((Verdict::YahooProxy, "ua_yahoo_mail_proxy"))
    } else if ua.contains("SeznamEmailProxy") {
        Some((Verdict::OtherProxy, "ua_seznam_email_proxy"))
    } else {
        None
    }
}

/// Apple Mail Privacy Protection fetches with a user agent of exactly `Mozilla/5.0`
/// (uap-core #509).
fn is_apple_mpp(ua: &str) -> bool {
    ua.trim() == "Mozilla/5.0"
}

/// A mail app that loads images itself when the message is shown (not a browser).
fn is_mail_app(ua: &str) -> bool {
    matches!(email_client(ua), "Outlook" | "Thunderbird" | "Apple Mail")
}

/// What marks a request as a machine whatever it is: the scanner's own name, its
/// network, a HEAD probe, a monitor, a crawler.
fn certain_machine(ua: &str, s: &Signals, click: bool) -> Option<(Verdict, &'static str)> {
    if has_token(ua, SCANNER_TOKENS) {
        return Some((Verdict::Scanner, "ua_security_scanner"));
    }
    if super::bot::is_synthetic_monitor(ua) {
        return Some((Verdict::Bot, "synthetic_monitor"));
    }
    if s.network == Some(NetworkClass::Scanner) {
        return Some((Verdict::Scanner, "scanner_network"));
    }
    if click && has_token(ua, OFFICE_TOKENS) {
        return Some((Verdict::Scanner, "office_link_check"));
    }
    if s.head_probe {
        return Some((Verdict::Scanner, "head_before_get"));
    }
    bot(ua)
}

fn bot(ua: &str) -> Option<(Verdict, &'static str)> {
    if ua.trim().is_empty() {
        return Some((Verdict::Bot, "empty_ua"));
    }
    if email_client(ua) == "other" && super::bot::verdict(ua, false).is_some() {
        return Some((Verdict::Bot, "crawler_list"));
    }
    None
}

pub fn classify_open(ua: &str, s: &Signals, t: &Thresholds) -> (Verdict, &'static str) {
    if let Some(p) = proxy(ua) {
        return p;
    }
    if is_apple_mpp(ua) {
        return (Verdict::AppleMpp, "ua_bare_mozilla");
    }
    if let Some(m) = certain_machine(ua, s, false) {
        return m;
    }
    // Mail apps show mail as soon as it arrives: a fast open is a person waiting
    // for a receipt or a reset link, not a scanner (scanners fetch as browsers).
    if is_mail_app(ua) {
        return (Verdict::Human, "mail_client");
    }
    if s.network == Some(NetworkClass::Cloud) {
        return (Verdict::Scanner, "cloud_network");
    }
    if s.secs_since_send
        .is_some_and(|d| (0..t.min_human_seconds).contains(&d))
    {
        return (Verdict::Scanner, "too_soon_after_send");
    }
    (Verdict::Human, "ok")
}

pub fn classify_click(ua: &str, s: &Signals, t: &Thresholds) -> (Verdict, &'static str) {
    if let Some(m) = certain_machine(ua, s, true) {
        return m;
    }
    if let Some(b) = s.burst {
        // Parallel fetches, or links fetched without a person's open or within
        // seconds of the mail's arrival: a scanner. Tabs opened by hand after
        // reading the mail: probably a person.
        let read_first = s.prior_open && b.secs_after_first_request >= t.min_human_seconds;
        if b.machine_timing || !read_first {
            return (Verdict::Scanner, "burst");
        }
        return (Verdict::Human, "tabs_after_open");
    }
    // Sandboxes and re-crawls run in clouds, also hours after the person's click.
    if s.network == Some(NetworkClass::Cloud) {
        return (Verdict::Scanner, "cloud_network");
    }
    if s.prior_open {
        return (Verdict::Human, "ok");
    }
    // No open by a person: the mail was read with images off, or nobody read it. One
    // address clicking for several such recipients is a gateway; people behind one
    // office address (NAT) open their mail first.
    if s.shared_ip {
        return (Verdict::Scanner, "one_ip_many_recipients");
    }
    let since_delivery = s.secs_since_first_request.or(s.secs_since_send);
    if since_delivery.is_some_and(|d| (0..t.min_human_seconds).contains(&d)) {
        return (Verdict::Scanner, "too_soon_after_delivery");
    }
    if s.secs_since_send
        .is_some_and(|d| (0..t.click_without_open_seconds).contains(&d))
    {
        return (Verdict::Human, "click_without_open");
    }
    (Verdict::Human, "ok")
}

/// Probable click verdicts that a landing pageview from the same browser right after
/// the click turns into a person's click. Not `cloud_network` nor
/// `one_ip_many_recipients`: sandboxes render landing pages too.
pub const LANDING_CONFIRMS: &[&str] = &[
    "too_soon_after_delivery",
    "click_without_open",
    "tabs_after_open",
];

/// The email client a user agent names, where it names one.
pub fn email_client(ua: &str) -> &'static str {
    let l = ua.to_ascii_lowercase();
    if l.contains("googleimageproxy") || l.contains("gmail") {
        "Gmail"
    } else if l.contains("yahoomailproxy") || l.contains("yahoo") {
        "Yahoo"
    } else if l.contains("outlook")
        || l.contains("ms-office")
        || l.contains("msoffice")
        || l.contains("microsoft office")
    {
        "Outlook"
    } else if l.contains("thunderbird") {
        "Thunderbird"
    } else if is_apple_mpp(ua)
        || ((l.contains("iphone") || l.contains("ipad") || l.contains("macintosh"))
            && l.contains("applewebkit")
            && !l.contains("safari")
            && !l.contains("crios")
            && !l.contains("fxios"))
    {
        // Apple Mail renders with WebKit but, unlike Safari, sends no Safari token.
        "Apple Mail"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GMAIL: &str =
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
    const YAHOO: &str = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html";
    const MPP: &str = "Mozilla/5.0";
    const OUTLOOK: &str =
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)";
    const IOS_MAIL: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";
    const STALE_CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0.4664.110 Safari/537.36";
    const SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15";

    fn later() -> Signals {
        Signals {
            secs_since_send: Some(3_600),
            prior_open: true,
            ..Signals::default()
        }
    }

    #[test]
    fn open_fixture() {
        let t = Thresholds::default();
        let cases = [
            (GMAIL, later(), Verdict::GmailProxy, "Gmail"),
            (YAHOO, later(), Verdict::YahooProxy, "Yahoo"),
            (
                MPP,
                Signals {
                    secs_since_send: Some(2),
                    ..later()
                },
                Verdict::AppleMpp,
                "Apple Mail",
            ),
            (OUTLOOK, later(), Verdict::Human, "Outlook"),
            (IOS_MAIL, later(), Verdict::Human, "Apple Mail"),
            (SAFARI, later(), Verdict::Human, "other"),
            // Safe Links: HEAD then GET, 5 s after send, from Microsoft's network.
            (
                STALE_CHROME,
                Signals {
                    secs_since_send: Some(5),
                    head_probe: true,
                    network: Some(NetworkClass::Scanner),
                    ..later()
                },
                Verdict::Scanner,
                "other",
            ),
            (
                "Mozilla/5.0 (compatible; Barracuda)",
                later(),
                Verdict::Scanner,
                "other",
            ),
            ("", later(), Verdict::Bot, "other"),
            ("python-requests/2.31", later(), Verdict::Bot, "other"),
        ];
        for (ua, s, want, client) in cases {
            assert_eq!(classify_open(ua, &s, &t).0, want, "{ua}");
            assert_eq!(email_client(ua), client, "{ua}");
        }
        // Gmail opens are never machine opens, even right after sending.
        let fast = Signals {
            secs_since_send: Some(1),
            ..later()
        };
        assert_eq!(classify_open(GMAIL, &fast, &t).0, Verdict::GmailProxy);
        assert!(
            Verdict::GmailProxy.is_human_triggered() && !Verdict::AppleMpp.is_human_triggered()
        );
    }

    #[test]
    fn click_fixture() {
        let t = Thresholds::default();
        let human = classify_click(SAFARI, &later(), &t);
        assert_eq!(human, (Verdict::Human, "ok"));
        // A burst fetched in parallel is a scanner, even after an open.
        let burst = Signals {
            burst: Some(Burst {
                machine_timing: true,
                secs_after_first_request: 3_600,
            }),
            ..later()
        };
        assert_eq!(
            classify_click(SAFARI, &burst, &t),
            (Verdict::Scanner, "burst")
        );
        let safe_links = Signals {
            secs_since_send: Some(5),
            head_probe: true,
            ..later()
        };
        assert_eq!(
            classify_click(STALE_CHROME, &safe_links, &t).0,
            Verdict::Scanner
        );
        // One address clicking for many recipients none of whom opened: a gateway.
        let shared = Signals {
            shared_ip: true,
            prior_open: false,
            ..later()
        };
        assert_eq!(
            classify_click(SAFARI, &shared, &t),
            (Verdict::Scanner, "one_ip_many_recipients")
        );
        // A click with no open 30 s after sending: images off, probably a person
        // (issue 14 class 3; this was `click_without_open_soon_after_send`, scanner).
        let no_open = Signals {
            secs_since_send: Some(30),
            prior_open: false,
            ..later()
        };
        assert_eq!(
            classify_click(SAFARI, &no_open, &t),
            (Verdict::Human, "click_without_open")
        );
        // Without an open but long after sending: images were just blocked.
        let no_open_late = Signals {
            prior_open: false,
            ..later()
        };
        assert_eq!(classify_click(SAFARI, &no_open_late, &t).0, Verdict::Human);
        assert_eq!(classify_click("curl/8", &later(), &t).0, Verdict::Bot);
    }

    /// Issue 14's classes, one case each, at the level of the rules.
    #[test]
    fn late_scanners_offices_fast_people_link_checks_and_monitors() {
        let t = Thresholds::default();
        let first = |secs| Signals {
            secs_since_send: Some(900 + secs),
            secs_since_first_request: Some(secs),
            prior_open: false,
            ..Signals::default()
        };
        // 1. A late scanner: 15 min after the send, 0.4 s after this email's first
        // request, no open by a person.
        assert_eq!(
            classify_click(SAFARI, &first(0), &t),
            (Verdict::Scanner, "too_soon_after_delivery")
        );
        let cloud = Signals {
            network: Some(NetworkClass::Cloud),
            ..first(5_000)
        };
        assert_eq!(
            classify_open(SAFARI, &cloud, &t),
            (Verdict::Scanner, "cloud_network")
        );
        // 2. People behind one office address opened first: persons.
        let nat = Signals {
            shared_ip: true,
            ..later()
        };
        assert_eq!(classify_click(SAFARI, &nat, &t), (Verdict::Human, "ok"));
        // 3. Fast people: Outlook 8 s after the send; tabs at human speed after an open.
        let fast = Signals {
            secs_since_send: Some(8),
            ..Signals::default()
        };
        assert_eq!(
            classify_open(OUTLOOK, &fast, &t),
            (Verdict::Human, "mail_client")
        );
        assert_eq!(
            classify_open(SAFARI, &fast, &t),
            (Verdict::Scanner, "too_soon_after_send")
        );
        let tabs = Signals {
            burst: Some(Burst {
                machine_timing: false,
                secs_after_first_request: 120,
            }),
            ..later()
        };
        assert_eq!(
            classify_click(SAFARI, &tabs, &t),
            (Verdict::Human, "tabs_after_open")
        );
        // The same spacing with no open first, or right on arrival: a scanner.
        for s in [
            Signals {
                prior_open: false,
                ..tabs
            },
            Signals {
                burst: Some(Burst {
                    machine_timing: false,
                    secs_after_first_request: 1,
                }),
                ..later()
            },
        ] {
            assert_eq!(classify_click(SAFARI, &s, &t), (Verdict::Scanner, "burst"));
        }
        // 4. Link checks around a real click, and re-crawls from a cloud.
        for ua in [
            "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
            "Microsoft Office Existence Discovery",
        ] {
            assert_eq!(
                classify_click(ua, &later(), &t),
                (Verdict::Scanner, "office_link_check")
            );
        }
        let recrawl = Signals {
            network: Some(NetworkClass::Cloud),
            ..later()
        };
        assert_eq!(
            classify_click(SAFARI, &recrawl, &t),
            (Verdict::Scanner, "cloud_network")
        );
        // 5. Synthetic monitoring.
        let dd = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 DatadogSynthetics";
        assert_eq!(
            classify_click(dd, &later(), &t),
            (Verdict::Bot, "synthetic_monitor")
        );
        assert_eq!(
            classify_open(dd, &later(), &t),
            (Verdict::Bot, "synthetic_monitor")
        );
        // Every reason a rule gives has a readable sentence and a confidence.
        let reasons = [
            "ok",
            "mail_client",
            "ua_security_scanner",
            "scanner_network",
            "office_link_check",
            "head_before_get",
            "burst",
            "synthetic_monitor",
            "empty_ua",
            "crawler_list",
            "one_ip_many_recipients",
            "cloud_network",
            "too_soon_after_delivery",
            "too_soon_after_send",
            "click_without_open",
            "tabs_after_open",
        ];
        for r in reasons.into_iter().chain(LANDING_CONFIRMS.iter().copied()) {
            let (_, text) = crate::model::email_reason(r);
            assert_ne!(text, r, "{r} has no sentence");
        }
    }
}
