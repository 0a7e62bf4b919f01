// The installed .deb as a new user meets it: a fresh profile, the built-in model started from the
// welcome screen with one click (no file, no network), one question answered. scripts/e2e.sh runs
// it after installing the .deb with apt, with HEARTH_APP naming the installed binary; it is not a
// *.test.mjs file, so the suite against the build tree does not pick it up.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { APP, assistantTexts, shot, startApp, textOf, until, visible } from './helpers.mjs';

let browser;
after(async () => {
  await browser?.deleteSession().catch(() => {});
});

test('the installed app starts its built-in model and answers a question', async () => {
  assert.match(APP, /^\/usr\//, `HEARTH_APP should be the installed binary, not ${APP}`);
  browser = await startApp();
  await visible(browser, 'welcome', 60_000);
  // Short replies keep the test quick on a software GPU.
  await (await visible(browser, 'nav-settings')).click();
  await (await visible(browser, 'setting-maxTokens')).setValue('24');
  await (await visible(browser, 'settings-save')).click();
  await until(async () => /Settings saved/.test(await textOf(browser, 'settings-status')), { what: 'settings saved' });
  await (await visible(browser, 'new-conversation')).click();

  await (await visible(browser, 'start-builtin')).click();
  await until(async () => /SmolLM2/i.test(await textOf(browser, 'model-status')), {
    timeout: 180_000,
    what: 'the built-in model loaded',
  }).catch(async (err) => {
    await shot(browser, '08-installed-builtin-stuck');
    throw new Error(`${err.message}; model error: ${(await textOf(browser, 'model-error')) || 'none'}`);
  });
  await (await visible(browser, 'composer')).setValue('What is the capital of France?');
  await (await visible(browser, 'send')).click();
  await until(async () => (await browser.$$('[data-testid="reply-stats"]')).length > 0, {
    timeout: 180_000,
    what: 'the reply',
  });
  const replies = await assistantTexts(browser);
  console.log(`installed app, built-in model: ${replies[0]?.slice(0, 80)}`);
  assert.ok(replies[0]?.trim().length > 0, 'the built-in model replied');
  await shot(browser, '08-installed-builtin-chat');
});
