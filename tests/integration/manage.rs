//! Managing from the dashboard, and the silent failures it shows, against the real
//! binary: a hosts change from the CLI works on the very next hit, refused hits are on
//! the site page with a form that allows the host, `email tag` refuses links to a local
//! address, and every management form validates its input and refuses viewers.

use crate::common;

use std::process::Command;

use super::accounts::{cli_with_stdin, csrf_field, enc, request, sign_in, text};
use common::{cli, data_dir, post, Server, CHROME};

const ADMIN_PW: &str = "admin password 1";
const VIEWER_PW: &str = "viewer password 1";

fn users(data: &std::path::Path, key: &str) {
    let out = cli_with_stdin(
        data,
        &["user", "add", "boss", "--role", "admin", "--password-stdin"],
        &format!("{ADMIN_PW}\n"),
    );
    assert!(out.status.success());
    let out = cli_with_stdin(
        data,
        &["user", "add", "vic", "--site", key, "--password-stdin"],
        &format!("{VIEWER_PW}\n"),
    );
    assert!(out.status.success());
}

fn form(server: &Server, cookie: &str, path: &str, body: &str, csrf: &str) -> common::Response {
    let body = if body.is_empty() {
        format!("csrf={csrf}")
    } else {
        format!("{body}&csrf={csrf}")
    };
    request(server, "POST", path, &[("Cookie", cookie)], &body)
}

