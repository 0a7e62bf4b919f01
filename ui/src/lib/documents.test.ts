import { describe, expect, it } from 'vitest';
import { doc } from '../test/fixtures';
import { cacheStateLabel, documentChipDetail, documentReadLine, documentReadLines, restoredLine, usedInText } from './documents';
import type { DocumentRead, ReplyStats } from './types';

const read = (over: Partial<DocumentRead> = {}): DocumentRead => ({
  documentId: 7,
  name: 'facts.txt',
  window: 1,
  windows: 1,
  charStart: 0,
  charEnd: 2048,
  prefixTokens: 412,
  encodedTokens: 0,
  ...over,
});

const stats = (over: Partial<ReplyStats> = {}): ReplyStats => ({
  promptTokens: 500,
  reusedTokens: 450,
  computedTokens: 50,
  generatedTokens: 20,
  ttftMs: 80,
  decodeTokS: 40,
  stopReason: 'eog',
  ...over,
});

describe('document chip', () => {
  it('shows tokens, windows and where the cache is', () => {
    expect(documentChipDetail(doc())).toBe('1,234 tokens · fits whole · cached on the GPU');
    expect(documentChipDetail(doc({ windows: 3, cache: 'disk' }))).toBe('1,234 tokens · 3 windows · cached on disk');
    expect(documentChipDetail(doc({ tokens: null, windows: null, cache: 'none' }))).toBe('2 KiB of text · not cached yet');
  });

  it('names every cache state', () => {
    expect(cacheStateLabel('gpu')).toBe('cached on the GPU');
    expect(cacheStateLabel('disk')).toBe('cached on disk');
    expect(cacheStateLabel('none')).toBe('not cached yet');
  });

  it('says which conversations use a document', () => {
    const titles = new Map([[1, 'Trip to Lisbon']]);
    expect(usedInText(doc({ conversationIds: [1, 2] }), titles)).toBe('Used in Trip to Lisbon, Conversation 2');
    expect(usedInText(doc({ conversationIds: [] }), titles)).toBe('Not attached to any conversation');
  });
});

describe('reply lines', () => {
  it('says which window was read and how many tokens came from the document cache', () => {
    expect(documentReadLine(read())).toBe("Read facts.txt · 412 tokens from the document's cache");
    expect(documentReadLine(read({ window: 2, windows: 3 }))).toBe("Read facts.txt, window 2 of 3 · 412 tokens from the document's cache");
    expect(documentReadLine(read({ encodedTokens: 412 }))).toBe('Read facts.txt · 412 tokens read and cached now');
    expect(documentReadLine(read({ encodedTokens: 12 }))).toBe("Read facts.txt · 400 tokens from the document's cache, 12 computed now");
  });

  it('never claims more from the document cache than the turn reused', () => {
    expect(documentReadLine(read(), 400)).toBe("Read facts.txt · 400 tokens from the document's cache");
    expect(documentReadLine(read({ prefixTokens: 12 }), 0)).toBe('Read facts.txt · 12 tokens read, none of them from its cache');
    expect(documentReadLines(stats({ reusedTokens: 405, documents: [read()] }))).toEqual([
      "Read facts.txt · 405 tokens from the document's cache",
    ]);
  });

  it('says why a window was read when the document has several', () => {
    expect(documentReadLine(read({ window: 2, windows: 3, foundBy: 'meaning' }))).toBe(
      "Read facts.txt, window 2 of 3, found by meaning · 412 tokens from the document's cache",
    );
    expect(documentReadLine(read({ window: 1, windows: 3, foundBy: 'words' }))).toBe(
      "Read facts.txt, window 1 of 3, found by its words · 412 tokens from the document's cache",
    );
    expect(documentReadLine(read({ window: 3, windows: 3, foundBy: 'both' }))).toContain('window 3 of 3, found by words and meaning ·');
    // One window (the whole document), no ranker, or an unknown value: nothing to explain.
    expect(documentReadLine(read({ foundBy: 'meaning' }))).toBe("Read facts.txt · 412 tokens from the document's cache");
    expect(documentReadLine(read({ window: 2, windows: 3 }))).not.toContain('found');
    expect(documentReadLine(read({ window: 2, windows: 3, foundBy: 'vibes' as never }))).not.toContain('found');
  });

  it('has one line per document read, none without documents', () => {
    expect(documentReadLines(stats({ documents: [read(), read({ name: 'b.md' })] }))).toHaveLength(2);
    expect(documentReadLines(stats())).toEqual([]);
    expect(documentReadLines(null)).toEqual([]);
  });

  it('says plainly when the prefix was restored from disk', () => {
    expect(restoredLine(stats({ reusedByTier: { gpu: 0, ram: 0, disk: 1024 } }))).toBe('1,024 tokens restored from disk');
    expect(restoredLine(stats({ reusedByTier: { gpu: 10, ram: 5, disk: 1 } }))).toBe(
      '1 token restored from disk · 5 tokens restored from memory (RAM)',
    );
    expect(restoredLine(stats({ reusedByTier: { gpu: 450, ram: 0, disk: 0 } }))).toBeNull();
    expect(restoredLine(stats())).toBeNull();
  });
});
