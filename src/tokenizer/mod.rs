//! Tokenizers built from GGUF metadata (or a Hugging Face `tokenizer.json`), and chat templates.
//!
//! GGUF vocabularies are tokenized exactly as llama.cpp does (`src/llama-vocab.cpp`):
//! `tokenizer.ggml.model = llama` (SentencePiece-style BPE over scores with byte fallback) and
//! `gpt2` (byte-level BPE over merges with llama.cpp's per-`tokenizer.ggml.pre` splitting), plus
//! `gemma4` (SPM-style BPE over merges). The algorithms are ports of llama.cpp's rather than the
//! `tokenizers` crate, which cannot reproduce llama.cpp's score-driven SPM merging nor its
//! pre-tokenizer quirks; `tokenizer.json` input goes through `tokenizers`.

mod bpe;
pub mod chat_template;
mod decode;
mod encode;
mod error;
mod hf_json;
mod load_gguf;
mod pretokenize;
mod split_custom;
mod spm;
mod unicode;
mod unicode_data;
mod vocab;

pub use chat_template::{ChatMessage, ChatTemplate, ChatTemplateError};
pub use error::TokenizerError;

use crate::gguf::GgufFile;
use hf_json::{HfStream, HfTokenizer};
use vocab::{Vocab, VocabInput, attr};

/// A tokenizer: text ↔ token ids.
pub struct Tokenizer {
    inner: Inner,
}

enum Inner {
    Gguf(Box<Vocab>),
    Hf(Box<HfTokenizer>),
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner {
            Inner::Gguf(v) => format!("{:?}", v.kind),
            Inner::Hf(_) => "tokenizer.json".to_owned(),
        };
        f.debug_struct("Tokenizer")
            .field("kind", &kind)
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

impl Tokenizer {
    /// The tokenizer described by a model's `tokenizer.ggml.*` metadata.
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        Self::from_input(load_gguf::read(file)?)
    }

    pub(crate) fn from_input(input: VocabInput) -> Result<Tokenizer, TokenizerError> {
        Ok(Tokenizer {
            inner: Inner::Gguf(Box::new(Vocab::build(input)?)),
        })
    }

    /// A tokenizer from a Hugging Face `tokenizer.json`.
    pub fn from_tokenizer_json(bytes: &[u8]) -> Result<Tokenizer, TokenizerError> {
        Ok(Tokenizer {
            inner: Inner::Hf(Box::new(HfTokenizer::from_bytes(bytes)?)),
        })
    }

    /// Token ids for `text`. `add_special`: add BOS/EOS as the model asks
    /// (`tokenizer.ggml.add_bos_token` / `add_eos_token`, llama.cpp's defaults when absent).
    /// `parse_special`: recognise control-token text such as `<|eot_id|>` as that token
    /// (user-defined tokens are always recognised, as in llama.cpp).
    pub fn encode(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        match &self.inner {
            Inner::Gguf(v) => encode::encode(v, text, add_special, parse_special),
            Inner::Hf(h) => h.encode(text, add_special, parse_special),
        }
    }

