//! Exact token histories. Each message keeps the token ids it put into the model's context
//! ([`TokenSegment`]): a user turn the rendered text between the previous reply and the new
//! generation, a reply the ids the model generated (with its end-of-turn token). Turn N's
//! prompt is the history's exact ids + the newly rendered suffix, whenever the template
//! renders append-only — checked by rendering: the new rendering must extend turn N−1's
//! prompt text, and the reply must appear right after it. Otherwise the whole conversation is
//! rendered again (and the turn says why). So a reply is never re-tokenized into ids the model
//! did not produce, and the blocks it left in the cache match the next turn's prefix.

use crate::store::{Message, Role, TokenSegment};
use crate::tokenizer::{ChatMessage, ChatTemplate, Tokenizer};

use super::error::ChatError;
use super::prompt::{build_prompt, reply_reserve};

/// A turn's prompt and the segment the new user message contributes.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnPrompt {
    pub tokens: Vec<u32>,
    /// Messages of the history left out to fit the context.
    pub dropped_messages: usize,
    /// Tokens the reply may use.
    pub reply_budget: usize,
    /// What the new user message puts into the context: the suffix after the history's ids,
    /// or (`base`) the whole prompt when it was rendered afresh.
    pub user_segment: TokenSegment,
    /// Whether the prompt extends the history's exact ids.
    pub extended: bool,
}

/// The prompt for `messages` (system?, history, new user message): the history's exact ids +
/// the rendered suffix when the template renders append-only and it fits; else the whole
/// conversation rendered (dropping the oldest turns to fit, see [`build_prompt`]).
pub fn assemble(
    template: &ChatTemplate,
    tokenizer: &Tokenizer,
    messages: &[ChatMessage],
    history: &[Message],
    model: &str,
    context: usize,
    max_tokens: usize,
) -> Result<TurnPrompt, ChatError> {
    let reply_ids = history
        .last()
        .filter(|m| m.role == Role::Assistant)
        .and_then(|m| m.tokens.as_ref())
        .map(|t| t.ids.as_slice());
    if let (Some(exact), Some(reply_ids)) = (history_tokens(history, model), reply_ids)
        && let Some((tokens, suffix)) =
            extend_exact(template, tokenizer, messages, &exact, reply_ids)?
        && tokens.len() + reply_reserve(max_tokens, context) <= context
    {
        let reply_budget = max_tokens.min(context - tokens.len());
        return Ok(TurnPrompt {
            tokens,
            dropped_messages: 0,
            reply_budget,
            user_segment: TokenSegment {
                model: model.to_string(),
                base: false,
                ids: suffix,
            },
            extended: true,
        });
    }
    let p = build_prompt(template, tokenizer, messages, context, max_tokens)?;
    Ok(TurnPrompt {
        user_segment: TokenSegment {
            model: model.to_string(),
            base: true,
            ids: p.tokens.clone(),
        },
        tokens: p.tokens,
        dropped_messages: p.dropped_messages,
        reply_budget: p.reply_budget,
        extended: false,
    })
}

/// How far into the rendered assistant turn its content may start (role headers such as
/// "<|im_start|>assistant\n" are already in the previous prompt; templates add at most a
/// space or a newline).
const MAX_REPLY_OFFSET: usize = 16;

/// The exact ids of `history` for `model`: the segments from the last base segment on,
/// concatenated. None when a message after it has no segment for this model (an older row,
/// a cancelled reply, another model).
pub fn history_tokens(history: &[Message], model: &str) -> Option<Vec<u32>> {
    let start = history.iter().rposition(|m| {
        m.tokens
            .as_ref()
            .is_some_and(|t| t.base && t.model == model)
    })?;
    let mut ids = Vec::new();
    for m in &history[start..] {
        match &m.tokens {
            Some(t) if t.model == model => ids.extend_from_slice(&t.ids),
            _ => return None,
        }
    }
    Some(ids)
}

/// A prompt extending the history's ids, and the suffix ids appended to them.
pub type Extended = (Vec<u32>, Vec<u32>);

