//! A request → what the engine runs: the model name checked, sampling settings validated
//! (anything unsupported refused by name), messages rendered with the model's chat template,
//! the prompt tokenized and checked against the context, the token budget capped by it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::engine::SamplerConfig;
use crate::tokenizer::{ChatMessage, ChatTemplate, Tokenizer};

use super::error::ApiError;
use super::types::{
    ChatCompletionRequest, CompletionRequest, Content, Message, PromptInput, SamplingParams,
    StreamOptions,
};

/// At most this many stop strings, each at most [`MAX_STOP_BYTES`] (the stop scanner's cost per
/// token grows with them).
pub const MAX_STOPS: usize = 16;
pub const MAX_STOP_BYTES: usize = 256;
/// A completion's default token budget when the request names none (OpenAI's default).
pub const DEFAULT_COMPLETION_TOKENS: usize = 16;

/// The model this server serves, and what preparing a prompt needs of it.
pub struct ServedModel {
    /// The API's name for it: the file name without `.gguf`.
    pub id: String,
    /// The file name, also accepted as `model`.
    pub file_name: String,
    /// The context it is served with, in tokens.
    pub context: usize,
    pub tokenizer: Arc<Tokenizer>,
    pub template: ChatTemplate,
    /// Unix seconds at load, the `created` of `/v1/models`.
    pub created: u64,
}

impl ServedModel {
    /// `model` may be the served id or the model's file name.
    pub fn check_name(&self, requested: &str) -> Result<(), ApiError> {
        if requested == self.id || requested == self.file_name {
            Ok(())
        } else {
            Err(ApiError::model_not_found(requested, &self.id))
        }
    }
}

/// A request ready for the engine.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
    pub stop: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The sampler settings and stop strings of a request, or a 400 naming the bad parameter.
pub fn sampling(p: &SamplingParams) -> Result<(SamplerConfig, Vec<String>), ApiError> {
    if let Some(n) = p.n
        && n != 1
    {
        return Err(ApiError::unsupported(
            "n",
            format!("n = {n} is not supported: this server returns exactly one choice (n = 1)"),
        ));
    }
    for (name, v) in [
        ("frequency_penalty", p.frequency_penalty),
        ("presence_penalty", p.presence_penalty),
    ] {
        if let Some(v) = v
            && v != 0.0
        {
            return Err(ApiError::unsupported(
                name,
                format!(
                    "{name} is not supported by this server's sampler (only 0 is accepted); \
                     `repeat_penalty` is available instead"
                ),
            ));
        }
    }
    let logprobs = match &p.logprobs {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false)) => false,
        Some(serde_json::Value::Number(n)) => n.as_u64() != Some(0),
        Some(_) => true,
    };
    if logprobs {
        return Err(ApiError::unsupported(
            "logprobs",
            "logprobs are not supported by this server",
        ));
    }
    let temperature = p.temperature.unwrap_or(1.0);
    if !(temperature.is_finite() && (0.0..=2.0).contains(&temperature)) {
        return Err(ApiError::invalid_param(
            "temperature",
            format!("temperature must be between 0 and 2, got {temperature}"),
        ));
    }
    let top_p = p.top_p.unwrap_or(1.0);
    if !(top_p.is_finite() && top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid_param(
            "top_p",
            format!("top_p must be greater than 0 and at most 1, got {top_p}"),
        ));
    }
    let min_p = p.min_p.unwrap_or(0.0);
    if !(min_p.is_finite() && (0.0..=1.0).contains(&min_p)) {
        return Err(ApiError::invalid_param(
            "min_p",
            format!("min_p must be between 0 and 1, got {min_p}"),
        ));
    }
    let repeat_penalty = p.repeat_penalty.unwrap_or(1.0);
    if !(repeat_penalty.is_finite() && repeat_penalty > 0.0) {
        return Err(ApiError::invalid_param(
            "repeat_penalty",
            format!("repeat_penalty must be greater than 0, got {repeat_penalty}"),
        ));
    }
    let stop = p.stop.clone().map(|s| s.into_vec()).unwrap_or_default();
    if stop.len() > MAX_STOPS {
        return Err(ApiError::invalid_param(
            "stop",
            format!(
                "at most {MAX_STOPS} stop strings are accepted, got {}",
                stop.len()
            ),
        ));
    }
    if let Some(long) = stop.iter().find(|s| s.len() > MAX_STOP_BYTES) {
        return Err(ApiError::invalid_param(
            "stop",
            format!(
                "a stop string may be at most {MAX_STOP_BYTES} bytes, got one of {}",
                long.len()
            ),
        ));
    }
    let seed = match p.seed {
        Some(s) => s as u64,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    };
    let config = SamplerConfig {
        temperature,
        top_k: p
            .top_k
            .map_or(0, |k| usize::try_from(k).unwrap_or(usize::MAX)),
        top_p,
        min_p,
        repeat_penalty,
        repeat_last_n: 64,
        seed,
    };
    Ok((config, stop))
}

