// The document chips, the Documents view, the reply lines about documents and disk restores, and
// the cache panel's live polling, rendered against the faked Tauri shell.
import { cleanup, fireEvent, render, screen } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', async () => {
  const m = await import('../test/tauri-mock');
  return { invoke: m.invoke, Channel: m.FakeChannel };
});

import App from '../App.svelte';
import { AppStore } from '../lib/app.svelte';
import { calls, handlers, leaveTauri, resetTauri, type FakeChannel } from '../test/tauri-mock';
import { doc, emptySnapshot, owners, snapshot } from '../test/fixtures';
import type { DocumentEvent } from '../lib/types';
import CachePanel from './CachePanel.svelte';
import MessageItem from './MessageItem.svelte';

const settings = {
  contextLength: 4096, temperature: 0.7, topP: 0.95, topK: 40, minP: 0.05, repeatPenalty: 1.1, seed: 0,
  systemPrompt: '', theme: 'system' as const, maxTokens: 1024,
};
const model = {
  path: '/m/tiny.gguf', name: 'tiny', architecture: 'llama', parameterLabel: '260K', quantization: 'F32',
  contextLength: 512, fileBytes: 1000,
};
const conversation = { id: 1, title: 'Trip to Lisbon', createdAt: '', updatedAt: '', messageCount: 0, preview: '' };

beforeEach(() => {
  window.matchMedia ??= ((q: string) => ({ matches: false, media: q, addEventListener() {}, removeEventListener() {} })) as never;
  resetTauri();
  handlers.set('app_state', () => ({ model, adapter: null, adapterError: null, settings, version: '0.1.0' }));
  handlers.set('list_conversations', () => [conversation]);
  handlers.set('get_conversation', () => ({ ...conversation, messages: [] }));
});
afterEach(() => {
  cleanup();
  leaveTauri();
  vi.useRealTimers();
});

