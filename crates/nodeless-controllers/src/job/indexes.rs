//! Completion indexes as `status.completedIndexes` spells them: ascending, comma-separated,
//! with runs folded into ranges (`1,3-5,7`).

use std::collections::BTreeSet;

/// Parses `completedIndexes`, keeping only indexes below `completions`: the status is
/// client-writable, so a huge range must not make us allocate beyond the Job's size.
pub fn parse(s: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        let (Ok(first), Ok(last)) = (first, last) else {
            continue;
        };
        let last = last.min(completions - 1);
        out.extend(first.max(0)..=last);
    }
    out
}

pub fn format(indexes: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(i32, i32)> = None;
    for &i in indexes {
        run = match run {
            Some((first, last)) if i == last + 1 => Some((first, i)),
            Some(done) => {
                parts.push(range(done));
                Some((i, i))
            }
            None => Some((i, i)),
        };
    }
    if let Some(done) = run {
        parts.push(range(done));
    }
    parts.join(",")
}

fn range((first, last): (i32, i32)) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_fold_into_ranges_and_back() {
        let set: BTreeSet<i32> = [0, 1, 2, 4, 6, 7].into();
        assert_eq!(format(&set), "0-2,4,6-7");
        assert_eq!(parse("0-2,4,6-7", 10), set);
        assert_eq!(format(&BTreeSet::new()), "");
    }

    #[test]
    fn parsing_ignores_garbage_and_indexes_beyond_completions() {
        assert_eq!(parse("x,1,3-2147483647", 5), [1, 3, 4].into());
        assert_eq!(parse("", 5), BTreeSet::new());
    }
}
