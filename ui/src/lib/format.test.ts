import { describe, expect, it } from 'vitest';
import { clampFraction, fileName, formatBytes, formatCount, formatMs, formatPercent, formatRate, formatStatsLine, formatWhen } from './format';
import type { ReplyStats } from './types';

describe('formatBytes', () => {
  it('uses binary units with sensible precision', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(1024 * 1024)).toBe('1 MiB');
    expect(formatBytes(4.07 * 1024 ** 3)).toBe('4.07 GiB');
    expect(formatBytes(12 * 1024 ** 3)).toBe('12 GiB');
    expect(formatBytes(80.25 * 1024 ** 3)).toBe('80.3 GiB');
    expect(formatBytes(120 * 1024 ** 3)).toBe('120 GiB');
  });
  it('shows a dash for missing or invalid sizes', () => {
    expect(formatBytes(null)).toBe('—');
    expect(formatBytes(undefined)).toBe('—');
    expect(formatBytes(-1)).toBe('—');
    expect(formatBytes(Number.NaN)).toBe('—');
  });
});

describe('small formatters', () => {
  it('formats counts, times, rates and percentages', () => {
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatMs(850.4)).toBe('850 ms');
    expect(formatMs(1234)).toBe('1.23 s');
    expect(formatMs(65_000)).toBe('65 s');
    expect(formatRate(42.345)).toBe('42.3 tok/s');
    expect(formatRate(123.6)).toBe('124 tok/s');
    expect(formatPercent(1, 4)).toBe('25%');
    expect(formatPercent(0, 4)).toBe('0%');
    expect(formatPercent(1, 0)).toBe('—');
    expect(formatPercent(3, 7)).toBe('42.9%');
  });
  it('clamps progress fractions', () => {
    expect(clampFraction(-0.5)).toBe(0);
    expect(clampFraction(1.7)).toBe(1);
    expect(clampFraction(Number.NaN)).toBe(0);
    expect(clampFraction(0.25)).toBe(0.25);
  });
  it('takes file names from Unix and Windows paths', () => {
    expect(fileName('/home/a/models/llama.Q4_K_M.gguf')).toBe('llama.Q4_K_M.gguf');
    expect(fileName('C:\\Models\\qwen.gguf')).toBe('qwen.gguf');
  });
});

describe('formatStatsLine', () => {
  const stats: ReplyStats = {
    promptTokens: 1532,
    reusedTokens: 1490,
    computedTokens: 42,
    generatedTokens: 120,
    ttftMs: 183.2,
    decodeTokS: 38.46,
    stopReason: 'eog',
    recomputeReason: null,
  };
  it('writes the quiet line under a reply', () => {
    const l = formatStatsLine(stats);
    expect(l.line).toBe('1,532 prompt tokens · 1,490 reused · 42 computed · TTFT 183 ms · 38.5 tok/s');
    expect(l.recomputeReason).toBeNull();
    expect(l.stopNote).toBeNull();
  });
  it('carries the recompute reason and how the reply ended', () => {
    const l = formatStatsLine({ ...stats, reusedTokens: 0, computedTokens: 1532, recomputeReason: 'the model changed', stopReason: 'length' });
    expect(l.line).toContain('0 reused · 1,532 computed');
    expect(l.recomputeReason).toBe('the model changed');
    expect(l.stopNote).toBe('stopped at the token limit');
    expect(formatStatsLine({ ...stats, stopReason: 'cancelled' }).stopNote).toBe('stopped by you');
  });
  it('treats a blank reason as none and singular tokens', () => {
    expect(formatStatsLine({ ...stats, reusedTokens: 0, recomputeReason: 'first turn' }).recomputeReason).toBeNull();
    const l = formatStatsLine({ ...stats, promptTokens: 1, recomputeReason: '  ' });
    expect(l.line.startsWith('1 prompt token ·')).toBe(true);
    expect(l.recomputeReason).toBeNull();
  });
});

describe('formatWhen', () => {
  const now = new Date(2025, 5, 15, 18, 0);
  it('uses time today, Yesterday, weekday, then dates', () => {
    expect(formatWhen(new Date(2025, 5, 15, 9, 5).toISOString(), now)).toBe('09:05');
    expect(formatWhen(new Date(2025, 5, 14, 23, 0).toISOString(), now)).toBe('Yesterday');
    expect(formatWhen(new Date(2025, 5, 11, 12, 0).toISOString(), now)).toBe('Wednesday');
    expect(formatWhen(new Date(2025, 2, 3, 12, 0).toISOString(), now)).toBe('Mar 3');
    expect(formatWhen(new Date(2023, 2, 3, 12, 0).toISOString(), now)).toBe('Mar 3, 2023');
    expect(formatWhen('not a date', now)).toBe('');
  });
});
