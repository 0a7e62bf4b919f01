//! The generation loop: prefill the prompt, then sample and decode one token per step,
//! streaming UTF-8-safe text, until end-of-generation, a stop string, the token limit or
//! cancellation. It runs over any forward pass given as a closure that takes new tokens and
//! returns the logits of the last one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::engine::sampler::Sampler;
use crate::tokenizer::{Tokenizer, TokenizerError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    EndOfGeneration,
    MaxTokens,
    StopString,
    Cancelled,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndOfGeneration => "eog",
            Self::MaxTokens => "length",
            Self::StopString => "stop",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Debug)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV was already cached and not recomputed.
    pub cached_tokens: usize,
    pub generated: Vec<u32>,
    pub text: String,
    pub prefill_ms: f64,
    /// From the start of the call to the first sampled token.
    pub ttft_ms: f64,
    /// Time spent in decode steps after the first token.
    pub decode_ms: f64,
    pub stop_reason: StopReason,
    /// The end-of-generation token that ended the reply (never fed to the model).
    pub stop_token: Option<u32>,
}

impl GenerationStats {
    pub fn prefill_tok_s(&self) -> f64 {
        rate(self.prompt_tokens - self.cached_tokens, self.prefill_ms)
    }

    /// Tokens per second over the decode steps (the first token comes from the prefill).
    pub fn decode_tok_s(&self) -> f64 {
        rate(self.generated.len().saturating_sub(1), self.decode_ms)
    }
}

fn rate(tokens: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        tokens as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError<E: std::error::Error + 'static> {
    #[error("forward pass failed: {0}")]
    Forward(#[source] E),
    #[error("decoding generated tokens failed: {0}")]
    Decode(#[from] TokenizerError),
    #[error("the prompt is empty")]
    EmptyPrompt,
}

pub struct Generator<'t> {
    pub tokenizer: &'t Tokenizer,
    pub sampler: Sampler,
    pub max_tokens: usize,
    pub stop_strings: Vec<String>,
    pub cancel: Option<&'t AtomicBool>,
}

impl<'t> Generator<'t> {
    /// Generates after `prompt[cached..]` (the first `cached` tokens are already in the
    /// model's cache). `forward` appends tokens to the cache and returns the last logits;
    /// `on_text` receives the streamed text (stop strings are never emitted).
    pub fn run<E, F, T>(
        &mut self,
        prompt: &[u32],
        cached: usize,
        mut forward: F,
        mut on_text: T,
    ) -> Result<GenerationStats, GenerateError<E>>
    where
        E: std::error::Error + 'static,
        F: FnMut(&[u32]) -> Result<Vec<f32>, E>,
        T: FnMut(&str),
    {
        let cached = cached.min(prompt.len());
        if prompt.len() == cached {
            return Err(GenerateError::EmptyPrompt);
        }
        let config = self.sampler.config().clone();
        let sampler = std::mem::replace(&mut self.sampler, Sampler::new(config.clone()));
        let mut run = TokenLoop::new(
            self.tokenizer,
            sampler,
            self.max_tokens,
            self.stop_strings.clone(),
            prompt,
            cached,
            Instant::now(),
        );
        let mut logits = forward(&prompt[cached..]).map_err(GenerateError::Forward)?;
        run.prefilled();
        loop {
            let cancelled = self.cancel.is_some_and(|c| c.load(Ordering::Relaxed));
            match run.next(&logits, cancelled, &mut on_text)? {
                Some(token) => logits = forward(&[token]).map_err(GenerateError::Forward)?,
                None => break,
            }
        }
        // The sampler's state (rng, recent tokens) stays with the generator, as before.
        self.sampler = std::mem::replace(&mut run.sampler, Sampler::new(config));
        Ok(run.finish(&mut on_text))
    }
}

/// One generation's token-by-token state (sampler, streaming decoder, stop strings, figures),
/// driven from outside: [`Generator::run`] feeds it one sequence's logits step by step, the
/// server's scheduler feeds it each running sequence's row of a batched step.
pub struct TokenLoop<'t> {
    tokenizer: &'t Tokenizer,
    sampler: Sampler,
    max_tokens: usize,
    decoder: crate::tokenizer::StreamDecoder<'t>,
    stops: StopScanner,
    stats: GenerationStats,
    start: Instant,
    decode_start: Option<Instant>,
}

impl<'t> TokenLoop<'t> {
    /// A generation after `prompt`, of which the first `cached` tokens were reused; `start`
    /// is when the request began (TTFT and prefill time count from it).
    pub fn new(
        tokenizer: &'t Tokenizer,
        mut sampler: Sampler,
        max_tokens: usize,
        stop_strings: Vec<String>,
        prompt: &[u32],
        cached: usize,
        start: Instant,
    ) -> Self {
        for &t in prompt {
            sampler.accept(t);
        }
        TokenLoop {
            tokenizer,
            sampler,
            max_tokens,
            decoder: tokenizer.stream_decoder(),
            stops: StopScanner::new(stop_strings),
            stats: GenerationStats {
                prompt_tokens: prompt.len(),
                cached_tokens: cached.min(prompt.len()),
                generated: Vec::new(),
                text: String::new(),
                prefill_ms: 0.0,
                ttft_ms: 0.0,
                decode_ms: 0.0,
                stop_reason: StopReason::MaxTokens,
                stop_token: None,
            },
            start,
            decode_start: None,
        }
    }

