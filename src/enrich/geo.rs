//! Country of the client IP, looked up in memory before the IP is forgotten. The data
//! is the five Regional Internet Registries' delegation files, embedded by the
//! `iptocc` crate (public data, no licence key, no network): the country an address
//! block is delegated to. Good for a countries report; not a city or a precise place.

/// ISO 3166-1 alpha-2 code of `ip`, or `""` (private, reserved, unknown).
pub fn country(ip: std::net::IpAddr) -> &'static str {
    iptocc::country_code(ip).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_have_a_country_private_ones_none() {
        assert_eq!(country("8.8.8.8".parse().unwrap()), "US");
        assert_eq!(country("1.0.16.1".parse().unwrap()), "JP");
        for private in ["10.0.0.1", "192.168.1.1", "127.0.0.1", "::1", "fd00::1"] {
            assert_eq!(country(private.parse().unwrap()), "", "{private}");
        }
    }
}
