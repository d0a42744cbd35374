//! Kubernetes resource quantities (`100m`, `1.5Gi`, `1e3`): parsing, comparing, converting to
//! millicores or bytes, and printing in upstream's canonical form (`0.5` prints as `500m`,
//! `1024Mi` as `1Gi`), which is the form error messages quote.
//!
//! Values are held exactly as a count of nano-units (10^-9); like upstream, anything finer
//! is rounded up (away from zero).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// How a quantity was written, which decides how it is printed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain numbers and `n u m k M G T P E` suffixes.
    DecimalSI,
    /// `Ki Mi Gi Ti Pi Ei` suffixes.
    BinarySI,
    /// `e`/`E` exponents, e.g. `1e3`.
    DecimalExponent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    FormatWrong,
    #[error("unable to parse quantity's suffix")]
    Suffix,
    #[error("quantity is too large")]
    TooLarge,
}

/// A parsed quantity. Equality and ordering compare values, not spelling.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Quantity {}
impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// Parses a quantity as `resource.ParseQuantity` does.
pub fn parse_quantity(s: &str) -> Result<Quantity, QuantityError> {
    let parts = split(s)?;
    let (base_exp10, binary_pow, format) = interpret_suffix(parts.suffix)?;
    let mut mantissa: i128 = 0;
    for d in parts.int_digits.bytes().chain(parts.frac_digits.bytes()) {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(d - b'0')))
            .ok_or(QuantityError::TooLarge)?;
    }
    let frac = i64::try_from(parts.frac_digits.len()).map_err(|_| QuantityError::TooLarge)?;
    let binary = 1024i128.pow(binary_pow);
    let scaled = mantissa
        .checked_mul(binary)
        .ok_or(QuantityError::TooLarge)?;
    let pow10 = 9 + base_exp10 - frac;
    let magnitude = if scaled == 0 {
        0
    } else if pow10 >= 0 {
        let factor = pow10_checked(pow10).ok_or(QuantityError::TooLarge)?;
        scaled.checked_mul(factor).ok_or(QuantityError::TooLarge)?
    } else {
        match pow10_checked(-pow10) {
            // Finer than a nano-unit: round up, as upstream does.
            Some(div) => (scaled + div - 1) / div,
            None => 1,
        }
    };
    let nanos = if parts.negative {
        -magnitude
    } else {
        magnitude
    };
    Ok(Quantity { nanos, format })
}

struct Parts<'a> {
    negative: bool,
    int_digits: &'a str,
    frac_digits: &'a str,
    suffix: &'a str,
}

/// Splits `[+-]digits[.digits]suffix`, following upstream's scanner.
fn split(s: &str) -> Result<Parts<'_>, QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::FormatWrong);
    }
    let (negative, rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let int_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (int_digits, mut rest) = rest.split_at(int_end);
    let mut frac_digits = "";
    if let Some(after_dot) = rest.strip_prefix('.') {
        let end = after_dot
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after_dot.len());
        frac_digits = &after_dot[..end];
        rest = &after_dot[end..];
    }
    // The suffix is letters from the suffix alphabet, an optional sign, then digits.
    let letters = rest
        .find(|c: char| !"eEinumkKMGTP".contains(c))
        .unwrap_or(rest.len());
    let mut tail = &rest[letters..];
    if tail.starts_with(['+', '-']) {
        tail = &tail[1..];
    }
    if !tail.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuantityError::FormatWrong);
    }
    Ok(Parts {
        negative,
        int_digits,
        frac_digits,
        suffix: rest,
    })
}

/// (decimal exponent, power of 1024, format) for a suffix.
fn interpret_suffix(suffix: &str) -> Result<(i64, u32, Format), QuantityError> {
    let decimal = |e: i64| Ok((e, 0, Format::DecimalSI));
    let binary = |p: u32| Ok((0, p, Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        s if s.starts_with(['e', 'E']) => {
            let exp: i64 = s[1..].parse().map_err(|_| QuantityError::Suffix)?;
            if exp.abs() > 1000 {
                return Err(QuantityError::TooLarge);
            }
            Ok((exp, 0, Format::DecimalExponent))
        }
        _ => Err(QuantityError::Suffix),
    }
}

fn pow10_checked(exp: i64) -> Option<i128> {
    u32::try_from(exp).ok().and_then(|e| 10i128.checked_pow(e))
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_quantity(s)
    }
}

impl Quantity {
    /// The exact value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in thousandths (millicores for CPU), rounded up.
    pub fn milli_value(&self) -> i128 {
        ceil_div(self.nanos, 1_000_000)
    }

