//! `ChatEngine`: the GPU context (or why there is none), the loaded model, and the
//! conversations whose sequences the KV pool holds. A turn renders the whole conversation,
//! reuses the longest prefix its sequence holds, prefills the rest, and streams the reply.

use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::engine::gpu_forward::{GpuForwardError, GpuForwardOptions};
use crate::engine::{GenerationStats, Generator, Sampler, SamplerConfig, StopReason};
use crate::gpu::{GpuContext, GpuInfo};
use crate::kv::Found;
use crate::kv::{DEFAULT_RAM_BUDGET_BYTES, Tiers};
use crate::metrics::Metrics;
use crate::model::ModelConfig;
use crate::quant::GgmlType;
use crate::store::kv_blocks::{KvBlockStore, KvStoreOptions};
use crate::store::{self, Message, ReplyStats, Role, Settings, TokenSegment};
use crate::tokenizer::{ChatMessage, ChatTemplate, Tokenizer};

mod accounting;
mod cache_control;
mod doc_turn;
mod every_window;

use accounting::{finite, record_request, reused_by_tier, stop_reason};

pub use doc_turn::{EncodeReport, EncodedWindow};
pub use every_window::EveryWindowOutcome;

use super::documents::TurnDocument;
use super::error::ChatError;
use super::history::{assemble, reply_segment};
use super::model_file::{
    effective_context, file_content_hash, memory_plan, model_info, open_model_file, plan_file,
    planned_options_typed,
};
use super::residency::Residency;
use super::reuse::recompute_reason;
use super::sequence::{GpuSequence, SequenceModel};
use super::stats::ChatStats;
use super::types::{AdapterInfo, MemoryPlan, ModelInfo, StatsSnapshot, TurnEvent, count_u32};

/// A finished turn: the reply text and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnOutcome {
    pub text: String,
    pub stats: ReplyStats,
    /// The ids the user message put into the context (save with the user message).
    pub user_tokens: TokenSegment,
    /// The reply's ids with its end-of-turn token (None when cancelled before any).
    pub reply_tokens: Option<TokenSegment>,
    /// The generated token ids (for tests and the CLI).
    pub tokens: Vec<u32>,
}

pub struct LoadedModel {
    pub info: ModelInfo,
    /// Hex content hash of the model file: whose token ids a stored segment holds.
    model_id: String,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    sequence: Box<dyn SequenceModel>,
    /// Each conversation's sequence and the tokens it holds.
    residency: Residency,
    kv_bytes_per_token: u64,
    /// Window plans and pinned prefixes of attached documents.
    documents: doc_turn::DocumentState,
    /// The tokens pinned for each pinned conversation (see `cache_control`).
    conversation_pins: std::collections::HashMap<i64, Vec<u32>>,
    /// "f16" or "f32": the KV cache's element type.
    kv_type: &'static str,
}

pub struct ChatEngine {
    gpu: Result<Arc<GpuContext>, String>,
    model: Option<LoadedModel>,
    /// The KV pool's GPU budget for the next load (None: the default, see
    /// [`planned_options`]).
    kv_budget_bytes: Option<u64>,
    /// The RAM tier's budget for the next load.
    ram_budget_bytes: u64,
    /// The disk tier (`kv.sqlite` in the data dir), when one is open.
    kv_disk: Option<KvBlockStore>,
    /// The KV cache's element type for the next load: f16 (true) or f32.
    kv_f16: bool,
    /// Owners whose GPU blocks are never evicted (kept across loads; see `cache_control`).
    pins: std::collections::HashSet<crate::kv::Owner>,
    metrics: Metrics,
    stats: Arc<Mutex<ChatStats>>,
}

/// The plain-words reason for a missing GPU.
fn no_gpu_message(detail: &str) -> String {
    format!(
        "No usable GPU adapter was found (Vulkan/Metal/DX12), so Hearth cannot run models. \
         Install or update your graphics driver (on Linux without a GPU, Mesa's lavapipe: \
         mesa-vulkan-drivers). Details: {detail}"
    )
}

