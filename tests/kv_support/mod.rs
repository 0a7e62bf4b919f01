//! Helpers shared by the KV block store tests (`kv_blocks.rs`, `kv_blocks_processes.rs`):
//! block chains, a store opener, and a raw SQLite connection for tampering with rows.
#![allow(dead_code)]

use std::path::Path;

use hearth::store::kv_blocks::{
    BlockRecord, Enqueued, Fetched, HASH_LEN, KvBlockStore, KvStoreOptions, chain_hash,
};
use sqlx::{Connection, SqliteConnection};

pub type Hash = [u8; HASH_LEN];

pub fn fingerprint(n: u8) -> Hash {
    [n; HASH_LEN]
}

/// Block payload: deterministic bytes that differ per block.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A chain of `n` full blocks of 16 tokens under `fp`, starting from `h_0 = fp` (`salt` makes
/// chains of the same fingerprint differ).
pub fn chain(fp: Hash, salt: u32, n: usize, data_len: usize, owners: &[&str]) -> Vec<BlockRecord> {
    let mut parent = fp;
    (0..n)
        .map(|i| {
            let tokens: Vec<u32> = (0..16)
                .map(|t| salt * 100_000 + (i * 16 + t) as u32)
                .collect();
            let hash = chain_hash(&parent, &tokens);
            let block = BlockRecord {
                hash,
                parent,
                fingerprint: fp,
                data: payload(u64::from(salt) << 32 | i as u64, data_len),
                tokens,
                owners: owners.iter().map(|o| o.to_string()).collect(),
            };
            parent = hash;
            block
        })
        .collect()
}

pub fn opts(budget_bytes: u64, queue_capacity: usize) -> KvStoreOptions {
    KvStoreOptions {
        budget_bytes,
        queue_capacity,
        ..KvStoreOptions::default()
    }
}

pub fn open(path: &Path) -> KvBlockStore {
    KvBlockStore::open(path, opts(u64::MAX, 1024)).unwrap()
}

pub fn put_all(store: &KvBlockStore, blocks: &[BlockRecord]) {
    for b in blocks {
        assert_eq!(store.put(b.clone()).unwrap(), Enqueued::Queued);
    }
    store.flush().unwrap();
}

pub fn get(store: &KvBlockStore, b: &BlockRecord) -> Fetched {
    store.get(&b.fingerprint, &b.hash, &b.tokens).unwrap()
}

pub fn assert_hit(store: &KvBlockStore, b: &BlockRecord) {
    assert_eq!(get(store, b), Fetched::Hit(b.data.clone()));
}

pub fn hashes(blocks: &[BlockRecord]) -> Vec<Hash> {
    blocks.iter().map(|b| b.hash).collect()
}

/// A plain SQLite connection for tampering with rows behind the store's back.
pub struct Raw {
    pub rt: tokio::runtime::Runtime,
    pub conn: SqliteConnection,
}

impl Raw {
    pub fn open(path: &Path) -> Raw {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
        let conn = rt
            .block_on(SqliteConnection::connect_with(&options))
            .unwrap();
        Raw { rt, conn }
    }

    pub fn exec(&mut self, sql: &str) -> u64 {
        let query = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
        let result = self.rt.block_on(query.execute(&mut self.conn)).unwrap();
        result.rows_affected()
    }

    /// Sets `column` of block `hash` to `value`.
    pub fn set_blob(&mut self, hash: &Hash, column: &str, value: &[u8]) {
        let sql = format!("UPDATE blocks SET {column} = ? WHERE hash = ?");
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(&hash[..]);
        let n = self.rt.block_on(query.execute(&mut self.conn)).unwrap();
        assert_eq!(n.rows_affected(), 1);
    }

    pub fn data(&mut self, hash: &Hash) -> Vec<u8> {
        let query = sqlx::query_scalar("SELECT data FROM blocks WHERE hash = ?").bind(&hash[..]);
        self.rt.block_on(query.fetch_one(&mut self.conn)).unwrap()
    }

    pub fn scalar(&mut self, sql: &str) -> String {
        let query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()));
        self.rt.block_on(query.fetch_one(&mut self.conn)).unwrap()
    }

    /// A new file with the store's pragmas and the given page size.
    pub fn open_new(path: &Path, page_size: u32) -> Raw {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .page_size(page_size)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let conn = rt
            .block_on(SqliteConnection::connect_with(&options))
            .unwrap();
        Raw { rt, conn }
    }
}
