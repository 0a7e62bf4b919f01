//! Block layouts of the ggml quantized formats, byte for byte as in ggml's `ggml-common.h`.
//!
//! Every struct has alignment 1: tensor data comes from a memory map or a `Vec<u8>` at any
//! offset, so `bytemuck::cast_slice::<u8, BlockQ4K>` must work on unaligned bytes. The f16
//! scales are therefore stored as little-endian byte pairs ([`F16Le`]) rather than `u16`.

use bytemuck::{Pod, Zeroable};
use std::mem::{align_of, size_of};

/// Elements in a K-quant super-block.
pub const QK_K: usize = 256;
/// Elements in a legacy (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) block.
pub const QK: usize = 32;

/// An IEEE half stored as two little-endian bytes (ggml's `ggml_half` on disk).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct F16Le(pub [u8; 2]);

impl F16Le {
    pub fn from_f32(v: f32) -> Self {
        F16Le(half::f16::from_f32(v).to_le_bytes())
    }
    pub fn to_f32(self) -> f32 {
        half::f16::from_le_bytes(self.0).to_f32()
    }
    pub fn from_bits(bits: u16) -> Self {
        F16Le(bits.to_le_bytes())
    }
    pub fn to_bits(self) -> u16 {
        u16::from_le_bytes(self.0)
    }
}

/// Q4_0: 32 values `(q - 8) * d`, q in 0..16; low nibbles hold values 0..16, high nibbles 16..32.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4_0 {
    pub d: F16Le,
    pub qs: [u8; QK / 2],
}

/// Q4_1: 32 values `q * d + m`, nibbles as in Q4_0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4_1 {
    pub d: F16Le,
    pub m: F16Le,
    pub qs: [u8; QK / 2],
}

/// Q5_0: 32 values `(q - 16) * d`; the 5th bit of value j is bit j of the little-endian `qh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5_0 {
    pub d: F16Le,
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}

/// Q5_1: 32 values `q * d + m`, bits as in Q5_0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5_1 {
    pub d: F16Le,
    pub m: F16Le,
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}

/// Q8_0: 32 values `q * d`, q signed bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8_0 {
    pub d: F16Le,
    pub qs: [i8; QK],
}

/// Q2_K: 16 groups of 16; `scales[j]` = 4-bit scale (low) | 4-bit min (high);
/// value = `d * scale * q - dmin * min`, q 2 bits.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ2K {
    pub scales: [u8; QK_K / 16],
    pub qs: [u8; QK_K / 4],
    pub d: F16Le,
    pub dmin: F16Le,
}

/// Q3_K: 16 groups of 16 with signed 6-bit scales packed in 12 bytes;
/// value = `d * (scale - 32) * (q - 4 * !hbit)`, q 2 low bits + 1 high bit in `hmask`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ3K {
    pub hmask: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 4],
    pub scales: [u8; 12],
    pub d: F16Le,
}

/// Q4_K: 8 groups of 32 with 6-bit scales and mins packed in 12 bytes (see
/// `kquants::scale_min_k4`); value = `d * scale * q - dmin * min`, q 4 bits.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4K {
    pub d: F16Le,
    pub dmin: F16Le,
    pub scales: [u8; 12],
    pub qs: [u8; QK_K / 2],
}

/// Q5_K: as Q4_K plus a 5th bit per value in `qh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5K {
    pub d: F16Le,
    pub dmin: F16Le,
    pub scales: [u8; 12],
    pub qh: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 2],
}

/// Q6_K: 16 groups of 16 with signed 8-bit scales; value = `d * scale * (q - 32)`,
/// q = 4 low bits in `ql` + 2 high bits in `qh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ6K {
    pub ql: [u8; QK_K / 2],
    pub qh: [u8; QK_K / 4],
    pub scales: [i8; QK_K / 16],
    pub d: F16Le,
}

macro_rules! assert_layout {
    ($($t:ty => $size:expr),* $(,)?) => {
        $(const _: () = assert!(size_of::<$t>() == $size && align_of::<$t>() == 1);)*
    };
}

assert_layout! {
    F16Le => 2,
    BlockQ4_0 => 18,
    BlockQ4_1 => 20,
    BlockQ5_0 => 22,
    BlockQ5_1 => 24,
    BlockQ8_0 => 34,
    BlockQ2K => 84,
    BlockQ3K => 110,
    BlockQ4K => 144,
    BlockQ5K => 176,
    BlockQ6K => 210,
}
