// The JSON shapes of the Tauri commands and channels (the Rust side: src/chat/types.rs and src/store/types.rs).
// The Rust side serialises these with serde `rename_all = "camelCase"`.

export type Role = 'system' | 'user' | 'assistant';

export type StopReason = 'eog' | 'length' | 'stop' | 'cancelled' | 'error';

export interface ReplyStats {
  promptTokens: number;
  reusedTokens: number;
  computedTokens: number;
  generatedTokens: number;
  ttftMs: number;
  decodeTokS: number;
  stopReason: StopReason;
  /** Why a turn could not reuse the cache; null when it did. */
  recomputeReason?: string | null;
  /** Where the reused tokens came from (older replies have none). */
  reusedByTier?: ReusedByTier | null;
  /** What the turn read of the conversation's documents (absent when none is attached). */
  documents?: DocumentRead[];
}

/** Reused prompt tokens by the cache tier they were found in. */
export interface ReusedByTier {
  gpu: number;
  ram: number;
  disk: number;
}

/** What a reply read of an attached document. */
export interface DocumentRead {
  documentId: number;
  name: string;
  /** 1-based. */
  window: number;
  windows: number;
  /** Character range [charStart, charEnd) of the document's text. */
  charStart: number;
  charEnd: number;
  /** Prompt tokens up to the end of the document block(s). */
  prefixTokens: number;
  /** Of those, the tokens this turn computed (0 when the document's prefix was cached). */
  encodedTokens: number;
  /**
   * Which ranker chose the window when the document has several: the question's words (BM25),
   * its meaning (embeddings), or both. Absent when the whole document was read.
   */
  foundBy?: FoundBy;
}

export type FoundBy = 'words' | 'meaning' | 'both';

export interface Message {
  id: number;
  conversationId: number;
  role: Role;
  content: string;
  /** RFC 3339 */
  createdAt: string;
  stats?: ReplyStats | null;
}

export interface ConversationSummary {
  id: number;
  title: string;
  createdAt: string;
  updatedAt: string;
  messageCount: number;
  preview: string;
}

export interface Conversation extends ConversationSummary {
  messages: Message[];
}

export type Theme = 'system' | 'light' | 'dark';

export interface Settings {
  contextLength: number;
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  repeatPenalty: number;
  seed: number;
  systemPrompt: string;
  theme: Theme;
  maxTokens: number;
  lastModelPath?: string | null;
  /** The KV cache's GPU budget in MiB (null: sized by the memory plan); applies at the next load. */
  kvGpuBudgetMib?: number | null;
  /** The KV cache's RAM tier budget in MiB (null: the default, 2 GiB); applies at the next load. */
  kvRamBudgetMib?: number | null;
  /** The KV cache's disk tier budget in MiB (null: the default, 8 GiB); applies when saved. */
  kvDiskBudgetMib?: number | null;
  /** The KV cache's element type; applies at the next load. */
  kvType?: KvType;
}

/** The KV cache's element type: f16 (half the memory per token) or f32. */
export type KvType = 'f16' | 'f32';

export interface AdapterInfo {
  name: string;
  backend: string;
  deviceType: string;
  memoryBytes?: number | null;
  f16: boolean;
  subgroups: boolean;
}

export interface ModelInfo {
  path: string;
  name: string;
  architecture: string;
  /** e.g. "7B" */
  parameterLabel: string;
  quantization: string;
  contextLength: number;
  fileBytes: number;
}

export interface MemoryPlan {
  weightsBytes: number;
  /** The KV cache's element type: "f16" or "f32". */
  kvType?: string;
  /** Tokens the KV pool holds (every conversation and cached prefix; at least one context). */
  kvTokens?: number;
  kvBytes: number;
  scratchBytes: number;
  totalBytes: number;
  adapterLimitBytes?: number | null;
  fits: boolean;
  suggestion?: string | null;
  contextLength: number;
}

export interface AppState {
  model: ModelInfo | null;
  adapter: AdapterInfo | null;
  adapterError: string | null;
  settings: Settings;
  version: string;
  /** The model bundled with the app; null in a build without it. */
  builtinModel?: BuiltinModel | null;
}

/** The small model shipped inside the installers (SmolLM2-135M-Instruct). */
export interface BuiltinModel {
  path: string;
  name: string;
  bytes: number;
  /** Where its licence text lies. */
  license: string;
}

export interface StatsSnapshot {
  promptTokensTotal: number;
  reusedTokensTotal: number;
  computedTokensTotal: number;
  generatedTokensTotal: number;
  repliesTotal: number;
  kvBytesHeld: number;
  kvTokensHeld: number;
  /** Conversations whose KV cache is held (absent from older shells). */
  kvConversationsHeld?: number;
  ttftMsP50?: number | null;
  decodeTokSMean?: number | null;
}

