//! Goal and funnel-step patterns: an event name or a page path with `*` wildcards,
//! validated once here; a backend binds [`Pattern::sql_glob`] as a parameter, never
//! splices it.

/// What a goal or a funnel step matches: an event name or a page path, where `*`
/// stands for any run of characters (`/blog/*`, `signup_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    pub kind: PatternKind,
    pub glob: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternKind {
    /// Custom events by name (`signup`, `conversion`).
    Event,
    /// Page views by path.
    Page,
}

impl PatternKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PatternKind::Event => "event",
            PatternKind::Page => "page",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Event, Self::Page]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl Pattern {
    pub const MAX_LEN: usize = 256;

    /// `page:/pricing`, `event:signup`, or a bare path starting with `/`.
    pub fn parse(s: &str) -> Option<Pattern> {
        let (kind, glob) = match s.split_once(':') {
            Some((k, g)) if PatternKind::parse(k).is_some() => (PatternKind::parse(k)?, g),
            _ if s.starts_with('/') => (PatternKind::Page, s),
            _ => return None,
        };
        Pattern::new(kind, glob)
    }

    pub fn new(kind: PatternKind, glob: &str) -> Option<Pattern> {
        let glob = glob.trim();
        let ok = !glob.is_empty()
            && glob.len() <= Self::MAX_LEN
            && !glob.chars().any(char::is_control)
            && (kind == PatternKind::Event || glob.starts_with('/') || glob.starts_with('*'));
        ok.then(|| Pattern {
            kind,
            glob: glob.to_owned(),
        })
    }

    /// The SQLite `GLOB` operand: only `*` is special; `?`, `[` and `]` are literal.
    pub fn sql_glob(&self) -> String {
        let mut out = String::with_capacity(self.glob.len());
        for c in self.glob.chars() {
            match c {
                '?' => out.push_str("[?]"),
                '[' => out.push_str("[[]"),
                ']' => out.push_str("[]]"),
                c => out.push(c),
            }
        }
        out
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.glob)
    }
}
