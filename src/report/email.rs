//! The campaign report: human and machine opens and clicks side by side. A pure
//! function over the campaign's raw email events (a campaign has at most a few
//! events per recipient, so this stays small), so verdict rules can change and old
//! campaigns are re-reported with them. Every verdict is shown with its reason in
//! words and its confidence; clicks whose verdict is only probable are counted apart
//! (`Clicks::uncertain`), not in the human or the machine numbers.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::clock::{Millis, HOUR_MS};
use crate::model::{email_reason, Campaign, Confidence, Verdict};
use crate::store::EmailRow;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counted {
    pub total: i64,
    /// Distinct recipients.
    pub unique: i64,
}

/// Events of one verdict and reason: why, in words, and how sure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReasonRow {
    pub verdict: &'static str,
    /// The rule's code (`scanner_network`, `burst`…), as exports show it.
    pub reason: String,
    /// `certain` or `probable`.
    pub confidence: &'static str,
    /// The reason as a sentence a marketer can read.
    pub explanation: String,
    pub total: i64,
    /// Distinct recipients.
    pub unique: i64,
}

/// Clicks whose verdict is only probable, shown apart from the human and machine
/// numbers: a recipient counts here when none of their clicks is a certain person's.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Uncertain {
    pub total: i64,
    pub unique: i64,
    /// Probably a person (images off, tabs after an open…).
    pub probably_human: Counted,
    /// Probably a machine (a cloud network, seconds after delivery…).
    pub probably_machine: Counted,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Opens {
    pub total: i64,
    pub unique: i64,
    /// Distinct recipients with an open a person caused (direct, Gmail/Yahoo/other proxy).
    pub unique_human: i64,
    /// Per verdict: human, apple_mpp, gmail_proxy, yahoo_proxy, other_proxy, scanner, bot.
    pub by_verdict: BTreeMap<&'static str, Counted>,
    /// unique_human / delivered, percent.
    pub rate_human: Option<f64>,
    /// unique / delivered, percent (what tools that count every machine open report).
    pub rate_all: Option<f64>,
    /// Per verdict and reason, with the reason in words and its confidence.
    pub by_reason: Vec<ReasonRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Clicks {
    pub total: i64,
    pub unique: i64,
    /// Distinct recipients with a click certainly a person's.
    pub unique_human: i64,
    /// Per verdict as stored (probable ones included in their side).
    pub by_verdict: BTreeMap<&'static str, Counted>,
    /// Per verdict and reason, with the reason in words and its confidence.
    pub by_reason: Vec<ReasonRow>,
    /// Clicks only probably a person's or a machine's, apart.
    pub uncertain: Uncertain,
    /// Click-through rate: unique human clicks / delivered, percent.
    pub ctr: Option<f64>,
    /// The click-through rate if every uncertain recipient were a person: the top of
    /// the range whose bottom is `ctr`.
    pub ctr_with_uncertain: Option<f64>,
    /// Click-to-open rate: unique human clicks / unique human opens, percent.
    pub click_to_open: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkRow {
    pub url: String,
    pub total: i64,
    pub unique: i64,
    pub unique_human: i64,
    /// Distinct recipients whose clicks on it are only uncertain.
    pub unique_uncertain: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShareRow {
    pub value: String,
    pub opens: i64,
    pub human_opens: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HourRow {
    /// Hours after the send time (or after the first event when it is unknown).
    pub hour: i64,
    pub human_opens: i64,
    pub machine_opens: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecipientRow {
    pub recipient: String,
    pub first_open: Option<Millis>,
    pub last_open: Option<Millis>,
    pub opens: i64,
    pub human_opens: i64,
    pub clicks: i64,
    /// Clicks certainly a person's.
    pub human_clicks: i64,
    /// Clicks only probably a person's or a machine's.
    pub uncertain_clicks: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CampaignReport {
    pub id: i64,
    pub name: String,
    pub sent_ms: Option<Millis>,
    pub delivered: Option<i64>,
    pub opens: Opens,
    pub clicks: Clicks,
    pub links: Vec<LinkRow>,
    pub clients: Vec<ShareRow>,
    pub devices: Vec<ShareRow>,
    pub first_48h: Vec<HourRow>,
    pub recipients: Vec<RecipientRow>,
    /// Ad impressions, clicks and the conversions credited to the campaign (filled by
    /// [`crate::report::campaign`], which reads more than email events).
    pub ads: Option<super::ads::AdReport>,
}

fn pct(n: i64, d: Option<i64>) -> Option<f64> {
    match d {
        Some(d) if d > 0 => Some((n as f64 * 1000.0 / d as f64).round() / 10.0),
        _ => None,
    }
}

fn verdict(row: &EmailRow) -> Verdict {
    Verdict::parse(&row.verdict).unwrap_or(Verdict::Human)
}

fn confidence(row: &EmailRow) -> Confidence {
    email_reason(&row.reason).0
}

/// A click certainly a person's.
fn certain_human(row: &EmailRow) -> bool {
    verdict(row) == Verdict::Human && confidence(row) == Confidence::Certain
}

fn uncertain(row: &EmailRow) -> bool {
    confidence(row) == Confidence::Probable
}

fn by_reason<'a>(rows: impl Iterator<Item = &'a EmailRow>) -> Vec<ReasonRow> {
    let mut m: BTreeMap<(&'static str, &str), (i64, HashSet<&str>)> = BTreeMap::new();
    for r in rows {
        let e = m
            .entry((verdict(r).as_str(), r.reason.as_str()))
            .or_default();
        e.0 += 1;
        e.1.insert(&r.recipient);
    }
    let mut out: Vec<ReasonRow> = m
        .into_iter()
        .map(|((v, reason), (total, who))| {
            let (conf, text) = email_reason(reason);
            ReasonRow {
                verdict: v,
                reason: reason.to_owned(),
                confidence: conf.as_str(),
                explanation: text.to_owned(),
                total,
                unique: who.len() as i64,
            }
        })
        .collect();
    out.sort_by(|a, b| b.total.cmp(&a.total).then(a.reason.cmp(&b.reason)));
    out
}

fn shares(rows: &[&EmailRow], key: impl Fn(&EmailRow) -> &str) -> Vec<ShareRow> {
    let mut m: HashMap<&str, (i64, i64)> = HashMap::new();
    for r in rows {
        let e = m.entry(key(r)).or_default();
        e.0 += 1;
        e.1 += i64::from(verdict(r).is_human_triggered());
    }
    let mut out: Vec<ShareRow> = m
        .into_iter()
        .map(|(v, (opens, human))| ShareRow {
            value: if v.is_empty() {
                "unknown".into()
            } else {
                v.to_owned()
            },
            opens,
            human_opens: human,
        })
        .collect();
    out.sort_by(|a, b| {
        b.human_opens
            .cmp(&a.human_opens)
            .then(b.opens.cmp(&a.opens))
            .then(a.value.cmp(&b.value))
    });
    out
}

fn by_verdict<'a>(rows: impl Iterator<Item = &'a EmailRow>) -> BTreeMap<&'static str, Counted> {
    let mut recips: HashMap<Verdict, HashSet<&str>> = HashMap::new();
    let mut out: BTreeMap<&'static str, Counted> = BTreeMap::new();
    for r in rows {
        let v = verdict(r);
        out.entry(v.as_str()).or_default().total += 1;
        recips.entry(v).or_default().insert(&r.recipient);
    }
    for (v, set) in recips {
        if let Some(c) = out.get_mut(v.as_str()) {
            c.unique = set.len() as i64;
        }
    }
    out
}

pub fn campaign_report(c: &Campaign, events: &[EmailRow], with_recipients: bool) -> CampaignReport {
    let opens: Vec<&EmailRow> = events.iter().filter(|e| e.name == "email_open").collect();
    let clicks: Vec<&EmailRow> = events.iter().filter(|e| e.name == "email_click").collect();
    let distinct = |rows: &[&EmailRow], f: &dyn Fn(&EmailRow) -> bool| {
        rows.iter()
            .filter(|r| f(r))
            .map(|r| r.recipient.as_str())
            .collect::<HashSet<_>>()
            .len() as i64
    };
    let unique_opens = distinct(&opens, &|_| true);
    let unique_human_opens = distinct(&opens, &|r| verdict(r).is_human_triggered());
    let unique_clicks = distinct(&clicks, &|_| true);
    let human_recipients: HashSet<&str> = clicks
        .iter()
        .filter(|r| certain_human(r))
        .map(|r| r.recipient.as_str())
        .collect();
    let unique_human_clicks = human_recipients.len() as i64;
    let mut unsure = Uncertain::default();
    let (mut unsure_who, mut likely_human, mut likely_machine) =
        (HashSet::new(), HashSet::new(), HashSet::new());
    for r in clicks.iter().filter(|r| uncertain(r)) {
        unsure.total += 1;
        let person = verdict(r) == Verdict::Human;
        if person {
            unsure.probably_human.total += 1;
        } else {
            unsure.probably_machine.total += 1;
        }
        if !human_recipients.contains(r.recipient.as_str()) {
            unsure_who.insert(r.recipient.as_str());
            if person {
                likely_human.insert(r.recipient.as_str());
            } else {
                likely_machine.insert(r.recipient.as_str());
            }
        }
    }
    unsure.unique = unsure_who.len() as i64;
    unsure.probably_human.unique = likely_human.len() as i64;
    unsure.probably_machine.unique = likely_machine.len() as i64;

    type LinkTally<'a> = (i64, HashSet<&'a str>, HashSet<&'a str>, HashSet<&'a str>);
    let mut links: HashMap<&str, LinkTally> = HashMap::new();
    for r in &clicks {
        let e = links.entry(r.link.as_str()).or_default();
        e.0 += 1;
        e.1.insert(&r.recipient);
        if certain_human(r) {
            e.2.insert(&r.recipient);
        } else if uncertain(r) {
            e.3.insert(&r.recipient);
        }
    }
    let mut links: Vec<LinkRow> = links
        .into_iter()
        .map(|(url, (total, u, h, q))| LinkRow {
            url: url.to_owned(),
            total,
            unique: u.len() as i64,
            unique_human: h.len() as i64,
            unique_uncertain: q.difference(&h).count() as i64,
        })
        .collect();
    links.sort_by(|a, b| {
        b.unique_human
            .cmp(&a.unique_human)
            .then(b.total.cmp(&a.total))
            .then(a.url.cmp(&b.url))
    });

    let start = c.sent_ms.or_else(|| events.first().map(|e| e.ts_ms));
    let mut hours: Vec<HourRow> = (0..48)
        .map(|hour| HourRow {
            hour,
            human_opens: 0,
            machine_opens: 0,
        })
        .collect();
    if let Some(start) = start {
        for r in &opens {
            let h = (r.ts_ms - start).div_euclid(HOUR_MS);
            if let Some(row) = usize::try_from(h).ok().and_then(|h| hours.get_mut(h)) {
                if verdict(r).is_human_triggered() {
                    row.human_opens += 1;
                } else {
                    row.machine_opens += 1;
                }
            }
        }
    }

    let mut recipients = Vec::new();
    if with_recipients {
        let mut m: BTreeMap<&str, RecipientRow> = BTreeMap::new();
        for r in events {
            let row = m
                .entry(r.recipient.as_str())
                .or_insert_with(|| RecipientRow {
                    recipient: r.recipient.clone(),
                    first_open: None,
                    last_open: None,
                    opens: 0,
                    human_opens: 0,
                    clicks: 0,
                    human_clicks: 0,
                    uncertain_clicks: 0,
                });
            let v = verdict(r);
            if r.name == "email_open" {
                row.opens += 1;
                row.first_open = Some(row.first_open.map_or(r.ts_ms, |t| t.min(r.ts_ms)));
                row.last_open = Some(row.last_open.map_or(r.ts_ms, |t| t.max(r.ts_ms)));
                row.human_opens += i64::from(v.is_human_triggered());
            } else {
                row.clicks += 1;
                row.human_clicks += i64::from(certain_human(r));
                row.uncertain_clicks += i64::from(uncertain(r));
            }
        }
        recipients = m.into_values().collect();
    }

    CampaignReport {
        id: c.id,
        name: c.name.clone(),
        sent_ms: c.sent_ms,
        delivered: c.delivered,
        opens: Opens {
            total: opens.len() as i64,
            unique: unique_opens,
            unique_human: unique_human_opens,
            by_verdict: by_verdict(opens.iter().copied()),
            rate_human: pct(unique_human_opens, c.delivered),
            rate_all: pct(unique_opens, c.delivered),
            by_reason: by_reason(opens.iter().copied()),
        },
        clicks: Clicks {
            total: clicks.len() as i64,
            unique: unique_clicks,
            unique_human: unique_human_clicks,
            by_verdict: by_verdict(clicks.iter().copied()),
            by_reason: by_reason(clicks.iter().copied()),
            ctr_with_uncertain: pct(unique_human_clicks + unsure.unique, c.delivered),
            uncertain: unsure,
            ctr: pct(unique_human_clicks, c.delivered),
            click_to_open: pct(unique_human_clicks, Some(unique_human_opens)),
        },
        links,
        clients: shares(&opens, |r| &r.client),
        devices: shares(&opens, |r| &r.device),
        first_48h: hours,
        recipients,
        ads: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: Millis, name: &str, who: &str, link: &str, verdict: &str) -> EmailRow {
        EmailRow {
            ts_ms: t,
            name: name.into(),
            recipient: who.into(),
            link: link.into(),
            verdict: verdict.into(),
            client: "Gmail".into(),
            device: "desktop".into(),
            reason: String::new(),
        }
    }

    #[test]
    fn human_and_machine_numbers_side_by_side() {
        let c = Campaign {
            id: 1,
            site_id: 1,
            name: "Nov".into(),
            created_ms: 0,
            sent_ms: Some(0),
            delivered: Some(4),
            cost: None,
        };
        let h = HOUR_MS;
        let ev = vec![
            row(2_000, "email_open", "a", "", "apple_mpp"),
            row(h + 5, "email_open", "b", "", "gmail_proxy"),
            row(h + 9, "email_open", "b", "", "gmail_proxy"),
            row(2 * h, "email_open", "c", "", "human"),
            row(3_000, "email_click", "d", "https://x/1", "scanner"),
            row(2 * h + 60_000, "email_click", "c", "https://x/1", "human"),
            row(2 * h + 90_000, "email_click", "c", "https://x/2", "human"),
        ];
        let r = campaign_report(&c, &ev, true);
        assert_eq!(
            (r.opens.total, r.opens.unique, r.opens.unique_human),
            (4, 3, 2)
        );
        assert_eq!(r.opens.rate_human, Some(50.0));
        assert_eq!(r.opens.rate_all, Some(75.0));
        assert_eq!(
            r.opens.by_verdict["gmail_proxy"],
            Counted {
                total: 2,
                unique: 1
            }
        );
        assert_eq!(
            r.opens.by_verdict["apple_mpp"],
            Counted {
                total: 1,
                unique: 1
            }
        );
        assert_eq!(
            (r.clicks.total, r.clicks.unique, r.clicks.unique_human),
            (3, 2, 1)
        );
        assert_eq!(r.clicks.ctr, Some(25.0));
        assert_eq!(r.clicks.click_to_open, Some(50.0));
        assert_eq!(
            r.links[0],
            LinkRow {
                url: "https://x/1".into(),
                total: 2,
                unique: 2,
                unique_human: 1,
                unique_uncertain: 0,
            }
        );
        assert_eq!(
            (
                r.first_48h[0].machine_opens,
                r.first_48h[1].human_opens,
                r.first_48h[2].human_opens
            ),
            (1, 2, 1)
        );
        let c_row = r.recipients.iter().find(|x| x.recipient == "c").unwrap();
        assert_eq!((c_row.opens, c_row.clicks, c_row.human_clicks), (1, 2, 2));
        assert_eq!(r.clients[0].value, "Gmail");
    }
}

#[cfg(test)]
mod uncertain_tests {
    use super::*;

    fn click(t: Millis, who: &str, link: &str, verdict: &str, reason: &str) -> EmailRow {
        EmailRow {
            ts_ms: t,
            name: "email_click".into(),
            recipient: who.into(),
            link: link.into(),
            verdict: verdict.into(),
            client: "other".into(),
            device: "desktop".into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn uncertain_clicks_are_counted_apart_with_every_reason_in_words() {
        let c = Campaign {
            id: 1,
            site_id: 1,
            name: "Reset".into(),
            created_ms: 0,
            sent_ms: Some(0),
            delivered: Some(10),
            cost: None,
        };
        let ev = vec![
            click(1_000, "a", "https://x/1", "scanner", "scanner_network"),
            click(35_000, "b", "https://x/1", "human", "click_without_open"),
            click(40_000, "c", "https://x/1", "human", "ok"),
            click(50_000, "d", "https://x/2", "scanner", "cloud_network"),
            // e: an uncertain click, then a certain one: e is a person, not uncertain.
            click(60_000, "e", "https://x/2", "human", "click_without_open"),
            click(90_000, "e", "https://x/2", "human", "landing_page_view"),
        ];
        let r = campaign_report(&c, &ev, true);
        let k = &r.clicks;
        assert_eq!(k.unique_human, 2, "c and e: certainly people");
        assert_eq!((k.uncertain.total, k.uncertain.unique), (3, 2));
        assert_eq!(
            (
                k.uncertain.probably_human.unique,
                k.uncertain.probably_machine.unique
            ),
            (1, 1),
            "b probably a person, d probably a machine"
        );
        assert_eq!((k.ctr, k.ctr_with_uncertain), (Some(20.0), Some(40.0)));
        let cloud = k
            .by_reason
            .iter()
            .find(|x| x.reason == "cloud_network")
            .unwrap();
        assert_eq!((cloud.verdict, cloud.confidence), ("scanner", "probable"));
        assert!(
            cloud.explanation.starts_with("probably a scanner"),
            "{cloud:?}"
        );
        let net = k
            .by_reason
            .iter()
            .find(|x| x.reason == "scanner_network")
            .unwrap();
        assert_eq!(net.confidence, "certain");
        let link2 = r.links.iter().find(|l| l.url == "https://x/2").unwrap();
        assert_eq!((link2.unique_human, link2.unique_uncertain), (1, 1));
        let b = r.recipients.iter().find(|x| x.recipient == "b").unwrap();
        assert_eq!((b.human_clicks, b.uncertain_clicks), (0, 1));
    }
}