describe('documents in the chat', () => {
  it('attaches a picked file: a chip shows reading, then encoding, then tokens, windows and cache state', async () => {
    let attached: ReturnType<typeof doc>[] = [];
    handlers.set('conversation_documents', () => attached);
    handlers.set('pick_document_file', () => '/home/me/facts.txt');
    let release: () => void = () => {};
    handlers.set('attach_document', async (a) => {
      const ch = a?.onEvent as FakeChannel<DocumentEvent>;
      ch.onmessage({ type: 'imported', document: doc({ tokens: null, windows: null, cache: 'none' }) });
      ch.onmessage({ type: 'encoding' });
      await new Promise<void>((r) => (release = r));
      attached = [doc()];
      ch.onmessage({ type: 'done', document: doc() });
      return doc();
    });
    const store = new AppStore();
    render(App, { store });
    await store.init();
    await store.selectConversation(1);
    await fireEvent.click(await screen.findByTestId('attach-document'));
    await vi.waitFor(() => expect(screen.getByTestId('document-attaching').textContent).toMatch(/model is reading it/));
    expect(screen.getByTestId('document-chip-detail').textContent).toBe('2 KiB of text · not cached yet');
    expect((screen.getByTestId('attach-document') as HTMLButtonElement).disabled).toBe(true);
    release();
    await vi.waitFor(() => expect(screen.queryByTestId('document-attaching')).toBeNull());
    const chips = screen.getAllByTestId('document-chip');
    expect(chips).toHaveLength(1);
    expect(chips[0].textContent).toContain('facts.txt');
    expect(screen.getByTestId('document-chip-detail').textContent).toBe('1,234 tokens · fits whole · cached on the GPU');
    const attach = calls.find((c) => c.cmd === 'attach_document');
    expect(attach?.args).toMatchObject({ conversationId: 1, path: '/home/me/facts.txt' });
  });

  it('shows why an attach failed and keeps the conversation usable', async () => {
    handlers.set('conversation_documents', () => []);
    handlers.set('pick_document_file', () => '/home/me/scan.pdf');
    handlers.set('attach_document', () => {
      throw 'the document could not be read: no text in this PDF';
    });
    const store = new AppStore();
    render(App, { store });
    await store.init();
    await store.selectConversation(1);
    await fireEvent.click(await screen.findByTestId('attach-document'));
    expect((await screen.findByTestId('document-error')).textContent).toBe(
      'Could not attach scan.pdf: the document could not be read: no text in this PDF',
    );
    expect(screen.queryAllByTestId('document-chip')).toHaveLength(0);
  });

  it('detaches a document from the conversation', async () => {
    handlers.set('conversation_documents', () => [doc()]);
    handlers.set('detach_document', () => null);
    const store = new AppStore();
    render(App, { store });
    await store.init();
    await store.selectConversation(1);
    await fireEvent.click(await screen.findByTestId('document-detach'));
    await vi.waitFor(() => expect(screen.queryAllByTestId('document-chip')).toHaveLength(0));
    expect(calls.find((c) => c.cmd === 'detach_document')?.args).toEqual({ conversationId: 1, documentId: 7 });
  });

  it('lists documents with the conversations using them; renames and deletes after confirming', async () => {
    let library = [doc({ conversationIds: [1] }), doc({ id: 8, name: 'orphan.md', conversationIds: [], cache: 'disk' })];
    handlers.set('list_documents', () => library);
    handlers.set('rename_document', (a) => ({ ...library[0], name: String(a?.name) }));
    handlers.set('delete_document', (a) => {
      library = library.filter((d) => d.id !== a?.id);
      return null;
    });
    const store = new AppStore();
    render(App, { store });
    await store.init();
    await fireEvent.click(screen.getByTestId('nav-documents'));
    const rows = await screen.findAllByTestId('document-row');
    expect(rows).toHaveLength(2);
    expect(screen.getAllByTestId('document-used-in').map((e) => e.textContent)).toEqual([
      'Used in Trip to Lisbon',
      'Not attached to any conversation',
    ]);
    await fireEvent.click(screen.getAllByTestId('document-rename')[0]);
    await fireEvent.input(screen.getByTestId('document-name-input'), { target: { value: 'lisbon facts' } });
    await fireEvent.submit(screen.getByTestId('document-name-input').closest('form')!);
    await vi.waitFor(() => expect(screen.getAllByTestId('document-name')[0].textContent).toBe('lisbon facts'));
    await fireEvent.click(screen.getAllByTestId('document-delete')[1]);
    expect(store.library).toHaveLength(2);
    await fireEvent.click(screen.getByTestId('document-delete-confirm'));
    await vi.waitFor(() => expect(screen.getAllByTestId('document-row')).toHaveLength(1));
  });

  it('explains an empty Documents list', async () => {
    handlers.set('list_documents', () => []);
    const store = new AppStore();
    render(App, { store });
    await store.init();
    await fireEvent.click(screen.getByTestId('nav-documents'));
    expect((await screen.findByTestId('documents-empty')).textContent).toMatch(/Attach a document/);
  });
});

describe('reply lines', () => {
  const base = { promptTokens: 500, reusedTokens: 450, computedTokens: 50, generatedTokens: 8, ttftMs: 40, decodeTokS: 50, stopReason: 'eog' as const };

  it('says which window of the document was read and how much came from its cache', () => {
    render(MessageItem, {
      role: 'assistant',
      content: 'Blue.',
      stats: {
        ...base,
        reusedByTier: { gpu: 450, ram: 0, disk: 0 },
        documents: [{ documentId: 7, name: 'facts.txt', window: 2, windows: 3, charStart: 100, charEnd: 900, prefixTokens: 412, encodedTokens: 0 }],
      },
    });
    expect(screen.getByTestId('reply-document').textContent).toBe("Read facts.txt, window 2 of 3 · 412 tokens from the document's cache");
    expect(screen.queryByTestId('reply-restored')).toBeNull();
    expect(screen.queryByTestId('reply-found-by')).toBeNull();
  });

  it('says the window was found by meaning, with the reason on hover', () => {
    render(MessageItem, {
      role: 'assistant',
      content: 'The keeper\'s daughter.',
      stats: {
        ...base,
        documents: [
          { documentId: 7, name: 'tower.txt', window: 4, windows: 6, charStart: 3000, charEnd: 4100, prefixTokens: 412, encodedTokens: 0, foundBy: 'meaning' },
        ],
      },
    });
    const line = screen.getByTestId('reply-document');
    expect(line.textContent?.replace(/\s+/g, ' ').trim()).toBe(
      "Read tower.txt, window 4 of 6, found by meaning · 412 tokens from the document's cache",
    );
    const why = screen.getByTestId('reply-found-by');
    expect(why.getAttribute('title')).toMatch(/closest in meaning/);
  });

  it('says plainly when the prefix was restored from disk', () => {
    render(MessageItem, { role: 'assistant', content: 'Hi', stats: { ...base, reusedByTier: { gpu: 0, ram: 0, disk: 448 } } });
    expect(screen.getByTestId('reply-restored').textContent).toBe('448 tokens restored from disk');
  });
});

