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
}

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
}

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
