// Plan preview: reads the form, asks the core (WebAssembly) for a plan, renders it.
// No framework and no bundler: ES modules served as static files.
//
// The core's JSON API is one function, `call(function, inputJson) -> outputJson`, which
// throws an Error whose message is the failure JSON `{code, message, hint, key?, value?, errors}`.

import { example } from './example.js';

const $ = (id) => document.getElementById(id);
const ROW_PAGE = 100; // table rows added per "Show more": the DOM never holds every row of a big plan
const MSG_PAGE = 50; // function groups added per "Show more"
const CHANGES = ['create', 'update', 'delete', 'unchanged'];
const PREFIX = 'serverless.consul.hashicorp.com/v1alpha1/lambda/';
const OP_LABELS = {
  upsertConfigEntry: 'Write service-defaults',
  registerService: 'Register in the catalog',
  putExtensionData: 'Write extension data',
  deregisterService: 'Deregister from the catalog',
  deleteConfigEntry: 'Delete service-defaults',
  deleteExtensionData: 'Delete extension data',
  updateTerminatingGateway: 'Merge into the terminating-gateway entry',
  updateExportedServices: 'Merge into the exported-services entry',
};

// ---------------------------------------------------------------------------
// The core.
// ---------------------------------------------------------------------------

let coreCall = null;
const coreReady = (async () => {
  let mod;
  try {
    mod = await import('./vendor/core.js');
    await mod.default();
  } catch (e) {
    throw failure(
      'core_unavailable',
      `The WebAssembly core could not be loaded (${e && e.message ? e.message : e}).`,
      'Build it and copy it next to this page: bash web/build.sh (or bash scripts/test-web.sh), then serve the web/ folder over HTTP.',
    );
  }
  coreCall = mod.call;
  try {
    $('core-version').textContent = `Core ${core('version', '')}.`;
  } catch {
    // The version is decoration only.
  }
})();

/** A failure in the core's shape, for problems found in this page. */
function failure(code, message, hint, extra = {}) {
  const f = new Error(message);
  Object.assign(f, { failure: { code, message, hint, errors: [], ...extra } });
  return f;
}

/** Calls the core; the result is parsed JSON. Throws an Error carrying `.failure`. */
function core(fn, input) {
  const text = typeof input === 'string' ? input : JSON.stringify(input);
  return JSON.parse(coreRaw(fn, text));
}

function coreRaw(fn, text) {
  try {
    return coreCall(fn, text);
  } catch (e) {
    const msg = e && e.message !== undefined ? e.message : String(e);
    let parsed = null;
    try {
      parsed = JSON.parse(msg);
    } catch {
      // Not a failure JSON: a trap or a glue error.
    }
    if (parsed && typeof parsed === 'object' && parsed.code) {
      const err = new Error(parsed.message);
      err.failure = { errors: [], ...parsed };
      throw err;
    }
    throw failure('internal_error', `The core failed unexpectedly: ${msg}`, 'Reload the page; if it happens again, report it with the input.');
  }
}

// ---------------------------------------------------------------------------
// Reading the inputs.
// ---------------------------------------------------------------------------

function parseJson(text, label, hint) {
  try {
    return JSON.parse(text);
  } catch (e) {
    let where = '';
    const m = /position (\d+)/.exec(e.message);
    if (m && !/line \d+/.test(e.message)) {
      const before = text.slice(0, Number(m[1]));
      const line = before.split('\n').length;
      const col = before.length - before.lastIndexOf('\n');
      where = ` (line ${line}, column ${col})`;
    }
    throw failure('invalid_input', `${label}: not valid JSON: ${e.message}${where}`, hint, { key: label });
  }
}

const FUNCTIONS_HINT = 'Paste the JSON output of `aws resourcegroupstaggingapi get-resources --resource-type-filters lambda:function`, or a JSON list [{"arn": "…", "tags": {"key": "value"}}].';

