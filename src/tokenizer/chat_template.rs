//! Chat templates: turning a conversation into the prompt text a model was trained on.
//!
//! A GGUF carries its model's Hugging Face Jinja template in `tokenizer.chat_template`;
//! [`ChatTemplate`] renders it with minijinja the way HF's `apply_chat_template` does:
//! `trim_blocks` and `lstrip_blocks` on, one trailing newline dropped, Python string/dict methods
//! (`.strip()`, `.split()`, `.startswith()`, `.items()`, ...), `raise_exception(msg)`,
//! `strftime_now(fmt)` and HF's `tojson`.
//!
//! Context given to every template: `messages` (a list of `{role, content}`),
//! `add_generation_prompt`, `bos_token`, `eos_token` (token *text*), `tools = none`, and
//! `date_string` (today as `"26 Jul 2024"`, the format Llama 3.1's template expects).
//! `enable_thinking` is left undefined, so templates use their own default.
//!
//! **Fallback.** When the GGUF has no template, [`ChatTemplate::from_gguf`] uses ChatML, as
//! llama.cpp does, unless the vocabulary or architecture says the model was trained on another
//! format: a Llama 3 vocabulary gets the Llama 3 header format and any other `llama`-architecture
//! model without `<|im_start|>` gets the Llama 2 `[INST]` format (see [`FallbackTemplate`]).
//! [`ChatTemplate::is_fallback`] is then true.
//!
//! **Untrusted templates.** The source is capped at [`MAX_TEMPLATE_BYTES`]; a render runs on a
//! fixed instruction budget (minijinja fuel), so a runaway loop fails with
//! [`ChatTemplateError::OutOfFuel`] instead of hanging, and its output is capped (see
//! [`ChatTemplate::render`]). What fuel cannot bound is a template that grows a string by
//! doubling it a few dozen times (`{% set ns.s = ns.s + ns.s %}`): each step is one cheap
//! instruction and minijinja has no memory hook, so such a template can still allocate a lot.

mod environment;
mod fallback;
mod from_gguf;

use std::time::SystemTime;

use minijinja::{ErrorKind, Value, context};
use serde::{Deserialize, Serialize};

use environment::{
    CappedOutput, Clock, FUEL_PER_RENDER, RaisedException, SharedEnv, TEMPLATE_NAME,
};
pub use fallback::FallbackTemplate;

/// Largest template source accepted. Real templates are under 20 KB.
pub const MAX_TEMPLATE_BYTES: usize = 1 << 20;

/// Output cap of a render: this much, plus [`OUTPUT_BYTES_PER_INPUT_BYTE`] × the bytes of the
/// messages and tokens given (a template prints each message once, with some markup).
pub const OUTPUT_BASE_BYTES: usize = 1 << 20;
pub const OUTPUT_BYTES_PER_INPUT_BYTE: usize = 4;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `"system"`, `"user"` or `"assistant"`.
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// Why a template could not be built or rendered.
#[derive(Debug, thiserror::Error)]
pub enum ChatTemplateError {
    #[error("chat template is {len} bytes, over the {limit}-byte limit")]
    TemplateTooLarge { len: usize, limit: usize },
    #[error("chat template syntax error{}: {detail}", at_line(*.line))]
    Syntax { line: Option<usize>, detail: String },
    /// The template called `raise_exception(message)` (e.g. unsupported role order).
    #[error("chat template raised an error{}: {message}", at_line(*.line))]
    Raised {
        line: Option<usize>,
        message: String,
    },
    #[error("chat template ran past its budget of {fuel} instructions (runaway loop?)")]
    OutOfFuel { fuel: u64 },
    #[error("chat template output passed the {limit}-byte limit")]
    OutputTooLarge { limit: usize },
    #[error("chat template failed{}: {detail}", at_line(*.line))]
    Render { line: Option<usize>, detail: String },
    #[error("GGUF metadata for the chat template: {0}")]
    Gguf(#[from] crate::gguf::GgufError),
    #[error("{key} = {id} is outside the vocabulary of {vocab_size} tokens")]
    TokenIdOutOfRange {
        key: &'static str,
        id: u64,
        vocab_size: usize,
    },
}

fn at_line(line: Option<usize>) -> String {
    line.map(|n| format!(" at line {n}")).unwrap_or_default()
}

impl ChatTemplateError {
    fn from_compile(err: &minijinja::Error) -> Self {
        ChatTemplateError::Syntax {
            line: err.line(),
            detail: detail_of(err),
        }
    }

    fn from_render(err: &minijinja::Error, output: &CappedOutput) -> Self {
        if output.overflowed {
            return ChatTemplateError::OutputTooLarge {
                limit: output.limit,
            };
        }
        if err.kind() == ErrorKind::OutOfFuel {
            return ChatTemplateError::OutOfFuel {
                fuel: FUEL_PER_RENDER,
            };
        }
        // raise_exception's marker may sit below wrappers minijinja adds (macro calls, filters).
        let mut source = std::error::Error::source(err);
        while let Some(e) = source {
            if let Some(raised) = e.downcast_ref::<RaisedException>() {
                return ChatTemplateError::Raised {
                    line: err.line(),
                    message: raised.0.clone(),
                };
            }
            source = e.source();
        }
        ChatTemplateError::Render {
            line: err.line(),
            detail: detail_of(err),
        }
    }
}

fn detail_of(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    }
}

/// A compiled chat template with the BOS/EOS token text it renders with.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    env: SharedEnv,
    source: String,
    bos_token: String,
    eos_token: String,
    fallback: Option<FallbackTemplate>,
    clock: Clock,
}

