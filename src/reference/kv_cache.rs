//! A contiguous f32 KV cache: per layer, K and V as `[capacity, n_head_kv, head_dim]`.

/// Keys and values of the tokens seen so far, at positions `0..len()`.
#[derive(Clone, Debug)]
pub struct KvCache {
    n_layer: usize,
    kv_dim: usize,
    capacity: usize,
    len: usize,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl KvCache {
    /// A cache for `capacity` tokens of a model with `n_layer` layers and `kv_dim` =
    /// n_head_kv × head_dim. Allocates `2 × n_layer × capacity × kv_dim` f32s.
    pub fn new(n_layer: usize, kv_dim: usize, capacity: usize) -> KvCache {
        let layer = || vec![0.0f32; capacity * kv_dim];
        KvCache {
            n_layer,
            kv_dim,
            capacity,
            len: 0,
            k: (0..n_layer).map(|_| layer()).collect(),
            v: (0..n_layer).map(|_| layer()).collect(),
        }
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn n_layer(&self) -> usize {
        self.n_layer
    }

    pub fn kv_dim(&self) -> usize {
        self.kv_dim
    }

    /// Forgets every token.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Keeps the first `len` tokens (no-op if it holds fewer).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Keys of `layer` for positions `0..len()`, `[len, kv_dim]` row-major.
    pub fn keys(&self, layer: usize) -> &[f32] {
        &self.k[layer][..self.len * self.kv_dim]
    }

    /// Values of `layer` for positions `0..len()`.
    pub fn values(&self, layer: usize) -> &[f32] {
        &self.v[layer][..self.len * self.kv_dim]
    }

    /// Keys and values of `layer` up to and including `pos` (which may be the one being filled).
    pub(crate) fn layer_upto(&self, layer: usize, pos: usize) -> (&[f32], &[f32]) {
        let end = (pos + 1) * self.kv_dim;
        (&self.k[layer][..end], &self.v[layer][..end])
    }

    /// Stores K and V of `layer` at `pos` (< capacity; callers check).
    pub(crate) fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let at = pos * self.kv_dim..(pos + 1) * self.kv_dim;
        self.k[layer][at.clone()].copy_from_slice(k);
        self.v[layer][at].copy_from_slice(v);
    }

    /// Marks `len` tokens as held (after their K/V were stored in every layer).
    pub(crate) fn set_len(&mut self, len: usize) {
        debug_assert!(len <= self.capacity);
        self.len = len;
    }
}
