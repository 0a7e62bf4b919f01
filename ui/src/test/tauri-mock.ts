// Test double for `@tauri-apps/api/core` (used by vi.mock in the tests only): records invoke
// calls and lets a test answer them and push channel messages, as the Rust shell would.
import { vi } from 'vitest';

export class FakeChannel<T = unknown> {
  onmessage: (message: T) => void = () => {};
}

export type Handler = (args: Record<string, unknown> | undefined) => unknown;

export const handlers = new Map<string, Handler>();
export const calls: { cmd: string; args: Record<string, unknown> | undefined }[] = [];

export const invoke = vi.fn(async (cmd: string, args?: Record<string, unknown>) => {
  calls.push({ cmd, args });
  const h = handlers.get(cmd);
  if (!h) throw `no handler for ${cmd}`;
  return await h(args);
});

export function resetTauri(): void {
  handlers.clear();
  calls.length = 0;
  invoke.mockClear();
  (window as unknown as Record<string, unknown>).__TAURI_INTERNALS__ = {};
}

export function leaveTauri(): void {
  delete (window as unknown as Record<string, unknown>).__TAURI_INTERNALS__;
}
