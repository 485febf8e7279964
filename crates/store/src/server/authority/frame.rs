//! HTTP/2 framing, as much as the authority rewrite needs (RFC 9113 §4 and §6).
//!
//! Every frame starts with a 9-byte header: a 24-bit payload length, a type,
//! flags and a 31-bit stream ID. Only HEADERS and CONTINUATION frames are ever
//! looked into; their header block fragments are joined and handed to HPACK.

use super::RewriteError;

/// What an HTTP/2 client sends first (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length of a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 9;

/// The largest frame payload every HTTP/2 peer must accept
/// (SETTINGS_MAX_FRAME_SIZE's initial value); rewritten header blocks are cut
/// into frames of at most this size, whatever the server advertised.
pub(crate) const DEFAULT_MAX_FRAME_SIZE: usize = 16_384;

/// Frame types (RFC 9113 §6).
pub(crate) mod kind {
    /// DATA.
    #[cfg(test)]
    pub(crate) const DATA: u8 = 0x0;
    /// HEADERS: opens a stream (or carries trailers) with a header block fragment.
    pub(crate) const HEADERS: u8 = 0x1;
    /// RST_STREAM.
    #[cfg(test)]
    pub(crate) const RST_STREAM: u8 = 0x3;
    /// SETTINGS.
    #[cfg(test)]
    pub(crate) const SETTINGS: u8 = 0x4;
    /// CONTINUATION: the rest of a header block too large for one frame.
    pub(crate) const CONTINUATION: u8 = 0x9;
}

/// Frame flags (RFC 9113 §6.2).
pub(crate) mod flags {
    /// END_STREAM on HEADERS and DATA.
    pub(crate) const END_STREAM: u8 = 0x1;
    /// ACK on SETTINGS and PING.
    #[cfg(test)]
    pub(crate) const ACK: u8 = 0x1;
    /// END_HEADERS on HEADERS and CONTINUATION: the header block is complete.
    pub(crate) const END_HEADERS: u8 = 0x4;
    /// PADDED: a pad length byte leads the payload, padding ends it.
    pub(crate) const PADDED: u8 = 0x8;
    /// PRIORITY on HEADERS: a stream dependency and weight lead the fragment.
    pub(crate) const PRIORITY: u8 = 0x20;
}

/// The 9-byte header of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// Payload length in bytes.
    pub(crate) length: usize,
    /// Frame type, one of [`kind`].
    pub(crate) kind: u8,
    /// Flags, from [`flags`].
    pub(crate) flags: u8,
    /// Stream ID (the reserved high bit is dropped).
    pub(crate) stream_id: u32,
}

impl FrameHeader {
    /// Reads a frame header from the first [`FRAME_HEADER_LEN`] bytes of `bytes`,
    /// or `None` when fewer have arrived.
    pub(crate) fn parse(bytes: &[u8]) -> Option<FrameHeader> {
        let b = bytes.get(..FRAME_HEADER_LEN)?;
        Some(FrameHeader {
            length: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream_id: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    /// Appends the header's 9 bytes to `out`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        assert!(
            self.length < 1 << 24,
            "frame payload too long: {}",
            self.length
        );
        let length = (self.length as u32).to_be_bytes();
        out.extend_from_slice(&length[1..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&self.stream_id.to_be_bytes());
    }
}

/// The header block fragment of a HEADERS frame's payload: without the pad
/// length, stream dependency and weight in front, and without the padding
/// behind (RFC 9113 §6.2).
pub(crate) fn headers_fragment<'a>(
    header: &FrameHeader,
    payload: &'a [u8],
) -> Result<&'a [u8], RewriteError> {
    let mut rest = payload;
    let mut padding = 0;
    if header.flags & flags::PADDED != 0 {
        let (&pad, after) = rest.split_first().ok_or(RewriteError::MalformedHeaders {
            stream_id: header.stream_id,
            reason: "PADDED without a pad length",
        })?;
        padding = usize::from(pad);
        rest = after;
    }
    if header.flags & flags::PRIORITY != 0 {
        rest = rest.get(5..).ok_or(RewriteError::MalformedHeaders {
            stream_id: header.stream_id,
            reason: "PRIORITY without a stream dependency and weight",
        })?;
    }
    if padding > rest.len() {
        return Err(RewriteError::MalformedHeaders {
            stream_id: header.stream_id,
            reason: "padding longer than the payload",
        });
    }
    Ok(&rest[..rest.len() - padding])
}

