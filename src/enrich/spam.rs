//! Referrer spam: domains that send fake referrers to advertise themselves. The shipped
//! list is Matomo's community list (`data/referrer-spam.txt`, public domain); an
//! operator's own additions (`DATA/referrer-spam.txt`, same format) replace the extra
//! set while serving (the server re-reads the file when it changes). A hit whose
//! referrer is on a listed domain, or a subdomain of one, is not stored
//! (`referrer_spam`); what was stored before a list change stays.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

const SHIPPED: &str = include_str!("../../data/referrer-spam.txt");

pub struct SpamList {
    shipped: HashSet<String>,
    extra: RwLock<Arc<HashSet<String>>>,
    /// The operator file's modification time when it was last read.
    pub extra_read: std::sync::Mutex<Option<std::time::SystemTime>>,
}

/// The domains of a list file: one per line, `#` comments, case-insensitive.
pub fn parse(text: &str) -> HashSet<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.trim_end_matches('.').to_ascii_lowercase())
        .collect()
}

impl Default for SpamList {
    fn default() -> Self {
        SpamList {
            shipped: parse(SHIPPED),
            extra: RwLock::new(Arc::default()),
            extra_read: std::sync::Mutex::new(None),
        }
    }
}

impl SpamList {
    /// Replaces the operator's additions.
    pub fn set_extra(&self, domains: HashSet<String>) {
        *self.extra.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(domains);
    }

    /// How many domains are listed (shipped, operator's).
    pub fn len(&self) -> (usize, usize) {
        let extra = self.extra.read().unwrap_or_else(|p| p.into_inner()).len();
        (self.shipped.len(), extra)
    }

    /// Whether `host` (a referrer's host) is on a listed domain or under one.
    pub fn is_spam(&self, host: &str) -> bool {
        if host.is_empty() {
            return false;
        }
        let host = super::ascii_lower(host.trim_end_matches('.'));
        let extra = self.extra.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut rest = &*host;
        loop {
            if self.shipped.contains(rest) || extra.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_domains_and_their_subdomains_are_spam_others_not() {
        let l = SpamList::default();
        assert!(l.len().0 > 2000, "the shipped list is loaded");
        assert!(l.is_spam("0-0.fr"));
        assert!(l.is_spam("www.0-0.fr"));
        assert!(l.is_spam("QIWI.xyz"), "case-insensitive");
        assert!(!l.is_spam("google.com"));
        assert!(
            !l.is_spam("fr"),
            "a bare suffix is not a domain on the list"
        );
        assert!(!l.is_spam(""));
    }

    #[test]
    fn operator_additions_apply_at_once_and_can_be_withdrawn() {
        let l = SpamList::default();
        assert!(!l.is_spam("spam.example"));
        l.set_extra(parse("# mine\nSpam.Example\n\n"));
        assert!(l.is_spam("spam.example") && l.is_spam("a.b.spam.example"));
        l.set_extra(HashSet::new());
        assert!(!l.is_spam("spam.example"));
    }
}
