// Bad input of every kind gives a ConsulLambdaSyncError with a known code, never
// a crash, another exception type or a poisoned backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lib } from './helpers.mjs';

const { ConsulLambdaSyncError } = lib;
const knownCodes = new Set(lib.errorCodes().map((c) => c.code));
const ENABLED = 'serverless.consul.hashicorp.com/v1alpha1/lambda/enabled';
const ARN = 'arn:aws:lambda:us-east-1:123456789012:function:orders';
const MB10 = 'x'.repeat(10 * 1024 * 1024);

/** The ConsulLambdaSyncError that `fn` throws, checked for a well-formed failure. */
function failure(fn, code) {
  let thrown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown instanceof ConsulLambdaSyncError, `expected a ConsulLambdaSyncError, got ${thrown}`);
  assert.ok(thrown instanceof Error);
  assert.equal(thrown.name, 'ConsulLambdaSyncError');
  assert.ok(knownCodes.has(thrown.code), `unknown code ${thrown.code}`);
  if (code) assert.equal(thrown.code, code, thrown.message);
  assert.equal(typeof thrown.message, 'string');
  assert.equal(typeof thrown.hint, 'string');
  assert.ok(Array.isArray(thrown.errors) && thrown.errors.length > 0, 'errors lists the problems');
  for (const d of thrown.errors) assert.ok(knownCodes.has(d.code), `unknown code ${d.code}`);
  assert.equal(thrown.details.code, thrown.code);
  assert.ok(thrown.message.length < 5000, `message of ${thrown.message.length} characters`);
  return thrown;
}

/** `fn` either returns or throws a well-formed ConsulLambdaSyncError. */
function returnsOrFails(fn) {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof ConsulLambdaSyncError)) throw e;
    assert.ok(knownCodes.has(e.code), `unknown code ${e.code}`);
    return e;
  }
}

const WRONG = [42, -1.5, 'text', '', true, null, [], [1, 'a'], {}, { unexpected: true }];
const ONE_ARG = [
  'configFromEnv',
  'configFromObject',
  'classifyEvent',
  'plan',
  'formatPlan',
  'extensionDataParameter',
  'parseGetResources',
  'parseGetFunction',
];

test('wrong types for every function: a typed error or a value, never a crash', () => {
  for (const name of ONE_ARG) {
    for (const input of WRONG) returnsOrFails(() => lib[name](input));
  }
  for (const input of WRONG) {
    returnsOrFails(() => lib.parseTags(input));
    returnsOrFails(() => lib.parseTags({}, input));
    returnsOrFails(() => lib.tagsFromOptions(input));
    returnsOrFails(() => lib.tagsFromOptions({}, input));
    returnsOrFails(() => lib.evaluateFunction(input));
    returnsOrFails(() => lib.evaluateFunction({ arn: ARN }, input));
    returnsOrFails(() => lib.call('plan', input));
  }
});

test('wrong types are invalid_input naming the field', () => {
  const e = failure(() => lib.parseTags({ [ENABLED]: true }), 'invalid_input');
  assert.match(e.message, /invalid type/);
  failure(() => lib.parseTags(5), 'invalid_input');
  failure(() => lib.parseTags({}, 'yes'), 'invalid_input');
  failure(() => lib.configFromObject({ pageSize: '50' }), 'invalid_input');
  failure(() => lib.configFromEnv({ NODE_NAME: 7 }), 'invalid_input');
  failure(() => lib.tagsFromOptions({ aliases: 'live' }), 'invalid_input');
  failure(() => lib.plan({ inventory: { accountId: 1, region: 'us-east-1' } }), 'invalid_input');
});

test('missing fields are invalid_input naming the field', () => {
  assert.equal(failure(() => lib.plan({}), 'invalid_input').key, 'inventory');
  assert.equal(failure(() => lib.evaluateFunction({ tags: {} }), 'invalid_input').key, 'arn');
  assert.equal(failure(() => lib.parseTags(undefined), 'invalid_input').key, 'tags');
  failure(() => lib.plan({ inventory: { region: 'us-east-1' } }), 'invalid_input');
  failure(() => lib.formatPlan({ operations: [] }), 'invalid_input');
});

test('unknown fields are rejected with the accepted ones listed', () => {
  const e = failure(() => lib.configFromObject({ nodename: 'x' }), 'invalid_input');
  assert.equal(e.key, 'nodename');
  assert.match(e.message, /nodeName/);
  failure(() => lib.call('parseTags', { tags: {}, extra: 1 }), 'invalid_input');
});

test('an unknown function name is invalid_input on key function', () => {
  const e = failure(() => lib.call('noSuchFunction', null), 'invalid_input');
  assert.equal(e.key, 'function');
  failure(() => lib.call(MB10, null), 'invalid_input');
});

