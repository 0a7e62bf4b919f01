//! `hearth bench conversation|shared-prefix|document`: the cache scenarios of DESIGN.md, measured;
//! `hearth bench serve`: the server engine's decode throughput at several concurrent streams;
//! `hearth bench embed`: indexing a long document by meaning and ranking questions.
//! Each prints a table, writes JSON with `--json`, and an SVG plot with `--plot FILE`. Without
//! `--model` they run on a small generated model (so they run anywhere).

mod conversation;
mod document;
mod embed;
mod model;
mod plot;
mod serve;
mod shared_prefix;

use anyhow::Result;

#[derive(clap::Subcommand)]
pub enum Scenario {
    /// Scenario 1: a long multi-turn chat; per turn, the KV memory held and the time to first
    /// token with the cache versus recomputing the whole history.
    Conversation(conversation::Args),
    /// Scenario 2: many requests sharing one long prefix; hit rate and TTFT P50/P99, cold
    /// versus warm.
    SharedPrefix(shared_prefix::Args),
    /// Scenario 3: questions about one long document, encoded once (in windows when it is
    /// larger than the context); each question's TTFT and prefilled tokens; with --restart,
    /// restoring the document from disk versus recomputing it.
    Document(document::Args),
    /// The server's engine (scheduler, batched decode) with 1, 2, 4, 8 concurrent streams:
    /// aggregate and per-stream decode tok/s and TTFT, in process (no HTTP).
    Serve(serve::Args),
    /// Indexing a long document by meaning (chunks embedded per second, total time) and the
    /// retrieval time each question adds.
    Embed(embed::Args),
}

impl Scenario {
    pub fn run(self) -> Result<()> {
        match self {
            Scenario::Conversation(a) => conversation::run(a),
            Scenario::SharedPrefix(a) => shared_prefix::run(a),
            Scenario::Document(a) => document::run(a),
            Scenario::Serve(a) => serve::run(a),
            Scenario::Embed(a) => embed::run(a),
        }
    }
}

/// The value at quantile `q` (nearest rank) of `xs`.
fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}
