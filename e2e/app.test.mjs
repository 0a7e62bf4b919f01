// Hearth as a user meets it: first run with no model, loading the stories260K fixture,
// streaming replies, KV reuse on the second turn, a document attached and asked about (and read
// from its cache in a second conversation), the cache panel, a restart whose next reply restores
// its prefix from disk, a broken GGUF file, the built-in model started from the welcome
// screen, and the local API server serving it.
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { MODEL, assistantTexts, byId, pickFile, shot, startApp, textOf, until, visible } from './helpers.mjs';

let browser;
after(async () => {
  await browser?.deleteSession().catch(() => {});
});

/** Sends `text` and returns the streamed partial texts seen and the final stats line. */
async function send(text) {
  const before = (await assistantTexts(browser)).length;
  const composer = await visible(browser, 'composer');
  await composer.setValue(text);
  await (await visible(browser, 'send')).click();
  const partials = new Set();
  await until(
    async () => {
      const busy = await browser.$('[data-testid="message"][data-role="assistant"][aria-busy="true"]');
      if (await busy.isExisting()) {
        const t = (await busy.getText()).trim();
        if (t) partials.add(t);
      }
      return (await browser.$$('[data-testid="reply-stats"]')).length > before;
    },
    { timeout: 120_000, interval: 30, what: `the reply to "${text}"` },
  );
  const stats = await browser.$$('[data-testid="reply-stats"]');
  const line = await stats[stats.length - 1].getText();
  const texts = await assistantTexts(browser);
  return { partials: [...partials], line, reply: texts[texts.length - 1] };
}

/** Clicks a theme choice in Settings (the radio is drawn by its label). */
async function chooseTheme(value) {
  const radio = await byId(browser, `setting-theme-${value}`);
  await radio.waitForExist({ timeout: 30_000 });
  await (await radio.parentElement()).click();
  await until(async () => (await radio.isSelected()), { what: `the ${value} theme selected` });
}

/** "12 prompt tokens · 3 reused · 9 computed · …" → numbers. */
function parseStats(line) {
  const num = (re) => Number((line.match(re) ?? [])[1]?.replace(/[^\d]/g, ''));
  return { prompt: num(/([\d,]+) prompt tokens?/), reused: num(/([\d,]+) reused/), computed: num(/([\d,]+) computed/) };
}

test('first run: the welcome screen, no model, the built-in model offered', async () => {
  browser = await startApp();
  const welcome = await visible(browser, 'welcome', 60_000);
  assert.match(await welcome.getText(), /Hearth/);
  const builtin = await visible(browser, 'builtin-model');
  assert.match(await builtin.getText(), /Start with the built-in model/);
  assert.match(await builtin.getText(), /SmolLM2 135M Instruct .*works offline.*7B model/s);
  await shot(browser, '01-welcome');
});

