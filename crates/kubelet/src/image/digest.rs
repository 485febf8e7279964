//! Content digests and layer chain IDs.
//!
//! Every blob in an OCI image is named by its SHA-256 digest
//! (`sha256:<hex>`). An unpacked layer stack is named by its *chain ID*
//! (<https://github.com/opencontainers/image-spec/blob/main/config.md#layer-chainid>):
//! the first layer's chain ID is its diff ID (the digest of its uncompressed
//! tar), and each further one is the digest of `"<parent chain ID> <diff ID>"`.
//! containerd names committed snapshots by chain ID, so two images sharing
//! their lower layers share those snapshots.

use sha2::{Digest, Sha256};

/// The OCI digest of `bytes`: `sha256:` and the lowercase hex SHA-256.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The chain ID of each prefix of the layer stack, lowest layer first.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chain: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(parent) => sha256_digest(format!("{parent} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_of_nothing_is_sha256s_empty_hash() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn the_first_chain_id_is_the_first_diff_id() {
        let diff_ids = vec!["sha256:aaa".to_string()];
        assert_eq!(chain_ids(&diff_ids), diff_ids);
    }

    #[test]
    fn each_further_chain_id_hashes_the_parent_chain_id_and_the_diff_id() {
        let diff_ids = vec![
            "sha256:aaa".to_string(),
            "sha256:bbb".to_string(),
            "sha256:ccc".to_string(),
        ];
        let chain = chain_ids(&diff_ids);
        let second = sha256_digest(b"sha256:aaa sha256:bbb");
        assert_eq!(chain[1], second);
        assert_eq!(
            chain[2],
            sha256_digest(format!("{second} sha256:ccc").as_bytes())
        );
    }

    #[test]
    fn no_layers_have_no_chain() {
        assert!(chain_ids(&[]).is_empty());
    }
}
