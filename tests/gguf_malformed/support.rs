//! Support for the bad-input corpus: a tracking allocator that records the largest single
//! allocation made by the current thread, and a raw GGUF builder that can write what
//! `GgufWriter` refuses to.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use hearth::gguf::{GgufError as E, GgufFile};

// ---- a tracking allocator: the largest single allocation made by this thread ----

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Parses `bytes`, returning the result, the largest single allocation and the time taken.
pub fn parse_measured(bytes: Vec<u8>) -> (Result<GgufFile, E>, usize, Duration) {
    LARGEST.with(|m| m.set(0));
    let start = Instant::now();
    let r = GgufFile::from_bytes(bytes);
    (r, LARGEST.with(Cell::get), start.elapsed())
}

pub fn parse(bytes: Vec<u8>) -> Result<GgufFile, E> {
    GgufFile::from_bytes(bytes)
}

pub fn err(bytes: Vec<u8>) -> E {
    match parse(bytes) {
        Ok(f) => panic!("expected an error, parsed {f:?}"),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            e
        }
    }
}

// ---- a raw builder that can write what GgufWriter refuses to ----

#[derive(Default)]
pub struct Raw {
    pub b: Vec<u8>,
    pub marks: Vec<(&'static str, usize)>,
}

impl Raw {
    pub fn header(version: u32, n_tensors: u64, n_kv: u64) -> Self {
        Raw::default()
            .bytes(b"GGUF")
            .u32(version)
            .u64(n_tensors)
            .u64(n_kv)
    }
    pub fn bytes(mut self, x: &[u8]) -> Self {
        self.b.extend_from_slice(x);
        self
    }
    pub fn u8(self, v: u8) -> Self {
        self.bytes(&[v])
    }
    pub fn u32(self, v: u32) -> Self {
        self.bytes(&v.to_le_bytes())
    }
    pub fn u64(self, v: u64) -> Self {
        self.bytes(&v.to_le_bytes())
    }
    pub fn raw_str(self, s: &[u8]) -> Self {
        self.u64(s.len() as u64).bytes(s)
    }
    pub fn str(self, s: &str) -> Self {
        self.raw_str(s.as_bytes())
    }
    pub fn mark(mut self, name: &'static str) -> Self {
        self.marks.push((name, self.b.len()));
        self
    }
    pub fn kv_str(self, key: &str, v: &str) -> Self {
        self.str(key).u32(8).str(v)
    }
    pub fn kv_u32(self, key: &str, v: u32) -> Self {
        self.str(key).u32(4).u32(v)
    }
    pub fn tensor(self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        self.raw_tensor(name.as_bytes(), dims, ty, offset)
    }
    pub fn raw_tensor(self, name: &[u8], dims: &[u64], ty: u32, offset: u64) -> Self {
        let mut s = self.raw_str(name).u32(dims.len() as u32);
        for &d in dims {
            s = s.u64(d);
        }
        s.u32(ty).u64(offset)
    }
    pub fn pad(mut self, align: usize) -> Self {
        self.b.resize(self.b.len().div_ceil(align) * align, 0);
        self
    }
    pub fn zeros(mut self, n: usize) -> Self {
        self.b.resize(self.b.len() + n, 0);
        self
    }
    pub fn build(self) -> Vec<u8> {
        self.b
    }
}

pub const F32: u32 = 0;
pub const Q8_0: u32 = 8;

/// One F32 tensor of `n` elements at data offset 0, data present.
pub fn one_f32_tensor(n: u64) -> Vec<u8> {
    Raw::header(3, 1, 0)
        .tensor("t", &[n], F32, 0)
        .pad(32)
        .zeros(4 * n as usize)
        .build()
}