test('load stories260K, stream a reply, reuse the cache on the second turn', async () => {
  await pickFile(browser, MODEL, 'open-model');
  await visible(browser, 'memory-plan');
  await shot(browser, '02-model-plan');
  await (await visible(browser, 'load-model')).click();
  await until(async () => !(await (await byId(browser, 'load-progress')).isExisting()), {
    timeout: 120_000,
    what: 'the load to finish',
  });
  const loadError = await byId(browser, 'model-error');
  if (await loadError.isExisting()) {
    await shot(browser, '02-load-error');
    assert.fail(`loading failed: ${await loadError.getText()}`);
  }
  await until(async () => /stories|260K/i.test(await textOf(browser, 'model-status')), {
    timeout: 120_000,
    what: 'the sidebar to show the loaded model',
  }).catch(async (err) => {
    await shot(browser, '02-load-stuck');
    throw err;
  });
  await visible(browser, 'composer');

  // Short, greedy replies: two turns fit the model's 512-token context with room to spare.
  await (await visible(browser, 'nav-settings')).click();
  const maxTokens = await visible(browser, 'setting-maxTokens');
  await maxTokens.setValue('40');
  const temperature = await visible(browser, 'setting-temperature');
  await temperature.setValue('0');
  await (await visible(browser, 'settings-save')).click();
  await until(async () => /Settings saved/.test(await textOf(browser, 'settings-status')), { what: 'settings saved' });
  await (await visible(browser, 'new-conversation')).click();

  const first = await send('Once upon a time');
  assert.ok(first.reply.length > 0, 'the reply has text');
  assert.ok(first.partials.length > 0, `tokens streamed into the reply before it finished (saw ${first.partials.length} partial states)`);
  const s1 = parseStats(first.line);
  assert.equal(s1.reused, 0, first.line);

  const second = await send('What happened next?');
  const s2 = parseStats(second.line);
  assert.ok(s2.reused >= s1.prompt, `second turn reuses the first prompt: ${second.line}`);
  assert.ok(s2.computed < s2.prompt, `only the new tokens are computed: ${second.line}`);
  assert.equal(s2.computed, s2.prompt - s2.reused, second.line);
  await shot(browser, '03-chat');

  await (await visible(browser, 'nav-settings')).click();
  await visible(browser, 'settings-panel');
  await visible(browser, 'stats-panel');
  await shot(browser, '04-settings');

  // The dark theme, chosen in Settings (under Xvfb the system theme is light).
  await chooseTheme('dark');
  await (await visible(browser, 'settings-save')).click();
  await until(async () => (await browser.execute(() => document.documentElement.dataset.theme)) === 'dark', {
    what: 'the dark theme applied',
  });
  await shot(browser, '04-settings-dark');
  await (await browser.$('[data-testid="conversation-item"] button.select')).click();
  await until(async () => (await assistantTexts(browser)).length >= 2, { what: 'the conversation shown again' });
  await shot(browser, '03-chat-dark');
  await (await visible(browser, 'nav-settings')).click();
  await chooseTheme('system');
  await (await visible(browser, 'settings-save')).click();
  await until(async () => (await browser.execute(() => document.documentElement.dataset.theme)) === 'light', {
    what: 'the system (light) theme applied again',
  });
});

/** A small document with a planted fact, short enough for stories260K's 512-token context. */
function writeDocument() {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-e2e-doc-'));
  const path = join(dir, 'lighthouse.txt');
  writeFileSync(path, 'The lighthouse on the hill is painted blue. Its keeper is called Mira.\n');
  return path;
}

/** Attaches `path` to the open conversation through the app's own dialog (queued, see helpers). */
async function attach(path) {
  const chipsBefore = (await browser.$$('[data-testid="document-chip"]')).length;
  await pickFile(browser, path, 'attach-document');
  await until(
    async () =>
      (await browser.$$('[data-testid="document-chip"]')).length > chipsBefore &&
      !(await (await byId(browser, 'document-attaching')).isExisting()),
    { timeout: 120_000, what: 'the document attached and encoded' },
  ).catch(async (err) => {
    await shot(browser, '08-attach-stuck');
    const error = await textOf(browser, 'document-error');
    throw new Error(`${err.message}; document error: ${error || 'none'}`);
  });
  return textOf(browser, 'document-chip-detail');
}