/** The functions field → {functions, complete, notes}. */
function readFunctions(text) {
  const notes = [];
  if (!text.trim()) return { functions: [], complete: true, notes };
  const v = parseJson(text, 'Lambda functions', FUNCTIONS_HINT);
  const isPage = (x) => x && typeof x === 'object' && !Array.isArray(x) && 'ResourceTagMappingList' in x;
  let functions = [];
  let complete = true;
  const pages = isPage(v) ? [[v, text]] : Array.isArray(v) && v.length > 0 && v.every(isPage) ? v.map((p) => [p, null]) : null;
  if (pages) {
    for (const [page, raw] of pages) {
      const out = core('parseGetResources', raw ?? JSON.stringify(page));
      functions = functions.concat(out.functions);
      if (out.nextToken) complete = false;
    }
    if (!complete) {
      notes.push('The GetResources output has a PaginationToken: more pages exist. The inventory is marked incomplete, so the plan deletes nothing; paste every page (as a JSON list of pages) for a full plan.');
    }
    return { functions, complete, notes };
  }
  let list = v;
  if (v && typeof v === 'object' && !Array.isArray(v) && Array.isArray(v.functions)) list = v.functions;
  if (!Array.isArray(list)) {
    throw failure('invalid_input', 'Lambda functions: expected a GetResources response (an object with ResourceTagMappingList) or a JSON list of functions.', FUNCTIONS_HINT, { key: 'Lambda functions' });
  }
  const errors = [];
  list.forEach((f, i) => {
    const where = `Lambda functions[${i}]`;
    if (!f || typeof f !== 'object' || Array.isArray(f)) {
      errors.push({ code: 'invalid_input', message: `${where} is not an object`, hint: 'each function is {"arn": "…", "tags": {…}}', key: where });
      return;
    }
    const arn = f.arn ?? f.ARN ?? f.FunctionArn ?? f.ResourceARN;
    if (typeof arn !== 'string') {
      errors.push({ code: 'invalid_input', message: `${where} has no "arn" string`, hint: 'each function is {"arn": "…", "tags": {…}}', key: `${where}.arn` });
      return;
    }
    let tags = f.tags ?? f.Tags ?? {};
    if (Array.isArray(tags)) {
      // The AWS list form [{Key, Value}].
      tags = Object.fromEntries(tags.map((t) => [String(t.Key ?? t.key ?? ''), String(t.Value ?? t.value ?? '')]));
    }
    if (!tags || typeof tags !== 'object') {
      errors.push({ code: 'invalid_input', message: `${where}.tags is not an object`, hint: 'tags are {"key": "value"}', key: `${where}.tags` });
      return;
    }
    const clean = {};
    for (const [k, val] of Object.entries(tags)) {
      if (typeof val !== 'string') {
        errors.push({ code: 'invalid_input', message: `${where}.tags["${k}"] is not a string`, hint: 'tag values are strings, e.g. "true"', key: `${where}.tags`, value: JSON.stringify(val) });
        return;
      }
      clean[k] = val;
    }
    const fn = { arn, tags: clean };
    if (typeof f.name === 'string') fn.name = f.name;
    functions.push(fn);
  });
  if (errors.length) {
    throw failure('invalid_input', `Lambda functions: ${errors.length} ${errors.length === 1 ? 'entry has' : 'entries have'} the wrong shape.`, FUNCTIONS_HINT, { errors: errors.slice(0, 50) });
  }
  return { functions, complete, notes };
}

/** The two Consul fields → a scope, or null when both are empty. */
function readConsul(nodeText, defaultsText) {
  if (!nodeText.trim() && !defaultsText.trim()) return null;
  const scope = {};
  if (nodeText.trim()) {
    let v = parseJson(nodeText, 'Node services', 'Paste the response of GET /v1/catalog/node-services/:node.');
    if (Array.isArray(v)) v = { Services: v };
    if (v !== null && (typeof v !== 'object')) {
      throw failure('invalid_input', 'Node services: expected the JSON object of /v1/catalog/node-services/:node.', 'Paste the whole response, e.g. {"Node": {…}, "Services": […]}.', { key: 'Node services' });
    }
    scope.nodeServices = v;
  }
  if (defaultsText.trim()) {
    let v = parseJson(defaultsText, 'Service defaults', 'Paste the response of GET /v1/config/service-defaults.');
    if (v && !Array.isArray(v) && typeof v === 'object') v = [v];
    if (!Array.isArray(v)) {
      throw failure('invalid_input', 'Service defaults: expected the JSON list of /v1/config/service-defaults.', 'Paste the whole response, a list of entries.', { key: 'Service defaults' });
    }
    scope.serviceDefaults = v;
  }
  return scope;
}

