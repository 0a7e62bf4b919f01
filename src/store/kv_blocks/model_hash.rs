//! A model file's content hash, memoised in `model_fingerprints` by path + size + mtime, so a
//! multi-gigabyte file is read once, not at every start.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::KvBlockStore;
use super::chain::HASH_LEN;
use super::error::KvStoreError;
use super::types::Counters;
use super::writer::now_ms;

/// Files are hashed through a buffer of this size (bounded memory for any file size).
const READ_BUFFER_BYTES: usize = 1 << 20;

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileVersion {
    size: i64,
    mtime_ns: i64,
}

impl KvBlockStore {
    /// blake3 of the file's contents, remembered while its path, size and mtime stay the same
    /// (a memo miss reads the whole file, streamed; `stats().counters.model_files_hashed`
    /// counts those reads).
    pub fn model_hash(&self, path: &Path) -> Result<[u8; HASH_LEN], KvStoreError> {
        let model_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| KvStoreError::ModelFile { path, source }
        };
        let path = std::fs::canonicalize(path).map_err(model_err(path))?;
        let version = file_version(&std::fs::metadata(&path).map_err(model_err(&path))?);
        let key = path.to_string_lossy().into_owned();

        let memo: Option<(i64, i64, Vec<u8>)> = self
            .block_on(
                sqlx::query_as(
                    "SELECT size, mtime_ns, content_hash FROM model_fingerprints WHERE path = ?",
                )
                .bind(&key)
                .fetch_optional(&self.inner.pool),
            )
            .map_err(self.err("reading the model hash memo"))?;
        if let Some((size, mtime_ns, hash)) = memo
            && (FileVersion { size, mtime_ns }) == version
            && let Ok(hash) = <[u8; HASH_LEN]>::try_from(hash.as_slice())
        {
            return Ok(hash);
        }

        let hash = hash_file(&path).map_err(model_err(&path))?;
        Counters::add(&self.inner.shared.counters.model_files_hashed, 1);
        let after = file_version(&std::fs::metadata(&path).map_err(model_err(&path))?);
        if after != version {
            return Err(KvStoreError::ModelFileChanged {
                path: PathBuf::from(key),
            });
        }
        let query = sqlx::query(
            "INSERT INTO model_fingerprints (path, size, mtime_ns, content_hash, computed) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET size = excluded.size, \
             mtime_ns = excluded.mtime_ns, content_hash = excluded.content_hash, \
             computed = excluded.computed",
        )
        .bind(&key)
        .bind(version.size)
        .bind(version.mtime_ns)
        .bind(&hash[..])
        .bind(now_ms());
        self.block_on(query.execute(&self.inner.pool))
            .map_err(self.err("saving the model hash memo"))?;
        Ok(hash)
    }
}

fn file_version(meta: &Metadata) -> FileVersion {
    let clamp = |n: u128| i64::try_from(n).unwrap_or(i64::MAX);
    let mtime_ns = match meta.modified().map(|t| t.duration_since(UNIX_EPOCH)) {
        Ok(Ok(after)) => clamp(after.as_nanos()),
        Ok(Err(before)) => -clamp(before.duration().as_nanos()),
        // No mtime on this platform: the size alone keys the memo.
        Err(_) => 0,
    };
    FileVersion {
        size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
        mtime_ns,
    }
}

/// blake3 of the file at `path`, streamed in bounded pieces (no memo: see
/// [`KvBlockStore::model_hash`] for the remembered one).
pub fn hash_file(path: &Path) -> std::io::Result<[u8; HASH_LEN]> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; READ_BUFFER_BYTES];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(*hasher.finalize().as_bytes())
}
