import { describe, expect, it } from 'vitest';
import { deviceTypeLabel, isSoftwareAdapter, planView } from './plan';
import type { MemoryPlan } from './types';

const GiB = 1024 ** 3;
const plan: MemoryPlan = {
  weightsBytes: 4 * GiB,
  kvBytes: 1 * GiB,
  scratchBytes: 1 * GiB,
  totalBytes: 6 * GiB,
  adapterLimitBytes: 8 * GiB,
  fits: true,
  suggestion: null,
  contextLength: 8192,
};

describe('planView', () => {
  it('scales the bar to the adapter limit when it is larger', () => {
    const v = planView(plan);
    expect(v.segments.map((s) => s.fraction)).toEqual([0.5, 0.125, 0.125]);
    expect(v.limitAt).toBe(1);
    expect(v.summary).toBe('6 GiB needed of 8 GiB available');
    expect(v.segments[1].label).toBe('KV cache (8,192 tokens)');
    expect(planView({ ...plan, kvType: 'f16' }).segments[1].label).toBe('KV cache (8,192 tokens, f16)');
    expect(planView({ ...plan, kvType: 'f16', kvTokens: 40_960 }).segments[1].label).toBe('KV cache (40,960 tokens, f16)');
  });
  it('scales to the total when the plan does not fit', () => {
    const v = planView({ ...plan, adapterLimitBytes: 3 * GiB, fits: false });
    expect(v.segments[0].fraction).toBeCloseTo(4 / 6);
    expect(v.limitAt).toBeCloseTo(0.5);
  });
  it('copes with an unknown limit', () => {
    const v = planView({ ...plan, adapterLimitBytes: null });
    expect(v.limitAt).toBeNull();
    expect(v.summary).toMatch(/did not report its memory/);
  });
});

describe('adapter labels', () => {
  it('names wgpu device types for people', () => {
    expect(deviceTypeLabel('DiscreteGpu')).toBe('discrete GPU');
    expect(deviceTypeLabel('integrated_gpu')).toBe('integrated GPU');
    expect(deviceTypeLabel('Cpu')).toBe('software renderer (CPU)');
    expect(deviceTypeLabel('Quantum')).toBe('Quantum');
    expect(isSoftwareAdapter({ name: 'llvmpipe', backend: 'Vulkan', deviceType: 'Cpu', f16: true, subgroups: true })).toBe(true);
  });
});
