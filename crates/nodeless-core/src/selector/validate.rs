//! The label key and value checks upstream's selector parser applies, with its wording
//! (kube 1.32: lengths are counted in "characters").

use regex::Regex;
use std::sync::LazyLock;

const NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const NAME_ERR: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| anchored(NAME_FMT));
static VALUE_RE: LazyLock<Regex> = LazyLock::new(|| anchored(&format!("({NAME_FMT})?")));
static DNS_SUBDOMAIN_RE: LazyLock<Regex> = LazyLock::new(|| anchored(DNS_SUBDOMAIN_FMT));

fn anchored(fmt: &str) -> Regex {
    Regex::new(&format!("^(?:{fmt})$")).expect("constant regex compiles")
}

/// Upstream's `RegexError`: the message, examples, and the pattern itself.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let shown: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        shown.join(" or ")
    )
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// Problems with a label key (a "qualified name"); empty when valid.
pub fn label_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    dns_subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            let shape = regex_error(NAME_ERR, NAME_FMT, &["MyName", "my.name", "123-abc"]);
            errs.push(format!(
                "a qualified name {shape} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !NAME_RE.is_match(name) {
        errs.push(format!(
            "name part {}",
            regex_error(NAME_ERR, NAME_FMT, &["MyName", "my.name", "123-abc"])
        ));
    }
    errs
}

/// Problems with a label value; empty when valid.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !VALUE_RE.is_match(value) {
        let fmt = format!("({NAME_FMT})?");
        errs.push(regex_error(
            VALUE_ERR,
            &fmt,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

fn dns_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !DNS_SUBDOMAIN_RE.is_match(value) {
        errs.push(regex_error(
            DNS_SUBDOMAIN_ERR,
            DNS_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_keys_are_checked_in_both_parts() {
        assert!(label_key_errors("app.kubernetes.io/name").is_empty());
        assert_eq!(
            label_key_errors("/name"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert!(label_key_errors("Bad_Prefix/name")[0]
            .starts_with("prefix part a lowercase RFC 1123 subdomain"));
        assert!(label_key_errors("a/b/c")[0].starts_with("a qualified name must consist"));
    }

    #[test]
    fn long_names_and_bad_characters_are_reported_like_upstream() {
        let long = "a".repeat(64);
        assert_eq!(
            label_key_errors(&long),
            vec!["name part must be no more than 63 characters".to_string()]
        );
        assert_eq!(
            label_key_errors("-a")[0],
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an \
             alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is \
             '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert!(label_value_errors("").is_empty());
        assert_eq!(label_value_errors("a b").len(), 1);
    }
}
