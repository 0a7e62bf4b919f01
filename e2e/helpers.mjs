// Shared helpers: start the app through tauri-driver (WebdriverIO), find elements by
// data-testid, wait, and save screenshots where the CI log can name them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { remote } from 'webdriverio';

export const ROOT = resolve(import.meta.dirname, '..');
export const APP = process.env.HEARTH_APP ?? join(ROOT, 'target/release/hearth-desktop');
export const SHOTS = process.env.HEARTH_SHOTS ?? join(ROOT, 'target/e2e-shots');
export const FIXTURES = process.env.HEARTH_FIXTURES ?? join(ROOT, '../shared/fixtures');
export const MODEL = join(FIXTURES, 'models/stories260K-f32.gguf');

/** Starts the app (a new process) in a WebDriver session. */
export async function startApp() {
  const browser = await remote({
    hostname: '127.0.0.1',
    port: Number(process.env.TAURI_DRIVER_PORT ?? 4444),
    logLevel: 'warn',
    connectionRetryCount: 2,
    capabilities: {
      browserName: 'wry',
      'wdio:enforceWebDriverClassic': true,
      'tauri:options': { application: APP },
    },
  });
  await browser.setTimeout({ implicit: 0 });
  return browser;
}

export const byId = (browser, id) => browser.$(`[data-testid="${id}"]`);

/** Waits until `fn()` returns something truthy; returns it. */
export async function until(fn, { timeout = 30_000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
}

/** The text content of the first element with `data-testid` = id ("" when there is none). */
export async function textOf(browser, id) {
  return browser.execute((sel) => document.querySelector(sel)?.textContent ?? '', `[data-testid="${id}"]`);
}

export async function visible(browser, id, timeout = 30_000) {
  const el = await byId(browser, id);
  await el.waitForDisplayed({ timeout, timeoutMsg: `${id} is not displayed after ${timeout} ms` });
  return el;
}

export async function shot(browser, name) {
  mkdirSync(SHOTS, { recursive: true });
  const path = join(SHOTS, `${name}.png`);
  await browser.saveScreenshot(path);
  console.log(`screenshot: ${path}`);
  return path;
}

/**
 * Picks `path` as if chosen in the native file dialog, then clicks `button`. WebDriver cannot
 * drive the GTK dialog, so scripts/e2e.sh starts the app with HEARTH_TEST_PICK_FILE naming a
 * file; the app's "Open" returns the path written there, once (see src-tauri/src/commands.rs).
 */
export async function pickFile(browser, path, button) {
  const queue = process.env.HEARTH_TEST_PICK_FILE;
  if (!queue) throw new Error('HEARTH_TEST_PICK_FILE is not set: run the tests through scripts/e2e.sh');
  writeFileSync(queue, path);
  await (await visible(browser, button)).click();
}

/** The assistant messages' texts. */
export async function assistantTexts(browser) {
  const els = await browser.$$('[data-testid="message"][data-role="assistant"]');
  const out = [];
  for (const el of els) out.push(await el.getText());
  return out;
}
