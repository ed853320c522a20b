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
