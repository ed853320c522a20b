//! A minimal WebDriver client for chromedriver and headless Chromium, shared by the
//! browser suites (`tests/browser.rs`, `tests/dashboard_browser.rs`). Plain std
//! sockets and JSON: no async runtime and no WebDriver crate to keep in step with
//! Debian's chromedriver.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::CHROME;

/// A page server for test pages (a different origin from pixeltrack's). Every
/// response carries `headers` (CRLF-terminated lines) besides the content type.
pub fn serve_pages_with(headers: &'static str, pages: Vec<(&'static str, String)>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req.split(' ').nth(1).unwrap_or("/").to_owned();
            let body = pages
                .iter()
                .find(|(p, _)| path.starts_with(p))
                .map(|(_, b)| b.clone());
            let (status, body) = match body {
                Some(b) => ("200 OK", b),
                None => ("404 Not Found", "not found".into()),
            };
            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    addr
}

/// [`serve_pages_with`] without extra headers.
pub fn serve_pages(pages: Vec<(&'static str, String)>) -> SocketAddr {
    serve_pages_with("", pages)
}

/// One WebDriver request to chromedriver on `port`; returns the JSON answer.
pub fn wd(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // chromedriver keeps the connection open: read the head, then Content-Length bytes.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if raw.len() >= end + 4 + len {
                return serde_json::from_slice(&raw[end + 4..end + 4 + len]).unwrap_or(Value::Null);
            }
        }
    }
    Value::Null
}

/// The W3C error code of a WebDriver answer (`"no such element"`,
/// `"unexpected alert open"`, ...), if it is an error.
pub fn wd_error(v: &Value) -> Option<&str> {
    v["value"]["error"].as_str()
}

/// A chromedriver process with one headless Chromium session on a fresh profile.
/// Dropping it ends the session and the process.
pub struct Driver {
    child: Child,
    pub port: u16,
    pub session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = wd(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts chromedriver on a free port and opens a session. Dialogs are left open
    /// (`unhandledPromptBehavior: ignore`), so every later command fails with
    /// "unexpected alert open" until one is handled: none goes unnoticed.
    pub fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        // A normal desktop Chrome UA: headless Chromium announces itself as
        // HeadlessChrome, which pixeltrack (rightly) flags as a bot.
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
            // Debian's /usr/bin/chromium is a wrapper script that chromedriver cannot wait on.
            "binary": if std::path::Path::new("/usr/lib/chromium/chromium").exists() { "/usr/lib/chromium/chromium" } else { "/usr/bin/chromium" },
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", profile.path().display()), format!("--user-agent={CHROME}"),
                     "--window-size=1200,800"]
        }}}});
        let v = wd(port, "POST", "/session", Some(caps));
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        Driver {
            child,
            port,
            session,
            _profile: profile,
        }
    }

    /// A session command; the raw answer, errors included.
    pub fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        wd(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
    }

    /// A session command that must succeed: panics with the error otherwise (an open
    /// dialog shows up here as "unexpected alert open" with its text).
    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = self.cmd(method, path, body);
        if let Some(e) = wd_error(&v) {
            panic!("WebDriver {method} {path} failed: {e}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub fn go(&self, url: &str) {
        self.ok("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.ok("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn js(&self, script: &str) -> Value {
        self.ok(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// The element reference of the first match of `css`, if any.
    pub fn find(&self, css: &str) -> Option<String> {
        let el = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        match wd_error(&el) {
            Some("no such element") => None,
            Some(e) => panic!("find {css}: {e}: {}", el["value"]),
            None => el["value"]
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }

    pub fn click(&self, css: &str) {
        let id = self.find(css).unwrap_or_else(|| panic!("no element {css}"));
        self.ok("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Types `text` into the first match of `css`.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).unwrap_or_else(|| panic!("no element {css}"));
        self.ok(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// The viewport as PNG bytes.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let b64 = self.ok("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64 screenshot"))
            .expect("screenshot is base64")
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.ok(
            "POST",
            "/goog/cdp/execute",
            Some(json!({ "cmd": cmd, "params": params })),
        )
    }

    /// The text of an open dialog, or `None` when there is none.
    pub fn dialog_text(&self) -> Option<String> {
        let v = self.cmd("GET", "/alert/text", None);
        match wd_error(&v) {
            Some("no such alert") => None,
            Some(e) => panic!("GET /alert/text: {e}: {}", v["value"]),
            None => Some(v["value"].as_str().unwrap_or_default().to_owned()),
        }
    }

    /// Polls `script` (a function body returning a value) until it returns `true`,
    /// for at most `limit`; returns whether it did.
    pub fn wait_js(&self, script: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.js(script) == Value::Bool(true) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
