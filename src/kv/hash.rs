//! Content addresses of KV blocks. A full block i of a sequence is named by
//! `h_i = blake3(h_{i-1} || tokens of block i as u32 LE)`, and `h_0` is the model fingerprint:
//! so equal hashes mean equal tokens at equal positions under the same model and KV settings,
//! which is what makes a cached block's K/V reusable by any sequence with that prefix.

/// A block's content address (or the chain's root, `h_0`).
pub type BlockHash = [u8; 32];

/// Bump when the pool layout or the meaning of a block's bytes changes: every old hash (in
/// any tier) then stops matching, and old blocks are never read as new ones.
pub const KV_LAYOUT_VERSION: u32 = 1;

/// `blake3(parent || tokens as u32 LE)` (one function for every tier: the disk store checks
/// rows with it).
pub use crate::store::kv_blocks::chain_hash;

/// The hashes of the full blocks of `tokens` (a trailing partial block has none), chained
/// from `root`.
pub fn block_hashes(root: &BlockHash, tokens: &[u32], block_size: usize) -> Vec<BlockHash> {
    let mut parent = *root;
    tokens
        .chunks_exact(block_size.max(1))
        .map(|block| {
            parent = chain_hash(&parent, block);
            parent
        })
        .collect()
}

/// What makes two models' KV interchangeable: the model file's content and every setting
/// that changes the bytes of a block. Its [`ModelFingerprint::root`] is `h_0`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFingerprint {
    /// blake3 of the model file's bytes.
    pub file_hash: [u8; 32],
    /// "f16" or "f32".
    pub kv_type: &'static str,
    pub block_size: u32,
    pub rope_dims: u32,
    pub rope_freq_base: f32,
    pub rope_freq_scale: f32,
    /// 0 normal, 1 neox.
    pub rope_style: u8,
    pub layout_version: u32,
}

impl ModelFingerprint {
    /// `h_0`: a hash over every field (a versioned, fixed encoding).
    pub fn root(&self) -> BlockHash {
        let mut h = blake3::Hasher::new();
        h.update(b"hearth-kv-root/1");
        h.update(&self.file_hash);
        h.update(&(self.kv_type.len() as u32).to_le_bytes());
        h.update(self.kv_type.as_bytes());
        h.update(&self.block_size.to_le_bytes());
        h.update(&self.rope_dims.to_le_bytes());
        h.update(&self.rope_freq_base.to_le_bytes());
        h.update(&self.rope_freq_scale.to_le_bytes());
        h.update(&[self.rope_style]);
        h.update(&self.layout_version.to_le_bytes());
        *h.finalize().as_bytes()
    }
}

/// Lowercase hex of a hash, or of any bytes (logs, keys, the CLI).
pub fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp() -> ModelFingerprint {
        ModelFingerprint {
            file_hash: [7; 32],
            kv_type: "f16",
            block_size: 16,
            rope_dims: 64,
            rope_freq_base: 10000.0,
            rope_freq_scale: 1.0,
            rope_style: 0,
            layout_version: KV_LAYOUT_VERSION,
        }
    }

    #[test]
    fn chains_depend_on_every_earlier_token_and_the_root() {
        let root = fp().root();
        let a = block_hashes(&root, &[1, 2, 3, 4, 5, 6, 7, 8, 9], 4);
        assert_eq!(a.len(), 2, "the partial third block has no hash");
        let b = block_hashes(&root, &[1, 2, 3, 4, 5, 6, 7, 8], 4);
        assert_eq!(a, b);
        let c = block_hashes(&root, &[0, 2, 3, 4, 5, 6, 7, 8], 4);
        assert_ne!(a[0], c[0]);
        assert_ne!(a[1], c[1], "a change in block 0 changes every later hash");
        let other = ModelFingerprint {
            kv_type: "f32",
            ..fp()
        };
        assert_ne!(block_hashes(&other.root(), &[1, 2, 3, 4], 4)[0], a[0]);
        assert_eq!(a[1], chain_hash(&a[0], &[5, 6, 7, 8]));
    }

    #[test]
    fn every_fingerprint_field_changes_the_root() {
        let base = fp().root();
        let variants = [
            ModelFingerprint {
                file_hash: [8; 32],
                ..fp()
            },
            ModelFingerprint {
                block_size: 32,
                ..fp()
            },
            ModelFingerprint {
                rope_dims: 32,
                ..fp()
            },
            ModelFingerprint {
                rope_freq_base: 1e6,
                ..fp()
            },
            ModelFingerprint {
                rope_freq_scale: 0.5,
                ..fp()
            },
            ModelFingerprint {
                rope_style: 1,
                ..fp()
            },
            ModelFingerprint {
                layout_version: 2,
                ..fp()
            },
        ];
        for v in variants {
            assert_ne!(v.root(), base, "{v:?}");
        }
        assert_eq!(hex(&[0xab; 32]).len(), 64);
    }
}
