//! `RedisTierError`: why the Redis tier could not answer. The KV tiers treat every one of them
//! as "skip the tier" (a miss), never as a failed request.

#[derive(Debug, thiserror::Error)]
pub enum RedisTierError {
    /// The URL given with `--redis` does not parse.
    #[error("invalid Redis URL {url:?}: {source}")]
    Url {
        url: String,
        source: redis::RedisError,
    },

    /// Connecting, sending or reading failed (refused, timed out, dropped, an error reply).
    #[error("Redis at {addr}: {source}")]
    Io {
        addr: String,
        source: redis::RedisError,
    },

    /// A recent failure put the tier in back-off; it is not asked until the back-off ends.
    #[error("Redis at {addr} is skipped after a recent failure (retrying soon)")]
    Down { addr: String },

    #[error("could not start the Redis writer thread: {0}")]
    Start(std::io::Error),

    /// The writer thread is gone.
    #[error("the Redis writer has stopped")]
    WriterStopped,
}
