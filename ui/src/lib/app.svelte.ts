// The app's state and actions. Components read this and call its methods; it talks to the
// backend only through api.ts.
import { api, backendAvailable, BackendUnavailableError, BACKEND_UNAVAILABLE, errorMessage, type PinnableKind } from './api';
import { fileName } from './format';
import { cleanTitle, removeConversation, sortNewestFirst, titleFromMessage, upsertConversation } from './conversations';
import { initialStream, StreamBatcher, type StreamState } from './stream';
import type {
  AppState,
  CacheOwners,
  CacheTierName,
  CacheSnapshot,
  ConversationSummary,
  DocumentInfo,
  MemoryPlan,
  Message,
  ModelInfo,
  Settings,
  StatsSnapshot,
} from './types';

export type View = 'chat' | 'model' | 'settings' | 'documents';
export type BackendStatus = 'connecting' | 'ready' | 'unavailable' | 'failed';

export interface PendingReply {
  conversationId: number;
  /** The user's text, shown at once; replaced by the saved message when `started` arrives. */
  userText: string;
  stream: StreamState;
}

export class AppStore {
  backend = $state<BackendStatus>('connecting');
  /** A problem the whole window should see (dismissible). */
  banner = $state<string | null>(null);
  state = $state<AppState | null>(null);
  view = $state<View>('chat');

  conversations = $state<ConversationSummary[]>([]);
  query = $state('');
  searching = $state(false);
  activeId = $state<number | null>(null);
  messages = $state<Message[]>([]);
  loadingConversation = $state(false);
  pending = $state<PendingReply | null>(null);
  chatError = $state<string | null>(null);

  // Model panel
  pickedPath = $state<string | null>(null);
  planContext = $state<number>(4096);
  plan = $state<MemoryPlan | null>(null);
  planning = $state(false);
  planError = $state<string | null>(null);
  loadProgress = $state<{ fraction: number; stage: string } | null>(null);
  loadError = $state<string | null>(null);

  // Download
  download = $state<{ received: number; total: number | null } | null>(null);
  downloadError = $state<string | null>(null);

  stats = $state<StatsSnapshot | null>(null);
  statsError = $state<string | null>(null);

  // Documents: those attached to the open conversation, the one being attached, the library.
  documents = $state<DocumentInfo[]>([]);
  attaching = $state<{ name: string; stage: 'reading' | 'encoding' } | null>(null);
  documentError = $state<string | null>(null);
  library = $state<DocumentInfo[]>([]);
  libraryError = $state<string | null>(null);

  // The cache panel.
  cache = $state<CacheSnapshot | null>(null);
  cacheOwners = $state<CacheOwners | null>(null);
  cacheError = $state<string | null>(null);

  private searchSeq = 0;
  private planSeq = 0;

  get model(): ModelInfo | null {
    return this.state?.model ?? null;
  }
  get settings(): Settings | null {
    return this.state?.settings ?? null;
  }
  get generating(): boolean {
    return this.pending !== null;
  }
  get activeConversation(): ConversationSummary | null {
    return this.conversations.find((c) => c.id === this.activeId) ?? null;
  }
  /** The first-run screen: no model and no conversation open. */
  get showWelcome(): boolean {
    return this.view === 'chat' && !this.model && this.activeId === null && this.pending === null;
  }

  async init(): Promise<void> {
    if (!backendAvailable()) {
      this.backend = 'unavailable';
      this.banner = BACKEND_UNAVAILABLE;
      return;
    }
    try {
      this.state = await api.appState();
      this.planContext = this.state.settings.contextLength;
      this.backend = 'ready';
    } catch (err) {
      this.backend = 'failed';
      this.banner = `Hearth could not start its backend: ${errorMessage(err)}`;
      return;
    }
    await this.refreshConversations();
  }

  private fail(err: unknown, prefix?: string): void {
    if (err instanceof BackendUnavailableError) {
      this.banner = BACKEND_UNAVAILABLE;
      return;
    }
    const msg = errorMessage(err);
    this.banner = prefix ? `${prefix}: ${msg}` : msg;
  }

  // ---- Conversations ----

  async refreshConversations(): Promise<void> {
    const seq = ++this.searchSeq;
    this.searching = true;
    try {
      const list = await api.listConversations(this.query);
      if (seq === this.searchSeq) this.conversations = this.query.trim() ? list : sortNewestFirst(list);
    } catch (err) {
      if (seq === this.searchSeq) this.fail(err, 'Could not list conversations');
    } finally {
      if (seq === this.searchSeq) this.searching = false;
    }
  }

  async search(query: string): Promise<void> {
    this.query = query;
    await this.refreshConversations();
  }

