//! Tokenizers built from GGUF metadata, and chat templates.

pub mod chat_template;
pub use chat_template::{ChatMessage, ChatTemplate, ChatTemplateError};
