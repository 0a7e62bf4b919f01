import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', async () => {
  const m = await import('../test/tauri-mock');
  return { invoke: m.invoke, Channel: m.FakeChannel };
});

import { AppStore } from './app.svelte';
import { calls, FakeChannel, handlers, leaveTauri, resetTauri } from '../test/tauri-mock';
import type { AppState, ChatEvent, ConversationSummary, Message, ModelInfo } from './types';

const model: ModelInfo = {
  path: '/m/stories260K-f32.gguf',
  name: 'stories260K',
  architecture: 'llama',
  parameterLabel: '260K',
  quantization: 'F32',
  contextLength: 512,
  fileBytes: 1_100_000,
};
const settings = {
  contextLength: 512,
  temperature: 0,
  topP: 1,
  topK: 0,
  minP: 0,
  repeatPenalty: 1,
  seed: 0,
  systemPrompt: '',
  theme: 'system' as const,
  maxTokens: 64,
};
const state = (m: ModelInfo | null): AppState => ({ model: m, adapter: null, adapterError: 'no adapter', settings, version: '0.1.0' });
const summary = (id: number, title: string): ConversationSummary => ({
  id,
  title,
  createdAt: '2025-01-01T00:00:00Z',
  updatedAt: '2025-01-01T00:00:00Z',
  messageCount: 0,
  preview: '',
});

beforeEach(resetTauri);
afterEach(leaveTauri);

