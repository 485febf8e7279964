//! Record framing: how one record is laid out inside a segment file.
//!
//! ```text
//! +-----------+-----------+---------+-----------------------------+
//! | len (u32) | crc (u32) | type u8 | payload (len bytes)         |
//! +-----------+-----------+---------+-----------------------------+
//!   little-endian; crc = CRC32(len bytes ++ type ++ payload)
//!
//! type 1 entry     payload = index u64 | term u64 | data
//! type 2 state     payload = opaque bytes (raft HardState etc.)
//! type 3 truncate  payload = after u64 (drop entries with index > after)
//! ```
//!
//! The checksum covers the length too, so a flipped bit in the length is caught
//! as a checksum mismatch rather than sending the reader off to a wrong offset
//! that happens to look valid.

use std::fmt;

use super::Entry;

/// Bytes before the payload: length, checksum, type.
pub(crate) const HEADER_LEN: usize = 9;

/// The largest payload a record may carry. Far above any sane raft entry; a
/// length beyond it on disk is garbage, not a big record.
pub(crate) const MAX_PAYLOAD_LEN: usize = 1 << 30;

const TYPE_ENTRY: u8 = 1;
const TYPE_STATE: u8 = 2;
const TYPE_TRUNCATE: u8 = 3;

/// One record of the log, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// A log entry.
    Entry(Entry),
    /// An opaque state blob; on recovery the last one wins.
    State(Vec<u8>),
    /// Entries with index > `after` written earlier are dropped.
    Truncate {
        /// The last index that survives.
        after: u64,
    },
}

impl Record {
    /// The payload length this record encodes to.
    pub(crate) fn payload_len(&self) -> usize {
        match self {
            Record::Entry(entry) => 16 + entry.data.len(),
            Record::State(state) => state.len(),
            Record::Truncate { .. } => 8,
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Record::Entry(_) => TYPE_ENTRY,
            Record::State(_) => TYPE_STATE,
            Record::Truncate { .. } => TYPE_TRUNCATE,
        }
    }

    /// Appends the framed record to `out`. The caller has checked
    /// `payload_len() <= MAX_PAYLOAD_LEN`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let len = u32::try_from(self.payload_len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&[0; 4]); // checksum, filled in below
        out.push(self.kind());
        match self {
            Record::Entry(entry) => {
                out.extend_from_slice(&entry.index.to_le_bytes());
                out.extend_from_slice(&entry.term.to_le_bytes());
                out.extend_from_slice(&entry.data);
            }
            Record::State(state) => out.extend_from_slice(state),
            Record::Truncate { after } => out.extend_from_slice(&after.to_le_bytes()),
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&out[start..start + 4]);
        hasher.update(&out[start + 8..]);
        out[start + 4..start + 8].copy_from_slice(&hasher.finalize().to_le_bytes());
    }
}

/// Why the bytes at some offset are not a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The buffer ends before the record does.
    Incomplete,
    /// The length field is beyond [`MAX_PAYLOAD_LEN`].
    TooLarge(u32),
    /// The bytes do not match their checksum.
    Checksum,
    /// The checksum matches but the type byte is unknown.
    UnknownType(u8),
    /// The checksum matches but the payload is too short for its type.
    ShortPayload(u8),
}

impl DecodeError {
    /// True for errors that a crash mid-write can produce. A record whose
    /// checksum matches was written whole, so its content errors are not.
    pub(crate) fn may_be_torn(self) -> bool {
        matches!(
            self,
            DecodeError::Incomplete | DecodeError::TooLarge(_) | DecodeError::Checksum
        )
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Incomplete => write!(f, "record runs past the end of the file"),
            DecodeError::TooLarge(len) => write!(f, "record length {len} is implausibly large"),
            DecodeError::Checksum => write!(f, "checksum mismatch"),
            DecodeError::UnknownType(kind) => write!(f, "unknown record type {kind}"),
            DecodeError::ShortPayload(kind) => {
                write!(f, "payload too short for record type {kind}")
            }
        }
    }
}

/// Whether `kind` is a record type this version writes.
pub(crate) fn is_known_type(kind: u8) -> bool {
    matches!(kind, TYPE_ENTRY | TYPE_STATE | TYPE_TRUNCATE)
}

/// Decodes the record at the start of `buf`, returning it and its framed length.
pub(crate) fn decode(buf: &[u8]) -> Result<(Record, usize), DecodeError> {
    let header = buf
        .first_chunk::<HEADER_LEN>()
        .ok_or(DecodeError::Incomplete)?;
    let [l0, l1, l2, l3, c0, c1, c2, c3, kind] = *header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let payload_len = usize::try_from(len).unwrap_or(usize::MAX);
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(DecodeError::TooLarge(len));
    }
    let total = HEADER_LEN + payload_len;
    let payload = buf.get(HEADER_LEN..total).ok_or(DecodeError::Incomplete)?;

    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[l0, l1, l2, l3]);
    hasher.update(&[kind]);
    hasher.update(payload);
    if hasher.finalize() != u32::from_le_bytes([c0, c1, c2, c3]) {
        return Err(DecodeError::Checksum);
    }

    let record = match kind {
        TYPE_ENTRY => {
            let (index, rest) = split_u64(payload).ok_or(DecodeError::ShortPayload(kind))?;
            let (term, data) = split_u64(rest).ok_or(DecodeError::ShortPayload(kind))?;
            Record::Entry(Entry {
                index,
                term,
                data: data.to_vec(),
            })
        }
        TYPE_STATE => Record::State(payload.to_vec()),
        TYPE_TRUNCATE => {
            let (after, _) = split_u64(payload).ok_or(DecodeError::ShortPayload(kind))?;
            Record::Truncate { after }
        }
        other => return Err(DecodeError::UnknownType(other)),
    };
    Ok((record, total))
}

fn split_u64(buf: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = buf.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*head), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, data: &[u8]) -> Record {
        Record::Entry(Entry {
            index,
            term: 7,
            data: data.to_vec(),
        })
    }

    fn encoded(record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        record.encode(&mut out);
        out
    }

    #[test]
    fn every_record_type_round_trips() {
        for record in [
            entry(42, b"put /registry/pods/default/web"),
            entry(1, b""),
            Record::State(b"term=3 vote=2 commit=9".to_vec()),
            Record::State(Vec::new()),
            Record::Truncate { after: 17 },
        ] {
            let bytes = encoded(&record);
            assert_eq!(bytes.len(), HEADER_LEN + record.payload_len());
            assert_eq!(decode(&bytes), Ok((record, bytes.len())));
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_a_checksum_mismatch() {
        let bytes = encoded(&entry(5, b"abc"));
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            let err = decode(&damaged).expect_err("damaged record decoded");
            assert!(err.may_be_torn(), "byte {i}: {err}");
        }
    }

    #[test]
    fn a_cut_record_is_incomplete() {
        let bytes = encoded(&entry(5, b"abc"));
        for cut in 0..bytes.len() {
            assert_eq!(
                decode(&bytes[..cut]),
                Err(DecodeError::Incomplete),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn zeros_are_not_a_record() {
        assert_eq!(decode(&[0; 64]), Err(DecodeError::Checksum));
    }
}
