//! Completion indexes of an Indexed Job, written as Kubernetes writes
//! `status.completedIndexes`: sorted, ranges joined (`"0-2,5,7-8"`).

use std::collections::BTreeSet;

/// Parses `"0-2,5"`; parts that do not parse are skipped.
pub fn parse(text: &str) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    set.extend(a..=b);
                }
            }
            None => {
                if let Ok(i) = part.parse() {
                    set.insert(i);
                }
            }
        }
    }
    set
}

/// Formats a set of indexes with ranges joined.
pub fn format(set: &BTreeSet<i32>) -> String {
    let mut parts = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_round_trip_with_ranges_joined() {
        let set: BTreeSet<i32> = [0, 1, 2, 5, 7, 8].into();
        assert_eq!(format(&set), "0-2,5,7-8");
        assert_eq!(parse("0-2,5,7-8"), set);
        assert_eq!(format(&BTreeSet::new()), "");
    }
}
