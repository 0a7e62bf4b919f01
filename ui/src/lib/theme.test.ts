import { describe, expect, it } from 'vitest';
import { applyTheme, resolveTheme } from './theme';

describe('resolveTheme', () => {
  it('follows the system unless the setting forces a theme', () => {
    expect(resolveTheme('system', true)).toBe('dark');
    expect(resolveTheme('system', false)).toBe('light');
    expect(resolveTheme('light', true)).toBe('light');
    expect(resolveTheme('dark', false)).toBe('dark');
  });
  it('treats missing or unknown settings as system', () => {
    expect(resolveTheme(undefined, true)).toBe('dark');
    expect(resolveTheme(null, false)).toBe('light');
    expect(resolveTheme('sepia', true)).toBe('dark');
  });
  it('marks the root element', () => {
    const el = document.createElement('html');
    applyTheme(el, 'dark');
    expect(el.dataset.theme).toBe('dark');
    expect(el.style.colorScheme).toBe('dark');
  });
});
