//! BPE pre-tokenization as llama.cpp does it (`unicode_regex_split`): a list of rules applied in
//! turn, each splitting every current chunk into matches and the gaps between them.
//!
//! Rules are llama.cpp's per `tokenizer.ggml.pre` (`llm_tokenizer_bpe`'s constructor). The common
//! regexes run as ports of llama.cpp's hand-written splitters (`split_custom`); the rest run
//! through the `regex` crate on the same input llama.cpp gives `std::regex`:
//! - a regex using `\p{..}` runs on "collapsed" text (every non-ASCII code point replaced by one
//!   byte standing for its category, non-ASCII whitespace by `\x0B`) with each `\p{X}` rewritten
//!   to `[<X's byte><X's ASCII members>]`, as bytes without Unicode classes;
//! - any other regex runs on the code points with non-ASCII whitespace replaced by `\x0B`.
//!   `regex` has no look-around, so pre-tokenizers needing it beyond the custom splitters are
//!   reported as unsupported.

use super::TokenizerError;
use super::split_custom::{split_gpt2, split_llama3, split_newlines};
use super::unicode::{Category, CptFlags, byte_encode};

/// One splitting step.
#[derive(Debug)]
enum Rule {
    Gpt2,
    Llama3 { max_digits: usize, marks: bool },
    Newlines,
    Collapsed(regex::bytes::Regex),
    Wide(regex::Regex),
}

/// The pre-tokenizer of one BPE vocabulary, with the vocabulary flags that come with its name.
#[derive(Debug)]
pub(crate) struct PreTokenizer {
    rules: Vec<Rule>,
    /// GPT-2 byte-level encoding of each word before BPE (false for SPM-style BPE).
    pub byte_encode: bool,
}

/// Flags llama.cpp sets along with the pre-tokenizer type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PreFlags {
    pub clean_spaces: bool,
    pub ignore_merges: bool,
    /// llama.cpp's default for add_bos with this pre-tokenizer (metadata overrides it).
    pub add_bos: bool,
    /// The pre-tokenizer disables the BOS token (chatglm).
    pub no_bos: bool,
    /// Spaces become "▁" before BPE (SPM-style BPE, e.g. gemma4).
    pub escape_whitespaces: bool,
}

const GPT2: &str = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3: &str = "llama3";
const QWEN2: &str = "qwen2";
const QWEN35: &str = "qwen35";
const NEWLINES: &str = "[^\\n]+|[\\n]+";
const PORO: &str = " ?[^(\\s|.,!?…。，、।۔،)]+";
const DEEPSEEK_LLM: &[&str] = &[
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
];
const DEEPSEEK_CODER: &[&str] = &[
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}",
];
const DEFAULT: &[&str] = &[
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    GPT2,
    "\\p{N}+",
    "[0-9][0-9][0-9]",
];
const FALCON: &[&str] = &["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"];
const STARCODER: &[&str] = &["\\p{N}", GPT2];
const CHAMELEON: &[&str] = &[
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]",
    GPT2,
];

/// The rules and flags for a `tokenizer.ggml.pre` value (`""` = absent, treated as "default").
fn lookup(pre: &str) -> Option<(&'static [&'static str], PreFlags)> {
    let f = |clean_spaces, ignore_merges, add_bos| PreFlags {
        clean_spaces,
        ignore_merges,
        add_bos,
        no_bos: false,
        escape_whitespaces: false,
    };
    let entry: (&'static [&'static str], PreFlags) = match pre {
        "" | "default" => (DEFAULT, f(true, false, false)),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => (&[LLAMA3], f(true, true, true)),
        "dbrx" | "smaug-bpe" => (&[LLAMA3], f(true, false, false)),
        "chatglm-bpe" => (
            &[LLAMA3],
            PreFlags {
                no_bos: true,
                ..f(true, false, false)
            },
        ),
        "glm4" | "glm5" => (
            &[LLAMA3],
            PreFlags {
                no_bos: true,
                ..f(true, true, false)
            },
        ),
        "deepseek-llm" => (DEEPSEEK_LLM, f(false, false, false)),
        "deepseek-coder" => (DEEPSEEK_CODER, f(false, false, false)),
        "falcon" => (FALCON, f(true, false, false)),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
            (STARCODER, f(true, false, false))
        }
        "command-r" | "smollm" => (STARCODER, f(false, false, false)),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en" | "jina-v2-code" | "roberta-bpe"
        | "mpt" | "olmo" | "jais" | "exaone4" => (&[GPT2], f(true, false, false)),
        "trillion" | "granite-docling" => (&[GPT2], f(false, false, false)),
        "stablelm2" | "megrez" => (&[QWEN2], f(true, false, false)),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "solar-open" => {
            (&[QWEN2], f(false, false, false))
        }
        "qwen35" => (&[QWEN35], f(false, false, false)),
        "poro-chat" => (&[PORO], f(false, false, false)),
        "bloom" | "gpt3-finnish" => (&[PORO], f(true, false, false)),
        "viking" => (&[PORO, "\\p{N}"], f(false, false, false)),
        "chameleon" => (CHAMELEON, f(false, false, true)),
        "gemma4" | "granite-embed-multi-311m" => (
            &[NEWLINES],
            PreFlags {
                escape_whitespaces: true,
                ..f(true, false, false)
            },
        ),
        _ => return None,
    };
    Some(entry)
}

