//! The data section of a GGUF file being written by [`GgufWriter::stream_to`]: takes each
//! planned tensor's bytes in file order, checks their count, and writes the alignment padding.
//! Tensors that were added with their data are written by the stream itself when it reaches them.
//!
//! [`GgufWriter::stream_to`]: super::GgufWriter::stream_to

use std::io::Write;

use super::GgufError;
use super::writer::{PendingTensor, align_up, write_zeros};

/// Returned by [`GgufWriter::stream_to`](super::GgufWriter::stream_to) after the header is
/// written. For each planned tensor in order: [`write`](Self::write) its bytes (in as many pieces
/// as convenient), then [`end_tensor`](Self::end_tensor); at the end, [`finish`](Self::finish).
pub struct TensorStream<'a, W: Write> {
    out: W,
    tensors: &'a [PendingTensor],
    alignment: u64,
    /// Index of the tensor being written; `tensors.len()` once all are.
    current: usize,
    /// Bytes of the current tensor written so far.
    written: u64,
}

impl<'a, W: Write> TensorStream<'a, W> {
    pub(super) fn new(
        out: W,
        tensors: &'a [PendingTensor],
        alignment: u64,
    ) -> Result<Self, GgufError> {
        let mut stream = TensorStream {
            out,
            tensors,
            alignment,
            current: 0,
            written: 0,
        };
        stream.write_held_tensors()?;
        Ok(stream)
    }

    /// Appends bytes of the current planned tensor; more than its size is refused (and nothing
    /// of `bytes` is written).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), GgufError> {
        let t = self.current_tensor()?;
        let total = self.written + bytes.len() as u64;
        if total > t.n_bytes {
            return Err(size_error(t, total));
        }
        self.out.write_all(bytes).map_err(GgufError::Write)?;
        self.written = total;
        Ok(())
    }

    /// Ends the current planned tensor: checks that all its bytes were written, then pads to the
    /// alignment.
    pub fn end_tensor(&mut self) -> Result<(), GgufError> {
        let t = self.current_tensor()?;
        if self.written != t.n_bytes {
            return Err(size_error(t, self.written));
        }
        self.pad(t.n_bytes)?;
        self.current += 1;
        self.written = 0;
        self.write_held_tensors()
    }

    /// Checks that every planned tensor was written, flushes, and returns the writer.
    pub fn finish(mut self) -> Result<W, GgufError> {
        if let Some(t) = self.tensors.get(self.current) {
            return Err(GgufError::InvalidTensor {
                name: t.name.clone(),
                reason: format!(
                    "stream finished with {} of {} tensors written",
                    self.current,
                    self.tensors.len()
                ),
            });
        }
        self.out.flush().map_err(GgufError::Write)?;
        Ok(self.out)
    }

    fn current_tensor(&self) -> Result<&'a PendingTensor, GgufError> {
        self.tensors
            .get(self.current)
            .ok_or_else(|| GgufError::InvalidTensor {
                name: self
                    .tensors
                    .last()
                    .map_or_else(String::new, |t| t.name.clone()),
                reason: "tensor data streamed after the last tensor was ended".into(),
            })
    }

    /// Writes the data of tensors added with their data, from the current one up to the next
    /// planned one.
    fn write_held_tensors(&mut self) -> Result<(), GgufError> {
        while let Some(data) = self.tensors.get(self.current).and_then(|t| t.data.as_ref()) {
            self.out.write_all(data).map_err(GgufError::Write)?;
            self.pad(data.len() as u64)?;
            self.current += 1;
        }
        Ok(())
    }

    fn pad(&mut self, len: u64) -> Result<(), GgufError> {
        write_zeros(&mut self.out, align_up(len, self.alignment) - len).map_err(GgufError::Write)
    }
}

fn size_error(t: &PendingTensor, streamed: u64) -> GgufError {
    GgufError::InvalidTensor {
        name: t.name.clone(),
        reason: format!(
            "{streamed} data bytes streamed, {} × {:?} needs {}",
            t.ty, t.dims, t.n_bytes
        ),
    }
}
