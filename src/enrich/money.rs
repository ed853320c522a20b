//! Money from the wire: an ISO 4217 currency and a decimal amount, into integer minor
//! units with the currency's own exponent (JPY 0, EUR 2, BHD 3). Floats are never
//! involved, so `0.1 + 0.2`-style artefacts cannot be stored: a value with more
//! decimals than the currency has is refused, never rounded.

use iso_currency::Currency;

/// Largest whole part accepted (15 digits keeps every exponent inside an i64).
const MAX_WHOLE_DIGITS: usize = 15;

/// Why a value or currency was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency must be an ISO 4217 code such as EUR or USD")]
    UnknownCurrency,
    #[error("value must be a non-negative decimal such as 19.99")]
    NotADecimal,
    #[error("value has more decimals than the currency has minor units")]
    TooManyDecimals,
    #[error("value is too large")]
    TooLarge,
    #[error("a value needs a currency (cur)")]
    NoCurrency,
}

/// An ISO 4217 currency with a minor unit (funds and metals such as XAU have none).
pub fn currency(code: &str) -> Option<(&'static str, u32)> {
    let c = Currency::from_code(&code.trim().to_ascii_uppercase())?;
    let exp = c.exponent()?;
    Some((c.code(), u32::from(exp)))
}

/// `amount` in minor units of a currency with `exponent` decimals.
pub fn parse_amount(amount: &str, exponent: u32) -> Result<i64, MoneyError> {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (whole, frac) = amount.trim().split_once('.').unwrap_or((amount.trim(), ""));
    if whole.is_empty() || !digits(whole) || !digits(frac) || amount.trim().ends_with('.') {
        return Err(MoneyError::NotADecimal);
    }
    if frac.len() > exponent as usize {
        return Err(MoneyError::TooManyDecimals);
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() > MAX_WHOLE_DIGITS {
        return Err(MoneyError::TooLarge);
    }
    let scale = 10i64.pow(exponent);
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| MoneyError::TooLarge)?
    };
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<width$}", width = exponent as usize)
            .parse()
            .map_err(|_| MoneyError::NotADecimal)?
    };
    whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(frac))
        .ok_or(MoneyError::TooLarge)
}

/// `v` and `cur` of a hit: `(minor units, currency code)`. A value needs a currency.
pub fn parse(v: Option<&str>, cur: Option<&str>) -> Result<(Option<i64>, String), MoneyError> {
    let cur = cur.map(str::trim).filter(|c| !c.is_empty());
    let v = v.map(str::trim).filter(|v| !v.is_empty());
    let currency = match cur {
        None => None,
        Some(c) => Some(currency(c).ok_or(MoneyError::UnknownCurrency)?),
    };
    match (v, currency) {
        (None, c) => Ok((None, c.map(|c| c.0.to_owned()).unwrap_or_default())),
        (Some(_), None) => Err(MoneyError::NoCurrency),
        (Some(v), Some((code, exp))) => Ok((Some(parse_amount(v, exp)?), code.to_owned())),
    }
}

/// Minor units back to a decimal string in the currency's exponent (`1999` EUR → `19.99`).
pub fn format(minor: i64, code: &str) -> String {
    let exp = currency(code).map(|c| c.1).unwrap_or(2);
    if exp == 0 {
        return minor.to_string();
    }
    let scale = 10i64.pow(exp);
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    let s = scale as u64;
    format!("{sign}{}.{:0width$}", m / s, m % s, width = exp as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_in_the_currency_exponent() {
        assert_eq!(
            parse(Some("19.99"), Some("eur")),
            Ok((Some(1999), "EUR".into()))
        );
        assert_eq!(
            parse(Some("19.9"), Some("EUR")),
            Ok((Some(1990), "EUR".into()))
        );
        assert_eq!(parse(Some("5"), Some("USD")), Ok((Some(500), "USD".into())));
        assert_eq!(
            parse(Some("0.10"), Some("USD")),
            Ok((Some(10), "USD".into()))
        );
        assert_eq!(
            parse(Some("1500"), Some("JPY")),
            Ok((Some(1500), "JPY".into()))
        );
        assert_eq!(
            parse(Some("1.234"), Some("BHD")),
            Ok((Some(1234), "BHD".into()))
        );
        assert_eq!(
            parse(Some("007.50"), Some("EUR")),
            Ok((Some(750), "EUR".into()))
        );
        assert_eq!(parse(None, Some("EUR")), Ok((None, "EUR".into())));
        assert_eq!(parse(None, None), Ok((None, String::new())));
    }

    #[test]
    fn float_traps_and_garbage_are_refused() {
        let cases = [
            ("0.30000000000000004", MoneyError::TooManyDecimals),
            ("0.1+0.2", MoneyError::NotADecimal),
            ("0.1 0.2", MoneyError::NotADecimal),
            ("1e309", MoneyError::NotADecimal),
            ("1e3", MoneyError::NotADecimal),
            ("-5", MoneyError::NotADecimal),
            ("+5", MoneyError::NotADecimal),
            ("19.999", MoneyError::TooManyDecimals),
            ("NaN", MoneyError::NotADecimal),
            ("inf", MoneyError::NotADecimal),
            (".5", MoneyError::NotADecimal),
            ("5.", MoneyError::NotADecimal),
            ("1.2.3", MoneyError::NotADecimal),
            ("١٢", MoneyError::NotADecimal),
            ("9999999999999999", MoneyError::TooLarge),
        ];
        for (v, want) in cases {
            assert_eq!(parse(Some(v), Some("EUR")), Err(want), "{v}");
        }
        assert_eq!(
            parse(Some("100.5"), Some("JPY")),
            Err(MoneyError::TooManyDecimals)
        );
        assert_eq!(
            parse(Some("1"), Some("EURO")),
            Err(MoneyError::UnknownCurrency)
        );
        assert_eq!(
            parse(Some("1"), Some("XAU")),
            Err(MoneyError::UnknownCurrency),
            "no minor unit"
        );
        assert_eq!(
            parse(Some("1"), Some("ZZZ")),
            Err(MoneyError::UnknownCurrency)
        );
        assert_eq!(parse(Some("1"), None), Err(MoneyError::NoCurrency));
        assert_eq!(parse(None, Some("€")), Err(MoneyError::UnknownCurrency));
    }

    #[test]
    fn formatting_round_trips() {
        for (minor, code, text) in [
            (1999, "EUR", "19.99"),
            (5, "USD", "0.05"),
            (1500, "JPY", "1500"),
            (1234, "BHD", "1.234"),
            (-250, "EUR", "-2.50"),
        ] {
            assert_eq!(format(minor, code), text);
            if minor >= 0 {
                assert_eq!(parse_amount(text, currency(code).unwrap().1), Ok(minor));
            }
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any string is an exact amount or a refusal — never a panic; accepted amounts
        /// format back to the same number.
        #[test]
        fn parse_is_total_and_exact(v in "[-+0-9.e ]{0,24}", code in proptest::sample::select(vec!["JPY", "EUR", "BHD"])) {
            let exp = currency(code).unwrap().1;
            if let Ok(minor) = parse_amount(&v, exp) {
                prop_assert!(minor >= 0);
                let again = parse_amount(&format(minor, code), exp);
                prop_assert_eq!(again, Ok(minor));
            }
        }
    }
}