describe('cache panel', () => {
  it('shows tiers, owners by name, hit rate and its chart, and polls only while open', async () => {
    vi.useFakeTimers();
    let n = 0;
    handlers.set('cache_snapshot', () => {
      n += 1;
      return snapshot();
    });
    handlers.set('cache_owners', () => owners);
    const store = new AppStore();
    const view = render(CachePanel, { store, pollMs: 1000, ownersMs: 5000 });
    await vi.waitFor(() => expect(screen.getByTestId('cache-hit-rate').textContent).toBe('80%'));
    expect(screen.getByTestId('cache-tier-gpu-usage').textContent).toBe('12 MiB of 48 MiB');
    expect(screen.getByTestId('cache-tier-disk-usage').textContent).toBe('30 MiB (no limit set)');
    expect(screen.getByTestId('cache-time-saved').textContent).toBe('About 600 ms of prompt processing saved');
    expect(screen.getByTestId('cache-chart').querySelector('polyline')?.getAttribute('points')).toBeTruthy();
    const rows = screen.getAllByTestId('cache-owner').map((r) => r.querySelector('td')?.textContent);
    expect(rows).toEqual(['facts.txt', 'Trip to Lisbon']);
    expect(screen.getByTestId('cache-recomputes').textContent).toMatch(/First message of a conversation/);
    const before = n;
    await vi.advanceTimersByTimeAsync(3000);
    expect(n).toBe(before + 3);
    view.unmount();
    await vi.advanceTimersByTimeAsync(5000);
    expect(n).toBe(before + 3);
  });

  it('explains an empty cache', async () => {
    handlers.set('cache_snapshot', () => emptySnapshot());
    handlers.set('cache_owners', () => ({ disk: true, owners: [] }));
    const store = new AppStore();
    render(CachePanel, { store });
    await vi.waitFor(() => expect(screen.getByTestId('cache-hit-rate').textContent).toBe('—'));
    expect(screen.getByTestId('cache-owners-empty').textContent).toMatch(/Nothing on disk yet/);
    expect(screen.getByTestId('cache-chart').textContent).toMatch(/No messages yet/);
  });

  it('saves the RAM and GPU budgets into the settings, keeping the rest', async () => {
    handlers.set('cache_snapshot', () => snapshot());
    handlers.set('cache_owners', () => owners);
    handlers.set('save_settings', (a) => a?.settings);
    const store = new AppStore();
    await store.init();
    render(CachePanel, { store });
    await fireEvent.input(await screen.findByTestId('cache-budget-ram'), { target: { value: '4096' } });
    await fireEvent.input(screen.getByTestId('cache-budget-gpu'), { target: { value: '8' } });
    await fireEvent.click(screen.getByTestId('cache-budget-save'));
    expect((await screen.findByTestId('cache-budget-status')).textContent).toMatch(/between 16 and/);
    await fireEvent.input(screen.getByTestId('cache-budget-gpu'), { target: { value: '' } });
    await fireEvent.click(screen.getByTestId('cache-budget-save'));
    await vi.waitFor(() => expect(screen.getByTestId('cache-budget-status').textContent).toMatch(/next loaded/));
    const saved = calls.find((c) => c.cmd === 'save_settings')?.args?.settings as Record<string, unknown>;
    expect(saved).toMatchObject({ ...settings, kvGpuBudgetMib: null, kvRamBudgetMib: 4096 });
  });

  it('clears a tier only after confirming', async () => {
    handlers.set('cache_snapshot', () => snapshot());
    handlers.set('cache_owners', () => owners);
    handlers.set('clear_cache_tier', () => null);
    const store = new AppStore();
    render(CachePanel, { store });
    await fireEvent.click(await screen.findByTestId('cache-clear-disk'));
    expect(calls.some((c) => c.cmd === 'clear_cache_tier')).toBe(false);
    expect(screen.getByTestId('cache-clear-question').textContent).toMatch(/^Delete every block on disk/);
    await fireEvent.click(screen.getByTestId('cache-clear-confirm'));
    await vi.waitFor(() => expect(calls.find((c) => c.cmd === 'clear_cache_tier')?.args).toEqual({ tier: 'disk' }));
    await fireEvent.click(await screen.findByTestId('cache-clear-all'));
    await fireEvent.click(screen.getByTestId('cache-clear-confirm'));
    await vi.waitFor(() => expect(calls.filter((c) => c.cmd === 'clear_cache_tier').map((c) => c.args?.tier)).toEqual(['disk', 'all']));
  });

  it('pins an owner, and clears one owner only after confirming', async () => {
    let pinned = false;
    handlers.set('cache_snapshot', () => snapshot());
    handlers.set('cache_owners', () => ({ ...owners, owners: owners.owners.map((o) => ({ ...o, pinned: o.kind === 'conversation' && pinned })) }));
    handlers.set('pin_cache_owner', (a) => {
      pinned = a?.pinned === true;
      return null;
    });
    handlers.set('clear_cache_owner', () => null);
    const store = new AppStore();
    render(CachePanel, { store });
    await fireEvent.click(await screen.findByTestId('owner-pin-conversation-1'));
    await vi.waitFor(() => expect(screen.getByTestId('owner-pinned-conversation-1').textContent).toBe('Pinned'));
    expect(screen.getByTestId('owner-pin-conversation-1').textContent).toBe('Unpin');
    expect(calls.find((c) => c.cmd === 'pin_cache_owner')?.args).toEqual({ kind: 'conversation', id: 1, pinned: true });
    await fireEvent.click(screen.getByTestId('owner-clear-document-7'));
    expect(calls.some((c) => c.cmd === 'clear_cache_owner')).toBe(false);
    await fireEvent.click(screen.getByTestId('owner-clear-confirm-document-7'));
    await vi.waitFor(() => expect(calls.find((c) => c.cmd === 'clear_cache_owner')?.args).toEqual({ kind: 'document', id: 7 }));
  });

  it('saves the disk budget and the KV type', async () => {
    handlers.set('cache_snapshot', () => snapshot());
    handlers.set('cache_owners', () => ({ ...owners, kvType: 'f16' }));
    handlers.set('save_settings', (a) => a?.settings);
    const store = new AppStore();
    await store.init();
    render(CachePanel, { store });
    await fireEvent.input(await screen.findByTestId('cache-budget-disk'), { target: { value: '2048' } });
    await fireEvent.change(screen.getByTestId('cache-kv-type'), { target: { value: 'f32' } });
    await vi.waitFor(() => expect(screen.getByTestId('cache-kv-type-status').textContent).toMatch(/^In use: f16; f32 applies when the model is next loaded/));
    await fireEvent.click(screen.getByTestId('cache-budget-save'));
    await vi.waitFor(() => expect(screen.getByTestId('cache-budget-status').textContent).toMatch(/disk budget applies now/));
    const saved = calls.find((c) => c.cmd === 'save_settings')?.args?.settings as Record<string, unknown>;
    expect(saved).toMatchObject({ kvDiskBudgetMib: 2048, kvType: 'f32' });
  });
});