    /// Text for `ids`. BOS/EOS and other control tokens give no text; SPM's leading space is
    /// dropped unless the sequence starts with BOS (as llama.cpp's `llama_detokenize`).
    /// Invalid UTF-8 (e.g. a sequence cut inside a character) becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        match &self.inner {
            Inner::Gguf(v) => {
                check_ids(v, ids)?;
                Ok(String::from_utf8_lossy(&decode::detokenize(v, ids)).into_owned())
            }
            Inner::Hf(h) => h.decode(ids),
        }
    }

    /// The raw vocabulary piece of a token (e.g. `"▁Hello"`, `"<0x0A>"`, `"ĠHello"`).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        match &self.inner {
            Inner::Gguf(v) => v.tokens.get(id as usize).map(String::as_str),
            Inner::Hf(h) => h.token_text(id),
        }
    }

    pub fn vocab_size(&self) -> usize {
        match &self.inner {
            Inner::Gguf(v) => v.n_tokens(),
            Inner::Hf(h) => h.vocab_size(),
        }
    }

    pub fn bos_id(&self) -> Option<u32> {
        match &self.inner {
            Inner::Gguf(v) => v.bos,
            Inner::Hf(h) => h.bos,
        }
    }

    pub fn eos_id(&self) -> Option<u32> {
        match &self.inner {
            Inner::Gguf(v) => v.eos,
            Inner::Hf(h) => h.eos,
        }
    }

    /// Whether generation should stop at `id`: EOS, EOT, `<|eot_id|>`, `<|im_end|>`, ...
    /// (llama.cpp's end-of-generation set).
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        match &self.inner {
            Inner::Gguf(v) => v.eog.contains(&id),
            Inner::Hf(h) => h.is_end_of_generation(id),
        }
    }

    /// Whether `encode(.., add_special = true, ..)` starts with BOS.
    pub fn add_bos(&self) -> bool {
        match &self.inner {
            Inner::Gguf(v) => v.add_bos && v.bos.is_some(),
            Inner::Hf(h) => h.add_bos,
        }
    }

    /// Whether `id` is a control token (BOS, EOS, `<|im_start|>`, ...), whose text `decode` drops.
    pub fn is_control(&self, id: u32) -> bool {
        match &self.inner {
            Inner::Gguf(v) => v.attr(id) & (attr::CONTROL | attr::UNKNOWN) != 0,
            Inner::Hf(h) => h.is_special(id),
        }
    }

    /// An incremental decoder for generated tokens that only ever returns whole characters.
    pub fn stream_decoder(&self) -> StreamDecoder<'_> {
        let state = match &self.inner {
            Inner::Gguf(_) => StreamState::Bytes(Vec::new()),
            Inner::Hf(_) => StreamState::Hf(HfStream::new()),
        };
        StreamDecoder {
            tokenizer: self,
            state,
        }
    }
}

fn check_ids(v: &Vocab, ids: &[u32]) -> Result<(), TokenizerError> {
    match ids.iter().find(|&&id| id as usize >= v.n_tokens()) {
        Some(&id) => Err(TokenizerError::IdOutOfRange {
            id,
            vocab_size: v.n_tokens(),
        }),
        None => Ok(()),
    }
}

/// Incremental, UTF-8-safe decoding of generated tokens. Each token's piece is appended as is
/// (no leading-space removal or space clean-up: those apply to whole sequences); bytes of a
/// character split across byte tokens are held back until the character is complete.
pub struct StreamDecoder<'a> {
    tokenizer: &'a Tokenizer,
    state: StreamState,
}

enum StreamState {
    /// Bytes not yet returned (an unfinished UTF-8 sequence).
    Bytes(Vec<u8>),
    Hf(HfStream),
}

impl StreamDecoder<'_> {
    /// The text completed by `id` (`""` when it ends inside a character or has no text).
    pub fn push(&mut self, id: u32) -> Result<String, TokenizerError> {
        match (&self.tokenizer.inner, &mut self.state) {
            (Inner::Gguf(v), StreamState::Bytes(pending)) => {
                check_ids(v, &[id])?;
                pending.extend_from_slice(&decode::piece(v, id));
                let mut out = String::new();
                decode::drain_utf8(pending, &mut out);
                Ok(out)
            }
            (Inner::Hf(h), StreamState::Hf(s)) => s.push(h, id),
            _ => Ok(String::new()),
        }
    }

    /// Whatever is held back, with an unfinished character as U+FFFD; resets the decoder.
    pub fn finish(&mut self) -> String {
        match (&self.tokenizer.inner, &mut self.state) {
            (Inner::Gguf(_), StreamState::Bytes(pending)) => {
                let out = String::from_utf8_lossy(pending).into_owned();
                pending.clear();
                out
            }
            (Inner::Hf(h), StreamState::Hf(s)) => s.finish(h),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests;
