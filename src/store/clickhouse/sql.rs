//! Building ClickHouse SQL as text. ClickHouse 18.16 has no query parameters, so every
//! value reaches a statement through [`literal`] (strings) or as a Rust integer, and
//! every identifier through [`ident`], which only accepts names from an allowlist.

use std::fmt::Write;

/// A ClickHouse string literal for `s`: single-quoted, with `\` and `'` escaped by a
/// backslash. Every other byte (NUL, newlines, invalid UTF-8) means itself inside
/// quotes on 18.16 and on current versions; an unescaped backslash would not (`\z` is
/// `z`, `'\N'` is special), so no backslash is ever left alone.
pub fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Names pixeltrack creates in ClickHouse; [`ident`] accepts nothing else.
const IDENTS: &[&str] = &[
    "consent_changes",
    "events",
    "events_local",
    "rollups",
    "rollups_local",
    "schema_migrations",
    "sessions_local",
    "shared",
];

/// A table name from the allowlist, or `None`. A database or cluster name from the
/// configuration goes through [`name`] instead.
pub fn ident(s: &str) -> Option<&str> {
    IDENTS.contains(&s).then_some(s)
}

/// A database or cluster name from the configuration: 1–64 of `A-Z a-z 0-9 _`, not
/// starting with a digit (checked when the configuration is validated), quoted with
/// backticks.
pub fn name(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| format!("`{s}`"))
}

/// `'a', 'b', …` for an `IN (…)` list.
pub fn literal_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{}", literal(s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The inverse of ClickHouse's reading of a quoted string, for the escapes
    /// `literal` writes: what the server will see.
    fn unquote(q: &str) -> Option<String> {
        let inner = q.strip_prefix('\'')?.strip_suffix('\'')?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                // An unescaped quote would end the literal early.
                '\'' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    proptest! {
        /// Any string comes back unchanged, and the literal never ends early: no
        /// unescaped quote inside, no trailing lone backslash.
        #[test]
        fn literal_round_trips(s in ".*") {
            prop_assert_eq!(unquote(&literal(&s)), Some(s));
        }

        #[test]
        fn literal_round_trips_hostile_bytes(s in "[\\\\'\"\\x00\\n\\r\\t`;-]{0,40}") {
            prop_assert_eq!(unquote(&literal(&s)), Some(s));
        }
    }

    #[test]
    fn names_are_allowlisted() {
        assert_eq!(ident("events"), Some("events"));
        assert_eq!(ident("events; DROP TABLE x"), None);
        assert_eq!(name("pt"), Some("`pt`".into()));
        for bad in ["", "1pt", "p t", "p`t", "pt;", &"x".repeat(65)] {
            assert_eq!(name(bad), None, "{bad:?}");
        }
    }
}
