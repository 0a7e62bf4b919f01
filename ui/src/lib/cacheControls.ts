// The cache panel's controls, as text and decisions the panel renders: what clearing a tier
// or an owner will do (the confirm step's words), the per-row pin and clear controls, and the
// KV type. Pure functions, so Vitest pins the words.
import type { CacheTierName, KvType, OwnerUsage } from './types';
import type { PinnableKind } from './api';

/** The per-tier clear buttons, in order, with what each empties. */
export const TIER_CLEARS: { tier: CacheTierName; label: string }[] = [
  { tier: 'gpu', label: 'GPU' },
  { tier: 'ram', label: 'RAM' },
  { tier: 'disk', label: 'Disk' },
  { tier: 'all', label: 'Everything' },
];

/** The confirm step's question for clearing `tier`. */
export function clearTierQuestion(tier: CacheTierName): string {
  const after = 'Conversations and documents stay; what is gone is recomputed when next needed.';
  switch (tier) {
    case 'gpu':
      return `Empty GPU memory (pins are let go until each pinned conversation's next reply)? Copies in RAM and on disk stay. ${after}`;
    case 'ram':
      return `Empty the RAM tier? GPU memory and disk stay. ${after}`;
    case 'disk':
      return `Delete every block on disk, for every model? GPU memory and RAM stay. ${after}`;
    case 'all':
      return `Empty every tier? ${after}`;
  }
}

/** The confirm step's question for clearing one owner's cache. */
export function clearOwnerQuestion(kind: PinnableKind, name: string): string {
  const what = kind === 'conversation' ? `the conversation “${name}”` : `the document “${name}”`;
  return `Clear the cache of ${what} on every tier? It is not deleted: its next reply recomputes. Blocks it shares with others (a common system prompt, say) stay for them.`;
}

/** The tooltip of a row's Clear button. */
export const CLEAR_OWNER_HINT =
  'Frees this one’s cached blocks on the GPU, in RAM and on disk. Shared prefix blocks that other conversations still use stay.';

/** The tooltip of a row's Pin button. */
export const PIN_HINT =
  'Pinned: its blocks on the GPU are never evicted to make room for others. Pins together may take at most half of the GPU cache. Remembered after a restart; applied again when it next runs.';

export interface OwnerControl {
  /** "conversation-12": the data-testid suffix. */
  testKey: string;
  kind: PinnableKind;
  id: number;
  pinned: boolean;
  pinLabel: string;
}

/** The row's controls, or null for owners that cannot be cleared or pinned (other requests). */
export function ownerControl(o: OwnerUsage): OwnerControl | null {
  if ((o.kind !== 'conversation' && o.kind !== 'document') || o.id == null) return null;
  const pinned = o.pinned === true;
  return { testKey: `${o.kind}-${o.id}`, kind: o.kind, id: o.id, pinned, pinLabel: pinned ? 'Unpin' : 'Pin' };
}

export const KV_TYPES: { value: KvType; label: string }[] = [
  { value: 'f16', label: '16-bit (f16, default: half the memory per token)' },
  { value: 'f32', label: '32-bit (f32: exact, twice the memory per token)' },
];

/** What the panel says about the KV type: the one in use, and whether a change is waiting. */
export function kvTypeText(inUse: KvType | null | undefined, chosen: KvType): string {
  if (!inUse) return `No model is loaded; the next one loads with ${chosen}.`;
  if (inUse === chosen) return `In use: ${inUse}.`;
  return `In use: ${inUse}; ${chosen} applies when the model is next loaded.`;
}

/** The hint under the KV type choice. */
export const KV_TYPE_HINT =
  'Applies at the next model load. Blocks on disk are kept per type: after a change, blocks of the other type are not found (they are recomputed) until you change back.';

/** The status line after saving budgets and the KV type. */
export function budgetsSavedText(modelLoaded: boolean): string {
  return modelLoaded
    ? 'Saved. The disk budget applies now; the GPU and RAM budgets and the KV type when the model is next loaded.'
    : 'Saved. The disk budget applies now.';
}