    /// The value in whole units (bytes for memory), rounded up.
    pub fn value(&self) -> i128 {
        ceil_div(self.nanos, NANOS_PER_UNIT)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// The canonical spelling upstream prints (`Quantity.String()`).
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let magnitude = self.nanos.unsigned_abs();
        let whole_binary = self.format == Format::BinarySI
            && magnitude >= 1024 * NANOS_PER_UNIT.unsigned_abs()
            && magnitude.is_multiple_of(NANOS_PER_UNIT.unsigned_abs());
        if whole_binary {
            return format!(
                "{sign}{}",
                binary_form(magnitude / NANOS_PER_UNIT.unsigned_abs())
            );
        }
        // Binary quantities that are small or fractional print as decimal, as upstream does.
        let format = if self.format == Format::BinarySI {
            Format::DecimalSI
        } else {
            self.format
        };
        format!("{sign}{}", decimal_form(magnitude, format))
    }
}

fn ceil_div(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d > 0 {
        q + 1
    } else {
        q
    }
}

fn binary_form(mut units: u128) -> String {
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut i = 0;
    while i < 6 && units.is_multiple_of(1024) {
        units /= 1024;
        i += 1;
    }
    format!("{units}{}", SUFFIXES[i])
}

fn decimal_form(nanos: u128, format: Format) -> String {
    let mut mantissa = nanos;
    let mut exp: i64 = -9;
    while mantissa.is_multiple_of(10) {
        mantissa /= 10;
        exp += 1;
    }
    // Bring the exponent down to a multiple of three so an SI suffix fits.
    match exp.rem_euclid(3) {
        1 => {
            mantissa *= 10;
            exp -= 1;
        }
        2 => {
            mantissa *= 100;
            exp -= 2;
        }
        _ => {}
    }
    let suffix = match (format, exp) {
        (Format::DecimalExponent, 0) => String::new(),
        (Format::DecimalExponent, e) => format!("e{e}"),
        (_, -9) => "n".into(),
        (_, -6) => "u".into(),
        (_, -3) => "m".into(),
        (_, 0) => String::new(),
        (_, 3) => "k".into(),
        (_, 6) => "M".into(),
        (_, 9) => "G".into(),
        (_, 12) => "T".into(),
        (_, 15) => "P".into(),
        (_, 18) => "E".into(),
        (_, e) => format!("e{e}"),
    };
    format!("{mantissa}{suffix}")
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        parse_quantity(s).expect("valid quantity")
    }

    #[test]
    fn cpu_and_memory_quantities_convert_to_millicores_and_bytes() {
        assert_eq!(q("100m").milli_value(), 100);
        assert_eq!(q("0.5").milli_value(), 500);
        assert_eq!(q("2").milli_value(), 2000);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("1.5Gi").value(), 3 << 29);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("128M").value(), 128_000_000);
        assert_eq!(q("1n").milli_value(), 1, "sub-milli values round up");
    }

    #[test]
    fn quantities_compare_by_value() {
        assert_eq!(q("1024Mi"), q("1Gi"));
        assert!(q("500m") < q("1"));
        assert!(q("-1") < q("0"));
        assert_eq!(q("1k"), q("1000"));
    }

    #[test]
    fn canonical_form_matches_upstream() {
        for (input, want) in [
            ("0.5", "500m"),
            ("100m", "100m"),
            ("1000", "1k"),
            ("1500m", "1500m"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("512", "512"),
            ("0.5Gi", "512Mi"),
            ("1e3", "1e3"),
            ("1e2", "100"),
            ("-2Gi", "-2Gi"),
            ("0", "0"),
            ("0.0000000001", "1n"),
        ] {
            assert_eq!(q(input).to_string(), want, "{input}");
        }
    }

    #[test]
    fn malformed_quantities_are_rejected() {
        assert_eq!(parse_quantity(""), Err(QuantityError::FormatWrong));
        assert_eq!(parse_quantity("1 Gi"), Err(QuantityError::FormatWrong));
        assert_eq!(parse_quantity("abc"), Err(QuantityError::FormatWrong));
        assert_eq!(parse_quantity("1Ki5"), Err(QuantityError::Suffix));
        assert_eq!(parse_quantity("1K"), Err(QuantityError::Suffix));
        assert_eq!(parse_quantity("1Gb"), Err(QuantityError::FormatWrong));
        assert_eq!(parse_quantity("1e999999"), Err(QuantityError::TooLarge));
        assert!(parse_quantity("99999999999999999999999999999999999999999").is_err());
    }
}