/// Appends `block` as one HEADERS frame followed by as many CONTINUATION
/// frames as it takes, none longer than [`DEFAULT_MAX_FRAME_SIZE`]; the last
/// carries END_HEADERS. No padding, no priority.
pub(crate) fn write_header_block(
    stream_id: u32,
    end_stream: bool,
    block: &[u8],
    out: &mut Vec<u8>,
) {
    let mut chunks = block.chunks(DEFAULT_MAX_FRAME_SIZE).peekable();
    let mut first = true;
    // An empty block still needs its HEADERS frame.
    let empty: &[u8] = &[];
    if chunks.peek().is_none() {
        return write_frame(stream_id, end_stream, true, true, empty, out);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        write_frame(stream_id, end_stream, first, last, chunk, out);
        first = false;
    }
}

fn write_frame(
    stream_id: u32,
    end_stream: bool,
    first: bool,
    last: bool,
    chunk: &[u8],
    out: &mut Vec<u8>,
) {
    let mut frame_flags = if last { flags::END_HEADERS } else { 0 };
    if first && end_stream {
        frame_flags |= flags::END_STREAM;
    }
    FrameHeader {
        length: chunk.len(),
        kind: if first {
            kind::HEADERS
        } else {
            kind::CONTINUATION
        },
        flags: frame_flags,
        stream_id,
    }
    .write(out);
    out.extend_from_slice(chunk);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_round_trip() {
        let header = FrameHeader {
            length: 70_000,
            kind: kind::HEADERS,
            flags: flags::END_HEADERS | flags::END_STREAM,
            stream_id: 0x7fff_fffd,
        };
        let mut bytes = Vec::new();
        header.write(&mut bytes);
        assert_eq!(bytes.len(), FRAME_HEADER_LEN);
        assert_eq!(FrameHeader::parse(&bytes), Some(header));
        assert_eq!(FrameHeader::parse(&bytes[..8]), None);
    }

    #[test]
    fn the_reserved_stream_id_bit_is_ignored() {
        let bytes = [0, 0, 0, kind::DATA, 0, 0x80, 0, 0, 3];
        assert_eq!(FrameHeader::parse(&bytes).map(|h| h.stream_id), Some(3));
    }

    #[test]
    fn padding_and_priority_are_cut_from_the_fragment() {
        let header = FrameHeader {
            length: 0,
            kind: kind::HEADERS,
            flags: flags::PADDED | flags::PRIORITY,
            stream_id: 1,
        };
        // pad length 2, dependency + weight, fragment "abc", two bytes of padding.
        let payload = [2, 0, 0, 0, 0, 16, b'a', b'b', b'c', 0, 0];
        assert_eq!(headers_fragment(&header, &payload).unwrap(), b"abc");
        let plain = FrameHeader { flags: 0, ..header };
        assert_eq!(headers_fragment(&plain, b"abc").unwrap(), b"abc");
    }

    #[test]
    fn padding_longer_than_the_payload_is_malformed() {
        let header = FrameHeader {
            length: 0,
            kind: kind::HEADERS,
            flags: flags::PADDED,
            stream_id: 5,
        };
        let err = headers_fragment(&header, &[9, b'a']).unwrap_err();
        assert!(err.to_string().contains("padding longer"), "{err}");
        assert!(headers_fragment(&header, &[]).is_err());
        let priority = FrameHeader {
            flags: flags::PRIORITY,
            ..header
        };
        assert!(headers_fragment(&priority, &[0, 0, 0]).is_err());
    }

    #[test]
    fn long_header_blocks_are_cut_into_continuations() {
        let block = vec![7u8; DEFAULT_MAX_FRAME_SIZE * 2 + 10];
        let mut out = Vec::new();
        write_header_block(3, true, &block, &mut out);
        let mut frames = Vec::new();
        let mut rest = &out[..];
        while let Some(header) = FrameHeader::parse(rest) {
            frames.push(header);
            rest = &rest[FRAME_HEADER_LEN + header.length..];
        }
        let seen: Vec<(u8, u8, usize)> =
            frames.iter().map(|f| (f.kind, f.flags, f.length)).collect();
        assert_eq!(
            seen,
            vec![
                (kind::HEADERS, flags::END_STREAM, DEFAULT_MAX_FRAME_SIZE),
                (kind::CONTINUATION, 0, DEFAULT_MAX_FRAME_SIZE),
                (kind::CONTINUATION, flags::END_HEADERS, 10),
            ]
        );
        assert!(frames.iter().all(|f| f.stream_id == 3));

        let mut out = Vec::new();
        write_header_block(5, false, &[], &mut out);
        assert_eq!(
            out,
            [0, 0, 0, kind::HEADERS, flags::END_HEADERS, 0, 0, 0, 5]
        );
    }
}
