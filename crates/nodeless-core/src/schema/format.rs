//! String formats, checked as go-openapi's `strfmt` registry checks them. Where a check
//! would need a large grammar for little gain (ISBN, credit card, SSN, e-mail, URI) it is
//! deliberately looser than upstream: a value upstream accepts is never rejected here.

use base64::Engine;
use regex::Regex;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

/// Whether `value` is valid for `format`; unknown formats accept everything.
pub(super) fn is_valid(format: &str, value: &str) -> bool {
    match format.replace('-', "").as_str() {
        "datetime" => is_date_time(value),
        "date" => is_date(value),
        "byte" => is_base64(value),
        "uuid" => is_uuid(value, None),
        "uuid3" => is_uuid(value, Some('3')),
        "uuid4" => is_uuid(value, Some('4')),
        "uuid5" => is_uuid(value, Some('5')),
        "ipv4" => value.contains('.') && parse_ip(value).is_some(),
        "ipv6" => value.parse::<Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(value),
        "mac" => is_mac(value),
        "hostname" => is_hostname(value),
        "email" => is_email(value),
        "uri" => is_uri(value),
        "duration" => is_duration(value),
        "hexcolor" => is_hex_color(value),
        "rgbcolor" => is_rgb_color(value),
        "bsonobjectid" => value.len() == 24 && value.bytes().all(|b| b.is_ascii_hexdigit()),
        _ => true,
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `2006-01-02`, with a real calendar day.
fn is_date(s: &str) -> bool {
    let mut parts = s.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(y), Some(m), Some(d)) = (digits(y, 4), digits(m, 2), digits(d, 2)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// RFC 3339 date-time as strfmt's `IsDateTime` accepts it: case-insensitive `T`, optional
/// fraction, `Z` or a numeric offset.
fn is_date_time(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let Some((date, time)) = lower.split_once('t') else {
        return false;
    };
    let (Some(hms), Some(mut zone)) = (time.get(..8), time.get(8..)) else {
        return false;
    };
    if !is_date(date) {
        return false;
    }
    let mut f = hms.split(':');
    let (Some(h), Some(m), Some(sec), None) = (f.next(), f.next(), f.next(), f.next()) else {
        return false;
    };
    let (Some(h), Some(m), Some(sec)) = (digits(h, 2), digits(m, 2), digits(sec, 2)) else {
        return false;
    };
    if h > 23 || m > 59 || sec > 59 {
        return false;
    }
    if let Some(frac) = zone.strip_prefix('.') {
        let n = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if n == 0 {
            return false;
        }
        zone = &frac[n..];
    }
    zone == "z" || is_offset(zone)
}

fn is_offset(zone: &str) -> bool {
    let Some(rest) = zone.strip_prefix('+').or_else(|| zone.strip_prefix('-')) else {
        return false;
    };
    let Some((h, m)) = rest.split_once(':') else {
        return false;
    };
    digits(h, 2).is_some() && digits(m, 2).is_some()
}

fn is_base64(s: &str) -> bool {
    base64::engine::general_purpose::STANDARD.decode(s).is_ok()
}

fn is_uuid(s: &str, version: Option<char>) -> bool {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let dashes = s.len() - hex.len();
    if hex.len() != 32
        || !hex.chars().all(|c| c.is_ascii_hexdigit())
        || (dashes != 0 && dashes != 4)
    {
        return false;
    }
    if dashes == 4
        && [8, 13, 18, 23]
            .iter()
            .any(|i| s.as_bytes().get(*i) != Some(&b'-'))
    {
        return false;
    }
    match version {
        None => true,
        Some(v) => {
            let variant_ok =
                v == '3' || matches!(hex.as_bytes()[16], b'8' | b'9' | b'a' | b'b' | b'A' | b'B');
            hex.as_bytes()[12] == v as u8 && variant_ok
        }
    }
}

/// Kubernetes parses IPs "sloppily": IPv4 octets may carry leading zeros.
fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    let octets: Vec<u8> = s
        .split('.')
        .map(|o| (o.len() <= 3).then(|| o.parse().ok()).flatten())
        .collect::<Option<_>>()?;
    let [a, b, c, d] = octets[..] else {
        return None;
    };
    Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Some(ip) = parse_ip(ip) else { return false };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.parse::<u8>().is_ok_and(|b| b <= max) && !bits.starts_with('+')
}

/// EUI-48/EUI-64/20-octet addresses separated by `:` or `-`, or dotted `0000.0000.0000`.
fn is_mac(s: &str) -> bool {
    let groups: Vec<&str> = if s.contains('.') {
        s.split('.').collect()
    } else {
        s.split([':', '-']).collect()
    };
    let width = if s.contains('.') { 4 } else { 2 };
    let n = if width == 4 {
        groups.len() * 2
    } else {
        groups.len()
    };
    matches!(n, 6 | 8 | 20)
        && groups
            .iter()
            .all(|g| g.len() == width && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_hostname(s: &str) -> bool {
    if s.is_empty() || s.len() > 255 {
        return false;
    }
    let labels: Vec<&str> = s.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_alphanumeric() || c == '-' || (!c.is_ascii() && !c.is_whitespace()))
    };
    if !labels.iter().all(label_ok) {
        return false;
    }
    // Upstream requires a multi-label name to end in a top-level label of letters.
    labels.len() == 1
        || labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(char::is_alphabetic))
}

fn is_email(s: &str) -> bool {
    let addr = match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s.trim(),
    };
    matches!(addr.rsplit_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !addr.contains(char::is_whitespace))
}

