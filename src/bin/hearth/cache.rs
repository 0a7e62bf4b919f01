//! `hearth cache stats|verify|clear --data-dir D`: what the KV cache's disk tier holds (per
//! model fingerprint and per owner), a check of every stored block, and clearing it.

use std::path::PathBuf;

use anyhow::Result;
use hearth::kv::hash::hex;
use hearth::store::kv_blocks::{ClearFilter, VerifyAction};
use serde_json::{Value, json};

use super::cached_generate::open_disk;
use super::util::print_json;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Blocks and bytes on disk, per model fingerprint and per owner.
    Stats(Common),
    /// Check every stored block (length, checksum, hash chain); `--delete` removes bad ones.
    Verify {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        delete: bool,
    },
    /// Delete every stored block (or only one owner's, e.g. `conversation:12`).
    Clear {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        owner: Option<String>,
    },
}

#[derive(clap::Args)]
struct Common {
    /// The data dir holding kv.sqlite (the app's data dir, or any other).
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long)]
    json: bool,
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn emit(json: bool, value: Value, text: String) -> Result<()> {
    if json {
        print_json(&value)
    } else {
        println!("{text}");
        Ok(())
    }
}

pub fn run(args: Args) -> Result<()> {
    match args.action {
        Action::Stats(c) => {
            let disk = open_disk(&c.data_dir, None)?;
            let s = disk.stats()?;
            let models: Vec<Value> = s
                .per_fingerprint
                .iter()
                .map(|u| json!({"fingerprint": hex(&u.key), "blocks": u.blocks, "bytes": u.bytes}))
                .collect();
            let owners: Vec<Value> = s
                .per_owner
                .iter()
                .map(|u| json!({"owner": u.key, "blocks": u.blocks, "bytes": u.bytes}))
                .collect();
            let mut text = format!(
                "{} blocks, {} of {} budget (file {})",
                s.blocks,
                mib(s.bytes),
                mib(s.budget_bytes),
                mib(s.file_bytes)
            );
            for u in &s.per_fingerprint {
                let mut fp = hex(&u.key);
                fp.truncate(16);
                text += &format!("\n  model {fp}…: {} blocks, {}", u.blocks, mib(u.bytes));
            }
            for u in &s.per_owner {
                text += &format!("\n  {}: {} blocks, {}", u.key, u.blocks, mib(u.bytes));
            }
            emit(
                c.json,
                json!({"blocks": s.blocks, "bytes": s.bytes, "budget_bytes": s.budget_bytes,
                       "file_bytes": s.file_bytes, "models": models, "owners": owners}),
                text,
            )
        }
        Action::Verify { common: c, delete } => {
            let disk = open_disk(&c.data_dir, None)?;
            let action = if delete {
                VerifyAction::DeleteInvalid
            } else {
                VerifyAction::ReportOnly
            };
            let r = disk.verify_all(action)?;
            let bad: Vec<Value> = r
                .invalid
                .iter()
                .map(|i| json!({"hash": hex(&i.hash), "reason": i.reason.to_string()}))
                .collect();
            emit(
                c.json,
                json!({"checked": r.checked, "valid": r.valid, "invalid": r.invalid_count,
                       "deleted": r.deleted, "problems": bad}),
                format!(
                    "{} blocks checked: {} valid, {} invalid, {} deleted",
                    r.checked, r.valid, r.invalid_count, r.deleted
                ),
            )
        }
        Action::Clear { common: c, owner } => {
            let disk = open_disk(&c.data_dir, None)?;
            let filter = owner.map_or(ClearFilter::All, ClearFilter::Owner);
            let n = disk.clear(filter)?;
            emit(c.json, json!({"deleted": n}), format!("{n} blocks deleted"))
        }
    }
}
