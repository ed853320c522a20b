//! Where a hit comes from, looked up in memory while its IP is at hand; the IP is
//! forgotten afterwards, the place is kept: country, region and city (and the network's
//! AS number and name).
//!
//! - Country, always: the five Regional Internet Registries' delegation files, embedded
//!   by the `iptocc` crate (public data, no licence key, no network) — the country an
//!   address block is delegated to. Good for a countries report; not a city.
//! - With `geo.mmdb` (a MaxMind-format database: GeoLite2 City, DB-IP Lite City, IPinfo
//!   Lite), read by MaxMind's `maxminddb` crate: its country replaces the registries'
//!   guess, and region and city are added; with `geo.asn_mmdb` (GeoLite2 ASN, or the
//!   same IPinfo file) the AS number and organisation too.
//! - A CDN's country header (`CF-IPCountry`, `CloudFront-Viewer-Country`), which collect
//!   passes on only from a trusted proxy, wins over both: the CDN saw the client. A
//!   region or city of another country is then dropped, never mixed in.
//!
//! Values: `country` is ISO 3166-1 alpha-2 (`DE`); `region` is ISO 3166-2 (`DE-BY`) when
//! the database has subdivision codes (GeoLite2; IPinfo's `region_code`), else the region's
//! English name; `city` is the English name. Names come from a file the operator
//! chose, but are still cleaned (no control characters, bounded length) like any text.
//!
//! Databases are read whole into memory (GeoLite2 City ≈ 60 MB) rather than mapped:
//! a mapped file that is overwritten in place (`cp new.mmdb City.mmdb`, a download
//! into the same name) would kill the server with SIGBUS, and mapping needs `unsafe`.
//! [`Geo::reload`] (a server job, every few seconds) notices a changed file by its
//! modification time, size and inode, reads it off the hot path and swaps the reader
//! atomically; lookups only clone an `Arc` under a lock held for nanoseconds. A file
//! that does not read as a database keeps the one in use, with a warning.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use maxminddb::Reader;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// ISO 3166-1 alpha-2 code of `ip` from the registries' data, or `""` (private,
/// reserved, unknown).
pub fn country(ip: IpAddr) -> &'static str {
    iptocc::country_code(ip).unwrap_or("")
}

/// Longest region or city name kept (the longest real ones are under 90 characters).
pub const MAX_PLACE_NAME: usize = 128;
/// Longest AS organisation name kept.
pub const MAX_AS_ORG: usize = 200;

/// Where a hit came from, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    /// ISO 3166-1 alpha-2, `""` when unknown (the registries' code kept without a copy).
    pub country: crate::model::Short,
    /// ISO 3166-2 (`DE-BY`) or, without a code in the database, the English name.
    pub region: String,
    /// English name.
    pub city: String,
    /// Autonomous system number, 0 when unknown.
    pub asn: u32,
    /// The autonomous system's organisation (`Deutsche Telekom AG`).
    pub as_org: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("{key} = {path:?}: cannot read it: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key} = {path:?} is not a MaxMind-format (.mmdb) database: {message}")]
    Format {
        key: &'static str,
        path: PathBuf,
        message: String,
    },
}

/// What identifies one version of a file on disk.
type Signature = (Option<SystemTime>, u64, u64);

fn signature(path: &Path) -> std::io::Result<Signature> {
    let m = std::fs::metadata(path)?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Ok((m.modified().ok(), m.len(), ino))
}

/// One configured database: its path, the reader in use, and the version it was read
/// from.
struct Slot {
    key: &'static str,
    path: Option<PathBuf>,
    reader: RwLock<Option<Arc<Reader<Vec<u8>>>>>,
    seen: Mutex<Option<Signature>>,
    /// Changed files that could not be used (the database in use stayed).
    failures: AtomicU64,
}

impl Slot {
    fn new(key: &'static str, path: &str) -> Slot {
        Slot {
            key,
            path: (!path.trim().is_empty()).then(|| PathBuf::from(path)),
            reader: RwLock::new(None),
            seen: Mutex::new(None),
            failures: AtomicU64::new(0),
        }
    }