/// The reply's token budget: the request's (`max_completion_tokens` over `max_tokens`), else
/// `default`, never more than the context leaves after the prompt.
fn budget(
    p: &SamplingParams,
    default: Option<usize>,
    prompt_tokens: usize,
    context: usize,
) -> Result<usize, ApiError> {
    let (name, requested) = match (p.max_completion_tokens, p.max_tokens) {
        (Some(n), _) => ("max_completion_tokens", Some(n)),
        (None, Some(n)) => ("max_tokens", Some(n)),
        (None, None) => ("max_tokens", None),
    };
    if requested == Some(0) {
        return Err(ApiError::invalid_param(
            name,
            format!("{name} must be at least 1"),
        ));
    }
    let left = context.saturating_sub(prompt_tokens);
    let wanted = requested
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .or(default)
        .unwrap_or(left);
    Ok(wanted.min(left))
}

fn check_context(prompt: &[u32], context: usize, param: &str) -> Result<(), ApiError> {
    if prompt.is_empty() {
        return Err(ApiError::invalid_param(param, "the prompt is empty"));
    }
    if prompt.len() >= context {
        return Err(ApiError::context_exceeded(prompt.len(), context).with_param(param));
    }
    Ok(())
}

fn message_text(i: usize, m: &Message) -> Result<String, ApiError> {
    let param = format!("messages[{i}].content");
    match &m.content {
        Some(Content::Text(t)) => Ok(t.clone()),
        Some(Content::Parts(parts)) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                match (part.kind.as_str(), &part.text) {
                    ("text", Some(t)) => text.push_str(t),
                    ("text", None) => {
                        return Err(ApiError::invalid_param(
                            &format!("{param}[{j}].text"),
                            "a text part needs `text`",
                        ));
                    }
                    (other, _) => {
                        return Err(ApiError::unsupported(
                            &format!("{param}[{j}].type"),
                            format!(
                                "content parts of type `{other}` are not supported (text only)"
                            ),
                        ));
                    }
                }
            }
            Ok(text)
        }
        None if m.role == "assistant" => Ok(String::new()),
        None => Err(ApiError::invalid_param(
            &param,
            format!("a `{}` message needs `content`", m.role),
        )),
    }
}

/// The chat messages as the template takes them (`developer` is the system role).
pub fn chat_messages(messages: &[Message]) -> Result<Vec<ChatMessage>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "`messages` must hold at least one message",
        ));
    }
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                other => {
                    return Err(ApiError::unsupported(
                        &format!("messages[{i}].role"),
                        format!(
                            "the role `{other}` is not supported (system, developer, user, assistant)"
                        ),
                    ));
                }
            };
            Ok(ChatMessage::new(role, message_text(i, m)?))
        })
        .collect()
}

/// A chat completion request → prompt tokens and settings. CPU work (template, tokenizer):
/// call it off the async executor.
pub fn prepare_chat(
    model: &ServedModel,
    req: &ChatCompletionRequest,
) -> Result<Prepared, ApiError> {
    model.check_name(&req.model)?;
    let params = req.sampling();
    let (sampler, stop) = sampling(&params)?;
    if let Some(tools) = &req.tools
        && !(tools.is_null() || tools.as_array().is_some_and(|a| a.is_empty()))
    {
        return Err(ApiError::unsupported(
            "tools",
            "tools (function calling) are not supported by this server",
        ));
    }
    let messages = chat_messages(&req.messages)?;
    let text = model
        .template
        .render_with_system_fallback(&messages, true)
        .map_err(|e| {
            ApiError::invalid_param(
                "messages",
                format!("the model's chat template cannot render these messages: {e}"),
            )
        })?;
    // The template writes BOS itself (as `hearth generate --chat` does).
    let prompt = model
        .tokenizer
        .encode(&text, false, true)
        .map_err(|e| ApiError::invalid_param("messages", format!("cannot tokenize: {e}")))?;
    let streaming = (req.stream, req.stream_options.as_ref());
    prepared(
        model,
        prompt,
        "messages",
        None,
        &params,
        (sampler, stop),
        streaming,
    )
}

/// A text completion request → prompt tokens and settings (BOS as the model's metadata says,
/// as `hearth generate` does).
pub fn prepare_completion(
    model: &ServedModel,
    req: &CompletionRequest,
) -> Result<Prepared, ApiError> {
    model.check_name(&req.model)?;
    let params = req.sampling();
    let (sampler, stop) = sampling(&params)?;
    if req.echo == Some(true) {
        return Err(ApiError::unsupported(
            "echo",
            "echo is not supported by this server",
        ));
    }
    if let Some(b) = req.best_of
        && b != 1
    {
        return Err(ApiError::unsupported(
            "best_of",
            format!("best_of = {b} is not supported (only 1)"),
        ));
    }
    if req.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::unsupported(
            "suffix",
            "suffix is not supported by this server",
        ));
    }
    let text = match &req.prompt {
        PromptInput::Text(t) => t.as_str(),
        PromptInput::Texts(v) if v.len() == 1 => v[0].as_str(),
        PromptInput::Texts(v) => {
            return Err(ApiError::unsupported(
                "prompt",
                format!(
                    "a list of {} prompts is not supported: send one prompt",
                    v.len()
                ),
            ));
        }
    };
    if text.is_empty() {
        return Err(ApiError::invalid_param("prompt", "the prompt is empty"));
    }
    let prompt = model
        .tokenizer
        .encode(text, true, true)
        .map_err(|e| ApiError::invalid_param("prompt", format!("cannot tokenize: {e}")))?;
    let streaming = (req.stream, req.stream_options.as_ref());
    let default = Some(DEFAULT_COMPLETION_TOKENS);
    prepared(
        model,
        prompt,
        "prompt",
        default,
        &params,
        (sampler, stop),
        streaming,
    )
}