impl PreTokenizer {
    /// The pre-tokenizer llama.cpp uses for `pre` (`""` when the key is absent).
    pub fn new(pre: &str) -> Result<(PreTokenizer, PreFlags), TokenizerError> {
        let unsupported = || TokenizerError::UnsupportedPreTokenizer(pre.to_owned());
        let (exprs, flags) = lookup(pre).ok_or_else(unsupported)?;
        let rules = exprs
            .iter()
            .map(|e| compile(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| unsupported())?;
        Ok((
            PreTokenizer {
                rules,
                byte_encode: !flags.escape_whitespaces,
            },
            flags,
        ))
    }

    /// Splits `text` into words (byte-level encoded when `byte_encode`).
    pub fn split(&self, text: &str) -> Vec<String> {
        let cpts: Vec<char> = text.chars().collect();
        let mut lens = vec![cpts.len()];
        for rule in &self.rules {
            let mut next = Vec::with_capacity(lens.len());
            let mut start = 0;
            for &len in &lens {
                let end = start + len;
                match rule {
                    Rule::Gpt2 => split_gpt2(&cpts, start, end, &mut next),
                    Rule::Llama3 { max_digits, marks } => {
                        split_llama3(&cpts, start, end, *max_digits, *marks, &mut next)
                    }
                    Rule::Newlines => split_newlines(&cpts, start, end, &mut next),
                    Rule::Collapsed(re) => split_collapsed(re, &cpts[start..end], &mut next),
                    Rule::Wide(re) => split_wide(re, &cpts[start..end], &mut next),
                }
                start = end;
            }
            lens = next;
        }
        let mut words = Vec::with_capacity(lens.len());
        let mut start = 0;
        for len in lens {
            let word: String = cpts
                .get(start..start + len)
                .unwrap_or_default()
                .iter()
                .collect();
            start += len;
            words.push(if self.byte_encode {
                byte_encode(&word)
            } else {
                word
            });
        }
        words
    }
}

fn compile(expr: &str) -> Result<Rule, regex::Error> {
    Ok(match expr {
        GPT2 => Rule::Gpt2,
        LLAMA3 => Rule::Llama3 {
            max_digits: 3,
            marks: false,
        },
        QWEN2 => Rule::Llama3 {
            max_digits: 1,
            marks: false,
        },
        QWEN35 => Rule::Llama3 {
            max_digits: 1,
            marks: true,
        },
        NEWLINES => Rule::Newlines,
        _ if expr.contains("\\p{") => {
            Rule::Collapsed(regex::bytes::Regex::new(&collapse_regex(expr))?)
        }
        _ => Rule::Wide(regex::Regex::new(expr)?),
    })
}

/// The byte standing for a non-ASCII code point in collapsed text, as in llama.cpp.
fn collapsed_byte(c: char) -> u8 {
    if c.is_ascii() {
        return c as u8;
    }
    match CptFlags::of(c).collapsed_category() {
        Category::Whitespace => 0x0B,
        Category::Number => 0xD1,
        Category::Letter => 0xD2,
        Category::Punctuation => 0xD3,
        Category::AccentMark => 0xD4,
        Category::Symbol => 0xD5,
        Category::Other => 0xD0,
    }
}

/// Class members for `\p{X}` in collapsed text: X's byte plus X's ASCII code points.
fn collapsed_class(name: &str) -> Option<&'static str> {
    Some(match name {
        "N" => r"\xD1\x30-\x39",
        "L" | "Lu" | "Ll" | "Lt" | "Lm" | "Lo" => r"\xD2\x41-\x5A\x61-\x7A",
        "P" => r"\xD3\x21-\x23\x25-\x2A\x2C-\x2F\x3A-\x3B\x3F-\x40\x5B-\x5D\x5F\x7B\x7D",
        "M" => r"\xD4",
        "S" => r"\xD5\x24\x2B\x3C-\x3E\x5E\x60\x7C\x7E",
        _ => return None,
    })
}

