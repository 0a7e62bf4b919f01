//! Building a [`ChatTemplate`] from a GGUF file's tokenizer metadata.

use super::{ChatTemplate, ChatTemplateError, FallbackTemplate};
use crate::gguf::GgufFile;

impl ChatTemplate {
    /// The template from `tokenizer.chat_template`, or the documented fallback (module docs).
    /// BOS/EOS text comes from `tokenizer.ggml.tokens[tokenizer.ggml.{bos,eos}_token_id]`
    /// (empty when the id is absent).
    pub fn from_gguf(file: &GgufFile) -> Result<ChatTemplate, ChatTemplateError> {
        let source = file.opt_str("tokenizer.chat_template")?;
        let tokens = match file.get("tokenizer.ggml.tokens") {
            Some(_) => file.get_str_array("tokenizer.ggml.tokens")?,
            None => Vec::new(),
        };
        let token_text = |key: &'static str| -> Result<String, ChatTemplateError> {
            let Some(id) = file.opt_u64(key)? else {
                return Ok(String::new());
            };
            usize::try_from(id)
                .ok()
                .and_then(|i| tokens.get(i))
                .map(|text| (*text).to_owned())
                .ok_or(ChatTemplateError::TokenIdOutOfRange {
                    key,
                    id,
                    vocab_size: tokens.len(),
                })
        };
        let bos = token_text("tokenizer.ggml.bos_token_id")?;
        let eos = token_text("tokenizer.ggml.eos_token_id")?;
        match source {
            Some(source) => Self::build(source, &bos, &eos, None),
            None => {
                let arch = file.opt_str("general.architecture")?;
                let fallback = FallbackTemplate::choose(arch, tokens.iter().copied());
                Self::build(fallback.source(), &bos, &eos, Some(fallback))
            }
        }
    }
}
