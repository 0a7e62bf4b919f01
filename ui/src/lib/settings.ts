// Settings form model: field ranges, parsing of what the user typed, and validation.
import type { Settings, Theme } from './types';

export type NumericKey =
  | 'contextLength'
  | 'temperature'
  | 'topP'
  | 'topK'
  | 'minP'
  | 'repeatPenalty'
  | 'seed'
  | 'maxTokens';

export interface NumericField {
  key: NumericKey;
  label: string;
  min: number;
  max: number;
  step: number;
  integer: boolean;
  help: string;
}

export const MAX_SEED = 4_294_967_295;
export const MAX_SYSTEM_PROMPT_CHARS = 32_000;

/** Sampler and context fields, in the order the form shows them. */
export const NUMERIC_FIELDS: readonly NumericField[] = [
  { key: 'contextLength', label: 'Context length', min: 256, max: 131_072, step: 256, integer: true, help: 'Tokens the model can see at once. Larger contexts need more GPU memory for the KV cache.' },
  { key: 'maxTokens', label: 'Max reply tokens', min: 1, max: 32_768, step: 1, integer: true, help: 'The longest reply, in tokens.' },
  { key: 'temperature', label: 'Temperature', min: 0, max: 2, step: 0.05, integer: false, help: '0 always picks the most likely token; higher values are more varied.' },
  { key: 'topP', label: 'Top-p', min: 0.01, max: 1, step: 0.01, integer: false, help: 'Keep the most likely tokens up to this total probability. 1 turns it off.' },
  { key: 'topK', label: 'Top-k', min: 0, max: 1000, step: 1, integer: true, help: 'Keep only the k most likely tokens. 0 turns it off.' },
  { key: 'minP', label: 'Min-p', min: 0, max: 1, step: 0.01, integer: false, help: 'Drop tokens less likely than this fraction of the top token. 0 turns it off.' },
  { key: 'repeatPenalty', label: 'Repetition penalty', min: 0.5, max: 2, step: 0.01, integer: false, help: 'Discourages repeating recent tokens. 1 turns it off.' },
  { key: 'seed', label: 'Seed', min: 0, max: MAX_SEED, step: 1, integer: true, help: 'Fixes the random draws so a reply can be reproduced. 0 picks a new seed each time.' },
];

export const THEMES: readonly { value: Theme; label: string }[] = [
  { value: 'system', label: 'Follow system' },
  { value: 'light', label: 'Light' },
  { value: 'dark', label: 'Dark' },
];

/**
 * What the form edits. Number inputs give numbers, or null/'' when the entry is empty or not a
 * number, so every numeric field is checked again before saving.
 */
export type DraftNumber = number | string | null | undefined;
export type SettingsDraft = Record<NumericKey, DraftNumber> & {
  systemPrompt: string;
  theme: Theme;
  lastModelPath?: string | null;
};

export type SettingsErrors = Partial<Record<NumericKey | 'systemPrompt' | 'theme', string>>;

export function toDraft(s: Settings): SettingsDraft {
  const draft = { systemPrompt: s.systemPrompt, theme: s.theme, lastModelPath: s.lastModelPath ?? null } as SettingsDraft;
  for (const f of NUMERIC_FIELDS) draft[f.key] = s[f.key];
  return draft;
}

/** True when two drafts would save the same values (5 and "5" are equal). */
export function draftsEqual(a: SettingsDraft, b: SettingsDraft): boolean {
  const norm = (v: DraftNumber) => (v == null ? '' : String(v).trim());
  return (
    NUMERIC_FIELDS.every((f) => norm(a[f.key]) === norm(b[f.key])) &&
    a.systemPrompt === b.systemPrompt &&
    a.theme === b.theme
  );
}

const fmtBound = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2 });

/** Validates one numeric entry; returns the number or an error a person can act on. */
export function parseNumericField(f: NumericField, raw: DraftNumber): { value: number } | { error: string } {
  const text = raw == null ? '' : String(raw).trim();
  if (text === '') return { error: `${f.label} is required (${fmtBound(f.min)} to ${fmtBound(f.max)}).` };
  const n = Number(text);
  if (!Number.isFinite(n)) return { error: `${f.label} must be a number.` };
  if (f.integer && !Number.isInteger(n)) return { error: `${f.label} must be a whole number.` };
  if (n < f.min || n > f.max) return { error: `${f.label} must be between ${fmtBound(f.min)} and ${fmtBound(f.max)}.` };
  return { value: n };
}

export type ValidationResult = { ok: true; settings: Settings } | { ok: false; errors: SettingsErrors };

export function validateSettings(draft: SettingsDraft): ValidationResult {
  const errors: SettingsErrors = {};
  const out: Partial<Settings> = {};
  for (const f of NUMERIC_FIELDS) {
    const r = parseNumericField(f, draft[f.key]);
    if ('error' in r) errors[f.key] = r.error;
    else out[f.key] = r.value;
  }
  if (!errors.maxTokens && !errors.contextLength && out.maxTokens! >= out.contextLength!) {
    errors.maxTokens = 'Max reply tokens must be smaller than the context length.';
  }
  if (draft.systemPrompt.length > MAX_SYSTEM_PROMPT_CHARS) {
    errors.systemPrompt = `The system prompt is limited to ${MAX_SYSTEM_PROMPT_CHARS.toLocaleString('en-US')} characters.`;
  }
  if (!THEMES.some((t) => t.value === draft.theme)) errors.theme = 'Choose a theme.';
  if (Object.keys(errors).length) return { ok: false, errors };
  return {
    ok: true,
    settings: {
      ...(out as Settings),
      systemPrompt: draft.systemPrompt,
      theme: draft.theme,
      lastModelPath: draft.lastModelPath ?? null,
    },
  };
}

/** Context lengths offered by the model panel, capped by what the model was trained for. */
export function contextChoices(modelMax: number | null | undefined, current?: number): number[] {
  const base = [2048, 4096, 8192, 16_384, 32_768, 65_536, 131_072];
  const cap = modelMax && modelMax > 0 ? modelMax : 131_072;
  const list = base.filter((n) => n <= cap);
  if (cap < 131_072 && !list.includes(cap)) list.push(cap);
  if (current && current <= cap && !list.includes(current)) list.push(current);
  if (!list.length) list.push(cap);
  return list.sort((a, b) => a - b);
}
