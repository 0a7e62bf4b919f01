//! The encoder on the GPU through burn (burn-tensor's wgpu backend: cubecl-wgpu on wgpu 30, the
//! same wgpu the chat engine uses). The embedding lookup runs on the CPU (a gather of a few
//! hundred rows) and the layers on the device; the same maths as `reference`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use burn_tensor::activation::{gelu, softmax};
use burn_tensor::module::layer_norm;
use burn_tensor::{Device, Tensor, TensorData};

use super::EmbedError;
use super::config::BertConfig;
use super::reference::embed_tokens;
use super::weights::{BertWeights, LayerNorm, Linear};

pub use burn_tensor::wgpu::{WgpuSetup, wgpu};

struct GpuLinear {
    /// `Wᵀ`, `[in, out]`.
    wt: Tensor<2>,
    /// `[1, out]`, broadcast over tokens.
    bias: Tensor<2>,
}

struct GpuNorm {
    gamma: Tensor<1>,
    beta: Tensor<1>,
}

struct GpuLayer {
    q: GpuLinear,
    k: GpuLinear,
    v: GpuLinear,
    o: GpuLinear,
    attn_norm: GpuNorm,
    ffn_in: GpuLinear,
    ffn_out: GpuLinear,
    ffn_norm: GpuNorm,
}

/// The encoder's layers uploaded to a burn wgpu device.
pub struct BurnEncoder {
    device: Device,
    layers: Vec<GpuLayer>,
    /// The adapter is a CPU (lavapipe): the plain-Rust pass is faster there.
    pub cpu_adapter: bool,
}

/// Burn's device and whether its adapter is a CPU (llvmpipe/lavapipe, SwiftShader).
static DEVICE: OnceLock<Result<(Device, bool), String>> = OnceLock::new();

fn is_cpu(setup: &WgpuSetup) -> bool {
    setup.adapter.get_info().device_type == wgpu::DeviceType::Cpu
}

/// Registers an existing wgpu setup (instance, adapter, device, queue: the chat engine's) as
/// burn's device, so embeddings and the chat model share one device. Only the first call of
/// the process (or the first `BurnEncoder::new`) decides the device.
pub fn share_wgpu(setup: WgpuSetup) -> Result<(), EmbedError> {
    let mut setup = Some(setup);
    let got = DEVICE.get_or_init(|| {
        let setup = setup.take().expect("first init");
        let cpu = is_cpu(&setup);
        catch(|| {
            Device::wgpu_options()
                .setup(setup)
                .init()
                .map_err(|e| e.to_string())
        })
        .and_then(|r| r)
        .map(|d| (d, cpu))
    });
    match (got, setup) {
        (Ok(_), None) => Ok(()),
        (Ok(_), Some(_)) => Err(EmbedError::Backend(
            "burn's device was already chosen".into(),
        )),
        (Err(e), _) => Err(EmbedError::Backend(e.clone())),
    }
}

/// Burn's wgpu device: the shared one, else burn's own choice of adapter (opened once), and
/// whether it is a CPU adapter.
fn device() -> Result<(Device, bool), EmbedError> {
    DEVICE
        .get_or_init(|| {
            catch(|| {
                Device::wgpu_options()
                    .init_with_setup()
                    .map_err(|e| e.to_string())
            })
            .and_then(|r| r)
            .map(|(d, setup)| (d, is_cpu(&setup)))
        })
        .clone()
        .map_err(EmbedError::Backend)
}

/// Runs `f`, turning a panic inside burn or cubecl into an error (a lost device, a failed
/// allocation): an embedding that cannot be computed is never a crash.
fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the GPU backend panicked".into())
    })
}

fn upload2(data: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

fn upload1(data: &[f32], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(data.to_vec(), [data.len()]), device)
}

fn gpu_linear(l: &Linear, device: &Device) -> GpuLinear {
    let (out, inp) = (l.weight.rows, l.weight.cols);
    let mut wt = vec![0f32; inp * out];
    for o in 0..out {
        for (i, w) in l.weight.row(o).iter().enumerate() {
            wt[i * out + o] = *w;
        }
    }
    GpuLinear {
        wt: upload2(wt, inp, out, device),
        bias: upload2(l.bias.clone(), 1, out, device),
    }
}

fn gpu_norm(n: &LayerNorm, device: &Device) -> GpuNorm {
    GpuNorm {
        gamma: upload1(&n.gamma, device),
        beta: upload1(&n.beta, device),
    }
}

impl GpuLinear {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.wt.clone()) + self.bias.clone()
    }
}

