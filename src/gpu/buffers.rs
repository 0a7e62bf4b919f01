//! Buffer helpers: upload, zeroed storage, uniform params, and readback of a small range.

use super::{GpuContext, GpuError};

/// Storage usage shared by every Hearth compute buffer: bindable, writable by the queue, and
/// copyable out for readback.
pub const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

#[derive(Debug, thiserror::Error)]
pub enum ReadbackError {
    #[error(
        "readback range {offset}+{len} is outside the {size}-byte buffer or not 4-byte aligned"
    )]
    Range { offset: u64, len: u64, size: u64 },
    #[error("mapping the readback buffer failed: {0}")]
    Map(String),
}

/// A storage buffer and its logical length in bytes (the wgpu buffer may be padded to 4).
#[derive(Clone, Debug)]
pub struct GpuBuffer {
    pub buffer: wgpu::Buffer,
    pub len: u64,
}

fn padded(len: u64) -> u64 {
    len.div_ceil(4).max(1) * 4
}

impl GpuContext {
    /// A zero-filled storage buffer of `len` bytes (rounded up to 4).
    pub fn zeroed(&self, label: &str, len: u64) -> Result<GpuBuffer, GpuError> {
        let size = padded(len);
        if size > self.info().max_buffer_size {
            return Err(GpuError::BufferTooLarge {
                bytes: size,
                limit: self.info().max_buffer_size,
            });
        }
        let buffer = self.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: STORAGE,
            mapped_at_creation: false,
        });
        Ok(GpuBuffer { buffer, len })
    }

    /// A storage buffer holding `bytes` (padded with zeros to a multiple of 4).
    pub fn upload(&self, label: &str, bytes: &[u8]) -> Result<GpuBuffer, GpuError> {
        let buf = self.zeroed(label, bytes.len() as u64)?;
        self.write(&buf.buffer, 0, bytes);
        Ok(buf)
    }

    /// A storage buffer holding `values` as little-endian words.
    pub fn upload_pod<T: bytemuck::Pod>(
        &self,
        label: &str,
        values: &[T],
    ) -> Result<GpuBuffer, GpuError> {
        self.upload(label, bytemuck::cast_slice(values))
    }

    /// A uniform buffer with `params` (kernel parameters fixed at prepare time).
    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, params: &T) -> wgpu::Buffer {
        let bytes = bytemuck::bytes_of(params);
        let buffer = self.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: padded(bytes.len() as u64).max(16),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.write(&buffer, 0, bytes);
        buffer
    }

    /// Queues a write of `bytes` at `offset`; a ragged tail is padded with zeros to 4 bytes.
    pub fn write(&self, buffer: &wgpu::Buffer, offset: u64, bytes: &[u8]) {
        if bytes.len().is_multiple_of(4) {
            self.queue().write_buffer(buffer, offset, bytes);
        } else {
            let mut v = bytes.to_vec();
            v.resize(padded(bytes.len() as u64) as usize, 0);
            self.queue().write_buffer(buffer, offset, &v);
        }
    }

    /// Copies `len` bytes at `offset` of `src` to the host (submits and waits).
    /// Makes its own staging buffer: for tests and one-off reads, not the per-token path.
    pub fn read_bytes(
        &self,
        src: &wgpu::Buffer,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, GpuError> {
        if !offset.is_multiple_of(4)
            || !len.is_multiple_of(4)
            || offset.checked_add(len).is_none_or(|e| e > src.size())
        {
            return Err(ReadbackError::Range {
                offset,
                len,
                size: src.size(),
            }
            .into());
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        let staging = self.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: len,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.encoder("readback");
        enc.copy_buffer_to_buffer(src, offset, &staging, 0, len);
        self.submit([enc.finish()]);
        self.map_and_copy(&staging)
    }

    /// Maps a MAP_READ buffer (after its copy was submitted) and copies it out.
    pub fn map_and_copy(&self, staging: &wgpu::Buffer) -> Result<Vec<u8>, GpuError> {
        self.map_and_copy_range(staging, staging.size())
    }

    /// Maps the first `len` bytes (a multiple of 4) of a MAP_READ buffer and copies them out.
    pub fn map_and_copy_range(
        &self,
        staging: &wgpu::Buffer,
        len: u64,
    ) -> Result<Vec<u8>, GpuError> {
        if len == 0 || !len.is_multiple_of(4) || len > staging.size() {
            return Err(ReadbackError::Range {
                offset: 0,
                len,
                size: staging.size(),
            }
            .into());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..len, move |r| {
            let _ = tx.send(r);
        });
        self.wait_idle()?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(ReadbackError::Map(e.to_string()).into()),
            Err(e) => return Err(ReadbackError::Map(e.to_string()).into()),
        }
        let out = {
            let view = staging
                .get_mapped_range(..len)
                .map_err(|e| ReadbackError::Map(e.to_string()))?;
            view.to_vec()
        };
        staging.unmap();
        Ok(out)
    }

    /// Reads `n` f32 values starting at element `first`.
    pub fn read_f32(&self, src: &wgpu::Buffer, first: u64, n: u64) -> Result<Vec<f32>, GpuError> {
        let bytes = self.read_bytes(src, first * 4, n * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Reads `n` u32 values starting at element `first`.
    pub fn read_u32(&self, src: &wgpu::Buffer, first: u64, n: u64) -> Result<Vec<u32>, GpuError> {
        let bytes = self.read_bytes(src, first * 4, n * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}
