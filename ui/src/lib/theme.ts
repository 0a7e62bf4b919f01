// Light/dark theme: the setting wins unless it is "system", which follows prefers-color-scheme.
import type { Theme } from './types';

export type ResolvedTheme = 'light' | 'dark';

export function resolveTheme(setting: Theme | string | null | undefined, systemPrefersDark: boolean): ResolvedTheme {
  if (setting === 'light' || setting === 'dark') return setting;
  return systemPrefersDark ? 'dark' : 'light';
}

const QUERY = '(prefers-color-scheme: dark)';

export function systemPrefersDark(): boolean {
  return typeof window !== 'undefined' && typeof window.matchMedia === 'function' && window.matchMedia(QUERY).matches;
}

/** Calls `onChange` whenever the system theme flips; returns the unsubscribe function. */
export function watchSystemTheme(onChange: (dark: boolean) => void): () => void {
  if (typeof window === 'undefined' || typeof window.matchMedia !== 'function') return () => {};
  const mq = window.matchMedia(QUERY);
  const listener = (e: MediaQueryListEvent) => onChange(e.matches);
  mq.addEventListener('change', listener);
  return () => mq.removeEventListener('change', listener);
}

/** Sets `data-theme` and `color-scheme` on the root element (CSS variables key off it). */
export function applyTheme(root: HTMLElement, theme: ResolvedTheme): void {
  root.dataset.theme = theme;
  root.style.colorScheme = theme;
}

const STORAGE_KEY = 'hearth.theme';

/** The last theme setting, remembered locally so the first paint already uses it. */
export function rememberedTheme(): Theme {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    return v === 'light' || v === 'dark' ? v : 'system';
  } catch {
    return 'system';
  }
}

export function rememberTheme(setting: Theme): void {
  try {
    localStorage.setItem(STORAGE_KEY, setting);
  } catch {
    // Storage can be unavailable; the theme then follows the system until settings load.
  }
}
