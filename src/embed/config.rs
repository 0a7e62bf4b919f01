//! The model's shape (`config.json`, a BERT encoder) and how its token states become one vector
//! (`1_Pooling/config.json`, `modules.json`): read with bounds, only what the forward pass
//! supports is accepted.

use std::path::Path;

use serde::Deserialize;

use super::EmbedError;
use super::files::read_bounded;

/// Most bytes a JSON config file may have.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Tokens of one input: longer texts are truncated (the model was trained at 256).
pub const MAX_TOKENS: usize = 256;

/// A BERT encoder's sizes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "gelu")]
    pub hidden_act: String,
}

fn two() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn gelu() -> String {
    "gelu".into()
}

impl BertConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Sizes a forward pass can run: nonzero, bounded, heads dividing the width, GELU.
    fn check(&self) -> Result<(), String> {
        let bounded = [
            ("vocab_size", self.vocab_size, 1 << 20),
            ("hidden_size", self.hidden_size, 8192),
            ("num_hidden_layers", self.num_hidden_layers, 128),
            ("num_attention_heads", self.num_attention_heads, 256),
            ("intermediate_size", self.intermediate_size, 65536),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                1 << 16,
            ),
            ("type_vocab_size", self.type_vocab_size, 16),
        ];
        for (name, v, max) in bounded {
            if v == 0 || v > max {
                return Err(format!("{name} = {v} is outside 1..={max}"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act {:?} is not supported (gelu only)",
                self.hidden_act
            ));
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps < 1.0) {
            return Err(format!(
                "layer_norm_eps {} is not in (0, 1)",
                self.layer_norm_eps
            ));
        }
        Ok(())
    }
}

/// How token states become the sentence vector. Only mean pooling is supported; `normalize`
/// is whether a `Normalize` module follows (all-MiniLM-L6-v2 has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pooling {
    pub normalize: bool,
}

impl Pooling {
    /// The canonical text hashed into the model's fingerprint.
    pub fn describe(&self) -> String {
        format!("mean;normalize={};max_tokens={MAX_TOKENS}", self.normalize)
    }
}

#[derive(Deserialize)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(rename = "type")]
    kind: String,
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, EmbedError> {
    let bytes = read_bounded(path, MAX_CONFIG_BYTES)?;
    serde_json::from_slice(&bytes).map_err(|e| EmbedError::BadConfig {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// `dir/config.json`, checked.
pub fn read_config(dir: &Path) -> Result<BertConfig, EmbedError> {
    let path = dir.join("config.json");
    let config: BertConfig = parse(&path)?;
    config
        .check()
        .map_err(|reason| EmbedError::BadConfig { path, reason })?;
    Ok(config)
}

/// The pooling of a sentence-transformers folder: mean pooling (the default when the folder
/// has no pooling config), normalized when `modules.json` lists a `Normalize` module.
pub fn read_pooling(dir: &Path) -> Result<Pooling, EmbedError> {
    let pooling_path = dir.join("1_Pooling").join("config.json");
    if pooling_path.exists() {
        let p: PoolingFile = parse(&pooling_path)?;
        if !p.pooling_mode_mean_tokens || p.pooling_mode_cls_token || p.pooling_mode_max_tokens {
            return Err(EmbedError::BadConfig {
                path: pooling_path,
                reason: "only mean pooling is supported".into(),
            });
        }
    }
    let modules_path = dir.join("modules.json");
    let normalize = if modules_path.exists() {
        let modules: Vec<ModuleEntry> = parse(&modules_path)?;
        modules.iter().any(|m| m.kind.ends_with(".Normalize"))
    } else {
        true
    };
    Ok(Pooling { normalize })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minilm() -> BertConfig {
        BertConfig {
            vocab_size: 30522,
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 1536,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
        }
    }

    #[test]
    fn configs_outside_what_the_forward_pass_runs_are_refused() {
        assert!(minilm().check().is_ok());
        let bad = [
            BertConfig {
                hidden_size: 0,
                ..minilm()
            },
            BertConfig {
                num_attention_heads: 7,
                ..minilm()
            },
            BertConfig {
                vocab_size: usize::MAX,
                ..minilm()
            },
            BertConfig {
                hidden_act: "relu".into(),
                ..minilm()
            },
            BertConfig {
                layer_norm_eps: f64::NAN,
                ..minilm()
            },
        ];
        for c in bad {
            assert!(c.check().is_err(), "{c:?}");
        }
    }
}
