//! Revisions: the store's logical clock.
//!
//! Every write that changes something advances the store's revision by one; a txn
//! that changes several keys is still one revision, its changes told apart by a
//! sub-revision. A key's `create_revision`, `mod_revision` and a watch's
//! `start_revision` are all `main` parts of revisions.

use std::fmt;

/// One change to the key space: `main` is the store's revision, `sub` the change's
/// position within it (0 for the first key a txn touches, 1 for the next, …).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    /// The store-wide revision.
    pub main: i64,
    /// The change's position inside its revision.
    pub sub: i64,
}

impl Revision {
    /// A revision from its two parts.
    pub const fn new(main: i64, sub: i64) -> Self {
        Revision { main, sub }
    }

    /// 16 bytes, big-endian, so byte order is revision order.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.main.to_be_bytes());
        out[8..].copy_from_slice(&self.sub.to_be_bytes());
        out
    }

    /// The inverse of [`Revision::to_bytes`]; `None` for anything but 16 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let main = i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let sub = i64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
        (bytes.len() == 16).then_some(Revision { main, sub })
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.main, self.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_is_revision_order() {
        let revs = [
            Revision::new(1, 0),
            Revision::new(1, 1),
            Revision::new(2, 0),
            Revision::new(256, 3),
        ];
        for pair in revs.windows(2) {
            assert!(
                pair[0].to_bytes() < pair[1].to_bytes(),
                "{} !< {}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn bytes_round_trip_and_reject_wrong_lengths() {
        let rev = Revision::new(42, 7);
        assert_eq!(Revision::from_bytes(&rev.to_bytes()), Some(rev));
        assert_eq!(Revision::from_bytes(&[0; 15]), None);
        assert_eq!(Revision::from_bytes(&[0; 17]), None);
    }
}
