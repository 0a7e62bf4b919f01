// What the cache panel shows, computed from `cache_snapshot` and `cache_owners`: every label is
// words a person reads (no field names), every number has its unit, and each empty state says why.
// Pure functions, so Vitest pins the text and the chart's geometry.
import { formatBytes, formatCount, formatMs, formatRate } from './format';
import type { CacheOwners, CacheSnapshot, HitRatePoint, OwnerUsage, Percentiles } from './types';

export type TierKey = 'gpu' | 'ram' | 'disk';

export interface TierRow {
  key: TierKey;
  label: string;
  /** "12.5 MiB of 512 MiB" or "12.5 MiB (no limit)". */
  usage: string;
  /** 0–1 of the budget; 0 without a budget. */
  fraction: number;
  /** "96 blocks" or why the tier is empty. */
  detail: string;
}

const TIER_LABELS: Record<TierKey, string> = {
  gpu: 'GPU memory',
  ram: 'System memory (RAM)',
  disk: 'Disk',
};

const plural = (n: number, one: string, many: string) => `${formatCount(n)} ${n === 1 ? one : many}`;

/** Memory per tier against its budget. */
export function tierRows(s: CacheSnapshot, diskOn = true): TierRow[] {
  return (['gpu', 'ram', 'disk'] as TierKey[]).map((key) => {
    const t = s.tiers[key];
    const usage =
      t.budgetBytes > 0 ? `${formatBytes(t.bytes)} of ${formatBytes(t.budgetBytes)}` : `${formatBytes(t.bytes)} (no limit set)`;
    const fraction = t.budgetBytes > 0 ? Math.min(1, Math.max(0, t.bytes / t.budgetBytes)) : 0;
    let detail: string;
    if (t.blocks > 0) detail = plural(t.blocks, 'block', 'blocks');
    else if (key === 'disk' && !diskOn) detail = 'The disk tier is off, so caches do not survive a restart';
    else if (key === 'gpu') detail = 'Empty: load a model and send a message to fill it';
    else if (key === 'ram') detail = 'Empty: blocks move here when GPU memory is full';
    else detail = 'Empty: replies are written here so they survive a restart';
    return { key, label: TIER_LABELS[key], usage, fraction, detail };
  });
}

/** The cumulative token hit rate: "62.5%", or "—" before the first message. */
export function hitRateText(rate: number | null | undefined): string {
  if (rate == null || !Number.isFinite(rate)) return '—';
  const pct = Math.min(1, Math.max(0, rate)) * 100;
  return `${pct >= 10 || pct === 0 ? pct.toFixed(1).replace(/\.0$/, '') : pct.toFixed(2).replace(/0$/, '')}%`;
}

/** "1,200 of 1,500 prompt tokens were found in the cache (GPU 1,000 · RAM 0 · disk 200)". */
export function hitsText(s: CacheSnapshot): string {
  if (s.prefixCacheQueries === 0) return 'No prompts yet: send a message to see how much of it the cache holds.';
  const h = s.prefixCacheHits;
  const found = h.gpu + h.ram + h.disk;
  return `${formatCount(found)} of ${plural(s.prefixCacheQueries, 'prompt token', 'prompt tokens')} were found in the cache (GPU ${formatCount(h.gpu)} · RAM ${formatCount(h.ram)} · disk ${formatCount(h.disk)})`;
}

/** "About 1.2 s of prompt processing saved", or why it is not known yet. */
export function timeSavedText(s: CacheSnapshot): string {
  if (s.timeSavedMs == null) return 'Not measured yet: it needs one reply that computed part of its prompt.';
  return `About ${formatMs(s.timeSavedMs)} of prompt processing saved`;
}

/** "0.42 ms per prompt token" (the measured cost the saving is estimated from). */
export function prefillCostText(s: CacheSnapshot): string | null {
  if (s.prefillMsPerToken == null || !Number.isFinite(s.prefillMsPerToken)) return null;
  const ms = s.prefillMsPerToken;
  return `measured at ${ms >= 10 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(1) : ms.toFixed(2)} ms per computed prompt token`;
}

