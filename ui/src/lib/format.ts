// Number, size, time and stats-line formatting. Deterministic (en-US digits) so tests can pin it.
import type { ReplyStats, StopReason } from './types';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Binary sizes: 512 B, 1.5 KiB, 3.82 GiB, 120 GiB. Missing or invalid → "—". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes == null || !Number.isFinite(bytes) || bytes < 0) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${trimZeros(value.toFixed(digits))} ${UNITS[unit]}`;
}

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** 1234567 → "1,234,567". */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '—';
  return Math.round(n).toLocaleString('en-US');
}

/** 850 → "850 ms", 1234 → "1.23 s", 65000 → "65 s". */
export function formatMs(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  return `${trimZeros(s.toFixed(s >= 10 ? 0 : 2))} s`;
}

/** Tokens per second with one decimal below 100. */
export function formatRate(tokS: number | null | undefined): string {
  if (tokS == null || !Number.isFinite(tokS) || tokS < 0) return '—';
  return `${tokS >= 100 ? Math.round(tokS) : tokS.toFixed(1)} tok/s`;
}

/** 0.4567 → "45.7%"; denominators of 0 give "—". */
export function formatPercent(part: number, whole: number): string {
  if (!Number.isFinite(part) || !Number.isFinite(whole) || whole <= 0) return '—';
  const pct = (part / whole) * 100;
  return `${trimZeros(pct.toFixed(pct >= 10 || pct === 0 ? 1 : 2))}%`;
}

/** Clamps a progress fraction into [0, 1]; anything invalid is 0. */
export function clampFraction(x: number | null | undefined): number {
  if (x == null || !Number.isFinite(x)) return 0;
  return Math.min(1, Math.max(0, x));
}

const STOP_NOTES: Partial<Record<StopReason, string>> = {
  length: 'stopped at the token limit',
  stop: 'stopped at a stop string',
  cancelled: 'stopped by you',
  error: 'stopped by an error',
};

export interface StatsLine {
  /** "N prompt tokens · M reused · K computed · TTFT x ms · y tok/s" */
  line: string;
  /** Why the cache could not be reused, when it could not. */
  recomputeReason: string | null;
  /** How the reply ended, when it was not a natural end. */
  stopNote: string | null;
}

/** Reasons the core reports that are not a loss: a first turn has nothing to reuse yet. */
const NOT_A_RECOMPUTE = new Set(['first turn']);

export function formatStatsLine(stats: ReplyStats): StatsLine {
  const tokens = (n: number, word: string) => `${formatCount(n)} ${word}`;
  const parts = [
    tokens(stats.promptTokens, stats.promptTokens === 1 ? 'prompt token' : 'prompt tokens'),
    tokens(stats.reusedTokens, 'reused'),
    tokens(stats.computedTokens, 'computed'),
    `TTFT ${formatMs(stats.ttftMs)}`,
    formatRate(stats.decodeTokS),
  ];
  const reason = stats.recomputeReason?.trim();
  return {
    line: parts.join(' · '),
    recomputeReason: reason && !NOT_A_RECOMPUTE.has(reason) ? reason : null,
    stopNote: STOP_NOTES[stats.stopReason] ?? null,
  };
}

/** "14:05" today, "Yesterday", a weekday within the week, else "Mar 3" / "Mar 3, 2023". */
export function formatWhen(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const day = (x: Date) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const days = Math.round((day(now) - day(d)) / 86_400_000);
  if (days <= 0) {
    return d.toLocaleTimeString('en-US', { hour: '2-digit', minute: '2-digit', hour12: false });
  }
  if (days === 1) return 'Yesterday';
  if (days < 7) return d.toLocaleDateString('en-US', { weekday: 'long' });
  const sameYear = d.getFullYear() === now.getFullYear();
  return d.toLocaleDateString('en-US', sameYear ? { month: 'short', day: 'numeric' } : { month: 'short', day: 'numeric', year: 'numeric' });
}

/** The file name of a path on any platform. */
export function fileName(path: string): string {
  const parts = path.split(/[\\/]/).filter(Boolean);
  return parts.length ? parts[parts.length - 1] : path;
}
