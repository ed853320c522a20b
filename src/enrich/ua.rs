//! User agent → browser, OS, device type, using uap-core's maintained regexes
//! (vendored as `data/uap-regexes.json`) through the `ua-parser` crate, whose
//! `regex` engine runs in linear time (no backtracking: CVE-2020-5243 cannot happen).
//! Real traffic repeats a few thousand UAs, so parses sit behind a bounded cache.

use std::sync::{Arc, OnceLock};

use crate::model::Device;

static UAP_JSON: &str = include_str!("../../data/uap-regexes.json");

/// What a user agent tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UaInfo {
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    pub device: Device,
    /// uap-core classifies the device as `Spider`.
    pub spider: bool,
    /// The bot verdict, cached with the parse (the crawler regex is the costlier part).
    pub bot: Option<crate::model::BotReason>,
}

fn extractor() -> &'static ua_parser::Extractor<'static> {
    static EXTRACTOR: OnceLock<ua_parser::Extractor<'static>> = OnceLock::new();
    EXTRACTOR.get_or_init(build_extractor)
}

/// Compiles uap-core's regexes: about 0.2 s of one core, all but a little of it the
/// browsers', operating systems' and devices' regex sets, which are independent. So the
/// three are compiled on threads of their own: a server starts sooner, and an import's
/// first batch waits less (its other threads are idle until then).
fn build_extractor() -> ua_parser::Extractor<'static> {
    use ua_parser::{device, os, user_agent};
    let regexes: ua_parser::Regexes<'static> =
        serde_json::from_str(UAP_JSON).expect("vendored uap-regexes.json is valid");
    // The three builders share no trait: one expression, written once.
    macro_rules! compile {
        ($parsers:expr, $builder:ty) => {
            $parsers
                .into_iter()
                .try_fold(<$builder>::new(), |b, p| b.push(p))
                .expect("vendored uap regexes compile")
                .build()
                .expect("vendored uap regexes compile")
        };
    }
    let ua_parser::Regexes {
        user_agent_parsers,
        os_parsers,
        device_parsers,
    } = regexes;
    std::thread::scope(|s| {
        let os = s.spawn(|| compile!(os_parsers, os::Builder));
        let dev = s.spawn(|| compile!(device_parsers, device::Builder));
        let ua = compile!(user_agent_parsers, user_agent::Builder);
        ua_parser::Extractor {
            ua,
            os: os.join().expect("compiling the OS regexes"),
            dev: dev.join().expect("compiling the device regexes"),
        }
    })
}

/// Builds the extractor now rather than on the first request.
pub fn warm_up() {
    extractor();
}

pub struct UaParser {
    cache: quick_cache::sync::Cache<String, Arc<UaInfo>>,
    parse_bytes: usize,
}

impl UaParser {
    pub fn new(cache_size: usize, parse_bytes: usize) -> Self {
        UaParser {
            cache: quick_cache::sync::Cache::new(cache_size.max(1)),
            parse_bytes,
        }
    }

