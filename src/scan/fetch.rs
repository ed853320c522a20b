//! The guarded fetch behind `pixeltrack scan --url`: one page over HTTP(S), with a
//! deadline, a size cap and no way into the machine's own network unless allowed.
//!
//! A URL given by a user, or a redirect chosen by the server it names, must not make the
//! scanner a proxy into loopback, the LAN or a cloud metadata service (SSRF). So every
//! hop's host is resolved here, once; the hop is refused if ANY of its addresses is not
//! public (loopback, RFC 1918, CGNAT, link-local, unique-local, unspecified, multicast,
//! documentation and reserved ranges, and IPv4 addresses inside IPv6 — mapped, NAT64,
//! 6to4 — judged as the IPv4 address they carry); and the connection goes to an address
//! that was checked, never through a second lookup, so a DNS answer that changes between
//! check and use (rebinding) changes nothing. Redirects are followed by hand, at most
//! [`MAX_REDIRECTS`], each hop checked again. Only `http` and `https`; no credentials in
//! URLs; no proxies from the environment. HTTPS uses rustls with Mozilla's roots
//! (`webpki-roots`); HTTP/1.1 is hyper's client, already built for ClickHouse.

use std::future::poll_fn;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body::Body as _;
use hyper::body::Incoming;
use hyper::Response;
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use url::{Host, Url};

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;

/// What a fetch may do.
#[derive(Clone, Debug)]
pub struct Policy {
    /// For the whole fetch, redirects included.
    pub timeout: Duration,
    /// The largest body accepted.
    pub max_bytes: u64,
    /// Reach any address (`--allow-private`).
    pub allow_private: bool,
    /// Reach these networks even though they are not public (`--allow-net`).
    pub allow_nets: Vec<IpNet>,
}

/// A fetched page.
#[derive(Debug)]
pub struct Page {
    /// Where the body came from, after redirects.
    pub url: Url,
    /// The addresses redirected from, in order.
    pub redirects: Vec<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0:?} is not a URL: {1}")]
    BadUrl(String, url::ParseError),
    #[error("only http and https URLs can be fetched, not {0}:")]
    Scheme(String),
    #[error("{0} has a user name or password in it; pixeltrack sends no credentials")]
    Credentials(String),
    #[error("refused {url}: {host} is {why} ({addr}); pass --allow-private (or --allow-net {addr}/32) to scan it")]
    Refused {
        url: String,
        host: String,
        addr: IpAddr,
        why: &'static str,
    },
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{0} has no address")]
    NoAddress(String),
    #[error("cannot connect to {host}: {source}")]
    Connect {
        host: String,
        source: std::io::Error,
    },
    #[error("TLS with {host}: {source}")]
    Tls {
        host: String,
        source: std::io::Error,
    },
    #[error("HTTP with {host}: {source}")]
    Http { host: String, source: hyper::Error },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} redirected without a usable Location")]
    BadRedirect { url: String },
    #[error("more than {MAX_REDIRECTS} redirects, the last to {0}")]
    TooManyRedirects(String),
    #[error("{url} is larger than {max} bytes (--max-bytes)")]
    TooLarge { url: String, max: u64 },
    #[error("no complete answer within {0} s (--timeout)")]
    Timeout(u64),
    #[error("cannot make a request for {0}")]
    Request(String),
    #[error("cannot start the network runtime: {0}")]
    Runtime(std::io::Error),
}

/// Why `ip` is not a public address, if it is not.
pub fn not_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => not_public_v4(a),
        IpAddr::V6(a) => not_public_v6(a),
    }
}

fn not_public_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [b0, b1, b2, _] = a.octets();
    Some(match (b0, b1, b2) {
        (0, _, _) => "an unspecified address (0.0.0.0/8)",
        (10, _, _) => "a private address (10.0.0.0/8)",
        (100, 64..=127, _) => "a carrier-grade NAT address (100.64.0.0/10)",
        (127, _, _) => "a loopback address (127.0.0.0/8)",
        (169, 254, _) => {
            "a link-local address (169.254.0.0/16, where cloud metadata services live)"
        }
        (172, 16..=31, _) => "a private address (172.16.0.0/12)",
        (192, 0, 0) => "an IETF protocol address (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (192, 168, _) => "a private address (192.168.0.0/16)",
        (198, 18..=19, _) => "a benchmarking address (198.18.0.0/15)",
        (224..=239, _, _) => "a multicast address (224.0.0.0/4)",
        (240..=255, _, _) => "a reserved address (240.0.0.0/4)",
        _ => return None,
    })
}