/** The configuration field → the typed config for the plan (validated by the core). */
function readConfig(text) {
  const t = text.trim();
  if (!t) return {};
  if (t.startsWith('{')) {
    const obj = parseJson(t, 'Configuration', 'Use the typed JSON object, e.g. {"nodeName": "lambdas"}, or KEY=VALUE lines.');
    core('configFromObject', obj); // throws invalid_config listing every problem
    return obj;
  }
  const env = {};
  const errors = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    let line = raw.trim();
    if (!line || line.startsWith('#')) return;
    if (line.startsWith('export ')) line = line.slice(7).trim();
    const eq = line.indexOf('=');
    if (eq <= 0) {
      errors.push({ code: 'invalid_input', message: `line ${i + 1} is not KEY=VALUE`, hint: 'write one variable per line, e.g. NODE_NAME=lambdas', key: `Configuration line ${i + 1}`, value: line.includes('TOKEN') ? undefined : line });
      return;
    }
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && ((value.startsWith('"') && value.endsWith('"')) || (value.startsWith("'") && value.endsWith("'")))) {
      value = value.slice(1, -1);
    }
    env[line.slice(0, eq).trim()] = value;
  });
  if (errors.length) {
    throw failure('invalid_input', 'Configuration: some lines are not KEY=VALUE.', 'Use KEY=VALUE lines or the typed JSON object.', { errors });
  }
  // The core keeps only whether a token is set, never its value.
  return core('configFromEnv', env);
}

const MESH_KINDS = { 'terminating-gateway': 'terminatingGateway', 'exported-services': 'exportedServices' };

/** The pasted mesh entries (one object or a list, by Kind); an enabled kind not pasted does not exist. */
function readMesh(text, config) {
  const seen = new Map();
  if (text.trim()) {
    const v = parseJson(text, 'Mesh entries', 'Paste the response of GET /v1/config/terminating-gateway/NAME or /v1/config/exported-services/default.');
    for (const e of Array.isArray(v) ? v : [v]) {
      const kind = e && typeof e === 'object' ? MESH_KINDS[e.Kind] : undefined;
      if (!kind) throw failure('invalid_input', 'Mesh entries: each entry must be a terminating-gateway or exported-services config entry.', 'Paste the entries as Consul answers GET /v1/config/KIND/NAME.', { key: 'Mesh entries' });
      seen.set(`${kind}\u0000${e.Partition ?? ''}`, { kind, partition: e.Partition ?? null, entry: e });
    }
  }
  const partitions = config.enterprise ? config.partitions : [null];
  const kinds = [];
  if (config.terminatingGatewayName) kinds.push('terminatingGateway');
  if ((config.exportedServicesPeers || []).length || (config.exportedServicesPartitions || []).length) kinds.push('exportedServices');
  const out = [];
  for (const partition of partitions) {
    for (const kind of kinds) {
      out.push(seen.get(`${kind}\u0000${partition ?? ''}`) || seen.get(`${kind}\u0000`) || { kind, partition, entry: null });
    }
  }
  return out;
}

function readForm() {
  const fns = readFunctions($('functions').value);
  const scope = readConsul($('node-services').value, $('service-defaults').value);
  const config = readConfig($('config').value);
  const mesh = readMesh($('mesh-entries').value, config);
  const input = {
    config,
    inventory: {
      accountId: $('account').value.trim(),
      region: $('region').value.trim(),
      complete: fns.complete,
      functions: fns.functions,
    },
    consul: { scopes: scope ? [scope] : [] },
  };
  if (mesh.length) input.mesh = mesh;
  return { input, notes: fns.notes, functionCount: fns.functions.length };
}

