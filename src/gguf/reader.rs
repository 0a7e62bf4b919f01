//! Parses and validates the GGUF header: magic, version, counts, metadata, then (via
//! `tensors`) the tensor infos and their extents. Everything is checked against the bytes
//! actually present before anything sized by the file is allocated.

use std::collections::HashMap;

use super::GgufError;
use super::cursor::Cursor;
use super::tensors::{self, TensorInfo};
use super::value::{MetadataValue, ValueType};

pub(crate) const MAGIC: &[u8; 4] = b"GGUF";
/// The alignment of the data section and of each tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
pub(crate) const ALIGNMENT_KEY: &str = "general.alignment";
/// How deeply arrays may nest (an array of arrays is 2 levels). GGUF files in the wild use 1.
pub const MAX_ARRAY_DEPTH: usize = 8;
/// Smallest possible key/value pair: empty key (u64 length), type (u32), one-byte value.
const KV_MIN_SIZE: u64 = 8 + 4 + 1;

/// Everything the header says, validated.
pub(crate) struct Header {
    pub version: u32,
    pub metadata: Vec<(String, MetadataValue)>,
    pub key_index: HashMap<String, usize>,
    pub tensors: Vec<TensorInfo>,
    pub tensor_index: HashMap<String, usize>,
    pub alignment: u64,
    pub data_offset: u64,
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Header, GgufError> {
    let mut c = Cursor::new(bytes);
    check_magic(bytes)?;
    c.take(4, || "magic".into())?;
    let version = read_version(&mut c)?;

    let tensor_count_offset = c.offset();
    let tensor_count = c.u64(|| "tensor count".into())?;
    let kv_count_offset = c.offset();
    let kv_count = c.u64(|| "metadata key/value count".into())?;
    // Each count is bounded by the bytes left just before the section it sizes, so a plain
    // truncation is reported where it happens rather than as an implausible count.
    let n_kv = c.check_count(kv_count, KV_MIN_SIZE, kv_count_offset, || {
        "metadata key/value count".into()
    })?;
    let (metadata, key_index) = read_metadata(&mut c, n_kv)?;
    let alignment = alignment_of(&metadata, &key_index)?;

    let n_tensors = c.check_count(
        tensor_count,
        tensors::TENSOR_INFO_MIN_SIZE,
        tensor_count_offset,
        || "tensor count".into(),
    )?;
    let (tensors, tensor_index) = tensors::read_tensor_infos(&mut c, n_tensors, alignment)?;

    let header_end = c.offset();
    let data_offset = header_end
        .div_ceil(alignment)
        .checked_mul(alignment)
        .ok_or_else(|| GgufError::BadAlignment {
            found: alignment.to_string(),
        })?;
    tensors::check_extents(&tensors, data_offset, bytes.len() as u64)?;

    Ok(Header {
        version,
        metadata,
        key_index,
        tensors,
        tensor_index,
        alignment,
        data_offset,
    })
}

fn check_magic(bytes: &[u8]) -> Result<(), GgufError> {
    let head = &bytes[..bytes.len().min(4)];
    if head != &MAGIC[..head.len()] {
        return Err(GgufError::BadMagic {
            found: head.to_vec(),
        });
    }
    Ok(())
}

fn read_version(c: &mut Cursor) -> Result<u32, GgufError> {
    let version = c.u32(|| "version".into())?;
    match version {
        2 | 3 => Ok(version),
        // A big-endian file reads as a huge little-endian number.
        v if matches!(v.swap_bytes(), 1..=3) => Err(GgufError::BigEndian {
            version: v.swap_bytes(),
        }),
        v => Err(GgufError::UnsupportedVersion { version: v }),
    }
}

type Metadata = (Vec<(String, MetadataValue)>, HashMap<String, usize>);

fn read_metadata(c: &mut Cursor, count: usize) -> Result<Metadata, GgufError> {
    let mut metadata = Vec::with_capacity(count);
    let mut index = HashMap::with_capacity(count);
    for i in 0..count {
        let key_offset = c.offset();
        let key = c.strict_string(|| format!("metadata key #{i}"))?.to_owned();
        if index.contains_key(&key) {
            return Err(GgufError::DuplicateKey {
                key,
                offset: key_offset,
            });
        }
        let ty = read_value_type(c, &key)?;
        let value = read_value(c, ty, &key, 0)?;
        index.insert(key.clone(), metadata.len());
        metadata.push((key, value));
    }
    Ok((metadata, index))
}

fn read_value_type(c: &mut Cursor, key: &str) -> Result<ValueType, GgufError> {
    let offset = c.offset();
    let type_id = c.u32(|| format!("value type of {key:?}"))?;
    ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
        key: key.to_owned(),
        type_id,
        offset,
    })
}