impl GpuNorm {
    fn forward(&self, x: Tensor<2>, eps: f64) -> Tensor<2> {
        layer_norm(x, self.gamma.clone(), Some(self.beta.clone()), eps)
    }
}

impl BurnEncoder {
    /// Uploads the layers to burn's wgpu device (opening it on first use).
    pub fn new(w: &BertWeights) -> Result<BurnEncoder, EmbedError> {
        let (device, cpu_adapter) = device()?;
        let layers = catch(|| {
            w.layers
                .iter()
                .map(|l| GpuLayer {
                    q: gpu_linear(&l.query, &device),
                    k: gpu_linear(&l.key, &device),
                    v: gpu_linear(&l.value, &device),
                    o: gpu_linear(&l.attn_out, &device),
                    attn_norm: gpu_norm(&l.attn_norm, &device),
                    ffn_in: gpu_linear(&l.ffn_in, &device),
                    ffn_out: gpu_linear(&l.ffn_out, &device),
                    ffn_norm: gpu_norm(&l.ffn_norm, &device),
                })
                .collect()
        })
        .map_err(EmbedError::Backend)?;
        Ok(BurnEncoder {
            device,
            layers,
            cpu_adapter,
        })
    }

    /// The mean of the last token states of each sequence, `[hidden]` each (not normalized).
    /// The sequences run in one pass, padded to the longest: padded keys are masked out of
    /// attention and padded rows out of the mean, so each result is what it would be alone.
    pub fn pooled_batch(
        &self,
        w: &BertWeights,
        c: &BertConfig,
        batch: &[Vec<u32>],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let h = c.hidden_size;
        let longest = batch.iter().map(Vec::len).max().unwrap_or(0);
        if batch.is_empty() || longest == 0 {
            return Ok(vec![vec![0.0; h]; batch.len()]);
        }
        let mut x = vec![0f32; batch.len() * longest * h];
        let mut mask = vec![0f32; batch.len() * longest];
        for (b, ids) in batch.iter().enumerate() {
            let rows = embed_tokens(w, c, ids);
            x[b * longest * h..][..rows.len()].copy_from_slice(&rows);
            mask[b * longest..][..ids.len()].fill(1.0);
        }
        let sums =
            catch(|| self.run(x, mask, c, batch.len(), longest)).map_err(EmbedError::Backend)??;
        Ok(sums
            .chunks_exact(h)
            .zip(batch)
            .map(|(sum, ids)| sum.iter().map(|v| v / ids.len().max(1) as f32).collect())
            .collect())
    }

    /// Sums of the valid rows' last states, `[batch × hidden]`.
    fn run(
        &self,
        x: Vec<f32>,
        mask: Vec<f32>,
        c: &BertConfig,
        batch: usize,
        tokens: usize,
    ) -> Result<Vec<f32>, EmbedError> {
        let (h, heads, hd) = (c.hidden_size, c.num_attention_heads, c.head_dim());
        let eps = c.layer_norm_eps;
        let scale = 1.0 / (hd as f64).sqrt();
        let rows = batch * tokens;
        let mut x = upload2(x, rows, h, &self.device);
        let keep: Tensor<2> = upload2(mask, batch, tokens, &self.device);
        // 0 for a real key, -1e9 for padding, broadcast over heads and queries.
        let key_bias = (keep.clone() - 1.0)
            .mul_scalar(1e9)
            .reshape([batch, 1, 1, tokens]);
        for l in &self.layers {
            let split = |t: Tensor<2>| t.reshape([batch, tokens, heads, hd]).swap_dims(1, 2);
            let q = split(l.q.forward(x.clone()));
            let k = split(l.k.forward(x.clone())).swap_dims(2, 3);
            let v = split(l.v.forward(x.clone()));
            let p = softmax(q.matmul(k).mul_scalar(scale) + key_bias.clone(), 3);
            let ctx = p.matmul(v).swap_dims(1, 2).reshape([rows, h]);
            x = l.attn_norm.forward(l.o.forward(ctx) + x, eps);
            let f = l.ffn_out.forward(gelu(l.ffn_in.forward(x.clone())));
            x = l.ffn_norm.forward(f + x, eps);
        }
        let kept = x.reshape([batch, tokens, h]) * keep.reshape([batch, tokens, 1]);
        let sums = kept.sum_dim(1);
        let data = sums
            .try_into_data()
            .map_err(|e| EmbedError::Backend(format!("reading the embeddings back: {e:?}")))?;
        data.try_into_vec::<f32>()
            .map_err(|e| EmbedError::Backend(format!("embedding data: {e:?}")))
    }
}