  async selectConversation(id: number): Promise<void> {
    this.view = 'chat';
    if (this.activeId === id && this.messages.length) return;
    this.activeId = id;
    this.chatError = null;
    this.documentError = null;
    this.documents = [];
    void this.refreshDocuments();
    this.loadingConversation = true;
    try {
      const conv = await api.getConversation(id);
      if (this.activeId !== id) return;
      this.messages = conv.messages;
      const { messages: _messages, ...summary } = conv;
      this.conversations = this.query.trim()
        ? this.conversations.map((c) => (c.id === id ? summary : c))
        : upsertConversation(this.conversations, summary);
    } catch (err) {
      if (this.activeId === id) this.chatError = `Could not open this conversation: ${errorMessage(err)}`;
    } finally {
      if (this.activeId === id) this.loadingConversation = false;
    }
  }

  /** A fresh, empty chat; the conversation is created when its first message is sent. */
  newChat(): void {
    this.view = 'chat';
    this.activeId = null;
    this.messages = [];
    this.chatError = null;
    this.documents = [];
    this.documentError = null;
  }

  async renameConversation(id: number, input: string): Promise<boolean> {
    const title = cleanTitle(input);
    if (!title) return false;
    try {
      const updated = await api.renameConversation(id, title);
      this.conversations = this.conversations.map((c) => (c.id === id ? updated : c));
      return true;
    } catch (err) {
      this.fail(err, 'Could not rename the conversation');
      return false;
    }
  }

  async deleteConversation(id: number): Promise<void> {
    try {
      await api.deleteConversation(id);
      this.conversations = removeConversation(this.conversations, id);
      if (this.activeId === id) this.newChat();
    } catch (err) {
      this.fail(err, 'Could not delete the conversation');
    }
  }

  // ---- Chat ----

  async send(text: string): Promise<boolean> {
    const content = text.trim();
    if (!content || this.pending || !this.model) return false;
    this.chatError = null;
    let conversationId = this.activeId;
    if (conversationId === null) {
      try {
        const created = await api.createConversation(titleFromMessage(content));
        conversationId = created.id;
        this.activeId = created.id;
        this.messages = [];
        this.conversations = upsertConversation(this.conversations, created);
      } catch (err) {
        this.chatError = `Could not start a conversation: ${errorMessage(err)}`;
        return false;
      }
    }
    const id = conversationId;
    this.pending = { conversationId: id, userText: content, stream: initialStream() };
    const batcher = new StreamBatcher((s) => {
      if (this.pending?.conversationId === id) this.pending = { ...this.pending, stream: s };
    });
    try {
      await api.sendMessage(id, content, (e) => batcher.push(e));
      batcher.flush();
    } catch (err) {
      batcher.flush();
      const saved = batcher.current.userMessage !== null;
      this.finishReply(id, batcher.current, errorMessage(err));
      // Nothing reached the conversation: hand the text back to the composer.
      return saved;
    }
    this.finishReply(id, batcher.current, null);
    return true;
  }

  private finishReply(id: number, s: StreamState, commandError: string | null): void {
    const error = s.error ?? commandError;
    if (this.activeId === id) {
      const add: Message[] = [];
      if (s.userMessage) add.push(s.userMessage);
      if (s.final) add.push(s.final);
      if (add.length) this.messages = [...this.messages, ...add];
      if (error) this.chatError = error;
    }
    this.pending = null;
    void this.refreshConversations();
    if (this.activeId === id && error) void this.reloadMessages(id);
    if (this.view === 'settings') void this.refreshStats();
    // What the reply read changes where the documents' caches are.
    if (this.activeId === id && this.documents.length) void this.refreshDocuments();
  }

  /** After an error the backend's copy is the truth (it may have saved the user's message). */
  private async reloadMessages(id: number): Promise<void> {
    try {
      const conv = await api.getConversation(id);
      if (this.activeId === id && !this.pending) this.messages = conv.messages;
    } catch {
      // Keep what is shown; the error is already on screen.
    }
  }

  async stop(): Promise<void> {
    if (!this.pending) return;
    try {
      await api.stopGeneration(this.pending.conversationId);
    } catch (err) {
      this.fail(err, 'Could not stop the reply');
    }
  }

  // ---- Documents ----

  async refreshDocuments(): Promise<void> {
    const id = this.activeId;
    if (id === null) return;
    try {
      const docs = await api.conversationDocuments(id);
      if (this.activeId === id) this.documents = docs;
    } catch (err) {
      if (this.activeId === id) this.documentError = `Could not list the attached documents: ${errorMessage(err)}`;
    }
  }

  /** The open-file dialog, then attach what was chosen. */
  async pickDocument(): Promise<void> {
    this.documentError = null;
    try {
      const path = await api.pickDocumentFile();
      if (path) await this.attachDocument(path);
    } catch (err) {
      this.fail(err, 'Could not open the file dialog');
    }
  }

