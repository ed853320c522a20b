//! What each site's refused hits were in the last hour, in memory: the collector
//! records a refusal it can put on a site (host not allowed, rate limited, no consent…)
//! with the page's host, and the dashboard shows them ("12 hits refused in the last
//! hour: host localhost is not one of the site's hosts — allow it"), so a tracker
//! refused on a test page is not visible only in a browser console and `/metrics`.
//!
//! Counted per minute, kept 60 minutes; bounded: at most [`MAX_KEYS`] (reason, host)
//! pairs per site (later ones count under an empty host) and [`MAX_SITES`] sites.
//! Per process: a restart or another collector starts from zero (`/metrics` is the
//! durable count).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::clock::Millis;
use crate::model::DropReason;

const MINUTE_MS: Millis = 60_000;
const WINDOW_MINUTES: i64 = 60;
pub const MAX_KEYS: usize = 64;
pub const MAX_SITES: usize = 10_000;
/// Hosts longer than this are cut (they are shown, not used).
const MAX_HOST: usize = 253;

/// One site's counters, by (reason, page host).
type SiteCounters = HashMap<(DropReason, String), Counter>;

#[derive(Default)]
pub struct Refusals {
    sites: Mutex<HashMap<i64, SiteCounters>>,
}

#[derive(Default)]
struct Counter {
    /// (minute, hits) pairs, oldest first.
    minutes: VecDeque<(i64, u64)>,
    last_ms: Millis,
}

impl Counter {
    fn prune(&mut self, now_minute: i64) {
        while self
            .minutes
            .front()
            .is_some_and(|(m, _)| now_minute - m >= WINDOW_MINUTES)
        {
            self.minutes.pop_front();
        }
    }
    fn total(&self) -> u64 {
        self.minutes.iter().map(|(_, n)| n).sum()
    }
}

/// Refused hits of one kind in the last hour.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    pub reason: &'static str,
    /// The reason in words (`DropReason::explain`).
    pub explanation: &'static str,
    /// The page's host, for `host_not_allowed` (empty otherwise, or past the bound).
    pub host: String,
    pub hits: u64,
    pub last_ms: Millis,
}

impl Refusals {
    /// Counts one refused hit of `site_id`.
    pub fn record(&self, site_id: i64, reason: DropReason, host: &str, now: Millis) {
        let minute = now.div_euclid(MINUTE_MS);
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        if sites.len() >= MAX_SITES && !sites.contains_key(&site_id) {
            sites.retain(|_, keys| {
                keys.retain(|_, c| {
                    c.prune(minute);
                    !c.minutes.is_empty()
                });
                !keys.is_empty()
            });
            if sites.len() >= MAX_SITES {
                return;
            }
        }
        let keys = sites.entry(site_id).or_default();
        let mut host: String = host.chars().take(MAX_HOST).collect();
        if keys.len() >= MAX_KEYS && !keys.contains_key(&(reason, host.clone())) {
            keys.retain(|_, c| {
                c.prune(minute);
                !c.minutes.is_empty()
            });
            if keys.len() >= MAX_KEYS {
                host.clear();
            }
        }
        let c = keys.entry((reason, host)).or_default();
        c.prune(minute);
        match c.minutes.back_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => c.minutes.push_back((minute, 1)),
        }
        c.last_ms = c.last_ms.max(now);
    }

    /// A site's refusals in the hour before `now`, most hits first.
    pub fn last_hour(&self, site_id: i64, now: Millis) -> Vec<Refused> {
        let minute = now.div_euclid(MINUTE_MS);
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        let Some(keys) = sites.get_mut(&site_id) else {
            return Vec::new();
        };
        let mut out: Vec<Refused> = keys
            .iter_mut()
            .filter_map(|((reason, host), c)| {
                c.prune(minute);
                let hits = c.total();
                (hits > 0).then(|| Refused {
                    reason: reason.as_str(),
                    explanation: reason.explain(),
                    host: host.clone(),
                    hits,
                    last_ms: c.last_ms,
                })
            })
            .collect();
        out.sort_by(|a, b| b.hits.cmp(&a.hits).then(a.host.cmp(&b.host)));
        out
    }

    /// Forgets a site's refusals (after its hosts changed, the old ones are history).
    pub fn forget_host(&self, site_id: i64, host: &str) {
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(keys) = sites.get_mut(&site_id) {
            keys.retain(|(r, h), _| !(*r == DropReason::HostNotAllowed && h == host));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_per_site_reason_and_host_for_one_hour() {
        let r = Refusals::default();
        let t = 10 * 3_600_000;
        for i in 0..12 {
            r.record(1, DropReason::HostNotAllowed, "localhost", t + i * 1000);
        }
        r.record(1, DropReason::RateLimited, "", t);
        r.record(2, DropReason::HostNotAllowed, "evil.example", t);
        let one = r.last_hour(1, t + 30 * MINUTE_MS);
        assert_eq!(one.len(), 2);
        assert_eq!(
            (one[0].reason, one[0].host.as_str(), one[0].hits),
            ("host_not_allowed", "localhost", 12)
        );
        assert_eq!(one[0].last_ms, t + 11_000);
        assert!(!one[0].explanation.is_empty());
        assert_eq!(r.last_hour(2, t).len(), 1);
        assert!(
            r.last_hour(1, t + 61 * MINUTE_MS).is_empty(),
            "an hour later"
        );
        r.record(1, DropReason::HostNotAllowed, "localhost", t);
        r.forget_host(1, "localhost");
        assert!(r.last_hour(1, t).iter().all(|x| x.host != "localhost"));
    }

    #[test]
    fn hosts_past_the_bound_count_together() {
        let r = Refusals::default();
        for i in 0..(MAX_KEYS + 10) {
            r.record(1, DropReason::HostNotAllowed, &format!("h{i}.example"), 0);
        }
        let rows = r.last_hour(1, 0);
        assert!(rows.len() <= MAX_KEYS + 1);
        assert_eq!(
            rows.iter().map(|x| x.hits).sum::<u64>(),
            (MAX_KEYS + 10) as u64
        );
    }
}
