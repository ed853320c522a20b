//! Dashboard accounts end to end, against the real binary: first-start admin, sign-in,
//! sessions, CSRF, throttling, security headers and the `user` commands.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{data_dir, Response, Server};

const NOTICE: &str = "pixeltrack: created user 'admin' with password ";
const LOGIN_FAILED: &str = "wrong username or password, or too many attempts — wait and retry";

/// The admin password a first start wrote (None when none was created). With standard
/// error not a terminal (a log file here), it is in an owner-only file, never the log.
fn admin_password(server: &Server) -> Option<String> {
    let file = server.data.join(pixeltrack::server::ADMIN_PASSWORD_FILE);
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(NOTICE))?;
    Some(line[NOTICE.len()..].split(' ').next()?.to_owned())
}

pub(crate) fn request(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut all = headers.to_vec();
    if !body.is_empty() {
        all.push(("Content-Type", "application/x-www-form-urlencoded"));
    }
    common::http_body(server.addr, method, path, &all, body).expect("complete response")
}

fn set_cookies(r: &Response) -> Vec<&str> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// `name=value` of cookie `name` set by `r`.
fn cookie_pair(r: &Response, name: &str) -> Option<String> {
    set_cookies(r)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
}

pub(crate) fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The value of the hidden `csrf` field in a page.
pub(crate) fn csrf_field(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    page[start..].split('"').next().unwrap().to_owned()
}

pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A browser's view of the sign-in form: its pt_csrf cookie and the form token.
struct LoginForm {
    cookie: String,
    token: String,
}

fn login_form(server: &Server) -> LoginForm {
    let r = server.get("/login", &[]);
    assert_eq!(r.status, 200);
    LoginForm {
        cookie: cookie_pair(&r, "pt_csrf").expect("pt_csrf cookie"),
        token: csrf_field(&text(&r)),
    }
}

fn post_login(server: &Server, form: &LoginForm, user: &str, pw: &str, next: &str) -> Response {
    let body = format!(
        "csrf={}&username={}&password={}&next={}",
        form.token,
        enc(user),
        enc(pw),
        enc(next)
    );
    request(server, "POST", "/login", &[("Cookie", &form.cookie)], &body)
}

/// Signs in; returns the `pt_session=…` cookie pair.
pub(crate) fn sign_in(server: &Server, user: &str, pw: &str) -> String {
    let r = post_login(server, &login_form(server), user, pw, "/");
    assert_eq!(r.status, 303, "{}", text(&r));
    cookie_pair(&r, "pt_session").expect("session cookie")
}

pub(crate) fn cli_with_stdin(data: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(common::bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("PIXELTRACK_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn assert_security_headers(r: &Response, what: &str) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert!(r.header("referrer-policy").is_some(), "{what}");
}

#[test]
fn first_start_writes_the_admin_password_once_to_an_owner_only_file() {
    let (_d, data) = data_dir();
    let server = Server::start(&data, &[]);
    let pw = admin_password(&server).expect("first start writes the admin password");
    assert_eq!(pw.len(), 20);
    let file = data.join(pixeltrack::server::ADMIN_PASSWORD_FILE);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&format!("sign in at http://{}/login", server.addr)),
        "{text}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "readable by its owner only");
    }
    let log = server.log_text();
    assert!(!log.contains(&pw), "never in the log: {log}");
    assert!(
        log.contains("admin-password.txt"),
        "the log says where: {log}"
    );
    sign_in(&server, "admin", &pw);
    assert_eq!(server.terminate().code(), Some(0));

    std::fs::remove_file(&file).unwrap();
    let again = Server::start(&data, &[]);
    assert_eq!(admin_password(&again), None, "{}", again.log_text());
    assert!(!again.log_text().contains(&pw));
    sign_in(&again, "admin", &pw);
}