  /** Attaches a granted file to the open conversation (a new one when none is open). */
  async attachDocument(path: string): Promise<boolean> {
    if (this.attaching) return false;
    this.view = 'chat';
    this.documentError = null;
    const name = fileName(path);
    this.attaching = { name, stage: 'reading' };
    try {
      let id = this.activeId;
      if (id === null) {
        const created = await api.createConversation(cleanTitle(name) || undefined);
        id = created.id;
        this.activeId = id;
        this.messages = [];
        this.documents = [];
        this.conversations = upsertConversation(this.conversations, created);
      }
      const conversationId = id;
      let failed: string | null = null;
      const doc = await api.attachDocument(conversationId, path, (e) => {
        if (e.type === 'encoding') this.attaching = { name, stage: 'encoding' };
        else if (e.type === 'imported' && this.activeId === conversationId) {
          this.documents = [...this.documents.filter((d) => d.id !== e.document.id), e.document];
        } else if (e.type === 'error') failed = e.message;
      });
      if (failed) throw new Error(failed);
      if (this.activeId === conversationId) {
        this.documents = [...this.documents.filter((d) => d.id !== doc.id), doc];
      }
      return true;
    } catch (err) {
      this.documentError = `Could not attach ${name}: ${errorMessage(err)}`;
      void this.refreshDocuments();
      return false;
    } finally {
      this.attaching = null;
    }
  }

  async detachDocument(documentId: number): Promise<void> {
    const id = this.activeId;
    if (id === null) return;
    try {
      await api.detachDocument(id, documentId);
      if (this.activeId === id) this.documents = this.documents.filter((d) => d.id !== documentId);
    } catch (err) {
      this.documentError = `Could not detach the document: ${errorMessage(err)}`;
    }
  }

  openDocuments(): void {
    this.view = 'documents';
    void this.refreshLibrary();
  }

  async refreshLibrary(): Promise<void> {
    try {
      this.library = await api.listDocuments();
      this.libraryError = null;
    } catch (err) {
      this.libraryError = `Could not list documents: ${errorMessage(err)}`;
    }
  }

  async renameDocument(id: number, input: string): Promise<boolean> {
    const name = input.trim();
    if (!name) return false;
    try {
      const updated = await api.renameDocument(id, name);
      this.library = this.library.map((d) => (d.id === id ? updated : d));
      this.documents = this.documents.map((d) => (d.id === id ? updated : d));
      return true;
    } catch (err) {
      this.libraryError = `Could not rename the document: ${errorMessage(err)}`;
      return false;
    }
  }

  async deleteDocument(id: number): Promise<void> {
    try {
      await api.deleteDocument(id);
      this.library = this.library.filter((d) => d.id !== id);
      this.documents = this.documents.filter((d) => d.id !== id);
    } catch (err) {
      this.libraryError = `Could not delete the document: ${errorMessage(err)}`;
    }
  }

  // ---- The cache panel ----

  /** The in-memory metrics (polled while the panel is open). */
  async refreshCache(): Promise<void> {
    try {
      this.cache = await api.cacheSnapshot();
      this.cacheError = null;
    } catch (err) {
      this.cacheError = errorMessage(err);
    }
  }

  /** The disk tier's owners, named (read less often: it asks the disk tier and the store). */
  async refreshCacheOwners(): Promise<void> {
    try {
      this.cacheOwners = await api.cacheOwners();
    } catch (err) {
      this.cacheError = errorMessage(err);
    }
  }

  async clearCache(): Promise<boolean> {
    try {
      await api.clearCache();
      await Promise.all([this.refreshCache(), this.refreshCacheOwners()]);
      this.documents = this.documents.map((d) => ({ ...d, cache: 'none' }));
      return true;
    } catch (err) {
      this.cacheError = `Could not clear the cache: ${errorMessage(err)}`;
      return false;
    }
  }

  /** Empties one tier of the cache (or all); false (with `cacheError` set) when it failed. */
  async clearCacheTier(tier: CacheTierName): Promise<boolean> {
    try {
      await api.clearCacheTier(tier);
      await Promise.all([this.refreshCache(), this.refreshCacheOwners()]);
      if (tier === 'gpu' || tier === 'all') this.documents = this.documents.map((d) => ({ ...d, cache: 'none' }));
      return true;
    } catch (err) {
      this.cacheError = `Could not clear the cache: ${errorMessage(err)}`;
      return false;
    }
  }

  /** Clears one conversation's or document's cached blocks on every tier. */
  async clearCacheOwner(kind: PinnableKind, id: number): Promise<boolean> {
    try {
      await api.clearCacheOwner(kind, id);
      await Promise.all([this.refreshCache(), this.refreshCacheOwners()]);
      if (kind === 'document') this.documents = this.documents.map((d) => (d.id === id ? { ...d, cache: 'none' } : d));
      return true;
    } catch (err) {
      this.cacheError = `Could not clear its cache: ${errorMessage(err)}`;
      return false;
    }
  }

