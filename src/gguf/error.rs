//! The one error type of the GGUF reader and writer. Reader variants name the field at fault
//! and its absolute byte offset in the file, so a bad file can be diagnosed from the message.

use std::path::PathBuf;

use thiserror::Error;

use crate::quant::GgmlType;

#[derive(Debug, Error)]
pub enum GgufError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing GGUF: {0}")]
    Write(#[source] std::io::Error),

    // ---- header ----
    #[error("not a GGUF file: magic {found:02x?} at offset 0, expected \"GGUF\"")]
    BadMagic { found: Vec<u8> },
    #[error("unsupported GGUF version {version} at offset 4 (supported: 2 and 3)")]
    UnsupportedVersion { version: u32 },
    #[error("big-endian GGUF (version {version} byte-swapped at offset 4) is not supported")]
    BigEndian { version: u32 },

    // ---- structure ----
    #[error(
        "truncated file: {what} at offset {offset} needs {needed} bytes, only {available} left"
    )]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        available: u64,
    },
    #[error(
        "{what} {count} at offset {offset} is more than the {available} bytes left in the file could hold"
    )]
    CountTooLarge {
        what: String,
        count: u64,
        offset: u64,
        available: u64,
    },
    #[error("{what} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { what: String, offset: u64 },

    // ---- metadata ----
    #[error("metadata key {key:?}: unknown value type {type_id} at offset {offset}")]
    UnknownValueType {
        key: String,
        type_id: u32,
        offset: u64,
    },
    #[error("metadata key {key:?}: arrays nested deeper than {max} levels at offset {offset}")]
    NestingTooDeep {
        key: String,
        max: usize,
        offset: u64,
    },
    #[error("duplicate metadata key {key:?} at offset {offset}")]
    DuplicateKey { key: String, offset: u64 },
    #[error("general.alignment must be a nonzero power of two that fits u32, found {found}")]
    BadAlignment { found: String },

    // ---- tensor infos ----
    #[error("tensor {name:?}: {n_dims} dimensions at offset {offset} (must be 1 to 4)")]
    BadDimCount {
        name: String,
        n_dims: u32,
        offset: u64,
    },
    #[error(
        "tensor {name:?}: dimensions {dims:?} at offset {offset} overflow the element or byte count"
    )]
    DimOverflow {
        name: String,
        dims: Vec<u64>,
        offset: u64,
    },
    #[error("tensor {name:?}: unknown ggml type id {type_id} at offset {offset}")]
    UnknownTensorType {
        name: String,
        type_id: u32,
        offset: u64,
    },
    #[error(
        "tensor {name:?}: row length {row_len} is not a multiple of {ty}'s block size {block_elems} (tensor info at offset {offset})"
    )]
    PartialBlock {
        name: String,
        ty: GgmlType,
        row_len: u64,
        block_elems: usize,
        offset: u64,
    },
    #[error("duplicate tensor name {name:?} at offset {offset}")]
    DuplicateTensor { name: String, offset: u64 },
    #[error(
        "tensor {name:?}: data offset {data_offset} (field at offset {offset}) is not a multiple of the alignment {alignment}"
    )]
    MisalignedTensor {
        name: String,
        data_offset: u64,
        alignment: u64,
        offset: u64,
    },
    #[error(
        "tensor {name:?}: data [{data_offset}, +{n_bytes}) lies outside the {data_len}-byte data section starting at file offset {data_start}"
    )]
    TensorOutOfBounds {
        name: String,
        data_offset: u64,
        n_bytes: u64,
        data_len: u64,
        data_start: u64,
    },
    #[error(
        "tensors {name:?} and {other:?} overlap in the data section (at relative offset {data_offset})"
    )]
    TensorOverlap {
        name: String,
        other: String,
        data_offset: u64,
    },

    // ---- typed getters ----
    #[error("metadata key {key:?} is missing")]
    MissingKey { key: String },
    #[error("metadata key {key:?} has type {found}, expected {expected}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("metadata key {key:?}: value {value} does not fit {expected}")]
    ValueOutOfRange {
        key: String,
        expected: &'static str,
        value: String,
    },

    // ---- writer ----
    #[error("cannot write tensor {name:?}: {reason}")]
    InvalidTensor { name: String, reason: String },
    #[error("cannot write metadata key {key:?}: {reason}")]
    InvalidMetadata { key: String, reason: String },
}
