// Sample payloads of the cache and document commands, shaped as the Rust shell sends them.
import type { CacheOwners, CacheSnapshot, DocumentInfo } from '../lib/types';

export function snapshot(over: Partial<CacheSnapshot> = {}): CacheSnapshot {
  return {
    prefixCacheQueries: 1500,
    prefixCacheHits: { gpu: 1000, ram: 0, disk: 200 },
    hitRate: 0.8,
    requests: 4,
    promptTokens: 1500,
    generationTokens: 120,
    prefillTokens: 300,
    prefillMsPerToken: 0.5,
    timeSavedMs: 600,
    tiers: {
      gpu: { blocks: 12, bytes: 12 * 1024 * 1024, budgetBytes: 48 * 1024 * 1024 },
      ram: { blocks: 0, bytes: 0, budgetBytes: 1024 * 1024 * 1024 },
      disk: { blocks: 30, bytes: 30 * 1024 * 1024, budgetBytes: 0 },
    },
    ownerBytes: { conversation: 4 * 1024 * 1024, document: 2 * 1024 * 1024, shared: 1024 * 1024, request: 0 },
    pinnedBlocks: 2,
    evictions: { gpu: 3, ram: 0, disk: 0 },
    spills: { ram: 5, disk: 7 },
    restores: { ram: 1, disk: 4 },
    restoredBytes: { ram: 1024, disk: 4096 },
    verificationFailures: { checksum: 0, truncated: 0, fingerprint: 0, decode: 0 },
    recomputes: { firstTurn: 2, template: 0, contextFull: 0, evicted: 1, modelChanged: 0, noCache: 0, other: 0 },
    ttftMs: { p50: 120, p99: 850, samples: 4 },
    decodeTokS: { p50: 42.5, p99: 30, samples: 4 },
    requestsRunning: 0,
    requestsWaiting: 0,
    hitRateHistory: [
      { unixMs: 1, hitRate: 0 },
      { unixMs: 2, hitRate: 0.5 },
      { unixMs: 3, hitRate: 0.8 },
    ],
    ...over,
  };
}

export function emptySnapshot(): CacheSnapshot {
  const zero = { blocks: 0, bytes: 0, budgetBytes: 0 };
  return snapshot({
    prefixCacheQueries: 0,
    prefixCacheHits: { gpu: 0, ram: 0, disk: 0 },
    hitRate: null,
    requests: 0,
    promptTokens: 0,
    prefillTokens: 0,
    prefillMsPerToken: null,
    timeSavedMs: null,
    tiers: { gpu: zero, ram: zero, disk: zero },
    ownerBytes: { conversation: 0, document: 0, shared: 0, request: 0 },
    evictions: { gpu: 0, ram: 0, disk: 0 },
    spills: { ram: 0, disk: 0 },
    restores: { ram: 0, disk: 0 },
    restoredBytes: { ram: 0, disk: 0 },
    recomputes: { firstTurn: 0, template: 0, contextFull: 0, evicted: 0, modelChanged: 0, noCache: 0, other: 0 },
    ttftMs: { p50: null, p99: null, samples: 0 },
    decodeTokS: { p50: null, p99: null, samples: 0 },
    hitRateHistory: [],
  });
}

export const owners: CacheOwners = {
  disk: true,
  owners: [
    { kind: 'conversation', id: 1, name: 'Trip to Lisbon', blocks: 3, bytes: 3 * 1024 * 1024 },
    { kind: 'document', id: 7, name: 'facts.txt', blocks: 5, bytes: 5 * 1024 * 1024 },
  ],
};

export function doc(over: Partial<DocumentInfo> = {}): DocumentInfo {
  return {
    id: 7,
    name: 'facts.txt',
    sourcePath: '/home/me/facts.txt',
    byteCount: 2048,
    charCount: 2048,
    createdAt: '2026-01-01T10:00:00Z',
    conversationIds: [1],
    tokens: 1234,
    windows: 1,
    cache: 'gpu',
    ...over,
  };
}