#[test]
fn a_hosts_change_from_the_cli_applies_on_the_very_next_hit_and_refusals_show_with_a_fix() {
    let (_d, data) = data_dir();
    let key = common::add_site(&data, "example.com");
    users(&data, &key);
    let server = Server::start(&data, &[]);
    let ua = ("User-Agent", CHROME);
    let local = format!(r#"{{"s":"{key}","u":"http://localhost:8000/test.html"}}"#);
    for _ in 0..3 {
        let (status, body, _) = post(&server, &local, &[ua, ("Origin", "http://localhost:8000")]);
        assert_eq!(status, 403, "{body}");
    }
    // The site page says what was refused and offers to allow it.
    let admin = sign_in(&server, "boss", ADMIN_PW);
    let page = text(&server.get(&format!("/sites/{key}"), &[("Cookie", &admin)]));
    assert!(page.contains("3 hits refused in the last hour"), "{page}");
    assert!(page.contains("host localhost not allowed"), "{page}");
    assert!(page.contains("allow it"), "{page}");
    // A viewer of the site sees the notice, without the form.
    let vic = sign_in(&server, "vic", VIEWER_PW);
    let vpage = text(&server.get(&format!("/sites/{key}"), &[("Cookie", &vic)]));
    assert!(vpage.contains("host localhost not allowed") && !vpage.contains("allow it"));

    // The CLI, another process: the very next hit is stored, no waiting.
    let out = cli(
        &data,
        &["site", "set", "example.com", "--hosts", "localhost"],
    );
    assert!(out.contains("at once"), "{out}");
    let (status, body, _) = post(&server, &local, &[ua, ("Origin", "http://localhost:8000")]);
    assert_eq!(
        status, 202,
        "the hit right after `site set --hosts`: {body}"
    );
    // And a pixel on another refused host, allowed through the dashboard's form.
    let pixel = format!("/p.gif?s={key}&u={}", enc("https://staging.example.net/a"));
    let r = server.get(&pixel, &[ua]);
    assert_eq!(r.header("x-pixel-reason"), Some("host_not_allowed"));
    let page = text(&server.get(&format!("/sites/{key}"), &[("Cookie", &admin)]));
    assert!(
        page.contains("host staging.example.net not allowed"),
        "{page}"
    );
    let csrf = csrf_field(&page);
    let r = form(
        &server,
        &vic,
        &format!("/sites/{key}/allow-host"),
        "host=staging.example.net",
        &csrf_field(&vpage),
    );
    assert_eq!(r.status, 403, "a viewer cannot allow a host");
    let r = form(
        &server,
        &admin,
        &format!("/sites/{key}/allow-host"),
        "host=not%20a%20host",
        &csrf,
    );
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("is not a host name"), "{}", text(&r));
    let r = form(
        &server,
        &admin,
        &format!("/sites/{key}/allow-host"),
        "host=staging.example.net",
        &csrf,
    );
    assert_eq!(r.status, 303, "{}", text(&r));
    let r = server.get(&pixel, &[ua]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-pixel-reason"), None, "stored at once");
    let sites = cli(&data, &["site", "list", "--json"]);
    assert!(
        sites.contains(r#""events":2"#),
        "the two allowed hits, nothing refused: {sites}"
    );
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn email_tag_refuses_links_to_a_local_address_unless_allowed() {
    let (dir, data) = common::site_with_campaign("Spring");
    let html = dir.path().join("e.html");
    std::fs::write(&html, r#"<a href="https://shop.example/x">x</a>"#).unwrap();
    let args = [
        "email",
        "tag",
        "--campaign",
        "1",
        "--recipient",
        "r1",
        "--input",
        html.to_str().unwrap(),
    ];
    let out = Command::new(common::bin())
        .arg("--data")
        .arg(&data)
        .args(args)
        .env_remove("PIXELTRACK_CONFIG")
        .env_remove("PIXELTRACK_PUBLIC_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("127.0.0.1") && err.contains("public_url") && err.contains("--allow-local"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing tagged");
    let mut local = args.to_vec();
    local.push("--allow-local");
    assert!(cli(&data, &local).contains("http://127.0.0.1:8080/o/"));
    let out = Command::new(common::bin())
        .arg("--data")
        .arg(&data)
        .args(args)
        .env_remove("PIXELTRACK_CONFIG")
        .env("PIXELTRACK_PUBLIC_URL", "https://t.example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("https://t.example.com/o/"));
}

#[test]
fn management_forms_validate_input_and_refuse_viewers() {
    let (_d, data) = data_dir();
    let key = common::add_site(&data, "example.com");
    let campaign = common::add_campaign(&data, "example.com", "Launch").to_string();
    users(&data, &key);
    let server = Server::start(&data, &[]);
    let admin = sign_in(&server, "boss", ADMIN_PW);
    let vic = sign_in(&server, "vic", VIEWER_PW);
    let goals = format!("/sites/{key}/goals");
    let page = text(&server.get(&goals, &[("Cookie", &admin)]));
    let csrf = csrf_field(&page);
    let vpage = server.get(&goals, &[("Cookie", &vic)]);
    assert_eq!(vpage.status, 200, "a viewer reads the site's goals");
    let vpage = text(&vpage);
    assert!(!vpage.contains("Add goal"), "without the forms");
    let vcsrf = csrf_field(&vpage);
    let c = format!("/campaigns/{campaign}");

    let cases: &[(&str, &str, &str)] = &[
        (
            &goals,
            "kind=page&pattern=no-slash",
            "a page path starts with /",
        ),
        (
            &goals,
            "kind=nope&pattern=/x",
            "page path or a custom event",
        ),
        (
            &format!("/sites/{key}/funnels"),
            "name=f&within=visit&steps=%2Fa",
            "2 to 32 steps",
        ),
        (
            &format!("/sites/{key}/funnels"),
            "name=f&within=visit&steps=%2Fa%0Anot-a-step",
            "step \"not-a-step\"",
        ),
        (
            &format!("/sites/{key}/funnels"),
            "name=f&within=forever&steps=%2Fa%0A%2Fb",
            "within is",
        ),
        (
            &format!("/sites/{key}/campaigns"),
            "name=",
            "a campaign name is 1 to 200",
        ),
        (&format!("{c}/sent"), "count=-3", "whole number"),
        (
            &format!("{c}/sent"),
            "count=10&at=yesterday",
            "a date and time",
        ),
        (
            &format!("{c}/cost"),
            "amount=12.50&currency=XYZ",
            "ISO 4217",
        ),
        (&format!("{c}/cost"), "amount=12.505&currency=EUR", "amount"),
        (
            &format!("{c}/cost"),
            "amount=12",
            "both an amount and a currency",
        ),
        (&format!("{c}/tag"), "recipient=r&html=", "paste the email"),
        (
            &format!("{c}/tag"),
            "html=%3Cp%3Ex",
            "recipient id or a merge tag",
        ),
        (&format!("{c}/links"), "url=javascript%3Aalert(1)", ""),
        (
            "/account",
            "current=x&new=0123456789&again=0123456789x",
            "differ",
        ),
        ("/account", "current=x&new=short&again=short", "too short"),
        (
            "/account",
            "current=wrong%20password&new=0123456789&again=0123456789",
            "current password is wrong",
        ),
    ];
    for (path, body, message) in cases {
        let r = form(&server, &admin, path, body, &csrf);
        assert_eq!(r.status, 400, "{path} {body}: {}", text(&r));
        let t = text(&r);
        assert!(
            t.contains(&maud::html! { (message) }.into_string()),
            "{path} {body}: {t}"
        );
        if *path != "/account" {
            let r = form(&server, &vic, path, body, &vcsrf);
            assert_eq!(r.status, 403, "viewer {path}");
        }
        // Without the CSRF token: refused before anything else.
        let r = request(&server, "POST", path, &[("Cookie", &admin)], body);
        assert_eq!(r.status, 403, "no csrf {path}");
    }
    // Someone else's site or campaign is not found, for a viewer.
    let other = common::add_site(&data, "other.example");
    let r = server.get(&format!("/sites/{other}/goals"), &[("Cookie", &vic)]);
    assert_eq!(r.status, 404);
    let r = server.get(&format!("{c}/manage"), &[("Cookie", &vic)]);
    assert_eq!(r.status, 200, "the viewer's own site's campaign");
    assert!(!text(&r).contains("Mark sent"));

    // Valid input works and shows; a hostile name stays text.
    let hostile = "<img src=x onerror=alert(1)>";
    let r = form(
        &server,
        &admin,
        &goals,
        &format!("kind=event&pattern=signup&name={}", enc(hostile)),
        &csrf,
    );
    assert_eq!(r.status, 303, "{}", text(&r));
    let page = text(&server.get(&goals, &[("Cookie", &admin)]));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;") && !page.contains(hostile));
    let r = form(
        &server,
        &admin,
        &goals,
        "kind=event&pattern=signup&name=",
        &csrf,
    );
    assert_eq!(r.status, 303);
    let r = form(&server, &admin, &goals, "kind=event&pattern=signup", &csrf);
    assert_eq!(r.status, 400, "the same name twice");
    assert_eq!(server.terminate().code(), Some(0));
}

/// One part of a multipart form: its name, a file name if it is a file, its bytes.
type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

/// A `multipart/form-data` POST of `parts`, as a browser sends the batch form.
fn upload(server: &Server, cookie: &str, path: &str, parts: &[Part]) -> common::Response {
    use std::io::{Read, Write};
    let boundary = "----pixeltrack-test-7d1f";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(f) = file {
            body.extend_from_slice(
                format!("; filename=\"{f}\"\r\nContent-Type: text/csv").as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nCookie: {cookie}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        server.addr,
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // A body past the bound may be answered before it is all sent.
    let _ = s.write_all(&body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    common::parse_response(&raw, false).expect("a complete response")
}

/// The zip's entries, in order, as (name, contents).
fn unzip(bytes: &[u8]) -> Vec<(String, String)> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            assert_eq!(f.compression(), zip::CompressionMethod::Deflated);
            let mut s = String::new();
            f.read_to_string(&mut s).unwrap();
            (f.name().to_owned(), s)
        })
        .collect()
}

#[test]
fn batch_tagging_downloads_a_zip_and_bad_uploads_get_a_4xx_that_says_why() {
    let (dir, data) = data_dir();
    let key = common::add_site(&data, "example.com");
    let campaign = common::add_campaign(&data, "example.com", "Launch").to_string();
    users(&data, &key);
    let server = Server::start(&data, &[]);
    let admin = sign_in(&server, "boss", ADMIN_PW);
    let vic = sign_in(&server, "vic", VIEWER_PW);
    let manage = format!("/campaigns/{campaign}/manage");
    let page = text(&server.get(&manage, &[("Cookie", &admin)]));
    assert!(
        page.contains("enctype=\"multipart/form-data\"")
            && page.contains("at most 1000 recipients"),
        "{page}"
    );
    let csrf = csrf_field(&page);
    let vcsrf = csrf_field(&text(&server.get(&manage, &[("Cookie", &vic)])));
    let path = format!("/campaigns/{campaign}/tag-batch");
    let html = br#"<p>Hi</p><a href="https://shop.example/sale">Sale</a>"#;
    let csv = b"name,Email\nAl,al@x.example\nX,../../x<script>\nF,\"=cmd|' /C calc'!A0\"\n";

    // Good input: a file and a pasted list.
    let r = upload(
        &server,
        &admin,
        &path,
        &[
            ("csrf", None, csrf.as_bytes()),
            ("recipients_file", Some("list.csv"), csv),
            ("recipients", None, b"bo@x.example\r\n\r\n  \"quoted\"  \n"),
            ("html", None, html),
        ],
    );
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename=\"campaign-{campaign}-emails.zip\"").as_str())
    );
    let files = unzip(&r.body);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "00001-al@x.example.html",
            "00002-.__.__x_script_.html",
            "00003-_cmd____C_calc__A0.html",
            "00004-bo@x.example.html",
            "00005-_quoted_.html",
            "index.csv"
        ]
    );
    assert_eq!(
        files[5].1,
        "recipient,file\nal@x.example,00001-al@x.example.html\n../../x<script>,00002-.__.__x_script_.html\n\
         '=cmd|' /C calc'!A0,00003-_cmd____C_calc__A0.html\nbo@x.example,00004-bo@x.example.html\n\
         \"\"\"quoted\"\"\",00005-_quoted_.html\n"
    );
    // The same files as the CLI's batch mode writes for the same list, but for the links'
    // address (the test server's port, the CLI's default public_url) and tokens (each
    // sealed with a fresh nonce): compared with those cut out.
    let out = common::tag_email(
        &data,
        dir.path(),
        &campaign,
        "email\nal@x.example\n../../x<script>\n\"=cmd|' /C calc'!A0\"\nbo@x.example\n\"\"\"quoted\"\"\"\n",
        std::str::from_utf8(html).unwrap(),
    );
    let untoken = |s: &str| {
        regex::Regex::new(r#"http://[^/"]+/(o|c)/[A-Za-z0-9_-]+"#)
            .unwrap()
            .replace_all(s, "/$1/T")
            .into_owned()
    };
    for (name, body) in &files {
        let cli = std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(untoken(body), untoken(&cli), "{name}");
    }

    let many: String = (0..1001).map(|i| format!("r{i}\n")).collect();
    let wide = "x".repeat((1 << 20) + 1);
    let big_html = format!("<p>{}</p>", "x".repeat(2 << 20));
    let mid_html = format!("<p>{}</p>", "x".repeat(70 << 10));
    let thousand: String = (0..1000).map(|i| format!("r{i}\n")).collect();
    let past_body = vec![b'x'; (3 << 20) + (64 << 10) + 1];
    let cases: Vec<(&str, Vec<Part>, u16, &str)> = vec![
        (
            "no recipients",
            vec![("recipients", None, b" \n"), ("html", None, html)],
            400,
            "no recipients",
        ),
        (
            "an empty file",
            vec![
                ("recipients_file", Some("e.csv"), b""),
                ("html", None, html),
            ],
            400,
            "no recipients",
        ),
        (
            "no HTML",
            vec![("recipients", None, b"a"), ("html", None, b"  ")],
            400,
            "paste the email",
        ),
        (
            "a binary file",
            vec![
                ("recipients_file", Some("x.csv"), b"id\n\xff\xfe\x00\n"),
                ("html", None, html),
            ],
            400,
            "not a CSV of UTF-8 text",
        ),
        (
            "a bad id",
            vec![("recipients", None, b"ok\nbell\x07"), ("html", None, html)],
            400,
            "recipient 2 ",
        ),
        (
            "1001 recipients",
            vec![("recipients", None, many.as_bytes()), ("html", None, html)],
            413,
            "at most 1000",
        ),
        (
            "a long list",
            vec![("recipients", None, wide.as_bytes()), ("html", None, html)],
            413,
            "more than 1 MiB",
        ),
        (
            "a big email",
            vec![
                ("recipients", None, b"a"),
                ("html", None, big_html.as_bytes()),
            ],
            413,
            "larger than 2 MiB",
        ),
        (
            "too much email",
            vec![
                ("recipients", None, thousand.as_bytes()),
                ("html", None, mid_html.as_bytes()),
            ],
            413,
            "more than 64 MiB",
        ),
        (
            "a body past the bound",
            vec![("recipients", None, b"a"), ("html", None, &past_body)],
            413,
            "larger than 3 MiB",
        ),
    ];
    for (what, mut parts, status, message) in cases {
        parts.insert(0, ("csrf", None, csrf.as_bytes()));
        let r = upload(&server, &admin, &path, &parts);
        assert_eq!(r.status, status, "{what}: {}", text(&r));
        let t = text(&r);
        assert!(
            t.contains(&maud::html! { (message) }.into_string()),
            "{what}: {t}"
        );
    }
    // CSRF, viewers, other campaigns, other encodings.
    let good = |csrf: &'static str| -> Vec<Part<'static>> {
        vec![
            ("csrf", None, csrf.as_bytes()),
            ("recipients", None, b"a"),
            ("html", None, b"<p>x</p>"),
        ]
    };
    let r = upload(&server, &admin, &path, &good("not-the-token"));
    assert_eq!(r.status, 403, "a wrong token: {}", text(&r));
    let r = upload(&server, &admin, &path, &good("")[1..]);
    assert_eq!(r.status, 403, "no token: {}", text(&r));
    let vparts: Vec<Part> = vec![
        ("csrf", None, vcsrf.as_bytes()),
        ("recipients", None, b"a"),
        ("html", None, b"<p>x</p>"),
    ];
    let r = upload(&server, &vic, &path, &vparts);
    assert_eq!(r.status, 403, "a viewer: {}", text(&r));
    let aparts: Vec<Part> = vec![
        ("csrf", None, csrf.as_bytes()),
        ("recipients", None, b"a"),
        ("html", None, b"<p>x</p>"),
    ];
    let r = upload(&server, &admin, "/campaigns/999/tag-batch", &aparts);
    assert_eq!(r.status, 404);
    let r = form(&server, &admin, &path, "recipients=a&html=x", &csrf);
    assert_eq!(r.status, 400, "{}", text(&r));
    assert!(text(&r).contains("multipart/form-data"), "{}", text(&r));
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn a_viewer_added_with_the_site_picker_sees_that_site_only() {
    let (_d, data) = data_dir();
    let key = common::add_site(&data, "example.com");
    let other = common::add_site(&data, "other.example");
    users(&data, &key);
    let server = Server::start(&data, &[]);
    let admin = sign_in(&server, "boss", ADMIN_PW);
    let page = text(&server.get("/settings", &[("Cookie", &admin)]));
    for k in [&key, &other] {
        assert!(
            page.contains(&format!("type=\"checkbox\" name=\"site\" value=\"{k}\"")),
            "a checkbox for {k}: {page}"
        );
    }
    assert!(!page.contains("comma-separated\" "), "no typed keys");
    let csrf = csrf_field(&page);
    // An unknown key is refused with its name; nothing is added.
    let r = form(
        &server,
        &admin,
        "/settings/users",
        &format!("username=eve&role=viewer&site={key}&site=nope"),
        &csrf,
    );
    assert_eq!(r.status, 400);
    assert!(
        text(&r).contains("no site &quot;nope&quot;"),
        "{}",
        text(&r)
    );
    let r = form(
        &server,
        &admin,
        "/settings/users",
        &format!("username=eve&role=viewer&site={key}"),
        &csrf,
    );
    assert_eq!(r.status, 200, "{}", text(&r));
    let shown = text(&r);
    let at = shown.find("<pre><code>").expect("the password, once") + 11;
    let password = shown[at..].split('<').next().unwrap().to_owned();
    let eve = sign_in(&server, "eve", &password);
    let home = text(&server.get("/", &[("Cookie", &eve)]));
    assert!(
        home.contains("example.com") && !home.contains("other.example"),
        "{home}"
    );
    assert_eq!(
        server
            .get(&format!("/sites/{key}"), &[("Cookie", &eve)])
            .status,
        200
    );
    assert_eq!(
        server
            .get(&format!("/sites/{other}"), &[("Cookie", &eve)])
            .status,
        404
    );
    // The settings list shows her site by name.
    let page = text(&server.get("/settings", &[("Cookie", &admin)]));
    assert!(page.contains("example.com (example.com)"), "{page}");
    assert_eq!(server.terminate().code(), Some(0));
}
