//! Cookieless visitor ids: HMAC-SHA256 keyed by a random per-day salt over
//! (site, IP, user agent), cut to 64 bits. The salt is random (never derived from a
//! lasting secret: IPv4 is only 2^32, so a derived salt is brute-forceable), lives for
//! its UTC day plus a grace period, then is destroyed. Without it a visitor id cannot
//! be linked back to an IP, nor to the same person on another day.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::VisitorId;
use crate::secret::fill_random;

/// A day's salt.
#[derive(Clone)]
pub struct Salt {
    pub day: i64,
    /// Read-only (`bytes()`), so `keyed` is always keyed with them.
    bytes: [u8; 32],
    /// HMAC-SHA256 keyed with `bytes`, cloned for each visitor id: keying it (two
    /// SHA-256 blocks) once per salt rather than once per hit.
    keyed: Hmac<Sha256>,
}

impl PartialEq for Salt {
    fn eq(&self, other: &Salt) -> bool {
        self.day == other.day && self.bytes == other.bytes
    }
}

impl Eq for Salt {}

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Salt {{ day: {}, bytes: <redacted> }}", self.day)
    }
}

impl Salt {
    pub fn new(day: i64, bytes: [u8; 32]) -> Salt {
        let keyed = Hmac::<Sha256>::new_from_slice(&bytes).expect("HMAC takes any key length");
        Salt { day, bytes, keyed }
    }

    /// The random bytes, to store.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    pub fn random(day: i64) -> Salt {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes);
        Salt::new(day, bytes)
    }
}

/// A random non-negative 63-bit id (sessions).
pub fn random_id() -> i64 {
    let mut b = [0u8; 8];
    fill_random(&mut b);
    (u64::from_le_bytes(b) >> 1) as i64
}

pub fn visitor_id(salt: &Salt, site_id: i64, ip: IpAddr, ua: &str) -> VisitorId {
    let mut mac = salt.keyed.clone();
    mac.update(&site_id.to_le_bytes());
    match ip {
        IpAddr::V4(v4) => mac.update(&v4.octets()),
        IpAddr::V6(v6) => mac.update(&v6.octets()),
    }
    mac.update(&[0]);
    mac.update(ua.as_bytes());
    let out = mac.finalize().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&out[..8]);
    VisitorId((u64::from_le_bytes(first) >> 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_id_and_each_input_matters() {
        let s = Salt::random(1);
        let ip: IpAddr = "203.0.113.77".parse().unwrap();
        let a = visitor_id(&s, 1, ip, "UA");
        assert_eq!(a, visitor_id(&s, 1, ip, "UA"));
        assert_ne!(a, visitor_id(&s, 2, ip, "UA"));
        assert_ne!(a, visitor_id(&s, 1, "203.0.113.78".parse().unwrap(), "UA"));
        assert_ne!(a, visitor_id(&s, 1, ip, "UA2"));
        assert_ne!(a, visitor_id(&Salt::random(1), 1, ip, "UA"));
        assert!(a.0 >= 0);
    }

    #[test]
    fn the_keyed_salt_gives_the_id_of_hmac_keyed_at_each_hit() {
        let s = Salt::random(3);
        let ip: IpAddr = "2001:db8::7".parse().unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&s.bytes).unwrap();
        mac.update(&9i64.to_le_bytes());
        if let IpAddr::V6(v6) = ip {
            mac.update(&v6.octets());
        }
        mac.update(&[0]);
        mac.update(b"Mozilla/5.0");
        let out = mac.finalize().into_bytes();
        let want = (u64::from_le_bytes(out[..8].try_into().unwrap()) >> 1) as i64;
        assert_eq!(visitor_id(&s, 9, ip, "Mozilla/5.0").0, want);
        // A salt read back from its bytes gives the same ids.
        let again = Salt::new(3, s.bytes);
        assert_eq!(again, s);
        assert_eq!(visitor_id(&again, 9, ip, "Mozilla/5.0").0, want);
    }

    #[test]
    fn salts_are_random_and_never_printed() {
        let (a, b) = (Salt::random(5), Salt::random(5));
        assert_ne!(a.bytes, b.bytes);
        let shown = format!("{a:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&format!("{:?}", a.bytes)), "{shown}");
        assert!(
            !shown.contains(&format!("{}, {}", a.bytes[0], a.bytes[1])),
            "{shown}"
        );
    }
}
