//! Exact money. Every amount is an integer number of nano-dollars (1e-9 USD), so
//! sums never drift the way accumulated floats do.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Nano-dollars in one US dollar.
pub const NANOS_PER_USD: i64 = 1_000_000_000;

/// A price in nano-dollars per one million tokens. Catalog prices are written as
/// exact decimal strings ("0.01875"), so this type (de)serialises as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PricePerMTok(pub i64);

impl PricePerMTok {
    /// Parses a decimal US-dollar amount with at most nine fractional digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        parse_usd_nanos(text).map(PricePerMTok)
    }

    /// The amount in nano-dollars per one million tokens.
    pub fn nanos(self) -> i64 {
        self.0
    }
}

impl fmt::Display for PricePerMTok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_usd(self.0))
    }
}

impl Serialize for PricePerMTok {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_decimal(self.0))
    }
}

impl<'de> Deserialize<'de> for PricePerMTok {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PricePerMTok::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "ssr")]
impl schemars::JsonSchema for PricePerMTok {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PricePerMTok".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "US dollars per one million tokens, as an exact decimal (e.g. \"0.01875\")"
        })
    }
}

/// Parses "3", "3.75" or "0.01875" (US dollars) into nano-dollars, exactly.
pub fn parse_usd_nanos(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let invalid = || format!("`{text}` is not a dollar amount with at most 9 decimals");
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let whole: i64 = whole.parse().map_err(|_| invalid())?;
    let frac_nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| invalid())?
    };
    whole
        .checked_mul(NANOS_PER_USD)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or_else(invalid)
}

/// Formats nano-dollars as a plain decimal with at least two decimals and no
/// trailing zeros beyond them: 3_000_000_000 → "3.00", 18_750_000 → "0.01875".
pub fn format_decimal(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let abs = nanos.unsigned_abs();
    let whole = abs / NANOS_PER_USD as u64;
    let frac = format!("{:09}", abs % NANOS_PER_USD as u64);
    let trimmed = frac.trim_end_matches('0');
    let shown = if trimmed.len() < 2 {
        &frac[..2]
    } else {
        trimmed
    };
    format!("{sign}{whole}.{shown}")
}

/// Formats nano-dollars for people: "$3.00", "$0.01875".
pub fn format_usd(nanos: i64) -> String {
    let text = format_decimal(nanos);
    match text.strip_prefix('-') {
        Some(rest) => format!("-${rest}"),
        None => format!("${text}"),
    }
}

/// `numerator / denominator` rounded half away from zero; `None` for 0 (or
/// when the quotient does not fit).
pub fn rounded_div(numerator: i64, denominator: i64) -> Option<i64> {
    if denominator == 0 {
        return None;
    }
    let (n, d) = (i128::from(numerator), i128::from(denominator));
    let half = d.abs() / 2;
    let rounded = if (n < 0) == (d < 0) {
        (n.abs() + half) / d.abs()
    } else {
        -((n.abs() + half) / d.abs())
    };
    i64::try_from(rounded).ok()
}

/// `part` in per mille of `whole`, rounded half away from zero; `None` when
/// `whole` is 0. The one share function of the pages and the reports.
pub fn permille(part: i64, whole: i64) -> Option<i64> {
    rounded_div(part.checked_mul(1000)?, whole)
}

/// Per mille as a percentage, one decimal when there is one, as the mockups
/// show shares: 124 → "12.4%", 700 → "70%", -25 → "-2.5%".
pub fn percent(permille: i64) -> String {
    let sign = if permille < 0 { "-" } else { "" };
    let abs = permille.unsigned_abs();
    if abs.is_multiple_of(10) {
        format!("{sign}{}%", abs / 10)
    } else {
        format!("{sign}{}.{}%", abs / 10, abs % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_prices_parse_to_exact_nano_dollars() {
        assert_eq!(parse_usd_nanos("3"), Ok(3_000_000_000));
        assert_eq!(parse_usd_nanos("3.75"), Ok(3_750_000_000));
        assert_eq!(parse_usd_nanos("0.01875"), Ok(18_750_000));
        assert_eq!(parse_usd_nanos("0.000000001"), Ok(1));
    }

    #[test]
    fn malformed_or_too_precise_amounts_are_rejected() {
        for bad in ["", "-1", "1.0000000001", "abc", "1.2.3", ".5", "1e3"] {
            assert!(parse_usd_nanos(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn amounts_format_with_two_decimals_and_no_lost_digits() {
        assert_eq!(format_usd(3_000_000_000), "$3.00");
        assert_eq!(format_usd(18_750_000), "$0.01875");
        assert_eq!(format_usd(312_500_000), "$0.3125");
        assert_eq!(format_usd(-1_500_000_000), "-$1.50");
        assert_eq!(format_decimal(0), "0.00");
    }

    #[test]
    fn prices_round_trip_through_json_as_strings() {
        let price: PricePerMTok = serde_json::from_str("\"0.075\"").unwrap();
        assert_eq!(price.nanos(), 75_000_000);
        assert_eq!(serde_json::to_string(&price).unwrap(), "\"0.075\"");
    }

    #[test]
    fn shares_round_half_away_from_zero() {
        assert_eq!(permille(1, 3), Some(333));
        assert_eq!(permille(2, 3), Some(667));
        assert_eq!(permille(-2, 3), Some(-667));
        assert_eq!(permille(1, 0), None);
        assert_eq!(percent(124), "12.4%");
        assert_eq!(percent(-700), "-70%");
        assert_eq!(percent(-25), "-2.5%");
    }
}
