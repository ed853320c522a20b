//! The campaign report: human and machine opens and clicks side by side. A pure
//! function over the campaign's raw email events (a campaign has at most a few
//! events per recipient, so this stays small), so verdict rules can change and old
//! campaigns are re-reported with them.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::clock::{Millis, HOUR_MS};
use crate::model::{Campaign, Verdict};
use crate::store::EmailRow;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counted {
    pub total: i64,
    /// Distinct recipients.
    pub unique: i64,
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
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Clicks {
    pub total: i64,
    pub unique: i64,
    pub unique_human: i64,
    pub by_verdict: BTreeMap<&'static str, Counted>,
    /// Click-through rate: unique human clicks / delivered, percent.
    pub ctr: Option<f64>,
    /// Click-to-open rate: unique human clicks / unique human opens, percent.
    pub click_to_open: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkRow {
    pub url: String,
    pub total: i64,
    pub unique: i64,
    pub unique_human: i64,
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
    pub human_clicks: i64,
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
    let unique_human_clicks = distinct(&clicks, &|r| verdict(r) == Verdict::Human);

    let mut links: HashMap<&str, (i64, HashSet<&str>, HashSet<&str>)> = HashMap::new();
    for r in &clicks {
        let e = links.entry(r.link.as_str()).or_default();
        e.0 += 1;
        e.1.insert(&r.recipient);
        if verdict(r) == Verdict::Human {
            e.2.insert(&r.recipient);
        }
    }
    let mut links: Vec<LinkRow> = links
        .into_iter()
        .map(|(url, (total, u, h))| LinkRow {
            url: url.to_owned(),
            total,
            unique: u.len() as i64,
            unique_human: h.len() as i64,
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
                });
            let v = verdict(r);
            if r.name == "email_open" {
                row.opens += 1;
                row.first_open = Some(row.first_open.map_or(r.ts_ms, |t| t.min(r.ts_ms)));
                row.last_open = Some(row.last_open.map_or(r.ts_ms, |t| t.max(r.ts_ms)));
                row.human_opens += i64::from(v.is_human_triggered());
            } else {
                row.clicks += 1;
                row.human_clicks += i64::from(v == Verdict::Human);
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
        },
        clicks: Clicks {
            total: clicks.len() as i64,
            unique: unique_clicks,
            unique_human: unique_human_clicks,
            by_verdict: by_verdict(clicks.iter().copied()),
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
                unique_human: 1
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
