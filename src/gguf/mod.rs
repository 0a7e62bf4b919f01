//! GGUF v2/v3 reader (memory-mapped or owned bytes, validated at open) and writer.
//!
//! `GgufFile::open` checks the whole header up front: counts against the bytes present,
//! UTF-8 of keys and names, value and tensor types, tensor shapes, and that every tensor's
//! data lies aligned inside the file without overlapping another. After that, accessors
//! cannot fail on file data.

mod cursor;
mod error;
mod getters;
mod reader;
mod tensors;
mod value;
mod writer;

use std::collections::HashMap;
use std::fs::File;
use std::ops::Deref;
use std::path::Path;

pub use error::GgufError;
pub use reader::{DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH};
pub use tensors::{MAX_DIMS, TensorInfo};
pub use value::MetadataValue;
pub use writer::GgufWriter;

/// The file's bytes: a read-only memory map, or a buffer owned by us.
enum Source {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for Source {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Source::Mapped(m) => m,
            Source::Owned(v) => v,
        }
    }
}

/// A validated GGUF file.
pub struct GgufFile {
    source: Source,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, MetadataValue)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl GgufFile {
    /// Memory-maps and validates the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let io_err = |source| GgufError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        if len == 0 {
            // Nothing to map; let the parser report the truncation.
            return Self::from_source(Source::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only and we hand out only shared slices of it. As with every
        // mmap-based model loader (llama.cpp included), another process truncating or rewriting
        // the file while it is mapped is outside what we can guard against.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?;
        Self::from_source(Source::Mapped(map))
    }

    /// Validates a GGUF file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::from_source(Source::Owned(bytes))
    }

    fn from_source(source: Source) -> Result<GgufFile, GgufError> {
        let h = reader::parse(&source)?;
        Ok(GgufFile {
            source,
            version: h.version,
            alignment: h.alignment,
            data_offset: h.data_offset,
            metadata: h.metadata,
            key_index: h.key_index,
            tensors: h.tensors,
            tensor_index: h.tensor_index,
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute file offset of the tensor data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    pub fn file_size(&self) -> u64 {
        self.source.len() as u64
    }

    /// All key/value pairs in file order.
    pub fn metadata(&self) -> &[(String, MetadataValue)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.key_index
            .get(key)
            .and_then(|&i| self.metadata.get(i))
            .map(|(_, v)| v)
    }

    /// All tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index
            .get(name)
            .and_then(|&i| self.tensors.get(i))
    }

    /// The bytes of a tensor of this file (extents were validated at open). A `TensorInfo`
    /// that does not fit this file (e.g. one from another file) gets an empty slice.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let range = self
            .data_offset
            .checked_add(t.offset)
            .and_then(|start| Some(start..start.checked_add(t.n_bytes)?))
            .and_then(|r| Some(usize::try_from(r.start).ok()?..usize::try_from(r.end).ok()?));
        range.and_then(|r| self.source.get(r)).unwrap_or(&[])
    }
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("file_size", &self.file_size())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .field("n_metadata", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .finish()
    }
}