    /// Sets how many prompt tokens were reused (known once the request holds its sequence).
    pub fn set_cached(&mut self, cached: usize) {
        self.stats.cached_tokens = cached.min(self.stats.prompt_tokens);
    }

    /// The prompt is in the cache: the prefill time ends now.
    pub fn prefilled(&mut self) {
        self.stats.prefill_ms = ms_since(self.start);
    }

    /// Tokens generated so far.
    pub fn generated(&self) -> usize {
        self.stats.generated.len()
    }

    /// Samples the next token from `logits` (the last position's) and streams its text.
    /// Returns the token to feed the model next, or None when the generation is over (end of
    /// generation, stop string, token limit, or `cancelled`).
    pub fn next(
        &mut self,
        logits: &[f32],
        cancelled: bool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Option<u32>, TokenizerError> {
        let stats = &mut self.stats;
        if stats.generated.len() >= self.max_tokens {
            return Ok(None);
        }
        if cancelled {
            stats.stop_reason = StopReason::Cancelled;
            return Ok(None);
        }
        let token = self.sampler.sample(logits);
        if stats.generated.is_empty() {
            stats.ttft_ms = ms_since(self.start);
            self.decode_start = Some(Instant::now());
        }
        if self.tokenizer.is_end_of_generation(token) {
            stats.stop_reason = StopReason::EndOfGeneration;
            stats.stop_token = Some(token);
            return Ok(None);
        }
        stats.generated.push(token);
        self.sampler.accept(token);
        let piece = self.decoder.push(token)?;
        let (emit, hit) = self.stops.feed(&piece);
        stats.text.push_str(&emit);
        on_text(&emit);
        if hit {
            stats.stop_reason = StopReason::StopString;
            return Ok(None);
        }
        if stats.generated.len() == self.max_tokens {
            return Ok(None);
        }
        Ok(Some(token))
    }

    /// Ends the generation: flushes held-back text and returns the figures.
    pub fn finish(mut self, on_text: &mut dyn FnMut(&str)) -> GenerationStats {
        if self.stats.stop_reason != StopReason::StopString {
            let mut tail = self.stops.flush();
            tail.push_str(&self.decoder.finish());
            self.stats.text.push_str(&tail);
            on_text(&tail);
        }
        self.stats.decode_ms = self.decode_start.map(ms_since).unwrap_or(0.0);
        self.stats
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Holds back text that could be the start of a stop string, so a stop string is never
/// streamed, even when it arrives split across tokens.
struct StopScanner {
    stops: Vec<String>,
    pending: String,
}

impl StopScanner {
    fn new(stops: Vec<String>) -> Self {
        Self {
            stops,
            pending: String::new(),
        }
    }

    /// Returns the text safe to emit, and whether a stop string was found (the text before it
    /// is emitted, the rest dropped).
    fn feed(&mut self, piece: &str) -> (String, bool) {
        self.pending.push_str(piece);
        let first_hit = self
            .stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| self.pending.find(s.as_str()))
            .min();
        if let Some(at) = first_hit {
            let emit = self.pending[..at].to_string();
            self.pending.clear();
            return (emit, true);
        }
        let keep = self.longest_stop_prefix_suffix();
        let cut = self.pending.len() - keep;
        let emit = self.pending[..cut].to_string();
        self.pending.drain(..cut);
        (emit, false)
    }

    /// Length of the longest suffix of `pending` that is a proper prefix of a stop string.
    fn longest_stop_prefix_suffix(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            for (len, _) in stop.char_indices().skip(1) {
                if len > best && self.pending.ends_with(&stop[..len]) {
                    best = len;
                }
            }
        }
        best
    }

    fn flush(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::StopScanner;

    #[test]
    fn stop_string_split_across_pieces_is_never_emitted() {
        let stops = vec!["</end>".to_string()];
        let mut s = StopScanner::new(stops);
        let mut out = String::new();
        let mut hit = false;
        for piece in ["Hello </", "en", "d> tail"] {
            let (emit, h) = s.feed(piece);
            out.push_str(&emit);
            if h {
                hit = true;
                break;
            }
        }
        assert!(hit);
        assert_eq!(out, "Hello ");
    }

    #[test]
    fn held_back_prefix_is_released_when_it_does_not_complete() {
        let stops = vec!["STOP".to_string()];
        let mut s = StopScanner::new(stops);
        let (a, _) = s.feed("abc ST");
        assert_eq!(a, "abc ");
        let (b, hit) = s.feed("AY");
        assert!(!hit);
        assert_eq!(b, "STAY");
        assert_eq!(s.flush(), "");
    }
}
