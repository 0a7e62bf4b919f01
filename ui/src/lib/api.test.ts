import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', async () => {
  const m = await import('../test/tauri-mock');
  return { invoke: m.invoke, Channel: m.FakeChannel };
});
// Drag-and-drop: the webview's own events (overlay) and the shell's `model-dropped` event.
const dragListeners: ((e: { payload: unknown }) => void)[] = [];
const eventListeners = new Map<string, (e: { payload: unknown }) => void>();
vi.mock('@tauri-apps/api/webview', () => ({
  getCurrentWebview: () => ({
    onDragDropEvent: async (h: (e: { payload: unknown }) => void) => {
      dragListeners.push(h);
      return () => dragListeners.splice(dragListeners.indexOf(h), 1);
    },
  }),
}));
vi.mock('@tauri-apps/api/event', () => ({
  listen: async (name: string, h: (e: { payload: unknown }) => void) => {
    eventListeners.set(name, h);
    return () => eventListeners.delete(name);
  },
}));

import { api, backendAvailable, BackendUnavailableError, errorMessage, ggufPaths, MODEL_DROPPED_EVENT, onFileDrag } from './api';
import { calls, FakeChannel, handlers, leaveTauri, resetTauri } from '../test/tauri-mock';
import type { ChatEvent } from './types';

beforeEach(resetTauri);
afterEach(leaveTauri);

describe('api', () => {
  it('detects the Tauri backend', () => {
    expect(backendAvailable()).toBe(true);
    leaveTauri();
    expect(backendAvailable()).toBe(false);
  });

  it('refuses to call anything outside Tauri, with a clear message', async () => {
    leaveTauri();
    await expect(api.appState()).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(api.sendMessage(1, 'hi', () => {})).rejects.toThrow(/backend is not available/);
    await expect(api.pickModelFile()).rejects.toThrow(/backend is not available/);
  });

  it('passes the contract argument names', async () => {
    handlers.set('list_conversations', () => []);
    handlers.set('rename_conversation', (a) => ({ id: a?.id, title: a?.title }));
    handlers.set('plan_model', () => ({}));
    handlers.set('save_settings', (a) => a?.settings);
    await api.listConversations('  rust  ');
    await api.listConversations('');
    await api.renameConversation(3, 'Trip');
    await api.planModel('/m.gguf', 8192);
    await api.planModel('/m.gguf');
    expect(calls.map((c) => [c.cmd, c.args])).toEqual([
      ['list_conversations', { query: 'rust' }],
      ['list_conversations', {}],
      ['rename_conversation', { id: 3, title: 'Trip' }],
      ['plan_model', { path: '/m.gguf', contextLength: 8192 }],
      ['plan_model', { path: '/m.gguf' }],
    ]);
  });

  it('streams ChatEvents through a Channel named onEvent', async () => {
    const seen: ChatEvent[] = [];
    handlers.set('send_message', (a) => {
      const ch = a?.onEvent as FakeChannel<ChatEvent>;
      expect(ch).toBeInstanceOf(FakeChannel);
      ch.onmessage({ type: 'token', text: 'Hel' });
      ch.onmessage({ type: 'token', text: 'lo' });
      return null;
    });
    await api.sendMessage(7, 'hi', (e) => seen.push(e));
    expect(calls[0].args).toMatchObject({ conversationId: 7, content: 'hi' });
    expect(seen).toEqual([
      { type: 'token', text: 'Hel' },
      { type: 'token', text: 'lo' },
    ]);
  });

  it('turns a rejected command into an Error with the backend text', async () => {
    handlers.set('load_model', () => {
      throw 'not a GGUF file: bad magic 0x00000000';
    });
    await expect(api.loadModel('/x.gguf', () => {})).rejects.toThrow('not a GGUF file: bad magic 0x00000000');
  });

  it('asks the shell for the dialog, which returns the picked path or null', async () => {
    handlers.set('pick_model_file', () => '/models/tiny.gguf');
    expect(await api.pickModelFile()).toBe('/models/tiny.gguf');
    expect(calls.map((c) => c.cmd)).toEqual(['pick_model_file']);
    handlers.set('pick_model_file', () => null);
    expect(await api.pickModelFile()).toBeNull();
  });

  it('acts on a drop only once the shell announces the granted file', async () => {
    const seen: unknown[] = [];
    const off = await onFileDrag((e) => seen.push(e));
    for (const h of dragListeners) h({ payload: { type: 'enter', paths: ['/m/a.gguf'], position: { x: 0, y: 0 } } });
    for (const h of dragListeners) h({ payload: { type: 'drop', paths: ['/m/a.gguf'], position: { x: 0, y: 0 } } });
    expect(seen).toEqual([{ type: 'enter', paths: ['/m/a.gguf'] }, { type: 'leave' }]);
    eventListeners.get(MODEL_DROPPED_EVENT)?.({ payload: '/m/a.gguf' });
    expect(seen.at(-1)).toEqual({ type: 'drop', paths: ['/m/a.gguf'] });
    off();
    expect(dragListeners).toHaveLength(0);
    expect(eventListeners.size).toBe(0);
  });

  it('omits an empty sha256 from download_model', async () => {
    handlers.set('download_model', () => '/data/m.gguf');
    await api.downloadModel('https://huggingface.co/a/b/resolve/main/m.gguf', undefined, () => {});
    expect(calls[0].args).not.toHaveProperty('sha256');
  });

  it('keeps only GGUF files from a drop, and is inert outside Tauri', async () => {
    expect(ggufPaths(['/a/model.GGUF', '/a/notes.txt', '/b/x.gguf'])).toEqual(['/a/model.GGUF', '/b/x.gguf']);
    leaveTauri();
    const off = await onFileDrag(() => {});
    expect(typeof off).toBe('function');
  });

  it('reads messages from any error shape', () => {
    expect(errorMessage('plain')).toBe('plain');
    expect(errorMessage(new Error('boxed'))).toBe('boxed');
    expect(errorMessage({ message: 'object' })).toBe('object');
    expect(errorMessage({ code: 3 })).toBe('{"code":3}');
  });
});
