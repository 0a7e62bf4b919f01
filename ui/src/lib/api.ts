// Typed wrappers over the Tauri shell's commands and channels. Every other module talks to the
// backend only through this file, so the contract lives in one place.
import { Channel, invoke } from '@tauri-apps/api/core';
import { getCurrentWebview } from '@tauri-apps/api/webview';
import { listen } from '@tauri-apps/api/event';
import type {
  ApiServerRequest,
  ApiServerStatus,
  AppState,
  CacheOwners,
  CacheTierName,
  CacheSnapshot,
  ChatEvent,
  DocumentEvent,
  DocumentInfo,
  Conversation,
  ConversationSummary,
  DownloadEvent,
  LoadEvent,
  MemoryPlan,
  ModelInfo,
  Settings,
  StatsSnapshot,
} from './types';

export const BACKEND_UNAVAILABLE =
  "Hearth's backend is not available. This page is running outside the Hearth app, so it cannot load models, chat or save anything.";

/** Thrown by every wrapper when the page is not running inside the Tauri shell. */
export class BackendUnavailableError extends Error {
  constructor() {
    super(BACKEND_UNAVAILABLE);
    this.name = 'BackendUnavailableError';
  }
}

/** True inside the Tauri webview, where `invoke` reaches the Rust shell. */
export function backendAvailable(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}

/** A person-readable message from whatever a command rejected with. */
export function errorMessage(err: unknown): string {
  if (typeof err === 'string') return err;
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && 'message' in err && typeof err.message === 'string') {
    return err.message;
  }
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  if (!backendAvailable()) throw new BackendUnavailableError();
  try {
    return await invoke<T>(command, args);
  } catch (err) {
    throw new Error(errorMessage(err));
  }
}

function channel<T>(onEvent: (event: T) => void): Channel<T> {
  if (!backendAvailable()) throw new BackendUnavailableError();
  const ch = new Channel<T>();
  ch.onmessage = onEvent;
  return ch;
}

export const api = {
  appState: () => call<AppState>('app_state'),

  listConversations: (query?: string) =>
    call<ConversationSummary[]>('list_conversations', query?.trim() ? { query: query.trim() } : {}),
  createConversation: (title?: string) =>
    call<ConversationSummary>('create_conversation', title ? { title } : {}),
  getConversation: (id: number) => call<Conversation>('get_conversation', { id }),
  renameConversation: (id: number, title: string) =>
    call<ConversationSummary>('rename_conversation', { id, title }),
  deleteConversation: (id: number) => call<null>('delete_conversation', { id }),

  /** Resolves once the reply is finished; events stream to `onEvent` meanwhile. */
  sendMessage: async (conversationId: number, content: string, onEvent: (e: ChatEvent) => void) => {
    const onEventChannel = channel(onEvent);
    return call<null>('send_message', { conversationId, content, onEvent: onEventChannel });
  },
  stopGeneration: (conversationId: number) => call<null>('stop_generation', { conversationId }),

  planModel: (path: string, contextLength?: number) =>
    call<MemoryPlan>('plan_model', contextLength ? { path, contextLength } : { path }),
  loadModel: async (path: string, onEvent: (e: LoadEvent) => void) => {
    const onEventChannel = channel(onEvent);
    return call<ModelInfo>('load_model', { path, onEvent: onEventChannel });
  },
  unloadModel: () => call<null>('unload_model'),

  downloadModel: async (url: string, sha256: string | undefined, onEvent: (e: DownloadEvent) => void) => {
    const onEventChannel = channel(onEvent);
    const args: Record<string, unknown> = { url, onEvent: onEventChannel };
    if (sha256) args.sha256 = sha256;
    return call<string>('download_model', args);
  },
  cancelDownload: () => call<null>('cancel_download'),

  getSettings: () => call<Settings>('get_settings'),
  saveSettings: (settings: Settings) => call<Settings>('save_settings', { settings }),
  getStats: () => call<StatsSnapshot>('get_stats'),

  /**
   * The system file dialog, GGUF files only, opened by the shell; the chosen file is the only
   * kind of path (with dropped files) that plan/load accept. Null when the user cancels.
   */
  pickModelFile: () => call<string | null>('pick_model_file'),

  /** The system file dialog for a document (text, Markdown, PDF); the chosen file is granted. */
  pickDocumentFile: () => call<string | null>('pick_document_file'),
  /** Imports a granted file, attaches it to the conversation and encodes it (events stream). */
  attachDocument: async (conversationId: number, path: string, onEvent: (e: DocumentEvent) => void) => {
    const onEventChannel = channel(onEvent);
    return call<DocumentInfo>('attach_document', { conversationId, path, onEvent: onEventChannel });
  },
  conversationDocuments: (conversationId: number) =>
    call<DocumentInfo[]>('conversation_documents', { conversationId }),
  listDocuments: () => call<DocumentInfo[]>('list_documents'),
  detachDocument: (conversationId: number, documentId: number) =>
    call<null>('detach_document', { conversationId, documentId }),
  renameDocument: (id: number, name: string) => call<DocumentInfo>('rename_document', { id, name }),
  deleteDocument: (id: number) => call<null>('delete_document', { id }),

  /** The cache's in-memory metrics (cheap: poll it while the cache panel is open). */
  cacheSnapshot: () => call<CacheSnapshot>('cache_snapshot'),
  /** The disk tier's usage per conversation and document, named. */
  cacheOwners: () => call<CacheOwners>('cache_owners'),
  clearCache: () => call<null>('clear_cache'),
  /** Empties one tier of the cache, or every tier. */
  clearCacheTier: (tier: CacheTierName) => call<null>('clear_cache_tier', { tier }),
  /** Clears one conversation's or document's cached blocks on every tier. */
  clearCacheOwner: (kind: PinnableKind, id: number) => call<null>('clear_cache_owner', { kind, id }),
  /** Pins or unpins a conversation or a document (refused past the pin limit, with the reason). */
  pinCacheOwner: (kind: PinnableKind, id: number, pinned: boolean) =>
    call<null>('pin_cache_owner', { kind, id, pinned }),

  /** The local API server (OpenAI-compatible `hearth serve` for the loaded model). */
  apiServerStatus: () => call<ApiServerStatus>('api_server_status'),
  startApiServer: (request: ApiServerRequest) => call<ApiServerStatus>('start_api_server', { request }),
  stopApiServer: () => call<ApiServerStatus>('stop_api_server'),
};

