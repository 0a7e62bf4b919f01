//! Writes GGUF v3 (or v2) files in the layout llama.cpp and gguf-py produce: header, metadata,
//! tensor infos, zero padding to the alignment, then each tensor's data followed by zero
//! padding to the alignment (no padding at all when there are no tensors).

use std::io::Write;
use std::path::Path;

use super::GgufError;
use super::reader::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC, MAX_ARRAY_DEPTH, validate_alignment};
use super::tensors::MAX_DIMS;
use super::value::{MetadataValue, ValueType};
use crate::quant::GgmlType;

struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    data: Vec<u8>,
}

/// Collects metadata and tensors, then writes them as one GGUF file.
pub struct GgufWriter {
    version: u32,
    metadata: Vec<(String, MetadataValue)>,
    tensors: Vec<PendingTensor>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// Version 3; alignment 32 unless `general.alignment` is added.
    pub fn new() -> Self {
        Self {
            version: 3,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// 2 or 3 (they share the little-endian encoding); others are refused at write time.
    pub fn set_version(&mut self, v: u32) {
        self.version = v;
    }

    /// Adds a key, or replaces the value of a key added before (keeping its position).
    pub fn add_metadata(&mut self, key: impl Into<String>, value: MetadataValue) {
        let key = key.into();
        match self.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.metadata.push((key, value)),
        }
    }

    /// Adds a tensor; `dims` in ggml order, `data` exactly `ty.bytes_for(product of dims)` bytes.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ty: GgmlType,
        data: Vec<u8>,
    ) -> Result<(), GgufError> {
        let name = name.into();
        let invalid = |reason: String| GgufError::InvalidTensor {
            name: name.clone(),
            reason,
        };
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(invalid("a tensor with this name was already added".into()));
        }
        if dims.is_empty() || dims.len() > MAX_DIMS {
            return Err(invalid(format!(
                "{} dimensions (must be 1 to {MAX_DIMS})",
                dims.len()
            )));
        }
        let n_elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64 && dims.iter().all(|&d| d <= i64::MAX as u64))
            .ok_or_else(|| invalid(format!("dimensions {dims:?} overflow")))?;
        if !dims[0].is_multiple_of(ty.block_elems() as u64) {
            return Err(invalid(format!(
                "row length {} is not a multiple of {ty}'s block size {}",
                dims[0],
                ty.block_elems()
            )));
        }
        let expected = ty
            .bytes_for(n_elements)
            .ok_or_else(|| invalid(format!("dimensions {dims:?} overflow")))?;
        if data.len() as u64 != expected {
            return Err(invalid(format!(
                "{} data bytes, {ty} × {dims:?} needs {expected}",
                data.len()
            )));
        }
        self.tensors.push(PendingTensor {
            name,
            dims: dims.to_vec(),
            ty,
            data,
        });
        Ok(())
    }

    fn alignment(&self) -> Result<u64, GgufError> {
        match self.metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY) {
            Some((_, v)) => validate_alignment(v),
            None => Ok(DEFAULT_ALIGNMENT),
        }
    }

    /// Header, metadata and tensor infos (unpadded).
    fn header(&self, alignment: u64) -> Result<Vec<u8>, GgufError> {
        if !matches!(self.version, 2 | 3) {
            return Err(GgufError::UnsupportedVersion {
                version: self.version,
            });
        }
        let mut h = Vec::new();
        h.extend_from_slice(MAGIC);
        put_u32(&mut h, self.version);
        put_u64(&mut h, self.tensors.len() as u64);
        put_u64(&mut h, self.metadata.len() as u64);
        for (key, value) in &self.metadata {
            put_str(&mut h, key);
            put_u32(&mut h, value.value_type() as u32);
            encode_value(&mut h, key, value, 0)?;
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut h, &t.name);
            put_u32(&mut h, t.dims.len() as u32);
            t.dims.iter().for_each(|&d| put_u64(&mut h, d));
            put_u32(&mut h, t.ty.id());
            put_u64(&mut h, offset);
            offset = align_up(offset + t.data.len() as u64, alignment);
        }
        Ok(h)
    }

    pub fn write_to(&self, w: &mut impl Write) -> Result<(), GgufError> {
        let alignment = self.alignment()?;
        let header = self.header(alignment)?;
        w.write_all(&header).map_err(GgufError::Write)?;
        // gguf-py and llama.cpp leave a file without tensors unpadded.
        if !self.tensors.is_empty() {
            let len = header.len() as u64;
            write_zeros(w, align_up(len, alignment) - len).map_err(GgufError::Write)?;
        }
        for t in &self.tensors {
            w.write_all(&t.data).map_err(GgufError::Write)?;
            let len = t.data.len() as u64;
            write_zeros(w, align_up(len, alignment) - len).map_err(GgufError::Write)?;
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, GgufError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<(), GgufError> {
        let path = path.as_ref();
        let io_err = |source| GgufError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::create(path).map_err(io_err)?;
        let mut w = std::io::BufWriter::new(file);
        self.write_to(&mut w).map_err(|e| match e {
            GgufError::Write(source) => io_err(source),
            e => e,
        })?;
        w.flush().map_err(io_err)
    }
}

fn align_up(n: u64, alignment: u64) -> u64 {
    n.div_ceil(alignment) * alignment
}

/// Writes `n` zero bytes without allocating `n` (the alignment may be up to 4 GiB).
fn write_zeros(w: &mut impl Write, mut n: u64) -> std::io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let chunk = n.min(ZEROS.len() as u64) as usize;
        w.write_all(&ZEROS[..chunk])?;
        n -= chunk as u64;
    }
    Ok(())
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The value's payload (its type id is written by the caller). `depth` counts enclosing arrays.
fn encode_value(
    out: &mut Vec<u8>,
    key: &str,
    value: &MetadataValue,
    depth: usize,
) -> Result<(), GgufError> {
    match value {
        MetadataValue::U8(v) => out.push(*v),
        MetadataValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::U32(v) => put_u32(out, *v),
        MetadataValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::Bool(v) => out.push(u8::from(*v)),
        MetadataValue::String(s) => put_str(out, s),
        MetadataValue::U64(v) => put_u64(out, *v),
        MetadataValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetadataValue::Array(items) => {
            let invalid = |reason: String| GgufError::InvalidMetadata {
                key: key.to_owned(),
                reason,
            };
            if depth >= MAX_ARRAY_DEPTH {
                return Err(invalid(format!(
                    "arrays nested deeper than {MAX_ARRAY_DEPTH} levels"
                )));
            }
            // An empty array carries no element type of its own; u8 is as good as any.
            let elem_ty = items
                .first()
                .map_or(ValueType::U8, MetadataValue::value_type);
            if let Some(odd) = items.iter().find(|v| v.value_type() != elem_ty) {
                return Err(invalid(format!(
                    "array mixes element types {} and {}",
                    items.first().map_or("?", MetadataValue::type_name),
                    odd.type_name()
                )));
            }
            put_u32(out, elem_ty as u32);
            put_u64(out, items.len() as u64);
            for item in items {
                encode_value(out, key, item, depth + 1)?;
            }
        }
    }
    Ok(())
}
