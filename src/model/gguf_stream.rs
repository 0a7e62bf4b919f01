//! A GGUF v3 writer that streams tensor data: the header (metadata and tensor infos, with
//! offsets computed from the planned sizes) is written first, then each tensor's bytes in order.
//! `GgufWriter` holds every tensor in memory, which a 4 GB 7B test model should not need.

use std::io::Write;

use crate::gguf::MetadataValue;
use crate::quant::GgmlType;

/// GGUF's default tensor data alignment (`general.alignment` absent).
pub(crate) const ALIGNMENT: u64 = 32;

/// A tensor whose data will be streamed later.
#[derive(Clone, Debug)]
pub(crate) struct PlannedTensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    pub n_bytes: u64,
}

/// Writes GGUF to `W`: `begin` writes the header, then `write_data` is called with each
/// tensor's bytes (in the planned order, possibly in several pieces), `end_tensor` after each.
pub(crate) struct GgufStreamWriter<W: Write> {
    out: W,
    sizes: Vec<u64>,
    current: usize,
    written_in_current: u64,
}

impl<W: Write> GgufStreamWriter<W> {
    pub fn begin(
        mut out: W,
        metadata: &[(String, MetadataValue)],
        tensors: &[PlannedTensor],
    ) -> std::io::Result<Self> {
        let mut header = Vec::new();
        header.extend_from_slice(b"GGUF");
        header.extend_from_slice(&3u32.to_le_bytes());
        header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (key, value) in metadata {
            put_str(&mut header, key);
            header.extend_from_slice(&type_id(value).to_le_bytes());
            put_value(&mut header, value);
        }
        let mut offset = 0u64;
        for t in tensors {
            put_str(&mut header, &t.name);
            header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&t.ty.id().to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offset += t.n_bytes.next_multiple_of(ALIGNMENT);
        }
        header.resize(
            (header.len() as u64).next_multiple_of(ALIGNMENT) as usize,
            0,
        );
        out.write_all(&header)?;
        Ok(GgufStreamWriter {
            out,
            sizes: tensors.iter().map(|t| t.n_bytes).collect(),
            current: 0,
            written_in_current: 0,
        })
    }

    /// Appends bytes of the current tensor.
    pub fn write_data(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let size = self.sizes.get(self.current).copied().unwrap_or(0);
        if self.written_in_current + bytes.len() as u64 > size {
            return Err(std::io::Error::other(
                "tensor data exceeds its planned size",
            ));
        }
        self.written_in_current += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    /// Finishes the current tensor (checks its size, pads to the alignment).
    pub fn end_tensor(&mut self) -> std::io::Result<()> {
        let size = self.sizes.get(self.current).copied().unwrap_or(0);
        if self.written_in_current != size {
            return Err(std::io::Error::other(
                "tensor data is shorter than its planned size",
            ));
        }
        let pad = size.next_multiple_of(ALIGNMENT) - size;
        self.out.write_all(&vec![0u8; pad as usize])?;
        self.current += 1;
        self.written_in_current = 0;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        if self.current != self.sizes.len() {
            return Err(std::io::Error::other(
                "not every planned tensor was written",
            ));
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// GGUF's value type ids.
fn type_id(v: &MetadataValue) -> u32 {
    use MetadataValue::*;
    match v {
        U8(_) => 0,
        I8(_) => 1,
        U16(_) => 2,
        I16(_) => 3,
        U32(_) => 4,
        I32(_) => 5,
        F32(_) => 6,
        Bool(_) => 7,
        String(_) => 8,
        Array(_) => 9,
        U64(_) => 10,
        I64(_) => 11,
        F64(_) => 12,
    }
}

fn put_value(buf: &mut Vec<u8>, v: &MetadataValue) {
    use MetadataValue::*;
    match v {
        U8(x) => buf.push(*x),
        I8(x) => buf.extend_from_slice(&x.to_le_bytes()),
        U16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        I16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        U32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        I32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        F32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Bool(x) => buf.push(*x as u8),
        String(s) => put_str(buf, s),
        U64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        I64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        F64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        Array(items) => {
            // An empty array's element type is irrelevant to readers; use U8.
            let elem = items.first().map_or(0, type_id);
            buf.extend_from_slice(&elem.to_le_bytes());
            buf.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_value(buf, item);
            }
        }
    }
}
