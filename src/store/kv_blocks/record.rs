//! A block as one self-verifying byte string, for tiers that store values rather than rows
//! (Redis). It carries what a disk row's columns carry — hash, parent, fingerprint, tokens,
//! length, checksum, data — and is checked with the same rules and the same [`InvalidBlock`]
//! reasons, so a value from such a tier is trusted exactly as far as a row from disk.
//!
//! Layout (integers little endian):
//! `"HKV1"` · hash (32) · parent (32) · fingerprint (32) · checksum (32) · n_tokens (u32) ·
//! tokens (n_tokens × u32) · data_len (u64) · data.

use super::chain::{HASH_LEN, chain_hash, checksum, decode_tokens, encode_tokens};
use super::types::{BlockRecord, InvalidBlock};

const MAGIC: &[u8; 4] = b"HKV1";
/// Bytes before the tokens.
const HEAD: usize = MAGIC.len() + 4 * HASH_LEN + 4;

/// The value stored for `block` (its owners are not part of it).
pub fn encode_record(block: &BlockRecord) -> Vec<u8> {
    let tokens = encode_tokens(&block.tokens);
    let mut out = Vec::with_capacity(HEAD + tokens.len() + 8 + block.data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&block.hash);
    out.extend_from_slice(&block.parent);
    out.extend_from_slice(&block.fingerprint);
    out.extend_from_slice(&checksum(&block.data));
    out.extend_from_slice(&(block.tokens.len() as u32).to_le_bytes());
    out.extend_from_slice(&tokens);
    out.extend_from_slice(&(block.data.len() as u64).to_le_bytes());
    out.extend_from_slice(&block.data);
    out
}

/// The data of a stored value, when it is the block `hash` with these `tokens` under
/// `fingerprint`, whole (length), consistent (hash chain) and undamaged (checksum). The value is
/// untrusted: every length is checked against the bytes present before it is used.
pub fn verify_record(
    mut value: Vec<u8>,
    fingerprint: &[u8; HASH_LEN],
    hash: &[u8; HASH_LEN],
    tokens: &[u32],
) -> Result<Vec<u8>, InvalidBlock> {
    let decode = |what: &str| InvalidBlock::Decode(what.to_string());
    if value.len() < HEAD || &value[..4] != MAGIC {
        return Err(decode("not a Hearth KV record (bad header)"));
    }
    let field = |i: usize| -> [u8; HASH_LEN] {
        let at = MAGIC.len() + i * HASH_LEN;
        let mut h = [0; HASH_LEN];
        h.copy_from_slice(&value[at..at + HASH_LEN]);
        h
    };
    let (own_hash, parent, own_fingerprint, sum) = (field(0), field(1), field(2), field(3));
    let n_tokens = u32::from_le_bytes([
        value[HEAD - 4],
        value[HEAD - 3],
        value[HEAD - 2],
        value[HEAD - 1],
    ]) as usize;
    let tokens_end = n_tokens
        .checked_mul(4)
        .and_then(|n| n.checked_add(HEAD))
        .filter(|&end| end.checked_add(8).is_some_and(|e| e <= value.len()))
        .ok_or_else(|| decode("n_tokens runs past the value"))?;
    let stored_tokens =
        decode_tokens(&value[HEAD..tokens_end]).ok_or_else(|| decode("tokens are cut"))?;
    let mut len = [0u8; 8];
    len.copy_from_slice(&value[tokens_end..tokens_end + 8]);
    let expected = u64::from_le_bytes(len);
    let data_at = tokens_end + 8;
    let got = (value.len() - data_at) as u64;
    if got != expected {
        return Err(InvalidBlock::Truncated { expected, got });
    }
    if own_fingerprint != *fingerprint {
        return Err(InvalidBlock::Fingerprint);
    }
    if own_hash != *hash || stored_tokens != tokens || chain_hash(&parent, &stored_tokens) != *hash
    {
        return Err(InvalidBlock::Tokens);
    }
    if checksum(&value[data_at..]) != sum {
        return Err(InvalidBlock::Checksum);
    }
    value.drain(..data_at);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> BlockRecord {
        let parent = [3; HASH_LEN];
        BlockRecord {
            hash: chain_hash(&parent, &[10, 11, 12]),
            parent,
            fingerprint: [9; HASH_LEN],
            tokens: vec![10, 11, 12],
            data: (0..200u8).collect(),
            owners: vec!["request:1".into()],
        }
    }

    fn check(value: Vec<u8>) -> Result<Vec<u8>, InvalidBlock> {
        let b = block();
        verify_record(value, &b.fingerprint, &b.hash, &b.tokens)
    }

    #[test]
    fn a_record_round_trips() {
        let b = block();
        assert_eq!(check(encode_record(&b)).unwrap(), b.data);
    }

    #[test]
    fn every_kind_of_damage_is_named_never_a_panic() {
        let good = encode_record(&block());
        let data_at = good.len() - 200;
        let flip = |at: usize| {
            let mut v = good.clone();
            v[at] ^= 1;
            check(v)
        };
        assert_eq!(flip(good.len() - 1), Err(InvalidBlock::Checksum));
        assert_eq!(flip(4), Err(InvalidBlock::Tokens), "hash");
        assert_eq!(flip(4 + 32), Err(InvalidBlock::Tokens), "parent");
        assert_eq!(flip(4 + 64), Err(InvalidBlock::Fingerprint));
        assert_eq!(flip(4 + 96), Err(InvalidBlock::Checksum), "stored checksum");
        assert_eq!(flip(HEAD), Err(InvalidBlock::Tokens), "a token");
        assert!(matches!(flip(0), Err(InvalidBlock::Decode(_))), "magic");
        assert!(matches!(
            check(good[..data_at + 10].to_vec()),
            Err(InvalidBlock::Truncated {
                expected: 200,
                got: 10
            })
        ));
        // A token count far past the value, and every prefix of the value.
        let mut huge = good.clone();
        huge[HEAD - 1] = 0xff;
        assert!(matches!(check(huge), Err(InvalidBlock::Decode(_))));
        for n in 0..data_at {
            assert!(check(good[..n].to_vec()).is_err(), "prefix of {n} bytes");
        }
        // Another block's tokens or another model's fingerprint.
        let b = block();
        assert_eq!(
            verify_record(good.clone(), &[0; HASH_LEN], &b.hash, &b.tokens),
            Err(InvalidBlock::Fingerprint)
        );
        assert_eq!(
            verify_record(good, &b.fingerprint, &b.hash, &[10, 11, 13]),
            Err(InvalidBlock::Tokens)
        );
    }
}