fn not_public_v6(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if a.is_unspecified() {
        return Some("an unspecified address (::)");
    }
    if a.is_loopback() {
        return Some("a loopback address (::1)");
    }
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated): the IPv4 address.
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return Some(match not_public_v4(embedded(s[6], s[7])) {
            Some(_) if s[5] == 0xffff => "an IPv4-mapped address of a non-public IPv4 address",
            _ if s[5] == 0 => "an IPv4-compatible address (deprecated)",
            Some(why) => why,
            None => return None,
        });
    }
    // NAT64 (64:ff9b::/96): the IPv4 address it translates to.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return not_public_v4(embedded(s[6], s[7]))
            .map(|_| "a NAT64 address of a non-public IPv4 address");
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return Some("a local-use NAT64 address (64:ff9b:1::/48)");
    }
    // 6to4 (2002::/16): the IPv4 address in bits 16-48.
    if s[0] == 0x2002 {
        return not_public_v4(embedded(s[1], s[2]))
            .map(|_| "a 6to4 address of a non-public IPv4 address");
    }
    Some(match s[0] {
        0xfc00..=0xfdff => "a unique-local (private) address (fc00::/7)",
        0xfe80..=0xfebf => "a link-local address (fe80::/10)",
        0xfec0..=0xfeff => "a site-local address (fec0::/10)",
        0xff00..=0xffff => "a multicast address (ff00::/8)",
        0x2001 if s[1] == 0 => "a Teredo tunnel address (2001::/32)",
        0x2001 if s[1] == 0xdb8 => "a documentation address (2001:db8::/32)",
        0x2001 if s[1] < 0x200 => "an IETF special-purpose address (2001::/23)",
        0x2000..=0x3fff => return None,
        _ => "not a global unicast address (outside 2000::/3)",
    })
}

impl Policy {
    /// Why the policy refuses `ip`, if it does.
    pub fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allow_private {
            return None;
        }
        let canonical = ip.to_canonical();
        if self
            .allow_nets
            .iter()
            .any(|n| n.contains(&ip) || n.contains(&canonical))
        {
            return None;
        }
        not_public(ip)
    }
}

/// The URL as a fetch target: http or https, no credentials.
pub fn target(raw: &str) -> Result<Url, FetchError> {
    let url = Url::parse(raw.trim()).map_err(|e| FetchError::BadUrl(raw.to_owned(), e))?;
    checked_target(url)
}

fn checked_target(url: Url) -> Result<Url, FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::Scheme(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(FetchError::Credentials(shown.to_string()));
    }
    if url.host().is_none() {
        return Err(FetchError::NoAddress(url.to_string()));
    }
    Ok(url)
}

/// The addresses of the URL's host, every one allowed by the policy: an address literal
/// is checked as it is (no lookup), a name is resolved once.
async fn addresses(url: &Url, policy: &Policy) -> Result<Vec<SocketAddr>, FetchError> {
    let port = url.port_or_known_default().unwrap_or(80);
    let host = url.host_str().unwrap_or_default().to_owned();
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(a)) => vec![SocketAddr::new(a.into(), port)],
        Some(Host::Ipv6(a)) => vec![SocketAddr::new(a.into(), port)],
        Some(Host::Domain(d)) => tokio::net::lookup_host((d, port))
            .await
            .map_err(|source| FetchError::Resolve {
                host: host.clone(),
                source,
            })?
            .collect(),
        None => Vec::new(),
    };
    if addrs.is_empty() {
        return Err(FetchError::NoAddress(host));
    }
    for a in &addrs {
        if let Some(why) = policy.refuses(a.ip()) {
            return Err(FetchError::Refused {
                url: url.to_string(),
                host,
                addr: a.ip(),
                why,
            });
        }
    }
    Ok(addrs)
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Sends one GET over `io` and returns the response head (the body streams on).
async fn exchange<S>(io: S, url: &Url, host: &str) -> Result<Response<Incoming>, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http = |source| FetchError::Http {
        host: host.to_owned(),
        source,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(http)?;
    tokio::spawn(conn);
    let mut target = url.path().to_owned();
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let request = hyper::Request::get(target)
        .header(hyper::header::HOST, authority)
        .header(
            hyper::header::USER_AGENT,
            concat!("pixeltrack-scan/", env!("CARGO_PKG_VERSION")),
        )
        .header(
            hyper::header::ACCEPT,
            "text/html,application/xhtml+xml,message/rfc822;q=0.9,*/*;q=0.5",
        )
        .header(hyper::header::ACCEPT_ENCODING, "identity")
        .body(String::new())
        .map_err(|e| FetchError::Request(format!("{url}: {e}")))?;
    sender.send_request(request).await.map_err(http)
}

/// One request to one hop: connect to a checked address, then TLS if https.
async fn get(
    url: &Url,
    addrs: &[SocketAddr],
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Response<Incoming>, FetchError> {
    let host = url.host_str().unwrap_or_default().to_owned();
    let mut last = None;
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(tcp) = stream else {
        return Err(FetchError::Connect {
            host,
            source: last.unwrap_or_else(|| std::io::Error::other("no address")),
        });
    };
    if url.scheme() == "https" {
        let name = match url.host() {
            Some(Host::Ipv4(a)) => rustls::pki_types::ServerName::IpAddress(IpAddr::from(a).into()),
            Some(Host::Ipv6(a)) => rustls::pki_types::ServerName::IpAddress(IpAddr::from(a).into()),
            _ => rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| {
                FetchError::Tls {
                    host: host.clone(),
                    source: std::io::Error::other(e.to_string()),
                }
            })?,
        };
        let tls_stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|source| FetchError::Tls {
                host: host.clone(),
                source,
            })?;
        exchange(tls_stream, url, &host).await
    } else {
        exchange(tcp, url, &host).await
    }
}

