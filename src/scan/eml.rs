//! Emails as files (`.eml`: RFC 5322 with MIME): the HTML and text bodies to scan, decoded
//! from quoted-printable and base64 and converted from their charsets, in every part of
//! every multipart, forwarded messages included; and the sender's domain, the email's
//! own side when telling first from third parties. MIME is parsed by `mail-parser`
//! (Stalwart's, maintained and fuzzed) rather than by hand.

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// One body of an email.
#[derive(Debug, PartialEq, Eq)]
pub struct Body {
    /// Which part: `part 2: text/html, quoted-printable`.
    pub label: String,
    /// HTML (scanned as a document) or plain text (scanned for links).
    pub html: bool,
    pub text: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Email {
    /// The domain of the From address.
    pub from_domain: Option<String>,
    pub bodies: Vec<Body>,
}

fn is_header(line: &str) -> bool {
    line.split_once(':').is_some_and(|(name, _)| {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// The first lines, up to the blank line that ends a header block.
fn head_lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(&bytes[..bytes.len().min(8192)])
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `bytes` start with a header line (`Name: value`, or an mbox `From ` line).
fn starts_with_header(bytes: &[u8]) -> bool {
    head_lines(bytes)
        .first()
        .is_some_and(|l| is_header(l) || l.starts_with("From "))
}

/// Whether `bytes` start like an email: a header line (`Name: value`) among the first
/// lines, with a `From`, `Content-Type`, `MIME-Version`, `Received` or `Return-Path`.
pub fn looks_like_email(bytes: &[u8]) -> bool {
    let known = |l: &str| {
        let lower = l.to_ascii_lowercase();
        [
            "from:",
            "content-type:",
            "mime-version:",
            "received:",
            "return-path:",
            "delivered-to:",
        ]
        .iter()
        .any(|h| lower.starts_with(h))
    };
    starts_with_header(bytes) && head_lines(bytes).iter().any(|l| known(l))
}

/// The email in `raw`, or `None` when it does not start with headers.
pub fn read(raw: &[u8]) -> Option<Email> {
    if !starts_with_header(raw) {
        return None;
    }
    let message = MessageParser::default().parse(raw)?;
    if message.parts.first().is_none_or(|p| p.headers.is_empty()) {
        return None;
    }
    let from_domain = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.trim().trim_end_matches('>').to_ascii_lowercase())
        .filter(|d| !d.is_empty());
    let mut email = Email {
        from_domain,
        bodies: Vec::new(),
    };
    collect(&message, "", &mut email.bodies, 0);
    Some(email)
}

fn collect(message: &mail_parser::Message<'_>, prefix: &str, out: &mut Vec<Body>, depth: usize) {
    for (i, part) in message.parts.iter().enumerate() {
        let ctype = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(sub) => format!("{}/{}", c.ctype(), sub),
                None => c.ctype().to_owned(),
            })
            .unwrap_or_else(|| "text/plain".to_owned())
            .to_ascii_lowercase();
        let mut label = format!("{prefix}part {}: {ctype}", i + 1);
        if let Some(cte) = part.content_transfer_encoding() {
            label.push_str(&format!(", {}", cte.to_ascii_lowercase()));
        }
        if part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"))
        {
            label.push_str(", attachment");
        }
        match &part.body {
            PartType::Html(text) => out.push(Body {
                label,
                html: true,
                text: text.to_string(),
            }),
            PartType::Text(text) => out.push(Body {
                label,
                html: false,
                text: text.to_string(),
            }),
            PartType::Message(inner) if depth < 8 => {
                collect(inner, &format!("{prefix}part {} > ", i + 1), out, depth + 1)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &str = "From: \"Shop\" <news@mail.shop.example>\r\n\
To: alice@example.com\r\n\
Subject: =?utf-8?q?Sp=C3=A4te_Angebote?=\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
U2VlIGh0dHBzOi8vc2hvcC5leGFtcGxlLz9lPWFsaWNlQGV4YW1wbGUuY29tCg==\r\n\
--b1\r\n\
Content-Type: text/html; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
<p>Sp=E4te <img src=3D\"https://t.example/o.gif?uid=3D42\" width=3D\"1\" h=\r\n\
eight=3D\"1\"></p>\r\n\
--b1--\r\n";

    #[test]
    fn bodies_are_decoded_from_base64_quoted_printable_and_their_charsets() {
        let email = read(MAIL.as_bytes()).expect("an email");
        assert_eq!(email.from_domain.as_deref(), Some("mail.shop.example"));
        assert_eq!(email.bodies.len(), 2);
        assert_eq!(email.bodies[0].label, "part 2: text/plain, base64");
        assert!(!email.bodies[0].html);
        assert_eq!(
            email.bodies[0].text.trim(),
            "See https://shop.example/?e=alice@example.com"
        );
        assert_eq!(email.bodies[1].label, "part 3: text/html, quoted-printable");
        assert!(email.bodies[1].html);
        assert!(
            email.bodies[1]
                .text
                .contains("<p>Späte <img src=\"https://t.example/o.gif?uid=42\" width=\"1\" height=\"1\"></p>"),
            "{}",
            email.bodies[1].text
        );
    }

    #[test]
    fn a_forwarded_message_is_read_inside_its_parent() {
        let outer = format!(
            "From: bob@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nFYI\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n{MAIL}\r\n--o--\r\n"
        );
        let email = read(outer.as_bytes()).unwrap();
        assert_eq!(email.from_domain.as_deref(), Some("example.org"));
        assert!(
            email
                .bodies
                .iter()
                .any(|b| b.html && b.label.starts_with("part 3 > part 3: text/html")),
            "{:#?}",
            email.bodies
        );
    }

    #[test]
    fn emails_are_told_from_html() {
        assert!(looks_like_email(MAIL.as_bytes()));
        assert!(looks_like_email(
            b"Return-Path: <a@b.example>\nX-Other: 1\n\nbody"
        ));
        assert!(looks_like_email(
            b"From a@b Mon Jan 1 00:00:00 2024\nFrom: a@b.example\n\nx"
        ));
        assert!(!looks_like_email(
            b"<!doctype html><html><body>From: me</body></html>"
        ));
        assert!(!looks_like_email(b"Title: notes\n\n<p>hi</p>"));
        assert!(!looks_like_email(b""));
    }
}