// ---------------------------------------------------------------------------
// Rendering helpers.
// ---------------------------------------------------------------------------

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESC[c]);
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const fnName = (arn) => {
  const i = arn.indexOf(':function:');
  return i < 0 ? arn : arn.slice(i + 10).split(':')[0];
};
const keyOf = (s) => `${s.datacenter ?? ''}\u0000${s.partition ?? ''}\u0000${s.namespace ?? ''}\u0000${s.name}`;
const scopeText = (s) => [s.datacenter && `dc ${s.datacenter}`, s.partition && `partition ${s.partition}`, s.namespace && `ns ${s.namespace}`].filter(Boolean).join(' · ');
const shortKey = (k) => (k && k.startsWith(PREFIX) ? `…/${k.slice(PREFIX.length)}` : k);

function showAlert(title, err) {
  const f = (err && err.failure) || { code: 'internal_error', message: String(err && err.message ? err.message : err), hint: 'Reload the page; if it happens again, report it with the input.', errors: [] };
  const box = $('alert');
  const kv = (d) => {
    const parts = [];
    if (d.key) parts.push(`<span class="kv">key <code>${esc(d.key)}</code></span>`);
    if (d.value !== undefined && d.value !== null) parts.push(`<span class="kv">value <code>${esc(d.value)}</code></span>`);
    return parts.join(' ');
  };
  const items = (f.errors || []).map((d) => `<li><code class="code">${esc(d.code)}</code> ${esc(d.message)} ${kv(d)}${d.hint ? `<div class="hint">${esc(d.hint)}</div>` : ''}</li>`).join('');
  box.innerHTML = `<h2>${esc(title)}</h2>
    <p><code class="code">${esc(f.code)}</code> ${esc(f.message)} ${kv(f)}</p>
    ${items ? `<ul>${items}</ul>` : ''}
    ${f.hint ? `<p class="hint"><strong>Hint:</strong> ${esc(f.hint)}</p>` : ''}`;
  box.hidden = false;
  box.dataset.code = f.code;
  box.focus({ preventScroll: true });
  box.scrollIntoView({ block: 'nearest' });
}

function clearAlert() {
  const box = $('alert');
  box.hidden = true;
  box.innerHTML = '';
  delete box.dataset.code;
}

// ---------------------------------------------------------------------------
// State and rendering.
// ---------------------------------------------------------------------------

const state = {
  plan: null,
  planJson: '',
  opsByKey: new Map(),
  haystack: null, // lower-case search text per service, built on first text filter
  filtered: [], // indexes into plan.services
  shown: 0,
  changes: new Set(CHANGES),
  text: '',
  expanded: new Set(),
  groups: [],
  groupsShown: 0,
};

function indexPlan(plan) {
  const ops = new Map();
  for (const op of plan.operations) {
    if (op.mesh) continue; // a mesh entry write: its own list (renderMesh)
    const k = keyOf(op.service);
    const list = ops.get(k);
    if (list) list.push(op);
    else ops.set(k, [op]);
  }
  state.opsByKey = ops;
  state.haystack = null;
  state.expanded = new Set();
}

function renderMesh(plan) {
  const rows = plan.mesh || [];
  $('mesh').hidden = rows.length === 0;
  const kindText = { terminatingGateway: 'terminating-gateway', exportedServices: 'exported-services' };
  const names = (items) => items.map((i) => (i.namespace && i.namespace !== 'default' ? `${i.namespace}/${i.name}` : i.name)).join(', ');
  $('mesh-list').innerHTML = rows.map((m) => `<li class="mesh-row ${esc(m.change)}" data-kind="${esc(m.kind)}">
    <strong>${m.change === 'create' ? '+' : '~'} ${esc(kindText[m.kind] || m.kind)} ${esc(m.name)}</strong>${m.partition ? ` <span class="muted">partition ${esc(m.partition)}</span>` : ''}
    ${m.add.length ? `<div>adds <code>${esc(names(m.add))}</code></div>` : ''}
    ${m.remove.length ? `<div>takes out <code>${esc(names(m.remove))}</code></div>` : ''}
    <div class="hint">${esc(m.reason)}; written merged, with check-and-set: items and fields not the registrator's stay as they are.</div></li>`).join('');
}

