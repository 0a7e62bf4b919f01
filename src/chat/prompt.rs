//! Prompt assembly: the whole conversation rendered with the model's chat template (with the
//! assistant's opening), tokenized; when it does not fit the context with room for the reply,
//! the oldest turns are dropped (the system prompt and the new message are kept) and the
//! caller reports it — never a silent cut.

use crate::tokenizer::{ChatMessage, ChatTemplate, Tokenizer};

use super::error::ChatError;

/// A rendered, tokenized prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub tokens: Vec<u32>,
    /// Messages of the history left out to fit the context.
    pub dropped_messages: usize,
    /// Tokens the reply may use: the requested maximum, or less when the context is short.
    pub reply_budget: usize,
}

/// Tokens kept free for the reply: `max_tokens`, but at most a quarter of the context, so a
/// large `maxTokens` on a small context does not push every earlier turn out (the reply still
/// runs until the context is full, then stops with reason "length").
pub fn reply_reserve(max_tokens: usize, context: usize) -> usize {
    max_tokens.min(context / 4).max(1)
}

/// Renders and tokenizes `messages` (the system prompt, if any, first; the new user message
/// last), dropping the oldest turns until prompt + reply reserve fits in `context`.
pub fn build_prompt(
    template: &ChatTemplate,
    tokenizer: &Tokenizer,
    messages: &[ChatMessage],
    context: usize,
    max_tokens: usize,
) -> Result<Prompt, ChatError> {
    let reserve = reply_reserve(max_tokens, context);
    let system = usize::from(messages.first().is_some_and(|m| m.role == "system"));
    let mut kept: Vec<ChatMessage> = messages.to_vec();
    let mut dropped = 0;
    loop {
        let tokens = tokenize(template, tokenizer, &kept)?;
        let turns = kept.len() - system;
        if tokens.len() + reserve <= context || turns <= 1 {
            if tokens.len() >= context {
                return Err(ChatError::PromptTooLong {
                    prompt_tokens: tokens.len(),
                    context,
                });
            }
            let reply_budget = max_tokens.min(context - tokens.len());
            return Ok(Prompt {
                tokens,
                dropped_messages: dropped,
                reply_budget,
            });
        }
        // Drop the oldest message after the system prompt, and any assistant reply it leaves
        // at the front (templates expect a user turn first).
        kept.remove(system);
        dropped += 1;
        while kept.len() - system > 1 && kept.get(system).is_some_and(|m| m.role != "user") {
            kept.remove(system);
            dropped += 1;
        }
    }
}

/// The rendered conversation as token ids. The template writes BOS itself where the model
/// wants it; a BOS is added only when the model asks for one and the text did not start with it.
pub fn tokenize(
    template: &ChatTemplate,
    tokenizer: &Tokenizer,
    messages: &[ChatMessage],
) -> Result<Vec<u32>, ChatError> {
    let text = template.render_with_system_fallback(messages, true)?;
    tokenize_rendered(tokenizer, &text)
}

/// Rendered template text as token ids (special tokens parsed), with a BOS in front when the
/// model asks for one and the text did not start with it.
pub fn tokenize_rendered(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>, ChatError> {
    let mut tokens = tokenizer.encode(text, false, true)?;
    if let Some(bos) = tokenizer.bos_id().filter(|_| tokenizer.add_bos())
        && tokens.first() != Some(&bos)
    {
        tokens.insert(0, bos);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::reply_reserve;

    #[test]
    fn reserve_is_capped_by_a_quarter_of_the_context() {
        assert_eq!(reply_reserve(1024, 512), 128);
        assert_eq!(reply_reserve(100, 4096), 100);
        assert_eq!(reply_reserve(0, 4096), 1);
    }
}
