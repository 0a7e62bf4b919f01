//! `hearth tokenize`: text → token ids with the model's own tokenizer.

use std::path::PathBuf;

use anyhow::{Context, Result};
use hearth::tokenizer::Tokenizer;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: PathBuf,
    #[arg(long, conflicts_with = "text_file", required_unless_present = "text_file")]
    text: Option<String>,
    #[arg(long)]
    text_file: Option<PathBuf>,
    /// Do not add BOS/EOS (by default they are added as the model's metadata says).
    #[arg(long)]
    no_special: bool,
    /// Recognise special-token text such as `<|eot_id|>` as single tokens.
    #[arg(long)]
    parse_special: bool,
    /// Print `{"ids":[...]}` (the default prints ids and pieces, one per line).
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let file = super::util::open_model(&args.model)?;
    let tokenizer = Tokenizer::from_gguf(&file).context("cannot build the tokenizer")?;
    let text = match (&args.text, &args.text_file) {
        (Some(t), _) => t.clone(),
        (None, Some(p)) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read {}", p.display()))?,
        (None, None) => unreachable!("clap requires one of --text / --text-file"),
    };
    let ids = tokenizer.encode(&text, !args.no_special, args.parse_special)?;
    if args.json {
        return super::util::print_json(&json!({ "ids": ids }));
    }
    for id in ids {
        println!("{id:>8} {:?}", tokenizer.token_text(id).unwrap_or(""));
    }
    Ok(())
}
