//! The client IP: the socket peer, unless the peer is a trusted proxy, in which case
//! the rightmost `X-Forwarded-For` hop that is not itself a trusted proxy. Anything
//! left of that hop was written by the client and proves nothing. The same rule holds
//! for a CDN's country header (`CF-IPCountry`): believed only from a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// Whether `ip` is inside any of `nets` (an IPv4-mapped IPv6 address counts as IPv4).
pub fn in_networks(ip: IpAddr, nets: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    nets.iter().any(|n| n.contains(&ip))
}

/// Parses one hop: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip())
}

/// `xff` holds every `X-Forwarded-For` header value in arrival order.
pub fn client_ip<'a>(
    peer: IpAddr,
    xff: impl DoubleEndedIterator<Item = &'a str>,
    proxies: &[IpNet],
) -> IpAddr {
    if !in_networks(peer, proxies) {
        return peer;
    }
    let mut candidate = peer;
    // From the nearest hop back: the last header's last entry first.
    for hop in xff.rev().flat_map(|h| h.rsplit(',')) {
        match parse_hop(hop) {
            Some(ip) if in_networks(ip, proxies) => candidate = ip,
            Some(ip) => return ip,
            None => return candidate,
        }
    }
    candidate
}

/// The country a CDN put in a header (`CF-IPCountry`, `CloudFront-Viewer-Country`;
/// `values` holds each configured header's value, first found wins), only when the
/// peer is a trusted proxy — anyone else can send any header — and only when it names
/// a country (`XX`, `T1` and the like are unknown).
pub fn cdn_country<'a>(
    peer: IpAddr,
    values: impl Iterator<Item = &'a [u8]>,
    proxies: &[IpNet],
) -> Option<String> {
    if !in_networks(peer, proxies) {
        return None;
    }
    let first = values.into_iter().next()?;
    crate::enrich::geo::country_code(std::str::from_utf8(first).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cdn_country_is_believed_from_trusted_proxies_only() {
        let p = nets(&["173.245.48.0/20", "10.0.0.0/8"]);
        let cf = |peer: &str, v: &[&'static str]| {
            cdn_country(ip(peer), v.iter().map(|s| s.as_bytes()), &p)
        };
        assert_eq!(cf("173.245.48.9", &["de"]).as_deref(), Some("DE"));
        assert_eq!(cf("10.1.2.3", &["FR", "DE"]).as_deref(), Some("FR"));
        assert_eq!(cf("::ffff:10.1.2.3", &["FR"]).as_deref(), Some("FR"));
        // Anyone else may write anything into the header.
        assert_eq!(cf("198.51.100.9", &["DE"]), None);
        // Unknown, Tor, junk, markup: no country.
        for v in ["XX", "T1", "", "DEU", "<script>", "D\u{0}"] {
            assert_eq!(cf("10.1.2.3", &[v]), None, "{v}");
        }
        assert_eq!(cf("10.1.2.3", &[]), None);
        assert_eq!(
            cdn_country(ip("10.1.2.3"), [&b"\xffE"[..]].into_iter(), &p),
            None
        );
    }

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_ignores_forwarded_for() {
        let got = client_ip(
            ip("198.51.100.9"),
            ["203.0.113.77"].into_iter(),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(got, ip("198.51.100.9"));
        let got = client_ip(ip("10.0.0.1"), ["203.0.113.77"].into_iter(), &[]);
        assert_eq!(got, ip("10.0.0.1"));
    }

    #[test]
    fn trusted_peer_gives_rightmost_untrusted_hop() {
        let p = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        let spoofed = "6.6.6.6, 203.0.113.77, 10.1.1.1";
        assert_eq!(
            client_ip(ip("127.0.0.1"), [spoofed].into_iter(), &p),
            ip("203.0.113.77")
        );
        // Several headers are one list.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                ["6.6.6.6", "203.0.113.77:4711"].into_iter(),
                &p
            ),
            ip("203.0.113.77")
        );
        // Read from the last header's last entry back, across headers.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                ["6.6.6.6, 10.1.1.1", "203.0.113.77, 10.2.2.2"].into_iter(),
                &p
            ),
            ip("203.0.113.77")
        );
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                ["6.6.6.6, 203.0.113.9, 10.1.1.1", "10.2.2.2"].into_iter(),
                &p
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["[2001:db8::7]:443"].into_iter(), &p),
            ip("2001:db8::7")
        );
        // All hops trusted: the leftmost one.
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["10.9.9.9, 10.0.0.3"].into_iter(), &p),
            ip("10.9.9.9")
        );
        // No header: the peer.
        assert_eq!(
            client_ip(ip("10.0.0.2"), std::iter::empty(), &p),
            ip("10.0.0.2")
        );
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["nonsense, 10.0.0.5"].into_iter(), &p),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_proxies() {
        let p = nets(&["127.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), ["203.0.113.77"].into_iter(), &p),
            ip("203.0.113.77")
        );
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a client writes into X-Forwarded-For, an untrusted peer is the
        /// answer, and a trusted peer never yields a hop left of a garbage entry.
        #[test]
        fn forwarded_for_cannot_be_forged_from_outside(xff in "[0-9a-f.:, \\[\\]]{0,80}") {
            let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
            let peer: IpAddr = "198.51.100.4".parse().unwrap();
            prop_assert_eq!(client_ip(peer, [xff.as_str()].into_iter(), &proxies), peer);
            let _ = client_ip("10.0.0.1".parse().unwrap(), [xff.as_str()].into_iter(), &proxies);
        }
    }
}