/** The owners the cache panel can clear or pin. */
export type PinnableKind = 'conversation' | 'document';

export type Api = typeof api;

export type FileDrag =
  | { type: 'enter'; paths: string[] }
  | { type: 'drop'; paths: string[] }
  | { type: 'document'; path: string }
  | { type: 'leave' };

/** The shell's event for a GGUF file dropped on the window (it grants the file first). */
export const MODEL_DROPPED_EVENT = 'model-dropped';

/** The shell's event for a document dropped on the window (granted first). */
export const DOCUMENT_DROPPED_EVENT = 'document-dropped';

/** Extensions Hearth reads as documents (src-tauri/src/documents.rs). */
export const DOCUMENT_EXTENSIONS = ['txt', 'md', 'markdown', 'text', 'pdf'];

/** The dragged paths Hearth can attach as documents. */
export function documentPaths(paths: readonly string[]): string[] {
  return paths.filter((p) => DOCUMENT_EXTENSIONS.some((e) => p.toLowerCase().endsWith(`.${e}`)));
}

/**
 * Files dragged onto the window (the other way, besides the dialog, that a file reaches the
 * core). Enter/leave come from the webview, for the overlay; a drop is acted on only once the
 * shell has granted the file and sent `model-dropped` with its path. Returns the unsubscribe
 * function; a no-op outside Tauri.
 */
export async function onFileDrag(handler: (e: FileDrag) => void): Promise<() => void> {
  if (!backendAvailable()) return () => {};
  try {
    const stopOverlay = await getCurrentWebview().onDragDropEvent(({ payload }) => {
      if (payload.type === 'enter') handler({ type: 'enter', paths: payload.paths });
      else if (payload.type === 'leave' || payload.type === 'drop') handler({ type: 'leave' });
    });
    const stopDropped = await listen<string>(MODEL_DROPPED_EVENT, ({ payload }) => {
      if (typeof payload === 'string' && payload) handler({ type: 'drop', paths: [payload] });
    });
    const stopDocument = await listen<string>(DOCUMENT_DROPPED_EVENT, ({ payload }) => {
      if (typeof payload === 'string' && payload) handler({ type: 'document', path: payload });
    });
    return () => {
      stopOverlay();
      stopDropped();
      stopDocument();
    };
  } catch {
    return () => {};
  }
}

/** The dragged paths Hearth can open: GGUF files. */
export function ggufPaths(paths: readonly string[]): string[] {
  return paths.filter((p) => p.toLowerCase().endsWith('.gguf'));
}
