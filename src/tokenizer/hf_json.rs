//! Tokenizers from a Hugging Face `tokenizer.json`, run by the `tokenizers` crate (the
//! reference implementation of that format).
//!
//! `tokenizer.json` does not say which tokens are BOS and EOS (that lives in
//! `tokenizer_config.json`), so they are inferred: tokens the post-processor adds around a
//! probe text are BOS/EOS and "added by default"; otherwise the first present of the usual
//! names.

use std::sync::OnceLock;

use super::TokenizerError;
use super::vocab::EOG_TEXTS;

const BOS_NAMES: &[&str] = &["<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>"];
const EOS_NAMES: &[&str] = &[
    "<|end_of_text|>",
    "</s>",
    "<eos>",
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
];

pub(crate) struct HfTokenizer {
    tok: tokenizers::Tokenizer,
    /// The same tokenizer with special tokens treated as plain text (`parse_special = false`).
    literal: OnceLock<tokenizers::Tokenizer>,
    /// Token text by id (`tokenizers` hands out owned strings).
    texts: Vec<String>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    eog: Vec<u32>,
    special: Vec<u32>,
}

fn hf_err(e: impl std::fmt::Display) -> TokenizerError {
    TokenizerError::HuggingFace(e.to_string())
}

impl HfTokenizer {
    pub fn from_bytes(bytes: &[u8]) -> Result<HfTokenizer, TokenizerError> {
        let tok = tokenizers::Tokenizer::from_bytes(bytes).map_err(hf_err)?;
        let vocab = tok.get_vocab(true);
        if vocab.is_empty() {
            return Err(TokenizerError::EmptyVocab);
        }
        let max_id = vocab.values().copied().max().unwrap_or(0) as usize;
        if max_id >= u32::MAX as usize {
            return Err(TokenizerError::VocabTooLarge(max_id));
        }
        let mut texts = vec![String::new(); max_id + 1];
        for (text, id) in vocab {
            if let Some(slot) = texts.get_mut(id as usize) {
                *slot = text;
            }
        }
        let mut special: Vec<u32> = tok
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .collect();
        special.sort_unstable();
        let by_name = |names: &[&str]| names.iter().find_map(|n| tok.token_to_id(n));

        // Probe what the post-processor adds.
        let plain = tok.encode("a", false).map_err(hf_err)?;
        let with = tok.encode("a", true).map_err(hf_err)?;
        let (plain, with) = (plain.get_ids(), with.get_ids());
        let (mut bos, mut eos, mut add_bos) = (None, None, false);
        if with.len() > plain.len()
            && let Some(start) = with.windows(plain.len().max(1)).position(|w| w == plain)
        {
            if start > 0 {
                bos = with.first().copied();
                add_bos = true;
            }
            if start + plain.len() < with.len() {
                eos = with.last().copied();
            }
        }
        let bos = bos.or_else(|| by_name(BOS_NAMES));
        let eos = eos.or_else(|| by_name(EOS_NAMES));
        let mut eog: Vec<u32> = special
            .iter()
            .copied()
            .filter(|&id| {
                texts
                    .get(id as usize)
                    .is_some_and(|t| EOG_TEXTS.contains(&t.as_str()))
            })
            .collect();
        eog.extend(eos);
        Ok(HfTokenizer {
            tok,
            literal: OnceLock::new(),
            texts,
            bos,
            eos,
            add_bos,
            eog,
            special,
        })
    }

    pub fn encode(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        let tok = if parse_special {
            &self.tok
        } else {
            self.literal.get_or_init(|| {
                let mut t = self.tok.clone();
                t.set_encode_special_tokens(true);
                t
            })
        };
        Ok(tok
            .encode(text, add_special)
            .map_err(hf_err)?
            .get_ids()
            .to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.check_ids(ids)?;
        self.tok.decode(ids, true).map_err(hf_err)
    }

    pub fn check_ids(&self, ids: &[u32]) -> Result<(), TokenizerError> {
        match ids.iter().find(|&&id| id as usize >= self.texts.len()) {
            Some(&id) => Err(TokenizerError::IdOutOfRange {
                id,
                vocab_size: self.texts.len(),
            }),
            None => Ok(()),
        }
    }

    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.texts.get(id as usize).map(String::as_str)
    }

    pub fn vocab_size(&self) -> usize {
        self.texts.len()
    }

    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.special.binary_search(&id).is_ok()
    }
}

/// Incremental decoding for `tokenizers`: decode the tokens since the last emitted text with
/// some context before them, and emit the new suffix once it no longer ends in U+FFFD (an
/// unfinished character). The context keeps decoders that strip a leading space (Metaspace)
/// from stripping it mid-stream.
pub(crate) struct HfStream {
    ids: Vec<u32>,
    prefix: String,
    prefix_index: usize,
}

impl HfStream {
    pub fn new() -> HfStream {
        HfStream {
            ids: Vec::new(),
            prefix: String::new(),
            prefix_index: 0,
        }
    }

    pub fn push(&mut self, hf: &HfTokenizer, id: u32) -> Result<String, TokenizerError> {
        hf.check_ids(&[id])?;
        self.ids.push(id);
        let text = hf.tok.decode(&self.ids, true).map_err(hf_err)?;
        if text.len() <= self.prefix.len()
            || text.ends_with('\u{FFFD}')
            || !text.is_char_boundary(self.prefix.len())
        {
            return Ok(String::new());
        }
        let new_text = text[self.prefix.len()..].to_owned();
        self.ids.drain(..self.prefix_index);
        self.prefix = hf.tok.decode(&self.ids, true).map_err(hf_err)?;
        self.prefix_index = self.ids.len();
        Ok(new_text)
    }

    pub fn finish(&mut self, hf: &HfTokenizer) -> String {
        let text = hf.tok.decode(&self.ids, true).unwrap_or_default();
        let rest = text.get(self.prefix.len()..).unwrap_or_default().to_owned();
        *self = HfStream::new();
        rest
    }
}