#[test]
fn sign_in_sets_a_session_cookie_that_opens_the_dashboard() {
    let (_d, data) = data_dir();
    let server = Server::start(&data, &[]);
    let pw = admin_password(&server).unwrap();
    let r = post_login(&server, &login_form(&server), "admin", &pw, "/");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/"));
    let set = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("pt_session="))
        .expect("session cookie")
        .to_owned();
    assert!(
        set.contains("; HttpOnly") && set.contains("; SameSite=Lax") && set.contains("; Path=/"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain http: no Secure flag: {set}");
    let session = set.split(';').next().unwrap();
    assert!(
        session.len() >= "pt_session=".len() + 43,
        "256-bit id: {session}"
    );

    let home = server.get("/", &[("Cookie", session)]);
    assert_eq!(home.status, 200);
    assert!(
        text(&home).contains("Signed in as <strong>admin</strong>"),
        "{}",
        text(&home)
    );

    // Only a hash of the session id is stored.
    let id = &session["pt_session=".len()..];
    for (path, bytes) in common::files(&data) {
        assert!(
            !common::contains(&bytes, id.as_bytes()),
            "session id in {}",
            path.display()
        );
    }
}

#[test]
fn https_public_url_makes_cookies_secure() {
    let (_d, data) = data_dir();
    let server = Server::start(&data, &[("PIXELTRACK_PUBLIC_URL", "https://t.example.com")]);
    let pw = admin_password(&server).unwrap();
    let r = server.get("/login", &[]);
    assert!(
        set_cookies(&r).iter().all(|c| c.contains("; Secure")),
        "{:?}",
        set_cookies(&r)
    );
    let r = post_login(&server, &login_form(&server), "admin", &pw, "/");
    assert_eq!(r.status, 303);
    assert!(
        set_cookies(&r).iter().all(|c| c.contains("; Secure")),
        "{:?}",
        set_cookies(&r)
    );
}

#[test]
fn failed_sign_ins_look_the_same_and_are_throttled() {
    let (_d, data) = data_dir();
    let server = Server::start(&data, &[]);
    let pw = admin_password(&server).unwrap();
    let form = login_form(&server);
    let wrong = post_login(&server, &form, "admin", "not the password", "/");
    let unknown = post_login(&server, &form, "nobody", "not the password", "/");
    let invalid = post_login(&server, &form, "<script>", "x", "/");
    assert_eq!(wrong.status, 401);
    assert!(text(&wrong).contains(LOGIN_FAILED), "{}", text(&wrong));
    for other in [&unknown, &invalid] {
        assert_eq!(other.status, wrong.status);
        assert_eq!(
            other.body, wrong.body,
            "the page must not tell which names exist"
        );
        assert_eq!(cookie_pair(other, "pt_session"), None);
    }
    // Five failures lock the name: then even the right password gets the same answer.
    for _ in 0..4 {
        assert_eq!(
            post_login(&server, &form, "admin", "still wrong", "/").status,
            401
        );
    }
    let throttled = post_login(&server, &form, "admin", &pw, "/");
    assert_eq!(throttled.status, wrong.status);
    assert_eq!(throttled.body, wrong.body);
    assert_eq!(cookie_pair(&throttled, "pt_session"), None);
    // Names are throttled case-insensitively, as they are matched.
    assert_eq!(post_login(&server, &form, "ADMIN", &pw, "/").status, 401);
}

#[test]
fn posts_without_the_csrf_token_or_from_another_origin_are_refused() {
    let (_d, data) = data_dir();
    let server = Server::start(&data, &[]);
    let pw = admin_password(&server).unwrap();

    // Sign-in form: the pt_csrf cookie and the field must match, Origin must be us.
    let form = login_form(&server);
    let body = format!("username=admin&password={}", enc(&pw));
    let no_token = request(
        &server,
        "POST",
        "/login",
        &[("Cookie", &form.cookie)],
        &body,
    );
    assert_eq!(no_token.status, 403);
    assert!(text(&no_token).contains("CSRF"), "{}", text(&no_token));
    let body_t = format!("{body}&csrf={}", form.token);
    let no_cookie = request(&server, "POST", "/login", &[], &body_t);
    assert_eq!(no_cookie.status, 403);
    let foreign = request(
        &server,
        "POST",
        "/login",
        &[("Cookie", &form.cookie), ("Origin", "https://evil.example")],
        &body_t,
    );
    assert_eq!(foreign.status, 403);
    assert_eq!(cookie_pair(&foreign, "pt_session"), None);
    let same_origin = format!("http://{}", server.addr);
    let ok = request(
        &server,
        "POST",
        "/login",
        &[("Cookie", &form.cookie), ("Origin", &same_origin)],
        &body_t,
    );
    assert_eq!(ok.status, 303);
    let session = cookie_pair(&ok, "pt_session").unwrap();

    // Logout: the session's token is on the page; without it, or cross-origin, 403.
    let home = server.get("/", &[("Cookie", &session)]);
    let token = csrf_field(&text(&home));
    assert_ne!(token, form.token, "sessions get their own token");
    for (headers, body) in [
        (vec![("Cookie", session.as_str())], String::new()),
        (vec![("Cookie", session.as_str())], "csrf=wrong".to_owned()),
        (
            vec![("Cookie", session.as_str())],
            format!("csrf={}", form.token),
        ),
        (
            vec![
                ("Cookie", session.as_str()),
                ("Origin", "https://evil.example"),
            ],
            format!("csrf={token}"),
        ),
        (
            vec![("Cookie", session.as_str()), ("Origin", "null")],
            format!("csrf={token}"),
        ),
    ] {
        let r = request(&server, "POST", "/logout", &headers, &body);
        assert_eq!(r.status, 403, "{headers:?} {body}");
        assert_security_headers(&r, "403");
    }
    assert_eq!(
        server.get("/", &[("Cookie", &session)]).status,
        200,
        "still signed in"
    );

    let out = request(
        &server,
        "POST",
        "/logout",
        &[("Cookie", &session), ("Origin", &same_origin)],
        &format!("csrf={token}"),
    );
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/login"));
    assert!(set_cookies(&out)
        .iter()
        .any(|c| c.starts_with("pt_session=;") && c.contains("Max-Age=0")));
    let after = server.get("/", &[("Cookie", &session)]);
    assert_eq!(
        after.status, 303,
        "the session is dead server-side, not just forgotten"
    );
}

#[test]
fn pages_need_a_session_and_next_stays_on_this_site() {
    let (_d, data) = data_dir();
    let server = Server::start(&data, &[]);
    let pw = admin_password(&server).unwrap();
    let r = server.get("/", &[]);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
    let forged = server.get(
        "/",
        &[(
            "Cookie",
            "pt_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )],
    );
    assert_eq!(forged.status, 303);

    for evil in [
        "//evil.example",
        "https://evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let page = server.get(&format!("/login?next={}", enc(evil)), &[]);
        assert!(
            text(&page).contains("name=\"next\" value=\"/\""),
            "{evil}: {}",
            text(&page)
        );
        let r = post_login(&server, &login_form(&server), "admin", &pw, evil);
        assert_eq!(r.status, 303, "{evil}");
        assert_eq!(r.header("location"), Some("/"), "{evil}");
    }
    let r = post_login(
        &server,
        &login_form(&server),
        "admin",
        &pw,
        "/sites/1?from=2026-01-01",
    );
    assert_eq!(r.header("location"), Some("/sites/1?from=2026-01-01"));
}

#[test]
fn every_dashboard_response_carries_the_security_headers() {
    let (_d, data) = data_dir();
    let server = Server::start(&data, &[]);
    let pw = admin_password(&server).unwrap();
    let form = login_form(&server);
    let session = sign_in(&server, "admin", &pw);
    let home = server.get("/", &[("Cookie", &session)]);
    let css_href = text(&home)
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("stylesheet link")
        .replace("&amp;", "&");
    let css = server.get(&css_href, &[]);
    assert_eq!(css.status, 200);
    assert!(css
        .header("cache-control")
        .unwrap_or("")
        .contains("max-age=31536000"));
    assert!(css
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/css"));
    for (what, r) in [
        ("GET / signed in", &home),
        ("GET / signed out", &server.get("/", &[])),
        ("GET /login", &server.get("/login", &[])),
        (
            "failed login",
            &post_login(&server, &form, "admin", "nope-nope-nope", "/"),
        ),
        (
            "POST /logout without token",
            &request(&server, "POST", "/logout", &[("Cookie", &session)], ""),
        ),
        ("stylesheet", &css),
    ] {
        assert_security_headers(r, what);
        if what != "stylesheet" {
            assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
        }
        if r.status == 200 && what != "stylesheet" {
            assert!(
                !text(r).contains("<script") && !text(r).contains("style="),
                "{what}: no inline code"
            );
        }
    }
}

#[test]
fn user_commands_manage_accounts_and_end_sessions() {
    let (_d, data) = data_dir();
    let site = common::add_site(&data, "a.example");
    common::add_site(&data, "b.example");
    let out = cli_with_stdin(
        &data,
        &["user", "add", "ann", "--site", &site, "--password-stdin"],
        "ann's password 1\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added = common::cli(&data, &["user", "add", "root", "--role", "admin", "--json"]);
    let root: serde_json::Value = serde_json::from_str(&added).unwrap();
    let root_pw = root["password"]
        .as_str()
        .expect("generated password shown")
        .to_owned();
    assert_eq!(root_pw.len(), 20);
    let short = cli_with_stdin(
        &data,
        &["user", "add", "bob", "--password-stdin"],
        "short\n",
    );
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 10"));

    let list: serde_json::Value =
        serde_json::from_str(&common::cli(&data, &["user", "list", "--json"])).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(
        list.len(),
        2,
        "a server never started: no first-start admin"
    );
    assert_eq!(list[0]["name"], "ann");
    assert_eq!(list[0]["role"], "viewer");
    assert_eq!(list[0]["sites"], serde_json::json!([site]));
    assert_eq!(list[1]["role"], "admin");
    let table = common::cli(&data, &["user", "list"]);
    assert!(
        table.contains("ann") && table.contains("viewer") && table.contains(&site),
        "{table}"
    );

    let server = Server::start(&data, &[]);
    assert_eq!(
        admin_password(&server),
        None,
        "users exist: no admin is created"
    );
    let ann = sign_in(&server, "ann", "ann's password 1");
    let ann_home = text(&server.get("/", &[("Cookie", &ann)]));
    // The viewer's site list shows her one site, not the other.
    assert!(
        ann_home.contains("viewer")
            && ann_home.contains("a.example")
            && !ann_home.contains("b.example"),
        "{ann_home}"
    );
    let root_session = sign_in(&server, "root", &root_pw);

    // passwd ends existing sessions; the new password works, the old one not.
    let out = cli_with_stdin(
        &data,
        &["user", "passwd", "ann", "--password-stdin"],
        "ann's password 2\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.get("/", &[("Cookie", &ann)]).status, 303);
    assert_eq!(
        server.get("/", &[("Cookie", &root_session)]).status,
        200,
        "other users unaffected"
    );
    assert_eq!(
        post_login(
            &server,
            &login_form(&server),
            "ann",
            "ann's password 1",
            "/"
        )
        .status,
        401
    );
    let ann = sign_in(&server, "ann", "ann's password 2");

    // The last admin stays; other users can go, their sessions with them.
    let last = Command::new(common::bin())
        .arg("--data")
        .arg(&data)
        .args(["user", "remove", "root"])
        .output()
        .unwrap();
    assert!(!last.status.success());
    assert!(
        String::from_utf8_lossy(&last.stderr).contains("last admin"),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    common::cli(&data, &["user", "remove", "ann"]);
    assert_eq!(server.get("/", &[("Cookie", &ann)]).status, 303);
    let list = common::cli(&data, &["user", "list", "--json"]);
    assert!(!list.contains("\"ann\""), "{list}");

    // No password is on disk in plain text, in any file (database, WAL, logs).
    drop(server);
    for (path, bytes) in common::files(&data) {
        for pw in ["ann's password 1", "ann's password 2", root_pw.as_str()] {
            assert!(
                !common::contains(&bytes, pw.as_bytes()),
                "{pw:?} in {}",
                path.display()
            );
        }
    }
}

/// Every state-changing dashboard route, with a body that would be valid.
const MUTATIONS: &[(&str, &str)] = &[
    ("/settings/sites", "domain=new.example"),
    (
        "/settings/sites/KEY",
        "hosts=&privacy_mode=off&without_consent=drop",
    ),
    ("/settings/sites/KEY/remove", "confirm=a.example"),
    ("/settings/users", "username=mallory&role=admin"),
    ("/settings/users/1/remove", ""),
    ("/settings/tokens", "name=x&scope=admin"),
    ("/settings/tokens/1/revoke", ""),
    ("/settings/shares", "site=a.example&name=x"),
    ("/settings/shares/1/revoke", ""),
    ("/logout", ""),
];

fn with_csrf(body: &str, csrf: &str) -> String {
    if body.is_empty() {
        format!("csrf={csrf}")
    } else {
        format!("{body}&csrf={csrf}")
    }
}

#[test]
fn viewers_share_links_foreign_forms_and_read_tokens_cannot_change_anything() {
    let (_d, data) = data_dir();
    let key = common::add_site(&data, "a.example");
    let other = common::add_site(&data, "b.example");
    let out = cli_with_stdin(
        &data,
        &["user", "add", "vic", "--site", &key, "--password-stdin"],
        "vic's password 1\n",
    );
    assert!(out.status.success());
    let out = cli_with_stdin(
        &data,
        &[
            "user",
            "add",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
        ],
        "admin password 1\n",
    );
    assert!(out.status.success());
    let server = Server::start(&data, &[]);
    let admin = sign_in(&server, "admin", "admin password 1");
    let vic = sign_in(&server, "vic", "vic's password 1");

    // The admin makes a share link and a read token through the settings page.
    let settings = text(&server.get("/settings", &[("Cookie", &admin)]));
    let csrf = csrf_field(&settings);
    let made = request(
        &server,
        "POST",
        "/settings/shares",
        &[("Cookie", &admin)],
        &format!("site=a.example&name=board&csrf={csrf}"),
    );
    assert_eq!(made.status, 200, "{}", text(&made));
    let page = text(&made);
    let share = page[page.find("/share/pts_").expect("share url shown")..]
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let made = request(
        &server,
        "POST",
        "/settings/tokens",
        &[("Cookie", &admin)],
        &format!("name=r&scope=read&csrf={csrf}"),
    );
    let page = text(&made);
    let token = page[page.find("pt_").expect("token shown")..]
        .split('<')
        .next()
        .unwrap()
        .to_owned();

    let vic_page = text(&server.get(&format!("/sites/{key}"), &[("Cookie", &vic)]));
    let vic_csrf = csrf_field(&vic_page);
    for (path, body) in MUTATIONS {
        let path = path.replace("KEY", &key);
        // A viewer, with a valid CSRF token: not allowed (logout is hers to do, skip it).
        if path != "/logout" {
            let r = request(
                &server,
                "POST",
                &path,
                &[("Cookie", &vic)],
                &with_csrf(body, &vic_csrf),
            );
            assert_eq!(r.status, 403, "viewer {path}: {}", text(&r));
        }
        // A share link is no session.
        let r = request(&server, "POST", &path, &[], &with_csrf(body, &csrf));
        assert_eq!(r.status, 403, "no session {path}");
        // The admin, but without the token, or from another site.
        let r = request(&server, "POST", &path, &[("Cookie", &admin)], body);
        assert_eq!(r.status, 403, "no csrf {path}");
        let r = request(
            &server,
            "POST",
            &path,
            &[("Cookie", &admin), ("Origin", "https://evil.example")],
            &with_csrf(body, &csrf),
        );
        assert_eq!(r.status, 403, "foreign origin {path}");
    }
    // Nothing changed: both sites, both users, still there.
    let settings = text(&server.get("/settings", &[("Cookie", &admin)]));
    assert!(
        settings.contains("b.example") && settings.contains("vic") && !settings.contains("mallory")
    );
    assert!(!settings.contains("new.example"));

    // A viewer cannot see the other site, its pages or its campaigns, nor settings.
    assert_eq!(
        server
            .get(&format!("/sites/{other}"), &[("Cookie", &vic)])
            .status,
        404
    );
    assert_eq!(server.get("/settings", &[("Cookie", &vic)]).status, 403);
    assert_eq!(
        server
            .get(&format!("/sites/{key}"), &[("Cookie", &vic)])
            .status,
        200
    );
    // A site's domain in place of its key leads to its page; not to one she cannot see.
    let r = server.get("/sites/A.example?period=7d", &[("Cookie", &vic)]);
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some(format!("/sites/{key}?period=7d").as_str())
    );
    assert_eq!(
        server.get("/sites/b.example", &[("Cookie", &vic)]).status,
        404
    );

    // The share link reads its site's page without a session, and nothing else.
    let r = server.get(&share, &[]);
    assert_eq!(r.status, 200, "{share}");
    assert!(text(&r).contains("a.example") && !text(&r).contains("Sign out"));
    assert_eq!(
        server.get(&format!("{share}/realtime.json"), &[]).status,
        200
    );
    assert_eq!(server.get("/share/pts_forged", &[]).status, 404);
    // The API refuses share links outright, and read tokens for changes.
    let secret = share.trim_start_matches("/share/");
    let r = common::http(
        server.addr,
        "GET",
        "/api/v1/sites",
        &[("Authorization", &format!("Bearer {secret}"))],
    )
    .unwrap();
    assert_eq!(r.status, 403);
    for (method, path) in [
        ("POST", "/api/v1/sites"),
        ("DELETE", &format!("/api/v1/sites/{key}") as &str),
        ("POST", "/api/v1/campaigns"),
        ("POST", "/api/v1/consent"),
        ("DELETE", "/api/v1/subjects/x"),
    ] {
        let r = request(
            &server,
            method,
            path,
            &[("Authorization", &format!("Bearer {token}"))],
            "{}",
        );
        assert_eq!(r.status, 403, "read token {method} {path}: {}", text(&r));
        let r = request(
            &server,
            method,
            path,
            &[("Authorization", &format!("Bearer {secret}"))],
            "{}",
        );
        assert_eq!(r.status, 403, "share link {method} {path}");
    }
    // Revoking the link closes it.
    let settings = text(&server.get("/settings", &[("Cookie", &admin)]));
    let r = request(
        &server,
        "POST",
        "/settings/shares/1/revoke",
        &[("Cookie", &admin)],
        &format!("csrf={}", csrf_field(&settings)),
    );
    assert_eq!(r.status, 303);
    assert_eq!(server.get(&share, &[]).status, 404);
}

#[test]
fn a_password_protected_share_link_asks_once_and_is_throttled() {
    let (_d, data) = data_dir();
    common::add_site(&data, "a.example");
    let server = Server::start(&data, &[]);
    let admin = sign_in(&server, "admin", &admin_password(&server).unwrap());
    let csrf = csrf_field(&text(&server.get("/settings", &[("Cookie", &admin)])));
    let made = request(
        &server,
        "POST",
        "/settings/shares",
        &[("Cookie", &admin)],
        &format!(
            "site=a.example&name=board&password={}&csrf={csrf}",
            enc("board password 1")
        ),
    );
    let page = text(&made);
    let share = page[page.find("/share/pts_").unwrap()..]
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let ask = server.get(&share, &[]);
    assert_eq!(ask.status, 200);
    assert!(text(&ask).contains("protected") && !text(&ask).contains("Visitors"));
    assert_eq!(
        server.get(&format!("{share}/realtime.json"), &[]).status,
        403
    );
    let wrong = request(&server, "POST", &share, &[], "password=nope");
    assert_eq!(wrong.status, 401);
    let foreign = request(
        &server,
        "POST",
        &share,
        &[("Origin", "https://evil.example")],
        &format!("password={}", enc("board password 1")),
    );
    assert_eq!(foreign.status, 403);
    let ok = request(
        &server,
        "POST",
        &share,
        &[],
        &format!("password={}", enc("board password 1")),
    );
    assert_eq!(ok.status, 303);
    let c = cookie_pair(&ok, "pt_share").expect("share cookie");
    assert!(set_cookies(&ok)
        .iter()
        .any(|s| s.contains(&format!("Path={share}")) && s.contains("HttpOnly")));
    let r = server.get(&share, &[("Cookie", &c)]);
    assert!(text(&r).contains("Visitors"), "unlocked");
    // A forged cookie does not open it; many wrong passwords lock even the right one.
    assert!(text(&server.get(&share, &[("Cookie", "pt_share=AAAA")])).contains("protected"));
    for _ in 0..6 {
        request(&server, "POST", &share, &[], "password=nope");
    }
    let locked = request(
        &server,
        "POST",
        &share,
        &[],
        &format!("password={}", enc("board password 1")),
    );
    assert_eq!(locked.status, 401, "throttled");
}
