//! Reads the tokenizer's GGUF metadata (`tokenizer.ggml.*`) into a [`VocabInput`].

use crate::gguf::{GgufError, GgufFile};

use super::TokenizerError;
use super::vocab::{SpecialIds, VocabInput};

const P: &str = "tokenizer.ggml.";

fn key(name: &str) -> String {
    format!("{P}{name}")
}

/// An optional id key (`Ok(None)` when absent); any integer type that fits u64.
fn opt_id(file: &GgufFile, name: &str) -> Result<Option<u64>, TokenizerError> {
    Ok(file.opt_u64(&key(name))?)
}

/// `scores`: llama.cpp accepts f32 or i32 arrays.
fn scores(file: &GgufFile) -> Result<Option<Vec<f32>>, TokenizerError> {
    let k = key("scores");
    if file.get(&k).is_none() {
        return Ok(None);
    }
    match file.get_f32_array(&k) {
        Ok(v) => Ok(Some(v)),
        Err(GgufError::WrongType { .. }) => Ok(Some(
            file.get_i32_array(&k)?
                .into_iter()
                .map(|s| s as f32)
                .collect(),
        )),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn read(file: &GgufFile) -> Result<VocabInput, TokenizerError> {
    let model = file.get_str(&key("model"))?.to_owned();
    let pre = file.opt_str(&key("pre"))?.map(str::to_owned);
    let tokens = file
        .get_str_array(&key("tokens"))?
        .into_iter()
        .map(str::to_owned)
        .collect();
    let token_types = match file.get(&key("token_type")) {
        Some(_) => Some(file.get_i32_array(&key("token_type"))?),
        None => None,
    };
    let merges = match file.get(&key("merges")) {
        Some(_) => Some(
            file.get_str_array(&key("merges"))?
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
        None => None,
    };
    let ids = SpecialIds {
        bos: opt_id(file, "bos_token_id")?,
        eos: opt_id(file, "eos_token_id")?,
        eot: opt_id(file, "eot_token_id")?,
        eom: opt_id(file, "eom_token_id")?,
        unk: opt_id(file, "unknown_token_id")?,
        fim_pre: opt_id(file, "fim_pre_token_id")?.or(opt_id(file, "prefix_token_id")?),
        fim_suf: opt_id(file, "fim_suf_token_id")?.or(opt_id(file, "suffix_token_id")?),
        fim_mid: opt_id(file, "fim_mid_token_id")?.or(opt_id(file, "middle_token_id")?),
        fim_pad: opt_id(file, "fim_pad_token_id")?,
        fim_rep: opt_id(file, "fim_rep_token_id")?,
        fim_sep: opt_id(file, "fim_sep_token_id")?,
    };
    Ok(VocabInput {
        model,
        pre,
        tokens,
        scores: scores(file)?,
        token_types,
        merges,
        ids,
        add_bos: file.opt_bool(&key("add_bos_token"))?,
        add_eos: file.opt_bool(&key("add_eos_token"))?,
        add_space_prefix: file.opt_bool(&key("add_space_prefix"))?,
        model_name: file.opt_str("general.name")?.map(str::to_owned),
        arch: file.opt_str("general.architecture")?.map(str::to_owned),
    })
}