describe('AppStore', () => {
  it('shows the welcome screen without a model and reports a missing backend', async () => {
    leaveTauri();
    const s = new AppStore();
    await s.init();
    expect(s.backend).toBe('unavailable');
    expect(s.banner).toMatch(/backend is not available/);
    expect(s.showWelcome).toBe(true);
  });

  it('starts a conversation on the first message and assembles the streamed reply', async () => {
    handlers.set('app_state', () => state(model));
    handlers.set('list_conversations', () => []);
    handlers.set('create_conversation', (a) => summary(5, String(a?.title)));
    const user: Message = { id: 1, conversationId: 5, role: 'user', content: 'Once upon a time', createdAt: '2025-01-01T00:00:00Z' };
    const reply: Message = {
      id: 2,
      conversationId: 5,
      role: 'assistant',
      content: ' there was',
      createdAt: '2025-01-01T00:00:01Z',
      stats: { promptTokens: 9, reusedTokens: 0, computedTokens: 9, generatedTokens: 2, ttftMs: 5, decodeTokS: 100, stopReason: 'eog' },
    };
    let midStream: string | undefined;
    const s = new AppStore();
    handlers.set('send_message', async (a) => {
      const ch = a?.onEvent as FakeChannel<ChatEvent>;
      ch.onmessage({ type: 'started', userMessage: user, promptTokens: 9, reusedTokens: 0 });
      ch.onmessage({ type: 'token', text: ' there' });
      await new Promise((r) => setTimeout(r, 40)); // let a frame pass
      midStream = s.pending?.stream.text;
      ch.onmessage({ type: 'token', text: ' was' });
      ch.onmessage({ type: 'done', message: reply });
      return null;
    });
    await s.init();
    expect(s.showWelcome).toBe(false); // a model is loaded
    expect(await s.send('  Once upon a time ')).toBe(true);
    expect(midStream).toBe(' there');
    expect(s.activeId).toBe(5);
    expect(s.pending).toBeNull();
    expect(s.messages.map((m) => m.id)).toEqual([1, 2]);
    expect(calls.find((c) => c.cmd === 'create_conversation')?.args).toEqual({ title: 'Once upon a time' });
    expect(calls.find((c) => c.cmd === 'send_message')?.args).toMatchObject({ conversationId: 5, content: 'Once upon a time' });
  });

  it('hands the text back when the backend refuses the message outright', async () => {
    handlers.set('app_state', () => state(model));
    handlers.set('list_conversations', () => [summary(1, 'A')]);
    handlers.set('get_conversation', () => ({ ...summary(1, 'A'), messages: [] }));
    handlers.set('send_message', () => {
      throw 'the model is still loading';
    });
    const s = new AppStore();
    await s.init();
    await s.selectConversation(1);
    expect(await s.send('hello')).toBe(false);
    expect(s.chatError).toBe('the model is still loading');
    expect(s.pending).toBeNull();
  });

  it('does not send without a model', async () => {
    handlers.set('app_state', () => state(null));
    handlers.set('list_conversations', () => []);
    const s = new AppStore();
    await s.init();
    expect(await s.send('hello')).toBe(false);
    expect(calls.some((c) => c.cmd === 'send_message')).toBe(false);
  });

  it('keeps the app usable when a broken file fails to load', async () => {
    handlers.set('app_state', () => state(null));
    handlers.set('list_conversations', () => []);
    handlers.set('plan_model', () => {
      throw 'not a GGUF file: bad magic';
    });
    handlers.set('load_model', () => {
      throw 'not a GGUF file: bad magic';
    });
    const s = new AppStore();
    await s.init();
    await s.choosePath('/tmp/broken.gguf');
    expect(s.view).toBe('model');
    expect(s.planError).toBe('not a GGUF file: bad magic');
    await s.loadPicked();
    expect(s.loadError).toBe('not a GGUF file: bad magic');
    expect(s.loadProgress).toBeNull();
    expect(s.model).toBeNull();
  });

  it('loads a model, saving a changed context length first', async () => {
    let loaded = false;
    handlers.set('app_state', () => state(loaded ? model : null));
    handlers.set('list_conversations', () => []);
    handlers.set('plan_model', (a) => ({ weightsBytes: 1, kvBytes: 1, scratchBytes: 1, totalBytes: 3, fits: true, contextLength: a?.contextLength }));
    handlers.set('save_settings', (a) => a?.settings);
    const progress: number[] = [];
    const s = new AppStore();
    handlers.set('load_model', (a) => {
      const ch = a?.onEvent as FakeChannel<unknown>;
      ch.onmessage({ type: 'progress', fraction: 0.5, stage: 'Uploading weights' });
      progress.push(s.loadProgress?.fraction ?? -1);
      loaded = true;
      return model;
    });
    await s.init();
    await s.choosePath(model.path);
    await s.setPlanContext(256);
    await s.loadPicked();
    expect(progress).toEqual([0.5]);
    expect(calls.find((c) => c.cmd === 'save_settings')?.args).toMatchObject({ settings: { contextLength: 256 } });
    expect(s.model?.name).toBe('stories260K');
    expect(s.view).toBe('chat');
  });

  it('starts the built-in model in one click: planned and loaded with no dialog', async () => {
    const builtin = { path: '/usr/lib/Hearth/builtin/SmolLM2-135M-Instruct.Q4_1.gguf', name: 'SmolLM2 135M Instruct', bytes: 98_362_432, license: '/usr/lib/Hearth/builtin/LICENSE-SmolLM2.txt' };
    const smol: ModelInfo = { ...model, path: builtin.path, name: 'SmolLM2-135M-Instruct' };
    let loaded = false;
    handlers.set('app_state', () => ({ ...state(loaded ? smol : null), builtinModel: builtin }));
    handlers.set('list_conversations', () => []);
    handlers.set('plan_model', (a) => ({ weightsBytes: 1, kvBytes: 1, scratchBytes: 1, totalBytes: 3, fits: true, contextLength: a?.contextLength }));
    handlers.set('load_model', () => {
      loaded = true;
      return smol;
    });
    const s = new AppStore();
    await s.init();
    await s.startBuiltin();
    expect(calls.some((c) => c.cmd === 'pick_model_file')).toBe(false);
    expect(calls.find((c) => c.cmd === 'load_model')?.args).toMatchObject({ path: builtin.path });
    expect(s.model?.name).toBe('SmolLM2-135M-Instruct');
    expect(s.view).toBe('chat');
  });

  it('offers no built-in model when the build has none, and a failed plan stops the start', async () => {
    handlers.set('app_state', () => ({ ...state(null), builtinModel: { path: '/x.gguf', name: 'x', bytes: 1, license: '/l' } }));
    handlers.set('list_conversations', () => []);
    handlers.set('plan_model', () => {
      throw 'not a GGUF file: bad magic';
    });
    const s = new AppStore();
    await s.init();
    await s.startBuiltin();
    expect(s.planError).toBe('not a GGUF file: bad magic');
    expect(calls.some((c) => c.cmd === 'load_model')).toBe(false);

    handlers.set('app_state', () => state(null));
    const t = new AppStore();
    await t.init();
    await t.startBuiltin();
    expect(calls.filter((c) => c.cmd === 'plan_model')).toHaveLength(1);
  });

  it('renames and deletes conversations', async () => {
    handlers.set('app_state', () => state(model));
    handlers.set('list_conversations', () => [summary(1, 'A'), summary(2, 'B')]);
    handlers.set('rename_conversation', (a) => summary(Number(a?.id), String(a?.title)));
    handlers.set('delete_conversation', () => null);
    handlers.set('get_conversation', (a) => ({ ...summary(Number(a?.id), 'B'), messages: [] }));
    const s = new AppStore();
    await s.init();
    expect(await s.renameConversation(1, '   ')).toBe(false);
    expect(await s.renameConversation(1, ' Renamed ')).toBe(true);
    expect(s.conversations.find((c) => c.id === 1)?.title).toBe('Renamed');
    await s.selectConversation(2);
    await s.deleteConversation(2);
    expect(s.conversations.map((c) => c.id)).toEqual([1]);
    expect(s.activeId).toBeNull();
  });
});
