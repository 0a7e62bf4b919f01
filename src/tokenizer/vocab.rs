//! The vocabulary: token texts, scores, attributes, special ids and the flags that steer
//! encoding and decoding, built from plain metadata the way llama.cpp's `llama_vocab::load` does.

use std::collections::{HashMap, HashSet};

use super::TokenizerError;
use super::bpe::Merges;
use super::pretokenize::{PreFlags, PreTokenizer};

/// Token attributes (llama.cpp's `llama_token_attr` bits).
pub(crate) mod attr {
    pub const UNKNOWN: u16 = 1 << 0;
    pub const UNUSED: u16 = 1 << 1;
    pub const NORMAL: u16 = 1 << 2;
    pub const CONTROL: u16 = 1 << 3;
    pub const USER_DEFINED: u16 = 1 << 4;
    pub const BYTE: u16 = 1 << 5;
    pub const LSTRIP: u16 = 1 << 7;
    pub const RSTRIP: u16 = 1 << 8;

    /// `tokenizer.ggml.token_type` value → attribute (unknown values: none, i.e. "undefined").
    pub fn from_token_type(t: i32) -> u16 {
        match t {
            1 => NORMAL,
            2 => UNKNOWN,
            3 => CONTROL,
            4 => USER_DEFINED,
            5 => UNUSED,
            6 => BYTE,
            _ => 0,
        }
    }
}

/// The tokenizer algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// SentencePiece-style BPE over scores (`tokenizer.ggml.model = llama`).
    Spm,
    /// Byte-level BPE over merges (`gpt2`), or SPM-style BPE over merges (`gemma4`).
    Bpe,
}

/// Special-token ids as given in the metadata (`tokenizer.ggml.*_token_id`), unchecked.
#[derive(Debug, Default, Clone)]
pub(crate) struct SpecialIds {
    pub bos: Option<u64>,
    pub eos: Option<u64>,
    pub eot: Option<u64>,
    pub eom: Option<u64>,
    pub unk: Option<u64>,
    pub fim_pre: Option<u64>,
    pub fim_suf: Option<u64>,
    pub fim_mid: Option<u64>,
    pub fim_pad: Option<u64>,
    pub fim_rep: Option<u64>,
    pub fim_sep: Option<u64>,
}

/// Everything the tokenizer reads from a model's metadata, before validation.
#[derive(Debug, Default, Clone)]
pub(crate) struct VocabInput {
    pub model: String,
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    pub scores: Option<Vec<f32>>,
    pub token_types: Option<Vec<i32>>,
    pub merges: Option<Vec<String>>,
    pub ids: SpecialIds,
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
    pub add_space_prefix: Option<bool>,
    /// `general.name`, `general.architecture`: llama.cpp keys a few attribute fixes on them.
    pub model_name: Option<String>,
    pub arch: Option<String>,
}

/// BPE-only state.
#[derive(Debug)]
pub(crate) struct BpeState {
    pub merges: Merges,
    pub pre: PreTokenizer,
    pub ignore_merges: bool,
    pub escape_whitespaces: bool,
}

#[derive(Debug)]
pub(crate) struct Vocab {
    pub kind: Kind,
    pub tokens: Vec<String>,
    pub scores: Vec<f32>,
    pub attrs: Vec<u16>,
    pub token_to_id: HashMap<String, u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eog: HashSet<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub clean_spaces: bool,
    /// Control, user-defined and unknown tokens, longest text first (for special-token matching).
    pub special_by_len: Vec<u32>,
    pub bpe: Option<BpeState>,
}

/// Texts llama.cpp recognises as end-of-turn / end-of-message / FIM tokens when the metadata
/// does not name them.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
/// Texts llama.cpp always treats as end of generation.
pub(crate) const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

