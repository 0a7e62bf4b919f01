import { describe, expect, it } from 'vitest';
import { contextChoices, draftsEqual, NUMERIC_FIELDS, parseNumericField, toDraft, validateSettings } from './settings';
import type { Settings } from './types';

const good: Settings = {
  contextLength: 4096,
  temperature: 0.7,
  topP: 0.95,
  topK: 40,
  minP: 0.05,
  repeatPenalty: 1.1,
  seed: 0,
  systemPrompt: 'Be brief.',
  theme: 'system',
  maxTokens: 1024,
  lastModelPath: '/models/a.gguf',
};
const field = (k: string) => NUMERIC_FIELDS.find((f) => f.key === k)!;

describe('validateSettings', () => {
  it('accepts the defaults and round-trips them', () => {
    const r = validateSettings(toDraft(good));
    expect(r).toEqual({ ok: true, settings: good });
  });

  it('accepts strings typed into the form', () => {
    const r = validateSettings({ ...toDraft(good), temperature: ' 1.25 ', topK: '0' });
    expect(r.ok && r.settings.temperature).toBe(1.25);
    expect(r.ok && r.settings.topK).toBe(0);
  });

  it('names every bad field with its range', () => {
    const r = validateSettings({
      ...toDraft(good),
      temperature: 3,
      topP: 0,
      topK: 2.5,
      contextLength: '',
      seed: -1,
      repeatPenalty: 'abc',
      theme: 'neon' as never,
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.temperature).toBe('Temperature must be between 0 and 2.');
    expect(r.errors.topP).toMatch(/Top-p must be between 0.01 and 1/);
    expect(r.errors.topK).toBe('Top-k must be a whole number.');
    expect(r.errors.contextLength).toMatch(/Context length is required/);
    expect(r.errors.seed).toMatch(/Seed must be between 0 and 4,294,967,295/);
    expect(r.errors.repeatPenalty).toBe('Repetition penalty must be a number.');
    expect(r.errors.theme).toBeDefined();
    expect(r.errors.minP).toBeUndefined();
  });

  it('requires max reply tokens below the context length', () => {
    const r = validateSettings({ ...toDraft(good), contextLength: 2048, maxTokens: 2048 });
    expect(!r.ok && r.errors.maxTokens).toMatch(/smaller than the context length/);
  });

  it('limits the system prompt', () => {
    const r = validateSettings({ ...toDraft(good), systemPrompt: 'x'.repeat(32_001) });
    expect(!r.ok && r.errors.systemPrompt).toMatch(/32,000/);
  });

  it('rejects null (an empty number input) and infinities', () => {
    expect(parseNumericField(field('temperature'), null)).toEqual({ error: 'Temperature is required (0 to 2).' });
    expect(parseNumericField(field('temperature'), 'Infinity')).toEqual({ error: 'Temperature must be a number.' });
    expect(parseNumericField(field('temperature'), 0)).toEqual({ value: 0 });
  });
});

describe('draftsEqual', () => {
  it('treats 5 and "5" as the same value and notices real changes', () => {
    const a = toDraft(good);
    expect(draftsEqual(a, { ...a, topK: '40' })).toBe(true);
    expect(draftsEqual(a, { ...a, topK: '41' })).toBe(false);
    expect(draftsEqual(a, { ...a, theme: 'dark' })).toBe(false);
  });
});

describe('contextChoices', () => {
  it('caps at the model maximum and keeps the current value', () => {
    expect(contextChoices(8192)).toEqual([2048, 4096, 8192]);
    expect(contextChoices(6000, 3000)).toEqual([2048, 3000, 4096, 6000]);
    expect(contextChoices(512)).toEqual([512]);
    expect(contextChoices(null).at(-1)).toBe(131_072);
  });
});
