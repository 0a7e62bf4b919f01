// Helpers for the conversations sidebar: ordering, local filtering, list updates, titles, groups.
import type { ConversationSummary } from './types';

function time(iso: string): number {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? 0 : t;
}

/** Newest activity first; ties by id, newest first. Does not mutate its input. */
export function sortNewestFirst<T extends Pick<ConversationSummary, 'id' | 'updatedAt'>>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => time(b.updatedAt) - time(a.updatedAt) || b.id - a.id);
}

/** Normalises a search box entry: trimmed, inner whitespace collapsed. */
export function normaliseQuery(q: string): string {
  return q.trim().replace(/\s+/g, ' ');
}

/**
 * Instant local filter over titles and previews (case-insensitive, every word must match) while
 * the backend's full-text search is on its way.
 */
export function filterConversations(list: readonly ConversationSummary[], query: string): ConversationSummary[] {
  const words = normaliseQuery(query).toLowerCase().split(' ').filter(Boolean);
  if (!words.length) return [...list];
  return list.filter((c) => {
    const hay = `${c.title}\n${c.preview}`.toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

/** Inserts or replaces a summary, keeping newest-first order. */
export function upsertConversation(list: readonly ConversationSummary[], item: ConversationSummary): ConversationSummary[] {
  return sortNewestFirst([...list.filter((c) => c.id !== item.id), item]);
}

export function removeConversation(list: readonly ConversationSummary[], id: number): ConversationSummary[] {
  return list.filter((c) => c.id !== id);
}

export const TITLE_MAX = 200;

/** A title from the first message: its first non-empty line, at most `max` characters. */
export function titleFromMessage(text: string, max = 48): string {
  const line = text.split('\n').map((l) => l.trim()).find(Boolean) ?? '';
  const plain = line.replace(/^#+\s*/, '').replace(/\s+/g, ' ');
  if (!plain) return 'New chat';
  if (plain.length <= max) return plain;
  const cut = plain.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/** A rename entry: trimmed, 1–200 characters; null when it is not acceptable. */
export function cleanTitle(input: string): string | null {
  const t = input.trim().replace(/\s+/g, ' ');
  if (!t || t.length > TITLE_MAX) return null;
  return t;
}

export type DateGroup = 'Today' | 'Yesterday' | 'Previous 7 days' | 'Previous 30 days' | 'Older';

export function dateGroup(iso: string, now: Date = new Date()): DateGroup {
  const d = new Date(time(iso));
  const day = (x: Date) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const days = Math.round((day(now) - day(d)) / 86_400_000);
  if (days <= 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (days < 7) return 'Previous 7 days';
  if (days < 30) return 'Previous 30 days';
  return 'Older';
}

/** Consecutive groups of an already-sorted list, for section headings. */
export function groupByDate(list: readonly ConversationSummary[], now: Date = new Date()): { label: DateGroup; items: ConversationSummary[] }[] {
  const groups: { label: DateGroup; items: ConversationSummary[] }[] = [];
  for (const c of list) {
    const label = dateGroup(c.updatedAt, now);
    const last = groups[groups.length - 1];
    if (last && last.label === label) last.items.push(c);
    else groups.push({ label, items: [c] });
  }
  return groups;
}
