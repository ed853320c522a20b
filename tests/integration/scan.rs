//! `pixeltrack scan` end to end: the real binary on committed fixtures (a Mailchimp
//! newsletter and a SendGrid receipt as .eml, a page with the Meta Pixel, GA4 and a
//! <noscript> pixel, clean pages and emails that must report nothing), on an email tagged
//! by our own `email tag`, and `--url` against servers on 127.0.0.1 that it must refuse
//! unless allowed. Exit codes are what CI relies on: 0 none found, 1 found, 2 error.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/scan/{name}", env!("CARGO_MANIFEST_DIR"))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// Runs `pixeltrack scan ARGS` with `stdin`, in an empty directory (scan needs no data).
fn scan(args: &[&str], stdin: &[u8]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::bin())
        .arg("scan")
        .args(args)
        .current_dir(dir.path())
        .env_remove("PIXELTRACK_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pixeltrack scan");
    // A write error means the command did not read its input, which is fine for files.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "scan created files in the working directory"
    );
    Run {
        code: out.status.code().expect("an exit code"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

fn vendors(report: &Value) -> Vec<String> {
    report["vendors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vendor"].as_str().unwrap().to_owned())
        .collect()
}

fn vendor<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["vendors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["vendor"] == name)
        .unwrap_or_else(|| panic!("no vendor {name} in {report:#}"))
}

fn codes(finding: &Value) -> Vec<String> {
    finding["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect()
}

fn findings(v: &Value) -> &Vec<Value> {
    v["findings"].as_array().unwrap()
}

#[test]
fn a_newsletter_s_esp_open_pixel_and_rewritten_links_are_found_in_every_mime_part() {
    let run = scan(&[&fixture("newsletter-mailchimp.eml"), "--json"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["kind"], "email");
    assert_eq!(r["found"], true);
    assert_eq!(r["first_party"], "acme-shop.example");
    assert_eq!(
        vendors(&r),
        ["Mailchimp"],
        "the spacer GIFs are not trackers"
    );
    let parts: Vec<&str> = r["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        parts,
        [
            "part 2: text/plain, base64",
            "part 3: text/html, quoted-printable"
        ]
    );
    let mc = vendor(&r, "Mailchimp");
    assert_eq!(mc["category"], "email-service");
    assert_eq!(
        mc["accounts"],
        serde_json::json!(["5f3c2a1b9e8d7c6b5a4f3e2d1"])
    );
    let f = findings(mc);
    // The open pixel, from the quoted-printable HTML (soft line breaks and =3D decoded).
    let pixel: Vec<&Value> = f.iter().filter(|f| f["element"] == "img").collect();
    assert_eq!(pixel.len(), 1);
    assert_eq!(
        pixel[0]["url"],
        "https://acme-shop.us21.list-manage.com/track/open.php?u=5f3c2a1b9e8d7c6b5a4f3e2d1&id=8a7b6c5d4e&e=0f1e2d3c4b"
    );
    assert_eq!(codes(pixel[0]), ["known_tracker", "tiny_image"]);
    // Four rewritten links in the HTML, two in the base64 text part.
    let links = |element: &str| {
        f.iter()
            .filter(|x| x["element"] == element)
            .inspect(|x| assert_eq!(codes(x), ["tracked_link"]))
            .count()
    };
    assert_eq!(links("a href"), 4);
    assert_eq!(links("text link"), 2);
    assert!(!run.stdout.contains("spacer.gif"));
}

#[test]
fn a_receipt_s_tracking_and_an_email_address_handed_to_a_third_party_are_found() {
    let run = scan(&[&fixture("receipt-sendgrid.eml"), "--json"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    assert_eq!(vendors(&r), ["SendGrid", "survey.feedback-partner.example"]);
    // multipart/mixed > multipart/alternative, base64 HTML; the PDF is not read.
    assert!(r["parts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| !p.as_str().unwrap().contains("pdf")));
    let sg = vendor(&r, "SendGrid");
    let open = findings(sg)
        .iter()
        .find(|f| f["element"] == "img")
        .expect("the open pixel");
    assert_eq!(open["part"], "part 4: text/html, base64");
    assert_eq!(codes(open), ["known_tracker", "tiny_image"]);
    let partner = vendor(&r, "survey.feedback-partner.example");
    assert_eq!(partner["known"], false);
    assert_eq!(partner["category"], "unrecognised");
    for f in findings(partner) {
        assert_eq!(codes(f), ["pii_email", "pii_name"]);
        assert_eq!(
            f["risk"],
            "sends the recipient's email address in clear to survey.feedback-partner.example, a third party"
        );
    }
    assert_eq!(
        findings(partner).len(),
        2,
        "once in the text part, once in the HTML"
    );

    let text = scan(&[&fixture("receipt-sendgrid.eml")], b"");
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains("Found 2 trackers"), "{}", text.stdout);
    assert!(text.stdout.contains("SendGrid [email-service]"));
    assert!(text
        .stdout
        .contains("risk:   sends the recipient's email address in clear to survey.feedback-partner.example, a third party"));
}

#[test]
fn a_page_with_meta_pixel_ga4_and_a_noscript_pixel() {
    let run = scan(&[&fixture("page-meta-ga4.html"), "--json"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["kind"], "page");
    assert_eq!(r["first_party"], "www.acme-shop.example");
    assert_eq!(vendors(&r), ["Google Analytics", "Meta Pixel"]);
    assert_eq!(r["trackers"], 2);
    assert_eq!(r["findings"], 4);

    let ga = vendor(&r, "Google Analytics");
    assert_eq!(ga["accounts"], serde_json::json!(["G-7XK4P2QZ9M"]));
    assert_eq!(findings(ga)[0]["element"], "script src");
    assert_eq!(codes(&findings(ga)[1]), ["inline_code"]);
    assert_eq!(findings(ga)[1]["url"], Value::Null);

    let meta = vendor(&r, "Meta Pixel");
    assert_eq!(meta["category"], "ads");
    assert_eq!(meta["accounts"], serde_json::json!(["318652094471263"]));
    assert_eq!(findings(meta)[0]["element"], "inline script");
    assert_eq!(
        findings(meta)[0]["url"],
        "https://connect.facebook.net/en_US/fbevents.js"
    );
    let noscript = &findings(meta)[1];
    assert_eq!(noscript["element"], "noscript > img");
    assert_eq!(
        codes(noscript),
        ["known_tracker", "tiny_image", "hidden", "noscript"]
    );
    assert!(noscript["risk"]
        .as_str()
        .unwrap()
        .contains("needs prior consent"));

    let text = scan(&[&fixture("page-meta-ga4.html")], b"");
    assert_eq!(text.code, 1);
    for line in [
        "Found 2 trackers (4 findings).",
        "Meta Pixel [ads]",
        "  accounts: 318652094471263",
        "  - noscript > img",
        "      https://www.facebook.com/tr?id=318652094471263&ev=PageView&noscript=1",
        "      why: loads Meta Pixel (facebook.com /tr); 1×1 image; hidden: display:none; inside <noscript>",
    ] {
        assert!(text.stdout.contains(line), "{line:?} not in\n{}", text.stdout);
    }
}

#[test]
fn an_email_tagged_by_our_own_email_tag_is_recognised_as_pixeltrack() {
    let (dir, data) = common::site_with_campaign("Spring");
    let html = "<html><body><p>Spring is here.</p>\
<a href=\"https://shop.example/sale\">Sale</a> <a href=\"https://shop.example/new?x=1&amp;y=2\">New</a>\
<img src=\"https://shop.example/img/spacer.gif\" width=\"1\" height=\"1\"></body></html>";
    let out = common::tag_email(&data, dir.path(), "1", "email\nalice@example.com\n", html);
    let tagged = out.join("00001-alice@example.com.html");

    let run = scan(&[tagged.to_str().unwrap(), "--json"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    assert_eq!(vendors(&r), ["pixeltrack"]);
    let pt = vendor(&r, "pixeltrack");
    assert_eq!(pt["category"], "self-hosted");
    let f = findings(pt);
    assert_eq!(f.len(), 3, "{f:#?}");
    let open = f.iter().find(|x| x["element"] == "img").unwrap();
    assert!(open["url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:8080/o/"));
    assert_eq!(codes(open), ["known_tracker", "tiny_image"]);
    assert_eq!(f.iter().filter(|x| codes(x) == ["tracked_link"]).count(), 2);
    // Tokens are opaque: no personal data is reported, and the address is in no URL.
    let found = r["vendors"].to_string();
    assert!(!found.contains("pii_"), "{found}");
    assert!(!found.contains("alice"), "{found}");

    // The same HTML as a real email on standard input, base64 in a MIME part: sniffed.
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&tagged).unwrap())
    };
    let eml = format!(
        "From: Shop <news@shop.example>\r\nTo: alice@example.com\r\nSubject: Spring\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
    );
    let run = scan(&["-", "--json"], eml.as_bytes());
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    assert_eq!(
        (r["kind"].as_str(), r["source"].as_str()),
        (Some("email"), Some("-"))
    );
    assert_eq!(vendors(&r), ["pixeltrack"]);
    assert_eq!(findings(vendor(&r, "pixeltrack")).len(), 3);
}

#[test]
fn clean_pages_and_emails_report_nothing_and_exit_zero() {
    for name in ["clean-page.html", "clean-newsletter.eml"] {
        let run = scan(&[&fixture(name)], b"");
        assert_eq!(run.code, 0, "{name}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout
                .contains("No tracking pixels, tracker scripts or personal data in URLs found."),
            "{name}: {}",
            run.stdout
        );
        let json = scan(&[&fixture(name), "--json"], b"").json();
        assert_eq!(json["found"], false, "{name}: {json:#}");
        assert_eq!(json["vendors"], serde_json::json!([]));
        assert_eq!(json["trackers"], 0);
    }
}

#[test]
fn spacer_gifs_are_layout_until_their_url_says_who_loads_them() {
    let page = |img: &str| {
        format!(
            "<html><head><link rel=canonical href=\"https://shop.example/\"></head><body>{img}</body></html>"
        )
    };
    for spacer in [
        "<img src=\"/img/spacer.gif\" width=\"1\" height=\"1\">",
        "<img src=\"https://cdn.other.example/s.gif?v=2\" width=\"1\" height=\"1\">",
        "<img src=\"https://shop.example/1x1.gif?campaign=spring\" style=\"display:none\">",
    ] {
        let run = scan(&["-", "--as", "html"], page(spacer).as_bytes());
        assert_eq!(run.code, 0, "{spacer}: {}", run.stdout);
    }
    for (pixel, code) in [
        ("<img src=\"/img/spacer.gif?rid=a81bc81b\" width=\"1\" height=\"1\">", "identifier"),
        ("<img src=\"https://t.other.example/s.gif?campaign=spring\" width=\"1\" height=\"1\">", "third_party_query"),
        ("<img src=\"https://t.other.example/open/q7Zk3mP9x2Lw8Rt4Vn6Y.gif\" style=\"position:absolute;left:-5000px\">", "identifier"),
    ] {
        let run = scan(&["-", "--as", "html", "--json"], page(pixel).as_bytes());
        assert_eq!(run.code, 1, "{pixel}");
        let r = run.json();
        let f = &findings(&r["vendors"][0])[0];
        assert!(codes(f).contains(&code.to_owned()), "{pixel}: {f:#}");
        assert_eq!(r["vendors"][0]["category"], "unrecognised");
    }
}

#[test]
fn hostile_strings_are_inert_in_the_terminal_and_plain_strings_in_json() {
    let html = "<html><body><img src=\"https://evil.example/\u{1b}[2J\u{1b}]8;;https://x\u{7}o\u{202e}gif.exe?email=bob%40example.com&uid=\u{1b}[31m7\" width=1 height=1>\
<a href=\"https://t.example/?email=carol@example.com\">\u{1b}[5mclick</a></body></html>";
    let run = scan(&["-", "--as", "html"], html.as_bytes());
    assert_eq!(run.code, 1, "{}", run.stderr);
    for bad in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(
            !run.stdout.contains(bad),
            "{bad:?} reached the terminal: {}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("email address in clear"));
    let json = scan(&["-", "--as", "html", "--json"], html.as_bytes()).json();
    let urls: Vec<&str> = json["vendors"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| findings(v).iter().map(|f| f["url"].as_str().unwrap()))
        .collect();
    assert!(
        urls.iter()
            .any(|u| u.contains('\u{1b}') && u.contains('\u{202e}')),
        "{urls:?}"
    );
}

#[test]
fn a_pattern_file_adds_vendors_in_the_documented_format() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.toml");
    std::fs::write(
        &file,
        "[[vendor]]\nname = \"Feedback Partner\"\ncategory = \"analytics\"\n\
         learns = \"survey answers\"\nrisk = \"shares answers with the partner\"\n\
         match = [{ host = \"feedback-partner.example\", path = \"/start\", on = \"click\" }]\n",
    )
    .unwrap();
    let run = scan(
        &[
            &fixture("receipt-sendgrid.eml"),
            "--patterns",
            file.to_str().unwrap(),
            "--json",
        ],
        b"",
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    assert_eq!(vendors(&r), ["SendGrid", "Feedback Partner"]);
    let f = &findings(vendor(&r, "Feedback Partner"))[0];
    assert_eq!(codes(f), ["tracked_link", "pii_email", "pii_name"]);

    std::fs::write(&file, "[[vendor]]\nname = \"X\"\ncategory = \"spyware\"\nlearns = \"\"\nrisk = \"\"\nmatch = [{ host = \"x.example\" }]\n").unwrap();
    let bad = scan(
        &[
            &fixture("clean-page.html"),
            "--patterns",
            file.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("category \"spyware\""),
        "{}",
        bad.stderr
    );
}

#[test]
fn errors_exit_2_with_one_line_on_stderr() {
    let cases: Vec<(Vec<String>, &[u8], &str)> = vec![
        (
            vec!["/nonexistent/page.html".into()],
            b"",
            "reading /nonexistent/page.html",
        ),
        (
            vec!["-".into(), "--as".into(), "eml".into()],
            b"<html><body>hi</body></html>",
            "not an email",
        ),
        (
            vec!["--url".into(), "ftp://example.com/".into()],
            b"",
            "only http and https",
        ),
        (
            vec!["--url".into(), "https://user:pw@example.com/".into()],
            b"",
            "sends no credentials",
        ),
    ];
    for (args, stdin, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = scan(&args, stdin);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    // Usage errors are clap's, with the same code.
    assert_eq!(scan(&[], b"").code, 2);
    assert_eq!(
        scan(&["x.html", "--url", "https://example.com/"], b"").code,
        2
    );
}

#[test]
fn url_refuses_loopback_link_local_and_ipv6_loopback_without_touching_the_network() {
    for url in [
        "http://127.0.0.1/",
        "http://169.254.169.254/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://localhost:9/",
    ] {
        let started = Instant::now();
        let run = scan(&["--url", url], b"");
        assert_eq!(run.code, 2, "{url}: {}", run.stdout);
        assert!(run.stderr.contains("refused"), "{url}: {}", run.stderr);
        assert!(
            run.stderr.contains("--allow-private"),
            "{url}: {}",
            run.stderr
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{url} took a connection attempt"
        );
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 for `--url`: `route(path)` gives the whole raw
/// response, or `None` to hold the connection without answering. Loopback only; each
/// connection handled on a thread that ends with it.
fn serve(
    route: impl Fn(&str, SocketAddr) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let route = std::sync::Arc::new(route);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let route = route.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                match route(&path, addr) {
                    Some(resp) => {
                        let _ = conn.write_all(&resp);
                    }
                    None => std::thread::sleep(Duration::from_secs(8)),
                }
            });
        }
    });
    addr
}

fn response(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn page_server() -> SocketAddr {
    let page = std::fs::read(fixture("page-meta-ga4.html")).unwrap();
    serve(move |path, addr| {
        Some(match path {
            "/page" => response(
                "200 OK",
                "Content-Type: text/html; charset=utf-8\r\n",
                &page,
            ),
            "/hop" => response("302 Found", "Location: /page\r\n", b""),
            "/to-other-loopback" => response(
                "302 Found",
                &format!("Location: http://127.0.0.2:{}/page\r\n", addr.port()),
                b"",
            ),
            "/to-ipv6-loopback" => response(
                "301 Moved Permanently",
                &format!("Location: http://[::1]:{}/page\r\n", addr.port()),
                b"",
            ),
            "/to-metadata" => response(
                "307 Temporary Redirect",
                "Location: http://169.254.169.254/latest/meta-data/\r\n",
                b"",
            ),
            "/loop" => response("302 Found", "Location: /loop\r\n", b""),
            "/image" => response("200 OK", "Content-Type: image/png\r\n", b"\x89PNG"),
            _ => response("404 Not Found", "", b""),
        })
    })
}

#[test]
fn url_scans_a_local_page_only_when_allowed() {
    let addr = page_server();
    let url = format!("http://{addr}/page");

    let refused = scan(&["--url", &url], b"");
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("a loopback address"),
        "{}",
        refused.stderr
    );

    let run = scan(&["--url", &url, "--allow-private", "--json"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["source"], url);
    assert_eq!(r["first_party"], "127.0.0.1");
    assert_eq!(vendors(&r), ["Google Analytics", "Meta Pixel"]);

    // One address allowed by --allow-net; a redirect within it is followed.
    let hop = format!("http://{addr}/hop");
    let run = scan(
        &["--url", &hop, "--allow-net", "127.0.0.1/32", "--json"],
        b"",
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json()["redirects"], serde_json::json!([hop]));
}

#[test]
fn url_refuses_redirects_to_loopback_and_metadata_even_from_an_allowed_host() {
    let addr = page_server();
    for (path, refused) in [
        ("/to-other-loopback", "127.0.0.2"),
        ("/to-ipv6-loopback", "::1"),
        ("/to-metadata", "169.254.169.254"),
    ] {
        let url = format!("http://{addr}{path}");
        let run = scan(&["--url", &url, "--allow-net", "127.0.0.1/32"], b"");
        assert_eq!(run.code, 2, "{path}: {}", run.stdout);
        assert!(
            run.stderr.contains("refused") && run.stderr.contains(refused),
            "{path}: {}",
            run.stderr
        );
    }
    let run = scan(
        &["--url", &format!("http://{addr}/loop"), "--allow-private"],
        b"",
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("more than 5 redirects"),
        "{}",
        run.stderr
    );
    let run = scan(
        &["--url", &format!("http://{addr}/image"), "--allow-private"],
        b"",
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("is image/png, not an HTML page"),
        "{}",
        run.stderr
    );
    let run = scan(
        &[
            "--url",
            &format!("http://{addr}/missing"),
            "--allow-private",
        ],
        b"",
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("answered 404"), "{}", run.stderr);
}

#[test]
fn url_gives_up_at_the_timeout_and_the_size_cap() {
    let big = vec![b'a'; 64 * 1024];
    let addr = serve(move |path, _| match path {
        "/slow" => None,
        "/big" => Some(response("200 OK", "Content-Type: text/html\r\n", &big)),
        "/big-chunked" => {
            let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
            for _ in 0..16 {
                out.extend_from_slice(format!("{:x}\r\n", 4096).as_bytes());
                out.extend_from_slice(&[b'b'; 4096]);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            Some(out)
        }
        _ => Some(response("404 Not Found", "", b"")),
    });
    let started = Instant::now();
    let run = scan(
        &[
            "--url",
            &format!("http://{addr}/slow"),
            "--allow-private",
            "--timeout",
            "1",
        ],
        b"",
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("within 1 s"), "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(6));
    for path in ["/big", "/big-chunked"] {
        let run = scan(
            &[
                "--url",
                &format!("http://{addr}{path}"),
                "--allow-private",
                "--max-bytes",
                "10000",
            ],
            b"",
        );
        assert_eq!(run.code, 2, "{path}");
        assert!(
            run.stderr.contains("larger than 10000 bytes"),
            "{path}: {}",
            run.stderr
        );
    }
}
