//! The email-verdict corpus (`tests/fixtures/email-verdicts.toml`): every scenario is
//! replayed through the real server in-process — router, collect's signals, enrich's
//! rules, the writer and its re-labelling — with a fixed clock, one fresh data dir and
//! campaign per scenario. The verdict each event ends with is read back from the store,
//! so corrections made after the fact (a burst recognised late, a landing pageview)
//! count as they would in a report.

use std::collections::BTreeMap;

use crate::common;

use pixeltrack::clock::{Clock, DAY_MS, HOUR_MS};
use pixeltrack::model::Verdict;
use pixeltrack::server::App;
use pixeltrack::store::prelude::*;
use pixeltrack::token::{Action, EmailToken, Keyring};

const CORPUS: &str = include_str!("../fixtures/email-verdicts.toml");
/// 2026-11-02 09:00 UTC: every scenario's campaign is sent then.
const SEND: i64 = 20_394 * DAY_MS + 9 * HOUR_MS;
/// The share of verdicts the corpus must get right.
const REQUIRED_ACCURACY: f64 = 0.95;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Corpus {
    ua: BTreeMap<String, String>,
    scenario: Vec<Scenario>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    name: String,
    class: String,
    source: String,
    note: String,
    requests: Vec<Request>,
}

#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    t: f64,
    #[serde(default = "first_recipient")]
    r: String,
    #[serde(rename = "do")]
    action: String,
    #[serde(default)]
    link: u32,
    ip: String,
    ua: String,
    expect: Option<String>,
}

fn first_recipient() -> String {
    "a".into()
}

fn corpus() -> Corpus {
    let c: Corpus = toml::from_str(CORPUS).expect("the corpus parses");
    for s in &c.scenario {
        assert!(
            s.source.contains("http") && !s.note.is_empty() && !s.class.is_empty(),
            "{}: every scenario names its source (title and URL), class and note",
            s.name
        );
        for r in &s.requests {
            let event = matches!(r.action.as_str(), "open" | "click");
            assert!(
                matches!(
                    r.action.as_str(),
                    "open" | "click" | "head_open" | "head_click" | "view"
                ),
                "{}: unknown action {}",
                s.name,
                r.action
            );
            assert_eq!(
                event,
                r.expect.is_some(),
                "{}: opens and clicks (only) expect a verdict",
                s.name
            );
            if let Some(v) = &r.expect {
                assert!(Verdict::parse(v).is_some(), "{}: verdict {v}", s.name);
            }
        }
    }
    c
}

/// What one request of the corpus ended as.
struct Outcome {
    scenario: String,
    class: String,
    request: Request,
    ua: String,
    got: String,
    reason: String,
}

impl Outcome {
    fn right(&self) -> bool {
        self.request.expect.as_deref() == Some(self.got.as_str())
    }
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_owned()
}

fn peer(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:40000")
    } else {
        format!("{ip}:40000")
    }
}

/// A fresh server whose clock stands an hour before `SEND`, with a campaign of `n`
/// emails sent at `SEND`, and the keys that sign its links.
fn sent_campaign(
    name: &str,
    n: i64,
) -> (
    common::InProcess,
    Clock,
    pixeltrack::model::Campaign,
    Keyring,
    App,
) {
    let fresh = common::InProcess::new("corpus", &[("log_level", "warn".into())]);
    let clock = Clock::fixed(SEND - HOUR_MS);
    let store = &fresh.store;
    let campaign = store
        .add_campaign(fresh.site.id, name, SEND - HOUR_MS)
        .unwrap();
    store
        .set_campaign_sent(campaign.id, Some(n), Some(SEND))
        .unwrap();
    let ring = Keyring::from_masters(store.token_keys(SEND).unwrap());
    let app = App::build(&fresh.rt, clock.clone()).unwrap();
    (fresh, clock, campaign, ring, app)
}

