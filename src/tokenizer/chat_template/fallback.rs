//! Templates used when a GGUF carries no `tokenizer.chat_template`.
//!
//! llama.cpp falls back to ChatML for every model. That is right for Qwen2 (and any vocabulary
//! that has `<|im_start|>`), but a Llama-architecture model without those tokens was trained
//! on something else, and ChatML markers would reach it as plain text. So, in order:
//! 1. the vocabulary has `<|im_start|>` → ChatML (llama.cpp's exact fallback source);
//! 2. it has `<|start_header_id|>` and `<|eot_id|>` → the Llama 3 header format;
//! 3. `general.architecture` is `llama` → the Llama 2 chat format (`[INST]`, `<<SYS>>`),
//!    which Llama 2 chat and Mistral 7B Instruct v0.1/v0.2 (both `llama` in GGUF) follow;
//! 4. anything else → ChatML, as llama.cpp.

/// The fallback chosen for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackTemplate {
    ChatMl,
    Llama3,
    Llama2,
}

impl FallbackTemplate {
    /// Picks the fallback from the architecture name and the vocabulary's token texts.
    pub fn choose<'a>(
        architecture: Option<&str>,
        vocab: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let (mut im_start, mut header, mut eot) = (false, false, false);
        for piece in vocab {
            match piece {
                "<|im_start|>" => im_start = true,
                "<|start_header_id|>" => header = true,
                "<|eot_id|>" => eot = true,
                _ => {}
            }
        }
        if im_start {
            FallbackTemplate::ChatMl
        } else if header && eot {
            FallbackTemplate::Llama3
        } else if architecture == Some("llama") {
            FallbackTemplate::Llama2
        } else {
            FallbackTemplate::ChatMl
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            FallbackTemplate::ChatMl => CHATML,
            FallbackTemplate::Llama3 => LLAMA3,
            FallbackTemplate::Llama2 => LLAMA2,
        }
    }
}

/// llama.cpp's `CHATML_TEMPLATE_SRC` (common/chat.cpp), verbatim.
pub const CHATML: &str = "{%- for message in messages -%}\n  {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n  {{- '<|im_start|>assistant\\n' -}}\n{%- endif -%}";

/// Meta's Llama 3 Instruct template (tokenizer_config.json of Meta-Llama-3-8B-Instruct).
pub const LLAMA3: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/// Meta's Llama 2 chat template (tokenizer_config.json of Llama-2-7b-chat-hf).
pub const LLAMA2: &str = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
