//! Bot verdicts. The crawler list is `isbot`'s (a port of the maintained
//! omrilotan/isbot pattern list: crawlers, HTTP libraries, headless browsers), compiled
//! into one linear-time regex; uap-core's `Spider` device class backs it up. Synthetic
//! monitors that drive a normal Chrome and only append their name (Datadog's browser
//! tests) are missed by that list, so their documented tokens are checked here too.

use std::sync::OnceLock;

use crate::model::BotReason;

fn bots() -> &'static isbot::Bots {
    static BOTS: OnceLock<isbot::Bots> = OnceLock::new();
    BOTS.get_or_init(isbot::Bots::default)
}

pub fn warm_up() {
    bots();
}

/// Synthetic-monitoring robots, as their vendors document their user agents.
const MONITOR_TOKENS: &[&str] = &[
    // Datadog: browser tests' UA "always ends with DatadogSynthetics", API tests send
    // "Datadog/Synthetics" (docs.datadoghq.com/synthetics/guide/identify_synthetics_bots).
    "datadogsynthetics",
    "datadog/synthetics",
    // SolarWinds Observability's availability checks (its custom UA guidelines).
    "solarwindstransactionbot",
    // Others that name themselves: New Relic, Checkly, Pingdom, UptimeRobot, Site24x7,
    // StatusCake, Dynatrace, Catchpoint, GTmetrix.
    "newrelicsynthetics",
    "checkly",
    "pingdom",
    "uptimerobot",
    "site24x7",
    "statuscake",
    "ruxitsynthetic",
    "catchpoint",
    "gtmetrix",
];

/// Whether `ua` is a synthetic-monitoring robot: its checkout is not a sale, its
/// click on an email link not a reader's.
pub fn is_synthetic_monitor(ua: &str) -> bool {
    let lower = ua.to_ascii_lowercase();
    MONITOR_TOKENS.iter().any(|t| lower.contains(t))
}

/// Returns why `ua` is automated, or `None` for a browser.
pub fn verdict(ua: &str, uap_spider: bool) -> Option<BotReason> {
    if ua.trim().is_empty() {
        return Some(BotReason::EmptyUa);
    }
    if bots().is_bot(ua) || is_synthetic_monitor(ua) {
        return Some(BotReason::Crawler);
    }
    uap_spider.then_some(BotReason::Spider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crawlers_and_tools_are_bots() {
        let bots = [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
            "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
            "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "curl/8.5.0",
            "Wget/1.21.4",
            "python-requests/2.31.0",
            "Go-http-client/1.1",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
            // Synthetic monitors (issue 14: a Datadog browser test's checkout was a sale).
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 DatadogSynthetics",
            "Datadog/Synthetics",
            "Mozilla/5.0 (Linux) AppleWebKit/537.36 (KHTML, like Gecko) SolarWindsTransactionBot/1.0 Safari/537.36 Chrome/134.0.0.0",
            "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
            "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
        ];
        for ua in bots {
            assert_eq!(verdict(ua, false), Some(BotReason::Crawler), "{ua}");
        }
        assert_eq!(verdict("", false), Some(BotReason::EmptyUa));
        assert_eq!(verdict("   ", false), Some(BotReason::EmptyUa));
        assert_eq!(verdict("SomethingOdd/1.0", true), Some(BotReason::Spider));
    }

    #[test]
    fn browsers_are_not_bots() {
        let humans = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        ];
        for ua in humans {
            assert_eq!(verdict(ua, false), None, "{ua}");
        }
    }
}
