//! Reading a `blocks` row as untrusted input: every column is decoded and cross-checked, and a
//! row that fails becomes an [`InvalidBlock`] reason, never a panic or wrong data.

use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{Decode, Row, Type};

use super::chain::{HASH_LEN, chain_hash, checksum, decode_tokens};
use super::types::InvalidBlock;

/// `SELECT <the columns decode_row reads> FROM blocks` followed by the given SQL text.
macro_rules! select_block_rows {
    ($rest:literal) => {
        concat!(
            "SELECT rowid, hash, parent, fingerprint, n_tokens, tokens, byte_len, checksum, data \
             FROM blocks ",
            $rest
        )
    };
}
pub(crate) use select_block_rows;

/// A row whose columns decode and agree with each other (the checksum is checked separately,
/// last, because it is the one expensive check).
#[derive(Debug)]
pub(crate) struct StoredBlock {
    pub fingerprint: [u8; HASH_LEN],
    pub tokens: Vec<u32>,
    pub checksum: [u8; HASH_LEN],
    pub data: Vec<u8>,
}

impl StoredBlock {
    /// Checks `blake3(data)` against the stored checksum.
    pub fn verify_checksum(&self) -> Result<(), InvalidBlock> {
        if checksum(&self.data) == self.checksum {
            Ok(())
        } else {
            Err(InvalidBlock::Checksum)
        }
    }
}

/// The rowid and the raw hash, for reporting a row that may not decode.
pub(crate) fn row_identity(row: &SqliteRow) -> (i64, Vec<u8>) {
    let rowid = row.try_get::<i64, _>("rowid").unwrap_or(-1);
    let hash = row
        .try_get::<Option<Vec<u8>>, _>("hash")
        .ok()
        .flatten()
        .unwrap_or_default();
    (rowid, hash)
}

/// Decodes a row selected with [`select_block_rows`] and checks lengths and the hash chain.
pub(crate) fn decode_row(row: &SqliteRow) -> Result<StoredBlock, InvalidBlock> {
    let hash = hash_column(row, "hash")?;
    let parent = hash_column(row, "parent")?;
    let fingerprint = hash_column(row, "fingerprint")?;
    let checksum = hash_column(row, "checksum")?;
    let n_tokens: i64 = column(row, "n_tokens")?;
    let token_bytes: Vec<u8> = column::<Option<Vec<u8>>>(row, "tokens")?
        .ok_or_else(|| InvalidBlock::Decode("tokens is NULL".into()))?;
    let tokens = decode_tokens(&token_bytes).ok_or_else(|| {
        InvalidBlock::Decode(format!(
            "tokens is {} bytes, not a multiple of 4",
            token_bytes.len()
        ))
    })?;
    if i64::try_from(tokens.len()).ok() != Some(n_tokens) {
        return Err(InvalidBlock::Decode(format!(
            "n_tokens is {n_tokens} but tokens holds {}",
            tokens.len()
        )));
    }
    let byte_len: i64 = column(row, "byte_len")?;
    let expected = u64::try_from(byte_len)
        .map_err(|_| InvalidBlock::Decode(format!("byte_len is negative ({byte_len})")))?;
    let data: Vec<u8> = column::<Option<Vec<u8>>>(row, "data")?
        .ok_or_else(|| InvalidBlock::Decode("data is NULL".into()))?;
    let got = data.len() as u64;
    if got != expected {
        return Err(InvalidBlock::Truncated { expected, got });
    }
    if chain_hash(&parent, &tokens) != hash {
        return Err(InvalidBlock::Tokens);
    }
    Ok(StoredBlock {
        fingerprint,
        tokens,
        checksum,
        data,
    })
}

fn column<'r, T: Decode<'r, Sqlite> + Type<Sqlite>>(
    row: &'r SqliteRow,
    name: &str,
) -> Result<T, InvalidBlock> {
    row.try_get(name)
        .map_err(|e| InvalidBlock::Decode(format!("column {name}: {e}")))
}

fn hash_column(row: &SqliteRow, name: &str) -> Result<[u8; HASH_LEN], InvalidBlock> {
    let bytes = column::<Option<Vec<u8>>>(row, name)?
        .ok_or_else(|| InvalidBlock::Decode(format!("{name} is NULL")))?;
    <[u8; HASH_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
        InvalidBlock::Decode(format!(
            "{name} is {} bytes, expected {HASH_LEN}",
            bytes.len()
        ))
    })
}