function groupMessages(plan) {
  const groups = new Map();
  const get = (fn) => {
    const k = fn || '';
    let g = groups.get(k);
    if (!g) {
      g = { function: fn || null, errors: [], warnings: [], skips: [] };
      groups.set(k, g);
    }
    return g;
  };
  for (const d of plan.errors) get(d.function).errors.push(d);
  for (const d of plan.warnings) get(d.function).warnings.push(d);
  for (const s of plan.skips) get(s.function).skips.push(s);
  const rank = (g) => (g.function === null ? 0 : g.errors.length ? 1 : g.warnings.length ? 2 : 3);
  return [...groups.values()].sort((a, b) => rank(a) - rank(b));
}

function diagHtml(d, sev) {
  const kv = [];
  if (d.key) kv.push(`<span class="kv">${d.key.startsWith(PREFIX) ? 'tag' : 'key'} <code title="${esc(d.key)}">${esc(shortKey(d.key))}</code></span>`);
  if (d.value !== undefined && d.value !== null) kv.push(`<span class="kv">value <code>${esc(d.value)}</code></span>`);
  return `<li class="diag ${sev}" data-code="${esc(d.code)}"><span class="sev">${sev}</span> <code class="code">${esc(d.code)}</code>
    <span class="msg">${esc(d.message)}</span>${kv.length ? `<div class="kvs">${kv.join(' ')}</div>` : ''}${d.hint ? `<div class="hint"><strong>Hint:</strong> ${esc(d.hint)}</div>` : ''}</li>`;
}

function groupHtml(g) {
  const head = g.function
    ? `<div class="fn"><strong>${esc(fnName(g.function))}</strong> <span class="arn">${esc(g.function)}</span></div>`
    : '<div class="fn"><strong>Whole plan</strong></div>';
  const items = [
    ...g.errors.map((d) => diagHtml(d, 'error')),
    ...g.warnings.map((d) => diagHtml(d, 'warning')),
    ...g.skips.map((s) => `<li class="diag skipped"><span class="sev">${esc(s.status)}</span> <span class="msg">${esc(s.reason)}</span></li>`),
  ].join('');
  const cls = g.errors.length ? 'has-error' : g.warnings.length ? 'has-warning' : 'has-skip';
  return `<li class="msg-group ${cls}" data-function="${esc(g.function ?? '')}">${head}<ul>${items}</ul></li>`;
}

function renderMessages(more = false) {
  const list = $('message-list');
  const from = more ? state.groupsShown : 0;
  const to = Math.min(state.groups.length, from + MSG_PAGE);
  const html = state.groups.slice(from, to).map(groupHtml).join('');
  if (more) list.insertAdjacentHTML('beforeend', html);
  else list.innerHTML = html;
  state.groupsShown = to;
  $('messages-empty').hidden = state.groups.length > 0;
  const rest = state.groups.length - to;
  const btn = $('messages-more');
  btn.hidden = rest <= 0;
  btn.textContent = `Show ${Math.min(rest, MSG_PAGE)} more functions (${rest} not shown)`;
}

function renderIgnored(plan) {
  const box = $('ignored');
  const n = plan.ignored.length + plan.confirmations.length;
  box.hidden = n === 0;
  if (!n) return;
  box.querySelector('summary').textContent = `Left alone: ${plural(plan.ignored.length, 'object')}; deletions awaiting ListTags: ${plan.confirmations.length}`;
  const items = [
    ...plan.ignored.slice(0, 500).map((i) => `<li>${i.service ? `<strong>${esc(i.service.name)}</strong> ` : ''}${esc(i.reason)}</li>`),
    ...plan.confirmations.slice(0, 500).map((c) => `<li>Deleting <strong>${esc(c.services.join(', '))}</strong> waits until ListTags confirms that <code>${esc(c.function)}</code> no longer exists.</li>`),
  ];
  box.querySelector('ul').innerHTML = items.join('');
}

