import { describe, expect, it } from 'vitest';
import {
  cleanTitle,
  dateGroup,
  filterConversations,
  groupByDate,
  normaliseQuery,
  removeConversation,
  sortNewestFirst,
  titleFromMessage,
  upsertConversation,
} from './conversations';
import type { ConversationSummary } from './types';

const conv = (id: number, updatedAt: string, title = `Chat ${id}`, preview = ''): ConversationSummary => ({
  id,
  title,
  createdAt: updatedAt,
  updatedAt,
  messageCount: 2,
  preview,
});

describe('ordering and updates', () => {
  it('sorts newest first, ties by id, without mutating', () => {
    const list = [conv(1, '2025-01-01T10:00:00Z'), conv(2, '2025-01-03T10:00:00Z'), conv(3, '2025-01-01T10:00:00Z')];
    expect(sortNewestFirst(list).map((c) => c.id)).toEqual([2, 3, 1]);
    expect(list.map((c) => c.id)).toEqual([1, 2, 3]);
  });
  it('puts a bad timestamp last', () => {
    expect(sortNewestFirst([conv(1, 'garbage'), conv(2, '2025-01-01T00:00:00Z')]).map((c) => c.id)).toEqual([2, 1]);
  });
  it('upserts to the top and removes', () => {
    const list = [conv(1, '2025-01-02T00:00:00Z'), conv(2, '2025-01-01T00:00:00Z')];
    const touched = upsertConversation(list, conv(2, '2025-01-05T00:00:00Z', 'Renamed'));
    expect(touched.map((c) => [c.id, c.title])).toEqual([
      [2, 'Renamed'],
      [1, 'Chat 1'],
    ]);
    expect(removeConversation(touched, 2).map((c) => c.id)).toEqual([1]);
  });
});

describe('search', () => {
  const list = [
    conv(1, '2025-01-01T00:00:00Z', 'Rust lifetimes', 'borrow checker question'),
    conv(2, '2025-01-02T00:00:00Z', 'Dinner ideas', 'something with RUST-coloured peppers'),
    conv(3, '2025-01-03T00:00:00Z', 'Trip plan', 'train to Lyon'),
  ];
  it('matches titles and previews, case-insensitively, every word', () => {
    expect(filterConversations(list, 'rust').map((c) => c.id)).toEqual([1, 2]);
    expect(filterConversations(list, '  RUST   borrow ').map((c) => c.id)).toEqual([1]);
    expect(filterConversations(list, 'lyon').map((c) => c.id)).toEqual([3]);
    expect(filterConversations(list, 'nothing here')).toEqual([]);
  });
  it('returns everything for an empty query and treats % and _ literally', () => {
    expect(filterConversations(list, '   ')).toHaveLength(3);
    expect(filterConversations(list, '%')).toEqual([]);
    expect(filterConversations(list, '_')).toEqual([]);
    expect(normaliseQuery('  a \t b  ')).toBe('a b');
  });
});

describe('titles', () => {
  it('derives a title from the first line of the first message', () => {
    expect(titleFromMessage('\n  Once upon a time\nthere was')).toBe('Once upon a time');
    expect(titleFromMessage('## Heading text')).toBe('Heading text');
    expect(titleFromMessage('   ')).toBe('New chat');
    const long = titleFromMessage('Explain how the KV cache works in transformer models when the context grows');
    expect(long.length).toBeLessThanOrEqual(48);
    expect(long.endsWith('…')).toBe(true);
    expect(long).toBe('Explain how the KV cache works in transformer…');
  });
  it('cleans rename input', () => {
    expect(cleanTitle('  Trip   plan ')).toBe('Trip plan');
    expect(cleanTitle('   ')).toBeNull();
    expect(cleanTitle('x'.repeat(201))).toBeNull();
    expect(cleanTitle('x'.repeat(200))).toHaveLength(200);
  });
});

describe('date groups', () => {
  const now = new Date(2025, 5, 15, 12, 0);
  it('labels by age and groups consecutive items', () => {
    expect(dateGroup(new Date(2025, 5, 15, 1).toISOString(), now)).toBe('Today');
    expect(dateGroup(new Date(2025, 5, 14, 23).toISOString(), now)).toBe('Yesterday');
    expect(dateGroup(new Date(2025, 5, 10).toISOString(), now)).toBe('Previous 7 days');
    expect(dateGroup(new Date(2025, 4, 20).toISOString(), now)).toBe('Previous 30 days');
    expect(dateGroup(new Date(2024, 0, 1).toISOString(), now)).toBe('Older');
    const groups = groupByDate(
      [
        conv(3, new Date(2025, 5, 15, 9).toISOString()),
        conv(2, new Date(2025, 5, 15, 8).toISOString()),
        conv(1, new Date(2024, 0, 1).toISOString()),
      ],
      now,
    );
    expect(groups.map((g) => [g.label, g.items.map((c) => c.id)])).toEqual([
      ['Today', [3, 2]],
      ['Older', [1]],
    ]);
  });
});