test('a 10 MB string gives a typed error with the value cut short', () => {
  const e = failure(() => lib.configFromEnv({ NODE_NAME: MB10 }));
  assert.ok(e.errors.some((d) => d.code === 'invalid_node_name'), JSON.stringify(e.details).slice(0, 500));
  for (const d of e.errors) assert.ok((d.value ?? '').length < 300);
  failure(() => lib.classifyEvent(MB10), 'unsupported_event');
  const fn = lib.evaluateFunction({ arn: MB10, tags: { [ENABLED]: 'true' } });
  assert.equal(fn.status, 'invalid');
  assert.equal(fn.errors[0].code, 'invalid_arn');
  assert.ok(fn.errors[0].value.length < 300);
  const r = failure(() => lib.parseGetFunction({ Configuration: { FunctionArn: MB10 } }), 'invalid_response');
  assert.ok(r.value.length < 300);
  const report = lib.parseTags({ [ENABLED]: MB10 });
  assert.equal(report.errors[0].code, 'invalid_boolean');
  assert.ok(report.errors[0].value.length < 300);
  const big = lib.parseTags({ [`serverless.consul.hashicorp.com/v1alpha1/lambda/${MB10}`]: 'x' });
  assert.equal(big.warnings[0].code, 'unknown_tag');
});

function nested(depth, leaf) {
  let v = leaf;
  for (let i = 0; i < depth; i += 1) v = { a: [v] };
  return v;
}

test('deeply nested input gives a typed error', () => {
  const deep = nested(1000, 1);
  const e = failure(() => lib.classifyEvent(deep), 'invalid_input');
  assert.match(e.hint, /nested too deeply/);
  failure(() => lib.plan({ inventory: deep }), 'invalid_input');
  // Unknown fields of AWS responses are skipped, however deep.
  assert.deepEqual(lib.parseGetResources(deep), { functions: [] });
  failure(() => lib.parseGetResources({ ResourceTagMappingList: [nested(1000, 1)] }), 'invalid_input');
  failure(() => lib.configFromObject(nested(200, 'x')), 'invalid_input');
  // Deeper than JSON.stringify can go (a RangeError inside it): still the typed error.
  let deeper = [];
  for (let i = 0; i < 1_000_000; i += 1) deeper = [deeper];
  failure(() => lib.classifyEvent(deeper), 'invalid_input');
});

test('input that is not JSON-serialisable is invalid_input', () => {
  const cycle = { tags: {} };
  cycle.self = cycle;
  for (const bad of [cycle, { n: 10n }, 10n]) {
    const e = failure(() => lib.classifyEvent(bad), 'invalid_input');
    assert.match(e.message, /not JSON-serialisable/);
  }
  for (const bad of [undefined, () => 1, Symbol('s')]) {
    const e = failure(() => lib.classifyEvent(bad), 'invalid_input');
    assert.match(e.message, /not a JSON value/);
  }
});

test('odd strings: unicode, lone surrogates, NUL', () => {
  const report = lib.parseTags({ [ENABLED]: 'true', 'serverless.consul.hashicorp.com/v1alpha1/lambda/😀': '\u0000' });
  assert.equal(report.settings.enabled, true);
  assert.equal(report.warnings[0].code, 'unknown_tag');
  returnsOrFails(() => lib.parseTags({ [ENABLED]: '\ud800' }));
  returnsOrFails(() => lib.classifyEvent({ source: '\udfff', detail: { eventName: '\ud83d' } }));
  returnsOrFails(() => lib.configFromEnv({ NODE_NAME: 'l\u0000mbdas' }));
});

test('the backend still works after every failure above', () => {
  assert.match(lib.version(), /^\d+\.\d+\.\d+/);
  const cfg = lib.configFromObject({});
  assert.equal(cfg.nodeName, 'lambdas');
  const fn = lib.evaluateFunction({ arn: ARN, tags: { [ENABLED]: 'true' } });
  assert.equal(fn.status, 'managed');
});

test('ConsulLambdaSyncError carries the failure as fields', () => {
  const e = failure(() => lib.configFromEnv({ PAGE_SIZE: 'many', LOG_LEVEL: 'loud' }), 'invalid_config');
  assert.equal(e.errors.length, 2);
  assert.deepEqual(
    e.errors.map((d) => d.key).sort(),
    ['LOG_LEVEL', 'PAGE_SIZE'],
  );
  assert.deepEqual(Object.keys(e.details).sort().filter((k) => ['code', 'errors', 'hint', 'message'].includes(k)), [
    'code',
    'errors',
    'hint',
    'message',
  ]);
  const one = failure(() => lib.configFromEnv({ PAGE_SIZE: 'many' }), 'invalid_config');
  assert.equal(one.key, 'PAGE_SIZE');
  assert.equal(one.value, 'many');
  assert.ok(one.hint.length > 0);
  assert.ok(String(one).startsWith('ConsulLambdaSyncError: '));
});