/** The request an operation sends, lowered by the core (`lowerOperation`). */
function requestHtml(op) {
  let preview;
  try {
    preview = core('lowerOperation', { operation: op, nodeName: state.nodeName });
  } catch (e) {
    return `<p class="note">${esc(e.failure ? e.failure.message : String(e))}</p>`;
  }
  if (preview.refused) return `<p class="note">Not sent: ${esc(preview.refused)}</p>`;
  const req = preview.request;
  if (!req) return '<p class="muted">Nothing to send.</p>';
  if (req.aws) {
    const input = req.aws.input || {};
    return `<div class="req"><span class="method">${esc(req.aws.operation)}</span> <span class="path">${esc(input.Name || '')}</span>${input.Tier ? ` <span class="muted">(tier ${esc(input.Tier)} when over 4096 bytes)</span>` : ''}</div>`;
  }
  const c = req.consul;
  const q = c.query ? Object.entries(c.query) : [];
  const qs = q.length ? `?${q.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}` : '';
  const body = c.body === undefined || c.body === null ? '' : `<pre class="body"><code>${esc(JSON.stringify(c.body, null, 2))}</code></pre>`;
  return `<div class="req"><span class="method m-${esc(c.method.toLowerCase())}">${esc(c.method)}</span> <span class="path">${esc(c.path)}</span><span class="query">${esc(qs)}</span></div>${body}`;
}

function detailHtml(svc) {
  const ops = state.opsByKey.get(keyOf(svc.service)) || [];
  if (!ops.length) return '<p class="muted">No request: the service is already as wanted.</p>';
  return `<ol class="ops">${ops.map((op) => `<li class="op">
    <div class="op-head"><strong>${esc(OP_LABELS[op.kind] || op.kind)}</strong> <span class="muted">${esc(op.reason)}</span></div>
    ${op.confirmAbsent ? `<p class="note">Runs only after ListTags confirms that <code>${esc(op.confirmAbsent)}</code> does not exist.</p>` : ''}
    ${op.leafSerial ? `<p class="note">Leaf certificate serial <code>${esc(op.leafSerial)}</code> (the key itself never enters the plan).</p>` : ''}
    ${requestHtml(op)}</li>`).join('')}</ol>`;
}

function rowHtml(i) {
  const s = state.plan.services[i];
  const open = state.expanded.has(i);
  const scope = scopeText(s.service);
  const fn = s.function ? `<span title="${esc(s.function)}">${esc(fnName(s.function))}</span>` : '<span class="muted">—</span>';
  const nOps = (state.opsByKey.get(keyOf(s.service)) || []).length;
  return `<tr class="row c-${s.change}" data-i="${i}" data-change="${s.change}">
    <td class="svc" data-label="Service"><button type="button" class="toggle" aria-expanded="${open}" aria-controls="d${i}"><span class="chev" aria-hidden="true"></span><span class="name">${esc(s.service.name)}</span><span class="visually-hidden">, ${plural(nOps, 'request')}</span></button>${scope ? `<div class="scope">${esc(scope)}</div>` : ''}</td>
    <td class="chg" data-label="Change"><span class="badge c-${s.change}">${s.change}</span></td>
    <td class="fnc" data-label="Function">${fn}</td>
    <td class="why" data-label="Why">${esc(s.reason)}</td></tr>
    <tr class="detail c-${s.change}" id="d${i}"${open ? '' : ' hidden'}><td colspan="4">${open ? detailHtml(s) : ''}</td></tr>`;
}

function applyFilter() {
  const plan = state.plan;
  const text = state.text.trim().toLowerCase();
  if (text && !state.haystack) {
    state.haystack = plan.services.map((s) => `${s.service.name} ${scopeText(s.service)} ${s.function ?? ''} ${s.reason}`.toLowerCase());
  }
  const out = [];
  const all = state.changes.size === CHANGES.length;
  for (let i = 0; i < plan.services.length; i++) {
    if (!all && !state.changes.has(plan.services[i].change)) continue;
    if (text && !state.haystack[i].includes(text)) continue;
    out.push(i);
  }
  state.filtered = out;
}

