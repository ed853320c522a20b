//! Report filters (`page==/pricing`, `source!=Google`, `utm_campaign~spring`): parsed
//! once against [`Filter::DIMS`], the dimensions raw events can answer exactly; a
//! backend turns each into a bound condition.

use super::Dim;

/// How a filter compares a dimension's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterOp {
    Is,
    IsNot,
    /// Case-insensitive substring.
    Contains,
}

/// One dashboard/API filter, `page==/pricing`, `source!=Google`, `utm_campaign~spring`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub dim: Dim,
    pub op: FilterOp,
    pub value: String,
}

impl Filter {
    /// Dimensions that can filter a report (those the raw events can answer exactly).
    pub const DIMS: [Dim; 19] = super::dim::FILTERABLE;

    /// Parses `dim==value`, `dim!=value` or `dim~value` against the allowlist.
    pub fn parse(s: &str) -> std::result::Result<Filter, String> {
        let (name, op, value) = [
            ("==", FilterOp::Is),
            ("!=", FilterOp::IsNot),
            ("~", FilterOp::Contains),
        ]
        .into_iter()
        .find_map(|(sym, op)| s.split_once(sym).map(|(d, v)| (d, op, v)))
        .ok_or_else(|| {
            "a filter is dimension==value, dimension!=value or dimension~value".to_string()
        })?;
        let dim = Dim::parse(name.trim())
            .filter(|d| Self::DIMS.contains(d))
            .ok_or_else(|| {
                format!(
                    "cannot filter by {:?}; filterable: {}",
                    name.chars().take(40).collect::<String>(),
                    Self::DIMS
                        .iter()
                        .map(|d| d.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        if value.len() > 2048 || value.chars().any(char::is_control) {
            return Err(
                "a filter value is at most 2048 characters without control characters".into(),
            );
        }
        Ok(Filter {
            dim,
            op,
            value: value.to_owned(),
        })
    }

    /// Back to the `dim==value` form (for links).
    pub fn to_param(&self) -> String {
        let op = match self.op {
            FilterOp::Is => "==",
            FilterOp::IsNot => "!=",
            FilterOp::Contains => "~",
        };
        format!("{}{op}{}", self.dim.name(), self.value)
    }
}
