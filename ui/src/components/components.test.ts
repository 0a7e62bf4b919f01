import { cleanup, fireEvent, render, screen } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', async () => {
  const m = await import('../test/tauri-mock');
  return { invoke: m.invoke, Channel: m.FakeChannel };
});

import App from '../App.svelte';
import { AppStore } from '../lib/app.svelte';
import { handlers, leaveTauri, resetTauri } from '../test/tauri-mock';
import type { AppState } from '../lib/types';
import Composer from './Composer.svelte';
import MessageItem from './MessageItem.svelte';
import StatsPanel from './StatsPanel.svelte';

const settings = {
  contextLength: 4096,
  temperature: 0.7,
  topP: 0.95,
  topK: 40,
  minP: 0.05,
  repeatPenalty: 1.1,
  seed: 0,
  systemPrompt: '',
  theme: 'system' as const,
  maxTokens: 1024,
};

beforeEach(() => {
  window.matchMedia ??= ((q: string) => ({ matches: false, media: q, addEventListener() {}, removeEventListener() {} })) as never;
});
afterEach(() => {
  cleanup();
  leaveTauri();
});

describe('App', () => {
  it('says plainly when the backend is missing, and still shows the welcome screen', async () => {
    render(App);
    expect(await screen.findByTestId('error-banner')).toHaveProperty('textContent', expect.stringMatching(/backend is not available/));
    expect(screen.getByTestId('welcome')).toBeTruthy();
    expect((screen.getByTestId('open-model') as HTMLButtonElement).disabled).toBe(true);
  });

  it('renders the first run with no model and no adapter', async () => {
    resetTauri();
    const state: AppState = { model: null, adapter: null, adapterError: 'No Vulkan, Metal or DX12 adapter', settings, version: '0.1.0' };
    handlers.set('app_state', () => state);
    handlers.set('list_conversations', () => []);
    render(App);
    expect(await screen.findByTestId('adapter-error')).toHaveProperty('textContent', expect.stringMatching(/No usable GPU was found/));
    expect(screen.queryByTestId('error-banner')).toBeNull();
    expect(screen.getByTestId('model-status').textContent).toBe('None loaded');
    expect((screen.getByTestId('open-model') as HTMLButtonElement).disabled).toBe(false);
  });

  it('disables the composer with a hint when a conversation is open without a model', async () => {
    resetTauri();
    handlers.set('app_state', () => ({ model: null, adapter: null, adapterError: null, settings, version: '0.1.0' }));
    handlers.set('list_conversations', () => []);
    handlers.set('get_conversation', () => ({
      id: 1, title: 'Old chat', createdAt: '', updatedAt: '', messageCount: 1, preview: '',
      messages: [{ id: 1, conversationId: 1, role: 'user', content: 'hello', createdAt: '' }],
    }));
    const store = new AppStore();
    render(App, { store });
    await store.init();
    await store.selectConversation(1);
    const composer = (await screen.findByTestId('composer')) as HTMLTextAreaElement;
    expect(composer.disabled).toBe(true);
    expect(screen.getByTestId('composer-hint').textContent).toMatch(/Load a model/);
    expect(screen.getAllByTestId('message')).toHaveLength(1);
  });
});

describe('ModelPanel', () => {
  it('keeps Load disabled when the picked file cannot be planned', async () => {
    resetTauri();
    handlers.set('app_state', () => ({ model: null, adapter: null, adapterError: null, settings, version: '0.1.0' }));
    handlers.set('list_conversations', () => []);
    handlers.set('plan_model', () => {
      throw 'broken.gguf is not a usable GGUF file: truncated';
    });
    const store = new AppStore();
    render(App, { store });
    await store.init();
    await store.choosePath('/tmp/broken.gguf');
    expect((await screen.findByTestId('model-error')).textContent).toMatch(/not a usable GGUF file/);
    expect((screen.getByTestId('load-model') as HTMLButtonElement).disabled).toBe(true);
  });
});

describe('ModelPanel context', () => {
  it('offers no context beyond what the model supports', async () => {
    resetTauri();
    handlers.set('app_state', () => ({ model: null, adapter: null, adapterError: null, settings, version: '0.1.0' }));
    handlers.set('list_conversations', () => []);
    handlers.set('plan_model', () => ({
      weightsBytes: 1_000_000, kvBytes: 300_000, scratchBytes: 400_000, totalBytes: 1_700_000,
      adapterLimitBytes: 8e9, fits: true, suggestion: null, contextLength: 512,
    }));
    const store = new AppStore();
    render(App, { store });
    await store.init();
    await store.choosePath('/m/stories.gguf');
    const select = (await screen.findByTestId('context-length')) as HTMLSelectElement;
    expect([...select.options].map((o) => Number(o.value))).toEqual([512]);
    expect(select.value).toBe('512');
    expect((screen.getByTestId('load-model') as HTMLButtonElement).disabled).toBe(false);
  });
});

