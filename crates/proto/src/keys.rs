//! etcd's key-range conventions, as clients compute them.
//!
//! A range request names `[key, range_end)`; "every key starting with a
//! prefix" is the range from the prefix to [`prefix_end`] (etcdctl's
//! `--prefix`). The store reads these ranges; the API server and the
//! benchmarks build them.

/// The end of the range that holds every key starting with `prefix`: the
/// prefix with its last byte below 0xff incremented (bytes of 0xff at the end
/// are dropped first), or `"\0"` — every key from the prefix on — when every
/// byte is 0xff.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn the_prefix_end_is_the_prefix_with_its_last_byte_incremented() {
        assert_eq!(prefix_end(b"/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(
            prefix_end(b"\xff\xff"),
            vec![0],
            "no end: every key from the prefix on"
        );
    }
}