export interface CountRow {
  label: string;
  value: string;
  /** A sentence explaining the row. */
  hint: string;
}

/** Evictions, spills, restores and verification failures, worded. */
export function movementRows(s: CacheSnapshot): CountRow[] {
  const v = s.verificationFailures;
  const failures = v.checksum + v.truncated + v.fingerprint + v.decode;
  const blocks = (n: number) => plural(n, 'block', 'blocks');
  return [
    {
      label: 'Dropped',
      value: `GPU ${formatCount(s.evictions.gpu)} · RAM ${formatCount(s.evictions.ram)} · disk ${formatCount(s.evictions.disk)}`,
      hint: 'Blocks let go to make room (least recently used first).',
    },
    {
      label: 'Moved down',
      value: `${blocks(s.spills.ram)} to RAM · ${blocks(s.spills.disk)} to disk`,
      hint: 'Copies kept in a slower tier instead of being lost.',
    },
    {
      label: 'Brought back',
      value: `${blocks(s.restores.ram)} from RAM (${formatBytes(s.restoredBytes.ram)}) · ${blocks(s.restores.disk)} from disk (${formatBytes(s.restoredBytes.disk)})`,
      hint: 'Blocks restored instead of recomputed.',
    },
    {
      label: 'Rejected as damaged',
      value: failures === 0 ? 'None' : blocks(failures),
      hint:
        failures === 0
          ? 'Every block read back matched its checksum.'
          : `Checksum ${formatCount(v.checksum)} · truncated ${formatCount(v.truncated)} · other model ${formatCount(v.fingerprint)} · unreadable ${formatCount(v.decode)}; these were recomputed.`,
    },
  ];
}

const RECOMPUTE_LABELS: [keyof CacheSnapshot['recomputes'], string][] = [
  ['firstTurn', 'First message of a conversation'],
  ['evicted', 'Cache was dropped to make room'],
  ['contextFull', 'Conversation outgrew the context'],
  ['template', 'Chat template changed the earlier text'],
  ['modelChanged', 'Model was reloaded or changed'],
  ['noCache', 'Nothing cached for it'],
  ['other', 'Other reasons'],
];

/** Recompute reasons with their counts, most frequent first; empty when there were none. */
export function recomputeRows(s: CacheSnapshot): { label: string; count: number; value: string }[] {
  return RECOMPUTE_LABELS.map(([key, label]) => ({ label, count: s.recomputes[key], value: plural(s.recomputes[key], 'time', 'times') }))
    .filter((r) => r.count > 0)
    .sort((a, b) => b.count - a.count);
}

function pair(p: Percentiles, f: (x: number | null) => string): string {
  if (!p.samples) return 'No replies yet';
  return `${f(p.p50)} typical · ${f(p.p99)} slowest (of ${plural(p.samples, 'reply', 'replies')})`;
}

/** TTFT and decode speed, P50 and P99, worded. */
export function latencyRows(s: CacheSnapshot): CountRow[] {
  return [
    {
      label: 'Time to first token',
      value: pair(s.ttftMs, formatMs),
      hint: 'How long until a reply starts (median, and the 99th percentile).',
    },
    {
      label: 'Writing speed',
      // For speed the slow tail is the low end: show P50, and label P99 plainly.
      value: s.decodeTokS.samples ? `${formatRate(s.decodeTokS.p50)} typical · ${formatRate(s.decodeTokS.p99)} 99th percentile` : 'No replies yet',
      hint: 'Tokens written per second once a reply has started.',
    },
  ];
}

/** Bytes in GPU and RAM by kind of owner ("Conversations 4 MiB · Documents 2 MiB · Shared 1 MiB"). */
export function ownerKindText(s: CacheSnapshot): string {
  const o = s.ownerBytes;
  const total = o.conversation + o.document + o.shared + o.request;
  if (total === 0) return 'Nothing held in memory yet.';
  const parts = [`Conversations ${formatBytes(o.conversation)}`, `Documents ${formatBytes(o.document)}`, `Shared prefixes ${formatBytes(o.shared)}`];
  if (o.request > 0) parts.push(`Other requests ${formatBytes(o.request)}`);
  return parts.join(' · ');
}

