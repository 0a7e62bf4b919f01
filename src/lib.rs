//! Hearth core: GGUF models, quant formats, tokenizer and chat templates, the CPU reference
//! forward pass, and (in later layers) the GPU engine, KV cache, store, chat and server.
//!
//! Layering (each module uses only those above it in this list): `quant`, `gguf` (uses
//! `quant`'s type table), `tokenizer` (gguf), `model` (gguf, quant), `reference` (model, quant).

pub mod chat;
pub mod documents;
pub mod embed;
pub mod engine;
pub mod gguf;
pub mod gpu;
pub mod kv;
pub mod metrics;
pub mod model;
pub mod quant;
pub mod reference;
pub mod server;
pub mod store;
pub mod tokenizer;
