// Text for documents in the chat: the chip in the conversation header, the Documents list and the
// lines under a reply that read a document or restored its prefix from disk. Pure, so tests pin it.
import { formatBytes, formatCount } from './format';
import type { DocumentCacheState, DocumentInfo, DocumentRead, FoundBy, ReplyStats } from './types';

const CACHE_LABELS: Record<DocumentCacheState, string> = {
  gpu: 'cached on the GPU',
  disk: 'cached on disk',
  none: 'not cached yet',
};

/** "cached on the GPU" / "cached on disk" / "not cached yet". */
export function cacheStateLabel(state: DocumentCacheState): string {
  return CACHE_LABELS[state] ?? CACHE_LABELS.none;
}

const plural = (n: number, one: string, many: string) => `${formatCount(n)} ${n === 1 ? one : many}`;

/** The chip's detail line: "1,234 tokens · 2 windows · cached on the GPU". */
export function documentChipDetail(doc: DocumentInfo): string {
  const parts: string[] = [];
  parts.push(doc.tokens != null ? plural(doc.tokens, 'token', 'tokens') : `${formatBytes(doc.byteCount)} of text`);
  if (doc.windows != null) parts.push(doc.windows === 1 ? 'fits whole' : plural(doc.windows, 'window', 'windows'));
  parts.push(cacheStateLabel(doc.cache));
  return parts.join(' · ');
}

/** Which conversations use a document, by title: "Used in Trip, Notes" / "Not attached anywhere". */
export function usedInText(doc: DocumentInfo, titles: ReadonlyMap<number, string>): string {
  if (!doc.conversationIds.length) return 'Not attached to any conversation';
  const names = doc.conversationIds.map((id) => titles.get(id) ?? `Conversation ${id}`);
  return `Used in ${names.join(', ')}`;
}

/** Why a window was read, for the reply line and its tooltip. */
export const FOUND_BY: Record<FoundBy, { label: string; explain: string }> = {
  words: { label: 'found by its words', explain: "The question's words matched this part of the document best (BM25)." },
  meaning: {
    label: 'found by meaning',
    explain: 'This part of the document is closest in meaning to the question (sentence embeddings), even where the words differ.',
  },
  both: { label: 'found by words and meaning', explain: "Both the question's words (BM25) and its meaning (sentence embeddings) pointed here." },
};

/** The pieces of a reply's line about one document: what was read, why, and what it cost. */
export interface DocumentReadParts {
  /** "Read notes.txt, window 2 of 3" */
  head: string;
  /** Why that window (only when the document has several and a ranker chose it). */
  foundBy: { label: string; explain: string } | null;
  /** "412 tokens from the document's cache" */
  tokens: string;
}

export function documentReadParts(read: DocumentRead, reusedTokens?: number): DocumentReadParts {
  const where = read.windows > 1 ? `, window ${formatCount(read.window)} of ${formatCount(read.windows)}` : '';
  // The prefix's tokens this turn did not compute, and never more than the turn reused at all
  // (the cache holds whole blocks: a prefix's last partial block is computed with the question).
  const notEncoded = Math.max(0, read.prefixTokens - read.encodedTokens);
  const cached = reusedTokens == null ? notEncoded : Math.min(notEncoded, reusedTokens);
  let tokens: string;
  if (cached > 0 && read.encodedTokens === 0) tokens = `${plural(cached, 'token', 'tokens')} from the document's cache`;
  else if (cached > 0) tokens = `${plural(cached, 'token', 'tokens')} from the document's cache, ${formatCount(read.encodedTokens)} computed now`;
  else if (read.encodedTokens > 0) tokens = `${plural(read.encodedTokens, 'token', 'tokens')} read and cached now`;
  else tokens = `${plural(read.prefixTokens, 'token', 'tokens')} read, none of them from its cache`;
  const foundBy = read.windows > 1 && read.foundBy && FOUND_BY[read.foundBy] ? FOUND_BY[read.foundBy] : null;
  return { head: `Read ${read.name}${where}`, foundBy, tokens };
}

/**
 * The line under a reply for one document it read:
 * "Read notes.txt, window 2 of 3, found by meaning · 412 tokens from the document's cache" (or
 * "… · 412 tokens read and cached now" when the turn computed them).
 */
export function documentReadLine(read: DocumentRead, reusedTokens?: number): string {
  const p = documentReadParts(read, reusedTokens);
  return `${p.head}${p.foundBy ? `, ${p.foundBy.label}` : ''} · ${p.tokens}`;
}

/** One line per document the reply read. */
export function documentReadLines(stats: ReplyStats | null | undefined): string[] {
  return (stats?.documents ?? []).map((r) => documentReadLine(r, stats?.reusedTokens));
}

/** The parts of each line, for `DocumentReadLine.svelte`. */
export function documentReadPartsOf(stats: ReplyStats | null | undefined): DocumentReadParts[] {
  return (stats?.documents ?? []).map((r) => documentReadParts(r, stats?.reusedTokens));
}

/** "1,024 tokens restored from disk" when some reused tokens came from the disk tier, else null. */
export function restoredLine(stats: ReplyStats | null | undefined): string | null {
  const disk = stats?.reusedByTier?.disk ?? 0;
  const ram = stats?.reusedByTier?.ram ?? 0;
  const parts: string[] = [];
  if (disk > 0) parts.push(`${plural(disk, 'token', 'tokens')} restored from disk`);
  if (ram > 0) parts.push(`${plural(ram, 'token', 'tokens')} restored from memory (RAM)`);
  return parts.length ? parts.join(' · ') : null;
}
