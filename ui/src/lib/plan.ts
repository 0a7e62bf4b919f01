// Presentation of the memory planner's estimate and of the GPU adapter.
import { formatBytes } from './format';
import type { AdapterInfo, MemoryPlan } from './types';

export interface PlanSegment {
  key: 'weights' | 'kv' | 'scratch';
  label: string;
  bytes: number;
  /** Share of the bar, 0–1: the bar spans max(limit, total). */
  fraction: number;
}

export interface PlanView {
  segments: PlanSegment[];
  /** Where the adapter's limit sits on the bar (0–1), or null when the limit is unknown. */
  limitAt: number | null;
  summary: string;
}

export function planView(plan: MemoryPlan): PlanView {
  const limit = plan.adapterLimitBytes && plan.adapterLimitBytes > 0 ? plan.adapterLimitBytes : null;
  const span = Math.max(plan.totalBytes, limit ?? 0, 1);
  const seg = (key: PlanSegment['key'], label: string, bytes: number): PlanSegment => ({
    key,
    label,
    bytes,
    fraction: Math.max(0, bytes) / span,
  });
  const summary = limit
    ? `${formatBytes(plan.totalBytes)} needed of ${formatBytes(limit)} available`
    : `${formatBytes(plan.totalBytes)} needed; the adapter did not report its memory`;
  return {
    segments: [
      seg('weights', 'Weights', plan.weightsBytes),
      seg('kv', `KV cache (${(plan.kvTokens ?? plan.contextLength).toLocaleString('en-US')} tokens${plan.kvType ? `, ${plan.kvType}` : ''})`, plan.kvBytes),
      seg('scratch', 'Scratch', plan.scratchBytes),
    ],
    limitAt: limit ? limit / span : null,
    summary,
  };
}

export function deviceTypeLabel(t: string): string {
  const key = t.replace(/[\s_-]/g, '').toLowerCase();
  const labels: Record<string, string> = {
    discretegpu: 'discrete GPU',
    integratedgpu: 'integrated GPU',
    virtualgpu: 'virtual GPU',
    cpu: 'software renderer (CPU)',
    other: 'other device',
  };
  return labels[key] ?? t;
}

/** True when the adapter is a CPU software renderer: it works, but slowly. */
export function isSoftwareAdapter(a: AdapterInfo): boolean {
  return a.deviceType.replace(/[\s_-]/g, '').toLowerCase() === 'cpu';
}
