//! Email tracking end to end: a campaign, an email tagged for three recipients, real
//! client behaviour over HTTP (Gmail proxy, Apple MPP, Outlook, a security scanner's
//! HEAD+GET, a click burst), and every number of the campaign report.

use crate::common;

use common::{cli, http, site_with_campaign, Server, CHROME};

const GMAIL: &str =
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
const OUTLOOK: &str = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)";
const STALE_CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0.4664.110 Safari/537.36";

const EMAIL: &str = r#"<html><body><h1>November</h1>
<a href="https://shop.example/sale">Sale</a>
<a href="https://shop.example/new?x=1&amp;y=2">New</a>
<a href="https://shop.example/blog">Blog</a>
<a href="mailto:help@shop.example">Help</a>
</body></html>"#;

/// Paths of the open pixel and click links in a tagged email, in document order.
fn tracked_paths(html: &str) -> (String, Vec<String>) {
    let opens = common::tracked(html, "http://127.0.0.1:8080/o/");
    assert_eq!(opens.len(), 1);
    (
        opens[0].clone(),
        common::tracked(html, "http://127.0.0.1:8080/c/"),
    )
}

#[test]
fn campaign_report_tells_humans_from_machines() {
    let (dir, data, _) = common::site_dir("shop.example");
    let id = common::add_campaign(&data, "shop.example", "November").to_string();
    let two_hours_ago = chrono::Utc::now() - chrono::Duration::hours(2);
    cli(
        &data,
        &[
            "campaign",
            "sent",
            &id,
            "--count",
            "3",
            "--at",
            &two_hours_ago.to_rfc3339(),
        ],
    );

    // Batch-tag the email for three recipients.
    let out = common::tag_email(
        &data,
        dir.path(),
        &id,
        "email,name\nr1@example.com,One\nr2@example.com,Two\nr3@example.com,Three\n",
        EMAIL,
    );
    let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap();
    let (o1, c1) = tracked_paths(&read("00001-r1@example.com.html"));
    let (o2, _) = tracked_paths(&read("00002-r2@example.com.html"));
    let (o3, c3) = tracked_paths(&read("00003-r3@example.com.html"));
    assert_eq!(c1.len(), 3, "mailto stays untracked");
    assert!(read("index.csv").contains("r2@example.com,00002-r2@example.com.html"));
    for html in [
        read("00001-r1@example.com.html"),
        read("00003-r3@example.com.html"),
    ] {
        assert!(
            !html.contains("r1@") && !html.contains("r3@"),
            "recipient visible in a URL"
        );
        assert!(html.contains("mailto:help@shop.example"));
    }

    let server = Server::start(&data, &[("PIXELTRACK_TRUSTED_PROXIES", "127.0.0.1/32")]);
    let get = |path: &str, ua: &str, ip: &str| {
        server.get(path, &[("User-Agent", ua), ("X-Forwarded-For", ip)])
    };

    // r1 opens in Gmail (through Google's proxy), then clicks "Sale" in Chrome.
    assert_eq!(
        get(&o1, GMAIL, "66.102.8.1").body,
        pixeltrack::collect::image::GIF
    );
    let res = get(
        &format!("{}?url=https://evil.example", c1[0]),
        CHROME,
        "198.51.100.1",
    );
    assert_eq!(res.status, 302);
    assert_eq!(
        res.header("location"),
        Some("https://shop.example/sale"),
        "appended ?url= must not change the Location"
    );

    // r2: Apple Mail Privacy Protection prefetch, then a real open in Outlook.
    assert_eq!(get(&o2, "Mozilla/5.0", "17.58.1.1").status, 200);
    assert_eq!(get(&o2, OUTLOOK, "203.0.113.5").status, 200);

    // r3: Microsoft Safe Links scans the open pixel (HEAD then GET, from 104.47.0.0/16)...
    let head = http(
        server.addr,
        "HEAD",
        &o3,
        &[
            ("User-Agent", STALE_CHROME),
            ("X-Forwarded-For", "104.47.3.3"),
        ],
    )
    .unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(get(&o3, STALE_CHROME, "104.47.3.3").status, 200);
    // ...and HEADs a link (recorded nowhere), then clicks all three links within a second.
    let head = http(
        server.addr,
        "HEAD",
        &c3[2],
        &[
            ("User-Agent", STALE_CHROME),
            ("X-Forwarded-For", "198.51.100.77"),
        ],
    )
    .unwrap();
    assert_eq!(
        (head.status, head.header("location")),
        (302, Some("https://shop.example/blog"))
    );
    for link in &c3 {
        assert_eq!(get(link, STALE_CHROME, "198.51.100.77").status, 302);
    }
    assert_eq!(
        get(&c3[1], STALE_CHROME, "198.51.100.77").header("location"),
        Some("https://shop.example/new?x=1&y=2")
    );

    // Forged and tampered tokens: the pixel still answers, the link never redirects.
    let mut tampered = o1.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let res = get(&o1.replace(".gif", "x.gif"), GMAIL, "66.102.8.1");
    assert_eq!(
        (res.status, res.header("x-pixel-reason")),
        (200, Some("bad_token"))
    );
    let res = get(&format!("{}Z", c1[0]), CHROME, "198.51.100.1");
    assert_eq!(res.status, 404);
    assert!(res.header("location").is_none());
    assert_eq!(get("/c/not-a-token", CHROME, "198.51.100.1").status, 404);

    assert_eq!(server.terminate().code(), Some(0));

    let r: serde_json::Value = serde_json::from_str(&cli(
        &data,
        &["report", "--campaign", &id, "--recipients", "--json"],
    ))
    .unwrap();
    let o = &r["opens"];
    assert_eq!(
        (
            o["total"].as_i64(),
            o["unique"].as_i64(),
            o["unique_human"].as_i64()
        ),
        (Some(4), Some(3), Some(2)),
        "{o}"
    );
    for (v, total, unique) in [
        ("gmail_proxy", 1, 1),
        ("apple_mpp", 1, 1),
        ("human", 1, 1),
        ("scanner", 1, 1),
    ] {
        assert_eq!(o["by_verdict"][v]["total"], total, "{v}: {o}");
        assert_eq!(o["by_verdict"][v]["unique"], unique, "{v}: {o}");
    }
    assert_eq!(o["rate_human"], 66.7);
    assert_eq!(o["rate_all"], 100.0);

    let k = &r["clicks"];
    // r1: 1 human click. r3: 4 clicks (a burst of 3 + one more), all scanner.
    assert_eq!(
        (
            k["total"].as_i64(),
            k["unique"].as_i64(),
            k["unique_human"].as_i64()
        ),
        (Some(5), Some(2), Some(1)),
        "{k}"
    );
    assert_eq!(k["by_verdict"]["human"]["total"], 1, "{k}");
    assert_eq!(k["by_verdict"]["scanner"]["total"], 4, "{k}");
    assert_eq!(k["ctr"], 33.3);
    assert_eq!(k["click_to_open"], 50.0);
    // Every verdict carries its reason, in words, with its confidence.
    let why = |part: &serde_json::Value, reason: &str| {
        part["by_reason"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["reason"] == reason)
            .cloned()
            .unwrap_or_else(|| panic!("{reason} not in {part}"))
    };
    let head = why(k, "head_before_get");
    assert_eq!(
        (&head["verdict"], &head["confidence"]),
        (&"scanner".into(), &"certain".into())
    );
    assert!(head["explanation"].as_str().unwrap().contains("HEAD"));
    assert_eq!(why(o, "ua_bare_mozilla")["verdict"], "apple_mpp");
    assert_eq!(why(o, "mail_client")["unique"], 1, "r2's Outlook open");
    assert_eq!(k["uncertain"]["total"], 0, "{k}");
    let text = cli(&data, &["report", "--campaign", &id]);
    assert!(
        text.contains("Why: clicks by reason")
            && text.contains("Apple Mail Privacy Protection: images are fetched on delivery"),
        "{text}"
    );

    let links = r["links"].as_array().unwrap();
    let link = |u: &str| links.iter().find(|l| l["url"] == u).unwrap().clone();
    assert_eq!(
        (
            link("https://shop.example/sale")["total"].as_i64(),
            link("https://shop.example/sale")["unique_human"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(link("https://shop.example/new?x=1&y=2")["total"], 2);
    assert_eq!(link("https://shop.example/blog")["unique_human"], 0);

    let clients = r["clients"].as_array().unwrap();
    let client = |n: &str| {
        clients.iter().find(|c| c["value"] == n).map(|c| {
            (
                c["opens"].as_i64().unwrap(),
                c["human_opens"].as_i64().unwrap(),
            )
        })
    };
    assert_eq!(client("Gmail"), Some((1, 1)));
    assert_eq!(client("Apple Mail"), Some((1, 0)));
    assert_eq!(client("Outlook"), Some((1, 1)));

    let h2 = &r["first_48h"][2];
    assert_eq!(
        (h2["human_opens"].as_i64(), h2["machine_opens"].as_i64()),
        (Some(2), Some(2)),
        "{}",
        r["first_48h"]
    );

    let recips = r["recipients"].as_array().unwrap();
    let rec = |n: &str| recips.iter().find(|x| x["recipient"] == n).unwrap().clone();
    assert_eq!(
        (
            rec("r1@example.com")["opens"].as_i64(),
            rec("r1@example.com")["human_clicks"].as_i64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        (
            rec("r2@example.com")["opens"].as_i64(),
            rec("r2@example.com")["human_opens"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(
        (
            rec("r3@example.com")["clicks"].as_i64(),
            rec("r3@example.com")["human_clicks"].as_i64()
        ),
        (Some(4), Some(0))
    );

    // Email events stay out of the site's web numbers.
    let web: serde_json::Value =
        serde_json::from_str(&cli(&data, &["report", "--site", "shop.example", "--json"])).unwrap();
    assert_eq!(web["overview"]["pageviews"], 0);

    // The CSV export carries the verdicts, with reasons.
    let csv = cli(
        &data,
        &["export", "--site", "shop.example", "--format", "csv"],
    );
    assert!(
        csv.contains(",scanner,head_before_get,")
            && csv.contains(",scanner,burst,")
            && csv.contains(",gmail_proxy,ua_google_image_proxy,Gmail"),
        "{csv}"
    );
}

#[test]
fn key_rotation_keeps_old_links_working_until_retired() {
    let (dir, data) = site_with_campaign("K");
    let input = dir.path().join("e.html");
    std::fs::write(&input, "<a href=\"https://shop.example/\">x</a>").unwrap();
    let tag = || {
        cli(
            &data,
            &[
                "email",
                "tag",
                "--allow-local",
                "--campaign",
                "1",
                "--recipient",
                "r",
                "--input",
                input.to_str().unwrap(),
            ],
        )
    };
    let (_, old) = tracked_paths(&tag());
    cli(&data, &["key", "rotate"]);
    let (_, new) = tracked_paths(&tag());
    assert_ne!(old, new);
    let server = Server::start(&data, &[]);
    assert_eq!(server.get(&old[0], &[("User-Agent", CHROME)]).status, 302);
    assert_eq!(server.get(&new[0], &[("User-Agent", CHROME)]).status, 302);
    drop(server);
    cli(&data, &["key", "retire", "1"]);
    let server = Server::start(&data, &[]);
    assert_eq!(server.get(&old[0], &[("User-Agent", CHROME)]).status, 404);
    assert_eq!(server.get(&new[0], &[("User-Agent", CHROME)]).status, 302);
    let keys: serde_json::Value =
        serde_json::from_str(&cli(&data, &["key", "list", "--json"])).unwrap();
    assert_eq!(keys["signing"], 2);
}

#[test]
fn merge_tag_links_take_the_recipient_from_the_url() {
    let (dir, data) = site_with_campaign("M");
    let input = dir.path().join("e.html");
    std::fs::write(
        &input,
        "<body><a href=\"https://shop.example/\">x</a></body>",
    )
    .unwrap();
    let html = cli(
        &data,
        &[
            "email",
            "tag",
            "--allow-local",
            "--campaign",
            "1",
            "--merge-tag",
            "{{subscriber_id}}",
            "--input",
            input.to_str().unwrap(),
        ],
    );
    let (open, clicks) = tracked_paths(&html);
    assert!(open.ends_with("?r={{subscriber_id}}") && clicks[0].ends_with("?r={{subscriber_id}}"));
    let server = Server::start(&data, &[]);
    // The sending platform substituted the placeholder.
    assert_eq!(
        server
            .get(
                &open.replace("{{subscriber_id}}", "sub-42"),
                &[("User-Agent", OUTLOOK)]
            )
            .status,
        200
    );
    assert_eq!(server.terminate().code(), Some(0));
    let r: serde_json::Value = serde_json::from_str(&cli(
        &data,
        &["report", "--campaign", "1", "--recipients", "--json"],
    ))
    .unwrap();
    assert_eq!(r["recipients"][0]["recipient"], "sub-42");
}

/// An ad link's token presented to the open pixel, with any recipient in `?r=`, is
/// refused as `bad_token` and stores nothing: a token works only on its own route.
#[test]
fn an_ad_link_token_cannot_forge_an_open() {
    let (_d, data) = site_with_campaign("Spring");
    let link = common::ad_link(&data, "a1", "home", "https://shop.example/spring");
    let token = &link["/c/".len()..];
    let server = Server::start(&data, &[]);
    let res = server.get(
        &format!("/o/{token}.gif?r=victim@corp.example"),
        &[("User-Agent", CHROME)],
    );
    assert_eq!(res.status, 200);
    assert_eq!(res.header("x-pixel-reason"), Some("bad_token"));
    // On its own route it still works.
    assert_eq!(
        server
            .get(&format!("/c/{token}"), &[("User-Agent", CHROME)])
            .status,
        302
    );
    let report: serde_json::Value =
        serde_json::from_str(&cli(&data, &["report", "--campaign", "1", "--json"])).unwrap();
    assert!(!report.to_string().contains("victim"), "{report}");
    assert_eq!(server.terminate().code(), Some(0));
}
