import { describe, expect, it } from 'vitest';
import { emptySnapshot, owners, snapshot } from '../test/fixtures';
import {
  hitRateChart,
  hitRateText,
  hitsText,
  latencyRows,
  movementRows,
  ownerKindText,
  ownerRows,
  prefillCostText,
  recomputeRows,
  tierRows,
  timeSavedText,
} from './cache';

describe('cache panel text', () => {
  it('shows memory per tier against its budget, with units', () => {
    const rows = tierRows(snapshot());
    expect(rows.map((r) => [r.label, r.usage, r.detail])).toEqual([
      ['GPU memory', '12 MiB of 48 MiB', '12 blocks'],
      ['System memory (RAM)', '0 B of 1 GiB', 'Empty: blocks move here when GPU memory is full'],
      ['Disk', '30 MiB (no limit set)', '30 blocks'],
    ]);
    expect(rows[0].fraction).toBeCloseTo(0.25);
    expect(rows[2].fraction).toBe(0);
  });

  it('explains empty tiers, and a disk tier that is off', () => {
    const rows = tierRows(emptySnapshot(), false);
    expect(rows[0].detail).toMatch(/load a model and send a message/);
    expect(rows[2].detail).toMatch(/disk tier is off/);
    expect(rows.every((r) => r.fraction === 0)).toBe(true);
  });

  it('words the hit rate, before and after the first prompt', () => {
    expect(hitRateText(0.8)).toBe('80%');
    expect(hitRateText(0.625)).toBe('62.5%');
    expect(hitRateText(0.0123)).toBe('1.23%');
    expect(hitRateText(0)).toBe('0%');
    expect(hitRateText(null)).toBe('—');
    expect(hitsText(snapshot())).toBe('1,200 of 1,500 prompt tokens were found in the cache (GPU 1,000 · RAM 0 · disk 200)');
    expect(hitsText(emptySnapshot())).toMatch(/^No prompts yet/);
  });

  it('says how much time was saved and what it is estimated from', () => {
    expect(timeSavedText(snapshot())).toBe('About 600 ms of prompt processing saved');
    expect(timeSavedText(snapshot({ timeSavedMs: 12_500 }))).toBe('About 13 s of prompt processing saved');
    expect(timeSavedText(emptySnapshot())).toMatch(/^Not measured yet/);
    expect(prefillCostText(snapshot())).toBe('measured at 0.50 ms per computed prompt token');
    expect(prefillCostText(emptySnapshot())).toBeNull();
  });

  it('words block movements and verification failures without field names', () => {
    const rows = movementRows(snapshot());
    expect(rows.map((r) => `${r.label}: ${r.value}`)).toEqual([
      'Dropped: GPU 3 · RAM 0 · disk 0',
      'Moved down: 5 blocks to RAM · 7 blocks to disk',
      'Brought back: 1 block from RAM (1 KiB) · 4 blocks from disk (4 KiB)',
      'Rejected as damaged: None',
    ]);
    const bad = movementRows(snapshot({ verificationFailures: { checksum: 2, truncated: 1, fingerprint: 0, decode: 0 } }));
    expect(bad[3].value).toBe('3 blocks');
    expect(bad[3].hint).toMatch(/Checksum 2 · truncated 1/);
    for (const r of rows) expect(`${r.label} ${r.value} ${r.hint}`).not.toMatch(/\b[a-z]+[A-Z]\w*|_/);
  });

  it('counts recompute reasons, most frequent first, and hides the zeros', () => {
    expect(recomputeRows(snapshot())).toEqual([
      { label: 'First message of a conversation', count: 2, value: '2 times' },
      { label: 'Cache was dropped to make room', count: 1, value: '1 time' },
    ]);
    expect(recomputeRows(emptySnapshot())).toEqual([]);
  });

  it('shows TTFT and decode speed percentiles with units', () => {
    const [ttft, decode] = latencyRows(snapshot());
    expect(ttft.value).toBe('120 ms typical · 850 ms slowest (of 4 replies)');
    expect(decode.value).toBe('42.5 tok/s typical · 30.0 tok/s 99th percentile');
    expect(latencyRows(emptySnapshot()).map((r) => r.value)).toEqual(['No replies yet', 'No replies yet']);
  });

  it('sums memory by kind of owner', () => {
    expect(ownerKindText(snapshot())).toBe('Conversations 4 MiB · Documents 2 MiB · Shared prefixes 1 MiB');
    expect(ownerKindText(emptySnapshot())).toBe('Nothing held in memory yet.');
  });

  it('lists owners by the names the person knows, sortable', () => {
    expect(ownerRows(owners).map((r) => [r.name, r.kind, r.size, r.blocks])).toEqual([
      ['facts.txt', 'Document', '5 MiB', '5 blocks'],
      ['Trip to Lisbon', 'Conversation', '3 MiB', '3 blocks'],
    ]);
    expect(ownerRows(owners, 'name').map((r) => r.name)).toEqual(['facts.txt', 'Trip to Lisbon']);
    expect(ownerRows(owners, 'kind').map((r) => r.kind)).toEqual(['Conversation', 'Document']);
    expect(ownerRows(null)).toEqual([]);
  });
});

describe('hit rate chart', () => {
  it('spreads the requests across the width and maps 0–100% to the height', () => {
    const c = hitRateChart(snapshot().hitRateHistory, 100, 50, 5);
    expect(c.points).toBe('5,45 50,25 95,13');
    expect(c.area).toBe('M5,45 L5,45 L50,25 L95,13 L95,45 Z');
    expect(c.last).toEqual({ x: 95, y: 13 });
    expect(c.grid).toEqual([
      { y: 5, label: '100%' },
      { y: 25, label: '50%' },
      { y: 45, label: '0%' },
    ]);
    expect(c.caption).toBe('Over the last 3 messages');
  });

  it('centres a single point and clamps rates out of range', () => {
    const one = hitRateChart([{ unixMs: 1, hitRate: 1.5 }], 100, 50, 5);
    expect(one.points).toBe('50,5');
    expect(one.caption).toBe('Over the last 1 message');
  });

  it('is empty, with a reason, before any message', () => {
    const c = hitRateChart([], 100, 50);
    expect(c.points).toBe('');
    expect(c.last).toBeNull();
    expect(c.caption).toMatch(/No messages yet/);
  });
});

describe('budgets', () => {
  it('takes blank as the default and whole MiB within range', async () => {
    const { parseBudget } = await import('./cache');
    expect(parseBudget('The RAM budget', '')).toEqual({ value: null });
    expect(parseBudget('The RAM budget', ' 2048 ')).toEqual({ value: 2048 });
    expect(parseBudget('The RAM budget', '1.5')).toEqual({ error: 'The RAM budget must be a whole number of MiB, or blank for the default.' });
    expect(parseBudget('The GPU budget', '8')).toEqual({ error: 'The GPU budget must be between 16 and 1,048,576 MiB.' });
  });
});