/// A request URI: absolute (`scheme:...`) or an absolute path.
fn is_uri(s: &str) -> bool {
    if s.starts_with('/') {
        return !s.contains(char::is_whitespace);
    }
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    !rest.is_empty()
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !s.contains(char::is_whitespace)
}

/// A Go duration (`1h30m`, `250ms`) or strfmt's looser `3 days` form.
fn is_duration(s: &str) -> bool {
    is_go_duration(s) || is_loose_duration(s)
}

/// Go's `time.ParseDuration` grammar: `[-+]?(\d*\.?\d+unit)+`, or a bare `0` (also what
/// CronJob's `@every` descriptor accepts).
pub(crate) fn is_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return false;
        }
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        if !["ns", "us", "µs", "μs", "ms", "s", "m", "h"].contains(&&rest[..unit_end]) {
            return false;
        }
        rest = &rest[unit_end..];
    }
    true
}

fn is_loose_duration(s: &str) -> bool {
    const UNITS: &[&[&str]] = &[
        &["ns", "nano"],
        &["us", "µs", "micro"],
        &["ms", "milli"],
        &["s", "sec"],
        &["m", "min"],
        &["h", "hr", "hour"],
        &["d", "day"],
        &["w", "wk", "week"],
    ];
    static TERM: OnceLock<Regex> = OnceLock::new();
    let term = TERM.get_or_init(|| Regex::new(r"(\d+)\s*([A-Za-zµ]+)").expect("constant regex"));
    term.captures_iter(s).any(|c| {
        let unit = c[2].to_lowercase();
        UNITS.iter().any(|variants| {
            let last = variants.len() - 1;
            variants
                .iter()
                .enumerate()
                .any(|(i, v)| *v == unit || (i == last && unit.starts_with(v)))
        })
    })
}

fn is_hex_color(s: &str) -> bool {
    let hex = s.strip_prefix('#').unwrap_or(s);
    (hex.len() == 3 || hex.len() == 6) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_rgb_color(s: &str) -> bool {
    let Some(inner) = s.strip_prefix("rgb(").and_then(|r| r.strip_suffix(')')) else {
        return false;
    };
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| p.parse::<u16>().is_ok_and(|n| n <= 255))
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn date_time_accepts_rfc3339_variants_and_rejects_garbage() {
        for ok in [
            "2024-02-29T10:00:00Z",
            "2024-01-01t23:59:59.123456+02:00",
            "2024-01-01T00:00:00-05:30",
        ] {
            assert!(is_valid("date-time", ok), "{ok}");
        }
        for bad in [
            "2023-02-29T10:00:00Z",
            "2024-01-01",
            "2024-01-01T24:00:00Z",
            "yesterday",
            "2024-01-01T10:00:00",
        ] {
            assert!(!is_valid("date-time", bad), "{bad}");
        }
    }

    #[test]
    fn network_formats_follow_kubernetes_parsing() {
        assert!(is_valid("ipv4", "10.0.0.1"));
        assert!(is_valid("ipv4", "010.000.000.001"));
        assert!(!is_valid("ipv4", "::1"));
        assert!(is_valid("ipv6", "fe80::1"));
        assert!(is_valid("cidr", "10.0.0.0/8"));
        assert!(!is_valid("cidr", "10.0.0.0/33"));
        assert!(is_valid("mac", "01:23:45:67:89:ab"));
        assert!(!is_valid("mac", "01:23:45"));
        assert!(is_valid("hostname", "example.com"));
        assert!(!is_valid("hostname", "-bad-.com"));
    }

    #[test]
    fn other_formats_check_their_shape() {
        assert!(is_valid("uuid", "123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_valid("uuid4", "123e4567-e89b-12d3-a456-426614174000"));
        assert!(is_valid("byte", "aGVsbG8="));
        assert!(!is_valid("byte", "not base64!"));
        assert!(is_valid("duration", "1h30m"));
        assert!(is_valid("duration", "3 days"));
        assert!(!is_valid("duration", "soon"));
        assert!(is_valid("unknown-format", "anything"));
    }
}