impl Vocab {
    pub fn build(input: VocabInput) -> Result<Vocab, TokenizerError> {
        let VocabInput {
            model,
            pre,
            tokens,
            scores,
            token_types,
            merges,
            ids,
            ..
        } = &input;
        let n = tokens.len();
        if n == 0 {
            return Err(TokenizerError::EmptyVocab);
        }
        if u32::try_from(n).is_err() {
            return Err(TokenizerError::VocabTooLarge(n));
        }
        let (kind, default_bos, default_eos, default_unk) = match model.as_str() {
            "llama" => (Kind::Spm, Some(1), Some(2), Some(0)),
            "gpt2" => (Kind::Bpe, Some(11), Some(11), None),
            "gemma4" => (Kind::Bpe, None, None, None),
            other => return Err(TokenizerError::UnsupportedModel(other.to_owned())),
        };
        let scores = match scores {
            Some(s) if s.len() < n => {
                return Err(TokenizerError::LengthMismatch {
                    key: "scores",
                    expected: n,
                    found: s.len(),
                });
            }
            Some(s) => s[..n].to_vec(),
            None => vec![0.0; n],
        };
        let mut attrs = match token_types {
            Some(t) if t.len() < n => {
                return Err(TokenizerError::LengthMismatch {
                    key: "token_type",
                    expected: n,
                    found: t.len(),
                });
            }
            Some(t) => t[..n].iter().map(|&t| attr::from_token_type(t)).collect(),
            None => vec![attr::NORMAL; n],
        };

        let mut token_to_id = HashMap::with_capacity(n);
        let mut texts = Vec::with_capacity(n);
        for (i, text) in tokens.iter().enumerate() {
            let id = i as u32; // n fits in u32, checked above
            let text = if text.is_empty() {
                format!("[EMPTY_{i}]")
            } else {
                text.clone()
            };
            if let Some(first) = token_to_id.insert(text.clone(), id) {
                return Err(TokenizerError::DuplicateToken {
                    text,
                    first,
                    second: id,
                });
            }
            texts.push(text);
        }

        // Pre-tokenizer type and the flags that come with it.
        let pre_name = if model == "gemma4" {
            "gemma4"
        } else {
            pre.as_deref().unwrap_or("")
        };
        let (bpe, flags) = match kind {
            Kind::Spm => (None, None),
            Kind::Bpe => {
                let (pre_tok, flags) = PreTokenizer::new(pre_name)?;
                let merges = Merges::build(merges.as_deref().unwrap_or_default(), &token_to_id)?;
                let state = BpeState {
                    merges,
                    pre: pre_tok,
                    ignore_merges: flags.ignore_merges,
                    escape_whitespaces: flags.escape_whitespaces,
                };
                (Some(state), Some(flags))
            }
        };
        let (mut add_bos, clean_spaces, add_space_prefix_default) = match flags {
            None => (true, false, true),
            Some(PreFlags {
                add_bos,
                clean_spaces,
                ..
            }) => (add_bos, clean_spaces, false),
        };
        let no_bos = flags.is_some_and(|f| f.no_bos);
        let add_space_prefix = input.add_space_prefix.unwrap_or(add_space_prefix_default);

        let check = |key: &str,
                     given: Option<u64>,
                     default: Option<u32>|
         -> Result<Option<u32>, TokenizerError> {
            let default = default.filter(|&d| (d as usize) < n);
            match given {
                None => Ok(default),
                Some(id) if id < n as u64 => Ok(Some(id as u32)),
                Some(id) => Err(TokenizerError::SpecialIdOutOfRange {
                    key: format!("tokenizer.ggml.{key}_token_id"),
                    id,
                    vocab_size: n,
                }),
            }
        };
        let bos = check("bos", ids.bos, if no_bos { None } else { default_bos })?;
        let eos = check("eos", ids.eos, default_eos)?;
        let _unk = check("unknown", ids.unk, default_unk)?;
        let mut eot = check("eot", ids.eot, None)?;
        let mut eom = check("eom", ids.eom, None)?;
        // FIM ids only matter for end-of-generation; out-of-range ones are ignored as llama.cpp does.
        let lenient = |id: Option<u64>| id.filter(|&i| i < n as u64).map(|i| i as u32);
        let (mut fim_pad, mut fim_rep, mut fim_sep) = (
            lenient(ids.fim_pad),
            lenient(ids.fim_rep),
            lenient(ids.fim_sep),
        );

        if let Some(v) = input.add_bos {
            add_bos = v;
        }
        let add_eos = input.add_eos.unwrap_or(false);
        if kind == Kind::Bpe && matches!(pre_name, "gemma4" | "granite-embed-multi-311m") {
            add_bos = true; // llama.cpp forces BOS for Gemma 4
        }

        // Auto-detect special tokens by text when the metadata does not name them, marking each
        // found one as control (llama.cpp does this in hash-map order; we go by id).
        let (mut fim_pre, mut fim_suf, mut fim_mid) = (
            lenient(ids.fim_pre),
            lenient(ids.fim_suf),
            lenient(ids.fim_mid),
        );
        for (id, text) in texts.iter().enumerate() {
            let id = id as u32;
            let slots = [
                (&mut eot, EOT_TEXTS),
                (&mut eom, EOM_TEXTS),
                (&mut fim_pre, FIM_PRE_TEXTS),
                (&mut fim_suf, FIM_SUF_TEXTS),
                (&mut fim_mid, FIM_MID_TEXTS),
                (&mut fim_pad, FIM_PAD_TEXTS),
                (&mut fim_rep, FIM_REP_TEXTS),
                (&mut fim_sep, FIM_SEP_TEXTS),
            ];
            for (slot, list) in slots {
                if slot.is_none() && list.contains(&text.as_str()) {
                    *slot = Some(id);
                    attrs[id as usize] |= attr::CONTROL;
                }
            }
        }

        let mut eog: HashSet<u32> = [fim_pad, fim_rep, fim_sep].into_iter().flatten().collect();
        for (id, text) in texts.iter().enumerate() {
            if EOG_TEXTS.contains(&text.as_str()) {
                eog.insert(id as u32);
                attrs[id] |= attr::CONTROL;
            }
        }
        // gpt-oss: these always render.
        for t in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(&id) = token_to_id.get(t) {
                attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        eog.extend([eos, eot, eom].into_iter().flatten());
        fix_eog_special_cases(&texts, &mut attrs, &mut eog);

        let mut special_by_len: Vec<u32> = (0..n as u32)
            .filter(|&id| {
                attrs[id as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
            })
            .collect();
        special_by_len.sort_by(|&a, &b| {
            texts[b as usize]
                .len()
                .cmp(&texts[a as usize].len())
                .then(a.cmp(&b))
        });

        set_strip_attrs(&input, &texts, &token_to_id, &special_by_len, &mut attrs);

        Ok(Vocab {
            kind,
            tokens: texts,
            scores,
            attrs,
            token_to_id,
            bos,
            eos,
            eog,
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
            special_by_len,
            bpe,
        })
    }

    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }

    pub fn attr(&self, id: u32) -> u16 {
        self.attrs.get(id as usize).copied().unwrap_or(0)
    }

    pub fn id_of(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    /// The token for one raw byte (SPM byte fallback): `<0xXX>`, else the byte itself as text.
    pub fn byte_to_token(&self, b: u8) -> Result<u32, TokenizerError> {
        let hex = format!("<0x{b:02X}>");
        self.id_of(&hex)
            .or_else(|| {
                if b.is_ascii() {
                    self.id_of(std::str::from_utf8(&[b]).unwrap_or_default())
                } else {
                    None
                }
            })
            .ok_or(TokenizerError::NoByteToken(b))
    }
}

/// llama.cpp's two end-of-generation exceptions: with `<|return|>` + `<|call|>` (gpt-oss) or
/// `<|calls|>` + `<|flush|>` (solar-open), `<|end|>` is not EOG; with `<|tool_response>` or
/// `<|plamo:eos|>`, `</s>` is a normal token.
fn fix_eog_special_cases(texts: &[String], attrs: &mut [u16], eog: &mut HashSet<u32>) {
    let text_of = |id: &u32| texts.get(*id as usize).map(String::as_str);
    let has = |eog: &HashSet<u32>, t: &str| eog.iter().find(|id| text_of(id) == Some(t)).copied();
    let (ret, call, calls, flush, end) = (
        has(eog, "<|return|>"),
        has(eog, "<|call|>"),
        has(eog, "<|calls|>"),
        has(eog, "<|flush|>"),
        has(eog, "<|end|>"),
    );
    let has_call = call.is_some() || calls.is_some();
    if let Some(end) = end
        && has_call
        && (ret.is_some() || flush.is_some())
    {
        eog.remove(&end);
        attrs[end as usize] = attr::USER_DEFINED;
    }
    let normal_s_marker =
        has(eog, "<|tool_response>").is_some() || has(eog, "<|plamo:eos|>").is_some();
    if normal_s_marker && let Some(s) = has(eog, "</s>") {
        eog.remove(&s);
        attrs[s as usize] = attr::NORMAL;
    }
}

/// llama.cpp's per-model LSTRIP/RSTRIP attributes (keyed on pre-tokenizer, architecture, name).
fn set_strip_attrs(
    input: &VocabInput,
    texts: &[String],
    token_to_id: &HashMap<String, u32>,
    special_by_len: &[u32],
    attrs: &mut [u16],
) {
    let pre = input.pre.as_deref().unwrap_or("");
    let arch = input.arch.as_deref().unwrap_or("");
    let name = input.model_name.as_deref().unwrap_or("").to_lowercase();
    let mut set = |text: &str, bit: u16, on: bool| {
        if let Some(&id) = token_to_id.get(text) {
            let a = &mut attrs[id as usize];
            *a = if on { *a | bit } else { *a & !bit };
        }
    };
    if ["jina-v2-de", "jina-v2-es", "jina-v2-code"]
        .iter()
        .any(|p| pre.contains(p))
        || ["nomic-bert-moe", "jina-bert-v3"]
            .iter()
            .any(|a| arch.contains(a))
    {
        set("<mask>", attr::LSTRIP, true);
    } else if name.contains("phi-3") || name.contains("phi3") {
        for &id in special_by_len {
            if let Some(t) = texts.get(id as usize) {
                set(t, attr::RSTRIP, true);
            }
        }
        set("</s>", attr::RSTRIP, true);
        for t in ["<unk>", "<s>", "<|endoftext|>"] {
            set(t, attr::RSTRIP, false);
        }
    } else if name.contains("modern-bert") {
        set("[MASK]", attr::LSTRIP, true);
    }
}
