//! Email opens and clicks: who caused them. Pure: the user agent, the request's
//! signals (computed by collect from recent activity and the campaign's send time)
//! and the thresholds come in; a verdict and the reason that decided it come out.
//!
//! Sources for every rule: `shared/research/security.md`, Part B. The proxy and
//! scanner user agents are matched as fixed tokens (no regex): no maintained library
//! classifies email proxies, and the list is short and documented here.

use crate::model::Verdict;

/// What collect knows about a request beyond its user agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signals {
    /// Seconds since the campaign was sent, if its send time is known.
    pub secs_since_send: Option<i64>,
    /// A `HEAD` for the same token came shortly before (link checkers, Safe Links).
    pub head_probe: bool,
    /// The client IP is in a known scanner network (Microsoft 104.47.0.0/16, operator lists).
    pub scanner_network: bool,
    /// Several distinct links of this message clicked within a couple of seconds.
    pub burst: bool,
    /// One IP clicked for several recipients of this campaign within a minute.
    pub shared_ip: bool,
    /// The recipient has an open on record.
    pub prior_open: bool,
}

/// Thresholds, from `[email]` in the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// Activity this soon after sending is machine activity (scanners act on delivery).
    pub min_human_seconds: i64,
    /// A click without any open this soon after sending is a scanner.
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

fn has_scanner_token(ua: &str) -> bool {
    let lower = ua.to_ascii_lowercase();
    SCANNER_TOKENS.iter().any(|t| lower.contains(t))
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

fn machine(ua: &str, s: &Signals, t: &Thresholds) -> Option<(Verdict, &'static str)> {
    if has_scanner_token(ua) {
        return Some((Verdict::Scanner, "ua_security_scanner"));
    }
    if s.scanner_network {
        return Some((Verdict::Scanner, "scanner_network"));
    }
    if s.head_probe {
        return Some((Verdict::Scanner, "head_before_get"));
    }
    if s.secs_since_send
        .is_some_and(|d| (0..t.min_human_seconds).contains(&d))
    {
        return Some((Verdict::Scanner, "too_soon_after_send"));
    }
    None
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
    machine(ua, s, t)
        .or_else(|| bot(ua))
        .unwrap_or((Verdict::Human, "ok"))
}

pub fn classify_click(ua: &str, s: &Signals, t: &Thresholds) -> (Verdict, &'static str) {
    if let Some(m) = machine(ua, s, t) {
        return m;
    }
    if s.burst {
        return (Verdict::Scanner, "burst");
    }
    if s.shared_ip {
        return (Verdict::Scanner, "one_ip_many_recipients");
    }
    if !s.prior_open
        && s.secs_since_send
            .is_some_and(|d| (0..t.click_without_open_seconds).contains(&d))
    {
        return (Verdict::Scanner, "click_without_open_soon_after_send");
    }
    bot(ua).unwrap_or((Verdict::Human, "ok"))
}

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
                    scanner_network: true,
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
        let burst = Signals {
            burst: true,
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
        let shared = Signals {
            shared_ip: true,
            ..later()
        };
        assert_eq!(
            classify_click(SAFARI, &shared, &t),
            (Verdict::Scanner, "one_ip_many_recipients")
        );
        let no_open = Signals {
            secs_since_send: Some(30),
            prior_open: false,
            ..later()
        };
        assert_eq!(
            classify_click(SAFARI, &no_open, &t).1,
            "click_without_open_soon_after_send"
        );
        // Without an open but long after sending: images were just blocked.
        let no_open_late = Signals {
            prior_open: false,
            ..later()
        };
        assert_eq!(classify_click(SAFARI, &no_open_late, &t).0, Verdict::Human);
        assert_eq!(classify_click("curl/8", &later(), &t).0, Verdict::Bot);
    }
}