describe('Sidebar', () => {
  it('renames inline and deletes only after confirming', async () => {
    resetTauri();
    let list = [
      { id: 1, title: 'First', createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(), messageCount: 2, preview: 'hi' },
      { id: 2, title: 'Second', createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(), messageCount: 2, preview: 'yo' },
    ];
    handlers.set('app_state', () => ({ model: null, adapter: null, adapterError: null, settings, version: '0.1.0' }));
    handlers.set('list_conversations', () => list);
    handlers.set('rename_conversation', (a) => ({ ...list[0], title: String(a?.title) }));
    handlers.set('delete_conversation', (a) => {
      list = list.filter((c) => c.id !== a?.id);
      return null;
    });
    const store = new AppStore();
    render(App, { store });
    await store.init();
    const items = await screen.findAllByTestId('conversation-item');
    expect(items.map((i) => i.textContent)).toEqual([expect.stringContaining('Second'), expect.stringContaining('First')]);

    await fireEvent.click(items[1].querySelector('[data-testid="conversation-rename"]')!);
    const input = screen.getByTestId('conversation-rename-input') as HTMLInputElement;
    await fireEvent.input(input, { target: { value: '  Renamed chat ' } });
    await fireEvent.keyDown(input, { key: 'Enter' });
    await vi.waitFor(() => expect(store.conversations.find((c) => c.id === 1)?.title).toBe('Renamed chat'));

    await fireEvent.click(screen.getAllByTestId('conversation-delete')[0]);
    expect(store.conversations).toHaveLength(2); // not yet: asks first
    await fireEvent.click(screen.getByTestId('conversation-delete-confirm'));
    await vi.waitFor(() => expect(store.conversations.map((c) => c.id)).toEqual([1]));
  });
});

describe('Composer', () => {
  it('sends on Enter, keeps Shift+Enter for new lines', async () => {
    const onsend = vi.fn(() => true);
    render(Composer, { disabledReason: null, generating: false, onsend, onstop: () => {} });
    const box = screen.getByTestId('composer') as HTMLTextAreaElement;
    await fireEvent.input(box, { target: { value: 'line one' } });
    await fireEvent.keyDown(box, { key: 'Enter', shiftKey: true });
    expect(onsend).not.toHaveBeenCalled();
    await fireEvent.keyDown(box, { key: 'Enter' });
    expect(onsend).toHaveBeenCalledWith('line one');
    expect(box.value).toBe('');
  });

  it('shows Stop while generating', async () => {
    const onstop = vi.fn();
    render(Composer, { disabledReason: null, generating: true, onsend: () => true, onstop });
    await fireEvent.click(screen.getByTestId('stop'));
    expect(onstop).toHaveBeenCalled();
    expect(screen.queryByTestId('send')).toBeNull();
  });
});

describe('MessageItem', () => {
  it('renders Markdown for replies with the stats line and reason', () => {
    render(MessageItem, {
      role: 'assistant',
      content: 'Hello **there**\n\n<script>alert(1)</script>',
      stats: { promptTokens: 30, reusedTokens: 20, computedTokens: 10, generatedTokens: 4, ttftMs: 15, decodeTokS: 50, stopReason: 'eog', recomputeReason: 'the template rewrote history' },
    });
    const msg = screen.getByTestId('message');
    expect(msg.querySelector('strong')?.textContent).toBe('there');
    expect(msg.querySelector('script')).toBeNull();
    expect(screen.getByTestId('reply-stats').textContent).toBe('30 prompt tokens · 20 reused · 10 computed · TTFT 15 ms · 50.0 tok/s');
    expect(screen.getByTestId('recompute-reason').textContent).toMatch(/template rewrote history/);
  });

  it('spaces the stop note like the rest of the line, and hides the first-turn reason', () => {
    render(MessageItem, {
      role: 'assistant',
      content: 'Once',
      stats: { promptTokens: 20, reusedTokens: 0, computedTokens: 20, generatedTokens: 40, ttftMs: 776, decodeTokS: 69.4, stopReason: 'length', recomputeReason: 'first turn' },
    });
    expect(screen.getByTestId('reply-stats').textContent).toBe(
      '20 prompt tokens · 0 reused · 20 computed · TTFT 776 ms · 69.4 tok/s · stopped at the token limit',
    );
    expect(screen.queryByTestId('recompute-reason')).toBeNull();
  });

  it('shows user text as plain text', () => {
    render(MessageItem, { role: 'user', content: '**not bold** <b>x</b>' });
    const msg = screen.getByTestId('message');
    expect(msg.querySelector('strong')).toBeNull();
    expect(msg.textContent).toContain('**not bold** <b>x</b>');
  });
});

describe('StatsPanel', () => {
  const base = {
    promptTokensTotal: 200, reusedTokensTotal: 150, computedTokensTotal: 50, generatedTokensTotal: 80,
    repliesTotal: 4, kvBytesHeld: 2 * 1024 * 1024, kvTokensHeld: 280, ttftMsP50: 40, decodeTokSMean: 30,
  };

  it('shows the reuse rate and what the KV cache holds, for how many conversations', () => {
    render(StatsPanel, { stats: { ...base, kvConversationsHeld: 2 }, error: null, onrefresh: () => {} });
    expect(screen.getByTestId('stats-reuse-rate').textContent).toBe('75%');
    expect(screen.getByTestId('stats-kv-held').textContent).toBe('2 MiB (280 tokens, 2 conversations)');
  });

  it('leaves the count out when an older shell does not send it', () => {
    render(StatsPanel, { stats: base, error: null, onrefresh: () => {} });
    expect(screen.getByTestId('stats-kv-held').textContent).toMatch(/\(280 tokens\)/);
  });
});
