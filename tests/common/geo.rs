//! Small MaxMind-format databases for the geolocation tests, written by a maintained
//! writer (`maxminddb-writer`) in GeoLite2 City's layout, so the server reads exactly
//! what it would read from a real download.

use maxminddb_writer::paths::IpAddrWithMask;
use maxminddb_writer::Database;
use serde::Serialize;

#[derive(Serialize)]
struct Names {
    en: String,
    fr: String,
}

#[derive(Serialize)]
struct Coded {
    iso_code: String,
    names: Names,
}

#[derive(Serialize)]
struct Named {
    geoname_id: u32,
    names: Names,
}

#[derive(Serialize)]
struct CityRecord {
    city: Named,
    country: Coded,
    subdivisions: Vec<Coded>,
}

fn names(en: &str) -> Names {
    Names {
        en: en.into(),
        fr: format!("{en} (fr)"),
    }
}

/// A GeoLite2-City-shaped IPv4 database: each `(cidr, country, subdivision code,
/// subdivision name, city)`.
pub fn city_mmdb(entries: &[(&str, &str, &str, &str, &str)]) -> Vec<u8> {
    let mut db = Database::default();
    db.metadata.database_type = "GeoLite2-City".into();
    db.metadata.binary_format_major_version = 2;
    db.metadata.build_epoch = 1_700_000_000;
    for (i, (cidr, cc, sub_code, sub_name, city)) in entries.iter().enumerate() {
        let rec = CityRecord {
            city: Named {
                geoname_id: 1000 + i as u32,
                names: names(city),
            },
            country: Coded {
                iso_code: (*cc).into(),
                names: names(cc),
            },
            subdivisions: vec![Coded {
                iso_code: (*sub_code).into(),
                names: names(sub_name),
            }],
        };
        let data = db.insert_value(rec).expect("serializable");
        db.insert_node(cidr.parse::<IpAddrWithMask>().expect("a CIDR"), data);
    }
    let mut out = Vec::new();
    db.write_to(&mut out).expect("written");
    out
}

/// Writes `bytes` to `path` the way updaters replace a database: a new file renamed
/// over the old one.
pub fn replace(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("mmdb.new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