test('attach a document, ask about it; a second conversation reads it from the cache', async () => {
  const path = writeDocument();
  await (await visible(browser, 'new-conversation')).click();
  const detail = await attach(path);
  console.log(`document chip: ${detail}`);
  assert.match(detail, /[\d,]+ tokens? · fits whole · cached on the GPU/);

  const first = await send('What colour is the lighthouse?');
  const reads = await browser.$$('[data-testid="reply-document"]');
  assert.ok(reads.length >= 1, `the reply says what it read of the document: ${first.line}`);
  const read = await reads[reads.length - 1].getText();
  console.log(`reply: ${JSON.stringify(first.reply)}; ${first.line}; ${read}`);
  // Encoded when attached: the question's turn takes the whole document prefix from the cache.
  assert.match(read, /^Read lighthouse\.txt · [\d,]+ tokens from the document's cache$/);
  await shot(browser, '08-chat-with-document');

  // Another conversation with the same file: the same document, its prefix found by hash.
  await (await visible(browser, 'new-conversation')).click();
  await attach(path);
  await send('Who keeps the lighthouse?');
  const again = await browser.$$('[data-testid="reply-document"]');
  const read2 = await again[again.length - 1].getText();
  console.log(`second conversation: ${read2}`);
  assert.match(read2, /^Read lighthouse\.txt · [\d,]+ tokens from the document's cache$/);

  await (await visible(browser, 'nav-documents')).click();
  const used = await until(async () => {
    const t = await textOf(browser, 'document-used-in');
    return /Used in .+, .+/.test(t) ? t : null;
  }, { what: 'the Documents list naming both conversations' });
  console.log(`documents list: ${used}`);
});

/** Scrolls the settings page so the cache panel is at the top of the window. */
async function showCachePanel() {
  await browser.execute(() => document.querySelector('[data-testid="cache-panel"]')?.scrollIntoView({ block: 'start' }));
  await new Promise((r) => setTimeout(r, 300));
}

test('Settings: the cache panel shows memory, a hit rate and named owners, live', async () => {
  await (await visible(browser, 'nav-settings')).click();
  await visible(browser, 'cache-panel');
  const rate = await until(async () => {
    const t = await textOf(browser, 'cache-hit-rate');
    return /^[\d.]+%$/.test(t) && Number.parseFloat(t) > 0 ? t : null;
  }, { what: 'a hit rate above 0' });
  const gpu = await textOf(browser, 'cache-tier-gpu-usage');
  console.log(`cache panel: hit rate ${rate}; GPU ${gpu}; RAM ${await textOf(browser, 'cache-tier-ram-usage')}; disk ${await textOf(browser, 'cache-tier-disk-usage')}`);
  assert.doesNotMatch(gpu, /^0 B/, `GPU memory is in use: ${gpu}`);
  const kinds = await textOf(browser, 'cache-owner-kinds');
  assert.match(kinds, /(Conversations|Documents|Shared prefixes) [1-9]/, `memory by kind of owner: ${kinds}`);
  // The disk tier's owners, by the names the person knows (refreshed every 10 s).
  const owners = await until(
    () =>
      browser.execute(() =>
        [...document.querySelectorAll('[data-testid="cache-owner"]')].map((tr) =>
          [...tr.querySelectorAll('td')].slice(0, 2).map((td) => td.textContent.trim()).join(' / '),
        ),
      ).then((rows) => (rows.some((r) => r.endsWith('/ Document')) && rows.some((r) => r.endsWith('/ Conversation')) ? rows : null)),
    { timeout: 30_000, what: 'a document and a conversation among the cache owners on disk' },
  );
  console.log(`cache owners on disk: ${owners.join('; ')}`);
  assert.ok(owners.some((r) => r === 'lighthouse.txt / Document'), owners.join('; '));
  await showCachePanel();
  await shot(browser, '09-cache-panel');
  await chooseTheme('dark');
  await (await visible(browser, 'settings-save')).click();
  await until(async () => (await browser.execute(() => document.documentElement.dataset.theme)) === 'dark', {
    what: 'the dark theme applied',
  });
  await showCachePanel();
  await shot(browser, '09-cache-panel-dark');
  await chooseTheme('system');
  await (await visible(browser, 'settings-save')).click();
  await until(async () => (await browser.execute(() => document.documentElement.dataset.theme)) === 'light', {
    what: 'the system (light) theme applied again',
  });
  // Pin a conversation from the owners list, see it marked, then unpin it (nothing is cleared:
  // the restart below still restores from disk).
  const pinId = await until(
    () => browser.execute(() => document.querySelector('[data-testid^="owner-pin-conversation-"]')?.dataset.testid ?? null),
    { what: 'a conversation row with a Pin button' },
  );
  const owner = pinId.slice('owner-pin-'.length);
  await (await visible(browser, pinId)).click();
  await visible(browser, `owner-pinned-${owner}`, 15_000);
  assert.equal((await textOf(browser, pinId)).trim(), 'Unpin');
  await (await visible(browser, pinId)).click();
  await until(async () => (await textOf(browser, pinId)).trim() === 'Pin', { what: 'the conversation unpinned' });
});

test('after a restart the conversation is still there', async () => {
  await browser.deleteSession();
  browser = await startApp();
  const id = await until(
    () =>
      browser.execute(() => {
        const items = [...document.querySelectorAll('[data-testid="conversation-item"]')];
        return items.find((el) => el.textContent.includes('Once upon a time'))?.getAttribute('data-id') ?? null;
      }),
    { timeout: 60_000, what: 'the conversation in the sidebar' },
  );
  await (await browser.$(`[data-testid="conversation-item"][data-id="${id}"] button`)).click();
  await until(async () => (await assistantTexts(browser)).length >= 2, { what: 'the two saved replies' });
  const users = await browser.$$('[data-testid="message"][data-role="user"]');
  assert.equal(users.length, 2);
  await shot(browser, '05-restarted');

  // The model loads again at start; the conversation's prefix comes back from the disk tier.
  await until(async () => /stories|260K/i.test(await textOf(browser, 'model-status')), {
    timeout: 120_000,
    what: 'the last model loaded again',
  });
  const next = await send('And then?');
  const restoredLines = await browser.$$('[data-testid="reply-restored"]');
  const restored = restoredLines.length ? await restoredLines[restoredLines.length - 1].getText() : '';
  console.log(`after restart: ${next.line}; ${restored || '(no restore line)'}`);
  assert.match(restored, /^[\d,]+ tokens? restored from disk/, `the reply says its prefix came from disk: ${next.line}`);
  await shot(browser, '05-restored-reply');
});

test('a broken GGUF gives a clear error and the app stays up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-e2e-'));
  const broken = join(dir, 'broken.gguf');
  const bytes = readFileSync(MODEL);
  writeFileSync(broken, bytes.subarray(0, Math.floor(bytes.length / 3)));
  await (await visible(browser, 'nav-model')).click();
  await pickFile(browser, broken, 'open-model-file');
  const error = await visible(browser, 'model-error');
  const text = await error.getText();
  assert.match(text, /broken\.gguf/);
  assert.match(text, /not a usable GGUF file|not a GGUF model/);
  await shot(browser, '06-broken-gguf');
  // Still up: the settings page opens.
  await (await visible(browser, 'nav-settings')).click();
  await visible(browser, 'settings-panel');
});