/// Reads one value of type `ty`; `depth` counts the arrays this value is inside.
fn read_value(
    c: &mut Cursor,
    ty: ValueType,
    key: &str,
    depth: usize,
) -> Result<MetadataValue, GgufError> {
    let what = || format!("value of {key:?}");
    Ok(match ty {
        ValueType::U8 => MetadataValue::U8(c.u8(what)?),
        ValueType::I8 => MetadataValue::I8(c.u8(what)? as i8),
        ValueType::U16 => MetadataValue::U16(c.u16(what)?),
        ValueType::I16 => MetadataValue::I16(c.u16(what)? as i16),
        ValueType::U32 => MetadataValue::U32(c.u32(what)?),
        ValueType::I32 => MetadataValue::I32(c.u32(what)? as i32),
        ValueType::U64 => MetadataValue::U64(c.u64(what)?),
        ValueType::I64 => MetadataValue::I64(c.u64(what)? as i64),
        ValueType::F32 => MetadataValue::F32(f32::from_bits(c.u32(what)?)),
        ValueType::F64 => MetadataValue::F64(f64::from_bits(c.u64(what)?)),
        // ggml reads a bool as one byte, nonzero meaning true.
        ValueType::Bool => MetadataValue::Bool(c.u8(what)? != 0),
        // llama.cpp tolerates invalid UTF-8 in string values (some vocabularies hold raw
        // bytes), so values are converted lossily; keys and tensor names must be valid.
        ValueType::String => {
            MetadataValue::String(String::from_utf8_lossy(c.string_bytes(what)?).into_owned())
        }
        ValueType::Array => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(GgufError::NestingTooDeep {
                    key: key.to_owned(),
                    max: MAX_ARRAY_DEPTH,
                    offset: c.offset(),
                });
            }
            let elem_ty = read_value_type(c, key)?;
            let count_offset = c.offset();
            let count = c.u64(|| format!("array length of {key:?}"))?;
            let n = c.check_count(count, elem_ty.min_encoded_size(), count_offset, || {
                format!("array length of {key:?}")
            })?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read_value(c, elem_ty, key, depth + 1)?);
            }
            MetadataValue::Array(items)
        }
    })
}

/// `general.alignment` when present (any integer type; ggml writes u32), else the default.
fn alignment_of(
    metadata: &[(String, MetadataValue)],
    index: &HashMap<String, usize>,
) -> Result<u64, GgufError> {
    let Some(value) = index
        .get(ALIGNMENT_KEY)
        .and_then(|&i| metadata.get(i))
        .map(|(_, v)| v)
    else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    validate_alignment(value)
}

pub(crate) fn validate_alignment(value: &MetadataValue) -> Result<u64, GgufError> {
    match value.as_u64() {
        Some(a) if a.is_power_of_two() && a <= u64::from(u32::MAX) => Ok(a),
        Some(a) => Err(GgufError::BadAlignment {
            found: a.to_string(),
        }),
        None => Err(GgufError::BadAlignment {
            found: match value.as_i64() {
                Some(v) => v.to_string(),
                None => format!("a value of type {}", value.type_name()),
            },
        }),
    }
}
