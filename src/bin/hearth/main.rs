//! The `hearth` command-line tool. Other tools and tests drive Hearth through it, so command
//! names, flags and JSON fields are a stable contract (see README "CLI").

mod backend;
mod bench;
mod bench_profile;
mod cache;
mod cached_generate;
mod chat;
mod doc;
mod doc_generate;
mod doc_search;
mod embed;
mod generate;
mod inspect;
mod make_test_model;
mod scenario;
mod score;
mod serve;
mod tokenize;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hearth",
    version,
    about = "Local LLM chat with a persistent, visible KV cache"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a GGUF model's metadata, tensors and memory estimate.
    Inspect(inspect::Args),
    /// Tokenize text with a model's tokenizer.
    Tokenize(tokenize::Args),
    /// Run a token sequence through the model and print the top logits at chosen positions.
    Score(score::Args),
    /// Generate text from a prompt.
    Generate(generate::Args),
    /// Chat in the terminal over the app's engine and cache (/stats, /new, /quit).
    Chat(chat::Args),
    /// Serve the model over an OpenAI-compatible HTTP API (loopback by default).
    Serve(serve::Args),
    /// Measure prompt processing and generation speed (in the spirit of llama-bench).
    Bench(bench::Args),
    /// The KV cache's disk tier: stats, verify, clear.
    Cache(cache::Args),
    /// Documents: add (and encode), search, list, rm.
    Doc(doc::Args),
    /// A text's sentence embedding (the model documents are searched by meaning with).
    Embed(embed::Args),
    /// Write a deterministic random-weight model (tests, benchmarks, 7B-shaped presets).
    MakeTestModel(make_test_model::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Tokenize(a) => tokenize::run(a),
        Command::Score(a) => score::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Chat(a) => chat::run(a),
        Command::MakeTestModel(a) => make_test_model::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Cache(a) => cache::run(a),
        Command::Doc(a) => doc::run(a),
        Command::Embed(a) => embed::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