impl ChatEngine {
    /// Opens the GPU (the adapter `HEARTH_ADAPTER` names, or the best one). Without one the
    /// engine still works for everything but loading a model, and says why.
    pub fn new() -> ChatEngine {
        let gpu = GpuContext::new()
            .map(Arc::new)
            .map_err(|e| no_gpu_message(&e.to_string()));
        ChatEngine::with_gpu(gpu)
    }

    pub fn with_gpu(gpu: Result<Arc<GpuContext>, String>) -> ChatEngine {
        ChatEngine {
            gpu,
            model: None,
            kv_budget_bytes: None,
            ram_budget_bytes: DEFAULT_RAM_BUDGET_BYTES,
            kv_disk: None,
            kv_f16: true,
            pins: Default::default(),
            metrics: Metrics::new(),
            stats: Arc::default(),
        }
    }

    /// Sets the KV pool's GPU budget for the next [`ChatEngine::load`] (None: the default;
    /// never less than one context).
    pub fn set_kv_budget(&mut self, bytes: Option<u64>) {
        self.kv_budget_bytes = bytes;
    }

    /// Sets the RAM tier's budget for the next load.
    pub fn set_ram_budget(&mut self, bytes: u64) {
        self.ram_budget_bytes = bytes;
    }

    /// Opens (creating if needed) the disk tier at `path` (`kv.sqlite` in the data dir):
    /// blocks persist there and later processes restore them. Takes effect at the next load.
    pub fn open_kv_disk(&mut self, path: &Path, opts: KvStoreOptions) -> Result<(), ChatError> {
        self.kv_disk = Some(KvBlockStore::open(path, opts)?);
        Ok(())
    }

    /// The disk tier, when open.
    pub fn kv_disk(&self) -> Option<&KvBlockStore> {
        self.kv_disk.as_ref()
    }

    /// The cache's and requests' metrics (shared handle: Prometheus text, the UI snapshot).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Waits until every block handed to the disk tier is committed (clean shutdown, tests).
    pub fn flush_cache(&self) -> Result<(), ChatError> {
        if let Some(d) = &self.kv_disk {
            d.flush()?;
        }
        Ok(())
    }

    pub fn adapter(&self) -> Option<AdapterInfo> {
        self.gpu_info().map(|i| AdapterInfo {
            name: i.name.clone(),
            backend: i.backend.clone(),
            device_type: i.device_type.clone(),
            memory_bytes: None,
            f16: i.features.contains(wgpu::Features::SHADER_F16),
            subgroups: i.features.contains(wgpu::Features::SUBGROUP),
        })
    }

    /// The GPU context models load on (None without an adapter): for other work on the same
    /// device, such as the app's local API server.
    pub fn gpu_context(&self) -> Option<Arc<GpuContext>> {
        self.gpu.as_ref().ok().cloned()
    }

    /// Why there is no GPU, when there is none.
    pub fn adapter_error(&self) -> Option<&str> {
        self.gpu.as_ref().err().map(String::as_str)
    }

    pub fn gpu_info(&self) -> Option<&GpuInfo> {
        self.gpu.as_ref().ok().map(|c| c.info())
    }

    /// The loaded model's id (hex content hash of its file): whose token counts and token
    /// segments are stored under it.
    pub fn model_id(&self) -> Option<&str> {
        self.model.as_ref().map(|m| m.model_id.as_str())
    }

    pub fn model(&self) -> Option<&ModelInfo> {
        self.model.as_ref().map(|m| &m.info)
    }

    /// Shared counters, readable while a reply is being generated.
    pub fn stats_handle(&self) -> Arc<Mutex<ChatStats>> {
        Arc::clone(&self.stats)
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.lock().map(|s| s.snapshot()).unwrap_or_default()
    }

    /// The memory plan for `path` at `context_length` (clamped to what the model was trained for).
    pub fn plan(&self, path: &Path, context_length: u32) -> Result<MemoryPlan, ChatError> {
        plan_file(path, context_length, self.gpu_info())
    }