/// Replays one scenario on a fresh server; returns each open's and click's outcome.
async fn replay(s: &Scenario, uas: &BTreeMap<String, String>) -> Vec<Outcome> {
    let (fresh, clock, campaign, ring, app) = sent_campaign(&s.name, 1000);
    let store = &fresh.store;
    let mut requests = s.requests.clone();
    requests.sort_by(|a, b| a.t.total_cmp(&b.t));
    let at = |r: &Request| SEND + (r.t * 1000.0).round() as i64;
    for r in &requests {
        let ua = uas.get(&r.ua).cloned().unwrap_or_else(|| r.ua.clone());
        let link = format!("https://example.com/l{}", r.link);
        let token = |action| {
            ring.seal_email(&EmailToken {
                site_id: fresh.site.id.0,
                campaign_id: campaign.id,
                recipient: Some(r.r.clone()),
                action,
            })
            .unwrap()
        };
        let (method, uri) = match r.action.as_str() {
            "open" => ("GET", format!("/o/{}.gif", token(Action::Open))),
            "head_open" => ("HEAD", format!("/o/{}.gif", token(Action::Open))),
            "click" => ("GET", format!("/c/{}", token(Action::Click(link)))),
            "head_click" => ("HEAD", format!("/c/{}", token(Action::Click(link)))),
            "view" => (
                "GET",
                format!(
                    "/p.gif?s={}&u={}",
                    fresh.site.key,
                    urlencode(&format!("{link}?utm_source=newsletter&utm_medium=email"))
                ),
            ),
            other => panic!("{other}"),
        };
        clock.set(at(r));
        let headers: Vec<(&str, &str)> = if ua.is_empty() {
            Vec::new()
        } else {
            vec![("user-agent", ua.as_str())]
        };
        let res = common::oneshot(app.router(), method, &uri, &headers, &peer(&r.ip)).await;
        let want = if r.action.ends_with("click") {
            302
        } else {
            200
        };
        assert_eq!(res.status().as_u16(), want, "{}: {uri}", s.name);
        if r.expect.is_some() || r.action == "view" {
            assert!(
                res.headers().get("x-pixel-reason").is_none(),
                "{} at {} s: not stored: {:?}",
                s.name,
                r.t,
                res.headers().get("x-pixel-reason")
            );
        }
    }
    app.finish().await.expect("every event written");
    let rows = store.campaign_events(campaign.id).unwrap();
    requests
        .iter()
        .filter(|r| r.expect.is_some())
        .map(|r| {
            let name = format!("email_{}", r.action);
            let row = rows
                .iter()
                .find(|e| e.ts_ms == at(r) && e.recipient == r.r && e.name == name)
                .unwrap_or_else(|| panic!("{}: no event at {} s for {}", s.name, r.t, r.r));
            Outcome {
                scenario: s.name.clone(),
                class: s.class.clone(),
                request: r.clone(),
                ua: uas.get(&r.ua).cloned().unwrap_or_else(|| r.ua.clone()),
                got: row.verdict.clone(),
                reason: row.reason.clone(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_verdict_corpus_is_classified_right() {
    let c = corpus();
    assert!(
        c.scenario.len() >= 60,
        "at least 60 scenarios: {}",
        c.scenario.len()
    );
    let mut outcomes = Vec::new();
    for s in &c.scenario {
        outcomes.extend(replay(s, &c.ua).await);
    }

    // Hard rules, whatever the accuracy: a person-triggered proxy open is an open, an
    // Apple MPP prefetch never a person's open.
    for o in outcomes.iter().filter(|o| o.request.action == "open") {
        let v = Verdict::parse(&o.got).unwrap();
        if o.ua.contains("GoogleImageProxy") || o.ua.contains("YahooMailProxy") {
            assert!(
                v.is_human_triggered(),
                "{}: a Gmail/Yahoo proxy open must count as an open, got {} ({})",
                o.scenario,
                o.got,
                o.reason
            );
        }
        if o.ua.trim() == "Mozilla/5.0" {
            assert_eq!(
                v,
                Verdict::AppleMpp,
                "{}: an MPP prefetch is never a person's open",
                o.scenario
            );
        }
    }

    let mut by_class: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for o in &outcomes {
        let e = by_class.entry(&o.class).or_default();
        e.0 += usize::from(o.right());
        e.1 += 1;
    }
    let right = outcomes.iter().filter(|o| o.right()).count();
    let accuracy = right as f64 / outcomes.len() as f64;
    println!(
        "email verdict corpus: {} scenarios, {right}/{} verdicts right ({:.1} %)",
        c.scenario.len(),
        outcomes.len(),
        accuracy * 100.0
    );
    for (class, (r, n)) in &by_class {
        println!("  {class:<14} {r}/{n}");
    }
    for o in outcomes.iter().filter(|o| !o.right()) {
        println!(
            "  WRONG {} ({}): {} {} of {} at {} s from {}: expected {}, got {} ({})",
            o.scenario,
            o.class,
            o.request.action,
            o.request.link,
            o.request.r,
            o.request.t,
            o.request.ip,
            o.request.expect.as_deref().unwrap_or(""),
            o.got,
            o.reason
        );
    }
    assert!(
        accuracy >= REQUIRED_ACCURACY,
        "{:.1} % of the corpus's verdicts right, {:.0} % required (misclassified above)",
        accuracy * 100.0,
        REQUIRED_ACCURACY * 100.0
    );
}

/// A click asks the store whether its recipient opened the mail (another collector may
/// have recorded the open), and believes a "no" for ten seconds, not one read a click.
/// Within 60 s of sending and with no open, a click is `click_without_open`; with an
/// open by a person it is `ok` — which is how the belief shows.
#[tokio::test(flavor = "multi_thread")]
async fn a_stores_no_open_is_believed_for_ten_seconds() {
    use pixeltrack::model::{EmailFields, Event};
    let (fresh, clock, campaign, ring, app) = sent_campaign("Belief", 1);
    let store = &fresh.store;
    let token = |action| {
        ring.seal_email(&EmailToken {
            site_id: fresh.site.id.0,
            campaign_id: campaign.id,
            recipient: Some("r1".into()),
            action,
        })
        .unwrap()
    };
    let click = format!(
        "/c/{}",
        token(Action::Click("https://example.com/a".into()))
    );
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    let request = |method: &'static str, uri: String, secs: i64| {
        clock.set(SEND + secs * 1000);
        let router = app.router();
        async move {
            let res = common::oneshot(
                router,
                method,
                &uri,
                &[("user-agent", chrome)],
                &peer("198.51.100.7"),
            )
            .await;
            assert!(res.status().is_success() || res.status().is_redirection());
            assert!(
                res.headers().get("x-pixel-reason").is_none(),
                "{uri}: not stored"
            );
        }
    };
    // A click 1 s after sending (a link checker: too soon), the person's 20 s after.
    request("GET", click.clone(), 1).await;
    request("GET", click.clone(), 20).await;
    // Another collector records the recipient's open by a person, straight into the
    // shared store: this process has not seen it.
    let mut w = store
        .writer(pixeltrack::config::Synchronous::Normal)
        .unwrap();
    let open = Event {
        site_id: fresh.site.id.0,
        ts_ms: SEND + 22_000,
        name: "email_open".into(),
        email: Some(EmailFields {
            campaign_id: campaign.id,
            recipient: "r1".into(),
            link: String::new(),
            verdict: Verdict::Human,
            reason: "ok",
            client: "Other",
        }),
        ..Event::default()
    };
    w.apply(&[open], &[], None).unwrap();
    drop(w);
    // 5 s after the store said "no": still believed. 15 s after: read again.
    request("GET", click.clone(), 25).await;
    request("GET", click, 35).await;
    app.finish().await.expect("every event written");
    let clicks: Vec<(i64, String)> = store
        .campaign_events(campaign.id)
        .unwrap()
        .into_iter()
        .filter(|e| e.name == "email_click")
        .map(|e| ((e.ts_ms - SEND) / 1000, e.reason))
        .collect();
    assert_eq!(
        clicks,
        vec![
            (1, "too_soon_after_delivery".to_string()),
            (20, "click_without_open".to_string()),
            (25, "click_without_open".to_string()),
            (35, "ok".to_string()),
        ]
    );
}
