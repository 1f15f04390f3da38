// Browser tests of the plan preview (web/index.html) in Debian's headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { startServer, launchBrowser, openPage, planBy, screenshot } from './harness.mjs';
import { bigInput } from './big.mjs';

const P = 'serverless.consul.hashicorp.com/v1alpha1/lambda/';
let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
});

const rowCounts = (page) => page.evaluate(() => {
  const out = { create: 0, update: 0, delete: 0, unchanged: 0 };
  for (const tr of document.querySelectorAll('#plan-rows tr.row')) out[tr.dataset.change]++;
  return out;
});

const chipCounts = (page) => page.evaluate(() => Object.fromEntries(
  [...document.querySelectorAll('.filters .chip')].map((b) => [b.dataset.change, Number(b.querySelector('.n').textContent)]),
));

const rowOf = (page, name) => page.locator('#plan-rows tr.row', { has: page.locator('.name', { hasText: new RegExp(`^${name}$`) }) });

test('the example: counts per change, messages, an expanded row, filters', async () => {
  const { page, errors } = await openPage(browser.context, server.url);
  await planBy(page, '#example-button');
  assert.equal(await page.locator('#alert').isHidden(), true, 'no alert');

  // The example: orders and shipping are new, payments drifted, billing-beta (removed alias)
  // and legacy-report (orphan) go, billing and billing-live stay.
  const want = { create: 2, update: 1, delete: 2, unchanged: 2 };
  assert.deepEqual(await rowCounts(page), want);
  assert.deepEqual(await chipCounts(page), want);
  const summary = await page.locator('#summary').innerText();
  assert.match(summary, /2 to create, 1 to update,\s+2 to delete, 2 unchanged/);

  // Messages: the bad tag is an error with code, tag key, value and hint; the typo a warning.
  const inventory = page.locator('.msg-group[data-function$=":function:inventory"]');
  await assert.doesNotReject(inventory.waitFor());
  const invText = await inventory.innerText();
  assert.match(invText, /invalid_invocation_mode/);
  assert.match(invText, /…\/invocation-mode/);
  assert.match(invText, /async/);
  assert.match(invText, /Hint: set serverless\.consul\.hashicorp\.com\/v1alpha1\/lambda\/invocation-mode to SYNCHRONOUS/);
  assert.match(await page.locator('.msg-group[data-function$=":function:shipping"]').innerText(), /unknown_tag/);
  // The severity label is upper-cased by CSS; the status itself is the core's "disabled".
  assert.match(await page.locator('.msg-group[data-function$=":function:search"]').innerText(), /disabled.*enabled tag is false/i);

  // Expand payments: its repaired service-defaults entry, exact path and body.
  const payments = rowOf(page, 'payments');
  assert.equal(await payments.getAttribute('data-change'), 'update');
  await payments.locator('button.toggle').click();
  assert.equal(await payments.locator('button.toggle').getAttribute('aria-expanded'), 'true');
  const detail = page.locator(`#d${await payments.getAttribute('data-i')}`);
  await detail.waitFor({ state: 'visible' });
  const reqs = await detail.locator('.req').allInnerTexts();
  assert.deepEqual(reqs.map((t) => t.trim()), ['PUT /v1/config']);
  const body = JSON.parse(await detail.locator('pre.body').first().innerText());
  assert.deepEqual(body, {
    Kind: 'service-defaults',
    Name: 'payments',
    Protocol: 'http',
    EnvoyExtensions: [{
      Name: 'builtin/aws/lambda',
      Required: false,
      Arguments: { arn: 'arn:aws:lambda:us-east-1:123456789012:function:payments', invocationMode: 'asynchronous', payloadPassthrough: false },
    }],
  });

  // The orphan: deregister then delete its entry, each after ListTags confirms it is gone.
  const orphan = rowOf(page, 'legacy-report');
  await orphan.locator('button.toggle').click();
  const orphanDetail = page.locator(`#d${await orphan.getAttribute('data-i')}`);
  assert.deepEqual((await orphanDetail.locator('.req').allInnerTexts()).map((t) => t.trim()),
    ['PUT /v1/catalog/deregister', 'DELETE /v1/config/service-defaults/legacy-report']);
  assert.match(await orphanDetail.innerText(), /ListTags confirms/);
  assert.deepEqual(JSON.parse(await orphanDetail.locator('pre.body').first().innerText()), { Node: 'lambdas', ServiceID: 'legacy-report' });

  await screenshot(page, 'example-desktop.png');

  // Filters: hide unchanged, then text.
  await page.click('.chip[data-change="unchanged"]');
  assert.equal(await page.getAttribute('.chip[data-change="unchanged"]', 'aria-pressed'), 'false');
  assert.deepEqual(await rowCounts(page), { ...want, unchanged: 0 });
  await page.fill('#filter', 'billing');
  await page.waitForFunction(() => document.querySelectorAll('#plan-rows tr.row').length === 1);
  assert.deepEqual(await rowCounts(page), { create: 0, update: 0, delete: 1, unchanged: 0 });
  await page.click('.chip[data-change="unchanged"]');
  assert.deepEqual(await rowCounts(page), { create: 0, update: 0, delete: 1, unchanged: 2 });
  await page.fill('#filter', 'no such service');
  await page.waitForFunction(() => !document.querySelector('#rows-empty').hidden);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a pasted function with a bad tag shows its code, value and hint', async () => {
  const { page, errors } = await openPage(browser.context, server.url);
  await page.fill('#account', '123456789012');
  await page.fill('#region', 'us-east-1');
  await page.fill('#functions', JSON.stringify([
    { arn: 'arn:aws:lambda:us-east-1:123456789012:function:reports', tags: { [`${P}enabled`]: 'true', [`${P}invocation-mode`]: 'async' } },
    { arn: 'arn:aws:lambda:us-east-1:123456789012:function:ok', tags: { [`${P}enabled`]: 'true' } },
  ], null, 2));
  await planBy(page, '#plan-button');
  assert.equal(await page.locator('#alert').isHidden(), true);
  const diag = page.locator('.msg-group[data-function$=":function:reports"] .diag.error');
  assert.equal(await diag.getAttribute('data-code'), 'invalid_invocation_mode');
  const text = await diag.innerText();
  assert.match(text, /invalid_invocation_mode/);
  assert.match(text, /the invocation-mode tag must be SYNCHRONOUS or ASYNCHRONOUS/);
  assert.match(text, /value\s+async/);
  assert.match(text, /Hint: set serverless\.consul\.hashicorp\.com\/v1alpha1\/lambda\/invocation-mode to SYNCHRONOUS \(request\/response\) or ASYNCHRONOUS \(event\)/);
  // The other function is still planned; the bad one gets no service.
  assert.deepEqual(await rowCounts(page), { create: 1, update: 0, delete: 0, unchanged: 0 });
  assert.equal(await rowOf(page, 'reports').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('mesh wiring: the gateway entry change is listed with what it adds and takes out', async () => {
  const { page, errors } = await openPage(browser.context, server.url);
  await page.evaluate(() => {
    document.getElementById('consul-section').open = true;
    document.getElementById('config-section').open = true;
  });
  await page.fill('#account', '123456789012');
  await page.fill('#region', 'us-east-1');
  await page.fill('#functions', JSON.stringify([
    { arn: 'arn:aws:lambda:us-east-1:123456789012:function:orders', tags: { [`${P}enabled`]: 'true' } },
    // Disabled: its service is deregistered now (an unlisted one would wait for ListTags).
    { arn: 'arn:aws:lambda:us-east-1:123456789012:function:gone', tags: { [`${P}enabled`]: 'false' } },
  ]));
  await page.fill('#node-services', JSON.stringify({ Node: { Node: 'lambdas' }, Services: [{ ID: 'gone', Service: 'gone', Tags: ['managed-by-lambda-registrator'] }] }));
  await page.fill('#service-defaults', JSON.stringify([{ Kind: 'service-defaults', Name: 'gone', Protocol: 'http', EnvoyExtensions: [{ Name: 'builtin/aws/lambda', Arguments: { arn: 'arn:aws:lambda:us-east-1:123456789012:function:gone' } }] }]));
  await page.fill('#config', 'TERMINATING_GATEWAY_NAME=lambda-gateway\nEXPORTED_SERVICES_PEERS=west');
  await page.fill('#mesh-entries', JSON.stringify({ Kind: 'terminating-gateway', Name: 'lambda-gateway', Services: [{ Name: 'legacy-db', CAFile: '/ca.pem' }, { Name: 'gone' }], ModifyIndex: 12 }));
  await planBy(page, '#plan-button');
  assert.equal(await page.locator('#alert').isHidden(), true, await page.locator('#alert').innerText());
  assert.equal(await page.locator('#mesh').isHidden(), false);
  const gateway = page.locator('#mesh-list li[data-kind="terminatingGateway"]');
  const text = await gateway.innerText();
  assert.match(text, /~ terminating-gateway lambda-gateway/);
  assert.match(text, /adds orders/);
  assert.match(text, /takes out gone/);
  // The exported-services entry was not pasted: it does not exist, so it is created.
  assert.match(await page.locator('#mesh-list li[data-kind="exportedServices"]').innerText(), /\+ exported-services default/);
  // The mesh writes are not shown as steps of a service row.
  assert.deepEqual(await rowCounts(page), { create: 1, update: 0, delete: 1, unchanged: 0 });
  assert.deepEqual(errors, []);
  await page.close();
});

test('errors from the core are shown in the alert region, never a blank page', async () => {
  const { page, errors } = await openPage(browser.context, server.url);
  await planBy(page, '#example-button');

  // Bad JSON.
  await page.fill('#functions', '{"ResourceTagMappingList": [');
  await planBy(page, '#plan-button');
  const alert = page.locator('#alert');
  assert.equal(await alert.isVisible(), true);
  assert.equal(await alert.getAttribute('role'), 'alert');
  assert.equal(await alert.getAttribute('data-code'), 'invalid_input');
  assert.match(await alert.innerText(), /Lambda functions: not valid JSON/);
  assert.equal(await page.locator('#results').isHidden(), true);
  await screenshot(page, 'alert-desktop.png');

  // Invalid configuration: every problem at once.
  await planBy(page, '#example-button');
  await page.fill('#config', 'NODE_NAME=not_a_label!\nPAGE_SIZE=500\nCONSUL_HTTP_TOKEN=s3cr3t-value');
  await planBy(page, '#plan-button');
  assert.equal(await alert.getAttribute('data-code'), 'invalid_config');
  const cfgText = await alert.innerText();
  assert.match(cfgText, /invalid_node_name/);
  assert.match(cfgText, /out_of_range/);
  assert.doesNotMatch(cfgText, /s3cr3t-value/, 'a token value is never shown');

  // A typed JSON configuration with an unknown field.
  await page.fill('#config', '{"nodeName": "lambdas", "nodeNmae": "x"}');
  await planBy(page, '#plan-button');
  assert.equal(await alert.getAttribute('data-code'), 'invalid_input');
  assert.match(await alert.innerText(), /nodeNmae/);

  // Missing account: the planner's own check.
  await page.fill('#config', '');
  await page.fill('#account', '');
  await planBy(page, '#plan-button');
  assert.equal(await alert.getAttribute('data-code'), 'invalid_input');
  assert.match(await alert.innerText(), /inventory\.accountId/);

  // Fixed: the alert goes, the plan returns.
  await page.fill('#account', '123456789012');
  await planBy(page, '#plan-button');
  assert.equal(await alert.isHidden(), true);
  assert.equal(await page.locator('#results').isVisible(), true);
  assert.deepEqual(errors, []);
  await page.close();
});

test('keyboard only: load the example, filter, expand and collapse a row, toggle a chip, Ctrl+Enter', async () => {
  const { page, errors } = await openPage(browser.context, server.url);
  const active = () => page.evaluate(() => document.activeElement && (document.activeElement.id || document.activeElement.className));
  // Tab from the top of the page to "Load example", press Enter.
  let reached = false;
  for (let i = 0; i < 40 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = (await active()) === 'example-button';
  }
  assert.ok(reached, 'Tab reaches "Load example"');
  let before = await page.evaluate(() => window.__planRuns || 0);
  await page.keyboard.press('Enter');
  await page.waitForFunction((n) => (window.__planRuns || 0) > n, before);
  assert.deepEqual(await rowCounts(page), { create: 2, update: 1, delete: 2, unchanged: 2 });

  // Type into the filter, then Tab on to the only row's toggle.
  await page.focus('#filter');
  await page.keyboard.type('legacy');
  await page.waitForFunction(() => document.querySelectorAll('#plan-rows tr.row').length === 1);
  reached = false;
  for (let i = 0; i < 10 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.matches('#plan-rows button.toggle') ?? false);
  }
  assert.ok(reached, 'Tab reaches a row toggle');
  assert.equal(await page.evaluate(() => document.activeElement.querySelector('.name').textContent), 'legacy-report');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-expanded')), 'true');
  const detailId = await page.evaluate(() => document.activeElement.getAttribute('aria-controls'));
  assert.equal(await page.locator(`#${detailId}`).isVisible(), true);
  assert.match(await page.locator(`#${detailId}`).innerText(), /PUT \/v1\/catalog\/deregister/);
  await screenshot(page, 'keyboard-expanded.png');
  await page.keyboard.press('Space');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-expanded')), 'false');
  assert.equal(await page.locator(`#${detailId}`).isHidden(), true);

  // Filter chips are toggle buttons.
  await page.fill('#filter', '');
  await page.focus('.chip[data-change="create"]');
  await page.keyboard.press('Enter');
  assert.equal(await page.getAttribute('.chip[data-change="create"]', 'aria-pressed'), 'false');
  await page.waitForFunction(() => document.querySelectorAll('#plan-rows tr.row').length === 5);
  assert.deepEqual(await rowCounts(page), { create: 0, update: 1, delete: 2, unchanged: 2 });
  await page.keyboard.press('Space');
  assert.equal(await page.getAttribute('.chip[data-change="create"]', 'aria-pressed'), 'true');

  // Ctrl+Enter in a text area plans again, with the edited input.
  await page.focus('#functions');
  await page.keyboard.press('Control+A');
  await page.keyboard.type('[{"arn": "arn:aws:lambda:us-east-1:123456789012:function:solo", "tags": {"' + P + 'enabled": "true"}}]');
  before = await page.evaluate(() => window.__planRuns || 0);
  await page.keyboard.press('Control+Enter');
  await page.waitForFunction((n) => (window.__planRuns || 0) > n, before);
  const counts = await chipCounts(page);
  assert.equal(counts.create, 1, 'solo is new');
  assert.equal(await rowOf(page, 'solo').count(), 1);
  assert.deepEqual(errors, []);
  await page.close();
});

test('every control has a label; the page has one h1, a main landmark and a live summary', async () => {
  const { page, errors } = await openPage(browser.context, server.url);
  await planBy(page, '#example-button');
  await rowOf(page, 'payments').locator('button.toggle').click();
  const unnamed = await page.evaluate(() => {
    const text = (el) => (el ? el.textContent.replace(/\s+/g, ' ').trim() : '');
    const nameOf = (el) => {
      if (el.getAttribute('aria-label')) return el.getAttribute('aria-label').trim();
      const by = el.getAttribute('aria-labelledby');
      if (by) return by.split(/\s+/).map((id) => text(document.getElementById(id))).join(' ').trim();
      if (el.labels && el.labels.length) return [...el.labels].map(text).join(' ').trim();
      if (el.tagName === 'BUTTON') return text(el);
      return '';
    };
    return [...document.querySelectorAll('input, textarea, select, button')]
      .filter((el) => !nameOf(el))
      .map((el) => el.outerHTML.slice(0, 120));
  });
  assert.deepEqual(unnamed, [], 'controls without an accessible name');
  const ids = await page.evaluate(() => {
    const seen = new Map();
    for (const el of document.querySelectorAll('[id]')) seen.set(el.id, (seen.get(el.id) || 0) + 1);
    return [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  });
  assert.deepEqual(ids, [], 'duplicate ids');
  assert.equal(await page.locator('h1').count(), 1);
  assert.equal(await page.locator('main').count(), 1);
  assert.equal(await page.getAttribute('#summary', 'role'), 'status');
  assert.equal(await page.getAttribute('#alert', 'role'), 'alert');
  assert.equal(await page.getAttribute('.filters', 'role'), 'group');
  // Every row toggle says which details it controls, and they exist.
  const dangling = await page.evaluate(() => [...document.querySelectorAll('#plan-rows button.toggle')]
    .filter((b) => !document.getElementById(b.getAttribute('aria-controls'))).length);
  assert.equal(dangling, 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('offline: every request stays on the static server; total transfer size', async () => {
  const origin = new URL(server.url).origin;
  const page = await browser.context.newPage();
  const foreign = [];
  const responses = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    foreign.push(url);
    return route.abort('internetdisconnected');
  });
  page.on('response', (r) => responses.push(r));
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  await page.goto(server.url);
  await page.waitForFunction(() => window.__ready === true);
  await planBy(page, '#example-button');
  assert.equal(await page.locator('#alert').isHidden(), true);
  assert.deepEqual(await chipCounts(page), { create: 2, update: 1, delete: 2, unchanged: 2 });
  assert.deepEqual(foreign, [], 'requests outside the static server');
  let bytes = 0;
  let gz = 0;
  const files = [];
  for (const r of responses) {
    assert.equal(r.status(), 200, r.url());
    const body = await r.body();
    bytes += body.length;
    gz += gzipSync(body, { level: 9 }).length;
    files.push(`${new URL(r.url()).pathname} ${body.length}`);
  }
  const paths = files.map((f) => f.split(' ')[0]);
  for (const want of ['/', '/app.js', '/example.js', '/style.css', '/vendor/core.js']) assert.ok(paths.includes(want), `${want} loaded`);
  assert.ok(paths.some((p) => p.endsWith('_bg.wasm')), 'the wasm core loaded');
  console.log(`# page transfer: ${responses.length} requests, ${bytes} bytes (${(bytes / 1024).toFixed(0)} KiB), ${gz} bytes gzipped (${(gz / 1024).toFixed(0)} KiB): ${files.join(', ')}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('downloads: the plan as JSON and as text, with no token in either', async () => {
  const { page, errors } = await openPage(browser.context, server.url);
  await planBy(page, '#example-button');
  await page.fill('#config', 'NODE_NAME=lambdas\nCONSUL_HTTP_TOKEN=s3cr3t-token-value');
  await planBy(page, '#plan-button');
  const grab = async (id) => {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click(id)]);
    const chunks = [];
    for await (const c of await dl.createReadStream()) chunks.push(c);
    return { name: dl.suggestedFilename(), text: Buffer.concat(chunks).toString('utf8') };
  };
  const json = await grab('#download-json');
  assert.equal(json.name, 'plan.json');
  const plan = JSON.parse(json.text);
  assert.deepEqual(plan.summary && [plan.summary.create, plan.summary.update, plan.summary.delete, plan.summary.unchanged], [2, 1, 2, 2]);
  const text = await grab('#download-text');
  assert.equal(text.name, 'plan.txt');
  assert.match(text.text, /payments/);
  assert.match(text.text, /legacy-report/);
  for (const t of [json.text, text.text, await page.content()]) assert.doesNotMatch(t, /s3cr3t-token-value/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('375 px wide: readable, no horizontal scrolling, even with request bodies open', async () => {
  const { page, errors } = await openPage(browser.context, server.url, { width: 375, height: 812 });
  await planBy(page, '#example-button');
  for (const name of ['payments', 'legacy-report', 'orders']) await rowOf(page, name).locator('button.toggle').click();
  await page.locator('pre.body').first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page wider than the viewport by ${overflow}px`);
  const layout = await page.evaluate(() => {
    const px = (el) => parseFloat(getComputedStyle(el).fontSize);
    const sel = '#plan-rows tr.row, #plan-rows tr.detail:not([hidden]), .msg-group, .inputs, #summary, textarea, .chip';
    return {
      // Every card, message and control lies inside the viewport.
      outside: [...document.querySelectorAll(sel)]
        .filter((el) => { const r = el.getBoundingClientRect(); return r.left < 0 || r.right > window.innerWidth + 0.5; })
        .map((el) => el.className || el.id),
      // Text is no smaller than 11px anywhere it matters.
      smallest: Math.min(...[...document.querySelectorAll('.why, .name, .badge, .diag .msg, .help, pre.body, .chip, label')].map(px)),
      // Long request bodies scroll inside their own box.
      bodiesScroll: [...document.querySelectorAll('pre.body')].every((p) => getComputedStyle(p).overflowX === 'auto'),
      // At this width the table is a list of cards (one grid per row), not a squeezed table.
      cards: [...document.querySelectorAll('#plan-rows tr.row')].every((tr) => getComputedStyle(tr).display === 'grid'),
    };
  });
  assert.deepEqual(layout.outside, [], 'elements outside the viewport');
  assert.ok(layout.smallest >= 11, `smallest text ${layout.smallest}px`);
  assert.ok(layout.bodiesScroll);
  assert.ok(layout.cards);
  await screenshot(page, 'example-375.png');
  assert.deepEqual(errors, []);
  await page.close();
});

test('10,000 functions: validated, planned and shown (timing printed, not asserted)', async () => {
  const { page, errors } = await openPage(browser.context, server.url);
  const big = bigInput({ n: 10000 });
  await page.evaluate((d) => {
    document.getElementById('account').value = d.account;
    document.getElementById('region').value = d.region;
    document.getElementById('functions').value = d.functions;
    document.getElementById('node-services').value = d.nodeServices;
    document.getElementById('service-defaults').value = d.serviceDefaults;
  }, big);
  const runs = [];
  const RUNS = Number(process.env.WEB_BIG_RUNS || 5);
  for (let k = 0; k < RUNS; k++) {
    const wall0 = Date.now();
    await planBy(page, '#plan-button');
    const wall = Date.now() - wall0;
    await page.waitForFunction(() => window.__lastPaintMs !== undefined);
    const t = await page.evaluate(() => ({ ...window.__lastTimings, paint: window.__lastPaintMs }));
    await page.evaluate(() => { window.__lastPaintMs = undefined; });
    runs.push({ ...t, wall });
  }
  assert.equal(await page.locator('#alert').isHidden(), true);
  const last = runs[runs.length - 1];
  assert.equal(last.functions, 10000);
  const s = await page.evaluate(() => window.__lastTimings && document.querySelector('#summary').innerText);
  assert.ok(s.includes(`${big.expected.create} to create`), s);
  assert.deepEqual(await chipCounts(page), {
    create: big.expected.create, update: big.expected.update, delete: big.expected.delete, unchanged: big.expected.unchanged,
  });
  assert.equal(last.services, big.expected.create + big.expected.update + big.expected.delete + big.expected.unchanged);
  // Only one page of rows is in the DOM.
  assert.equal(last.rowsInDom, 100);
  assert.equal(await page.locator('#plan-rows tr').count(), 200, 'rows and their (empty) detail rows');
  await page.click('#rows-more');
  assert.equal(await page.locator('#plan-rows tr.row').count(), 200);
  assert.equal(await page.locator('.msg-group.has-error').count(), big.expected.errors);
  await screenshot(page, 'big-desktop.png');
  const fmt = (r) => `total ${r.total.toFixed(1)} ms (read+parse ${r.read.toFixed(1)}, plan ${r.plan.toFixed(1)}, render ${r.render.toFixed(1)}), to next paint ${r.paint.toFixed(1)} ms, click-to-done from the test ${r.wall} ms`;
  runs.forEach((r, k) => console.log(`# 10k functions, run ${k + 1}: ${fmt(r)}`));
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`# 10k functions, median of ${runs.length} runs: ${median(runs.map((r) => r.total)).toFixed(1)} ms validated+planned+table laid out, `
    + `${median(runs.map((r) => r.paint)).toFixed(1)} ms to the next paint (plan ${median(runs.map((r) => r.plan)).toFixed(1)} ms)`);
  assert.deepEqual(errors, []);
  await page.close();
});