impl ChatTemplate {
    /// Compiles `source` (a HF Jinja chat template). `bos_token`/`eos_token` are the token texts
    /// the template sees, e.g. `"<s>"` and `"</s>"`.
    pub fn new(
        source: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<ChatTemplate, ChatTemplateError> {
        Self::build(source, bos_token, eos_token, None)
    }

    /// The fallback template chosen for a model without one (see [`FallbackTemplate`]).
    pub fn fallback(
        kind: FallbackTemplate,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<ChatTemplate, ChatTemplateError> {
        Self::build(kind.source(), bos_token, eos_token, Some(kind))
    }

    fn build(
        source: &str,
        bos_token: &str,
        eos_token: &str,
        fallback: Option<FallbackTemplate>,
    ) -> Result<ChatTemplate, ChatTemplateError> {
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(ChatTemplateError::TemplateTooLarge {
                len: source.len(),
                limit: MAX_TEMPLATE_BYTES,
            });
        }
        let env = environment::build(source).map_err(|e| ChatTemplateError::from_compile(&e))?;
        Ok(ChatTemplate {
            env: env.into(),
            source: source.to_owned(),
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
            fallback,
            clock: Clock::System,
        })
    }

    /// True when the GGUF had no template and a fallback is in use.
    pub fn is_fallback(&self) -> bool {
        self.fallback.is_some()
    }

    /// Which fallback is in use, if any.
    pub fn fallback_kind(&self) -> Option<FallbackTemplate> {
        self.fallback
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The BOS token text the template renders with.
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// The EOS token text the template renders with.
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders with `now` fixed (UTC) for `strftime_now` and `date_string` — for reproducible
    /// prompts and tests. By default the system clock and local time zone are used.
    pub fn with_fixed_now(mut self, now: SystemTime) -> Self {
        self.clock = Clock::Fixed(now);
        self
    }

    /// Renders the conversation. With `add_generation_prompt` the text that opens an assistant
    /// turn is appended. Output is capped at [`OUTPUT_BASE_BYTES`] +
    /// [`OUTPUT_BYTES_PER_INPUT_BYTE`] × the input size.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, ChatTemplateError> {
        let date_string =
            self.clock
                .strftime("%d %b %Y")
                .map_err(|e| ChatTemplateError::Render {
                    line: None,
                    detail: detail_of(&e),
                })?;
        let ctx = context! {
            messages => Value::from(minijinja::value::Serde(messages)),
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
            tools => Value::from(()),
            date_string => date_string,
        };
        let template =
            self.env
                .get_template(TEMPLATE_NAME)
                .map_err(|e| ChatTemplateError::Render {
                    line: None,
                    detail: detail_of(&e),
                })?;
        let mut output = CappedOutput::new(self.output_limit(messages));
        let rendered =
            environment::with_clock(self.clock, || template.render_captured_to(ctx, &mut output));
        if let Err(err) = rendered {
            return Err(ChatTemplateError::from_render(&err, &output));
        }
        String::from_utf8(output.buf).map_err(|e| ChatTemplateError::Render {
            line: None,
            detail: format!("output is not UTF-8: {e}"),
        })
    }

    fn output_limit(&self, messages: &[ChatMessage]) -> usize {
        let input: usize = messages
            .iter()
            .map(|m| m.role.len() + m.content.len())
            .chain([self.bos_token.len(), self.eos_token.len()])
            .fold(0, usize::saturating_add);
        input
            .saturating_mul(OUTPUT_BYTES_PER_INPUT_BYTE)
            .saturating_add(OUTPUT_BASE_BYTES)
    }

    /// Whether the template accepts a leading system message and shows its text. False for
    /// templates that raise on it (Mistral 7B Instruct v0.1/v0.2) or silently drop it.
    pub fn supports_system_role(&self) -> bool {
        const PROBE: &str = "Hearth system probe 7f3a";
        let messages = [ChatMessage::system(PROBE), ChatMessage::user("Hi")];
        matches!(self.render(&messages, true), Ok(text) if text.contains(PROBE))
    }

    /// [`render`](Self::render), but when the template raises and the conversation starts with
    /// a system message, renders again with the system text folded into the first user message
    /// as `"{system}\n{user}"` (llama.cpp's `system_message_not_supported` workaround; with no
    /// user message the system text becomes one, where llama.cpp would drop it).
    pub fn render_with_system_fallback(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, ChatTemplateError> {
        match self.render(messages, add_generation_prompt) {
            Err(ChatTemplateError::Raised { .. })
                if messages.first().is_some_and(|m| m.role == "system") =>
            {
                self.render(&fold_system_message(messages), add_generation_prompt)
            }
            other => other,
        }
    }
}

/// Moves a leading system message into the first user message (or makes it a user message
/// when there is none).
fn fold_system_message(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    let Some((system, rest)) = messages.split_first() else {
        return Vec::new();
    };
    let mut folded = rest.to_vec();
    match folded.iter_mut().find(|m| m.role == "user") {
        Some(user) => user.content = format!("{}\n{}", system.content, user.content),
        None => folded.insert(0, ChatMessage::user(system.content.clone())),
    }
    folded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_prepends_system_to_first_user() {
        let folded = fold_system_message(&[
            ChatMessage::system("Be brief."),
            ChatMessage::user("Hi"),
            ChatMessage::assistant("Hello"),
            ChatMessage::user("Again"),
        ]);
        assert_eq!(folded[0], ChatMessage::user("Be brief.\nHi"));
        assert_eq!(folded[2], ChatMessage::user("Again"));
        assert_eq!(folded.len(), 3);
    }

    #[test]
    fn fold_without_user_makes_a_user_message() {
        let folded = fold_system_message(&[ChatMessage::system("S")]);
        assert_eq!(folded, vec![ChatMessage::user("S")]);
    }
}
