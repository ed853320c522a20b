//! Networks whose requests to an email's pixel or links are machines: the published
//! ranges of mail-security services (`scanner`) and of public clouds (`cloud`). The
//! shipped lists are data with provenance (`data/scanner-networks.toml`: vendor, source
//! document, retrieval date per list); an operator's own lists
//! (`DATA/scanner-networks.toml`, same format) replace the extra set while serving, and
//! `email.scanner_networks` adds scanner ranges from the configuration.
//!
//! A lookup is a linear scan over a few hundred prefixes, done only for email hits
//! (a handful per recipient), never on the web pixel's hot path.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use ipnet::IpNet;

const SHIPPED: &str = include_str!("../../data/scanner-networks.toml");

/// What a listed network is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkClass {
    /// A mail-security service's own addresses: what comes from there is its scanner.
    Scanner,
    /// A public cloud: sandboxes, re-crawlers and monitors run there, and a few people
    /// (virtual desktops, VPNs) browse from there: probably a machine.
    Cloud,
}

/// One listed network and where the listing comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub net: IpNet,
    pub class: NetworkClass,
    pub vendor: Arc<str>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    list: Vec<List>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct List {
    vendor: String,
    class: String,
    source: String,
    retrieved: String,
    #[serde(default)]
    note: Option<String>,
    ranges: Vec<String>,
}

/// Parses a list file; an error names the list and the value at fault.
pub fn parse(text: &str) -> Result<Vec<Network>, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for l in file.list {
        let class = match l.class.as_str() {
            "scanner" => NetworkClass::Scanner,
            "cloud" => NetworkClass::Cloud,
            other => {
                return Err(format!(
                    "{}: class {other:?} (use \"scanner\" or \"cloud\")",
                    l.vendor
                ))
            }
        };
        if l.source.trim().is_empty() || l.retrieved.trim().is_empty() {
            return Err(format!(
                "{}: every list names its source and when it was retrieved",
                l.vendor
            ));
        }
        let _ = l.note;
        let vendor: Arc<str> = l.vendor.into();
        for r in l.ranges {
            let net: IpNet = r
                .trim()
                .parse()
                .map_err(|_| format!("{vendor}: {r:?} is not a CIDR range"))?;
            out.push(Network {
                net: net.trunc(),
                class,
                vendor: vendor.clone(),
            });
        }
    }
    Ok(out)
}

/// The shipped lists, the operator's file and the configuration's scanner ranges.
pub struct NetworkLists {
    shipped: Vec<Network>,
    config: Vec<Network>,
    extra: RwLock<Arc<Vec<Network>>>,
    /// The operator file's modification time when it was last read.
    pub extra_read: std::sync::Mutex<Option<std::time::SystemTime>>,
}

impl NetworkLists {
    /// The shipped lists plus `config` (`email.scanner_networks`, class scanner).
    pub fn new(config: &[IpNet]) -> Self {
        let config = config
            .iter()
            .map(|n| Network {
                net: n.trunc(),
                class: NetworkClass::Scanner,
                vendor: "email.scanner_networks".into(),
            })
            .collect();
        NetworkLists {
            shipped: parse(SHIPPED).expect("data/scanner-networks.toml is valid"),
            config,
            extra: RwLock::new(Arc::default()),
            extra_read: std::sync::Mutex::new(None),
        }
    }

    /// Replaces the operator's file's networks.
    pub fn set_extra(&self, nets: Vec<Network>) {
        *self.extra.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(nets);
    }

    /// How many networks are listed (shipped, configured, operator's file).
    pub fn len(&self) -> (usize, usize, usize) {
        let extra = self.extra.read().unwrap_or_else(|p| p.into_inner()).len();
        (self.shipped.len(), self.config.len(), extra)
    }

    /// The listing `ip` falls in; a scanner listing wins over a cloud one (Microsoft's
    /// mail ranges sit inside its cloud's blocks), then the most specific.
    pub fn lookup(&self, ip: IpAddr) -> Option<Network> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let extra = self.extra.read().unwrap_or_else(|p| p.into_inner()).clone();
        self.config
            .iter()
            .chain(extra.iter())
            .chain(self.shipped.iter())
            .filter(|n| n.net.contains(&ip))
            .max_by_key(|n| (n.class == NetworkClass::Scanner, n.net.prefix_len()))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(l: &NetworkLists, ip: &str) -> Option<NetworkClass> {
        l.lookup(ip.parse().unwrap()).map(|n| n.class)
    }

    #[test]
    fn the_shipped_lists_name_vendors_sources_and_dates() {
        let nets = parse(SHIPPED).unwrap();
        assert!(nets.len() > 80, "{}", nets.len());
        let raw: toml::Value = toml::from_str(SHIPPED).unwrap();
        for l in raw["list"].as_array().unwrap() {
            assert!(l["source"].as_str().unwrap().contains("https://"), "{l}");
            assert!(l["retrieved"].as_str().unwrap().len() >= 7, "{l}");
        }
    }

    #[test]
    fn mail_security_ranges_are_scanners_clouds_are_clouds_homes_are_neither() {
        let l = NetworkLists::new(&["192.0.2.0/24".parse().unwrap()]);
        for ip in [
            "104.47.3.3",     // EOP (the old default)
            "40.107.22.41",   // EOP
            "52.97.146.18",   // Exchange Online
            "40.94.12.7",     // observed Defender
            "205.139.110.61", // Mimecast US
            "148.163.138.20", // Proofpoint
            "209.222.82.19",  // Barracuda
            "2a01:111:f400::1",
            "::ffff:40.107.1.1", // IPv4-mapped
            "192.0.2.9",         // the operator's setting
        ] {
            assert_eq!(class(&l, ip), Some(NetworkClass::Scanner), "{ip}");
        }
        for ip in ["20.83.14.2", "3.91.20.17", "34.72.11.5", "40.70.1.1"] {
            assert_eq!(class(&l, ip), Some(NetworkClass::Cloud), "{ip}");
        }
        for ip in [
            "66.102.8.21",
            "17.58.100.12",
            "198.51.100.20",
            "2001:db8::1",
        ] {
            assert_eq!(class(&l, ip), None, "{ip}");
        }
    }

    #[test]
    fn the_operators_lists_add_and_bad_ones_are_refused_with_the_value() {
        let l = NetworkLists::new(&[]);
        assert_eq!(class(&l, "198.51.100.7"), None);
        let extra = parse(
            "[[list]]\nvendor = \"Our gateway\"\nclass = \"scanner\"\nsource = \"https://intranet.example/gw\"\nretrieved = \"2026-12\"\nranges = [\"198.51.100.0/24\"]\n",
        )
        .unwrap();
        l.set_extra(extra);
        let n = l.lookup("198.51.100.7".parse().unwrap()).unwrap();
        assert_eq!(
            (n.class, &*n.vendor),
            (NetworkClass::Scanner, "Our gateway")
        );
        let bad = "[[list]]\nvendor = \"X\"\nclass = \"scanner\"\nsource = \"s\"\nretrieved = \"r\"\nranges = [\"300.1.1.0/24\"]\n";
        assert!(parse(bad).unwrap_err().contains("300.1.1.0/24"));
        let bad = "[[list]]\nvendor = \"X\"\nclass = \"isp\"\nsource = \"s\"\nretrieved = \"r\"\nranges = []\n";
        assert!(parse(bad).unwrap_err().contains("isp"));
    }
}