    /// Parses `ua`, truncated to the configured byte cap first (the bot verdict too:
    /// no crawler hides its name behind 512 bytes of padding that a browser would send).
    pub fn parse(&self, ua: &str) -> Arc<UaInfo> {
        let ua = truncate(ua, self.parse_bytes);
        if let Some(hit) = self.cache.get(ua) {
            return hit;
        }
        let info = Arc::new(parse_uncached(ua));
        self.cache.insert(ua.to_owned(), info.clone());
        info
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn version(parts: [Option<&str>; 3]) -> String {
    let mut out = String::new();
    for p in parts.into_iter().flatten().filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(p);
    }
    out
}

pub fn parse_uncached(ua: &str) -> UaInfo {
    let (browser, os, dev) = extractor().extract(ua);
    let mut info = UaInfo::default();
    if let Some(b) = browser {
        if b.family != "Other" {
            info.browser = b.family.to_string();
            info.browser_version = version([b.major, b.minor, None]);
        }
    }
    if let Some(o) = os {
        if o.os != "Other" {
            info.os = o.os.to_string();
            info.os_version = version([o.major.as_deref(), o.minor.as_deref(), None]);
        }
    }
    let device_family = dev.map(|d| d.device.to_string()).unwrap_or_default();
    info.spider = device_family == "Spider";
    info.device = device_type(ua, &device_family, &info.os);
    info.bot = super::bot::verdict(ua, info.spider);
    info
}

/// uap-core names devices, not their form factor. The form factor follows the
/// conventions browsers document: iPads and Android without the `Mobile` token are
/// tablets (developer.chrome.com/docs/multidevice/user-agent), `Mobile` means a phone.
fn device_type(ua: &str, family: &str, os: &str) -> Device {
    let tablet_family = ["iPad", "Kindle", "Tablet", "Tab"]
        .iter()
        .any(|t| family.contains(t));
    if tablet_family || (os == "Android" && !ua.contains("Mobile")) {
        return Device::Tablet;
    }
    if family.contains("iPhone")
        || family.contains("iPod")
        || family.contains("Phone")
        || ua.contains("Mobile")
        || os == "Android"
        || os == "iOS"
    {
        return Device::Mobile;
    }
    let desktop_os = [
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Chrome OS",
        "Fedora",
        "Debian",
        "FreeBSD",
        "OpenBSD",
    ];
    if desktop_os.iter().any(|d| os.starts_with(d)) {
        return Device::Desktop;
    }
    Device::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        ua: &'static str,
        browser: &'static str,
        version: &'static str,
        os: &'static str,
        os_version: &'static str,
        device: Device,
    }

    const CASES: &[Case] = &[
        Case {
            ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            browser: "Chrome", version: "124.0", os: "Windows", os_version: "10", device: Device::Desktop,
        },
        Case {
            ua: "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
            browser: "Firefox", version: "125.0", os: "Ubuntu", os_version: "", device: Device::Desktop,
        },
        Case {
            ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
            browser: "Safari", version: "17.4", os: "Mac OS X", os_version: "10.15", device: Device::Desktop,
        },
        Case {
            ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
            browser: "Edge", version: "124.0", os: "Windows", os_version: "10", device: Device::Desktop,
        },
        Case {
            ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
            browser: "Mobile Safari", version: "17.4", os: "iOS", os_version: "17.4", device: Device::Mobile,
        },
        Case {
            ua: "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
            browser: "Mobile Safari", version: "16.6", os: "iOS", os_version: "16.6", device: Device::Tablet,
        },
        Case {
            ua: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
            browser: "Chrome Mobile", version: "124.0", os: "Android", os_version: "14", device: Device::Mobile,
        },
        Case {
            ua: "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
            browser: "Chrome", version: "123.0", os: "Android", os_version: "13", device: Device::Tablet,
        },
        Case {
            ua: "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
            browser: "Firefox Mobile", version: "125.0", os: "Android", os_version: "14", device: Device::Mobile,
        },
    ];

    #[test]
    fn real_browsers_parse_to_browser_os_and_device() {
        let p = UaParser::new(100, 512);
        for c in CASES {
            let info = p.parse(c.ua);
            assert_eq!(
                (
                    info.browser.as_str(),
                    info.browser_version.as_str(),
                    info.os.as_str(),
                    info.os_version.as_str(),
                    info.device
                ),
                (c.browser, c.version, c.os, c.os_version, c.device),
                "{}",
                c.ua
            );
            assert!(!info.spider, "{}", c.ua);
        }
    }

    #[test]
    fn cache_returns_the_same_parse() {
        let p = UaParser::new(2, 512);
        let a = p.parse(CASES[0].ua);
        let b = p.parse(CASES[0].ua);
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn long_user_agents_are_truncated_before_parsing() {
        let p = UaParser::new(10, 64);
        let long = format!("{}{}", CASES[0].ua, "x".repeat(100_000));
        let info = p.parse(&long);
        // Truncated to 64 bytes, the Chrome token is gone but Windows survives.
        assert_eq!(info.os, "Windows");
        assert_eq!(truncate("héllo", 2), "h");
    }

    #[test]
    fn crawlers_are_spiders() {
        let p = UaParser::new(10, 512);
        let g = p.parse("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        assert!(g.spider);
    }
}