function renderRows(more = false) {
  const tbody = $('plan-rows');
  const from = more ? state.shown : 0;
  const to = Math.min(state.filtered.length, from + ROW_PAGE);
  let html = '';
  for (let k = from; k < to; k++) html += rowHtml(state.filtered[k]);
  if (more) tbody.insertAdjacentHTML('beforeend', html);
  else tbody.innerHTML = html;
  state.shown = to;
  const total = state.plan.services.length;
  const n = state.filtered.length;
  $('rows-empty').hidden = n > 0;
  $('plan-table').hidden = n === 0;
  $('shown').textContent = n === total
    ? `Showing ${to} of ${plural(total, 'service')}.`
    : `Showing ${to} of ${n} matching (${plural(total, 'service')} in the plan).`;
  const rest = n - to;
  const btn = $('rows-more');
  btn.hidden = rest <= 0;
  btn.textContent = `Show ${Math.min(rest, ROW_PAGE)} more (${rest} not shown)`;
}

function renderSummary(plan, ms, functionCount, notes) {
  const s = plan.summary;
  const counts = { create: s.create, update: s.update, delete: s.delete, unchanged: s.unchanged };
  for (const btn of document.querySelectorAll('.filters .chip')) {
    btn.querySelector('.n').textContent = counts[btn.dataset.change];
  }
  const el = $('summary');
  el.innerHTML = `<span class="count c-create">${s.create} to create</span>, <span class="count c-update">${s.update} to update</span>,
    <span class="count c-delete">${s.delete} to delete</span>, <span class="count c-unchanged">${s.unchanged} unchanged</span>;
    ${plural(s.operations, 'request')}, <span class="${s.errors ? 'count c-error' : ''}">${plural(s.errors, 'error')}</span>,
    ${plural(s.warnings, 'warning')}, ${plural(s.skipped, 'function')} skipped.
    <span class="muted">${plural(functionCount, 'function')} checked in ${ms.toFixed(0)} ms.</span>
    ${notes.map((n) => `<span class="note">${esc(n)}</span>`).join(' ')}`;
}

// ---------------------------------------------------------------------------
// Actions.
// ---------------------------------------------------------------------------

let runs = 0;
window.__planRuns = 0;

async function run({ focusResults = false } = {}) {
  const t0 = performance.now();
  try {
    await coreReady;
  } catch (e) {
    showAlert('The core is not available', e);
    window.__planRuns = ++runs;
    return;
  }
  let plan;
  let planJson;
  let read;
  const timings = {};
  try {
    read = readForm();
    const t1 = performance.now();
    timings.read = t1 - t0;
    planJson = coreRaw('plan', JSON.stringify(read.input));
    plan = JSON.parse(planJson);
    timings.plan = performance.now() - t1;
  } catch (e) {
    $('results').hidden = true;
    showAlert('The plan could not be made', e);
    window.__planRuns = ++runs;
    return;
  }
  const t2 = performance.now();
  clearAlert();
  state.plan = plan;
  state.planJson = planJson;
  state.nodeName = (read.input.config && read.input.config.nodeName) || 'lambdas';
  indexPlan(plan);
  state.groups = groupMessages(plan);
  applyFilter();
  renderMessages();
  renderIgnored(plan);
  renderMesh(plan);
  renderRows();
  $('results').hidden = false;
  renderSummary(plan, performance.now() - t0, read.functionCount, read.notes);
  $('results').getBoundingClientRect(); // layout, so the figure includes it
  const t3 = performance.now();
  timings.render = t3 - t2;
  timings.total = t3 - t0;
  timings.functions = read.functionCount;
  timings.services = plan.services.length;
  timings.rowsInDom = document.querySelectorAll('#plan-rows tr.row').length;
  window.__lastRenderMs = timings.total;
  window.__lastTimings = timings;
  window.__planRuns = ++runs;
  requestAnimationFrame(() => setTimeout(() => {
    window.__lastPaintMs = performance.now() - t0;
  }, 0));
  if (focusResults) $('results').focus({ preventScroll: false });
}

function loadExample() {
  $('account').value = example.account;
  $('region').value = example.region;
  $('functions').value = example.functions;
  $('node-services').value = example.nodeServices;
  $('service-defaults').value = example.serviceDefaults;
  $('config').value = example.config;
  $('consul-section').open = true;
  $('config-section').open = true;
  $('filter').value = '';
  state.text = '';
  state.changes = new Set(CHANGES);
  syncChips();
  return run();
}

