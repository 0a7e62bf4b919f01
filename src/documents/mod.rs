//! Documents a person attaches to a conversation: reading a file's text ([`extract`]) and cutting
//! the text into overlapping chunks for retrieval ([`chunk`]).
//!
//! Files are untrusted: every bad one is an [`ExtractError`] naming the file and the problem,
//! never a panic or an allocation larger than [`MAX_FILE_BYTES`] (the size is checked from the
//! file's metadata before reading, and the read itself is bounded).
//!
//! Layer 2: uses only `store`'s [`ChunkSpec`] (so chunks go straight to
//! `Store::replace_chunks`).

mod chunk;
mod error;
mod extract;
#[cfg(feature = "pdf")]
mod pdf;
mod text;

pub use crate::store::ChunkSpec;
pub use chunk::{DEFAULT_OVERLAP_CHARS, DEFAULT_TARGET_CHARS, chunk};
pub use error::ExtractError;
pub use extract::{DocumentKind, ExtractedText, MAX_FILE_BYTES, extract};