    /// Loads a model, replacing the current one. `progress(fraction, stage)` reports the steps.
    pub fn load(
        &mut self,
        path: &Path,
        context_length: u32,
        progress: &mut dyn FnMut(f32, &str),
    ) -> Result<ModelInfo, ChatError> {
        let gpu = self
            .gpu
            .as_ref()
            .map_err(|e| ChatError::NoGpu(e.clone()))?
            .clone();
        progress(0.02, "Reading the model file");
        let file = open_model_file(path)?;
        let config = ModelConfig::from_gguf(&file)?;
        let context = effective_context(&config, context_length);
        let plan = memory_plan(&file, &config, context, Some(gpu.info()));
        if !plan.fits {
            return Err(ChatError::DoesNotFit(plan.suggestion.unwrap_or_default()));
        }
        progress(0.1, "Reading the tokenizer and chat template");
        let tokenizer = Tokenizer::from_gguf(&file)?;
        let template = ChatTemplate::from_gguf(&file)?;
        progress(0.15, "Fingerprinting the model file");
        let file_hash = match &self.kv_disk {
            // Remembered by path, size and modification time.
            Some(d) => d.model_hash(path)?,
            None => file_content_hash(path)?,
        };
        // Free the old model's GPU memory before uploading the new one.
        self.model = None;
        progress(0.2, "Uploading weights to the GPU");
        let (opts, _) = planned_options_typed(
            gpu.info(),
            &file,
            context,
            self.kv_budget_bytes,
            self.kv_f16,
        )?;
        let opts = GpuForwardOptions {
            model_hash: Some(file_hash),
            ..opts
        };
        let kv = if opts.kv_f16 {
            GgmlType::F16
        } else {
            GgmlType::F32
        };
        let tiers = Tiers::new(
            self.ram_budget_bytes,
            self.kv_disk.clone(),
            self.metrics.clone(),
        );
        let sequence = GpuSequence::load(gpu, &file, opts, tiers)?;
        let info = model_info(path, &file, &config, context);
        let kv_bytes_per_token = config.kv_bytes_per_token(kv);
        self.model = Some(LoadedModel {
            info: info.clone(),
            model_id: crate::kv::hash::hex(&file_hash),
            tokenizer,
            template,
            sequence: Box::new(sequence),
            residency: Residency::default(),
            kv_bytes_per_token,
            documents: Default::default(),
            conversation_pins: Default::default(),
            kv_type: if kv == GgmlType::F16 { "f16" } else { "f32" },
        });
        self.update_kv_held();
        progress(1.0, "Ready");
        Ok(info)
    }

    /// Installs an already built sequence model (tests, other backends).
    pub fn install(
        &mut self,
        info: ModelInfo,
        tokenizer: Tokenizer,
        template: ChatTemplate,
        sequence: Box<dyn SequenceModel>,
        kv_bytes_per_token: u64,
    ) {
        self.model = Some(LoadedModel {
            model_id: format!("installed:{}", info.path),
            info,
            tokenizer,
            template,
            sequence,
            residency: Residency::default(),
            kv_bytes_per_token,
            documents: Default::default(),
            conversation_pins: Default::default(),
            kv_type: "f16",
        });
        self.update_kv_held();
    }

    pub fn unload(&mut self) {
        self.model = None;
        self.update_kv_held();
    }

    /// Encodes every window of `document` now (the app does it when a document is attached),
    /// so that questions about it prefill only their own tokens.
    pub fn encode_document(
        &mut self,
        document: &TurnDocument,
        settings: &Settings,
    ) -> Result<EncodeReport, ChatError> {
        let model = self.model.as_mut().ok_or(ChatError::NoModel)?;
        let out = doc_turn::encode_windows(model, &settings.system_prompt, document);
        self.update_kv_held();
        out
    }

    /// Blocks the GPU pool holds (in use or cached) and the bytes of one block, measured
    /// from the pool.
    pub fn kv_blocks_held(&self) -> Option<(u64, u64)> {
        self.model.as_ref().map(|m| m.sequence.blocks_held())
    }

    /// Conversations whose KV cache is held.
    pub fn resident_conversations(&self) -> usize {
        self.model.as_ref().map_or(0, |m| m.residency.resident())
    }