/// The prompt checked against the context (`param` names it in the error), the reply's token
/// budget, and the sampling and streaming settings, as the engine takes them.
fn prepared(
    model: &ServedModel,
    prompt: Vec<u32>,
    param: &str,
    default_tokens: Option<usize>,
    params: &SamplingParams,
    (sampler, stop): (SamplerConfig, Vec<String>),
    (stream, options): (Option<bool>, Option<&StreamOptions>),
) -> Result<Prepared, ApiError> {
    check_context(&prompt, model.context, param)?;
    let max_tokens = budget(params, default_tokens, prompt.len(), model.context)?;
    Ok(Prepared {
        prompt,
        max_tokens,
        sampler,
        stop,
        stream: stream.unwrap_or(false),
        include_usage: options.and_then(|o| o.include_usage).unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::types::Stop;

    #[test]
    fn unsupported_and_out_of_range_parameters_are_named() {
        let bad = [
            (
                SamplingParams {
                    n: Some(2),
                    ..Default::default()
                },
                "n",
            ),
            (
                SamplingParams {
                    frequency_penalty: Some(0.5),
                    ..Default::default()
                },
                "frequency_penalty",
            ),
            (
                SamplingParams {
                    presence_penalty: Some(-1.0),
                    ..Default::default()
                },
                "presence_penalty",
            ),
            (
                SamplingParams {
                    temperature: Some(3.0),
                    ..Default::default()
                },
                "temperature",
            ),
            (
                SamplingParams {
                    top_p: Some(0.0),
                    ..Default::default()
                },
                "top_p",
            ),
            (
                SamplingParams {
                    logprobs: Some(serde_json::json!(true)),
                    ..Default::default()
                },
                "logprobs",
            ),
            (
                SamplingParams {
                    stop: Some(Stop::Many(vec!["x".into(); MAX_STOPS + 1])),
                    ..Default::default()
                },
                "stop",
            ),
            (
                SamplingParams {
                    stop: Some(Stop::One("y".repeat(MAX_STOP_BYTES + 1))),
                    ..Default::default()
                },
                "stop",
            ),
        ];
        for (p, name) in bad {
            let e = sampling(&p).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(name), "{e:?}");
            assert_eq!(e.status.as_u16(), 400);
        }
        let ok = SamplingParams {
            n: Some(1),
            frequency_penalty: Some(0.0),
            temperature: Some(0.0),
            seed: Some(-5),
            stop: Some(Stop::One("\n".into())),
            ..Default::default()
        };
        let (cfg, stop) = sampling(&ok).unwrap();
        assert!(cfg.is_greedy());
        assert_eq!(stop, vec!["\n".to_string()]);
    }

    #[test]
    fn budget_is_capped_by_the_context_and_zero_is_refused() {
        let p = SamplingParams {
            max_tokens: Some(1000),
            ..Default::default()
        };
        assert_eq!(budget(&p, None, 100, 512).unwrap(), 412);
        let p = SamplingParams {
            max_tokens: Some(1000),
            max_completion_tokens: Some(5),
            ..Default::default()
        };
        assert_eq!(budget(&p, None, 100, 512).unwrap(), 5);
        assert_eq!(
            budget(&SamplingParams::default(), Some(16), 10, 512).unwrap(),
            16
        );
        assert_eq!(
            budget(&SamplingParams::default(), None, 10, 512).unwrap(),
            502
        );
        let p = SamplingParams {
            max_tokens: Some(0),
            ..Default::default()
        };
        assert_eq!(
            budget(&p, None, 1, 8).unwrap_err().param.as_deref(),
            Some("max_tokens")
        );
    }

    #[test]
    fn roles_and_content_parts() {
        let msgs: Vec<Message> = serde_json::from_value(serde_json::json!([
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]},
            {"role": "assistant", "content": null},
        ]))
        .unwrap();
        let out = chat_messages(&msgs).unwrap();
        assert_eq!(out[0].role, "system");
        assert_eq!(out[1].content, "hi there");
        assert_eq!(out[2].content, "");
        let tool: Vec<Message> =
            serde_json::from_value(serde_json::json!([{"role": "tool", "content": "x"}])).unwrap();
        assert_eq!(
            chat_messages(&tool).unwrap_err().param.as_deref(),
            Some("messages[0].role")
        );
        let image: Vec<Message> = serde_json::from_value(serde_json::json!([
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
        ]))
        .unwrap();
        assert!(chat_messages(&image).is_err());
        assert!(chat_messages(&[]).is_err());
    }
}
