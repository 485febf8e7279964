//! The HPACK side of the rewrite (RFC 7541): decoding is `loona_hpack`'s,
//! which keeps the client's dynamic table; encoding is written here because
//! only one representation is ever produced, "literal header field without
//! indexing — new name" (RFC 7541 §6.2.2), which leaves the server's dynamic
//! table untouched.

/// The first byte of a literal header field without indexing, new name.
const LITERAL_WITHOUT_INDEXING: u8 = 0x00;

/// Appends `name: value` as a literal without indexing, both strings raw (not
/// Huffman-coded).
pub(crate) fn encode_literal(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.push(LITERAL_WITHOUT_INDEXING);
    encode_string(name, out);
    encode_string(value, out);
}

/// A string literal with H = 0 and its length as a 7-bit-prefix integer (§5.2).
fn encode_string(bytes: &[u8], out: &mut Vec<u8>) {
    encode_integer(bytes.len(), 7, 0, out);
    out.extend_from_slice(bytes);
}

/// An integer with an N-bit prefix (§5.1); `first` carries the bits above the prefix.
pub(crate) fn encode_integer(mut value: usize, prefix_bits: u8, first: u8, out: &mut Vec<u8>) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max_prefix as u8);
    value -= max_prefix;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// The `host[:port]` of an `:authority` that carries a scheme
/// (`http://127.0.0.1:2379/` → `127.0.0.1:2379`), or `None` for one that does not.
pub(crate) fn authority_without_scheme(value: &[u8]) -> Option<&[u8]> {
    let start = value.windows(3).position(|w| w == b"://")? + 3;
    let rest = &value[start..];
    let end = rest
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_rfc_7541_appendix_c1() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix;
        // C.1.3: 42 starting at an octet boundary.
        let mut out = Vec::new();
        encode_integer(10, 5, 0, &mut out);
        assert_eq!(out, [0x0a]);
        out.clear();
        encode_integer(1337, 5, 0, &mut out);
        assert_eq!(out, [0x1f, 0x9a, 0x0a]);
        out.clear();
        encode_integer(42, 8, 0, &mut out);
        assert_eq!(out, [0x2a]);
    }

    #[test]
    fn literals_decode_to_what_was_encoded() {
        let mut block = Vec::new();
        encode_literal(b":authority", b"127.0.0.1:2379", &mut block);
        let long = vec![b'x'; 300];
        encode_literal(b"x-long", &long, &mut block);
        let headers = loona_hpack::Decoder::new().decode(&block).unwrap();
        assert_eq!(
            headers,
            vec![
                (b":authority".to_vec(), b"127.0.0.1:2379".to_vec()),
                (b"x-long".to_vec(), long),
            ]
        );
    }

    #[test]
    fn the_scheme_and_path_are_cut_from_an_authority() {
        let cut = |v: &str| {
            authority_without_scheme(v.as_bytes()).map(|a| String::from_utf8_lossy(a).into_owned())
        };
        assert_eq!(
            cut("http://127.0.0.1:2379").as_deref(),
            Some("127.0.0.1:2379")
        );
        assert_eq!(
            cut("https://[::1]:2379/v3?x#y").as_deref(),
            Some("[::1]:2379")
        );
        assert_eq!(cut("127.0.0.1:2379"), None);
        assert_eq!(cut("localhost"), None);
    }
}
