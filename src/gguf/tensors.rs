//! Tensor infos: reading them from the header and checking that each tensor's data lies
//! inside the file, aligned, without overlapping another.

use std::collections::HashMap;

use super::GgufError;
use super::cursor::Cursor;
use crate::quant::GgmlType;

/// ggml tensors have at most 4 dimensions.
pub const MAX_DIMS: usize = 4;
/// Smallest possible tensor info: empty name (u64 length), n_dims (u32), one dim (u64),
/// type (u32), offset (u64).
pub(crate) const TENSOR_INFO_MIN_SIZE: u64 = 8 + 4 + 8 + 4 + 8;

/// One tensor's entry in the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous (row) length.
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Relative to the start of the data section (`GgufFile::data_offset`).
    pub offset: u64,
    pub n_elements: u64,
    pub n_bytes: u64,
}

type Tensors = (Vec<TensorInfo>, HashMap<String, usize>);

pub(crate) fn read_tensor_infos(
    c: &mut Cursor,
    count: usize,
    alignment: u64,
) -> Result<Tensors, GgufError> {
    let mut tensors = Vec::with_capacity(count);
    let mut index = HashMap::with_capacity(count);
    for i in 0..count {
        let info_offset = c.offset();
        let name = c
            .strict_string(|| format!("name of tensor #{i}"))?
            .to_owned();
        if index.contains_key(&name) {
            return Err(GgufError::DuplicateTensor {
                name,
                offset: info_offset,
            });
        }
        let info = read_one(c, name, alignment)?;
        index.insert(info.name.clone(), tensors.len());
        tensors.push(info);
    }
    Ok((tensors, index))
}

fn read_one(c: &mut Cursor, name: String, alignment: u64) -> Result<TensorInfo, GgufError> {
    let n_dims_offset = c.offset();
    let n_dims = c.u32(|| format!("dimension count of tensor {name:?}"))?;
    if n_dims == 0 || n_dims as usize > MAX_DIMS {
        return Err(GgufError::BadDimCount {
            name,
            n_dims,
            offset: n_dims_offset,
        });
    }
    let dims_offset = c.offset();
    let mut dims = Vec::with_capacity(n_dims as usize);
    for d in 0..n_dims {
        dims.push(c.u64(|| format!("dimension {d} of tensor {name:?}"))?);
    }

    let type_offset = c.offset();
    let type_id = c.u32(|| format!("type of tensor {name:?}"))?;
    let Some(ggml_type) = GgmlType::from_id(type_id) else {
        return Err(GgufError::UnknownTensorType {
            name,
            type_id,
            offset: type_offset,
        });
    };
    let offset_field = c.offset();
    let offset = c.u64(|| format!("data offset of tensor {name:?}"))?;

    // ggml stores dims as int64, so each dim and their product must fit i64.
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64 && dims.iter().all(|&d| d <= i64::MAX as u64));
    let Some(n_elements) = n_elements else {
        return Err(GgufError::DimOverflow {
            name,
            dims,
            offset: dims_offset,
        });
    };
    let block_elems = ggml_type.block_elems();
    let row_len = dims.first().copied().unwrap_or(0);
    if !row_len.is_multiple_of(block_elems as u64) {
        return Err(GgufError::PartialBlock {
            name,
            ty: ggml_type,
            row_len,
            block_elems,
            offset: dims_offset,
        });
    }
    // Whole rows of whole blocks, so `bytes_for` fails only on overflow.
    let Some(n_bytes) = ggml_type.bytes_for(n_elements) else {
        return Err(GgufError::DimOverflow {
            name,
            dims,
            offset: dims_offset,
        });
    };
    if !offset.is_multiple_of(alignment) {
        return Err(GgufError::MisalignedTensor {
            name,
            data_offset: offset,
            alignment,
            offset: offset_field,
        });
    }
    Ok(TensorInfo {
        name,
        dims,
        ggml_type,
        offset,
        n_elements,
        n_bytes,
    })
}

/// Every tensor's bytes must lie in the data section and no two may share a byte.
pub(crate) fn check_extents(
    tensors: &[TensorInfo],
    data_start: u64,
    file_size: u64,
) -> Result<(), GgufError> {
    let data_len = file_size.saturating_sub(data_start);
    let mut extents = Vec::with_capacity(tensors.len());
    for t in tensors {
        match t.offset.checked_add(t.n_bytes) {
            Some(end) if end <= data_len => {
                if t.n_bytes > 0 {
                    extents.push((t.offset, end, t.name.as_str()));
                }
            }
            _ => {
                return Err(GgufError::TensorOutOfBounds {
                    name: t.name.clone(),
                    data_offset: t.offset,
                    n_bytes: t.n_bytes,
                    data_len,
                    data_start,
                });
            }
        }
    }
    extents.sort_unstable();
    for pair in extents.windows(2) {
        let [(_, prev_end, prev), (start, _, name)] = pair else {
            continue;
        };
        if start < prev_end {
            return Err(GgufError::TensorOverlap {
                name: name.to_string(),
                other: prev.to_string(),
                data_offset: *start,
            });
        }
    }
    Ok(())
}