    fn read(&self, path: &Path) -> Result<Reader<Vec<u8>>, GeoError> {
        let bytes = std::fs::read(path).map_err(|source| GeoError::Read {
            key: self.key,
            path: path.to_owned(),
            source,
        })?;
        Reader::from_source(bytes).map_err(|e| GeoError::Format {
            key: self.key,
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads the file if it changed since the last read (or was never read). `Ok(true)`:
    /// a new reader is in use. A missing file is an error once after it went away (every
    /// time when `strict`, as at start).
    fn refresh(&self, strict: bool) -> Result<bool, GeoError> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let sig = signature(path).map_err(|source| GeoError::Read {
            key: self.key,
            path: path.clone(),
            source,
        });
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let sig = match sig {
            Ok(sig) => sig,
            Err(e) => {
                // Gone or unreadable: keep what is in use; say so once per change.
                let first = seen.is_some();
                *seen = None;
                return if first || strict { Err(e) } else { Ok(false) };
            }
        };
        if *seen == Some(sig) {
            return Ok(false);
        }
        // Remembered before reading, so a broken file is reported once, not every tick.
        *seen = Some(sig);
        drop(seen);
        let reader = Arc::new(self.read(path)?);
        *self.reader.write().unwrap_or_else(|p| p.into_inner()) = Some(reader);
        Ok(true)
    }

    fn log_loaded(&self) {
        let reader = self.current();
        let meta = reader.as_ref().map(|r| r.metadata());
        tracing::info!(
            setting = self.key,
            file = %self.path.as_deref().unwrap_or(Path::new("")).display(),
            database = meta.map(|m| m.database_type.as_str()).unwrap_or(""),
            built = meta.map(|m| m.build_epoch).unwrap_or(0),
            "geolocation database loaded"
        );
    }

    fn current(&self) -> Option<Arc<Reader<Vec<u8>>>> {
        self.reader
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lookup(&self, ip: IpAddr) -> Option<Record> {
        let reader = self.current()?;
        // An IPv6 address in an IPv4-only database, or a damaged record: no place.
        reader.lookup(ip).ok()?.decode::<Record>().ok().flatten()
    }
}

/// The operator's geolocation databases, if any; shared by every request.
pub struct Geo {
    city: Slot,
    asn: Slot,
}

impl Default for Geo {
    fn default() -> Self {
        Geo::none()
    }
}

impl Geo {
    /// No database: countries from the registries' data only.
    pub fn none() -> Geo {
        Geo {
            city: Slot::new("geo.mmdb", ""),
            asn: Slot::new("geo.asn_mmdb", ""),
        }
    }

    /// Reads the configured databases (an empty path is none). A file that cannot be
    /// read, or is not a database, is an error at start.
    pub fn open(mmdb: &str, asn_mmdb: &str) -> Result<Geo, GeoError> {
        let geo = Geo {
            city: Slot::new("geo.mmdb", mmdb),
            asn: Slot::new("geo.asn_mmdb", asn_mmdb),
        };
        for slot in [&geo.city, &geo.asn] {
            if slot.refresh(true)? {
                slot.log_loaded();
            }
        }
        Ok(geo)
    }

    /// Whether any database is configured.
    pub fn configured(&self) -> bool {
        self.city.path.is_some() || self.asn.path.is_some()
    }

    /// Re-reads each database whose file changed; logs what it did. A file that went
    /// away or does not read keeps the database in use.
    pub fn reload(&self) {
        for slot in [&self.city, &self.asn] {
            match slot.refresh(false) {
                Ok(false) => {}
                Ok(true) => slot.log_loaded(),
                Err(e) => {
                    slot.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "geolocation database not reloaded; keeping the one in use")
                }
            }
        }
    }

    /// For `/metrics`, per configured database: its setting, when the database in use
    /// was built (Unix seconds, from its metadata; `None` before any was read), and how
    /// many changed files could not be used.
    pub fn status(&self) -> Vec<(&'static str, Option<u64>, u64)> {
        [&self.city, &self.asn]
            .into_iter()
            .filter(|s| s.path.is_some())
            .map(|s| {
                (
                    s.key,
                    s.current().map(|r| r.metadata().build_epoch),
                    s.failures.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// The place of `ip`. `cdn_country` is a CDN's country header that collect has
    /// already checked (a trusted proxy sent it; a real ISO 3166-1 code).
    pub fn locate(&self, ip: IpAddr, cdn_country: Option<&str>) -> Place {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let rec = self.city.lookup(ip).unwrap_or_default();
        let asn = self.asn.lookup(ip).unwrap_or_default();
        let db_country = rec
            .country_code
            .as_deref()
            .or(rec.country.as_ref().and_then(|c| c.code.as_deref()))
            .and_then(country_code);
        let country = cdn_country
            .and_then(country_code)
            .or(db_country.clone())
            .map(crate::model::Short::from)
            .unwrap_or_else(|| crate::model::Short::const_new(country(ip)));
        let mut place = Place {
            country,
            ..Place::default()
        };
        // Region and city only when they belong to the country kept.
        if db_country.as_deref() == Some(place.country.as_str()) {
            place.region = region(place.country.as_str(), &rec);
            place.city = rec
                .city
                .as_ref()
                .and_then(|c| c.name.as_deref())
                .map(|n| crate::enrich::page::clean_text(n, MAX_PLACE_NAME))
                .unwrap_or_default();
        }
        let (number, org) = match asn.as_number() {
            Some(n) => (Some(n), asn.as_org()),
            None => (rec.as_number(), rec.as_org()),
        };
        place.asn = number.unwrap_or(0);
        place.as_org = org
            .map(|o| crate::enrich::page::clean_text(o, MAX_AS_ORG))
            .unwrap_or_default();
        place
    }
}

/// `DE-BY` from the first (largest) subdivision's code, else its English name.
fn region(cc: &str, rec: &Record) -> String {
    let (code, name) = match rec.subdivisions.first() {
        Some(s) => (s.code.as_deref(), s.name.as_deref()),
        None => (
            rec.region_code.as_deref(),
            rec.region.as_ref().and_then(|r| r.name.as_deref()),
        ),
    };
    let code = code
        .map(str::trim)
        .filter(|c| (1..=3).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric()));
    match (code, name) {
        (Some(c), _) => format!("{cc}-{}", c.to_ascii_uppercase()),
        (None, Some(n)) => crate::enrich::page::clean_text(n, MAX_PLACE_NAME),
        (None, None) => String::new(),
    }
}

/// `s` as an ISO 3166-1 alpha-2 code a country has (`de` → `DE`); `XX`, `T1`, `EU` and
/// anything else no country has are unknown.
pub fn country_code(s: &str) -> Option<String> {
    let s = s.trim();
    if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let up = s.to_ascii_uppercase();
    up.parse::<iso_country::Country>().ok().map(|_| up)
}

/// The fields pixeltrack reads from a record, in MaxMind's layout (GeoIP2/GeoLite2,
/// DB-IP) or IPinfo's flat one; everything else in the record is skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Record {
    /// MaxMind: `{"iso_code": "DE", "names": {...}}`; IPinfo: the name.
    country: Option<Field>,
    /// IPinfo.
    country_code: Option<String>,
    /// MaxMind: largest first.
    subdivisions: Vec<Field>,
    /// IPinfo (paid editions): name and code.
    region: Option<Field>,
    region_code: Option<String>,
    /// MaxMind: `{"names": {...}}`; IPinfo: the name.
    city: Option<Field>,
    /// MaxMind ASN databases.
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<String>,
    /// IPinfo: `"AS15169"` and the organisation.
    asn: Option<Asn>,
    as_name: Option<String>,
}

impl Record {
    fn as_number(&self) -> Option<u32> {
        self.autonomous_system_number
            .or(self.asn.as_ref().and_then(|a| a.0))
            .filter(|n| *n != 0)
    }

    fn as_org(&self) -> Option<&str> {
        self.autonomous_system_organization
            .as_deref()
            .or(self.as_name.as_deref())
    }
}

/// A place in either layout: an object with `iso_code` and `names.en`, or a plain name.
#[derive(Debug, Default)]
struct Field {
    code: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Names {
    en: Option<String>,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a place: a name or a map with iso_code and names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(Field {
                    code: None,
                    name: Some(v.to_owned()),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
                let mut f = Field::default();
                while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match k.as_ref() {
                        "iso_code" => f.code = map.next_value::<Option<String>>()?,
                        "names" => f.name = map.next_value::<Names>()?.en,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(f)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Field::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Field, E> {
                Ok(Field::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Field, E> {
                Ok(Field::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Field, E> {
                Ok(Field::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field, E> {
                Ok(Field::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// An AS number as MaxMind (a number) or IPinfo (`"AS15169"`) writes it.
#[derive(Debug, Default)]
struct Asn(Option<u32>);

impl<'de> Deserialize<'de> for Asn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Asn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an AS number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Asn, E> {
                Ok(Asn(u32::try_from(v).ok()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Asn, E> {
                Ok(Asn(u32::try_from(v).ok()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Asn, E> {
                let v = v.trim();
                let digits = v
                    .strip_prefix("AS")
                    .or_else(|| v.strip_prefix("as"))
                    .unwrap_or(v);
                Ok(Asn(digits.parse().ok()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
pub(crate) mod testdb {
    //! Small `.mmdb` files written by a maintained writer (`maxminddb-writer`), in the
    //! layouts of GeoLite2 City, GeoLite2 ASN and IPinfo Lite.

    use std::collections::BTreeMap;

    use maxminddb_writer::paths::IpAddrWithMask;
    use maxminddb_writer::Database;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Names {
        en: String,
        de: String,
    }

    #[derive(Serialize)]
    struct Country {
        iso_code: String,
        names: Names,
    }

    #[derive(Serialize)]
    struct Sub {
        iso_code: String,
        names: Names,
    }

    #[derive(Serialize)]
    struct City {
        geoname_id: u32,
        names: Names,
    }

    #[derive(Serialize)]
    struct CityRecord {
        city: City,
        country: Country,
        subdivisions: Vec<Sub>,
        location: BTreeMap<String, f64>,
    }

    fn names(en: &str) -> Names {
        Names {
            en: en.into(),
            de: format!("{en} (de)"),
        }
    }

    /// A GeoLite2-City-shaped database: each `(cidr, country, subdivision code,
    /// subdivision name, city)`. IPv4 only, or IPv6 (with IPv4 under `::/96`, as
    /// GeoLite2 has it) when a network is IPv6.
    pub fn city(entries: &[(&str, &str, &str, &str, &str)]) -> Vec<u8> {
        let mut db = Database::default();
        db.metadata.database_type = "GeoLite2-City".into();
        db.metadata.binary_format_major_version = 2;
        if entries.iter().any(|e| e.0.contains(':')) {
            db.metadata.ip_version = maxminddb_writer::metadata::IpVersion::V6;
        }
        for (cidr, cc, sub_code, sub_name, city) in entries {
            let rec = CityRecord {
                city: City {
                    geoname_id: 2867714,
                    names: names(city),
                },
                country: Country {
                    iso_code: (*cc).into(),
                    names: names(cc),
                },
                subdivisions: vec![Sub {
                    iso_code: (*sub_code).into(),
                    names: names(sub_name),
                }],
                location: [
                    ("latitude".to_string(), 48.1),
                    ("longitude".to_string(), 11.6),
                ]
                .into(),
            };
            let data = db.insert_value(rec).expect("serializable");
            db.insert_node(cidr.parse::<IpAddrWithMask>().expect("a CIDR"), data);
        }
        let mut out = Vec::new();
        db.write_to(&mut out).expect("written");
        out
    }

    #[derive(Serialize)]
    struct AsnRecord {
        autonomous_system_number: u32,
        autonomous_system_organization: String,
    }

    /// A GeoLite2-ASN-shaped IPv4 database.
    pub fn asn(entries: &[(&str, u32, &str)]) -> Vec<u8> {
        let mut db = Database::default();
        db.metadata.database_type = "GeoLite2-ASN".into();
        db.metadata.binary_format_major_version = 2;
        for (cidr, n, org) in entries {
            let data = db
                .insert_value(AsnRecord {
                    autonomous_system_number: *n,
                    autonomous_system_organization: (*org).into(),
                })
                .expect("serializable");
            db.insert_node(cidr.parse::<IpAddrWithMask>().expect("a CIDR"), data);
        }
        let mut out = Vec::new();
        db.write_to(&mut out).expect("written");
        out
    }

    #[derive(Serialize)]
    struct IpinfoRecord {
        country_code: String,
        country: String,
        asn: String,
        as_name: String,
        city: String,
        region: String,
    }

    /// An IPinfo-shaped (flat) IPv4 database: `(cidr, country code, region name, city,
    /// "AS…", AS name)`.
    pub fn ipinfo(entries: &[(&str, &str, &str, &str, &str, &str)]) -> Vec<u8> {
        let mut db = Database::default();
        db.metadata.database_type = "ipinfo lite".into();
        db.metadata.binary_format_major_version = 2;
        for (cidr, cc, region, city, asn, as_name) in entries {
            let data = db
                .insert_value(IpinfoRecord {
                    country_code: (*cc).into(),
                    country: "Somewhere".into(),
                    asn: (*asn).into(),
                    as_name: (*as_name).into(),
                    city: (*city).into(),
                    region: (*region).into(),
                })
                .expect("serializable");
            db.insert_node(cidr.parse::<IpAddrWithMask>().expect("a CIDR"), data);
        }
        let mut out = Vec::new();
        db.write_to(&mut out).expect("written");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn public_addresses_have_a_country_private_ones_none() {
        assert_eq!(country(ip("8.8.8.8")), "US");
        assert_eq!(country(ip("1.0.16.1")), "JP");
        for private in ["10.0.0.1", "192.168.1.1", "127.0.0.1", "::1", "fd00::1"] {
            assert_eq!(country(ip(private)), "", "{private}");
        }
    }

    #[test]
    fn without_a_database_the_registries_give_the_country_only() {
        let geo = Geo::none();
        assert!(!geo.configured());
        assert!(geo.status().is_empty());
        assert_eq!(
            geo.locate(ip("8.8.8.8"), None),
            Place {
                country: "US".into(),
                ..Place::default()
            }
        );
        // A CDN's header (already checked by collect) wins.
        assert_eq!(geo.locate(ip("8.8.8.8"), Some("de")).country, "DE");
        // Unknown codes are no country: the registries decide.
        for junk in ["XX", "T1", "EU", "", "DEU", "<b"] {
            assert_eq!(
                geo.locate(ip("8.8.8.8"), Some(junk)).country,
                "US",
                "{junk}"
            );
        }
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn a_city_database_gives_country_region_and_city_and_asn_from_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let city = write(
            dir.path(),
            "City.mmdb",
            &testdb::city(&[
                ("8.8.8.0/24", "DE", "BY", "Bavaria", "Munich"),
                (
                    "9.9.9.0/24",
                    "FR",
                    "IDF",
                    "Île-de-France",
                    "Paris\u{7}\n<script>",
                ),
            ]),
        );
        let asn = write(
            dir.path(),
            "ASN.mmdb",
            &testdb::asn(&[("8.8.0.0/16", 3320, "Deutsche Telekom AG")]),
        );
        let geo = Geo::open(&city, &asn).unwrap();
        assert!(geo.configured());
        assert_eq!(
            geo.locate(ip("8.8.8.8"), None),
            Place {
                country: "DE".into(),
                region: "DE-BY".into(),
                city: "Munich".into(),
                asn: 3320,
                as_org: "Deutsche Telekom AG".into(),
            }
        );
        // IPv4-mapped IPv6 is the IPv4 address; names are cleaned of control characters
        // (markup is escaped where shown, not here).
        let p = geo.locate(ip("::ffff:9.9.9.9"), None);
        assert_eq!(
            (p.country.as_str(), p.region.as_str(), p.city.as_str()),
            ("FR", "FR-IDF", "Paris  <script>")
        );
        assert_eq!(p.asn, 0);
        // Not in the database: the registries' country, no region or city.
        let p = geo.locate(ip("1.0.16.1"), None);
        assert_eq!((p.country.as_str(), p.region.as_str()), ("JP", ""));
        // An IPv6 address in an IPv4-only database: no place from it, no error.
        assert_eq!(geo.locate(ip("2001:4860::1"), None).city, "");
        // A CDN header naming another country keeps no region or city of the first.
        let p = geo.locate(ip("8.8.8.8"), Some("AT"));
        assert_eq!(
            (p.country.as_str(), p.region.as_str(), p.city.as_str()),
            ("AT", "", "")
        );
        // The same country: everything kept.
        assert_eq!(geo.locate(ip("8.8.8.8"), Some("DE")).city, "Munich");
    }

    #[test]
    fn an_ipv6_database_places_ipv6_and_ipv4_clients() {
        let dir = tempfile::tempdir().unwrap();
        let db = write(
            dir.path(),
            "City-v6.mmdb",
            &testdb::city(&[
                ("2001:db8::/32", "DE", "BE", "Berlin", "Berlin"),
                ("::203.0.113.0/120", "DE", "BY", "Bavaria", "Munich"),
            ]),
        );
        let geo = Geo::open(&db, "").unwrap();
        assert_eq!(geo.locate(ip("2001:db8::7"), None).region, "DE-BE");
        assert_eq!(geo.locate(ip("203.0.113.7"), None).city, "Munich");
        assert_eq!(geo.locate(ip("::ffff:203.0.113.7"), None).city, "Munich");
        assert_eq!(geo.locate(ip("2001:db9::7"), None).city, "");
    }

    #[test]
    fn an_ipinfo_database_gives_country_region_name_city_and_asn() {
        let dir = tempfile::tempdir().unwrap();
        let db = write(
            dir.path(),
            "ipinfo.mmdb",
            &testdb::ipinfo(&[(
                "8.8.8.0/24",
                "US",
                "California",
                "Mountain View",
                "AS15169",
                "Google LLC",
            )]),
        );
        let geo = Geo::open(&db, "").unwrap();
        assert_eq!(
            geo.locate(ip("8.8.8.8"), None),
            Place {
                country: "US".into(),
                region: "California".into(),
                city: "Mountain View".into(),
                asn: 15169,
                as_org: "Google LLC".into(),
            }
        );
    }

    #[test]
    fn a_missing_or_broken_file_is_an_error_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.mmdb");
        let err = Geo::open(missing.to_str().unwrap(), "")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("geo.mmdb") && err.contains("nope.mmdb"),
            "{err}"
        );
        let junk = write(dir.path(), "junk.mmdb", b"not a database");
        let err = Geo::open("", &junk).err().unwrap().to_string();
        assert!(
            err.contains("geo.asn_mmdb") && err.contains(".mmdb"),
            "{err}"
        );
    }

    #[test]
    fn a_replaced_file_is_read_again_and_a_broken_one_keeps_the_database_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "City.mmdb",
            &testdb::city(&[("8.8.8.0/24", "DE", "BY", "Bavaria", "Munich")]),
        );
        let geo = Geo::open(&path, "").unwrap();
        assert_eq!(geo.locate(ip("8.8.8.8"), None).city, "Munich");
        geo.reload();
        assert_eq!(geo.locate(ip("8.8.8.8"), None).city, "Munich");

        // Replaced the way updaters do it: a new file renamed over the old one.
        let tmp = write(
            dir.path(),
            "City.mmdb.tmp",
            &testdb::city(&[("8.8.8.0/24", "DE", "HE", "Hesse", "Frankfurt am Main")]),
        );
        std::fs::rename(&tmp, &path).unwrap();
        geo.reload();
        let p = geo.locate(ip("8.8.8.8"), None);
        assert_eq!(
            (p.region.as_str(), p.city.as_str()),
            ("DE-HE", "Frankfurt am Main")
        );

        assert_eq!(geo.status(), vec![("geo.mmdb", Some(0), 0)]);
        // Overwritten in place with garbage: the database in use stays, the failure counts.
        std::fs::write(&path, b"half a download").unwrap();
        geo.reload();
        assert_eq!(geo.locate(ip("8.8.8.8"), None).city, "Frankfurt am Main");
        assert_eq!(geo.status(), vec![("geo.mmdb", Some(0), 1)]);
        // Gone: still the one in use.
        std::fs::remove_file(&path).unwrap();
        geo.reload();
        assert_eq!(geo.locate(ip("8.8.8.8"), None).city, "Frankfurt am Main");
        // Back, in place, with other content: read again.
        std::fs::write(
            &path,
            testdb::city(&[("8.8.8.0/24", "DE", "BE", "Berlin", "Berlin")]),
        )
        .unwrap();
        geo.reload();
        assert_eq!(geo.locate(ip("8.8.8.8"), None).region, "DE-BE");
    }

    #[test]
    fn country_codes_are_real_countries_only() {
        assert_eq!(country_code(" de ").as_deref(), Some("DE"));
        assert_eq!(country_code("GB").as_deref(), Some("GB"));
        for bad in [
            "XX",
            "T1",
            "A1",
            "EU",
            "ZZ",
            "",
            "D",
            "DEU",
            "é1",
            "\u{0}\u{0}",
        ] {
            assert_eq!(country_code(bad), None, "{bad:?}");
        }
    }
}
