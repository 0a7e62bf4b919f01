//! A bounds-checked little-endian reader over the file bytes that knows its absolute offset,
//! so every error can say where it happened.

use super::GgufError;

pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> u64 {
        self.pos as u64
    }

    pub(crate) fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    /// Takes `n` bytes; `what` names the field for the error (built only on failure).
    pub(crate) fn take(
        &mut self,
        n: u64,
        what: impl FnOnce() -> String,
    ) -> Result<&'a [u8], GgufError> {
        let available = self.remaining();
        if n > available {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.offset(),
                needed: n,
                available,
            });
        }
        // n <= remaining <= usize::MAX, so the cast and the slice are in bounds.
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn array<const N: usize>(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<[u8; N], GgufError> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: impl FnOnce() -> String) -> Result<u8, GgufError> {
        Ok(self.array::<1>(what)?[0])
    }
    pub(crate) fn u16(&mut self, what: impl FnOnce() -> String) -> Result<u16, GgufError> {
        self.array(what).map(u16::from_le_bytes)
    }
    pub(crate) fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }
    pub(crate) fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Checks that `count` items of at least `min_size` bytes each could fit in the bytes left,
    /// before anything sized by `count` is allocated.
    pub(crate) fn check_count(
        &self,
        count: u64,
        min_size: u64,
        count_offset: u64,
        what: impl FnOnce() -> String,
    ) -> Result<usize, GgufError> {
        let available = self.remaining();
        match count.checked_mul(min_size) {
            Some(need) if need <= available => Ok(count as usize),
            _ => Err(GgufError::CountTooLarge {
                what: what(),
                count,
                offset: count_offset,
                available,
            }),
        }
    }

    /// A GGUF string (u64 length + bytes), returned raw; the caller decides on UTF-8 handling.
    pub(crate) fn string_bytes(
        &mut self,
        what: impl Fn() -> String,
    ) -> Result<&'a [u8], GgufError> {
        let len_offset = self.offset();
        let len = self.u64(|| format!("length of {}", what()))?;
        let available = self.remaining();
        if len > available {
            return Err(GgufError::CountTooLarge {
                what: format!("length of {}", what()),
                count: len,
                offset: len_offset,
                available,
            });
        }
        self.take(len, what)
    }

    /// A GGUF string that must be valid UTF-8 (keys and tensor names).
    pub(crate) fn strict_string(
        &mut self,
        what: impl Fn() -> String,
    ) -> Result<&'a str, GgufError> {
        let offset = self.offset();
        let bytes = self.string_bytes(&what)?;
        std::str::from_utf8(bytes).map_err(|_| GgufError::InvalidUtf8 {
            what: what(),
            offset,
        })
    }
}
