//! The privacy statement: what this installation collects, why, for how long, and
//! which signals it honours — generated from the live configuration and site
//! settings, so it cannot drift from what the code does. Plain text, to be linked
//! from (or pasted into) an operator's privacy policy.

use std::fmt::Write;

use crate::config::Config;
use crate::model::{PrivacyMode, Site, WithoutConsent};

/// The statement, with the settings of `sites`; `None` names no site at all (the public
/// page without `?site=`), and says where each site's settings are.
pub fn statement(cfg: &Config, sites: Option<&[Site]>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Privacy statement of this pixeltrack installation (generated from its live configuration)\n");
    s.push_str("WHAT IS COLLECTED\n");
    s.push_str("- For each page view or event: time, page address (host and path; of the query string only utm_*, gclid,\n  fbclid, msclkid, ref and our own ad click id), page title, referring site, browser and operating system with versions, device type\n  (desktop/mobile/tablet), the country your IP address is registered to (looked up in memory; the address\n  itself is not kept for this), and custom properties the site sends. Values that look like email addresses are\n  replaced by [email] unless a site allows them (see below).\n");
    if !cfg.geo.mmdb.is_empty() || !cfg.geo.asn_mmdb.is_empty() {
        s.push_str("- Also the region and city your IP address is located in, and your network's name and number (AS), from a\n  geolocation database, looked up in memory as the country is; the address itself is not kept for this.\n");
    }
    s.push_str("- No cookies are set and nothing is stored on your device.\n");
    if cfg.store_ip {
        s.push_str(
            "- Your IP address IS stored with each event (the operator turned store_ip on).\n",
        );
    } else {
        s.push_str("- Your IP address and full user agent are never stored, logged or exported. They are used in memory only,\n  to compute a visitor id: HMAC-SHA256 of (a random salt of the day, the site, the IP, the user agent).\n");
    }
    let _ = writeln!(
        s,
        "- The salt is random, changes every UTC day and is destroyed {} minutes after its day ends; after that the\n  visitor id cannot be linked to an IP address, nor to the same person on another day.",
        cfg.enrich.salt_grace_minutes
    );
    let _ = writeln!(
        s,
        "- Visits: {} minutes without activity end a visit. Bots and automated tools are recorded as such and not\n  counted as visitors.",
        cfg.enrich.session_timeout_minutes
    );
    s.push_str("- Emails: opening a tracked email or clicking its links records the campaign, your recipient id as given by the\n  sender, the link, the time, the email client and device, and whether the request came from a person, a mail\n  provider's image proxy, Apple Mail Privacy Protection or a security scanner.\n\n");
    s.push_str("PURPOSE\n- Aggregate statistics of website traffic, advertising and email campaigns for the site operator.\n\n");
    s.push_str("YOUR CHOICES AND SIGNALS, PER SITE\n");
    match sites {
        None => s.push_str("- Each site's settings: /privacy?site=<the site's domain>\n"),
        Some([]) => s.push_str("- (no sites configured yet)\n"),
        Some(_) => {}
    }
    for site in sites.unwrap_or_default() {
        let p = &site.privacy;
        let mode = match p.mode {
            PrivacyMode::Anonymous => "anonymous (cookieless daily visitor id, no per-person data)",
            PrivacyMode::Consented => "consented (identifiers only with your consent)",
            PrivacyMode::Off => "off (nothing is recorded)",
        };
        let without = match p.without_consent {
            WithoutConsent::Aggregate => {
                "counted anonymously, with no visitor id, visit or other identifier"
            }
            WithoutConsent::Drop => "not recorded at all",
        };
        let _ = writeln!(s, "- {}: mode {mode}.", site.domain);
        let _ = writeln!(
            s,
            "  Global Privacy Control (Sec-GPC: 1): {}. Do Not Track (DNT: 1): {}. A hit without permission is {without}.",
            if p.honour_gpc { "honoured" } else { "not honoured" },
            if p.honour_dnt { "honoured" } else { "not honoured" },
        );
        match p.retention_days {
            Some(d) => {
                let _ = writeln!(s, "  Raw events are deleted after {d} days; aggregated counts (no personal data) are kept.");
            }
            None => s.push_str("  Raw events are kept until the operator deletes them; aggregated counts are kept.\n"),
        }
        if p.deliverability_only {
            s.push_str("  Emails: only the day of each recipient's last open is kept (overwritten); no opens or clicks are recorded.\n");
        }
        if p.allow_emails {
            s.push_str("  Email addresses in page addresses, titles and properties are kept (the operator allowed it).\n");
        }
    }
    s.push_str("\nEMAIL RECIPIENTS\n- Every tracked email can carry a link to stop tracking; it asks for confirmation and then stops recording\n  opens and clicks for you at once, including for emails already sent. Links keep working.\n\n");
    s.push_str("YOUR RIGHTS\n- Ask the operator for a copy of your data (pixeltrack subject-export) or its erasure (pixeltrack erase); an\n  erasure removes every event of yours from every table and from the database's write-ahead log. Copies in the\n  operator's backups remain until those backups expire.\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Privacy, SiteId, SiteKey};

    #[test]
    fn statement_follows_the_configuration() {
        let mut cfg = Config::default();
        let site = Site {
            id: SiteId(1),
            key: SiteKey::parse("k").unwrap(),
            domain: "example.com".into(),
            name: "E".into(),
            created_ms: 0,
            hosts: Vec::new(),
            matomo_id: None,
            privacy: Privacy {
                retention_days: Some(90),
                ..Privacy::default()
            },
        };
        let text = statement(&cfg, Some(std::slice::from_ref(&site)));
        assert!(text.contains("never stored"));
        assert!(text.contains("example.com: mode anonymous"));
        assert!(text.contains("Global Privacy Control (Sec-GPC: 1): honoured"));
        assert!(text.contains("deleted after 90 days"));
        assert!(!text.contains("region and city"));
        cfg.geo.mmdb = "/var/lib/GeoIP/GeoLite2-City.mmdb".into();
        assert!(statement(&cfg, None).contains("region and city"));
        cfg.store_ip = true;
        assert!(statement(&cfg, Some(&[site])).contains("IP address IS stored"));
    }
}
