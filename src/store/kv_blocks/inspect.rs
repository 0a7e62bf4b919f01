//! What the store holds (`stats`) and a full check of every row (`verify_all`).

use sqlx::Row;

use super::row::{decode_row, row_identity, select_block_rows};
use super::types::{DiskStats, InvalidRow, MAX_LISTED_INVALID, Usage, VerifyAction, VerifyReport};
use super::{KvBlockStore, KvStoreError, VERIFY_ROWS_PER_QUERY};

impl KvBlockStore {
    /// Blocks and bytes in total, per fingerprint and per owner; the budget; this process's
    /// counters.
    pub fn stats(&self) -> Result<DiskStats, KvStoreError> {
        let pool = &self.inner.pool;
        // Served by the (fingerprint, byte_len) index: no table pages are read.
        // The casts keep a damaged row (a text fingerprint, a real byte_len) from failing the query.
        let per_fingerprint: Vec<(Option<Vec<u8>>, i64, i64)> = self
            .block_on(
                sqlx::query_as(
                    "SELECT CAST(fingerprint AS BLOB), COUNT(*), \
                     CAST(COALESCE(SUM(byte_len), 0) AS INTEGER) FROM blocks \
                     GROUP BY fingerprint ORDER BY fingerprint",
                )
                .fetch_all(pool),
            )
            .map_err(self.err("summing KV blocks per fingerprint"))?;
        let per_owner: Vec<(Option<String>, i64, i64)> = self
            .block_on(
                sqlx::query_as(
                    "SELECT CAST(o.owner AS TEXT), COUNT(*), \
                     CAST(COALESCE(SUM(b.byte_len), 0) AS INTEGER) \
                     FROM block_owners AS o JOIN blocks AS b ON b.hash = o.hash \
                     GROUP BY o.owner ORDER BY o.owner",
                )
                .fetch_all(pool),
            )
            .map_err(self.err("summing KV blocks per owner"))?;
        let per_fingerprint: Vec<Usage<Vec<u8>>> = per_fingerprint
            .into_iter()
            .map(|(key, blocks, bytes)| usage(key.unwrap_or_default(), blocks, bytes))
            .collect();
        let per_owner = per_owner
            .into_iter()
            .map(|(key, blocks, bytes)| usage(key.unwrap_or_default(), blocks, bytes))
            .collect();
        Ok(DiskStats {
            blocks: per_fingerprint.iter().map(|u| u.blocks).sum(),
            bytes: per_fingerprint.iter().map(|u| u.bytes).sum(),
            budget_bytes: self
                .inner
                .shared
                .budget_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
            file_bytes: std::fs::metadata(self.path()).map_or(0, |m| m.len()),
            per_fingerprint,
            per_owner,
            counters: self.inner.shared.counters.snapshot(),
        })
    }

    /// Checks every row's columns, length, hash chain (`hash == chain_hash(parent, tokens)`)
    /// and checksum, a few rows at a time; with [`VerifyAction::DeleteInvalid`] the failing
    /// rows are deleted. Blocks still queued are not seen (flush first).
    pub fn verify_all(&self, action: VerifyAction) -> Result<VerifyReport, KvStoreError> {
        let sql = select_block_rows!("WHERE rowid > ? ORDER BY rowid LIMIT ?");
        let mut report = VerifyReport::default();
        let mut after = i64::MIN;
        loop {
            let rows = self
                .block_on(
                    sqlx::query(sql)
                        .bind(after)
                        .bind(VERIFY_ROWS_PER_QUERY)
                        .fetch_all(&self.inner.pool),
                )
                .map_err(self.err("reading KV blocks to verify"))?;
            let Some(last) = rows.last() else { break };
            after = last
                .try_get("rowid")
                .map_err(self.err("reading a KV block's rowid"))?;
            for row in &rows {
                report.checked += 1;
                let Err(reason) = decode_row(row).and_then(|block| block.verify_checksum()) else {
                    report.valid += 1;
                    continue;
                };
                self.inner.shared.counters.count_invalid(&reason);
                report.invalid_count += 1;
                let (rowid, hash) = row_identity(row);
                if action == VerifyAction::DeleteInvalid {
                    let query = sqlx::query("DELETE FROM blocks WHERE rowid = ?").bind(rowid);
                    report.deleted += self
                        .block_on(query.execute(&self.inner.pool))
                        .map_err(self.err("deleting an invalid KV block"))?
                        .rows_affected();
                }
                if report.invalid.len() < MAX_LISTED_INVALID {
                    report.invalid.push(InvalidRow {
                        rowid,
                        hash,
                        reason,
                    });
                }
            }
        }
        Ok(report)
    }
}

fn usage<K>(key: K, blocks: i64, bytes: i64) -> Usage<K> {
    Usage {
        key,
        blocks: u64::try_from(blocks).unwrap_or(0),
        bytes: u64::try_from(bytes).unwrap_or(0),
    }
}