/// The new prompt as history ids + rendered suffix, or None when the template does not render
/// append-only here (the caller renders everything). `messages` is the whole conversation with
/// the new user message last and the previous reply just before it; `exact` the history's ids
/// (ending with that reply's segment, `reply_ids`). Returns the prompt and the suffix ids (the
/// new user message's segment).
pub fn extend_exact(
    template: &ChatTemplate,
    tokenizer: &Tokenizer,
    messages: &[ChatMessage],
    exact: &[u32],
    reply_ids: &[u32],
) -> Result<Option<Extended>, ChatError> {
    let n = messages.len();
    if n < 3 || messages[n - 2].role != Role::Assistant.as_str() {
        return Ok(None);
    }
    let reply = messages[n - 2].content.trim();
    if reply.is_empty() {
        return Ok(None);
    }
    let before = template.render_with_system_fallback(&messages[..n - 2], true)?;
    let now = template.render_with_system_fallback(messages, true)?;
    let Some(rest) = now.strip_prefix(before.as_str()) else {
        return Ok(None);
    };
    let Some(at) = rest.find(reply).filter(|&at| at <= MAX_REPLY_OFFSET) else {
        return Ok(None);
    };
    let mut end = at + reply.len();
    // A reply that ended with an end-of-turn token holds the template's end marker already.
    if let Some(text) = reply_ids
        .last()
        .filter(|&&id| tokenizer.is_end_of_generation(id))
        .and_then(|&id| tokenizer.token_text(id))
        .filter(|t| !t.is_empty())
    {
        let after = &rest[end..];
        let spaces = after.len() - after.trim_start().len();
        if after[spaces..].starts_with(text) {
            end += spaces + text.len();
        }
    }
    let suffix = tokenizer.encode(&rest[end..], false, true)?;
    let mut tokens = Vec::with_capacity(exact.len() + suffix.len());
    tokens.extend_from_slice(exact);
    tokens.extend_from_slice(&suffix);
    Ok(Some((tokens, suffix)))
}

/// The segment a reply leaves: its generated ids and the end-of-turn id that ended it.
pub fn reply_segment(model: &str, generated: &[u32], stop_token: Option<u32>) -> TokenSegment {
    let mut ids = generated.to_vec();
    ids.extend(stop_token);
    TokenSegment {
        model: model.to_string(),
        base: false,
        ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: i64, role: Role, tokens: Option<(bool, &[u32], &str)>) -> Message {
        Message {
            id,
            conversation_id: 1,
            role,
            content: "x".into(),
            created_at: String::new(),
            stats: None,
            tokens: tokens.map(|(base, ids, model)| TokenSegment {
                model: model.into(),
                base,
                ids: ids.to_vec(),
            }),
        }
    }

    #[test]
    fn history_ids_run_from_the_last_base_segment_of_this_model() {
        let h = [
            msg(1, Role::User, Some((true, &[1, 2], "m"))),
            msg(2, Role::Assistant, Some((false, &[3], "m"))),
            msg(3, Role::User, Some((true, &[1, 2, 9], "m"))),
            msg(4, Role::Assistant, Some((false, &[4, 5], "m"))),
        ];
        assert_eq!(history_tokens(&h, "m"), Some(vec![1, 2, 9, 4, 5]));
        assert_eq!(history_tokens(&h, "other"), None, "another model's ids");
        let gap = [
            msg(1, Role::User, Some((true, &[1], "m"))),
            msg(2, Role::Assistant, None),
        ];
        assert_eq!(history_tokens(&gap, "m"), None, "a reply without ids");
        assert_eq!(history_tokens(&[], "m"), None);
    }

    #[test]
    fn reply_segments_keep_the_stop_token() {
        assert_eq!(reply_segment("m", &[5, 6], Some(2)).ids, [5, 6, 2]);
        assert_eq!(reply_segment("m", &[5, 6], None).ids, [5, 6]);
    }
}