function clearForm() {
  for (const id of ['account', 'region', 'functions', 'node-services', 'service-defaults', 'mesh-entries', 'config', 'filter']) $(id).value = '';
  state.text = '';
  state.plan = null;
  $('results').hidden = true;
  clearAlert();
  $('functions').focus();
}

function syncChips() {
  for (const btn of document.querySelectorAll('.filters .chip')) {
    btn.setAttribute('aria-pressed', String(state.changes.has(btn.dataset.change)));
  }
}

function toggleRow(btn) {
  const tr = btn.closest('tr');
  const i = Number(tr.dataset.i);
  const detail = $(`d${i}`);
  const open = btn.getAttribute('aria-expanded') !== 'true';
  btn.setAttribute('aria-expanded', String(open));
  if (open) {
    state.expanded.add(i);
    if (!detail.firstElementChild.innerHTML) detail.firstElementChild.innerHTML = detailHtml(state.plan.services[i]);
    detail.hidden = false;
  } else {
    state.expanded.delete(i);
    detail.hidden = true;
  }
}

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function readFileInto(file, targetId) {
  try {
    $(targetId).value = await file.text();
  } catch (e) {
    showAlert(`The file ${file.name} could not be read`, e);
    return;
  }
  if ($('account').value.trim() && $('region').value.trim()) run();
}

// ---------------------------------------------------------------------------
// Wiring.
// ---------------------------------------------------------------------------

function wire() {
  $('inputs').addEventListener('submit', (e) => {
    e.preventDefault();
    run({ focusResults: false });
  });
  $('inputs').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run();
    }
  });
  $('example-button').addEventListener('click', () => loadExample());
  $('clear-button').addEventListener('click', clearForm);

  for (const input of document.querySelectorAll('input[type=file][data-target]')) {
    input.addEventListener('change', () => {
      const f = input.files && input.files[0];
      if (f) readFileInto(f, input.dataset.target);
      input.value = '';
    });
  }
  for (const zone of document.querySelectorAll('.drop')) {
    zone.addEventListener('dragover', (e) => {
      if (e.dataTransfer && [...e.dataTransfer.types].includes('Files')) {
        e.preventDefault();
        zone.classList.add('dragging');
      }
    });
    zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
    zone.addEventListener('drop', (e) => {
      zone.classList.remove('dragging');
      const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
      if (f) {
        e.preventDefault();
        readFileInto(f, zone.dataset.for);
      }
    });
  }

  $('plan-rows').addEventListener('click', (e) => {
    const btn = e.target.closest('button.toggle');
    if (btn) toggleRow(btn);
  });
  $('rows-more').addEventListener('click', () => renderRows(true));
  $('messages-more').addEventListener('click', () => renderMessages(true));

  for (const btn of document.querySelectorAll('.filters .chip')) {
    btn.addEventListener('click', () => {
      const c = btn.dataset.change;
      if (state.changes.has(c)) state.changes.delete(c);
      else state.changes.add(c);
      syncChips();
      if (state.plan) {
        applyFilter();
        renderRows();
      }
    });
  }
  let timer = 0;
  $('filter').addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.text = $('filter').value;
      if (state.plan) {
        applyFilter();
        renderRows();
      }
    }, 120);
  });

  $('download-json').addEventListener('click', () => {
    if (state.plan) download('plan.json', 'application/json', JSON.stringify(state.plan, null, 2));
  });
  $('download-text').addEventListener('click', () => {
    if (!state.plan) return;
    try {
      download('plan.txt', 'text/plain', JSON.parse(coreRaw('formatPlan', state.planJson)));
    } catch (e) {
      showAlert('The plan could not be formatted', e);
    }
  });

  window.addEventListener('error', (e) => showAlert('Unexpected error', e.error || e.message));
  window.addEventListener('unhandledrejection', (e) => showAlert('Unexpected error', e.reason));
  coreReady.catch((e) => showAlert('The core is not available', e));
}

wire();
window.__ready = true;