    fn update_kv_held(&self) {
        let (tokens, per, conversations) = self.model.as_ref().map_or((0, 0, 0), |m| {
            (
                m.sequence.tokens_held(),
                m.kv_bytes_per_token,
                m.residency.resident(),
            )
        });
        if let Ok(mut s) = self.stats.lock() {
            s.set_kv_held(tokens, per, conversations);
        }
    }

    /// Answers `user_content` after `history` (the conversation's earlier messages, oldest
    /// first). Streams events; `cancel` stops it (the partial reply is returned).
    pub fn send(
        &mut self,
        conversation_id: i64,
        history: &[Message],
        user_content: &str,
        settings: &Settings,
        on_event: &mut dyn FnMut(TurnEvent),
        cancel: &AtomicBool,
    ) -> Result<TurnOutcome, ChatError> {
        self.send_with_documents(
            conversation_id,
            history,
            user_content,
            &[],
            settings,
            on_event,
            cancel,
        )
    }

    /// [`ChatEngine::send`] for a conversation with attached `documents` (see
    /// `chat::documents`): the system message carries the document (or the window of it the
    /// question points at), whose prefix is encoded once, owned by the document, pinned, and
    /// shared by hash with every conversation about it. The reply's stats say what was read.
    #[allow(clippy::too_many_arguments)]
    pub fn send_with_documents(
        &mut self,
        conversation_id: i64,
        history: &[Message],
        user_content: &str,
        documents: &[TurnDocument],
        settings: &Settings,
        on_event: &mut dyn FnMut(TurnEvent),
        cancel: &AtomicBool,
    ) -> Result<TurnOutcome, ChatError> {
        if user_content.trim().is_empty() {
            return Err(ChatError::EmptyMessage);
        }
        let model = self.model.as_mut().ok_or(ChatError::NoModel)?;
        let selection = doc_turn::select(model, &settings.system_prompt, documents, history)?;
        let system = selection
            .as_ref()
            .map_or(settings.system_prompt.as_str(), |s| s.system.as_str());
        let messages = conversation_messages(system, history, user_content);
        let context = model.sequence.max_ctx();
        // Other windows than the last reply read: the history's ids cannot be extended.
        let exact_history = if selection.as_ref().is_some_and(|s| s.changed) {
            &[][..]
        } else {
            history
        };
        let prompt = assemble(
            &model.template,
            &model.tokenizer,
            &messages,
            exact_history,
            &model.model_id,
            context,
            settings.max_tokens as usize,
        )?;
        let tokens = prompt.tokens;
        let user_tokens = prompt.user_segment;
        // The document prefix: computed once, in a sequence the document owns, and pinned.
        let encode_started = std::time::Instant::now();
        let mut reads = Vec::new();
        let mut encoded = 0;
        let mut restored = Found::default();
        if let Some(sel) = selection {
            let n = doc_turn::prefix_len(model, &sel.system, &tokens)?;
            (encoded, restored) = doc_turn::encode_prefix(model, sel.owner, &tokens[..n])?;
            doc_turn::pin(model, sel.owner, &tokens[..n]);
            reads = sel.reads;
            for r in &mut reads {
                r.prefix_tokens = count_u32(n);
                r.encoded_tokens = count_u32(encoded);
            }
        }
        let encode_ms = encode_started.elapsed().as_secs_f64() * 1e3;

        // The longest prefix available: this conversation's own sequence, or whatever the
        // prefix index holds (any conversation's blocks). At least the last prompt token is
        // recomputed for its logits.
        let checkout = model
            .residency
            .check_out(conversation_id, &tokens, &mut *model.sequence)
            .map_err(|_| ChatError::NoSequenceSlot)?;
        let keep = checkout.reused.min(tokens.len() - 1);
        model.sequence.truncate(keep);
        let reused = model.sequence.len().min(keep);
        let mut cached = model.sequence.tokens();
        // Room in the pool for the rest of the prompt and the whole reply.
        let needed = tokens.len() - reused + prompt.reply_budget;
        model
            .residency
            .make_room(conversation_id, needed, &mut *model.sequence);
        let reason = recompute_reason(
            checkout.arrival,
            !history.is_empty(),
            prompt.dropped_messages,
            checkout.held,
            reused,
            prompt.extended.then(|| {
                (
                    tokens.len() - user_tokens.ids.len(),
                    model.sequence.block_size(),
                )
            }),
        );
        // Tokens this turn encoded for the document count as computed, not reused.
        let encoded_here = encoded.min(reused);
        let mut by_tier = reused_by_tier(checkout.found, reused);
        by_tier.gpu = by_tier.gpu.saturating_sub(count_u32(encoded_here));
        // The document prefix came up from RAM or disk just before: count it there.
        let (ram, disk) = (count_u32(restored.ram), count_u32(restored.disk));
        let moved = (ram + disk).min(by_tier.gpu);
        by_tier.gpu -= moved;
        by_tier.disk += disk.min(moved);
        by_tier.ram += moved - disk.min(moved);
        on_event(TurnEvent::Started {
            prompt_tokens: tokens.len(),
            reused_tokens: reused,
        });

        let turn = Turn {
            tokens: &tokens,
            reused,
            budget: prompt.reply_budget,
        };
        let result = generate(
            &model.tokenizer,
            &mut *model.sequence,
            &mut cached,
            &turn,
            settings,
            on_event,
            cancel,
        );
        let computed = cached.len().saturating_sub(reused);
        let stats_cell = self.stats.clone();
        let outcome = match result {
            Ok(run) => {
                let stats = ReplyStats {
                    prompt_tokens: count_u32(tokens.len()),
                    reused_tokens: count_u32(reused - encoded_here),
                    computed_tokens: count_u32(tokens.len() - reused + encoded_here),
                    generated_tokens: count_u32(run.generated.len()),
                    ttft_ms: finite(run.ttft_ms + encode_ms),
                    decode_tok_s: finite(run.decode_tok_s()),
                    stop_reason: stop_reason(run.stop_reason),
                    recompute_reason: reason,
                    reused_by_tier: Some(by_tier),
                    documents: reads.clone(),
                };
                record_request(&self.metrics, &stats, finite(run.prefill_ms + encode_ms));
                Ok(TurnOutcome {
                    text: run.text,
                    stats,
                    reply_tokens: Some(reply_segment(
                        &model.model_id,
                        &run.generated,
                        run.stop_token,
                    )),
                    user_tokens,
                    tokens: run.generated,
                })
            }
            Err(Interrupted::Cancelled) => Ok(TurnOutcome {
                text: String::new(),
                stats: ReplyStats {
                    prompt_tokens: count_u32(tokens.len()),
                    reused_tokens: count_u32(reused - encoded_here),
                    computed_tokens: count_u32(computed + encoded_here),
                    generated_tokens: 0,
                    ttft_ms: 0.0,
                    decode_tok_s: 0.0,
                    stop_reason: store::StopReason::Cancelled,
                    recompute_reason: reason,
                    reused_by_tier: Some(by_tier),
                    documents: reads.clone(),
                },
                user_tokens,
                reply_tokens: None,
                tokens: Vec::new(),
            }),
            Err(Interrupted::Failed(e)) => Err(e),
        };
        if let Ok(o) = &outcome
            && let Ok(mut s) = stats_cell.lock()
        {
            s.record(&o.stats);
        }
        // A pinned conversation's pin grows with it (kept as it was past the pin limit).
        if self
            .pins
            .contains(&crate::kv::Owner::Conversation(conversation_id))
        {
            let _ = cache_control::pin_conversation(model, conversation_id);
        }
        // Write the turn's new blocks behind to RAM and disk (after the reply, off its path).
        model.sequence.persist();
        self.update_kv_held();
        outcome
    }
}