  /** Pins or unpins an owner; a refusal (the pin limit) lands in `cacheError`. */
  async pinCacheOwner(kind: PinnableKind, id: number, pinned: boolean): Promise<boolean> {
    try {
      await api.pinCacheOwner(kind, id, pinned);
      this.cacheError = null;
      await Promise.all([this.refreshCache(), this.refreshCacheOwners()]);
      return true;
    } catch (err) {
      this.cacheError = `Could not ${pinned ? 'pin' : 'unpin'} it: ${errorMessage(err)}`;
      return false;
    }
  }

  // ---- Models ----

  openModelPanel(): void {
    this.view = 'model';
  }

  async pickModel(): Promise<void> {
    this.loadError = null;
    try {
      const path = await api.pickModelFile();
      if (path) await this.choosePath(path);
    } catch (err) {
      this.fail(err, 'Could not open the file dialog');
    }
  }

  /** Loads the model bundled with the app at once: no dialog, no plan to confirm. */
  async startBuiltin(): Promise<void> {
    const builtin = this.state?.builtinModel;
    if (!builtin) return;
    await this.choosePath(builtin.path);
    if (this.planError) return;
    await this.loadPicked();
  }

  async choosePath(path: string): Promise<void> {
    this.view = 'model';
    this.pickedPath = path;
    this.loadError = null;
    await this.replan();
  }

  async setPlanContext(n: number): Promise<void> {
    this.planContext = n;
    await this.replan();
  }

  async replan(): Promise<void> {
    const path = this.pickedPath;
    if (!path) return;
    const seq = ++this.planSeq;
    this.planning = true;
    this.planError = null;
    try {
      const plan = await api.planModel(path, this.planContext);
      if (seq === this.planSeq) this.plan = plan;
    } catch (err) {
      if (seq === this.planSeq) {
        this.plan = null;
        this.planError = errorMessage(err);
      }
    } finally {
      if (seq === this.planSeq) this.planning = false;
    }
  }

  async loadPicked(): Promise<void> {
    const path = this.pickedPath;
    if (!path || this.loadProgress) return;
    this.loadError = null;
    this.loadProgress = { fraction: 0, stage: 'Starting' };
    try {
      const settings = this.settings;
      if (settings && settings.contextLength !== this.planContext) {
        const saved = await api.saveSettings({ ...settings, contextLength: this.planContext });
        if (this.state) this.state.settings = saved;
      }
      let failed: string | null = null;
      const model = await api.loadModel(path, (e) => {
        if (e.type === 'progress') this.loadProgress = { fraction: e.fraction, stage: e.stage };
        else if (e.type === 'error') failed = e.message;
      });
      if (failed) throw new Error(failed);
      this.state = await api.appState().catch(() => (this.state ? { ...this.state, model } : null));
      if (this.state && !this.state.model) this.state.model = model;
      this.pickedPath = null;
      this.plan = null;
      this.view = 'chat';
    } catch (err) {
      this.loadError = errorMessage(err);
    } finally {
      this.loadProgress = null;
    }
  }

  async unloadModel(): Promise<void> {
    try {
      await api.unloadModel();
      if (this.state) this.state.model = null;
    } catch (err) {
      this.fail(err, 'Could not unload the model');
    }
  }

  async startDownload(url: string, sha256: string): Promise<void> {
    if (this.download) return;
    this.downloadError = null;
    this.download = { received: 0, total: null };
    try {
      const path = await api.downloadModel(url.trim(), sha256.trim() || undefined, (e) => {
        if (e.type === 'progress') this.download = { received: e.receivedBytes, total: e.totalBytes };
        else if (e.type === 'error') this.downloadError = e.message;
      });
      this.download = null;
      await this.choosePath(path);
    } catch (err) {
      this.downloadError = errorMessage(err);
    } finally {
      this.download = null;
    }
  }

  async cancelDownload(): Promise<void> {
    try {
      await api.cancelDownload();
    } catch (err) {
      this.downloadError = errorMessage(err);
    }
  }

  // ---- Settings and stats ----

  openSettings(): void {
    this.view = 'settings';
    void this.refreshStats();
  }

  async saveSettings(settings: Settings): Promise<void> {
    const saved = await api.saveSettings(settings);
    if (this.state) this.state.settings = saved;
    this.planContext = saved.contextLength;
  }

  async refreshStats(): Promise<void> {
    try {
      this.stats = await api.getStats();
      this.statsError = null;
    } catch (err) {
      this.statsError = errorMessage(err);
    }
  }
}