export type ChatEvent =
  | { type: 'started'; userMessage: Message; promptTokens: number; reusedTokens: number }
  | { type: 'prefill'; done: number; total: number }
  | { type: 'token'; text: string }
  | { type: 'done'; message: Message }
  | { type: 'error'; message: string };

export type LoadEvent =
  | { type: 'progress'; fraction: number; stage: string }
  | { type: 'done'; model: ModelInfo }
  | { type: 'error'; message: string };

export type DownloadEvent =
  | { type: 'progress'; receivedBytes: number; totalBytes: number | null }
  | { type: 'done'; path: string }
  | { type: 'error'; message: string };

// ---- Documents in the chat (src-tauri/src/documents.rs) ----

/** Where a document's KV cache is: pinned on the GPU, in the disk tier, or not cached. */
export type DocumentCacheState = 'gpu' | 'disk' | 'none';

export interface DocumentInfo {
  id: number;
  name: string;
  sourcePath: string | null;
  byteCount: number;
  charCount: number;
  /** RFC 3339 */
  createdAt: string;
  /** The conversations it is attached to, oldest attachment first. */
  conversationIds: number[];
  /** Tokens of its text for the loaded model; null until encoded. */
  tokens: number | null;
  /** Windows it is cut into (1 when it fits the context whole); null until encoded. */
  windows: number | null;
  cache: DocumentCacheState;
}

export type DocumentEvent =
  | { type: 'imported'; document: DocumentInfo }
  | { type: 'encoding' }
  | { type: 'done'; document: DocumentInfo }
  | { type: 'error'; message: string };

// ---- The cache panel (hearth::metrics::MetricsSnapshot, src-tauri/src/cache.rs) ----

export interface PerTier<T> {
  gpu: T;
  ram: T;
  disk: T;
}

export interface PerLowerTier<T> {
  ram: T;
  disk: T;
}

export interface TierUsage {
  blocks: number;
  bytes: number;
  budgetBytes: number;
}

export interface Percentiles {
  p50: number | null;
  p99: number | null;
  samples: number;
}

export interface HitRatePoint {
  unixMs: number;
  /** Cumulative hit rate (0–1) right after a request. */
  hitRate: number;
}

/** `cache_snapshot`: the engine's in-memory metrics, cheap to poll. Counters are since start. */
export interface CacheSnapshot {
  prefixCacheQueries: number;
  prefixCacheHits: PerTier<number>;
  hitRate: number | null;
  requests: number;
  promptTokens: number;
  generationTokens: number;
  prefillTokens: number;
  prefillMsPerToken: number | null;
  timeSavedMs: number | null;
  tiers: PerTier<TierUsage>;
  ownerBytes: { conversation: number; document: number; shared: number; request: number };
  pinnedBlocks: number;
  evictions: PerTier<number>;
  spills: PerLowerTier<number>;
  restores: PerLowerTier<number>;
  restoredBytes: PerLowerTier<number>;
  verificationFailures: { checksum: number; truncated: number; fingerprint: number; decode: number };
  recomputes: {
    firstTurn: number;
    template: number;
    contextFull: number;
    evicted: number;
    modelChanged: number;
    noCache: number;
    other: number;
  };
  ttftMs: Percentiles;
  decodeTokS: Percentiles;
  requestsRunning: number;
  requestsWaiting: number;
  hitRateHistory: HitRatePoint[];
}

export interface OwnerUsage {
  kind: 'conversation' | 'document' | 'other';
  id: number | null;
  /** The conversation's title or the document's name. */
  name: string;
  blocks: number;
  bytes: number;
  /** Pinned in the cache panel: its GPU blocks are never evicted. */
  pinned?: boolean;
}

/** `cache_owners`: the disk tier's usage per owner, named (pinned owners listed even with
 * nothing on disk). */
export interface CacheOwners {
  /** Whether the disk tier is on. */
  disk: boolean;
  owners: OwnerUsage[];
  /** The loaded model's KV element type; null without a model. */
  kvType?: KvType | null;
}

/** What `clear_cache_tier` empties: one tier, or all of them. */
export type CacheTierName = 'gpu' | 'ram' | 'disk' | 'all';

/** Settings → Local API server: what the shell is asked to start. */
export interface ApiServerRequest {
  port: number;
  /** null: no key (loopback only). */
  apiKey: string | null;
  /** Listen on every interface (needs a key) instead of 127.0.0.1. */
  allowNetwork: boolean;
}

/** The in-process `hearth serve` as the shell reports it. */
export interface ApiServerStatus {
  running: boolean;
  /** `http://127.0.0.1:8080/v1` while running. */
  baseUrl: string | null;
  /** The id clients name the model by. */
  modelId: string | null;
  keyRequired: boolean;
}
