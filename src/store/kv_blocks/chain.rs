//! The content address of a block and the byte encodings the database stores.

/// Length of every hash the KV cache uses (block hashes, fingerprints, checksums).
pub const HASH_LEN: usize = 32;

/// `blake3(parent || tokens as u32 little endian)`: the content address of a full block.
///
/// The in-memory prefix index uses this same function, so a hash found on disk is the hash the
/// engine computed for the same tokens after the same prefix.
pub fn chain_hash(parent: &[u8; HASH_LEN], tokens: &[u32]) -> [u8; HASH_LEN] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(parent);
    for token in tokens {
        hasher.update(&token.to_le_bytes());
    }
    *hasher.finalize().as_bytes()
}

/// The checksum stored beside a block's data.
pub(crate) fn checksum(data: &[u8]) -> [u8; HASH_LEN] {
    *blake3::hash(data).as_bytes()
}

/// Tokens as the `tokens` column stores them (u32 little endian).
pub(crate) fn encode_tokens(tokens: &[u32]) -> Vec<u8> {
    tokens.iter().flat_map(|t| t.to_le_bytes()).collect()
}

/// The `tokens` column back as token ids; `None` when its length is not a multiple of 4.
pub(crate) fn decode_tokens(bytes: &[u8]) -> Option<Vec<u32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_hash_is_blake3_of_parent_then_le_tokens() {
        let parent = [7u8; HASH_LEN];
        let mut bytes = parent.to_vec();
        bytes.extend_from_slice(&[1, 0, 0, 0, 0x78, 0x56, 0x34, 0x12]);
        assert_eq!(
            chain_hash(&parent, &[1, 0x1234_5678]),
            *blake3::hash(&bytes).as_bytes()
        );
        assert_ne!(chain_hash(&parent, &[1, 2]), chain_hash(&parent, &[2, 1]));
        assert_ne!(chain_hash(&parent, &[1]), chain_hash(&[8; HASH_LEN], &[1]));
    }

    #[test]
    fn tokens_round_trip_and_odd_lengths_are_refused() {
        let tokens = [0, 1, u32::MAX, 42];
        assert_eq!(decode_tokens(&encode_tokens(&tokens)).unwrap(), tokens);
        assert_eq!(decode_tokens(&[1, 2, 3]), None);
        assert_eq!(decode_tokens(&[]).unwrap(), Vec::<u32>::new());
    }
}
