//! Later evidence for email clicks: a landing pageview right after an uncertain click,
//! from the same browser, shows a person clicked. The writer sees every event in order,
//! so it keeps the recent uncertain clicks by visitor (the keyed hash of site, IP and
//! user agent that both the click and the pageview carry) and, when such a pageview
//! arrives, re-labels the click through the same `Reclassify` path as collect's
//! corrections, in the same transaction as the pageview (and forwarded with it).
//!
//! Only the probable verdicts in `enrich::email::LANDING_CONFIRMS` are confirmed this
//! way: sandboxes render landing pages too, so a certain scanner stays one.

use std::collections::HashMap;

use crate::clock::Millis;
use crate::enrich::email::LANDING_CONFIRMS;
use crate::model::Event;
use crate::store::Reclassify;

/// A pageview this soon after the click is its landing.
pub const LANDING_WINDOW_MS: Millis = 30 * 60_000;
/// Uncertain clicks held at most; past it the oldest half goes.
const MAX_HELD: usize = 100_000;

struct Held {
    ts_ms: Millis,
    campaign_id: i64,
    recipient: String,
    verdict: &'static str,
    reason: &'static str,
}

/// Uncertain email clicks waiting for their landing pageview.
#[derive(Default)]
pub struct Landings {
    /// (site, visitor) → recent uncertain clicks.
    held: HashMap<(i64, i64), Vec<Held>>,
}

impl Landings {
    /// Takes note of `events`' uncertain clicks and returns the re-labellings their
    /// landing pageviews (in `events`, after them) call for.
    pub fn confirm(&mut self, events: &[Event]) -> Vec<Reclassify> {
        let mut out = Vec::new();
        for e in events {
            if e.visitor_id == 0 {
                continue;
            }
            let key = (e.site_id, e.visitor_id);
            if let Some(m) = &e.email {
                if e.name == "email_click" && LANDING_CONFIRMS.contains(&m.reason) {
                    if self.held.len() >= MAX_HELD {
                        self.prune(e.ts_ms);
                    }
                    self.held.entry(key).or_default().push(Held {
                        ts_ms: e.ts_ms,
                        campaign_id: m.campaign_id,
                        recipient: m.recipient.clone(),
                        verdict: m.verdict.as_str(),
                        reason: m.reason,
                    });
                }
                continue;
            }
            if !e.is_pageview() || e.bot.is_some() || e.is_campaign_traffic() {
                continue;
            }
            let Some(clicks) = self.held.remove(&key) else {
                continue;
            };
            for c in clicks {
                if (0..=LANDING_WINDOW_MS).contains(&(e.ts_ms - c.ts_ms)) {
                    out.push(Reclassify {
                        campaign_id: c.campaign_id,
                        recipient: c.recipient,
                        name: "email_click".into(),
                        from_ms: c.ts_ms,
                        verdict: "human",
                        reason: "landing_page_view",
                        from_verdict: c.verdict,
                        from_reason: c.reason,
                    });
                }
            }
        }
        out
    }

    /// Forgets clicks whose landing window is over.
    fn prune(&mut self, now: Millis) {
        self.held.retain(|_, v| {
            v.retain(|c| now - c.ts_ms <= LANDING_WINDOW_MS);
            !v.is_empty()
        });
        if self.held.len() >= MAX_HELD {
            let mut keys: Vec<_> = self.held.keys().copied().collect();
            keys.truncate(MAX_HELD / 2);
            for k in keys {
                self.held.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EmailFields, Verdict};

    fn click(visitor: i64, ts: Millis, verdict: Verdict, reason: &'static str) -> Event {
        Event {
            site_id: 1,
            visitor_id: visitor,
            ts_ms: ts,
            name: "email_click".into(),
            email: Some(EmailFields {
                campaign_id: 9,
                recipient: "r".into(),
                link: "https://shop.example/reset".into(),
                verdict,
                reason,
                client: "other",
            }),
            ..Event::default()
        }
    }

    fn view(visitor: i64, ts: Millis) -> Event {
        Event {
            site_id: 1,
            visitor_id: visitor,
            ts_ms: ts,
            name: "pageview".into(),
            ..Event::default()
        }
    }

    #[test]
    fn a_landing_view_from_the_same_browser_confirms_an_uncertain_click_only() {
        let mut l = Landings::default();
        let fixes = l.confirm(&[
            click(1, 1_000, Verdict::Human, "click_without_open"),
            click(2, 1_000, Verdict::Scanner, "too_soon_after_delivery"),
            click(3, 1_000, Verdict::Scanner, "cloud_network"),
            click(4, 1_000, Verdict::Human, "click_without_open"),
        ]);
        assert!(fixes.is_empty());
        // 1 and 2 land within the window, 3's sandbox renders its page (not
        // confirmed: certain enough), 4 lands too late.
        let fixes = l.confirm(&[
            view(1, 2_500),
            view(2, 4_000),
            view(3, 2_000),
            view(4, 1_000 + LANDING_WINDOW_MS + 1),
        ]);
        let got: Vec<_> = fixes
            .iter()
            .map(|r| {
                (
                    r.from_verdict,
                    r.from_reason,
                    r.verdict,
                    r.reason,
                    r.from_ms,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "human",
                    "click_without_open",
                    "human",
                    "landing_page_view",
                    1_000
                ),
                (
                    "scanner",
                    "too_soon_after_delivery",
                    "human",
                    "landing_page_view",
                    1_000
                ),
            ]
        );
        // Each click is confirmed once.
        assert!(l.confirm(&[view(1, 3_000)]).is_empty());
    }
}