async fn read_body(resp: Response<Incoming>, url: &Url, max: u64) -> Result<Vec<u8>, FetchError> {
    let too_large = || FetchError::TooLarge {
        url: url.to_string(),
        max,
    };
    let declared = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|source| FetchError::Http {
            host: url.host_str().unwrap_or_default().to_owned(),
            source,
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() as u64 + data.len() as u64 > max {
                return Err(too_large());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

async fn fetch_hops(start: Url, policy: &Policy) -> Result<Page, FetchError> {
    let tls = tls_config();
    let mut url = start;
    let mut redirects = Vec::new();
    loop {
        let addrs = addresses(&url, policy).await?;
        let resp = get(&url, &addrs, &tls).await?;
        let status = resp.status();
        if status.is_redirection() && status.as_u16() != 304 {
            let next = resp
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| FetchError::BadRedirect {
                    url: url.to_string(),
                })?;
            let next = checked_target(next)?;
            if redirects.len() >= MAX_REDIRECTS {
                return Err(FetchError::TooManyRedirects(next.to_string()));
            }
            redirects.push(url.to_string());
            url = next;
            continue;
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        let content_type = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_body(resp, &url, policy.max_bytes).await?;
        return Ok(Page {
            url,
            redirects,
            content_type,
            body,
        });
    }
}

/// Fetches `raw` under `policy`, on a runtime of its own (the CLI is synchronous).
pub fn fetch(raw: &str, policy: &Policy) -> Result<Page, FetchError> {
    let url = target(raw)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(FetchError::Runtime)?;
    let secs = policy.timeout.as_secs();
    let result = rt.block_on(async {
        tokio::time::timeout(policy.timeout, fetch_hops(url, policy))
            .await
            .unwrap_or(Err(FetchError::Timeout(secs)))
    });
    // A name lookup still running on the blocking pool after a time-out is not waited for.
    rt.shutdown_background();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            timeout: Duration::from_secs(2),
            max_bytes: 1 << 20,
            allow_private: false,
            allow_nets: Vec::new(),
        }
    }

    #[test]
    fn only_public_addresses_pass() {
        for refused in [
            "127.0.0.1",
            "127.5.6.7",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2001:db8::1",
            "2001::1",
            "64:ff9b:1::1",
            "100::1",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(not_public(ip).is_some(), "{refused} must be refused");
        }
        for public in [
            "93.184.215.14",
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:93.184.215.14",
            "64:ff9b::5db8:d70e",
            "2002:5db8:d70e::1",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert_eq!(not_public(ip), None, "{public} is public");
        }
    }

    #[test]
    fn allowances_open_only_what_they_name() {
        let mut p = policy();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(p.refuses(lo).is_some());
        p.allow_nets = vec!["127.0.0.1/32".parse().unwrap()];
        assert_eq!(p.refuses(lo), None);
        assert_eq!(p.refuses("::ffff:127.0.0.1".parse().unwrap()), None);
        assert!(p.refuses("127.0.0.2".parse().unwrap()).is_some());
        assert!(p.refuses("::1".parse().unwrap()).is_some());
        p.allow_nets.clear();
        p.allow_private = true;
        assert_eq!(p.refuses("169.254.169.254".parse().unwrap()), None);
    }

    #[test]
    fn literal_addresses_are_refused_before_any_connection() {
        // These never reach the network: refusal comes from the address check alone.
        for (url, addr) in [
            ("http://127.0.0.1/", "127.0.0.1"),
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
            ),
            ("http://[::1]/", "::1"),
            ("http://[::ffff:7f00:1]/", "::ffff:127.0.0.1"),
            ("http://0x7f000001/", "127.0.0.1"),
            ("http://2130706433/", "127.0.0.1"),
            ("https://127.1:8443/x", "127.0.0.1"),
        ] {
            match fetch(url, &policy()) {
                Err(FetchError::Refused { addr: a, .. }) => {
                    assert_eq!(a, addr.parse::<IpAddr>().unwrap(), "{url}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn only_http_urls_without_credentials_are_targets() {
        assert!(matches!(
            target("file:///etc/passwd"),
            Err(FetchError::Scheme(_))
        ));
        assert!(matches!(
            target("gopher://x.example/"),
            Err(FetchError::Scheme(_))
        ));
        let err = target("https://user:secret@x.example/").unwrap_err();
        assert!(matches!(err, FetchError::Credentials(_)));
        assert!(!err.to_string().contains("secret"));
        assert!(matches!(target("not a url"), Err(FetchError::BadUrl(..))));
    }
}