impl Default for ChatEngine {
    fn default() -> Self {
        ChatEngine::new()
    }
}

enum Interrupted {
    Cancelled,
    Failed(ChatError),
}

/// The forward pass as the generation loop sees it; `Cancelled` ends a prefill early.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Forward(#[from] GpuForwardError),
}

/// A turn's prompt: its tokens, how many the cache already holds, the reply's token budget.
struct Turn<'a> {
    tokens: &'a [u32],
    reused: usize,
    budget: usize,
}

/// Prefills `turn.tokens[reused..]` in chunks (reporting progress) and generates the reply;
/// `cached` follows what the sequence holds.
fn generate(
    tokenizer: &Tokenizer,
    sequence: &mut dyn SequenceModel,
    cached: &mut Vec<u32>,
    turn: &Turn,
    settings: &Settings,
    on_event: &mut dyn FnMut(TurnEvent),
    cancel: &AtomicBool,
) -> Result<GenerationStats, Interrupted> {
    let events = RefCell::new(on_event);
    let (tokens, reused) = (turn.tokens, turn.reused);
    let total = tokens.len() - reused;
    let mut prefilled = false;
    let mut generator = Generator {
        tokenizer,
        sampler: Sampler::new(sampler_config(settings)),
        max_tokens: turn.budget,
        stop_strings: Vec::new(),
        cancel: Some(cancel),
    };
    let forward = |new: &[u32]| -> Result<Vec<f32>, StepError> {
        let mut last = Vec::new();
        let mut done = 0;
        for chunk in new.chunks(sequence.max_batch().max(1)) {
            if cancel.load(Ordering::Relaxed) {
                return Err(StepError::Cancelled);
            }
            last = sequence.step_last(chunk)?;
            cached.extend_from_slice(chunk);
            done += chunk.len();
            if !prefilled {
                (events.borrow_mut())(TurnEvent::Prefill { done, total });
            }
        }
        prefilled = true;
        Ok(last)
    };
    let on_text = |text: &str| {
        if !text.is_empty() {
            (events.borrow_mut())(TurnEvent::Token {
                text: text.to_string(),
            });
        }
    };
    match generator.run(tokens, reused, forward, on_text) {
        Ok(stats) => {
            // A reply cut by length or a stop string never fed its last token; feed it so
            // the cache holds the whole reply for the next turn (its logits are not needed).
            let last = stats.generated.last().copied();
            if let Some(last) = last.filter(|_| {
                matches!(
                    stats.stop_reason,
                    StopReason::MaxTokens | StopReason::StopString
                ) && sequence.len() < sequence.max_ctx()
            }) {
                sequence
                    .step_last(&[last])
                    .map_err(|e| Interrupted::Failed(e.into()))?;
                cached.push(last);
            }
            Ok(stats)
        }
        Err(crate::engine::generate::GenerateError::Forward(StepError::Cancelled)) => {
            Err(Interrupted::Cancelled)
        }
        Err(crate::engine::generate::GenerateError::Forward(StepError::Forward(e))) => {
            Err(Interrupted::Failed(e.into()))
        }
        Err(crate::engine::generate::GenerateError::Decode(e)) => {
            Err(Interrupted::Failed(e.into()))
        }
        Err(crate::engine::generate::GenerateError::EmptyPrompt) => {
            Err(Interrupted::Failed(ChatError::EmptyMessage))
        }
    }
}

/// The template's messages: the system message (if any), the history, the new user message.
fn conversation_messages(
    system: &str,
    history: &[Message],
    user_content: &str,
) -> Vec<ChatMessage> {
    let mut messages = Vec::with_capacity(history.len() + 2);
    if !system.trim().is_empty() {
        messages.push(ChatMessage::system(system));
    }
    for m in history {
        match m.role {
            Role::System => {}
            // A reply cancelled before its first token was saved empty; the template has no use for it.
            Role::Assistant if m.content.is_empty() => {}
            role => messages.push(ChatMessage::new(role.as_str(), m.content.clone())),
        }
    }
    messages.push(ChatMessage::user(user_content));
    messages
}

fn sampler_config(s: &Settings) -> SamplerConfig {
    SamplerConfig {
        temperature: s.temperature as f32,
        top_k: s.top_k as usize,
        top_p: s.top_p as f32,
        min_p: s.min_p as f32,
        repeat_penalty: s.repeat_penalty as f32,
        repeat_last_n: 64,
        seed: if s.seed == 0 { rand::random() } else { s.seed },
    }
}
