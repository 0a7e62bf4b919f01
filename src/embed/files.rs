//! Bounded file reads.

use std::io::Read;
use std::path::Path;

use super::EmbedError;

/// The whole file, refused when it is larger than `limit` bytes (checked before reading, and
/// the read itself stops at the limit).
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, EmbedError> {
    let io = |source| EmbedError::Io {
        path: path.into(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > limit {
        return Err(EmbedError::TooLarge {
            path: path.into(),
            size,
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(EmbedError::TooLarge {
            path: path.into(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}