test('the page cannot make the core open a file it was not given', async () => {
  // As a compromised page would: call the command directly with a path nobody picked.
  const other = join(mkdtempSync(join(tmpdir(), 'hearth-e2e-')), 'unpicked.gguf');
  writeFileSync(other, readFileSync(MODEL));
  const outcome = await browser.execute(async (path) => {
    try {
      await window.__TAURI_INTERNALS__.invoke('plan_model', { path });
      return 'accepted';
    } catch (err) {
      return String(err);
    }
  }, other);
  assert.match(outcome, /unpicked\.gguf: Hearth opens files only when you choose them/);
});

test('the built-in model: one click on the welcome screen, then a chat, with no file and no network', async () => {
  await (await visible(browser, 'nav-model')).click();
  await (await visible(browser, 'unload-model')).click();
  await until(async () => !/stories|260K/i.test(await textOf(browser, 'model-status')), { what: 'the model unloaded' });
  await (await visible(browser, 'new-conversation')).click();
  await (await visible(browser, 'start-builtin')).click();
  await until(async () => /SmolLM2/i.test(await textOf(browser, 'model-status')), {
    timeout: 180_000,
    what: 'the built-in model loaded',
  }).catch(async (err) => {
    await shot(browser, '09-builtin-stuck');
    const error = await textOf(browser, 'model-error');
    throw new Error(`${err.message}; model error: ${error || 'none'}`);
  });
  const reply = await send('What is the capital of France?');
  console.log(`built-in model: ${reply.line}: ${reply.reply.slice(0, 80)}`);
  assert.ok(reply.reply.trim().length > 0, 'the built-in model replies');
  await shot(browser, '09-builtin-chat');
});

test('Settings: the local API server serves the loaded model to other programs, then stops', async () => {
  await (await visible(browser, 'nav-settings')).click();
  const port = await visible(browser, 'api-server-port');
  await port.setValue('18787');
  await (await visible(browser, 'api-server-start')).click();
  const url = await until(async () => (await textOf(browser, 'api-server-url')).trim(), {
    timeout: 180_000,
    what: 'the server running',
  }).catch(async (err) => {
    await shot(browser, '10-api-server-stuck');
    throw new Error(`${err.message}; error: ${(await textOf(browser, 'api-server-error')) || 'none'}`);
  });
  assert.equal(url, 'http://127.0.0.1:18787/v1');
  await shot(browser, '10-api-server');

  const models = await (await fetch(`${url}/models`)).json();
  assert.match(models.data[0].id, /SmolLM2/i, JSON.stringify(models));
  const res = await fetch(`${url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: models.data[0].id,
      messages: [{ role: 'user', content: 'What is the capital of France?' }],
      max_tokens: 8,
      temperature: 0,
    }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.ok(body.choices[0].message.content.length > 0, JSON.stringify(body));
  console.log(`API server: ${JSON.stringify(body.choices[0].message.content)}; usage ${JSON.stringify(body.usage)}`);

  await (await visible(browser, 'api-server-stop')).click();
  await visible(browser, 'api-server-start');
  await assert.rejects(fetch(`${url}/models`), 'the server is gone once stopped');
});
