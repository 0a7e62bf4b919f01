//! Conversations over the engine: prompt assembly with the model's chat template, KV reuse
//! between turns (and the reason when it cannot), streaming replies, and the counters the app
//! shows. No UI or Tauri types: the desktop shell (`src-tauri/`) and the CLI sit on top.
//!
//! Each conversation that ran since the model was loaded keeps a sequence in the paged KV pool
//! (least recently used ones are evicted when a turn needs the room). A turn renders the whole
//! conversation (append-only across turns), keeps the longest common prefix with what its
//! sequence holds, prefills only the rest, and leaves its reply in the cache for the next turn.

mod documents;
mod engine;
mod error;
mod history;
mod library;
mod model_file;
mod prompt;
mod residency;
mod retrieval;
mod reuse;
mod semantic;
mod sequence;
mod stats;
mod turn;
mod types;

pub use documents::{
    DocWindow, TurnDocument, WINDOW_OVERLAP_TOKENS, WindowPlan, document_block, plan_windows,
    route, system_with_documents, window_budget,
};
pub use engine::{ChatEngine, EncodeReport, EncodedWindow, EveryWindowOutcome, TurnOutcome};
pub use error::ChatError;
pub use history::{TurnPrompt, assemble, extend_exact, history_tokens, reply_segment};
pub use library::{TURN_HITS, import_document, turn_document, turn_document_with, turn_documents};
pub use model_file::{
    effective_context, file_content_hash, memory_plan, model_info, open_model_file,
    parameter_label, plan_file, planned_options, planned_options_typed,
};
pub use prompt::{Prompt, build_prompt, reply_reserve, tokenize_rendered};
pub use residency::{Arrival, Residency};
pub use retrieval::{ChunkCosine, FoundBy, RRF_K, WindowScore, rank_windows};
pub use reuse::{
    REASON_CONTEXT_FULL, REASON_EVICTED, REASON_FIRST_TURN, REASON_MODEL_RELOADED, REASON_TEMPLATE,
    common_prefix, recompute_reason,
};
pub use semantic::{
    IndexReport, index_document, question_cosines, shared_embedder, shared_embedder_async,
};
pub use sequence::{GpuSequence, SequenceModel};
pub use stats::ChatStats;
pub use turn::{TurnRequest, TurnResult, finish_turn, prepare_turn, run_turn};
pub use types::{
    AdapterInfo, ChatEvent, LoadEvent, MemoryPlan, ModelInfo, StatsSnapshot, TurnEvent,
};
