//! Counters across replies for `get_stats` (the settings pane; later the cache panel).

use std::collections::VecDeque;

use crate::store::ReplyStats;

use super::types::StatsSnapshot;

/// Latency samples kept for the percentiles.
const SAMPLES: usize = 1000;

#[derive(Debug, Default, Clone)]
pub struct ChatStats {
    prompt_tokens: u64,
    reused_tokens: u64,
    computed_tokens: u64,
    generated_tokens: u64,
    replies: u64,
    kv_tokens_held: u64,
    kv_bytes_per_token: u64,
    kv_conversations_held: u64,
    ttft_ms: VecDeque<f64>,
    decode_tok_s: VecDeque<f64>,
}

fn push_sample(v: &mut VecDeque<f64>, x: f64) {
    if x.is_finite() {
        if v.len() == SAMPLES {
            v.pop_front();
        }
        v.push_back(x);
    }
}

impl ChatStats {
    pub fn record(&mut self, s: &ReplyStats) {
        self.prompt_tokens += u64::from(s.prompt_tokens);
        self.reused_tokens += u64::from(s.reused_tokens);
        self.computed_tokens += u64::from(s.computed_tokens);
        self.generated_tokens += u64::from(s.generated_tokens);
        self.replies += 1;
        if s.generated_tokens > 0 {
            push_sample(&mut self.ttft_ms, s.ttft_ms);
        }
        if s.generated_tokens > 1 {
            push_sample(&mut self.decode_tok_s, s.decode_tok_s);
        }
    }

    /// What the KV cache holds now: tokens, their bytes each, and for how many conversations.
    pub fn set_kv_held(&mut self, tokens: usize, bytes_per_token: u64, conversations: usize) {
        self.kv_tokens_held = tokens as u64;
        self.kv_bytes_per_token = bytes_per_token;
        self.kv_conversations_held = conversations as u64;
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let mut ttft: Vec<f64> = self.ttft_ms.iter().copied().collect();
        ttft.sort_by(f64::total_cmp);
        let ttft_ms_p50 = (!ttft.is_empty()).then(|| ttft[(ttft.len() - 1) / 2]);
        let decode_tok_s_mean = (!self.decode_tok_s.is_empty())
            .then(|| self.decode_tok_s.iter().sum::<f64>() / self.decode_tok_s.len() as f64);
        StatsSnapshot {
            prompt_tokens_total: self.prompt_tokens,
            reused_tokens_total: self.reused_tokens,
            computed_tokens_total: self.computed_tokens,
            generated_tokens_total: self.generated_tokens,
            replies_total: self.replies,
            kv_bytes_held: self.kv_tokens_held.saturating_mul(self.kv_bytes_per_token),
            kv_tokens_held: self.kv_tokens_held,
            kv_conversations_held: self.kv_conversations_held,
            ttft_ms_p50,
            decode_tok_s_mean,
        }
    }
}
