// The backend is the one the run asked for, and every entry point shares it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { lib, requestedBackend, repoRoot } from './helpers.mjs';
import * as esm from 'consul-lambda-sync';

test('backend is the one CONSUL_LAMBDA_SYNC_BACKEND asks for', () => {
  assert.ok(['native', 'wasm'].includes(lib.backend), lib.backend);
  if (requestedBackend) assert.equal(lib.backend, requestedBackend);
});

test('the ES module entry exports the same functions and backend', () => {
  assert.equal(esm.backend, lib.backend);
  assert.equal(esm.default, lib);
  for (const [name, value] of Object.entries(lib)) {
    assert.equal(esm[name], value, name);
  }
});

test('every function of the core is exported in camelCase', () => {
  const names = [
    'version',
    'errorCodes',
    'configFromEnv',
    'configFromObject',
    'parseTags',
    'tagsFromOptions',
    'evaluateFunction',
    'classifyEvent',
    'plan',
    'planRequests',
    'lowerOperation',
    'formatPlan',
    'extensionDataParameter',
    'parseGetResources',
    'parseGetFunction',
    'extensionSettings',
    'extensionUpstream',
    'extensionTarget',
    'extensionDataRead',
    'extensionPeer',
    'extensionDataBuild',
  ];
  for (const name of names) assert.equal(typeof lib[name], 'function', name);
  // The core's own list (via the unknown-function error) names the same functions.
  try {
    lib.call('none', null);
    assert.fail('no error');
  } catch (e) {
    assert.ok(e instanceof lib.ConsulLambdaSyncError);
    const listed = e.hint.replace(/^call one of: /, '').split(', ');
    assert.deepEqual(listed, names);
  }
});

test('configFromEnv reads process.env by default', () => {
  const saved = process.env.NODE_NAME;
  process.env.NODE_NAME = 'from-process-env';
  try {
    assert.equal(lib.configFromEnv().nodeName, 'from-process-env');
  } finally {
    if (saved === undefined) delete process.env.NODE_NAME;
    else process.env.NODE_NAME = saved;
  }
  assert.equal(lib.configFromEnv({ NODE_NAME: undefined }).nodeName, 'lambdas');
});

const pkgWeb = path.join(repoRoot, 'wasm', 'pkg-web');
test(
  'the web build (wasm/pkg-web) gives the same answers through its own call',
  { skip: !fs.existsSync(pkgWeb) && 'wasm/pkg-web is not built' },
  async () => {
    const web = await import(path.join(pkgWeb, 'consul_lambda_sync_wasm.js'));
    web.initSync({ module: fs.readFileSync(path.join(pkgWeb, 'consul_lambda_sync_wasm_bg.wasm')) });
    assert.deepEqual(JSON.parse(web.call('errorCodes', 'null')), lib.errorCodes());
    assert.throws(
      () => web.call('parseTags', '5'),
      (e) => e instanceof Error && JSON.parse(e.message).code === 'invalid_input',
    );
    for (const file of ['consul_lambda_sync_wasm.d.ts', 'package.json']) {
      assert.ok(fs.existsSync(path.join(pkgWeb, file)), file);
    }
    assert.ok(fs.existsSync(path.join(repoRoot, 'wasm', 'pkg-node', 'consul_lambda_sync_wasm.d.ts')));
  },
);