/// Rewrites `\p{X}` for collapsed text (llama.cpp's loop: bracketed unless already in `[..]`).
fn collapse_regex(expr: &str) -> String {
    let mut out = String::from("(?-u)");
    let mut inside = false;
    let mut prev = '\0';
    let mut rest = expr;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("\\p{")
            && let Some(close) = after.find('}')
            && let Some(class) = collapsed_class(&after[..close])
        {
            if inside {
                out.push_str(class);
            } else {
                out.push('[');
                out.push_str(class);
                out.push(']');
            }
            rest = &after[close + 1..];
            prev = '}';
            continue;
        }
        if c == '[' && prev != '\\' {
            inside = true;
        } else if c == ']' && inside && prev != '\\' {
            inside = false;
        }
        out.push(c);
        prev = c;
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Pushes the lengths of the matches of `re` in `chunk` and of the gaps between them.
fn push_matches(matches: impl Iterator<Item = (usize, usize)>, total: usize, out: &mut Vec<usize>) {
    let mut last = 0;
    for (start, end) in matches {
        if start > last {
            out.push(start - last);
        }
        if end > start {
            out.push(end - start);
        }
        last = end;
    }
    if last < total {
        out.push(total - last);
    }
}

fn split_collapsed(re: &regex::bytes::Regex, chunk: &[char], out: &mut Vec<usize>) {
    // One byte per code point, so byte offsets are code point offsets.
    let collapsed: Vec<u8> = chunk.iter().map(|&c| collapsed_byte(c)).collect();
    push_matches(
        re.find_iter(&collapsed).map(|m| (m.start(), m.end())),
        chunk.len(),
        out,
    );
}

fn split_wide(re: &regex::Regex, chunk: &[char], out: &mut Vec<usize>) {
    let text: String = chunk
        .iter()
        .map(|&c| {
            if !c.is_ascii() && CptFlags::of(c).is_whitespace() {
                '\u{0B}'
            } else {
                c
            }
        })
        .collect();
    // byte offset -> code point index
    let mut index_of = vec![0usize; text.len() + 1];
    for (i, (at, c)) in text.char_indices().enumerate() {
        index_of[at..at + c.len_utf8()].fill(i);
    }
    index_of[text.len()] = chunk.len();
    let at = |b: usize| index_of.get(b).copied().unwrap_or(chunk.len());
    push_matches(
        re.find_iter(&text).map(|m| (at(m.start()), at(m.end()))),
        chunk.len(),
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pre: &str, text: &str) -> Vec<String> {
        let (p, _) = PreTokenizer::new(pre).unwrap();
        let mut p = p;
        p.byte_encode = false;
        p.split(text)
    }

    #[test]
    fn every_listed_pre_tokenizer_compiles() {
        for pre in [
            "default",
            "llama-bpe",
            "deepseek-llm",
            "deepseek-coder",
            "falcon",
            "starcoder",
            "gpt-2",
            "qwen2",
            "qwen35",
            "poro-chat",
            "viking",
            "chameleon",
            "gemma4",
        ] {
            PreTokenizer::new(pre).unwrap_or_else(|e| panic!("{pre}: {e}"));
        }
        assert!(matches!(
            PreTokenizer::new("tekken"),
            Err(TokenizerError::UnsupportedPreTokenizer(_))
        ));
    }

    #[test]
    fn collapsed_regexes_see_categories() {
        assert_eq!(collapse_regex("\\p{N}+"), r"(?-u)[\xD1\x30-\x39]+");
        assert_eq!(words("starcoder", "ab 12½"), ["ab", " ", "1", "2", "½"]);
        assert_eq!(words("falcon", "x... 1234"), ["x", "...", " ", "123", "4"]);
    }

    #[test]
    fn deepseek_llm_splits_letters_and_cjk() {
        assert_eq!(
            words("deepseek-llm", "Hello 我想 42"),
            ["Hello", " ", "我想", " ", "42"]
        );
    }
}
