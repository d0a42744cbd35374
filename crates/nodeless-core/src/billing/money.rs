//! Money as integer nano-units of the catalogue currency, and fractions as parts per million.
//!
//! Integers keep every sum exact and independent of the order it is added in, so a bill
//! summed per pod, per workload or per namespace agrees to the last nano. Decimal text is
//! parsed digit by digit and never passes through `f64`.

use serde::{Deserialize, Deserializer, Serializer};

/// Nano-units in one unit of currency.
pub const NANOS_PER_UNIT: u64 = 1_000_000_000;
/// Parts per million in a ratio of 1 (a spot price equal to the on-demand price).
pub const PPM: u32 = 1_000_000;

const MAX_DECIMALS: u32 = 9;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("an amount is required")]
    Empty,
    #[error("{0:?} is negative: amounts must be zero or more")]
    Negative(String),
    #[error("{0:?} is not a decimal number such as 0.025")]
    Malformed(String),
    #[error("{value:?} has more than {max} decimals")]
    TooManyDecimals { value: String, max: u32 },
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// `nanos` as a decimal with `decimals` places, rounded half up: `format_money(1_234_321, 6)`
/// is `"0.001234"`. More than 9 places pads with zeros.
pub fn format_money(nanos: u128, decimals: u32) -> String {
    let shown = decimals.min(MAX_DECIMALS);
    let divisor = 10u128.pow(MAX_DECIMALS - shown);
    let scaled = div_round(nanos, divisor);
    let unit = 10u128.pow(shown);
    let (whole, frac) = (scaled / unit, scaled % unit);
    if decimals == 0 {
        return whole.to_string();
    }
    let pad = (decimals - shown) as usize;
    format!(
        "{whole}.{frac:0width$}{:0<pad$}",
        "",
        width = shown as usize
    )
}

/// The shortest decimal text that is exactly `nanos`: `40_480_000` → `"0.04048"`, `2e9` → `"2"`.
pub fn format_money_exact(nanos: u128) -> String {
    let text = format_money(nanos, MAX_DECIMALS);
    let trimmed = text.trim_end_matches('0');
    trimmed.strip_suffix('.').unwrap_or(trimmed).to_string()
}

/// Parses a non-negative decimal such as `"0.025"` (→ `25_000_000`) with at most
/// `max_decimals` (≤ 9) places into nano-units.
pub fn parse_money(text: &str, max_decimals: u32) -> Result<u64, MoneyError> {
    let value = text.trim();
    if value.is_empty() {
        return Err(MoneyError::Empty);
    }
    if value.starts_with('-') {
        return Err(MoneyError::Negative(value.to_string()));
    }
    let malformed = || MoneyError::Malformed(value.to_string());
    let digits = value.strip_prefix('+').unwrap_or(value);
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
        return Err(malformed());
    }
    let max = max_decimals.min(MAX_DECIMALS);
    let significant = frac.trim_end_matches('0');
    if significant.len() > max as usize {
        return Err(MoneyError::TooManyDecimals {
            value: value.to_string(),
            max,
        });
    }
    let too_large = || MoneyError::TooLarge(value.to_string());
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let frac_nanos = format!("{significant:0<9}")
        .parse::<u64>()
        .map_err(|_| malformed())?;
    whole
        .checked_mul(NANOS_PER_UNIT)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or_else(too_large)
}

/// `numerator / divisor`, rounded half up; `divisor` must not be 0.
pub(crate) fn div_round(numerator: u128, divisor: u128) -> u128 {
    let q = numerator / divisor;
    if numerator % divisor >= divisor - divisor / 2 {
        q + 1
    } else {
        q
    }
}

/// Serde for money fields: a decimal string with 9 places, so clients compare exactly.
pub(crate) mod nanos_text {
    use super::*;

    pub fn serialize<S: Serializer, N: Copy + Into<u128>>(n: &N, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_money((*n).into(), MAX_DECIMALS))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, N: TryFrom<u64>>(d: D) -> Result<N, D::Error> {
        let text = String::deserialize(d)?;
        let nanos = parse_money(&text, MAX_DECIMALS).map_err(serde::de::Error::custom)?;
        N::try_from(nanos).map_err(|_| serde::de::Error::custom("amount out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_formats_rounding_half_up() {
        assert_eq!(format_money(1_234_321, 6), "0.001234");
        assert_eq!(format_money(1_234_500, 6), "0.001235");
        assert_eq!(format_money(1_234_499, 6), "0.001234");
        assert_eq!(format_money(40_480_000, 9), "0.040480000");
        assert_eq!(format_money(2_500_000_000, 0), "3");
        assert_eq!(format_money(0, 6), "0.000000");
        assert_eq!(format_money(1, 11), "0.00000000100");
        assert_eq!(format_money(999_999_999_500, 6), "1000.000000");
    }

    #[test]
    fn exact_text_drops_trailing_zeros() {
        assert_eq!(format_money_exact(40_480_000), "0.04048");
        assert_eq!(format_money_exact(2_000_000_000), "2");
        assert_eq!(format_money_exact(0), "0");
    }

    #[test]
    fn decimals_parse_exactly_without_floating_point() {
        assert_eq!(parse_money("0.025", 3), Ok(25_000_000));
        assert_eq!(parse_money("0.04048", 9), Ok(40_480_000));
        assert_eq!(parse_money("1", 3), Ok(1_000_000_000));
        assert_eq!(parse_money(" 1.500 ", 1), Ok(1_500_000_000));
        assert_eq!(parse_money(".5", 3), Ok(500_000_000));
        assert_eq!(parse_money("3.", 3), Ok(3_000_000_000));
        assert_eq!(parse_money("0.000000001", 9), Ok(1));
    }

    #[test]
    fn bad_decimals_are_rejected_with_the_reason() {
        let err = |s: &str, max| parse_money(s, max).expect_err(s).to_string();
        assert!(err("0.0251", 3).contains("more than 3 decimals"));
        assert!(err("-1", 3).contains("negative"));
        assert!(err("", 3).contains("required"));
        for bad in [".", "1e3", "0x10", "1.2.3", "NaN", "inf", "1,5", "+-1"] {
            assert!(err(bad, 9).contains("not a decimal number"), "{bad}");
        }
        assert!(err("99999999999999999999", 9).contains("too large"));
        assert!(err("18446744074", 9).contains("too large"));
    }

    #[test]
    fn division_rounds_half_up() {
        assert_eq!(div_round(5, 10), 1);
        assert_eq!(div_round(4, 10), 0);
        assert_eq!(div_round(7, 3), 2);
        assert_eq!(div_round(3, 2), 2);
        assert_eq!(div_round(0, 7), 0);
    }
}