export type OwnerSort = 'size' | 'name' | 'kind';

export interface OwnerRow {
  key: string;
  kind: string;
  name: string;
  size: string;
  bytes: number;
  blocks: string;
  /** The owner as `cache_owners` listed it (for the row's pin and clear controls). */
  usage: OwnerUsage;
}

const KIND_LABELS: Record<string, string> = { conversation: 'Conversation', document: 'Document', other: 'Other' };

/** The disk tier's owners as rows, sorted. */
export function ownerRows(owners: CacheOwners | null, sort: OwnerSort = 'size'): OwnerRow[] {
  const list: OwnerUsage[] = [...(owners?.owners ?? [])];
  const by: Record<OwnerSort, (a: OwnerUsage, b: OwnerUsage) => number> = {
    size: (a, b) => b.bytes - a.bytes || a.name.localeCompare(b.name),
    name: (a, b) => a.name.localeCompare(b.name) || b.bytes - a.bytes,
    kind: (a, b) => a.kind.localeCompare(b.kind) || b.bytes - a.bytes,
  };
  list.sort(by[sort]);
  return list.map((o, i) => ({
    key: `${o.kind}:${o.id ?? i}`,
    kind: KIND_LABELS[o.kind] ?? 'Other',
    name: o.name,
    size: formatBytes(o.bytes),
    bytes: o.bytes,
    blocks: plural(o.blocks, 'block', 'blocks'),
    usage: o,
  }));
}

export interface ChartData {
  /** SVG polyline points, "x,y x,y …" in a width × height box (y down). */
  points: string;
  /** The closed area under the line (an SVG path), for a soft fill. */
  area: string;
  /** The last point, for a marker; null when empty. */
  last: { x: number; y: number } | null;
  /** Horizontal grid lines at 0, 50 and 100%. */
  grid: { y: number; label: string }[];
  /** "Last 12 messages" / why it is empty. */
  caption: string;
}

/**
 * The hit-rate history as a line chart in a `width` × `height` box (padding inside): x spreads the
 * requests evenly (they are the last N requests, not a time axis), y is 0–100%.
 */
export function hitRateChart(history: readonly HitRatePoint[], width: number, height: number, pad = 4): ChartData {
  const y = (rate: number) => pad + (1 - Math.min(1, Math.max(0, rate))) * (height - 2 * pad);
  const grid = [1, 0.5, 0].map((r) => ({ y: round(y(r)), label: `${r * 100}%` }));
  if (!history.length) {
    return { points: '', area: '', last: null, grid, caption: 'No messages yet: the chart fills in as you chat.' };
  }
  const n = history.length;
  const x = (i: number) => (n === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (n - 1));
  const pts = history.map((p, i) => ({ x: round(x(i)), y: round(y(p.hitRate)) }));
  const points = pts.map((p) => `${p.x},${p.y}`).join(' ');
  const base = round(y(0));
  const area = `M${pts[0].x},${base} ${pts.map((p) => `L${p.x},${p.y}`).join(' ')} L${pts[n - 1].x},${base} Z`;
  return {
    points,
    area,
    last: pts[n - 1],
    grid,
    caption: `Over the last ${plural(n, 'message', 'messages')}`,
  };
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

/** KV budgets the person may set, in MiB (src/store/settings.rs: KV_BUDGET_MIB_RANGE). */
export const BUDGET_MIB_RANGE = [16, 1 << 20] as const;

/**
 * A budget entry: blank means "the default" (null); otherwise whole MiB within the range.
 * Returns the value or an error a person can act on.
 */
export function parseBudget(label: string, raw: string | number | null | undefined): { value: number | null } | { error: string } {
  const text = raw == null ? '' : String(raw).trim();
  if (text === '') return { value: null };
  const n = Number(text);
  const [min, max] = BUDGET_MIB_RANGE;
  if (!Number.isInteger(n)) return { error: `${label} must be a whole number of MiB, or blank for the default.` };
  if (n < min || n > max) return { error: `${label} must be between ${formatCount(min)} and ${formatCount(max)} MiB.` };
  return { value: n };
}
