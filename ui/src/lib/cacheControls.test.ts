import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', async () => {
  const m = await import('../test/tauri-mock');
  return { invoke: m.invoke, Channel: m.FakeChannel };
});

import { AppStore } from './app.svelte';
import { ownerRows, parseBudget } from './cache';
import {
  budgetsSavedText,
  clearOwnerQuestion,
  clearTierQuestion,
  kvTypeText,
  ownerControl,
  TIER_CLEARS,
} from './cacheControls';
import { calls, handlers, leaveTauri, resetTauri } from '../test/tauri-mock';
import { owners } from '../test/fixtures';

beforeEach(resetTauri);
afterEach(leaveTauri);

describe('cache controls text', () => {
  it('offers a clear per tier and one for everything, each with its own question', () => {
    expect(TIER_CLEARS.map((c) => c.tier)).toEqual(['gpu', 'ram', 'disk', 'all']);
    expect(clearTierQuestion('gpu')).toMatch(/^Empty GPU memory .*RAM and on disk stay/);
    expect(clearTierQuestion('ram')).toMatch(/^Empty the RAM tier\? GPU memory and disk stay/);
    expect(clearTierQuestion('disk')).toMatch(/^Delete every block on disk, for every model\?/);
    expect(clearTierQuestion('all')).toMatch(/^Empty every tier\? Conversations and documents stay/);
  });

  it('says clearing one owner keeps it and the prefix it shares', () => {
    const q = clearOwnerQuestion('conversation', 'Trip to Lisbon');
    expect(q).toContain('the conversation “Trip to Lisbon”');
    expect(q).toContain('It is not deleted');
    expect(q).toContain('shares with others');
    expect(clearOwnerQuestion('document', 'facts.txt')).toContain('the document “facts.txt”');
  });

  it('gives conversation and document rows pin and clear controls, not other requests', () => {
    const rows = ownerRows({
      ...owners,
      owners: [...owners.owners.map((o, i) => ({ ...o, pinned: i === 1 })), { kind: 'other', id: null, name: 'Other', blocks: 1, bytes: 1 }],
    });
    const controls = rows.map((r) => ownerControl(r.usage));
    expect(controls.map((c) => c && [c.testKey, c.pinned, c.pinLabel])).toEqual([
      ['document-7', true, 'Unpin'],
      ['conversation-1', false, 'Pin'],
      null,
    ]);
  });

  it('says which KV type is in use and when a change applies', () => {
    expect(kvTypeText('f16', 'f16')).toBe('In use: f16.');
    expect(kvTypeText('f16', 'f32')).toBe('In use: f16; f32 applies when the model is next loaded.');
    expect(kvTypeText(null, 'f32')).toBe('No model is loaded; the next one loads with f32.');
    expect(budgetsSavedText(true)).toContain('The disk budget applies now; the GPU and RAM budgets and the KV type when the model is next loaded.');
  });

  it('bounds the disk budget like the others, in MiB', () => {
    expect(parseBudget('The disk budget', '4096')).toEqual({ value: 4096 });
    expect(parseBudget('The disk budget', '')).toEqual({ value: null });
    expect(parseBudget('The disk budget', '8')).toEqual({ error: 'The disk budget must be between 16 and 1,048,576 MiB.' });
  });
});

describe('cache controls calls', () => {
  function store(): AppStore {
    handlers.set('cache_snapshot', () => null);
    handlers.set('cache_owners', () => owners);
    return new AppStore();
  }

  it('clears one tier, one owner, and pins through the shell', async () => {
    const s = store();
    handlers.set('clear_cache_tier', () => null);
    handlers.set('clear_cache_owner', () => null);
    handlers.set('pin_cache_owner', () => null);
    expect(await s.clearCacheTier('ram')).toBe(true);
    expect(await s.clearCacheOwner('conversation', 1)).toBe(true);
    expect(await s.pinCacheOwner('document', 7, true)).toBe(true);
    const sent = calls.filter((c) => !c.cmd.startsWith('cache_')).map((c) => [c.cmd, c.args]);
    expect(sent).toEqual([
      ['clear_cache_tier', { tier: 'ram' }],
      ['clear_cache_owner', { kind: 'conversation', id: 1 }],
      ['pin_cache_owner', { kind: 'document', id: 7, pinned: true }],
    ]);
    expect(calls.filter((c) => c.cmd === 'cache_owners').length).toBe(3);
  });

  it('shows a refused pin with its reason', async () => {
    const s = store();
    handlers.set('pin_cache_owner', () => {
      throw 'pinning this would keep 144 tokens on the GPU for good';
    });
    expect(await s.pinCacheOwner('conversation', 2, true)).toBe(false);
    expect(s.cacheError).toBe('Could not pin it: pinning this would keep 144 tokens on the GPU for good');
  });
});
